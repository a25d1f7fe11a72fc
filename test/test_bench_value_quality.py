"""Value quality: ground truth from sim snapshots (known answers) and the bench command (tiny)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from aloe_ros.benchmarks.value_quality import (
    SimSnapshot,
    TakeoverWatch,
    ground_truth_value,
    logged_chunks,
    make_snapshotting_robot,
    replay_then_policy,
    stage_start_times,
)
from aloe_ros.config import TaskFile, load_task_config
from aloe_ros.policies.base import Observation
from aloe_ros.policies.sim_rollouts import record_expert_episode
from aloe_ros.sim.operator import task_progress

IMAGE_SIZE = (24, 32)


class NeverCalledPolicy:
    """A current policy that must not be asked: the chunk itself decides the episode."""

    chunk_horizon = 50
    version = "never"

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        raise AssertionError("the policy was queried after a chunk that ended the episode")


class ReplayPolicy:
    """Plays back a logged action sequence from the observation's episode time (a scripted
    'current policy' whose outcome from any restored state is known)."""

    version = "replay"

    def __init__(self, actions: np.ndarray, rate_hz: float, chunk_horizon: int = 50) -> None:
        self.actions = actions
        self.rate_hz = rate_hz
        self.chunk_horizon = chunk_horizon
        self.calls = 0

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        self.calls += 1
        step = int(round(observation.stamp * self.rate_hz))
        index = np.minimum(np.arange(step, step + self.chunk_horizon), len(self.actions) - 1)
        return self.actions[index]


class HoldPolicy:
    """Commands the measured joints: the arms stop where they are (no progress, a stall)."""

    chunk_horizon = 50
    version = "hold"

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        return np.repeat(np.asarray(observation.state)[None], self.chunk_horizon, axis=0)


@pytest.fixture(scope="module")
def config() -> TaskFile:
    config = load_task_config("pack_phone")
    config.policy.blend = "none"          # the executor passes the replayed rows unchanged
    return config


@pytest.fixture(scope="module")
def expert_episode(config: TaskFile):  # type: ignore[no-untyped-def]
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    result = record_expert_episode(config, robot, seed=3, episode_id=0)
    assert result.success
    return result.episode, list(robot.snapshots)


def test_snapshot_per_step_and_json_round_trip(config: TaskFile, expert_episode) -> None:  # type: ignore[no-untyped-def]
    episode, snapshots = expert_episode
    assert len(snapshots) == len(episode)
    assert episode.images["top"].shape[1:3] == IMAGE_SIZE   # stored downsampled
    middle = snapshots[len(snapshots) // 2]
    again = SimSnapshot.from_json(json.loads(json.dumps(middle.to_json())))
    assert again == middle
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    again.restore(robot)
    np.testing.assert_allclose(robot.positions, middle.positions)
    assert robot.scene.objects["phone"].held_by == middle.objects["phone"]["held_by"]
    assert robot.outcome is None


def test_snapshot_from_the_published_sim_state(config: TaskFile, expert_episode) -> None:  # type: ignore[no-untyped-def]
    """The /aloe/sim/state JSON + joint positions restore the objects, grasps and clock."""
    episode, snapshots = expert_episode
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    snapshots[len(snapshots) // 2].restore(robot)
    state = json.loads(json.dumps(robot.privileged_state()))
    snapshot = SimSnapshot.from_sim_state(state, robot.positions)
    other = make_snapshotting_robot(config, IMAGE_SIZE)
    snapshot.restore(other)
    for name, obj in robot.scene.objects.items():
        np.testing.assert_allclose(other.scene.objects[name].position, obj.position, atol=1e-4)
        assert other.scene.objects[name].held_by == obj.held_by
    np.testing.assert_allclose(other.target, robot.positions)
    assert other.episode_time_s == pytest.approx(robot.episode_time_s, abs=1e-4)


def test_replaying_the_logged_actions_reproduces_the_episode(config: TaskFile,
                                                             expert_episode) -> None:  # type: ignore[no-untyped-def]
    """The sim is deterministic given commands: from the snapshot at t, the logged actions end
    the episode in success on the logged last tick, so the return is gamma^(T-1-t)."""
    episode, snapshots = expert_episode
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    gamma = config.learning.gamma
    steps = len(episode)
    for t in (0, steps // 3, steps - 10):
        value, ticks, reason = replay_then_policy(config, robot, snapshots[t],
                                                  episode.actions[t:], None, gamma)
        assert reason == "phone in box"
        assert ticks == steps - t
        assert value == pytest.approx(gamma ** (steps - 1 - t))


def test_chunk_that_completes_the_task_has_value_gamma_to_the_k(config: TaskFile,
                                                                 expert_episode) -> None:  # type: ignore[no-untyped-def]
    episode, snapshots = expert_episode
    chunks = logged_chunks(episode, snapshots, config)
    last = chunks[-1]
    assert last.done and last.start + last.valid_steps == len(episode)
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    truth = ground_truth_value(config, robot, last.snapshot,
                               last.actions[:last.valid_steps], NeverCalledPolicy(),  # type: ignore[arg-type]
                               rollouts=3)
    gamma = config.learning.gamma
    assert truth.value == pytest.approx(gamma ** (last.valid_steps - 1))
    assert truth.value == pytest.approx(last.mc_return)
    assert len(truth.returns) == 1          # decided inside the chunk: no repeated rollouts
    # A chunk that does not end the episode: the logged return is the behaviour's, from t.
    first = chunks[0]
    assert not first.done and first.mc_return == pytest.approx(gamma ** (len(episode) - 1))


def test_scripted_policy_from_a_restored_state_gets_the_known_value(config: TaskFile,
                                                                    expert_episode) -> None:  # type: ignore[no-untyped-def]
    """Ground truth with a 'current policy' that replays the expert: executes the logged chunk,
    then the policy finishes the task exactly as logged -> gamma^(T-1-t)."""
    episode, snapshots = expert_episode
    chunks = logged_chunks(episode, snapshots, config)
    chunk = chunks[1]
    policy = ReplayPolicy(episode.actions, config.robot.control_rate_hz)
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    truth = ground_truth_value(config, robot, chunk.snapshot,
                               chunk.actions[:chunk.valid_steps], policy,  # type: ignore[arg-type]
                               rollouts=2)
    assert policy.calls > 0
    assert truth.successes == 2
    assert truth.value == pytest.approx(config.learning.gamma ** (len(episode) - 1 - chunk.start))
    # A policy that never moves again from there cannot succeed: value 0 (timeout).
    frozen = ReplayPolicy(chunk.actions[chunk.valid_steps - 1:chunk.valid_steps],
                          config.robot.control_rate_hz)
    saved = config.task.episode_timeout_s
    config.task.episode_timeout_s = chunk.snapshot.time_s + 2.0
    try:
        robot = make_snapshotting_robot(config, IMAGE_SIZE)
        stuck = ground_truth_value(config, robot, chunk.snapshot,
                                   chunk.actions[:chunk.valid_steps], frozen,  # type: ignore[arg-type]
                                   rollouts=1)
    finally:
        config.task.episode_timeout_s = saved
    assert stuck.value == 0.0 and stuck.successes == 0


@pytest.fixture
def penalised(config: TaskFile) -> TaskFile:
    """The task with a takeover penalty: the truth is the learner's penalised return."""
    penalised = copy.deepcopy(config)
    penalised.learning.takeover_penalty = 1.0
    penalised.operator.stall_s = 2.0
    penalised.operator.reaction_delay_s = 0.2
    return penalised


