"""A picture of one recorded episode (no ROS): frames along time, joint traces, the critic's view.

Rows of the figure: camera frames at evenly spaced moments (each labelled with its time and who
was in control); measured joint positions with human-control spans shaded; the critic's
aggregated Q and advantage per executed chunk (CriticStats recorded in the bag), when present.
The title says the task, the episode, its outcome and the policy versions that acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aloe_ros.io.episodes import Episode

__all__ = ["CriticPoint", "human_spans", "plot_episode", "write_episode_video"]


@dataclass(frozen=True)
class CriticPoint:
    """One CriticStats message, time relative to the episode start."""

    time_s: float
    q: float
    q_std: float
    value: float
    advantage: float


def human_spans(episode: Episode) -> list[tuple[float, float]]:
    """(start, end) times in seconds of the steps a human commanded."""
    times = episode.timestamps - episode.timestamps[0]
    dt = 1.0 / episode.control_rate_hz
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for t, human in zip(times, episode.human):
        if human and start is None:
            start = float(t)
        elif not human and start is not None:
            spans.append((start, float(t)))
            start = None
    if start is not None:
        spans.append((start, float(times[-1]) + dt))
    return spans


def _outcome(episode: Episode) -> str:
    if episode.success is None:
        return "no outcome (truncated)"
    word = "success" if episode.success else "failure"
    return f"{word} ({episode.outcome_reason})" if episode.outcome_reason else word


def plot_episode(episode: Episode, critic: list[CriticPoint], path: Path | str, *,
                 frames: int = 6, camera: str | None = None) -> Path:
    """Write the episode figure as PNG (or any format matplotlib infers from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    times = episode.timestamps - episode.timestamps[0]
    cameras = list(episode.images)
    camera = camera or ("top" if "top" in cameras else cameras[0] if cameras else None)
    spans = human_spans(episode)
    rows = (1 if camera else 0) + 1 + (1 if critic else 0)
    fig = plt.figure(figsize=(12, 2.6 * rows + 0.6), dpi=110)
    grid = fig.add_gridspec(rows, frames)
    row = 0
    if camera:
        picks = np.linspace(0, len(episode) - 1, frames).round().astype(int)
        for column, step in enumerate(picks):
            ax = fig.add_subplot(grid[row, column])
            ax.imshow(episode.images[camera][step])
            who = "human" if episode.human[step] else "policy"
            ax.set_title(f"{times[step]:.1f} s · {who}", fontsize=8,
                         color="tab:red" if episode.human[step] else "black")
            ax.axis("off")
        row += 1

    def shade(ax: plt.Axes) -> None:
        for index, (start, end) in enumerate(spans):
            ax.axvspan(start, end, color="tab:red", alpha=0.12,
                       label="human control" if index == 0 else None)

    joints_ax = fig.add_subplot(grid[row, :])
    for j, name in enumerate(episode.joint_names):
        joints_ax.plot(times, episode.states[:, j], lw=0.9, label=name)
    shade(joints_ax)
    joints_ax.set_ylabel("joint position")
    joints_ax.set_xlim(0, max(float(times[-1]), 1e-3))
    joints_ax.legend(fontsize=6, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    row += 1
    if critic:
        critic_ax = fig.add_subplot(grid[row, :], sharex=joints_ax)
        t = [p.time_s for p in critic]
        q = np.array([p.q for p in critic])
        spread = np.array([p.q_std for p in critic])
        critic_ax.step(t, q, where="post", label="Q (aggregated)")
        critic_ax.fill_between(t, q - spread, q + spread, step="post", alpha=0.2,
                               label="ensemble std")
        critic_ax.step(t, [p.advantage for p in critic], where="post", label="advantage")
        critic_ax.axhline(0.0, color="grey", lw=0.5)
        shade(critic_ax)
        critic_ax.set_ylabel("critic")
        critic_ax.set_xlabel("time in episode (s)")
        critic_ax.legend(fontsize=7, loc="upper left")
    else:
        joints_ax.set_xlabel("time in episode (s)")
    versions = sorted({v for v in episode.policy_versions if v}) or ["human only"]
    fig.suptitle(f"{episode.task} · episode {episode.episode_id} · {_outcome(episode)} · "
                 f"{len(episode)} steps at {episode.control_rate_hz:g} Hz · "
                 f"{100 * float(np.mean(episode.human)):.0f} % human · policy "
                 f"{', '.join(versions)[:60]}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_episode_video(episode: Episode, path: Path | str, *, camera: str | None = None
                        ) -> Path:
    """An MP4 of one camera at the control rate, with time and control source written on it."""
    import cv2

    path = Path(path)
    camera = camera or ("top" if "top" in episode.images else next(iter(episode.images), None))
    if camera is None:
        raise ValueError("the episode has no camera frames to write")
    frames = episode.images[camera]
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),  # type: ignore[attr-defined]
                             episode.control_rate_hz, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    times = episode.timestamps - episode.timestamps[0]
    try:
        for step in range(len(episode)):
            frame = cv2.cvtColor(frames[step], cv2.COLOR_RGB2BGR)
            who = "HUMAN" if episode.human[step] else "policy"
            cv2.putText(frame, f"{times[step]:5.2f} s {who}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45, (0, 0, 255) if episode.human[step] else (0, 0, 0), 1, cv2.LINE_AA)
            writer.write(frame)
    finally:
        writer.release()
    return path
