"""sim_operator_node: a simulated person at the joystick (see aloe_ros/sim/operator.py).

Subscribes the sim's privileged state (/aloe/sim/state), joint states, and the intervention and
episode streams; publishes sensor_msgs/Joy on topics.joy in the task's pad layout (buttons held
for ``press_s``, published every control tick like a real pad, so teleop_node's watchdog sees a
live pad) and, while it holds control, absolute joint targets on topics.teleop_command (the
leader-arm path). It never talks to the robot directly: teleop_node's mux decides.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import String

from aloe_ros.msg import EpisodeEvent, InterventionEvent, Status
from aloe_ros.nodes.common import AloeNode, run_node
from aloe_ros.nodes.sim_robot_node import SIM_STATE_TOPIC
from aloe_ros.sim.operator import SimulatedOperator
from aloe_ros.teleop.layout import resolve_layout

PRESS_S = 0.15


class SimOperatorNode(AloeNode):
    def __init__(self) -> None:
        super().__init__("sim_operator")
        cfg = self.config
        self.declare_parameter("intervention_rate", cfg.operator.intervention_rate,
                               ParameterDescriptor(description="override operator."
                                                   "intervention_rate", read_only=True))
        cfg.operator.intervention_rate = float(self.get_parameter("intervention_rate").value)
        self.operator = SimulatedOperator(cfg, cfg.operator)
        j = cfg.joystick
        self.layout = resolve_layout(j.preset, j.buttons, j.axes, j.joint_axes)
        self.joint_names = list(cfg.robot.joint_names)
        self.dt = 1.0 / cfg.robot.control_rate_hz
        self.state: dict | None = None
        self.positions: np.ndarray | None = None
        self.human_in_control = False
        self.episode_running = False
        self.held: dict[str, float] = {}          # button -> release time
        self.joy_pub = self.create_publisher(Joy, cfg.topics.joy, self.command_qos)
        self.target_pub = self.create_publisher(JointState, cfg.topics.teleop_command,
                                                self.command_qos)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.create_subscription(String, SIM_STATE_TOPIC, self.on_state, self.command_qos)
        self.create_subscription(JointState, cfg.topics.joint_states, self.on_joint_state,
                                 self.command_qos)
        self.create_subscription(InterventionEvent, cfg.topics.intervention,
                                 self.on_intervention, self.events_qos)
        self.create_subscription(EpisodeEvent, cfg.topics.episode, self.on_episode,
                                 self.events_qos)
        self.create_timer(self.dt, self.on_tick)
        self.create_timer(1.0, self.publish_status)
        self.get_logger().info(
            f"simulated operator on '{j.preset}' pad: intervention rate "
            f"{cfg.operator.intervention_rate:g}, reaction {cfg.operator.reaction_delay_s:g} s, "
            f"stall {cfg.operator.stall_s:g} s")

    def on_state(self, msg: String) -> None:
        try:
            self.state = json.loads(msg.data)
        except json.JSONDecodeError as exc:
            self.count("bad_sim_state")
            self.get_logger().error(f"unreadable sim state: {exc}", throttle_duration_sec=5.0)

    def on_joint_state(self, msg: JointState) -> None:
        if list(msg.name) == self.joint_names:
            self.positions = np.asarray(msg.position, dtype=np.float64)

    def on_intervention(self, msg: InterventionEvent) -> None:
        if msg.kind == InterventionEvent.TAKEOVER:
            self.human_in_control = True
        elif msg.kind in (InterventionEvent.HANDBACK, InterventionEvent.ESTOP):
            self.human_in_control = False

    def on_episode(self, msg: EpisodeEvent) -> None:
        # Control survives episode boundaries in teleop_node: only interventions change it.
        self.episode_running = msg.kind == EpisodeEvent.START

    def on_tick(self) -> None:
        now = self.now_seconds()
        if self.state is not None and self.positions is not None:
            decision = self.operator.step(
                self.state, self.positions, now, human_in_control=self.human_in_control,
                episode_running=self.episode_running, dt=self.dt)
            for button in decision.press:
                if button in self.layout.buttons:
                    self.held[button] = now + PRESS_S
                    self.count(f"pressed_{button}")
                    self.get_logger().info(f"operator: {button} ({decision.reason})")
            if decision.target is not None:
                target = JointState()
                target.header.stamp = self.get_clock().now().to_msg()
                target.name = self.joint_names
                target.position = decision.target.tolist()
                self.target_pub.publish(target)
        self.publish_joy(now)

    def publish_joy(self, now: float) -> None:
        axes = [0.0] * self.layout.min_axes()
        for trigger in ("trigger_left", "trigger_right"):
            if trigger in self.layout.axes:
                axes[self.layout.axes[trigger]] = self.layout.trigger_released
        buttons = [0] * self.layout.min_buttons()
        for button, until in list(self.held.items()):
            if now < until:
                buttons[self.layout.buttons[button]] = 1
            else:
                del self.held[button]
        msg = Joy()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "sim_operator"
        msg.axes = axes
        msg.buttons = buttons
        self.joy_pub.publish(msg)

    def publish_status(self) -> None:
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.control_source = "human" if self.human_in_control else "policy"
        msg.counter_names = list(self.counters)
        msg.counter_values = [int(v) for v in self.counters.values()]
        msg.message = f"takeovers this episode: {self.operator.takeovers}"
        self.status_pub.publish(msg)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(SimOperatorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
