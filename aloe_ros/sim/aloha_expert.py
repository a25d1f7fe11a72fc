"""Scripted experts for the MuJoCo ALOHA scenes (transfer cube, insertion), in joint space.

Each expert is a short list of stages. A stage names, per arm, where the arm's grip point (the
point between the fingertips) should go, with which gripper orientation and gripper opening;
goals are computed from the live object poses at the start of each stage, so the expert reacts to
where the cube or peg really is when the stage begins. The grip point moves towards its goal at a
bounded speed and the model's own kinematics turn it into joint targets (damped least squares on
a scratch copy of the MuJoCo state). A stage ends when every arm has reached its goal and the
stage's minimum time passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from aloe_ros.sim.aloha_mujoco import AlohaMujocoRobot

__all__ = ["AlohaExpert", "ArmTarget", "Stage", "make_aloha_expert"]

ARMS = ("left", "right")
GRIP_OFFSET = np.array([0.10, 0.0, 0.0])   # grip point in the gripper_link frame (m)
ARM_DOFS = {"left": np.arange(0, 6), "right": np.arange(8, 14)}
BASE_XY = {"left": np.array([-0.469, 0.5]), "right": np.array([0.469, 0.5])}
REACHED_M = 0.01
OPEN, CLOSED = 1.0, 0.0


@dataclass
class ArmTarget:
    """Where one arm's grip point goes, its gripper's x/y axes (world), and the opening."""

    position: np.ndarray
    rotation: np.ndarray
    gripper: float


@dataclass
class Stage:
    name: str
    # objects (name -> xyz) -> per-arm target; an arm left out holds its last target.
    targets: Callable[[dict[str, np.ndarray]], dict[str, ArmTarget]]
    min_time_s: float = 0.0
    # Arms that keep their goal pose and only change the gripper opening.
    grippers: dict[str, float] = field(default_factory=dict)
    # Checked when the stage ends (objects -> fine?); if not, start again at stage retry_from.
    check: Callable[[dict[str, np.ndarray]], bool] | None = None
    retry_from: str = ""


def gripper_rotation(arm: str, towards_xy: np.ndarray, pitch_down: float, roll: float = 0.0
                     ) -> np.ndarray:
    """World rotation (columns = gripper x, y, z) pointing from the arm's base towards a point.

    x (the fingers' direction) points horizontally from the base towards ``towards_xy``, tipped
    down by ``pitch_down`` rad; ``roll`` turns the fingers about x (pi/2: they close vertically).
    """
    heading = towards_xy - BASE_XY[arm]
    heading = heading / max(np.linalg.norm(heading), 1e-9)
    x = np.array([heading[0] * np.cos(pitch_down), heading[1] * np.cos(pitch_down),
                  -np.sin(pitch_down)])
    y0 = np.array([-heading[1], heading[0], 0.0])
    z0 = np.cross(x, y0)
    y = np.cos(roll) * y0 + np.sin(roll) * z0
    return np.column_stack([x, y, np.cross(x, y)])


class ArmKinematics:
    """The model's forward kinematics and a damped-least-squares IK for one arm's grip point."""

    def __init__(self, robot: AlohaMujocoRobot) -> None:
        self.model = robot.physics.model.ptr
        self.data = mujoco.MjData(self.model)
        self.robot = robot
        self.body = {arm: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY,
                                            f"vx300s_{arm}/gripper_link") for arm in ARMS}
        self.jacp = np.zeros((3, self.model.nv))
        self.jacr = np.zeros((3, self.model.nv))

    def grip_pose(self, arm: str) -> tuple[np.ndarray, np.ndarray]:
        rot = self.data.xmat[self.body[arm]].reshape(3, 3).copy()
        return self.data.xpos[self.body[arm]] + rot @ GRIP_OFFSET, rot

    def solve(self, arm: str, q_start: np.ndarray, target: ArmTarget, iterations: int = 25,
              damping: float = 1e-3, rotation_weight: float = 0.3) -> np.ndarray:
        """Joint angles that put the grip point at target.position with x/y axes as given.

        Minimises || [p - p*; w * e_R] || by dq = J^T (J J^T + lambda I)^-1 e, with e_R the
        small-angle rotation error 0.5 * sum_i (r_i x r*_i) over the axes, clamped to the
        joint ranges at every iteration.
        """
        dofs = ARM_DOFS[arm]
        lower, upper = self.model.jnt_range[dofs, 0], self.model.jnt_range[dofs, 1]
        self.data.qpos[:] = self.robot.physics.data.qpos
        q = q_start.copy()
        for _ in range(iterations):
            self.data.qpos[dofs] = q
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            position, rotation = self.grip_pose(arm)
            error_p = target.position - position
            error_r = 0.5 * sum(np.cross(rotation[:, i], target.rotation[:, i]) for i in range(3))
            error = np.concatenate([error_p, rotation_weight * error_r])
            if np.linalg.norm(error) < 1e-4:
                break
            mujoco.mj_jac(self.model, self.data, self.jacp, self.jacr, position, self.body[arm])
            jac = np.vstack([self.jacp[:, dofs], rotation_weight * self.jacr[:, dofs]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), error)
            q = np.clip(q + dq, lower, upper)
        return q


class AlohaExpert:
    """Runs a stage list on an AlohaMujocoRobot; ``act(dt)`` returns a config-order command."""

    def __init__(self, robot: AlohaMujocoRobot, stages: list[Stage], speed_m_s: float = 0.3
                 ) -> None:
        self.robot = robot
        self.stages = stages
        self.speed = speed_m_s
        self.kinematics = ArmKinematics(robot)
        self.reset()

    def reset(self) -> None:
        self.stage_index = 0
        self.stage_time = 0.0
        joints = self.robot.model_positions()
        self.joints = {"left": joints[:6].copy(), "right": joints[7:13].copy()}
        self.gripper = {"left": float(joints[6]), "right": float(joints[13])}
        self.kinematics.data.qpos[:] = self.robot.physics.data.qpos
        mujoco.mj_kinematics(self.kinematics.model, self.kinematics.data)
        self.waypoint = {arm: self.kinematics.grip_pose(arm)[0] for arm in ARMS}
        self.goal: dict[str, ArmTarget] = {}
        self.entered = -1
        self.retries = 0

    @property
    def stage(self) -> str:
        return self.stages[min(self.stage_index, len(self.stages) - 1)].name

    def next_stage(self, stage: Stage) -> None:
        """Advance, or go back to stage.retry_from when the stage's check fails (a missed grasp,
        a dropped cube): the goals of the retried stages come from where the objects are now."""
        self.stage_time = 0.0
        if stage.check is not None and not stage.check(self.objects()):
            self.retries += 1
            self.stage_index = [s.name for s in self.stages].index(stage.retry_from)
            self.entered = -1
            return
        self.stage_index += 1

    def objects(self) -> dict[str, np.ndarray]:
        """Object positions, plus each arm's current grip waypoint as '<arm>_grip'."""
        objects = {name: pose[:3] for name, pose in self.robot.object_poses().items()}
        objects.update({f"{arm}_grip": self.waypoint[arm].copy() for arm in ARMS})
        return objects

    def act(self, dt: float) -> np.ndarray:
        """One control tick: move each arm's waypoint towards its stage goal; IK; next stage."""
        stage = self.stages[min(self.stage_index, len(self.stages) - 1)]
        if self.entered != self.stage_index:  # goals are taken once, where the objects are now
            self.goal.update(stage.targets(self.objects()))
            for arm, opening in stage.grippers.items():
                self.goal[arm] = ArmTarget(self.goal[arm].position, self.goal[arm].rotation,
                                           opening)
            self.entered = self.stage_index
        reached = True
        for arm, goal in self.goal.items():
            delta = goal.position - self.waypoint[arm]
            distance = float(np.linalg.norm(delta))
            step = min(distance, self.speed * dt)
            if distance > 1e-9:
                self.waypoint[arm] = self.waypoint[arm] + delta * (step / distance)
            reached &= distance - step < REACHED_M
            waypoint = ArmTarget(self.waypoint[arm], goal.rotation, goal.gripper)
            self.joints[arm] = self.kinematics.solve(arm, self.joints[arm], waypoint)
            self.gripper[arm] = goal.gripper
        self.stage_time += dt
        if reached and self.stage_time >= stage.min_time_s and self.stage_index < len(self.stages):
            self.next_stage(stage)
        command = np.concatenate([self.joints["left"], [self.gripper["left"]],
                                  self.joints["right"], [self.gripper["right"]]])
        return self.robot.to_config(command)


