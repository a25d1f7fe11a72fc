"""A local gamepad read through SDL2 (pygame), in the Joy conventions of ROS ``joy_node``.

:class:`GamepadReader` survives a missing pad, an unplugged pad and a pad switched on late: it
re-enumerates devices while none is open and drops a pad that reports removal (or whose reads
fail). The SDL access sits behind :class:`PadBackend`, so the logic is tested with a fake.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["GamepadReader", "JoySample", "PadBackend", "PadDevice", "PygameBackend",
           "to_joy_convention"]

log = logging.getLogger(__name__)


class PadDevice(Protocol):
    def get_name(self) -> str: ...
    def get_instance_id(self) -> int: ...
    def get_numaxes(self) -> int: ...
    def get_axis(self, index: int) -> float: ...
    def get_numhats(self) -> int: ...
    def get_hat(self, index: int) -> tuple[int, int]: ...
    def get_numbuttons(self) -> int: ...
    def get_button(self, index: int) -> int: ...


class PadBackend(Protocol):
    def count(self) -> int: ...
    def open(self, index: int) -> PadDevice: ...
    def removed_instances(self) -> list[int]:
        """Instance ids of devices removed since the last call (and pump the event queue)."""
        ...
    def rescan(self) -> None: ...


@dataclass(frozen=True)
class JoySample:
    axes: list[float]
    buttons: list[int]
    device: str


def to_joy_convention(axes: Sequence[float], hats: Sequence[tuple[int, int]],
                      buttons: Sequence[int]) -> tuple[list[float], list[int]]:
    """SDL values -> joy_node's: axes negated (stick up / left positive, triggers +1 at rest,
    -1 pressed), then two axes per hat (left +1, up +1), buttons as 0/1."""
    out = [-float(a) if a != 0 else 0.0 for a in axes]
    for x, y in hats:
        out += [float(-x) if x else 0.0, float(y)]
    return out, [1 if b else 0 for b in buttons]


class GamepadReader:
    """The open pad, if any, read as a Joy sample."""

    def __init__(self, backend: PadBackend, device_name: str = "",
                 rescan_period_s: float = 1.0) -> None:
        self.backend = backend
        self.device_name = device_name
        self.rescan_period_s = rescan_period_s
        self.device: PadDevice | None = None
        self.last_scan: float | None = None
        self.connects = 0
        self.disconnects = 0

    @property
    def connected(self) -> bool:
        return self.device is not None

    def _find(self, now: float) -> None:
        if self.last_scan is not None and now - self.last_scan < self.rescan_period_s:
            return
        self.last_scan = now
        self.backend.rescan()
        for index in range(self.backend.count()):
            device = self.backend.open(index)
            if self.device_name and self.device_name.lower() not in device.get_name().lower():
                continue
            self.device = device
            self.connects += 1
            log.info("gamepad connected: %s", device.get_name())
            return

    def _drop(self, why: str) -> None:
        assert self.device is not None
        log.error("gamepad %s lost (%s): no Joy is published until it is back",
                  self.device.get_name(), why)
        self.device = None
        self.disconnects += 1
        self.last_scan = None

    def poll(self, now: float) -> JoySample | None:
        """The pad's state now, or None while no pad is open (look for one now and then)."""
        removed = self.backend.removed_instances()
        if self.device is not None and self.device.get_instance_id() in removed:
            self._drop("unplugged")
        if self.device is None:
            self._find(now)
            if self.device is None:
                return None
        device = self.device
        try:
            axes = [device.get_axis(i) for i in range(device.get_numaxes())]
            hats = [device.get_hat(i) for i in range(device.get_numhats())]
            buttons = [device.get_button(i) for i in range(device.get_numbuttons())]
        except Exception as exc:  # noqa: BLE001 - SDL raises pygame.error on a dead device
            self._drop(f"read failed: {exc}")
            return None
        joy_axes, joy_buttons = to_joy_convention(axes, hats, buttons)
        return JoySample(joy_axes, joy_buttons, device.get_name())


class PygameBackend:
    """SDL2 joystick access through pygame, headless (dummy video / audio drivers)."""

    def __init__(self) -> None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        # Without this SDL delivers pad input only to a focused window, and we have none.
        os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
        with warnings.catch_warnings():
            # pygame 2.6 imports pkg_resources, which warns on every start.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import pygame

        self.pygame: Any = pygame
        pygame.display.init()
        pygame.joystick.init()
        self.open_devices: dict[int, Any] = {}

    def count(self) -> int:
        return int(self.pygame.joystick.get_count())

    def open(self, index: int) -> PadDevice:
        device = self.pygame.joystick.Joystick(index)
        device.init()
        self.open_devices[device.get_instance_id()] = device
        return device  # type: ignore[no-any-return]

    def removed_instances(self) -> list[int]:
        removed = []
        for event in self.pygame.event.get():
            if event.type == self.pygame.JOYDEVICEREMOVED:
                removed.append(int(event.instance_id))
                self.open_devices.pop(int(event.instance_id), None)
        return removed

    def rescan(self) -> None:
        """Re-enumerate devices (a pad switched on late), only while none is open."""
        if not self.open_devices:
            self.pygame.joystick.quit()
            self.pygame.joystick.init()
