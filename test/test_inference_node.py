"""chunk_inference_node over DDS: chunks and commands from fresh inputs, stale inputs, bad input,
interventions, hot swap (good, broken, untrusted), a LeRobot ACT driving it, start-up checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import node_process_command, spin_until, write_task_config
from policy_fixtures import save_tiny_lerobot, tiny_builtin

from aloe_ros.config import load_task_config

torch.set_num_threads(1)

H, W = 24, 32
CAMERAS = ["top", "left_wrist", "right_wrist"]


def task_yaml(tmp_path: Path, **policy: Any) -> Path:
    cameras = [{"name": c, "source": "sim", "width": W, "height": H} for c in CAMERAS]
    settings = {"chunk_horizon": 10, "execute_horizon": 5, "flow_steps": 2,
                "checkpoint_root": str(tmp_path / "ckpts"), "max_observation_age_s": 1.0}
    settings.update(policy)
    return write_task_config(tmp_path, overrides={"cameras": cameras, "policy": settings})


def save_builtin(config_path: Path, directory: Path, version: str) -> str:
    policy = tiny_builtin(load_task_config(config_path))
    return policy.save(directory, version=version)


class Harness:
    """The node under test plus a driver node (robot + operator side) in one executor."""

    def __init__(self, context: Any, config_path: Path, policy_path: str = "") -> None:
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image, JointState

        from aloe_ros.io.images import fill_image
        from aloe_ros.msg import ActionChunk, EpisodeEvent, InterventionEvent, PolicyUpdate, Status
        from aloe_ros.nodes.chunk_inference_node import ChunkInferenceNode

        self.config = load_task_config(config_path)
        self.node = ChunkInferenceNode(context=context, parameter_overrides=[
            Parameter("config_file", value=str(config_path)),
            Parameter("policy_path", value=policy_path)])
        import rclpy

        self.driver = rclpy.create_node("driver", context=context)
        topics = self.config.topics
        qos = 10
        self.image_pubs = {c.name: self.driver.create_publisher(Image, c.topic, qos)
                           for c in self.config.cameras}
        self.state_pub = self.driver.create_publisher(JointState, topics.joint_states, qos)
        self.intervention_pub = self.driver.create_publisher(InterventionEvent,
                                                             topics.intervention, 100)
        self.episode_pub = self.driver.create_publisher(EpisodeEvent, topics.episode, 100)
        self.update_pub = self.driver.create_publisher(PolicyUpdate, topics.policy_update, 100)
        self.chunks: list[Any] = []
        self.commands: list[Any] = []
        self.statuses: list[Any] = []
        self.driver.create_subscription(ActionChunk, topics.policy_chunk, self.chunks.append, 100)
        self.driver.create_subscription(JointState, topics.policy_command, self.commands.append,
                                        100)
        self.driver.create_subscription(
            Status, topics.status,
            lambda m: self.statuses.append(m) if m.node == "chunk_inference" else None, 100)
        self.state = np.asarray(self.config.robot.home_position, dtype=np.float64)
        self.send_images = True
        self.image_size = (H, W)
        self.frame = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
        self.Image, self.JointState, self.fill_image = Image, JointState, fill_image
        self.InterventionEvent, self.EpisodeEvent = InterventionEvent, EpisodeEvent
        self.PolicyUpdate = PolicyUpdate
        self.driver.create_timer(1 / 30, self.publish_inputs)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.driver)

    def publish_inputs(self) -> None:
        now = self.driver.get_clock().now().to_msg()
        state = self.JointState()
        state.header.stamp = now
        state.name = list(self.config.robot.joint_names)
        state.position = self.state.tolist()
        self.state_pub.publish(state)
        if not self.send_images:
            return
        frame = self.frame if self.image_size == (H, W) else np.zeros((*self.image_size, 3),
                                                                     np.uint8)
        for publisher in self.image_pubs.values():
            msg = self.Image()
            msg.header.stamp = now
            self.fill_image(msg, frame, "rgb8")
            publisher.publish(msg)

    def intervene(self, kind: int) -> None:
        msg = self.InterventionEvent()
        msg.kind = kind
        msg.source = "test"
        self.intervention_pub.publish(msg)

    def episode(self, kind: int) -> None:
        msg = self.EpisodeEvent()
        msg.kind = kind
        msg.episode_id = 7
        self.episode_pub.publish(msg)

    def update(self, uri: str, sha: str, version: str) -> None:
        msg = self.PolicyUpdate()
        msg.checkpoint_uri = uri
        msg.sha256 = sha
        msg.policy_version = version
        self.update_pub.publish(msg)

    def counter(self, name: str) -> int:
        counters = dict(self.node.counters)
        counters.update(self.node.executor_core.counters.as_dict())
        return int(counters.get(name, 0))

    def spin_until(self, predicate: Any, timeout_s: float = 30.0) -> bool:
        return spin_until(self.executor, predicate, timeout_s)

    def close(self) -> None:
        self.node.close()
        self.executor.shutdown()
        self.node.destroy_node()
        self.driver.destroy_node()


@pytest.fixture
def harness_factory(ros_context: Any):
    made: list[Harness] = []

    def make(config_path: Path, policy_path: str = "") -> Harness:
        harness = Harness(ros_context, config_path, policy_path)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def test_chunks_and_commands_from_fresh_inputs(tmp_path: Path, harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path)
    save_builtin(config_path, tmp_path / "ckpts" / "v1", "v1")
    h = harness_factory(config_path, str(tmp_path / "ckpts" / "v1"))
    assert h.spin_until(lambda: len(h.chunks) >= 3 and len(h.commands) >= 20)
    chunk = h.chunks[-1]
    joints = list(h.config.robot.joint_names)
    assert chunk.policy_version == "v1"
    assert (chunk.horizon, chunk.execute_horizon, chunk.action_dim) == (10, 5, len(joints))
    assert list(chunk.joint_names) == joints and len(chunk.actions) == 10 * len(joints)
    assert chunk.control_rate_hz == pytest.approx(30.0)
    command = h.commands[-1]
    assert list(command.name) == joints and len(command.position) == len(joints)
    assert command.header.stamp.sec > 0
    # Every command is within the position limits and a velocity step of the previous one.
    positions = np.array([c.position for c in h.commands])
    assert np.all(positions >= np.array(h.config.robot.position_lower) - 1e-9)
    assert np.all(positions <= np.array(h.config.robot.position_upper) + 1e-9)
    max_step = np.array(h.config.robot.velocity_limits) / h.config.robot.control_rate_hz
    # A tick the control thread missed under load is stepped but not published: two steps.
    ticks = 1 + h.counter("late_ticks")
    assert np.all(np.abs(np.diff(positions, axis=0)) <= ticks * max_step + 1e-9)
    assert h.spin_until(lambda: any(s.policy_version == "v1" for s in h.statuses))
    status = h.statuses[-1]
    assert "accepted_chunks" in list(status.counter_names)


def test_stale_or_missing_images_start_no_chunk(tmp_path: Path, harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path, max_observation_age_s=0.2)
    h = harness_factory(config_path)   # empty path: untrained built-in policy, still runs
    h.send_images = False
    assert h.spin_until(lambda: h.counter("skipped_observations") >= 3
                        and "no image" in h.node.last_problem)
    assert h.chunks == []
    # Images come, then stop: chunks flow, then stop again as the frames age.
    h.send_images = True
    assert h.spin_until(lambda: len(h.chunks) >= 2)
    h.send_images = False
    skipped = h.counter("skipped_observations")
    assert h.spin_until(lambda: h.counter("skipped_observations") > skipped + 2
                        and "old" in h.node.last_problem)


def test_bad_images_and_joint_states_are_counted_not_fatal(tmp_path: Path,
                                                           harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path)
    h = harness_factory(config_path)
    h.image_size = (H + 2, W)
    assert h.spin_until(lambda: h.counter("bad_images_top") >= 2)
    assert h.chunks == []
    bad = h.JointState()
    bad.name = ["nope"]
    bad.position = [float("nan")]
    h.state_pub.publish(bad)
    assert h.spin_until(lambda: h.counter("bad_joint_states") >= 1)
    h.image_size = (H, W)
    assert h.spin_until(lambda: len(h.chunks) >= 1)


def test_nan_policy_output_is_rejected_and_the_robot_holds(tmp_path: Path,
                                                           harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path)
    h = harness_factory(config_path)
    h.node.policy.predict_chunk = lambda obs: np.full((10, 14), np.nan, np.float32)
    assert h.spin_until(lambda: h.counter("rejected_chunks") >= 2 and len(h.commands) >= 5)
    assert h.chunks == []
    held = np.array([c.position for c in h.commands])
    np.testing.assert_allclose(held, np.tile(h.state, (len(held), 1)))

    def broken(obs: Any) -> np.ndarray:
        raise RuntimeError("policy exploded")

    h.node.policy.predict_chunk = broken
    assert h.spin_until(lambda: h.counter("inference_errors") >= 1)
    assert "exploded" in h.node.last_problem


def test_takeover_pauses_and_handback_resumes_from_the_measured_state(
        tmp_path: Path, harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path)
    h = harness_factory(config_path)
    assert h.spin_until(lambda: len(h.chunks) >= 1 and len(h.commands) >= 5)
    h.intervene(h.InterventionEvent.TAKEOVER)
    assert h.spin_until(lambda: h.node.executor_core.paused)
    h.spin_until(lambda: False, timeout_s=0.3)   # let in-flight commands arrive
    count = len(h.commands)
    chunks = len(h.chunks)
    h.spin_until(lambda: False, timeout_s=0.5)
    assert len(h.commands) == count          # silent while a human drives
    assert len(h.chunks) == chunks
    # The human moved the arm; handback resumes from there, not from the old plan.
    h.state = h.state + 0.3
    h.spin_until(lambda: False, timeout_s=0.2)
    h.intervene(h.InterventionEvent.HANDBACK)
    assert h.spin_until(lambda: len(h.commands) > count + 3)
    first = np.array(h.commands[count].position)
    max_step = np.array(h.config.robot.velocity_limits) / h.config.robot.control_rate_hz
    ticks = 1 + h.counter("late_ticks")
    assert np.all(np.abs(first - h.state) <= ticks * max_step + 1e-6)
    # E-stop pauses too and wins over handback.
    h.intervene(h.InterventionEvent.ESTOP)
    assert h.spin_until(lambda: h.node.executor_core.paused)
    h.intervene(h.InterventionEvent.HANDBACK)
    h.spin_until(lambda: False, timeout_s=0.3)
    assert h.node.executor_core.paused and h.node.control_source() == "estop"


def test_hot_swap_good_broken_and_untrusted_updates(tmp_path: Path, harness_factory: Any
                                                    ) -> None:
    config_path = task_yaml(tmp_path)
    save_builtin(config_path, tmp_path / "ckpts" / "v1", "v1")
    h = harness_factory(config_path, str(tmp_path / "ckpts" / "v1"))
    assert h.spin_until(lambda: len(h.chunks) >= 1)
    # Wrong sha256: rejected, v1 keeps running.
    sha2 = save_builtin(config_path, tmp_path / "ckpts" / "v2", "v2")
    h.update(str(tmp_path / "ckpts" / "v2"), "0" * 64, "v2")
    assert h.spin_until(lambda: h.counter("rejected_updates") == 1)
    assert "sha256" in h.node.last_problem
    # Outside the checkpoint root: rejected.
    sha_out = save_builtin(config_path, tmp_path / "outside", "evil")
    h.update(str(tmp_path / "outside"), sha_out, "evil")
    assert h.spin_until(lambda: h.counter("rejected_updates") == 2)
    assert "outside the checkpoint root" in h.node.last_problem
    # Not loadable at all.
    (tmp_path / "ckpts" / "junk").mkdir()
    h.update(str(tmp_path / "ckpts" / "junk"), "", "junk")
    assert h.spin_until(lambda: h.counter("rejected_updates") == 3)
    assert h.node.policy.version == "v1"
    # A good one: loaded in the background, swapped at the next episode boundary only.
    h.update(str(tmp_path / "ckpts" / "v2"), sha2, "v2")
    assert h.spin_until(lambda: h.counter("loaded_updates") == 1)
    h.spin_until(lambda: False, timeout_s=0.3)
    assert h.node.policy.version == "v1"
    h.episode(h.EpisodeEvent.START)
    assert h.spin_until(lambda: h.node.policy.version == "v2")
    assert h.spin_until(lambda: any(c.policy_version == "v2" for c in h.chunks))
    assert h.spin_until(lambda: any(s.policy_version == "v2" for s in h.statuses))


def test_immediate_swap(tmp_path: Path, harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path, swap_at="immediate")
    h = harness_factory(config_path)
    sha = save_builtin(config_path, tmp_path / "ckpts" / "v9", "v9")
    h.update(str(tmp_path / "ckpts" / "v9"), sha, "v9")
    assert h.spin_until(lambda: h.node.policy.version == "v9")


@pytest.mark.slow
def test_a_lerobot_act_policy_drives_the_node(tmp_path: Path, harness_factory: Any) -> None:
    config_path = task_yaml(tmp_path, camera_keys={"top": "observation.images.top"},
                            chunk_horizon=20, execute_horizon=10)
    save_tiny_lerobot("act", tmp_path / "ckpts" / "act", joints=14, cameras=["top"],
                      image_size=(H, W))
    h = harness_factory(config_path, str(tmp_path / "ckpts" / "act"))
    assert h.node.policy.camera_names == ["top"]   # the only camera the ACT takes
    assert h.spin_until(lambda: len(h.chunks) >= 2 and len(h.commands) >= 10, timeout_s=60)
    assert h.chunks[-1].horizon == 20
    assert h.chunks[-1].policy_version.startswith("lerobot-act-")


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["joints", "missing"])
def test_startup_refuses_a_mismatched_policy(tmp_path: Path, problem: str) -> None:
    config_path = task_yaml(tmp_path)
    if problem == "joints":
        other = write_task_config(tmp_path, overrides={
            "robot": {"joint_names": [f"x{i}" for i in range(14)],
                      "arms": {"left": [f"x{i}" for i in range(7)],
                               "right": [f"x{i}" for i in range(7, 14)]},
                      "gripper_joints": ["x6", "x13"]}}, name="other.yaml")
        tiny_builtin(load_task_config(other)).save(tmp_path / "bad")
    command = node_process_command("chunk_inference_node", config_path,
                                   params={"policy_path": str(tmp_path / "bad")})
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    expected = "joint names" if problem == "joints" else "no such directory"
    assert expected in done.stderr
    assert "policy.path" in done.stderr


def test_node_module_is_registered() -> None:
    from aloe_ros.nodes import NODE_MODULES

    assert NODE_MODULES["chunk_inference_node"] == "aloe_ros.nodes.chunk_inference_node"
    for task in ("pack_phone", "fold_laundry", "pick_place"):
        entries = [n.executable for n in load_task_config(task).nodes]
        assert "chunk_inference_node" in entries
    assert sys.executable
