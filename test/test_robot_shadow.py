"""Shadow mode: the policy runs, its commands go to the shadow topic, never to the robot, until
the operator holds the go-live combo. Core (every input sequence) and teleop_node over DDS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import spin_until, write_task_config
from hypothesis import given, settings
from hypothesis import strategies as st
from teleop_helpers import joy

from aloe_ros.config import load_task_config
from aloe_ros.teleop.controller import TeleopController
from aloe_ros.teleop.mux import Origin
from aloe_ros.teleop.shadow import ComboHold

COMBO = ("slow", "release_estop")


def shadow_controller(hold_s: float = 1.0) -> TeleopController:
    config = load_task_config("pack_phone")
    config.shadow.enabled = True
    config.shadow.go_live_hold_s = hold_s
    controller = TeleopController(config, sim=False)
    controller.on_joint_state(np.asarray(config.robot.home_position))
    return controller


def test_combo_fires_once_per_complete_hold() -> None:
    combo = ComboHold(COMBO, 1.0)
    assert not combo.update({"slow"}, 0.0)                    # one button is not the combo
    assert not combo.update(set(COMBO), 0.0)
    assert not combo.update(set(COMBO), 0.9)
    assert combo.update(set(COMBO), 1.0)
    assert not combo.update(set(COMBO), 5.0)                  # still held: no second switch
    assert not combo.update({"slow"}, 5.1)                    # released
    assert not combo.update(set(COMBO), 5.2)
    assert not combo.update({"release_estop"}, 5.9)           # broken before hold_s
    assert not combo.update(set(COMBO), 6.0)
    assert combo.update(set(COMBO), 7.0)


# Inputs an operator and a policy can produce, except holding the go-live combo long enough.
EVENTS = st.lists(st.tuples(
    st.sampled_from(["joy", "policy", "tick", "state"]),
    st.sets(st.sampled_from(["takeover", "handback", "estop", "release_estop", "success",
                             "failure", "reset", "slow", "arm_select"]), max_size=3),
    st.floats(0.0, 0.3)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(EVENTS)
def test_shadow_mode_never_forwards_a_policy_command(events) -> None:
    controller = shadow_controller(hold_s=1.0)
    t = 100.0
    home = np.asarray(controller.robot.home_position)
    combo_since: float | None = None
    for kind, pressed, dt in events:
        t += dt
        if set(COMBO) <= pressed:
            combo_since = t if combo_since is None else combo_since
            if t - combo_since >= 1.0:          # a real go-live hold: out of this test's scope
                pressed = pressed - {"slow"}
                combo_since = None
        else:
            combo_since = None
        if kind == "joy":
            out = controller.on_joy(*joy(pressed), t)
        elif kind == "policy":
            assert controller.on_policy_command(home + 0.01, t) is None
            assert controller.shadow_command(home + 0.01) is not None
            continue
        elif kind == "state":
            controller.on_joint_state(home)
            continue
        else:
            out = controller.tick(t)
        assert all(c.origin != Origin.POLICY for c in out.commands)
        assert controller.mux.shadow
    assert controller.mux.forwarded[Origin.POLICY] == 0


def test_go_live_needs_the_held_combo_and_not_under_estop() -> None:
    controller = shadow_controller(hold_s=0.5)
    home = np.asarray(controller.robot.home_position)
    controller.on_joy(*joy(COMBO), 0.0)
    controller.on_joy(*joy(COMBO), 0.3)
    assert controller.mux.shadow and controller.on_policy_command(home, 0.3) is None
    out = controller.on_joy(*joy(COMBO), 0.6)
    assert out.shadow_changes == [False] and not controller.mux.shadow
    assert controller.on_policy_command(home, 0.7) is not None      # live now
    # Back to shadow with the same hold; while the policy drives, the pose is held.
    controller.on_joy(*joy(), 0.8)
    controller.on_joy(*joy(COMBO), 0.9)
    out = controller.on_joy(*joy(COMBO), 1.5)
    assert out.shadow_changes == [True]
    assert [c.origin for c in out.commands] == [Origin.HOLD]
    # Under e-stop the switch is refused.
    controller.on_joy(*joy(["estop"]), 2.0)
    controller.on_joy(*joy(["estop", *COMBO]), 2.1)
    out = controller.on_joy(*joy(["estop", *COMBO]), 3.0)
    assert out.shadow_changes == [] and controller.mux.shadow
    assert controller.counters["shadow_switch_refused"] == 1


def test_the_hold_also_completes_on_ticks_without_new_joy() -> None:
    controller = shadow_controller(hold_s=0.2)
    controller.on_joy(*joy(COMBO), 0.0)
    out = controller.tick(0.25)           # joy_node without autorepeat sends no more messages
    assert out.shadow_changes == [False]


# ---- teleop_node over DDS -----------------------------------------------------------------------
def test_teleop_node_in_shadow_mode_never_publishes_policy_commands_live(
        tmp_path: Path, ros_context) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState, Joy
    from std_msgs.msg import Bool

    from aloe_ros.nodes.common import qos_profile
    from aloe_ros.nodes.teleop_node import TeleopNode

    path = write_task_config(tmp_path, overrides={
        "shadow": {"enabled": True, "go_live_hold_s": 0.3},
        "joystick": {"timeout_s": 2.0},
        "episode": {"startup_delay_s": 0.1, "reset_to_start_s": 0.1}})
    config = load_task_config(path)
    teleop = TeleopNode(context=ros_context, parameter_overrides=[
        Parameter("config_file", value=str(path)), Parameter("sim", value=False)])
    node = Node("shadow_driver", context=ros_context)
    qos = qos_profile(config.qos.command)
    state_pub = node.create_publisher(JointState, config.topics.joint_states, qos)
    policy_pub = node.create_publisher(JointState, config.topics.policy_command, qos)
    joy_pub = node.create_publisher(Joy, config.topics.joy, qos)
    live: list[JointState] = []
    shadow: list[JointState] = []
    states: list[bool] = []
    node.create_subscription(JointState, config.topics.command, live.append, qos)
    node.create_subscription(JointState, config.shadow.command_topic, shadow.append, qos)
    node.create_subscription(Bool, config.shadow.state_topic, lambda m: states.append(m.data),
                             QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(teleop)
    executor.add_node(node)
    names = list(config.robot.joint_names)
    home = np.asarray(config.robot.home_position)

    def send(pub, q, frame="") -> None:
        msg = JointState()
        msg.header.frame_id = frame
        msg.name = names
        msg.position = q.tolist()
        pub.publish(msg)

    def send_joy(pressed=()) -> None:
        axes, buttons = joy(pressed)
        msg = Joy()
        msg.axes, msg.buttons = axes, buttons
        joy_pub.publish(msg)

    try:
        assert spin_until(executor, lambda: states[-1:] == [True], 10.0)
        assert spin_until(executor, lambda: min(
            node.count_subscribers(config.topics.policy_command),
            node.count_subscribers(config.topics.joint_states),
            teleop.count_subscribers(config.shadow.command_topic),
            teleop.count_subscribers(config.topics.command)) >= 1, 10.0)
        for k in range(20):
            send(state_pub, home)
            send(policy_pub, home + 0.002 * k, "policy-v7")
            assert spin_until(executor, lambda k=k: len(shadow) == k + 1, 10.0)
        assert all(m.header.frame_id == "policy-v7" for m in shadow)
        assert not any(m.header.frame_id == "policy-v7" for m in live)
        # A human drives (takeover): human commands go live, policy still only to shadow.
        send_joy(["takeover"])
        assert spin_until(executor, lambda: any(m.header.frame_id.startswith("human:")
                                                for m in live), 10.0)
        send(policy_pub, home, "policy-v7")
        assert spin_until(executor, lambda: len(shadow) >= 21, 10.0)
        assert not any(m.header.frame_id == "policy-v7" for m in live)
        # Hand back, then go live with the held combo: now the policy moves the robot.
        send_joy([])
        send_joy(["handback"])
        send_joy([])
        assert spin_until(executor, lambda: teleop.controller.control.value == "policy", 10.0)
        for _ in range(12):
            send_joy(COMBO)
            executor.spin_once(timeout_sec=0.05)
        assert spin_until(executor, lambda: states[-1:] == [False], 10.0)
        send_joy([])
        send(policy_pub, home, "policy-v7")
        assert spin_until(executor, lambda: any(m.header.frame_id == "policy-v7"
                                                for m in live), 10.0)
    finally:
        executor.shutdown()
        teleop.destroy_node()
        node.destroy_node()


@pytest.mark.parametrize("enabled", [False, True])
def test_shadow_state_is_in_the_config(tmp_path: Path, enabled: bool) -> None:
    path = write_task_config(tmp_path, overrides={"shadow": {"enabled": enabled}})
    assert TeleopController(load_task_config(path), sim=True).mux.shadow is enabled


# ---- chunk_inference_node: the policy keeps running beside the human in shadow mode -------------
def test_inference_keeps_running_during_takeover_in_shadow_mode(tmp_path: Path,
                                                                ros_context) -> None:
    from std_msgs.msg import Bool
    from test_inference_node import Harness, task_yaml

    config_path = task_yaml(tmp_path)
    config_path.write_text(config_path.read_text() + "\nshadow: {enabled: true}\n")
    h = Harness(ros_context, config_path)
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    shadow_pub = h.driver.create_publisher(Bool, h.config.shadow.state_topic, QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))      # as teleop_node publishes it
    try:
        assert h.spin_until(lambda: len(h.chunks) >= 1 and len(h.commands) >= 5)
        h.intervene(h.InterventionEvent.TAKEOVER)
        count = len(h.commands)
        assert h.spin_until(lambda: len(h.commands) >= count + 10)   # not paused
        assert not h.node.executor_core.paused
        # Live now (shadow off) while the human still drives: the policy pauses.
        shadow_pub.publish(Bool(data=False))
        assert h.spin_until(lambda: h.node.executor_core.paused)
        # E-stop pauses in shadow mode as well.
        shadow_pub.publish(Bool(data=True))
        assert h.spin_until(lambda: not h.node.executor_core.paused)
        h.intervene(h.InterventionEvent.ESTOP)
        assert h.spin_until(lambda: h.node.executor_core.paused)
    finally:
        h.close()
