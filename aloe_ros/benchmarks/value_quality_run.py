"""``aloe-ros bench value-quality``: the pipeline around the ground-truth estimator (no ROS).

Under ``--run DIR`` (resumable: each stage skips what is on disk):

1. ``data/demos``: scripted-expert demonstrations, recorded with a sim snapshot per step;
2. ``base/``: a short behaviour-cloning run on them (the weak policy that collects), unless a
   base policy is given;
3. ``data/policy``: closed-loop episodes of the base policy, with snapshots (the logged data);
   or, with ``bags``, recordings of the sim that carry ``/aloe/sim/state`` (bag_snapshots.py);
4. ``train/<method>``: ``aloe-ros train --method M`` on demos + logged episodes, starting from
   the base actor. Its actor is that method's *current* policy: it changed once since the data
   was collected, so a value of the behaviour is not a value of the current policy;
5. ``eval/``: N sampled logged chunks; per method, its critic's predictions and the ground truth
   Q^{pi_M} from R rollouts of its own current actor (``truth_<method>.json`` caches them);
   ``value_quality.json`` and ``value_quality.md`` hold the table.

By default the logged chunks are produced without ROS (sim_rollouts with exact snapshots);
bags give chunks logged by the real node graph, restored from the recorded sim state.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aloe_ros.benchmarks.value_quality import (
    LoggedChunk,
    SimSnapshot,
    ground_truth_value,
    logged_chunks,
    make_snapshotting_robot,
)
from aloe_ros.config import TaskFile, load_task_config
from aloe_ros.io.episodes import Episode

__all__ = ["ValueQualityPlan", "correlation_table", "run_value_quality"]

log = logging.getLogger(__name__)
CRITIC_METHODS = ("aloe", "td1", "awr_mc")
IMAGE_SIZE = (48, 64)   # the built-in actor's input; recorded frames are stored at this size


@dataclass
class ValueQualityPlan:
    task: str
    out: Path
    methods: list[str] = field(default_factory=lambda: list(CRITIC_METHODS))
    base_policy: Path | None = None
    demo_episodes: int = 6
    bc_steps: int = 300
    policy_episodes: int = 6
    train_updates: int = 300
    batch_size: int | None = None
    chunks: int = 32
    rollouts: int = 4
    seed: int = 0
    threads: int = 1
    bags: list[Path] = field(default_factory=list)
    # method -> an existing `aloe-ros train --out` directory (e.g. a learning bench round's
    # `trained/`): its critic and actor are scored as they are, instead of training one here.
    trained: dict[str, Path] = field(default_factory=dict)


def _cli(argv: list[str]) -> None:
    from aloe_ros.cli import main

    code = main(argv)
    if code != 0:
        raise RuntimeError(f"aloe-ros {' '.join(argv)} failed with exit code {code}")


def _save_episode(folder: Path, episode: Episode, snapshots: list[SimSnapshot]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"episode_{episode.episode_id:05d}"
    (folder / f"{stem}.snapshots.json").write_text(
        json.dumps([s.to_json() for s in snapshots]))
    episode.save(folder / f"{stem}.npz")


def load_logged(folder: Path) -> list[tuple[Episode, list[SimSnapshot]]]:
    out = []
    for path in sorted(folder.glob("episode_*.npz")):
        snapshots = json.loads(path.with_suffix(".snapshots.json").read_text())
        out.append((Episode.load(path), [SimSnapshot.from_json(s) for s in snapshots]))
    return out


def record_data(plan: ValueQualityPlan, config: TaskFile, report: Callable[[str], None]) -> None:
    """Stages 1-3: demos with snapshots, the base policy, the base policy's episodes."""
    from aloe_ros.benchmarks.inprocess_loop import rollout_assisted
    from aloe_ros.policies.checkpoint import load_policy
    from aloe_ros.policies.sim_rollouts import record_expert_episode, rollout_policy
    from aloe_ros.sim.operator import SimulatedOperator

    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    demos = plan.out / "data" / "demos"
    if not any(demos.glob("*.npz")):
        for i in range(plan.demo_episodes):
            result = record_expert_episode(config, robot, seed=plan.seed * 10_000 + i,
                                           episode_id=i)
            _save_episode(demos, result.episode, robot.snapshots)
        report(f"recorded {plan.demo_episodes} demonstrations")
    base = plan.base_policy or plan.out / "base"
    if not (base / "policy.json").is_file():
        _cli(["train-bc", str(demos), "--out", str(base), "--task", str(config.source_path),
              "--steps", str(plan.bc_steps), "--seed", str(plan.seed),
              "--threads", str(plan.threads)])
    logged = plan.out / "data" / "policy"
    if not plan.bags and not any(logged.glob("*.npz")):
        policy = load_policy(base)
        # With a takeover penalty the truth depends on the operator's stall clock, which the
        # critics learned from operator-watched episodes: log those, not ones where the policy
        # stalls unwatched for half a minute (their truth would be a takeover right away).
        operator = (SimulatedOperator(config, config.operator,
                                      np.random.default_rng(config.operator.seed))
                    if config.learning.takeover_penalty > 0 else None)
        successes = takeovers = 0
        for i in range(plan.policy_episodes):
            seed = plan.seed * 10_000 + 500 + i
            if operator is not None:
                assisted = rollout_assisted(config, robot, policy, operator, seed=seed,
                                            episode_id=1000 + i)
                episode, success = assisted.episode, assisted.success and not assisted.takeovers
                takeovers += assisted.takeovers
            else:
                result = rollout_policy(config, robot, policy, seed=seed, episode_id=1000 + i,
                                        record_images=True)
                episode, success = result.episode, result.success
            successes += int(success)
            # The operator's failure press ends an episode after that tick's render.
            _save_episode(logged, episode, robot.snapshots[:len(episode)])
        report(f"base policy: {successes}/{plan.policy_episodes} successes in the logged "
               "episodes" + (f", the simulated operator watching ({takeovers} takeovers)"
                             if operator is not None else ""))