# ---- transfer cube: the right arm picks the cube and hands it to the left arm ------------------
MEET = np.array([0.0, 0.5, 0.25])
PICK_PITCH = np.deg2rad(60.0)
STEEP_PICK_PITCH = np.deg2rad(80.0)
NEAR_BASE_M = 0.33


def pick_pitch(cube: np.ndarray) -> float:
    """Fingers tipped 60 degrees down; steeper for a cube near the arm's base, where the tipped
    gripper cannot get low enough before its fingertips hit the table."""
    near = np.linalg.norm(cube[:2] - BASE_XY["right"]) < NEAR_BASE_M
    return float(STEEP_PICK_PITCH if near else PICK_PITCH)

# Grip point above the cube centre at the grasp: fingertips just clear the table (pressing them
# into it jams the fingers open).
GRASP_DZ = 0.035
LIFTED_Z = 0.1     # cube centre above this: it is held, not on the table
RECEIVE_DX = -0.02  # left grip point relative to the cube centre along x at the handover


def transfer_cube_stages() -> list[Stage]:
    """Right arm: above the cube, down, close, lift to the meeting point; left arm: wait beside
    it with vertical fingers, line up with the cube at its height, slide onto it along x, close;
    then the right arm opens and backs away."""
    left_rotation = gripper_rotation("left", MEET[:2], 0.0, roll=np.pi / 2)
    right_meet_rotation = gripper_rotation("right", MEET[:2], PICK_PITCH)

    def right_at(cube: np.ndarray, offset: tuple[float, float, float], gripper: float
                 ) -> ArmTarget:
        return ArmTarget(cube + np.asarray(offset),
                         gripper_rotation("right", cube[:2], pick_pitch(cube)), gripper)

    left_wait = ArmTarget(MEET + np.array([-0.15, 0.0, 0.0]), left_rotation, OPEN)
    return [
        Stage("reach", lambda o: {"right": right_at(o["box"], (0, 0, 0.10), OPEN),
                                  "left": left_wait}),
        Stage("descend", lambda o: {"right": right_at(o["box"], (0, 0, GRASP_DZ), OPEN)}, 0.3),
        Stage("grasp", lambda o: {}, 0.6, grippers={"right": CLOSED}),
        Stage("lift", lambda o: {"right": ArmTarget(MEET, right_meet_rotation, CLOSED)}, 0.4,
              check=lambda o: bool(o["box"][2] > LIFTED_Z), retry_from="reach"),
        Stage("align", lambda o: {"left": ArmTarget(o["box"] + np.array([-0.12, 0, 0]),
                                                    left_rotation, OPEN)}, 0.2),
        Stage("receive", lambda o: {"left": ArmTarget(o["box"] + np.array([RECEIVE_DX, 0, 0]),
                                                      left_rotation, OPEN)}, 0.2),
        Stage("handover", lambda o: {}, 0.6, grippers={"left": CLOSED}),
        Stage("release", lambda o: {}, 0.5, grippers={"right": OPEN}),
        Stage("retreat", lambda o: {"right": ArmTarget(MEET + np.array([0.1, 0, 0.05]),
                                                       right_meet_rotation, OPEN)}, 0.5,
              check=lambda o: bool(o["box"][2] > LIFTED_Z), retry_from="reach"),
        Stage("done", lambda o: {}),
    ]


