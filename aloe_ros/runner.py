"""``aloe-ros up``: start the task's node graph as processes where ``ros2 launch`` is missing.

Reads the same task YAML as launch/<task>.launch.py, starts the nodes it lists (filtered by
sim / record exactly as the launch file does), restarts those marked ``respawn``, stops
everything on Ctrl-C, SIGTERM or when the duration ends, and reports which nodes died.
Process supervision only: no rclpy here (the progress monitor lives in nodes/monitor.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aloe_ros.config import NodeEntry, TaskFile
from aloe_ros.nodes.boot import STOP_SIGNALS

__all__ = ["GraphRunner", "ManagedNode", "node_command", "node_environment"]

log = logging.getLogger(__name__)
STOP_GRACE_S = 8.0


def node_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: large camera frames over Fast DDS's large-data transport
    (p99 latency about half of the default's on loopback), DDS kept on this host by default."""
    env = dict(os.environ if base is None else base)
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# Every node process starts through this module (see its docstring).
BOOT_MODULE = "aloe_ros.nodes.boot"


def node_command(entry: NodeEntry, config_path: str, *, sim: bool,
                 overrides: dict[str, str]) -> list[str]:
    """The command line of one node process (``python -m aloe_ros.nodes.boot <executable>
    --ros-args ...``: boot makes a stop during the node's imports a clean exit)."""
    params = {"config_file": config_path, "sim": "true" if sim else "false", **overrides}
    for key, value in entry.parameters.items():
        params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    command = [sys.executable, "-m", BOOT_MODULE, entry.executable, "--ros-args",
               "-r", f"__node:={entry.name}"]
    for key, value in params.items():
        command += ["-p", f"{key}:={value}"]
    return command


