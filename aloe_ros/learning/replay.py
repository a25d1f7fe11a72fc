"""Replay of chunk transitions with source labels, per-source sampling, persisted to disk (no ROS).

Episodes (from bags, episode directories or the live topics) are cut into chunk transitions by
:func:`aloe_ros.io.transitions.episode_to_transitions`; each added episode becomes one immutable
*segment* holding only the frames the transitions reference (chunk starts and ends), so a
40 s episode at 30 Hz with 25-step chunks stores ~50 observations, not 1200.

Source labels follow DESIGN section 4: demo / intervention (who acted) and, for policy steps,
online (the current policy version) or historical (an older one). The policy-step label is
recomputed whenever :meth:`ChunkReplay.set_current_version` moves the current version, so
yesterday's online data becomes historical without rewriting anything.

On disk (``save`` / ``load``): ``index.json`` plus one ``segment_<serial>.npz`` per episode,
written once; the replay can always be rebuilt from the bags or episode directories instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from aloe_ros.io.episodes import HUMAN_SOURCES, SOURCES, Episode
from aloe_ros.io.transitions import episode_to_transitions, same_control_end, takeover_steps
from aloe_ros.learning.batch import TransitionBatch
from aloe_ros.policies.base import ObservationBatch

__all__ = ["ChunkReplay", "ReplayError", "ReplaySpec", "episode_returns",
           "monte_carlo_returns"]

log = logging.getLogger(__name__)
INDEX_VERSION = 1
# ReplaySpec fields a saved replay must share with the config it resumes under, and the
# YAML key each comes from (the stride may change: see ChunkReplay.adopt_spec).
SPEC_KEYS = {"critic_chunk": "policy.execute_horizon (1 with learning.method td1)",
             "actor_horizon": "policy.chunk_horizon", "gamma": "learning.gamma",
             "takeover_penalty": "learning.takeover_penalty"}


class ReplayError(ValueError):
    """Data that does not fit the replay (wrong cameras, action size) or an unreadable file."""


@dataclass(frozen=True)
class ReplaySpec:
    """How episodes are cut: critic chunk length, actor target length, discount."""

    critic_chunk: int      # executed steps per critic chunk (execute_horizon; 1 for 1-step TD)
    actor_horizon: int     # chunk_horizon of the actor's target chunks
    gamma: float
    stride: int = 0        # a transition every `stride` steps (0: at the chunk boundaries)
    # > 0: a policy run that ends in a takeover ends there, with this penalty (io/transitions.py)
    takeover_penalty: float = 0.0


def monte_carlo_returns(rewards: np.ndarray, gamma: float,
                        terminal: np.ndarray | None = None,
                        periods: np.ndarray | None = None) -> np.ndarray:
    """G_t = sum_{i >= t} gamma^(i - t) r_i, computed backwards (no bootstrap at truncation);
    a step flagged in ``terminal`` ends its return there (G_t = r_t). ``periods[t]`` is how
    many control periods lie between step t and t + 1 (1 unless a hole was skipped)."""
    returns = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if terminal is not None and terminal[t]:
            running = 0.0
        step_gamma = gamma if periods is None else gamma ** float(periods[t])
        running = float(rewards[t]) + step_gamma * running
        returns[t] = running
    return returns


def episode_returns(episode: Episode, gamma: float, takeover_penalty: float = 0.0) -> np.ndarray:
    """Monte-Carlo return of every step; with a takeover penalty, the policy's last step before
    each takeover earns -penalty and ends the policy's return (as its chunk transitions do).
    Across a hole in the recording the return is discounted by the time that passed."""
    rewards = np.asarray(episode.rewards, dtype=np.float32).copy()
    terminal = np.zeros(len(rewards), dtype=bool)
    if takeover_penalty > 0:
        last_policy_steps = takeover_steps(episode) - 1
        rewards[last_policy_steps] -= takeover_penalty
        terminal[last_policy_steps] = True
    periods = None
    if episode.hole_starts.size:
        periods = np.ones(len(rewards), dtype=np.float64)
        for hole in episode.hole_starts:
            periods[hole - 1] = episode.steps_between(int(hole) - 1)
    return monte_carlo_returns(rewards, gamma, terminal, periods)


@dataclass
class _Segment:
    serial: int
    episode_id: int
    task: str
    images: dict[str, np.ndarray]   # camera -> (F, h, w, 3) uint8, referenced frames only
    states: np.ndarray              # (F, D)
    obs_row: np.ndarray             # (N,) row of o_t in images/states
    next_obs_row: np.ndarray        # (N,) row of o_{t+k}
    start: np.ndarray               # (N,) step index t
    actions: np.ndarray             # (N, Hc, D)
    valid_steps: np.ndarray         # (N,)
    reward: np.ndarray              # (N,)
    discount: np.ndarray            # (N,)
    done: np.ndarray                # (N,) bool
    kind: np.ndarray                # (N,) str: demo | intervention | policy
    versions: np.ndarray            # (N,) str policy version ("" for humans)
    target_actions: np.ndarray      # (N, H, D)
    target_mask: np.ndarray         # (N, H) bool
    mc_return: np.ndarray           # (N,)
    success: np.ndarray             # (N,) bool: the episode ended in success

    def __len__(self) -> int:
        return len(self.start)

    @cached_property
    def assisted(self) -> bool:
        """An operator took over somewhere in this episode: its human steps are intervention
        transitions (chunks never straddle a change of control). Derived once, not stored."""
        return bool((self.kind == "intervention").any())

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"image_{name}": frames for name, frames in self.images.items()}
        for key in ("states", "obs_row", "next_obs_row", "start", "actions", "valid_steps",
                    "reward", "discount", "done", "kind", "versions", "target_actions",
                    "target_mask", "mc_return", "success"):
            out[key] = getattr(self, key)
        return out


def _segment_from_episode(episode: Episode, spec: ReplaySpec, serial: int) -> _Segment | None:
    transitions = episode_to_transitions(
        episode, chunk_length=spec.critic_chunk, execute_horizon=spec.critic_chunk,
        gamma=spec.gamma, current_version=None, stride=spec.stride,
        takeover_penalty=spec.takeover_penalty)
    if not transitions:
        return None
    steps = len(episode)
    starts = np.array([t.start for t in transitions], dtype=np.int64)
    ends = np.minimum(starts + np.array([t.valid_steps for t in transitions]), steps - 1)
    frame_steps = np.unique(np.concatenate([starts, ends]))
    row_of = {int(s): r for r, s in enumerate(frame_steps)}
    horizon = spec.actor_horizon
    targets = np.zeros((len(starts), horizon, episode.actions.shape[1]), dtype=np.float32)
    target_mask = np.zeros((len(starts), horizon), dtype=bool)
    for i, t in enumerate(starts):
        # The actor imitates who acted at t: the target stops where control changes hands
        # (takeover / handback), or an intervention's target would end in the failing
        # policy's actions after the handback.
        executed = episode.actions[t:same_control_end(episode, int(t), horizon)]
        targets[i, :len(executed)] = executed
        targets[i, len(executed):] = executed[-1]
        target_mask[i, :len(executed)] = True
    returns = episode_returns(episode, spec.gamma, spec.takeover_penalty)
    kind = np.array([t.source if t.source in HUMAN_SOURCES else "policy"
                     for t in transitions])
    return _Segment(
        serial=serial, episode_id=episode.episode_id, task=episode.task,
        images={name: np.ascontiguousarray(frames[frame_steps])
                for name, frames in episode.images.items()},
        states=np.asarray(episode.states[frame_steps], dtype=np.float32),
        obs_row=np.array([row_of[int(s)] for s in starts], dtype=np.int64),
        next_obs_row=np.array([row_of[int(s)] for s in ends], dtype=np.int64),
        start=starts, actions=np.stack([t.actions for t in transitions]).astype(np.float32),
        valid_steps=np.array([t.valid_steps for t in transitions], dtype=np.int64),
        reward=np.array([t.reward for t in transitions], dtype=np.float32),
        discount=np.array([t.discount for t in transitions], dtype=np.float32),
        done=np.array([t.done for t in transitions], dtype=bool),
        kind=kind, versions=np.array([t.policy_version for t in transitions]),
        target_actions=targets, target_mask=target_mask, mc_return=returns[starts],
        success=np.full(len(starts), episode.success is True),
    )


class ChunkReplay:
    """Chunk transitions of many episodes; ``sample`` draws batches by per-source ratios."""

    def __init__(self, spec: ReplaySpec, source_ratios: dict[str, float], *,
                 capacity: int = 0, current_version: str | None = None) -> None:
        self.spec = spec
        self.source_ratios = dict(source_ratios)
        self.capacity = capacity
        self.current_version = current_version
        self.segments: list[_Segment] = []
        self._next_serial = 0
        self._index: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._saved: set[int] = set()

    # ---- filling --------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    def add_episode(self, episode: Episode) -> int:
        """Cut ``episode`` into transitions and keep them; returns how many were added."""
        segment = _segment_from_episode(episode, self.spec, self._next_serial)
        if segment is None:
            return 0
        self._check_compatible(segment)
        self._next_serial += 1
        self.segments.append(segment)
        while self.capacity and len(self) > self.capacity and len(self.segments) > 1:
            dropped = self.segments.pop(0)
            log.info("replay full: evicted episode %d (%d transitions)", dropped.episode_id,
                     len(dropped))
        self._index = None
        return len(segment)

    def _check_compatible(self, segment: _Segment) -> None:
        if not self.segments:
            return
        first = self.segments[0]
        if set(first.images) != set(segment.images):
            raise ReplayError(f"episode {segment.episode_id} has cameras {sorted(segment.images)}"
                              f", replay has {sorted(first.images)}")
        for name, frames in first.images.items():
            if frames.shape[1:] != segment.images[name].shape[1:]:
                raise ReplayError(f"episode {segment.episode_id} camera {name!r} frames "
                                  f"{segment.images[name].shape[1:]}, replay has "
                                  f"{frames.shape[1:]}")
        if first.actions.shape[1:] != segment.actions.shape[1:]:
            raise ReplayError(f"episode {segment.episode_id} actions {segment.actions.shape[1:]}"
                              f", replay has {first.actions.shape[1:]}")

    def adopt_spec(self, wanted: ReplaySpec) -> None:
        """Cut new episodes by ``wanted``: the config's spec when a saved replay is resumed.

        Saved transitions stay as they were cut. A new stride only moves where new episodes'
        transitions start, and rows of either stride sample alike. Another critic chunk, actor
        horizon, gamma or takeover penalty would mix rows of other shapes, discounts or rewards,
        so those raise
        ReplayError naming the YAML keys (the saved data is left untouched).
        """
        if wanted == self.spec:
            return
        clashes = [f"{key}: saved {getattr(self.spec, field)}, config "
                   f"{getattr(wanted, field)}"
                   for field, key in SPEC_KEYS.items()
                   if getattr(self.spec, field) != getattr(wanted, field)]
        if clashes and self.segments:
            raise ReplayError("the saved replay was cut with other settings ("
                              + "; ".join(clashes) + "): restore them, or move the replay "
                              "directory away to start an empty one")
        if wanted.stride != self.spec.stride:
            log.info("replay: saved transitions keep stride %d, new episodes use stride %d",
                     self.spec.stride, wanted.stride)
        self.spec = wanted

    def set_current_version(self, version: str | None) -> None:
        """Policy steps of ``version`` are 'online' from now on, every other version historical."""
        if version != self.current_version:
            self.current_version = version
            self._index = None

    # ---- labels and sampling ------------------------------------------------------------
    def sources_of(self, segment: _Segment) -> np.ndarray:
        """Source label per transition of ``segment`` under the current version."""
        labels = segment.kind.astype(object).copy()
        policy = segment.kind == "policy"
        if self.current_version is None:
            labels[policy] = "online"
        else:
            online = segment.versions == self.current_version
            labels[policy & online] = "online"
            labels[policy & ~online] = "historical"
        return labels.astype(str)

    def _source_index(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._index is None:
            parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in SOURCES}
            for seg_i, segment in enumerate(self.segments):
                labels = self.sources_of(segment)
                for source in SOURCES:
                    rows = np.flatnonzero(labels == source)
                    if len(rows):
                        parts[source].append((np.full(len(rows), seg_i), rows))
            self._index = {
                s: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v]))
                for s, v in parts.items() if v}
        return self._index

    def counts_by_source(self) -> dict[str, int]:
        return {s: len(rows[0]) for s, rows in self._source_index().items()}

    def source_probabilities(self) -> dict[str, float]:
        """Configured ratios renormalised over the sources present (absent ones get nothing).

        A source with data but ratio 0 is never sampled; if every present source has ratio 0,
        sampling is uniform over transitions.
        """
        present = self.counts_by_source()
        weights = {s: self.source_ratios.get(s, 0.0) for s in present}
        total = sum(weights.values())
        if total <= 0:
            count = sum(present.values())
            return {s: n / count for s, n in present.items()}
        return {s: w / total for s, w in weights.items() if w > 0}

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """``batch_size`` transitions: a multinomial split over sources, uniform within each."""
        if len(self) == 0:
            raise ReplayError("cannot sample from an empty replay")
        index = self._source_index()
        probabilities = self.source_probabilities()
        names = list(probabilities)
        counts = rng.multinomial(batch_size, [probabilities[s] for s in names])
        picks: list[tuple[int, int, str]] = []
        for source, count in zip(names, counts):
            seg_ids, rows = index[source]
            chosen = rng.integers(0, len(rows), size=int(count))
            picks.extend((int(seg_ids[c]), int(rows[c]), source) for c in chosen)
        return self._gather(picks)

    def episode_batch(self, segment_index: int) -> TransitionBatch:
        """All transitions of one stored episode, in time order (for Q traces and stats)."""
        segment = self.segments[segment_index]
        labels = self.sources_of(segment)
        return self._gather([(segment_index, i, str(labels[i])) for i in range(len(segment))])

    def transitions_batch(self, episode: Episode) -> TransitionBatch | None:
        """The transitions of ``episode`` as one batch, without storing them (live stats)."""
        scratch = ChunkReplay(self.spec, self.source_ratios,
                              current_version=self.current_version)
        if scratch.add_episode(episode) == 0:
            return None
        return scratch.episode_batch(0)

    def _gather(self, picks: list[tuple[int, int, str]]) -> TransitionBatch:
        def stack(key: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(self.segments[s], key)[i]
                                              for s, i, _ in picks]))

        def observation(row_key: str) -> ObservationBatch:
            rows = [(self.segments[s], int(getattr(self.segments[s], row_key)[i]))
                    for s, i, _ in picks]
            cameras = list(self.segments[0].images)
            return ObservationBatch(
                images={c: torch.from_numpy(np.stack([seg.images[c][r] for seg, r in rows]))
                        for c in cameras},
                state=torch.from_numpy(np.stack([seg.states[r] for seg, r in rows])),
                task=[seg.task for seg, _ in rows])

        valid = stack("valid_steps")
        chunk = self.spec.critic_chunk
        return TransitionBatch(
            observation=observation("obs_row"), actions=stack("actions"),
            action_mask=(torch.arange(chunk)[None, :] < valid[:, None]).float(),
            reward=stack("reward"), discount=stack("discount"), done=stack("done").float(),
            next_observation=observation("next_obs_row"),
            target_actions=stack("target_actions"), target_mask=stack("target_mask").float(),
            mc_return=stack("mc_return"), success=stack("success").float(),
            assisted=torch.tensor([self.segments[s].assisted for s, _, _ in picks],
                                  dtype=torch.float32),
            source=[src for _, _, src in picks],
            episode_id=torch.tensor([self.segments[s].episode_id for s, _, _ in picks]),
            start=stack("start"),
        )

    # ---- persistence ----------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        """Write new segments and a fresh index.json (atomically); drop files of evicted ones."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for segment in self.segments:
            path = directory / f"segment_{segment.serial:07d}.npz"
            if segment.serial in self._saved and path.exists():
                continue
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as handle:
                np.savez(handle, **segment.arrays())  # type: ignore[arg-type]
            tmp.replace(path)
            self._saved.add(segment.serial)
        index = {
            "version": INDEX_VERSION,
            "spec": {"critic_chunk": self.spec.critic_chunk,
                     "actor_horizon": self.spec.actor_horizon, "gamma": self.spec.gamma,
                     "stride": self.spec.stride,
                     "takeover_penalty": self.spec.takeover_penalty},
            "current_version": self.current_version, "next_serial": self._next_serial,
            "segments": [{"serial": s.serial, "episode_id": s.episode_id, "task": s.task,
                          "cameras": list(s.images), "transitions": len(s)}
                         for s in self.segments],
        }
        tmp = directory / "index.json.tmp"
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(directory / "index.json")
        kept = {s.serial for s in self.segments}
        for path in directory.glob("segment_*.npz"):
            serial = int(path.stem.split("_")[1])
            if serial not in kept:
                path.unlink()
                self._saved.discard(serial)
        return directory

    @classmethod
    def load(cls, directory: Path | str, source_ratios: dict[str, float], *,
             capacity: int = 0) -> ChunkReplay:
        directory = Path(directory)
        try:
            index = json.loads((directory / "index.json").read_text())
            spec = ReplaySpec(**index["spec"])
            replay = cls(spec, source_ratios, capacity=capacity,
                         current_version=index["current_version"])
            replay._next_serial = int(index["next_serial"])
            for entry in index["segments"]:
                path = directory / f"segment_{entry['serial']:07d}.npz"
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in data.files}
                replay.segments.append(_Segment(
                    serial=int(entry["serial"]), episode_id=int(entry["episode_id"]),
                    task=str(entry["task"]),
                    images={c: arrays.pop(f"image_{c}") for c in entry["cameras"]}, **arrays))
                replay._saved.add(int(entry["serial"]))
        except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ReplayError(f"{directory}: not a readable replay ({exc})") from None
        return replay
