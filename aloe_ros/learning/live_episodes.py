"""Episodes assembled incrementally from the live topics, for the online learner (no ROS).

The node converts messages to numpy and calls the ``on_*`` methods; completed episodes come
back from :meth:`LiveEpisodeBuilder.on_episode_event`. The rules are those of the bag reader
(:mod:`aloe_ros.io.bag_episodes`), applied as data arrives:

* an episode runs from EpisodeEvent START to SUCCESS / FAILURE / ABORT (its outcome) or the next
  START / RESET (truncated, no outcome); without a START it starts at the first command;
* one row per executed command (``topics.command``: the mux output, already at the control
  rate); its observation is the newest joint state and the newest frame of every camera
  received before the command (no look-ahead); rows before every input has arrived are
  dropped and counted;
* a human holds control between InterventionEvent TAKEOVER and HANDBACK (and during an
  e-stop); a policy row carries the version of the newest ActionChunk;
* the reward is the outcome event's reward on the last row; an episode commanded only by a
  human, with no chunk, is a demo.

Frames are downsized once on arrival (``image_size``) and shared between rows by reference,
so an episode costs one frame per camera frame received, not per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from aloe_ros.io.episodes import HOLE_STARTS, Episode

__all__ = ["LiveEpisodeBuilder", "slice_episode"]

log = logging.getLogger(__name__)

START, SUCCESS, FAILURE, ABORT, RESET = 0, 1, 2, 3, 4
TAKEOVER, HANDBACK, ESTOP, RELEASE_ESTOP = 0, 1, 2, 3


@dataclass
class _Rows:
    episode_id: int
    timestamps: list[float] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    frames: dict[str, list[np.ndarray]] = field(default_factory=dict)
    human: list[bool] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    chunks_seen: int = 0


class LiveEpisodeBuilder:
    def __init__(self, task: str, joint_names: list[str], camera_names: list[str],
                 control_rate_hz: float, *, image_size: tuple[int, int] | None = None,
                 max_steps: int = 100000) -> None:
        self.task = task
        self.joint_names = list(joint_names)
        self.camera_names = list(camera_names)
        self.control_rate_hz = control_rate_hz
        self.image_size = image_size
        self.max_steps = max_steps
        self.state: np.ndarray | None = None
        self.frames: dict[str, np.ndarray] = {}
        self.human = False
        self.human_before_estop = False
        self.version = ""
        self.rows: _Rows | None = None
        self.next_episode_id = 0
        self.dropped_rows = 0

    # ---- inputs ---------------------------------------------------------------------------
    def on_joint_state(self, positions: np.ndarray) -> None:
        self.state = np.asarray(positions, dtype=np.float32)

    def on_image(self, camera: str, frame: np.ndarray) -> None:
        if camera not in self.camera_names:
            return
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if self.image_size is not None and frame.shape[:2] != self.image_size:
            height, width = self.image_size
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        self.frames[camera] = frame

    def on_chunk(self, version: str) -> None:
        self.version = version
        if self.rows is not None:
            self.rows.chunks_seen += 1

    def on_intervention(self, kind: int) -> None:
        if kind == TAKEOVER:
            self.human = True
        elif kind == HANDBACK:
            self.human = False
        elif kind == ESTOP:
            self.human_before_estop, self.human = self.human, True
        elif kind == RELEASE_ESTOP:
            self.human = self.human_before_estop

    def on_command(self, stamp: float, action: np.ndarray) -> None:
        """One executed command = one row (see module docstring)."""
        if self.rows is None:
            self.rows = self._open(None)
        if self.state is None or any(c not in self.frames for c in self.camera_names):
            self.dropped_rows += 1
            return
        rows = self.rows
        if len(rows.timestamps) >= self.max_steps:
            self.dropped_rows += 1
            return
        rows.timestamps.append(stamp)
        rows.states.append(self.state)
        rows.actions.append(np.asarray(action, dtype=np.float32))
        for camera in self.camera_names:
            rows.frames.setdefault(camera, []).append(self.frames[camera])
        rows.human.append(self.human)
        rows.versions.append("" if self.human else self.version)

    def on_episode_event(self, kind: int, reward: float = 0.0, reason: str = "",
                         episode_id: int | None = None) -> Episode | None:
        """START / outcome / RESET; returns the episode that this event completes, if any."""
        finished: Episode | None = None
        if kind == START:
            if self.rows is not None:
                finished = self._close(None, 0.0, "")
            self.rows = self._open(episode_id)
        elif kind in (SUCCESS, FAILURE, ABORT):
            if self.rows is None:
                return None
            outcome = None if kind == ABORT else kind == SUCCESS
            finished = self._close(outcome, reward,
                                   reason if kind != ABORT else f"abort: {reason}")
        elif kind == RESET and self.rows is not None:
            finished = self._close(None, 0.0, "")
        return finished

    # ---- episodes -------------------------------------------------------------------------
    def _open(self, episode_id: int | None) -> _Rows:
        if episode_id is None:
            episode_id = self.next_episode_id
        self.next_episode_id = max(self.next_episode_id, episode_id) + 1
        return _Rows(episode_id)

    def snapshot(self, from_step: int = 0) -> Episode | None:
        """Rows ``from_step`` on of the episode in progress (truncated: no outcome), or None.

        Live critic stats ask only for the rows after the chunks already reported, so a
        snapshot costs the new rows, not the whole episode.
        """
        rows = self.rows
        if rows is None or len(rows.timestamps) - from_step < 2:
            return None
        tail = _Rows(rows.episode_id, rows.timestamps[from_step:], rows.states[from_step:],
                     rows.actions[from_step:],
                     {c: f[from_step:] for c, f in rows.frames.items()},
                     rows.human[from_step:], rows.versions[from_step:], rows.chunks_seen)
        return self._episode(tail, None, 0.0, "in progress")

    @property
    def steps_in_progress(self) -> int:
        return 0 if self.rows is None else len(self.rows.timestamps)

    def _close(self, success: bool | None, reward: float, reason: str) -> Episode | None:
        rows, self.rows = self.rows, None
        if rows is None or len(rows.timestamps) < 2:
            return None
        return self._episode(rows, success, reward, reason)

    def _episode(self, rows: _Rows, success: bool | None, reward: float,
                 reason: str) -> Episode:
        steps = len(rows.timestamps)
        rewards = np.zeros(steps, np.float32)
        if success is not None:
            rewards[-1] = reward
        human = np.array(rows.human, dtype=bool)
        return Episode(
            task=self.task, joint_names=self.joint_names, control_rate_hz=self.control_rate_hz,
            timestamps=np.array(rows.timestamps, dtype=np.float64),
            images={c: np.stack(rows.frames[c]) for c in self.camera_names},
            states=np.stack(rows.states), actions=np.stack(rows.actions), human=human,
            policy_versions=list(rows.versions), rewards=rewards, episode_id=rows.episode_id,
            source="demo" if human.all() and rows.chunks_seen == 0 else "online",
            success=success, outcome_reason=reason,
            metadata={"rows_dropped_no_observation": str(self.dropped_rows), "live": "1"})


def slice_episode(episode: Episode, start: int, stop: int | None = None) -> Episode:
    """Steps [start, stop) of an episode; the outcome is kept only when the end is kept.

    ``metadata['step_offset']`` records ``start`` so chunk stats keep episode step indices.
    """
    keep_outcome = stop is None or stop >= len(episode)
    window = slice(start, stop)
    rewards = np.array(episode.rewards[window], dtype=np.float32)
    if not keep_outcome:
        rewards[:] = 0.0
    offset = int(episode.metadata.get("step_offset", "0")) + start
    return Episode(
        task=episode.task, joint_names=episode.joint_names,
        control_rate_hz=episode.control_rate_hz, timestamps=episode.timestamps[window],
        images={c: f[window] for c, f in episode.images.items()},
        states=episode.states[window], actions=episode.actions[window],
        human=episode.human[window], policy_versions=episode.policy_versions[window],
        rewards=rewards, episode_id=episode.episode_id, source=episode.source,
        success=episode.success if keep_outcome else None,
        outcome_reason=episode.outcome_reason if keep_outcome else "",
        metadata=_sliced_metadata(episode, start, stop, offset))


def _sliced_metadata(episode: Episode, start: int, stop: int | None, offset: int
                     ) -> dict[str, str]:
    """The episode's metadata, with its holes (if any) moved to the slice's step numbers."""
    metadata = {**episode.metadata, "step_offset": str(offset)}
    end = len(episode) if stop is None else min(stop, len(episode))
    inside = [int(h) - start for h in episode.hole_starts if start < h < end]
    if inside:
        metadata[HOLE_STARTS] = ",".join(map(str, inside))
    else:
        metadata.pop(HOLE_STARTS, None)
    return metadata
