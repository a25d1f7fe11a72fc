"""A keyboard that plays gamepad, for development without a pad (``aloe-ros keyboard``).

A terminal delivers characters, not key-down / key-up events, so :class:`KeyboardJoy` turns
each key press into a button pulse of ``press_s`` and each movement key into a stick deflection
that lasts ``hold_s`` (the terminal's autorepeat keeps a held key deflected). The result is the
state of a pad in the configured preset's layout, published as Joy like a real pad.
"""

from __future__ import annotations

from dataclasses import dataclass

from aloe_ros.teleop.layout import PadLayout

__all__ = ["AXIS_KEYS", "BUTTON_KEYS", "KeyboardJoy", "help_text"]

BUTTON_KEYS: dict[str, str] = {
    "t": "takeover", "g": "handback", "y": "success", "n": "failure", "r": "reset",
    " ": "estop", "u": "release_estop", "m": "arm_select",
}
# key -> (axis, value) in joy_node conventions (stick up / left positive).
AXIS_KEYS: dict[str, tuple[str, float]] = {
    "a": ("left_x", 1.0), "d": ("left_x", -1.0), "w": ("left_y", 1.0), "s": ("left_y", -1.0),
    "j": ("right_x", 1.0), "l": ("right_x", -1.0), "i": ("right_y", 1.0), "k": ("right_y", -1.0),
    "4": ("dpad_x", 1.0), "6": ("dpad_x", -1.0), "8": ("dpad_y", 1.0), "2": ("dpad_y", -1.0),
}
# Gripper keys: the trigger axes where the layout has them, else the gripper buttons.
GRIPPER_KEYS: dict[str, tuple[str, str]] = {
    "[": ("trigger_left", "gripper_open"), "]": ("trigger_right", "gripper_close"),
}


def help_text() -> str:
    buttons = ", ".join(f"{'space' if k == ' ' else k}={v}" for k, v in BUTTON_KEYS.items())
    return (f"buttons: {buttons}\n"
            "arm joints: a/d w/s (left stick), j/l i/k (right stick), 4/6 8/2 (d-pad); "
            "grippers: [ open, ] close; q quits")


@dataclass
class _Timed:
    until: float
    value: float = 1.0


class KeyboardJoy:
    """Key presses in, the (axes, buttons) of a pad in ``layout`` out."""

    def __init__(self, layout: PadLayout, *, press_s: float = 0.15, hold_s: float = 0.3,
                 latch_takeover: bool = False) -> None:
        self.layout = layout
        self.press_s = press_s
        self.hold_s = hold_s
        # Deadman mode: a terminal cannot hold a key, so takeover latches until pressed again.
        self.latch_takeover = latch_takeover
        self.latched = False
        self.buttons: dict[str, _Timed] = {}
        self.axes: dict[str, _Timed] = {}
        self.unknown_keys = 0

    def key(self, char: str, now: float) -> str | None:
        """One key press; returns what it did (for the terminal), None for an unknown key."""
        char = char.lower()
        if char in BUTTON_KEYS:
            action = BUTTON_KEYS[char]
            if action not in self.layout.buttons:
                return None
            if action == "takeover" and self.latch_takeover:
                self.latched = not self.latched
                return "takeover held" if self.latched else "takeover released"
            self.buttons[action] = _Timed(now + self.press_s)
            return action
        if char in AXIS_KEYS:
            axis, value = AXIS_KEYS[char]
            if axis not in self.layout.axes:
                return None
            self.axes[axis] = _Timed(now + self.hold_s, value)
            return None
        if char in GRIPPER_KEYS:
            axis, button = GRIPPER_KEYS[char]
            if axis in self.layout.axes:
                self.axes[axis] = _Timed(now + self.hold_s, self.layout.trigger_pressed)
            elif button in self.layout.buttons:
                self.buttons[button] = _Timed(now + self.hold_s)
            return None
        self.unknown_keys += 1
        return None

    def state(self, now: float) -> tuple[list[float], list[int]]:
        """The pad's axes and buttons at ``now``."""
        axes = [0.0] * self.layout.min_axes()
        for trigger in ("trigger_left", "trigger_right"):
            if trigger in self.layout.axes:
                axes[self.layout.axes[trigger]] = self.layout.trigger_released
        for name, timed in self.axes.items():
            if now < timed.until:
                axes[self.layout.axes[name]] = timed.value
        buttons = [0] * self.layout.min_buttons()
        for name, timed in self.buttons.items():
            if now < timed.until:
                buttons[self.layout.buttons[name]] = 1
        if self.latched:
            buttons[self.layout.buttons["takeover"]] = 1
        return axes, buttons
