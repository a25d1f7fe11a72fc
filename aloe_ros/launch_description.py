"""Launch descriptions built from a task YAML, for ``ros2 launch aloe_ros <task>.launch.py``.

The launch files in launch/ are one-liners over :func:`generate_task_launch_description`, so the
node list, parameters and respawn flags come from the YAML exactly as for ``aloe-ros up``.
``launch`` / ``launch_ros`` are imported inside the functions: they exist on ROS machines only.

Launch arguments: ``sim:=true|false`` (default false: a real robot), ``record:=true|false``
(default: recording.enabled of the YAML), ``config:=<path>`` (default: the installed task YAML),
``record_dir:=<dir>``, ``policy:=<checkpoint dir>``.
"""

from __future__ import annotations

import os
from typing import Any

from aloe_ros.config import TaskFile, find_task_config, load_task_config

__all__ = ["generate_task_launch_description", "node_actions"]


def _truthy(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def node_parameters(config: TaskFile, entry_parameters: dict[str, Any], *, sim: bool,
                    record_dir: str, policy: str) -> dict[str, Any]:
    params: dict[str, Any] = {"config_file": config.source_path, "sim": sim}
    if record_dir:
        params["record_dir"] = record_dir
    if policy:
        params["policy_path"] = policy
    params.update(entry_parameters)
    return params


def node_actions(config: TaskFile, *, sim: bool, record: bool, record_dir: str = "",
                 policy: str = "") -> list[Any]:
    """launch_ros Node actions for the nodes the task lists under these arguments."""
    from launch_ros.actions import Node

    actions = []
    for entry in config.nodes_for(sim=sim, record=record):
        actions.append(Node(
            package="aloe_ros",
            executable=entry.executable,
            name=entry.name,
            output="screen",
            emulate_tty=True,
            respawn=entry.respawn,
            respawn_delay=entry.respawn_delay_s,
            parameters=[node_parameters(config, entry.parameters, sim=sim,
                                        record_dir=record_dir if record else "", policy=policy)],
        ))
    return actions


def _launch_setup(context: Any, task: str) -> list[Any]:
    from launch.actions import LogInfo
    from launch.substitutions import LaunchConfiguration

    def arg(name: str) -> str:
        return str(LaunchConfiguration(name).perform(context))

    config = load_task_config(arg("config") or task)
    sim = _truthy(arg("sim"))
    record_text = arg("record")
    record = config.recording.enabled if record_text == "" else _truthy(record_text)
    record_dir = arg("record_dir") or config.recording.dir
    actions = node_actions(config, sim=sim, record=record, record_dir=record_dir,
                           policy=arg("policy"))
    summary = (f"aloe_ros {config.task.name}: {len(actions)} nodes, "
               f"{'sim' if sim else 'real robot'}, {'recording' if record else 'not recording'}")
    return [LogInfo(msg=summary), *actions]


def generate_task_launch_description(task: str) -> Any:
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable

    from launch import LaunchDescription

    default_config = str(find_task_config(task))
    return LaunchDescription([
        DeclareLaunchArgument("sim", default_value="false",
                              description="run on the built-in simulated robot"),
        DeclareLaunchArgument("record", default_value="",
                              description="record a rosbag2 (default: recording.enabled)"),
        DeclareLaunchArgument("config", default_value=default_config,
                              description="task YAML to use instead of the installed one"),
        DeclareLaunchArgument("record_dir", default_value="",
                              description="where bags go (default: recording.dir)"),
        DeclareLaunchArgument("policy", default_value="",
                              description="policy checkpoint directory (default: policy.path)"),
        # Camera frames: Fast DDS's large-data transport halves p99 latency on one host.
        SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        # DDS stays on this host unless the user opened it (ROS 2's own default is SUBNET);
        # docs/reliability.md says how to reach a learner machine.
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                               os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")),
        OpaqueFunction(function=_launch_setup, args=[task]),
    ])
