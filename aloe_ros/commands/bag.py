"""``aloe-ros bag info BAG`` and ``aloe-ros bag repair BAG``: inspect and finish recordings."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "inspect a recorded bag (info) or finish one a crash left open (repair)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="ACTION")
    sub.required = True
    info = sub.add_parser("info", help="topics, rates, duration, episodes, interventions")
    info.add_argument("bags", nargs="+", metavar="BAG", help="bag directory or .mcap file")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    repair = sub.add_parser("repair", help="rebuild the summary and metadata.yaml of a bag "
                                           "whose recorder was killed")
    repair.add_argument("bags", nargs="+", metavar="BAG", help="bag directory")
    repair.add_argument("--keep", action="store_true",
                        help="keep the original as BAG.unfinished")


def run(args: argparse.Namespace) -> int:
    from aloe_ros.io.bag_reader import BagError

    code = 0
    for path in args.bags:
        try:
            if args.bag_command == "info":
                _info(path, as_json=args.json)
            else:
                _repair(path, keep=args.keep)
        except BagError as exc:
            print(f"aloe-ros bag {args.bag_command}: {exc}", file=sys.stderr)
            code = 1
    return code


def _info(path: str, *, as_json: bool) -> None:
    from aloe_ros.io.bag_info import format_summary, summarize_bag

    summary = summarize_bag(path)
    print(json.dumps(summary.to_dict(), indent=2) if as_json else format_summary(summary))


def _repair(path: str, *, keep: bool) -> None:
    from pathlib import Path

    from aloe_ros.io.bag_reader import Bag, BagError
    from aloe_ros.io.bag_repair import RepairError, repair_bag

    if (Path(path) / "metadata.yaml").is_file():
        try:
            Bag(path).close()
            print(f"{path}: finished and readable; nothing to repair")
            return
        except BagError:
            pass  # metadata present but the file is damaged: rebuild it
    try:
        report = repair_bag(path, keep=keep)
    except RepairError as exc:
        raise BagError(str(exc)) from None
    tail = (f"; read up to the end of the complete records ({report.stop_reason})"
            if report.stop_reason else "")
    print(f"{path}: repaired, {report.messages} messages on {len(report.topics)} topics{tail}")
