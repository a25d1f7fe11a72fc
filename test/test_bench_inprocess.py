"""The in-process collection loop of `bench learning --loop inprocess` (no ROS, no DDS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import stuck_expert

from aloe_ros.benchmarks.inprocess_loop import (
    collect_episodes,
    downsample_factor,
    rollout_assisted,
)
from aloe_ros.benchmarks.learning_report import load_rounds
from aloe_ros.config import load_task_config
from aloe_ros.io.episodes import Episode, load_episode_dir
from aloe_ros.io.transitions import episode_to_transitions
from aloe_ros.policies.base import Observation
from aloe_ros.policies.sim_rollouts import make_sim_robot
from aloe_ros.sim.operator import SimulatedOperator

AloeRos = str(Path(sys.executable).with_name("aloe-ros"))


class HoldingPolicy:
    """Answers every request with 'stay where you are': a policy that never makes progress."""

    chunk_horizon = 50
    version = "hold@1"
    camera_names = ["top", "left_wrist", "right_wrist"]

    def __init__(self, joint_names: list[str]) -> None:
        self.joint_names = joint_names
        self.action_dim = len(joint_names)
        self.requests = 0

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: Observation) -> np.ndarray:
        self.requests += 1
        return np.repeat(observation.state[None].astype(np.float32), self.chunk_horizon, axis=0)

    def sample_chunks(self, observation: Observation, count: int) -> np.ndarray:
        return np.stack([self.predict_chunk(observation) for _ in range(count)])


def small_task(intervention_rate: float):  # type: ignore[no-untyped-def]
    config = load_task_config("pack_phone")
    config.task.episode_timeout_s = 20.0
    config.operator.intervention_rate = intervention_rate
    config.operator.stall_s = 2.0
    return config


def run_one(intervention_rate: float, image_size: tuple[int, int] | None = (48, 64)):  # type: ignore[no-untyped-def]
    config = small_task(intervention_rate)
    policy = HoldingPolicy(list(config.robot.joint_names))
    operator = SimulatedOperator(config, config.operator, np.random.default_rng(0))
    result = rollout_assisted(config, make_sim_robot(config), policy, operator, seed=5,
                              episode_id=3, image_size=image_size)
    return config, policy, result


def test_downsample_factor_only_for_exact_integer_area_ratios() -> None:
    assert downsample_factor((240, 320), (48, 64)) == 5
    assert downsample_factor((480, 640), (48, 64)) == 10
    assert downsample_factor((240, 320), None) == 1
    assert downsample_factor((250, 320), (48, 64)) == 1, "not an exact multiple: keep the frame"
    assert downsample_factor((240, 300), (48, 64)) == 1, "aspect differs: keep the frame"


def test_a_stalled_policy_gets_taken_over_and_the_steps_are_labelled_human() -> None:
    config, policy, result = run_one(intervention_rate=1.0)
    episode = result.episode
    assert result.takeovers >= 1
    assert len(result.takeover_reasons) == result.takeovers
    assert result.takeover_reasons[0].startswith("no progress for"), "a stall, not a drop"
    # it holds still from the start, so the first takeover comes with the lid still on the box
    assert len(result.takeover_stages) == result.takeovers and result.takeover_stages[0] == 0
    assert episode.human.any() and not episode.human[0], "the policy starts, the operator helps"
    assert all(v == "" for v, h in zip(episode.policy_versions, episode.human) if h)
    assert all(v == "hold@1" for v, h in zip(episode.policy_versions, episode.human) if not h)
    # Human targets go through teleop's bounded-speed follower: no jump at the takeover.
    speed = np.minimum(config.joystick.max_joint_speed,
                       np.asarray(config.robot.velocity_limits))
    gripper = [config.robot.joint_names.index(j) for j in config.robot.gripper_joints]
    speed[gripper] = np.minimum(config.joystick.gripper_speed,
                                np.asarray(config.robot.velocity_limits)[gripper])
    first = int(np.argmax(episode.human))
    jump = np.abs(episode.actions[first] - episode.actions[first - 1])
    assert np.all(jump <= speed / config.robot.control_rate_hz + 1e-5)
    assert abs(result.duration_s - len(episode) / config.robot.control_rate_hz) < 1e-6
    # Frames stored at the policy's input size; the learner cuts intervention chunks from it.
    assert episode.images["top"].shape[1:] == (48, 64, 3)
    sources = {t.source for t in episode_to_transitions(
        episode, chunk_length=50, execute_horizon=25, gamma=0.99)}
    assert sources == {"online", "intervention"}
    if result.success:
        assert episode.rewards[-1] == 1.0 and episode.rewards.sum() == 1.0


def test_without_interventions_the_stalled_policy_times_out_alone() -> None:
    config, policy, result = run_one(intervention_rate=0.0, image_size=None)
    assert result.takeovers == 0 and not result.episode.human.any()
    assert result.takeover_reasons == [] and result.takeover_stages == []
    assert not result.success and result.reason == "timeout"
    assert result.episode.rewards.sum() == 0.0
    assert result.episode.images["top"].shape[1:] == (240, 320, 3), "no size given: full frames"
    # Executing 25 of 50 rows per chunk: about one request per 25 ticks.
    assert policy.requests == pytest.approx(len(result.episode) / 25, abs=2)


def test_collect_writes_an_episode_directory_the_trainer_reads(tmp_path: Path) -> None:
    config = small_task(1.0)
    config.task.episode_timeout_s = 4.0
    policy = HoldingPolicy(list(config.robot.joint_names))
    seen: list[int] = []
    results = collect_episodes(config, policy, tmp_path / "eps", episodes=2, seed=10,
                               progress=seen.append)
    assert seen == [1, 2]
    saved = load_episode_dir(tmp_path / "eps")
    assert [e.episode_id for e in saved] == [0, 1]
    assert all(isinstance(e, Episode) and e.metadata["collector"] == "inprocess" for e in saved)
    assert [len(e) for e in saved] == [len(r.episode) for r in results]
    assert all(r.episode.images == {} for r in results), "frames live on disk, not in memory"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bench_learning_inprocess_carries_the_critic_across_rounds(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [AloeRos, "bench", "learning", "--loop", "inprocess", "--method", "aloe",
               "--rounds", "2", "--episodes-per-round", "1", "--seeds", "1",
               "--demo-episodes", "2", "--bc-steps", "5", "--train-updates", "3",
               "--batch-size", "8", "--advantage-beta", "0.05", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=800, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rounds = {r["round"]: r for r in load_rounds(out)}
    assert set(rounds) == {0, 1, 2}
    assert all(r["episodes"] == 1 and r["robot_time_s"] > 0 for r in rounds.values())
    seed_dir = out / "aloe" / "seed0"
    assert list((seed_dir / "round0" / "episodes").glob("episode_*.npz"))
    # Round 1 starts from round 0's critic: its update count continues (3 -> 6).
    meta = json.loads((seed_dir / "round1" / "trained" / "learner" / "learner.json").read_text())
    assert meta["step"] == 6, meta
    assert "critic and optimisers from" in first.stdout
    task = (seed_dir / "round0" / "task.yaml").read_text()
    assert "advantage_beta: 0.05" in task
    assert "collection loop inprocess" in (out / "results.md").read_text()
    # What the trained critic's weights make of the round's takeovers and policy chunks.
    weighed = subprocess.run([AloeRos, "bench", "takeover-weights", str(seed_dir / "round0")],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert weighed.returncode == 0, weighed.stdout[-2000:] + weighed.stderr[-2000:]
    assert "1 episodes scored by aloe" in weighed.stdout
    table = [line for line in weighed.stdout.splitlines()
             if line.startswith("| ") and not line.startswith("| chunks |")]
    assert table and sum(int(line.split("|")[2]) for line in table) > 0
    assert sum(float(line.split("|")[6].strip(" %")) for line in table) == pytest.approx(
        100, abs=len(table))
    missing = subprocess.run([AloeRos, "bench", "takeover-weights", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert missing.returncode == 2 and "task.yaml not found" in missing.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("done earlier") == 3
    # The no-operator evaluation, added to the finished rounds by a rerun (the real rollouts).
    evaluated = subprocess.run([*command, "--eval-episodes", "1"], capture_output=True,
                               text=True, timeout=600, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    assert all(r["autonomous_episodes"] == 1 and sum(r["autonomous_reasons"].values()) == 1
               for r in load_rounds(out))
    assert all(len(e["takeover_stages"]) == e["takeovers"]
               for r in load_rounds(out) for e in r["episode_outcomes"])
    results = (out / "results.md").read_text()
    assert " of 1; failed: " in results
    # The header's time is the rounds' own, not the (short) rerun's.
    rounds_s = sum(r["wall_time_s"] + r["learner_time_s"] for r in load_rounds(out))
    assert f"time in rounds (collection + training, every method and seed) {rounds_s:.0f} s" \
        in results
    # More --rounds extend the finished run: the old evaluation round 2 is trained on (its
    # learner continues from round 1's: 6 -> 9 updates) and round 3 evaluates the result.
    extended = [*command, "--eval-episodes", "1"]
    extended[extended.index("--rounds") + 1] = "3"
    more = subprocess.run(extended, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    meta = json.loads((seed_dir / "round2" / "trained" / "learner" / "learner.json").read_text())
    assert meta["step"] == 9, meta
    rounds = {r["round"]: r for r in load_rounds(out)}
    assert set(rounds) == {0, 1, 2, 3} and rounds[2]["learner_time_s"] > 0
    assert rounds[3]["policy"] == str(seed_dir / "round2" / "trained")
    assert rounds[3]["autonomous_episodes"] == 1


@pytest.mark.parametrize("override, expected", [
    ("learning.no_such_key=1", "no_such_key"),
    ("learning.critic_warmup_updates=lots", "critic_warmup_updates"),
    ("learning", "section.key=value"),
])
def test_a_bad_task_override_stops_before_any_work(tmp_path: Path, override: str,
                                                   expected: str) -> None:
    out = tmp_path / "bench"
    run = subprocess.run([AloeRos, "bench", "learning", "--loop", "inprocess", "--method", "aloe",
                          "--seeds", "1", "--set", override, "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert expected in run.stdout
    assert not (out / "base").exists(), "nothing was built"


def test_overrides_land_in_every_round_config(tmp_path: Path) -> None:
    from aloe_ros.benchmarks.learning import LearningBenchPlan, round_config

    plan = LearningBenchPlan(task="pack_phone", methods=["aloe"], rounds=1, episodes_per_round=1,
                             seeds=[0], out=tmp_path, noise_scale=0.5, advantage_beta=0.05,
                             overrides=["learning.critic_warmup_updates=100"])
    config = load_task_config(round_config(plan, 0, 1, tmp_path))
    assert config.learning.critic_warmup_updates == 100
    assert config.learning.advantage_beta == 0.05
    assert config.policy.noise_scale == 0.5
    assert config.sim.seed == 1


def test_an_episode_depends_only_on_its_seed_not_on_what_ran_before() -> None:
    """The policy's sampling noise is seeded per episode: training (or any other torch use)
    between two collections does not change the episodes a seed gives."""
    import torch
    from policy_fixtures import tiny_builtin

    config = small_task(intervention_rate=0.0)
    config.task.episode_timeout_s = 2.0
    policy = tiny_builtin(config)
    image_size = policy.config.image_size

    def actions(seed: int) -> np.ndarray:
        operator = SimulatedOperator(config, config.operator, np.random.default_rng(0))
        result = rollout_assisted(config, make_sim_robot(config), policy, operator, seed=seed,
                                  episode_id=0, image_size=image_size)
        return result.episode.actions

    first = actions(seed=11)
    torch.randn(1000)                      # e.g. a learner's updates in between
    np.testing.assert_array_equal(actions(seed=11), first)
    assert not np.array_equal(actions(seed=12), first), "the seed must matter"


def test_an_operator_who_gives_up_ends_the_episode_as_a_failure() -> None:
    """Its expert stuck as well, the operator presses failure after give_up_s of driving: the
    episode ends there, instead of recording idle 'human' ticks until the timeout."""
    config = small_task(intervention_rate=1.0)
    config.operator.give_up_s = 3.0
    policy = HoldingPolicy(list(config.robot.joint_names))
    operator = SimulatedOperator(config, config.operator, np.random.default_rng(0))
    stuck_expert(operator)
    result = rollout_assisted(config, make_sim_robot(config), policy, operator, seed=5,
                              episode_id=0, image_size=(48, 64))
    assert not result.success and result.reason.startswith("operator gave up"), result.reason
    assert result.takeovers == 1
    # stall 2 s + reaction, then 3 s driving + reaction: far short of the 20 s timeout
    assert result.duration_s < 7.0
    human_s = result.episode.human.sum() / config.robot.control_rate_hz
    assert human_s == pytest.approx(3.0 + config.operator.reaction_delay_s, abs=0.2)


def test_no_operator_eval_is_added_to_finished_rounds_on_eval_sims_seeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun with --eval-episodes N runs every round's deployed policy alone on eval-sim's
    seeds, saves it in round.json, and does not run it again once saved."""
    from helpers import write_task_config
    from policy_fixtures import tiny_builtin

    import aloe_ros.policies.sim_rollouts as sim_rollouts
    from aloe_ros.benchmarks.learning import LearningBenchPlan, run_method_seed

    out = tmp_path / "bench"
    task = write_task_config(tmp_path)
    config = load_task_config(str(task))
    tiny_builtin(config).save(out / "base" / "seed0" / "policy", version="base@1")
    for index in (0, 1):
        folder = out / "aloe" / "seed0" / f"round{index}"
        folder.mkdir(parents=True)
        (folder / "task.yaml").write_text(task.read_text())
        (folder / "round.json").write_text(json.dumps({
            "method": "aloe", "seed": 0, "round": index, "policy": "p", "episodes": 1,
            "successes": 0, "assisted_successes": 1, "failures": 0, "takeovers": 1,
            "robot_time_s": 30.0, "learner_time_s": 5.0 - 5.0 * index, "wall_time_s": 40.0}))
    tiny_builtin(config).save(out / "aloe" / "seed0" / "round0" / "trained", version="r0@1")

    calls: list[tuple[str, int]] = []

    def fake_rollout(config, robot, policy, seed, episode_id):  # type: ignore[no-untyped-def]
        calls.append((policy.version, seed))
        success = seed % 2 == 0
        return sim_rollouts.RolloutResult(None, success, "success" if success else "timeout",  # type: ignore[arg-type]
                                          10, furthest_stage=2)

    monkeypatch.setattr(sim_rollouts, "rollout_policy", fake_rollout)
    plan = LearningBenchPlan(task=str(task), methods=["aloe"], rounds=1, episodes_per_round=1,
                             seeds=[0], out=out, loop="inprocess", eval_episodes=3)
    lines: list[str] = []
    run_method_seed(plan, "aloe", 0, report=lambda line, transient=False: lines.append(line))
    seeds = [sim_rollouts.FIRST_EVAL_SEED + i for i in range(3)]
    assert calls == [("base@1", s) for s in seeds] + [("r0@1", s) for s in seeds]
    rounds = {r["round"]: r for r in load_rounds(out)}
    for result in rounds.values():
        assert result["autonomous_episodes"] == 3
        assert result["autonomous_successes"] == 2          # the even seeds 100000, 100002
        assert result["autonomous_reasons"] == {"success": 2, "timeout": 1}
        assert result["autonomous_failed_at_stage"] == {"2": 1}   # failures only
        assert result["takeovers"] == 1, "the collected round itself is kept"
    assert sum("done earlier" in line for line in lines) == 2

    calls.clear()
    run_method_seed(plan, "aloe", 0, report=lambda line, transient=False: None)
    assert calls == [], "a saved evaluation is not run again"