def _die_with_parent() -> None:
    """Child side: get SIGTERM when the runner dies, even by kill -9 (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _boot_child_setup() -> None:
    """Child side of a node started through aloe_ros.nodes.boot: SIGINT / SIGTERM stay
    blocked (the mask survives exec) until boot has its handler in place and unblocks them.
    A stop in the node's first half second (Python's own start-up, before boot runs) then
    waits for that handler instead of raising KeyboardInterrupt in an import (exit 1, which
    the runner rightly counts as a crash)."""
    _die_with_parent()
    signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))


@dataclass
class ManagedNode:
    entry: NodeEntry
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures: list[int] = field(default_factory=list)
    restart_at: float | None = None
    gave_up: bool = False


class GraphRunner:
    """Start, watch, respawn and stop the processes of one task graph."""

    def __init__(self, config: TaskFile, *, sim: bool, record: bool,
                 overrides: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 max_restarts: int = 10, output: IO[bytes] | None = None) -> None:
        self.config = config
        # Where the nodes' stdout/stderr go (None: inherited, the terminal).
        self.output = output
        self.env = node_environment(env)
        self.max_restarts = max_restarts
        entries = config.nodes_for(sim=sim, record=record)
        self.nodes = [
            ManagedNode(e, node_command(e, config.source_path, sim=sim, overrides=overrides or {}))
            for e in entries
        ]
        self.stopping = False

    def start(self, recorder_ready: Callable[[], bool] | None = None,
              recorder_timeout_s: float = 20.0) -> None:
        """Start every node; the recorder first, so the episode's first events are on record.

        ``recorder_ready`` (e.g. "the logger published its Status") is polled before the other
        nodes start, for at most ``recorder_timeout_s``; without it the others start at once.
        """
        recorders = self.recorders()
        for node in recorders:
            self._spawn(node)
        if recorders and recorder_ready is not None:
            deadline = time.monotonic() + recorder_timeout_s
            while not recorder_ready() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not recorder_ready():
                log.warning("recorder not ready after %.0f s; starting the other nodes anyway",
                            recorder_timeout_s)
        for node in self.nodes:
            if node not in recorders:
                self._spawn(node)

    def recorders(self) -> list[ManagedNode]:
        """This run's nodes that record the episode (TaskFile.recorder_names)."""
        names = self.config.recorder_names()
        return [n for n in self.nodes if n.entry.name in names]

    def _spawn(self, node: ManagedNode) -> None:
        boot = BOOT_MODULE in node.command
        node.process = subprocess.Popen(node.command, env=self.env, start_new_session=True,
                                        preexec_fn=_boot_child_setup if boot else _die_with_parent,
                                        stdout=self.output,
                                        stderr=subprocess.STDOUT if self.output else None)
        node.restart_at = None
        log.info("started %s (pid %d)", node.entry.name, node.process.pid)

    def poll(self) -> list[str]:
        """Check every process once; respawn or record the dead. Returns lines to report."""
        events = []
        now = time.monotonic()
        for node in self.nodes:
            if node.process is None:
                if node.restart_at is not None and now >= node.restart_at and not self.stopping:
                    self._spawn(node)
                    node.restarts += 1
                    events.append(f"{node.entry.name} restarted (restart {node.restarts})")
                continue
            code = node.process.poll()
            if code is None:
                continue
            node.failures.append(code)
            node.process = None
            if self.stopping:
                continue
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            if node.entry.respawn and node.restarts < self.max_restarts:
                node.restart_at = now + node.entry.respawn_delay_s
                events.append(f"{node.entry.name} died ({reason}); respawning in "
                              f"{node.entry.respawn_delay_s:g} s")
            else:
                node.gave_up = True
                events.append(f"{node.entry.name} died ({reason}); not restarted")
        return events

    def alive(self) -> dict[str, bool]:
        return {n.entry.name: n.process is not None and n.process.poll() is None
                for n in self.nodes}

    def pids(self) -> dict[str, int | None]:
        return {n.entry.name: (n.process.pid if n.process is not None else None)
                for n in self.nodes}

    def all_dead(self) -> bool:
        return all(n.process is None and (n.gave_up or n.restart_at is None)
                   for n in self.nodes)

    def stop(self) -> None:
        """SIGINT every node, wait, then SIGTERM and SIGKILL the stragglers."""
        self.stopping = True
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for sig, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, 3.0),
                           (signal.SIGKILL, 3.0)):
            for node in running:
                assert node.process is not None
                if node.process.poll() is None:
                    try:
                        node.process.send_signal(sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + grace
            for node in running:
                assert node.process is not None
                try:
                    node.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            running = [n for n in running if n.process is not None and n.process.poll() is None]
            if not running:
                break
            log.warning("still running after %s: %s", sig.name,
                        ", ".join(n.entry.name for n in running))
        for node in self.nodes:
            if node.process is not None:
                code = node.process.poll()
                # A node stopped by our own SIGINT/SIGTERM is a clean stop.
                if code is not None and code not in (0, *(-sig for sig in STOP_SIGNALS)):
                    node.failures.append(code)
                node.process = None

    def died(self) -> list[str]:
        """Nodes that exited on their own during the run (respawned or not)."""
        return [n.entry.name for n in self.nodes if n.failures]

    def run(self, duration_s: float | None, report: Callable[[str], None],
            tick: Callable[[float], None] | None = None, poll_period_s: float = 0.2,
            recorder_ready: Callable[[], bool] | None = None,
            stop_requested: list[int] | None = None) -> int:
        """Run until the duration ends, a signal arrives, or every node is gone; return the
        exit code (0: clean, 1: a node died).

        ``stop_requested``: signals the caller's own handler already collected (it installs one
        first thing, before its slow imports); a signal in it stops the run before any node
        starts, and this run's handler appends to the same list."""
        stop_requested = [] if stop_requested is None else stop_requested
        if stop_requested:
            report(f"received {signal.Signals(stop_requested[0]).name} before starting; "
                   "no node started")
            return 0

        def request_stop(signum: int, _frame: object) -> None:
            stop_requested.append(signum)

        previous = {s: signal.signal(s, request_stop) for s in STOP_SIGNALS}
        start = time.monotonic()
        try:
            self.start(recorder_ready)
            report(f"started {len(self.nodes)} node(s): "
                   + ", ".join(n.entry.name for n in self.nodes))
            while not stop_requested:
                elapsed = time.monotonic() - start
                if duration_s is not None and elapsed >= duration_s:
                    report(f"duration of {duration_s:g} s reached; stopping")
                    break
                for line in self.poll():
                    report(line)
                if self.nodes and self.all_dead():
                    report("every node has stopped")
                    break
                if tick is not None:
                    tick(elapsed)
                time.sleep(poll_period_s)
            if stop_requested:
                report(f"received {signal.Signals(stop_requested[0]).name}; stopping")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        died = self.died()
        if died:
            report("nodes that died during the run: " + ", ".join(
                f"{n.entry.name} (exit {n.failures}, restarts {n.restarts})"
                for n in self.nodes if n.failures))
            return 1
        return 0


def resolve_record_dir(path: str | None, config: TaskFile) -> str:
    folder = Path(path or config.recording.dir).expanduser()
    return str(folder.resolve())
