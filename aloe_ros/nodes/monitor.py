"""A passive listener for `aloe-ros up`: topic rates and episode outcomes as one progress line.

Runs inside the runner process on its own executor thread; subscribes, never publishes.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from aloe_ros.config import TaskFile
from aloe_ros.msg import EpisodeEvent, Status
from aloe_ros.nodes.common import qos_profile

__all__ = ["BackgroundListener", "GraphMonitor"]

OUTCOME_NAMES = {EpisodeEvent.SUCCESS: "success", EpisodeEvent.FAILURE: "failure",
                 EpisodeEvent.ABORT: "abort"}


class _RateCounter:
    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.total = 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.total += 1
            self.times.append(now)
            while self.times and now - self.times[0] > self.window_s:
                self.times.popleft()

    def rate(self) -> float:
        now = time.monotonic()
        with self.lock:
            while self.times and now - self.times[0] > self.window_s:
                self.times.popleft()
            return len(self.times) / self.window_s


class BackgroundListener:
    """An rclpy node in a context of its own, spun on a daemon thread: for tools (the `up`
    monitor, benchmark watchers) that listen beside a graph without touching its context."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)

    def start(self) -> None:
        """Spin on a daemon thread; call after the subscriptions are created."""
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the thread quietly
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=2.0)


class GraphMonitor(BackgroundListener):
    """Topic rates, episode outcomes and which nodes report Status, for `aloe-ros up`."""

    def __init__(self, config: TaskFile) -> None:
        super().__init__("aloe_up_monitor")
        sensor = qos_profile(config.qos.sensor)
        events = qos_profile(config.qos.events)
        self.rates: dict[str, _RateCounter] = {"joint_states": _RateCounter()}
        self.node.create_subscription(JointState, config.topics.joint_states,
                                      lambda _m: self.rates["joint_states"].tick(),
                                      qos_profile(config.qos.command))
        for camera in config.cameras:
            counter = self.rates.setdefault(camera.name, _RateCounter())
            self.node.create_subscription(Image, camera.topic,
                                          lambda _m, c=counter: c.tick(), sensor)
        self.outcomes: dict[str, int] = {"success": 0, "failure": 0, "abort": 0}
        self.last_episode = 0
        self.seen_outcomes: set[tuple[int, int]] = set()
        for topic in {config.topics.episode, config.topics.sim_detector}:
            self.node.create_subscription(EpisodeEvent, topic, self.on_episode, events)
        self.status_nodes: set[str] = set()
        self.node.create_subscription(Status, config.topics.status,
                                      lambda m: self.status_nodes.add(m.node), events)
        self.start()

    def on_episode(self, msg: EpisodeEvent) -> None:
        self.last_episode = max(self.last_episode, int(msg.episode_id))
        name = OUTCOME_NAMES.get(msg.kind)
        key = (int(msg.episode_id), int(msg.kind))
        # The detector and the episode manager may both report one outcome: count it once.
        if name and key not in self.seen_outcomes:
            self.seen_outcomes.add(key)
            self.outcomes[name] += 1

    def has_status(self, node: str) -> bool:
        """``node`` has published a Status message (it is up and spinning)."""
        return node in self.status_nodes

    def summary(self) -> str:
        rates = " ".join(f"{name} {counter.rate():.0f}Hz" for name, counter in self.rates.items())
        outcome = " ".join(f"{k} {v}" for k, v in self.outcomes.items() if v)
        return f"{rates} | episode {self.last_episode} {outcome}".rstrip()

    def totals(self) -> dict[str, int]:
        return {name: counter.total for name, counter in self.rates.items()}
