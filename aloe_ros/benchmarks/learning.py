"""`aloe-ros bench learning`: the full ROS loop in the sim, in rounds, per method and seed.

Per seed, a weak base policy is made once (scripted demos -> a short behaviour cloning run).
Per method and seed, each round *deploys* the current policy in the real node graph (sim robot,
simulated operator, teleop/mux, chunk inference, recorder: all processes talking over DDS),
*collects* N episodes into a rosbag, then *trains* offline on every bag of that run plus the
demos with ``aloe-ros train --method M`` starting from the current actor; the trained actor is
deployed in the next round. The last round only evaluates.

Every round writes ``round.json``; a rerun skips finished rounds (interrupted runs resume).
Success counts an episode only when the policy succeeded without any takeover.

With ``eval_episodes`` > 0 each round's deployed policy also runs that many seeded episodes
alone (no operator, the episodes of ``aloe-ros eval-sim``): the collection rounds count a
slow-but-succeeding policy as assisted once the operator takes over, this measure does not.
A rerun with a larger ``eval_episodes`` adds it to finished rounds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aloe_ros.config import load_task_config

__all__ = ["LearningBenchPlan", "RoundResult", "run_plan"]

log = logging.getLogger(__name__)
GRAPH_NODES = ("sim_robot", "operator", "teleop", "chunk_inference", "logger")


@dataclass
class LearningBenchPlan:
    task: str
    methods: list[str]
    rounds: int
    episodes_per_round: int
    seeds: list[int]
    out: Path
    demo_episodes: int = 20
    bc_steps: int = 300
    train_updates: int = 300
    intervention_rate: float = 1.0
    threads: int = 1
    # ros: the node graph over DDS in real time; inprocess: the same actors in one process.
    loop: str = "ros"
    batch_size: int = 0           # learner batch (0: learning.batch_size of the task)
    # learning.advantage_beta for ALOE and AWR (None: the task's). Sparse 0/1 rewards with
    # gamma = 0.99 give advantages of ~0.05-0.1, so beta = 1 weights everything ~1.
    advantage_beta: float | None = None
    # policy.noise_scale of the deployed (and critic-evaluated) policy (None: the task's).
    noise_scale: float | None = None
    # How the base policy's demos are recorded: "teleop" through the joystick path at the
    # task's teleop speeds, as the simulated operator drives its takeovers (demos and
    # interventions are then one behaviour); "direct": the expert commands the robot itself.
    demos: str = "teleop"
    # Further task-YAML overrides for every round, "section.key=value" (value parsed as YAML).
    overrides: list[str] = field(default_factory=list)
    # Episodes per round of the deployed policy alone, no operator (0: none); see the docstring.
    eval_episodes: int = 0


@dataclass
class RoundResult:
    method: str
    seed: int
    round: int
    policy: str
    episodes: int = 0
    successes: int = 0            # success without any takeover
    assisted_successes: int = 0   # success with at least one takeover
    failures: int = 0
    takeovers: int = 0
    robot_time_s: float = 0.0
    learner_time_s: float = 0.0
    wall_time_s: float = 0.0
    episode_outcomes: list[dict[str, Any]] = field(default_factory=list)
    # The same policy alone (no operator), on the seeded episodes of `aloe-ros eval-sim`.
    autonomous_episodes: int = 0
    autonomous_successes: int = 0
    autonomous_reasons: dict[str, int] = field(default_factory=dict)
    # Its failures by the furthest task stage they reached (sim.operator.task_stage, as JSON
    # keys): where the policy gets stuck.
    autonomous_failed_at_stage: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def successes_per_hour(self) -> float:
        return 3600.0 * self.successes / self.robot_time_s if self.robot_time_s else 0.0

    def add_episode(self, outcome: dict[str, Any]) -> None:
        """Count one finished episode (``success``, ``takeovers``, ``duration_s`` keys)."""
        self.episodes += 1
        self.robot_time_s += outcome["duration_s"]
        self.takeovers += outcome["takeovers"]
        if outcome["success"] and outcome["takeovers"] == 0:
            self.successes += 1
        elif outcome["success"]:
            self.assisted_successes += 1
        else:
            self.failures += 1
        self.episode_outcomes.append(outcome)


def _cli(argv: list[str]) -> None:
    from aloe_ros.cli import main

    code = main(argv)
    if code != 0:
        raise RuntimeError(f"aloe-ros {' '.join(argv)} failed with exit code {code}")


def base_policy(plan: LearningBenchPlan, seed: int) -> Path:
    """Scripted demos and a short BC run: the weak starting actor of every method."""
    folder = plan.out / "base" / f"seed{seed}"
    policy = folder / "policy"
    if (policy / "policy.json").is_file():
        return policy
    demos = folder / "demos"
    # The rounds' task YAML (with every --set), so e.g. the cameras of the demos are the ones
    # the rounds record.
    folder.mkdir(parents=True, exist_ok=True)
    task = str(round_config(plan, seed, 0, folder))
    _cli(["sim-demos", "--task", task, "--episodes", str(plan.demo_episodes),
          "--out", str(demos), "--seed", str(seed * 10_000),
          *(["--teleop"] if plan.demos == "teleop" else [])])
    _cli(["train-bc", str(demos), "--out", str(policy), "--task", task,
          "--steps", str(plan.bc_steps), "--seed", str(seed), "--threads", str(plan.threads)])
    return policy


def round_config(plan: LearningBenchPlan, seed: int, round_index: int, folder: Path) -> Path:
    """The task YAML for one collection round: the bench graph, seeded, operator marking."""
    source = Path(load_task_config(plan.task).source_path)
    data = yaml.safe_load(source.read_text())
    data["nodes"] = [n for n in data["nodes"] if n["name"] in GRAPH_NODES]
    data.setdefault("sim", {})["seed"] = seed * 1000 + round_index
    data.setdefault("operator", {}).update(intervention_rate=plan.intervention_rate, seed=seed)
    # Outcomes come from the simulated operator's buttons, as they would from a person.
    data.setdefault("episode", {})["outcome_from_detector"] = "never"
    recording = data.setdefault("recording", {})
    recording["enabled"] = True
    # The sim's privileged state, so `bench value-quality --bags` can restore logged states.
    if plan.noise_scale is not None:
        data.setdefault("policy", {})["noise_scale"] = plan.noise_scale
    if plan.advantage_beta is not None:
        data.setdefault("learning", {})["advantage_beta"] = plan.advantage_beta
    for override in plan.overrides:
        apply_override(data, override)
    extras = recording.setdefault("extra_topics", [])
    if "/aloe/sim/state" not in extras:
        extras.append("/aloe/sim/state")
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def apply_override(data: dict[str, Any], override: str) -> None:
    """``section.key=value`` into a task YAML dict; the loader then checks key and type."""
    path, sep, raw = override.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not sep or not keys:
        raise ValueError(f"--set {override!r}: expected section.key=value")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {override!r}: {key} is not a section")
        node = child
    node[keys[-1]] = yaml.safe_load(raw)


def check_plan(plan: LearningBenchPlan) -> None:
    """Build and load one round's task YAML up front: a bad --set stops before any work."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        load_task_config(round_config(plan, plan.seeds[0], 0, Path(tmp)))


