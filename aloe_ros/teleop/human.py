"""Human commands in the policy's joint space: sticks (integrated) or a leader arm (followed).

The human's target always starts at the pose the robot was being commanded when the human
took over, and moves from there at bounded speed, so a takeover never jumps; it lives in
``robot.joint_names`` order, exactly the policy's action space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aloe_ros.config import JoystickConfig, RobotConfig, TaskFile
from aloe_ros.teleop.layout import PadLayout, PadState, resolve_layout

__all__ = ["ALL_ARMS", "HumanCommander", "apply_deadzone"]

ALL_ARMS = "both"


def apply_deadzone(value: float, deadzone: float) -> float:
    """Zero inside the deadzone, rescaled outside it so full deflection stays 1 (no step)."""
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    return float(np.sign(value) * min((magnitude - deadzone) / (1.0 - deadzone), 1.0))


@dataclass(frozen=True)
class _Arm:
    name: str
    joints: tuple[int, ...]     # non-gripper joints, in the arm's order
    grippers: tuple[int, ...]


class HumanCommander:
    """Integrates stick velocities (or follows a leader arm) from a start pose."""

    def __init__(self, robot: RobotConfig, joystick: JoystickConfig, layout: PadLayout) -> None:
        self.layout = layout
        self.deadzone = joystick.deadzone
        self.lower = np.asarray(robot.position_lower, dtype=np.float64)
        self.upper = np.asarray(robot.position_upper, dtype=np.float64)
        index = {name: i for i, name in enumerate(robot.joint_names)}
        grippers = set(robot.gripper_joints)
        groups = robot.arms or {ALL_ARMS: list(robot.joint_names)}
        self.arms = [
            _Arm(name,
                 tuple(index[j] for j in joints if j not in grippers),
                 tuple(index[j] for j in joints if j in grippers))
            for name, joints in groups.items()
        ]
        # Per-joint speed at full deflection: the configured speed, never above the limit.
        velocity_limits = np.asarray(robot.velocity_limits, dtype=np.float64)
        speed = np.full(robot.action_dim, joystick.max_joint_speed)
        for i in (index[j] for j in robot.gripper_joints):
            speed[i] = joystick.gripper_speed
        self.speed = np.minimum(speed, velocity_limits)
        self.slow_scale = joystick.slow_scale
        self.selections = [ALL_ARMS] + [arm.name for arm in self.arms if arm.name != ALL_ARMS]
        self.selected = joystick.arms if joystick.arms in self.selections else ALL_ARMS
        self.target: np.ndarray | None = None

    @classmethod
    def for_task(cls, config: TaskFile) -> HumanCommander:
        """The commander of the task's robot and joystick settings (pad layout resolved)."""
        joystick = config.joystick
        layout = resolve_layout(joystick.preset, joystick.buttons, joystick.axes,
                                joystick.joint_axes)
        return cls(config.robot, joystick, layout)

    # ---- arm select ---------------------------------------------------------------------------
    def next_arms(self) -> str:
        """Cycle the arms the sticks drive: both -> first arm -> second arm -> both."""
        position = self.selections.index(self.selected)
        self.selected = self.selections[(position + 1) % len(self.selections)]
        return self.selected

    def selected_arms(self) -> list[_Arm]:
        if self.selected == ALL_ARMS:
            return self.arms
        return [arm for arm in self.arms if arm.name == self.selected]

    # ---- targets ----------------------------------------------------------------------------
    def start(self, pose: np.ndarray) -> np.ndarray:
        """Begin at ``pose`` exactly: the first human command is the current commanded pose."""
        self.target = np.asarray(pose, dtype=np.float64).copy()
        return self.target.copy()

    def stick_velocity(self, pad: PadState) -> np.ndarray:
        """Joint velocities (rad/s) from the sticks, triggers and gripper buttons.

        Joint i of each selected arm follows ``layout.joint_axes[i]`` through the deadzone and
        scales to the joint's speed (times ``slow_scale`` while "slow" is held); joints beyond
        the mapped axes hold. Grippers open with the
        left trigger (or gripper_open) and close with the right trigger (or gripper_close).
        """
        velocity = np.zeros_like(self.speed)
        speed = self.speed * (self.slow_scale if "slow" in pad.pressed else 1.0)
        opening = pad.trigger("trigger_left", self.layout) - pad.trigger("trigger_right",
                                                                         self.layout)
        if "gripper_open" in pad.pressed:
            opening += 1.0
        if "gripper_close" in pad.pressed:
            opening -= 1.0
        opening = float(np.clip(apply_deadzone(opening, self.deadzone), -1.0, 1.0))
        for arm in self.selected_arms():
            for joint, mapping in zip(arm.joints, self.layout.joint_axes):
                value = apply_deadzone(pad.axes.get(mapping.axis, 0.0), self.deadzone)
                velocity[joint] = mapping.sign * value * speed[joint]
            for joint in arm.grippers:
                velocity[joint] = opening * speed[joint]
        return velocity

    def step_sticks(self, pad: PadState | None, dt: float) -> np.ndarray:
        """Advance the target by the stick velocities over ``dt``; no pad: hold."""
        if self.target is None:
            raise RuntimeError("HumanCommander.step_sticks before start()")
        if pad is not None and dt > 0:
            self.target = np.clip(self.target + self.stick_velocity(pad) * dt,
                                  self.lower, self.upper)
        return self.target.copy()

    def step_towards(self, goal: np.ndarray, dt: float) -> np.ndarray:
        """Move the target towards an absolute goal (leader arm) at the teleop speeds.

        NaN entries of ``goal`` (joints the leader does not report) hold. The bounded speed is
        what makes a leader arm that sits elsewhere at takeover approach smoothly, not snap.
        """
        if self.target is None:
            raise RuntimeError("HumanCommander.step_towards before start()")
        wanted = np.where(np.isnan(goal), self.target, np.clip(goal, self.lower, self.upper))
        step = self.speed * max(dt, 0.0)
        self.target = self.target + np.clip(wanted - self.target, -step, step)
        return self.target.copy()
