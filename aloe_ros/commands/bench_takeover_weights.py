"""``aloe-ros bench takeover-weights``: how a trained method weighs the start of takeovers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("actor-loss weights a trained method gives the first seconds of each takeover, the "
        "rest of it and the policy's own chunks (a bench learning round's episodes)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("round", type=Path, metavar="ROUND_DIR",
                        help="a `bench learning` round: task.yaml, episodes/ (*.npz), trained/")
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
    from aloe_ros.io.episodes import EpisodeFormatError, load_episode_dir
    from aloe_ros.learning.factory import build_replay

    name = "aloe-ros bench takeover-weights"
    checkpoint = args.checkpoint or args.round / "trained"
    if args.start_s <= 0:
        print(f"{name}: --start-s must be > 0, got {args.start_s}")
        return 2
    for needed in (args.round / "task.yaml", args.round / "episodes", checkpoint / "learner"):
        if not needed.exists():
            print(f"{name}: {needed} not found (ROUND_DIR is a `bench learning` round "
                  "directory; --checkpoint an `aloe-ros train --out` one)")
            return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # V(o) samples chunks from the actor
    try:
        config = load_task_config(args.round / "task.yaml")
        episodes = load_episode_dir(args.round / "episodes")
        scorer = load_scorer(config, checkpoint)
    except (ConfigError, EpisodeFormatError, ValueError, KeyError) as exc:
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
