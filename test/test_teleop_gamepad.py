"""joystick_node's pad reader: no pad, unplug, a pad switched on late; joy_node conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import spin_until, write_task_config

from aloe_ros.teleop.gamepad import GamepadReader, to_joy_convention
from aloe_ros.teleop.layout import read_pad, resolve_layout


class FakeDevice:
    def __init__(self, name: str, instance: int, axes=None, hats=None, buttons=None) -> None:
        self.name, self.instance = name, instance
        self.axes = axes if axes is not None else [0.0, 0.0, -1.0, 0.0, 0.0, -1.0]
        self.hats = hats if hats is not None else [(0, 0)]
        self.buttons = buttons if buttons is not None else [0] * 11
        self.dead = False

    def get_name(self) -> str:
        return self.name

    def get_instance_id(self) -> int:
        return self.instance

    def get_numaxes(self) -> int:
        return len(self.axes)

    def get_axis(self, i: int) -> float:
        if self.dead:
            raise RuntimeError("Joystick not initialized")
        return self.axes[i]

    def get_numhats(self) -> int:
        return len(self.hats)

    def get_hat(self, i: int) -> tuple[int, int]:
        return self.hats[i]

    def get_numbuttons(self) -> int:
        return len(self.buttons)

    def get_button(self, i: int) -> int:
        return self.buttons[i]


class FakeBackend:
    def __init__(self) -> None:
        self.devices: list[FakeDevice] = []
        self.removed: list[int] = []
        self.rescans = 0

    def count(self) -> int:
        return len(self.devices)

    def open(self, index: int) -> FakeDevice:
        return self.devices[index]

    def removed_instances(self) -> list[int]:
        out, self.removed = self.removed, []
        return out

    def rescan(self) -> None:
        self.rescans += 1

    def unplug(self, device: FakeDevice) -> None:
        self.devices.remove(device)
        self.removed.append(device.instance)


def test_joy_convention_matches_joy_node() -> None:
    # SDL: stick right/down positive, triggers -1 at rest; hat (x right, y up).
    axes, buttons = to_joy_convention([0.5, 1.0, -1.0], [(1, 1)], [0, 1, True])
    assert axes == [-0.5, -1.0, 1.0, -1.0, 1.0]
    assert buttons == [0, 1, 1]
    # Read through the xbox preset: trigger at rest is 0, the d-pad up is +1.
    layout = resolve_layout("xbox")
    sdl_axes = [0.0, -1.0, -1.0, 0.0, 0.0, 1.0]          # left stick up, RT fully pressed
    axes, buttons = to_joy_convention(sdl_axes, [(0, 1)], [0] * 11)
    pad = read_pad(layout, axes, buttons)
    assert pad.axes["left_y"] == 1.0 and pad.axes["dpad_y"] == 1.0
    assert pad.trigger("trigger_right", layout) == 1.0
    assert pad.trigger("trigger_left", layout) == 0.0


def test_no_pad_then_late_pad_then_unplug_then_back() -> None:
    backend = FakeBackend()
    reader = GamepadReader(backend, rescan_period_s=1.0)
    assert reader.poll(0.0) is None
    assert reader.poll(0.5) is None and backend.rescans == 1   # no busy re-scanning
    pad = FakeDevice("Xbox Wireless Controller", 7)
    backend.devices.append(pad)                                  # switched on late
    sample = reader.poll(1.1)
    assert sample is not None and sample.device == "Xbox Wireless Controller"
    assert len(sample.axes) == 8 and len(sample.buttons) == 11
    backend.unplug(pad)
    assert reader.poll(1.2) is None and reader.disconnects == 1
    pad2 = FakeDevice("Xbox Wireless Controller", 8)
    backend.devices.append(pad2)
    assert reader.poll(1.3) is None                              # next scan 1 s later
    assert reader.poll(2.3) is not None and reader.connects == 2


def test_a_pad_that_fails_to_read_is_dropped_not_fatal() -> None:
    backend = FakeBackend()
    pad = FakeDevice("F710", 1)
    backend.devices.append(pad)
    reader = GamepadReader(backend)
    assert reader.poll(0.0) is not None
    pad.dead = True
    assert reader.poll(0.1) is None
    assert not reader.connected


def test_device_name_selects_the_pad() -> None:
    backend = FakeBackend()
    backend.devices += [FakeDevice("Logitech Gamepad F710", 1), FakeDevice("DualSense", 2)]
    reader = GamepadReader(backend, device_name="dualsense")
    sample = reader.poll(0.0)
    assert sample is not None and sample.device == "DualSense"


def test_pygame_backend_starts_headless_without_a_pad() -> None:
    pytest.importorskip("pygame")
    from aloe_ros.teleop.gamepad import PygameBackend

    backend = PygameBackend()
    reader = GamepadReader(backend)
    assert reader.poll(0.0) is None          # these machines have no pad


def test_joystick_node_publishes_joy_only_while_a_pad_is_there(ros_context,
                                                               tmp_path: Path) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Joy

    from aloe_ros.nodes.joystick_node import JoystickNode

    path = write_task_config(tmp_path)
    backend = FakeBackend()
    node = JoystickNode(backend=backend, context=ros_context, parameter_overrides=[
        Parameter("config_file", value=str(path))])
    listener = Node("joy_listener", context=ros_context)
    received: list[Joy] = []
    listener.create_subscription(Joy, "/joy", received.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(listener)
    try:
        assert spin_until(executor, lambda: node.counters.get("polls_without_pad", 0) >= 5, 5.0)
        assert received == []
        backend.devices.append(FakeDevice("Xbox 360 Pad", 3, buttons=[0, 1] + [0] * 9))
        assert spin_until(executor, lambda: len(received) >= 3, 10.0)
        assert received[-1].buttons[1] == 1 and received[-1].header.frame_id == "joy"
        backend.unplug(backend.devices[0])
        spin_until(executor, lambda: not node.reader.connected, 5.0)
        n = len(received)
        executor.spin_once(timeout_sec=0.05)
        spin_until(executor, lambda: node.counters.get("polls_without_pad", 0) >= 10, 5.0)
        assert len(received) <= n + 1          # at most one already in flight
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
