"""The learning bench's collection step without ROS: the same actors, in one process (no rclpy).

``aloe-ros bench learning --loop inprocess`` collects its episodes here instead of through the
node graph. Everything that decides what the robot does is the same code as in the nodes:

* the policy answers through the :class:`ChunkExecutor` (scheduling, blending, limits);
* the :class:`SimulatedOperator` decides takeovers, hand-backs and marks from privileged state,
  with its reaction delay;
* while it holds control its expert targets are followed through teleop's
  :class:`HumanCommander` (the leader-arm path, bounded speed from the commanded pose);
* episodes are recorded per control tick with who acted, as the bag reader would rebuild them.

What is left out is the transport: no DDS, no inference latency (answers arrive at the tick
they were asked for), and sim time instead of wall time. A round runs as fast as the CPU
allows (up to 2.4x real time in the first run of docs/learning_experiments.md, on the 2-core
VM), and a loaded machine makes it slower instead of changing what the robot does, so several
runs can share one machine.
Frames are stored downsampled to the policy's input size (the same area average the policy
applies), which keeps a 40 s episode at ~30 MB instead of ~800 MB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aloe_ros.config import TaskFile
from aloe_ros.io.episodes import Episode
from aloe_ros.policies.base import ChunkPolicy, Observation
from aloe_ros.policies.executor import ChunkExecutor
from aloe_ros.policies.sim_rollouts import (
    EpisodeRecorder,
    executor_config,
    make_sim_robot,
    physics_tick,
    seed_policy_sampling,
)
from aloe_ros.sim.operator import SimulatedOperator, task_stage
from aloe_ros.sim.robot import SimRobot
from aloe_ros.sim.scenes import Outcome
from aloe_ros.teleop.human import HumanCommander

__all__ = ["AssistedEpisode", "collect_episodes", "downsample_factor", "rollout_assisted"]

log = logging.getLogger(__name__)


@dataclass
class AssistedEpisode:
    episode: Episode
    success: bool
    reason: str
    takeovers: int
    duration_s: float
    # Why the operator took over, one entry per takeover (the ROS loop has these in its log).
    takeover_reasons: list[str]
    # The task stage at each takeover (sim.operator.task_stage): where the policy needed help.
    takeover_stages: list[int] = field(default_factory=list)


def downsample_factor(frame_shape: tuple[int, int], target: tuple[int, int] | None) -> int:
    """The integer area factor from (H, W) to the policy's (H, W) input, 1 when none fits."""
    if target is None:
        return 1
    height, width = frame_shape
    factor = height // target[0]
    if factor > 1 and height == factor * target[0] and width == factor * target[1]:
        return factor
    return 1


def _area_downsample(frame: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return frame
    height, width, channels = frame.shape
    blocks = frame.reshape(height // factor, factor, width // factor, factor, channels)
    return np.round(blocks.mean(axis=(1, 3), dtype=np.float32)).astype(np.uint8)


def rollout_assisted(config: TaskFile, robot: SimRobot, policy: ChunkPolicy,
                     operator: SimulatedOperator, *, seed: int, episode_id: int,
                     image_size: tuple[int, int] | None = None) -> AssistedEpisode:
    """One episode of ``policy`` with the simulated operator watching (source=online)."""
    robot.reset(seed=seed)
    policy.reset()
    seed_policy_sampling(seed)
    operator.reset()
    executor = ChunkExecutor(executor_config(config, policy.chunk_horizon))
    executor.set_measured_state(robot.positions)
    human = HumanCommander.for_task(config)
    dt = 1.0 / config.robot.control_rate_hz
    recorder = EpisodeRecorder()
    human_in_control = False
    takeover_reasons: list[str] = []
    takeover_stages: list[int] = []
    last_command = robot.positions.copy()
    steps = 0
    gave_up: Outcome | None = None   # the operator pressed failure (teleop ends the episode)
    while robot.outcome is None:
        now = steps * dt
        frames = robot.render()
        state = robot.positions.copy()
        decision = operator.step(robot.privileged_state(), state, now,
                                 human_in_control=human_in_control, episode_running=True,
                                 dt=dt)
        for button in decision.press:
            # The mux's answer to the pad: takeover starts from the commanded pose, handback
            # resumes the policy from the measured state (teleop_node / chunk_inference_node).
            if button == "takeover" and not human_in_control:
                human_in_control = True
                takeover_reasons.append(decision.reason)
                takeover_stages.append(task_stage(robot.privileged_state()))
                human.start(last_command)
                executor.pause("takeover")
            elif button == "handback" and human_in_control:
                human_in_control = False
                executor.resume(state, "handback")
            elif button == "failure":
                gave_up = Outcome(False, decision.reason or "operator marked failure")
        if gave_up is not None:
            break
        if human_in_control:
            goal = decision.target if decision.target is not None else last_command
            command = human.step_towards(goal, dt)
            version = ""
        else:
            request = executor.want_inference()
            if request is not None:
                chunk = policy.predict_chunk(Observation(frames, state.astype(np.float32),
                                                         config.task.text, now))
                accepted, why = executor.submit(request, chunk, policy.version)
                if not accepted:
                    log.warning("chunk rejected: %s", why)
            result = executor.step()
            command = result.command if result.command is not None else state
            version = policy.version
        robot.command(command)
        last_command = np.asarray(command, dtype=np.float64).copy()
        stored = {name: _area_downsample(frame, downsample_factor(frame.shape[:2], image_size))
                  for name, frame in frames.items()}
        recorder.add(now, stored, state, last_command, human_in_control, version)
        physics_tick(robot, config)
        steps += 1
    outcome = robot.outcome if robot.outcome is not None else gave_up
    assert outcome is not None
    episode = recorder.episode(config, episode_id=episode_id, source="online",
                               success=outcome.success, reason=outcome.reason)
    episode.metadata["collector"] = "inprocess"
    return AssistedEpisode(episode, outcome.success, outcome.reason, operator.takeovers,
                           steps * dt, takeover_reasons, takeover_stages)


def collect_episodes(config: TaskFile, policy: ChunkPolicy, out: Path, *, episodes: int,
                     seed: int, progress: Callable[[int], None] | None = None
                     ) -> list[AssistedEpisode]:
    """``episodes`` assisted episodes saved as ``out/episode_NNNNN.npz`` (an episode dir)."""
    robot = make_sim_robot(config)
    operator = SimulatedOperator(config, config.operator,
                                 np.random.default_rng(config.operator.seed))
    image_size = getattr(getattr(policy, "config", None), "image_size", None)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(episodes):
        result = rollout_assisted(config, robot, policy, operator, seed=seed + i, episode_id=i,
                                  image_size=image_size)
        result.episode.save(out / f"episode_{i:05d}.npz")
        # Only the numbers stay in memory; the frames are on disk.
        result.episode = Episode(**{**result.episode.__dict__, "images": {}})
        results.append(result)
        if progress is not None:
            progress(i + 1)
    return results
