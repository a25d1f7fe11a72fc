"""MuJoCo ALOHA backend (gym-aloha model): reset, commands, rendering, outcomes, the scripted
expert, and the node graph through `aloe-ros up transfer_cube --sim`."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aloe_ros.config import ConfigError, SimConfig, TaskFile, load_task_config

pytest.importorskip("gym_aloha", reason="gym-aloha (MuJoCo ALOHA model) is not installed")

try:
    from aloe_ros.sim.aloha_expert import make_aloha_expert
    from aloe_ros.sim.aloha_mujoco import OBJECT_RANGES, AlohaMujocoRobot
except (ImportError, RuntimeError, AttributeError, OSError) as exc:  # no EGL / OSMesa here
    pytest.skip(f"MuJoCo ALOHA backend unavailable: {exc}", allow_module_level=True)
from aloe_ros.sim.operator import SimulatedOperator  # noqa: E402
from aloe_ros.sim.robot import CommandError  # noqa: E402

AloeRos = [str(Path(sys.executable).with_name("aloe-ros"))]
SMALL = {"top": (48, 64)}


@pytest.fixture(scope="module")
def task() -> TaskFile:
    return load_task_config("transfer_cube")


def make_robot(task: TaskFile, cameras: dict[str, tuple[int, int]] | None = None,
               timeout_s: float = 20.0, **sim: object) -> AlohaMujocoRobot:
    return AlohaMujocoRobot(task.robot, dataclasses.replace(task.sim, **sim),
                            {} if cameras is None else cameras, timeout_s)


def render_or_skip(robot: AlohaMujocoRobot) -> dict[str, np.ndarray]:
    try:
        return robot.render()
    except (RuntimeError, OSError, ImportError, AttributeError) as exc:  # no EGL / OSMesa
        pytest.skip(f"MuJoCo cannot render here (MUJOCO_GL={robot_gl()}): {exc}")


def robot_gl() -> str:
    import os

    return os.environ.get("MUJOCO_GL", "")


def test_reset_puts_the_arms_home_and_the_cube_in_gym_aloha_range(task: TaskFile) -> None:
    robot = make_robot(task)
    np.testing.assert_allclose(robot.positions, task.robot.home_position, atol=1e-3)
    (x_lo, x_hi), (y_lo, y_hi) = OBJECT_RANGES["box"]
    seen = []
    for seed in (1, 2, 1):
        robot.reset(seed=seed)
        box = robot.object_poses()["box"]
        assert x_lo <= box[0] <= x_hi and y_lo <= box[1] <= y_hi
        seen.append(box[:2].copy())
    np.testing.assert_array_equal(seen[0], seen[2])   # same seed, same scene
    assert not np.allclose(seen[0], seen[1])
    assert robot.outcome is None and robot.episode_time_s == 0.0


def test_command_moves_the_joints_within_the_velocity_limits(task: TaskFile) -> None:
    robot = make_robot(task)
    target = np.asarray(task.robot.home_position, dtype=float).copy()
    waist = task.robot.joint_names.index("right_waist")
    target[waist] = 0.5
    robot.command(target)
    robot.step(0.02)
    limit = task.robot.velocity_limits[waist] * 0.02
    assert robot.setpoint[waist] == pytest.approx(limit)   # setpoint rate-limited
    for _ in range(50):
        robot.step(0.02)
    assert robot.positions[waist] == pytest.approx(0.5, abs=0.03)
    others = np.delete(np.arange(len(target)), waist)
    np.testing.assert_allclose(robot.positions[others], target[others], atol=0.05)


def test_bad_commands_are_refused_and_the_last_command_kept(task: TaskFile) -> None:
    robot = make_robot(task)
    before = robot.target.copy()
    with pytest.raises(CommandError):
        robot.command(np.zeros(5))
    bad = before.copy()
    bad[0] = np.nan
    with pytest.raises(CommandError):
        robot.command(bad)
    np.testing.assert_array_equal(robot.target, before)
    far = before + 100.0
    robot.command(far)
    np.testing.assert_array_equal(robot.target, task.robot.position_upper)


def test_render_gives_frames_of_the_configured_size(task: TaskFile) -> None:
    robot = make_robot(task, {"top": (48, 64), "left_wrist": (30, 40)})
    frames = render_or_skip(robot)
    assert frames["top"].shape == (48, 64, 3) and frames["top"].dtype == np.uint8
    assert frames["left_wrist"].shape == (30, 40, 3)
    assert frames["top"].std() > 5   # a scene, not a blank frame


def test_unknown_camera_and_wrong_scene_are_refused(task: TaskFile) -> None:
    with pytest.raises(ValueError, match="not in the ALOHA model"):
        make_robot(task, {"wrist_cam": (10, 10)})
    with pytest.raises(ConfigError, match="scene"):
        SimConfig(backend="aloha_mujoco", scene="pack_phone")
    with pytest.raises(ConfigError, match="scene"):
        SimConfig(backend="builtin", scene="transfer_cube")


def test_timeout_is_a_failure_with_the_best_stage(task: TaskFile) -> None:
    robot = make_robot(task, timeout_s=0.2)
    outcomes = [robot.step(0.02).outcome for _ in range(12)]
    final = [o for o in outcomes if o is not None]
    assert len(final) == 1 and not final[0].success
    assert "timeout" in final[0].reason
    assert robot.privileged_state()["outcome"]["success"] is False


def test_expert_hands_the_cube_over_on_fixed_seeds(task: TaskFile) -> None:
    """Success is gym-aloha's own reward 4 (cube held by the left gripper, off the table)."""
    robot = make_robot(task)
    expert = make_aloha_expert(robot)
    for seed in (0, 2):
        robot.reset(seed=seed)
        expert.reset()
        while robot.outcome is None:
            robot.command(expert.act(0.02))
            robot.step(0.02)
        assert robot.outcome.success, (seed, robot.outcome, expert.stage)
        assert robot.max_reward == 4
        assert robot.episode_time_s < 10.0


