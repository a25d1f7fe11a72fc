"""camera_node: frames from a video file and an image folder; a vanished source never kills it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from helpers import node_process_command, running_process, spin_until, write_task_config
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image

from aloe_ros.config import CameraConfig, QosProfileConfig
from aloe_ros.io.frame_sources import FrameSourceError, open_source
from aloe_ros.io.images import image_to_array
from aloe_ros.msg import Status
from aloe_ros.nodes.common import qos_profile


def make_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8)
        frame[:, :, 2] = 200  # red in BGR: lets the test check the channel order
        writer.write(frame)
    writer.release()
    return path


def make_folder(path: Path, count: int = 3) -> Path:
    path.mkdir()
    for i in range(count):
        image = np.zeros((30, 40, 3), np.uint8)
        image[:, :, 2] = 50 * (i + 1)  # BGR red channel
        cv2.imwrite(str(path / f"frame_{i:03d}.png"), image)
    return path


def camera(source: str, uri: str, name: str = "cam") -> CameraConfig:
    return CameraConfig(name=name, source=source, uri=uri, width=32, height=24, fps=20.0)  # type: ignore[arg-type]


def test_video_file_source_loops_and_resizes(tmp_path: Path) -> None:
    source = open_source(camera("file", str(make_video(tmp_path / "clip.avi", frames=3))))
    frames = [source.read() for _ in range(7)]  # more than the clip holds: it loops
    source.close()
    assert all(f.shape == (24, 32, 3) for f in frames)
    assert frames[0][..., 0].mean() > 150, "RGB order: red channel first"


def test_folder_source_reads_images_in_order_and_loops(tmp_path: Path) -> None:
    source = open_source(camera("folder", str(make_folder(tmp_path / "images"))))
    reds = [int(source.read()[..., 0].mean()) for _ in range(4)]
    assert reds == [50, 100, 150, 50]


@pytest.mark.parametrize(("kind", "uri"), [("device", "/dev/video_missing"),
                                           ("file", "/no/such/clip.mp4"),
                                           ("folder", "/no/such/folder")])
def test_missing_sources_raise_a_clear_error(kind: str, uri: str) -> None:
    with pytest.raises(FrameSourceError, match=uri.split("/")[-1]):
        open_source(camera(kind, uri))


def _camera_config(tmp_path: Path, cameras: list[dict]) -> Path:
    return write_task_config(tmp_path, overrides={"cameras": cameras})


def _listen(ros_context, config_cameras: list[dict]):  # noqa: ANN001, ANN202
    node = rclpy.create_node("camera_listener", context=ros_context)
    received: dict[str, list[Image]] = {c["name"]: [] for c in config_cameras}
    statuses: list[Status] = []
    sensor = qos_profile(QosProfileConfig(depth=5))
    for c in config_cameras:
        node.create_subscription(Image, f"/aloe/cam/{c['name']}/image",
                                 lambda m, n=c["name"]: received[n].append(m), sensor)
    node.create_subscription(Status, "/aloe/status", statuses.append,
                             qos_profile(QosProfileConfig(depth=100)))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    return node, executor, received, statuses


def test_camera_node_publishes_file_and_folder_cameras(ros_context, tmp_path: Path) -> None:  # noqa: ANN001
    cameras = [
        {"name": "video", "source": "file", "uri": str(make_video(tmp_path / "clip.avi")),
         "width": 64, "height": 48, "fps": 15.0},
        {"name": "stills", "source": "folder", "uri": str(make_folder(tmp_path / "images")),
         "width": 40, "height": 30, "fps": 15.0, "encoding": "bgr8"},
    ]
    path = _camera_config(tmp_path, cameras)
    node, executor, received, _ = _listen(ros_context, cameras)
    command = node_process_command("camera_node", path, sim=False)
    with running_process(command, log_path=tmp_path / "camera.log") as process:
        ok = spin_until(executor, lambda: all(len(v) >= 5 for v in received.values()), 30)
        assert process.poll() is None, (tmp_path / "camera.log").read_text()
    node.destroy_node()
    assert ok, {k: len(v) for k, v in received.items()}
    video = image_to_array(received["video"][-1])
    assert video.shape == (48, 64, 3) and received["video"][-1].encoding == "rgb8"
    stills = received["stills"][-1]
    assert (stills.height, stills.width, stills.encoding) == (30, 40, "bgr8")
    assert stills.header.frame_id == "stills_optical_frame"


def test_vanished_device_does_not_crash_the_node(ros_context, tmp_path: Path) -> None:  # noqa: ANN001
    folder = make_folder(tmp_path / "images")
    cameras = [
        {"name": "gone", "source": "device", "uri": "/dev/video_missing", "fps": 10.0},
        {"name": "stills", "source": "folder", "uri": str(folder), "fps": 10.0},
    ]
    path = _camera_config(tmp_path, cameras)
    node, executor, received, statuses = _listen(ros_context, cameras)
    command = node_process_command("camera_node", path, sim=False,
                                   params={"retry_period_s": "0.2"})
    log = tmp_path / "camera.log"
    with running_process(command, log_path=log) as process:
        assert spin_until(executor, lambda: len(received["stills"]) >= 3, 30)
        shutil.rmtree(folder)  # the folder camera vanishes mid-run too
        time.sleep(1.5)

        def failures_reported() -> bool:
            counters = [dict(zip(s.counter_names, s.counter_values)) for s in statuses
                        if s.node == "camera"]
            return bool(counters) and counters[-1].get("open_failures_gone", 0) >= 2 and (
                counters[-1].get("read_failures_stills", 0) >= 1)

        assert spin_until(executor, failures_reported, 15), statuses[-1:]
        assert process.poll() is None, log.read_text()
    node.destroy_node()
    text = log.read_text()
    assert "camera gone: cannot open device '/dev/video_missing'" in text
    assert "retrying" in text
