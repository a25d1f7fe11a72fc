"""Action chunks -> one safe joint command per control tick (no ROS, no torch).

Time is counted in control ticks actually executed, never in assumed frames: ``tick`` is the
number of commands produced so far. A chunk answers an ``InferenceRequest`` made at tick ``s``
(its observation tick); its row ``i`` is the command for tick ``s + i``. A chunk that arrives
``d`` ticks after its observation starts at row ``d`` (the rows for ticks already gone are
skipped), so inference latency never shifts the plan in time.

Scheduling: the next inference is requested ``execute_horizon - L`` ticks after the current
chunk took over, ``L`` being the largest latency (in ticks) of recent chunks plus one tick of
margin; the next chunk then arrives about when ``execute_horizon`` of its rows have run, and the
current chunk still covers the ticks until then (rows up to its horizon), so no tick is idle
between chunks and each chunk drives the robot for about ``execute_horizon`` ticks.

Safety, every tick: a chunk whose row for this tick lies past its horizon is stale and never
executed; NaN/inf or wrong-shape chunks are rejected (the last safe command is held); each
command is clamped to the position limits and to ``v_max / rate`` per tick from the previous
command. ``pause`` (a human holds control) flushes everything; ``resume`` starts again from the
measured state. Results of requests made before a flush are discarded.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ChunkExecutor", "ExecutorConfig", "InferenceRequest", "TickResult"]

log = logging.getLogger(__name__)

BLEND_MODES = ("none", "linear", "temporal_ensemble")


@dataclass
class ExecutorConfig:
    control_rate_hz: float
    chunk_horizon: int
    execute_horizon: int
    position_lower: np.ndarray
    position_upper: np.ndarray
    velocity_limits: np.ndarray
    blend: str = "linear"
    blend_steps: int = 5
    # Temporal ensembling weight exp(-decay * i), i = 0 for the oldest chunk (as in ACT).
    ensemble_decay: float = 0.01
    # Latency estimate = max over this many recent chunks (ticks), plus margin_ticks.
    latency_window: int = 5
    margin_ticks: int = 1

    def __post_init__(self) -> None:
        self.position_lower = np.asarray(self.position_lower, dtype=np.float64)
        self.position_upper = np.asarray(self.position_upper, dtype=np.float64)
        self.velocity_limits = np.asarray(self.velocity_limits, dtype=np.float64)
        if self.blend not in BLEND_MODES:
            raise ValueError(f"blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if not 1 <= self.execute_horizon <= self.chunk_horizon:
            raise ValueError(f"execute_horizon {self.execute_horizon} must be in "
                             f"[1, {self.chunk_horizon}]")
        if self.control_rate_hz <= 0:
            raise ValueError(f"control_rate_hz must be > 0, got {self.control_rate_hz}")

    @property
    def action_dim(self) -> int:
        return int(self.position_lower.shape[0])


@dataclass(frozen=True)
class InferenceRequest:
    """Take an observation now and predict a chunk whose row 0 is tick ``tick``."""

    request_id: int
    tick: int
    epoch: int


@dataclass
class ActiveChunk:
    actions: np.ndarray        # (H, D)
    start_tick: int            # the observation tick: row i is tick start_tick + i
    arrival_tick: int
    chunk_id: int
    version: str


@dataclass
class TickResult:
    """What to do at one tick. ``command`` None: publish nothing (paused, or no state yet)."""

    tick: int
    command: np.ndarray | None
    # policy | blend | hold | wait | paused
    source: str
    chunk_id: int = -1
    version: str = ""


@dataclass
class ExecutorCounters:
    ticks: int = 0
    idle_ticks: int = 0            # a tick with a chunk expected but none usable (not start-up)
    startup_ticks: int = 0         # waiting for the first chunk after start/resume/flush
    rejected_chunks: int = 0
    stale_chunks: int = 0
    discarded_chunks: int = 0      # answered a request made before a flush
    accepted_chunks: int = 0
    clamped_commands: int = 0
    inference_timeouts: int = 0
    failed_inferences: int = 0
    flushes: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        out = {k: int(v) for k, v in vars(self).items() if k != "extra"}
        out.update(self.extra)
        return out


class ChunkExecutor:
    """The per-tick command stream of one robot (see module docstring). Not thread-safe."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.max_step = config.velocity_limits / config.control_rate_hz
        self.counters = ExecutorCounters()
        self.tick = 0
        self.epoch = 0
        self.paused = False
        self.chunks: deque[ActiveChunk] = deque()   # newest last
        self.pending: InferenceRequest | None = None
        self.next_request_id = 0
        self.next_chunk_id = 0
        self.latencies: deque[int] = deque(maxlen=config.latency_window)
        self.last_command: np.ndarray | None = None
        self.blend_start_tick = -1
        self.had_chunk_since_flush = False

    # ---- state changes ----------------------------------------------------------------------
    def flush(self, reason: str = "") -> None:
        """Drop every chunk and the pending request; later answers to it are discarded."""
        self.chunks.clear()
        self.pending = None
        self.epoch += 1
        self.had_chunk_since_flush = False
        self.counters.flushes += 1
        if reason:
            log.info("chunk queue flushed (%s)", reason)

    def pause(self, reason: str = "human control") -> None:
        """Stop commanding (a human holds control); flush."""
        self.paused = True
        self.flush(reason)

    def resume(self, measured_state: np.ndarray | None, reason: str = "handback") -> None:
        """Command again, starting from the measured state (not from the old plan)."""
        self.paused = False
        self.flush(reason)
        if measured_state is not None:
            self.last_command = np.asarray(measured_state, dtype=np.float64).copy()

    def set_measured_state(self, measured_state: np.ndarray) -> None:
        """Seed the hold command before the first chunk (start-up)."""
        if self.last_command is None:
            self.last_command = np.asarray(measured_state, dtype=np.float64).copy()

    # ---- inference scheduling ---------------------------------------------------------------
    def latency_estimate(self) -> int:
        """Ticks from observation to arrival to plan for: max of recent latencies + margin."""
        if not self.latencies:
            return self.config.margin_ticks
        worst = max(self.latencies)
        return worst + (self.config.margin_ticks if worst > 0 else 0)

    def want_inference(self) -> InferenceRequest | None:
        """A request to start now, or None (paused, one in flight, or not yet due)."""
        if self.paused:
            return None
        if self.pending is not None:
            if self.tick - self.pending.tick >= self.config.chunk_horizon:
                # Its answer could only be stale now: give up on it, ask again.
                self.counters.inference_timeouts += 1
                self.pending = None
            else:
                return None
        newest = self.chunks[-1] if self.chunks else None
        if newest is not None:
            # The next answer should arrive when execute_horizon rows have run since this
            # chunk took over: ask latency_estimate ticks before that.
            due = newest.arrival_tick + max(
                0, self.config.execute_horizon - self.latency_estimate())
            if self.tick < due:
                return None
        request = InferenceRequest(self.next_request_id, self.tick, self.epoch)
        self.next_request_id += 1
        self.pending = request
        return request

    def fail(self, request: InferenceRequest, reason: str = "") -> None:
        """The request produced no chunk (stale inputs, policy error): allow a new one."""
        if self.pending is not None and self.pending.request_id == request.request_id:
            self.pending = None
        self.counters.failed_inferences += 1
        if reason:
            log.debug("inference %d failed: %s", request.request_id, reason)

    # ---- chunks in --------------------------------------------------------------------------
    def validate(self, actions: np.ndarray) -> str | None:
        """Why a chunk is unusable, or None."""
        shape = (self.config.chunk_horizon, self.config.action_dim)
        if not isinstance(actions, np.ndarray) or actions.ndim != 2:
            return f"chunk must be a 2-D array {shape}, got {getattr(actions, 'shape', None)}"
        if actions.shape[1] != shape[1]:
            return f"chunk has {actions.shape[1]} action dims, the robot has {shape[1]}"
        if actions.shape[0] != shape[0]:
            return f"chunk has {actions.shape[0]} steps, the policy's horizon is {shape[0]}"
        if not np.all(np.isfinite(actions)):
            return "chunk contains NaN or inf"
        return None

    def submit(self, request: InferenceRequest, actions: np.ndarray, version: str = ""
               ) -> tuple[bool, str]:
        """Offer the answer to ``request``; returns (accepted, reason). Arrival = this tick."""
        if self.pending is not None and self.pending.request_id == request.request_id:
            self.pending = None
        if request.epoch != self.epoch or self.paused:
            self.counters.discarded_chunks += 1
            return False, "answers a request made before a flush"
        problem = self.validate(actions)
        if problem is not None:
            self.counters.rejected_chunks += 1
            return False, problem
        latency = self.tick - request.tick
        if latency >= actions.shape[0]:
            self.counters.stale_chunks += 1
            return False, f"stale: {latency} ticks old, horizon {actions.shape[0]}"
        self.latencies.append(latency)
        chunk = ActiveChunk(np.asarray(actions, dtype=np.float64), request.tick, self.tick,
                            self.next_chunk_id, version)
        self.next_chunk_id += 1
        self.chunks.append(chunk)
        self.blend_start_tick = self.tick
        self.had_chunk_since_flush = True
        self.counters.accepted_chunks += 1
        return True, f"latency {latency} ticks"

    # ---- commands out -----------------------------------------------------------------------
    def live_chunks(self) -> list[ActiveChunk]:
        """Chunks that have a row for the current tick; older ones are dropped as stale."""
        while self.chunks and self.tick - self.chunks[0].start_tick >= len(self.chunks[0].actions):
            self.chunks.popleft()
        keep = 2 if self.config.blend == "linear" else len(self.chunks)
        while len(self.chunks) > max(keep, 1):
            self.chunks.popleft()
        return list(self.chunks)

    def planned_command(self, live: list[ActiveChunk]) -> tuple[np.ndarray, str]:
        """The chunks' command for this tick before clamping, and how it was made."""
        newest = live[-1]
        target = newest.actions[self.tick - newest.start_tick]
        mode = self.config.blend
        if len(live) == 1 or mode == "none":
            return target, "policy"
        if mode == "linear":
            old = live[0]
            done = self.tick - self.blend_start_tick + 1
            if done > self.config.blend_steps:
                return target, "policy"
            weight = done / (self.config.blend_steps + 1)
            return (1 - weight) * old.actions[self.tick - old.start_tick] + weight * target, "blend"
        return self.temporal_ensemble(live), "blend"

    def temporal_ensemble(self, live: list[ActiveChunk]) -> np.ndarray:
        """Temporal ensembling: sum_i w_i a_i / sum_i w_i over the chunks covering this tick.

        ``w_i = exp(-decay * i)`` (i = 0 the oldest, as in ACT) times a ramp that fades a chunk
        in over ``blend_steps`` ticks after it arrives and out over its last ``blend_steps``
        rows, so a chunk joining or leaving the ensemble causes no jump.
        """
        ramp = self.config.blend_steps + 1
        weights = []
        for i, chunk in enumerate(live):
            row = self.tick - chunk.start_tick
            fade_in = min(1.0, (self.tick - chunk.arrival_tick + 1) / ramp)
            fade_out = min(1.0, (len(chunk.actions) - row) / ramp)
            weights.append(np.exp(-self.config.ensemble_decay * i) * fade_in * fade_out)
        w = np.asarray(weights)
        rows = np.stack([c.actions[self.tick - c.start_tick] for c in live])
        return (w[:, None] * rows).sum(0) / w.sum()

    def clamp(self, command: np.ndarray) -> np.ndarray:
        """Position limits, then at most v_max / rate away from the previous command."""
        safe = np.clip(command, self.config.position_lower, self.config.position_upper)
        if self.last_command is not None:
            safe = self.last_command + np.clip(safe - self.last_command,
                                               -self.max_step, self.max_step)
        if not np.allclose(safe, command, atol=1e-9, rtol=0.0):
            self.counters.clamped_commands += 1
        return safe

    def step(self) -> TickResult:
        """Produce the command of the current tick and advance the tick counter."""
        tick = self.tick
        self.counters.ticks += 1
        try:
            if self.paused:
                return TickResult(tick, None, "paused")
            live = self.live_chunks()
            if not live:
                if self.had_chunk_since_flush:
                    self.counters.idle_ticks += 1
                    source = "hold"
                else:
                    self.counters.startup_ticks += 1
                    source = "wait"
                hold = None if self.last_command is None else self.last_command.copy()
                return TickResult(tick, hold, source)
            planned, source = self.planned_command(live)
            command = self.clamp(planned)
            self.last_command = command
            newest = live[-1]
            return TickResult(tick, command.copy(), source, newest.chunk_id, newest.version)
        finally:
            self.tick += 1

    def remaining_rows(self) -> int:
        """Rows of the newest chunk left from the current tick (0: none)."""
        if not self.chunks:
            return 0
        newest = self.chunks[-1]
        return max(0, len(newest.actions) - (self.tick - newest.start_tick))