def test_a_rerun_with_more_rounds_trains_on_the_old_evaluation_round_and_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--rounds 1 -> 2 on a finished run: round 1 (its evaluation round, collected like any
    other) is trained on, from round 0's learner, and round 2 is collected with that policy."""
    import aloe_ros.benchmarks.learning as bench
    from aloe_ros.benchmarks.learning import LearningBenchPlan, run_method_seed

    out = tmp_path / "bench"
    (out / "base" / "seed0" / "policy").mkdir(parents=True)
    (out / "base" / "seed0" / "policy" / "policy.json").write_text("{}")
    seed_dir = out / "aloe" / "seed0"
    for index in (0, 1):
        folder = seed_dir / f"round{index}"
        folder.mkdir(parents=True)
        (folder / "task.yaml").write_text("kept: true\n")
        (folder / "round.json").write_text(json.dumps({
            "method": "aloe", "seed": 0, "round": index, "policy": "p", "episodes": 1,
            "successes": 0, "assisted_successes": 1, "failures": 0, "takeovers": 1,
            "robot_time_s": 30.0, "learner_time_s": 5.0 - 5.0 * index, "wall_time_s": 40.0}))
    (seed_dir / "round0" / "trained").mkdir()
    (seed_dir / "round0" / "trained" / "policy.json").write_text("{}")

    trained: list[tuple[list[Path], Path, Path, Path | None, Path]] = []
    collected: list[Path] = []

    def fake_train(plan, method, data, init, target, task=None, learner_state=None):  # type: ignore[no-untyped-def]
        trained.append((list(data), init, target, learner_state, Path(task)))
        target.mkdir(parents=True, exist_ok=True)
        (target / "policy.json").write_text("{}")
        return 7.0

    def fake_collect(plan, config_path, policy_dir, episode_dir, result, progress=None):  # type: ignore[no-untyped-def]
        collected.append(policy_dir)
        result.episodes = 1

    monkeypatch.setattr(bench, "train", fake_train)
    monkeypatch.setattr(bench, "collect_inprocess", fake_collect)
    monkeypatch.setattr(bench, "round_config",
                        lambda plan, seed, r, folder: folder / "task.yaml")
    plan = LearningBenchPlan(task="pack_phone", methods=["aloe"], rounds=2,
                             episodes_per_round=1, seeds=[0], out=out, loop="inprocess")
    run_method_seed(plan, "aloe", 0, report=lambda line, transient=False: None)

    assert len(trained) == 1, "round 0 is trained already; only the old evaluation round is new"
    data, init, target, learner_state, task = trained[0]
    assert data == [out / "base" / "seed0" / "demos", seed_dir / "round0" / "episodes",
                    seed_dir / "round1" / "episodes"]
    assert init == seed_dir / "round0" / "trained"
    assert target == seed_dir / "round1" / "trained"
    assert learner_state == seed_dir / "round0" / "trained"
    assert task == seed_dir / "round1" / "task.yaml", "the round keeps its own task YAML"
    assert collected == [seed_dir / "round1" / "trained"]
    rounds = {r["round"]: r for r in load_rounds(out)}
    assert set(rounds) == {0, 1, 2}
    assert rounds[1]["learner_time_s"] == 7.0 and rounds[1]["takeovers"] == 1

    trained.clear()
    collected.clear()
    run_method_seed(plan, "aloe", 0, report=lambda line, transient=False: None)
    assert trained == [] and collected == [], "a finished extension is not run again"
