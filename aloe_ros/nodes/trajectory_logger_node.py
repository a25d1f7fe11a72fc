"""trajectory_logger_node: records every topic of the loop into one rosbag2 (MCAP) bag per run.

Raw subscriptions (serialized bytes, nothing deserialized in the callbacks) hand messages to
io/bag_writer.BagRecorder, whose writer thread does all file I/O. Topics: the loop's own (from
the task config: cameras, joint states, commands, chunks, Joy, events, status, learner topics)
plus ``recording.extra_topics``, whose types are discovered from the graph. Lost messages
(queue overflow, stopped recording) are counted per topic and published in Status every second.
Bags left unfinished by a crash in the same directory are repaired in the background at start.

Parameters: ``config_file``, ``record_dir`` (default: recording.dir of the task).
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo

from aloe_ros.config import QosProfileConfig
from aloe_ros.io.bag_types import aloe_typestore, recorded_topics
from aloe_ros.io.bag_writer import BagRecorder, new_bag_path
from aloe_ros.msg import Status
from aloe_ros.nodes.common import AloeNode, run_node


def message_class(msgtype: str) -> Any:
    """``pkg/msg/Type`` -> the generated Python class (ImportError/AttributeError if missing)."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class TrajectoryLoggerNode(AloeNode):
    def __init__(self) -> None:
        super().__init__("trajectory_logger")
        self.declare_parameter(
            "record_dir", "",
            ParameterDescriptor(description="Directory for the bags (default: recording.dir)",
                                read_only=True))
        cfg = self.config
        rec = cfg.recording
        record_dir = Path(self.get_parameter("record_dir").get_parameter_value().string_value
                          or rec.dir).expanduser()
        record_dir.mkdir(parents=True, exist_ok=True)
        self._repair_unfinished(record_dir)
        self.bag_path = new_bag_path(record_dir, cfg.task.name)
        self.topics = recorded_topics(cfg)
        self.recorder = BagRecorder(
            self.bag_path, self.topics, custom_data=self._custom_data(),
            flush_period_s=rec.flush_period_s, compression=rec.compression,
            queue_max_mb=rec.queue_max_mb, min_free_disk_mb=rec.min_free_disk_mb,
            fsync=rec.fsync, on_error=self._on_recorder_error)
        self.error = ""
        self.subscriptions_by_topic: dict[str, Any] = {}
        sensor_topics = {camera.topic for camera in cfg.cameras}
        event_topics = {cfg.topics.intervention, cfg.topics.episode, cfg.topics.sim_detector,
                        cfg.topics.status, cfg.topics.critic_stats, cfg.topics.policy_update}
        for topic, msgtype in self.topics.items():
            qos_config = (cfg.qos.sensor if topic in sensor_topics
                          else cfg.qos.events if topic in event_topics else cfg.qos.command)
            self._subscribe(topic, msgtype, qos_config)
        self.pending_extra = [t for t in rec.extra_topics if t not in self.topics]
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.create_timer(1.0, self.publish_status)
        if self.pending_extra:
            self.create_timer(1.0, self.discover_extra_topics)
        self.get_logger().info(
            f"recording {len(self.topics)} topics to {self.bag_path} (flush every "
            f"{rec.flush_period_s / 2:g} s, compression {rec.compression})")

    def _custom_data(self) -> dict[str, str]:
        cfg = self.config
        snapshot = Path(cfg.source_path).read_text() if cfg.source_path else ""
        return {
            "aloe_ros.task": cfg.task.name,
            "aloe_ros.task_text": cfg.task.text,
            "aloe_ros.config_path": cfg.source_path,
            "aloe_ros.config": snapshot,
            "aloe_ros.control_rate_hz": str(cfg.robot.control_rate_hz),
            "aloe_ros.joint_names": json.dumps(cfg.robot.joint_names),
            "aloe_ros.cameras": json.dumps({c.name: c.topic for c in cfg.cameras}),
            "aloe_ros.started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "aloe_ros.sim": str(self.use_sim).lower(),
            "aloe_ros.policy_versions": "[]",
        }

    def _subscription_qos(self, config: QosProfileConfig) -> QoSProfile:
        """Match the publishers' reliability; volatile (matches any durability); deep history."""
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.config.recording.subscription_depth,
            reliability=(ReliabilityPolicy.RELIABLE if config.reliability == "reliable"
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=DurabilityPolicy.VOLATILE)

    def _subscribe(self, topic: str, msgtype: str, qos_config: QosProfileConfig) -> None:
        submit = self.recorder.submit
        clock = self.get_clock()

        # Runs on the executor thread for every message: stamp and enqueue, nothing else.
        def on_message(data: bytes, _info: MessageInfo) -> None:
            submit(topic, clock.now().nanoseconds, data)

        callback: Callable[[bytes, MessageInfo], None] = on_message
        self.subscriptions_by_topic[topic] = self.create_subscription(
            message_class(msgtype), topic, callback, self._subscription_qos(qos_config),
            raw=True)

    def discover_extra_topics(self) -> None:
        """Subscribe extra topics once a publisher shows their type."""
        if not self.pending_extra:
            return
        graph = dict(self.get_topic_names_and_types())
        store = aloe_typestore()
        for topic in list(self.pending_extra):
            types = graph.get(topic)
            if not types:
                continue
            msgtype = types[0]
            try:
                store.get_msgdef(msgtype)
                message_class(msgtype)
            except Exception as exc:  # noqa: BLE001 - unknown type: say so, keep recording
                self.count("unknown_type_topics")
                self.get_logger().error(f"cannot record {topic}: type {msgtype} unknown ({exc})",
                                        throttle_duration_sec=30.0)
                self.pending_extra.remove(topic)
                continue
            self.recorder.add_topic(topic, msgtype)
            self.topics[topic] = msgtype
            self._subscribe(topic, msgtype, self.config.qos.command)
            self.pending_extra.remove(topic)
            self.get_logger().info(f"recording extra topic {topic} ({msgtype})")

    def _on_recorder_error(self, reason: str) -> None:
        self.error = reason
        self.get_logger().error(f"recording stopped: {reason}")

    def _repair_unfinished(self, record_dir: Path) -> None:
        """Bags a crash left without summary are repaired on a background thread."""
        from aloe_ros.io.bag_repair import find_unfinished_bags, repair_bag

        unfinished = find_unfinished_bags(record_dir)
        if not unfinished:
            return
        self.get_logger().warning(
            "unfinished bag(s) from an earlier crash, repairing in the background: "
            + ", ".join(str(p) for p in unfinished))

        def repair_all() -> None:
            for path in unfinished:
                try:
                    report = repair_bag(path)
                    self.get_logger().info(f"repaired {path}: {report.messages} messages")
                except Exception as exc:  # noqa: BLE001 - a bad old bag never stops recording
                    self.get_logger().error(f"could not repair {path}: {exc}")

        threading.Thread(target=repair_all, name="bag-repair", daemon=True).start()

    def publish_status(self) -> None:
        stats = self.recorder.snapshot()
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        counters = dict(self.counters)
        counters["written"] = sum(stats.written.values())
        counters["lost"] = sum(stats.lost.values())
        counters["bytes_written"] = stats.bytes_written
        counters["queued_bytes"] = max(0, stats.queued_bytes)
        counters["flushes"] = stats.flushes
        counters.update({f"lost:{topic}": n for topic, n in stats.lost.items()})
        # per topic, so an operator (or a test) can see that a given camera is being recorded
        counters.update({f"written:{topic}": n for topic, n in stats.written.items()})
        msg.counter_names = list(counters)
        msg.counter_values = [int(v) for v in counters.values()]
        msg.message = (f"recording stopped: {self.error}" if self.error
                       else f"recording {self.bag_path}")
        self.status_pub.publish(msg)

    def close(self) -> None:
        stats = self.recorder.close()
        self.get_logger().info(
            f"bag {self.bag_path} closed: {sum(stats.written.values())} messages, "
            f"{stats.bytes_written / 2**20:.1f} MiB, lost {sum(stats.lost.values())}")


def main(args: Sequence[str] | None = None) -> int:
    return run_node(TrajectoryLoggerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
