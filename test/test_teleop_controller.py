"""Teleop controller with synthetic Joy sequences: takeover, handback, e-stop, watchdog, chatter.

Time is counted in control ticks (t advances by exactly one period per tick); nothing here
reads a wall clock.
"""

from __future__ import annotations

import numpy as np
import pytest
from teleop_helpers import joy

from aloe_ros.config import load_task_config
from aloe_ros.teleop.controller import InterventionKind, TeleopController
from aloe_ros.teleop.episode import EpisodeEventKind
from aloe_ros.teleop.mux import Origin


class Rig:
    """A controller driven tick by tick; collects everything it outputs."""

    def __init__(self, mode: str = "toggle", sim: bool = False, **joystick: object) -> None:
        config = load_task_config("pack_phone")
        config.joystick.mode = mode  # type: ignore[assignment]
        for key, value in joystick.items():
            setattr(config.joystick, key, value)
        self.config = config
        self.controller = TeleopController(config, sim=sim)
        self.home = np.asarray(config.robot.home_position)
        self.controller.on_joint_state(self.home)
        self.period = 1.0 / config.robot.control_rate_hz
        self.t = 1000.0
        self.tick_index = 0
        self.commands: list[tuple[int, Origin, np.ndarray]] = []
        self.interventions: list = []
        self.episodes: list = []

    def _collect(self, out) -> None:
        self.commands += [(self.tick_index, c.origin, c.positions) for c in out.commands]
        self.interventions += out.interventions
        self.episodes += out.episodes

    def joy(self, pressed=(), axes=None, dt: float = 0.0) -> None:
        self.t += dt
        a, b = joy(pressed, axes)
        self._collect(self.controller.on_joy(a, b, self.t))

    def policy(self, q: np.ndarray) -> bool:
        command = self.controller.on_policy_command(q, self.t)
        if command is not None:
            self.commands.append((self.tick_index, command.origin, command.positions))
        return command is not None

    def step(self, pressed=(), axes=None, policy: np.ndarray | None = None,
             send_joy: bool = True) -> None:
        """One control tick: Joy (if the pad is alive), a policy command, the tick."""
        self.t += self.period
        self.tick_index += 1
        if send_joy:
            self.joy(pressed, axes)
        if policy is not None:
            self.policy(policy)
        self._collect(self.controller.tick(self.t))
        if self.commands and self.commands[-1][0] == self.tick_index:
            self.controller.on_joint_state(self.commands[-1][2])   # a robot that tracks

    def idle(self, ticks: int = 4) -> None:
        """Buttons up for longer than the debounce time."""
        for _ in range(ticks):
            self.step()

    def kinds(self) -> list[InterventionKind]:
        return [e.kind for e in self.interventions]

    def policy_chunk(self, k: int) -> np.ndarray:
        q = self.home.copy()
        q[0] += 0.02 * k     # slow waist motion, well inside the velocity limit
        return q


def test_takeover_mid_chunk_next_command_is_human_and_policy_is_blocked() -> None:
    rig = Rig()
    for k in range(5):
        rig.step(policy=rig.policy_chunk(k))
    last_policy = rig.commands[-1][2]
    assert [o for _, o, _ in rig.commands] == [Origin.POLICY] * 5
    rig.step(pressed=["takeover"], policy=rig.policy_chunk(5))
    assert rig.kinds() == [InterventionKind.TAKEOVER]
    # The command right after the takeover is the human's, exactly at the commanded pose.
    first_after = rig.commands[5]
    assert first_after[1] == Origin.HUMAN
    np.testing.assert_array_equal(first_after[2], last_policy)
    for k in range(6, 20):
        rig.step(policy=rig.policy_chunk(k))
    assert all(o == Origin.HUMAN for _, o, _ in rig.commands[5:])
    assert rig.controller.mux.blocked[Origin.POLICY] == 15
    assert rig.controller.control_label() == "human"


def test_handback_forwards_policy_again_from_the_current_pose() -> None:
    rig = Rig()
    rig.step(policy=rig.policy_chunk(0))
    rig.step(pressed=["takeover"])
    for _ in range(10):
        rig.step(axes={"left_y": 1.0})       # shoulders move under human control
    human_pose = rig.commands[-1][2]
    rig.step(pressed=["handback"])
    assert rig.kinds() == [InterventionKind.TAKEOVER, InterventionKind.HANDBACK]
    # Handback holds the human's last pose in the same step.
    hold = rig.commands[-1]
    assert hold[1] == Origin.HOLD
    np.testing.assert_array_equal(hold[2], human_pose)
    assert rig.policy(rig.policy_chunk(1))
    assert rig.commands[-1][1] == Origin.POLICY
    # The policy's command is limited relative to where the human left the robot.
    step = np.abs(rig.commands[-1][2] - human_pose)
    limits = np.asarray(rig.config.robot.velocity_limits) * rig.period
    assert np.all(step <= limits + 1e-9)


