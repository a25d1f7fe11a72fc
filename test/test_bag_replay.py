"""``aloe-ros replay``: the recorded bytes come back on their topics, /clock carries bag time,
and ``bag info`` / ``bag repair`` behave on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bag_synth import T0_NS, EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import running_process, spin_until, write_task_config

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_reader import Bag


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("replay")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp / "bag", config, [EpisodePlan(steps=40)])
    return tmp / "bag", config


def test_replay_republishes_recorded_bytes_with_clock(bag: tuple[Path, Any], tmp_path: Path,
                                                      ros_context: Any) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from aloe_ros.nodes.bag_player import REPLAY_QOS

    path, config = bag
    with Bag(path) as reader:
        expected = [bytes(d) for _, _, _, d in reader.messages([config.topics.command])]
    node = rclpy.create_node("replay_listener", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    got: list[bytes] = []
    clocks: list[int] = []
    node.create_subscription(JointState, config.topics.command, got.append, REPLAY_QOS,
                             raw=True)
    node.create_subscription(Clock, "/clock", lambda m: clocks.append(
        m.clock.sec * 1_000_000_000 + m.clock.nanosec), 10)
    command = [sys.executable, "-m", "aloe_ros.cli", "replay", str(path), "--rate", "4",
               "--clock", "--topics", config.topics.command, "--wait-subscribers", "20"]
    try:
        with running_process(command, log_path=tmp_path / "replay.log") as process:
            assert spin_until(executor, lambda: len(got) >= len(expected), 60.0), \
                (tmp_path / "replay.log").read_text()
            process.wait(timeout=30)
            assert process.returncode == 0
    finally:
        node.destroy_node()
    assert got == expected
    assert clocks and all(T0_NS <= c <= T0_NS + 10**10 for c in clocks)
    assert clocks == sorted(clocks)
    assert "published 40 messages" in (tmp_path / "replay.log").read_text()


def test_replay_rejects_unknown_topic(bag: tuple[Path, Any]) -> None:
    result = subprocess.run([sys.executable, "-m", "aloe_ros.cli", "replay", str(bag[0]),
                             "--topics", "/nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "/nope" in result.stderr


def test_bag_info_and_repair_commands(bag: tuple[Path, Any], tmp_path: Path) -> None:
    from aloe_ros.cli import main

    info = subprocess.run([sys.executable, "-m", "aloe_ros.cli", "bag", "info", str(bag[0])],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert "episodes:     1 (success 1)" in info.stdout
    assert "interventions: 1" in info.stdout and "/aloe/command" in info.stdout
    assert main(["bag", "repair", str(bag[0])]) == 0  # finished bag: nothing to do
    assert main(["bag", "info", str(tmp_path / "missing")]) == 1
