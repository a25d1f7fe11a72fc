"""Bad inputs injected into the live graph, each with the behaviour it must get.

Every case publishes something wrong on a real input topic of the running sim graph and
passes only if: the node that owns the input counts it (its Status counter rises), every node
is still the same process and still reports Status, the recorder lost nothing (its ``lost``
counter did not move), and every command the robot got stayed finite and inside the limits.
The cases that need no graph (YAML, bags, clocks) are in :mod:`aloe_ros.reliability.offline`.
"""

from __future__ import annotations

import array
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sensor_msgs.msg import Image, JointState, Joy

from aloe_ros.msg import PolicyUpdate
from aloe_ros.reliability.checks import check_commands, motion_range
from aloe_ros.reliability.estop import Pad
from aloe_ros.reliability.probe import INJECTED_FRAME
from aloe_ros.reliability.session import GraphSession

__all__ = ["CaseResult", "FloodRecord", "run_live_cases", "verify_flood"]

COUNTER_WAIT_S = 4.0
LIVENESS_WAIT_S = 6.0
FLOOD_COUNT = 2000


@dataclass
class CaseResult:
    case: str
    expected: str
    observed: str
    passed: bool


@dataclass
class LiveCase:
    name: str
    expected: str
    # (node, counter) that must rise; the injection; extra check -> (ok, text) or None.
    counter: tuple[str, str]
    inject: Callable[[GraphSession], None]
    extra: Callable[[GraphSession, int], tuple[bool, str]] | None = None


def _joint_state(session: GraphSession, positions: list[float],
                 names: list[str] | None = None) -> JointState:
    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    msg.header.frame_id = INJECTED_FRAME
    msg.name = list(session.config.robot.joint_names) if names is None else names
    msg.position = [float(p) for p in positions]
    return msg


def _home(session: GraphSession) -> list[float]:
    return list(session.config.robot.home_position)


def _image(session: GraphSession, width: int, height: int, encoding: str) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    msg.header.frame_id = INJECTED_FRAME
    msg.height, msg.width, msg.encoding = height, width, encoding
    channels = 3 if encoding in ("rgb8", "bgr8") else 4
    msg.step = width * channels
    msg.data = array.array("B", bytes(width * height * channels))
    return msg


def _send(session: GraphSession, topic: str, msgs: list[object], kind: str = "command"
          ) -> None:
    for msg in msgs:
        session.probe.publish(topic, msg, kind)
        time.sleep(0.02)


def _camera_topic(session: GraphSession) -> str:
    return session.config.cameras[0].topic


def _no_bad_command_reached_the_robot(session: GraphSession, since_ns: int) -> tuple[bool, str]:
    check = check_commands(session.probe.commands(since_ns), [], session.config.robot)
    ok = check.non_finite == 0 and check.beyond_position_limits == 0
    return ok, (f"{check.commands} robot commands, {check.non_finite} non-finite or of the "
                f"wrong size, {check.beyond_position_limits} beyond the limits")


def _pad_disappears(session: GraphSession) -> None:
    pad = Pad(session)
    pad.hold(0.1, ("takeover",))
    pad.hold(1.0)
    # ... and the pad goes silent (unplugged): nothing is sent for 2 s.
    session.sleep(2.0)


def _pad_returns(session: GraphSession, since_ns: int) -> tuple[bool, str]:
    status = session.probe.last_status("teleop")
    source = status.control_source if status else "?"
    quiet = session.probe.joint_states(since_ns + int(1.9e9))
    moved = motion_range(quiet)
    pad = Pad(session)
    pad.hold(0.3)                      # the pad is back: human control from the held pose
    pad.hold(0.1, ("handback",))       # and the policy gets the robot again
    pad.hold(0.3)
    ok = source == "hold" and moved <= 0.02
    return ok, f"control '{source}' while silent, arm moved {moved:.4f} rad"


