"""Logged chunks from rosbag2 recordings of the sim: episodes plus restorable sim states (no ROS).

``sim_robot_node`` publishes its privileged state (std_msgs/String JSON) on ``/aloe/sim/state``
every physics tick; a bag that recorded it (``recording.extra_topics``; ``aloe-ros bench
learning`` adds it to its rounds) can be turned into ground-truth inputs: each control row of an
episode (the logger's reader) gets the newest sim state logged at or before the row's time, the
row's joint positions (``/aloe/joint_states``) and the previous row's command as servo target.
Object yaw is not in that JSON and values are rounded to 0.1 mm, so a restored state is close
to, not bit-identical with, the recorded one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aloe_ros.benchmarks.value_quality import (
    SimSnapshot,
    SnapshottingSimRobot,
    logged_chunks,
    physics_tick,
)
from aloe_ros.config import TaskFile
from aloe_ros.io.episodes import Episode

__all__ = ["SIM_STATE_TOPIC", "align_snapshots", "logged_from_bags", "read_sim_states",
           "restore_fidelity"]

SIM_STATE_TOPIC = "/aloe/sim/state"


def read_sim_states(bag_path: Path | str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(log times ns, decoded JSON) of every /aloe/sim/state message; ValueError if none."""
    from aloe_ros.io.bag_reader import Bag

    times: list[int] = []
    states: list[dict[str, Any]] = []
    with Bag(bag_path) as bag:
        if SIM_STATE_TOPIC not in bag.topics:
            raise ValueError(f"{bag_path}: {SIM_STATE_TOPIC} was not recorded; add it to "
                             "recording.extra_topics to evaluate values from this bag")
        for _topic, log_ns, msg in bag.decoded([SIM_STATE_TOPIC]):
            try:
                states.append(json.loads(str(msg.data)))
            except ValueError:
                continue   # a garbled state is skipped; its neighbours serve the row
            times.append(log_ns)
    return np.asarray(times, dtype=np.int64), states


def align_snapshots(episode: Episode, times_ns: np.ndarray, states: list[dict[str, Any]]
                    ) -> list[SimSnapshot]:
    """One snapshot per control row: newest sim state at or before the row's time."""
    if not states:
        raise ValueError(f"episode {episode.episode_id}: no sim states to align")
    rows_ns = np.round(np.asarray(episode.timestamps, dtype=np.float64) * 1e9).astype(np.int64)
    index = np.clip(np.searchsorted(times_ns, rows_ns, side="right") - 1, 0, len(states) - 1)
    snapshots = []
    for k, i in enumerate(index):
        target = episode.actions[k - 1] if k > 0 else episode.states[0]
        snapshots.append(SimSnapshot.from_sim_state(states[int(i)], episode.states[k], target))
    return snapshots


def logged_from_bags(paths: list[Path], config: TaskFile, resize: tuple[int, int] | None
                     ) -> list[tuple[Episode, list[SimSnapshot]]]:
    """Episodes of each bag (frames resized to the actor's input) with aligned snapshots."""
    from aloe_ros.io.bag_episodes import read_episodes

    out = []
    for path in paths:
        times, states = read_sim_states(path)
        for episode in read_episodes(path, config, resize=resize):
            out.append((episode, align_snapshots(episode, times, states)))
    return out


def restore_fidelity(logged: list[tuple[Episode, list[SimSnapshot]]], config: TaskFile
                     ) -> dict[str, float]:
    """How well restored states reproduce a bag: restore each chunk's start, replay its logged
    commands one per tick, and compare the joints with the recorded ones at the chunk's end
    (max over joints, radians; chunks that ended the episode are skipped)."""
    robot = SnapshottingSimRobot(config.robot, config.sim, {}, config.task.episode_timeout_s,
                                 None)   # no cameras: nothing is rendered here
    errors = []
    for episode, snapshots in logged:
        for chunk in logged_chunks(episode, snapshots, config):
            end = chunk.start + chunk.valid_steps
            if end >= len(episode):   # ended the episode: no recorded state after it
                continue
            chunk.snapshot.restore(robot)
            for action in chunk.actions[:chunk.valid_steps]:
                robot.command(action)
                physics_tick(robot, config)
            errors.append(float(np.max(np.abs(robot.positions - episode.states[end]))))
    if not errors:
        return {"chunks": 0}
    return {"chunks": len(errors), "median_joint_error_rad": float(np.median(errors)),
            "p90_joint_error_rad": float(np.percentile(errors, 90)),
            "max_joint_error_rad": float(np.max(errors))}