def test_stage_start_times_follow_the_logged_stages(expert_episode) -> None:  # type: ignore[no-untyped-def]
    _, snapshots = expert_episode
    since = stage_start_times(snapshots)
    stages = [task_progress(s.objects, s.scene) for s in snapshots]
    assert len(set(stages)) >= 3, "the expert passes through the stages"
    assert since[0] == snapshots[0].time_s
    for t in range(1, len(snapshots)):
        expected = since[t - 1] if stages[t] == stages[t - 1] else snapshots[t].time_s
        assert since[t] == expected


def test_with_a_takeover_penalty_a_stalled_policy_is_worth_the_penalty_at_the_takeover(
        penalised: TaskFile, expert_episode) -> None:  # type: ignore[no-untyped-def]
    """The operator watches the rollout: a policy that stops is taken over stall_s after the
    stage was reached (plus the reaction delay), and the rollout is worth -p gamma^(n-1). The
    stall clock comes from the logged episode: a stage reached earlier, an earlier takeover."""
    episode, snapshots = expert_episode
    config = penalised
    rate = config.robot.control_rate_hz
    stages = [task_progress(s.objects, s.scene) for s in snapshots]
    chunk = next(c for c in logged_chunks(episode, snapshots, config)[1:]
                 if len(set(stages[c.start:c.start + c.valid_steps + 1])) == 1)
    actions = chunk.actions[:chunk.valid_steps]
    frozen = HoldPolicy()
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    gamma, start = config.learning.gamma, chunk.snapshot.time_s
    ticks = {}
    for earlier_s in (0.0, 0.5):
        value, n, reason = replay_then_policy(config, robot, chunk.snapshot, actions, frozen,
                                              gamma, TakeoverWatch(config, 1.0),
                                              stage_since_s=start - earlier_s)
        assert reason == "takeover"
        assert value == pytest.approx(-gamma ** (n - 1))
        expected = (config.operator.stall_s - earlier_s + config.operator.reaction_delay_s) * rate
        assert abs(n - expected) <= 2, (n, expected)
        ticks[earlier_s] = n
    assert abs(ticks[0.0] - ticks[0.5] - 0.5 * rate) <= 1
    # ground_truth_value does the same from the chunk's own stall clock; no penalty: timeout.
    truth = ground_truth_value(config, robot, chunk.snapshot, actions, frozen, rollouts=2,
                               stage_since_s=start)
    assert truth.returns == [pytest.approx(-gamma ** (ticks[0.0] - 1))] * 2
    assert truth.successes == 0


