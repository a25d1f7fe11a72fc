"""ChunkExecutor: scheduling without idle ticks, blending, clamping, bad/stale chunks, pause."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aloe_ros.policies.executor import ChunkExecutor, ExecutorConfig

D = 3
RATE = 30.0


def make_executor(*, horizon: int = 50, execute: int = 25, blend: str = "linear",
                  blend_steps: int = 5, vmax: float = 100.0, limit: float = 10.0
                  ) -> ChunkExecutor:
    return ChunkExecutor(ExecutorConfig(
        control_rate_hz=RATE, chunk_horizon=horizon, execute_horizon=execute,
        position_lower=np.full(D, -limit), position_upper=np.full(D, limit),
        velocity_limits=np.full(D, vmax), blend=blend, blend_steps=blend_steps))


def ramp_chunk(start_tick: int, horizon: int = 50, slope: float = 0.01, offset: float = 0.0
               ) -> np.ndarray:
    """A plan that moves every joint linearly in time: row i is tick start_tick + i."""
    ticks = start_tick + np.arange(horizon)
    return np.repeat((offset + slope * ticks)[:, None], D, axis=1)


def run(executor: ChunkExecutor, ticks: int, latency: int, chunk_fn=ramp_chunk
        ) -> list[np.ndarray | None]:
    """Drive the executor with a policy whose answers arrive ``latency`` ticks after asking."""
    in_flight: list[tuple[int, object]] = []
    commands = []
    for _ in range(ticks):
        for item in [i for i in in_flight if i[0] <= executor.tick]:
            in_flight.remove(item)
            request = item[1]
            executor.submit(request, chunk_fn(request.tick), "v1")  # type: ignore[attr-defined]
        request = executor.want_inference()
        if request is not None:
            in_flight.append((executor.tick + latency, request))
        commands.append(executor.step().command)
    return commands


@pytest.mark.parametrize("latency", [0, 3, 10, 20])
def test_no_idle_ticks_between_chunks_and_plan_followed(latency: int) -> None:
    executor = make_executor()
    executor.set_measured_state(np.zeros(D))
    commands = run(executor, 400, latency)
    assert executor.counters.idle_ticks == 0
    assert executor.counters.stale_chunks == 0
    # Once running, the command at tick t is the plan's value for tick t: latency never shifts
    # the plan in time (rows for ticks already gone are skipped).
    for tick in range(latency + 10, 400):
        np.testing.assert_allclose(commands[tick], 0.01 * tick, atol=1e-9)


def test_requests_start_early_by_the_measured_latency() -> None:
    executor = make_executor()
    executor.set_measured_state(np.zeros(D))
    run(executor, 200, latency=8)
    # Planned latency = worst measured (8 ticks) + 1 tick margin.
    assert executor.latency_estimate() == 9
    # About one chunk per (execute_horizon) ticks, not more.
    assert executor.counters.accepted_chunks <= 200 // 25 + 2


def test_late_answers_keep_using_the_old_chunk_then_hold_and_count_idle() -> None:
    executor = make_executor(horizon=10, execute=5)
    executor.set_measured_state(np.zeros(D))
    request = executor.want_inference()
    assert request is not None
    executor.submit(request, ramp_chunk(request.tick, 10), "v1")
    for _ in range(12):   # nobody answers the next request
        executor.want_inference()
        executor.step()
    # 10 rows of plan, then holds: idle ticks counted, the last command held.
    assert executor.counters.idle_ticks == 2
    assert executor.step().source == "hold"


def test_a_stale_chunk_is_never_executed() -> None:
    executor = make_executor(horizon=10, execute=5)
    executor.set_measured_state(np.zeros(D))
    request = executor.want_inference()
    assert request is not None
    for _ in range(10):
        executor.step()
    accepted, why = executor.submit(request, ramp_chunk(request.tick, 10, offset=5.0), "v1")
    assert not accepted and "stale" in why
    assert executor.counters.stale_chunks == 1
    result = executor.step()
    assert result.source == "wait"
    np.testing.assert_array_equal(result.command, np.zeros(D))


def test_an_unanswered_request_times_out_after_a_horizon() -> None:
    executor = make_executor(horizon=10, execute=5)
    first = executor.want_inference()
    assert first is not None
    for _ in range(10):
        assert executor.want_inference() is None or executor.tick >= 10
        executor.step()
    second = executor.want_inference()
    assert second is not None and second.request_id != first.request_id
    assert executor.counters.inference_timeouts == 1


@pytest.mark.parametrize("bad, reason", [
    (np.full((50, D), np.nan), "NaN"),
    (np.full((50, D), np.inf), "NaN or inf"),
    (np.zeros((50, D + 1)), "action dims"),
    (np.zeros((49, D)), "horizon"),
    (np.zeros((50 * D,)), "2-D"),
])
def test_bad_chunks_are_rejected_and_the_last_safe_command_held(bad: np.ndarray, reason: str
                                                                 ) -> None:
    executor = make_executor()
    executor.set_measured_state(np.full(D, 0.5))
    request = executor.want_inference()
    assert request is not None
    accepted, why = executor.submit(request, bad, "v1")
    assert not accepted and reason in why
    assert executor.counters.rejected_chunks == 1
    result = executor.step()
    np.testing.assert_array_equal(result.command, np.full(D, 0.5))
    assert executor.want_inference() is not None   # a new chunk may be asked for at once


def test_commands_are_clamped_to_position_and_velocity_limits() -> None:
    executor = make_executor(vmax=3.0, limit=1.0)
    executor.set_measured_state(np.zeros(D))
    request = executor.want_inference()
    assert request is not None
    executor.submit(request, np.full((50, D), 5.0), "v1")   # far outside the limits
    commands = np.array([executor.step().command for _ in range(20)])
    max_step = 3.0 / RATE
    assert np.all(np.abs(np.diff(commands, axis=0)) <= max_step + 1e-12)
    assert np.all(np.abs(commands[0]) <= max_step + 1e-12)
    assert np.all(commands <= 1.0)
    np.testing.assert_allclose(commands[-1], 1.0)
    assert executor.counters.clamped_commands > 0


@pytest.mark.parametrize("blend", ["linear", "temporal_ensemble"])
def test_no_jumps_at_chunk_seams(blend: str) -> None:
    """Each new chunk disagrees with the old one by 0.3 rad; blending spreads the change."""
    executor = make_executor(blend=blend, blend_steps=5)
    executor.set_measured_state(np.zeros(D))
    offsets = iter(np.tile([0.0, 0.3], 50))
    commands = np.array(run(executor, 300, latency=4,
                            chunk_fn=lambda tick: ramp_chunk(tick, offset=next(offsets))))
    steps = np.abs(np.diff(commands[10:], axis=0)).max()
    # Without blending the seam is a 0.3 jump; with it no step exceeds 0.3 / (blend_steps+1)
    # plus the ramp's own 0.01 per tick.
    assert steps <= 0.3 / 6 + 0.01 + 1e-9


def test_without_blending_the_seam_jump_is_visible() -> None:
    executor = make_executor(blend="none")
    executor.set_measured_state(np.zeros(D))
    offsets = iter(np.tile([0.0, 0.3], 50))
    commands = np.array(run(executor, 300, latency=4,
                            chunk_fn=lambda tick: ramp_chunk(tick, offset=next(offsets))))
    assert np.abs(np.diff(commands[10:], axis=0)).max() > 0.25


def test_pause_flushes_and_discards_answers_to_old_requests() -> None:
    executor = make_executor()
    executor.set_measured_state(np.zeros(D))
    request = executor.want_inference()
    assert request is not None
    executor.pause("takeover")
    assert executor.step().command is None               # silent while a human drives
    assert executor.want_inference() is None
    accepted, why = executor.submit(request, ramp_chunk(request.tick), "v1")
    assert not accepted and "flush" in why
    assert executor.counters.discarded_chunks == 1


def test_resume_starts_from_the_measured_state_not_the_old_plan() -> None:
    executor = make_executor(vmax=3.0)
    executor.set_measured_state(np.zeros(D))
    request = executor.want_inference()
    assert request is not None
    executor.submit(request, np.full((50, D), 0.05), "v1")
    for _ in range(10):
        executor.step()
    executor.pause()
    for _ in range(30):
        executor.step()
    human_left_it_at = np.full(D, 0.8)
    executor.resume(human_left_it_at)
    held = executor.step()
    assert held.source == "wait"
    np.testing.assert_array_equal(held.command, human_left_it_at)
    request = executor.want_inference()
    assert request is not None
    executor.submit(request, np.full((50, D), 0.0), "v2")
    first = executor.step().command
    # The first policy command after handback is at most one velocity step from the pose.
    assert first is not None
    assert np.all(np.abs(first - human_left_it_at) <= 3.0 / RATE + 1e-12)


def test_flush_drops_the_current_chunk() -> None:
    executor = make_executor()
    executor.set_measured_state(np.zeros(D))
    run(executor, 30, latency=0)
    executor.flush("reset")
    assert executor.step().source == "wait"
    assert executor.counters.idle_ticks == 0


@settings(max_examples=40, deadline=None)
@given(latency=st.integers(0, 24), execute=st.integers(5, 25),
       blend=st.sampled_from(["none", "linear", "temporal_ensemble"]))
def test_property_no_idle_and_bounded_steps(latency: int, execute: int, blend: str) -> None:
    executor = make_executor(execute=execute, blend=blend, vmax=6.0)
    executor.set_measured_state(np.zeros(D))
    commands = run(executor, 200, latency)
    assert executor.counters.idle_ticks == 0
    array = np.array([c for c in commands if c is not None])
    assert np.all(np.abs(np.diff(array, axis=0)) <= 6.0 / RATE + 1e-12)


def test_observation_needs_fresh_state_and_every_camera() -> None:
    from aloe_ros.policies.task_policy import assemble_observation

    frame = np.zeros((2, 2, 3), np.uint8)
    state = (np.zeros(D), 10.0)
    fresh = {"a": (frame, 10.0), "b": (frame, 9.9)}
    assert assemble_observation(None, fresh, ["a"], 10.0, 0.25, "t") == "no joint state yet"
    assert "joint state is 0.30 s old" in str(
        assemble_observation((np.zeros(D), 9.7), fresh, ["a"], 10.0, 0.25, "t"))
    assert "no image from camera c" in str(
        assemble_observation(state, fresh, ["a", "c"], 10.0, 0.25, "t"))
    stale = {"a": (frame, 10.0), "b": (frame, 9.5)}
    assert "camera b image is 0.50 s old" in str(
        assemble_observation(state, stale, ["a", "b"], 10.0, 0.25, "t"))
    ok = assemble_observation(state, fresh, ["a", "b"], 10.1, 0.25, "pack")
    assert not isinstance(ok, str)
    assert ok.task == "pack" and ok.stamp == 10.0 and set(ok.images) == {"a", "b"}
