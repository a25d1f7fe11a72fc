"""BagRecorder (the logger's ROS-free writer): loss accounting, disk guard, late topics,
chunk compression."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aloe_ros.io.bag_reader import Bag
from aloe_ros.io.bag_writer import BagRecorder

JOINTS = "sensor_msgs/msg/JointState"


def _joint_bytes(value: float) -> bytes:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    return serialize_message(JointState(name=["a"], position=[value]))


def test_queue_overflow_is_counted_per_topic(tmp_path: Path) -> None:
    recorder = BagRecorder(tmp_path / "bag", {"/a": JOINTS, "/b": JOINTS}, queue_max_mb=1,
                           min_free_disk_mb=0, fsync=False)
    assert recorder.submit("/a", 1, _joint_bytes(1.0))
    assert not recorder.submit("/b", 2, bytes(2 * 1024 * 1024))  # larger than the queue
    assert not recorder.submit("/b", 3, bytes(2 * 1024 * 1024))
    stats = recorder.close()
    assert stats.lost == {"/b": 2} and stats.written == {"/a": 1, "/b": 0}
    assert not recorder.submit("/a", 4, _joint_bytes(2.0))  # after close: counted, not kept
    assert recorder.snapshot().lost == {"/b": 2, "/a": 1}
    with Bag(tmp_path / "bag") as bag:
        assert bag.custom_json("aloe_ros.lost_messages", None) == {"/b": 2}
        assert bag.topics["/a"].count == 1


def test_message_on_an_unrecorded_topic_is_counted_and_recording_goes_on(
        tmp_path: Path) -> None:
    recorder = BagRecorder(tmp_path / "bag", {"/a": JOINTS}, min_free_disk_mb=0, fsync=False)
    recorder.submit("/nope", 1, _joint_bytes(0.0))
    recorder.submit("/a", 2, _joint_bytes(1.0))
    stats = recorder.close()
    assert stats.lost == {"/nope": 1} and stats.written == {"/a": 1} and not stats.error


def test_disk_guard_finishes_the_bag(tmp_path: Path) -> None:
    errors: list[str] = []
    recorder = BagRecorder(tmp_path / "bag", {"/a": JOINTS}, flush_period_s=0.1,
                           min_free_disk_mb=10**9, fsync=False, on_error=errors.append)
    recorder.submit("/a", 1, _joint_bytes(1.0))
    deadline = time.monotonic() + 10
    while not recorder.snapshot().stopped and time.monotonic() < deadline:
        time.sleep(0.02)
    assert errors and "min_free_disk_mb" in errors[0]
    assert (tmp_path / "bag" / "metadata.yaml").is_file()
    assert not recorder.submit("/a", 2, _joint_bytes(2.0))
    stats = recorder.close()
    assert stats.stopped and "min_free_disk_mb" in stats.error and stats.lost == {"/a": 1}
    with Bag(tmp_path / "bag") as bag:
        assert bag.topics["/a"].count == 1


def test_late_topic_is_recorded(tmp_path: Path) -> None:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    recorder = BagRecorder(tmp_path / "bag", {"/a": JOINTS}, min_free_disk_mb=0, fsync=False)
    recorder.add_topic("/late", "std_msgs/msg/String")
    recorder.submit("/late", 5, serialize_message(String(data="hello")))
    recorder.close()
    with Bag(tmp_path / "bag") as bag:
        (item,) = list(bag.decoded(["/late"]))
        assert item[2].data == "hello"


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_compressed_chunks_read_back(tmp_path: Path, compression: str) -> None:
    from mcap.reader import make_reader

    recorder = BagRecorder(tmp_path / "bag", {"/a": JOINTS}, compression=compression,
                           min_free_disk_mb=0, fsync=False)
    for i in range(50):
        recorder.submit("/a", i + 1, _joint_bytes(float(i)))
    recorder.close()
    with Bag(tmp_path / "bag") as bag:
        values = [float(m.position[0]) for _, _, m in bag.decoded()]
    assert values == [float(i) for i in range(50)]
    with open(tmp_path / "bag" / "bag.mcap", "rb") as handle:
        reader = make_reader(handle)
        assert sum(1 for _ in reader.iter_messages()) == 50
        summary = reader.get_summary()
        assert summary is not None
        assert {c.compression for c in summary.chunk_indexes} == {compression}
