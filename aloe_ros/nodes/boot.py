"""Start one node process so that a stop signal during its imports is a clean exit.

A node module imports rclpy, torch or MuJoCo before its ``main`` runs (seconds on a loaded
machine), and ``run_node`` only installs its stop handler after that. A SIGINT in that window
raises KeyboardInterrupt under Python's default handler; raised inside a C extension's init
(torch's pybind11 code) it ends in ``std::terminate`` and SIGABRT, which ``aloe-ros up`` and
launch rightly report as a crash (`aloe-ros up` then exits 1). So every way of starting a node
(`aloe-ros up`, the ``ros2 run`` wrappers, the pip console scripts) goes through here: the
handler is installed first, with nothing but the standard library imported, and a stop before
the node exists ends the process at once with exit code 0. ``run_node`` replaces the handler
with its own once it starts building the node.

    python -m aloe_ros.nodes.boot critic_learner_node --ros-args ...
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aloe_ros.nodes import NODE_MODULES

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_while_importing(signum: int, _frame: Any, *,
                         exit_now: Callable[[int], Any] = os._exit) -> None:
    """Signal handler for the import window: nothing to save yet, so exit 0 at once (no
    exception unwinds through C code)."""
    sys.stderr.write(f"[aloe_ros] {signal.Signals(signum).name} while importing: "
                     "stopped before the node was up\n")
    sys.stderr.flush()
    exit_now(0)


def start(executable: str, args: Sequence[str] | None = None) -> int:
    """Install the import-window handler, import the node's module, run its ``main``."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, exit_while_importing)
    # `aloe-ros up` starts nodes with these blocked (runner._boot_child_setup); a stop that
    # arrived meanwhile is delivered now, to the handler above.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    module = NODE_MODULES.get(executable)
    if module is None:
        print(f"[aloe_ros] unknown node executable {executable!r}; known: "
              f"{', '.join(sorted(NODE_MODULES))}", file=sys.stderr)
        return 2
    main: Callable[[Sequence[str] | None], int] = importlib.import_module(module).main
    return main(list(args) if args is not None else None)


def console_main() -> int:
    """Entry point of the pip console scripts: the executable's own name says which node."""
    return start(Path(sys.argv[0]).name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m aloe_ros.nodes.boot <node executable> [--ros-args ...]",
              file=sys.stderr)
        return 2
    # rclpy reads the process arguments; the node sees them as if started directly.
    sys.argv = argv
    return start(argv[0])


if __name__ == "__main__":
    sys.exit(main())
