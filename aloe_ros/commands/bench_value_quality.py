"""``aloe-ros bench value-quality``: critics against ground-truth current-policy values (sim)."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

HELP = ("Spearman correlation and error of the ALOE, 1-step TD and Monte-Carlo critics against "
        "ground-truth values of the current policy (sim rollouts from logged chunks)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, metavar="DIR",
                        help="working directory (data, trained critics, results); resumable")
    parser.add_argument("--task", default="pack_phone", help="task name or YAML")
    parser.add_argument("--method", nargs="+", choices=("aloe", "td1", "awr_mc"),
                        default=["aloe", "td1", "awr_mc"], help="critics to compare")
    parser.add_argument("--chunks", type=int, default=32, help="logged chunks to evaluate")
    parser.add_argument("--rollouts", type=int, default=4,
                        help="ground-truth rollouts of the current policy per chunk")
    parser.add_argument("--base-policy", type=Path, default=None,
                        help="policy that collects the logged data (default: BC on the demos)")
    parser.add_argument("--demo-episodes", type=int, default=6)
    parser.add_argument("--bc-steps", type=int, default=300)
    parser.add_argument("--policy-episodes", type=int, default=6,
                        help="logged episodes of the base policy")
    parser.add_argument("--train-updates", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=None, help="learner batch size")
    parser.add_argument("--bags", type=Path, nargs="+", default=[], metavar="BAG",
                        help="logged data from sim recordings with /aloe/sim/state (e.g. the "
                             "bags of a bench learning round) instead of ROS-free rollouts")
    parser.add_argument("--trained", action="append", default=[], metavar="METHOD=DIR",
                        help="score this method's critic and actor from an existing `aloe-ros "
                             "train --out` directory (e.g. a bench learning round's trained/) "
                             "instead of training one (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def _learner_step(folder: Path) -> int:
    return int(json.loads((folder / "learner" / "learner.json").read_text()).get("step", 0))


def _report(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from aloe_ros.benchmarks.value_quality_run import (
        ValueQualityPlan,
        correlation_table,
        run_value_quality,
    )
    from aloe_ros.config import ConfigError

    for name in ("chunks", "rollouts", "demo_episodes", "policy_episodes"):
        if getattr(args, name) < 1:
            print(f"aloe-ros bench value-quality: --{name.replace('_', '-')} must be >= 1")
            return 2
    trained: dict[str, Path] = {}
    for item in args.trained:
        method, sep, folder = item.partition("=")
        if not sep or method not in args.method:
            print(f"aloe-ros bench value-quality: --trained {item!r}: expected METHOD=DIR with "
                  f"METHOD one of --method ({', '.join(args.method)})")
            return 2
        trained[method] = Path(folder)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # Every ground-truth rollout ends an episode; the sim's per-episode line would flood.
    logging.getLogger("aloe_ros.sim.robot").setLevel(logging.WARNING)
    plan = ValueQualityPlan(
        task=args.task, out=args.run, methods=list(args.method), base_policy=args.base_policy,
        demo_episodes=args.demo_episodes, bc_steps=args.bc_steps,
        policy_episodes=args.policy_episodes, train_updates=args.train_updates,
        batch_size=args.batch_size, chunks=args.chunks, rollouts=args.rollouts, seed=args.seed,
        threads=args.threads, bags=list(args.bags), trained=trained)
    start = time.monotonic()
    try:
        rows = run_value_quality(plan, _report)
    except (ConfigError, ValueError) as exc:
        print(f"aloe-ros bench value-quality: {exc}")
        return 2
    logged = (f"{len(args.bags)} bag(s)" if args.bags
              else f"{args.policy_episodes} base-policy episodes")
    header = (f"task {args.task}, {len(rows) and rows[0]['chunks']} logged chunks, "
              f"{args.rollouts} rollouts per chunk, {args.demo_episodes} demos + {logged}, "
              + (f"{args.train_updates} updates per method trained here"
                 if set(args.method) - set(trained) else "critics from --trained")
              + "".join(f"; {m} scored from {d} ({_learner_step(d)} updates)"
                        for m, d in trained.items())
              + f"; machine {platform.machine()}; "
              f"wall time {time.monotonic() - start:.0f} s")
    table = correlation_table(rows)
    md = args.run / "eval" / "value_quality.md"
    md.write_text(f"{header}\n\n{table}\n")
    print(header)
    print(table)
    fidelity = args.run / "eval" / "restore_fidelity.json"
    if args.bags and fidelity.is_file():
        values = json.loads(fidelity.read_text())
        print("restored bag states, joint error after replaying each logged chunk: "
              + ", ".join(f"{k} {v:.3g}" for k, v in values.items()))
    print(f"written: {md}, {md.with_suffix('.json')}")
    return 0