def test_with_a_takeover_penalty_a_finishing_policy_keeps_its_value(
        penalised: TaskFile, expert_episode) -> None:  # type: ignore[no-untyped-def]
    """The expert's own actions as the current policy progress faster than the stall clock:
    the operator never takes over and the value is gamma^(T-1-t), as without the penalty."""
    episode, snapshots = expert_episode
    penalised.operator.stall_s = 10.0
    chunk = logged_chunks(episode, snapshots, penalised)[1]
    robot = make_snapshotting_robot(penalised, IMAGE_SIZE)
    truth = ground_truth_value(penalised, robot, chunk.snapshot,
                               chunk.actions[:chunk.valid_steps],
                               ReplayPolicy(episode.actions, penalised.robot.control_rate_hz),  # type: ignore[arg-type]
                               rollouts=1, stage_since_s=chunk.stage_since_s)
    gamma = penalised.learning.gamma
    assert truth.value == pytest.approx(gamma ** (len(episode) - 1 - chunk.start))


def test_a_policy_chunk_cut_by_a_takeover_is_worth_its_logged_penalty(
        penalised: TaskFile, expert_episode) -> None:  # type: ignore[no-untyped-def]
    """As the learner's transition: -p gamma^(k-1), terminal, nothing rolled out."""
    episode, snapshots = expert_episode
    horizon = penalised.policy.execute_horizon
    takeover = horizon + 10   # the policy drives until here, then the human
    human = np.zeros(len(episode), dtype=bool)
    human[takeover:] = True
    versions = ["v1" if not h else "" for h in human]
    assisted = replace(episode, human=human, policy_versions=versions, source="online")
    chunks = logged_chunks(assisted, snapshots, penalised)
    cut = next(c for c in chunks if c.start + c.valid_steps == takeover)
    assert cut.cut_by_takeover and cut.done and cut.valid_steps == 10
    gamma = penalised.learning.gamma
    assert cut.reward == pytest.approx(-gamma ** 9)
    assert cut.mc_return == pytest.approx(-gamma ** 9), "the policy's return ends there"
    assert not any(c.cut_by_takeover for c in chunks if c is not cut)
    robot = make_snapshotting_robot(penalised, IMAGE_SIZE)
    truth = ground_truth_value(penalised, robot, cut.snapshot, cut.actions[:cut.valid_steps],
                               NeverCalledPolicy(), rollouts=4,  # type: ignore[arg-type]
                               cut_by_takeover=cut.cut_by_takeover)
    assert truth.returns == [pytest.approx(cut.reward)]