def test_insertion_expert_puts_the_peg_on_the_pin(task: TaskFile) -> None:
    robot = make_robot(task, scene="insertion")
    assert set(robot.privileged_state()["objects"]) == {"peg", "socket"}
    expert = make_aloha_expert(robot)
    robot.reset(seed=0)
    expert.reset()
    while robot.outcome is None:
        robot.command(expert.act(0.02))
        robot.step(0.02)
    assert robot.outcome.success, (robot.outcome, expert.stage)
    assert robot.outcome.reason == "peg inserted"


def run_with_operator(task: TaskFile, scene: str, seed: int = 0, **operator: object
                      ) -> tuple[AlohaMujocoRobot, SimulatedOperator, list[str], list[str]]:
    """A policy that holds still, the simulated operator watching through privileged state
    (as sim_operator_node does: its targets go to the robot only while it holds control)."""
    config = dataclasses.replace(task, sim=dataclasses.replace(task.sim, scene=scene))
    settings = dataclasses.replace(config.operator, **operator)
    robot = make_robot(task, timeout_s=20.0, scene=scene)
    robot.reset(seed=seed)
    sim_operator = SimulatedOperator(config, settings)
    dt, now, in_control = 0.02, 0.0, False
    presses: list[str] = []
    reasons: list[str] = []
    hold = robot.positions.copy()
    while True:
        decision = sim_operator.step(robot.privileged_state(), robot.positions, now,
                                     human_in_control=in_control, episode_running=True, dt=dt)
        for button in decision.press:
            presses.append(button)
            reasons.append(decision.reason)
            if button in ("takeover", "handback"):
                in_control = button == "takeover"
                hold = robot.positions.copy()
        if robot.outcome is not None and presses[-1:] in (["success"], ["failure"]):
            return robot, sim_operator, presses, reasons
        if robot.outcome is None:
            robot.command(decision.target if in_control and decision.target is not None
                          else hold)
            robot.step(dt)
        now += dt
        assert now < 25.0, "the operator never marked the episode"


