"""Every recorded message type survives writing and reading, custom types included, and a
second, independent MCAP reader (mcap + mcap-ros2-support) reads the same bag."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_synth import T0_NS, EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_reader import Bag
from aloe_ros.io.bag_types import aloe_typestore, decode_cdr, recorded_topics


def _extra_messages(config: Any) -> list[tuple[str, str, int, Any]]:
    from sensor_msgs.msg import Joy
    from std_msgs.msg import Bool

    from aloe_ros.msg import CriticStats, PolicyUpdate, Status

    topics = config.topics
    joy = Joy(axes=[0.5, -1.0], buttons=[1, 0, 1])
    status = Status(node="mux", control_source="policy", episode_id=3, policy_version="v1",
                    counter_names=["a", "b"], counter_values=[1, 2**40], message="ok")
    stats = CriticStats(policy_version="v1", chunk_id=7, episode_id=1, q_mean=0.5, q_std=0.1,
                        q_aggregated=0.4, value=0.3, advantage=0.1, learner_step=99,
                        critic_loss=0.01, actor_loss=0.02)
    update = PolicyUpdate(policy_version="v2", checkpoint_uri="file:///ckpt/v2",
                          sha256="ab" * 32, step=500, metric_names=["loss"],
                          metric_values=[0.25])
    joy_t = T0_NS + 10_000_000
    return [(topics.joy, "sensor_msgs/msg/Joy", joy_t, joy),
            (topics.status, "aloe_ros/msg/Status", T0_NS + 11_000_000, status),
            (topics.critic_stats, "aloe_ros/msg/CriticStats", T0_NS + 12_000_000, stats),
            (topics.policy_update, "aloe_ros/msg/PolicyUpdate", T0_NS + 13_000_000, update),
            (config.shadow.state_topic, "std_msgs/msg/Bool", T0_NS + 14_000_000,
             Bool(data=True))]


@pytest.fixture(scope="module")
def recorded_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    tmp = tmp_path_factory.mktemp("roundtrip")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    recorded = write_synthetic_bag(tmp / "bag", config, [EpisodePlan(steps=30)],
                                   extra=_extra_messages(config))
    return tmp / "bag", config, recorded


def _same(decoded: Any, original: Any, path: str = "") -> None:
    """Field-by-field equality between a rosbags message and an rclpy message."""
    for name in original.get_fields_and_field_types():
        want, got = getattr(original, name), getattr(decoded, name)
        if hasattr(want, "get_fields_and_field_types"):
            _same(got, want, f"{path}.{name}")
        elif isinstance(want, float):
            assert math.isclose(float(got), want, rel_tol=1e-6), f"{path}.{name}"
        elif isinstance(want, (str, int, bool)):
            assert got == want, f"{path}.{name}: {got!r} != {want!r}"
        else:
            assert np.array_equal(np.asarray(list(got)), np.asarray(list(want))), \
                f"{path}.{name}"


def test_every_recorded_type_round_trips(recorded_bag: tuple[Path, Any, Any]) -> None:
    from rclpy.serialization import deserialize_message

    from aloe_ros.nodes.trajectory_logger_node import message_class

    path, config, recorded = recorded_bag
    originals: dict[str, list[Any]] = {}
    for topic, _t, msg in sorted(recorded.messages, key=lambda m: m[1]):
        originals.setdefault(topic, []).append(msg)
    types_seen = set()
    with Bag(path) as bag:
        assert set(originals) <= set(bag.topics)
        got: dict[str, list[tuple[Any, bytes, str]]] = {}
        for topic, msgtype, _t, data in bag.messages():
            got.setdefault(topic, []).append((bag.decode(msgtype, data), data, msgtype))
        for topic, messages in originals.items():
            assert len(got[topic]) == len(messages), topic
            for original, (decoded, data, msgtype) in zip(messages, got[topic]):
                _same(decoded, original, topic)  # the ROS-free path (rosbags, tolerant)
                # ... and rclpy reads the stored bytes as the same message
                _same(deserialize_message(data, message_class(msgtype)), original, topic)
                types_seen.add(msgtype)
    expected = set(recorded_topics(config).values())
    assert expected <= types_seen, expected - types_seen


def test_rclpy_padding_is_tolerated() -> None:
    """rclpy pads a JointState with empty effort[]: strict rosbags rejects it, we read it."""
    from rclpy.serialization import serialize_message
    from rosbags.serde import SerdeError
    from sensor_msgs.msg import JointState

    data = serialize_message(JointState(name=["a"], position=[1.0]))
    store = aloe_typestore()
    with pytest.raises(SerdeError):
        store.deserialize_cdr(data, "sensor_msgs/msg/JointState")
    msg = decode_cdr(store, data, "sensor_msgs/msg/JointState")
    assert list(msg.name) == ["a"] and list(msg.position) == [1.0] and len(msg.effort) == 0


def test_type_hashes_match_rclpy(ros_context: Any) -> None:
    import rclpy

    from aloe_ros.nodes.trajectory_logger_node import message_class

    store = aloe_typestore()
    node = rclpy.create_node("hash_check", context=ros_context)
    try:
        for i, msgtype in enumerate(sorted(set(recorded_topics(
                load_task_config("pack_phone")).values()))):
            node.create_publisher(message_class(msgtype), f"/hash_check_{i}", 1)
            (info,) = node.get_publishers_info_by_topic(f"/hash_check_{i}")
            assert str(info.topic_type_hash) == store.hash_rihs01(msgtype), msgtype
    finally:
        node.destroy_node()


def test_second_mcap_reader_reads_everything(recorded_bag: tuple[Path, Any, Any]) -> None:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path, _config, recorded = recorded_bag
    expected: dict[str, int] = {}
    for topic, _t, _m in recorded.messages:
        expected[topic] = expected.get(topic, 0) + 1
    counts: dict[str, int] = {}
    versions = set()
    (mcap_path,) = path.glob("*.mcap")
    with open(mcap_path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        for _schema, channel, _message, decoded in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if hasattr(decoded, "policy_version"):
                versions.add(decoded.policy_version)
        assert summary.statistics.message_count == sum(expected.values())
    assert counts == expected
    assert {"v1", "v2"} <= versions


def test_bag_metadata_carries_task_config_and_versions(
        recorded_bag: tuple[Path, Any, Any]) -> None:
    path, config, _ = recorded_bag
    with Bag(path) as bag:
        assert bag.custom_data["aloe_ros.task"] == config.task.name
        assert sorted(bag.custom_json("aloe_ros.policy_versions", [])) == ["v1", "v2"]
        assert bag.custom_json("aloe_ros.lost_messages", None) == {}
        recorded_config = bag.task_config()
        assert recorded_config is not None
        assert recorded_config.robot.joint_names == config.robot.joint_names
