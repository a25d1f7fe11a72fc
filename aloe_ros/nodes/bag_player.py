"""Republish a recorded bag with its original timing (``aloe-ros replay``).

The stored bytes are published raw (no deserialization), so header stamps inside the messages
are exactly the recorded ones. Message i goes out at ``wall_start + (t_i - t_0) / rate`` where
t is the log time. With ``clock`` a rosgraph_msgs/Clock at ``clock_hz`` carries bag time, for
nodes started with ``use_sim_time:=true``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from aloe_ros.io.bag_reader import Bag
from aloe_ros.nodes.trajectory_logger_node import message_class

__all__ = ["BagPlayer", "PlaybackReport"]

REPLAY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


class PlaybackReport:
    def __init__(self) -> None:
        self.published: dict[str, int] = {}
        self.skipped_topics: dict[str, str] = {}
        self.loops = 0


class BagPlayer(Node):
    def __init__(self, bag_path: Path | str, *, topics: Sequence[str] | None = None,
                 rate: float = 1.0, clock: bool = False, clock_hz: float = 100.0,
                 **kwargs: Any) -> None:
        super().__init__("bag_player", **kwargs)
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.bag = Bag(bag_path)
        self.rate = rate
        self.report = PlaybackReport()
        available = self.bag.topics
        wanted = list(available) if not topics else list(topics)
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ValueError(f"{self.bag.path} has no topic(s) {missing}; it has "
                             f"{sorted(available)}")
        self.publishers_by_topic: dict[str, Any] = {}
        for topic in wanted:
            msgtype = available[topic].msgtype
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                self.report.skipped_topics[topic] = f"{msgtype} not importable ({exc})"
                self.get_logger().warning(f"not replaying {topic}: {msgtype} unknown here")
                continue
            self.publishers_by_topic[topic] = self.create_publisher(cls, topic, REPLAY_QOS)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if clock else None
        self.clock_period = 1.0 / clock_hz
        self._bag_now_ns = self.bag.start_ns
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _clock_loop(self) -> None:
        while not self._stop.wait(self.clock_period):
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(self._bag_now_ns), 1_000_000_000)
            assert self.clock_pub is not None
            self.clock_pub.publish(msg)

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Give late joiners a moment so the first messages are not published into the void."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers_by_topic.values()):
                return True
            time.sleep(0.05)
        return False

    def wait_for_delivery(self, timeout_s: float) -> bool:
        """Wait until every subscriber acknowledged what was published (reliable topics).

        Destroying a publisher drops the messages a reader has not acknowledged yet, so a
        replay that exits right after its last message loses the tail on a loaded machine
        (the reader still catching up). True when all were acknowledged in time."""
        deadline = time.monotonic() + timeout_s
        for publisher in self.publishers_by_topic.values():
            left = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                return False
        return True

    def play(self, *, loop: bool = False,
             progress: Callable[[float, float], None] | None = None) -> PlaybackReport:
        """Publish the bag (again and again with ``loop``) until done or ``stop()``."""
        clock_thread = None
        if self.clock_pub is not None:
            clock_thread = threading.Thread(target=self._clock_loop, daemon=True)
            clock_thread.start()
        try:
            while not self._stop.is_set():
                self._play_once(progress)
                self.report.loops += 1
                if not loop:
                    break
        finally:
            self._stop.set()
            if clock_thread is not None:
                clock_thread.join(1.0)
            self.bag.close()
        return self.report

    def _play_once(self, progress: Callable[[float, float], None] | None) -> None:
        start_ns = self.bag.start_ns
        wall_start = time.monotonic()
        next_progress = wall_start + 1.0
        for topic, _msgtype, stamp_ns, data in self.bag.messages(self.publishers_by_topic):
            offset_s = (stamp_ns - start_ns) * 1e-9 / self.rate
            while True:  # sleep in short slices so Ctrl-C and the clock stay responsive
                delay = wall_start + offset_s - time.monotonic()
                if delay <= 0 or self._stop.is_set():
                    break
                time.sleep(min(delay, 0.05))
            if self._stop.is_set():
                return
            self._bag_now_ns = stamp_ns
            self.publishers_by_topic[topic].publish(bytes(data))
            self.report.published[topic] = self.report.published.get(topic, 0) + 1
            if progress is not None and time.monotonic() >= next_progress:
                next_progress += 1.0
                progress((stamp_ns - start_ns) * 1e-9, self.bag.duration_s)
