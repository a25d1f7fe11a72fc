"""Command outputs: the mux's commands converted for the controllers that move a real robot.

The mux publishes one JointState per control tick on ``topics.command`` (robot.joint_names
order); a robot driven through ros2_control wants, per controller, a
``std_msgs/Float64MultiArray`` (forward position controller, the controller's joint order) or
a ``trajectory_msgs/JointTrajectory`` (JointTrajectoryController). :class:`CommandOutput`
builds those messages from arrays. No rclpy here: only the message classes.

Every output clamps again to the position limits (the mux already did; a second clamp at the
edge costs nothing) and, for chunk trajectories, to the velocity limits between points.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from aloe_ros.config import OutputConfig, RobotConfig

__all__ = ["CommandOutput", "MESSAGE_TYPES", "duration", "limit_trajectory"]

log = logging.getLogger(__name__)

MESSAGE_TYPES: dict[str, type] = {
    "joint_state": JointState,
    "forward_position": Float64MultiArray,
    "joint_trajectory": JointTrajectory,
}


def duration(seconds: float) -> Duration:
    """builtin_interfaces/Duration from float seconds."""
    whole = int(np.floor(seconds))
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)) % 1_000_000_000)


def limit_trajectory(points: np.ndarray, start: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """Clamp each point to [lower, upper] and to ``max_step`` from the point before it.

    The first point is limited against ``start`` (the last command sent), so a trajectory
    can never ask a joint for more than velocity_limit * period per control period.
    """
    out = np.empty_like(points, dtype=np.float64)
    previous = np.asarray(start, dtype=np.float64)
    for k, point in enumerate(np.asarray(points, dtype=np.float64)):
        bounded = np.clip(point, lower, upper)
        previous = np.clip(bounded, previous - max_step, previous + max_step)
        out[k] = previous
    return out


class CommandOutput:
    """One configured output: which joints, in which order, as which message."""

    def __init__(self, output: OutputConfig, robot: RobotConfig) -> None:
        self.config = output
        self.type = output.type
        self.topic = output.topic
        self.joint_names = list(output.joints or robot.joint_names)
        self.indices = np.array([robot.joint_names.index(n) for n in self.joint_names])
        self.lower = np.asarray(robot.position_lower, dtype=np.float64)[self.indices]
        self.upper = np.asarray(robot.position_upper, dtype=np.float64)[self.indices]
        self.period_s = 1.0 / robot.control_rate_hz
        self.max_step = np.asarray(robot.velocity_limits, dtype=np.float64)[self.indices] \
            * self.period_s
        self.message_type = MESSAGE_TYPES[output.type]
        self.per_chunk = output.type == "joint_trajectory" and output.per == "chunk"
        self.clamped = 0

    def describe(self) -> str:
        mode = f", per {self.config.per}" if self.type == "joint_trajectory" else ""
        return f"{self.type} on {self.topic} ({len(self.joint_names)} joints{mode})"

    def select(self, positions: Sequence[float]) -> np.ndarray:
        """This output's joints, in its order, clamped to the position limits."""
        values = np.asarray(positions, dtype=np.float64)[self.indices]
        clamped = np.clip(values, self.lower, self.upper)
        if not np.array_equal(clamped, values):
            self.clamped += 1
        return clamped

    def step_message(self, positions: Sequence[float], stamp: Any = None,
                     frame_id: str = "") -> Any:
        """One control tick's command (robot.joint_names order) as this output's message."""
        values = self.select(positions)
        if self.type == "forward_position":
            msg = Float64MultiArray()
            msg.layout.dim = [MultiArrayDimension(label="joints", size=len(values),
                                                  stride=len(values))]
            msg.data = values.tolist()
            return msg
        if self.type == "joint_state":
            state = JointState()
            if stamp is not None:
                state.header.stamp = stamp
            state.header.frame_id = frame_id
            state.name = self.joint_names
            state.position = values.tolist()
            return state
        point = JointTrajectoryPoint()
        point.positions = values.tolist()
        point.time_from_start = duration(self.config.lookahead_steps * self.period_s)
        trajectory = JointTrajectory()
        trajectory.joint_names = self.joint_names
        trajectory.points = [point]
        return trajectory          # stamp zero: start now (the controller's clock)

    def chunk_message(self, actions: np.ndarray, start: Sequence[float]) -> JointTrajectory:
        """The executed part of a policy chunk (rows in robot.joint_names order) as one
        trajectory, points one control period apart, limited from the last command ``start``."""
        rows = np.asarray(actions, dtype=np.float64)[:, self.indices]
        first = np.asarray(start, dtype=np.float64)[self.indices]
        limited = limit_trajectory(rows, first, self.lower, self.upper, self.max_step)
        if not np.allclose(limited, rows, rtol=0.0, atol=1e-9):
            self.clamped += 1
        trajectory = JointTrajectory()
        trajectory.joint_names = self.joint_names
        points = []
        for k, row in enumerate(limited):
            point = JointTrajectoryPoint()
            point.positions = row.tolist()
            point.time_from_start = duration((k + 1) * self.period_s)
            points.append(point)
        trajectory.points = points
        return trajectory

    def stop_message(self) -> JointTrajectory | None:
        """What stops this controller now: an empty trajectory for a JointTrajectoryController
        (it cancels the running trajectory and holds), nothing for the others (silence holds)."""
        if self.type != "joint_trajectory":
            return None
        trajectory = JointTrajectory()
        trajectory.joint_names = self.joint_names
        return trajectory