def train_methods(plan: ValueQualityPlan, config: TaskFile, report: Callable[[str], None]
                  ) -> dict[str, Path]:
    """Stage 4: one ``aloe-ros train`` per method, from the base actor, on all logged data."""
    base = plan.base_policy or plan.out / "base"
    data = [plan.out / "data" / "demos", *(plan.bags or [plan.out / "data" / "policy"])]
    out: dict[str, Path] = {}
    for method in plan.methods:
        if method in plan.trained:
            out[method] = trained_checkpoint(plan.trained[method], method, config)
            continue
        folder = plan.out / "train" / method
        if not (folder / "learner" / "learner.json").is_file():
            report(f"training {method} ({plan.train_updates} updates)")
            argv = ["train", *map(str, data), "--out", str(folder), "--task",
                    str(config.source_path), "--policy", str(base), "--method", method,
                    "--updates", str(plan.train_updates), "--no-plots",
                    "--threads", str(plan.threads)]
            if plan.batch_size:
                argv += ["--batch-size", str(plan.batch_size)]
            _cli(argv)
        out[method] = folder
    return out


def trained_checkpoint(folder: Path, method: str, config: TaskFile | None = None) -> Path:
    """A given training output of ``method``; ValueError naming the problem otherwise.

    A bench learning round keeps its task YAML beside ``trained/``: when ``config`` values a
    different return than that round's critic was trained on (``learning.takeover_penalty``),
    the scores would compare two quantities, so that is refused too."""
    meta_path = folder / "learner" / "learner.json"
    if not meta_path.is_file():
        raise ValueError(f"--trained {method}={folder}: no learner/learner.json (not an "
                         "`aloe-ros train --out` directory)")
    found = json.loads(meta_path.read_text()).get("method")
    if found != method:
        raise ValueError(f"--trained {method}={folder}: its learner was trained as {found!r}")
    round_task = folder.parent / "task.yaml"
    if config is not None and round_task.is_file():
        trained_penalty = load_task_config(round_task).learning.takeover_penalty
        if trained_penalty != config.learning.takeover_penalty:
            raise ValueError(
                f"--trained {method}={folder}: trained with learning.takeover_penalty "
                f"{trained_penalty:g} ({round_task}), --task has "
                f"{config.learning.takeover_penalty:g}; the ground truth must value the same "
                f"return: pass --task {round_task}")
    return folder


