"""Launch files and the package layout that `ros2 launch` / `ros2 run` rely on.

`launch` is not installable here, so the files are checked statically, and the launch
description is also built against small stand-ins of launch / launch_ros that record what
would be started.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

from aloe_ros.config import load_task_config
from aloe_ros.nodes import NODE_MODULES

LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def launch_task(path: Path) -> str:
    """The task name a launch file passes to generate_task_launch_description."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "")
                == "generate_task_launch_description"):
            assert isinstance(node.args[0], ast.Constant), f"{path}: task must be a literal"
            return str(node.args[0].value)
    raise AssertionError(f"{path} does not call generate_task_launch_description")


def test_a_launch_file_per_task() -> None:
    tasks = {p.stem for p in (REPO / "config").glob("*.yaml")}
    assert {launch_task(p) for p in LAUNCH_FILES} == tasks
    for path in LAUNCH_FILES:
        assert path.name == f"{launch_task(path)}.launch.py"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_valid_python_reading_files_that_exist(path: Path) -> None:
    compile(path.read_text(), str(path), "exec")
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in names
    assert (REPO / "config" / f"{launch_task(path)}.yaml").is_file()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_installed_executables(path: Path) -> None:
    config = load_task_config(launch_task(path))
    installed = {p.name for p in (REPO / "scripts" / "ros2_run").iterdir()}
    for entry in config.nodes:
        assert entry.executable in NODE_MODULES
        assert entry.executable in installed, f"no scripts/ros2_run/{entry.executable}"


def test_every_executable_is_installed_for_ros2_run_and_pip() -> None:
    wrappers = {p.name: p for p in (REPO / "scripts" / "ros2_run").iterdir()}
    assert set(wrappers) == set(NODE_MODULES)
    for name, module in NODE_MODULES.items():
        assert os.access(wrappers[name], os.X_OK), f"{name} wrapper is not executable"
        # Through boot, so a stop during the node's imports is a clean exit.
        assert f'start("{name}")' in wrappers[name].read_text()
        assert importlib.util.find_spec(module) is not None, module
    setup_py = (REPO / "setup.py").read_text()
    # Console scripts come from the same registry and also start through boot.
    assert "for name in node_modules()" in setup_py
    assert "aloe_ros.nodes.boot:console_main" in setup_py
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "scripts/ros2_run/*" in cmake and "DESTINATION lib/${PROJECT_NAME}" in cmake
    assert "install(DIRECTORY launch config DESTINATION share/${PROJECT_NAME})" in cmake


def test_package_xml_is_format_3_and_declares_what_the_code_imports() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "aloe_ros"
    declared = {e.text for e in root if e.tag.endswith("depend")}
    for needed in ("ament_cmake", "rosidl_default_generators", "rosidl_default_runtime",
                   "rclpy", "std_msgs", "sensor_msgs", "std_srvs", "builtin_interfaces",
                   "launch", "launch_ros"):
        assert needed in declared, needed
    assert root.find("member_of_group").text == "rosidl_interface_packages"
    assert (REPO / "resource" / "aloe_ros").is_file()


class _Recorder:
    """Stand-in for a launch action: remembers its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Minimal launch / launch_ros modules; LaunchConfiguration reads from ``values``."""
    values: dict[str, str] = {}

    class LaunchConfiguration:
        def __init__(self, name: str) -> None:
            self.name = name

        def perform(self, _context: Any) -> str:
            return values[self.name]

    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda entities: list(entities)  # type: ignore[attr-defined]
    actions = types.ModuleType("launch.actions")
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable", "LogInfo"):
        setattr(actions, name, type(name, (_Recorder,), {}))
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = LaunchConfiguration  # type: ignore[attr-defined]
    launch_ros = types.ModuleType("launch_ros")
    launch_ros_actions = types.ModuleType("launch_ros.actions")
    launch_ros_actions.Node = type("Node", (_Recorder,), {})  # type: ignore[attr-defined]
    for name, module in {"launch": launch, "launch.actions": actions,
                         "launch.substitutions": substitutions, "launch_ros": launch_ros,
                         "launch_ros.actions": launch_ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return values


def _run_launch(path: Path, values: dict[str, str], **arguments: str) -> list[Any]:
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    description = namespace["generate_launch_description"]()
    declared = {a.args[0]: a.kwargs["default_value"] for a in description
                if type(a).__name__ == "DeclareLaunchArgument"}
    assert {"sim", "record", "config", "policy"} <= set(declared)
    values.clear()
    values.update(declared)
    values.update(arguments)
    opaque = next(a for a in description if type(a).__name__ == "OpaqueFunction")
    return opaque.kwargs["function"](None, *opaque.kwargs["args"])


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_starts_the_yaml_nodes_with_their_parameters(
        path: Path, fake_launch: dict[str, str]) -> None:
    config = load_task_config(launch_task(path))
    entities = _run_launch(path, fake_launch, sim="true", record="false", policy="/ckpt")
    nodes = [e for e in entities if type(e).__name__ == "Node"]
    expected = config.nodes_for(sim=True, record=False)
    assert [n.kwargs["executable"] for n in nodes] == [e.executable for e in expected]
    for node, entry in zip(nodes, expected, strict=True):
        assert node.kwargs["package"] == "aloe_ros"
        assert node.kwargs["name"] == entry.name
        assert node.kwargs["respawn"] == entry.respawn
        params = node.kwargs["parameters"][0]
        assert params["config_file"] == config.source_path
        assert params["sim"] is True and params["policy_path"] == "/ckpt"


def test_launch_real_robot_starts_no_sim(fake_launch: dict[str, str]) -> None:
    path = REPO / "launch" / "pack_phone.launch.py"
    entities = _run_launch(path, fake_launch, sim="false")
    executables = [e.kwargs["executable"] for e in entities if type(e).__name__ == "Node"]
    assert "sim_robot_node" not in executables
