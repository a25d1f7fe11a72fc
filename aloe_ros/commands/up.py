"""``aloe-ros up <task>``: the node graph of a task, without ``ros2 launch``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from aloe_ros.config import ConfigError, load_task_config
from aloe_ros.nodes.boot import STOP_SIGNALS

HELP = "start the task's nodes (same YAML as the launch file); Ctrl-C stops them all"

log = logging.getLogger("aloe_ros.up")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name (config/<task>.yaml) or path to a task YAML")
    parser.add_argument("--sim", action="store_true",
                        help="run on the built-in simulated robot and cameras")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop everything after S seconds (default: until Ctrl-C)")
    record = parser.add_mutually_exclusive_group()
    record.add_argument("--record", metavar="DIR", default=None,
                        help="record the run as a rosbag2 under DIR (default: recording.dir "
                             "when recording.enabled)")
    record.add_argument("--no-record", action="store_true", help="do not record")
    parser.add_argument("--policy", metavar="DIR", default=None,
                        help="policy checkpoint directory (built-in or LeRobot, detected)")
    parser.add_argument("--status-period", type=float, default=2.0, metavar="S",
                        help="seconds between progress lines (0: none)")


def run(args: argparse.Namespace) -> int:
    # Stop requests from the first moment: without this, a SIGTERM while the imports below
    # run (about half a second) killed the runner by the default action (exit -15).
    stop_requested: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
    from aloe_ros.runner import GraphRunner, resolve_record_dir

    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros up: configuration error: {exc}")
        return 2
    record = (not args.no_record) and (args.record is not None or config.recording.enabled)
    overrides: dict[str, str] = {}
    if record:
        overrides["record_dir"] = resolve_record_dir(args.record, config)
    if args.policy:
        policy_dir = Path(args.policy).expanduser()
        if not policy_dir.is_dir():
            print(f"aloe-ros up: --policy {args.policy}: no such directory")
            return 2
        overrides["policy_path"] = str(policy_dir.resolve())
    runner = GraphRunner(config, sim=args.sim, record=record, overrides=overrides)
    if not runner.nodes:
        print("aloe-ros up: the task lists no node for this combination of --sim / --record")
        return 2
    print(f"aloe-ros up: task {config.task.name} ({config.source_path}), "
          f"{'sim' if args.sim else 'real robot'}, "
          f"{'recording to ' + overrides['record_dir'] if record else 'not recording'}, "
          f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}", flush=True)

    monitor = None
    if args.status_period > 0:
        from aloe_ros.nodes.monitor import GraphMonitor

        monitor = GraphMonitor(config)
    last_line = [0.0]

    def tick(elapsed: float) -> None:
        if monitor is None or elapsed - last_line[0] < args.status_period:
            return
        last_line[0] = elapsed
        total = f"/{args.duration:.0f}" if args.duration else ""
        alive = sum(runner.alive().values())
        print(f"[{elapsed:5.1f}{total} s] nodes {alive}/{len(runner.nodes)} | {monitor.summary()}",
              flush=True)

    try:
        recorders = [n.entry.name for n in runner.recorders()]
        ready = (None if monitor is None or not recorders
                 else lambda: all(monitor.has_status(name) for name in recorders))
        code = runner.run(args.duration, lambda line: print(f"aloe-ros up: {line}", flush=True),
                          tick, recorder_ready=ready, stop_requested=stop_requested)
    finally:
        if monitor is not None:
            totals = monitor.totals()
            monitor.close()
            print("aloe-ros up: messages received: "
                  + ", ".join(f"{k} {v}" for k, v in totals.items()), flush=True)
    print(f"aloe-ros up: {'stopped cleanly' if code == 0 else 'a node died (see above)'}",
          flush=True)
    return code
