"""``aloe-ros``: the console entry point. Each subcommand lives in aloe_ros/commands/<name>.py.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when chosen, so ``aloe-ros --help`` starts fast and
commands that need no torch never import it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Subcommand -> module. One explicit registry, no discovery by naming convention.
COMMANDS: dict[str, str] = {
    "up": "aloe_ros.commands.up",
    "versions": "aloe_ros.commands.versions",
    "keyboard": "aloe_ros.commands.keyboard",
    "bag": "aloe_ros.commands.bag",
    "replay": "aloe_ros.commands.replay",
    "export": "aloe_ros.commands.export",
    "sim-demos": "aloe_ros.commands.sim_demos",
    "train-bc": "aloe_ros.commands.train_bc",
    "eval-sim": "aloe_ros.commands.eval_sim",
    "train": "aloe_ros.commands.train",
    "check": "aloe_ros.commands.check",
    "bench": "aloe_ros.commands.bench",
    "plot": "aloe_ros.commands.plot",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aloe-ros",
        description="ALOE real-robot RL for VLA policies, as ROS 2 nodes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(name)s: %(message)s")
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
