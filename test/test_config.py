"""Task config loading: every shipped task loads; bad values stop with the YAML key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, write_task_config

from aloe_ros.config import ConfigError, load_task_config

TASKS = sorted(p.stem for p in (REPO / "config").glob("*.yaml"))


def test_the_three_tasks_of_the_issue_ship() -> None:
    assert {"pack_phone", "fold_laundry", "pick_place"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_every_shipped_task_loads(task: str) -> None:
    config = load_task_config(task)
    assert config.task.name == task
    assert config.robot.action_dim == len(config.robot.joint_names) == 14
    assert [c.topic for c in config.cameras] == [f"/aloe/cam/{c.name}/image"
                                                  for c in config.cameras]
    assert config.nodes_for(sim=True, record=False), "the sim graph must start something"


def _error(tmp_path: Path, overrides: dict) -> ConfigError:
    path = write_task_config(tmp_path, overrides=overrides)
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    return info.value


@pytest.mark.parametrize(
    ("overrides", "key_path", "fragment"),
    [
        ({"robot": {"control_rate": 30}}, "robot.control_rate", "unknown key"),
        ({"robot": {"control_rate_hz": "fast"}}, "robot.control_rate_hz", "expected a number"),
        ({"cameras": [{"name": "top", "fps": "thirty"}]}, "cameras[0].fps", "expected a number"),
        ({"cameras": [{"name": "top", "wdth": 3}]}, "cameras[0].wdth", "unknown key"),
        ({"cameras": [{"fps": 30}]}, "cameras[0].name", "missing required value"),
        ({"robot": {"velocity_limits": [1.0] * 13 + [-1.0]}}, "robot.velocity_limits[13]",
         "must be > 0"),
        ({"robot": {"position_lower": [0.0] * 13}}, "robot.position_lower", "has 13 values"),
        ({"robot": {"arms": {"left": ["left_waist", "nose"]}}}, "robot.arms.left[1]",
         "unknown joint 'nose'"),
        ({"policy": {"execute_horizon": 80}}, "policy.execute_horizon", "must be in [1,"),
        ({"learning": {"aggregation": "max"}}, "learning.aggregation", "must be one of"),
        ({"learning": {"advantage_scale": "batch"}}, "learning.advantage_scale",
         "must be one of"),
        ({"learning": {"advantage_value_floor": 0.0}}, "learning.advantage_value_floor",
         "must be > 0"),
        ({"learning": {"source_ratios": {"robot": 1.0}}}, "learning.source_ratios.robot",
         "unknown source"),
        ({"sim": {"seed": 1.5}}, "sim.seed", "expected an integer"),
        ({"recording": {"enabled": "yes"}}, "recording.enabled", "expected true or false"),
        ({"topics": {"command": "aloe/command"}}, "topics.command", "must be absolute"),
        ({"nodes": [{"name": "x", "executable": "no_such_node"}]}, "nodes[0].executable",
         "unknown executable"),
        ({"cameras": [{"name": "top"}, {"name": "top"}]}, "cameras[1].name", "listed twice"),
        ({"operator": {"give_up_s": -1.0}}, "operator.give_up_s", "must be >= 0"),
        ({"operator": {"fumble_rate": 1.5}}, "operator.fumble_rate", "must be in [0, 1]"),
        ({"operator": {"fumble_amplitude": -0.1}}, "operator.fumble_amplitude", "must be >= 0"),
        ({"episode": {"recorder_wait_s": -1.0}}, "episode.recorder_wait_s", "must be >= 0"),
    ],
)
def test_bad_values_name_the_key_path(tmp_path: Path, overrides: dict, key_path: str,
                                      fragment: str) -> None:
    error = _error(tmp_path, overrides)
    assert error.key_path == key_path
    assert fragment in str(error)
    assert str(tmp_path / "task.yaml") in str(error), "the message names the file"


def test_missing_section_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_text((REPO / "config" / "pack_phone.yaml").read_text().replace("robot:", "robo:"))
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    assert info.value.key_path == "robo"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("task:\n  name: x\n  text: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    assert "malformed YAML" in str(info.value)
    assert "broken.yaml" in str(info.value)
    assert "line" in str(info.value)


def test_exponent_numbers_without_a_dot_load_as_numbers(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads 1e-3 as a string; users write learning rates that way.
    text = (REPO / "config" / "pack_phone.yaml").read_text()
    path = tmp_path / "task.yaml"
    path.write_text(text.replace("learning:\n", "learning:\n  actor_lr: 1e-3\n"
                                 "  critic_lr: 3E-4\n", 1))
    learning = load_task_config(path).learning
    assert learning.actor_lr == pytest.approx(1e-3)
    assert learning.critic_lr == pytest.approx(3e-4)
    path.write_text(text.replace("learning:\n", "learning:\n  actor_lr: 1e-x\n", 1))
    with pytest.raises(ConfigError, match="expected a number") as info:
        load_task_config(path)
    assert info.value.key_path == "learning.actor_lr"


def test_transition_stride_is_checked_and_reaches_the_replay(tmp_path: Path) -> None:
    from aloe_ros.learning.factory import replay_spec

    path = write_task_config(tmp_path, overrides={"learning": {"transition_stride": -1}})
    with pytest.raises(ConfigError, match="must be >= 0") as info:
        load_task_config(path)
    assert info.value.key_path == "learning.transition_stride"
    path = write_task_config(tmp_path, overrides={"learning": {"transition_stride": 2}})
    assert replay_spec(load_task_config(path)).stride == 2
    assert replay_spec(load_task_config("pack_phone")).stride == 0


def test_takeover_penalty_is_checked_and_reaches_the_replay(tmp_path: Path) -> None:
    from aloe_ros.learning.factory import build_replay, replay_spec

    path = write_task_config(tmp_path, overrides={"learning": {"takeover_penalty": -1.0}})
    with pytest.raises(ConfigError, match="must be >= 0") as info:
        load_task_config(path)
    assert info.value.key_path == "learning.takeover_penalty"
    path = write_task_config(tmp_path, overrides={"learning": {"takeover_penalty": 0.5}})
    assert build_replay(load_task_config(path)).spec.takeover_penalty == 0.5
    assert replay_spec(load_task_config("pack_phone")).takeover_penalty == 0.0   # the paper's


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_assisted_policy_weight_is_checked(tmp_path: Path, bad: float) -> None:
    path = write_task_config(tmp_path, overrides={"learning": {"assisted_policy_weight": bad}})
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\]") as info:
        load_task_config(path)
    assert info.value.key_path == "learning.assisted_policy_weight"
    assert load_task_config("pack_phone").learning.assisted_policy_weight == 1.0  # the paper's


def test_unknown_task_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_task_config("pack_sandwich")
    assert "pack_phone" in str(info.value)


@pytest.mark.parametrize("task", TASKS)
def test_the_recorders_are_the_nodes_started_only_when_recording(task: str) -> None:
    """`aloe-ros up` starts the recorders first, teleop waits for them: for every shipped task
    they are exactly the entries launched with ``when: record``."""
    config = load_task_config(task)
    assert config.recorder_names() == {n.name for n in config.nodes if n.when == "record"}
    assert config.recorder_names(), f"{task}: nothing records the episode"


def test_nodes_for_filters_by_sim_and_record(pack_phone_config) -> None:  # noqa: ANN001
    sim_nodes = {n.name for n in pack_phone_config.nodes_for(sim=True, record=False)}
    real_nodes = {n.name for n in pack_phone_config.nodes_for(sim=False, record=False)}
    assert "sim_robot" in sim_nodes and "sim_robot" not in real_nodes
    assert "camera" in real_nodes and "camera" not in sim_nodes
