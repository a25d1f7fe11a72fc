"""Robot presets (config/robots/*.yaml) and the real-robot config sections: load, merge, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import write_task_config

from aloe_ros.config import ConfigError, load_task_config
from aloe_ros.robot_presets import merge_layers, value_at

REPO = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (REPO / "config" / "robots").glob("*.yaml"))


def write(tmp_path: Path, data: dict, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_three_presets_exist() -> None:
    assert {"aloha", "dual_7dof", "single_arm"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_loads_and_validates(tmp_path: Path, preset: str) -> None:
    config = load_task_config(write(tmp_path, {"preset": preset,
                                               "task": {"name": "t", "text": "do it"}}))
    assert config.preset_path.endswith(f"robots/{preset}.yaml")
    robot = config.robot
    assert robot.action_dim == len(robot.home_position) >= 7
    # Every joint goes to exactly one controller; every camera comes from a driver topic.
    covered = [j for out in config.outputs for j in (out.joints or robot.joint_names)]
    assert sorted(covered) == sorted(robot.joint_names)
    assert config.cameras and all(c.source == "topic" for c in config.cameras)
    assert any(n.executable == "command_output_node" for n in config.nodes)


def test_task_keys_win_mappings_merge_lists_replace(tmp_path: Path) -> None:
    config = load_task_config(write(tmp_path, {
        "preset": "aloha", "task": {"name": "t", "text": "x"},
        "robot": {"control_rate_hz": 20.0},
        "cameras": [{"name": "top", "source": "sim"}]}))
    assert config.robot.control_rate_hz == 20.0            # overridden
    assert config.robot.action_dim == 14                   # rest of robot: from the preset
    assert [c.name for c in config.cameras] == ["top"]     # list replaced whole


def test_error_in_a_preset_value_names_key_and_preset(tmp_path: Path) -> None:
    rig = yaml.safe_load((REPO / "config" / "robots" / "single_arm.yaml").read_text())
    rig["robot"]["velocity_limits"][2] = -1.0
    write(tmp_path, rig, "my_rig.yaml")
    task = write(tmp_path, {"preset": "./my_rig.yaml", "task": {"name": "t", "text": "x"}})
    with pytest.raises(ConfigError) as err:
        load_task_config(task)
    assert err.value.key_path == "robot.velocity_limits[2]"
    assert "my_rig.yaml" in str(err.value) and "preset" in str(err.value)


def test_error_in_the_task_own_value_does_not_blame_the_preset(tmp_path: Path) -> None:
    task = write(tmp_path, {"preset": "aloha", "task": {"name": "t", "text": "x"},
                            "robot": {"control_rate_hz": -5.0}})
    with pytest.raises(ConfigError) as err:
        load_task_config(task)
    assert err.value.key_path == "robot.control_rate_hz"
    assert "preset" not in err.value.message


def test_unknown_preset_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="available: .*aloha") as err:
        load_task_config(write(tmp_path, {"preset": "nope", "task": {"name": "t", "text": "x"}}))
    assert err.value.key_path == "preset"


def test_presets_do_not_nest(tmp_path: Path) -> None:
    write(tmp_path, {"preset": "aloha"}, "rig.yaml")
    with pytest.raises(ConfigError, match="do not nest"):
        load_task_config(write(tmp_path, {"preset": "./rig.yaml",
                                          "task": {"name": "t", "text": "x"}}))


def test_merge_and_path_helpers() -> None:
    merged = merge_layers({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert value_at({"robot": {"v": [1, 2]}}, "robot.v[1]")
    assert not value_at({"robot": {"v": [1, 2]}}, "robot.v[2]")
    assert not value_at({"robot": {}}, "robot.v")


@pytest.mark.parametrize("outputs, key", [
    ([{"type": "forward_position", "topic": "/c", "joints": ["nope"]}], "outputs[0].joints[0]"),
    ([{"type": "forward_position", "topic": "/a", "joints": ["left_waist"]},
      {"type": "joint_trajectory", "topic": "/b", "joints": ["left_waist"]}], "outputs[1].joints"),
    ([{"type": "joint_state", "topic": "/aloe/command"}], "outputs[0].topic"),
    ([{"type": "forward_position", "topic": "/a", "per": "chunk"}], "outputs[0].per"),
    ([{"type": "servo", "topic": "/a"}], "outputs[0].type"),
])
def test_bad_outputs_name_their_key(tmp_path: Path, outputs, key) -> None:
    with pytest.raises(ConfigError) as err:
        load_task_config(write_task_config(tmp_path, overrides={"outputs": outputs}))
    assert err.value.key_path == key


@pytest.mark.parametrize("shadow, key", [
    ({"go_live_buttons": ["slow"]}, "shadow.go_live_buttons"),
    ({"go_live_buttons": ["slow", "warp"]}, "shadow.go_live_buttons[1]"),
    ({"go_live_buttons": ["slow", "gripper_open"]}, "shadow.go_live_buttons[1]"),  # unbound
    ({"command_topic": "shadow"}, "shadow.command_topic"),
    ({"go_live_buttons": ["slow", "estop"]}, "shadow.go_live_buttons[1]"),
])
def test_bad_shadow_settings_name_their_key(tmp_path: Path, shadow,
                                           key) -> None:
    with pytest.raises(ConfigError) as err:
        load_task_config(write_task_config(tmp_path, overrides={"shadow": shadow}))
    assert err.value.key_path == key


def test_compressed_needs_a_topic_camera(tmp_path: Path) -> None:
    cameras = [{"name": "top", "source": "sim", "compressed": True}]
    with pytest.raises(ConfigError) as err:
        load_task_config(write_task_config(tmp_path, overrides={"cameras": cameras}))
    assert err.value.key_path == "cameras[0].compressed"