def test_toggle_mode_takeover_button_toggles() -> None:
    rig = Rig(mode="toggle")
    rig.step(pressed=["takeover"])
    for _ in range(4):      # released for 4 ticks (> debounce_s)
        rig.step()
    rig.step(pressed=["takeover"])
    assert rig.kinds() == [InterventionKind.TAKEOVER, InterventionKind.HANDBACK]


def test_deadman_mode_controls_while_held_and_release_hands_back_with_a_hold() -> None:
    rig = Rig(mode="deadman")
    for _ in range(5):
        rig.step(pressed=["takeover"], axes={"right_y": -1.0})
    assert rig.kinds() == [InterventionKind.TAKEOVER]
    moved = rig.commands[-1][2]
    rig.step()           # released: the release is debounced, then accepted on a tick
    for _ in range(3):
        rig.step(send_joy=False)
    assert rig.kinds() == [InterventionKind.TAKEOVER, InterventionKind.HANDBACK]
    origins = [o for _, o, _ in rig.commands]
    assert origins[-1] == Origin.HOLD
    np.testing.assert_array_equal(rig.commands[-1][2], moved)


@pytest.mark.parametrize("start_as_human", [False, True])
def test_estop_stops_the_command_stream_within_one_tick(start_as_human: bool) -> None:
    rig = Rig()
    if start_as_human:
        rig.step(pressed=["takeover"])
    for k in range(5):
        rig.step(axes={"left_x": 0.5}, policy=rig.policy_chunk(k))
    estop_tick = rig.tick_index + 1
    rig.step(pressed=["estop"], axes={"left_x": 0.5}, policy=rig.policy_chunk(5))
    for k in range(6, 40):
        rig.step(axes={"left_x": 0.5}, policy=rig.policy_chunk(k))
    assert rig.kinds()[-1] == InterventionKind.ESTOP
    after = [tick for tick, _, _ in rig.commands if tick > estop_tick]
    assert after == [], f"commands after the e-stop tick: {after[:5]}"
    # At the e-stop tick itself only what was sent before the Joy arrived may pass.
    at = [origin for tick, origin, _ in rig.commands if tick == estop_tick]
    assert Origin.HUMAN not in at and Origin.HOLD not in at
    assert rig.controller.control_label() == "estop"


def test_after_estop_nothing_moves_until_released_and_rearmed() -> None:
    rig = Rig()
    rig.step(policy=rig.policy_chunk(0))
    rig.step(pressed=["estop"])
    n = len(rig.commands)
    rig.step(pressed=["estop", "release_estop"])      # release while e-stop held: refused
    rig.step(pressed=["estop"])
    assert rig.kinds() == [InterventionKind.ESTOP]
    rig.idle()
    rig.step(pressed=["release_estop"])
    assert rig.kinds() == [InterventionKind.ESTOP, InterventionKind.RELEASE_ESTOP]
    for k in range(10):                                # released but not re-armed
        rig.step(axes={"left_y": 1.0}, policy=rig.policy_chunk(k))
    assert len(rig.commands) == n
    assert rig.controller.control_label() == "hold"
    assert "re-arm" in rig.controller.status_message()
    # The robot was stopped elsewhere: re-arming starts from what it measures.
    measured = rig.home - 0.01
    rig.controller.on_joint_state(measured)
    rig.step(pressed=["takeover"])
    assert rig.kinds()[-1] == InterventionKind.TAKEOVER
    assert rig.commands[-1][1] == Origin.HUMAN
    np.testing.assert_array_equal(rig.commands[-1][2], measured)


def test_release_then_handback_rearms_the_policy() -> None:
    rig = Rig()
    rig.step(pressed=["estop"])
    rig.idle()
    rig.step(pressed=["release_estop"])
    rig.idle()
    assert not rig.policy(rig.policy_chunk(1))
    rig.step(pressed=["handback"])
    assert rig.kinds()[-1] == InterventionKind.HANDBACK
    assert rig.policy(rig.policy_chunk(1))


