"""teleop_node: the operator's joystick, the command mux and the episode lifecycle.

Subscribes sensor_msgs/Joy (topics.joy, from joy_node, joystick_node, ``aloe-ros keyboard`` or
a simulated operator), the measured joint states, the policy's per-tick commands
(topics.policy_command), absolute human targets (topics.teleop_command and
joystick.leader_topic: leader arms, scripted operators) and the sim's detector. Publishes
what the robot executes (topics.command, JointState in robot.joint_names order),
InterventionEvent at every change of control, EpisodeEvent for the lifecycle, and Status.
Service ``/aloe/estop`` (std_srvs/Trigger) stops the robot from anywhere; releasing takes the pad.
In shadow mode policy commands go to shadow.command_topic instead (never topics.command), and
shadow.state_topic (std_msgs/Bool, transient local) says whether shadow mode is on.

All decisions are made by :class:`aloe_ros.teleop.controller.TeleopController`; this file only
converts messages. Command frame_id says who produced it: the policy command's own frame_id
(e.g. its policy version), ``human:<source>`` or ``hold``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from aloe_ros.msg import EpisodeEvent, InterventionEvent, Status
from aloe_ros.nodes.common import AloeNode, run_node, stamp_to_seconds
from aloe_ros.teleop.controller import ControllerOutput, InterventionKind, TeleopController
from aloe_ros.teleop.episode import EpisodeEventKind
from aloe_ros.teleop.mux import MuxCommand, Origin

ESTOP_SERVICE = "/aloe/estop"
# Once the recorder's reader shows up, wait this long more before episode 1: discovery runs
# on each side, and its reader may not have matched our writer yet when we see it.
RECORDER_SETTLE_S = 0.5

EPISODE_KINDS = {
    EpisodeEventKind.START: EpisodeEvent.START, EpisodeEventKind.SUCCESS: EpisodeEvent.SUCCESS,
    EpisodeEventKind.FAILURE: EpisodeEvent.FAILURE, EpisodeEventKind.ABORT: EpisodeEvent.ABORT,
    EpisodeEventKind.RESET: EpisodeEvent.RESET,
}
DETECTOR_KINDS = {EpisodeEvent.SUCCESS: EpisodeEventKind.SUCCESS,
                  EpisodeEvent.FAILURE: EpisodeEventKind.FAILURE}
INTERVENTION_KINDS = {
    InterventionKind.TAKEOVER: InterventionEvent.TAKEOVER,
    InterventionKind.HANDBACK: InterventionEvent.HANDBACK,
    InterventionKind.ESTOP: InterventionEvent.ESTOP,
    InterventionKind.RELEASE_ESTOP: InterventionEvent.RELEASE_ESTOP,
}


class JointStateError(ValueError):
    pass


class TeleopNode(AloeNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("teleop", **kwargs)
        cfg = self.config
        self.controller = TeleopController(cfg, sim=self.use_sim)
        self.joint_names = list(cfg.robot.joint_names)
        self.joint_index = {name: i for i, name in enumerate(self.joint_names)}
        self.policy_frame = "policy"

        self.command_pub = self.create_publisher(JointState, cfg.topics.command, self.command_qos)
        self.intervention_pub = self.create_publisher(InterventionEvent, cfg.topics.intervention,
                                                      self.events_qos)
        self.episode_pub = self.create_publisher(EpisodeEvent, cfg.topics.episode,
                                                 self.events_qos)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.shadow_pub = self.create_publisher(JointState, cfg.shadow.command_topic,
                                                self.command_qos)
        self.shadow_state_pub = self.create_publisher(Bool, cfg.shadow.state_topic, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.create_subscription(Joy, cfg.topics.joy, self.on_joy, self.command_qos)
        self.create_subscription(JointState, cfg.topics.joint_states, self.on_joint_state,
                                 self.command_qos)
        self.create_subscription(JointState, cfg.topics.policy_command, self.on_policy_command,
                                 self.command_qos)
        for topic in dict.fromkeys(t for t in (cfg.topics.teleop_command,
                                               cfg.joystick.leader_topic) if t):
            self.create_subscription(JointState, topic, self.on_human_target, self.command_qos)
        self.create_subscription(EpisodeEvent, cfg.topics.sim_detector, self.on_detector,
                                 self.events_qos)
        # Anyone may stop the robot (a GUI, a script); releasing takes the operator's pad.
        self.create_service(Trigger, ESTOP_SERVICE, self.on_estop_service)
        self.create_timer(1.0 / cfg.robot.control_rate_hz, self.on_tick)
        self.create_timer(1.0, self.publish_status)
        self.reported_problems = 0
        self.wait_for_recorder()
        self.publish_shadow_state()
        self.last_line = ""
        self.last_line_time = 0.0
        layout = self.controller.layout
        self.get_logger().info(
            f"teleop up: pad preset '{layout.name}' ({layout.notes}), mode "
            f"{cfg.joystick.mode}, watchdog {cfg.joystick.timeout_s:g} s, "
            f"{'sim' if self.use_sim else 'real robot'}; mux e-stop > human > policy on "
            f"{cfg.topics.command}")

    # ---- the recorder gate ---------------------------------------------------------------------
    def wait_for_recorder(self) -> None:
        """When recording (``record_dir`` set, as ``aloe-ros up`` and the launch file do), hold
        the first episode until the recorder subscribes the episode topic, for at most
        episode.recorder_wait_s. Under ``ros2 launch`` every node starts at once and the
        recorder, importing more, is often up last: episode 1's START would be lost."""
        self.declare_parameter("record_dir", "")
        recording = bool(self.get_parameter("record_dir").get_parameter_value().string_value)
        self.recorder_names = self.config.recorder_names()
        wait_s = self.config.episode.recorder_wait_s
        if not (recording and self.recorder_names and wait_s > 0):
            return
        self.controller.recorder_ready = False
        self.recorder_wait_since = time.monotonic()
        self.recorder_seen_at: float | None = None
        self.recorder_timer = self.create_timer(0.1, self.check_recorder)
        self.get_logger().info(
            f"recording: episode 1 waits up to {wait_s:g} s for the recorder "
            f"({', '.join(sorted(self.recorder_names))}) on {self.config.topics.episode}")

    def check_recorder(self) -> None:
        now = time.monotonic()
        if self.recorder_seen_at is None:
            readers = self.get_subscriptions_info_by_topic(self.config.topics.episode)
            if any(info.node_name in self.recorder_names for info in readers):
                self.recorder_seen_at = now
        if self.recorder_seen_at is not None and now - self.recorder_seen_at >= RECORDER_SETTLE_S:
            self.get_logger().info("recorder up: starting episode 1")
        elif now - self.recorder_wait_since >= self.config.episode.recorder_wait_s:
            self.get_logger().warning(
                f"no recorder ({', '.join(sorted(self.recorder_names))}) on "
                f"{self.config.topics.episode} after {self.config.episode.recorder_wait_s:g} s "
                "(episode.recorder_wait_s): starting episode 1 anyway; it may not be on record")
        else:
            return
        self.controller.recorder_ready = True
        self.recorder_timer.cancel()
        self.destroy_timer(self.recorder_timer)

    # ---- message conversion -----------------------------------------------------------------
    def positions(self, msg: JointState, *, partial: bool) -> np.ndarray:
        """Positions in robot.joint_names order. Without names: exactly our order. With names:
        all our joints (``partial``: a subset, the rest NaN); unknown names are an error."""
        values = np.asarray(msg.position, dtype=np.float64)
        if list(msg.name) == self.joint_names and len(values) == len(self.joint_names):
            return values                       # the common case: our names, our order
        if not msg.name:
            if len(values) != len(self.joint_names):
                raise JointStateError(f"{len(values)} positions for {len(self.joint_names)} "
                                      "joints and no names")
            return values
        if len(msg.name) != len(values):
            raise JointStateError(f"{len(msg.name)} names but {len(values)} positions")
        unknown = [n for n in msg.name if n not in self.joint_index]
        if unknown:
            raise JointStateError(f"unknown joint names {unknown[:3]}")
        ordered = np.full(len(self.joint_names), np.nan)
        for name, value in zip(msg.name, values):
            ordered[self.joint_index[name]] = value
        if not partial and np.isnan(ordered).any():
            missing = [n for n, v in zip(self.joint_names, ordered) if np.isnan(v)]
            raise JointStateError(f"missing joints {missing[:3]}")
        return ordered

    def rejected(self, counter: str, topic: str, error: Exception) -> None:
        self.count(counter)
        self.get_logger().error(f"rejected message on {topic}: {error}",
                                throttle_duration_sec=1.0)

    # ---- inputs -------------------------------------------------------------------------------
    def on_joy(self, msg: Joy) -> None:
        out = self.controller.on_joy(list(msg.axes), list(msg.buttons), self.now_seconds(),
                                     msg.header.frame_id)
        self.publish(out)

    def on_joint_state(self, msg: JointState) -> None:
        try:
            positions = self.positions(msg, partial=False)
        except JointStateError as exc:
            self.rejected("bad_joint_states", self.config.topics.joint_states, exc)
            return
        self.controller.on_joint_state(positions)

    def on_policy_command(self, msg: JointState) -> None:
        try:
            positions = self.positions(msg, partial=False)
        except JointStateError as exc:
            self.rejected("bad_policy_commands", self.config.topics.policy_command, exc)
            return
        command = self.controller.on_policy_command(positions, self.now_seconds())
        if command is not None:
            self.policy_frame = msg.header.frame_id or "policy"
            self.publish_command(command, self.policy_frame)
            return
        shadow = self.controller.shadow_command(positions)
        if shadow is not None:
            self.policy_frame = msg.header.frame_id or "policy"
            shadow_msg = JointState()
            shadow_msg.header.stamp = self.get_clock().now().to_msg()
            shadow_msg.header.frame_id = self.policy_frame
            shadow_msg.name = self.joint_names
            shadow_msg.position = shadow.tolist()
            self.shadow_pub.publish(shadow_msg)

    def on_human_target(self, msg: JointState) -> None:
        try:
            goal = self.positions(msg, partial=True)
        except JointStateError as exc:
            self.rejected("bad_human_targets", self.config.topics.teleop_command, exc)
            return
        self.controller.on_human_target(goal, self.now_seconds())

    def on_detector(self, msg: EpisodeEvent) -> None:
        kind = DETECTOR_KINDS.get(msg.kind)
        if kind is None:
            return
        out = self.controller.on_detector(kind, msg.reason, stamp_to_seconds(msg.header.stamp),
                                          self.now_seconds())
        self.publish(out)

    def on_estop_service(self, request: Trigger.Request, response: Trigger.Response
                         ) -> Trigger.Response:
        self.publish(self.controller.request_estop("service"))
        response.success = True
        response.message = "e-stop active; release it from the pad (release e-stop button)"
        return response

    def on_tick(self) -> None:
        self.publish(self.controller.tick(self.now_seconds()))
        problems = self.controller.problems
        if problems != self.reported_problems:
            self.reported_problems = problems
            self.get_logger().error(self.controller.last_problem, throttle_duration_sec=1.0)

    # ---- outputs ------------------------------------------------------------------------------
    def publish(self, out: ControllerOutput) -> None:
        """Commands first (a takeover's first human command), then the events."""
        for command in out.commands:
            frame = (self.policy_frame if command.origin == Origin.POLICY
                     else f"human:{self.controller.pad_source}" if command.origin == Origin.HUMAN
                     else "hold")
            self.publish_command(command, frame)
        stamp = self.get_clock().now().to_msg()
        for change in out.interventions:
            msg = InterventionEvent()
            msg.header.stamp = stamp
            msg.episode_id = change.episode_id
            msg.kind = INTERVENTION_KINDS[change.kind]
            msg.source = change.source
            msg.arms = change.arms
            self.intervention_pub.publish(msg)
            self.get_logger().info(f"control: {change.kind.value} by {change.source} "
                                   f"(arms {change.arms}), episode {change.episode_id}")
        for event in out.episodes:
            episode = EpisodeEvent()
            episode.header.stamp = stamp
            episode.episode_id = event.episode_id
            episode.task = self.config.task.name
            episode.kind = EPISODE_KINDS[event.kind]
            episode.reward = event.reward
            episode.reason = event.reason
            self.episode_pub.publish(episode)
            self.get_logger().info(f"episode {event.episode_id}: {event.kind.value} "
                                   f"({event.reason}), reward {event.reward:g}")
        for shadow in out.shadow_changes:
            self.publish_shadow_state()
            self.get_logger().warning(
                "SHADOW mode ON: policy commands go to "
                f"{self.config.shadow.command_topic}, not to the robot" if shadow else
                "shadow mode OFF: the policy is LIVE (it moves the robot when it holds control)")
        if out.interventions or out.episodes or out.shadow_changes:
            self.publish_status()

    def publish_command(self, command: MuxCommand, frame: str) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.name = self.joint_names
        msg.position = command.positions.tolist()
        self.command_pub.publish(msg)

    def publish_shadow_state(self) -> None:
        self.shadow_state_pub.publish(Bool(data=bool(self.controller.mux.shadow)))

    def publish_status(self) -> None:
        controller = self.controller
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.control_source = controller.control_label()
        msg.episode_id = controller.episodes.episode_id
        msg.last_outcome = controller.episodes.last_outcome
        msg.estop_active = controller.control_label() == "estop"
        msg.policy_version = self.policy_frame
        counters = controller.all_counters()
        for name, value in self.counters.items():     # node-level rejections add up
            counters[name] = counters.get(name, 0) + value
        msg.counter_names = list(counters)
        msg.counter_values = [int(v) for v in counters.values()]
        msg.message = controller.status_message()
        self.status_pub.publish(msg)
        line = (f"control {msg.control_source} | episode {msg.episode_id} "
                f"{controller.episodes.phase.value} | last outcome "
                f"{msg.last_outcome or '-'} | e-stop {'ON' if msg.estop_active else 'off'} | "
                f"arms {controller.human.selected}"
                f"{' | SHADOW (policy not executed)' if controller.mux.shadow else ''}")
        self.publish_shadow_state()         # late joiners (logger, inference) hear it too
        now = self.now_seconds()
        if line != self.last_line or now - self.last_line_time >= 10.0:
            self.last_line, self.last_line_time = line, now
            self.get_logger().info(line)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
