"""The task's policy and its inputs, ROS-free: load-and-check, and fresh observations.

``load_task_policy`` loads a checkpoint for a task (built-in or LeRobot, with the task's camera
mapping and sampling settings) and refuses one whose joints, action size or cameras differ from
the task YAML. ``assemble_observation`` builds an Observation only from inputs newer than the
configured age, or says which input is missing or stale.
"""

from __future__ import annotations

import numpy as np

from aloe_ros.config import TaskFile
from aloe_ros.policies.base import ChunkPolicy, Observation, PolicyError

__all__ = ["assemble_observation", "load_task_policy", "policy_mismatch"]


def policy_mismatch(policy: ChunkPolicy, config: TaskFile) -> str | None:
    """Why ``policy`` cannot drive this robot (joint names/order, cameras, action dim)."""
    joints = list(config.robot.joint_names)
    if policy.action_dim != len(joints):
        return (f"policy action_dim {policy.action_dim} != {len(joints)} joints in "
                "robot.joint_names")
    if list(policy.joint_names) != joints:
        return (f"policy joint names/order {list(policy.joint_names)} differ from "
                f"robot.joint_names {joints}")
    cameras = {c.name for c in config.cameras}
    missing = [c for c in policy.camera_names if c not in cameras]
    if missing:
        return f"policy needs camera(s) {missing}; the task has {sorted(cameras)}"
    return None


def load_task_policy(config: TaskFile, path: str, *, root: str | None = None,
                     expected_sha256: str | None = None) -> ChunkPolicy:
    """The task's policy from ``path`` (built-in or LeRobot); PolicyError when unusable."""
    from aloe_ros.policies.checkpoint import LeRobotBinding, apply_inference_settings, load_policy

    binding = LeRobotBinding(list(config.robot.joint_names), [c.name for c in config.cameras],
                             dict(config.policy.camera_keys), config.task.text)
    policy = load_policy(path, root=root, expected_sha256=expected_sha256,
                         kind=config.policy.kind, device=config.policy.device, binding=binding)
    problem = policy_mismatch(policy, config)
    if problem is not None:
        raise PolicyError(f"checkpoint {path}: {problem}")
    return apply_inference_settings(policy, flow_steps=config.policy.flow_steps,
                                    noise_scale=config.policy.noise_scale)


def assemble_observation(state: tuple[np.ndarray, float] | None,
                         images: dict[str, tuple[np.ndarray, float]], camera_names: list[str],
                         now: float, max_age_s: float, task: str) -> Observation | str:
    """An Observation if the joint state and every camera are at most ``max_age_s`` old at
    ``now`` (inputs are (value, stamp) pairs); otherwise why not, naming the input."""
    if state is None:
        return "no joint state yet"
    positions, state_stamp = state
    if now - state_stamp > max_age_s:
        return f"joint state is {now - state_stamp:.2f} s old (max {max_age_s} s)"
    frames = {}
    for camera in camera_names:
        if camera not in images:
            return f"no image from camera {camera} yet"
        frame, stamp = images[camera]
        if now - stamp > max_age_s:
            return f"camera {camera} image is {now - stamp:.2f} s old (max {max_age_s} s)"
        frames[camera] = frame
    newest = max([state_stamp] + [images[c][1] for c in camera_names])
    return Observation(frames, positions.astype(np.float32), task, newest)
