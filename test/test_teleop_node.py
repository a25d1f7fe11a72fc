"""teleop_node through rclpy: synthetic Joy, policy commands and joint states over DDS.

The node runs in this process on its own context; a driver node plays joystick, policy, robot
and detector. Assertions use message order and stamps, never wall-clock durations.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from helpers import spin_until, write_task_config
from teleop_helpers import joy

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState, Joy  # noqa: E402

from aloe_ros.config import load_task_config  # noqa: E402
from aloe_ros.msg import EpisodeEvent, InterventionEvent, Status  # noqa: E402
from aloe_ros.nodes.common import qos_profile, stamp_to_seconds  # noqa: E402
from aloe_ros.nodes.teleop_node import TeleopNode  # noqa: E402

OVERRIDES = {
    "joystick": {"timeout_s": 0.5},
    "episode": {"startup_delay_s": 0.1, "reset_to_start_s": 0.1, "auto_reset_delay_s": 0.2},
}


class Driver:
    """Joystick, policy, robot and detector in one test node; records what teleop publishes."""

    def __init__(self, context, config_path: Path, sim: bool,
                 params: dict[str, str] | None = None) -> None:
        self.config = load_task_config(config_path)
        topics, qos = self.config.topics, self.config.qos
        self.teleop = TeleopNode(context=context, parameter_overrides=[
            Parameter("config_file", value=str(config_path)), Parameter("sim", value=sim),
            *(Parameter(name, value=value) for name, value in (params or {}).items())])
        self.node = Node("teleop_test_driver", context=context)
        command_qos, events_qos = qos_profile(qos.command), qos_profile(qos.events)
        self.joy_pub = self.node.create_publisher(Joy, topics.joy, command_qos)
        self.state_pub = self.node.create_publisher(JointState, topics.joint_states, command_qos)
        self.policy_pub = self.node.create_publisher(JointState, topics.policy_command,
                                                     command_qos)
        self.detector_pub = self.node.create_publisher(EpisodeEvent, topics.sim_detector,
                                                       events_qos)
        self.commands: list[JointState] = []
        self.interventions: list[InterventionEvent] = []
        self.episodes: list[EpisodeEvent] = []
        self.status: list[Status] = []
        self.node.create_subscription(JointState, topics.command, self.commands.append,
                                      command_qos)
        self.node.create_subscription(InterventionEvent, topics.intervention,
                                      self.interventions.append, events_qos)
        self.node.create_subscription(EpisodeEvent, topics.episode, self.episodes.append,
                                      events_qos)
        self.node.create_subscription(Status, topics.status, self.status.append, events_qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.teleop)
        self.executor.add_node(self.node)
        self.home = np.asarray(self.config.robot.home_position)
        self.names = list(self.config.robot.joint_names)

    def close(self) -> None:
        self.executor.shutdown()
        self.teleop.destroy_node()
        self.node.destroy_node()

    def now(self):
        return self.node.get_clock().now().to_msg()

    def send_state(self, positions: np.ndarray) -> None:
        msg = JointState()
        msg.header.stamp = self.now()
        msg.name = self.names
        msg.position = positions.tolist()
        self.state_pub.publish(msg)

    def send_policy(self, k: int) -> None:
        msg = JointState()
        msg.header.stamp = self.now()
        msg.header.frame_id = f"policy:{k}"
        msg.name = self.names
        q = self.home.copy()
        q[0] += 0.01 * k
        msg.position = q.tolist()
        self.policy_pub.publish(msg)

    def send_joy(self, pressed=(), axes=None, buttons: list[int] | None = None) -> None:
        msg = Joy()
        msg.header.stamp = self.now()
        msg.header.frame_id = "joy"
        a, b = joy(pressed, axes)
        msg.axes = a
        msg.buttons = b if buttons is None else buttons
        self.joy_pub.publish(msg)

    def spin(self, times: int = 3) -> None:
        for _ in range(times):
            self.executor.spin_once(timeout_sec=0.01)

    def tick(self, k: int, pressed=(), policy: bool = True, pad: bool = True) -> None:
        """One driver tick: robot state (tracks the last command), Joy, policy command."""
        last = self.commands[-1].position if self.commands else self.home
        self.send_state(np.asarray(last))
        if pad:
            self.send_joy(pressed)
        if policy:
            self.send_policy(k)
        self.spin()

    def wait_started(self) -> None:
        k = 0

        def started() -> bool:
            nonlocal k
            k += 1
            self.tick(k, policy=False)
            return any(e.kind == EpisodeEvent.START for e in self.episodes)

        assert spin_until(self.executor, started, timeout_s=20.0), "no START from teleop_node"


@pytest.fixture
def driver(ros_context, tmp_path: Path):
    drivers: list[Driver] = []

    def make(sim: bool = False, overrides: dict | None = None,
             params: dict[str, str] | None = None) -> Driver:
        path = write_task_config(tmp_path, overrides={**OVERRIDES, **(overrides or {})})
        drivers.append(Driver(ros_context, path, sim, params))
        return drivers[-1]

    yield make
    for d in drivers:
        d.close()


def policy_index(msg: JointState) -> int | None:
    frame = msg.header.frame_id
    return int(frame.split(":")[1]) if frame.startswith("policy:") else None


def test_takeover_handback_and_estop_through_the_node(driver) -> None:
    d = driver()
    d.wait_started()
    for k in range(10):
        d.tick(k)
    assert spin_until(d.executor, lambda: any(policy_index(c) == 9 for c in d.commands), 5.0)

    # Takeover mid-chunk: after the TAKEOVER, policy commands stop and human ones flow.
    d.tick(10, pressed=["takeover"])
    assert spin_until(d.executor, lambda: len(d.interventions) == 1, 5.0)
    takeover = d.interventions[0]
    assert takeover.kind == InterventionEvent.TAKEOVER and takeover.source == "joystick"
    assert takeover.episode_id == 1 and takeover.arms == "both"
    for k in range(11, 25):
        d.tick(k)
    late = [policy_index(c) for c in d.commands if (policy_index(c) or 0) > 11]
    assert late == [], f"policy commands forwarded during takeover: {late}"
    assert any(c.header.frame_id == "human:joystick" for c in d.commands)

    # Handback: policy commands are forwarded again.
    for k in range(25, 30):
        d.tick(k)
    d.tick(30, pressed=["handback"])
    assert spin_until(d.executor, lambda: len(d.interventions) == 2, 5.0)
    assert d.interventions[1].kind == InterventionEvent.HANDBACK
    for k in range(31, 40):
        d.tick(k)
    assert spin_until(d.executor, lambda: any((policy_index(c) or 0) > 31
                                              for c in d.commands), 5.0)

    # E-stop: nothing stamped after the ESTOP event, no policy tick beyond the next one.
    for k in range(40, 45):
        d.tick(k)
    d.tick(45, pressed=["estop"])
    assert spin_until(d.executor, lambda: len(d.interventions) == 3, 5.0)
    estop = d.interventions[2]
    assert estop.kind == InterventionEvent.ESTOP
    for k in range(46, 80):
        d.tick(k)
    estop_time = stamp_to_seconds(estop.header.stamp)
    after = [c for c in d.commands if stamp_to_seconds(c.header.stamp) > estop_time]
    assert after == []
    assert max(policy_index(c) or 0 for c in d.commands) <= 46
    assert spin_until(d.executor, lambda: any(s.estop_active and s.control_source == "estop"
                                              for s in d.status), 5.0)


def test_watchdog_holds_when_the_pad_goes_silent_and_reports_it(driver) -> None:
    d = driver()
    d.wait_started()
    d.tick(0, pressed=["takeover"], policy=False)
    assert spin_until(d.executor, lambda: len(d.interventions) == 1, 5.0)
    k = 0

    def holding() -> bool:
        nonlocal k
        k += 1
        d.tick(k, policy=True, pad=False)       # pad unplugged; the policy keeps talking
        return any(s.control_source == "hold" for s in d.status)

    assert spin_until(d.executor, holding, 10.0)
    status = [s for s in d.status if s.control_source == "hold"][-1]
    counters = dict(zip(status.counter_names, status.counter_values))
    assert counters["watchdog_holds"] == 1
    assert "no Joy" in status.message
    assert all(policy_index(c) is None for c in d.commands)
    assert d.commands[-1].header.frame_id == "hold"

    def human_again() -> bool:
        nonlocal k
        k += 1
        d.tick(k, policy=False)
        return d.commands[-1].header.frame_id == "human:joystick"

    assert spin_until(d.executor, human_again, 10.0)
    assert [i.kind for i in d.interventions] == [InterventionEvent.TAKEOVER]


def test_episode_events_from_buttons_and_detector_each_exactly_once(driver) -> None:
    d = driver(sim=True)
    d.wait_started()
    started_at = stamp_to_seconds(d.episodes[-1].header.stamp)
    detector = EpisodeEvent()
    detector.header.stamp = d.now()
    detector.episode_id = 7           # the sim's own count: not ours, and not used
    detector.kind = EpisodeEvent.SUCCESS
    detector.reward = 1.0
    detector.reason = "phone in box"
    assert stamp_to_seconds(detector.header.stamp) >= started_at
    for _ in range(3):                # repeated: still one SUCCESS
        d.detector_pub.publish(detector)
    k = 0

    def second_started() -> bool:
        nonlocal k
        k += 1
        d.tick(k, policy=False)
        return sum(e.kind == EpisodeEvent.START for e in d.episodes) == 2

    assert spin_until(d.executor, second_started, 10.0)
    for _ in range(10):               # a press of failure marks episode 2, once
        k += 1
        d.tick(k, pressed=["failure"], policy=False)
    d.spin(10)
    # RESET(0) goes out right after discovery and may predate our subscription: from START(1).
    got = [(e.kind, e.episode_id, e.reward) for e in d.episodes if e.episode_id > 0]
    assert got[:5] == [
        (EpisodeEvent.START, 1, 0.0), (EpisodeEvent.SUCCESS, 1, 1.0),
        (EpisodeEvent.RESET, 1, 0.0), (EpisodeEvent.START, 2, 0.0),
        (EpisodeEvent.FAILURE, 2, 0.0)]
    assert len(got) == len(set(got)), f"an event was published twice: {got}"
    assert sum(1 for g in got if g[0] == EpisodeEvent.SUCCESS) == 1
    assert all(e.task == d.config.task.name for e in d.episodes)


def test_bad_inputs_are_counted_and_the_node_keeps_running(driver) -> None:
    d = driver()
    d.wait_started()
    d.send_joy(buttons=[0, 0, 1])                   # too short for the xbox preset
    bad = JointState()
    bad.name = ["nobody"]
    bad.position = [0.0]
    d.policy_pub.publish(bad)
    d.state_pub.publish(bad)
    nan = JointState()
    nan.name = d.names
    nan.position = [float("nan")] * len(d.names)
    d.policy_pub.publish(nan)

    def counted() -> bool:
        d.spin()
        if not d.status:
            return False
        counters = dict(zip(d.status[-1].counter_names, d.status[-1].counter_values))
        return (counters.get("bad_joy", 0) >= 1 and counters.get("bad_policy_commands", 0) >= 2
                and counters.get("bad_joint_states", 0) >= 1)

    assert spin_until(d.executor, counted, 10.0)
    n = len(d.commands)
    for k in range(5):
        d.tick(k)
    assert spin_until(d.executor, lambda: len(d.commands) > n, 5.0)


def test_estop_service_stops_the_stream_and_only_the_pad_releases(driver) -> None:
    from std_srvs.srv import Trigger

    from aloe_ros.nodes.teleop_node import ESTOP_SERVICE

    d = driver()
    d.wait_started()
    for k in range(5):
        d.tick(k)
    client = d.node.create_client(Trigger, ESTOP_SERVICE)
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert spin_until(d.executor, future.done, 10.0)
    assert future.result().success
    assert spin_until(d.executor, lambda: len(d.interventions) == 1, 5.0)
    estop = d.interventions[0]
    assert estop.kind == InterventionEvent.ESTOP and estop.source == "service"
    for k in range(5, 30):
        d.tick(k)
    estop_time = stamp_to_seconds(estop.header.stamp)
    assert [c for c in d.commands if stamp_to_seconds(c.header.stamp) > estop_time] == []
    for k in range(30, 35):
        d.tick(k, pressed=["release_estop"])
    assert spin_until(d.executor, lambda: len(d.interventions) == 2, 5.0)
    assert d.interventions[1].kind == InterventionEvent.RELEASE_ESTOP


# ---- recording: episode 1 waits for the recorder ------------------------------------------------
def _drive_for(d: Driver, seconds: float) -> None:
    """Tick the robot and pad for a while: long enough for an ungated first START (startup
    0.1 s + reset 0.1 s in OVERRIDES) to be published several times over."""
    k, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        k += 1
        d.tick(k, policy=False)


def test_first_episode_waits_for_the_recorder_when_recording(driver, ros_context,
                                                             tmp_path: Path) -> None:
    d = driver(params={"record_dir": str(tmp_path / "bags")})
    _drive_for(d, 1.5)
    assert d.episodes == [], "an episode event went out before any recorder was up"
    assert spin_until(d.executor, lambda: any("waiting for the recorder" in s.message
                                              for s in d.status), 5.0)
    # A subscriber under another name is not the recorder (inference, the learner, a GUI).
    other = Node("chunk_inference", context=ros_context)
    recorder_name = next(e.name for e in d.config.nodes
                         if e.executable == "trajectory_logger_node")
    recorder = Node(recorder_name, context=ros_context)
    try:
        events_qos = qos_profile(d.config.qos.events)
        other.create_subscription(EpisodeEvent, d.config.topics.episode, lambda _: None,
                                  events_qos)
        d.executor.add_node(other)
        _drive_for(d, 1.0)
        assert d.episodes == [], "another node's subscription opened the gate"
        heard: list[EpisodeEvent] = []
        recorder.create_subscription(EpisodeEvent, d.config.topics.episode, heard.append,
                                     events_qos)
        recorder_up = stamp_to_seconds(recorder.get_clock().now().to_msg())
        d.executor.add_node(recorder)
        d.wait_started()
        assert spin_until(d.executor, lambda: any(e.kind == EpisodeEvent.START
                                                  for e in heard), 5.0)
        assert [e.kind for e in heard][:2] == [EpisodeEvent.RESET, EpisodeEvent.START], \
            "the recorder must hear the first RESET and START"
        assert all(stamp_to_seconds(e.header.stamp) >= recorder_up for e in d.episodes)
    finally:
        for node in (other, recorder):
            d.executor.remove_node(node)
            node.destroy_node()


def test_first_episode_starts_without_a_recorder_after_the_wait(driver, tmp_path: Path) -> None:
    episode = {**OVERRIDES["episode"], "recorder_wait_s": 0.5}
    d = driver(overrides={"episode": episode}, params={"record_dir": str(tmp_path / "bags")})
    d.wait_started()                 # no recorder at all: it goes on, with a warning (logged)


def test_first_episode_does_not_wait_when_not_recording(driver) -> None:
    episode = {**OVERRIDES["episode"], "recorder_wait_s": 1000.0}
    d = driver(overrides={"episode": episode})
    d.wait_started()                 # would time out (20 s) if it waited without record_dir
