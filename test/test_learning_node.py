"""critic_learner_node in-process: live topics -> episodes -> CriticStats, a round of training,
PolicyUpdate with a loadable checkpoint; bad inputs are counted, not fatal; restart resumes."""

from __future__ import annotations

import array
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from helpers import spin_until, write_task_config
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState

from aloe_ros.config import load_task_config
from aloe_ros.msg import ActionChunk, CriticStats, EpisodeEvent, InterventionEvent, PolicyUpdate

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def task_file(tmp_path: Path) -> Path:
    return write_task_config(tmp_path, overrides={
        "cameras": [{"name": "top", "source": "sim", "width": 32, "height": 24}],
        "policy": {"chunk_horizon": 4, "execute_horizon": 2},
        "learning": {"ensemble_size": 2, "critic_width": 16, "critic_image_size": 8,
                     "batch_size": 8, "value_samples": 1, "schedule": "rounds",
                     "episodes_per_round": 1, "updates_per_round": 2,
                     "checkpoint_dir": str(tmp_path / "ckpt")}})


class FakeRobot:
    """Publishes what the loop would: images, joint states, chunks, commands, events."""

    def __init__(self, node: Node, config) -> None:  # type: ignore[no-untyped-def]
        qos = 10
        topics = config.topics
        self.names = list(config.robot.joint_names)
        self.image = node.create_publisher(Image, config.cameras[0].topic, qos)
        self.state = node.create_publisher(JointState, topics.joint_states, qos)
        self.command = node.create_publisher(JointState, topics.command, qos)
        self.chunk = node.create_publisher(ActionChunk, topics.policy_chunk, qos)
        self.event = node.create_publisher(EpisodeEvent, topics.episode, 100)
        self.intervention = node.create_publisher(InterventionEvent, topics.intervention, 100)
        self.stamp = 0.0

    def joint_msg(self, values: np.ndarray, names: list[str] | None = None) -> JointState:
        msg = JointState()
        msg.header.stamp.sec = int(self.stamp)
        msg.header.stamp.nanosec = int((self.stamp % 1) * 1e9)
        msg.name = names if names is not None else self.names
        msg.position = [float(v) for v in values]
        return msg

    def step(self, value: float) -> None:
        image = Image(height=24, width=32, encoding="rgb8", step=96)
        image.data = array.array("B", bytes([int(value * 10) % 255]) * (24 * 32 * 3))
        self.image.publish(image)
        self.state.publish(self.joint_msg(np.full(len(self.names), value)))
        self.command.publish(self.joint_msg(np.full(len(self.names), value + 0.01)))
        self.stamp += 1 / 30


def test_learner_node_live_round(tmp_path, ros_context) -> None:  # type: ignore[no-untyped-def]
    from aloe_ros.nodes.critic_learner_node import CriticLearnerNode
    from aloe_ros.policies.checkpoint import load_policy

    path = task_file(tmp_path)
    config = load_task_config(str(path))
    overrides = [Parameter("config_file", value=str(path))]
    learner = make_node(CriticLearnerNode, ros_context, overrides)
    peer = Node("fake_robot", context=ros_context)
    robot = FakeRobot(peer, config)
    stats: list[CriticStats] = []
    updates: list[PolicyUpdate] = []
    peer.create_subscription(CriticStats, config.topics.critic_stats, stats.append, 100)
    peer.create_subscription(PolicyUpdate, config.topics.policy_update, updates.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(learner)
    executor.add_node(peer)
    try:
        assert spin_until(executor, lambda: learner.count_subscribers(
            config.topics.critic_stats) > 0 and peer.count_subscribers(
            config.topics.command) > 0, 10)
        robot.event.publish(EpisodeEvent(kind=EpisodeEvent.START, episode_id=4))
        spin_until(executor, lambda: False, 0.3)
        chunk = ActionChunk(policy_version="bc@1")
        robot.chunk.publish(chunk)
        # A bad command (wrong joint names) and a bad image are counted and skipped.
        robot.command.publish(robot.joint_msg(np.zeros(2), ["x", "y"]))
        robot.image.publish(Image(height=24, width=32, encoding="weird", step=96))
        for i in range(12):
            if i == 6:
                robot.intervention.publish(InterventionEvent(kind=InterventionEvent.TAKEOVER))
            robot.step(0.1 * i)
            spin_until(executor, lambda: False, 0.05)
        # Live stats for completed chunks arrive before the episode ends.
        assert spin_until(executor, lambda: len(stats) >= 2, 20)
        robot.event.publish(EpisodeEvent(kind=EpisodeEvent.SUCCESS, reward=1.0, episode_id=4))
        assert spin_until(executor, lambda: len(updates) >= 1, 120), learner.counters
        assert learner.counters["bad_commands"] == 1
        assert learner.counters["bad_images"] == 1
        assert {s.episode_id for s in stats} == {4}
        assert len({s.chunk_id for s in stats}) == len(stats) >= 5   # every chunk, once
        update = updates[0]
        assert update.step == 2 and update.checkpoint_uri.startswith("file://")
        assert Path(urlparse(update.checkpoint_uri).path).is_dir()
        # The inference side's loader takes the URI as published.
        policy = load_policy(update.checkpoint_uri, expected_sha256=update.sha256,
                             root=tmp_path / "ckpt")
        assert policy.version == update.policy_version
    finally:
        executor.shutdown()
        learner.close()
        learner.destroy_node()
        peer.destroy_node()

    # A restart resumes from latest.json: same step, replay restored.
    again = make_node(CriticLearnerNode, ros_context, overrides)
    try:
        assert again.learner.trainer.step == 2
        assert len(again.learner.replay) == len(stats)     # every chunk stored and reported
    finally:
        again.close()
        again.destroy_node()


def make_node(cls, context, overrides):  # type: ignore[no-untyped-def]
    """Build an AloeNode subclass on the test's context with parameter overrides."""
    from aloe_ros.nodes import common

    original = common.AloeNode.__init__

    def patched(node, name, **kwargs):  # type: ignore[no-untyped-def]
        original(node, name, context=context, parameter_overrides=overrides, **kwargs)

    common.AloeNode.__init__ = patched  # type: ignore[method-assign]
    try:
        return cls()
    finally:
        common.AloeNode.__init__ = original  # type: ignore[method-assign]


def test_learner_that_cannot_start_stays_up_and_says_why(tmp_path, ros_context) -> None:  # type: ignore[no-untyped-def]
    """A missing actor checkpoint must not crash the node (respawn would loop forever)."""
    from aloe_ros.msg import Status
    from aloe_ros.nodes.critic_learner_node import CriticLearnerNode

    path = write_task_config(tmp_path, overrides={
        "policy": {"path": str(tmp_path / "missing")},
        "learning": {"checkpoint_dir": str(tmp_path / "ckpt")}})
    node = make_node(CriticLearnerNode, ros_context, [Parameter("config_file", value=str(path))])
    peer = Node("status_listener", context=ros_context)
    messages: list[Status] = []
    peer.create_subscription(Status, node.config.topics.status, messages.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(peer)
    try:
        assert spin_until(executor, lambda: any("disabled" in m.message for m in messages), 15)
        assert "no such directory" in messages[-1].message
    finally:
        executor.shutdown()
        node.close()
        node.destroy_node()
        peer.destroy_node()