def collect(plan: LearningBenchPlan, config_path: Path, policy: Path, bag_dir: Path,
            result: RoundResult, progress: Any = None) -> None:
    """Run the node graph with ``policy`` until N episodes ended; fill ``result``."""
    from aloe_ros.benchmarks.episode_watch import EpisodeWatcher
    from aloe_ros.runner import GraphRunner

    config = load_task_config(config_path)
    watcher = EpisodeWatcher(config)
    runner = GraphRunner(config, sim=True, record=True,
                         overrides={"record_dir": str(bag_dir), "policy_path": str(policy)})
    budget_s = plan.episodes_per_round * (config.task.episode_timeout_s + 10.0) + 60.0
    start = time.monotonic()
    lines: list[str] = []
    reported = 0
    try:
        # The recorder first, so the first episode's START is in the bag.
        runner.start(lambda: "logger" in watcher.status_nodes)
        while len(watcher.finished) < plan.episodes_per_round:
            for line in runner.poll():
                lines.append(line)
                log.warning("bench graph: %s", line)
            if time.monotonic() - start > budget_s:
                raise RuntimeError(f"round did not finish {plan.episodes_per_round} episodes in "
                                   f"{budget_s:.0f} s; node events: {lines[-5:]}")
            if progress is not None and len(watcher.finished) != reported:
                reported = len(watcher.finished)
                progress(reported)
            time.sleep(0.2)
        # Let the recorder take the last outcome and the reset before everything stops.
        settle = time.monotonic() + 2.0
        while time.monotonic() < settle:
            runner.poll()
            time.sleep(0.2)
    finally:
        runner.stop()
        watcher.close()
    result.wall_time_s = time.monotonic() - start
    for episode in watcher.finished[: plan.episodes_per_round]:
        result.add_episode(episode)


