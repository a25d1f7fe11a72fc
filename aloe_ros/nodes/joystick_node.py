"""joystick_node: a local gamepad (pygame / SDL2) published as sensor_msgs/Joy on topics.joy.

For pip-only installs, where the ROS ``joy`` package is missing. Publishes the pad's full
state at ``rate_hz`` (joy_node's autorepeat, so teleop_node's watchdog sees a live pad) in the
same conventions as joy_node, so the presets of ``joystick.preset`` serve both. With no pad it
keeps running, says so now and then, publishes nothing, and picks up a pad switched on late;
an unplugged pad stops the stream (teleop_node then holds the robot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import Joy

from aloe_ros.nodes.common import AloeNode, run_node
from aloe_ros.teleop.gamepad import GamepadReader, PadBackend, PygameBackend


class JoystickNode(AloeNode):
    def __init__(self, backend: PadBackend | None = None, **kwargs: Any) -> None:
        super().__init__("joystick", **kwargs)
        rate = self.declare_parameter(
            "rate_hz", 50.0,
            ParameterDescriptor(description="Joy publish rate while a pad is connected",
                                read_only=True)).value
        device_name = self.declare_parameter(
            "device_name", "",
            ParameterDescriptor(description="Use the first pad whose name contains this "
                                            "(empty: the first pad)", read_only=True)).value
        self.show_input = bool(self.declare_parameter(
            "show_input", False,
            ParameterDescriptor(description="Log button indices when they change and the axes "
                                            "(to write a button map for a new pad)",
                                read_only=True)).value)
        self.last_down: list[int] = []
        self.reader = GamepadReader(backend or PygameBackend(), str(device_name))
        self.joy_pub = self.create_publisher(Joy, self.config.topics.joy, self.command_qos)
        self.connected_name = ""
        self.create_timer(1.0 / float(rate), self.on_timer)
        self.get_logger().info(f"joystick up: publishing {self.config.topics.joy} at "
                               f"{float(rate):g} Hz while a pad is connected")

    def on_timer(self) -> None:
        sample = self.reader.poll(self.now_seconds())
        if sample is None:
            if self.connected_name:
                self.get_logger().error(f"gamepad '{self.connected_name}' lost: no Joy until "
                                        "it is back")
                self.connected_name = ""
            self.count("polls_without_pad")
            self.get_logger().warning("no gamepad found; waiting for one (plug it in or "
                                      "switch it on)", throttle_duration_sec=10.0)
            return
        if sample.device != self.connected_name:
            self.connected_name = sample.device
            self.get_logger().info(f"gamepad connected: '{sample.device}' "
                                   f"({len(sample.axes)} axes, {len(sample.buttons)} buttons)")
        if self.show_input:
            down = [i for i, b in enumerate(sample.buttons) if b]
            if down != self.last_down:
                self.last_down = down
                axes = ", ".join(f"{i}:{a:+.2f}" for i, a in enumerate(sample.axes))
                self.get_logger().info(f"buttons down {down} | axes {axes}")
        msg = Joy()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "joy"
        msg.axes = sample.axes
        msg.buttons = sample.buttons
        self.joy_pub.publish(msg)
        self.count("joy_published")


def main(args: Sequence[str] | None = None) -> int:
    return run_node(JoystickNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
