"""The simulated bimanual robot: joint-position servo, kinematics, scene and cameras (no ROS).

``SimRobot`` takes joint-position commands in the configured joint order, moves each joint
towards its command no faster than its velocity limit, lets the scene handle grasps and decide
success or failure, and renders the configured cameras. The node (nodes/sim_robot_node.py) only
moves data between this object and topics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from aloe_ros.config import RobotConfig, SimConfig
from aloe_ros.sim.kinematics import ARM_JOINT_ROLES, ArmGeometry, forward_kinematics
from aloe_ros.sim.render import SimCameraRenderer
from aloe_ros.sim.scenes import ArmView, Outcome, make_scene

__all__ = ["ARM_GEOMETRY", "CommandError", "SimRobot", "SimStep"]

log = logging.getLogger(__name__)

ARM_GEOMETRY = {"left": ArmGeometry(base_x=-0.25), "right": ArmGeometry(base_x=0.25)}


class CommandError(ValueError):
    """A joint command the sim refuses (wrong size, NaN/inf); the robot keeps its last command."""


@dataclass
class SimStep:
    """What one physics step produced."""

    time_s: float
    outcome: Outcome | None


class SimRobot:
    """A two-arm ALOHA-style robot on a table with a task scene."""

    def __init__(self, robot: RobotConfig, sim: SimConfig, cameras: dict[str, tuple[int, int]],
                 episode_timeout_s: float) -> None:
        self.robot = robot
        self.sim = sim
        self.episode_timeout_s = episode_timeout_s
        self.arm_indices = self._arm_joint_indices(robot)
        self.lower = np.asarray(robot.position_lower, dtype=np.float64)
        self.upper = np.asarray(robot.position_upper, dtype=np.float64)
        self.velocity_limits = np.asarray(robot.velocity_limits, dtype=np.float64)
        self.home = np.asarray(robot.home_position, dtype=np.float64)
        self.renderer = SimCameraRenderer(cameras)
        self.scene = make_scene(sim.scene)
        self.rng = np.random.default_rng(sim.seed)
        self.positions = self.home.copy()
        self.velocities = np.zeros_like(self.home)
        self.target = self.home.copy()
        self.episode_time_s = 0.0
        self.episode_count = 0
        self.outcome: Outcome | None = None
        self.reset()

    @staticmethod
    def _arm_joint_indices(robot: RobotConfig) -> dict[str, np.ndarray]:
        """Map 'left'/'right' to the indices of their 7 joints, in ARM_JOINT_ROLES order."""
        if set(robot.arms) != {"left", "right"}:
            raise ValueError(
                "the built-in sim needs robot.arms with exactly 'left' and 'right', each listing "
                f"7 joints ({', '.join(ARM_JOINT_ROLES)}); got arms {sorted(robot.arms)}"
            )
        indices = {}
        for arm, joints in robot.arms.items():
            if len(joints) != len(ARM_JOINT_ROLES):
                raise ValueError(
                    f"robot.arms.{arm} lists {len(joints)} joints; the sim arm has "
                    f"{len(ARM_JOINT_ROLES)}: {', '.join(ARM_JOINT_ROLES)}"
                )
            indices[arm] = np.array([robot.joint_names.index(j) for j in joints])
        return indices

    def reset(self, seed: int | None = None) -> None:
        """New episode: arms home, objects at new random poses."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.scene.reset(self.rng, self.sim.randomization)
        self.positions = self.home.copy()
        self.velocities = np.zeros_like(self.home)
        self.target = self.home.copy()
        self.episode_time_s = 0.0
        self.outcome = None
        self.episode_count += 1

    def command(self, positions: np.ndarray) -> None:
        """Set the joint-position target; clamped to the position limits."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != self.home.shape:
            raise CommandError(
                f"command has {positions.size} values, the robot has {self.home.size} joints"
            )
        if not np.all(np.isfinite(positions)):
            raise CommandError("command contains NaN or inf")
        self.target = np.clip(positions, self.lower, self.upper)

    def step(self, dt: float) -> SimStep:
        """Move every joint towards its target at most velocity_limit * dt; run the scene."""
        max_step = self.velocity_limits * dt
        delta = np.clip(self.target - self.positions, -max_step, max_step)
        self.positions = self.positions + delta
        self.velocities = delta / dt if dt > 0 else np.zeros_like(delta)
        self.episode_time_s += dt
        if self.outcome is None:
            self.outcome = self.scene.step(self.arm_views())
            if self.outcome is None and self.episode_time_s >= self.episode_timeout_s:
                self.outcome = Outcome(False, "timeout")
            if self.outcome is not None:
                self.scene.outcome = self.outcome
                log.info("episode %d: %s (%s)", self.episode_count,
                         "success" if self.outcome.success else "failure", self.outcome.reason)
                return SimStep(self.episode_time_s, self.outcome)
        return SimStep(self.episode_time_s, None)

    def arm_joints(self, arm: str, positions: np.ndarray | None = None) -> np.ndarray:
        values = self.positions if positions is None else positions
        return values[self.arm_indices[arm]]

    def grippers(self) -> dict[str, tuple[np.ndarray, float, float]]:
        """arm -> (tip xyz, yaw, opening)."""
        out = {}
        for arm in self.arm_indices:
            joints = self.arm_joints(arm)
            tip, yaw = forward_kinematics(ARM_GEOMETRY[arm], joints)
            out[arm] = (tip, yaw, float(joints[6]))
        return out

    def arm_views(self) -> list[ArmView]:
        return [ArmView(arm, tip, opening) for arm, (tip, _, opening) in self.grippers().items()]

    def render(self) -> dict[str, np.ndarray]:
        return self.renderer.render(self.scene, self.grippers())

    def privileged_state(self) -> dict[str, object]:
        """Ground truth for scripted experts and the simulated operator."""
        return {
            "scene": self.scene.name,
            "episode": self.episode_count,
            "time_s": round(self.episode_time_s, 4),
            "objects": self.scene.privileged_state(),
            "grippers": {arm: {"tip": tip.round(4).tolist(), "opening": round(opening, 3)}
                         for arm, (tip, _, opening) in self.grippers().items()},
            "outcome": None if self.outcome is None else {
                "success": self.outcome.success, "reason": self.outcome.reason},
        }
