"""The robot and scripted expert of ``sim.backend`` (no ROS): one place that picks them.

``builtin`` is the kinematic sim (pack_phone, fold_laundry, pick_place) with its reactive
expert; ``aloha_mujoco`` is gym-aloha's MuJoCo model (transfer_cube, insertion) with the staged
ALOHA experts, imported only when chosen (MuJoCo and its renderer load then).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from aloe_ros.config import RobotConfig, SimConfig
from aloe_ros.sim.expert import ScriptedExpert
from aloe_ros.sim.robot import SimRobot

__all__ = ["Expert", "make_expert", "make_robot"]


class Expert(Protocol):
    def reset(self) -> None: ...

    def act(self, dt: float) -> np.ndarray: ...


def make_robot(robot: RobotConfig, sim: SimConfig, cameras: dict[str, tuple[int, int]],
               episode_timeout_s: float) -> SimRobot:
    """The simulated robot; the MuJoCo one has the same surface (command, step, render, reset,
    positions, outcome, privileged_state)."""
    if sim.backend == "aloha_mujoco":
        from aloe_ros.sim.aloha_mujoco import AlohaMujocoRobot

        return AlohaMujocoRobot(robot, sim, cameras, episode_timeout_s)  # type: ignore[return-value]
    return SimRobot(robot, sim, cameras, episode_timeout_s)


def make_expert(robot: SimRobot, sim: SimConfig, rng: np.random.Generator) -> Expert:
    """The scripted expert that solves the robot's scene from its current state."""
    if sim.backend == "aloha_mujoco":
        from aloe_ros.sim.aloha_expert import make_aloha_expert

        return make_aloha_expert(robot)  # type: ignore[arg-type]
    return ScriptedExpert(robot, rng)
