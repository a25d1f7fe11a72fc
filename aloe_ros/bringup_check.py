"""The bring-up check: what a live graph offers, judged against the task config (no ROS here).

``aloe-ros check <task>`` (aloe_ros/commands/check.py) listens to the configured topics for a
few seconds and hands a :class:`GraphSnapshot` of plain values to :func:`evaluate`, which
returns one :class:`Row` per finding. A FAIL row means the loop would be unsafe or wrong
(missing or slow inputs, joints that do not match, a robot outside its limits, nobody listening
to the commands); the command exits non-zero on any FAIL.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from aloe_ros.config import CameraConfig, TaskFile
from aloe_ros.io.images import ENCODING_CHANNELS

__all__ = ["CameraFrame", "GraphSnapshot", "Level", "Row", "TopicSample", "evaluate",
           "exit_code", "format_table", "urdf_limits"]

# A topic slower than this fraction of its expected rate fails; below WARN_RATE it warns.
FAIL_RATE = 0.5
WARN_RATE = 0.8
# Our own nodes, which listen to topics.command without executing it.
OBSERVERS = ("trajectory_logger", "logger", "command_output", "aloe_check")
LIMIT_TOLERANCE = 1e-3


class Level(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Row:
    item: str
    level: Level
    detail: str


@dataclass
class CameraFrame:
    """The last frame of a camera topic: its size and encoding (or the decode error)."""

    height: int = 0
    width: int = 0
    encoding: str = ""
    error: str = ""


@dataclass
class TopicSample:
    """What was heard on one topic during the listening window."""

    topic: str
    count: int = 0
    rate_hz: float | None = None
    publishers: list[str] = field(default_factory=list)
    subscribers: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)


@dataclass
class GraphSnapshot:
    topics: dict[str, TopicSample]
    duration_s: float
    joint_names: list[str] | None = None          # the last JointState
    joint_positions: list[float] | None = None
    cameras: dict[str, CameraFrame] = field(default_factory=dict)
    robot_description: str | None = None
    sim: bool = False

    def sample(self, topic: str) -> TopicSample:
        return self.topics.get(topic) or TopicSample(topic)


def _rate_row(item: str, sample: TopicSample, expected_hz: float) -> Row:
    """Present and fast enough: FAIL below FAIL_RATE x expected, WARN below WARN_RATE x."""
    if sample.count == 0:
        who = f"publishers {sample.publishers}" if sample.publishers else "no publisher"
        return Row(item, Level.FAIL, f"{sample.topic}: nothing received ({who})")
    rate = sample.rate_hz or 0.0
    text = f"{sample.topic}: {rate:.1f} Hz (expected {expected_hz:g})"
    if rate < FAIL_RATE * expected_hz:
        return Row(item, Level.FAIL, text + ": too slow for the control loop")
    if rate < WARN_RATE * expected_hz:
        return Row(item, Level.WARN, text)
    return Row(item, Level.OK, text)


def check_joint_states(config: TaskFile, snap: GraphSnapshot) -> list[Row]:
    robot = config.robot
    rows = [_rate_row("joint states", snap.sample(config.topics.joint_states),
                      robot.control_rate_hz)]
    if snap.joint_names is None or snap.joint_positions is None:
        return rows
    names, wanted = list(snap.joint_names), list(robot.joint_names)
    missing = [n for n in wanted if n not in names]
    extra = [n for n in names if n not in wanted]
    if missing or extra:
        rows.append(Row("joint names", Level.FAIL,
                        f"missing {missing}; not in robot.joint_names {extra}" if extra
                        else f"missing {missing}"))
        return rows
    rows.append(Row("joint names", Level.OK, f"{len(wanted)} joints" + (
        "" if names == wanted else " (different order: mapped by name)")))
    outside = []
    for name, value in zip(names, snap.joint_positions):
        i = wanted.index(name)
        low, high = robot.position_lower[i], robot.position_upper[i]
        if not low - LIMIT_TOLERANCE <= value <= high + LIMIT_TOLERANCE:
            outside.append(f"{name}={value:.3f} not in [{low:g}, {high:g}]")
    rows.append(Row("joint limits", Level.FAIL, "robot outside robot.position_lower/upper: "
                    + "; ".join(outside[:4])) if outside
                else Row("joint limits", Level.OK, "measured pose inside the configured limits"))
    return rows


def check_camera(camera: CameraConfig, snap: GraphSnapshot) -> list[Row]:
    item = f"camera {camera.name}"
    sample = snap.sample(camera.topic)
    expected = "sensor_msgs/msg/CompressedImage" if camera.compressed else "sensor_msgs/msg/Image"
    if sample.types and expected not in sample.types:
        return [Row(item, Level.FAIL, f"{camera.topic} carries {sample.types}, the config "
                                      f"expects {expected} (check cameras[].compressed)")]
    rows = [_rate_row(item, sample, camera.fps)]
    frame = snap.cameras.get(camera.name)
    if frame is None:
        return rows
    kind = "compressed" if camera.compressed else "raw"
    if frame.error:
        rows.append(Row(f"{item} image", Level.FAIL, f"{kind}: {frame.error}"))
        return rows
    if not camera.compressed and frame.encoding not in ENCODING_CHANNELS:
        rows.append(Row(f"{item} image", Level.FAIL, f"encoding {frame.encoding!r} not "
                        f"supported (use {sorted(ENCODING_CHANNELS)}; set the driver's "
                        "pixel format or use its compressed topic)"))
        return rows
    size = f"{frame.width}x{frame.height} {frame.encoding}"
    wanted = f"{camera.width}x{camera.height}"
    if (frame.height, frame.width) == (camera.height, camera.width):
        rows.append(Row(f"{item} image", Level.OK, f"{kind} {size}"))
    elif camera.source == "topic":
        rows.append(Row(f"{item} image", Level.OK, f"{kind} {size}, resized to {wanted} at the "
                                                   "edge"))
    else:
        rows.append(Row(f"{item} image", Level.FAIL, f"{size}, config says {wanted} (only "
                                                     "source: topic cameras are resized)"))
    return rows


def check_clock(snap: GraphSnapshot) -> Row:
    clock = snap.sample("/clock")
    if not clock.publishers:
        return Row("clock", Level.OK, "system time (no /clock); nodes must not use_sim_time")
    if clock.count == 0:
        return Row("clock", Level.FAIL, f"/clock advertised by {clock.publishers} but silent: "
                                        "nodes with use_sim_time would freeze")
    return Row("clock", Level.INFO, f"/clock at {clock.rate_hz or 0:.0f} Hz from "
                                    f"{clock.publishers}: run every node with use_sim_time")


def check_joy(config: TaskFile, snap: GraphSnapshot) -> Row:
    joy = snap.sample(config.topics.joy)
    if joy.publishers or joy.count:
        return Row("joystick", Level.OK, f"{config.topics.joy} from {joy.publishers}")
    if snap.sim:
        return Row("joystick", Level.OK, f"no {config.topics.joy} publisher (not needed on the "
                                         "sim)")
    return Row("joystick", Level.FAIL, f"no publisher on {config.topics.joy}: no takeover and "
                                       "no pad e-stop (start joy_node or joystick_node)")


def check_outputs(config: TaskFile, snap: GraphSnapshot) -> list[Row]:
    """Someone must execute the commands: a controller per output, else a driver reading
    topics.command (our own logger / output node do not count)."""
    rows = []
    if not config.outputs:
        subscribers = [n for n in snap.sample(config.topics.command).subscribers
                       if n not in OBSERVERS]
        if subscribers:
            rows.append(Row("commands", Level.OK, f"{config.topics.command} (JointState) read "
                                                  f"by {subscribers}"))
        else:
            rows.append(Row("commands", Level.FAIL, f"nothing subscribes {config.topics.command}"
                                                    " and no outputs are configured"))
        return rows
    for i, output in enumerate(config.outputs):
        subscribers = [n for n in snap.sample(output.topic).subscribers if n != "aloe_check"]
        item = f"output {i} ({output.type})"
        joints = len(output.joints or config.robot.joint_names)
        if subscribers:
            rows.append(Row(item, Level.OK, f"{output.topic}: {joints} joints, controller(s) "
                                            f"{subscribers}"))
        else:
            rows.append(Row(item, Level.FAIL, f"{output.topic}: no controller subscribes "
                                              "(controller not loaded or not active?)"))
    return rows


def urdf_limits(urdf: str) -> dict[str, tuple[float, float, float]]:
    """Joint -> (lower, upper, velocity) of the limited joints of a URDF."""
    limits = {}
    for joint in ElementTree.fromstring(urdf).iter("joint"):
        limit = joint.find("limit")
        if limit is None or joint.get("type") not in ("revolute", "prismatic"):
            continue
        limits[str(joint.get("name"))] = (float(limit.get("lower", "0")),
                                          float(limit.get("upper", "0")),
                                          float(limit.get("velocity", "inf")))
    return limits


def check_urdf(config: TaskFile, snap: GraphSnapshot) -> Row:
    if not snap.robot_description:
        return Row("URDF limits", Level.INFO, "no /robot_description: limits not cross-checked")
    try:
        limits = urdf_limits(snap.robot_description)
    except (ElementTree.ParseError, ValueError) as exc:
        return Row("URDF limits", Level.WARN, f"/robot_description unreadable: {exc}")
    robot = config.robot
    wider = []
    for i, name in enumerate(robot.joint_names):
        if name not in limits:
            continue
        low, high, speed = limits[name]
        if robot.position_lower[i] < low - LIMIT_TOLERANCE \
                or robot.position_upper[i] > high + LIMIT_TOLERANCE:
            wider.append(f"{name} [{robot.position_lower[i]:g}, {robot.position_upper[i]:g}] "
                         f"beyond URDF [{low:g}, {high:g}]")
        if robot.velocity_limits[i] > speed + LIMIT_TOLERANCE:
            wider.append(f"{name} speed {robot.velocity_limits[i]:g} > URDF {speed:g}")
    if wider:
        return Row("URDF limits", Level.FAIL, "; ".join(wider[:4]))
    known = sum(name in limits for name in robot.joint_names)
    return Row("URDF limits", Level.OK, f"{known}/{robot.action_dim} joints inside the URDF")


def evaluate(config: TaskFile, snap: GraphSnapshot,
             policy_problem: str | None = None, policy_label: str = "") -> list[Row]:
    """Every finding, in the order an operator reads them (inputs, robot, outputs, policy)."""
    rows = check_joint_states(config, snap)
    for camera in config.cameras:
        rows += check_camera(camera, snap)
    rows.append(check_joy(config, snap))
    rows.append(check_clock(snap))
    rows += check_outputs(config, snap)
    rows.append(check_urdf(config, snap))
    if policy_label:
        rows.append(Row("policy", Level.FAIL, policy_problem) if policy_problem
                    else Row("policy", Level.OK, f"{policy_label}: joints, order and cameras "
                                                 "match the task"))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    width = max([len(r.item) for r in rows] + [5])
    lines = [f"{'CHECK':<{width}}  {'':4}  DETAIL", f"{'-' * width}  ----  {'-' * 40}"]
    lines += [f"{r.item:<{width}}  {r.level.value:<4}  {r.detail}" for r in rows]
    return "\n".join(lines)


def exit_code(rows: Sequence[Row]) -> int:
    """1 when anything would make the loop unsafe or wrong, else 0."""
    return 1 if any(r.level == Level.FAIL for r in rows) else 0
