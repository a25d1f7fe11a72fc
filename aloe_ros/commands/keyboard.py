"""``aloe-ros keyboard <task>``: drive takeover, outcomes and the arms from a terminal.

Publishes sensor_msgs/Joy on the task's joy topic in the layout of its ``joystick.preset``
(frame_id ``keyboard``, so interventions are labelled with that source), and prints the
intervention and episode events teleop_node publishes. Needs a terminal: without one it says so
and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from typing import Any

from aloe_ros.config import ConfigError, load_task_config

HELP = "play gamepad from the terminal keyboard (development without a pad)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", default="pack_phone",
                        help="task name or YAML path (default: pack_phone)")
    parser.add_argument("--rate", type=float, default=30.0, metavar="HZ",
                        help="Joy publish rate (default 30; above 1/joystick.timeout_s)")


def run(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        print("aloe-ros keyboard: stdin is not a terminal; run it in an interactive terminal "
              "(it reads single key presses)", file=sys.stderr)
        return 2
    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros keyboard: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.rate <= 1.0 / config.joystick.timeout_s:
        print(f"aloe-ros keyboard: --rate {args.rate:g} is too slow for joystick.timeout_s "
              f"{config.joystick.timeout_s:g}", file=sys.stderr)
        return 2
    return _loop(config, args.rate)


def _loop(config: Any, rate: float) -> int:
    import termios
    import tty

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Joy

    from aloe_ros.msg import EpisodeEvent, InterventionEvent
    from aloe_ros.nodes.common import qos_profile
    from aloe_ros.teleop.keyboard import KeyboardJoy, help_text
    from aloe_ros.teleop.layout import resolve_layout

    joystick = config.joystick
    layout = resolve_layout(joystick.preset, joystick.buttons, joystick.axes,
                            joystick.joint_axes)
    keyboard = KeyboardJoy(layout, latch_takeover=joystick.mode == "deadman")
    intervention_names = {InterventionEvent.TAKEOVER: "TAKEOVER",
                          InterventionEvent.HANDBACK: "HANDBACK",
                          InterventionEvent.ESTOP: "E-STOP",
                          InterventionEvent.RELEASE_ESTOP: "E-STOP released"}
    episode_names = {EpisodeEvent.START: "start", EpisodeEvent.SUCCESS: "SUCCESS",
                     EpisodeEvent.FAILURE: "FAILURE", EpisodeEvent.ABORT: "abort",
                     EpisodeEvent.RESET: "reset"}

    def say(text: str) -> None:
        sys.stdout.write(text + "\r\n")
        sys.stdout.flush()

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("keyboard_joy", context=context)
    publisher = node.create_publisher(Joy, config.topics.joy, qos_profile(config.qos.command))
    events = qos_profile(config.qos.events)
    node.create_subscription(
        InterventionEvent, config.topics.intervention,
        lambda m: say(f"  control: {intervention_names.get(m.kind, m.kind)} "
                      f"({m.source}, arms {m.arms}) episode {m.episode_id}"), events)
    node.create_subscription(
        EpisodeEvent, config.topics.episode,
        lambda m: say(f"  episode {m.episode_id}: {episode_names.get(m.kind, m.kind)} "
                      f"({m.reason})"), events)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    try:
        # Single keys from now on; TCSANOW keeps keys typed while we were starting up.
        tty.setcbreak(stdin, termios.TCSANOW)
        say(f"aloe-ros keyboard: Joy on {config.topics.joy} as a '{layout.name}' pad, "
            f"mode {joystick.mode}")
        say(help_text())
        period = 1.0 / rate
        while True:
            ready, _, _ = select.select([stdin], [], [], period)
            now = time.monotonic()
            if ready:
                for char in os.read(stdin, 64).decode(errors="ignore"):
                    if char in ("q", "\x03", "\x04"):
                        return 0
                    did = keyboard.key(char, now)
                    if did:
                        say(f"> {did}")
            axes, buttons = keyboard.state(now)
            msg = Joy()
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = "keyboard"
            msg.axes = axes
            msg.buttons = buttons
            publisher.publish(msg)
            executor.spin_once(timeout_sec=0.0)
    except KeyboardInterrupt:
        return 0
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
