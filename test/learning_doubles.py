"""Test doubles for the learning tests: a tiny trainable chunk policy and synthetic episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from aloe_ros.io.episodes import Episode
from aloe_ros.policies.base import ObservationBatch


class ConstantPolicy(nn.Module):
    """Samples are always ``value`` (a known constant); the loss is a real weighted regression.

    ``sample_calls`` records every sample_actions call, so tests can prove who bootstraps.
    """

    def __init__(self, chunk_horizon: int = 4, action_dim: int = 2, value: float = 0.5,
                 cameras: tuple[str, ...] = ("top",)) -> None:
        super().__init__()
        self.chunk_horizon = chunk_horizon
        self.action_dim = action_dim
        self.camera_names = list(cameras)
        self.joint_names = [f"j{i}" for i in range(action_dim)]
        self.version = "const@0"
        self.value = value
        self.bias = nn.Parameter(torch.zeros(chunk_horizon, action_dim))
        self.sample_calls: list[int] = []
        self.last_weights: torch.Tensor | None = None

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation):  # type: ignore[no-untyped-def]
        return np.full((self.chunk_horizon, self.action_dim), self.value, np.float32)

    def sample_chunks(self, observation, count):  # type: ignore[no-untyped-def]
        return np.full((count, self.chunk_horizon, self.action_dim), self.value, np.float32)

    def sample_actions(self, batch: ObservationBatch, count: int = 1) -> torch.Tensor:
        self.sample_calls.append(count)
        return torch.full((len(batch), count, self.chunk_horizon, self.action_dim), self.value)

    def flow_matching_loss(self, batch, actions, weights=None, action_mask=None):  # type: ignore[no-untyped-def]
        error = ((self.bias[None] - actions) ** 2).mean(dim=2)
        if action_mask is not None:
            error = (error * action_mask).sum(1) / action_mask.sum(1).clamp(min=1)
        else:
            error = error.mean(1)
        if weights is None:
            return error.mean()
        self.last_weights = weights.detach().clone()
        return (weights * error).sum() / weights.sum().clamp(min=1e-8)

    def save(self, directory: Path, *, version: str | None = None, extra=None) -> str:  # type: ignore[no-untyped-def]
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if version is not None:
            self.version = version
        torch.save({"bias": self.bias.detach(), "version": self.version},
                   directory / "const_policy.pt")
        return "0" * 64


def load_constant_policy(directory: Path) -> ConstantPolicy:
    state = torch.load(Path(directory) / "const_policy.pt", weights_only=True)
    policy = ConstantPolicy(chunk_horizon=state["bias"].shape[0],
                            action_dim=state["bias"].shape[1])
    with torch.no_grad():
        policy.bias.copy_(state["bias"])
    policy.version = state["version"]
    return policy


def make_episode(steps: int = 10, *, episode_id: int = 0, success: bool | None = True,
                 human: list[bool] | None = None, versions: list[str] | None = None,
                 source: str = "online", action_dim: int = 2, image: int = 8,
                 cameras: tuple[str, ...] = ("top",)) -> Episode:
    """A synthetic episode: action[t] = t + 0.5 (per joint), reward 1 at the last step."""
    rng = np.random.default_rng(episode_id)
    human_arr = np.array(human if human is not None else [False] * steps)
    rewards = np.zeros(steps, np.float32)
    if success:
        rewards[-1] = 1.0
    return Episode(
        task="test task", joint_names=[f"j{i}" for i in range(action_dim)],
        control_rate_hz=10.0, timestamps=np.arange(steps) * 0.1,
        images={c: rng.integers(0, 255, (steps, image, image, 3), dtype=np.uint8)
                for c in cameras},
        states=np.tile(np.arange(steps, dtype=np.float32)[:, None], (1, action_dim)),
        actions=np.tile(np.arange(steps, dtype=np.float32)[:, None] + 0.5, (1, action_dim)),
        human=human_arr,
        policy_versions=versions if versions is not None else
        ["" if h else "v1" for h in human_arr],
        rewards=rewards, episode_id=episode_id, source=source, success=success)
