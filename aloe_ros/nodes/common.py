"""What every aloe_ros node shares: the task config parameter, QoS from config, status, main().

Nodes get one read-only parameter ``config_file`` (a task name or a YAML path) and load the same
typed config as every other node, so the YAML stays the single source of the graph. Launch files
and ``aloe-ros up`` pass it, plus ``sim`` and ``record_dir`` where they matter.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from aloe_ros.config import ConfigError, QosProfileConfig, TaskFile, load_task_config

__all__ = ["AloeNode", "StopRequest", "qos_profile", "run_node", "spin_until_stopped",
           "stamp_to_seconds"]


def qos_profile(config: QosProfileConfig) -> QoSProfile:
    """A QoS profile from its config section (keep-last history)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=config.depth,
        reliability=(ReliabilityPolicy.RELIABLE if config.reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if config.durability == "transient_local"
                    else DurabilityPolicy.VOLATILE),
    )


def stamp_to_seconds(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


class AloeNode(Node):
    """A Node that loads the task config from its ``config_file`` parameter.

    Subclasses call ``super().__init__(name)`` and then use ``self.config`` (a TaskFile),
    ``self.sensor_qos`` / ``self.command_qos`` / ``self.events_qos``, and ``self.count()`` for
    the counters that go into the Status message (nothing is dropped silently).
    """

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameter(
            "config_file", "pack_phone",
            ParameterDescriptor(description="Task name (config/<task>.yaml) or path to a task YAML",
                                read_only=True),
        )
        self.declare_parameter(
            "sim", False,
            ParameterDescriptor(description="True when the graph runs on the built-in sim",
                                read_only=True),
        )
        source = self.get_parameter("config_file").get_parameter_value().string_value
        # A bad config stops start-up: the error names the file and the YAML key path.
        self.config: TaskFile = load_task_config(source)
        self.use_sim = self.get_parameter("sim").get_parameter_value().bool_value
        self.sensor_qos = qos_profile(self.config.qos.sensor)
        self.command_qos = qos_profile(self.config.qos.command)
        self.events_qos = qos_profile(self.config.qos.events)
        self.counters: dict[str, int] = {}

    def count(self, name: str, amount: int = 1) -> None:
        """Increase a named counter (skipped inputs, rejected commands, idle ticks, ...)."""
        self.counters[name] = self.counters.get(name, 0) + amount

    def now_seconds(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


# A node that keeps failing inside the executor is better restarted than left limping: more
# than this many spin errors within SPIN_ERROR_WINDOW_S seconds and it exits with code 1.
MAX_SPIN_ERRORS = 20
SPIN_ERROR_WINDOW_S = 10.0
# How often the spin loop looks at the stop flag (a signal handler runs between waits).
SPIN_POLL_S = 0.25


class StopRequest:
    """Set by SIGINT / SIGTERM; never raises.

    While the node is being built (``building``: e.g. importing torch, loading a checkpoint) a
    stop ends the process at once with exit code 0: the half-built node holds nothing to save,
    and a KeyboardInterrupt raised inside a C extension's import (torch's pybind11 init) aborts
    the process with SIGABRT, which supervisors rightly report as a crash. Once built, the stop
    only sets ``requested``: the spin loop sees it within SPIN_POLL_S and closes the node (a
    KeyboardInterrupt inside rclpy's message take surfaces as a bare RuntimeError, "Unable to
    convert call argument", which looked like a crash too).
    """

    def __init__(self, exit_now: Callable[[int], Any] = os._exit) -> None:
        self.requested = False
        self.building = False
        self.exit_now = exit_now

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.building:
            sys.stderr.write(f"[aloe_ros] {signal.Signals(signum).name} while starting: "
                             "stopped before the node was up\n")
            sys.stderr.flush()
            self.exit_now(0)


def spin_until_stopped(executor: Any, stop: StopRequest, log_error: Callable[[str], None], *,
                       ok: Callable[[], bool] = rclpy.ok,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Spin until a stop is requested or the context shuts down.

    An error inside the executor while stopping is part of the stop. An error while running
    (a message that fails to convert, a callback that raised) is logged and the node goes on:
    one bad message must not take a node down. More than ``MAX_SPIN_ERRORS`` within
    ``SPIN_ERROR_WINDOW_S`` re-raise, so a supervisor restarts the node.
    """
    recent: list[float] = []
    while not stop.requested and ok():
        try:
            executor.spin_once(timeout_sec=SPIN_POLL_S)
        except (KeyboardInterrupt, ExternalShutdownException):
            return
        except Exception as exc:
            if stop.requested or not ok():
                return
            now = clock()
            recent = [t for t in recent if now - t < SPIN_ERROR_WINDOW_S] + [now]
            log_error(f"error while spinning ({len(recent)} in the last "
                      f"{SPIN_ERROR_WINDOW_S:.0f} s, the node goes on): "
                      f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
            if len(recent) > MAX_SPIN_ERRORS:
                raise


def run_node(
    factory: Callable[[], Node],
    args: Sequence[str] | None = None,
    *,
    threads: int = 1,
) -> int:
    """Init rclpy, build the node, spin until Ctrl-C / SIGTERM, shut down cleanly.

    Returns the process exit code: 0 on a clean stop, 2 on a configuration error (the message
    names the YAML key), 1 on any other failure at start-up or on repeated errors while running.
    """
    # The node owns SIGINT and SIGTERM (rclpy installs none): both stop it the same clean way
    # (`aloe-ros up`, launch and systemd send them), and neither raises inside a message take.
    rclpy.init(args=list(args) if args is not None else None,
               signal_handler_options=SignalHandlerOptions.NO)
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    node: Node | None = None
    try:
        stop.building = True
        try:
            node = factory()
        except ConfigError as exc:
            print(f"[aloe_ros] configuration error: {exc}", file=sys.stderr)
            return 2
        finally:
            stop.building = False
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        logger = node.get_logger()
        try:
            spin_until_stopped(executor, stop, lambda text: logger.error(text))
        finally:
            executor.shutdown(timeout_sec=2.0)
        return 0
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
