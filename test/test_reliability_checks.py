"""The fault suite's rules (ROS-free) and the bag recovery it relies on: a logger killed
again while repairing its predecessor's bag (a crash loop) must not strand that bag."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_reader import Bag
from aloe_ros.io.bag_repair import find_unfinished_bags, repair_bag
from aloe_ros.io.bag_writer import BagRecorder
from aloe_ros.reliability.checks import check_bag, check_commands, estop_latency, motion_range

ROBOT = load_task_config("pack_phone").robot
HOME = (np.asarray(ROBOT.position_lower) + np.asarray(ROBOT.position_upper)) / 2
STEP = np.asarray(ROBOT.velocity_limits) / ROBOT.control_rate_hz


@dataclass(frozen=True)
class Cmd:
    received_ns: int
    stamp_s: float
    positions: np.ndarray
    frame_id: str = "v1"


def commands_from(poses: list[np.ndarray]) -> list[Cmd]:
    return [Cmd(i * 33_000_000, i / 30.0, p) for i, p in enumerate(poses)]


def test_commands_within_one_tick_are_safe() -> None:
    poses = [HOME + (k % 2) * 0.9 * STEP for k in range(20)]   # back and forth
    check = check_commands(commands_from(poses), [], ROBOT)
    assert check.safe and check.commands == 20 and check.worst_step_ratio == pytest.approx(0.9)


@pytest.mark.parametrize("bad, rule", [
    (lambda q: q + 3 * STEP, "jumps"),
    (lambda q: np.full_like(q, np.nan), "non_finite"),
    (lambda q: q + np.where(np.arange(q.size) == 0, 10.0, 0.0), "beyond_position_limits"),
])
def test_each_rule_catches_its_violation(bad, rule: str) -> None:  # noqa: ANN001
    poses = [HOME.copy() for _ in range(5)]
    poses[3] = bad(poses[3])
    check = check_commands(commands_from(poses), [], ROBOT)
    assert not check.safe and getattr(check, rule) >= 1


def test_a_resync_to_the_measured_pose_is_not_a_jump() -> None:
    """After an episode reset the sim stands at home; the mux restarts from there."""
    far = HOME + 3 * STEP
    poses = [far, far, HOME + 0.5 * STEP]
    measured = [(60_000_000, HOME)]           # stamped before the third command (2/30 s)
    assert check_commands(commands_from(poses), measured, ROBOT).safe
    assert not check_commands(commands_from(poses), [], ROBOT).safe


def test_estop_latency_counts_commands_stamped_after_the_edge() -> None:
    commands = commands_from([HOME] * 10)      # stamps 0, 1/30, ..., 9/30
    assert estop_latency(commands, 9.5 / 30, 1 / 30) == (0, 0.0)
    count, ticks = estop_latency(commands, 7.5 / 30, 1 / 30)
    assert count == 2 and ticks == pytest.approx(1.5)


def test_motion_range_of_a_still_and_a_moving_arm() -> None:
    assert motion_range([(i, HOME) for i in range(5)]) == 0.0
    assert motion_range([(0, HOME), (1, HOME + 0.1)]) == pytest.approx(0.1)


def _killed_recording(tmp_path: Path, count: int = 150) -> Path:
    """An MCAP file as a kill -9 leaves it: flushed chunks, no summary, no metadata."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    live = tmp_path / "live"
    recorder = BagRecorder(live, {"/aloe/joint_states": "sensor_msgs/msg/JointState"},
                           custom_data={"aloe_ros.task": "pack_phone"}, flush_period_s=0.2,
                           min_free_disk_mb=0, fsync=False)
    for i in range(count):
        recorder.submit("/aloe/joint_states", 1_000 + i,
                        serialize_message(JointState(name=["a"], position=[float(i)])))
    # Everything written, then two more flushes: all of it is on disk, as after a real kill
    # more than flush_period_s after the last message.
    flushes = None
    for _ in range(400):
        stats = recorder.snapshot()
        if flushes is None and sum(stats.written.values()) == count:
            flushes = stats.flushes
        if flushes is not None and stats.flushes >= flushes + 2:
            break
        time.sleep(0.05)
    crashed = tmp_path / "bags" / "crashed"
    crashed.mkdir(parents=True)
    shutil.copy(live / "live.mcap", crashed / "crashed.mcap")
    shutil.copy(live / "aloe_recording.yaml", crashed / "aloe_recording.yaml")
    recorder.close()
    return crashed


@pytest.mark.parametrize("partial_rewrite", [True, False])
def test_a_repair_interrupted_by_another_kill_is_redone(tmp_path: Path,
                                                        partial_rewrite: bool) -> None:
    crashed = _killed_recording(tmp_path)
    # The respawned logger moved the original aside and was killed while rewriting it.
    aside = crashed.with_name("crashed.unfinished")
    crashed.rename(aside)
    if partial_rewrite:
        crashed.mkdir()
        (crashed / "crashed.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    assert find_unfinished_bags(crashed.parent) == [crashed]
    report = repair_bag(crashed)
    assert report.messages == 150
    assert not aside.exists() and find_unfinished_bags(crashed.parent) == []
    with Bag(crashed) as bag:
        assert bag.message_count == 150
        assert bag.custom_data["aloe_ros.task"] == "pack_phone"


def test_check_bag_repairs_what_nobody_repaired(tmp_path: Path) -> None:
    crashed = _killed_recording(tmp_path, count=40)
    check = check_bag(crashed)
    assert check.readable and check.repaired_by == "suite" and check.messages == 40
    again = check_bag(crashed)
    assert again.readable and again.repaired_by == "logger"   # marked repaired in metadata


def test_bench_faults_is_a_cli_command() -> None:
    from aloe_ros.cli import build_parser

    args = build_parser().parse_args(["bench", "faults", "--trials", "2", "--nodes",
                                      "logger,learner", "--camera-size", "96x72"])
    assert args.bench == "faults" and args.trials == 2 and args.camera_size == (96, 72)
    assert args.nodes == "logger,learner"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "faults", "--camera-size", "big"])
