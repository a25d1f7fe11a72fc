"""Bags -> a LeRobot v3 dataset through the LeRobotDataset API (no ROS; lerobot imported here).

One LeRobot episode per bag episode, one frame per control-grid row (io/bag_episodes states
the resampling rule). Per frame: ``observation.images.<camera>``, ``observation.state``,
``action`` (the executed command), ``task`` (the instruction text), and the RL labels
``intervention`` (a human commanded the row), ``source`` (demo / intervention / online /
historical), ``policy_version`` ("" for human rows), ``reward`` and ``done`` (True on the
last row of an episode that ended in success or failure). Frame counts are checked against
rows, per episode and for the whole dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aloe_ros.config import TaskFile
from aloe_ros.io.bag_episodes import read_episodes
from aloe_ros.io.bag_reader import Bag, BagError
from aloe_ros.io.episodes import Episode
from aloe_ros.io.transitions import step_source

__all__ = ["ExportError", "ExportReport", "export_lerobot", "lerobot_features"]

log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """The bags cannot be exported as one dataset; the message says which and why."""


@dataclass
class ExportReport:
    root: Path
    repo_id: str
    episodes: int = 0
    frames: int = 0
    skipped_episodes: int = 0
    per_bag: dict[str, int] = field(default_factory=dict)


def lerobot_features(joint_names: list[str], image_shapes: dict[str, tuple[int, int]],
                     *, use_videos: bool) -> dict[str, dict[str, Any]]:
    """The LeRobot feature spec of an exported dataset."""
    dim = len(joint_names)
    features: dict[str, dict[str, Any]] = {
        f"observation.images.{name}": {
            "dtype": "video" if use_videos else "image", "shape": (h, w, 3),
            "names": ["height", "width", "channels"]}
        for name, (h, w) in image_shapes.items()}
    features.update({
        "observation.state": {"dtype": "float32", "shape": (dim,), "names": list(joint_names)},
        "action": {"dtype": "float32", "shape": (dim,), "names": list(joint_names)},
        "intervention": {"dtype": "bool", "shape": (1,), "names": None},
        "source": {"dtype": "string", "shape": (1,), "names": None},
        "policy_version": {"dtype": "string", "shape": (1,), "names": None},
        "reward": {"dtype": "float32", "shape": (1,), "names": None},
        "done": {"dtype": "bool", "shape": (1,), "names": None},
    })
    return features


def _fps(rate: float) -> int:
    fps = round(rate)
    if abs(fps - rate) > 1e-6:
        log.warning("control rate %.3f Hz is not an integer; LeRobot stores fps=%d", rate, fps)
    return fps


def export_lerobot(bags: Sequence[Path | str], root: Path | str, repo_id: str, *,
                   config: TaskFile | None = None, use_videos: bool = False,
                   resize: tuple[int, int] | None = None, current_version: str | None = None,
                   robot_type: str = "aloe_bimanual") -> ExportReport:
    """Write every episode of ``bags`` into a new LeRobot dataset at ``root``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root).expanduser()
    if root.exists() and any(root.iterdir()):
        raise ExportError(f"{root} exists and is not empty; choose a new directory")
    if root.exists():
        root.rmdir()  # LeRobotDataset.create wants to make the directory itself
    report = ExportReport(root, repo_id)
    dataset: Any = None
    signature: tuple[Any, ...] | None = None
    for bag_path in bags:
        with Bag(bag_path) as bag:
            task_config = config or bag.task_config()
            if task_config is None:
                raise ExportError(f"{bag.path}: no task config recorded; pass --config")
            episodes = read_episodes(bag, task_config, resize=resize)
        report.per_bag[str(bag_path)] = 0
        for episode in episodes:
            if len(episode) == 0:
                report.skipped_episodes += 1
                continue
            shapes = {name: (int(f.shape[1]), int(f.shape[2]))
                      for name, f in episode.images.items()}
            this = (tuple(episode.joint_names), tuple(sorted(shapes.items())),
                    _fps(episode.control_rate_hz))
            if dataset is None:
                signature = this
                dataset = LeRobotDataset.create(
                    repo_id, fps=this[2], root=root, robot_type=robot_type,
                    features=lerobot_features(episode.joint_names, shapes,
                                              use_videos=use_videos),
                    use_videos=use_videos)
            elif this != signature:
                raise ExportError(f"{bag_path}: joints, cameras or rate differ from the first "
                                  f"bag ({this} vs {signature}); export them separately")
            _add_episode(dataset, episode, current_version)
            report.episodes += 1
            report.frames += len(episode)
            report.per_bag[str(bag_path)] += 1
    if dataset is None:
        raise ExportError("no episode with data in " + ", ".join(str(b) for b in bags))
    dataset.finalize()
    if int(dataset.meta.total_frames) != report.frames:
        raise ExportError(f"{root}: dataset holds {dataset.meta.total_frames} frames, "
                          f"{report.frames} rows were exported")
    return report


def _add_episode(dataset: Any, episode: Episode, current_version: str | None) -> None:
    """One bag episode -> one LeRobot episode; frames are checked against rows."""
    rows = len(episode)
    for name, frames in episode.images.items():
        if len(frames) != rows:
            raise BagError(f"episode {episode.episode_id}: camera {name} has {len(frames)} "
                           f"frames for {rows} rows")
    last_done = episode.done
    for t in range(rows):
        frame: dict[str, Any] = {
            f"observation.images.{name}": frames[t] for name, frames in episode.images.items()}
        frame.update({
            "observation.state": np.asarray(episode.states[t], np.float32),
            "action": np.asarray(episode.actions[t], np.float32),
            "intervention": np.array([bool(episode.human[t])]),
            "source": step_source(episode, t, current_version),
            "policy_version": episode.policy_versions[t],
            "reward": np.array([episode.rewards[t]], np.float32),
            "done": np.array([bool(last_done and t == rows - 1)]),
            "task": episode.task,
        })
        dataset.add_frame(frame)
    dataset.save_episode()
