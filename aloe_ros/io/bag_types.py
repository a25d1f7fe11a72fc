"""Message types of recorded bags, without ROS: a rosbags typestore that knows our messages.

The typestore holds the ROS 2 Kilted standard messages plus ``aloe_ros/msg/*`` registered from
the ``.msg`` text, so the logger can embed full definitions (and RIHS01 type hashes equal to
rclpy's) and readers can decode bags on a machine without rclpy. Also: which topics the loop
records (from the task config), and a tolerant CDR decoder (rclpy pads some messages).
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from aloe_ros.config import TaskFile, package_root

__all__ = [
    "CUSTOM_TYPES", "DecodeError", "aloe_typestore", "decode_cdr", "header_stamp_ns",
    "msg_dir", "recorded_topics",
]

# Our messages, by rosbags type name.
CUSTOM_TYPES = ("ActionChunk", "CriticStats", "EpisodeEvent", "InterventionEvent",
                "PolicyUpdate", "Status")
PACKAGE = "aloe_ros"


class DecodeError(ValueError):
    """A serialized message that cannot be decoded as its type."""


def msg_dir() -> Path:
    """Directory holding our ``.msg`` files: the checkout, or the installed share directory."""
    candidates = [package_root() / "msg"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "msg")
    except Exception:  # noqa: BLE001 - not installed through ament: the checkout is enough
        pass
    for folder in candidates:
        if all((folder / f"{name}.msg").is_file() for name in CUSTOM_TYPES):
            return folder
    raise FileNotFoundError(f"aloe_ros .msg files not found in {[str(c) for c in candidates]}")


@functools.cache
def aloe_typestore() -> Typestore:
    """Kilted standard types + aloe_ros/msg/* (cached; treat as read-only)."""
    store = get_typestore(Stores.ROS2_KILTED)
    folder = msg_dir()
    types: dict[str, Any] = {}
    for name in CUSTOM_TYPES:
        text = (folder / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store


def register_definitions(store: Typestore, definitions: dict[str, str]) -> None:
    """Add types found in a bag (msgtype -> ros2msg text) that the store does not know yet."""
    parse = get_types_from_msg
    missing: dict[str, Any] = {}
    for msgtype, text in definitions.items():
        if msgtype in store.fielddefs:
            continue
        # A ros2msg schema concatenates the definitions it depends on after '=====' lines.
        parts = text.split("\n" + "=" * 80 + "\n")
        missing.update(parse(parts[0], msgtype))
        for part in parts[1:]:
            head, _, body = part.partition("\n")
            if head.startswith("MSG: "):
                sub = head[5:].strip()
                if "/msg/" not in sub:
                    sub = sub.replace("/", "/msg/", 1)
                if sub not in store.fielddefs:
                    missing.update(parse(body, sub))
    if missing:
        store.register(missing)


def decode_cdr(store: Typestore, data: bytes | memoryview, msgtype: str) -> Any:
    """Deserialize CDR bytes, accepting trailing padding bytes.

    rclpy's serializer can append a few bytes after a message ending in an empty float64[]
    (e.g. JointState.effort); rosbags' strict ``deserialize_cdr`` then reports a size mismatch
    although every field is intact. Everything else is checked as strictly as rosbags does.
    """
    if len(data) < 4 or bytes(data[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise DecodeError(f"{msgtype}: invalid or unsupported CDR encapsulation")
    try:
        msgdef = store.get_msgdef(msgtype)
    except Exception as exc:  # noqa: BLE001 - rosbags raises its own TypesysError
        raise DecodeError(f"{msgtype}: unknown message type ({exc})") from None
    func = msgdef.deserialize_cdr_le if data[1] else msgdef.deserialize_cdr_be
    try:
        message, _ = func(data[4:], 0, msgdef.cls, store)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise DecodeError(f"{msgtype}: cannot deserialize ({exc})") from None
    return message


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp of a CDR message whose first field is std_msgs/Header (no decoding)."""
    if len(data) < 12:
        raise DecodeError("message too short for a header")
    fmt = "<iI" if data[1] else ">iI"
    sec, nanosec = struct.unpack_from(fmt, data, 4)
    return sec * 1_000_000_000 + nanosec


def recorded_topics(config: TaskFile) -> dict[str, str]:
    """Topic -> message type for every topic of the loop (extra topics are discovered live)."""
    topics = config.topics
    joint_state = "sensor_msgs/msg/JointState"
    table = {camera.topic: "sensor_msgs/msg/CompressedImage" if camera.compressed
             else "sensor_msgs/msg/Image" for camera in config.cameras}
    table.update({
        topics.joint_states: joint_state,
        topics.command: joint_state,
        topics.policy_command: joint_state,
        topics.teleop_command: joint_state,
        topics.joy: "sensor_msgs/msg/Joy",
        topics.policy_chunk: f"{PACKAGE}/msg/ActionChunk",
        topics.intervention: f"{PACKAGE}/msg/InterventionEvent",
        topics.episode: f"{PACKAGE}/msg/EpisodeEvent",
        topics.sim_detector: f"{PACKAGE}/msg/EpisodeEvent",
        topics.status: f"{PACKAGE}/msg/Status",
        topics.critic_stats: f"{PACKAGE}/msg/CriticStats",
        topics.policy_update: f"{PACKAGE}/msg/PolicyUpdate",
    })
    if config.joystick.leader_topic:
        table[config.joystick.leader_topic] = joint_state
    # Shadow mode: what the policy would have commanded, and when shadow mode was on.
    table[config.shadow.command_topic] = joint_state
    table[config.shadow.state_topic] = "std_msgs/msg/Bool"
    return table
