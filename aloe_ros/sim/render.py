"""Cameras of the built-in sim: an overhead view and one wrist view per arm, drawn with OpenCV.

One overhead canvas is drawn per frame; the top camera is that canvas resized, and each wrist
camera is a rotated, zoomed crop around its gripper (a wider view the higher the gripper is), so
three cameras cost little more than one. Height is visible: a raised object or gripper is drawn
larger and brighter, with a shadow on the table.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from aloe_ros.sim.scenes import TABLE_X, TABLE_Y, Scene, SimObject

__all__ = ["SimCameraRenderer", "SIM_CAMERA_NAMES"]

SIM_CAMERA_NAMES = ("top", "left_wrist", "right_wrist")
ARM_COLORS = {"left": (60, 200, 230), "right": (230, 90, 200)}
CANVAS_PIXELS_PER_METRE = 640.0


class SimCameraRenderer:
    """Renders the named cameras of a scene as RGB uint8 arrays of the configured size."""

    def __init__(self, cameras: dict[str, tuple[int, int]]) -> None:
        """``cameras``: name -> (height, width)."""
        unknown = sorted(set(cameras) - set(SIM_CAMERA_NAMES))
        if unknown:
            raise ValueError(
                f"the sim cannot render camera(s) {unknown}; it has {list(SIM_CAMERA_NAMES)}"
            )
        self.cameras = dict(cameras)
        width_m = TABLE_X[1] - TABLE_X[0]
        depth_m = TABLE_Y[1] - TABLE_Y[0]
        self.canvas_size = (int(depth_m * CANVAS_PIXELS_PER_METRE),
                            int(width_m * CANVAS_PIXELS_PER_METRE))
        self._background = np.empty((*self.canvas_size, 3), np.uint8)
        self._background[:] = (205, 200, 190)
        # A faint grid gives the wrist cameras texture to see motion against.
        for x in np.arange(TABLE_X[0], TABLE_X[1], 0.1):
            cv2.line(self._background, self._px((x, TABLE_Y[0])), self._px((x, TABLE_Y[1])),
                     (190, 185, 175), 1)
        for y in np.arange(TABLE_Y[0], TABLE_Y[1], 0.1):
            cv2.line(self._background, self._px((TABLE_X[0], y)), self._px((TABLE_X[1], y)),
                     (190, 185, 175), 1)

    def _px(self, xy: tuple[float, float] | tuple[Any, Any] | np.ndarray) -> tuple[int, int]:
        """World (x, y) to canvas pixel (column, row); the robot is at the bottom edge."""
        col = (float(xy[0]) - TABLE_X[0]) * CANVAS_PIXELS_PER_METRE
        row = (TABLE_Y[1] - float(xy[1])) * CANVAS_PIXELS_PER_METRE
        return int(round(col)), int(round(row))

    def _draw_object(self, canvas: np.ndarray, obj: SimObject) -> None:
        lift = float(obj.position[2])
        # Higher objects look larger and brighter, as they would to an overhead camera.
        scale = 1.0 + lift * 1.5
        brighten = min(1.0, lift * 4.0)
        color = tuple(int(c + (255 - c) * 0.35 * brighten) for c in obj.color)
        if lift > 0.015:
            self._draw_box(canvas, obj, 1.0, (150, 145, 135), offset=(0.0, 0.0))
        self._draw_box(canvas, obj, scale, color, offset=(0.0, 0.0))

    def _draw_box(self, canvas: np.ndarray, obj: SimObject, scale: float,
                  color: tuple[int, ...], offset: tuple[float, float]) -> None:
        half_x, half_y = obj.size[0] * scale / 2, obj.size[1] * scale / 2
        cos_yaw, sin_yaw = math.cos(obj.yaw), math.sin(obj.yaw)
        corners = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            dx, dy = sx * half_x, sy * half_y
            corners.append(self._px((obj.position[0] + offset[0] + cos_yaw * dx - sin_yaw * dy,
                                     obj.position[1] + offset[1] + sin_yaw * dx + cos_yaw * dy)))
        cv2.fillConvexPoly(canvas, np.array(corners, np.int32), color, lineType=cv2.LINE_AA)

    def _draw_gripper(self, canvas: np.ndarray, arm: str, tip: np.ndarray, yaw: float,
                      opening: float) -> None:
        center = self._px(tip)
        cv2.circle(canvas, center, 5, (120, 115, 105), -1)  # shadow on the table
        radius = int(6 + 40 * max(0.0, float(tip[2])))
        color = ARM_COLORS.get(arm, (255, 255, 255))
        cv2.circle(canvas, center, radius, color, 2, lineType=cv2.LINE_AA)
        spread = int(4 + 14 * float(np.clip(opening, 0.0, 1.0)))
        dx, dy = math.cos(yaw) * spread, -math.sin(yaw) * spread
        for sign in (-1, 1):
            finger = (int(center[0] + sign * dx), int(center[1] + sign * dy))
            cv2.circle(canvas, finger, 4, color, -1, lineType=cv2.LINE_AA)

    def draw_canvas(self, scene: Scene, grippers: dict[str, tuple[np.ndarray, float, float]]
                    ) -> np.ndarray:
        """The overhead canvas; ``grippers``: arm -> (tip xyz, yaw, opening)."""
        canvas = self._background.copy()
        for obj in sorted(scene.objects.values(), key=lambda o: float(o.position[2])):
            self._draw_object(canvas, obj)
        for arm, (tip, yaw, opening) in grippers.items():
            self._draw_gripper(canvas, arm, tip, yaw, opening)
        return canvas

    def render(self, scene: Scene, grippers: dict[str, tuple[np.ndarray, float, float]]
               ) -> dict[str, np.ndarray]:
        """All configured cameras for the current state, RGB uint8 of the configured size."""
        canvas = self.draw_canvas(scene, grippers)
        frames: dict[str, np.ndarray] = {}
        for name, (height, width) in self.cameras.items():
            if name == "top":
                frames[name] = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
            else:
                arm = name.split("_")[0]
                tip, yaw, opening = grippers[arm]
                frames[name] = self._wrist_view(canvas, tip, yaw, opening, height, width)
        return frames

    def _wrist_view(self, canvas: np.ndarray, tip: np.ndarray, yaw: float, opening: float,
                    height: int, width: int) -> np.ndarray:
        # A camera looking down with a ~90 degree field of view sees about 2 * height metres.
        view_m = float(np.clip(2.0 * (float(tip[2]) + 0.04), 0.08, 1.0))
        zoom = width / (view_m * CANVAS_PIXELS_PER_METRE)
        cx, cy = self._px(tip)
        matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), -math.degrees(yaw), zoom)
        matrix[0, 2] += width / 2 - cx
        matrix[1, 2] += height / 2 - cy
        view = cv2.warpAffine(canvas, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderValue=(60, 60, 60))
        # The fingers are fixed in the wrist camera's image: bottom corners, spread by opening.
        spread = int(width * (0.08 + 0.25 * float(np.clip(opening, 0.0, 1.0))))
        for sign in (-1, 1):
            x = width // 2 + sign * spread
            cv2.rectangle(view, (x - 6, height - height // 4), (x + 6, height), (70, 70, 75), -1)
        return view
