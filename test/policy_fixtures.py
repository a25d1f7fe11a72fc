"""Tiny policies for the policy and inference tests: built offline, saved like real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aloe_ros.config import TaskFile
from aloe_ros.policies.bc import new_builtin_policy
from aloe_ros.policies.builtin import BuiltinPolicy

TINY_BUILTIN = dict(image_size=(12, 16), cnn_channels=8, camera_features=8, text_buckets=64,
                    text_dim=8, hidden_dim=32, head_layers=2, flow_steps=2)


def tiny_builtin(config: TaskFile, **overrides: Any) -> BuiltinPolicy:
    """An untrained built-in policy for a task, small enough for fast tests."""
    settings = {**TINY_BUILTIN, **overrides}
    flow_steps = settings.pop("flow_steps")
    policy = new_builtin_policy(config, **settings)
    policy.flow_steps = policy.config.flow_steps = int(flow_steps)
    return policy


def save_tiny_lerobot(kind: str, directory: Path, *, joints: int, cameras: list[str],
                      image_size: tuple[int, int] = (32, 32), chunk: int = 20) -> Path:
    """Build a tiny LeRobot ACT or Diffusion policy offline and save_pretrained it."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import (
        get_policy_class,
        make_policy_config,
        make_pre_post_processors,
    )

    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (joints,))}
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (joints,))}

    def stats(shape: tuple[int, ...], mean: float, std: float) -> dict[str, torch.Tensor]:
        return {"mean": torch.full(shape, mean), "std": torch.full(shape, std),
                "min": torch.full(shape, mean - 2 * std), "max": torch.full(shape, mean + 2 * std)}

    dataset_stats = {"observation.state": stats((joints,), 0.0, 1.0),
                     "action": stats((joints,), 0.0, 1.0)}
    for camera in cameras:
        dataset_stats[f"observation.images.{camera}"] = stats((3, 1, 1), 0.5, 0.25)
    if kind == "act":
        settings: dict[str, Any] = dict(
            chunk_size=chunk, n_action_steps=chunk, dim_model=32, n_heads=2, dim_feedforward=64,
            n_encoder_layers=1, n_decoder_layers=1, use_vae=False,
            pretrained_backbone_weights=None)
    elif kind == "diffusion":
        settings = dict(horizon=16, n_action_steps=8, n_obs_steps=2, down_dims=(16, 32),
                        pretrained_backbone_weights=None, num_inference_steps=3,
                        crop_shape=None, diffusion_step_embed_dim=16,
                        spatial_softmax_num_keypoints=8)
        image_size = (64, 64)   # ResNet-18 needs more than 1x1 at its last stage
    else:
        raise ValueError(kind)
    for camera in cameras:
        inputs[f"observation.images.{camera}"] = PolicyFeature(FeatureType.VISUAL,
                                                               (3, *image_size))
    config = make_policy_config(kind, input_features=inputs, output_features=outputs,
                                device="cpu", **settings)
    torch.manual_seed(0)
    policy = get_policy_class(kind)(config)
    pre, post = make_pre_post_processors(config, dataset_stats=dataset_stats)
    policy.save_pretrained(directory)
    pre.save_pretrained(directory)
    post.save_pretrained(directory)
    return directory
