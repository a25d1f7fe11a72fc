"""Value quality: critics against ground-truth values of the *current* policy (no ROS).

For a logged chunk ``(o_t, A_t)`` the ground truth is the Monte-Carlo estimate

    Q^pi(s_t, A_t) = mean over R rollouts of  gamma^n * 1[success],

where each rollout restores the sim state ``s_t`` saved when the chunk's observation was taken
(:class:`SimSnapshot`), executes the chunk's executed steps exactly as logged, then lets the
current policy ``pi`` act through the same :class:`ChunkExecutor` as the robot until the episode
ends; ``n`` is the control tick (counted from t, starting at 0) in which the outcome happened.
The reward is the task's sparse reward (1 on the success tick), so this is the same quantity
the learner's TD targets and Monte-Carlo returns estimate.

Ground-truth rollouts render the cameras only when the executor asks for an observation (once
per chunk), not every tick: the policy sees exactly what it would, at a fraction of the cost.
Frames are rendered at the configured camera size and area-downsampled to ``image_size`` (the
built-in actor's input), as ``aloe-ros train`` does with recorded data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from aloe_ros.config import RobotConfig, SimConfig, TaskFile
from aloe_ros.io.episodes import Episode
from aloe_ros.io.transitions import episode_to_transitions
from aloe_ros.policies.base import ChunkPolicy, Observation
from aloe_ros.policies.executor import ChunkExecutor
from aloe_ros.policies.sim_rollouts import executor_config, physics_tick
from aloe_ros.sim.robot import SimRobot

__all__ = ["GroundTruth", "LoggedChunk", "SimSnapshot", "SnapshottingSimRobot",
           "ground_truth_value", "logged_chunks", "physics_tick", "replay_then_policy"]

log = logging.getLogger(__name__)


@dataclass
class SimSnapshot:
    """Everything that decides the sim's future: joints, servo target, objects, episode clock.

    Object sizes and colours are fixed per scene (set by reset); positions, yaw and who holds
    what are the state. Velocities follow from the servo and are not needed.
    """

    scene: str
    time_s: float
    positions: list[float]
    target: list[float]
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def capture(cls, robot: SimRobot) -> SimSnapshot:
        return cls(scene=robot.scene.name, time_s=float(robot.episode_time_s),
                   positions=robot.positions.tolist(), target=robot.target.tolist(),
                   objects={name: {"position": obj.position.tolist(), "yaw": float(obj.yaw),
                                   "held_by": obj.held_by}
                            for name, obj in robot.scene.objects.items()})

    def restore(self, robot: SimRobot) -> None:
        """Put ``robot`` into this state (a fresh episode of the same scene, then overwritten)."""
        if robot.scene.name != self.scene and robot.scene.name != "scene":
            raise ValueError(f"snapshot of scene {self.scene!r}, robot runs {robot.scene.name!r}")
        robot.reset()
        for name, saved in self.objects.items():
            obj = robot.scene.objects[name]
            obj.position = np.asarray(saved["position"], dtype=np.float64)
            obj.yaw = float(saved["yaw"])
            obj.held_by = saved["held_by"]
        robot.positions = np.asarray(self.positions, dtype=np.float64)
        robot.target = np.asarray(self.target, dtype=np.float64)
        robot.velocities = np.zeros_like(robot.positions)
        robot.episode_time_s = float(self.time_s)
        robot.outcome = None
        robot.scene.outcome = None

    @classmethod
    def from_sim_state(cls, state: dict[str, Any], positions: np.ndarray,
                       target: np.ndarray | None = None) -> SimSnapshot:
        """From the JSON ``sim_robot_node`` publishes on /aloe/sim/state (privileged_state)
        plus the joint positions of /aloe/joint_states and the last command as servo target
        (the positions themselves when none). That JSON carries no object yaw (0 is used) and
        rounds to 0.1 mm: good enough to restore a logged state from a bag, not bit-exact."""
        positions = np.asarray(positions, dtype=np.float64)
        target = positions if target is None else np.asarray(target, dtype=np.float64)
        return cls(scene=str(state["scene"]), time_s=float(state.get("time_s", 0.0)),
                   positions=positions.tolist(), target=target.tolist(),
                   objects={name: {"position": [float(v) for v in obj["position"]],
                                   "yaw": float(obj.get("yaw", 0.0)),
                                   "held_by": obj.get("held_by")}
                            for name, obj in dict(state["objects"]).items()})

    def to_json(self) -> dict[str, Any]:
        return {"scene": self.scene, "time_s": self.time_s, "positions": self.positions,
                "target": self.target, "objects": self.objects}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimSnapshot:
        return cls(scene=str(data["scene"]), time_s=float(data["time_s"]),
                   positions=[float(v) for v in data["positions"]],
                   target=[float(v) for v in data["target"]], objects=dict(data["objects"]))


class SnapshottingSimRobot(SimRobot):
    """A SimRobot that keeps a snapshot each time it renders (once per control tick in the
    closed-loop recorders of ``policies/sim_rollouts.py``) and returns frames downsampled to
    ``image_size`` (height, width), so recorded episodes stay small."""

    def __init__(self, robot: RobotConfig, sim: SimConfig, cameras: dict[str, tuple[int, int]],
                 episode_timeout_s: float, image_size: tuple[int, int] | None) -> None:
        super().__init__(robot, sim, cameras, episode_timeout_s)
        self.image_size = image_size
        self.snapshots: list[SimSnapshot] = []

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.snapshots = []

    def render(self) -> dict[str, np.ndarray]:
        self.snapshots.append(SimSnapshot.capture(self))
        return self.render_frames()

    def render_frames(self) -> dict[str, np.ndarray]:
        """Frames without taking a snapshot (ground-truth rollouts)."""
        frames = super().render()
        if self.image_size is None:
            return frames
        height, width = self.image_size
        return {name: (frame if frame.shape[:2] == (height, width) else
                       cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
                for name, frame in frames.items()}


def make_snapshotting_robot(config: TaskFile, image_size: tuple[int, int] | None
                            ) -> SnapshottingSimRobot:
    cameras = {c.name: (c.height, c.width) for c in config.cameras}
    return SnapshottingSimRobot(config.robot, config.sim, cameras, config.task.episode_timeout_s,
                                image_size)


def replay_then_policy(config: TaskFile, robot: SnapshottingSimRobot, snapshot: SimSnapshot,
                       actions: np.ndarray, policy: ChunkPolicy | None,
                       gamma: float) -> tuple[float, int, str]:
    """One ground-truth rollout: restore ``snapshot``, command ``actions`` (the chunk's executed
    steps, one per tick), then run ``policy`` to the episode's end.

    Returns (discounted return gamma^n * 1[success], ticks run, outcome reason). With
    ``policy=None`` the rollout stops after the chunk (return 0 unless it ended the episode).
    """
    snapshot.restore(robot)
    tick = 0
    for action in actions:
        robot.command(action)
        physics_tick(robot, config)
        if robot.outcome is not None:
            return (gamma ** tick if robot.outcome.success else 0.0), tick + 1, \
                robot.outcome.reason
        tick += 1
    if policy is None:
        return 0.0, tick, "chunk ended"
    policy.reset()
    executor = ChunkExecutor(executor_config(config, policy.chunk_horizon))
    executor.set_measured_state(robot.positions)
    while True:
        request = executor.want_inference()
        if request is not None:
            state = robot.positions.astype(np.float32)
            chunk = policy.predict_chunk(Observation(robot.render_frames(), state,
                                                     config.task.text, robot.episode_time_s))
            executor.submit(request, chunk, policy.version)
        result = executor.step()
        robot.command(result.command if result.command is not None else robot.positions)
        physics_tick(robot, config)
        if robot.outcome is not None:
            break
        tick += 1
    outcome = robot.outcome
    return (gamma ** tick if outcome.success else 0.0), tick + 1, outcome.reason


@dataclass
class GroundTruth:
    value: float                  # mean discounted return over the rollouts
    returns: list[float]
    successes: int
    ticks: list[int]


def ground_truth_value(config: TaskFile, robot: SnapshottingSimRobot, snapshot: SimSnapshot,
                       actions: np.ndarray, policy: ChunkPolicy, *, rollouts: int,
                       seed: int = 0) -> GroundTruth:
    """Q^pi(s_t, A_t) by ``rollouts`` independent rollouts (policy noise seeded per rollout).

    The sim is deterministic given its commands, so a chunk that ends the episode inside its
    executed steps needs one rollout; the policy's sampling noise is what varies otherwise.
    """
    import torch

    gamma = config.learning.gamma
    returns: list[float] = []
    ticks: list[int] = []
    successes = 0
    for r in range(max(1, rollouts)):
        torch.manual_seed(seed * 1009 + r)
        value, n, reason = replay_then_policy(config, robot, snapshot, actions, policy, gamma)
        returns.append(value)
        ticks.append(n)
        successes += int(value > 0)
        if n <= len(actions) and reason != "chunk ended":
            break  # decided inside the logged chunk: every rollout would repeat it
    return GroundTruth(float(np.mean(returns)), returns, successes, ticks)


@dataclass
class LoggedChunk:
    """One logged chunk with what ground truth and critics need."""

    episode_id: int
    start: int
    source: str                   # demo | online | ...
    observation: Observation      # o_t
    next_observation: Observation  # o_{t+k}
    actions: np.ndarray           # (Hc, D) padded chunk
    valid_steps: int              # k
    reward: float
    discount: float
    done: bool
    snapshot: SimSnapshot
    mc_return: float              # the logged episode's return from t (behaviour's outcome)


def logged_chunks(episode: Episode, snapshots: list[SimSnapshot], config: TaskFile
                  ) -> list[LoggedChunk]:
    """The critic chunks of one episode (``policy.execute_horizon`` steps, split at control
    changes, as the learner cuts them), each with the sim snapshot at its first step."""
    if len(snapshots) != len(episode):
        raise ValueError(f"episode {episode.episode_id}: {len(snapshots)} snapshots for "
                         f"{len(episode)} steps")
    horizon = config.policy.execute_horizon
    gamma = config.learning.gamma
    rewards = np.asarray(episode.rewards, dtype=np.float64)
    discounts = gamma ** np.arange(len(rewards))
    out = []
    for t in episode_to_transitions(episode, chunk_length=horizon, execute_horizon=horizon,
                                    gamma=gamma):
        mc = float(np.sum(rewards[t.start:] * discounts[:len(rewards) - t.start]))
        out.append(LoggedChunk(
            episode_id=episode.episode_id, start=t.start, source=t.source,
            observation=t.observation, next_observation=t.next_observation,
            actions=t.actions, valid_steps=t.valid_steps, reward=t.reward,
            discount=t.discount, done=t.done, snapshot=snapshots[t.start], mc_return=mc))
    return out
