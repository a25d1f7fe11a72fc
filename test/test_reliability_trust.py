"""Trust boundaries: which checkpoints a PolicyUpdate may name, which weight formats load, and
that DDS stays on this host unless the user opens it (docs/reliability.md)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from aloe_ros.policies.base import PolicyError
from aloe_ros.policies.checkpoint import load_policy, resolve_checkpoint_dir
from aloe_ros.runner import node_environment


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "checkpoints"
    (root / "v1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "checkpoints_evil").mkdir()     # shares the root's name as a prefix
    return {"root": root, "inside": root / "v1", "base": tmp_path}


@pytest.mark.parametrize("name", [
    "checkpoints/../elsewhere",                  # climbs out with ..
    "checkpoints/v1/../../elsewhere",
    "checkpoints_evil",                          # a sibling whose name starts like the root
    "elsewhere",
])
def test_paths_outside_the_checkpoint_root_are_refused(tree: dict[str, Path], name: str
                                                       ) -> None:
    path = tree["base"] / name
    for form in (str(path), path.as_uri()):
        with pytest.raises(PolicyError, match="outside the checkpoint root"):
            resolve_checkpoint_dir(form, tree["root"])


def test_percent_encoded_uri_cannot_climb_out(tree: dict[str, Path]) -> None:
    uri = tree["root"].as_uri() + "/%2E%2E/elsewhere"
    with pytest.raises(PolicyError, match="outside the checkpoint root"):
        resolve_checkpoint_dir(uri, tree["root"])


def test_a_symlinked_root_still_accepts_what_is_inside(tree: dict[str, Path]) -> None:
    link = tree["base"] / "root_link"
    link.symlink_to(tree["root"])
    assert resolve_checkpoint_dir((link / "v1").as_uri(), link) == tree["inside"].resolve()
    assert resolve_checkpoint_dir(str(tree["inside"]), tree["root"]) == tree["inside"].resolve()


@pytest.mark.parametrize("weights", ["model.bin", "model.pth", "model.pkl"])
def test_only_formats_that_cannot_run_code_are_read(tree: dict[str, Path], weights: str
                                                    ) -> None:
    checkpoint = tree["inside"]
    (checkpoint / "policy.json").write_text(json.dumps({"kind": "builtin"}))
    (checkpoint / weights).write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(PolicyError, match="can run code"):
        load_policy(checkpoint, root=tree["root"])


def test_dds_stays_on_this_host_unless_the_user_opens_it() -> None:
    assert node_environment({})["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    opened = node_environment({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"})
    assert opened["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


class _Action:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def stub_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Just enough of `launch` to build the description (no ROS install here)."""
    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda entities: list(entities)  # type: ignore[attr-defined]
    actions = types.ModuleType("launch.actions")
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable"):
        setattr(actions, name, type(name, (_Action,), {}))
    monkeypatch.setitem(sys.modules, "launch", launch)
    monkeypatch.setitem(sys.modules, "launch.actions", actions)


@pytest.mark.parametrize("user_value, expected", [(None, "LOCALHOST"), ("SUBNET", "SUBNET")])
def test_launch_keeps_dds_on_this_host_by_default(stub_launch: None,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  user_value: str | None, expected: str) -> None:
    from aloe_ros.launch_description import generate_task_launch_description

    if user_value is None:
        monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    else:
        monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", user_value)
    description = generate_task_launch_description("pack_phone")
    env = {a.args[0]: a.args[1] for a in description
           if type(a).__name__ == "SetEnvironmentVariable"}
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == expected
