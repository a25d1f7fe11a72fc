"""The policy interface shared by inference, the learner and the baselines (no ROS).

Two levels:

* ``ChunkPolicy``: what the inference node needs. One observation in (images by camera name,
  joint state, task text), one chunk out, shape (chunk_horizon, action_dim), in the robot's
  joint order; ``sample_chunks`` draws several chunks for the same observation.
* ``TrainableChunkPolicy``: what ALOE's actor update and the critic's bootstrap need, batched in
  torch: sample chunks for a batch of observations from the *current* weights, and a per-sample
  flow-matching loss that takes sample weights; save/load as a versioned, hashed directory.

Batches are ``ObservationBatch``: images uint8 (B, H, W, 3) per camera, state float32 (B, D),
task texts; the policy owns its own normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # torch is imported only by code that trains or runs a torch policy
    import torch

__all__ = [
    "ChunkPolicy", "Observation", "ObservationBatch", "PolicyError", "TrainableChunkPolicy",
]


class PolicyError(RuntimeError):
    """A policy cannot be built, loaded or run on this input; the message says why."""


@dataclass
class Observation:
    """One observation: RGB uint8 images (H, W, 3) by camera name, joint positions, task text."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    task: str
    # ROS time (s) of the newest input, for staleness checks and logging.
    stamp: float = 0.0


@dataclass
class ObservationBatch:
    """B observations stacked for torch: images uint8 (B, H, W, 3), state float32 (B, D)."""

    images: dict[str, torch.Tensor]
    state: torch.Tensor
    task: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.state.shape[0])

    def to(self, device: str | torch.device) -> ObservationBatch:
        return ObservationBatch({k: v.to(device) for k, v in self.images.items()},
                                self.state.to(device), list(self.task))

    @staticmethod
    def stack(observations: list[Observation]) -> ObservationBatch:
        import torch

        if not observations:
            raise PolicyError("cannot stack an empty list of observations")
        cameras = list(observations[0].images)
        return ObservationBatch(
            images={c: torch.from_numpy(np.stack([o.images[c] for o in observations]))
                    for c in cameras},
            state=torch.from_numpy(np.stack([o.state for o in observations]).astype(np.float32)),
            task=[o.task for o in observations],
        )


@runtime_checkable
class ChunkPolicy(Protocol):
    """Inference-side policy."""

    chunk_horizon: int
    action_dim: int
    camera_names: list[str]
    joint_names: list[str]
    # Identifies the weights: "<name>@<step>" or similar; carried by every chunk and command.
    version: str

    def reset(self) -> None:
        """Forget any per-episode state (queues, caches)."""

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        """One chunk, float32 (chunk_horizon, action_dim)."""

    def sample_chunks(self, observation: Observation, count: int) -> np.ndarray:
        """``count`` chunks for the same observation, float32 (count, chunk_horizon, action_dim)."""


@runtime_checkable
class TrainableChunkPolicy(ChunkPolicy, Protocol):
    """Learner-side policy (torch)."""

    def parameters(self):  # type: ignore[no-untyped-def]  # -> Iterator[torch.nn.Parameter]
        ...

    def sample_actions(self, batch: ObservationBatch, count: int = 1) -> torch.Tensor:
        """Chunks from the current weights, (B, count, chunk_horizon, action_dim); no grad."""

    def flow_matching_loss(self, batch: ObservationBatch, actions: torch.Tensor,
                           weights: torch.Tensor | None = None,
                           action_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted flow-matching loss, a scalar.

        ``actions`` (B, chunk_horizon, action_dim) are the target chunks, ``weights`` (B,) are
        detached per-sample weights (None: all 1), ``action_mask`` (B, chunk_horizon) marks the
        valid steps of partial chunks (None: all valid).
        """

    def save(self, directory: Path) -> str:
        """Write weights (safetensors) and config to ``directory``; return the content sha256."""