def collect_inprocess(plan: LearningBenchPlan, config_path: Path, policy_dir: Path,
                      episode_dir: Path, result: RoundResult, progress: Any = None) -> None:
    """The same round without the transport (benchmarks.inprocess_loop); fills ``result``."""
    import torch

    from aloe_ros.benchmarks.inprocess_loop import collect_episodes
    from aloe_ros.policies.task_policy import load_task_policy

    torch.set_num_threads(max(1, plan.threads))
    config = load_task_config(config_path)
    policy = load_task_policy(config, str(policy_dir))
    start = time.monotonic()
    # Episode seeds follow the round's sim seed, as the node graph's sim would.
    episodes = collect_episodes(config, policy, episode_dir, episodes=plan.episodes_per_round,
                                seed=config.sim.seed * 1000, progress=progress)
    result.wall_time_s = time.monotonic() - start
    for episode in episodes:
        result.add_episode({"success": episode.success, "reason": episode.reason,
                            "takeovers": episode.takeovers, "duration_s": episode.duration_s,
                            "takeover_reasons": episode.takeover_reasons,
                            "takeover_stages": episode.takeover_stages})


def evaluate_autonomous(config_path: Path, policy_dir: Path, episodes: int, result: RoundResult,
                        *, threads: int = 1, progress: Any = None) -> None:
    """``episodes`` closed-loop episodes of the policy alone; fills ``result.autonomous_*``.

    The episodes of ``aloe-ros eval-sim --policy DIR --episodes N`` with the round's task YAML
    (one evaluation loop, ``sim_rollouts.evaluate_policy``, serves both).
    """
    import torch

    from aloe_ros.policies.sim_rollouts import RolloutResult, evaluate_policy
    from aloe_ros.policies.task_policy import load_task_policy

    torch.set_num_threads(max(1, threads))
    config = load_task_config(config_path)
    policy = load_task_policy(config, str(policy_dir))
    successes, reasons, failed_at = 0, {}, {}

    def count(i: int, rollout: RolloutResult) -> None:
        nonlocal successes
        successes += int(rollout.success)
        reasons[rollout.reason] = reasons.get(rollout.reason, 0) + 1
        if not rollout.success:
            stage = str(rollout.furthest_stage)
            failed_at[stage] = failed_at.get(stage, 0) + 1
        if progress is not None:
            progress(i + 1, successes)

    evaluate_policy(config, policy, episodes, on_episode=count)
    result.autonomous_episodes = episodes
    result.autonomous_successes = successes
    result.autonomous_reasons = reasons
    result.autonomous_failed_at_stage = failed_at


def train(plan: LearningBenchPlan, method: str, data: list[Path], init: Path, out: Path,
          task: Path | str | None = None, learner_state: Path | None = None) -> float:
    """Offline training of ``method`` on ``data`` from actor ``init``; returns seconds.

    ``task``: the round's task YAML (its learning section), default the plan's task.
    ``learner_state``: the previous round's output, whose critic and optimisers carry over
    (the paper keeps one critic across rounds; a fresh one per round would relearn from zero).
    """
    start = time.monotonic()
    extra = ["--batch-size", str(plan.batch_size)] if plan.batch_size > 0 else []
    if learner_state is not None and (learner_state / "learner" / "state.pt").is_file():
        extra += ["--init-learner", str(learner_state)]
    _cli(["train", *map(str, data), "--out", str(out), "--task", str(task or plan.task),
          "--policy", str(init),
          "--method", method, "--updates", str(plan.train_updates), "--no-plots",
          # Every round retrains from its episodes; a replay copy per round was 0.4 GB by
          # round 2 and nothing reads it.
          "--no-replay", "--threads", str(plan.threads), *extra])
    return time.monotonic() - start


def round_data(plan: LearningBenchPlan, root: Path, up_to_round: int) -> list[Path]:
    """Every round's recordings so far: bag directories (ros) or episode directories."""
    if plan.loop == "inprocess":
        return [root / f"round{q}" / "episodes" for q in range(up_to_round + 1)]
    return sorted(p for q in range(up_to_round + 1)
                  for p in (root / f"round{q}" / "bags").iterdir() if p.is_dir())


