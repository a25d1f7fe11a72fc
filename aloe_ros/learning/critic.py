"""Critic networks: an ensemble of K chunk-Q heads over one shared observation trunk (torch).

Design choice (DESIGN section 4 allows a shared trunk or separate nets):

* **Observation trunk**: our own small CNN (shared by all cameras, then concatenated with an
  MLP of the joint state), trained by the critic loss. We do not reuse the actor's features:
  the policy protocol exposes none (LeRobot policies differ in structure), and a separate
  trunk keeps critic gradients from disturbing the actor. Images are resized to
  ``image_size`` first, so the critic stays cheap next to a large VLA.
* **Chunk encoder + heads**: each head is its own MLP over [trunk features, flattened chunk,
  valid-step mask], so heads disagree where data is thin (the ensemble std is meaningful).
  All K heads run in one call: weights are stacked (K, in, out) and applied with one batched
  matmul (``EnsembleLinear``), instead of a Python loop over K modules.

``CriticEnsemble(obs, actions, mask)`` returns Q of shape (K, B) for actions (B, Hc, D), or
(K, B, M) for M chunks per observation (B, M, Hc, D): the trunk runs once per observation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aloe_ros.policies.base import ObservationBatch

__all__ = ["CriticEnsemble", "EnsembleLinear", "ObservationEncoder", "ValueNetwork"]


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul: (K, N, in) -> (K, N, out)."""

    def __init__(self, ensemble_size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        # Same init as K separate nn.Linear layers (kaiming-uniform(a=sqrt(5)) == U(-b, b)).
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class ObservationEncoder(nn.Module):
    """Images (uint8, B x H x W x 3 per camera) + joint state -> one feature vector (B, width)."""

    def __init__(self, camera_names: list[str], state_dim: int, width: int,
                 image_size: int) -> None:
        super().__init__()
        self.camera_names = list(camera_names)
        self.image_size = image_size
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.state_mlp = nn.Sequential(nn.Linear(state_dim, 64), nn.ReLU())
        self.project = nn.Sequential(
            nn.Linear(128 * len(self.camera_names) + 64, width), nn.LayerNorm(width), nn.ReLU())

    def forward(self, observation: ObservationBatch) -> torch.Tensor:
        features = []
        for name in self.camera_names:
            image = observation.images[name].permute(0, 3, 1, 2).float() / 255.0
            image = F.interpolate(image, size=(self.image_size, self.image_size),
                                  mode="bilinear", align_corners=False, antialias=False)
            features.append(self.cnn(image - 0.5))
        features.append(self.state_mlp(observation.state.float()))
        return self.project(torch.cat(features, dim=-1))


class CriticEnsemble(nn.Module):
    """K chunk-Q heads Q_i(o, A) on a shared observation trunk (see module docstring)."""

    action_center: torch.Tensor
    action_scale: torch.Tensor

    def __init__(self, camera_names: list[str], state_dim: int, action_dim: int,
                 chunk_length: int, *, ensemble_size: int = 10, width: int = 256,
                 image_size: int = 64, action_center: torch.Tensor | None = None,
                 action_scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.chunk_length = chunk_length
        self.action_dim = action_dim
        self.encoder = ObservationEncoder(camera_names, state_dim, width, image_size)
        # Joint ranges differ by joint: heads see actions mapped to about [-1, 1].
        center = action_center if action_center is not None else torch.zeros(action_dim)
        scale = action_scale if action_scale is not None else torch.ones(action_dim)
        self.register_buffer("action_center", center.float().clone())
        self.register_buffer("action_scale", scale.float().clone())
        head_in = width + chunk_length * action_dim + chunk_length
        self.layers = nn.ModuleList([
            EnsembleLinear(ensemble_size, head_in, width),
            EnsembleLinear(ensemble_size, width, width),
            EnsembleLinear(ensemble_size, width, 1),
        ])

    def chunk_features(self, actions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(N, Hc, D) actions + (N, Hc) mask -> (N, Hc * D + Hc); padded steps are zeroed."""
        if mask is None:
            mask = torch.ones(actions.shape[:2], device=actions.device)
        normalised = (actions - self.action_center) / self.action_scale
        normalised = normalised * mask.unsqueeze(-1)
        return torch.cat([normalised.flatten(1), mask], dim=-1)

    def heads(self, features: torch.Tensor, actions: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
        """All K heads at once: trunk features (N, W) and chunks (N, Hc, D) -> Q (K, N)."""
        x = torch.cat([features, self.chunk_features(actions, mask)], dim=-1)
        x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x.squeeze(-1)

    def forward(self, observation: ObservationBatch, actions: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        actions = actions[..., :self.chunk_length, :]
        features = self.encoder(observation)
        if actions.dim() == 3:
            return self.heads(features, actions, mask)
        batch, samples = actions.shape[:2]
        flat_mask = None if mask is None else mask.reshape(batch * samples, -1)
        q = self.heads(features.repeat_interleave(samples, dim=0),
                       actions.reshape(batch * samples, *actions.shape[2:]), flat_mask)
        return q.reshape(self.ensemble_size, batch, samples)


class ValueNetwork(nn.Module):
    """V(o): the observation trunk and a small MLP (the Monte-Carlo baseline's value)."""

    def __init__(self, camera_names: list[str], state_dim: int, *, width: int = 256,
                 image_size: int = 64) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(camera_names, state_dim, width, image_size)
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, observation: ObservationBatch) -> torch.Tensor:
        return self.head(self.encoder(observation)).squeeze(-1)
