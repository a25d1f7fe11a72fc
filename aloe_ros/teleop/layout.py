"""Gamepad layouts: which Joy button / axis index means what, with presets for common pads.

Indices follow the ROS ``joy_node`` convention (SDL2 joystick API): sticks are negated so that
up and left are positive, triggers rest at +1.0 and read -1.0 fully pressed, and each hat
(d-pad) is appended after the regular axes as two axes (left +1, up +1). ``joystick_node``
(pygame) publishes exactly this convention, so one preset serves both.

A task YAML picks a preset (``joystick.preset``) and may override single entries
(``joystick.buttons``, ``joystick.axes``, ``joystick.joint_axes``); :func:`resolve_layout`
checks the result and raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aloe_ros.config_loader import ConfigError

__all__ = [
    "ACTIONS",
    "AXIS_NAMES",
    "PRESETS",
    "JoyReadError",
    "JointAxis",
    "PadLayout",
    "PadState",
    "read_pad",
    "resolve_layout",
]

# Button actions a layout may bind; gripper_open/close are for pads without analog triggers.
# "slow" scales the human's speeds down while held (fine corrections).
ACTIONS = ("takeover", "handback", "success", "failure", "reset", "estop", "release_estop",
           "arm_select", "gripper_open", "gripper_close", "slow")
# Actions every layout must bind (the operator's safety and episode controls).
REQUIRED_ACTIONS = ("takeover", "success", "failure", "reset", "estop", "release_estop")
AXIS_NAMES = ("left_x", "left_y", "right_x", "right_y", "dpad_x", "dpad_y",
              "trigger_left", "trigger_right")

# Non-gripper joints of an arm, in the arm's order, and the stick that drives each one
# (ALOHA / ViperX roles: waist, shoulder, elbow, forearm roll, wrist angle, wrist rotate).
DEFAULT_JOINT_AXES = ("left_x", "left_y", "-right_y", "right_x", "dpad_y", "dpad_x")


@dataclass(frozen=True)
class JointAxis:
    """One stick axis driving one arm joint; ``sign`` -1 inverts it."""

    axis: str
    sign: float


@dataclass(frozen=True)
class PadLayout:
    name: str
    buttons: Mapping[str, int]
    axes: Mapping[str, int]
    joint_axes: tuple[JointAxis, ...]
    # Raw value of an analog trigger at rest and fully pressed (joy_node: +1 -> -1).
    trigger_released: float = 1.0
    trigger_pressed: float = -1.0
    notes: str = ""

    def min_buttons(self) -> int:
        return max(self.buttons.values(), default=-1) + 1

    def min_axes(self) -> int:
        return max(self.axes.values(), default=-1) + 1


_XINPUT_AXES = {"left_x": 0, "left_y": 1, "trigger_left": 2, "right_x": 3, "right_y": 4,
                "trigger_right": 5, "dpad_x": 6, "dpad_y": 7}


@dataclass(frozen=True)
class _Preset:
    buttons: dict[str, int]
    axes: dict[str, int] = field(default_factory=lambda: dict(_XINPUT_AXES))
    notes: str = ""


_PRESET_TABLE: dict[str, _Preset] = {
    # Xbox 360 / One / Series pads on Linux (xpad / xone): A B X Y LB RB BACK START GUIDE LS RS.
    "xbox": _Preset(
        {"success": 0, "estop": 1, "failure": 2, "reset": 3, "takeover": 4, "handback": 5,
         "arm_select": 6, "release_estop": 7, "slow": 9},
        notes="A success, B e-stop, X failure, Y reset, LB takeover, RB handback, "
              "BACK arm select, START release e-stop, left stick click slow"),
    # DualShock 4 (hid-sony / hid-playstation): cross circle triangle square L1 R1 L2 R2
    # share options PS L3 R3; L2/R2 are also axes 2 and 5.
    "ps4": _Preset(
        {"success": 0, "estop": 1, "reset": 2, "failure": 3, "takeover": 4, "handback": 5,
         "arm_select": 8, "release_estop": 9, "slow": 11},
        notes="cross success, circle e-stop, square failure, triangle reset, L1 takeover, "
              "R1 handback, SHARE arm select, OPTIONS release e-stop, L3 slow"),
    # DualSense (hid-playstation) uses the DualShock 4 order.
    "ps5": _Preset(
        {"success": 0, "estop": 1, "reset": 2, "failure": 3, "takeover": 4, "handback": 5,
         "arm_select": 8, "release_estop": 9, "slow": 11},
        notes="as ps4: cross success, circle e-stop, square failure, triangle reset, "
              "L1 takeover, R1 handback, CREATE arm select, OPTIONS release e-stop, L3 slow"),
    # Logitech F710 with its switch on X (XInput): the Xbox 360 layout.
    "f710": _Preset(
        {"success": 0, "estop": 1, "failure": 2, "reset": 3, "takeover": 4, "handback": 5,
         "arm_select": 6, "release_estop": 7, "slow": 9},
        notes="switch on X (XInput); as xbox"),
    # Logitech F710 with its switch on D (DirectInput): X A B Y LB RB LT RT BACK START LS RS,
    # triggers are buttons, the d-pad is a hat after four stick axes.
    "f710_dinput": _Preset(
        {"failure": 0, "success": 1, "estop": 2, "reset": 3, "takeover": 4, "handback": 5,
         "gripper_open": 6, "gripper_close": 7, "arm_select": 8, "release_estop": 9,
         "slow": 10},
        axes={"left_x": 0, "left_y": 1, "right_x": 2, "right_y": 3, "dpad_x": 4, "dpad_y": 5},
        notes="switch on D (DirectInput): A success, B e-stop, X failure, Y reset, "
              "LB takeover, RB handback, LT/RT gripper open/close, left stick click slow"),
}
PRESETS: tuple[str, ...] = tuple(_PRESET_TABLE)


def parse_joint_axis(text: str, key: str) -> JointAxis:
    """``"left_x"`` or ``"-left_x"`` (inverted)."""
    sign = -1.0 if text.startswith("-") else 1.0
    name = text.lstrip("+-")
    if name not in AXIS_NAMES:
        raise ConfigError(key, f"unknown axis {text!r}; use one of {', '.join(AXIS_NAMES)} "
                               "(prefix '-' to invert)")
    return JointAxis(name, sign)


def resolve_layout(preset: str, buttons: Mapping[str, int] | None = None,
                   axes: Mapping[str, int] | None = None,
                   joint_axes: Sequence[str] | None = None) -> PadLayout:
    """The preset with overrides applied; every problem raises ConfigError naming its key.

    Checks: the preset exists; override names are known actions / axes; indices are >= 0;
    no index is bound to two actions (a shared e-stop button would fire other actions too);
    the required actions are bound; joint axes name axes the layout has.
    """
    if preset not in _PRESET_TABLE:
        raise ConfigError("preset", f"unknown pad preset {preset!r}; known: {', '.join(PRESETS)}")
    base = _PRESET_TABLE[preset]
    merged_buttons = dict(base.buttons)
    for name, index in (buttons or {}).items():
        if name not in ACTIONS:
            raise ConfigError(f"buttons.{name}",
                              f"unknown action; use one of {', '.join(ACTIONS)}")
        if not isinstance(index, int) or index < -1:
            raise ConfigError(f"buttons.{name}", f"must be a button index >= 0 "
                                                 f"(or -1 to unbind), got {index!r}")
        if index == -1:
            merged_buttons.pop(name, None)
        else:
            merged_buttons[name] = index
    merged_axes = dict(base.axes)
    for name, index in (axes or {}).items():
        if name not in AXIS_NAMES:
            raise ConfigError(f"axes.{name}", f"unknown axis; use one of {', '.join(AXIS_NAMES)}")
        if not isinstance(index, int) or index < -1:
            raise ConfigError(f"axes.{name}", f"must be an axis index >= 0 (or -1 to unbind), "
                                              f"got {index!r}")
        if index == -1:
            merged_axes.pop(name, None)
        else:
            merged_axes[name] = index
    seen: dict[int, str] = {}
    for name, index in sorted(merged_buttons.items()):
        if index in seen:
            raise ConfigError(f"buttons.{name}",
                              f"button {index} is already bound to {seen[index]!r}")
        seen[index] = name
    for name in REQUIRED_ACTIONS:
        if name not in merged_buttons:
            raise ConfigError(f"buttons.{name}", f"preset {preset!r} with these overrides "
                                                 "binds no button to this action")
    parsed = tuple(parse_joint_axis(text, f"joint_axes[{i}]")
                   for i, text in enumerate(joint_axes or DEFAULT_JOINT_AXES))
    for i, joint_axis in enumerate(parsed):
        if joint_axis.axis not in merged_axes:
            raise ConfigError(f"joint_axes[{i}]",
                              f"axis {joint_axis.axis!r} is not bound in preset {preset!r}")
    return PadLayout(preset, merged_buttons, merged_axes, parsed, notes=base.notes)


class JoyReadError(ValueError):
    """A Joy message that does not fit the layout (too short, NaN axes)."""


@dataclass(frozen=True)
class PadState:
    """One Joy message read through a layout: pressed actions and axis values."""

    pressed: frozenset[str]
    axes: Mapping[str, float]

    def trigger(self, name: str, layout: PadLayout) -> float:
        """An analog trigger as 0 (rest) .. 1 (fully pressed); 0 when the axis is unbound."""
        if name not in self.axes:
            return 0.0
        span = layout.trigger_pressed - layout.trigger_released
        value = (self.axes[name] - layout.trigger_released) / span
        return min(max(value, 0.0), 1.0)


def read_pad(layout: PadLayout, axes: Sequence[float], buttons: Sequence[int]) -> PadState:
    """Read a Joy's arrays through ``layout``; raise JoyReadError when they do not fit it.

    A message too short for the layout is rejected whole rather than read partly: a missing
    e-stop index must never look like a released e-stop that happens to work.
    """
    if len(buttons) < layout.min_buttons():
        raise JoyReadError(f"Joy has {len(buttons)} buttons but preset {layout.name!r} uses "
                           f"index {layout.min_buttons() - 1}; check joystick.preset")
    if len(axes) < layout.min_axes():
        raise JoyReadError(f"Joy has {len(axes)} axes but preset {layout.name!r} uses "
                           f"index {layout.min_axes() - 1}; check joystick.preset")
    values: dict[str, float] = {}
    for name, index in layout.axes.items():
        value = float(axes[index])
        if value != value or value in (float("inf"), float("-inf")):
            raise JoyReadError(f"Joy axis {index} ({name}) is {value}")
        values[name] = min(max(value, -1.0), 1.0)
    pressed = frozenset(name for name, index in layout.buttons.items() if buttons[index])
    return PadState(pressed, values)
