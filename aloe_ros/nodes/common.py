"""What every aloe_ros node shares: the task config parameter, QoS from config, status, main().

Nodes get one read-only parameter ``config_file`` (a task name or a YAML path) and load the same
typed config as every other node, so the YAML stays the single source of the graph. Launch files
and ``aloe-ros up`` pass it, plus ``sim`` and ``record_dir`` where they matter.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from aloe_ros.config import ConfigError, QosProfileConfig, TaskFile, load_task_config

__all__ = ["AloeNode", "qos_profile", "run_node", "stamp_to_seconds"]


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


def run_node(
    factory: Callable[[], Node],
    args: Sequence[str] | None = None,
    *,
    threads: int = 1,
) -> int:
    """Init rclpy, build the node, spin until Ctrl-C / SIGTERM, shut down cleanly.

    Returns the process exit code: 0 on a clean stop, 2 on a configuration error (the message
    names the YAML key), 1 on any other failure at start-up.
    """
    rclpy.init(args=list(args) if args is not None else None)
    # SIGTERM (from `aloe-ros up`, launch or systemd) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node: Node | None = None
    try:
        try:
            node = factory()
        except ConfigError as exc:
            print(f"[aloe_ros] configuration error: {exc}", file=sys.stderr)
            return 2
        except Exception:
            # Stopped (SIGINT/SIGTERM) while still starting, e.g. during a slow torch import:
            # creating publishers on the shut-down context fails. That is a stop, not a crash.
            if not rclpy.ok():
                return 0
            raise
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except RuntimeError:
            # A signal shut the context down while the executor was taking a message; rclpy
            # then fails inside take_message. That is a stop, not a crash.
            if rclpy.ok():
                raise
        return 0
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown()
