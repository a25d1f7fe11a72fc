"""Edge detection with debounce: a held or chattering button gives exactly one press.

Raw Joy buttons bounce at contact make and break, and ``joy_node`` repeats the whole state at
its autorepeat rate, so "pressed in this message" is not an event. :class:`DebouncedButtons`
turns levels into press / release edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ButtonEdges", "DebouncedButtons"]


@dataclass
class ButtonEdges:
    pressed: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)


@dataclass
class _Button:
    down: bool = False            # the debounced level
    raw_up_since: float | None = None  # first sample of the current run of raw "up" samples


class DebouncedButtons:
    """Press edges at once, release edges only after ``debounce_s`` of continuous release.

    Debounce rule: a press is reported on the first raw "down" sample after the button was
    (debounced) up, so takeover and outcome buttons react without delay; a release is accepted
    only when the raw level has stayed up for ``debounce_s``. Bounces during a press or a
    release therefore never reach the debounced level, and a held button, repeated by
    autorepeat, never repeats its press.
    """

    def __init__(self, names: Iterable[str], debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self.buttons = {name: _Button() for name in names}

    def update(self, pressed: Iterable[str], now: float) -> ButtonEdges:
        """Feed the raw set of pressed buttons of one message at time ``now``."""
        raw = set(pressed)
        edges = ButtonEdges()
        for name, button in self.buttons.items():
            if name in raw:
                button.raw_up_since = None
                if not button.down:
                    button.down = True
                    edges.pressed.add(name)
            elif button.down:
                if button.raw_up_since is None:
                    button.raw_up_since = now
                if now - button.raw_up_since >= self.debounce_s:
                    button.down = False
                    button.raw_up_since = None
                    edges.released.add(name)
        return edges

    def poll(self, now: float) -> ButtonEdges:
        """Accept pending releases whose debounce time has passed (no new message needed)."""
        edges = ButtonEdges()
        for name, button in self.buttons.items():
            if (button.down and button.raw_up_since is not None
                    and now - button.raw_up_since >= self.debounce_s):
                button.down = False
                button.raw_up_since = None
                edges.released.add(name)
        return edges

    def is_down(self, name: str) -> bool:
        button = self.buttons.get(name)
        return bool(button and button.down)
