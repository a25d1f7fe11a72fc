"""Kinematics of the simulated 6-DoF arm (ALOHA-style joint layout) and its top-down IK.

Joint order per arm: waist, shoulder, elbow, forearm_roll, wrist_angle, wrist_rotate, gripper.
The waist turns the arm about the vertical axis; shoulder, elbow and wrist_angle are pitch joints
in the vertical plane of the arm; forearm_roll and wrist_rotate only turn the gripper about its
axis (the tasks do not depend on them, as on a real arm with a round grasp). The gripper joint is
an opening in [0, 1] (0 closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ARM_JOINT_ROLES", "ArmGeometry", "forward_kinematics", "inverse_kinematics_down"]

ARM_JOINT_ROLES = (
    "waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"
)


@dataclass(frozen=True)
class ArmGeometry:
    """Where an arm stands on the table and its link lengths, in metres."""

    base_x: float
    base_y: float = 0.0
    base_height: float = 0.10
    upper_arm: float = 0.35
    forearm: float = 0.35
    hand: float = 0.08


def forward_kinematics(geometry: ArmGeometry, joints: np.ndarray) -> tuple[np.ndarray, float]:
    """Gripper tip position (x, y, z) and gripper yaw for the 7 joint values of one arm."""
    waist, shoulder, elbow, roll, wrist, rotate = (float(v) for v in joints[:6])
    pitch_elbow = shoulder + elbow
    pitch_hand = pitch_elbow + wrist
    reach = (geometry.upper_arm * math.cos(shoulder) + geometry.forearm * math.cos(pitch_elbow)
             + geometry.hand * math.cos(pitch_hand))
    height = (geometry.base_height + geometry.upper_arm * math.sin(shoulder)
              + geometry.forearm * math.sin(pitch_elbow) + geometry.hand * math.sin(pitch_hand))
    # Waist 0 points the arm along +y (across the table); positive waist turns it towards -x.
    x = geometry.base_x - reach * math.sin(waist)
    y = geometry.base_y + reach * math.cos(waist)
    return np.array([x, y, height]), waist + roll + rotate


def inverse_kinematics_down(
    geometry: ArmGeometry, target: np.ndarray, yaw: float = 0.0
) -> np.ndarray | None:
    """Six arm joints that put the gripper tip at ``target`` pointing straight down.

    Returns None when the point is out of reach. The elbow-up solution is returned, which is the
    one the arm uses on a table.
    """
    dx = float(target[0]) - geometry.base_x
    dy = float(target[1]) - geometry.base_y
    waist = math.atan2(-dx, dy)
    reach = math.hypot(dx, dy)
    # The wrist point sits one hand length above the tip when the hand points down.
    wrist_r = reach
    wrist_z = float(target[2]) + geometry.hand - geometry.base_height
    distance_sq = wrist_r**2 + wrist_z**2
    l1, l2 = geometry.upper_arm, geometry.forearm
    cos_elbow = (distance_sq - l1**2 - l2**2) / (2 * l1 * l2)
    if not -1.0 <= cos_elbow <= 1.0:
        return None
    elbow = -math.acos(cos_elbow)  # negative: elbow above the line shoulder-wrist
    shoulder = math.atan2(wrist_z, wrist_r) - math.atan2(
        l2 * math.sin(elbow), l1 + l2 * math.cos(elbow)
    )
    wrist = -math.pi / 2 - shoulder - elbow
    rotate = yaw - waist
    return np.array([waist, shoulder, elbow, 0.0, wrist, rotate])
