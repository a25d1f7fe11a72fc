"""Cameras from existing drivers: raw or compressed images, encodings and sizes fixed at the edge.

Core: jpeg / png / mono decode, BGR -> RGB, resize, corrupt data. Node: chunk_inference_node
takes a compressed topic camera at the driver's resolution, and a corrupt frame is counted and
logged while the node keeps producing chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from helpers import spin_until, write_task_config
from policy_fixtures import tiny_builtin

from aloe_ros.config import load_task_config
from aloe_ros.io.images import ImageError, compressed_to_array, edge_frame

torch.set_num_threads(1)


class FakeCompressed:
    """The fields of sensor_msgs/CompressedImage (as rclpy and rosbags give them)."""

    def __init__(self, data: bytes, fmt: str = "jpeg") -> None:
        self.format = fmt
        self.data = data


def encoded(pixels_bgr: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, pixels_bgr)
    assert ok
    return buf.tobytes()


def test_png_decodes_exactly_and_bgr_becomes_rgb() -> None:
    bgr = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    rgb = compressed_to_array(FakeCompressed(encoded(bgr, ".png"), "png"), encoding="rgb8")
    assert np.array_equal(rgb, bgr[..., ::-1])


def test_jpeg_from_a_driver_is_resized_to_the_policy_size() -> None:
    bgr = np.zeros((480, 640, 3), np.uint8)
    bgr[..., 2] = 220                                    # red in BGR
    frame = edge_frame(FakeCompressed(encoded(bgr, ".jpg")), encoding="rgb8", size=(24, 32),
                       resize=True)
    assert frame.shape == (24, 32, 3)
    assert frame[..., 0].mean() > 200 and frame[..., 2].mean() < 20


def test_mono_png_to_rgb() -> None:
    gray = np.full((8, 8), 77, np.uint8)
    frame = compressed_to_array(FakeCompressed(encoded(gray, ".png"), "png"), encoding="rgb8")
    assert frame.shape == (8, 8, 3) and np.all(frame == 77)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff garbage", bytes(range(256))])
def test_corrupt_compressed_data_raises_image_error(data: bytes) -> None:
    with pytest.raises(ImageError, match="compressed image"):
        compressed_to_array(FakeCompressed(data))


def test_without_resize_a_size_mismatch_is_an_error() -> None:
    data = encoded(np.zeros((10, 10, 3), np.uint8), ".png")
    with pytest.raises(ImageError, match="expected 24x32"):
        edge_frame(FakeCompressed(data, "png"), encoding="rgb8", size=(24, 32), resize=False)


def test_raw_driver_image_in_bgr_is_converted_and_resized() -> None:
    from sensor_msgs.msg import Image

    from aloe_ros.io.images import fill_image

    bgr = np.zeros((60, 80, 3), np.uint8)
    bgr[..., 0] = 255
    frame = edge_frame(fill_image(Image(), bgr, "bgr8"), encoding="rgb8", size=(24, 32),
                       resize=True)
    assert frame.shape == (24, 32, 3) and frame[..., 2].min() == 255 and frame[..., 0].max() == 0


def test_recorded_type_of_a_compressed_camera(tmp_path: Path) -> None:
    from aloe_ros.io.bag_types import recorded_topics

    cameras = [{"name": "top", "source": "topic", "topic": "/usb_cam/image_raw/compressed",
                "compressed": True, "width": 32, "height": 24}]
    config = load_task_config(write_task_config(tmp_path, overrides={"cameras": cameras}))
    table = recorded_topics(config)
    assert table["/usb_cam/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert table[config.shadow.command_topic] == "sensor_msgs/msg/JointState"


# ---- the inference node's intake --------------------------------------------------------------
def test_inference_node_takes_compressed_driver_camera(tmp_path: Path, ros_context: Any) -> None:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage, JointState

    from aloe_ros.msg import ActionChunk
    from aloe_ros.nodes.chunk_inference_node import ChunkInferenceNode

    cameras = [{"name": name, "source": "topic", "topic": f"/drv/{name}/image_raw/compressed",
                "compressed": True, "width": 32, "height": 24}
               for name in ("top", "left_wrist", "right_wrist")]
    path = write_task_config(tmp_path, overrides={"cameras": cameras, "policy": {
        "chunk_horizon": 10, "execute_horizon": 5, "flow_steps": 2,
        "max_observation_age_s": 1.0}})
    config = load_task_config(path)
    policy_dir = tmp_path / "policy"
    tiny_builtin(config).save(policy_dir, version="tiny")
    node = ChunkInferenceNode(context=ros_context, parameter_overrides=[
        Parameter("config_file", value=str(path)), Parameter("policy_path", value=str(policy_dir))])
    driver = rclpy.create_node("driver", context=ros_context)
    image_pubs = [driver.create_publisher(CompressedImage, c["topic"], 10) for c in cameras]
    state_pub = driver.create_publisher(JointState, config.topics.joint_states, 10)
    chunks: list[Any] = []
    driver.create_subscription(ActionChunk, config.topics.policy_chunk, chunks.append, 100)
    jpeg = encoded(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8),
                   ".jpg")
    corrupt = {"on": False}

    def publish() -> None:
        now = driver.get_clock().now().to_msg()
        state = JointState()
        state.header.stamp = now
        state.name = list(config.robot.joint_names)
        state.position = list(config.robot.home_position)
        state_pub.publish(state)
        for pub in image_pubs:
            msg = CompressedImage()
            msg.header.stamp = now
            msg.format = "jpeg"
            msg.data = b"\x00\x01corrupt" if corrupt["on"] else jpeg
            pub.publish(msg)

    driver.create_timer(1 / 30, publish)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    executor.add_node(node)
    executor.add_node(driver)
    try:
        assert spin_until(executor, lambda: len(chunks) >= 2, 60.0)
        assert not any(k.startswith("bad_images") for k in node.counters)
        corrupt["on"] = True
        assert spin_until(executor, lambda: node.counters.get("bad_images_top", 0) >= 3, 30.0)
        assert "cannot be decoded" in node.last_problem or "compressed" in node.last_problem
        corrupt["on"] = False
        seen = len(chunks)
        assert spin_until(executor, lambda: len(chunks) >= seen + 2, 60.0)   # still running
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        driver.destroy_node()