def kept_round_config(plan: LearningBenchPlan, seed: int, round_index: int,
                      folder: Path) -> Path:
    """A finished round's task YAML as it was collected with (written now if it has none),
    so later work on the round (training it, evaluating it) uses the round's own settings."""
    task_yaml = folder / "task.yaml"
    return task_yaml if task_yaml.is_file() else round_config(plan, seed, round_index, folder)


def train_round(plan: LearningBenchPlan, method: str, root: Path, round_index: int,
                demos: Path, policy: Path, task_yaml: Path, report: Any, tag: str) -> float:
    """Train on every round's data so far, carrying the previous round's learner over."""
    recordings = round_data(plan, root, round_index)
    report(f"{tag}: training {method} on {len(recordings)} recording(s) + demos")
    previous = root / f"round{round_index - 1}" / "trained" if round_index > 0 else None
    return train(plan, method, [demos, *recordings], policy,
                 root / f"round{round_index}" / "trained", task_yaml, previous)


def run_method_seed(plan: LearningBenchPlan, method: str, seed: int,
                    report: Any = print) -> list[RoundResult]:
    """All rounds of one method and seed, resuming from finished rounds."""
    root = plan.out / method / f"seed{seed}"
    policy = base_policy(plan, seed)
    demos = plan.out / "base" / f"seed{seed}" / "demos"
    results: list[RoundResult] = []
    for r in range(plan.rounds + 1):   # rounds of learning, then one evaluation round
        folder = root / f"round{r}"
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder / "round.json"
        tag = f"[{method} seed {seed}] round {r}"
        if saved.is_file():
            result = RoundResult(**json.loads(saved.read_text()))
            report(f"{tag}: done earlier ({result.successes}/{result.episodes} successes)")
            if r < plan.rounds and not (folder / "trained" / "policy.json").is_file():
                # A finished run rerun with more --rounds: its evaluation round was collected
                # the same way as a training round, so it is trained on and the run goes on.
                result.learner_time_s = train_round(plan, method, root, r, demos, policy,
                                                    kept_round_config(plan, seed, r, folder),
                                                    report, tag)
                saved.write_text(json.dumps(asdict(result), indent=1))
        else:
            result = RoundResult(method, seed, r, str(policy))
            report(f"{tag}: collecting {plan.episodes_per_round} episodes with {policy}")

            def progress(done: int, tag: str = tag) -> None:
                report(f"{tag}: {done}/{plan.episodes_per_round} episodes", transient=True)

            task_yaml = round_config(plan, seed, r, folder)
            if plan.loop == "inprocess":
                collect_inprocess(plan, task_yaml, policy, folder / "episodes", result,
                                  progress=progress)
            else:
                collect(plan, task_yaml, policy, folder / "bags", result, progress=progress)
            if r < plan.rounds:
                result.learner_time_s = train_round(plan, method, root, r, demos, policy,
                                                    task_yaml, report, tag)
            saved.write_text(json.dumps(asdict(result), indent=1))
            report(f"{tag}: {result.successes}/{result.episodes} successes without takeover, "
                   f"{result.assisted_successes} assisted, {result.takeovers} takeovers, "
                   f"learner {result.learner_time_s:.0f} s")
        if plan.eval_episodes > result.autonomous_episodes:
            def eval_progress(done: int, successes: int, tag: str = tag) -> None:
                report(f"{tag}: no-operator eval {done}/{plan.eval_episodes} "
                       f"({successes} successes)", transient=True)

            evaluate_autonomous(kept_round_config(plan, seed, r, folder), policy,
                                plan.eval_episodes, result, threads=plan.threads,
                                progress=eval_progress)
            saved.write_text(json.dumps(asdict(result), indent=1))
            report(f"{tag}: no operator: {result.autonomous_successes}/"
                   f"{result.autonomous_episodes} successes")
        results.append(result)
        if r < plan.rounds:
            policy = folder / "trained"
    return results


def run_plan(plan: LearningBenchPlan, report: Any = print) -> list[RoundResult]:
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "plan.json").write_text(json.dumps(
        {**asdict(plan), "out": str(plan.out)}, indent=1))
    results: list[RoundResult] = []
    for seed in plan.seeds:
        for method in plan.methods:
            results += run_method_seed(plan, method, seed, report)
    return results