def sample_chunks(plan: ValueQualityPlan, config: TaskFile) -> list[LoggedChunk]:
    """N chunks drawn uniformly (seeded) from all logged episodes, demos and policy alike."""
    logged = load_logged(plan.out / "data" / "demos")
    if plan.bags:
        from aloe_ros.benchmarks.bag_snapshots import logged_from_bags, restore_fidelity

        from_bags = logged_from_bags(plan.bags, config, IMAGE_SIZE)
        fidelity = restore_fidelity(from_bags, config)
        (plan.out / "eval").mkdir(parents=True, exist_ok=True)
        (plan.out / "eval" / "restore_fidelity.json").write_text(json.dumps(fidelity, indent=1))
        logged += from_bags
    else:
        logged += load_logged(plan.out / "data" / "policy")
    every: list[LoggedChunk] = []
    for episode, snapshots in logged:
        every += logged_chunks(episode, snapshots, config)
    rng = np.random.default_rng(plan.seed)
    picks = rng.choice(len(every), size=min(plan.chunks, len(every)), replace=False)
    return [every[i] for i in sorted(picks)]


def chunk_key(chunk: LoggedChunk) -> str:
    return f"{chunk.episode_id}:{chunk.start}"


def ground_truths(plan: ValueQualityPlan, config: TaskFile, method: str, actor: Any,
                  chunks: list[LoggedChunk], report: Callable[[str], None]
                  ) -> list[list[float]]:
    """Per chunk, the discounted return of each rollout of pi_M (their mean is Q^{pi_M}).

    Cached in eval/truth_<method>.json (resumable, per chunk); the cache is for one actor
    version, rollout count and takeover penalty, anything else starts it afresh. A chunk
    decided inside its logged steps has one rollout (every rollout would repeat it)."""
    cache_path = plan.out / "eval" / f"truth_{method}.json"
    cache: dict[str, Any] = (json.loads(cache_path.read_text()) if cache_path.is_file()
                             else {})
    version = str(getattr(actor, "version", ""))
    # The penalty changes what a chunk is worth (the operator watches the rollouts).
    penalty = config.learning.takeover_penalty
    if (cache.get("rollouts") != plan.rollouts or cache.get("policy_version") != version
            or cache.get("takeover_penalty", 0.0) != penalty):
        cache = {"rollouts": plan.rollouts, "policy_version": version,
                 "takeover_penalty": penalty, "values": {}}
    robot = make_snapshotting_robot(config, IMAGE_SIZE)
    returns: list[list[float]] = []
    for i, chunk in enumerate(chunks):
        key = chunk_key(chunk)
        if key not in cache["values"]:
            truth = ground_truth_value(config, robot, chunk.snapshot,
                                       chunk.actions[:chunk.valid_steps], actor,
                                       rollouts=plan.rollouts, seed=plan.seed + i,
                                       stage_since_s=chunk.stage_since_s,
                                       cut_by_takeover=chunk.cut_by_takeover)
            cache["values"][key] = asdict(truth)
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache))
            report(f"{method}: ground truth {i + 1}/{len(chunks)} = {truth.value:.3f} "
                   f"({truth.successes}/{len(truth.returns)} successes)")
        returns.append([float(v) for v in cache["values"][key]["returns"]])
    return returns


