"""MuJoCo ALOHA backend: gym-aloha's bimanual ViperX model behind the SimRobot surface (no ROS).

``AlohaMujocoRobot`` loads the transfer-cube or insertion model that ships inside the
``gym-aloha`` package (XML and meshes, no download), takes joint-position commands in the
configured joint order (2 x (6 arm joints + gripper), gripper normalized 0 = closed .. 1 = open
as in gym-aloha), drives the model's position actuators towards them at no more than the
configured velocity limits, judges the episode with the task's own reward (gym-aloha's 0..4
contact stages; 4 = success) plus a timeout, and renders the configured cameras from the
model's cameras (top, angle, left_wrist, right_wrist, left_pillar, right_pillar, front_close).
The node (nodes/sim_robot_node.py) uses it exactly like the built-in ``SimRobot``.

Rendering goes through dm_control's offscreen context; ``MUJOCO_GL`` defaults to ``egl``
(headless) when unset and must be chosen before the first import of mujoco.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from aloe_ros.config import RobotConfig, SimConfig
from aloe_ros.sim.robot import CommandError, SimStep
from aloe_ros.sim.scenes import Outcome

os.environ.setdefault("MUJOCO_GL", "egl")

try:
    from dm_control import mujoco as dm_mujoco
except (ImportError, RuntimeError, OSError, AttributeError) as exc:  # the GL backend failed
    raise ImportError(
        f"MuJoCo cannot start its renderer MUJOCO_GL={os.environ['MUJOCO_GL']} ({exc}); "
        "install EGL (libegl1) or OSMesa (libosmesa6) and set MUJOCO_GL=egl or osmesa"
    ) from exc
from gym_aloha import constants as aloha_constants  # noqa: E402
from gym_aloha.tasks.sim import InsertionTask, TransferCubeTask  # noqa: E402

__all__ = ["ALOHA_CAMERAS", "AlohaMujocoRobot", "CommandError", "Outcome", "SimStep"]

log = logging.getLogger(__name__)

ARM_ROLES = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
ALOHA_CAMERAS = ("top", "angle", "front_close", "left_wrist", "right_wrist", "left_pillar",
                 "right_pillar")
SUCCESS_REWARD = 4  # gym-aloha: 4 = cube held by the left gripper off the table / peg on the pin
# Free-joint bodies of each scene: privileged-state name -> qpos slice start (after 16 arm dofs).
SCENE_OBJECTS = {"transfer_cube": {"box": 16}, "insertion": {"peg": 16, "socket": 23}}
SCENE_XML = {"transfer_cube": "bimanual_viperx_transfer_cube.xml",
             "insertion": "bimanual_viperx_insertion.xml"}
# Initial object ranges (x, y) of gym-aloha's samplers; objects start at z = 0.05 (they drop).
OBJECT_RANGES = {"box": ((0.0, 0.2), (0.4, 0.6)), "peg": ((0.1, 0.2), (0.4, 0.6)),
                 "socket": ((-0.2, -0.1), (0.4, 0.6))}
FELL_OFF_Z = -0.05


def gripper_to_fingers(normalized: float) -> float:
    """gym-aloha's normalized gripper command (0 closed, 1 open) -> left finger slide (m)."""
    return float(aloha_constants.unnormalize_puppet_gripper_position(normalized))


def fingers_to_gripper(finger: float) -> float:
    return float(aloha_constants.normalize_puppet_gripper_position(finger))


