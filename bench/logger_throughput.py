"""Logger benchmark: 3 cameras 480x640 rgb8 at 30 Hz + joint states and commands at 50 Hz.

Side by side in one run, on the same stream: trajectory_logger_node (recording to MCAP) and a
baseline process that only subscribes the same topics raw and counts (the cost of receiving).
Prints, per topic, messages published vs recorded (drops; goal 0), each process's CPU time as
a share of one core and their ratio, and bytes written per second against the stream's data
rate (serialized bytes published per second).

    .venv/bin/python bench/logger_throughput.py [--seconds 60] [--keep]
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
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CAMERAS = ("top", "left_wrist", "right_wrist")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def write_config(folder: Path, width: int, height: int, fps: float,
                 depths: dict[str, int | None]) -> Path:
    data = yaml.safe_load((REPO / "config" / "pack_phone.yaml").read_text())
    for qos_class, depth in depths.items():
        if depth:
            data["qos"][qos_class]["depth"] = depth
    data["cameras"] = [{"name": n, "source": "topic", "width": width, "height": height,
                        "fps": fps} for n in CAMERAS]
    data["nodes"] = [n for n in data["nodes"] if n["executable"] == "trajectory_logger_node"]
    data["recording"] = {"min_free_disk_mb": 2048}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def publish(config_path: str, seconds: float, out: str) -> None:
    """Publisher process: the stream, on a fixed schedule; writes counts and bytes as JSON."""
    import array

    import numpy as np
    import rclpy
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.config import load_task_config
    from aloe_ros.nodes.common import qos_profile

    config = load_task_config(config_path)
    rclpy.init()
    node = rclpy.create_node("bench_stream")
    names = list(config.robot.joint_names)
    sensor, command = qos_profile(config.qos.sensor), qos_profile(config.qos.command)
    images = {c.topic: node.create_publisher(Image, c.topic, sensor) for c in config.cameras}
    joints = {t: node.create_publisher(JointState, t, command)
              for t in (config.topics.joint_states, config.topics.command)}
    rng = np.random.default_rng(0)
    frames = [array.array("B", rng.integers(0, 255, (480 * 640 * 3,), np.uint8).tobytes())
              for _ in range(4)]
    cam = config.cameras[0]
    counts = {t: 0 for t in [*images, *joints]}
    sizes = dict.fromkeys(counts, 0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            p.get_subscription_count() >= 2 for p in [*images.values(), *joints.values()]):
        time.sleep(0.1)
    time.sleep(1.0)  # matched on our side; give the subscribers' side time to match too
    start = time.monotonic()
    next_image, next_joint, i = start, start, 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        stamp = node.get_clock().now().to_msg()
        if now >= next_joint:
            next_joint += 1 / 50
            for topic, pub in joints.items():
                msg = JointState(name=names, position=[0.1] * len(names))
                msg.header.stamp = stamp
                pub.publish(msg)
                counts[topic] += 1
                sizes[topic] += len(serialize_message(msg))
        if now >= next_image:
            next_image += 1 / cam.fps
            for topic, pub in images.items():
                msg = Image(height=cam.height, width=cam.width, encoding="rgb8",
                            step=cam.width * 3)
                msg.header.stamp = stamp
                msg.data = frames[i % len(frames)]
                pub.publish(msg)
                counts[topic] += 1
                sizes[topic] += 48 + len(msg.data)  # header + fields, data dominates
            i += 1
        time.sleep(max(0.0, min(next_joint, next_image) - time.monotonic()))
    elapsed = time.monotonic() - start
    time.sleep(2.0)  # reliable delivery of the last messages before the publisher goes away
    Path(out).write_text(json.dumps({"counts": counts, "bytes": sizes, "seconds": elapsed}))
    node.destroy_node()
    rclpy.shutdown()


def baseline(config_path: str, out: str) -> None:
    """Baseline process: the same raw subscriptions, counting only."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.config import load_task_config
    from aloe_ros.nodes.common import qos_profile

    config = load_task_config(config_path)
    rclpy.init()
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = rclpy.create_node("bench_baseline")
    counts: dict[str, int] = {}

    def counter(topic: str) -> Any:
        counts[topic] = 0

        def count(_data: bytes) -> None:
            counts[topic] += 1
        return count

    for c in config.cameras:
        node.create_subscription(Image, c.topic, counter(c.topic),
                                 qos_profile(config.qos.sensor), raw=True)
    for t in (config.topics.joint_states, config.topics.command):
        node.create_subscription(JointState, t, counter(t), qos_profile(config.qos.command),
                                 raw=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    Path(out).write_text(json.dumps(counts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the bag")
    parser.add_argument("--sensor-depth", type=int, default=None,
                        help="qos.sensor.depth of the stream (default: the task YAML's)")
    parser.add_argument("--command-depth", type=int, default=None,
                        help="qos.command.depth of the stream (default: the task YAML's)")
    parser.add_argument("--role", choices=["publish", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publish":
        publish(args.config, args.seconds, args.out)
        return 0
    if args.role == "baseline":
        baseline(args.config, args.out)
        return 0

    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    folder = Path(tempfile.mkdtemp(prefix="aloe_logger_bench_"))
    env.setdefault("ROS_HOME", str(folder / "ros_home"))
    config_path = write_config(folder, 640, 480, 30.0,
                               {"sensor": args.sensor_depth, "command": args.command_depth})
    record_dir = folder / "bags"
    me = [sys.executable, str(Path(__file__).resolve())]
    logger = subprocess.Popen(
        [sys.executable, "-m", "aloe_ros.nodes.trajectory_logger_node", "--ros-args",
         "-p", f"config_file:={config_path}", "-p", f"record_dir:={record_dir}"],
        env=env, stdout=open(folder / "logger.log", "wb"), stderr=subprocess.STDOUT)
    base_counts = folder / "baseline.json"
    base = subprocess.Popen([*me, "--role", "baseline", "--config", str(config_path),
                             "--out", str(base_counts)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats_path = folder / "published.json"
    time.sleep(3.0)  # both up before the stream starts
    cpu0 = {"logger": cpu_seconds(logger.pid), "baseline": cpu_seconds(base.pid)}
    wall0 = time.monotonic()
    publisher = subprocess.run([*me, "--role", "publish", "--config", str(config_path),
                                "--seconds", str(args.seconds), "--out", str(stats_path)],
                               env=env, check=False)
    time.sleep(2.0)  # let the queue drain
    wall = time.monotonic() - wall0
    cpu = {"logger": cpu_seconds(logger.pid) - cpu0["logger"],
           "baseline": cpu_seconds(base.pid) - cpu0["baseline"]}
    for process in (logger, base):
        process.send_signal(signal.SIGINT)
    logger.wait(timeout=120)
    base.wait(timeout=30)
    if publisher.returncode != 0 or not stats_path.exists():
        print("publisher failed")
        return 1
    published = json.loads(stats_path.read_text())

    from aloe_ros.io.bag_reader import Bag

    (bag_path,) = [p for p in record_dir.iterdir() if p.is_dir()]
    with Bag(bag_path) as bag:
        recorded = {t: s.count for t, s in bag.topics.items()}
        lost = bag.custom_json("aloe_ros.lost_messages", {})
    bag_bytes = sum(f.stat().st_size for f in bag_path.iterdir())
    stream_rate = sum(published["bytes"].values()) / published["seconds"]
    from aloe_ros.config import load_task_config

    qos = load_task_config(config_path).qos
    print(f"stream: 3 x 640x480 rgb8 @ 30 Hz + joint states and commands @ 50 Hz for "
          f"{published['seconds']:.1f} s ({stream_rate / 2**20:.1f} MiB/s published), "
          f"publisher history depth: sensor {qos.sensor.depth}, command {qos.command.depth}")
    received = json.loads(base_counts.read_text()) if base_counts.exists() else {}
    print(f"{'topic':<28}{'published':>10}{'recorded':>10}{'dropped':>9}"
          f"{'baseline received':>19}")
    drops = 0
    for topic, count in published["counts"].items():
        got = recorded.get(topic, 0)
        drops += max(0, count - got)
        print(f"{topic:<28}{count:>10}{got:>10}{count - got:>9}{received.get(topic, -1):>19}")
    print(f"total dropped: {drops} (logger queue overflow counted: {sum(lost.values())})")
    print(f"CPU over {wall:.1f} s wall: logger {100 * cpu['logger'] / wall:.1f} % of a core, "
          f"baseline raw subscriber {100 * cpu['baseline'] / wall:.1f} %, "
          f"ratio logger/baseline {cpu['logger'] / max(cpu['baseline'], 1e-9):.2f}")
    written_rate = bag_bytes / published["seconds"]
    print(f"bytes written: {written_rate / 2**20:.1f} MiB/s = "
          f"{written_rate / stream_rate:.3f} x the stream's data rate")
    if args.keep:
        print(f"bag kept: {bag_path}")
    else:
        import shutil

        shutil.rmtree(record_dir)
    return 0 if drops == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
