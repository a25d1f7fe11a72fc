"""Camera frames for episode rows: the second pass over a bag's image topics (no ROS).

io/bag_episodes picks, per row and camera, the index of the newest frame (in log order) at or
before the row's time; this pass decodes only those frames, converts them to RGB and, with
``resize``, scales them. An undecodable frame is logged and leaves its rows black.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from aloe_ros.io.bag_reader import Bag, BagError
from aloe_ros.io.images import ImageError, image_to_array

__all__ = ["fill_images"]

log = logging.getLogger(__name__)


def fill_images(bag: Bag, cameras: dict[str, str], frame_indices: list[dict[str, np.ndarray]],
                rows: list[int], resize: tuple[int, int] | None) -> list[dict[str, np.ndarray]]:
    """Second pass over the image topics: decode only the frames some row uses."""
    wanted: dict[str, dict[int, list[tuple[int, int]]]] = {n: {} for n in cameras}
    out: list[dict[str, np.ndarray]] = [{} for _ in rows]
    for e, indices in enumerate(frame_indices):
        for name, idx in indices.items():
            for row, frame in enumerate(idx.tolist()):
                wanted[name].setdefault(frame, []).append((e, row))
    topic_camera = {topic: name for name, topic in cameras.items()}
    counters = {name: -1 for name in cameras}
    for topic, msgtype, _log_ns, data in bag.messages(topic_camera):
        name = topic_camera[topic]
        counters[name] += 1
        targets = wanted[name].get(counters[name])
        if not targets:
            continue
        try:
            pixels = image_to_array(bag.decode(msgtype, data), encoding="rgb8")
        except (ImageError, BagError) as exc:  # a bad frame must not cost the episode
            log.warning("%s: unusable frame %d on %s (%s); its rows keep a black frame",
                        bag.path, counters[name], topic, exc)
            continue
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        for e, row in targets:
            frames = out[e].get(name)
            if frames is None:
                h, w = resize or pixels.shape[:2]
                frames = out[e][name] = np.zeros((rows[e], h, w, 3), np.uint8)
            if frames.shape[1:3] != pixels.shape[:2]:
                pixels = cv2.resize(pixels, (frames.shape[2], frames.shape[1]),
                                    interpolation=cv2.INTER_AREA)
            frames[row] = pixels
    # Rows whose every frame was undecodable: black frames of the camera's size, never a gap.
    for e, indices in enumerate(frame_indices):
        for name in indices:
            if name not in out[e]:
                size = resize or next((o[name].shape[1:3] for o in out if name in o), None)
                if size is None:
                    raise BagError(f"{bag.path}: no decodable frame on {cameras[name]}")
                out[e][name] = np.zeros((rows[e], size[0], size[1], 3), np.uint8)
    return out
