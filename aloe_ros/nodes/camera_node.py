"""camera_node: publishes sensor_msgs/Image + CameraInfo from OpenCV sources.

Serves every camera of the task whose source is device, file, folder or url (or the subset named
by the ``cameras`` parameter). Each camera has its own thread, so a slow or vanished device never
delays another; a source that fails is logged and reopened every ``retry_period_s`` seconds
instead of crashing the node. Cameras with ``source: topic`` are published by their own drivers;
``source: sim`` cameras by sim_robot_node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import CameraInfo, Image

from aloe_ros.config import CameraConfig, ConfigError
from aloe_ros.io.frame_sources import FrameSource, FrameSourceError, open_source
from aloe_ros.io.images import fill_image, to_encoding
from aloe_ros.msg import Status
from aloe_ros.nodes.common import AloeNode, run_node

SERVED_SOURCES = ("device", "file", "folder", "url")


class CameraNode(AloeNode):
    def __init__(self) -> None:
        super().__init__("camera")
        self.declare_parameter("cameras", [""], ParameterDescriptor(
            description="Camera names to serve; empty: every device/file/folder/url camera",
            read_only=True))
        self.declare_parameter("retry_period_s", 1.0, ParameterDescriptor(
            description="Seconds between attempts to reopen a failed source"))
        wanted = [n for n in self.get_parameter("cameras").value if n]
        self.cameras = self.select_cameras(wanted)
        self.stop_event = threading.Event()
        self.image_pubs = {c.name: self.create_publisher(Image, c.topic, self.sensor_qos)
                           for c in self.cameras}
        self.info_pubs = {
            c.name: self.create_publisher(CameraInfo, c.topic.rsplit("/", 1)[0] + "/camera_info",
                                          self.sensor_qos)
            for c in self.cameras
        }
        self.status_pub = self.create_publisher(Status, self.config.topics.status,
                                                self.events_qos)
        self.counter_lock = threading.Lock()
        self.threads = [threading.Thread(target=self.serve, args=(c,), name=f"camera-{c.name}",
                                         daemon=True) for c in self.cameras]
        for thread in self.threads:
            thread.start()
        self.create_timer(1.0, self.publish_status)
        if not self.cameras:
            self.get_logger().warning("no camera of this task has a device/file/folder/url source;"
                                      " nothing to publish")

    def select_cameras(self, wanted: list[str]) -> list[CameraConfig]:
        by_name = {c.name: c for c in self.config.cameras}
        for name in wanted:
            if name not in by_name:
                raise ConfigError(f"cameras ({name})", f"no camera {name!r} in the task config; "
                                  f"known: {sorted(by_name)}", self.config.source_path)
        chosen = [by_name[n] for n in wanted] if wanted else list(by_name.values())
        for camera in chosen:
            if camera.source == "sim" and not self.use_sim:
                raise ConfigError(f"cameras[{camera.name}].source",
                                  "is 'sim' but the graph runs without the sim; set a device, "
                                  "file, folder, url or topic source", self.config.source_path)
        return [c for c in chosen if c.source in SERVED_SOURCES]

    def count_safe(self, name: str) -> None:
        with self.counter_lock:
            self.count(name)

    def serve(self, camera: CameraConfig) -> None:
        """Open, read and publish one camera at its rate until the node stops; never raises."""
        period = 1.0 / camera.fps
        retry = float(self.get_parameter("retry_period_s").value)
        source: FrameSource | None = None
        next_time = time.monotonic()
        while not self.stop_event.is_set():
            if source is None:
                try:
                    source = open_source(camera)
                    self.get_logger().info(f"camera {camera.name}: opened {camera.source} "
                                           f"{camera.uri!r}")
                except FrameSourceError as exc:
                    self.count_safe(f"open_failures_{camera.name}")
                    self.get_logger().error(f"camera {camera.name}: {exc}; retrying in {retry:g} s",
                                            throttle_duration_sec=10.0)
                    self.stop_event.wait(retry)
                    continue
            try:
                frame = source.read()
            except FrameSourceError as exc:
                self.count_safe(f"read_failures_{camera.name}")
                self.get_logger().error(f"camera {camera.name}: {exc}; reopening")
                source.close()
                source = None
                continue
            except Exception as exc:  # noqa: BLE001 - a driver bug must not kill the node
                self.count_safe(f"read_failures_{camera.name}")
                self.get_logger().error(f"camera {camera.name}: unexpected {exc!r}; reopening")
                source.close()
                source = None
                continue
            self.publish(camera, frame)
            next_time += period
            delay = next_time - time.monotonic()
            if delay < -period:  # the source is slower than fps: do not try to catch up
                self.count_safe(f"late_frames_{camera.name}")
                next_time = time.monotonic()
            elif delay > 0:
                self.stop_event.wait(delay)
        if source is not None:
            source.close()

    def publish(self, camera: CameraConfig, frame_rgb) -> None:  # type: ignore[no-untyped-def]
        msg = Image()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = camera.frame_id
        fill_image(msg, to_encoding(frame_rgb, "rgb8", camera.encoding), camera.encoding)
        self.image_pubs[camera.name].publish(msg)
        info = CameraInfo()
        info.header = msg.header
        info.height, info.width = camera.height, camera.width
        self.info_pubs[camera.name].publish(info)
        self.count_safe(f"frames_{camera.name}")

    def publish_status(self) -> None:
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        with self.counter_lock:
            msg.counter_names = list(self.counters)
            msg.counter_values = [int(v) for v in self.counters.values()]
        self.status_pub.publish(msg)

    def close(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=2.0)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
