"""Scripted experts for the sim tasks: reactive, so they can take over at any moment.

The expert looks at the privileged scene state each control tick and decides, per arm, where the
gripper tip should go and whether the gripper should be open, then turns that into joint targets
with the top-down IK. Because nothing is remembered between ticks except per-episode style
(speed, hover height, placement noise), the same expert records demonstrations and, later, plays
the simulated operator who takes over from a failing policy mid-episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aloe_ros.sim.kinematics import inverse_kinematics_down
from aloe_ros.sim.robot import ARM_GEOMETRY, SimRobot
from aloe_ros.sim.scenes import (
    FoldLaundryScene,
    PackPhoneScene,
    PickPlaceScene,
    SimObject,
)

__all__ = ["ArmGoal", "ScriptedExpert"]

ALIGN_TOLERANCE = 0.012   # xy distance at which the tip counts as above its goal
HEIGHT_TOLERANCE = 0.008


@dataclass
class ArmGoal:
    """Where one arm's tip should go now, and the gripper opening to command."""

    tip: np.ndarray
    opening: float


@dataclass
class ExpertStyle:
    """Per-episode randomness, so demonstrations are not all alike."""

    speed: float          # m/s of the tip
    hover: float          # carry height, m
    place_offset: np.ndarray
    lid_offset: np.ndarray


