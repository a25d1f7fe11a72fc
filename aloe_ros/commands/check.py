"""``aloe-ros check <task>``: the bring-up check on a live system, printed as a table.

Listens to the task's topics for ``--duration`` seconds (joint states, cameras, joystick,
/clock, /robot_description), looks at who subscribes the command topics, optionally loads the
policy, and prints what :func:`aloe_ros.bringup_check.evaluate` finds. Exit code 1 when
anything would make the loop unsafe or wrong, 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from aloe_ros.bringup_check import (
    CameraFrame,
    GraphSnapshot,
    TopicSample,
    evaluate,
    exit_code,
    format_table,
)
from aloe_ros.config import ConfigError, TaskFile, load_task_config
from aloe_ros.runner import node_environment

# A rate needs a few arrivals. A topic that has fewer when --duration ends (DDS discovery of a
# fresh process can take seconds on a loaded host) is listened to for up to LATE_TOPIC_FACTOR x
# --duration more, and its rate is measured from its first arrival.
MIN_RATE_SAMPLES = 5
LATE_TOPIC_FACTOR = 2.0

HELP = ("bring-up check: listen to the task's topics on a live system; report rates, joint "
        "names and limits, cameras, clock and controllers; exit 1 on any problem")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name (config/<task>.yaml) or path to a task YAML")
    parser.add_argument("--duration", type=float, default=3.0, metavar="S",
                        help="seconds to listen (default 3)")
    parser.add_argument("--policy", metavar="DIR", default=None,
                        help="also check this policy checkpoint's joints, order and cameras")
    parser.add_argument("--sim", action="store_true",
                        help="the graph runs on the built-in sim (no joystick required)")


def camera_frame(msg: Any) -> CameraFrame:
    """Size and encoding of a camera message; compressed ones are decoded to find out."""
    from aloe_ros.io.images import ImageError, compressed_to_array

    if hasattr(msg, "height"):
        return CameraFrame(int(msg.height), int(msg.width), str(msg.encoding))
    try:
        pixels = compressed_to_array(msg, encoding="rgb8")
    except ImageError as exc:
        return CameraFrame(error=str(exc))
    return CameraFrame(pixels.shape[0], pixels.shape[1], str(msg.format) or "compressed")


def listen(config: TaskFile, duration_s: float, *, sim: bool) -> GraphSnapshot:
    """Subscribe the task's input topics for ``duration_s`` and describe the graph."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CompressedImage, Image, JointState, Joy
    from std_msgs.msg import String

    # The DDS settings `aloe-ros up` gives its nodes (large frames over SHM/TCP, not fragmented
    # UDP that best effort loses; discovery on this host): export them to choose others.
    for key in ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        os.environ.setdefault(key, node_environment({})[key])
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("aloe_check", context=context)
    # Best effort receives from reliable and best-effort publishers alike.
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    arrivals: dict[str, list[float]] = {}
    last: dict[str, Any] = {}

    def recorder(topic: str) -> Any:
        arrivals[topic] = []

        def on_message(msg: Any) -> None:
            arrivals[topic].append(time.monotonic())
            last[topic] = msg
        return on_message

    topics = config.topics
    node.create_subscription(JointState, topics.joint_states, recorder(topics.joint_states), qos)
    for camera in config.cameras:
        node.create_subscription(CompressedImage if camera.compressed else Image, camera.topic,
                                 recorder(camera.topic), qos)
    node.create_subscription(Joy, topics.joy, recorder(topics.joy), qos)
    node.create_subscription(Clock, "/clock", recorder("/clock"), qos)
    node.create_subscription(String, "/robot_description", recorder("/robot_description"),
                             latched)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        rated = [topics.joint_states] + [c.topic for c in config.cameras]
        late = [t for t in rated if len(arrivals[t]) < MIN_RATE_SAMPLES]
        if late:
            extra_s = LATE_TOPIC_FACTOR * duration_s
            print(f"few messages yet on {', '.join(late)}: listening up to {extra_s:g} s more",
                  flush=True)
            deadline = time.monotonic() + extra_s
            while late and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
                late = [t for t in late if len(arrivals[t]) < MIN_RATE_SAMPLES]
        graph_types = dict(node.get_topic_names_and_types())
        watched = set(arrivals) | {topics.command} | {o.topic for o in config.outputs}
        samples = {}
        for topic in watched:
            times = arrivals.get(topic, [])
            rate = (len(times) - 1) / (times[-1] - times[0]) \
                if len(times) >= 2 and times[-1] > times[0] else None
            samples[topic] = TopicSample(
                topic, len(times), rate,
                [i.node_name for i in node.get_publishers_info_by_topic(topic)
                 if i.node_name != "aloe_check"],
                [i.node_name for i in node.get_subscriptions_info_by_topic(topic)
                 if i.node_name != "aloe_check"],
                list(graph_types.get(topic, [])))
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    joint_msg = last.get(topics.joint_states)
    description = last.get("/robot_description")
    return GraphSnapshot(
        samples, duration_s,
        joint_names=list(joint_msg.name) if joint_msg is not None else None,
        joint_positions=[float(v) for v in joint_msg.position] if joint_msg is not None
        else None,
        cameras={c.name: camera_frame(last[c.topic]) for c in config.cameras
                 if c.topic in last},
        robot_description=description.data if description is not None else None,
        sim=sim)


def policy_problem(config: TaskFile, path: str) -> str | None:
    """Why the policy at ``path`` cannot drive this task, or None."""
    from aloe_ros.nodes.chunk_inference_node import load_task_policy
    from aloe_ros.policies.base import PolicyError

    try:
        load_task_policy(config, path)
    except PolicyError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros check: configuration error: {exc}")
        return 2
    print(f"aloe-ros check: task {config.task.name} ({config.source_path}"
          f"{', preset ' + config.preset_path if config.preset_path else ''}), listening "
          f"{args.duration:g} s ...", flush=True)
    snapshot = listen(config, args.duration, sim=args.sim)
    problem = policy_problem(config, args.policy) if args.policy else None
    rows = evaluate(config, snapshot, problem, args.policy or "")
    print(format_table(rows))
    failures = sum(r.level.value == "FAIL" for r in rows)
    print(f"aloe-ros check: {failures} problem(s)" if failures
          else "aloe-ros check: all clear")
    return exit_code(rows)
