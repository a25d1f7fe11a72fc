"""The whole fault suite on one sim graph: e-stop presses, bad inputs, kill -9 trials, then
the bags and the offline cases. ``aloe-ros bench faults`` prints what this returns."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_ros.reliability.bad_inputs import CaseResult, run_live_cases, verify_flood
from aloe_ros.reliability.checks import BagCheck, CommandCheck, check_commands
from aloe_ros.reliability.estop import EstopFigures, run_estop_trials
from aloe_ros.reliability.faults import FaultTrial, judge_bags, run_fault_trial
from aloe_ros.reliability.offline import offline_cases
from aloe_ros.reliability.session import GraphSession, write_suite_config

__all__ = ["SuiteOptions", "SuiteResult", "run_suite"]

log = logging.getLogger(__name__)

# Respawned nodes first (the graph stays whole), the ones an operator restarts after.
KILL_ORDER = ("logger", "learner", "chunk_inference", "teleop", "sim_robot")


@dataclass
class SuiteOptions:
    out_dir: Path
    task: str = "pack_phone"
    trials: int = 3
    seed: int = 0
    nodes: list[str] | None = None          # nodes to kill (default: every node of the graph)
    estop_trials: int = 20
    bad_inputs: bool = True
    offline: bool = True
    camera_size: tuple[int, int] | None = None
    startup_timeout_s: float = 180.0
    back_timeout_s: float = 150.0
    observe_s: float = 3.0
    wait_range_s: tuple[float, float] = (1.0, 4.0)
    overrides: dict[str, Any] | None = None


@dataclass
class SuiteResult:
    trials: list[FaultTrial] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    estop: EstopFigures | None = None
    commands: CommandCheck = field(default_factory=CommandCheck)
    stale_chunks: int | None = None
    bags: list[BagCheck] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return (not self.not_started and all(t.survived for t in self.trials)
                and all(c.passed for c in self.cases) and self.commands.safe
                and all(b.readable for b in self.bags)
                and (self.estop is None or (self.estop.measured > 0 and
                                            self.estop.within_one_tick == self.estop.measured)))


def total_counter(session: GraphSession, node: str, name: str) -> int:
    """A counter summed over the node's process lifetimes (it restarts at 0 after a kill)."""
    total, last = 0, 0
    for status in session.probe.statuses(node):
        value = status.counters.get(name, 0)
        if value < last:
            total += last
        last = value
    return total + last


def run_suite(options: SuiteOptions, report: Callable[[str], None]) -> SuiteResult:
    began = time.monotonic()
    out_dir = options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = write_suite_config(options.task, out_dir, camera_size=options.camera_size,
                                     overrides=options.overrides)
    session = GraphSession(config_path, out_dir, report)
    result = SuiteResult()
    rng = random.Random(options.seed)
    try:
        result.not_started = session.start(options.startup_timeout_s)
        if result.not_started:
            report(f"never reported Status: {result.not_started} (see {out_dir}/nodes.log)")
            return result
        report(f"graph up after {time.monotonic() - began:.0f} s")
        if options.estop_trials:
            report(f"e-stop latency: {options.estop_trials} presses")
            result.estop = run_estop_trials(session, options.estop_trials, report)
        if options.bad_inputs:
            report("bad inputs on the live graph")
            result.cases += run_live_cases(session, report)
        wanted = options.nodes or list(session.names)
        order = [n for n in KILL_ORDER if n in wanted] + \
            [n for n in wanted if n not in KILL_ORDER]
        total = len(order) * options.trials
        for node in order:
            if node not in session.names:
                report(f"  {node}: not part of this graph; skipped")
                continue
            for trial in range(1, options.trials + 1):
                done = len(result.trials)
                report(f"kill -9 {node} (trial {trial}/{options.trials}, {done + 1}/{total})")
                outcome = run_fault_trial(session, node, trial, rng,
                                          wait_range_s=options.wait_range_s,
                                          observe_s=options.observe_s,
                                          back_timeout_s=options.back_timeout_s)
                result.trials.append(outcome)
                back = (f"back after {outcome.back_s:.1f} s ({outcome.back_by})"
                        if outcome.back_s is not None else "NOT back")
                report(f"  others {'ran on' if outcome.others_running else 'DISTURBED'}; "
                       f"robot {'safe' if outcome.safe else 'UNSAFE'} "
                       f"({outcome.safety_detail}); {back}")
        result.commands = check_commands(session.probe.commands(),
                                         session.probe.stamped_joint_states(),
                                         session.config.robot)
        result.stale_chunks = total_counter(session, "chunk_inference", "stale_chunks")
    finally:
        report("stopping the graph")
        session.stop()
    report("checking the bags")
    result.bags = judge_bags(result.trials, session.record_dir, session.config.topics.status)
    verify_flood(result.cases, session.notes.get("flood"),
                 [b.path for b in result.bags if b.readable])
    if options.offline:
        finished = [Path(b.path) for b in result.bags if b.readable and b.messages > 0]
        result.cases += offline_cases(session.config, out_dir / "offline",
                                      finished[0] if finished else None)
    result.duration_s = time.monotonic() - began
    return result
