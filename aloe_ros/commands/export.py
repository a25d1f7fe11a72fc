"""``aloe-ros export BAG... --lerobot DIR --repo-id NAME``: bags -> a LeRobot v3 dataset."""

from __future__ import annotations

import argparse
import sys

HELP = "export recorded bags as a LeRobot v3 dataset (images, state, action, RL labels)"


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, got {text!r}") from None
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", metavar="BAG", help="bag directories")
    parser.add_argument("--lerobot", required=True, metavar="DIR",
                        help="new dataset directory (must not exist or be empty)")
    parser.add_argument("--repo-id", required=True, metavar="NAME",
                        help="dataset name, e.g. lab/pack_phone_round3")
    parser.add_argument("--config", default=None, metavar="TASK",
                        help="task name or YAML (default: the config recorded in each bag)")
    parser.add_argument("--videos", action="store_true",
                        help="store cameras as MP4 videos instead of images")
    parser.add_argument("--resize", type=_size, default=None, metavar="HxW",
                        help="scale every frame, e.g. 240x320")
    parser.add_argument("--current-version", default=None, metavar="V",
                        help="policy version counted as 'online'; older ones are 'historical'")


def run(args: argparse.Namespace) -> int:
    from aloe_ros.config import ConfigError, load_task_config
    from aloe_ros.io.bag_reader import BagError
    from aloe_ros.io.lerobot_export import ExportError, export_lerobot

    try:
        config = load_task_config(args.config) if args.config else None
        report = export_lerobot(args.bags, args.lerobot, args.repo_id, config=config,
                                use_videos=args.videos, resize=args.resize,
                                current_version=args.current_version)
    except (BagError, ExportError, ConfigError) as exc:
        print(f"aloe-ros export: {exc}", file=sys.stderr)
        return 1
    print(f"aloe-ros export: {report.episodes} episodes, {report.frames} frames -> "
          f"{report.root} (repo id {report.repo_id})")
    for bag, count in report.per_bag.items():
        print(f"  {bag}: {count} episodes")
    if report.skipped_episodes:
        print(f"  skipped {report.skipped_episodes} empty episodes")
    return 0
