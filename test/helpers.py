"""Test helpers: task YAML variants, node processes, spinning until a condition holds.

No helper measures wall-clock performance; timeouts only bound how long a test may wait.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# What every test config changes: CI machines may have under 1 GiB free under /tmp, where the
# shipped recording.min_free_disk_mb (1024) would stop each test's logger before it wrote
# anything. Tests write kilobytes; the disk-guard tests set their own threshold.
TEST_CONFIG_DEFAULTS: dict[str, Any] = {"recording": {"min_free_disk_mb": 16}}


def write_task_config(tmp_path: Path, task: str = "pack_phone",
                      overrides: dict[str, Any] | None = None, name: str = "task.yaml") -> Path:
    """A copy of config/<task>.yaml with TEST_CONFIG_DEFAULTS, then ``overrides``, deep-merged
    (lists replaced)."""
    data = yaml.safe_load((REPO / "config" / f"{task}.yaml").read_text())
    data = deep_merge(deep_merge(data, TEST_CONFIG_DEFAULTS), overrides or {})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stuck_expert(operator: Any) -> None:
    """Make a SimulatedOperator's expert hold still (a state its script has no way out of)."""
    operator.world.act = lambda dt: operator.world.mirror.positions.copy()


def spin_until(executor: Any, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or the timeout passes; return the result."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def node_process_command(executable: str, config_path: Path | str, *, sim: bool = True,
                         params: dict[str, str] | None = None) -> list[str]:
    command = [sys.executable, "-m", "aloe_ros.nodes.boot", executable, "--ros-args",
               "-p", f"config_file:={config_path}", "-p", f"sim:={'true' if sim else 'false'}"]
    for key, value in (params or {}).items():
        command += ["-p", f"{key}:={value}"]
    return command


@contextmanager
def running_process(command: list[str], *, log_path: Path | None = None,
                    env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process (stdout+stderr to ``log_path``), SIGINT then kill it on exit."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                               env=env or dict(os.environ), start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log_path:
            out.close()  # type: ignore[union-attr]