# ---- insertion: right arm picks the peg, left arm the socket; the peg goes in mid-air ---------
PEG_SOCKET_HEIGHT = 0.25
GRASP_Z = 0.055      # grip point height at the grasp (fingertips just above the table)


def insertion_stages() -> list[Stage]:
    """Both arms grasp from above with the fingers across the object's long (x) axis, lift,
    bring peg and socket onto one line along x at the same height, then push them together.

    Once an object is held, its arm is moved in object space: the grip goal is the grip point
    plus (where the object should be - where it is), so the unknown grasp offset cancels."""
    rotation = {"left": gripper_rotation("left", BASE_XY["left"] + [1.0, 0.0], PICK_PITCH),
                "right": gripper_rotation("right", BASE_XY["right"] + [-1.0, 0.0], PICK_PITCH)}
    holds = {"left": "socket", "right": "peg"}

    def above(o: dict[str, np.ndarray], height: float, gripper: float) -> dict[str, ArmTarget]:
        return {arm: ArmTarget(np.array([o[obj][0], o[obj][1], height]), rotation[arm], gripper)
                for arm, obj in holds.items()}

    def move_objects(peg_x: float, socket_x: float) -> Callable[[dict[str, np.ndarray]],
                                                                  dict[str, ArmTarget]]:
        def targets(o: dict[str, np.ndarray]) -> dict[str, ArmTarget]:
            goal = {"peg": np.array([peg_x, MEET[1], PEG_SOCKET_HEIGHT]),
                    "socket": np.array([socket_x, MEET[1], PEG_SOCKET_HEIGHT])}
            return {arm: ArmTarget(o[f"{arm}_grip"] + goal[obj] - o[obj], rotation[arm], CLOSED)
                    for arm, obj in holds.items()}
        return targets

    def both_lifted(o: dict[str, np.ndarray]) -> bool:
        return bool(o["peg"][2] > LIFTED_Z and o["socket"][2] > LIFTED_Z)

    # Peg and socket are 12 cm long; the pin (8 cm) sits in the socket's middle: the peg
    # touches it when the centres are 10 cm apart.
    return [
        Stage("reach", lambda o: above(o, GRASP_Z + 0.08, OPEN)),
        Stage("descend", lambda o: above(o, GRASP_Z, OPEN), 0.3),
        Stage("grasp", lambda o: {}, 0.6, grippers={"left": CLOSED, "right": CLOSED}),
        Stage("lift", lambda o: {arm: ArmTarget(o[f"{arm}_grip"] + [0, 0, 0.15], rotation[arm],
                                                CLOSED) for arm in ARMS}, 0.3,
              check=both_lifted, retry_from="reach"),
        Stage("align", move_objects(0.10, -0.10), 0.3),
        Stage("realign", move_objects(0.09, -0.09), 0.3),
        Stage("insert", move_objects(0.045, -0.045), 0.5, check=both_lifted,
              retry_from="reach"),
        Stage("push", move_objects(0.035, -0.035), 0.5),
        # Still here: the peg jammed at the socket's rim. Back off and line them up again.
        Stage("back off", move_objects(0.11, -0.11), 0.3, check=lambda o: False,
              retry_from="realign"),
    ]


def make_aloha_expert(robot: AlohaMujocoRobot) -> AlohaExpert:
    if robot.sim.scene == "transfer_cube":
        return AlohaExpert(robot, transfer_cube_stages())
    return AlohaExpert(robot, insertion_stages())