def _spearman(prediction: np.ndarray, truth: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(truth) < 2 or np.ptp(truth) == 0 or np.ptp(prediction) == 0:
        return math.nan   # a constant column has no ranking
    return float(spearmanr(prediction, truth).statistic)


def split_half_reliability(returns: list[list[float]]) -> float:
    """How well the ground truth agrees with itself: the Spearman between the means of the
    even and the odd rollouts of every chunk, stepped up to the full count (Spearman-Brown,
    2r / (1 + r), for r > 0). A decided chunk (one rollout) counts the same in both halves.
    NaN without a chunk of two or more rollouts."""
    if not any(len(r) > 1 for r in returns):
        return math.nan
    even = np.array([np.mean(r[0::2]) for r in returns])
    odd = np.array([np.mean(r[1::2]) if len(r) > 1 else r[0] for r in returns])
    half = _spearman(even, odd)
    # The step-up assumes halves that agree at all; a negative half is reported as it is.
    return half if math.isnan(half) or half <= 0 else 2.0 * half / (1.0 + half)


def tie_free_ceiling(truth: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """The Spearman a critic would score if it ranked every chunk exactly as the truth does,
    breaking the truth's ties at random (a continuous prediction has no ties): mean over
    ``draws``. Below 1 when many chunks share a true value, e.g. 0 for every hopeless chunk."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(draws):
        order = np.lexsort((rng.random(len(truth)), truth))
        ranks = np.empty(len(truth))
        ranks[order] = np.arange(len(truth))
        scores.append(_spearman(ranks, truth))
    return float(np.mean(scores))


def evaluate(plan: ValueQualityPlan, config: TaskFile, checkpoints: dict[str, Path],
             report: Callable[[str], None]) -> list[dict[str, Any]]:
    """Stage 5: one row per (method, prediction): Spearman, MAE and means against truth."""
    from aloe_ros.benchmarks.critic_scores import load_scorer

    chunks = sample_chunks(plan, config)
    logged_return = np.array([c.mc_return for c in chunks])
    rows: list[dict[str, Any]] = []
    for method, folder in checkpoints.items():
        scorer = load_scorer(config, folder)
        returns = ground_truths(plan, config, method, scorer.actor, chunks, report)
        truth = np.array([np.mean(r) for r in returns])
        achievable = truth > 0
        # The same for every prediction of a method: what its ground truth allows.
        ceilings = {"truth_reliability": split_half_reliability(returns),
                    "tie_free_ceiling": tie_free_ceiling(truth)}
        predictions = scorer.score(chunks)
        predictions["logged return G_t (reference)"] = logged_return
        for name, prediction in predictions.items():
            rows.append({
                "method": method, "prediction": name, "chunks": len(chunks),
                "spearman": _spearman(prediction, truth),
                "spearman_nonzero": (_spearman(prediction[achievable], truth[achievable])
                                     if achievable.sum() >= 3 else math.nan),
                "mae": float(np.mean(np.abs(prediction - truth))),
                "mean_prediction": float(np.mean(prediction)),
                "mean_truth": float(np.mean(truth)), "truth_std": float(np.std(truth)),
                "truth_nonzero": int(np.sum(achievable)), **ceilings,
            })
    return rows


def correlation_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the rows of :func:`evaluate`."""
    def num(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.3f}"

    lines = ["| method | prediction | chunks | Spearman | Spearman, truth > 0 | MAE | mean pred "
             "| mean truth | truth > 0 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['prediction']} | {r['chunks']} | "
                     f"{num(r['spearman'])} | {num(r.get('spearman_nonzero', math.nan))} | "
                     f"{num(r['mae'])} | {num(r['mean_prediction'])} | "
                     f"{num(r['mean_truth'])} | {r['truth_nonzero']} |")
    lines += ["", "What each method's ground truth allows (the same chunks, that method's actor):",
              "", "| method | chunks | truth > 0 | truth's split-half reliability | "
              "tie-free ceiling |", "|---|---|---|---|---|"]
    seen: set[str] = set()
    for r in rows:
        if r["method"] in seen:
            continue
        seen.add(r["method"])
        lines.append(f"| {r['method']} | {r['chunks']} | {r['truth_nonzero']} | "
                     f"{num(r.get('truth_reliability', math.nan))} | "
                     f"{num(r.get('tie_free_ceiling', math.nan))} |")
    return "\n".join(lines)


def run_value_quality(plan: ValueQualityPlan, report: Callable[[str], None] = print
                      ) -> list[dict[str, Any]]:
    """All stages; writes eval/value_quality.json and eval/value_quality.md."""
    config = load_task_config(plan.task)
    backend = getattr(config.sim, "backend", "builtin")
    if backend != "builtin":
        raise ValueError(f"value quality needs the built-in sim (snapshots of its state); "
                         f"sim.backend is {backend!r}")
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "plan.json").write_text(json.dumps(
        {**asdict(plan), "out": str(plan.out), "bags": [str(b) for b in plan.bags],
         "trained": {m: str(p) for m, p in plan.trained.items()},
         "base_policy": str(plan.base_policy) if plan.base_policy else None}, indent=1))
    record_data(plan, config, report)
    checkpoints = train_methods(plan, config, report)
    rows = evaluate(plan, config, checkpoints, report)
    folder = plan.out / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "value_quality.json").write_text(json.dumps(rows, indent=1))
    (folder / "value_quality.md").write_text(correlation_table(rows) + "\n")
    return rows
