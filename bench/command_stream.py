"""Command stream of chunk_inference_node at 30 and 50 Hz with a slow synthetic policy.

For each control rate (30, 50 Hz) and policy cost (20 % and 80 % of a chunk's execution time,
execute_horizon / rate), side by side in one run: the node runs with a synthetic policy that
sleeps that long (GIL released, like a GPU or an optimised kernel) and returns a smooth ramp;
a driver in the same executor publishes camera frames and joint states at 30 Hz and records
the commands. Reported: p50 / p99 of the interval between received commands and its p99
deviation from the nominal period, idle ticks at chunk boundaries (executor counter), the
largest command step relative to the velocity limit, and chunks accepted.

    .venv/bin/python bench/command_stream.py [--seconds 8]

Goal (issue 4): p99 deviation <= 2 ms, 0 idle ticks.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))


class SleepingRampPolicy:
    """A ChunkPolicy that takes ``cost_s`` and plans a slow ramp from the measured state."""

    def __init__(self, joint_names: list[str], cameras: list[str], horizon: int,
                 rate_hz: float, cost_s: float) -> None:
        self.joint_names = joint_names
        self.camera_names = cameras
        self.chunk_horizon = horizon
        self.action_dim = len(joint_names)
        self.version = f"sleep-{cost_s * 1000:.0f}ms"
        self.rate_hz = rate_hz
        self.cost_s = cost_s

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation):  # type: ignore[no-untyped-def]
        time.sleep(self.cost_s)
        steps = np.arange(self.chunk_horizon)[:, None] / self.rate_hz
        return (observation.state[None, :] + 0.05 * np.sin(steps)).astype(np.float32)

    def sample_chunks(self, observation, count):  # type: ignore[no-untyped-def]
        return np.stack([self.predict_chunk(observation) for _ in range(count)])


def run_case(workdir: Path, rate_hz: float, cost_fraction: float, seconds: float
             ) -> dict[str, float]:
    import rclpy
    from helpers import write_task_config
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.config import load_task_config
    from aloe_ros.io.images import fill_image
    from aloe_ros.nodes.chunk_inference_node import ChunkInferenceNode

    cameras = [{"name": c, "source": "sim", "width": 64, "height": 48}
               for c in ("top", "left_wrist", "right_wrist")]
    config_path = write_task_config(workdir, overrides={
        "robot": {"control_rate_hz": rate_hz}, "cameras": cameras,
        "policy": {"max_observation_age_s": 0.5}}, name=f"task_{rate_hz:g}.yaml")
    config = load_task_config(config_path)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = ChunkInferenceNode(context=context, parameter_overrides=[
        Parameter("config_file", value=str(config_path))])
    chunk_seconds = config.policy.execute_horizon / rate_hz
    node.policy = SleepingRampPolicy(list(config.robot.joint_names),
                                     [c.name for c in config.cameras],
                                     config.policy.chunk_horizon, rate_hz,
                                     cost_fraction * chunk_seconds)
    driver = rclpy.create_node("stream_driver", context=context)
    frame = np.zeros((48, 64, 3), np.uint8)
    image_pubs = [driver.create_publisher(Image, c.topic, 5) for c in config.cameras]
    state_pub = driver.create_publisher(JointState, config.topics.joint_states, 10)
    received: list[tuple[float, float, np.ndarray]] = []
    driver.create_subscription(
        JointState, config.topics.policy_command,
        lambda m: received.append((time.perf_counter(),
                                   m.header.stamp.sec + m.header.stamp.nanosec * 1e-9,
                                   np.asarray(m.position))), 100)

    def publish_inputs() -> None:
        now = driver.get_clock().now().to_msg()
        state = JointState()
        state.header.stamp = now
        state.name = list(config.robot.joint_names)
        state.position = list(config.robot.home_position)
        state_pub.publish(state)
        for publisher in image_pubs:
            msg = Image()
            msg.header.stamp = now
            fill_image(msg, frame, "rgb8")
            publisher.publish(msg)

    driver.create_timer(1 / 30, publish_inputs)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(driver)
    try:
        # Warm up until the first chunk runs, then measure.
        deadline = time.monotonic() + 30
        while node.executor_core.counters.accepted_chunks < 1 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.01)
        received.clear()
        idle_before = node.executor_core.counters.idle_ticks
        chunks_before = node.executor_core.counters.accepted_chunks
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        counters = node.executor_core.counters
        idle = counters.idle_ticks - idle_before
        chunks = counters.accepted_chunks - chunks_before
        late = node.counters.get("late_ticks", 0)
        skipped = node.counters.get("skipped_observations", 0)
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        driver.destroy_node()
        rclpy.try_shutdown(context=context)
    times = np.array([t for t, _, _ in received])
    stamps = np.array([s for _, s, _ in received])
    positions = np.array([p for _, _, p in received])
    intervals = np.diff(times) * 1000
    sent = np.diff(stamps) * 1000
    period = 1000 / rate_hz
    max_step = np.asarray(config.robot.velocity_limits) / rate_hz
    step_ratio = float((np.abs(np.diff(positions, axis=0)) / max_step).max())
    return {"p50": float(np.percentile(intervals, 50)), "p99": float(np.percentile(intervals, 99)),
            "dev99": float(np.percentile(np.abs(intervals - period), 99)),
            "sent_p50": float(np.percentile(sent, 50)), "sent_p99": float(np.percentile(sent, 99)),
            "sent_dev99": float(np.percentile(np.abs(sent - period), 99)),
            "late": late, "skipped": skipped, "idle": idle, "chunks": chunks,
            "commands": len(received), "step": step_ratio}


def bare_loop(rate_hz: float, seconds: float) -> dict[str, float]:
    """Baseline: a plain Python thread waking on the same absolute schedule, doing nothing.

    Its jitter is the floor this machine (its load, its scheduler) sets for any Python loop.
    """
    period = 1.0 / rate_hz
    wakes: list[float] = []

    def loop() -> None:
        deadline = time.perf_counter()
        end = deadline + seconds
        while deadline < end:
            deadline += period
            time.sleep(max(0.0, deadline - time.perf_counter()))
            wakes.append(time.perf_counter())

    import threading

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    intervals = np.diff(wakes) * 1000
    return {"p50": float(np.percentile(intervals, 50)), "p99": float(np.percentile(intervals, 99)),
            "dev99": float(np.percentile(np.abs(intervals - 1000 * period), 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rows = []
    with tempfile.TemporaryDirectory(prefix="aloe_bench_") as tmp:
        for rate in (30.0, 50.0):
            for fraction in (0.2, 0.8):
                baseline = bare_loop(rate, args.seconds / 2)
                result = run_case(Path(tmp), rate, fraction, args.seconds)
                rows.append((rate, fraction, result, baseline))
                print(f"done {rate:g} Hz, policy {fraction:.0%} of a chunk", flush=True)
    print("\n== command stream: 'sent' = header stamps (the node's control thread), "
          "'recv' = arrival at the driver (adds DDS + the driver's executor) ==")
    print(f"{'rate':>6} {'policy':>7} {'cmds':>5} {'chunks':>6} {'sent p50':>8} {'sent p99':>8} "
          f"{'sent |dev|99':>12} {'recv p50':>8} {'recv p99':>8} {'recv |dev|99':>12} "
          f"{'idle':>5} {'late':>5} {'skip obs':>8} {'step/vmax':>9} {'bare |dev|99':>12}")
    for rate, fraction, r, base in rows:
        print(f"{rate:5g}Hz {fraction:6.0%} {r['commands']:5d} {r['chunks']:6d} "
              f"{r['sent_p50']:8.2f} {r['sent_p99']:8.2f} {r['sent_dev99']:12.2f} "
              f"{r['p50']:8.2f} {r['p99']:8.2f} {r['dev99']:12.2f} "
              f"{r['idle']:5d} {r['late']:5d} {r['skipped']:8d} {r['step']:9.2f} "
              f"{base['dev99']:12.2f}")
    print("bare |dev|99: a plain Python thread on the same schedule, measured just before each "
          "case (the machine's floor)")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")
    print("goal: p99 |deviation| <= 2 ms, 0 idle ticks")


if __name__ == "__main__":
    main()