def test_watchdog_unplug_during_takeover_holds_and_nothing_jumps_on_return() -> None:
    rig = Rig(timeout_s=0.2)
    rig.step(pressed=["takeover"])
    for _ in range(5):
        rig.step(axes={"left_y": 1.0})
    moving = rig.commands[-1][2]
    timeout_ticks = int(np.ceil(0.2 / rig.period)) + 1
    for _ in range(timeout_ticks + 10):                # the pad is unplugged mid-motion
        rig.step(send_joy=False)
    assert rig.controller.counters["watchdog_holds"] == 1
    assert rig.controller.control_label() == "hold"
    assert "no Joy" in rig.controller.last_problem
    # Until the timeout the last stick state counts (the pad may just be quiet); from then
    # on the pose is held exactly, with no drift and no step back.
    held = rig.commands[-1]
    assert held[1] == Origin.HOLD
    tail = np.stack([c[2] for c in rig.commands[-10:]])
    assert np.all(tail == held[2])
    speed = rig.config.joystick.max_joint_speed
    assert np.max(np.abs(held[2] - moving)) <= speed * (0.2 + 2 * rig.period) + 1e-9
    hold_start = next(i for i, c in enumerate(rig.commands) if c[1] == Origin.HOLD)
    np.testing.assert_array_equal(rig.commands[hold_start - 1][2], held[2])
    assert rig.controller.on_policy_command(rig.policy_chunk(1), rig.t) is None
    # The pad comes back with the stick still deflected: control resumes from the hold,
    # moving at most one tick of teleop speed.
    rig.step(axes={"left_y": 1.0})
    back = rig.commands[-1]
    assert back[1] == Origin.HUMAN
    assert np.max(np.abs(back[2] - held[2])) <= speed * 2 * rig.period + 1e-9
    assert rig.kinds() == [InterventionKind.TAKEOVER]   # no control change was invented


def test_watchdog_in_deadman_mode_hands_back_when_the_pad_returns_released() -> None:
    rig = Rig(mode="deadman", timeout_s=0.2)
    rig.step(pressed=["takeover"])
    for _ in range(20):
        rig.step(send_joy=False)
    assert rig.controller.control_label() == "hold"
    rig.step()
    assert rig.kinds() == [InterventionKind.TAKEOVER, InterventionKind.HANDBACK]


def test_policy_alone_needs_no_pad() -> None:
    rig = Rig()
    for k in range(40):
        rig.step(policy=rig.policy_chunk(k), send_joy=False)
    assert len(rig.commands) == 40
    assert "watchdog_holds" not in rig.controller.counters


def test_chattering_and_held_buttons_give_one_event_each() -> None:
    rig = Rig()
    # Bounce at press: 1 0 1 0 1 within a few milliseconds, then held for a second.
    for level in (1, 0, 1, 0, 1):
        rig.joy(pressed=["takeover"] if level else [], dt=0.004)
    for _ in range(30):
        rig.step(pressed=["takeover"])
    assert rig.kinds() == [InterventionKind.TAKEOVER]
    # Bounce at release, then a clean release and press: one handback.
    for level in (0, 1, 0, 1, 0):
        rig.joy(pressed=["takeover"] if level else [], dt=0.004)
    for _ in range(5):
        rig.step()
    rig.step(pressed=["takeover"])
    assert rig.kinds() == [InterventionKind.TAKEOVER, InterventionKind.HANDBACK]
    # A chattering success button marks one success.
    rig.controller.episodes.phase = rig.controller.episodes.phase.RUNNING
    rig.controller.episodes.started_at = rig.t
    for level in (1, 0, 1, 1, 0, 1):
        rig.joy(pressed=["success"] if level else [], dt=0.005)
    successes = [e for e in rig.episodes if e.kind == EpisodeEventKind.SUCCESS]
    assert len(successes) == 1


