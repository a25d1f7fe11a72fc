"""sensor_msgs/Image <-> numpy, without cv_bridge and without importing ROS.

Works on any object with the Image fields (rclpy messages, rosbags-deserialised messages), so
nodes, the bag reader and the exporter share one conversion with one set of checks.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

__all__ = ["ENCODING_CHANNELS", "ImageError", "compressed_to_array", "edge_frame", "fill_image",
           "image_to_array", "to_encoding"]

ENCODING_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class ImageError(ValueError):
    """An image message that cannot be used: unknown encoding, wrong size, short data."""


def image_to_array(msg: Any, *, encoding: str | None = None,
                   expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Return the pixels as an (H, W, C) uint8 array (a copy), converted to ``encoding``.

    ``expect_size`` is (height, width); a mismatch raises ImageError naming both sizes.
    A sensor_msgs/CompressedImage (it has ``format``, no ``height``) is decoded first.
    """
    if not hasattr(msg, "height") and hasattr(msg, "format"):
        pixels = compressed_to_array(msg, encoding=encoding or "rgb8")
        if expect_size is not None and pixels.shape[:2] != tuple(expect_size):
            raise ImageError(f"image is {pixels.shape[0]}x{pixels.shape[1]}, expected "
                             f"{expect_size[0]}x{expect_size[1]}")
        return pixels
    source = str(msg.encoding)
    channels = ENCODING_CHANNELS.get(source)
    if channels is None:
        raise ImageError(f"unsupported encoding {source!r}; supported: {sorted(ENCODING_CHANNELS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if expect_size is not None and (height, width) != tuple(expect_size):
        raise ImageError(f"image is {height}x{width}, expected {expect_size[0]}x{expect_size[1]}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageError(f"step {step} is shorter than a row ({row_bytes} bytes)")
    data = np.frombuffer(memoryview(msg.data), dtype=np.uint8) if not isinstance(
        msg.data, np.ndarray) else msg.data.astype(np.uint8, copy=False).ravel()
    if data.size < step * height:
        raise ImageError(f"data has {data.size} bytes, expected {step * height}")
    pixels = data[: step * height].reshape(height, step)[:, :row_bytes]
    pixels = pixels.reshape(height, width, channels)
    return to_encoding(pixels, source, encoding or source)


def compressed_to_array(msg: Any, *, encoding: str = "rgb8") -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg / png, as image_transport writes it) into an
    (H, W, C) uint8 array in ``encoding``; corrupt or empty data raises ImageError."""
    data = msg.data
    raw = (data.astype(np.uint8, copy=False).ravel() if isinstance(data, np.ndarray)
           else np.frombuffer(memoryview(bytes(data) if isinstance(data, list) else data),
                              dtype=np.uint8))
    if raw.size == 0:
        raise ImageError(f"compressed image ({msg.format or 'no format'}) has no data")
    decoded = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint8:
        raise ImageError(f"compressed image ({msg.format or 'no format'}, {raw.size} bytes) "
                         "cannot be decoded as 8-bit jpeg/png")
    if decoded.ndim == 2:
        decoded, source = decoded[..., None], "mono8"
    else:
        source = "bgr8" if decoded.shape[2] == 3 else "bgra8"   # OpenCV decodes to BGR(A)
    return to_encoding(decoded, source, encoding)


def edge_frame(msg: Any, *, encoding: str, size: tuple[int, int], resize: bool) -> np.ndarray:
    """A camera message (Image or CompressedImage) as the (height, width) ``size`` frame the
    policy takes, in ``encoding``. With ``resize`` any other size is scaled (drivers publish
    their own resolutions); without it a size mismatch raises ImageError."""
    pixels = image_to_array(msg, encoding=encoding, expect_size=None if resize else size)
    if pixels.shape[:2] != tuple(size):
        interpolation = (cv2.INTER_AREA if pixels.shape[0] > size[0] else cv2.INTER_LINEAR)
        scaled = cv2.resize(pixels, (size[1], size[0]), interpolation=interpolation)
        pixels = scaled[..., None] if scaled.ndim == 2 else scaled
    return pixels


def to_encoding(pixels: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert an (H, W, C) uint8 array between the supported encodings (always a copy)."""
    if source == target:
        return pixels.copy()
    conversions = {
        ("bgr8", "rgb8"): cv2.COLOR_BGR2RGB, ("rgb8", "bgr8"): cv2.COLOR_RGB2BGR,
        ("mono8", "rgb8"): cv2.COLOR_GRAY2RGB, ("mono8", "bgr8"): cv2.COLOR_GRAY2BGR,
        ("rgb8", "mono8"): cv2.COLOR_RGB2GRAY, ("bgr8", "mono8"): cv2.COLOR_BGR2GRAY,
        ("rgba8", "rgb8"): cv2.COLOR_RGBA2RGB, ("bgra8", "rgb8"): cv2.COLOR_BGRA2RGB,
        ("rgba8", "bgr8"): cv2.COLOR_RGBA2BGR, ("bgra8", "bgr8"): cv2.COLOR_BGRA2BGR,
    }
    code = conversions.get((source, target))
    if code is None:
        raise ImageError(f"cannot convert {source} to {target}")
    converted = cv2.cvtColor(np.ascontiguousarray(pixels), code)
    return converted[..., None] if converted.ndim == 2 else converted


def fill_image(msg: Any, pixels: np.ndarray, encoding: str) -> Any:
    """Fill an Image message from an (H, W, C) or (H, W) uint8 array; returns ``msg``.

    ``data`` is assigned as an ``array.array``: assigning a numpy array or a list makes rclpy
    validate every element, which is orders of magnitude slower for camera frames.
    """
    if pixels.dtype != np.uint8:
        raise ImageError(f"pixels must be uint8, got {pixels.dtype}")
    channels = ENCODING_CHANNELS.get(encoding)
    if channels is None:
        raise ImageError(f"unsupported encoding {encoding!r}")
    frame = pixels if pixels.ndim == 3 else pixels[..., None]
    if frame.shape[2] != channels:
        raise ImageError(f"{encoding} needs {channels} channels, got {frame.shape[2]}")
    frame = np.ascontiguousarray(frame)
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(frame.shape[1] * channels)
    msg.data = array.array("B", frame.tobytes())
    return msg
