"""The learner: replay + trainer + checkpoints + schedule, shared by the node and ``train``.

``Learner`` owns the data and the weights and is used from one thread at a time;
``LearnerWorker`` runs it in a background thread for the ROS node (callbacks only enqueue
episodes, so the node stays responsive while it trains). Schedules (``learning.schedule``):

* ``rounds`` (the paper's): collect ``episodes_per_round`` episodes, run ``updates_per_round``
  updates, write a checkpoint and announce it, repeat;
* ``continuous``: train whenever the replay holds ``min_replay_transitions``; checkpoint and
  announce every ``publish_every_updates`` updates (state alone every
  ``checkpoint_every_updates``, for resuming).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aloe_ros.config import TaskFile
from aloe_ros.io.episodes import Episode
from aloe_ros.learning.checkpoints import (
    ActorLoader,
    CheckpointInfo,
    latest_checkpoint,
    load_trainer_state,
    prune_checkpoints,
    write_checkpoint,
)
from aloe_ros.learning.factory import build_replay, build_trainer, replay_spec
from aloe_ros.learning.replay import ChunkReplay, ReplayError
from aloe_ros.learning.trainer_base import GradientSync, Trainer
from aloe_ros.policies.base import TrainableChunkPolicy

__all__ = ["ChunkStats", "Learner", "LearnerWorker"]

log = logging.getLogger(__name__)
KEEP_CHECKPOINTS = 5


@dataclass
class ChunkStats:
    """The critic's view of one executed chunk (what CriticStats carries)."""

    episode_id: int
    start: int
    stamp: float
    policy_version: str
    source: str
    q_mean: float
    q_std: float
    q_aggregated: float
    value: float
    advantage: float


class Learner:
    def __init__(self, config: TaskFile, trainer: Trainer, replay: ChunkReplay, *,
                 checkpoint_dir: Path | str, fresh_actor: bool = False) -> None:
        self.config = config
        self.trainer = trainer
        self.replay = replay
        self.checkpoint_dir = Path(checkpoint_dir)
        self.rng = np.random.default_rng(config.learning.seed + trainer.step)
        self.fresh_actor = fresh_actor
        self.episodes_since_round = 0
        self.last_metrics: dict[str, float] = {}
        self.prefix = f"{config.task.name}-{trainer.method}"

    @property
    def replay_dir(self) -> Path:
        return self.checkpoint_dir / "replay"

    @classmethod
    def create(cls, config: TaskFile, *, actor_loader: ActorLoader,
               new_actor: Callable[[], TrainableChunkPolicy] | None = None,
               checkpoint_dir: Path | str | None = None, resume: bool = True,
               device: str | None = None, gradient_sync: GradientSync | None = None
               ) -> Learner:
        """Resume from ``<checkpoint_dir>/latest.json`` when there is one, else start from
        ``policy.path`` (or ``new_actor()``, an untrained policy, when the path is empty)."""
        root = Path(checkpoint_dir or config.learning.checkpoint_dir)
        latest = latest_checkpoint(root) if resume else None
        fresh = False
        if latest is not None:
            actor = actor_loader(latest)
        elif config.policy.path:
            actor = actor_loader(Path(config.policy.path))
        elif new_actor is not None:
            actor, fresh = new_actor(), True
        else:
            raise ValueError("policy.path is empty and no new_actor factory was given")
        trainer = build_trainer(config, actor, device=device, gradient_sync=gradient_sync)
        replay = build_replay(config)
        if latest is not None:
            # The replay first: a changed chunk length or gamma is named by its YAML key
            # here, rather than surfacing as a tensor size mismatch in the critic's state.
            replay_dir = root / "replay"
            if (replay_dir / "index.json").is_file():
                replay = ChunkReplay.load(replay_dir, config.learning.source_ratios,
                                          capacity=config.learning.replay_capacity)
                try:
                    replay.adopt_spec(replay_spec(config))
                except ReplayError as exc:
                    raise ReplayError(f"{replay_dir}: {exc}") from None
            meta = load_trainer_state(latest, trainer, map_location=trainer_device(trainer))
            log.info("resumed %s at step %d from %s (%d transitions)", meta.get("method"),
                     trainer.step, latest, len(replay))
        else:
            replay.set_current_version(getattr(actor, "version", None))
        return cls(config, trainer, replay, checkpoint_dir=root, fresh_actor=fresh)

    # ---- data -----------------------------------------------------------------------------
    def add_episode(self, episode: Episode) -> int:
        """Keep an episode's transitions; ReplayError (logged by callers) if it does not fit."""
        added = self.replay.add_episode(episode)
        if added:
            self.episodes_since_round += 1
            # 'online' = the version the robot runs now: the newest one seen in the data.
            versions = [v for v in episode.policy_versions if v]
            if versions:
                self.replay.set_current_version(versions[-1])
        return added

    def ready(self) -> bool:
        return len(self.replay) >= max(1, self.config.learning.min_replay_transitions)

    def _fit_fresh_actor(self) -> None:
        """An untrained built-in actor gets its normalisation statistics from the replay."""
        fit = getattr(self.trainer.actor, "fit_normalization", None)
        if not self.fresh_actor or not callable(fit):
            return
        states = np.concatenate([s.states[s.obs_row] for s in self.replay.segments])
        chunks = np.concatenate([s.target_actions for s in self.replay.segments])
        fit(states, chunks)
        self.fresh_actor = False

    # ---- training -------------------------------------------------------------------------
    def train(self, updates: int, *, stop: threading.Event | None = None,
              progress: Callable[[int, dict[str, float]], None] | None = None
              ) -> dict[str, float]:
        """Run ``updates`` trainer updates on sampled batches; mean metrics of the run."""
        if len(self.replay) == 0:
            raise ReplayError("no transitions to train on")
        self._fit_fresh_actor()
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for i in range(updates):
            if stop is not None and stop.is_set():
                break
            batch = self.replay.sample(self.config.learning.batch_size, self.rng)
            stats = self.trainer.update(batch)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
            if progress is not None:
                progress(i, stats)
        self.last_metrics = {k: totals[k] / counts[k] for k in totals}
        return self.last_metrics

    def evaluate_episode(self, episode: Episode) -> list[ChunkStats]:
        """Q, ensemble std, V and advantage of every chunk of ``episode`` (not stored)."""
        batch = self.replay.transitions_batch(episode)
        if batch is None:
            return []
        values = self.trainer.evaluate(batch)
        assert batch.start is not None
        starts = batch.start.tolist()
        offset = int(episode.metadata.get("step_offset", "0"))
        return [ChunkStats(
            episode_id=episode.episode_id, start=start + offset,
            stamp=float(episode.timestamps[start]), policy_version=episode.policy_versions[start],
            source=batch.source[i], q_mean=float(values["q_mean"][i]),
            q_std=float(values["q_std"][i]), q_aggregated=float(values["q_aggregated"][i]),
            value=float(values["value"][i]), advantage=float(values["advantage"][i]))
            for i, start in enumerate(starts)]

    # ---- checkpoints ----------------------------------------------------------------------
    def checkpoint(self, *, directory: Path | None = None,
                   save_replay: bool = True) -> CheckpointInfo:
        """Write actor + learner state (+ the replay, unless ``save_replay`` is False) into a
        new checkpoint directory."""
        target = directory or self.checkpoint_dir / f"{self.prefix}-{self.trainer.step:08d}"
        if save_replay:
            self.replay.save(self.replay_dir)
        info = write_checkpoint(target, self.trainer, version_prefix=self.prefix,
                                metrics=self.last_metrics,
                                replay_dir=str(self.replay_dir) if save_replay else "",
                                update_latest=self.checkpoint_dir)
        if directory is None:
            prune_checkpoints(self.checkpoint_dir, KEEP_CHECKPOINTS, prefix=self.prefix)
        return info


