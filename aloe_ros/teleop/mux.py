"""The command mux: one place, one rule (e-stop > human > policy), and the last clamp.

Shadow mode (``shadow``): policy commands never reach the robot; :meth:`CommandMux.shadow_command`
clamps them to the position limits for the shadow topic instead (watched and recorded only).

Everything the robot executes passes :meth:`CommandMux.route`. The mux knows who holds control
(set by the takeover state machine), forwards only that source's commands, and clamps each one
to the joint position limits and to the velocity limits relative to the previous command, so a
jump anywhere upstream becomes at most one tick of full-speed motion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from aloe_ros.config import RobotConfig

__all__ = ["CommandMux", "ControlSource", "MuxCommand", "Origin"]

log = logging.getLogger(__name__)


class ControlSource(StrEnum):
    """Who may move the robot now."""

    POLICY = "policy"
    HUMAN = "human"
    # A human holds control but the pad went silent (watchdog): the pose is held.
    HOLD = "hold"
    # E-stop released but not re-armed yet: nothing moves until takeover or handback.
    DISARMED = "disarmed"
    ESTOP = "estop"


class Origin(StrEnum):
    """Where a command came from."""

    POLICY = "policy"
    HUMAN = "human"
    HOLD = "hold"


@dataclass
class MuxCommand:
    """A command to publish on the robot's command topic, already clamped."""

    positions: np.ndarray
    origin: Origin
    # Whether clamping changed it (counted: upstream produced something unsafe).
    clamped: bool = False


class CommandMux:
    """Arbitrates commands by the current control source and clamps what it forwards."""

    def __init__(self, robot: RobotConfig) -> None:
        self.lower = np.asarray(robot.position_lower, dtype=np.float64)
        self.upper = np.asarray(robot.position_upper, dtype=np.float64)
        self.velocity_limits = np.asarray(robot.velocity_limits, dtype=np.float64)
        self.period_s = 1.0 / robot.control_rate_hz
        self.source = ControlSource.POLICY
        # The last command sent to the robot, and when; None: the robot's measured pose rules.
        self.last_command: np.ndarray | None = None
        self.last_command_time: float | None = None
        self.measured: np.ndarray | None = None
        self.forwarded: dict[Origin, int] = {origin: 0 for origin in Origin}
        self.blocked: dict[Origin, int] = {origin: 0 for origin in Origin}
        self.clamped = 0
        self.no_pose = 0
        # Shadow mode: the policy's commands go to the shadow topic, never to the robot.
        self.shadow = False
        self.shadowed = 0

    # ---- state ------------------------------------------------------------------------------
    def set_source(self, source: ControlSource) -> None:
        self.source = source
        if source in (ControlSource.ESTOP, ControlSource.DISARMED):
            # After an e-stop the robot may have been stopped anywhere: start again from what
            # it measures, never from a command it did not finish.
            self.resync()

    def set_measured(self, positions: np.ndarray) -> None:
        self.measured = np.asarray(positions, dtype=np.float64)

    def resync(self) -> None:
        """Forget the last command: the next one is limited relative to the measured pose."""
        self.last_command = None
        self.last_command_time = None

    def current_pose(self) -> np.ndarray | None:
        """The pose the robot is being held at: the last command, else the measured pose."""
        if self.last_command is not None:
            return self.last_command.copy()
        return None if self.measured is None else self.measured.copy()

    # ---- the rule -----------------------------------------------------------------------------
    def allows(self, origin: Origin) -> bool:
        """The one rule: e-stop > human > policy.

        Under ESTOP and DISARMED nothing is forwarded (the command topic is silent). Under
        HUMAN only human commands pass, under HOLD only the mux's own hold command, under
        POLICY policy commands and the hold at a handback. In shadow mode policy commands
        never pass, whoever holds control.
        """
        if self.source in (ControlSource.ESTOP, ControlSource.DISARMED):
            return False
        if self.shadow and origin == Origin.POLICY:
            return False
        if self.source == ControlSource.HUMAN:
            return origin == Origin.HUMAN
        if self.source == ControlSource.HOLD:
            return origin == Origin.HOLD
        return origin in (Origin.POLICY, Origin.HOLD)

    def route(self, positions: np.ndarray, origin: Origin, now: float) -> MuxCommand | None:
        """Forward ``positions`` if ``origin`` holds control now; clamp it; else None."""
        if not self.allows(origin):
            self.blocked[origin] += 1
            return None
        if self.last_command is None and self.measured is None:
            # Without a pose to limit the step against, nothing is forwarded.
            self.no_pose += 1
            return None
        command = self.clamp(np.asarray(positions, dtype=np.float64), now)
        self.last_command = command.positions
        self.last_command_time = now
        self.forwarded[origin] += 1
        command.origin = origin
        return command

    def shadow_command(self, positions: np.ndarray) -> np.ndarray | None:
        """In shadow mode: a policy command clamped to the position limits, for the shadow
        topic only (no state changes: it is never the robot's last command); else None."""
        if not self.shadow:
            return None
        self.shadowed += 1
        return np.clip(np.asarray(positions, dtype=np.float64), self.lower, self.upper)

    def hold(self, now: float) -> MuxCommand | None:
        """Command the current pose again (watchdog hold, handback), if anything may move."""
        pose = self.current_pose()
        if pose is None:
            return None
        return self.route(pose, Origin.HOLD, now)

    def clamp(self, positions: np.ndarray, now: float) -> MuxCommand:
        """Clamp to the position limits, then to velocity_limit * dt from the previous command.

        dt is the time since the previous forwarded command, capped at one control period, so
        a command after a pause still moves at most one tick's worth. With no previous command
        the measured pose is the reference (:meth:`route` forwards nothing without either).
        """
        clamped = np.clip(positions, self.lower, self.upper)
        reference = self.last_command if self.last_command is not None else self.measured
        if reference is not None:
            if self.last_command is not None and self.last_command_time is not None:
                dt = min(max(now - self.last_command_time, 0.0), self.period_s)
            else:
                dt = self.period_s
            step = self.velocity_limits * dt
            clamped = np.clip(clamped, reference - step, reference + step)
        changed = not np.allclose(clamped, positions, rtol=0.0, atol=1e-9)
        if changed:
            self.clamped += 1
        return MuxCommand(clamped, Origin.POLICY, changed)
