"""Build the trainer and replay that ``learning.method`` selects, from the task config (no ROS)."""

from __future__ import annotations

import torch

from aloe_ros.config import TaskFile
from aloe_ros.learning.aloe_trainer import AloeTrainer
from aloe_ros.learning.baselines import AwrMcTrainer, DaggerTrainer
from aloe_ros.learning.critic import CriticEnsemble, ValueNetwork
from aloe_ros.learning.replay import ChunkReplay, ReplaySpec
from aloe_ros.learning.trainer_base import GradientSync, Trainer
from aloe_ros.policies.base import TrainableChunkPolicy
from aloe_ros.policies.checkpoint import apply_inference_settings

__all__ = ["METHODS", "build_critic", "build_replay", "build_trainer", "replay_spec"]

METHODS = ("aloe", "dagger", "awr_mc", "td1")


def replay_spec(config: TaskFile) -> ReplaySpec:
    """Critic chunks are the executed part of a policy chunk; 1-step TD uses one-step chunks."""
    critic_chunk = 1 if config.learning.method == "td1" else config.policy.execute_horizon
    return ReplaySpec(critic_chunk=critic_chunk, actor_horizon=config.policy.chunk_horizon,
                      gamma=config.learning.gamma, stride=config.learning.transition_stride,
                      takeover_penalty=config.learning.takeover_penalty)


def build_replay(config: TaskFile) -> ChunkReplay:
    return ChunkReplay(replay_spec(config), config.learning.source_ratios,
                       capacity=config.learning.replay_capacity)


def build_critic(config: TaskFile, *, ensemble_size: int | None = None) -> CriticEnsemble:
    """The critic ensemble sized from config; actions normalised by the joint limits."""
    low = torch.tensor(config.robot.position_lower)
    high = torch.tensor(config.robot.position_upper)
    torch.manual_seed(config.learning.seed)
    return CriticEnsemble(
        [c.name for c in config.cameras], config.robot.action_dim, config.robot.action_dim,
        replay_spec(config).critic_chunk,
        ensemble_size=ensemble_size or config.learning.ensemble_size,
        width=config.learning.critic_width, image_size=config.learning.critic_image_size,
        action_center=(low + high) / 2, action_scale=(high - low) / 2)


def build_trainer(config: TaskFile, actor: TrainableChunkPolicy, *,
                  device: str | torch.device | None = None,
                  gradient_sync: GradientSync | None = None) -> Trainer:
    """The trainer of ``learning.method``: aloe | td1 (chunk critic) | dagger | awr_mc."""
    learning = config.learning
    device = device or learning.device
    method = learning.method
    # The critic's bootstrap chunks and V(o) samples must come from the policy as deployed
    # (policy.noise_scale / flow_steps), or ALOE values a different policy than the robot runs.
    apply_inference_settings(actor, flow_steps=config.policy.flow_steps,
                             noise_scale=config.policy.noise_scale)
    if method in ("aloe", "td1"):
        return AloeTrainer(actor, build_critic(config), learning, device=device,
                           gradient_sync=gradient_sync, method=method)
    if method == "dagger":
        return DaggerTrainer(actor, learning, device=device, gradient_sync=gradient_sync)
    if method == "awr_mc":
        torch.manual_seed(learning.seed)
        value_net = ValueNetwork([c.name for c in config.cameras], config.robot.action_dim,
                                 width=learning.critic_width,
                                 image_size=learning.critic_image_size)
        return AwrMcTrainer(actor, value_net, learning, device=device,
                            gradient_sync=gradient_sync)
    raise ValueError(f"unknown learning.method {method!r}; use one of {METHODS}")
