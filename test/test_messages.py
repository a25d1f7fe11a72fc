"""Our custom messages: importable as aloe_ros.msg, and they cross a process boundary intact."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import rclpy
from helpers import REPO, running_process, spin_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from aloe_ros.msg import (
    ActionChunk,
    CriticStats,
    EpisodeEvent,
    InterventionEvent,
    PolicyUpdate,
    Status,
)

PUBLISHER = textwrap.dedent("""
    import sys, time, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    sys.path.insert(0, sys.argv[1])
    from test_messages import sample_messages
    rclpy.init()
    node = rclpy.create_node("message_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {name: node.create_publisher(type(msg), f"/test/{name}", qos)
            for name, msg in sample_messages().items()}
    end = time.monotonic() + 30
    while time.monotonic() < end:
        for name, msg in sample_messages().items():
            pubs[name].publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
""")


def sample_messages() -> dict[str, object]:
    """One message of each custom type with every field set to something non-default."""
    chunk = ActionChunk()
    chunk.header.stamp.sec, chunk.header.frame_id = 12, "base"
    chunk.chunk_id, chunk.episode_id, chunk.policy_version = 7, 3, "builtin@100"
    chunk.control_rate_hz, chunk.horizon, chunk.execute_horizon, chunk.action_dim = 30.0, 2, 1, 3
    chunk.joint_names = ["a", "b", "c"]
    chunk.actions = [0.5, -1.25, 2.0, 3.5, 4.0, -0.125]
    chunk.start_time.sec, chunk.start_time.nanosec = 12, 500
    intervention = InterventionEvent()
    intervention.episode_id, intervention.kind = 4, InterventionEvent.ESTOP
    intervention.source, intervention.arms = "joystick", "both"
    episode = EpisodeEvent()
    episode.episode_id, episode.task, episode.kind = 5, "pack_phone", EpisodeEvent.SUCCESS
    episode.reward, episode.reason = 1.0, "button"
    stats = CriticStats()
    stats.policy_version, stats.chunk_id, stats.episode_id = "v2", 9, 5
    stats.q_mean, stats.q_std, stats.q_aggregated = 0.5, 0.25, 0.375
    stats.value, stats.advantage, stats.learner_step = 0.25, 0.125, 1000
    stats.critic_loss, stats.actor_loss = 0.0625, 0.03125
    update = PolicyUpdate()
    update.policy_version, update.checkpoint_uri = "v3", "file:///ckpt/v3"
    update.sha256, update.step = "ab" * 32, 2000
    update.metric_names, update.metric_values = ["success"], [0.75]
    status = Status()
    status.node, status.control_source, status.episode_id = "mux", "human", 5
    status.last_outcome, status.estop_active, status.policy_version = "success", True, "v3"
    status.counter_names, status.counter_values, status.message = ["idle_ticks"], [2], "ok"
    return {"chunk": chunk, "intervention": intervention, "episode": episode, "stats": stats,
            "update": update, "status": status}


def test_constants_match_the_design() -> None:
    assert (InterventionEvent.TAKEOVER, InterventionEvent.HANDBACK, InterventionEvent.ESTOP,
            InterventionEvent.RELEASE_ESTOP) == (0, 1, 2, 3)
    assert (EpisodeEvent.START, EpisodeEvent.SUCCESS, EpisodeEvent.FAILURE, EpisodeEvent.ABORT,
            EpisodeEvent.RESET) == (0, 1, 2, 3, 4)


def test_messages_round_trip_between_processes(ros_context, tmp_path: Path) -> None:  # noqa: ANN001
    expected = sample_messages()
    received: dict[str, object] = {}
    node = rclpy.create_node("message_listener", context=ros_context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for name, msg in expected.items():
        node.create_subscription(type(msg), f"/test/{name}",
                                 lambda m, n=name: received.setdefault(n, m), qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    command = [sys.executable, "-c", PUBLISHER, str(REPO / "test")]
    with running_process(command, log_path=tmp_path / "publisher.log") as process:
        arrived = spin_until(executor, lambda: len(received) == len(expected), timeout_s=30)
        assert process.poll() is None, (tmp_path / "publisher.log").read_text()
    node.destroy_node()
    assert arrived, f"only {sorted(received)} arrived"
    for name, msg in expected.items():
        assert received[name] == msg, name


@pytest.mark.parametrize("kind", [ActionChunk, InterventionEvent, EpisodeEvent, CriticStats,
                                  PolicyUpdate, Status])
def test_serialisation_round_trip(kind: type) -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    msg = next(m for m in sample_messages().values() if isinstance(m, kind))
    assert deserialize_message(serialize_message(msg), kind) == msg