def test_operator_takes_over_a_stalled_policy_and_the_aloha_expert_hands_the_cube_over(
        task: TaskFile) -> None:
    robot, sim_operator, presses, reasons = run_with_operator(task, "transfer_cube")
    assert presses[0] == "takeover" and reasons[0].startswith("no progress for")
    assert sim_operator.takeovers >= 1
    assert robot.outcome is not None and robot.outcome.success, (robot.outcome, presses)
    assert presses[-1] == "success" and reasons[-1] == "cube handed over"
    assert isinstance(sim_operator.world.mirror, AlohaMujocoRobot)


def test_operator_that_never_intervenes_marks_the_timeout(task: TaskFile) -> None:
    robot, sim_operator, presses, _ = run_with_operator(task, "transfer_cube",
                                                        intervention_rate=0.0)
    assert sim_operator.takeovers == 0 and "takeover" not in presses
    assert robot.outcome is not None and not robot.outcome.success
    assert presses == ["failure"]


def test_operator_mirror_follows_the_published_state(task: TaskFile) -> None:
    robot = make_robot(task, timeout_s=20.0)
    robot.reset(seed=3)
    expert = make_aloha_expert(robot)
    for _ in range(60):
        robot.command(expert.act(0.02))
        robot.step(0.02)
    mirror = make_robot(task)
    state = robot.privileged_state()
    mirror.mirror(robot.positions, state["objects"])
    np.testing.assert_allclose(mirror.positions, robot.positions, atol=1e-6)
    for name, pose in robot.object_poses().items():
        np.testing.assert_allclose(mirror.object_poses()[name], pose, atol=1e-3)


def test_inprocess_loop_records_an_assisted_transfer_cube_episode() -> None:
    """`bench learning --loop inprocess` on the MuJoCo scene: the loop's robot, operator,
    teleop follower and recorder, with a policy that never moves."""
    from test_bench_inprocess import HoldingPolicy

    from aloe_ros.benchmarks.inprocess_loop import rollout_assisted
    from aloe_ros.policies.sim_rollouts import make_sim_robot

    config = load_task_config("transfer_cube")
    config.cameras[0].width, config.cameras[0].height = 64, 48   # render cost, not behaviour
    robot = make_sim_robot(config)
    assert isinstance(robot, AlohaMujocoRobot)
    operator = SimulatedOperator(config, config.operator, np.random.default_rng(0))
    policy = HoldingPolicy(list(config.robot.joint_names))
    result = rollout_assisted(config, robot, policy, operator, seed=0, episode_id=0)
    assert result.takeovers >= 1 and result.takeover_reasons[0].startswith("no progress")
    episode = result.episode
    assert episode.human.any() and not episode.human[0]
    assert episode.images["top"].shape[1:] == (48, 64, 3)
    assert result.success == (episode.rewards.sum() == 1.0), (result.reason, result.takeovers)


@pytest.mark.slow
def test_up_transfer_cube_sim_publishes_joint_states_and_images(ros_context, tmp_path: Path
                                                               ) -> None:  # noqa: ANN001
    import rclpy
    from helpers import spin_until
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.nodes.common import qos_profile

    config = load_task_config("transfer_cube")
    states: list[JointState] = []
    # 30 s: on a loaded 2-core machine the nodes take 10-20 s to import torch / MuJoCo.
    images: list[Image] = []
    node = rclpy.create_node("mujoco_up_listener", context=ros_context)
    node.create_subscription(JointState, config.topics.joint_states, states.append,
                             qos_profile(config.qos.command))
    camera = config.cameras[0]
    node.create_subscription(Image, camera.topic, images.append, qos_profile(config.qos.sensor))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*AloeRos, "up", "transfer_cube", "--sim", "--duration", "30", "--no-record"],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            spin_until(executor, lambda: process.poll() is not None, timeout_s=120)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
    node.destroy_node()
    output = log_path.read_text(errors="replace")
    assert process.returncode == 0, output
    assert "(aloha_mujoco) up" in output
    assert "simulated operator on" in output, "the MuJoCo graph has the sim operator too"
    assert len(states) > 10, output
    assert list(states[-1].name) == list(config.robot.joint_names)
    assert len(images) > 5, output
    assert (images[-1].height, images[-1].width) == (camera.height, camera.width)
    assert images[-1].encoding == "rgb8"