def _flood(session: GraphSession) -> None:
    home = session.probe.latest_joint_state()
    state = _joint_state(session, list(home) if home is not None else _home(session))
    pad = Pad(session)
    joy = pad.message()
    camera = session.config.cameras[0]
    image = _image(session, camera.width, camera.height, "rgb8")
    publish = session.probe.publish
    started_ns = time.time_ns()
    for i in range(FLOOD_COUNT):
        publish(session.config.topics.joint_states, state)
        publish(session.config.topics.joy, joy)
        if i % 10 == 0:
            publish(camera.topic, image, "sensor")
    session.notes["flood"] = FloodRecord(
        started_ns, time.time_ns(), {session.config.topics.joint_states: FLOOD_COUNT,
                                     session.config.topics.joy: FLOOD_COUNT,
                                     camera.topic: FLOOD_COUNT // 10})
    session.sleep(1.0)


@dataclass
class FloodRecord:
    started_ns: int
    ended_ns: int
    sent: dict[str, int]


def verify_flood(results: list[CaseResult], flood: FloodRecord | None,
                 bag_paths: list[str]) -> None:
    """After the run: did the bag get every flooded message? (A reliable publisher with a
    short history can overwrite what a slow subscriber has not taken yet: that loss happens
    in DDS, before the recorder could count it.)"""
    from aloe_ros.io.bag_reader import Bag

    case = next((r for r in results if r.case.startswith("flood")), None)
    if case is None or flood is None:
        return
    recorded = dict.fromkeys(flood.sent, 0)
    for path in bag_paths:
        with Bag(path) as bag:
            wanted = [t for t in flood.sent if t in bag.topics]
            for topic, msgtype, stamp, data in bag.messages(wanted):
                if flood.started_ns <= stamp <= flood.ended_ns + 10_000_000_000 and \
                        bag.decode(msgtype, data).header.frame_id == INJECTED_FRAME:
                    recorded[topic] += 1
    # Messages beyond the publisher's history depth are overwritten in DDS before a slow
    # subscriber takes them; Fast DDS raises no message-lost event for that, so the recorder
    # cannot count them. The bag's share is reported; the case fails only on nothing at all.
    case.observed += "; in the bag: " + ", ".join(
        f"{t.rsplit('/', 1)[-1]} {recorded[t]}/{flood.sent[t]}" for t in flood.sent)
    case.passed = case.passed and all(recorded.values())


def _policy_update(session: GraphSession, uri: str, sha256: str) -> None:
    msg = PolicyUpdate()
    msg.policy_version = "fault-suite-update"
    msg.checkpoint_uri, msg.sha256 = uri, sha256
    _send(session, session.config.topics.policy_update, [msg], "events")


def _outside_root(session: GraphSession) -> None:
    folder = session.out_dir / "outside_root"
    folder.mkdir(exist_ok=True)
    (folder / "policy.json").write_text("{}")
    _policy_update(session, folder.resolve().as_uri(), "")


def _corrupt_checkpoint(session: GraphSession) -> None:
    folder = Path(session.config.policy.checkpoint_root) / "corrupt"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.json").write_text('{"kind": "builtin", "sha256": "00"}')
    (folder / "model.safetensors").write_bytes(b"\x00not safetensors" * 64)
    _policy_update(session, folder.resolve().as_uri(), "")


def _pickle_checkpoint(session: GraphSession) -> None:
    folder = Path(session.config.policy.checkpoint_root) / "pickled"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.json").write_text('{"kind": "builtin"}')
    # A pickle that would run code if anything unpickled it.
    (folder / "model.bin").write_bytes(b"cos\nsystem\n(S'touch /tmp/aloe_pwned'\ntR.")
    _policy_update(session, folder.resolve().as_uri(), "")


def _wrong_hash(session: GraphSession) -> None:
    from aloe_ros.policies.bc import new_builtin_policy

    folder = Path(session.config.policy.checkpoint_root) / "good_weights"
    new_builtin_policy(session.config).save(folder, version="fault-suite")
    _policy_update(session, folder.resolve().as_uri(), "0" * 64)


def _policy_kept(session: GraphSession, since_ns: int) -> tuple[bool, str]:
    status = session.probe.last_status("chunk_inference")
    version = status.policy_version if status else "?"
    return version != "fault-suite-update", f"running policy {version}"


def live_cases(session: GraphSession) -> list[LiveCase]:
    cfg = session.config
    n = len(cfg.robot.joint_names)
    camera = cfg.cameras[0].name
    nan_state = _home(session)
    nan_state[0] = float("nan")
    inf_state = _home(session)
    inf_state[1] = float("inf")
    unknown = list(cfg.robot.joint_names)
    unknown[0] = "no_such_joint"
    topics = cfg.topics
    return [
        LiveCase("image of the wrong size", "rejected by chunk_inference (bad_images)",
                 ("chunk_inference", f"bad_images_{camera}"),
                 lambda s: _send(s, _camera_topic(s), [_image(s, 64, 48, "rgb8")] * 3,
                                 "sensor")),
        LiveCase("image in an unknown encoding", "rejected by chunk_inference (bad_images)",
                 ("chunk_inference", f"bad_images_{camera}"),
                 lambda s: _send(s, _camera_topic(s),
                                 [_image(s, cfg.cameras[0].width, cfg.cameras[0].height,
                                         "yuv422_weird")] * 3, "sensor")),
        LiveCase("NaN / inf in joint states", "rejected by teleop (bad_joint_states)",
                 ("teleop", "bad_joint_states"),
                 lambda s: _send(s, topics.joint_states,
                                 [_joint_state(s, nan_state), _joint_state(s, inf_state)])),
        LiveCase("joint state of the wrong dimension", "rejected by teleop (bad_joint_states)",
                 ("teleop", "bad_joint_states"),
                 lambda s: _send(s, topics.joint_states,
                                 [_joint_state(s, _home(s)[:-1], list(cfg.robot.joint_names)
                                               [:-1])])),
        LiveCase("unknown joint names", "rejected by teleop (bad_joint_states)",
                 ("teleop", "bad_joint_states"),
                 lambda s: _send(s, topics.joint_states,
                                 [_joint_state(s, _home(s), unknown)])),
        LiveCase("NaN / inf in policy actions", "rejected by the mux (bad_policy_commands); "
                 "no NaN reaches the robot", ("teleop", "bad_policy_commands"),
                 lambda s: _send(s, topics.policy_command,
                                 [_joint_state(s, nan_state), _joint_state(s, inf_state)]),
                 _no_bad_command_reached_the_robot),
        LiveCase("policy action of the wrong dimension", "rejected by the mux "
                 "(bad_policy_commands)", ("teleop", "bad_policy_commands"),
                 lambda s: _send(s, topics.policy_command, [_joint_state(s, [0.0] * (n + 2),
                                                                         [])])),
        LiveCase("NaN / wrong dimension on the robot command", "rejected by the robot "
                 "(rejected_commands), last good command kept", ("sim_robot",
                                                                 "rejected_commands"),
                 lambda s: _send(s, topics.command, [_joint_state(s, nan_state),
                                                     _joint_state(s, [0.0] * 3, [])])),
        LiveCase("Joy with NaN axes or too few buttons", "rejected by teleop (bad_joy)",
                 ("teleop", "bad_joy"),
                 lambda s: _send(s, topics.joy, [_nan_joy(s), _short_joy()])),
        LiveCase("joystick disappears during a takeover", "teleop holds the pose "
                 "(watchdog_holds), control 'hold', arm still", ("teleop", "watchdog_holds"),
                 _pad_disappears, _pad_returns),
        LiveCase("flood: 2000 joint states + 2000 Joy + 200 images", "every node keeps "
                 "running; the recorder loses nothing it receives; the bag shows what "
                 "DDS delivered", ("logger", "written"), _flood),
        LiveCase("PolicyUpdate outside policy.checkpoint_root", "refused, old policy kept "
                 "(rejected_updates)", ("chunk_inference", "rejected_updates"), _outside_root,
                 _policy_kept),
        LiveCase("corrupt checkpoint", "refused, old policy kept (rejected_updates)",
                 ("chunk_inference", "rejected_updates"), _corrupt_checkpoint, _policy_kept),
        LiveCase("pickled weights (model.bin)", "never unpickled, old policy kept "
                 "(rejected_updates)", ("chunk_inference", "rejected_updates"),
                 _pickle_checkpoint, _policy_kept),
        LiveCase("checkpoint failing its sha256", "refused, old policy kept "
                 "(rejected_updates)", ("chunk_inference", "rejected_updates"), _wrong_hash,
                 _policy_kept),
    ]


def _nan_joy(session: GraphSession) -> Joy:
    msg = Pad(session).message()
    msg.axes = [float("nan")] * len(msg.axes)
    return msg


def _short_joy() -> Joy:
    msg = Joy()
    msg.axes, msg.buttons = [0.0, 0.0], [0, 0]
    return msg


def run_live_cases(session: GraphSession, report: Callable[[str], None]) -> list[CaseResult]:
    results = []
    for case in live_cases(session):
        node, counter = case.counter
        pids = {n: session.pid(n) for n in session.names}
        before = session.probe.counter(node, counter)
        lost_before = session.probe.counter("logger", "lost")
        started_ns = time.time_ns()
        try:
            case.inject(session)
        except Exception as exc:  # noqa: BLE001 - a broken case is a failed case, not a crash
            results.append(CaseResult(case.name, case.expected, f"injection failed: {exc}",
                                      False))
            continue
        rose = session.wait(
            lambda n=node, c=counter, b=before: session.probe.counter(n, c) > b,  # type: ignore[misc]
            COUNTER_WAIT_S, period_s=0.2)
        extra_ok, extra_text = case.extra(session, started_ns) if case.extra else (True, "")
        # Every node must still be there: same process, a Status after the injection (1 Hz
        # timers run late on a loaded machine: give them a few seconds).
        session.sleep(1.2)
        session.wait(lambda t=started_ns: not session.missing_status(t + 1),  # type: ignore[misc]
                     LIVENESS_WAIT_S, period_s=0.2)
        crashed = [n for n in session.names if session.pid(n) != pids[n]]
        silent = session.missing_status(started_ns + 1, session.names)
        lost = session.probe.counter("logger", "lost") - lost_before
        commands_ok, commands_text = _no_bad_command_reached_the_robot(session, started_ns)
        delta = session.probe.counter(node, counter) - before
        # A 1 Hz Status from a starved node may show the count only after the first wait.
        rose = rose or delta > 0
        parts = [f"{node} {counter} +{delta}"]
        if extra_text:
            parts.append(extra_text)
        parts.append("all nodes running" if not crashed and not silent
                     else f"crashed {crashed} silent {silent}")
        parts.append(f"recorder lost {lost}")
        if not commands_ok:
            parts.append(f"BAD COMMANDS: {commands_text}")
        passed = (rose and extra_ok and not crashed and not silent and lost == 0
                  and commands_ok)
        results.append(CaseResult(case.name, case.expected, "; ".join(parts), passed))
        report(f"  {'pass' if passed else 'FAIL'}: {case.name}: {'; '.join(parts)}")
    return results
