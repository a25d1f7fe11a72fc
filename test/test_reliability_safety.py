"""Safety figures as properties: random policy outputs through the real command path
(ChunkExecutor -> TeleopController's mux), random inference latencies, random e-stops.

Whatever the policy says (NaN, inf, huge values, wrong shapes, late answers), every command
that reaches the robot is finite, inside the position limits and at most one tick of full
speed from the previous one; nothing reaches it while the e-stop is active; and no row of a
chunk is executed after its horizon (a stale chunk is never executed).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from teleop_helpers import joy

from aloe_ros.config import load_task_config
from aloe_ros.policies.executor import ChunkExecutor
from aloe_ros.policies.sim_rollouts import executor_config
from aloe_ros.teleop.controller import TeleopController
from aloe_ros.teleop.mux import ControlSource

CONFIG = load_task_config("pack_phone")
ROBOT = CONFIG.robot
LOWER = np.asarray(ROBOT.position_lower)
UPPER = np.asarray(ROBOT.position_upper)
STEP = np.asarray(ROBOT.velocity_limits) / ROBOT.control_rate_hz
PERIOD = 1.0 / ROBOT.control_rate_hz
HOME = np.asarray(ROBOT.home_position)
HORIZON = 20
D = len(ROBOT.joint_names)

chunk_kinds = st.sampled_from(["near", "wild", "huge", "nan", "inf", "short", "wide"])


def make_chunk(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A policy answer of one of the kinds a broken or untrained policy produces."""
    if kind == "near":
        return HOME + np.cumsum(rng.normal(0, 0.05, (HORIZON, D)), axis=0)
    if kind == "wild":
        return rng.uniform(-10, 10, (HORIZON, D))
    if kind == "huge":
        return np.full((HORIZON, D), 1e9) * rng.choice([-1, 1], D)
    if kind == "nan":
        chunk = HOME + np.zeros((HORIZON, D))
        chunk[rng.integers(HORIZON), rng.integers(D)] = np.nan
        return chunk
    if kind == "inf":
        chunk = HOME + np.zeros((HORIZON, D))
        chunk[rng.integers(HORIZON), rng.integers(D)] = np.inf
        return chunk
    if kind == "short":
        return HOME + np.zeros((HORIZON // 2, D))
    return np.zeros((HORIZON, D + 3))


def assert_safe(command: np.ndarray, previous: np.ndarray) -> None:
    assert np.all(np.isfinite(command))
    assert np.all(command >= LOWER - 1e-9) and np.all(command <= UPPER + 1e-9)
    assert np.all(np.abs(command - previous) <= STEP + 1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1),
       kinds=st.lists(chunk_kinds, min_size=1, max_size=12),
       latencies=st.lists(st.integers(0, 2 * HORIZON), min_size=1, max_size=12),
       estop_ticks=st.sets(st.integers(5, 200), max_size=3))
def test_random_policy_outputs_never_break_the_limits(seed: int, kinds: list[str],
                                                      latencies: list[int],
                                                      estop_ticks: set[int]) -> None:
    rng = np.random.default_rng(seed)
    executor = ChunkExecutor(executor_config(CONFIG, HORIZON))
    controller = TeleopController(CONFIG, sim=True)
    measured = HOME.copy()
    controller.on_joint_state(measured)
    executor.set_measured_state(measured)
    in_flight: list[tuple[int, object]] = []
    start_ticks: dict[int, int] = {}
    answers = 0
    rearm_at: int | None = None
    for tick in range(240):
        now = tick * PERIOD
        if tick in estop_ticks and controller.control != ControlSource.ESTOP:
            controller.request_estop("test")
            executor.pause("e-stop")
            rearm_at = tick + 10
        if rearm_at is not None and tick >= rearm_at:
            # Release e-stop, then re-arm the policy with handback, as an operator would.
            pressed = ("release_estop",) if tick == rearm_at else (
                ("handback",) if tick == rearm_at + 2 else ())
            controller.on_joy(*joy(pressed), now)
            if tick == rearm_at + 2:
                executor.resume(measured)
                rearm_at = None
        for item in [i for i in in_flight if i[0] <= executor.tick]:
            in_flight.remove(item)
            request = item[1]
            accepted, _why = executor.submit(request,  # type: ignore[arg-type]
                                             make_chunk(kinds[answers % len(kinds)], rng))
            answers += 1
            if accepted:
                start_ticks[executor.chunks[-1].chunk_id] = request.tick  # type: ignore[attr-defined]
        request = executor.want_inference()
        if request is not None:
            in_flight.append((executor.tick + latencies[answers % len(latencies)], request))
        result = executor.step()
        if result.chunk_id >= 0:
            # The row this tick used lies within its chunk's horizon: never a stale chunk.
            assert result.tick - start_ticks[result.chunk_id] < HORIZON
        stopped = controller.control in (ControlSource.ESTOP, ControlSource.DISARMED)
        out = controller.tick(now)
        commands = list(out.commands)
        if result.command is not None:
            forwarded = controller.on_policy_command(result.command, now)
            if forwarded is not None:
                commands.append(forwarded)
        if stopped:
            assert not commands, "a command passed while the e-stop was active"
        for command in commands:
            assert_safe(command.positions, measured)
            measured = command.positions.copy()     # the robot tracks its command exactly
        controller.on_joint_state(measured)
