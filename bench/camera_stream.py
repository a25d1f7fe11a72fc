"""Camera transport benchmark: 3 sim cameras, received in another process.

For each DDS transport setting, side by side in one run: starts sim_robot_node with three
cameras at the given size and rate, and a listener process that measures, per camera, the
received rate, drops (gaps in the header-stamp series; the sim publishes on a fixed schedule)
and latency (receive time minus header stamp, same clock). Prints one table.

    .venv/bin/python bench/camera_stream.py [--seconds 20] [--width 640 --height 480 --fps 30]

Goal (issue 3): 0 drops, p99 latency <= 10 ms with 3 x 480x640 at 30 Hz.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
CAMERAS = ("top", "left_wrist", "right_wrist")


def listen(seconds: float, fps: float, warmup_s: float = 3.0) -> dict:
    import rclpy
    from sensor_msgs.msg import Image

    from aloe_ros.config import QosProfileConfig
    from aloe_ros.msg import Status
    from aloe_ros.nodes.common import qos_profile, stamp_to_seconds

    rclpy.init()
    node = rclpy.create_node("camera_bench_listener")
    samples: dict[str, list[tuple[float, float]]] = {c: [] for c in CAMERAS}
    qos = qos_profile(QosProfileConfig(depth=5))
    sim_counters: list[dict[str, int]] = []

    def on_status(msg: Status) -> None:
        if msg.node == "sim_robot":
            sim_counters.append(dict(zip(msg.counter_names, msg.counter_values)))

    node.create_subscription(Status, "/aloe/status", on_status,
                             qos_profile(QosProfileConfig(depth=100)))
    for name in CAMERAS:
        def on_image(msg: Image, name: str = name) -> None:
            samples[name].append((stamp_to_seconds(msg.header.stamp), time.time()))
        node.create_subscription(Image, f"/aloe/cam/{name}/image", on_image, qos)
    import threading

    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    time.sleep(warmup_s)
    for values in samples.values():
        values.clear()
    del sim_counters[:-1]
    time.sleep(seconds)
    executor.shutdown(timeout_sec=1.0)
    node.destroy_node()
    rclpy.shutdown()
    period = 1.0 / fps
    result = {}
    for name, values in samples.items():
        if len(values) < 2:
            result[name] = {"received": len(values)}
            continue
        stamps = np.array([s for s, _ in values])
        latency_ms = (np.array([r for _, r in values]) - stamps) * 1000
        gaps = np.diff(stamps)
        missing = int(np.sum(np.maximum(np.round(gaps / period) - 1, 0)))
        # Frames the sim itself skipped (it fell behind its schedule) are not transport drops.
        late = (sim_counters[-1].get(f"late_frames_{name}", 0)
                - sim_counters[0].get(f"late_frames_{name}", 0)) if sim_counters else 0
        result[name] = {
            "received": len(values), "rate_hz": (len(values) - 1) / (stamps[-1] - stamps[0]),
            "drops": max(0, missing - late), "sim_late": late,
            "p50_ms": float(np.percentile(latency_ms, 50)),
            "p99_ms": float(np.percentile(latency_ms, 99)),
        }
    return result


def publish(config_path: Path, seconds: float) -> None:
    """Transport-only publisher: sim frames rendered ahead, stamped just before publish."""
    import rclpy
    from sensor_msgs.msg import Image

    from aloe_ros.config import load_task_config
    from aloe_ros.io.images import fill_image
    from aloe_ros.nodes.common import qos_profile
    from aloe_ros.sim.expert import ScriptedExpert
    from aloe_ros.sim.robot import SimRobot

    config = load_task_config(config_path)
    robot = SimRobot(config.robot, config.sim, {c.name: (c.height, c.width)
                                                for c in config.cameras}, 1e9)
    expert = ScriptedExpert(robot)
    rclpy.init()
    node = rclpy.create_node("camera_bench_publisher")
    pubs = {c.name: node.create_publisher(Image, c.topic, qos_profile(config.qos.sensor))
            for c in config.cameras}
    period = 1.0 / config.cameras[0].fps
    next_time = time.monotonic()
    end = next_time + seconds
    while time.monotonic() < end:
        robot.command(expert.act(period))
        robot.step(period)
        if robot.outcome is not None:
            robot.reset()
        frames = robot.render()
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
        for name, frame in frames.items():
            msg = Image()
            fill_image(msg, frame, "rgb8")
            msg.header.stamp = node.get_clock().now().to_msg()
            pubs[name].publish(msg)
    node.destroy_node()
    rclpy.shutdown()


def run_case(transport: str | None, args: argparse.Namespace, config_path: Path,
             source: str) -> dict:
    env = dict(os.environ)
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    if transport:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transport
    env["ROS_DOMAIN_ID"] = str(random.randint(120, 200))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="aloe_bench_"))
    if source == "sim_node":
        command = [sys.executable, "-m", "aloe_ros.nodes.sim_robot_node", "--ros-args", "-p",
                   f"config_file:={config_path}", "-p", "sim:=true"]
    else:
        command = [sys.executable, __file__, "--publish", str(config_path), "--seconds",
                   str(args.seconds + 10)]
    sim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--listen", "--seconds", str(args.seconds),
             "--fps", str(args.fps)], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--listen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.seconds)
        return 0
    if args.listen:
        print(json.dumps(listen(args.seconds, args.fps)))
        return 0
    data = yaml.safe_load((REPO / "config" / "pack_phone.yaml").read_text())
    data["cameras"] = [{"name": c, "source": "sim", "width": args.width, "height": args.height,
                        "fps": args.fps} for c in CAMERAS]
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "bench.yaml"
        config_path.write_text(yaml.safe_dump(data))
        print(f"3 cameras {args.width}x{args.height} @ {args.fps:g} Hz, {args.seconds:g} s per "
              f"case, reliable QoS depth 5, listener in another process")
        print("transport: frames stamped just before publish (pure DDS latency); sim_node: "
              "stamped with the sim state they show, so latency includes rendering.\n"
              "drops = header-stamp gaps not explained by frames the sim skipped (sim late)")
        print(f"{'source':10s} {'transport':12s} {'camera':12s} {'recv':>6s} {'rate Hz':>8s} "
              f"{'drops':>6s} {'sim late':>8s} {'p50 ms':>7s} {'p99 ms':>7s}")
        cases = [(s, t) for s in ("transport", "sim_node") for t in ("DEFAULT", "LARGE_DATA")]
        for source, transport in cases:
            result = run_case(None if transport == "DEFAULT" else transport, args, config_path,
                              source)
            for name, r in result.items():
                if "rate_hz" not in r:
                    print(f"{source:10s} {transport:12s} {name:12s} {r['received']:6d}  "
                          "(too few frames)")
                    continue
                print(f"{source:10s} {transport:12s} {name:12s} {r['received']:6d} "
                      f"{r['rate_hz']:8.2f} {r['drops']:6d} {r['sim_late']:8d} "
                      f"{r['p50_ms']:7.2f} {r['p99_ms']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
