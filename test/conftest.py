"""Shared fixtures. Every test session gets its own DDS domain on the loopback only, and its
own ROS_HOME, so parallel runs (CI, other developers, helpers) never hear each other."""

from __future__ import annotations

import os
import random
import shutil
import tempfile

import pytest
from helpers import write_task_config  # noqa: F401 - re-exported for tests


def pytest_configure(config: pytest.Config) -> None:
    if "ALOE_TEST_DOMAIN_ID" in os.environ:
        domain = int(os.environ["ALOE_TEST_DOMAIN_ID"])
    else:
        domain = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little")).randint(
            110, 200)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    ros_home = tempfile.mkdtemp(prefix="aloe_test_ros_home_")
    os.environ["ROS_HOME"] = ros_home
    os.environ["ROS_LOG_DIR"] = os.path.join(ros_home, "log")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    # The session's ROS_HOME holds only the nodes' ROS logs; tests keep the output they assert.
    ros_home = os.environ.get("ROS_HOME", "")
    if os.path.basename(ros_home).startswith("aloe_test_ros_home_"):
        shutil.rmtree(ros_home, ignore_errors=True)


@pytest.fixture
def ros_context():
    """An initialised rclpy context of the test's own; shut down afterwards."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture
def pack_phone_config():
    from aloe_ros.config import load_task_config

    return load_task_config("pack_phone")
