"""Command mux benchmark: what teleop_node adds between the policy and the robot, and e-stop.

Side by side in one run, each as its own process: a bare relay node (subscribe
topics.policy_command, republish on topics.command, no logic) as the baseline, then teleop_node
(mux, clamps, episode manager, status). A driver in this process publishes joint states and
per-tick policy commands at the control rate and measures the latency from publishing a policy
command to receiving it on topics.command. Then, on teleop_node, it presses e-stop and counts
the policy ticks that still came through after the Joy was published.

    .venv/bin/python bench/teleop_mux.py [--seconds 10]

Goals: the mux adds little over a bare relay (ratio of p50 near 1); no policy tick after the
e-stop tick gets through (within one control tick).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent


def relay(config_path: str) -> None:
    """The baseline: a node that republishes policy commands unchanged."""
    import rclpy
    from sensor_msgs.msg import JointState

    from aloe_ros.config import load_task_config
    from aloe_ros.nodes.common import qos_profile

    config = load_task_config(config_path)
    rclpy.init()
    node = rclpy.create_node("bench_relay")
    qos = qos_profile(config.qos.command)
    publisher = node.create_publisher(JointState, config.topics.command, qos)
    node.create_subscription(JointState, config.topics.policy_command, publisher.publish, qos)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001 - shutdown by signal
        pass


def drive(config_path: str, seconds: float, estop: bool) -> dict[str, float]:
    """Publish states and policy commands; measure latency; optionally press e-stop."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState, Joy

    from aloe_ros.config import load_task_config
    from aloe_ros.msg import EpisodeEvent
    from aloe_ros.nodes.common import qos_profile
    from aloe_ros.teleop.layout import resolve_layout

    config = load_task_config(config_path)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_driver", context=context)
    qos, events = qos_profile(config.qos.command), qos_profile(config.qos.events)
    state_pub = node.create_publisher(JointState, config.topics.joint_states, qos)
    policy_pub = node.create_publisher(JointState, config.topics.policy_command, qos)
    joy_pub = node.create_publisher(Joy, config.topics.joy, qos)
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    started: list[bool] = []

    def on_command(msg: JointState) -> None:
        if msg.header.frame_id.startswith("seq:"):
            received[int(msg.header.frame_id[4:])] = time.perf_counter()

    node.create_subscription(JointState, config.topics.command, on_command, qos)
    node.create_subscription(EpisodeEvent, config.topics.episode,
                             lambda m: started.append(m.kind == EpisodeEvent.START), events)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    names = list(config.robot.joint_names)
    home = np.asarray(config.robot.home_position)
    period = 1.0 / config.robot.control_rate_hz
    layout = resolve_layout(config.joystick.preset)

    def joint_state(msg_type: type, q: np.ndarray, frame: str = "") -> JointState:
        msg = msg_type()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.name = names
        msg.position = q.tolist()
        return msg

    def run_ticks(count: int, first: int) -> None:
        next_time = time.perf_counter()
        for seq in range(first, first + count):
            q = home.copy()
            q[0] += 0.2 * np.sin(seq * period)
            state_pub.publish(joint_state(JointState, q))
            sent[seq] = time.perf_counter()
            policy_pub.publish(joint_state(JointState, q, f"seq:{seq}"))
            next_time += period
            while time.perf_counter() < next_time:
                executor.spin_once(timeout_sec=max(0.0, next_time - time.perf_counter()))

    deadline = time.time() + 20
    while time.time() < deadline and not received:     # discovery (and teleop's first pose)
        run_ticks(5, 10_000_000 + len(sent))
    sent.clear()
    received.clear()
    ticks = int(seconds / period)
    run_ticks(ticks, 0)
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        executor.spin_once(timeout_sec=0.05)
    latencies = np.array([received[s] - sent[s] for s in range(ticks) if s in received]) * 1e3
    result = {"sent": float(ticks), "received": float(len(latencies)),
              "p50_ms": float(np.percentile(latencies, 50)),
              "p99_ms": float(np.percentile(latencies, 99))}
    if estop:
        msg = Joy()
        msg.header.frame_id = "bench"
        msg.axes = [0.0] * layout.min_axes()
        buttons = [0] * layout.min_buttons()
        buttons[layout.buttons["estop"]] = 1
        msg.buttons = buttons
        msg.header.stamp = node.get_clock().now().to_msg()
        estop_seq = ticks          # the Joy goes out just before policy tick `ticks`
        joy_pub.publish(msg)
        run_ticks(30, ticks)
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            executor.spin_once(timeout_sec=0.05)
        after = [s for s in received if s >= estop_seq]
        result["ticks_after_estop"] = float(len(after))
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--relay", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        relay(args.relay)
        return 0
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    tmp = Path(tempfile.mkdtemp(prefix="aloe_bench_mux_"))
    os.environ.setdefault("ROS_HOME", str(tmp))
    data = yaml.safe_load((REPO / "config" / "pack_phone.yaml").read_text())
    data["episode"] = {**data.get("episode", {}), "startup_delay_s": 0.0}
    data["task"]["episode_timeout_s"] = 1000.0
    config_path = tmp / "task.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    from aloe_ros.nodes import NODE_MODULES

    rows = {}
    for name, command in [
        ("bare relay (baseline)", [sys.executable, __file__, "--relay", str(config_path)]),
        ("teleop_node (mux)", [sys.executable, "-m", NODE_MODULES["teleop_node"], "--ros-args",
                               "-p", f"config_file:={config_path}"]),
    ]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            rows[name] = drive(str(config_path), args.seconds, estop=name.startswith("teleop"))
        finally:
            process.send_signal(2)
            process.wait(timeout=10)
    print(f"policy command -> /aloe/command, {args.seconds:g} s at 30 Hz, loopback DDS")
    print(f"{'':24s} {'received':>10s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name, row in rows.items():
        print(f"{name:24s} {row['received']:>6.0f}/{row['sent']:<4.0f} "
              f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
    base, mux = rows["bare relay (baseline)"], rows["teleop_node (mux)"]
    print(f"ratio mux/relay: p50 {mux['p50_ms'] / base['p50_ms']:.2f}x, "
          f"p99 {mux['p99_ms'] / base['p99_ms']:.2f}x")
    print(f"e-stop: policy ticks forwarded after the e-stop Joy: "
          f"{mux['ticks_after_estop']:.0f} (goal: at most 1, the tick in flight)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
