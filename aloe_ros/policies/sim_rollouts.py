"""Closed-loop episodes in the sim without ROS (either backend): scripted demos and policy rollouts.

Both run the sim at the task's control rate (physics sub-stepped at ``sim.physics_rate_hz``),
render the configured cameras every control tick and record an :class:`Episode`. Policy
rollouts go through the same :class:`ChunkExecutor` as the node (clamping, blending,
scheduling), with inference answered at the tick it was requested (no latency in sim time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aloe_ros.config import TaskFile
from aloe_ros.io.episodes import Episode
from aloe_ros.policies.base import ChunkPolicy, Observation
from aloe_ros.policies.executor import ChunkExecutor, ExecutorConfig
from aloe_ros.sim.backends import make_expert, make_robot
from aloe_ros.sim.operator import task_stage
from aloe_ros.sim.robot import SimRobot

__all__ = ["FIRST_EVAL_SEED", "EpisodeRecorder", "RolloutResult", "evaluate_policy",
           "executor_config", "make_sim_robot", "physics_tick", "record_expert_episode",
           "rollout_policy", "seed_policy_sampling"]

log = logging.getLogger(__name__)
# Evaluation episode i uses seed FIRST_EVAL_SEED + i: away from the seeds of sim-demos and of
# the learning bench's rounds.
FIRST_EVAL_SEED = 100000


@dataclass
class RolloutResult:
    episode: Episode
    success: bool
    reason: str
    steps: int
    # Highest task stage reached (sim.operator.task_stage): where a failed episode got stuck.
    furthest_stage: int = 0


def make_sim_robot(config: TaskFile) -> SimRobot:
    """The task's simulated robot (sim.backend: built-in kinematic or MuJoCo ALOHA)."""
    cameras = {c.name: (c.height, c.width) for c in config.cameras}
    return make_robot(config.robot, config.sim, cameras, config.task.episode_timeout_s)


def executor_config(config: TaskFile, chunk_horizon: int | None = None) -> ExecutorConfig:
    """The executor settings of a task (chunk_horizon: the policy's, when it differs)."""
    horizon = chunk_horizon or config.policy.chunk_horizon
    return ExecutorConfig(
        control_rate_hz=config.robot.control_rate_hz, chunk_horizon=horizon,
        execute_horizon=min(config.policy.execute_horizon, horizon),
        position_lower=np.asarray(config.robot.position_lower),
        position_upper=np.asarray(config.robot.position_upper),
        velocity_limits=np.asarray(config.robot.velocity_limits),
        blend=config.policy.blend, blend_steps=config.policy.blend_steps)


class EpisodeRecorder:
    """Collects the per-tick arrays of one episode (sim rollouts, the in-process bench loop)."""

    def __init__(self) -> None:
        self.timestamps: list[float] = []
        self.images: dict[str, list[np.ndarray]] = {}
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.human: list[bool] = []
        self.versions: list[str] = []

    def add(self, time_s: float, frames: dict[str, np.ndarray], state: np.ndarray,
            action: np.ndarray, human: bool, version: str) -> None:
        self.timestamps.append(time_s)
        for name, frame in frames.items():
            self.images.setdefault(name, []).append(frame)
        self.states.append(state.astype(np.float32))
        self.actions.append(action.astype(np.float32))
        self.human.append(human)
        self.versions.append(version)

    def episode(self, config: TaskFile, *, episode_id: int, source: str, success: bool | None,
                reason: str) -> Episode:
        steps = len(self.timestamps)
        rewards = np.zeros(steps, np.float32)
        if success and steps:
            rewards[-1] = 1.0
        return Episode(
            task=config.task.text, joint_names=list(config.robot.joint_names),
            control_rate_hz=config.robot.control_rate_hz,
            timestamps=np.asarray(self.timestamps, np.float64),
            images={k: np.stack(v) for k, v in self.images.items()},
            states=np.stack(self.states), actions=np.stack(self.actions),
            human=np.asarray(self.human, bool), policy_versions=self.versions, rewards=rewards,
            episode_id=episode_id, source=source, success=success, outcome_reason=reason,
            metadata={"scene": config.sim.scene})


def physics_tick(robot: SimRobot, config: TaskFile) -> None:
    """One control tick of physics: sub-steps at the physics rate, stopping at an outcome."""
    substeps = max(1, round(config.sim.physics_rate_hz / config.robot.control_rate_hz))
    dt = 1.0 / config.robot.control_rate_hz / substeps
    for _ in range(substeps):
        robot.step(dt)
        if robot.outcome is not None:
            return


