"""``aloe-ros versions``: interpreter and library versions, for bug reports and install checks."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys

HELP = "print the Python, ROS 2, torch, numpy, OpenCV and LeRobot versions in use"

MODULES = ("numpy", "cv2", "torch", "lerobot", "rclpy", "rosbags", "yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-heavy", action="store_true", help="skip torch and lerobot")


def run(args: argparse.Namespace) -> int:
    print(f"python   {sys.version.split()[0]} ({sys.executable})")
    print(f"platform {platform.platform()}")
    for name in MODULES:
        if args.no_heavy and name in ("torch", "lerobot"):
            continue
        try:
            module = importlib.import_module(name)
            version = getattr(module, "__version__", "installed")
        except Exception as exc:  # noqa: BLE001 - report, don't fail
            version = f"not importable ({type(exc).__name__}: {exc})"
        print(f"{name:8s} {version}")
    try:
        from aloe_ros.msg import ActionChunk  # noqa: F401

        print("aloe_ros messages: importable")
    except ImportError as exc:
        print(f"aloe_ros messages: NOT importable ({exc}); run scripts/bootstrap_venv.sh")
        return 1
    return 0
