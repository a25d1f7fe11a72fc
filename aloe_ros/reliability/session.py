"""A running sim graph under test: the task's nodes (GraphRunner, as `aloe-ros up --sim
--record` starts them) plus a GraphProbe, with the waits every fault case needs.

The graph runs from a copy of the task YAML in the suite's output folder, so the recorder, the
learner's checkpoints and the policy's checkpoint root all live there and nothing of the user's
is touched. Node output goes to ``<out>/nodes.log``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from aloe_ros.config import TaskFile, find_task_config, load_task_config
from aloe_ros.runner import GraphRunner, ManagedNode

__all__ = ["GraphSession", "write_suite_config"]

log = logging.getLogger(__name__)


def write_suite_config(task: str, out_dir: Path, *, camera_size: tuple[int, int] | None = None,
                       overrides: dict[str, Any] | None = None,
                       drop_executables: tuple[str, ...] = ("sim_operator_node",)) -> Path:
    """A copy of the task YAML whose recordings and checkpoints live under ``out_dir``.

    The simulated operator is left out: the suite itself plays the operator (pad presses,
    takeovers), and two operators on one pad would fight over control.
    """
    data = yaml.safe_load(find_task_config(task).read_text())
    data["nodes"] = [n for n in data.get("nodes", [])
                     if n.get("executable") not in drop_executables]
    checkpoints = str((out_dir / "checkpoints").resolve())
    data.setdefault("recording", {})["dir"] = str((out_dir / "bags").resolve())
    data.setdefault("learning", {})["checkpoint_dir"] = checkpoints
    data.setdefault("policy", {})["checkpoint_root"] = checkpoints
    if camera_size is not None:
        for camera in data.get("cameras", []):
            camera["width"], camera["height"] = camera_size
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    path = out_dir / "task.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_task_config(path)   # fail here, naming the key, rather than in five nodes
    return path


class GraphSession:
    """Start, watch, kill and restart the graph's processes; see it through the probe."""

    def __init__(self, config_path: Path, out_dir: Path,
                 report: Callable[[str], None]) -> None:
        from aloe_ros.reliability.probe import GraphProbe

        self.config: TaskFile = load_task_config(config_path)
        self.out_dir = out_dir
        self.report = report
        self.record_dir = Path(self.config.recording.dir)
        self.node_log: IO[bytes] = open(out_dir / "nodes.log", "ab")
        self.runner = GraphRunner(self.config, sim=True, record=True,
                                  overrides={"record_dir": str(self.record_dir)},
                                  output=self.node_log)
        self.names = [n.entry.name for n in self.runner.nodes]
        self.probe = GraphProbe(self.config)
        self.started_ns = time.time_ns()
        # What cases leave for the checks after the run (e.g. the flood's window).
        self.notes: dict[str, Any] = {}

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout_s: float) -> list[str]:
        """Start every node; wait until each has published Status. Returns the late ones."""
        self.started_ns = time.time_ns()
        self.runner.start()
        self.report(f"started {len(self.names)} nodes: {', '.join(self.names)}; waiting for "
                    "each to report Status")
        self.wait(lambda: not self.missing_status(self.started_ns), timeout_s)
        return self.missing_status(self.started_ns)

    def stop(self) -> None:
        self.runner.stop()
        self.probe.close()
        self.node_log.close()

    def poll(self) -> None:
        """Let the runner notice deaths and respawn; report what it did."""
        for line in self.runner.poll():
            self.report(f"  runner: {line}")

    def wait(self, predicate: Callable[[], bool], timeout_s: float, period_s: float = 0.1
             ) -> bool:
        """Poll the runner until ``predicate()`` holds or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if predicate():
                return True
            time.sleep(period_s)
        return predicate()

    def sleep(self, seconds: float) -> None:
        self.wait(lambda: False, seconds)

    # ---- nodes ----------------------------------------------------------------------------------
    def managed(self, name: str) -> ManagedNode:
        return next(n for n in self.runner.nodes if n.entry.name == name)

    def pid(self, name: str) -> int | None:
        return self.runner.pids().get(name)

    def missing_status(self, since_ns: int, names: list[str] | None = None) -> list[str]:
        """Nodes (of ``names``, default all) with no Status received since ``since_ns``."""
        return [n for n in (names or self.names) if not self.probe.statuses(n, since_ns)]

    def kill(self, name: str) -> int:
        """kill -9 the node's process; returns the kill time (ns, wall clock)."""
        pid = self.pid(name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        killed_ns = time.time_ns()
        os.kill(pid, 9)
        self.managed(name).process.wait(timeout=10)  # type: ignore[union-attr]
        return killed_ns

    def restart_now(self, name: str) -> None:
        """Start a node the runner gave up on (respawn: false), as an operator would."""
        node = self.managed(name)
        self.poll()   # the runner records the death first
        if node.process is None:
            node.gave_up = False
            node.restart_at = time.monotonic()
            self.poll()
