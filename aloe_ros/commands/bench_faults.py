"""``aloe-ros bench faults``: kill nodes, feed bad inputs and press e-stop on a sim graph,
then print what survived (docs/reliability.md)."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

HELP = ("kill -9 each node, feed bad inputs and time the e-stop on a sim graph; print what "
        "survived")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # `aloe-ros bench` (commands/bench.py) dispatches: this module is `aloe-ros bench faults`.
    parser.add_argument("--task", default="pack_phone", help="task name or YAML path")
    parser.add_argument("--trials", type=int, default=3, help="kills per node (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--nodes", default="", metavar="A,B",
                        help="nodes to kill (default: every node of the sim graph)")
    parser.add_argument("--estop-trials", type=int, default=20, metavar="N",
                        help="e-stop presses to time (0: none)")
    parser.add_argument("--no-bad-inputs", action="store_true", help="skip the bad inputs")
    parser.add_argument("--camera-size", type=_size, default=None, metavar="WxH",
                        help="override the task's camera size (smaller: lighter on a laptop)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="keep bags, node logs and the task copy here (default: a "
                             "temporary folder, removed afterwards)")
    parser.add_argument("--details", action="store_true", help="also print one row per kill")


def run(args: argparse.Namespace) -> int:
    from aloe_ros.config import ConfigError
    from aloe_ros.reliability.report import (
        bad_input_table,
        fault_table,
        safety_lines,
        trial_table,
    )
    from aloe_ros.reliability.suite import SuiteOptions, run_suite

    logging.getLogger("aloe_ros.runner").setLevel(logging.WARNING)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aloe_faults_"))
    options = SuiteOptions(out_dir=out, task=args.task, trials=args.trials, seed=args.seed,
                           nodes=[n for n in args.nodes.split(",") if n] or None,
                           estop_trials=args.estop_trials, bad_inputs=not args.no_bad_inputs,
                           camera_size=args.camera_size)
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"aloe-ros bench faults: task {args.task}, {args.trials} kill(s) per node, seed "
          f"{args.seed}, output {out}", flush=True)
    try:
        result = run_suite(options, lambda line: print(line, flush=True))
    except ConfigError as exc:
        print(f"aloe-ros bench faults: configuration error: {exc}")
        return 2
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    print()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {platform.node()} ({platform.machine()}, {_cpus()} CPUs, load average "
          f"{load} at the end), {started}, suite took {result.duration_s:.0f} s")
    if result.not_started:
        print(f"FAILED: nodes never came up: {result.not_started}")
        return 1
    print()
    if result.trials:
        print(fault_table(result.trials))
        print()
        if args.details:
            print(trial_table(result.trials))
            print()
    if result.cases:
        print(bad_input_table(result.cases))
        print()
    for line in safety_lines(result.estop, result.commands, result.stale_chunks, result.bags):
        print(line)
    print()
    print("all passed" if result.passed else "SOME CASES FAILED (see above)")
    return 0 if result.passed else 1


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 0)
