"""``aloe-ros bench <name>``: whole-system benchmarks (learning in the loop, fault injection).

Each benchmark is a module with HELP, add_arguments(parser) and run(args), registered here.
"""

from __future__ import annotations

import argparse
import importlib

HELP = ("whole-system benchmarks: learning (methods in the loop), faults (kill -9 and bad "
        "input), value quality and takeover weights (what the critics learned)")

BENCHES: dict[str, str] = {
    "learning": "aloe_ros.commands.bench_learning",
    "learning-report": "aloe_ros.commands.bench_learning_report",
    "faults": "aloe_ros.commands.bench_faults",
    "value-quality": "aloe_ros.commands.bench_value_quality",
    "takeover-weights": "aloe_ros.commands.bench_takeover_weights",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    for name, module_name in BENCHES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not built yet
        bench_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(bench_parser)
        bench_parser.set_defaults(_bench=module)


def run(args: argparse.Namespace) -> int:
    return int(args._bench.run(args) or 0)