def record_expert_episode(config: TaskFile, robot: SimRobot, seed: int, episode_id: int, *,
                          through_teleop: bool = False) -> RolloutResult:
    """One scripted-expert demonstration (source=demo, every step human=True).

    ``through_teleop``: the expert's targets go through teleop's :class:`HumanCommander` at the
    task's joystick speeds, as the simulated operator drives them when it takes over, so the
    demonstrations and the interventions are one behaviour (as with one person at one device).
    Without it the expert commands the robot directly (faster, grippers as steps).
    """
    robot.reset(seed=seed)
    expert = make_expert(robot, config.sim, np.random.default_rng(seed + 7919))
    human = None
    if through_teleop:
        from aloe_ros.teleop.human import HumanCommander

        human = HumanCommander.for_task(config)
        human.start(robot.positions)
    recorder = EpisodeRecorder()
    dt = 1.0 / config.robot.control_rate_hz
    steps = 0
    while robot.outcome is None:
        frames = robot.render()
        state = robot.positions.copy()
        command = expert.act(dt)
        if human is not None:
            command = human.step_towards(command, dt)
        robot.command(command)
        recorder.add(steps * dt, frames, state, command, True, "")
        physics_tick(robot, config)
        steps += 1
    outcome = robot.outcome
    episode = recorder.episode(config, episode_id=episode_id, source="demo",
                               success=outcome.success, reason=outcome.reason)
    return RolloutResult(episode, outcome.success, outcome.reason, steps)


def seed_policy_sampling(seed: int) -> None:
    """Seed the policy's sampling noise for one episode.

    The built-in flow policy and LeRobot's policies draw their noise from torch's global
    generator, which training and earlier episodes in the same process also advance. Seeding
    it from the episode seed makes an episode depend only on its seed and the weights, so a
    rerun (or a resumed bench round) collects the same episodes.
    """
    import torch

    torch.manual_seed(seed)


def rollout_policy(config: TaskFile, robot: SimRobot, policy: ChunkPolicy, seed: int,
                   episode_id: int, *, record_images: bool = False,
                   on_chunk: Callable[[int], None] | None = None) -> RolloutResult:
    """One closed-loop episode of ``policy`` through the executor (source=online)."""
    robot.reset(seed=seed)
    policy.reset()
    seed_policy_sampling(seed)
    executor = ChunkExecutor(executor_config(config, policy.chunk_horizon))
    executor.set_measured_state(robot.positions)
    recorder = EpisodeRecorder()
    dt = 1.0 / config.robot.control_rate_hz
    steps = 0
    furthest = task_stage(robot.privileged_state())
    while robot.outcome is None:
        frames = robot.render()
        state = robot.positions.copy()
        request = executor.want_inference()
        if request is not None:
            chunk = policy.predict_chunk(Observation(frames, state.astype(np.float32),
                                                     config.task.text, steps * dt))
            accepted, why = executor.submit(request, chunk, policy.version)
            if not accepted:
                log.warning("chunk rejected: %s", why)
            if on_chunk is not None:
                on_chunk(steps)
        result = executor.step()
        command = result.command if result.command is not None else state
        robot.command(command)
        recorder.add(steps * dt, frames if record_images else {}, state, command, False,
                     policy.version)
        physics_tick(robot, config)
        furthest = max(furthest, task_stage(robot.privileged_state()))
        steps += 1
    outcome = robot.outcome
    episode = recorder.episode(config, episode_id=episode_id, source="online",
                               success=outcome.success, reason=outcome.reason)
    return RolloutResult(episode, outcome.success, outcome.reason, steps, furthest)


def evaluate_policy(config: TaskFile, policy: ChunkPolicy, episodes: int, *,
                    first_seed: int = FIRST_EVAL_SEED,
                    on_episode: Callable[[int, RolloutResult], None] | None = None
                    ) -> list[RolloutResult]:
    """``episodes`` closed-loop episodes of ``policy`` alone, episode i on seed first_seed + i:
    the evaluation of ``aloe-ros eval-sim`` and of the learning bench's no-operator measure.
    ``on_episode(i, result)`` after each (progress)."""
    robot = make_sim_robot(config)
    results = []
    for i in range(episodes):
        results.append(rollout_policy(config, robot, policy, seed=first_seed + i, episode_id=i))
        if on_episode is not None:
            on_episode(i, results[-1])
    return results
