"""Behaviour cloning of the built-in policy on recorded episodes (no ROS).

Every control step t of every episode is one sample: observation o_t (frames downsampled once,
at load, to the policy's image size), target chunk a_t..a_{t+H-1} (past the end of the episode
the last action repeats: the robot holds). Training minimises the flow-matching loss of the
policy (the same one the ALOE actor update weights by advantage) with AdamW and a cosine
learning-rate schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from aloe_ros.config import TaskFile
from aloe_ros.io.episodes import Episode, EpisodeFormatError
from aloe_ros.policies.base import ObservationBatch, PolicyError
from aloe_ros.policies.builtin import BuiltinPolicy, BuiltinPolicyConfig

__all__ = ["BCDataset", "BCSettings", "load_episodes", "new_builtin_policy", "train_bc"]

log = logging.getLogger(__name__)


def new_builtin_policy(config: TaskFile, *, seed: int | None = None,
                       **overrides: object) -> BuiltinPolicy:
    """An untrained built-in policy for a task's joints, cameras and policy settings.

    ``seed``: its initial weights come from this seed (the global torch generator is left as
    it was); None draws them from the global generator. Commands pass their ``--seed``, or
    the same seed gives a different base policy on every run.
    """
    settings = BuiltinPolicyConfig(
        joint_names=list(config.robot.joint_names),
        camera_names=[c.name for c in config.cameras],
        chunk_horizon=config.policy.chunk_horizon, flow_steps=config.policy.flow_steps,
        **overrides)  # type: ignore[arg-type]
    if seed is None:
        return BuiltinPolicy(settings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BuiltinPolicy(settings)


def load_episodes(paths: Iterable[Path | str], config: TaskFile,
                  resize: tuple[int, int] | None = None) -> list[Episode]:
    """Episodes from episode directories, single .npz files and rosbag2 directories; an
    episode split across two of the bags by a recorder restart comes back as one."""
    episodes: list[Episode] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix == ".npz":
            files = [path]
        elif path.is_dir() and any(path.glob("*.npz")):
            files = sorted(path.glob("*.npz"))
        elif path.is_dir() and (path / "metadata.yaml").is_file():
            from aloe_ros.io.bag_episodes import read_episodes

            episodes.extend(read_episodes(path, config, resize=resize))
            continue
        else:
            raise EpisodeFormatError(f"{path}: not an episode file, episode directory or bag")
        # One file at a time, resized before the next is read: 100 full-size demos would
        # otherwise sit in memory together (~8 GB at 3 x 320x240) before any is downsampled.
        for file in files:
            episode = Episode.load(file)
            episodes.append(downsample_episode(episode, resize) if resize else episode)
    from aloe_ros.io.bag_episodes import join_split_episodes

    # A recorder restarted mid-episode left it in two bags: one episode again, with a hole.
    return join_split_episodes(episodes, max_gap_s=config.task.episode_timeout_s)


def downsample_episode(episode: Episode, size: tuple[int, int]) -> Episode:
    """Resize every frame to (height, width) with area averaging (keeps memory small)."""
    height, width = size
    for name, frames in episode.images.items():
        if frames.shape[1:3] != (height, width):
            episode.images[name] = np.stack(
                [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
    return episode


class BCDataset:
    """All steps of a list of episodes, indexable as (observation, chunk) batches."""

    def __init__(self, episodes: list[Episode], camera_names: list[str], chunk_horizon: int
                 ) -> None:
        if not episodes:
            raise PolicyError("no episodes to train on")
        for episode in episodes:
            missing = [c for c in camera_names if c not in episode.images]
            if missing:
                raise PolicyError(f"episode {episode.episode_id} has no frames of camera(s) "
                                  f"{missing}")
        self.camera_names = camera_names
        self.horizon = chunk_horizon
        self.images = {c: np.concatenate([e.images[c] for e in episodes]) for c in camera_names}
        self.states = np.concatenate([e.states for e in episodes]).astype(np.float32)
        self.tasks = [e.task for e in episodes for _ in range(len(e))]
        # Row r's chunk: actions[r + i] for i < H, clipped at the last row of its episode (of
        # its stretch, in an episode joined across a hole: no chunk skips unrecorded steps).
        self.actions = np.concatenate([e.actions for e in episodes]).astype(np.float32)
        ends = np.cumsum([len(e) for e in episodes])
        starts = ends - np.array([len(e) for e in episodes])
        self.last_row = np.concatenate([
            np.full(stretch_end - stretch_start, first + stretch_end - 1)
            for e, first in zip(episodes, starts) for stretch_start, stretch_end in e.stretches()])
        self.episode_start = np.concatenate([np.full(len(e), s) for e, s in zip(episodes, starts)])

    def __len__(self) -> int:
        return len(self.states)

    def chunks(self, rows: np.ndarray) -> np.ndarray:
        """Target chunks (B, H, D) for dataset rows."""
        index = np.minimum(rows[:, None] + np.arange(self.horizon)[None], self.last_row[rows, None])
        return self.actions[index]

    def all_chunks(self) -> np.ndarray:
        return self.chunks(np.arange(len(self)))

    def batch(self, rows: np.ndarray) -> tuple[ObservationBatch, torch.Tensor]:
        observations = ObservationBatch(
            images={c: torch.from_numpy(self.images[c][rows]) for c in self.camera_names},
            state=torch.from_numpy(self.states[rows]),
            task=[self.tasks[r] for r in rows])
        return observations, torch.from_numpy(self.chunks(rows))


@dataclass
class BCSettings:
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def train_bc(policy: BuiltinPolicy, dataset: BCDataset, settings: BCSettings,
             progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Fit normalisation to the data, then minimise the flow-matching loss; return the losses."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    policy.fit_normalization(dataset.states, dataset.all_chunks())
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps)
    losses: list[float] = []
    for step in range(settings.steps):
        rows = rng.integers(0, len(dataset), size=settings.batch_size)
        observations, chunks = dataset.batch(rows)
        loss = policy.flow_matching_loss(observations, chunks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, losses[-1])
    policy.eval()
    return losses
