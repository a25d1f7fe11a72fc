"""Frame sources for camera_node (no ROS): V4L2 devices, video files, image folders, URLs.

Every source returns RGB uint8 frames resized to the configured size, or None when no frame is
available right now; a source that fails raises FrameSourceError so the caller can log it and
retry. Nothing here blocks for long: device opens and reads are bounded by OpenCV's own timeouts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aloe_ros.config import CameraConfig

__all__ = ["FolderSource", "FrameSource", "FrameSourceError", "VideoCaptureSource", "open_source"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class FrameSourceError(RuntimeError):
    """The source cannot deliver frames (device gone, file unreadable, folder empty)."""


class FrameSource(Protocol):
    def read(self) -> np.ndarray:
        """The next frame, RGB uint8 (H, W, 3) at the configured size."""

    def close(self) -> None: ...


def _fit(frame_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame_bgr.ndim == 2:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    elif frame_bgr.shape[2] == 4:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2BGR)
    if frame_bgr.shape[:2] != (height, width):
        frame_bgr = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


class VideoCaptureSource:
    """A V4L2 device (index or /dev path), a video file (looped) or a GStreamer/RTSP URL."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        uri: str | int = camera.uri
        if camera.source == "device" and camera.uri.isdigit():
            uri = int(camera.uri)
        elif camera.source == "file" and not Path(camera.uri).is_file():
            raise FrameSourceError(f"video file {camera.uri!r} does not exist")
        self.capture = cv2.VideoCapture(uri)
        if not self.capture.isOpened():
            self.capture.release()
            raise FrameSourceError(f"cannot open {camera.source} {camera.uri!r}")
        if camera.source == "device":
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, camera.width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, camera.height)
            self.capture.set(cv2.CAP_PROP_FPS, camera.fps)

    def read(self) -> np.ndarray:
        ok, frame = self.capture.read()
        if not ok and self.camera.source == "file":
            # End of the video: loop from the start.
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        if not ok or frame is None:
            raise FrameSourceError(f"no frame from {self.camera.source} {self.camera.uri!r}")
        return _fit(frame, self.camera.width, self.camera.height)

    def close(self) -> None:
        self.capture.release()


class FolderSource:
    """The images of a folder in name order, looped; unreadable files are skipped and logged."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        folder = Path(camera.uri)
        if not folder.is_dir():
            raise FrameSourceError(f"image folder {camera.uri!r} does not exist")
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FrameSourceError(f"image folder {camera.uri!r} holds no images")
        self.index = 0

    def read(self) -> np.ndarray:
        for _ in range(len(self.files)):
            path = self.files[self.index]
            self.index = (self.index + 1) % len(self.files)
            frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if frame is not None:
                return _fit(frame, self.camera.width, self.camera.height)
            log.error("skipping unreadable image %s", path)
        raise FrameSourceError(f"no readable image in folder {self.camera.uri!r}")

    def close(self) -> None:
        pass


def open_source(camera: CameraConfig) -> FrameSource:
    """Open the source a camera config names; raise FrameSourceError when it cannot."""
    if camera.source == "folder":
        return FolderSource(camera)
    if camera.source in ("device", "file", "url"):
        return VideoCaptureSource(camera)
    raise FrameSourceError(f"camera {camera.name!r} has source {camera.source!r}, "
                           "which camera_node does not open")
