"""Tabletop scenes of the built-in sim: objects, grasping, success and failure.

Coordinates: metres; x to the right (left arm at negative x), y away from the robot, z up,
the table at z = 0. A scene owns its objects and decides the outcome; the robot, rendering and
the expert live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ArmView", "FoldLaundryScene", "Outcome", "PackPhoneScene", "PickPlaceScene", "Scene",
    "SimObject", "make_scene",
]

GRASP_RADIUS = 0.035          # tip within this xy distance of a grasp point can take it
GRASP_HEIGHT_MARGIN = 0.03    # and at most this high above the object's top
GRIPPER_CLOSED = 0.3          # opening below this holds an object
GRIPPER_OPEN = 0.6            # opening above this lets go
SAFE_DROP_HEIGHT = 0.10       # a phone released higher than this breaks: failure
TABLE_X = (-0.5, 0.5)
TABLE_Y = (0.0, 0.75)


@dataclass
class Outcome:
    success: bool
    reason: str


@dataclass
class ArmView:
    """What a scene needs to know of an arm this step."""

    name: str
    tip: np.ndarray
    opening: float


@dataclass
class SimObject:
    """A box-shaped object: centre position (z of its bottom), size (x, y, z), yaw, colour."""

    name: str
    position: np.ndarray
    size: tuple[float, float, float]
    color: tuple[int, int, int]
    yaw: float = 0.0
    held_by: str | None = None
    movable: bool = True

    @property
    def top(self) -> float:
        return float(self.position[2] + self.size[2])

    def contains_xy(self, point: np.ndarray, margin: float = 0.0) -> bool:
        half_x, half_y = self.size[0] / 2 - margin, self.size[1] / 2 - margin
        dx, dy = point[0] - self.position[0], point[1] - self.position[1]
        return abs(dx) <= half_x and abs(dy) <= half_y


@dataclass
class Scene:
    """Base class: grasp/release mechanics shared by every task."""

    objects: dict[str, SimObject] = field(default_factory=dict)
    outcome: Outcome | None = None
    name: str = "scene"

    def reset(self, rng: np.random.Generator, randomization: float) -> None:
        raise NotImplementedError

    def surface_height(self, obj: SimObject) -> float:
        """Height an object comes to rest at when released at its current xy."""
        return 0.0

    def on_release(self, obj: SimObject, drop_height: float, arm: str) -> None:
        """Task rules at the moment an object is let go (after it has settled)."""

    def check(self) -> None:
        """Task rules evaluated every step (success conditions that need no release)."""

    def step(self, arms: list[ArmView]) -> Outcome | None:
        """Advance grasps by one physics step; return the outcome once it is decided."""
        for arm in arms:
            held = self._held_by(arm.name)
            if held is None and arm.opening < GRIPPER_CLOSED:
                target = self._graspable(arm)
                if target is not None:
                    target.held_by = arm.name
                    held = target
            elif held is not None and arm.opening > GRIPPER_OPEN:
                held.held_by = None
                rest = self.surface_height(held)
                drop = float(held.position[2] - rest)
                held.position[2] = rest
                self.on_release(held, drop, arm.name)
                held = None
            if held is not None:
                # Held objects hang from the tip: their top follows the fingers.
                held.position[0], held.position[1] = arm.tip[0], arm.tip[1]
                held.position[2] = max(0.0, float(arm.tip[2]) - held.size[2] * 0.8)
        if self.outcome is None:
            self.check()
        return self.outcome

    def _held_by(self, arm: str) -> SimObject | None:
        return next((o for o in self.objects.values() if o.held_by == arm), None)

    def _graspable(self, arm: ArmView) -> SimObject | None:
        best, best_distance = None, GRASP_RADIUS
        for obj in self.objects.values():
            if not obj.movable or obj.held_by is not None:
                continue
            distance = float(np.hypot(*(arm.tip[:2] - obj.position[:2])))
            if distance <= best_distance and arm.tip[2] <= obj.top + GRASP_HEIGHT_MARGIN:
                best, best_distance = obj, distance
        return best

    def privileged_state(self) -> dict[str, object]:
        """Everything a scripted expert or simulated operator may look at."""
        return {
            name: {"position": obj.position.round(4).tolist(), "held_by": obj.held_by}
            for name, obj in self.objects.items()
        }

    def _uniform(self, rng: np.random.Generator, low: float, high: float, amount: float) -> float:
        centre = (low + high) / 2
        return float(centre + (rng.uniform(low, high) - centre) * amount)


class PackPhoneScene(Scene):
    """The left arm lifts the lid off the box; the right arm puts the phone in the box.

    Success: the phone is released inside the open box. Failure: the phone is released higher
    than SAFE_DROP_HEIGHT (it breaks) or lands off the table. The lid must not go back on the box
    while the phone is outside, but that is only a slower episode, not a failure.
    """

    def reset(self, rng: np.random.Generator, randomization: float) -> None:
        self.name = "pack_phone"
        self.outcome = None
        box_xy = (self._uniform(rng, -0.22, -0.10, randomization),
                  self._uniform(rng, 0.25, 0.40, randomization))
        phone_xy = (self._uniform(rng, 0.08, 0.28, randomization),
                    self._uniform(rng, 0.18, 0.42, randomization))
        self.objects = {
            "box": SimObject("box", np.array([*box_xy, 0.0]), (0.16, 0.22, 0.06),
                             (150, 110, 60), movable=False),
            "lid": SimObject("lid", np.array([*box_xy, 0.06]), (0.17, 0.23, 0.01),
                             (200, 160, 90)),
            "phone": SimObject("phone", np.array([*phone_xy, 0.0]), (0.07, 0.14, 0.01),
                               (40, 40, 50), yaw=float(rng.uniform(-0.4, 0.4) * randomization)),
        }

    def lid_on_box(self) -> bool:
        lid, box = self.objects["lid"], self.objects["box"]
        return lid.held_by is None and box.contains_xy(lid.position) and lid.position[2] > 0.03

    def surface_height(self, obj: SimObject) -> float:
        box = self.objects["box"]
        if obj.name == "lid":
            return box.size[2] if box.contains_xy(obj.position) else 0.0
        if box.contains_xy(obj.position):
            return box.size[2] + 0.01 if self.lid_on_box() else 0.005
        return 0.0

    def on_release(self, obj: SimObject, drop_height: float, arm: str) -> None:
        if obj.name != "phone":
            return
        inside = self.objects["box"].contains_xy(obj.position, margin=0.02)
        if drop_height > SAFE_DROP_HEIGHT:
            self.outcome = Outcome(False, f"phone dropped from {drop_height:.2f} m")
        elif inside and not self.lid_on_box():
            self.outcome = Outcome(True, "phone in box")

    def check(self) -> None:
        phone = self.objects["phone"]
        if not (TABLE_X[0] <= phone.position[0] <= TABLE_X[1]
                and TABLE_Y[0] <= phone.position[1] <= TABLE_Y[1]):
            self.outcome = Outcome(False, "phone off the table")


class PickPlaceScene(Scene):
    """The right arm moves a cube into a target square; one-armed variant of pack_phone."""

    def reset(self, rng: np.random.Generator, randomization: float) -> None:
        self.name = "pick_place"
        self.outcome = None
        cube_xy = (self._uniform(rng, 0.05, 0.30, randomization),
                   self._uniform(rng, 0.20, 0.45, randomization))
        target_xy = (self._uniform(rng, -0.20, -0.02, randomization),
                     self._uniform(rng, 0.25, 0.40, randomization))
        self.objects = {
            "target": SimObject("target", np.array([*target_xy, 0.0]), (0.12, 0.12, 0.001),
                                (90, 180, 90), movable=False),
            "cube": SimObject("cube", np.array([*cube_xy, 0.0]), (0.04, 0.04, 0.04),
                              (200, 50, 50)),
        }

    def on_release(self, obj: SimObject, drop_height: float, arm: str) -> None:
        if obj.name == "cube" and self.objects["target"].contains_xy(obj.position):
            self.outcome = Outcome(True, "cube on target")


class FoldLaundryScene(Scene):
    """Both arms take the near corners of a towel and lay them on the far corners (a fold).

    The towel is four corner handles; the near two can be grasped. Success: both near corners
    within 4 cm of the far ones. Failure: the corners are pulled apart further than the towel
    allows (it tears in this sim).
    """

    WIDTH = 0.36
    DEPTH = 0.26

    def reset(self, rng: np.random.Generator, randomization: float) -> None:
        self.name = "fold_laundry"
        self.outcome = None
        cx = self._uniform(rng, -0.06, 0.06, randomization)
        cy = self._uniform(rng, 0.30, 0.40, randomization)
        half_w, half_d = self.WIDTH / 2, self.DEPTH / 2
        corner = (0.03, 0.03, 0.005)
        self.objects = {
            "far_left": SimObject("far_left", np.array([cx - half_w, cy + half_d, 0.0]), corner,
                                  (70, 90, 200), movable=False),
            "far_right": SimObject("far_right", np.array([cx + half_w, cy + half_d, 0.0]), corner,
                                   (70, 90, 200), movable=False),
            "near_left": SimObject("near_left", np.array([cx - half_w, cy - half_d, 0.0]), corner,
                                   (230, 200, 60)),
            "near_right": SimObject("near_right", np.array([cx + half_w, cy - half_d, 0.0]),
                                    corner, (230, 200, 60)),
        }

    def surface_height(self, obj: SimObject) -> float:
        return 0.005 if obj.name.startswith("near") else 0.0

    def check(self) -> None:
        o = self.objects
        span = float(np.hypot(*(o["near_left"].position[:2] - o["near_right"].position[:2])))
        if span > self.WIDTH * 1.35:
            self.outcome = Outcome(False, "towel torn apart")
            return
        folded = all(
            o[near].held_by is None
            and float(np.hypot(*(o[near].position[:2] - o[far].position[:2]))) < 0.04
            for near, far in (("near_left", "far_left"), ("near_right", "far_right"))
        )
        if folded:
            self.outcome = Outcome(True, "towel folded")


SCENES: dict[str, type[Scene]] = {
    "pack_phone": PackPhoneScene,
    "pick_place": PickPlaceScene,
    "fold_laundry": FoldLaundryScene,
}


def make_scene(name: str) -> Scene:
    try:
        return SCENES[name]()
    except KeyError:
        raise ValueError(f"unknown sim scene {name!r}; known: {', '.join(SCENES)}") from None
