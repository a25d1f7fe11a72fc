"""Watches the episode and intervention streams of a running graph (rclpy, own context)."""

from __future__ import annotations

import threading
from typing import Any

from aloe_ros.config import TaskFile
from aloe_ros.msg import EpisodeEvent, InterventionEvent, Status
from aloe_ros.nodes.common import qos_profile, stamp_to_seconds
from aloe_ros.nodes.monitor import BackgroundListener

__all__ = ["EpisodeWatcher"]

OUTCOMES = {EpisodeEvent.SUCCESS: True, EpisodeEvent.FAILURE: False, EpisodeEvent.ABORT: False}


class EpisodeWatcher(BackgroundListener):
    """Collects finished episodes: id, success, takeovers, duration (from event stamps)."""

    def __init__(self, config: TaskFile) -> None:
        super().__init__("aloe_bench_watcher")
        self.lock = threading.Lock()
        self.started: dict[int, float] = {}
        self.takeovers: dict[int, int] = {}
        self.finished: list[dict[str, Any]] = []
        self.status_nodes: set[str] = set()
        events = qos_profile(config.qos.events)
        self.node.create_subscription(EpisodeEvent, config.topics.episode, self.on_episode,
                                      events)
        self.node.create_subscription(InterventionEvent, config.topics.intervention,
                                      self.on_intervention, events)
        self.node.create_subscription(Status, config.topics.status,
                                      lambda m: self.status_nodes.add(m.node), events)
        self.start()

    def on_episode(self, msg: EpisodeEvent) -> None:
        episode, stamp = int(msg.episode_id), stamp_to_seconds(msg.header.stamp)
        with self.lock:
            if msg.kind == EpisodeEvent.START:
                self.started[episode] = stamp
            elif msg.kind in OUTCOMES and episode in self.started:
                self.finished.append({
                    "episode": episode, "success": OUTCOMES[msg.kind], "reason": msg.reason,
                    "takeovers": self.takeovers.get(episode, 0),
                    "duration_s": stamp - self.started.pop(episode)})

    def on_intervention(self, msg: InterventionEvent) -> None:
        if msg.kind == InterventionEvent.TAKEOVER:
            with self.lock:
                episode = int(msg.episode_id)
                self.takeovers[episode] = self.takeovers.get(episode, 0) + 1
