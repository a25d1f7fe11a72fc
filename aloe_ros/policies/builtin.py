"""The built-in flow-matching chunk policy: small enough to train and run on a CPU (no ROS).

    observation (images by camera, joint state, task text) -> chunk A of H future joint commands

* one small CNN per camera on images downsampled to ``image_size``, read out with a spatial
  softmax (expected x/y of each feature map: where things are) plus average pooling;
* the joint state, normalised with statistics stored with the weights;
* the task text as a deterministic hashed bag of words -> a learned embedding (no tokenizer,
  nothing to download);
* a flow-matching action head: an MLP over the whole chunk that predicts the clean chunk
  A_hat(x_eta, eta, o, text), read as the velocity ``v_theta = (A_hat - x_eta) / (1 - eta)``
  (``head_output``). Actions are modelled as offsets from the current joint state, normalised
  per (step, joint).

Flow matching follows DESIGN section 4: ``x_eta = eta * A + (1 - eta) * eps`` with
``eps ~ N(0, I)``, the target velocity is ``A - eps``, and sampling integrates
``dx/deta = v_theta`` from eta = 0 (noise) to 1 (a chunk) with ``flow_steps`` Euler steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aloe_ros.policies.base import Observation, ObservationBatch, PolicyError

__all__ = ["BuiltinPolicy", "BuiltinPolicyConfig", "hash_task_tokens"]

log = logging.getLogger(__name__)

KIND = "builtin"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "policy.json"
HEAD_OUTPUTS = ("chunk", "velocity")
# Smallest 1 - eta the chunk-output head divides by: bounds the velocity (and its loss) next to
# the data end of the path, where x_eta already is almost the chunk.
MIN_FLOW_GAP = 0.05


@dataclass
class BuiltinPolicyConfig:
    """Shape and size of the built-in policy; stored in policy.json beside the weights."""

    joint_names: list[str]
    camera_names: list[str]
    chunk_horizon: int = 50
    flow_steps: int = 10
    # (height, width) the cameras are downsampled to before the CNN.
    image_size: tuple[int, int] = (48, 64)
    cnn_channels: int = 32
    camera_features: int = 64
    text_buckets: int = 1024
    text_dim: int = 32
    hidden_dim: int = 512
    head_layers: int = 3
    # Random image shift (pixels) while training: the cheapest augmentation that helps BC.
    augment_shift: int = 2
    # What the head outputs. "chunk": the clean chunk A_hat, turned into the velocity
    # (A_hat - x) / (1 - eta) that carries x_eta to it. "velocity": v directly (checkpoints
    # written before this field). A direct-velocity MLP has to pass the whole noisy chunk
    # (H*D values) through its hidden width to output ~ -x; ours did not learn to, and its
    # samples were the mean chunk plus noise_scale * unit noise, which no training could shrink.
    head_output: str = "chunk"

    def __post_init__(self) -> None:
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if not self.joint_names:
            raise PolicyError("the policy needs at least one joint")
        if self.head_output not in HEAD_OUTPUTS:
            raise PolicyError(f"head_output must be one of {HEAD_OUTPUTS}, got "
                              f"{self.head_output!r}")
        if self.chunk_horizon < 1 or self.flow_steps < 1:
            raise PolicyError(f"chunk_horizon ({self.chunk_horizon}) and flow_steps "
                              f"({self.flow_steps}) must be >= 1")

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)


def hash_task_tokens(text: str, buckets: int) -> list[int]:
    """Deterministic hashed bag of words: lower-cased word tokens -> crc32 mod buckets.

    crc32 (not Python's salted ``hash``) keeps the buckets identical across processes.
    """
    tokens = re.findall(r"[a-z0-9]+", text.lower()) or ["<empty>"]
    return [zlib.crc32(token.encode()) % buckets for token in tokens]


class SpatialSoftmax(nn.Module):
    """Feature maps (B, C, H, W) -> expected (x, y) per channel in [-1, 1], (B, 2C)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        attention = torch.softmax(features.flatten(2), dim=-1).view(batch, channels, height, width)
        ys = torch.linspace(-1.0, 1.0, height, device=features.device)
        xs = torch.linspace(-1.0, 1.0, width, device=features.device)
        expected_x = (attention.sum(dim=2) * xs).sum(dim=-1)
        expected_y = (attention.sum(dim=3) * ys).sum(dim=-1)
        return torch.cat([expected_x, expected_y], dim=1)


class CameraEncoder(nn.Module):
    """A three-layer CNN read out by spatial softmax and average pooling."""

    def __init__(self, channels: int, out_features: int) -> None:
        super().__init__()
        # Cheap on purpose (CPU training): two strided 3x3/5x5 layers, then a 1x1 layer whose
        # maps the spatial softmax turns into keypoints.
        self.conv = nn.Sequential(
            nn.Conv2d(3, channels // 2, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )
        self.keypoints = SpatialSoftmax()
        self.project = nn.Linear(3 * channels, out_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv(images)
        pooled = F.relu(features).mean(dim=(2, 3))
        return F.gelu(self.project(torch.cat([self.keypoints(features), pooled], dim=1)))


def timestep_embedding(eta: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """Sinusoidal embedding of the flow time eta in [0, 1], (B,) -> (B, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(1000.0) * torch.arange(half, device=eta.device) / half)
    angles = eta[:, None] * 1000.0 * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class BuiltinPolicy(nn.Module):
    """Built-in flow-matching chunk policy; implements ChunkPolicy and TrainableChunkPolicy."""

    state_mean: torch.Tensor
    state_std: torch.Tensor
    offset_mean: torch.Tensor
    offset_std: torch.Tensor

    def __init__(self, config: BuiltinPolicyConfig, version: str = "builtin-untrained") -> None:
        super().__init__()
        self.config = config
        self.version = version
        self.chunk_horizon = config.chunk_horizon
        self.action_dim = config.action_dim
        self.camera_names = list(config.camera_names)
        self.joint_names = list(config.joint_names)
        self.flow_steps = config.flow_steps
        # Scale of the initial noise when sampling (1: the trained distribution).
        self.noise_scale = 1.0
        self.encoders = nn.ModuleDict(
            {name: CameraEncoder(config.cnn_channels, config.camera_features)
             for name in self.camera_names})
        self.text_embedding = nn.EmbeddingBag(config.text_buckets, config.text_dim, mode="mean")
        condition_dim = (len(self.camera_names) * config.camera_features + self.action_dim
                         + config.text_dim)
        self.condition = nn.Sequential(nn.Linear(condition_dim, config.hidden_dim), nn.GELU())
        flat = config.chunk_horizon * self.action_dim
        layers: list[nn.Module] = [nn.Linear(config.hidden_dim + flat + 32, config.hidden_dim),
                                   nn.GELU()]
        for _ in range(config.head_layers - 1):
            layers += [nn.Linear(config.hidden_dim, config.hidden_dim), nn.GELU()]
        layers.append(nn.Linear(config.hidden_dim, flat))
        self.velocity_head = nn.Sequential(*layers)
        # Normalisation statistics travel with the weights (set by fit_normalization).
        self.register_buffer("state_mean", torch.zeros(self.action_dim))
        self.register_buffer("state_std", torch.ones(self.action_dim))
        self.register_buffer("offset_mean", torch.zeros(config.chunk_horizon, self.action_dim))
        self.register_buffer("offset_std", torch.ones(config.chunk_horizon, self.action_dim))

    # ---- normalisation ----------------------------------------------------------------------
    def fit_normalization(self, states: np.ndarray, chunks: np.ndarray) -> None:
        """Set state and action-offset statistics from data: states (N, D), chunks (N, H, D)."""
        offsets = chunks - states[:, None, :]
        self.state_mean.copy_(torch.from_numpy(states.mean(0)).float())
        self.state_std.copy_(torch.from_numpy(states.std(0) + 1e-3).float())
        self.offset_mean.copy_(torch.from_numpy(offsets.mean(0)).float())
        self.offset_std.copy_(torch.from_numpy(offsets.std(0) + 1e-3).float())

    def normalize_actions(self, actions: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Absolute chunks (B, H, D) -> normalised offsets from the current state."""
        return (actions - state[:, None, :] - self.offset_mean) / self.offset_std

    def denormalize_actions(self, normalized: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return normalized * self.offset_std + self.offset_mean + state[:, None, :]

    # ---- encoding ---------------------------------------------------------------------------
    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> float (B, 3, h, w) in [0, 1] at the policy's image size."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        if tuple(x.shape[-2:]) != self.config.image_size:
            x = F.interpolate(x, size=self.config.image_size, mode="area")
        shift = self.config.augment_shift
        if self.training and shift > 0:
            x = random_shift(x, shift)
        return x

    def encode(self, batch: ObservationBatch) -> torch.Tensor:
        """The conditioning vector of each observation, (B, hidden_dim)."""
        device = self.state_mean.device
        missing = [name for name in self.camera_names if name not in batch.images]
        if missing:
            raise PolicyError(f"observation lacks camera(s) {missing}; the policy uses "
                              f"{self.camera_names}")
        if batch.state.shape[-1] != self.action_dim:
            raise PolicyError(f"state has {batch.state.shape[-1]} values, the policy expects "
                              f"{self.action_dim}")
        features = [self.encoders[name](self.prepare_images(batch.images[name].to(device)))
                    for name in self.camera_names]
        state = (batch.state.to(device).float() - self.state_mean) / self.state_std
        tokens = [hash_task_tokens(text, self.config.text_buckets) for text in batch.task]
        if len(tokens) != len(batch):
            tokens = [hash_task_tokens("", self.config.text_buckets)] * len(batch)
        flat = torch.tensor([t for ts in tokens for t in ts], dtype=torch.long, device=device)
        offsets = torch.tensor(np.cumsum([0] + [len(ts) for ts in tokens[:-1]]),
                               dtype=torch.long, device=device)
        text = self.text_embedding(flat, offsets)
        return self.condition(torch.cat([*features, state, text], dim=1))

    def velocity(self, x: torch.Tensor, eta: torch.Tensor, condition: torch.Tensor
                 ) -> torch.Tensor:
        """v_theta(x_eta, eta, o, text): (B, H, D) noisy normalised chunks -> velocities."""
        output = self.head(x, eta, condition)
        if self.config.head_output == "velocity":
            return output
        return (output - x) / flow_gap(eta)

    def head(self, x: torch.Tensor, eta: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The MLP's raw output for (B, H, D) noisy chunks: A_hat or v (``head_output``)."""
        inputs = torch.cat([condition, x.flatten(1), timestep_embedding(eta)], dim=1)
        return self.velocity_head(inputs).view_as(x)

    # ---- TrainableChunkPolicy ---------------------------------------------------------------
    def flow_matching_loss(self, batch: ObservationBatch, actions: torch.Tensor,
                           weights: torch.Tensor | None = None,
                           action_mask: torch.Tensor | None = None) -> torch.Tensor:
        """L = sum_b w_b * mean_valid || v_theta(x_eta, eta, o) - (A - eps) ||^2 / sum_b w_b.

        For the chunk head the error is || A_hat - A ||^2, the velocity error weighted by
        (1 - eta)^2 (for eta below 1 - MIN_FLOW_GAP): the same minimiser (flow matching admits
        any positive weighting over eta), without the 1 / (1 - eta)^2 blow-up near the data
        end that starved the noisy end, where the chunk is predicted from the observation
        alone.

        ``x_eta = eta * A + (1 - eta) * eps``, A normalised; steps outside ``action_mask``
        (padding of partial chunks) do not count, and their values are replaced by the last
        valid action (hold) so that padding cannot leak in through x_eta. Weights are used as
        given (detach them).
        """
        device = self.state_mean.device
        state = batch.state.to(device).float()
        actions = actions.to(device).float()
        if action_mask is not None:
            actions = hold_last_valid(actions, action_mask.to(device))
        target = self.normalize_actions(actions, state)
        noise = torch.randn_like(target)
        eta = torch.rand(target.shape[0], device=device)
        x_eta = eta[:, None, None] * target + (1 - eta[:, None, None]) * noise
        output = self.head(x_eta, eta, self.encode(batch))
        if self.config.head_output == "velocity":
            error = ((output - (target - noise)) ** 2).mean(dim=2)          # (B, H)
        else:
            error = ((output - target) ** 2).mean(dim=2)
        if action_mask is None:
            per_sample = error.mean(dim=1)
        else:
            mask = action_mask.to(device).float()
            per_sample = (error * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        if weights is None:
            return per_sample.mean()
        w = weights.to(device).float()
        return (w * per_sample).sum() / w.sum().clamp(min=1e-8)

    @torch.no_grad()
    def sample_actions(self, batch: ObservationBatch, count: int = 1) -> torch.Tensor:
        """Chunks from the current weights by Euler integration, (B, count, H, D); no grad."""
        condition = self.encode(batch).repeat_interleave(count, dim=0)
        rows = condition.shape[0]
        x = self.noise_scale * torch.randn(rows, self.chunk_horizon, self.action_dim,
                                           device=condition.device)
        dt = 1.0 / self.flow_steps
        for i in range(self.flow_steps):
            eta = torch.full((rows,), i * dt, device=condition.device)
            x = x + dt * self.velocity(x, eta, condition)
        state = batch.state.to(condition.device).float().repeat_interleave(count, dim=0)
        chunks = self.denormalize_actions(x, state)
        return chunks.view(len(batch), count, self.chunk_horizon, self.action_dim)

    # ---- ChunkPolicy ------------------------------------------------------------------------
    def reset(self) -> None:
        """Nothing is kept between chunks."""

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        return self.sample_chunks(observation, 1)[0]

    def sample_chunks(self, observation: Observation, count: int) -> np.ndarray:
        was_training = self.training
        self.eval()
        try:
            chunks = self.sample_actions(ObservationBatch.stack([observation]), count)[0]
        finally:
            self.train(was_training)
        return chunks.cpu().numpy().astype(np.float32)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, directory: Path, *, version: str | None = None,
             extra: dict[str, Any] | None = None) -> str:
        """Write model.safetensors and policy.json; return the weights' sha256."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if version is not None:
            self.version = version
        weights = directory / WEIGHTS_FILE
        tmp = weights.with_name(weights.name + ".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(tmp))
        tmp.replace(weights)
        digest = file_sha256(weights)
        meta = {"kind": KIND, "format_version": FORMAT_VERSION, "version": self.version,
                "joint_names": self.joint_names, "cameras": self.camera_names,
                "chunk_horizon": self.chunk_horizon, "action_dim": self.action_dim,
                "config": asdict(self.config), "weights": WEIGHTS_FILE, "sha256": digest,
                "extra": extra or {}}
        meta_tmp = directory / (META_FILE + ".tmp")
        meta_tmp.write_text(json.dumps(meta, indent=2))
        meta_tmp.replace(directory / META_FILE)
        return digest

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], state: dict[str, torch.Tensor]
                      ) -> BuiltinPolicy:
        """Rebuild from policy.json contents and a loaded state dict (see checkpoint.py)."""
        try:
            fields = dict(meta["config"])
            # Written before head_output existed: those heads output the velocity.
            fields.setdefault("head_output", "velocity")
            config = BuiltinPolicyConfig(**fields)
        except TypeError as exc:
            raise PolicyError(f"policy.json config does not fit this version: {exc}") from None
        policy = cls(config, version=str(meta.get("version", "builtin")))
        try:
            policy.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PolicyError(f"weights do not match the policy config: {exc}") from None
        policy.eval()
        return policy


def flow_gap(eta: torch.Tensor) -> torch.Tensor:
    """1 - eta as (B, 1, 1), bounded below by MIN_FLOW_GAP."""
    return (1.0 - eta).clamp(min=MIN_FLOW_GAP)[:, None, None]


def hold_last_valid(actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace each invalid step of (B, H, D) chunks by the newest valid step before it."""
    horizon = actions.shape[1]
    steps = torch.arange(horizon, device=actions.device)[None].expand(actions.shape[0], -1)
    latest_valid = torch.where(mask > 0, steps, torch.zeros_like(steps)).cummax(dim=1).values
    return torch.gather(actions, 1, latest_valid[:, :, None].expand_as(actions))


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image by up to ``pad`` pixels (replicate padding, then a random crop)."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (batch,))
    dy = torch.randint(0, 2 * pad + 1, (batch,))
    rows = (torch.arange(height)[None, :] + dy[:, None])             # (B, H)
    cols = (torch.arange(width)[None, :] + dx[:, None])              # (B, W)
    index = torch.arange(batch)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
