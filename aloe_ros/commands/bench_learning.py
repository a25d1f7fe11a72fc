"""``aloe-ros bench learning``: ALOE against the baselines in the sim, through the full ROS loop."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

HELP = ("run methods in rounds (collect with the node graph, train, deploy) from a weak BC "
        "policy; write a results table and a plot")

METHODS = ("aloe", "dagger", "awr_mc", "td1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="pack_phone")
    parser.add_argument("--method", nargs="+", choices=METHODS, default=list(METHODS),
                        help="one or more methods (default: all four)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="training rounds (then one eval); a rerun with more rounds "
                             "extends a finished run")
    parser.add_argument("--episodes-per-round", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds (FIRST..FIRST+S-1)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="FIRST",
                        help="first seed (to spread seeds over machines or processes that "
                             "share --out)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--demo-episodes", type=int, default=20,
                        help="scripted demos for the base policy")
    parser.add_argument("--demos", choices=("teleop", "direct"), default="teleop",
                        help="base demos: through the joystick path at the teleop speeds, as "
                             "the simulated operator's takeovers (default), or the expert "
                             "commanding the robot directly")
    parser.add_argument("--bc-steps", type=int, default=300,
                        help="BC steps of the base policy (few: a weak start)")
    parser.add_argument("--train-updates", type=int, default=300, help="learner updates per round")
    parser.add_argument("--intervention-rate", type=float, default=1.0,
                        help="probability the simulated operator acts on a predicted failure")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for training")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="learner batch size (0: learning.batch_size of the task)")
    parser.add_argument("--advantage-beta", type=float, default=None, metavar="BETA",
                        help="learning.advantage_beta for aloe, td1 and awr_mc "
                             "(default: the task's)")
    parser.add_argument("--noise-scale", type=float, default=None, metavar="S",
                        help="policy.noise_scale while deployed and in the learner's samples "
                             "(default: the task's; docs/inference.md has success per scale)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="task YAML override for every round, e.g. "
                             "learning.critic_warmup_updates=100 (repeatable)")
    parser.add_argument("--eval-episodes", type=int, default=0, metavar="N",
                        help="also run each round's policy alone (no operator) for N seeded "
                             "episodes, as eval-sim does; a rerun adds it to finished rounds "
                             "(default 0: off)")
    parser.add_argument("--loop", choices=("ros", "inprocess"), default="ros",
                        help="ros: collect through the node graph over DDS in real time "
                             "(default); inprocess: the same policy, executor, operator and "
                             "teleop code in one process, in sim time (as fast as the CPU allows)")


def _report(line: str, transient: bool = False) -> None:
    stamp = time.strftime("%H:%M:%S")
    if transient and sys.stdout.isatty():
        print(f"\r[{stamp}] {line}", end="", flush=True)
    else:
        print(f"[{stamp}] {line}", flush=True)


def run(args: argparse.Namespace) -> int:
    from aloe_ros.benchmarks.learning import LearningBenchPlan, check_plan, run_plan
    from aloe_ros.benchmarks.learning_report import (
        load_rounds,
        plan_summary,
        results_table,
        rounds_time_s,
        success_plot,
    )

    if args.eval_episodes < 0:
        print("aloe-ros bench learning: --eval-episodes must be >= 0")
        return 2
    for name in ("rounds", "episodes_per_round", "seeds"):
        if getattr(args, name) < 1 and not (name == "rounds" and args.rounds == 0):
            print(f"aloe-ros bench learning: --{name.replace('_', '-')} must be >= 1")
            return 2
    plan = LearningBenchPlan(
        task=args.task, methods=list(args.method), rounds=args.rounds,
        episodes_per_round=args.episodes_per_round,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)), out=args.out,
        demo_episodes=args.demo_episodes, demos=args.demos, bc_steps=args.bc_steps,
        train_updates=args.train_updates, intervention_rate=args.intervention_rate,
        threads=args.threads, loop=args.loop, batch_size=args.batch_size,
        advantage_beta=args.advantage_beta, noise_scale=args.noise_scale,
        overrides=list(args.overrides), eval_episodes=args.eval_episodes)
    try:
        check_plan(plan)
    except ValueError as exc:   # ConfigError included: it names the YAML key
        print(f"aloe-ros bench learning: {exc}")
        return 2
    start = time.monotonic()
    run_plan(plan, _report)
    rounds = load_rounds(args.out)
    table = results_table(rounds)
    plot = success_plot(rounds, args.out / "success_per_round.png",
                        f"{args.task}: success per round")
    header = (f"task {args.task}, methods {', '.join(plan.methods)}, seeds {plan.seeds}, "
              f"{plan_summary(asdict(plan))}; machine: {platform.machine()} "
              f"{platform.node()}; time in rounds (collection + training, every method and "
              f"seed) {rounds_time_s(rounds):.0f} s, "
              f"this invocation {time.monotonic() - start:.0f} s")
    (args.out / "results.md").write_text(f"{header}\n\n{table}\n")
    print(header)
    print(table)
    print(f"plot: {plot}")
    return 0
