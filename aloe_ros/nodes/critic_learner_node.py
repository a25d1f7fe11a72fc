"""critic_learner_node: ALOE's online learner as a ROS node (a thin shell over aloe_ros.learning).

Builds episodes from the live topics (cameras, joint states, executed commands, action chunks,
interventions, episode events) with :class:`LiveEpisodeBuilder`, and optionally preloads bags
or episode directories (parameter ``data``). A :class:`LearnerWorker` thread owns the replay,
the trainer and the checkpoints, so callbacks only enqueue and the node stays responsive.

Publishes ``CriticStats`` for each executed chunk (once the chunk is complete, within about a
second), ``PolicyUpdate`` (file:// URI of a checkpoint directory, sha256, version) whenever the
learner writes an announced checkpoint, and ``Status`` with its counters. Restarts resume from
``<learning.checkpoint_dir>/latest.json`` (respawn: true in the task YAML).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import Image, JointState

from aloe_ros.io.images import ENCODING_CHANNELS, ImageError, image_to_array
from aloe_ros.io.transitions import chunk_boundaries
from aloe_ros.learning.checkpoints import CheckpointInfo, default_actor_loader
from aloe_ros.learning.learner import ChunkStats, Learner, LearnerWorker
from aloe_ros.learning.live_episodes import LiveEpisodeBuilder, slice_episode
from aloe_ros.msg import (
    ActionChunk,
    CriticStats,
    EpisodeEvent,
    InterventionEvent,
    PolicyUpdate,
    Status,
)
from aloe_ros.nodes.common import AloeNode, run_node, stamp_to_seconds


class CriticLearnerNode(AloeNode):
    def __init__(self) -> None:
        super().__init__("critic_learner")
        cfg = self.config
        self.declare_parameter("data", "", ParameterDescriptor(
            description="Comma-separated bags / episode directories to preload", read_only=True))
        self.declare_parameter("checkpoint_dir", "", ParameterDescriptor(
            description="Override learning.checkpoint_dir", read_only=True))
        self.declare_parameter("resume", True, ParameterDescriptor(
            description="Resume from <checkpoint_dir>/latest.json", read_only=True))
        checkpoint_dir = (self.get_parameter("checkpoint_dir").get_parameter_value().string_value
                          or cfg.learning.checkpoint_dir)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.worker: LearnerWorker | None = None
        try:
            self.learner = self._create_learner(checkpoint_dir)
        except Exception as exc:  # noqa: BLE001 - stay up and say why, never a respawn loop
            self.disabled_reason = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"learner disabled: {self.disabled_reason}")
            self.create_timer(1.0, self.publish_disabled_status)
            return
        actor_config = getattr(self.learner.trainer.actor, "config", None)
        image_size = getattr(actor_config, "image_size", None)
        self.camera_names = [c.name for c in cfg.cameras]
        self.joint_index = {n: i for i, n in enumerate(cfg.robot.joint_names)}
        self.builder = LiveEpisodeBuilder(
            cfg.task.text, cfg.robot.joint_names, self.camera_names, cfg.robot.control_rate_hz,
            image_size=tuple(image_size) if image_size else None)  # type: ignore[arg-type]
        self.reported_until = 0
        self.episode_topic_seen = False
        self.pending_images: dict[str, Image] = {}

        self.stats_pub = self.create_publisher(CriticStats, cfg.topics.critic_stats,
                                               self.events_qos)
        self.update_pub = self.create_publisher(PolicyUpdate, cfg.topics.policy_update,
                                                self.events_qos)
        for camera in cfg.cameras:
            self.create_subscription(Image, camera.topic,
                                     lambda msg, name=camera.name: self.on_image(name, msg),
                                     self.sensor_qos)
        self.create_subscription(JointState, cfg.topics.joint_states, self.on_joint_state,
                                 self.command_qos)
        self.create_subscription(JointState, cfg.topics.command, self.on_command,
                                 self.command_qos)
        self.create_subscription(ActionChunk, cfg.topics.policy_chunk, self.on_chunk,
                                 self.command_qos)
        self.create_subscription(InterventionEvent, cfg.topics.intervention,
                                 self.on_intervention, self.events_qos)
        self.create_subscription(EpisodeEvent, cfg.topics.episode,
                                 lambda msg: self.on_episode(msg, primary=True), self.events_qos)
        self.create_subscription(EpisodeEvent, cfg.topics.sim_detector,
                                 lambda msg: self.on_episode(msg, primary=False),
                                 self.events_qos)

        self.worker = LearnerWorker(self.learner, on_checkpoint=self.publish_update,
                                    on_stats=self.publish_stats, on_error=self.on_worker_error)
        self.worker.start()
        data = self.get_parameter("data").get_parameter_value().string_value
        if data:
            threading.Thread(target=self.preload, args=([p for p in data.split(",") if p],),
                             name="aloe-preload", daemon=True).start()
        self.create_timer(1.0, self.on_tick)
        self.get_logger().info(
            f"learner up: method {cfg.learning.method}, schedule {cfg.learning.schedule}, "
            f"device {cfg.learning.device}, step {self.learner.trainer.step}, "
            f"{len(self.learner.replay)} transitions, checkpoints in {checkpoint_dir}")

    def _create_learner(self, checkpoint_dir: str) -> Learner:
        from aloe_ros.policies.bc import new_builtin_policy

        cfg = self.config
        return Learner.create(
            cfg, actor_loader=default_actor_loader(cfg.learning.device),
            new_actor=lambda: new_builtin_policy(cfg, seed=cfg.learning.seed),
            checkpoint_dir=checkpoint_dir,
            resume=self.get_parameter("resume").get_parameter_value().bool_value)

    def preload(self, paths: list[str]) -> None:
        """Bags / episode directories into the replay (a thread: start-up stays quick)."""
        from aloe_ros.policies.bc import load_episodes

        for path in paths:
            try:
                episodes = load_episodes([path], self.config, resize=self.builder.image_size)
            except Exception as exc:  # noqa: BLE001 - one bad path must not stop the learner
                self.count("preload_errors")
                self.get_logger().error(f"cannot preload {path}: {exc}")
                continue
            for episode in episodes:
                self.worker.submit_episode(episode)
            self.count("preloaded_episodes", len(episodes))
            self.get_logger().info(f"preloading {len(episodes)} episodes from {path}")

    # ---- inputs ---------------------------------------------------------------------------
    def ordered(self, msg: JointState) -> np.ndarray | None:
        positions = np.asarray(msg.position, dtype=np.float32)
        if not msg.name:
            return positions if len(positions) == len(self.joint_index) else None
        if len(msg.name) != len(positions) or set(msg.name) != set(self.joint_index):
            return None
        out = np.empty(len(self.joint_index), np.float32)
        for name, value in zip(msg.name, positions):
            out[self.joint_index[name]] = value
        return out if np.isfinite(out).all() else None

    def on_joint_state(self, msg: JointState) -> None:
        positions = self.ordered(msg)
        if positions is None:
            self.count("bad_joint_states")
            self.get_logger().error("joint state does not match robot.joint_names; skipped",
                                    throttle_duration_sec=5.0)
            return
        self.builder.on_joint_state(positions)

    def on_command(self, msg: JointState) -> None:
        action = self.ordered(msg)
        if action is None:
            self.count("bad_commands")
            self.get_logger().error("command does not match robot.joint_names; skipped",
                                    throttle_duration_sec=5.0)
            return
        stamp = stamp_to_seconds(msg.header.stamp) or self.now_seconds()
        self.decode_pending_images()
        self.builder.on_command(stamp, action)

    def on_image(self, camera: str, msg: Image) -> None:
        # Checked now (cheap), decoded lazily when a command row needs it: frames that no
        # row uses cost no conversion.
        channels = ENCODING_CHANNELS.get(str(msg.encoding))
        if channels is None or msg.step < msg.width * channels or (
                len(msg.data) < msg.step * msg.height):
            self.count("bad_images")
            self.get_logger().error(
                f"camera {camera}: unusable image ({msg.encoding!r}, {msg.width}x{msg.height}, "
                f"step {msg.step}, {len(msg.data)} bytes)", throttle_duration_sec=5.0)
            return
        self.pending_images[camera] = msg

    def decode_pending_images(self) -> None:
        for camera, msg in self.pending_images.items():
            try:
                self.builder.on_image(camera, image_to_array(msg, encoding="rgb8"))
            except ImageError as exc:
                self.count("bad_images")
                self.get_logger().error(f"camera {camera}: {exc}", throttle_duration_sec=5.0)
        self.pending_images.clear()

    def on_chunk(self, msg: ActionChunk) -> None:
        self.builder.on_chunk(str(msg.policy_version))

    def on_intervention(self, msg: InterventionEvent) -> None:
        self.builder.on_intervention(int(msg.kind))

    def on_episode(self, msg: EpisodeEvent, *, primary: bool) -> None:
        # The episode manager's stream wins; the sim detector only while there is none.
        if primary:
            self.episode_topic_seen = True
        elif self.episode_topic_seen:
            return
        episode = self.builder.on_episode_event(int(msg.kind), float(msg.reward),
                                                str(msg.reason), int(msg.episode_id))
        if episode is None:
            if int(msg.kind) == EpisodeEvent.START:
                self.reported_until = 0
            return
        self.count("episodes")
        if self.reported_until < len(episode):
            self.worker.submit_for_stats(slice_episode(episode, self.reported_until))
        self.worker.submit_episode(episode)
        self.reported_until = 0

    def on_tick(self) -> None:
        """Completed chunks of the episode in progress go to the critic for live stats."""
        tail = self.builder.snapshot(from_step=self.reported_until)
        if tail is not None:
            starts = [s for s, _ in chunk_boundaries(tail, self.config.policy.execute_horizon)]
            if len(starts) > 1:
                # Every chunk but the last is complete: report those, keep the last for later.
                self.worker.submit_for_stats(slice_episode(tail, 0, starts[-1] + 1))
                self.reported_until += starts[-1]
        self.publish_status()

    # ---- outputs (called from the worker thread) ------------------------------------------
    def publish_stats(self, stats: list[ChunkStats]) -> None:
        metrics = self.learner.last_metrics
        for chunk in stats:
            msg = CriticStats()
            msg.header.stamp.sec = int(chunk.stamp)
            msg.header.stamp.nanosec = int((chunk.stamp % 1.0) * 1e9)
            msg.policy_version = chunk.policy_version
            msg.chunk_id = chunk.start
            msg.episode_id = chunk.episode_id
            msg.q_mean, msg.q_std = chunk.q_mean, chunk.q_std
            msg.q_aggregated, msg.value, msg.advantage = (chunk.q_aggregated, chunk.value,
                                                          chunk.advantage)
            msg.learner_step = self.learner.trainer.step
            msg.critic_loss = float(metrics.get("losses/critic", metrics.get("losses/value",
                                                                              0.0)))
            msg.actor_loss = float(metrics.get("losses/actor", 0.0))
            self.stats_pub.publish(msg)
        self.count("critic_stats", len(stats))

    def publish_update(self, info: CheckpointInfo) -> None:
        msg = PolicyUpdate()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.policy_version = info.version
        msg.checkpoint_uri = Path(info.path).resolve().as_uri()
        msg.sha256 = info.sha256
        msg.step = info.step
        msg.metric_names = list(info.metrics)
        msg.metric_values = [float(v) for v in info.metrics.values()]
        self.update_pub.publish(msg)
        self.count("policy_updates")
        self.get_logger().info(f"published policy {info.version} ({msg.checkpoint_uri})")

    def on_worker_error(self, message: str) -> None:
        self.count("learner_errors")
        self.get_logger().error(message, throttle_duration_sec=5.0)

    def publish_status(self) -> None:
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.control_source = "idle"
        msg.policy_version = str(getattr(self.learner.trainer.actor, "version", ""))
        counters = {**self.counters, **self.worker.counters,
                    "replay_transitions": sum(self.worker.replay_summary.values()),
                    "learner_step": self.learner.trainer.step,
                    "live_rows_dropped": self.builder.dropped_rows}
        msg.counter_names = list(counters)
        msg.counter_values = [int(v) for v in counters.values()]
        msg.message = ", ".join(f"{k} {v}" for k, v in self.worker.replay_summary.items())
        self.status_pub.publish(msg)

    def publish_disabled_status(self) -> None:
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.control_source = "idle"
        msg.message = f"learner disabled: {self.disabled_reason}"
        self.status_pub.publish(msg)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(CriticLearnerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