def test_with_a_takeover_penalty_the_logged_policy_episodes_are_operator_watched(
        tmp_path: Path) -> None:
    """The critics learned the penalised return from episodes the operator watched: the
    logged ones are recorded the same way (takeovers, the human's steps, one snapshot per
    step), so their stall clocks are ones the critics can have seen."""
    from policy_fixtures import tiny_builtin

    from aloe_ros.benchmarks.value_quality_run import (
        ValueQualityPlan,
        load_logged,
        record_data,
    )

    data = yaml.safe_load((Path(load_task_config("pack_phone").source_path)).read_text())
    data["task"]["episode_timeout_s"] = 3.0
    data["learning"]["takeover_penalty"] = 1.0
    data["operator"] = {**data.get("operator", {}), "stall_s": 0.5, "reaction_delay_s": 0.1}
    task = tmp_path / "penalised.yaml"
    task.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_task_config(task)
    tiny_builtin(config).save(tmp_path / "base", version="tiny")
    plan = ValueQualityPlan(task=str(task), out=tmp_path / "vq", demo_episodes=1,
                            policy_episodes=1, base_policy=tmp_path / "base")
    messages: list[str] = []
    record_data(plan, config, messages.append)
    (episode, snapshots), = load_logged(tmp_path / "vq" / "data" / "policy")
    assert episode.human.any() and not episode.human[0], "the operator took over"
    assert len(snapshots) == len(episode)
    assert "the simulated operator watching" in messages[-1]
    chunks = logged_chunks(episode, snapshots, config)
    assert any(c.cut_by_takeover for c in chunks)


def test_split_half_reliability_of_the_ground_truth() -> None:
    from aloe_ros.benchmarks.value_quality_run import split_half_reliability

    # Rollouts that agree (each chunk's even and odd rollouts alike): reliability 1.
    agreeing = [[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.5, 0.5], [0.9, 0.9], [0.3]]
    assert split_half_reliability(agreeing) == pytest.approx(1.0)
    # Halves that rank the chunks in opposite orders: negative, reported as it is.
    crossed = [[0.0, 0.9, 0.0, 0.9], [0.5, 0.5, 0.5, 0.5], [0.9, 0.0, 0.9, 0.0]]
    assert split_half_reliability(crossed) == pytest.approx(-1.0)
    # Otherwise the half's Spearman, stepped up to the full count by 2r / (1 + r).
    noisy = [[0.0, 0.2, 0.1, 0.0], [0.4, 0.1, 0.5, 0.3], [0.9, 0.6, 0.8, 0.9], [0.3, 0.6]]
    half = 0.8   # spearman([0.05, 0.45, 0.85, 0.3], [0.1, 0.2, 0.75, 0.6])
    assert split_half_reliability(noisy) == pytest.approx(2 * half / (1 + half))
    assert np.isnan(split_half_reliability([[0.1], [0.4]])), "one rollout each: no halves"


def test_tie_free_ceiling_is_one_without_ties_and_drops_with_them() -> None:
    from aloe_ros.benchmarks.value_quality_run import tie_free_ceiling

    assert tie_free_ceiling(np.array([0.1, 0.4, 0.2, 0.9])) == pytest.approx(1.0)
    mostly_zero = np.array([0.0] * 12 + [0.3, 0.6, 0.9, 0.5])
    ceiling = tie_free_ceiling(mostly_zero)
    assert 0.5 < ceiling < 0.9
    assert ceiling == tie_free_ceiling(mostly_zero), "seeded: the same table every run"


