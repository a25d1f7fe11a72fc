"""Synthetic Joy messages for teleop tests (Xbox layout, joy_node conventions)."""

from __future__ import annotations

from collections.abc import Iterable

from aloe_ros.teleop.layout import resolve_layout

XBOX = resolve_layout("xbox")


def joy(pressed: Iterable[str] = (), axes: dict[str, float] | None = None,
        layout=XBOX, n_buttons: int = 11, n_axes: int = 8) -> tuple[list[float], list[int]]:
    """(axes, buttons) of a Joy message with ``pressed`` actions down and sticks at ``axes``."""
    values = [0.0] * n_axes
    for trigger in ("trigger_left", "trigger_right"):
        if trigger in layout.axes and layout.axes[trigger] < n_axes:
            values[layout.axes[trigger]] = layout.trigger_released
    for name, value in (axes or {}).items():
        values[layout.axes[name]] = value
    buttons = [0] * n_buttons
    for name in pressed:
        buttons[layout.buttons[name]] = 1
    return values, buttons
