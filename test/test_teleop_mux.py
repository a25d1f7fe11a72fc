"""The command mux: the one rule, and limits that no forwarded command ever exceeds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aloe_ros.config import load_task_config
from aloe_ros.teleop.mux import CommandMux, ControlSource, Origin

ROBOT = load_task_config("pack_phone").robot
LOWER, UPPER = np.asarray(ROBOT.position_lower), np.asarray(ROBOT.position_upper)
VELOCITY = np.asarray(ROBOT.velocity_limits)
HOME = np.asarray(ROBOT.home_position)
PERIOD = 1.0 / ROBOT.control_rate_hz


def test_the_rule_estop_over_human_over_policy() -> None:
    table = {
        ControlSource.POLICY: {Origin.POLICY, Origin.HOLD},
        ControlSource.HUMAN: {Origin.HUMAN},
        ControlSource.HOLD: {Origin.HOLD},
        ControlSource.DISARMED: set(),
        ControlSource.ESTOP: set(),
    }
    mux = CommandMux(ROBOT)
    for source, allowed in table.items():
        mux.set_source(source)
        assert {o for o in Origin if mux.allows(o)} == allowed, source


def test_estop_forwards_nothing_and_forgets_the_last_command() -> None:
    mux = CommandMux(ROBOT)
    mux.set_measured(HOME)
    assert mux.route(HOME, Origin.POLICY, 0.0) is not None
    mux.set_source(ControlSource.ESTOP)
    assert mux.route(HOME, Origin.POLICY, 0.1) is None
    assert mux.route(HOME, Origin.HUMAN, 0.1) is None
    assert mux.hold(0.1) is None
    assert mux.last_command is None     # re-arming starts from the measured pose


commands = st.lists(
    st.tuples(st.lists(st.floats(-10.0, 10.0), min_size=14, max_size=14),
              st.floats(0.0, 0.2)),                     # (positions, time since previous)
    min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(commands)
def test_forwarded_commands_never_exceed_position_or_velocity_limits(sequence) -> None:
    mux = CommandMux(ROBOT)
    mux.set_measured(HOME)
    previous, previous_time, now = HOME, None, 0.0
    for positions, gap in sequence:
        now += gap
        command = mux.route(np.asarray(positions), Origin.POLICY, now)
        assert command is not None
        q = command.positions
        assert np.all(q >= LOWER - 1e-12) and np.all(q <= UPPER + 1e-12)
        dt = PERIOD if previous_time is None else min(now - previous_time, PERIOD)
        assert np.all(np.abs(q - previous) <= VELOCITY * dt + 1e-9)
        previous, previous_time = q, now


def test_a_command_after_a_pause_still_moves_one_tick_at_most() -> None:
    mux = CommandMux(ROBOT)
    mux.set_measured(HOME)
    mux.route(HOME, Origin.POLICY, 0.0)
    command = mux.route(HOME + 1.0, Origin.POLICY, 10.0)
    assert command is not None and command.clamped
    assert np.all(np.abs(command.positions - HOME) <= VELOCITY * PERIOD + 1e-9)