class ScriptedExpert:
    """Joint-position targets that solve the robot's scene from whatever state it is in."""

    def __init__(self, robot: SimRobot, rng: np.random.Generator | None = None,
                 noise: float = 1.0) -> None:
        self.robot = robot
        self.rng = rng or np.random.default_rng()
        self.noise = noise
        self.style = self.sample_style()

    def sample_style(self) -> ExpertStyle:
        n = self.noise
        return ExpertStyle(
            speed=float(0.22 * (1 + 0.25 * n * self.rng.uniform(-1, 1))),
            hover=float(0.14 + 0.02 * n * self.rng.uniform(-1, 1)),
            place_offset=self.rng.uniform(-0.02, 0.02, size=2) * n,
            lid_offset=self.rng.uniform(-0.02, 0.02, size=2) * n,
        )

    def reset(self) -> None:
        self.style = self.sample_style()

    # ---- per-arm behaviours -----------------------------------------------------------------
    def home_goal(self, arm: str) -> ArmGoal:
        geometry = ARM_GEOMETRY[arm]
        return ArmGoal(np.array([geometry.base_x, 0.22, 0.20]), 1.0)

    def pick_goal(self, tip: np.ndarray, obj: SimObject) -> ArmGoal:
        """Above the object at hover height, then straight down, then close."""
        grasp_z = obj.top - 0.002
        if np.hypot(*(tip[:2] - obj.position[:2])) > ALIGN_TOLERANCE:
            return ArmGoal(np.array([obj.position[0], obj.position[1], self.style.hover]), 1.0)
        at_height = tip[2] <= grasp_z + HEIGHT_TOLERANCE
        return ArmGoal(np.array([obj.position[0], obj.position[1], grasp_z]),
                       0.0 if at_height else 1.0)

    def place_goal(self, tip: np.ndarray, xy: np.ndarray, release_z: float) -> ArmGoal:
        """Carry at hover height to above ``xy``, lower to ``release_z``, open."""
        if np.hypot(*(tip[:2] - xy)) > ALIGN_TOLERANCE:
            return ArmGoal(np.array([xy[0], xy[1], max(self.style.hover, release_z)]), 0.0)
        at_height = tip[2] <= release_z + HEIGHT_TOLERANCE
        return ArmGoal(np.array([xy[0], xy[1], release_z]), 1.0 if at_height else 0.0)

    # ---- task plans -------------------------------------------------------------------------
    def goals(self) -> dict[str, ArmGoal]:
        scene = self.robot.scene
        tips = {arm: tip for arm, (tip, _, _) in self.robot.grippers().items()}
        if isinstance(scene, PackPhoneScene):
            return self._pack_phone(scene, tips)
        if isinstance(scene, PickPlaceScene):
            return self._pick_place(scene, tips)
        if isinstance(scene, FoldLaundryScene):
            return self._fold_laundry(scene, tips)
        raise ValueError(f"no scripted expert for scene {scene.name!r}")

    def _pack_phone(self, scene: PackPhoneScene, tips: dict[str, np.ndarray]
                    ) -> dict[str, ArmGoal]:
        box, lid, phone = scene.objects["box"], scene.objects["lid"], scene.objects["phone"]
        goals: dict[str, ArmGoal] = {}
        # Left arm: lift the lid off and lay it beside the box (to the left).
        if lid.held_by == "left":
            place = box.position[:2] + np.array([-0.19, 0.0]) + self.style.lid_offset
            goals["left"] = self.place_goal(tips["left"], place, 0.03)
        elif scene.lid_on_box():
            goals["left"] = self.pick_goal(tips["left"], lid)
        else:
            goals["left"] = self.home_goal("left")
        # Right arm: fetch the phone, wait beside the box until it is open, put the phone in.
        # "In the box" means on its floor, as the success rule has it (a release inside the open
        # box). A phone left on the lid stays at lid height when the lid is taken away; seen
        # from above it is in the box, but the episode would run out waiting for it.
        phone_in_box = (box.contains_xy(phone.position, margin=0.02) and phone.held_by is None
                        and phone.position[2] < box.size[2] / 2)
        if phone.held_by == "right":
            if scene.lid_on_box() or lid.held_by is not None:
                wait = np.array([box.position[0] + 0.17, box.position[1], self.style.hover])
                goals["right"] = ArmGoal(wait, 0.0)
            else:
                place = box.position[:2] + self.style.place_offset
                goals["right"] = self.place_goal(tips["right"], place, box.size[2] + 0.03)
        elif not phone_in_box:
            goals["right"] = self.pick_goal(tips["right"], phone)
        else:
            goals["right"] = self.home_goal("right")
        return goals

    def _pick_place(self, scene: PickPlaceScene, tips: dict[str, np.ndarray]
                    ) -> dict[str, ArmGoal]:
        cube, target = scene.objects["cube"], scene.objects["target"]
        goals = {"left": self.home_goal("left")}
        if cube.held_by == "right":
            place = target.position[:2] + self.style.place_offset
            goals["right"] = self.place_goal(tips["right"], place, cube.size[2] + 0.02)
        elif not target.contains_xy(cube.position):
            goals["right"] = self.pick_goal(tips["right"], cube)
        else:
            goals["right"] = self.home_goal("right")
        return goals

    def _fold_laundry(self, scene: FoldLaundryScene, tips: dict[str, np.ndarray]
                      ) -> dict[str, ArmGoal]:
        goals: dict[str, ArmGoal] = {}
        for arm in ("left", "right"):
            near, far = scene.objects[f"near_{arm}"], scene.objects[f"far_{arm}"]
            done = near.held_by is None and np.hypot(*(near.position[:2] - far.position[:2])) < 0.03
            if near.held_by == arm:
                goals[arm] = self.place_goal(tips[arm], far.position[:2], 0.03)
            elif done:
                goals[arm] = self.home_goal(arm)
            else:
                goals[arm] = self.pick_goal(tips[arm], near)
        return goals

    # ---- to joint space ---------------------------------------------------------------------
    def act(self, dt: float) -> np.ndarray:
        """Joint-position targets (full robot vector) for the next control tick of length dt."""
        command = self.robot.target.copy()
        grippers = self.robot.grippers()
        for arm, goal in self.goals().items():
            tip = grippers[arm][0]
            delta = goal.tip - tip
            distance = float(np.linalg.norm(delta))
            max_move = self.style.speed * dt
            step_tip = goal.tip if distance <= max_move else tip + delta * (max_move / distance)
            joints = inverse_kinematics_down(ARM_GEOMETRY[arm], step_tip)
            indices = self.robot.arm_indices[arm]
            if joints is not None:  # out of reach: hold this arm where it is commanded
                command[indices[:6]] = joints
            command[indices[6]] = goal.opening
        return np.clip(command, self.robot.lower, self.robot.upper)
