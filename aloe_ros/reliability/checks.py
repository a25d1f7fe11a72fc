"""ROS-free judgements the fault suite makes from what it recorded (no rclpy, no torch).

Each function states one rule: commands stay inside the limits and never jump, the arm holds
when nobody commands it, an e-stop silences the command stream within a tick, and a bag keeps
everything up to (about) the moment its recorder died.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from aloe_ros.config import RobotConfig

__all__ = ["BagCheck", "CommandCheck", "check_bag", "check_commands", "estop_latency",
           "motion_range", "newest_before"]

# Float slack for comparisons of commands against limits (commands travel as float64).
EPS = 1e-6


class HasCommand(Protocol):
    @property
    def received_ns(self) -> int: ...
    @property
    def stamp_s(self) -> float: ...
    @property
    def positions(self) -> np.ndarray: ...


@dataclass
class CommandCheck:
    """What the robot was told: how many commands, how many broke a rule, the worst step."""

    commands: int = 0
    non_finite: int = 0
    beyond_position_limits: int = 0
    # Largest per-tick step, as a fraction of velocity_limit / control_rate (<= 1 is safe).
    worst_step_ratio: float = 0.0
    jumps: int = 0
    # Where the jumps were: "frame_id@received_ns" (for the details; empty when none).
    jump_sites: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return self.non_finite == 0 and self.beyond_position_limits == 0 and self.jumps == 0

    def merge(self, other: CommandCheck) -> CommandCheck:
        return CommandCheck(self.commands + other.commands, self.non_finite + other.non_finite,
                            self.beyond_position_limits + other.beyond_position_limits,
                            max(self.worst_step_ratio, other.worst_step_ratio),
                            self.jumps + other.jumps, self.jump_sites + other.jump_sites)


def check_commands(commands: Sequence[HasCommand], measured: Sequence[tuple[int, np.ndarray]],
                   robot: RobotConfig) -> CommandCheck:
    """Every command finite, inside position limits, and at most one tick of full speed away
    from the previous command or from the measured pose.

    The mux limits each command relative to the previous one, except after it resyncs (e-stop,
    episode reset, a restarted mux), where the measured pose is the reference; so a command
    is a jump only when it is more than ``velocity_limit / rate`` from both references. The
    measured reference is any joint state *stamped* in the 0.5 s before the command's stamp
    (``measured`` holds (stamp ns, positions)): the order in which a busy listener happens to
    run its callbacks says nothing about what the mux had received.
    """
    lower = np.asarray(robot.position_lower)
    upper = np.asarray(robot.position_upper)
    step = np.asarray(robot.velocity_limits) / robot.control_rate_hz
    result = CommandCheck()
    previous: np.ndarray | None = None
    measured_times = np.array([t for t, _ in measured], dtype=np.int64)
    for command in commands:
        q = np.asarray(command.positions, dtype=np.float64)
        result.commands += 1
        if q.shape != lower.shape or not np.all(np.isfinite(q)):
            result.non_finite += 1
            continue
        if np.any(q < lower - EPS) or np.any(q > upper + EPS):
            result.beyond_position_limits += 1
        references = [] if previous is None else [previous]
        if len(measured_times):
            stamp_ns = int(command.stamp_s * 1e9)
            end = int(np.searchsorted(measured_times, stamp_ns, side="right"))
            begin = int(np.searchsorted(measured_times, stamp_ns - 500_000_000))
            references += [measured[i][1] for i in range(begin, end)]
        if references:
            ratio = min(float(np.max(np.abs(q - r) / step)) for r in references)
            # The first command measured against a stale pose says nothing: only count jumps
            # relative to a real previous command.
            if previous is not None:
                result.worst_step_ratio = max(result.worst_step_ratio, ratio)
                if ratio > 1.0 + 1e-3:
                    result.jumps += 1
                    result.jump_sites.append(f"{getattr(command, 'frame_id', '?')}@"
                                             f"{command.received_ns} ({ratio:.2f})")
        previous = q
    return result


def motion_range(states: Iterable[tuple[int, np.ndarray]]) -> float:
    """Largest range (max - min) of any joint over ``states``: 0 for an arm that holds still."""
    positions = [q for _, q in states]
    if len(positions) < 2:
        return 0.0
    array = np.stack(positions)
    return float(np.max(array.max(axis=0) - array.min(axis=0)))


def estop_latency(commands: Sequence[HasCommand], edge_s: float, period_s: float
                  ) -> tuple[int, float]:
    """(commands stamped after the e-stop edge, latency in control ticks).

    The latency is the stamp of the last command on the command topic after the button edge
    (the Joy's stamp), minus the edge, in control periods; 0 when no command followed it.
    """
    after = [c.stamp_s for c in commands if c.stamp_s >= edge_s]
    if not after:
        return 0, 0.0
    return len(after), (max(after) - edge_s) / period_s


def newest_before(times_ns: Iterable[int], limit_ns: int) -> int | None:
    """The largest time <= ``limit_ns``, or None."""
    best: int | None = None
    for t in times_ns:
        if t <= limit_ns and (best is None or t > best):
            best = t
    return best


@dataclass
class BagCheck:
    path: str
    readable: bool
    repaired_by: str          # "", "logger" (at its restart) or "suite"
    messages: int
    start_ns: int
    end_ns: int
    error: str = ""


def check_bag(path: Path, *, repair: bool = True) -> BagCheck:
    """Open a bag and read every message; repair it first if its recorder was killed.

    A bag the respawned logger already repaired says so in its metadata.
    """
    from aloe_ros.io.bag_reader import Bag, BagError
    from aloe_ros.io.bag_repair import RepairError, repair_bag

    repaired_by = ""
    if not (path / "metadata.yaml").is_file() and repair:
        try:
            repair_bag(path)
            repaired_by = "suite"
        except (RepairError, OSError) as exc:
            return BagCheck(str(path), False, "", 0, 0, 0, f"repair failed: {exc}")
    try:
        with Bag(path) as bag:
            count = sum(1 for _ in bag.messages())
            if not repaired_by and bag.custom_data.get("aloe_ros.repaired") == "true":
                repaired_by = "logger"
            return BagCheck(str(path), True, repaired_by, count, bag.start_ns, bag.end_ns)
    except BagError as exc:
        return BagCheck(str(path), False, repaired_by, 0, 0, 0, str(exc))
