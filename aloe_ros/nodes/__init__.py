"""ROS 2 nodes: thin shells that wire topics, parameters and timers to the ROS-free core.

NODE_MODULES is the one registry of executables: ``aloe-ros up``, the launch files,
``ros2 run`` wrappers (scripts/ros2_run) and setup.py entry points are all checked against it.
Each module exposes ``main(args=None)``.
"""

from __future__ import annotations

NODE_MODULES: dict[str, str] = {
    "sim_robot_node": "aloe_ros.nodes.sim_robot_node",
    "sim_operator_node": "aloe_ros.nodes.sim_operator_node",
    "camera_node": "aloe_ros.nodes.camera_node",
    "chunk_inference_node": "aloe_ros.nodes.chunk_inference_node",
    "trajectory_logger_node": "aloe_ros.nodes.trajectory_logger_node",
    "critic_learner_node": "aloe_ros.nodes.critic_learner_node",
    "teleop_node": "aloe_ros.nodes.teleop_node",
    "joystick_node": "aloe_ros.nodes.joystick_node",
    "command_output_node": "aloe_ros.nodes.command_output_node",
}

__all__ = ["NODE_MODULES"]
