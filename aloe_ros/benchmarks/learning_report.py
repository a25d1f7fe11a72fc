"""Results of `aloe-ros bench learning`: a markdown table and a success-per-round plot."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["MergedRuns", "ReportError", "autonomous_rates", "load_rounds", "merge_runs",
           "plan_summary", "results_table", "rounds_time_s", "seed_table", "success_plot"]

# Plan fields that may differ between runs merged into one table: which methods and seeds a
# run holds, where it lives, how its no-operator eval and training threads were set.
PER_RUN_FIELDS = ("methods", "seeds", "out", "eval_episodes", "threads")
# Fields that only matter to some methods (HG-DAgger has no advantage).
METHOD_FIELDS = {"advantage_beta": ("aloe", "td1", "awr_mc")}


# The sim's outcome reason when an episode runs out of time (sim/robot.py).
TIMEOUT_REASON = "timeout"


class ReportError(ValueError):
    """Runs that cannot share one table (a method and seed twice, or other settings)."""


def load_rounds(out: Path) -> list[dict[str, Any]]:
    """Every finished round under a bench output directory."""
    rounds = []
    for path in sorted(out.glob("*/seed*/round*/round.json")):
        rounds.append(json.loads(path.read_text()))
    return rounds


def plan_summary(plan: dict[str, Any]) -> str:
    """One line of a run's budget, as the bench's own header states it."""
    budget = (f"{plan['rounds']} training rounds + 1 eval, {plan['episodes_per_round']} "
              f"episodes per round, base BC {plan['bc_steps']} steps on "
              f"{plan['demo_episodes']} {plan.get('demos', 'teleop')} demos, "
              f"{plan['train_updates']} learner updates per round")
    if plan.get("batch_size"):
        budget += f" (batch {plan['batch_size']})"
    if plan.get("advantage_beta") is not None:
        budget += f", advantage beta {plan['advantage_beta']:g}"
    elif set(plan.get("methods", [])) & set(METHOD_FIELDS["advantage_beta"]):
        budget += ", the task's advantage beta"
    if plan.get("noise_scale") is not None:
        budget += f", noise scale {plan['noise_scale']:g}"
    budget += "".join(f", {o}" for o in plan.get("overrides", []))
    return f"{budget}, collection loop {plan.get('loop', 'ros')}"


def _settings(plan: dict[str, Any], method: str) -> dict[str, Any]:
    return {k: v for k, v in plan.items() if k not in PER_RUN_FIELDS
            and method in METHOD_FIELDS.get(k, (method,))}


def rounds_time_s(rounds: list[dict[str, Any]]) -> float:
    """Collection plus training time of finished rounds (what the runs cost, resumed or not)."""
    return sum(r["wall_time_s"] + r["learner_time_s"] for r in rounds)


class MergedRuns(NamedTuple):
    rounds: list[dict[str, Any]]
    lines: list[str]         # per run: its methods, seeds and budget
    tasks: list[str]         # the runs' tasks, sorted, each once


def merge_runs(runs: list[Path], labels: dict[Path, str] | None = None) -> MergedRuns:
    """Rounds of several `bench learning` output directories, for one table.

    Each method must have the same settings (its ``plan.json``, less seeds and the like) in
    every run that holds it, and each method and seed may come from one run only; otherwise
    ReportError says which. ``labels`` names a run's rows (e.g. "aloe, beta 0.1" for a run
    with another advantage beta): its rounds count as that method, so variants of one method
    share a table.
    """
    labels = labels or {}
    tasks: set[str] = set()
    rounds: list[dict[str, Any]] = []
    settings: dict[str, tuple[Path, dict[str, Any]]] = {}
    origin: dict[tuple[str, int], Path] = {}
    lines: list[str] = []
    for run in runs:
        plan_path = run / "plan.json"
        if not plan_path.is_file():
            raise ReportError(f"{run}: no plan.json (not a `bench learning` output directory)")
        plan = json.loads(plan_path.read_text())
        tasks.add(plan["task"])
        found = load_rounds(run)
        if not found:
            raise ReportError(f"{run}: no finished rounds")
        # Row name -> the method whose plan settings it ran with.
        ran_as = {m: m for m in sorted({r["method"] for r in found})}
        label = labels.get(run)
        if label is not None:
            if len(ran_as) > 1:
                raise ReportError(f"{run}: a label names one method's rows; this run has "
                                  f"{', '.join(ran_as)}")
            ran_as = {label: found[0]["method"]}
            found = [{**r, "method": label} for r in found]
        methods = sorted(ran_as)
        for method in methods:
            wanted = _settings(plan, ran_as[method])
            first = settings.setdefault(method, (run, wanted))
            if first[1] != wanted:
                differ = sorted(k for k in set(wanted) | set(first[1])
                                if wanted.get(k) != first[1].get(k))
                raise ReportError(
                    f"{method} ran with other settings in {first[0]} and {run} ("
                    + ", ".join(f"{k}: {first[1].get(k)!r} vs {wanted.get(k)!r}"
                                for k in differ) + "): report them separately")
        for r in found:
            key = (r["method"], r["seed"])
            if origin.setdefault(key, run) != run:
                raise ReportError(f"{r['method']} seed {r['seed']} is in both {origin[key]} "
                                  f"and {run}")
        rounds += found
        seeds = sorted({r["seed"] for r in found})
        lines.append(f"{run}: {', '.join(methods)}, seeds {seeds}: {plan_summary(plan)}")
    return MergedRuns(rounds, lines, sorted(tasks))


def _by_method_round(rounds: list[dict[str, Any]]) -> dict[str, dict[int, list[dict]]]:
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rounds:
        grouped[r["method"]][r["round"]].append(r)
    return grouped


def results_table(rounds: list[dict[str, Any]]) -> str:
    """Markdown: per method and round, means over seeds (min-max in brackets)."""
    lines = ["| method | round | seeds | success (no takeover) | assisted | takeovers / episode "
             "| successes / robot hour | no operator (eval-sim) | learner time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, per_round in sorted(_by_method_round(rounds).items()):
        for index in sorted(per_round):
            entries = per_round[index]
            rates = [e["successes"] / max(e["episodes"], 1) for e in entries]
            assisted = [e["assisted_successes"] / max(e["episodes"], 1) for e in entries]
            takeovers = [e["takeovers"] / max(e["episodes"], 1) for e in entries]
            per_hour = [3600 * e["successes"] / e["robot_time_s"] if e["robot_time_s"] else 0.0
                        for e in entries]
            learner = [e["learner_time_s"] for e in entries]
            label = f"{index}" if any(e["learner_time_s"] for e in entries) else f"{index} (eval)"
            lines.append(
                f"| {method} | {label} | {len(entries)} | {_spread(rates, pct=True)} | "
                f"{_spread(assisted, pct=True)} | {_spread(takeovers)} | {_spread(per_hour)} | "
                f"{_autonomous(entries)} | {np.mean(learner):.0f} |")
    return "\n".join(lines)


def seed_table(rounds: list[dict[str, Any]]) -> str:
    """Markdown: no-operator successes per seed, one column per method, round by round
    ("1, 4, 5, 9": the base, then after 1, 2 and 3 rounds; "-" where a round has no eval).
    Empty when no round ran the evaluation."""
    if not any(r.get("autonomous_episodes") for r in rounds):
        return ""
    grouped = _by_method_round(rounds)
    methods = sorted(grouped)
    counts = sorted({r["autonomous_episodes"] for r in rounds if r.get("autonomous_episodes")})
    lines = [f"| seed | {' | '.join(methods)} |", "|---" * (len(methods) + 1) + "|"]
    for seed in sorted({r["seed"] for r in rounds}):
        cells = []
        for method in methods:
            by_round = {i: e for i, entries in grouped[method].items() for e in entries
                        if e["seed"] == seed}
            cells.append(", ".join(str(by_round[i]["autonomous_successes"])
                                   if by_round[i].get("autonomous_episodes") else "-"
                                   for i in sorted(by_round)) or "-")
        lines.append(f"| {seed} | {' | '.join(cells)} |")
    of = "/".join(map(str, counts))
    return (f"No-operator successes of {of} per seed: the base, then after each training "
            f"round.\n\n" + "\n".join(lines))


def _stage_counts(counts: dict[int, int]) -> str:
    return ", ".join(f"stage {k} x{v}" for k, v in sorted(counts.items())) or "-"


def stage_table(rounds: list[dict[str, Any]]) -> str:
    """Markdown: where the policy needed help or got stuck, per method and round, summed over
    the seeds that recorded it (sim.operator.task_stage): the stage at each takeover of the
    collected episodes, and the furthest stage each failed no-operator episode reached. Empty
    when no round recorded either (runs from before they were kept)."""
    lines = []
    for method, per_round in sorted(_by_method_round(rounds).items()):
        for index in sorted(per_round):
            entries = per_round[index]
            taken: dict[int, int] = defaultdict(int)
            with_takeovers = [e for e in entries
                              if all("takeover_stages" in o for o in e["episode_outcomes"])
                              and e["episode_outcomes"]]
            for entry in with_takeovers:
                for outcome in entry["episode_outcomes"]:
                    for stage in outcome["takeover_stages"]:
                        taken[int(stage)] += 1
            failed_at: dict[int, int] = defaultdict(int)
            evaluated = [e for e in entries if "autonomous_failed_at_stage" in e]
            for entry in evaluated:
                for stage, count in entry["autonomous_failed_at_stage"].items():
                    failed_at[int(stage)] += count
            if not with_takeovers and not evaluated:
                continue
            lines.append(
                f"| {method} | {index} | {len(with_takeovers) or '-'} | "
                f"{_stage_counts(taken) if with_takeovers else '-'} | {len(evaluated) or '-'} | "
                f"{sum(failed_at.values()) if evaluated else '-'} | "
                f"{_stage_counts(failed_at) if evaluated else '-'} |")
    if not lines:
        return ""
    return ("Where the policy needed help and where it got stuck, by task stage (summed over "
            "seeds; the stages of `aloe-ros eval-sim`, docs/inference.md): the stage at each "
            "takeover of the collected episodes, and the furthest stage each failed "
            "no-operator episode reached.\n\n"
            "| method | round | seeds | takeovers by stage | seeds (no operator) | failed "
            "| furthest stage reached |\n|---|---|---|---|---|---|---|\n" + "\n".join(lines))


def autonomous_rates(entries: list[dict[str, Any]]) -> list[float]:
    """No-operator success rates of the rounds that ran the evaluation (older ones did not)."""
    return [e["autonomous_successes"] / e["autonomous_episodes"] for e in entries
            if e.get("autonomous_episodes")]


def _autonomous(entries: list[dict[str, Any]]) -> str:
    evaluated = [e for e in entries if e.get("autonomous_episodes")]
    if not evaluated:
        return "-"
    rates = autonomous_rates(evaluated)
    count = "/".join(map(str, sorted({e["autonomous_episodes"] for e in evaluated})))
    seeds = f", {len(rates)} of {len(entries)} seeds" if len(rates) != len(entries) else ""
    # Failures split into timeouts (slow: still going when time ran out) and the rest (a
    # dropped phone and the like), summed over seeds.
    timeouts = sum(e.get("autonomous_reasons", {}).get(TIMEOUT_REASON, 0) for e in evaluated)
    failed = sum(e["autonomous_episodes"] - e["autonomous_successes"]
                 for e in evaluated) - timeouts
    return (f"{_spread(rates, pct=True)} of {count}{seeds}; failed: {timeouts} timeouts, "
            f"{failed} other")


def _spread(values: list[float], pct: bool = False) -> str:
    scale, unit = (100.0, " %") if pct else (1.0, "")
    mean = np.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.0f}{unit}" if pct else f"{mean:.1f}"
    low, high = min(values) * scale, max(values) * scale
    return (f"{mean:.0f}{unit} ({low:.0f}-{high:.0f})" if pct
            else f"{mean:.1f} ({low:.1f}-{high:.1f})")


def success_plot(rounds: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Success rate (no takeover) per round for every method on one chart."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.add_axes((0.12, 0.14, 0.84, 0.76))   # fixed: the legend below adds to the image
    for method, per_round in sorted(_by_method_round(rounds).items()):
        xs = sorted(per_round)
        rates = [[e["successes"] / max(e["episodes"], 1) * 100 for e in per_round[x]]
                 for x in xs]
        mean = [np.mean(r) for r in rates]
        line, = ax.plot(xs, mean, marker="o", label=method)
        ax.fill_between(xs, [min(r) for r in rates], [max(r) for r in rates], alpha=0.15,
                        color=line.get_color())
        alone = [(x, [100 * a for a in autonomous_rates(per_round[x])]) for x in xs]
        alone = [(x, a) for x, a in alone if a]
        if alone:
            ax.plot([x for x, _ in alone], [np.mean(a) for _, a in alone], marker="s",
                    linestyle="--", color=line.get_color(), label=f"{method}, no operator")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("round (policy after r rounds of training)")
    ax.set_ylabel("success (%): without takeover / no operator")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # Below the axes: with several methods and long labels an inside legend hides the lines.
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8)
    fig.savefig(path, bbox_inches="tight", bbox_extra_artists=[legend])
    plt.close(fig)
    return path
