"""How every node spins and stops (nodes/common.py): an error inside the executor while running
is logged and the node goes on; an error while stopping is part of the stop; a burst of errors
exits so a supervisor restarts the node; SIGINT / SIGTERM never raise inside a message take."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aloe_ros.nodes.common import (
    MAX_SPIN_ERRORS,
    SPIN_ERROR_WINDOW_S,
    StopRequest,
    spin_until_stopped,
)


class ScriptedExecutor:
    """spin_once runs the next step: an exception to raise, or a callable (e.g. a stop)."""

    def __init__(self, steps: list[Any], stop: StopRequest) -> None:
        self.steps, self.stop, self.calls = list(steps), stop, 0

    def spin_once(self, timeout_sec: float | None = None) -> None:
        self.calls += 1
        if not self.steps:
            self.stop.requested = True
            return
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            step()


def _take_failure() -> RuntimeError:
    return RuntimeError("Unable to convert call argument '0' to Python object")


def test_an_error_while_running_is_logged_and_the_node_goes_on() -> None:
    stop = StopRequest()
    stop.spinning = True
    executor = ScriptedExecutor([None, _take_failure(), None, None], stop)
    errors: list[str] = []
    spin_until_stopped(executor, stop, errors.append, ok=lambda: True)
    assert executor.calls == 5          # kept spinning after the error, until the stop
    assert len(errors) == 1
    assert "the node goes on" in errors[0] and "Unable to convert" in errors[0]


def test_an_error_after_a_stop_request_is_part_of_the_stop() -> None:
    stop = StopRequest()
    stop.spinning = True

    def stop_then_fail() -> None:
        stop.requested = True
        raise _take_failure()

    executor = ScriptedExecutor([None, stop_then_fail, None], stop)
    errors: list[str] = []
    spin_until_stopped(executor, stop, errors.append, ok=lambda: True)
    assert executor.calls == 2 and errors == []


def test_an_error_after_the_context_shut_down_is_part_of_the_stop() -> None:
    stop = StopRequest()
    context_ok = [True]

    def shut_down_then_fail() -> None:
        context_ok[0] = False
        raise _take_failure()

    executor = ScriptedExecutor([shut_down_then_fail], stop)
    errors: list[str] = []
    spin_until_stopped(executor, stop, errors.append, ok=lambda: context_ok[0])
    assert errors == []


def test_a_burst_of_errors_reraises_so_the_node_is_restarted() -> None:
    stop = StopRequest()
    executor = ScriptedExecutor([_take_failure() for _ in range(MAX_SPIN_ERRORS + 5)], stop)
    errors: list[str] = []
    with pytest.raises(RuntimeError, match="Unable to convert"):
        spin_until_stopped(executor, stop, errors.append, ok=lambda: True, clock=lambda: 0.0)
    assert len(errors) == MAX_SPIN_ERRORS + 1


def test_errors_spread_over_time_do_not_stop_the_node() -> None:
    stop = StopRequest()
    count = MAX_SPIN_ERRORS * 3
    executor = ScriptedExecutor([_take_failure() for _ in range(count)], stop)
    ticks = iter(range(count))
    errors: list[str] = []
    spin_until_stopped(executor, stop, errors.append, ok=lambda: True,
                       clock=lambda: next(ticks) * SPIN_ERROR_WINDOW_S / 2)
    assert len(errors) == count


def test_stop_request_never_raises_and_exits_a_half_built_node() -> None:
    exits: list[int] = []
    building = StopRequest(exit_now=exits.append)
    building.building = True
    # While the node is built (torch import, checkpoint load) a stop ends the process with 0
    # instead of raising: a KeyboardInterrupt inside torch's C++ import aborted the process
    # (CI: chunk_inference exit -6 when `aloe-ros up` was stopped two seconds after start).
    building(signal.SIGINT, None)
    building(signal.SIGTERM, None)
    assert building.requested and exits == [0, 0]

    built = StopRequest(exit_now=exits.append)
    built(signal.SIGINT, None)               # never raises inside a message take either
    built(signal.SIGTERM, None)
    assert built.requested and exits == [0, 0]


STARTING_NODE = """
import sys, time
from aloe_ros.nodes.common import run_node

def slow_factory():
    print("building", flush=True)
    time.sleep(60)                           # a stop must not wait for this
    raise AssertionError("not stopped")

