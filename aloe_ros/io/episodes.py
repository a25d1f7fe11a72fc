"""Episodes on a fixed control-rate grid: the common offline form of recorded data (no ROS).

Bags (io/bag_reader), scripted sim demonstrations and the LeRobot exporter all meet here: one
``Episode`` holds, per control step t, the camera frames, the measured joint state, the command
that was executed, who commanded it (policy or human) with the policy version, and the sparse
reward. Chunk transitions for the learner are cut from episodes (io/transitions).

On disk an episode is one ``.npz`` file (``Episode.save`` / ``Episode.load``); a directory of
them is an "episode directory", accepted wherever bags are (train-bc, train).

An episode is normally one unbroken stretch of control steps. One that was joined across two
bags (a recorder restarted mid-episode: ``join_split_episodes`` in io/bag_episodes) has a hole
where nothing was recorded; ``stretches`` says where, and nothing that needs consecutive steps
(a chunk, an imitation target) reaches across it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Episode", "EpisodeFormatError", "HOLE_STARTS", "SOURCES", "load_episode_dir"]

# Where the actions of a step came from; 'historical' = an older policy version than current.
SOURCES = ("demo", "intervention", "online", "historical")
# The sources a human acted in; the others are the policy's own chunks.
HUMAN_SOURCES = ("demo", "intervention")
FORMAT_VERSION = 1
# metadata key: comma-separated steps that follow a hole in the recording
HOLE_STARTS = "hole_starts"


class EpisodeFormatError(ValueError):
    """An episode file that cannot be read; the message names the file."""


@dataclass
class Episode:
    task: str
    joint_names: list[str]
    control_rate_hz: float
    # Per step t (T steps):
    timestamps: np.ndarray                 # (T,) float64, ROS time in seconds
    images: dict[str, np.ndarray]          # camera -> (T, H, W, 3) uint8, newest frame <= t
    states: np.ndarray                     # (T, D) float32 measured joint positions
    actions: np.ndarray                    # (T, D) float32 executed command
    human: np.ndarray                      # (T,) bool: a human commanded this step
    policy_versions: list[str]             # (T,) version that produced the step ("" = human)
    rewards: np.ndarray                    # (T,) float32 sparse reward from episode events
    # Whole episode:
    episode_id: int = 0
    source: str = "online"                 # demo for scripted/teleoperated demonstrations
    success: bool | None = None            # None: ended without an outcome (truncated)
    outcome_reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        steps = len(self.timestamps)
        checks = {"states": len(self.states), "actions": len(self.actions),
                  "human": len(self.human), "policy_versions": len(self.policy_versions),
                  "rewards": len(self.rewards)}
        checks.update({f"images[{k}]": len(v) for k, v in self.images.items()})
        wrong = {k: n for k, n in checks.items() if n != steps}
        if wrong:
            raise EpisodeFormatError(f"episode has {steps} timestamps but {wrong}")
        if self.source not in SOURCES:
            raise EpisodeFormatError(f"unknown source {self.source!r}; use one of {SOURCES}")
        _ = self.hole_starts  # a malformed metadata['hole_starts'] fails here, not mid-training

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def hole_starts(self) -> np.ndarray:
        """Steps that follow a hole, from ``metadata['hole_starts']`` (set where an episode is
        joined; never guessed from the timestamps, whose jitter on a live robot is no hole).
        Parsed on each use, not cached: ``Episode(**episode.__dict__)`` copies must work."""
        text = self.metadata.get(HOLE_STARTS, "")
        try:
            steps = np.array([int(v) for v in text.split(",") if v.strip()], dtype=np.int64)
        except ValueError:
            raise EpisodeFormatError(f"episode {self.episode_id}: metadata {HOLE_STARTS} "
                                     f"{text!r} is not a list of steps") from None
        if steps.size and (np.any(steps <= 0) or np.any(steps >= len(self))
                           or np.any(np.diff(steps) <= 0)):
            raise EpisodeFormatError(f"episode {self.episode_id}: metadata {HOLE_STARTS} "
                                     f"{text!r} must be increasing steps in 1..{len(self) - 1}")
        return steps

    def stretches(self) -> list[tuple[int, int]]:
        """(start, end) step ranges recorded without a hole: [(0, len)] for a whole episode."""
        bounds = [0, *self.hole_starts.tolist(), len(self)]
        return list(zip(bounds[:-1], bounds[1:]))

    def stretch_end(self, step: int) -> int:
        """End (exclusive) of the unbroken stretch that holds ``step``."""
        after = self.hole_starts[self.hole_starts > step]
        return int(after[0]) if after.size else len(self)

    def steps_between(self, step: int) -> int:
        """Control periods from ``step`` to the next step: 1, more across a hole."""
        if step + 1 >= len(self) or step + 1 not in self.hole_starts:
            return 1
        gap = float(self.timestamps[step + 1] - self.timestamps[step])
        return max(1, round(gap * self.control_rate_hz))

    @property
    def done(self) -> bool:
        """True when the episode ended in success or failure (not truncated)."""
        return self.success is not None

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format_version": FORMAT_VERSION, "task": self.task, "joint_names": self.joint_names,
            "control_rate_hz": self.control_rate_hz, "episode_id": self.episode_id,
            "source": self.source, "success": self.success,
            "outcome_reason": self.outcome_reason, "metadata": self.metadata,
            "cameras": list(self.images), "policy_versions": self.policy_versions,
        }
        arrays: dict[str, np.ndarray] = {
            f"image_{name}": frames for name, frames in self.images.items()}
        arrays.update(header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                      timestamps=self.timestamps, states=self.states, actions=self.actions,
                      human=self.human, rewards=self.rewards)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)  # never leave a half-written episode under the final name
        return path

    @classmethod
    def load(cls, path: Path | str) -> Episode:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if header.get("format_version") != FORMAT_VERSION:
                    raise EpisodeFormatError(
                        f"{path}: format version {header.get('format_version')}, "
                        f"expected {FORMAT_VERSION}")
                images = {name: data[f"image_{name}"] for name in header["cameras"]}
                return cls(
                    task=header["task"], joint_names=list(header["joint_names"]),
                    control_rate_hz=float(header["control_rate_hz"]),
                    timestamps=data["timestamps"], images=images,
                    states=data["states"], actions=data["actions"], human=data["human"],
                    policy_versions=list(header["policy_versions"]), rewards=data["rewards"],
                    episode_id=int(header["episode_id"]), source=header["source"],
                    success=header["success"], outcome_reason=header["outcome_reason"],
                    metadata=dict(header.get("metadata", {})),
                )
        except EpisodeFormatError:
            raise
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise EpisodeFormatError(f"{path}: not a readable episode file ({exc})") from None


def load_episode_dir(directory: Path | str) -> list[Episode]:
    """Every ``*.npz`` episode in a directory, in name order."""
    directory = Path(directory)
    files = sorted(directory.glob("*.npz"))
    if not files:
        raise EpisodeFormatError(f"{directory}: no episode files (*.npz)")
    return [Episode.load(f) for f in files]
