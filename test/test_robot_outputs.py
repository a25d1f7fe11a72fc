"""Command outputs: the mux's commands to fake ros2_control controllers over DDS.

A fake controller node subscribes every configured output and checks joint order, one message
per mux command, trajectory time stamps at the control rate, and the position / velocity
limits. Nothing asserts on wall-clock time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import spin_until, write_task_config

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from aloe_ros.config import load_task_config  # noqa: E402
from aloe_ros.io.command_outputs import CommandOutput, limit_trajectory  # noqa: E402
from aloe_ros.msg import ActionChunk, InterventionEvent  # noqa: E402
from aloe_ros.nodes.command_output_node import CommandOutputNode  # noqa: E402
from aloe_ros.nodes.common import qos_profile  # noqa: E402

LEFT = ["left_waist", "left_shoulder", "left_elbow", "left_forearm_roll", "left_wrist_angle",
        "left_wrist_rotate"]
RIGHT = [n.replace("left", "right") for n in LEFT]
OUTPUTS = [
    # Right arm in reversed order: the controller's order, not the robot's.
    {"type": "forward_position", "topic": "/fake/right_arm/commands", "joints": RIGHT[::-1]},
    {"type": "forward_position", "topic": "/fake/grippers/commands",
     "joints": ["right_gripper", "left_gripper"]},
    {"type": "joint_trajectory", "topic": "/fake/left_arm/joint_trajectory", "joints": LEFT,
     "per": "chunk"},
]


def time_of(duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def seconds_between_points(trajectory: JointTrajectory) -> np.ndarray:
    times = np.array([time_of(p.time_from_start) for p in trajectory.points])
    return np.diff(np.concatenate([[0.0], times]))


# ---- core -------------------------------------------------------------------------------------
def test_forward_position_in_controller_order_and_clamped(pack_phone_config) -> None:
    robot = pack_phone_config.robot
    out = CommandOutput(load_output(OUTPUTS[0]), robot)
    positions = np.arange(robot.action_dim, dtype=float) * 0.01
    positions[robot.joint_names.index("right_shoulder")] = 99.0
    msg = out.step_message(positions)
    expected = [positions[robot.joint_names.index(n)] for n in RIGHT[::-1]]
    expected[RIGHT[::-1].index("right_shoulder")] = robot.position_upper[
        robot.joint_names.index("right_shoulder")]
    assert list(msg.data) == pytest.approx(expected)
    assert out.clamped == 1


def test_step_trajectory_point_one_period_ahead(pack_phone_config) -> None:
    spec = dict(OUTPUTS[2], per="step", lookahead_steps=2)
    out = CommandOutput(load_output(spec), pack_phone_config.robot)
    msg = out.step_message(np.asarray(pack_phone_config.robot.home_position))
    assert list(msg.joint_names) == LEFT and len(msg.points) == 1
    assert time_of(msg.points[0].time_from_start) == pytest.approx(
        2.0 / pack_phone_config.robot.control_rate_hz)


def test_joint_state_output_keeps_names_stamp_and_origin(pack_phone_config) -> None:
    from builtin_interfaces.msg import Time

    robot = pack_phone_config.robot
    spec = {"type": "joint_state", "topic": "/driver/command", "joints": ["right_gripper",
                                                                          "left_waist"]}
    out = CommandOutput(load_output(spec), robot)
    q = np.asarray(robot.home_position)
    msg = out.step_message(q, Time(sec=5, nanosec=7), "human:joystick")
    assert list(msg.name) == ["right_gripper", "left_waist"]
    assert list(msg.position) == pytest.approx([q[robot.joint_names.index("right_gripper")],
                                                q[robot.joint_names.index("left_waist")]])
    assert (msg.header.stamp.sec, msg.header.frame_id) == (5, "human:joystick")
    assert out.stop_message() is None          # silence holds a position interface


def test_limit_trajectory_never_exceeds_velocity_or_position() -> None:
    rng = np.random.default_rng(0)
    lower, upper, step = -np.ones(3), np.ones(3), np.full(3, 0.05)
    points = rng.uniform(-3, 3, size=(40, 3))
    limited = limit_trajectory(points, np.zeros(3), lower, upper, step)
    deltas = np.abs(np.diff(np.vstack([np.zeros(3), limited]), axis=0))
    assert np.all(deltas <= step + 1e-12)
    assert np.all((limited >= lower) & (limited <= upper))


def load_output(spec: dict):
    from aloe_ros.config import OutputConfig
    from aloe_ros.config_loader import from_dict

    return from_dict(OutputConfig, spec)


# ---- the node against a fake controller --------------------------------------------------------
class FakeControllers:
    """Subscribes every output like ros2_control would, and the node under test."""

    def __init__(self, context, config_path: Path) -> None:
        self.config = load_task_config(config_path)
        qos = qos_profile(self.config.qos.command)
        self.output_node = CommandOutputNode(context=context, parameter_overrides=[
            Parameter("config_file", value=str(config_path))])
        self.node = Node("fake_controllers", context=context)
        self.received: dict[str, list] = {o["topic"]: [] for o in OUTPUTS}
        for spec in OUTPUTS:
            kind = JointTrajectory if spec["type"] == "joint_trajectory" else Float64MultiArray
            self.node.create_subscription(kind, spec["topic"],
                                          self.received[spec["topic"]].append, qos)
        self.command_pub = self.node.create_publisher(JointState, self.config.topics.command, qos)
        self.chunk_pub = self.node.create_publisher(ActionChunk, self.config.topics.policy_chunk,
                                                    qos)
        self.event_pub = self.node.create_publisher(
            InterventionEvent, self.config.topics.intervention,
            qos_profile(self.config.qos.events))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.output_node)
        self.executor.add_node(self.node)
        self.names = list(self.config.robot.joint_names)

    def close(self) -> None:
        self.executor.shutdown()
        self.output_node.destroy_node()
        self.node.destroy_node()

    def connected(self) -> bool:
        return all(self.node.count_subscribers(t) >= 1 for t in (
            self.config.topics.command, self.config.topics.policy_chunk)) and all(
            self.output_node.count_subscribers(o["topic"]) >= 1 for o in OUTPUTS)

    def command(self, positions: np.ndarray, frame: str) -> None:
        msg = JointState()
        msg.header.frame_id = frame
        msg.name = self.names
        msg.position = positions.tolist()
        self.command_pub.publish(msg)

    def spin(self, predicate, timeout_s: float = 10.0) -> bool:
        return spin_until(self.executor, predicate, timeout_s)


@pytest.fixture
def controllers(tmp_path: Path, ros_context):
    path = write_task_config(tmp_path, overrides={"outputs": OUTPUTS})
    fake = FakeControllers(ros_context, path)
    assert fake.spin(fake.connected)
    yield fake
    fake.close()


def test_each_command_reaches_each_controller_in_its_order(controllers) -> None:
    robot = controllers.config.robot
    home = np.asarray(robot.home_position)
    sent = []
    for k in range(10):
        q = home - 0.001 * k
        sent.append(q)
        controllers.command(q, "human:joystick")
        arm = controllers.received[OUTPUTS[0]["topic"]]
        assert controllers.spin(lambda k=k, arm=arm: len(arm) == k + 1)
    assert controllers.spin(lambda: all(len(v) == 10 for v in controllers.received.values()))
    index = {n: i for i, n in enumerate(robot.joint_names)}
    for q, arm, grip, traj in zip(sent, *controllers.received.values()):
        assert list(arm.data) == pytest.approx([q[index[n]] for n in RIGHT[::-1]])
        assert list(grip.data) == pytest.approx([q[index["right_gripper"]],
                                                 q[index["left_gripper"]]])
        assert list(traj.joint_names) == LEFT     # human steps go per step, even per: chunk
        assert list(traj.points[0].positions) == pytest.approx([q[index[n]] for n in LEFT])


def test_policy_chunk_becomes_one_trajectory_at_the_control_rate(controllers) -> None:
    robot = controllers.config.robot
    period = 1.0 / robot.control_rate_hz
    home = np.asarray(robot.home_position)
    topic = OUTPUTS[2]["topic"]
    controllers.command(home, "policy-v1")
    assert controllers.spin(lambda: len(controllers.received[topic]) == 1)
    horizon, execute = 10, 6
    rng = np.random.default_rng(1)
    actions = home + np.cumsum(rng.uniform(-0.5, 0.5, size=(horizon, len(home))), axis=0)
    chunk = ActionChunk()
    chunk.joint_names = controllers.names
    chunk.horizon, chunk.execute_horizon, chunk.action_dim = horizon, execute, len(home)
    chunk.actions = actions.astype(np.float32).ravel().tolist()
    controllers.chunk_pub.publish(chunk)
    assert controllers.spin(lambda: len(controllers.received[topic]) == 2)
    trajectory = controllers.received[topic][1]
    assert len(trajectory.points) == execute
    assert seconds_between_points(trajectory) == pytest.approx(np.full(execute, period))
    index = [robot.joint_names.index(n) for n in LEFT]
    points = np.array([p.positions for p in trajectory.points])
    steps = np.abs(np.diff(np.vstack([home[index], points]), axis=0))
    assert np.all(steps <= np.asarray(robot.velocity_limits)[index] * period + 1e-9)
    assert np.all(points >= np.asarray(robot.position_lower)[index] - 1e-12)
    assert np.all(points <= np.asarray(robot.position_upper)[index] + 1e-12)
    # Policy steps while the chunk runs are covered by it; the forward controllers get them.
    controllers.command(home, "policy-v1")
    assert controllers.spin(lambda: len(controllers.received[OUTPUTS[0]["topic"]]) == 2)
    # An e-stop stops the trajectory controller with an empty trajectory.
    event = InterventionEvent()
    event.kind = InterventionEvent.ESTOP
    controllers.event_pub.publish(event)
    assert controllers.spin(lambda: len(controllers.received[topic]) == 3)
    assert controllers.received[topic][2].points == []
    # After the e-stop a chunk is not forwarded (the policy is not live).
    controllers.chunk_pub.publish(chunk)
    assert controllers.spin(lambda: controllers.output_node.counters.get("chunks_not_live", 0)
                            == 1)
    assert len(controllers.received[topic]) == 3


def test_bad_commands_are_counted_and_the_node_keeps_running(controllers) -> None:
    bad = JointState()
    bad.name = ["nope"]
    bad.position = [1.0]
    controllers.command_pub.publish(bad)
    nan = np.asarray(controllers.config.robot.home_position)
    nan[0] = np.nan
    controllers.command(nan, "policy")
    assert controllers.spin(lambda: controllers.output_node.counters.get("bad_commands", 0) == 2)
    controllers.command(np.asarray(controllers.config.robot.home_position), "hold")
    assert controllers.spin(lambda: all(len(v) == 1 for v in controllers.received.values()))
