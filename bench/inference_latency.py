"""Policy inference on the CPU, bare and through chunk_inference_node, side by side in one run.

1. CPU latency of ``predict_chunk`` for the built-in policy (task size: 3 cameras 240x320,
   H = 50, 14 joints, policy.flow_steps) and a tiny LeRobot ACT (built offline, 3 cameras
   96x96, chunk 50), interleaved A B A B ... so machine load hits both alike.
2. Node wrapper overhead: observation in -> ActionChunk published, measured inside
   chunk_inference_node (request made on the control tick -> chunk published: observation
   assembly, worker hand-off, the policy, checks, publishing), against bare ``predict_chunk``
   calls of the same policy object in the same process, alternating one and one.

    .venv/bin/python bench/inference_latency.py [--rounds 5 --calls 10 --threads 1]

Goal (issue 4): node / bare <= 1.05.
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


def stats_ms(values: list[float]) -> str:
    array = np.asarray(values) * 1000
    return f"p50 {np.percentile(array, 50):7.1f} ms  p99 {np.percentile(array, 99):7.1f} ms"


def observation(config, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    from aloe_ros.policies.base import Observation

    images = {c.name: rng.integers(0, 255, (c.height, c.width, 3), dtype=np.uint8)
              for c in config.cameras}
    return Observation(images, np.asarray(config.robot.home_position, np.float32),
                       config.task.text)


def bare_latency(rounds: int, calls: int, workdir: Path) -> None:
    from policy_fixtures import save_tiny_lerobot

    from aloe_ros.config import load_task_config
    from aloe_ros.policies.bc import new_builtin_policy
    from aloe_ros.policies.checkpoint import LeRobotBinding, load_policy

    config = load_task_config("pack_phone")
    builtin = new_builtin_policy(config)
    cameras = [c.name for c in config.cameras]
    act_dir = save_tiny_lerobot("act", workdir / "act", joints=14, cameras=cameras,
                                image_size=(96, 96), chunk=50)
    act = load_policy(act_dir, binding=LeRobotBinding(list(config.robot.joint_names), cameras))
    rng = np.random.default_rng(0)
    obs = observation(config, rng)
    for policy in (builtin, act):
        policy.predict_chunk(obs)   # warm-up
    times: dict[str, list[float]] = {"builtin": [], "act": []}
    for _ in range(rounds):
        for name, policy in (("builtin", builtin), ("act", act)):
            for _ in range(calls):
                started = time.perf_counter()
                policy.predict_chunk(obs)
                times[name].append(time.perf_counter() - started)
    params_builtin = sum(p.numel() for p in builtin.parameters())
    params_act = sum(p.numel() for p in act.policy.parameters())  # type: ignore[attr-defined]
    print("\n== CPU inference latency (predict_chunk, 1 observation) ==")
    print(f"built-in flow policy  ({params_builtin / 1e6:.1f} M params, 3x240x320, H="
          f"{builtin.chunk_horizon}, {builtin.flow_steps} flow steps): "
          f"{stats_ms(times['builtin'])}")
    print(f"tiny LeRobot ACT      ({params_act / 1e6:.1f} M params, 3x96x96, H="
          f"{act.chunk_horizon}):              {stats_ms(times['act'])}")


def node_overhead(rounds: int, calls: int, workdir: Path) -> None:
    import rclpy
    from helpers import write_task_config
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.config import load_task_config
    from aloe_ros.io.images import fill_image
    from aloe_ros.nodes.chunk_inference_node import ChunkInferenceNode

    config_path = write_task_config(workdir, overrides={"policy": {"max_observation_age_s": 1.0}})
    config = load_task_config(config_path)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = ChunkInferenceNode(context=context, parameter_overrides=[
        Parameter("config_file", value=str(config_path))])
    driver = rclpy.create_node("bench_driver", context=context)
    rng = np.random.default_rng(1)
    frames = {c.name: rng.integers(0, 255, (c.height, c.width, 3), dtype=np.uint8)
              for c in config.cameras}
    image_pubs = {c.name: driver.create_publisher(Image, c.topic, 5) for c in config.cameras}
    state_pub = driver.create_publisher(JointState, config.topics.joint_states, 10)

    def publish_inputs() -> None:
        now = driver.get_clock().now().to_msg()
        state = JointState()
        state.header.stamp = now
        state.name = list(config.robot.joint_names)
        state.position = list(config.robot.home_position)
        state_pub.publish(state)
        for name, publisher in image_pubs.items():
            msg = Image()
            msg.header.stamp = now
            fill_image(msg, frames[name], "rgb8")
            publisher.publish(msg)

    driver.create_timer(1 / 30, publish_inputs)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(driver)
    obs = observation(config, rng)
    node_times: list[float] = []
    bare_times: list[float] = []
    worker_times: list[float] = []
    try:
        node.chunk_seconds.clear()
        seen = 1   # the first chunk waited for the inputs to arrive: not counted
        for _ in range(rounds * calls):
            # One chunk through the node, then one bare call: A B A B, so load hits both alike.
            deadline = time.monotonic() + 60
            while len(node.chunk_seconds) <= seen and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.01)
            node_times.extend(node.chunk_seconds[seen:])
            worker_times.extend(node.inference_seconds[seen:len(node.chunk_seconds)])
            seen = len(node.chunk_seconds)
            started = time.perf_counter()
            node.policy.predict_chunk(obs)
            bare_times.append(time.perf_counter() - started)
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        driver.destroy_node()
        rclpy.try_shutdown(context=context)
    ratio = float(np.median(node_times) / np.median(bare_times))
    print("\n== node wrapper overhead (built-in policy, observation in -> ActionChunk out) ==")
    print(f"bare predict_chunk:          {stats_ms(bare_times)}  (n={len(bare_times)})")
    print(f"through chunk_inference_node: {stats_ms(node_times)}  (n={len(node_times)})")
    print(f"  of which the policy call in the node's worker: {stats_ms(worker_times)}")
    print(f"node / bare (medians): {ratio:.3f}x   goal <= 1.05x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="aloe_bench_") as tmp:
        bare_latency(args.rounds, args.calls, Path(tmp))
        node_overhead(args.rounds, args.calls, Path(tmp))


if __name__ == "__main__":
    main()