def trainer_device(trainer: Trainer) -> torch.device:
    return getattr(trainer, "device", torch.device("cpu"))


class LearnerWorker:
    """Runs a Learner in a background thread: episodes in, stats and checkpoints out."""

    def __init__(self, learner: Learner, *,
                 on_checkpoint: Callable[[CheckpointInfo], None],
                 on_stats: Callable[[list[ChunkStats]], None],
                 on_error: Callable[[str], None] = log.error) -> None:
        self.learner = learner
        self.on_checkpoint = on_checkpoint
        self.on_stats = on_stats
        self.on_error = on_error
        self.inbox: queue.Queue[tuple[str, Episode]] = queue.Queue()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="aloe-learner", daemon=True)
        self.updates_since_publish = 0
        self.updates_since_state = 0
        # Transitions per source, refreshed by the worker: safe to read from other threads.
        self.replay_summary: dict[str, int] = learner.replay.counts_by_source()
        self.counters = {"episodes_added": 0, "episodes_rejected": 0, "updates": 0,
                         "checkpoints": 0, "errors": 0}

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current step (checkpoint files are written atomically, so a
        process that exits before the join ends leaves the previous checkpoint usable)."""
        self.stop_event.set()
        self.thread.join(timeout)

    def submit_episode(self, episode: Episode) -> None:
        """A finished episode for the replay."""
        self.inbox.put(("episode", episode))

    def submit_for_stats(self, episode: Episode) -> None:
        """Executed chunks (of an episode in progress, or its tail) to evaluate for stats."""
        self.inbox.put(("stats", episode))

    def _handle(self, kind: str, episode: Episode) -> None:
        if kind == "stats":
            self.on_stats(self.learner.evaluate_episode(episode))
        else:
            try:
                added = self.learner.add_episode(episode)
                self.counters["episodes_added"] += int(added > 0)
                self.replay_summary = self.learner.replay.counts_by_source()
            except ReplayError as exc:
                self.counters["episodes_rejected"] += 1
                self.on_error(f"episode {episode.episode_id} rejected by the replay: {exc}")

    def _drain(self, timeout: float) -> None:
        try:
            kind, episode = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        self._handle(kind, episode)
        while not self.stop_event.is_set():
            try:
                kind, episode = self.inbox.get_nowait()
            except queue.Empty:
                return
            self._handle(kind, episode)

    def _run(self) -> None:
        cfg = self.learner.config.learning
        while not self.stop_event.is_set():
            try:
                if cfg.schedule == "rounds":
                    self._drain(0.2)
                    if self.learner.episodes_since_round >= cfg.episodes_per_round:
                        self.learner.train(cfg.updates_per_round, stop=self.stop_event)
                        self.counters["updates"] += cfg.updates_per_round
                        self.learner.episodes_since_round = 0
                        self._publish()
                else:
                    self._drain(0.0 if self.learner.ready() else 0.2)
                    if self.learner.ready():
                        self.learner.train(1)
                        self.counters["updates"] += 1
                        self.updates_since_publish += 1
                        self.updates_since_state += 1
                        if self.updates_since_publish >= cfg.publish_every_updates:
                            self._publish()
                        elif self.updates_since_state >= cfg.checkpoint_every_updates:
                            self.learner.checkpoint()
                            self.updates_since_state = 0
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad step
                self.counters["errors"] += 1
                self.on_error(f"learner step failed: {type(exc).__name__}: {exc}")
                self.stop_event.wait(1.0)

    def _publish(self) -> None:
        info = self.learner.checkpoint()
        self.counters["checkpoints"] += 1
        self.updates_since_publish = self.updates_since_state = 0
        self.on_checkpoint(info)