def test_human_sticks_drive_the_joint_space_with_deadzone_and_speed() -> None:
    rig = Rig(deadzone=0.1, max_joint_speed=0.6)
    names = rig.config.robot.joint_names
    shoulder_l, shoulder_r = names.index("left_shoulder"), names.index("right_shoulder")
    rig.step(pressed=["takeover"])
    start = rig.commands[-1][2]
    rig.step(axes={"left_y": 0.05})             # inside the deadzone: nothing moves
    np.testing.assert_array_equal(rig.commands[-1][2], start)
    rig.step(axes={"left_y": 1.0})              # full deflection: both arms at 0.6 rad/s
    delta = rig.commands[-1][2] - start
    expected = 0.6 * rig.period
    assert delta[shoulder_l] == pytest.approx(expected)
    assert delta[shoulder_r] == pytest.approx(expected)
    assert np.count_nonzero(delta) == 2
    before = rig.commands[-1][2]
    rig.step(pressed=["slow"], axes={"left_y": 1.0})   # slow held: a quarter of the speed
    delta = rig.commands[-1][2] - before
    assert delta[shoulder_l] == pytest.approx(0.25 * expected)
    rig.step(pressed=["arm_select"])            # both -> left
    rig.idle()
    before = rig.commands[-1][2]
    rig.step(axes={"left_y": 1.0})
    delta = rig.commands[-1][2] - before
    assert delta[shoulder_l] > 0 and delta[shoulder_r] == 0


def test_triggers_drive_the_grippers_from_the_current_opening() -> None:
    rig = Rig(gripper_speed=1.0)
    names = rig.config.robot.joint_names
    grip_l, grip_r = names.index("left_gripper"), names.index("right_gripper")
    rig.step(pressed=["takeover"])
    start = rig.commands[-1][2]
    for _ in range(3):
        rig.step(axes={"trigger_right": -1.0})   # fully pressed: close
    closed = rig.commands[-1][2]
    assert closed[grip_l] == pytest.approx(start[grip_l] - 3 * rig.period)
    assert closed[grip_r] == pytest.approx(start[grip_r] - 3 * rig.period)


def test_leader_arm_target_is_approached_without_a_jump() -> None:
    rig = Rig(max_joint_speed=0.5)
    rig.step(pressed=["takeover"])
    goal = rig.home.copy()
    goal[2] += 0.5
    rig.controller.on_human_target(goal, rig.t)
    rig.step()
    first = rig.commands[-1][2]
    assert first[2] - rig.home[2] == pytest.approx(0.5 * rig.period)
    for _ in range(60):
        rig.controller.on_human_target(goal, rig.t)
        rig.step()
    np.testing.assert_allclose(rig.commands[-1][2], goal, atol=1e-9)


def test_policy_commands_are_clamped_and_bad_ones_rejected() -> None:
    rig = Rig()
    wild = rig.home + 5.0
    assert rig.policy(wild)
    sent = rig.commands[-1][2]
    limits = np.asarray(rig.config.robot.velocity_limits) * rig.period
    assert np.all(np.abs(sent - rig.home) <= limits + 1e-9)
    assert np.all(sent <= np.asarray(rig.config.robot.position_upper))
    assert rig.controller.mux.clamped == 1
    bad_nan = rig.home.copy()
    bad_nan[3] = np.nan
    assert not rig.policy(bad_nan)
    assert not rig.policy(rig.home[:7])
    assert rig.controller.counters["bad_policy_commands"] == 2


def test_a_joy_that_does_not_fit_the_layout_is_rejected_and_is_no_heartbeat() -> None:
    rig = Rig(timeout_s=0.2)
    rig.step(pressed=["takeover"])
    for _ in range(20):
        rig.t += rig.period
        rig.controller.on_joy([0.0] * 8, [0, 0, 1], rig.t)  # 3 buttons: too few for xbox
        rig._collect(rig.controller.tick(rig.t))
    assert rig.controller.counters["bad_joy"] == 20
    assert "buttons" in rig.controller.last_problem
    assert rig.controller.control_label() == "hold"


def test_nothing_is_forwarded_before_the_robot_pose_is_known() -> None:
    config = load_task_config("pack_phone")
    controller = TeleopController(config, sim=False)
    assert controller.on_policy_command(config.robot.home_position, 1.0) is None
    assert controller.control_label() == "idle"
    out = controller.on_joy(*joy(), 1.0)
    out = controller.on_joy(*joy(["takeover"]), 1.1)
    assert out.interventions == []
    assert controller.counters["takeover_without_pose"] == 1


def test_estop_counts_even_in_an_otherwise_unusable_joy() -> None:
    rig = Rig()
    rig.step(policy=rig.policy_chunk(0))
    axes, buttons = joy(["estop"])
    axes[0] = float("nan")
    rig.t += rig.period
    rig._collect(rig.controller.on_joy(axes, buttons, rig.t))
    assert rig.kinds() == [InterventionKind.ESTOP]
    assert rig.controller.counters["bad_joy"] == 1
    assert not rig.policy(rig.policy_chunk(1))
