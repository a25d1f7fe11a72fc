"""The keyboard source: key presses become a pad's Joy; no terminal is a clear error."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from aloe_ros.cli import main as cli_main
from aloe_ros.config import load_task_config
from aloe_ros.teleop.controller import InterventionKind, TeleopController
from aloe_ros.teleop.keyboard import KeyboardJoy
from aloe_ros.teleop.layout import read_pad, resolve_layout


def test_key_press_is_a_button_pulse_and_a_stick_key_a_short_deflection() -> None:
    layout = resolve_layout("xbox")
    keyboard = KeyboardJoy(layout, press_s=0.1, hold_s=0.3)
    assert keyboard.key("t", 0.0) == "takeover"
    keyboard.key("w", 0.0)
    pad = read_pad(layout, *keyboard.state(0.05))
    assert "takeover" in pad.pressed and pad.axes["left_y"] == 1.0
    pad = read_pad(layout, *keyboard.state(0.2))
    assert "takeover" not in pad.pressed and pad.axes["left_y"] == 1.0
    pad = read_pad(layout, *keyboard.state(0.4))
    assert pad.axes["left_y"] == 0.0
    assert pad.trigger("trigger_left", layout) == 0.0


def test_gripper_keys_use_triggers_or_buttons_by_layout() -> None:
    xbox = resolve_layout("xbox")
    keyboard = KeyboardJoy(xbox)
    keyboard.key("]", 0.0)
    assert read_pad(xbox, *keyboard.state(0.1)).trigger("trigger_right", xbox) == 1.0
    dinput = resolve_layout("f710_dinput")
    keyboard = KeyboardJoy(dinput)
    keyboard.key("]", 0.0)
    assert "gripper_close" in read_pad(dinput, *keyboard.state(0.1)).pressed


def test_deadman_takeover_latches_on_a_keyboard() -> None:
    layout = resolve_layout("xbox")
    keyboard = KeyboardJoy(layout, latch_takeover=True)
    assert keyboard.key("t", 0.0) == "takeover held"
    assert "takeover" in read_pad(layout, *keyboard.state(5.0)).pressed
    assert keyboard.key("t", 5.0) == "takeover released"
    assert "takeover" not in read_pad(layout, *keyboard.state(5.1)).pressed


def test_keyboard_takes_over_and_estops_through_the_controller() -> None:
    config = load_task_config("pack_phone")
    controller = TeleopController(config, sim=False)
    controller.on_joint_state(np.asarray(config.robot.home_position))
    keyboard = KeyboardJoy(controller.layout)
    script = {5: "t", 40: " "}
    kinds = []
    for tick in range(80):
        t = tick / 30.0
        if tick in script:
            keyboard.key(script[tick], t)
        out = controller.on_joy(*keyboard.state(t), t, source="keyboard")
        kinds += [(e.kind, e.source) for e in out.interventions]
        controller.tick(t)
    assert kinds == [(InterventionKind.TAKEOVER, "keyboard"), (InterventionKind.ESTOP, "keyboard")]


def test_without_a_terminal_it_says_so_and_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli_main(["keyboard", "pack_phone"]) == 2
    assert "not a terminal" in capsys.readouterr().err


def test_in_a_terminal_it_starts_and_quits_on_q(tmp_path) -> None:
    """A real pseudo-terminal: prints the key card, publishes, quits on 'q' with status 0."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "aloe_ros.cli", "keyboard", "pack_phone"],
                               stdin=secondary, stdout=secondary, stderr=secondary,
                               close_fds=True)
    os.close(secondary)
    output = b""
    try:
        while b"q quits" not in output:
            chunk = os.read(primary, 4096)
            if not chunk:
                break
            output += chunk
        os.write(primary, b"y")
        os.write(primary, b"q")
        assert process.wait(timeout=60) == 0, output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    assert b"xbox" in output


@pytest.mark.parametrize("bad", ["--rate=1"])
def test_a_rate_below_the_watchdog_is_refused(monkeypatch, capsys, bad: str) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert cli_main(["keyboard", "pack_phone", bad]) == 2
    assert "too slow" in capsys.readouterr().err