sys.exit(run_node(slow_factory))
"""


def _signal_after_first_line(script: str, first_line: str, sig: signal.Signals,
                             cwd: Path | None = None) -> tuple[int, str]:
    """Run ``script``, send ``sig`` once it printed ``first_line``; (exit code, stderr)."""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=cwd)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == first_line
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_node_stopped_while_starting_exits_cleanly_at_once(sig: signal.Signals) -> None:
    code, err = _signal_after_first_line(STARTING_NODE, "building", sig)
    assert code == 0, err
    assert "while starting: stopped before the node was up" in err


SLOW_IMPORT_MODULE = """
import time
print("importing", flush=True)
time.sleep(60)                               # like torch's import on a loaded machine
raise AssertionError("not stopped")
"""

BOOT_SLOW_NODE = """
import sys
from aloe_ros.nodes import boot
boot.NODE_MODULES["slow_node"] = "slow_import_module"
sys.exit(boot.start("slow_node"))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_node_stopped_while_importing_exits_cleanly_at_once(sig: signal.Signals,
                                                              tmp_path: Path) -> None:
    # CI: `aloe-ros up` stopped two seconds after start caught the learner inside torch's
    # import, before run_node's handler: KeyboardInterrupt in pybind11, SIGABRT, exit 1.
    (tmp_path / "slow_import_module.py").write_text(SLOW_IMPORT_MODULE)
    code, err = _signal_after_first_line(BOOT_SLOW_NODE, "importing", sig, cwd=tmp_path)
    assert code == 0, err
    assert "while importing: stopped before the node was up" in err


def test_boot_names_the_known_executables_for_an_unknown_one() -> None:
    result = subprocess.run([sys.executable, "-m", "aloe_ros.nodes.boot", "no_such_node"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown node executable 'no_such_node'" in result.stderr
    assert "critic_learner_node" in result.stderr


def test_a_real_executor_survives_a_raising_callback(ros_context: Any) -> None:
    """A callback error (what a failed message conversion also looks like) is logged, and the
    next message is still delivered."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    node = rclpy.create_node("spin_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    stop = StopRequest()
    stop.spinning = True
    seen: list[str] = []

    def on_message(msg: String) -> None:
        seen.append(msg.data)
        if msg.data == "bad":
            raise RuntimeError("Unable to convert call argument '0' to Python object")
        if msg.data == "last":
            stop.requested = True

    node.create_subscription(String, "/spin_test", on_message, 10)
    publisher = node.create_publisher(String, "/spin_test", 10)
    errors: list[str] = []
    try:
        deadline = time.monotonic() + 10.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for text in ("good", "bad", "after", "last"):
            publisher.publish(String(data=text))
        spin_until_stopped(executor, stop, errors.append, ok=lambda: time.monotonic() < deadline)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert seen == ["good", "bad", "after", "last"]
    assert len(errors) == 1 and "Unable to convert" in errors[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_node_stops_cleanly_on_a_signal_while_messages_flow(sig: int, tmp_path: Path) -> None:
    """The teleop node takes Joy messages from a flood while the signal arrives; it exits 0 with
    no traceback. (CI once saw a SIGINT land inside rclpy's message conversion: the node died
    with 'Unable to convert call argument' and exit code 1. That race is rare here; the unit
    tests above pin the logic that now handles it.)"""
    from helpers import node_process_command, write_task_config

    config_path = write_task_config(tmp_path)
    flood = subprocess.Popen([sys.executable, "-c", FLOOD], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    log_path = tmp_path / "node.log"
    try:
        with open(log_path, "wb") as log:
            node = subprocess.Popen(node_process_command("teleop_node", config_path),
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                _wait_for_line(log_path, "teleop up", timeout_s=90.0, process=node)
                time.sleep(1.0)
                node.send_signal(sig)
                code = node.wait(timeout=30)
            finally:
                if node.poll() is None:
                    node.kill()
                    node.wait()
    finally:
        flood.kill()
        flood.wait()
    output = log_path.read_text(errors="replace")
    assert code == 0, output
    assert "Traceback" not in output, output


FLOOD = """
import rclpy
from sensor_msgs.msg import Joy
rclpy.init()
node = rclpy.create_node('joy_flood')
publisher = node.create_publisher(Joy, '/joy', 10)
message = Joy(axes=[0.0] * 8, buttons=[0] * 12)
while rclpy.ok():
    publisher.publish(message)
"""


def _wait_for_line(log_path: Path, text: str, *, timeout_s: float,
                   process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log_path.read_text(errors="replace"))
        if text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no '{text}' in the log: {log_path.read_text(errors='replace')}")