class AlohaMujocoRobot:
    """gym-aloha's ViperX pair in MuJoCo, with the SimRobot surface the sim node drives."""

    def __init__(self, robot: RobotConfig, sim: SimConfig, cameras: dict[str, tuple[int, int]],
                 episode_timeout_s: float) -> None:
        if sim.scene not in SCENE_XML:
            raise ValueError(f"the MuJoCo ALOHA backend has scenes {sorted(SCENE_XML)}, "
                             f"not {sim.scene!r}")
        unknown = sorted(set(cameras) - set(ALOHA_CAMERAS))
        if unknown:
            raise ValueError(f"cameras {unknown} are not in the ALOHA model; it has "
                             f"{', '.join(ALOHA_CAMERAS)}")
        self.robot = robot
        self.sim = sim
        self.cameras = dict(cameras)
        self.episode_timeout_s = episode_timeout_s
        # model order (gym-aloha): left 6 + gripper, right 6 + gripper; config order via arms.
        self.config_index = self._model_to_config_indices(robot)
        self.lower = np.asarray(robot.position_lower, dtype=np.float64)
        self.upper = np.asarray(robot.position_upper, dtype=np.float64)
        self.velocity_limits = np.asarray(robot.velocity_limits, dtype=np.float64)
        self.home = np.asarray(robot.home_position, dtype=np.float64)
        self.physics = dm_mujoco.Physics.from_xml_path(
            str(aloha_constants.ASSETS_DIR / SCENE_XML[sim.scene]))
        # Shadows and multisampling cost ~10x the render time of a small offscreen frame.
        self.physics.model.vis.quality.shadowsize = 0
        self.physics.model.vis.quality.offsamples = 0
        self.task = TransferCubeTask() if sim.scene == "transfer_cube" else InsertionTask()
        self.timestep = float(self.physics.model.opt.timestep)
        self.rng = np.random.default_rng(sim.seed)
        self.target = self.home.copy()
        self.setpoint = self.home.copy()
        self.episode_time_s = 0.0
        self.episode_count = 0
        self.reward = 0
        self.max_reward = 0
        self.outcome: Outcome | None = None
        self.reset()

    @staticmethod
    def _model_to_config_indices(robot: RobotConfig) -> np.ndarray:
        """index i of the model's 14-vector -> position of that joint in robot.joint_names."""
        if set(robot.arms) != {"left", "right"}:
            raise ValueError("the MuJoCo ALOHA backend needs robot.arms with exactly 'left' and "
                             f"'right', each listing 7 joints ({', '.join(ARM_ROLES)})")
        order = []
        for arm in ("left", "right"):
            joints = robot.arms[arm]
            if len(joints) != len(ARM_ROLES):
                raise ValueError(f"robot.arms.{arm} lists {len(joints)} joints; the ALOHA arm "
                                 f"has {len(ARM_ROLES)}: {', '.join(ARM_ROLES)}")
            order += [robot.joint_names.index(j) for j in joints]
        if len(robot.joint_names) != len(order):
            raise ValueError(f"robot.joint_names has {len(robot.joint_names)} joints; the ALOHA "
                             f"model has {len(order)}")
        return np.asarray(order)

    # ---- conversions between config order and the model ---------------------------------
    def to_model(self, config_vector: np.ndarray) -> np.ndarray:
        return np.asarray(config_vector, dtype=np.float64)[self.config_index]

    def to_config(self, model_vector: np.ndarray) -> np.ndarray:
        out = np.empty(len(self.config_index))
        out[self.config_index] = model_vector
        return out

    def model_positions(self) -> np.ndarray:
        """14-D joint positions in model order, grippers normalized."""
        return np.asarray(self.task.get_qpos(self.physics), dtype=np.float64)

    @property
    def positions(self) -> np.ndarray:
        return self.to_config(self.model_positions())

    @property
    def velocities(self) -> np.ndarray:
        return self.to_config(np.asarray(self.task.get_qvel(self.physics), dtype=np.float64))

    # ---- episode --------------------------------------------------------------------------
    def sample_object_poses(self) -> dict[str, np.ndarray]:
        """gym-aloha's uniform start ranges, shrunk around their centres by sim.randomization."""
        poses = {}
        for name in SCENE_OBJECTS[self.sim.scene]:
            ranges = np.asarray(OBJECT_RANGES[name])
            centre = ranges.mean(axis=1)
            xy = centre + self.sim.randomization * (self.rng.uniform(ranges[:, 0], ranges[:, 1])
                                                    - centre)
            poses[name] = np.concatenate([xy, [0.05, 1.0, 0.0, 0.0, 0.0]])
        return poses

    def reset(self, seed: int | None = None) -> None:
        """New episode: arms at home, objects at new random poses, a settled physics state."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        home_model = self.to_model(self.home)
        with self.physics.reset_context():
            self.physics.data.qpos[:16] = self._actuator_vector(home_model)
            self.physics.data.qvel[:] = 0.0
            for name, pose in self.sample_object_poses().items():
                start = SCENE_OBJECTS[self.sim.scene][name]
                self.physics.data.qpos[start:start + 7] = pose
            self.physics.data.ctrl[:] = self._actuator_vector(home_model)
        self.target = self.home.copy()
        self.setpoint = self.home.copy()
        self.episode_time_s = 0.0
        self.reward = 0
        self.max_reward = 0
        self.outcome = None
        self.episode_count += 1

    @staticmethod
    def _actuator_vector(model_vector: np.ndarray) -> np.ndarray:
        """14-D model-order joints -> the 16 position actuators (two fingers per gripper)."""
        left_finger = gripper_to_fingers(model_vector[6])
        right_finger = gripper_to_fingers(model_vector[13])
        return np.concatenate([model_vector[:6], [left_finger, -left_finger],
                               model_vector[7:13], [right_finger, -right_finger]])

    def command(self, positions: np.ndarray) -> None:
        """Set the joint-position target (config order); clamped to the position limits."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != self.home.shape:
            raise CommandError(
                f"command has {positions.size} values, the robot has {self.home.size} joints")
        if not np.all(np.isfinite(positions)):
            raise CommandError("command contains NaN or inf")
        self.target = np.clip(positions, self.lower, self.upper)

    def step(self, dt: float) -> SimStep:
        """Move the actuator setpoints towards the target at the velocity limits; simulate dt."""
        max_step = self.velocity_limits * dt
        self.setpoint = self.setpoint + np.clip(self.target - self.setpoint, -max_step, max_step)
        self.physics.data.ctrl[:] = self._actuator_vector(self.to_model(self.setpoint))
        substeps = max(1, round(dt / self.timestep))
        self.physics.step(substeps)
        self.episode_time_s += dt
        if self.outcome is None:
            self.outcome = self.judge()
            if self.outcome is not None:
                log.info("episode %d: %s (%s)", self.episode_count,
                         "success" if self.outcome.success else "failure", self.outcome.reason)
                return SimStep(self.episode_time_s, self.outcome)
        return SimStep(self.episode_time_s, None)

    def judge(self) -> Outcome | None:
        """Success when gym-aloha's task reward reaches 4; failure on timeout or a fallen object."""
        self.reward = int(self.task.get_reward(self.physics))
        self.max_reward = max(self.max_reward, self.reward)
        if self.reward >= SUCCESS_REWARD:
            return Outcome(True, "cube handed over" if self.sim.scene == "transfer_cube"
                           else "peg inserted")
        for name, pose in self.object_poses().items():
            if pose[2] < FELL_OFF_Z:
                return Outcome(False, f"{name} fell off the table")
        if self.episode_time_s >= self.episode_timeout_s:
            return Outcome(False, f"timeout (best stage {self.max_reward}/4)")
        return None

    def mirror(self, positions: np.ndarray, objects: dict[str, Any]) -> None:
        """Put the model in a published state without simulating: config-order joints and
        ``{name: {"pose": [x, y, z, qw, qx, qy, qz]}}`` as in privileged_state (the simulated
        operator's copy of the robot it watches)."""
        model = self.to_model(np.asarray(positions, dtype=np.float64))
        self.physics.data.qpos[:16] = self._actuator_vector(model)
        for name, obj in objects.items():
            start = SCENE_OBJECTS[self.sim.scene][name]
            self.physics.data.qpos[start:start + 7] = np.asarray(obj["pose"], dtype=np.float64)
        self.physics.data.qvel[:] = 0.0
        self.physics.forward()
        self.target = self.setpoint = np.asarray(positions, dtype=np.float64).copy()

    # ---- observation ------------------------------------------------------------------------
    def object_poses(self) -> dict[str, np.ndarray]:
        """name -> [x, y, z, qw, qx, qy, qz] of each free object."""
        qpos = self.physics.data.qpos
        return {name: np.array(qpos[start:start + 7])
                for name, start in SCENE_OBJECTS[self.sim.scene].items()}

    def render(self) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(
                    self.physics.render(height=h, width=w, camera_id=name))
                for name, (h, w) in self.cameras.items()}

    def privileged_state(self) -> dict[str, Any]:
        """Ground truth for scripted experts: object poses, gripper positions, task stage."""
        data = self.physics.named.data
        grippers = {}
        joints = self.model_positions()
        for arm, gripper_index in (("left", 6), ("right", 13)):
            grippers[arm] = {"link": np.round(data.xpos[f"vx300s_{arm}/gripper_link"], 4).tolist(),
                             "opening": round(float(joints[gripper_index]), 3)}
        return {
            "scene": self.sim.scene,
            "backend": "aloha_mujoco",
            "episode": self.episode_count,
            "time_s": round(self.episode_time_s, 4),
            "objects": {name: {"pose": np.round(pose, 4).tolist()}
                        for name, pose in self.object_poses().items()},
            "grippers": grippers,
            "reward": self.reward,
            "max_reward": self.max_reward,
            "outcome": None if self.outcome is None else {
                "success": self.outcome.success, "reason": self.outcome.reason},
        }