def test_bench_value_quality_command_tiny_budget(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The whole pipeline with a tiny budget: data, three trainings, ground truth, table."""
    from aloe_ros.benchmarks.critic_scores import load_scorer
    from aloe_ros.benchmarks.value_quality_run import (
        ValueQualityPlan,
        load_logged,
        sample_chunks,
    )
    from aloe_ros.cli import main

    data = yaml.safe_load((Path(load_task_config("pack_phone").source_path)).read_text())
    data["task"]["episode_timeout_s"] = 2.0
    data["learning"].update(ensemble_size=2, critic_width=16, critic_image_size=16,
                            batch_size=4, value_samples=1)
    task = tmp_path / "tiny.yaml"
    task.write_text(yaml.safe_dump(data, sort_keys=False))
    run = tmp_path / "vq"
    argv = ["bench", "value-quality", "--run", str(run), "--task", str(task), "--chunks", "4",
            "--rollouts", "1", "--demo-episodes", "1", "--policy-episodes", "1",
            "--bc-steps", "2", "--train-updates", "2"]
    assert main(argv) == 0
    rows = json.loads((run / "eval" / "value_quality.json").read_text())
    predictions = {(r["method"], r["prediction"]) for r in rows}
    assert {("aloe", "Q min"), ("td1", "Q min"), ("awr_mc", "R + g^k V(o')"),
            ("awr_mc", "V(o)")} <= predictions
    assert all(r["chunks"] == 4 and np.isfinite(r["mae"]) for r in rows)
    table = (run / "eval" / "value_quality.md").read_text()
    assert "| aloe | Q min | 4 |" in table and "Spearman, truth > 0" in table
    assert "| aloe | 4 |" in table and "tie-free ceiling" in table   # the ground truth's table
    assert all("tie_free_ceiling" in r and "truth_reliability" in r for r in rows)
    for method in ("aloe", "td1", "awr_mc"):
        truth = json.loads((run / "eval" / f"truth_{method}.json").read_text())
        assert len(truth["values"]) == 4
        assert truth["policy_version"].startswith(f"pack_phone-{method}-2-")
    assert len(load_logged(run / "data" / "policy")) == 1

    # Scoring follows each trainer's definition: td1 sees only the chunk's first step.
    config = load_task_config(task)
    plan = ValueQualityPlan(task=str(task), out=run, chunks=4)
    chunks = sample_chunks(plan, config)
    td1 = load_scorer(config, run / "train" / "td1")
    aloe = load_scorer(config, run / "train" / "aloe")
    before_td1, before_aloe = td1.score(chunks)["Q min"], aloe.score(chunks)["Q min"]
    for chunk in chunks:
        chunk.actions = chunk.actions.copy()
        chunk.actions[1:] += 0.5
        chunk.valid_steps = max(chunk.valid_steps, 2)
    np.testing.assert_allclose(td1.score(chunks)["Q min"], before_td1, rtol=1e-5, atol=1e-6)
    assert not np.allclose(aloe.score(chunks)["Q min"], before_aloe)

    # Resumable: a rerun reuses data, critics and cached ground truth.
    stamp = (run / "train" / "aloe" / "learner" / "learner.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (run / "train" / "aloe" / "learner" / "learner.json").stat().st_mtime_ns == stamp

    # --trained scores an existing training output (e.g. a bench round's) instead of training.
    other = tmp_path / "vq_trained"
    trained_argv = ["bench", "value-quality", "--run", str(other), "--task", str(task),
                    "--chunks", "4", "--rollouts", "1", "--demo-episodes", "1",
                    "--policy-episodes", "1", "--base-policy", str(run / "base"),
                    "--method", "aloe", "--trained", f"aloe={run / 'train' / 'aloe'}"]
    assert main(trained_argv) == 0
    assert not (other / "train").exists(), "nothing trained"
    truth = json.loads((other / "eval" / "truth_aloe.json").read_text())
    assert truth["policy_version"] == json.loads(
        (run / "eval" / "truth_aloe.json").read_text())["policy_version"]
    header = (other / "eval" / "value_quality.md").read_text().splitlines()[0]
    assert "critics from --trained; aloe scored from" in header and "trained here" not in header
    wrong = [*trained_argv[:-1], f"aloe={run / 'train' / 'td1'}"]
    assert main(wrong) == 2, "a td1 learner is not an ALOE critic"
    assert main([*trained_argv[:-1], f"td1={run / 'train' / 'td1'}"]) == 2, "not in --method"
    # A bench round's critic trained with a takeover penalty values another return than this
    # --task's truth: refused, naming the round's task YAML to pass instead.
    import shutil

    bench_round = tmp_path / "bench_round"
    shutil.copytree(run / "train" / "aloe", bench_round / "trained")
    data["learning"]["takeover_penalty"] = 1.0
    (bench_round / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert main([*trained_argv[:-1], f"aloe={bench_round / 'trained'}"]) == 2
    assert f"pass --task {bench_round / 'task.yaml'}" in capsys.readouterr().out


def test_snapshots_from_a_bag_with_the_sim_state(tmp_path: Path) -> None:
    """Bag mode: each control row gets the newest /aloe/sim/state logged before it, its joint
    positions and the previous command as servo target."""
    from bag_synth import DT_NS, T0_NS, EpisodePlan, small_camera_overrides, write_synthetic_bag
    from helpers import write_task_config
    from std_msgs.msg import String

    from aloe_ros.benchmarks.bag_snapshots import (
        SIM_STATE_TOPIC,
        logged_from_bags,
        restore_fidelity,
    )

    config = load_task_config(write_task_config(tmp_path, overrides=small_camera_overrides()))
    plans = [EpisodePlan(steps=40, takeover_at=None, handback_at=None, version="v1")]
    extra = []
    for k in range(-2, 40):   # one state per control step, just before its observation
        state = {"scene": "pack_phone", "episode": 1, "time_s": k / 30.0, "outcome": None,
                 "objects": {"phone": {"position": [0.001 * k, 0.3, 0.0], "held_by": None},
                             "lid": {"position": [-0.1, 0.3, 0.06], "held_by": None},
                             "box": {"position": [-0.1, 0.3, 0.0], "held_by": None}}}
        t_ns = T0_NS + DT_NS + k * DT_NS - 4_000_000
        extra.append((SIM_STATE_TOPIC, "std_msgs/msg/String", t_ns, String(data=json.dumps(state))))
    write_synthetic_bag(tmp_path / "bag", config, plans, extra=extra)
    (episode, snapshots), = logged_from_bags([tmp_path / "bag"], config, (24, 32))
    assert len(snapshots) == len(episode) == 40
    for k in (0, 7, 39):
        assert snapshots[k].time_s == pytest.approx(k / 30.0)
        assert snapshots[k].objects["phone"]["position"][0] == pytest.approx(0.001 * k)
        np.testing.assert_allclose(snapshots[k].positions, episode.states[k], rtol=1e-6)
    np.testing.assert_allclose(snapshots[7].target, episode.actions[6], rtol=1e-6)
    chunks = logged_chunks(episode, snapshots, config)
    assert [c.start for c in chunks][:2] == [0, config.policy.execute_horizon]
    fidelity = restore_fidelity([(episode, snapshots)], config)
    assert fidelity["chunks"] == len(chunks) - 1      # the last one ended the episode
    assert fidelity["max_joint_error_rad"] >= fidelity["median_joint_error_rad"] >= 0.0


def test_a_bag_without_the_sim_state_is_refused_with_the_fix(tmp_path: Path) -> None:
    from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag
    from helpers import write_task_config

    from aloe_ros.benchmarks.bag_snapshots import read_sim_states

    config = load_task_config(write_task_config(tmp_path, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp_path / "bag", config, [EpisodePlan(steps=5, takeover_at=None,
                                                               handback_at=None)])
    with pytest.raises(ValueError, match="extra_topics"):
        read_sim_states(tmp_path / "bag")
