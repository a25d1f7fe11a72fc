"""``aloe-ros bench takeover-weights``: how a trained method weighs the start of takeovers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("actor-loss weights a trained method gives the first seconds of each takeover, the "
        "rest of it and the policy's own chunks (a bench learning round's episodes)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("round", type=Path, metavar="ROUND_DIR",
                        help="a `bench learning` round: task.yaml, trained/ and its episodes "
                             "(episodes/ of the in-process loop, or the ROS loop's bags/)")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                        help="score with this `aloe-ros train --out` directory instead of "
                             "ROUND_DIR/trained (e.g. a later round's critic)")
    parser.add_argument("--start-s", type=float, default=1.0,
                        help="a takeover's first this-many seconds are its start")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    import torch

    from aloe_ros.benchmarks.critic_scores import load_scorer
    from aloe_ros.benchmarks.takeover_weights import takeover_weight_stats, weights_table
    from aloe_ros.config import ConfigError, load_task_config
    from aloe_ros.io.episodes import EpisodeFormatError
    from aloe_ros.learning.factory import build_replay
    from aloe_ros.policies.bc import load_episodes

    name = "aloe-ros bench takeover-weights"
    checkpoint = args.checkpoint or args.round / "trained"
    if args.start_s <= 0:
        print(f"{name}: --start-s must be > 0, got {args.start_s}")
        return 2
    # The in-process loop saves episode files, the ROS loop one bag per round.
    bags = sorted(p for p in (args.round / "bags").glob("*") if p.is_dir())
    sources = [args.round / "episodes"] if (args.round / "episodes").is_dir() else bags
    for needed in (args.round / "task.yaml", checkpoint / "learner"):
        if not needed.exists():
            print(f"{name}: {needed} not found (ROUND_DIR is a `bench learning` round "
                  "directory; --checkpoint an `aloe-ros train --out` one)")
            return 2
    if not sources:
        print(f"{name}: {args.round} has neither episodes/ nor bags/ to score")
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # V(o) samples chunks from the actor
    try:
        config = load_task_config(args.round / "task.yaml")
        scorer = load_scorer(config, checkpoint)
        # Frames at the actor's input size, as `aloe-ros train` reads them.
        image_size = getattr(getattr(scorer.actor, "config", None), "image_size", None)
        episodes = load_episodes(sources, config, resize=image_size)
    except (ConfigError, EpisodeFormatError, ValueError, KeyError, OSError) as exc:
        print(f"{name}: {exc}")
        return 2

    def progress(done: int, total: int) -> None:
        print(f"\rscored {done}/{total} episodes", end="", file=sys.stderr, flush=True)

    stats = takeover_weight_stats(scorer.trainer, build_replay(scorer.config),  # type: ignore[arg-type]
                                  episodes, start_s=args.start_s,
                                  control_rate_hz=config.robot.control_rate_hz,
                                  progress=progress)
    print(file=sys.stderr)
    learning = scorer.config.learning
    print(f"{args.round}: {len(episodes)} episodes scored by {learning.method} from "
          f"{checkpoint} (advantage beta {learning.advantage_beta:g}, clip "
          f"{learning.advantage_clip:g}); takeover start = first {args.start_s:g} s")
    print(weights_table(stats))
    return 0
