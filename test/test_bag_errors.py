"""Broken bags get a clear BagError naming the file; a killed recording is repaired."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_episodes import read_episodes
from aloe_ros.io.bag_reader import Bag, BagError
from aloe_ros.io.bag_repair import RepairError, find_unfinished_bags, repair_bag
from aloe_ros.io.bag_writer import BagRecorder


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("errors")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp / "good", config, [EpisodePlan(steps=40), EpisodePlan(steps=30)])
    return tmp / "good", config


def _copy(bag: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    target = tmp_path / name
    shutil.copytree(bag, target)
    mcap = target / f"{bag.name}.mcap"
    return target, mcap


def test_truncated_bag_names_the_file(good_bag: tuple[Path, Any], tmp_path: Path) -> None:
    bag, mcap = _copy(good_bag[0], tmp_path, "truncated")
    os.truncate(mcap, mcap.stat().st_size // 2)
    with pytest.raises(BagError, match=str(bag)) as info:
        read_episodes(bag)
    assert "bag repair" in str(info.value)


def test_corrupt_data_section_is_an_error_not_silent_loss(good_bag: tuple[Path, Any],
                                                         tmp_path: Path) -> None:
    bag, mcap = _copy(good_bag[0], tmp_path, "corrupt")
    data = bytearray(mcap.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(range(256)) * 15 + bytes(160)
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match=str(bag)):
        read_episodes(bag)


def test_missing_and_unfinished_bags(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="no such bag"):
        Bag(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        Bag(tmp_path / "empty")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "unfinished.mcap").write_bytes(b"\x89MCAP0\r\n")
    with pytest.raises(BagError, match="bag repair"):
        Bag(unfinished)


def test_killed_recording_is_repaired_with_its_metadata(good_bag: tuple[Path, Any],
                                                        tmp_path: Path) -> None:
    """An unfinished bag (no summary, no metadata.yaml, torn last chunk) loses nothing that
    was flushed: simulate the kill by copying the file while the recorder is still open."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    live = tmp_path / "live"
    recorder = BagRecorder(live, {"/aloe/joint_states": "sensor_msgs/msg/JointState"},
                           custom_data={"aloe_ros.task": "pack_phone"}, flush_period_s=0.2,
                           min_free_disk_mb=0, fsync=False)
    for i in range(200):
        msg = JointState(name=["a"], position=[float(i)])
        assert recorder.submit("/aloe/joint_states", 1_000 + i, serialize_message(msg))
    deadline = 200
    while recorder.snapshot().flushes < 3 and deadline:  # two flush periods at least
        import time

        time.sleep(0.05)
        deadline -= 1
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(live / "live.mcap", crashed / "crashed.mcap")
    shutil.copy(live / "aloe_recording.yaml", crashed / "aloe_recording.yaml")
    with open(crashed / "crashed.mcap", "ab") as handle:  # a torn chunk after the last flush
        handle.write(b"\x06" + (10_000).to_bytes(8, "little") + b"partial")
    recorder.close()
    assert find_unfinished_bags(tmp_path) == [crashed]
    with pytest.raises(BagError, match="bag repair"):
        Bag(crashed)
    report = repair_bag(crashed)
    assert report.messages == 200 and report.stop_reason
    with Bag(crashed) as bag:
        values = [float(bag.decode(t, d).position[0]) for _, t, _, d in bag.messages()]
        assert values == [float(i) for i in range(200)]
        assert bag.custom_data["aloe_ros.task"] == "pack_phone"
        assert bag.custom_data["aloe_ros.repaired"] == "true"
    assert not (tmp_path / "crashed.unfinished").exists()
    assert find_unfinished_bags(tmp_path) == []


def test_repair_refuses_what_is_not_a_bag(tmp_path: Path) -> None:
    with pytest.raises(RepairError, match="not a bag directory"):
        repair_bag(tmp_path / "missing")
    (tmp_path / "nomcap").mkdir()
    with pytest.raises(RepairError, match="no .mcap"):
        repair_bag(tmp_path / "nomcap")
