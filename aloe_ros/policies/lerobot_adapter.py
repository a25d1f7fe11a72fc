"""A LeRobot 0.6 policy directory (``save_pretrained``) as a ChunkPolicy (no ROS).

The directory holds ``config.json``, ``model.safetensors`` and the pre/post-processor pipelines
(normalisation lives outside the model in LeRobot 0.6). We load all three, map our camera names
to LeRobot image keys (``policy.camera_keys``; default ``observation.images.<camera>``), pass the
joint state as ``observation.state`` and the task text as ``task``, resize images to the size
the policy was configured with, and return ``predict_action_chunk`` as an (H, D) array.

Policies that look at several past observations (``n_obs_steps`` > 1, e.g. Diffusion) get the
observations of their previous calls (the chunk boundaries), the oldest repeated at the start
of an episode; ``reset`` clears that history.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from aloe_ros.policies.base import Observation, PolicyError
from aloe_ros.policies.checkpoint import LeRobotBinding, checkpoint_sha256

__all__ = ["LeRobotChunkPolicy"]

log = logging.getLogger(__name__)

STATE_KEY = "observation.state"


class LeRobotChunkPolicy:
    """ChunkPolicy over a LeRobot PreTrainedPolicy and its processors."""

    def __init__(self, policy: Any, preprocessor: Any, postprocessor: Any,
                 binding: LeRobotBinding, *, version: str, device: str = "cpu") -> None:
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.device = device
        self.version = version
        self.task = binding.task
        config = policy.config
        self.joint_names = list(binding.joint_names)
        image_features = dict(config.image_features)
        explicit = {c: k for c, k in binding.camera_keys.items() if c in binding.camera_names}
        unknown = {c: k for c, k in explicit.items() if k not in image_features}
        if unknown:
            raise PolicyError(
                f"camera key(s) {unknown} are not inputs of this {config.type} policy; its image "
                f"inputs are {sorted(image_features)} (map them with policy.camera_keys)")
        # Each task camera feeds the key it is mapped to (default observation.images.<name>);
        # cameras the policy does not take are not subscribed.
        mapping = {c: explicit.get(c, f"observation.images.{c}") for c in binding.camera_names}
        self.camera_keys = {c: k for c, k in mapping.items() if k in image_features}
        self.camera_names = list(self.camera_keys)
        unused = sorted(set(image_features) - set(self.camera_keys.values()))
        if unused:
            raise PolicyError(f"the {config.type} policy needs image input(s) {unused} that no "
                              f"configured camera provides (policy.camera_keys)")
        # (height, width) per LeRobot image key, from the policy's (C, H, W) feature shape.
        self.image_sizes = {key: (int(f.shape[-2]), int(f.shape[-1]))
                            for key, f in image_features.items()}
        state = config.robot_state_feature
        action = config.action_feature
        self.action_dim = int(action.shape[0]) if action is not None else 0
        if state is not None and int(state.shape[0]) != len(self.joint_names):
            raise PolicyError(f"the {config.type} policy takes a state of {state.shape[0]} "
                              f"values; the robot has {len(self.joint_names)} joints")
        self.uses_state = state is not None
        self.history_length = int(getattr(config, "n_obs_steps", 1) or 1)
        self.history: deque[dict[str, torch.Tensor]] = deque(maxlen=self.history_length)
        # Chunk length = what predict_action_chunk returns; measured once, not guessed.
        self.chunk_horizon = int(getattr(config, "chunk_size", 0)
                                 or getattr(config, "n_action_steps", 0) or 1)
        if config.type == "diffusion":
            self.chunk_horizon = int(config.n_action_steps)

    @classmethod
    def load(cls, directory: Path, binding: LeRobotBinding, *, device: str = "cpu"
             ) -> LeRobotChunkPolicy:
        """from_pretrained + the saved processors; PolicyError naming the directory."""
        try:
            from lerobot.configs.policies import PreTrainedConfig
            from lerobot.policies.factory import get_policy_class, make_pre_post_processors

            config = PreTrainedConfig.from_pretrained(str(directory))
            config.device = device
            policy = get_policy_class(config.type).from_pretrained(str(directory), config=config)
            policy.to(device)
            policy.eval()
            pre, post = make_pre_post_processors(
                config, pretrained_path=str(directory),
                preprocessor_overrides={"device_processor": {"device": device}})
        except PolicyError:
            raise
        except Exception as exc:  # noqa: BLE001 - LeRobot raises many types; report them all
            raise PolicyError(f"LeRobot checkpoint {directory}: cannot load "
                              f"({type(exc).__name__}: {exc})") from None
        version = f"lerobot-{config.type}-{checkpoint_sha256(directory)[:12]}"
        return cls(policy, pre, post, binding, version=version, device=device)

    def reset(self) -> None:
        self.history.clear()
        self.policy.reset()

    def frame(self, observation: Observation) -> dict[str, torch.Tensor]:
        """One observation as LeRobot inputs: float images (C, H, W) in [0, 1], state (D,)."""
        inputs: dict[str, torch.Tensor] = {}
        for camera, key in self.camera_keys.items():
            image = observation.images.get(camera)
            if image is None:
                raise PolicyError(f"observation lacks camera {camera!r}")
            height, width = self.image_sizes[key]
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            inputs[key] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
            inputs[key] /= 255.0
        if self.uses_state:
            state = np.asarray(observation.state, dtype=np.float32)
            if state.shape != (len(self.joint_names),):
                raise PolicyError(f"state has shape {state.shape}, expected "
                                  f"({len(self.joint_names)},)")
            inputs[STATE_KEY] = torch.from_numpy(state)
        return inputs

    def batch(self, observation: Observation) -> dict[str, Any]:
        """The preprocessed batch, with an observation history where the policy wants one."""
        raw: dict[str, Any] = dict(self.frame(observation))
        raw["task"] = observation.task or self.task
        current = dict(self.preprocessor(raw))   # normalised, batched (1, ...)
        if self.history_length == 1:
            return current
        tensors = {k: v for k, v in current.items()
                   if isinstance(v, torch.Tensor) and k.startswith("observation.")}
        if not self.history:
            self.history.extend([tensors] * self.history_length)
        else:
            self.history.append(tensors)
        # (1, ...) per step -> (1, n_obs_steps, ...), oldest first.
        current.update({key: torch.stack([h[key] for h in self.history], dim=1)
                        for key in tensors})
        return current

    @torch.no_grad()
    def predict_chunk(self, observation: Observation) -> np.ndarray:
        chunk = self.policy.predict_action_chunk(self.batch(observation))
        actions = self.postprocessor(chunk)
        array = actions.detach().cpu().numpy().astype(np.float32)
        return array.reshape(array.shape[-2], array.shape[-1])

    def sample_chunks(self, observation: Observation, count: int) -> np.ndarray:
        return np.stack([self.predict_chunk(observation) for _ in range(count)])
