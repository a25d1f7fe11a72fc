"""Pad presets and button maps: every preset resolves; a bad map fails at start naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_task_config
from teleop_helpers import joy

from aloe_ros.config import ConfigError, load_task_config
from aloe_ros.teleop.buttons import DebouncedButtons
from aloe_ros.teleop.human import apply_deadzone
from aloe_ros.teleop.layout import PRESETS, JoyReadError, read_pad, resolve_layout


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_resolves_and_binds_the_safety_buttons(preset: str) -> None:
    layout = resolve_layout(preset)
    for action in ("estop", "release_estop", "takeover", "success", "failure", "reset"):
        assert action in layout.buttons
    assert len(set(layout.buttons.values())) == len(layout.buttons)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_from_a_task_file(tmp_path: Path, preset: str) -> None:
    path = write_task_config(tmp_path, overrides={"joystick": {"preset": preset}})
    assert load_task_config(path).joystick.preset == preset


def _error(tmp_path: Path, joystick: dict) -> ConfigError:
    path = write_task_config(tmp_path, overrides={"joystick": joystick})
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    return info.value


@pytest.mark.parametrize(
    ("joystick", "key_path", "fragment"),
    [
        ({"preset": "nintendo64"}, "joystick.preset", "unknown pad preset 'nintendo64'"),
        ({"buttons": {"takeovr": 4}}, "joystick.buttons.takeovr", "unknown action"),
        ({"buttons": {"estop": -3}}, "joystick.buttons.estop", "button index"),
        ({"buttons": {"success": 1}}, "joystick.buttons.success", "already bound to 'estop'"),
        ({"buttons": {"estop": -1}}, "joystick.buttons.estop", "binds no button"),
        ({"axes": {"wheel": 3}}, "joystick.axes.wheel", "unknown axis"),
        ({"joint_axes": ["left_x", "twist"]}, "joystick.joint_axes[1]", "unknown axis 'twist'"),
        ({"mode": "hold"}, "joystick.mode", "hold"),
        ({"timeout_s": 0}, "joystick.timeout_s", "must be > 0"),
        ({"debounce_s": 1.0}, "joystick.debounce_s", "timeout_s"),
        ({"arms": "middle"}, "joystick.arms", "unknown arm 'middle'"),
        ({"leader_topic": "leader"}, "joystick.leader_topic", "absolute"),
    ],
)
def test_bad_maps_fail_at_start_naming_the_key(tmp_path: Path, joystick: dict, key_path: str,
                                               fragment: str) -> None:
    error = _error(tmp_path, joystick)
    assert error.key_path == key_path, str(error)
    assert fragment in str(error)


def test_unbinding_an_axis_used_by_a_joint_is_an_error(tmp_path: Path) -> None:
    error = _error(tmp_path, {"axes": {"dpad_x": -1}})
    assert error.key_path == "joystick.joint_axes[5]"


def test_bad_episode_section_names_the_key(tmp_path: Path) -> None:
    path = write_task_config(tmp_path, overrides={"episode": {"auto_reset": "yes"}})
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    assert info.value.key_path == "episode.auto_reset"


def test_overrides_move_a_button() -> None:
    layout = resolve_layout("xbox", buttons={"takeover": 10, "handback": -1})
    assert layout.buttons["takeover"] == 10 and "handback" not in layout.buttons


def test_read_pad_rejects_short_or_nan_messages() -> None:
    layout = resolve_layout("xbox")
    axes, buttons = joy(["estop"])
    assert "estop" in read_pad(layout, axes, buttons).pressed
    with pytest.raises(JoyReadError, match="buttons"):
        read_pad(layout, axes, buttons[:5])
    with pytest.raises(JoyReadError, match="axes"):
        read_pad(layout, axes[:4], buttons)
    axes[0] = float("nan")
    with pytest.raises(JoyReadError, match="nan"):
        read_pad(layout, axes, buttons)


def test_triggers_read_from_rest_to_fully_pressed() -> None:
    layout = resolve_layout("xbox")
    pad = read_pad(layout, *joy(axes={"trigger_right": 0.0}))
    assert pad.trigger("trigger_right", layout) == pytest.approx(0.5)
    assert pad.trigger("trigger_left", layout) == 0.0


def test_deadzone_is_rescaled_without_a_step() -> None:
    assert apply_deadzone(0.05, 0.1) == 0.0
    assert apply_deadzone(0.1000001, 0.1) == pytest.approx(0.0, abs=1e-5)
    assert apply_deadzone(-1.0, 0.1) == -1.0
    assert apply_deadzone(0.55, 0.1) == pytest.approx(0.5)


def test_debounce_press_at_once_release_after_a_quiet_time() -> None:
    buttons = DebouncedButtons(["a"], debounce_s=0.05)
    assert buttons.update(["a"], 0.0).pressed == {"a"}
    assert buttons.update([], 0.01).released == set()        # bounce
    assert buttons.update(["a"], 0.02).pressed == set()      # still the same press
    assert buttons.update([], 0.03).released == set()
    assert buttons.poll(0.07).released == set()              # 40 ms up: not yet
    assert buttons.poll(0.09).released == {"a"}
    assert buttons.update(["a"], 0.10).pressed == {"a"}      # a new press
