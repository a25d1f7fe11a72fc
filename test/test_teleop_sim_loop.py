"""The sim and teleop_node as separate processes: episodes cycle on RESET, detector ids match
the episode stream, and a Joy takeover moves the simulated arms (and e-stop stops them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import node_process_command, running_process, spin_until, write_task_config
from teleop_helpers import joy

from aloe_ros.config import load_task_config
from aloe_ros.msg import EpisodeEvent, InterventionEvent
from aloe_ros.nodes.common import qos_profile


def test_sim_episodes_cycle_and_a_joystick_drives_the_sim(ros_context, tmp_path: Path) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import JointState, Joy

    path = write_task_config(tmp_path, overrides={
        "task": {"episode_timeout_s": 3.0},
        "cameras": [{"name": "top", "source": "sim", "width": 64, "height": 48, "fps": 5.0}],
        "episode": {"startup_delay_s": 0.2, "reset_to_start_s": 0.2, "auto_reset_delay_s": 0.3},
    })
    config = load_task_config(path)
    node = Node("sim_loop_test", context=ros_context)
    episodes: list[EpisodeEvent] = []
    detector: list[EpisodeEvent] = []
    changes: list[InterventionEvent] = []
    states: list[np.ndarray] = []
    events = qos_profile(config.qos.events)
    command_qos = qos_profile(config.qos.command)
    node.create_subscription(EpisodeEvent, config.topics.episode, episodes.append, events)
    node.create_subscription(EpisodeEvent, config.topics.sim_detector, detector.append, events)
    node.create_subscription(InterventionEvent, config.topics.intervention, changes.append,
                             events)
    node.create_subscription(JointState, config.topics.joint_states,
                             lambda m: states.append(np.asarray(m.position)), command_qos)
    joy_pub = node.create_publisher(Joy, config.topics.joy, command_qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    def send(pressed=(), axes=None) -> None:
        msg = Joy()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.axes, msg.buttons = joy(pressed, axes)
        joy_pub.publish(msg)

    def starts() -> list[int]:
        return [e.episode_id for e in episodes if e.kind == EpisodeEvent.START]

    with (running_process(node_process_command("sim_robot_node", path),
                          log_path=tmp_path / "sim.log"),
          running_process(node_process_command("teleop_node", path),
                          log_path=tmp_path / "teleop.log")):
        assert spin_until(executor, lambda: 2 in starts(), 60.0), (
            (tmp_path / "teleop.log").read_text()[-2000:])
        # Episode 1 timed out (teleop's clock or the sim detector's, whichever came first),
        # once; the sim's detector numbers its scenes like the episode stream.
        outcomes = [(e.kind, e.episode_id) for e in episodes
                    if e.kind in (EpisodeEvent.SUCCESS, EpisodeEvent.FAILURE)]
        assert outcomes == [(EpisodeEvent.FAILURE, 1)]
        assert [e.episode_id for e in detector if e.kind == EpisodeEvent.START][-1] == 2

        # Take over and push the left stick up: the shoulders move in the sim.
        shoulder = config.robot.joint_names.index("left_shoulder")
        before = states[-1][shoulder]
        for _ in range(3):
            send()
            executor.spin_once(timeout_sec=0.03)
        send(["takeover"])

        def moved() -> bool:
            send(axes={"left_y": 1.0})
            return bool(states) and states[-1][shoulder] > before + 0.05

        assert spin_until(executor, moved, 20.0)
        assert changes[0].kind == InterventionEvent.TAKEOVER and changes[0].episode_id >= 2

        # E-stop: the sim stops receiving commands, so its target stops moving.
        send(["estop"], axes={"left_y": 1.0})
        assert spin_until(executor, lambda: any(c.kind == InterventionEvent.ESTOP
                                                for c in changes), 10.0)
        for _ in range(40):                     # let the arm settle at its last target
            send(["estop"], axes={"left_y": 1.0})
            executor.spin_once(timeout_sec=0.03)
        settled = states[-1][shoulder]
        for _ in range(30):
            send(["estop"], axes={"left_y": 1.0})
            executor.spin_once(timeout_sec=0.03)
        assert abs(states[-1][shoulder] - settled) < 1e-3
    executor.shutdown()
    node.destroy_node()
