"""MuJoCo ALOHA backend benchmark: control-step, render and scripted-expert numbers.

Side by side in one run, on the transfer-cube model:
* one control step (20 ms of sim = 10 MuJoCo steps), without rendering;
* rendering the top camera at several sizes, with our render settings (no shadows, no
  multisampling) against gym-aloha's own (shadows 4096, 4x multisampling) as the baseline;
* the scripted expert of each scene over N episodes (seeds seed..seed+N-1): success rate,
  retries, episode length in sim seconds.

    MUJOCO_GL=egl .venv/bin/python bench/mujoco_backend.py [--episodes 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from dm_control import mujoco as dm_mujoco  # noqa: E402
from gym_aloha import constants as aloha_constants  # noqa: E402

from aloe_ros.config import load_task_config  # noqa: E402
from aloe_ros.sim.aloha_expert import make_aloha_expert  # noqa: E402
from aloe_ros.sim.aloha_mujoco import AlohaMujocoRobot  # noqa: E402

SIZES = ((120, 160), (240, 320), (480, 640))


def time_per_call(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up (context creation)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    task = load_task_config("transfer_cube")
    sim = dataclasses.replace(task.sim, seed=args.seed)
    robot = AlohaMujocoRobot(task.robot, sim, {}, task.task.episode_timeout_s)
    print(f"MUJOCO_GL={os.environ['MUJOCO_GL']}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    step_ms = time_per_call(lambda: robot.step(0.02), 50)
    print(f"control step (20 ms sim, 10 MuJoCo steps), no render: {step_ms:.1f} ms")

    print("render of the top camera  ours (no shadows/MSAA)  gym-aloha quality  ratio")
    # Render quality is fixed when a Physics creates its GL context: the baseline is its own.
    baseline_physics = dm_mujoco.Physics.from_xml_path(
        str(aloha_constants.ASSETS_DIR / "bimanual_viperx_transfer_cube.xml"))
    for h, w in SIZES:
        ours = time_per_call(functools.partial(robot.physics.render, height=h, width=w,
                                               camera_id="top"), args.repeats)
        baseline = time_per_call(functools.partial(baseline_physics.render, height=h, width=w,
                                                   camera_id="top"), args.repeats)
        print(f"  {w}x{h:<4}                  {ours:8.1f} ms            {baseline:8.1f} ms"
              f"     {baseline / ours:5.1f}x")

    for scene in ("transfer_cube", "insertion"):
        robot = AlohaMujocoRobot(task.robot, dataclasses.replace(sim, scene=scene), {},
                                 task.task.episode_timeout_s)
        report_expert(scene, robot, args.episodes, args.seed)


def report_expert(scene: str, robot: AlohaMujocoRobot, episodes: int, seed: int) -> None:
    expert = make_aloha_expert(robot)
    successes, lengths, retries, steps = 0, [], 0, 0
    start = time.perf_counter()
    for episode in range(episodes):
        robot.reset(seed=seed + episode)
        expert.reset()
        while robot.outcome is None:
            robot.command(expert.act(0.02))
            robot.step(0.02)
            steps += 1
        successes += robot.outcome.success
        lengths.append(robot.episode_time_s)
        retries += expert.retries
    expert_ms = (time.perf_counter() - start) / steps * 1e3
    print(f"scripted expert, {scene}: {successes}/{episodes} successes "
          f"({100 * successes / episodes:.0f} %), {retries} retries, episode "
          f"{np.median(lengths):.1f} s median ({max(lengths):.1f} s max) of sim time, "
          f"{expert_ms:.1f} ms per control step with physics (no render)", flush=True)

if __name__ == "__main__":
    main()
