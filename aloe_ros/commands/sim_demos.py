"""``aloe-ros sim-demos``: scripted-expert demonstrations in the built-in sim, as episode files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "record scripted-expert demonstrations in the sim (episode .npz files, source=demo)"

log = logging.getLogger("aloe_ros.sim_demos")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="pack_phone",
                        help="task name (config/<task>.yaml) or path to a task YAML")
    parser.add_argument("--episodes", type=int, default=50, help="number of demonstrations")
    parser.add_argument("--out", required=True, metavar="DIR", help="episode directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--teleop", action="store_true",
                        help="drive the expert through the joystick path at the task's teleop "
                             "speeds, as the simulated operator does when it takes over "
                             "(default: the expert commands the robot directly)")
    parser.add_argument("--keep-failures", action="store_true",
                        help="also write episodes the expert failed (default: successes only)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from aloe_ros.config import ConfigError, load_task_config
    from aloe_ros.policies.sim_rollouts import make_sim_robot, record_expert_episode

    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros sim-demos: configuration error: {exc}")
        return 2
    if args.episodes < 1:
        print("aloe-ros sim-demos: --episodes must be >= 1")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    robot = make_sim_robot(config)
    written = failures = steps = 0
    bar = tqdm(range(args.episodes), desc="sim-demos", unit="ep")
    for i in bar:
        result = record_expert_episode(config, robot, seed=args.seed + i, episode_id=i,
                                       through_teleop=args.teleop)
        steps += result.steps
        if not result.success:
            failures += 1
            if not args.keep_failures:
                continue
        result.episode.save(out / f"episode_{i:05d}.npz")
        written += 1
        bar.set_postfix(written=written, failed=failures)
    print(f"aloe-ros sim-demos: {written} episodes ({steps} steps) in {out}; "
          f"expert failures {failures}/{args.episodes}")
    return 0
