"""Episode lifecycle: each event exactly once, with the right id; reward from events only."""

from __future__ import annotations

import numpy as np
import pytest
from teleop_helpers import joy

from aloe_ros.config import EpisodeConfig, load_task_config
from aloe_ros.teleop.controller import TeleopController
from aloe_ros.teleop.episode import EpisodeEventKind as K
from aloe_ros.teleop.episode import EpisodeManager, sparse_reward

CONFIG = EpisodeConfig(auto_reset_delay_s=1.0, reset_to_start_s=0.5, startup_delay_s=1.0)


def run(manager: EpisodeManager, t0: float, t1: float, dt: float = 0.1) -> list:
    events = []
    t = t0
    while t <= t1 + 1e-9:
        events += manager.tick(t, ready=True)
        t += dt
    return events


def started(sim: bool = False, timeout_s: float = 10.0) -> tuple[EpisodeManager, list]:
    manager = EpisodeManager(CONFIG, timeout_s, sim=sim)
    return manager, run(manager, 0.0, 2.0)


def test_startup_resets_then_starts_episode_one() -> None:
    manager = EpisodeManager(CONFIG, 10.0, sim=False)
    assert manager.tick(0.0, ready=False) == []
    assert run(manager, 0.0, 0.9) == []              # startup delay
    events = run(manager, 1.0, 2.0)
    assert [(e.kind, e.episode_id) for e in events] == [(K.RESET, 0), (K.START, 1)]


def test_first_episode_waits_for_the_robot_pose() -> None:
    manager = EpisodeManager(CONFIG, 10.0, sim=False)
    for t in np.arange(0.0, 5.0, 0.1):
        assert manager.tick(float(t), ready=False) == []


def test_button_outcome_then_reset_then_next_start_each_once() -> None:
    manager, _ = started()
    events = manager.mark(K.SUCCESS, "button", 3.0)
    events += manager.mark(K.SUCCESS, "button", 3.1)      # pressed again: ignored
    events += manager.mark(K.FAILURE, "button", 3.2)      # a second outcome: ignored
    events += run(manager, 3.0, 6.0)                      # real robot: no auto reset
    assert [(e.kind, e.episode_id, e.reward) for e in events] == [(K.SUCCESS, 1, 1.0)]
    events = manager.reset_button(6.0) + run(manager, 6.0, 7.0)
    events += manager.reset_button(7.0)                   # reset while running = abort
    events += run(manager, 7.0, 8.0)
    assert [(e.kind, e.episode_id) for e in events] == [
        (K.RESET, 1), (K.START, 2), (K.ABORT, 2), (K.RESET, 2), (K.START, 3)]
    assert manager.ignored["success_when_ended"] == 1
    assert manager.ignored["failure_when_ended"] == 1


def test_timeout_is_a_failure_and_the_sim_resets_by_itself() -> None:
    manager, _ = started(sim=True, timeout_s=3.0)
    events = run(manager, 2.0, 10.0)
    kinds = [(e.kind, e.episode_id, e.reason) for e in events]
    assert kinds[:4] == [(K.FAILURE, 1, "timeout"), (K.RESET, 1, "auto reset"),
                         (K.START, 2, "reset"), (K.FAILURE, 2, "timeout")]
    ids = [e.episode_id for e in events if e.kind == K.START]
    assert ids == sorted(set(ids))


def test_detector_outcome_used_on_sim_only_and_stale_ones_ignored() -> None:
    real, _ = started(sim=False)
    assert real.detector(K.SUCCESS, "phone in box", 3.0, 3.0) == []
    sim, _ = started(sim=True)
    assert sim.started_at is not None
    stale = sim.detector(K.FAILURE, "timeout", sim.started_at - 0.2, 3.0)
    assert stale == [] and sim.ignored["detector_stale"] == 1
    events = sim.detector(K.SUCCESS, "phone in box", 3.0, 3.0)
    events += sim.detector(K.SUCCESS, "phone in box", 3.1, 3.1)
    assert [(e.kind, e.episode_id, e.reward, e.reason) for e in events] == [
        (K.SUCCESS, 1, 1.0, "detector: phone in box")]
    assert sim.detector(K.START, "reset", 3.0, 3.0) == []


@pytest.mark.parametrize("kind", list(K))
def test_sparse_reward_is_one_at_success_only(kind: K) -> None:
    assert sparse_reward(kind) == (1.0 if kind == K.SUCCESS else 0.0)


def test_joystick_buttons_drive_the_lifecycle_through_the_controller() -> None:
    config = load_task_config("pack_phone")
    controller = TeleopController(config, sim=False)
    controller.on_joint_state(np.asarray(config.robot.home_position))
    events = []
    t = 0.0
    script = {60: ["success"], 61: ["success"], 80: ["reset"], 120: ["failure"],
              150: ["reset"]}
    for tick in range(200):
        t = tick / 30.0
        events += controller.on_joy(*joy(script.get(tick, [])), t).episodes
        events += controller.tick(t).episodes
    assert [(e.kind, e.episode_id) for e in events] == [
        (K.RESET, 0), (K.START, 1), (K.SUCCESS, 1), (K.RESET, 1), (K.START, 2),
        (K.FAILURE, 2), (K.RESET, 2), (K.START, 3)]
