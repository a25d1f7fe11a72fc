"""kill -9 trials: one node of a running sim graph dies at a random moment; what happens?

Per trial the suite records: whether the other nodes kept running (same process, Status still
coming), whether the robot stayed safe (commands finite, inside the limits, no jumps; after
the mux or the inference node dies the arm holds still), whether and when the node came back
(runner respawn for ``respawn: true`` nodes; the others are restarted by the suite, as an
operator would, and reported as not respawned), and for the learner whether the robot kept its
policy. The bag side (readable, data lost before the kill) is judged after the run, once every
recorder has closed its bag (:func:`judge_bags`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from aloe_ros.reliability.checks import (
    BagCheck,
    check_bag,
    check_commands,
    motion_range,
)
from aloe_ros.reliability.session import GraphSession

__all__ = ["FaultSummary", "FaultTrial", "evidence_topic", "judge_bags", "run_fault_trial",
           "summarize"]

# After this long without commands the arm must be still (the sim tracks its last command).
SETTLE_S = 1.0
# Largest joint motion (rad) that still counts as holding still (sensor noise, settling).
HOLD_TOLERANCE = 0.02
LIVENESS_WAIT_S = 6.0
# Nodes whose death silences the robot's command stream: the arm must hold.
COMMAND_SOURCES = ("teleop", "chunk_inference")


@dataclass
class FaultTrial:
    node: str
    trial: int
    killed_ns: int
    respawn: bool
    others_running: bool = False
    others_detail: str = ""
    came_back: bool = False
    back_s: float | None = None
    back_by: str = ""               # runner | suite | ""
    safe: bool = False
    safety_detail: str = ""
    policy_kept: bool | None = None  # learner trials only
    bag_readable: bool | None = None
    data_lost_s: float | None = None
    bag_detail: str = ""
    seen_topic: str = ""
    last_seen_s: float | None = None     # header stamp of the node's last message seen

    @property
    def survived(self) -> bool:
        """Everything held: others ran on, the robot stayed safe, the node came back (by the
        runner if it is ``respawn: true``, else when restarted), the policy (learner) was
        kept, the bag is readable and lost at most 1 s."""
        return (self.others_running and self.safe and self.came_back
                and self.policy_kept is not False and self.bag_readable is not False
                and (self.data_lost_s is None or self.data_lost_s <= 1.0))


def run_fault_trial(session: GraphSession, node: str, trial: int, rng: random.Random, *,
                    wait_range_s: tuple[float, float], observe_s: float,
                    back_timeout_s: float) -> FaultTrial:
    """Wait a random moment, kill -9 ``node``, observe, and bring it back."""
    session.sleep(rng.uniform(*wait_range_s))
    others = [n for n in session.names if n != node]
    other_pids = {n: session.pid(n) for n in others}
    policy_before = _running_policy(session)
    chunks_before = len(session.probe.chunks(time.time_ns() - 10_000_000_000))
    entry = session.managed(node).entry
    old_pid = session.pid(node)
    killed_ns = session.kill(node)
    result = FaultTrial(node, trial, killed_ns, entry.respawn)
    session.sleep(observe_s)
    observed_ns = time.time_ns()
    result.seen_topic, result.last_seen_s = evidence_topic(session, node, killed_ns)

    # The others: same process, and a Status after the kill.
    moved = [n for n in others if session.pid(n) != other_pids[n]]
    # Status is a 1 Hz timer, late on a loaded machine: allow a few seconds for it.
    session.wait(lambda: not session.missing_status(killed_ns + 1_000_000_000, others),
                 LIVENESS_WAIT_S, period_s=0.2)
    silent = session.missing_status(killed_ns + 1_000_000_000, others)
    # A node still starting up after an earlier trial has not reported yet: not disturbed.
    silent = [n for n in silent if session.probe.statuses(n, killed_ns - 5_000_000_000)]
    result.others_running = not moved and not silent
    result.others_detail = ("all ran on" if result.others_running else
                            "; ".join(p for p in (f"restarted: {moved}" if moved else "",
                                                  f"no Status: {silent}" if silent else "") if p))

    # The robot: every command around the kill is safe; without a command source, it holds.
    commands = session.probe.commands(killed_ns - 2_000_000_000, observed_ns)
    states = session.probe.stamped_joint_states(killed_ns - 3_000_000_000, observed_ns)
    check = check_commands(commands, states, session.config.robot)
    details = [f"{check.commands} commands, worst step {check.worst_step_ratio:.2f} of the "
               "limit"]
    result.safe = check.safe
    if not check.safe:
        details.append(f"{check.non_finite} non-finite, {check.beyond_position_limits} beyond "
                       f"limits, {check.jumps} jumps")
    if node in COMMAND_SOURCES:
        quiet = session.probe.joint_states(killed_ns + int(SETTLE_S * 1e9), observed_ns)
        moved_rad = motion_range(quiet)
        after = len(session.probe.commands(killed_ns + int(0.2e9), observed_ns))
        details.append(f"arm moved {moved_rad:.4f} rad after {SETTLE_S:g} s, {after} commands "
                       "after the kill")
        # teleop dead: nothing reaches the robot; inference dead: the mux forwards nothing.
        holds = moved_rad <= HOLD_TOLERANCE and (node != "teleop" or after == 0)
        result.safe = result.safe and holds
    result.safety_detail = "; ".join(details)

    # Back: the runner respawns; the suite restarts what the runner does not.
    if not entry.respawn:
        session.restart_now(node)
        result.back_by = "suite"
    else:
        result.back_by = "runner"
    spawned: dict[int, int] = {}

    def new_process_reports() -> bool:
        """A new process (not the killed pid) that has published Status since it started."""
        pid = session.pid(node)
        if pid is None or pid == old_pid:
            return False
        started_ns = spawned.setdefault(pid, time.time_ns())
        return bool(session.probe.statuses(node, started_ns))

    back = session.wait(new_process_reports, back_timeout_s, period_s=0.2)
    result.came_back = back
    if back:
        first = session.probe.statuses(node, min(spawned.values()))[0]
        result.back_s = (first.received_ns - killed_ns) / 1e9
    if node == "learner":
        policy_after = _running_policy(session)
        chunks = session.probe.chunks(killed_ns)
        # The same inference process runs the same policy version (chunk counts are shown:
        # on a loaded machine inference may be too slow for any chunk to be fresh).
        result.policy_kept = (policy_before is not None and policy_after == policy_before
                              and session.pid("chunk_inference") == other_pids.get(
                                  "chunk_inference"))
        result.safety_detail += (f"; robot policy {policy_before} -> {policy_after}, "
                                 f"chunks {chunks_before} in the 10 s before the kill, "
                                 f"{len(chunks)} since")
    return result


def _running_policy(session: GraphSession) -> str | None:
    status = session.probe.last_status("chunk_inference")
    return None if status is None else status.policy_version


def _bags(record_dir: Path) -> list[Path]:
    return sorted(p for p in record_dir.iterdir()
                  if p.is_dir() and not p.name.endswith(".unfinished"))


def evidence_topic(session: GraphSession, node: str, killed_ns: int
                   ) -> tuple[str, float | None]:
    """The stream by which the probe saw ``node`` last before a kill, and that message's
    header stamp (s): sim_robot by its joint states, teleop by the robot commands, the others
    by their Status ("status:<node>"). Stamps, not arrival times: a loaded recorder may take
    a while to receive a message, but it must get it."""
    probe = session.probe
    topics = session.config.topics
    limit = killed_ns / 1e9
    if node == "sim_robot":
        stamps = [t for t in probe.joint_state_stamps() if t <= limit]
        return topics.joint_states, (max(stamps) if stamps else None)
    if node == "teleop":
        stamps = [c.stamp_s for c in probe.commands() if c.stamp_s <= limit]
        return topics.command, (max(stamps) if stamps else None)
    stamps = [s.stamp_s for s in probe.statuses(node) if s.stamp_s <= limit]
    return f"status:{node}", (max(stamps) if stamps else None)


def _newest_in_bag(bag_path: str, topic: str, status_topic: str, limit_s: float
                   ) -> float | None:
    """Newest header stamp <= limit_s of ``topic`` (``status:<node>``: that node's Status)."""
    from aloe_ros.io.bag_reader import Bag

    node = topic.split(":", 1)[1] if topic.startswith("status:") else None
    with Bag(bag_path) as bag:
        name = status_topic if node else topic
        if name not in bag.topics:
            return None
        newest = None
        for _topic, msgtype, _log_ns, data in bag.messages([name]):
            msg = bag.decode(msgtype, data)
            if node is not None and str(msg.node) != node:
                continue
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            if stamp <= limit_s and (newest is None or stamp > newest):
                newest = stamp
        return newest


def judge_bags(trials: list[FaultTrial], record_dir: Path, status_topic: str) -> list[BagCheck]:
    """After the run: every bag readable (repairing the ones nobody repaired), and for each
    trial the data lost before the kill.

    Logger killed: the bag it was writing must hold everything up to ``flush_period_s`` before
    the kill; loss = kill time - its last message. Any other node killed: the bag must hold
    the node's last message that the probe saw before the kill; loss = how much older the
    bag's newest message of that stream is (0: nothing lost).
    """
    from aloe_ros.io.bag_reader import BagError

    checks = [check_bag(path) for path in _bags(record_dir)]
    readable = [c for c in checks if c.readable]
    for trial in trials:
        owner = [c for c in readable if c.start_ns <= trial.killed_ns]
        if not owner:
            trial.bag_readable, trial.bag_detail = False, "no readable bag covers the kill"
            continue
        bag_check = owner[-1]
        trial.bag_readable = True
        name = Path(bag_check.path).name
        if trial.node == "logger":
            trial.data_lost_s = max(0.0, (trial.killed_ns - bag_check.end_ns) / 1e9)
            how = f"repaired by the {bag_check.repaired_by}" if bag_check.repaired_by else \
                "finished"
            trial.bag_detail = f"{name}: {how}, {bag_check.messages} msgs"
            continue
        if trial.last_seen_s is None:
            trial.bag_detail = f"the probe saw nothing on {trial.seen_topic}"
            continue
        try:
            newest = _newest_in_bag(bag_check.path, trial.seen_topic, status_topic,
                                    trial.killed_ns / 1e9)
        except BagError as exc:
            trial.bag_readable, trial.bag_detail = False, str(exc)
            continue
        if newest is None:
            trial.data_lost_s = None
            trial.bag_detail = f"{name}: nothing on {trial.seen_topic}"
            continue
        trial.data_lost_s = max(0.0, trial.last_seen_s - newest)
        trial.bag_detail = f"{name}: {trial.seen_topic} kept to the last message seen"
        if trial.data_lost_s > 0.05:
            trial.bag_detail = f"{name}: {trial.seen_topic} ends {trial.data_lost_s:.3f} s " \
                               "before the last message seen"
    return checks


@dataclass
class FaultSummary:
    node: str
    tried: int = 0
    survived: int = 0
    worst_lost_s: float | None = None
    back_s: list[float] = field(default_factory=list)


def summarize(trials: list[FaultTrial]) -> list[FaultSummary]:
    by_node: dict[str, FaultSummary] = {}
    for trial in trials:
        summary = by_node.setdefault(trial.node, FaultSummary(trial.node))
        summary.tried += 1
        summary.survived += int(trial.survived)
        if trial.data_lost_s is not None:
            summary.worst_lost_s = max(summary.worst_lost_s or 0.0, trial.data_lost_s)
        if trial.back_s is not None:
            summary.back_s.append(trial.back_s)
    return list(by_node.values())
