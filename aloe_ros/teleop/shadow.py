"""The shadow <-> live switch: a button combo held for a while, never a single press.

Shadow mode lets an operator watch what a new policy would do before it moves the robot, so
leaving it must be deliberate: every button of the combo held down together, continuously, for
``hold_s``. One hold switches once; the combo must be released before it can switch again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["ComboHold"]


class ComboHold:
    """Fires once when all ``actions`` have been held together for ``hold_s``."""

    def __init__(self, actions: Sequence[str], hold_s: float) -> None:
        self.actions = frozenset(actions)
        self.hold_s = hold_s
        self.since: float | None = None
        self.fired = False

    def update(self, pressed: Iterable[str], now: float) -> bool:
        """Feed the currently pressed actions; True exactly once per completed hold."""
        if not self.actions <= set(pressed):
            self.since, self.fired = None, False
            return False
        if self.since is None:
            self.since = now
        if not self.fired and now - self.since >= self.hold_s:
            self.fired = True
            return True
        return False

    def release(self) -> None:
        """Forget a partial hold (the pad went silent)."""
        self.since, self.fired = None, False

    def progress(self, now: float) -> float:
        """0..1 of the hold done (for the operator's status line)."""
        if self.since is None or self.fired:
            return 0.0
        return 1.0 if self.hold_s <= 0 else min((now - self.since) / self.hold_s, 1.0)
