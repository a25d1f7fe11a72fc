"""Learner orchestration: replay + trainer + checkpoints, resume, the worker's schedules, and
the live episode builder."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from helpers import write_task_config
from learning_doubles import ConstantPolicy, load_constant_policy, make_episode

from aloe_ros.config import load_task_config
from aloe_ros.learning.checkpoints import latest_checkpoint
from aloe_ros.learning.learner import Learner, LearnerWorker
from aloe_ros.learning.live_episodes import LiveEpisodeBuilder
from aloe_ros.learning.replay import ReplayError

torch.set_num_threads(1)
CAMERAS = ("top", "left_wrist", "right_wrist")
TINY = {"ensemble_size": 2, "critic_width": 16, "critic_image_size": 8, "batch_size": 8,
        "value_samples": 2, "episodes_per_round": 2, "updates_per_round": 3,
        "min_replay_transitions": 1, "publish_every_updates": 4,
        "checkpoint_every_updates": 2}


def task(tmp_path, **learning):  # type: ignore[no-untyped-def]
    path = write_task_config(tmp_path, overrides={
        "policy": {"chunk_horizon": 4, "execute_horizon": 2},
        "learning": {**TINY, "checkpoint_dir": str(tmp_path / "ckpt"), **learning}})
    return load_task_config(str(path))


def episode(i: int, **kwargs) -> object:  # type: ignore[no-untyped-def]
    return make_episode(8, episode_id=i, action_dim=14, cameras=CAMERAS, **kwargs)


def new_learner(config, **kwargs) -> Learner:  # type: ignore[no-untyped-def]
    return Learner.create(config, actor_loader=load_constant_policy,
                          new_actor=lambda: ConstantPolicy(4, 14, cameras=CAMERAS), **kwargs)


def test_train_checkpoint_and_resume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = task(tmp_path)
    learner = new_learner(config)
    learner.add_episode(episode(0, versions=["p@1"] * 8))
    learner.add_episode(episode(1, source="demo", human=[True] * 8))
    assert learner.replay.counts_by_source() == {"online": 4, "demo": 4}
    metrics = learner.train(5)
    assert {"losses/critic", "losses/actor"} <= set(metrics)
    info = learner.checkpoint()
    assert info.step == 5 and info.version.startswith("pack_phone-aloe-5-")
    assert (info.path / "const_policy.pt").is_file()
    assert latest_checkpoint(tmp_path / "ckpt") == info.path.resolve()
    meta = json.loads((info.path / "learner" / "learner.json").read_text())
    assert meta["step"] == 5 and meta["method"] == "aloe"

    resumed = new_learner(config)
    assert resumed.trainer.step == 5
    assert len(resumed.replay) == len(learner.replay)
    batch = learner.replay.episode_batch(0)
    assert torch.equal(resumed.trainer.critic(batch.observation, batch.actions),  # type: ignore[attr-defined]
                       learner.trainer.critic(batch.observation, batch.actions))  # type: ignore[attr-defined]
    assert resumed.trainer.actor.version == info.version


def test_evaluate_episode_gives_stats_per_chunk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    learner = new_learner(task(tmp_path))
    stats = learner.evaluate_episode(episode(3, versions=["p@1"] * 8))
    assert [s.start for s in stats] == [0, 2, 4, 6]
    assert all(np.isfinite([s.q_mean, s.q_std, s.value, s.advantage]).all() for s in stats)
    assert stats[1].stamp == pytest.approx(0.2) and stats[1].policy_version == "p@1"
    assert len(learner.replay) == 0                       # evaluation stores nothing


@pytest.mark.parametrize("schedule", ["rounds", "continuous"])
def test_worker_trains_and_announces_checkpoints(tmp_path, schedule) -> None:  # type: ignore[no-untyped-def]
    learner = new_learner(task(tmp_path, schedule=schedule))
    announced, stats, errors = [], [], []
    done = threading.Event()

    def on_checkpoint(info) -> None:  # type: ignore[no-untyped-def]
        announced.append(info)
        done.set()

    worker = LearnerWorker(learner, on_checkpoint=on_checkpoint, on_stats=stats.extend,
                           on_error=errors.append)
    worker.start()
    try:
        worker.submit_for_stats(episode(0))
        worker.submit_episode(episode(0))
        worker.submit_episode(episode(1))
        worker.submit_episode(make_episode(8, episode_id=9, cameras=("bad",), action_dim=14))
        assert done.wait(60), errors
    finally:
        worker.stop()
    assert not worker.thread.is_alive()
    assert announced[0].step == (3 if schedule == "rounds" else 4)
    assert worker.counters["episodes_rejected"] == 1 and "rejected" in errors[0]
    assert len(stats) >= 4                               # the partial episode's chunks


def test_worker_survives_a_failing_update(tmp_path) -> None:  # type: ignore[no-untyped-def]
    learner = new_learner(task(tmp_path, schedule="continuous"))
    real_train = learner.train
    calls = {"n": 0}

    def flaky(updates, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_train(updates, **kwargs)

    learner.train = flaky  # type: ignore[method-assign]
    errors: list[str] = []
    published = threading.Event()
    worker = LearnerWorker(learner, on_checkpoint=lambda info: published.set(),
                           on_stats=lambda stats: None, on_error=errors.append)
    worker.start()
    try:
        worker.submit_episode(episode(0))
        assert published.wait(60), errors
    finally:
        worker.stop()
    assert worker.counters["errors"] == 1 and "out of memory" in errors[0]


def test_live_builder_rows_flags_and_outcomes() -> None:
    builder = LiveEpisodeBuilder("t", ["a", "b"], ["top"], 10.0, image_size=(4, 4))
    builder.on_episode_event(0, episode_id=7)
    builder.on_command(0.0, np.zeros(2))                 # no observation yet: dropped
    builder.on_joint_state(np.ones(2))
    builder.on_image("top", np.zeros((16, 16, 3), np.uint8))
    builder.on_chunk("p@3")
    for step in range(4):
        if step == 2:
            builder.on_intervention(0)                  # TAKEOVER
        builder.on_command(0.1 * step, np.full(2, step))
    partial = builder.snapshot(from_step=1)
    assert partial is not None and len(partial) == 3 and partial.success is None
    finished = builder.on_episode_event(1, reward=1.0)  # SUCCESS
    assert finished is not None and finished.episode_id == 7 and finished.success is True
    assert finished.human.tolist() == [False, False, True, True]
    assert finished.policy_versions == ["p@3", "p@3", "", ""]
    assert finished.rewards.tolist() == [0, 0, 0, 1.0]
    assert finished.images["top"].shape == (4, 4, 4, 3)
    assert builder.dropped_rows == 1 and builder.rows is None
    # A new START without an outcome leaves the previous episode truncated.
    builder.on_command(1.0, np.zeros(2))
    builder.on_command(1.1, np.zeros(2))
    truncated = builder.on_episode_event(0)
    assert truncated is not None and truncated.success is None and truncated.episode_id == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["aloe", "dagger"])
def test_a_learner_state_resumes_on_cuda(tmp_path, method: str) -> None:  # type: ignore[no-untyped-def]
    """`bench learning --set learning.device=cuda` starts round 1 from round 0's learner state,
    loaded with map_location="cuda"; the trainer's CPU generator state came back as a CUDA
    tensor and set_state refused it. Run on a lent GPU; skipped where there is none."""
    from policy_fixtures import tiny_builtin

    from aloe_ros.learning.checkpoints import load_trainer_state, write_checkpoint
    from aloe_ros.learning.factory import build_trainer

    config = load_task_config("pack_phone")
    config.learning.method = method
    first = build_trainer(config, tiny_builtin(config), device="cuda")
    first.generator.manual_seed(7)
    write_checkpoint(tmp_path, first, version_prefix="t")
    resumed = build_trainer(config, tiny_builtin(config), device="cuda")
    load_trainer_state(tmp_path, resumed, map_location="cuda")
    assert torch.equal(resumed.generator.get_state(), first.generator.get_state())


def test_resume_cuts_new_episodes_with_the_configs_stride(tmp_path) -> None:  # type: ignore[no-untyped-def]
    learner = new_learner(task(tmp_path))             # stride 0: one transition per chunk
    learner.add_episode(episode(0, versions=["p@1"] * 8))
    learner.train(2)
    learner.checkpoint()
    saved = len(learner.replay)

    resumed = new_learner(task(tmp_path, transition_stride=1))
    assert len(resumed.replay) == saved                # saved rows kept as they were cut
    assert resumed.replay.spec.stride == 1
    resumed.add_episode(episode(1, versions=["p@1"] * 8))
    assert len(resumed.replay) - saved == 8            # the new episode: a row per step


@pytest.mark.parametrize(("overrides", "key"), [
    ({"learning": {"gamma": 0.9}}, "learning.gamma"),
    ({"policy": {"chunk_horizon": 4, "execute_horizon": 1}}, "policy.execute_horizon"),
    ({"learning": {"method": "td1"}}, "policy.execute_horizon"),
])
def test_resume_refuses_a_replay_cut_with_other_settings(tmp_path, overrides, key) -> None:  # type: ignore[no-untyped-def]
    learner = new_learner(task(tmp_path))
    learner.add_episode(episode(0, versions=["p@1"] * 8))
    learner.train(2)
    learner.checkpoint()
    files = sorted(p.name for p in (tmp_path / "ckpt" / "replay").iterdir())

    config = task(tmp_path, **overrides.get("learning", {}))
    if "policy" in overrides:
        config.policy.execute_horizon = overrides["policy"]["execute_horizon"]
    with pytest.raises(ReplayError, match=key.replace(".", r"\.")):
        new_learner(config)
    assert sorted(p.name for p in (tmp_path / "ckpt" / "replay").iterdir()) == files
