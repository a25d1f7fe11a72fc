"""Synthetic recordings for the bag tests: the messages of a run, serialized by rclpy.

``synthetic_messages`` builds the stream a real loop would record (cameras, joint states,
commands, chunks, interventions, episode events), with stamps on a 30 Hz control grid, so
tests know exactly which rows, labels and boundaries a correct reader must produce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

T0_NS = 1_700_000_000_000_000_000
CONTROL_HZ = 30.0
DT_NS = int(1e9 / CONTROL_HZ)


@dataclass
class EpisodePlan:
    steps: int = 60
    takeover_at: int | None = 20     # step index of TAKEOVER (None: no intervention)
    handback_at: int | None = 35
    outcome: int = 1                 # EpisodeEvent kind: SUCCESS=1, FAILURE=2, ABORT=3
    reward: float = 1.0
    version: str = "v1"
    # Commands carry the mux's frame_id labels (human:<source> / version) and, as teleop_node
    # does, each intervention event is stamped just after the first command it concerns.
    labelled: bool = False


@dataclass
class Recorded:
    """What was put into the bag: (topic, stamp_ns, message) in publication order."""

    messages: list[tuple[str, int, Any]] = field(default_factory=list)
    episodes: list[EpisodePlan] = field(default_factory=list)


def small_camera_overrides(width: int = 32, height: int = 24) -> dict[str, Any]:
    return {"cameras": [{"name": "top", "source": "sim", "width": width, "height": height},
                        {"name": "wrist", "source": "sim", "width": width, "height": height}]}


def _stamp(msg: Any, t_ns: int) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    return msg


def synthetic_messages(config: Any, plans: list[EpisodePlan]) -> Recorded:
    """Messages of one run: per episode START, control steps, a takeover span, an outcome."""
    from sensor_msgs.msg import Image, JointState

    from aloe_ros.io.images import fill_image
    from aloe_ros.msg import ActionChunk, EpisodeEvent, InterventionEvent

    topics = config.topics
    names = list(config.robot.joint_names)
    dim = len(names)
    out = Recorded(episodes=list(plans))
    t = T0_NS + DT_NS
    for e, plan in enumerate(plans):
        start = EpisodeEvent(episode_id=e, task=config.task.name, kind=EpisodeEvent.START)
        out.messages.append((topics.episode, t - DT_NS // 2, _stamp(start, t - DT_NS // 2)))
        human = False
        for k in range(plan.steps):
            tk = t + k * DT_NS
            event_t = tk + 1_000_000 if plan.labelled else tk - DT_NS // 4
            if k == plan.takeover_at:
                event = InterventionEvent(episode_id=e, kind=InterventionEvent.TAKEOVER,
                                          source="joystick", arms="both")
                out.messages.append((topics.intervention, event_t, _stamp(event, event_t)))
                human = True
            if k == plan.handback_at:
                event = InterventionEvent(episode_id=e, kind=InterventionEvent.HANDBACK,
                                          source="joystick")
                out.messages.append((topics.intervention, event_t, _stamp(event, event_t)))
                human = False
            # observation slightly before the command of the step
            for cam in config.cameras:
                frame = np.full((cam.height, cam.width, 3), (e * 100 + k) % 256, np.uint8)
                img = fill_image(Image(), frame, "rgb8")
                out.messages.append((cam.topic, tk - 3_000_000, _stamp(img, tk - 3_000_000)))
            state = JointState(name=names, position=[float(e + k * 0.01)] * dim,
                               velocity=[0.0] * dim)
            out.messages.append((topics.joint_states, tk - 2_000_000,
                                 _stamp(state, tk - 2_000_000)))
            if not human and (k % 25 == 0 or k == plan.handback_at):
                chunk = ActionChunk(chunk_id=k, episode_id=e, policy_version=plan.version,
                                    control_rate_hz=CONTROL_HZ, horizon=2, execute_horizon=1,
                                    action_dim=dim, joint_names=names,
                                    actions=[0.5] * (2 * dim))
                out.messages.append((topics.policy_chunk, tk - 1_000_000,
                                     _stamp(chunk, tk - 1_000_000)))
            value = float(e * 10 + k) + (0.5 if human else 0.0)
            command = JointState(name=names, position=[value] * dim)
            if plan.labelled:
                command.header.frame_id = "human:joystick" if human else plan.version
            upstream = topics.teleop_command if human else topics.policy_command
            out.messages.append((upstream, tk, _stamp(JointState(name=names,
                                                                 position=[value] * dim), tk)))
            out.messages.append((topics.command, tk + 500_000, _stamp(command, tk + 500_000)))
        end = t + (plan.steps - 1) * DT_NS + DT_NS // 3
        outcome = EpisodeEvent(episode_id=e, task=config.task.name, kind=plan.outcome,
                               reward=plan.reward, reason="detector")
        out.messages.append((topics.episode, end, _stamp(outcome, end)))
        t += (plan.steps + 15) * DT_NS  # a pause between episodes
    return out


def write_synthetic_bag(path: Path, config: Any, plans: list[EpisodePlan],
                        extra: list[tuple[str, str, int, Any]] | None = None,
                        keep: Callable[[int], bool] | None = None) -> Recorded:
    """Record synthetic messages into a bag with the logger's writer (no DDS); ``keep(t_ns)``
    picks the messages this bag got (a recorder that was up only part of the run)."""
    import json

    from rclpy.serialization import serialize_message

    from aloe_ros.io.bag_types import recorded_topics
    from aloe_ros.io.bag_writer import BagRecorder

    recorded = synthetic_messages(config, plans)
    topics = recorded_topics(config)
    for topic, msgtype, _t, _m in extra or []:
        topics[topic] = msgtype
    custom = {"aloe_ros.task": config.task.name,
              "aloe_ros.config": Path(config.source_path).read_text(),
              "aloe_ros.control_rate_hz": str(CONTROL_HZ),
              "aloe_ros.joint_names": json.dumps(config.robot.joint_names)}
    recorder = BagRecorder(path, topics, custom_data=custom, min_free_disk_mb=0, fsync=False)
    for topic, _msgtype, t_ns, msg in extra or []:
        recorded.messages.append((topic, t_ns, msg))
    for topic, t_ns, msg in sorted(recorded.messages, key=lambda m: m[1]):
        if keep is not None and not keep(t_ns):
            continue
        assert recorder.submit(topic, t_ns + 100_000, serialize_message(msg))
    stats = recorder.close()
    assert not stats.lost and not stats.error, stats
    return recorded
