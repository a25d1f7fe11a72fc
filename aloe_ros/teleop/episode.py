"""Episode lifecycle: RESET -> START -> SUCCESS / FAILURE (or ABORT) -> RESET -> START ...

Each event is emitted exactly once, with the id of its episode: START and the outcome carry the
running episode's id, RESET carries the id of the episode that just ended (0 before the first
one). Ids only increase. The sparse reward of the learner is derived from these events alone
(:func:`sparse_reward`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from aloe_ros.config import EpisodeConfig

__all__ = ["EpisodeEventKind", "EpisodeManager", "EpisodeOutput", "EpisodePhase", "sparse_reward"]

log = logging.getLogger(__name__)


class EpisodeEventKind(StrEnum):
    START = "start"
    SUCCESS = "success"
    FAILURE = "failure"
    ABORT = "abort"
    RESET = "reset"


OUTCOMES = (EpisodeEventKind.SUCCESS, EpisodeEventKind.FAILURE, EpisodeEventKind.ABORT)


class EpisodePhase(StrEnum):
    WAITING = "waiting"      # before the first episode (no robot pose yet)
    RUNNING = "running"
    ENDED = "ended"          # an outcome was marked; waiting for reset
    RESETTING = "resetting"  # RESET sent; START follows after reset_to_start_s


def sparse_reward(kind: EpisodeEventKind) -> float:
    """r = 1 on the SUCCESS event of an episode, 0 on every other event (DESIGN section 4)."""
    return 1.0 if kind == EpisodeEventKind.SUCCESS else 0.0


@dataclass(frozen=True)
class EpisodeOutput:
    kind: EpisodeEventKind
    episode_id: int
    reward: float
    reason: str


class EpisodeManager:
    """Owns the episode id and decides when each lifecycle event happens."""

    def __init__(self, config: EpisodeConfig, timeout_s: float, *, sim: bool) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.use_detector = config.outcome_from_detector == "always" or (
            config.outcome_from_detector == "sim" and sim)
        self.auto_reset = config.auto_reset == "always" or (config.auto_reset == "sim" and sim)
        self.phase = EpisodePhase.WAITING
        self.episode_id = 0
        self.created_at: float | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.reset_at: float | None = None
        self.last_outcome = ""
        self.ignored: dict[str, int] = {}

    def _emit(self, kind: EpisodeEventKind, reason: str) -> EpisodeOutput:
        event = EpisodeOutput(kind, self.episode_id, sparse_reward(kind), reason)
        log.info("episode %d: %s (%s)", self.episode_id, kind.value, reason)
        return event

    def _ignore(self, what: str) -> list[EpisodeOutput]:
        self.ignored[what] = self.ignored.get(what, 0) + 1
        return []

    # ---- inputs --------------------------------------------------------------------------------
    def mark(self, kind: EpisodeEventKind, reason: str, now: float) -> list[EpisodeOutput]:
        """An outcome (SUCCESS / FAILURE / ABORT) for the running episode; once per episode."""
        if kind not in OUTCOMES:
            raise ValueError(f"{kind} is not an outcome")
        if self.phase != EpisodePhase.RUNNING:
            return self._ignore(f"{kind.value}_when_{self.phase.value}")
        self.phase = EpisodePhase.ENDED
        self.ended_at = now
        self.last_outcome = f"{kind.value}: {reason}" if reason else kind.value
        return [self._emit(kind, reason)]

    def detector(self, kind: EpisodeEventKind, reason: str, stamp: float,
                 now: float) -> list[EpisodeOutput]:
        """The sim's detector: used when configured, only for the running episode.

        An outcome stamped before this episode's START belongs to the previous scene (it was
        in flight while we reset) and is ignored; stamp 0 means "unknown, take it as now".
        """
        if not self.use_detector or kind not in (EpisodeEventKind.SUCCESS,
                                                 EpisodeEventKind.FAILURE):
            return []
        if self.phase != EpisodePhase.RUNNING or self.started_at is None:
            return self._ignore("detector_when_" + self.phase.value)
        if stamp and stamp < self.started_at:
            return self._ignore("detector_stale")
        return self.mark(kind, f"detector: {reason}" if reason else "detector", now)

    def reset_button(self, now: float) -> list[EpisodeOutput]:
        """Reset: after an outcome, RESET; while running, ABORT first (the episode is cut)."""
        events: list[EpisodeOutput] = []
        if self.phase == EpisodePhase.RUNNING:
            events += self.mark(EpisodeEventKind.ABORT, "reset button", now)
        if self.phase != EpisodePhase.ENDED:
            return events or self._ignore(f"reset_when_{self.phase.value}")
        return events + self._reset("reset button", now)

    def _reset(self, reason: str, now: float) -> list[EpisodeOutput]:
        self.phase = EpisodePhase.RESETTING
        self.reset_at = now
        return [self._emit(EpisodeEventKind.RESET, reason)]

    def tick(self, now: float, *, ready: bool) -> list[EpisodeOutput]:
        """Time-driven events: first reset, START after reset, timeout, automatic reset.

        ``ready``: the robot's pose is known (the first episode waits for it).
        """
        if self.phase == EpisodePhase.WAITING:
            if self.created_at is None:
                self.created_at = now
            if ready and now - self.created_at >= self.config.startup_delay_s:
                return self._reset("startup", now)
            return []
        if self.phase == EpisodePhase.RESETTING:
            assert self.reset_at is not None
            if now - self.reset_at >= self.config.reset_to_start_s:
                self.episode_id += 1
                self.phase = EpisodePhase.RUNNING
                self.started_at = now
                self.ended_at = None
                return [self._emit(EpisodeEventKind.START, "reset" if self.episode_id > 1
                                   else "startup")]
            return []
        if self.phase == EpisodePhase.RUNNING:
            assert self.started_at is not None
            if now - self.started_at >= self.timeout_s:
                return self.mark(EpisodeEventKind.FAILURE, "timeout", now)
            return []
        # ENDED
        assert self.ended_at is not None
        if self.auto_reset and now - self.ended_at >= self.config.auto_reset_delay_s:
            return self._reset("auto reset", now)
        return []
