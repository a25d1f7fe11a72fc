"""The fault suite's eyes and hands on a running graph (the only rclpy module of the suite).

``GraphProbe`` is a ``nodes.monitor.BackgroundListener``: an rclpy context of its own, spun on a
thread. It records, with receive times, what the suite judges the graph by: every command the
robot gets (topics.command), the measured joint states, each node's Status (counters, policy
version, control source), action chunks and intervention events. It also publishes whatever a
fault case injects (Joy, bad images, bad joint states, PolicyUpdate, ...).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sensor_msgs.msg import JointState

from aloe_ros.config import TaskFile
from aloe_ros.msg import ActionChunk, InterventionEvent, Status
from aloe_ros.nodes.common import qos_profile, stamp_to_seconds
from aloe_ros.nodes.monitor import BackgroundListener

__all__ = ["INJECTED_FRAME", "CommandRecord", "GraphProbe", "StatusRecord"]

# frame_id of everything the suite injects: the probe never mistakes it for the robot's own.
INJECTED_FRAME = "fault_suite"
PROBE_DEPTH = 1000


@dataclass(frozen=True)
class CommandRecord:
    received_ns: int
    stamp_s: float
    frame_id: str
    positions: np.ndarray


@dataclass(frozen=True)
class StatusRecord:
    received_ns: int
    stamp_s: float
    node: str
    control_source: str
    policy_version: str
    counters: dict[str, int]
    message: str


@dataclass
class ProbeLog:
    commands: list[CommandRecord] = field(default_factory=list)
    joint_states: list[tuple[int, np.ndarray]] = field(default_factory=list)
    joint_state_stamps: list[float] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)
    chunks: list[tuple[int, str]] = field(default_factory=list)
    interventions: list[tuple[int, float, int]] = field(default_factory=list)


class GraphProbe(BackgroundListener):
    """Subscribes the loop's outputs, publishes injected inputs; thread-safe accessors."""

    def __init__(self, config: TaskFile, name: str = "aloe_fault_probe") -> None:
        super().__init__(name)
        self.config = config
        self.lock = threading.Lock()
        self.log = ProbeLog()
        self.joint_names = list(config.robot.joint_names)
        topics = config.topics
        # Deep reader histories: the probe's Python thread may stall for hundreds of ms on a
        # loaded machine, and a missed command would look like a jump between two others.
        command_qos = qos_profile(config.qos.command)
        command_qos.depth = PROBE_DEPTH
        events_qos = qos_profile(config.qos.events)
        events_qos.depth = max(events_qos.depth, PROBE_DEPTH)
        self.node.create_subscription(JointState, topics.command, self._on_command, command_qos)
        self.node.create_subscription(JointState, topics.joint_states, self._on_joint_state,
                                      command_qos)
        self.node.create_subscription(Status, topics.status, self._on_status, events_qos)
        self.node.create_subscription(ActionChunk, topics.policy_chunk, self._on_chunk,
                                      command_qos)
        self.node.create_subscription(InterventionEvent, topics.intervention,
                                      self._on_intervention, events_qos)
        self.publishers: dict[tuple[str, type], Any] = {}
        self.start()

    # ---- recording ----------------------------------------------------------------------------
    def _ordered(self, msg: JointState) -> np.ndarray | None:
        if list(msg.name) == self.joint_names:
            return np.asarray(msg.position, dtype=np.float64)
        return None   # injected bad messages and foreign orders are not the robot's state

    def _on_command(self, msg: JointState) -> None:
        if msg.header.frame_id == INJECTED_FRAME:
            return
        positions = np.asarray(msg.position, dtype=np.float64)
        record = CommandRecord(time.time_ns(), stamp_to_seconds(msg.header.stamp),
                               msg.header.frame_id, positions)
        with self.lock:
            self.log.commands.append(record)

    def _on_joint_state(self, msg: JointState) -> None:
        if msg.header.frame_id == INJECTED_FRAME:
            return
        positions = self._ordered(msg)
        if positions is None or not np.all(np.isfinite(positions)):
            return
        with self.lock:
            self.log.joint_states.append((time.time_ns(), positions))
            self.log.joint_state_stamps.append(stamp_to_seconds(msg.header.stamp))

    def _on_status(self, msg: Status) -> None:
        record = StatusRecord(time.time_ns(), stamp_to_seconds(msg.header.stamp), str(msg.node),
                              str(msg.control_source),
                              str(msg.policy_version),
                              dict(zip(msg.counter_names, (int(v) for v in msg.counter_values))),
                              str(msg.message))
        with self.lock:
            self.log.statuses.append(record)

    def _on_chunk(self, msg: ActionChunk) -> None:
        with self.lock:
            self.log.chunks.append((time.time_ns(), str(msg.policy_version)))

    def _on_intervention(self, msg: InterventionEvent) -> None:
        with self.lock:
            self.log.interventions.append((time.time_ns(), stamp_to_seconds(msg.header.stamp),
                                           int(msg.kind)))

    # ---- queries --------------------------------------------------------------------------------
    def commands(self, since_ns: int = 0, until_ns: int | None = None) -> list[CommandRecord]:
        with self.lock:
            return [c for c in self.log.commands if c.received_ns >= since_ns
                    and (until_ns is None or c.received_ns <= until_ns)]

    def joint_states(self, since_ns: int = 0, until_ns: int | None = None
                     ) -> list[tuple[int, np.ndarray]]:
        with self.lock:
            return [j for j in self.log.joint_states if j[0] >= since_ns
                    and (until_ns is None or j[0] <= until_ns)]

    def stamped_joint_states(self, since_ns: int = 0, until_ns: int | None = None
                             ) -> list[tuple[int, np.ndarray]]:
        """(header stamp ns, positions) of the joint states received in the window, in stamp
        order (what check_commands compares commands with)."""
        with self.lock:
            rows = [(int(stamp * 1e9), q) for (received, q), stamp
                    in zip(self.log.joint_states, self.log.joint_state_stamps)
                    if received >= since_ns and (until_ns is None or received <= until_ns)]
        return sorted(rows, key=lambda row: row[0])

    def joint_state_stamps(self) -> list[float]:
        with self.lock:
            return list(self.log.joint_state_stamps)

    def statuses(self, node: str, since_ns: int = 0) -> list[StatusRecord]:
        with self.lock:
            return [s for s in self.log.statuses if s.node == node and s.received_ns >= since_ns]

    def last_status(self, node: str) -> StatusRecord | None:
        found = self.statuses(node)
        return found[-1] if found else None

    def counter(self, node: str, name: str) -> int:
        status = self.last_status(node)
        return 0 if status is None else status.counters.get(name, 0)

    def chunks(self, since_ns: int = 0) -> list[tuple[int, str]]:
        with self.lock:
            return [c for c in self.log.chunks if c[0] >= since_ns]

    def interventions(self, since_ns: int = 0) -> list[tuple[int, float, int]]:
        with self.lock:
            return [i for i in self.log.interventions if i[0] >= since_ns]

    def latest_joint_state(self) -> np.ndarray | None:
        with self.lock:
            return self.log.joint_states[-1][1].copy() if self.log.joint_states else None

    # ---- injecting ------------------------------------------------------------------------------
    def publisher(self, msg_type: type, topic: str, kind: str = "command") -> Any:
        """A publisher on ``topic`` with the task's QoS of ``kind`` (sensor/command/events)."""
        key = (topic, msg_type)
        if key not in self.publishers:
            qos = qos_profile(getattr(self.config.qos, kind))
            self.publishers[key] = self.node.create_publisher(msg_type, topic, qos)
        return self.publishers[key]

    def publish(self, topic: str, msg: Any, kind: str = "command") -> None:
        self.publisher(type(msg), topic, kind).publish(msg)

    def wait_for_subscribers(self, topic: str, msg_type: type, timeout_s: float = 10.0,
                             kind: str = "command") -> bool:
        publisher = self.publisher(msg_type, topic, kind)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if publisher.get_subscription_count() > 0:
                return True
            time.sleep(0.05)
        return publisher.get_subscription_count() > 0
