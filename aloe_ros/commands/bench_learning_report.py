"""``aloe-ros bench learning-report``: one table and plot from several `bench learning` runs.

Seeds or methods run in separate processes or machines (each with its own ``--out``) are
merged here, each run's budget stated; nothing is trained or collected.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

HELP = ("merge finished `bench learning` runs (other seeds or methods) into one results "
        "table and success plot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="`bench learning --out` directories; DIR=LABEL names a run's "
                             "rows, to set variants of one method side by side "
                             "(runs/bench/aloe_b01=\"aloe, beta 0.1\")")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where results.md and success_per_round.png go")
    parser.add_argument("--title", default="", help="plot title (default: the task)")


def run(args: argparse.Namespace) -> int:
    from aloe_ros.benchmarks.learning_report import (
        ReportError,
        merge_runs,
        results_table,
        rounds_time_s,
        seed_table,
        stage_table,
        success_plot,
    )

    runs, labels = parse_runs(args.runs)
    try:
        merged = merge_runs(runs, labels)
    except ReportError as exc:
        print(f"aloe-ros bench learning-report: {exc}")
        return 2
    tasks = ", ".join(merged.tasks)
    args.out.mkdir(parents=True, exist_ok=True)
    table = results_table(merged.rounds)
    plot = success_plot(merged.rounds, args.out / "success_per_round.png",
                        args.title or f"{tasks}: success per round")
    per_seed = seed_table(merged.rounds)
    header = (f"task {tasks}; {len(runs)} runs merged; time in rounds "
              f"(collection + training) {rounds_time_s(merged.rounds):.0f} s; report made on "
              f"{platform.machine()} {platform.node()}\n\n"
              + "\n".join(f"- {line}" for line in merged.lines))
    body = "\n\n".join(part for part in (table, per_seed, stage_table(merged.rounds)) if part)
    (args.out / "results.md").write_text(f"{header}\n\n{body}\n")
    print(header)
    print(body)
    print(f"plot: {plot}")
    return 0


def parse_runs(values: list[str]) -> tuple[list[Path], dict[Path, str]]:
    """``DIR`` or ``DIR=LABEL`` arguments: the run directories and the labels given."""
    runs: list[Path] = []
    labels: dict[Path, str] = {}
    for value in values:
        directory, sep, label = value.partition("=")
        run = Path(directory)
        runs.append(run)
        if sep:
            labels[run] = label
    return runs, labels
