"""Value quality: critics against ground-truth values of the *current* policy (no ROS).

For a logged chunk ``(o_t, A_t)`` the ground truth is the Monte-Carlo estimate

    Q^pi(s_t, A_t) = mean over R rollouts of  gamma^n * 1[success],

where each rollout restores the sim state ``s_t`` saved when the chunk's observation was taken
(:class:`SimSnapshot`), executes the chunk's executed steps exactly as logged, then lets the
current policy ``pi`` act through the same :class:`ChunkExecutor` as the robot until the episode
ends; ``n`` is the control tick (counted from t, starting at 0) in which the outcome happened.
The reward is the task's sparse reward (1 on the success tick), so this is the same quantity
the learner's TD targets and Monte-Carlo returns estimate.

With ``learning.takeover_penalty`` p > 0 the learner's critics value a different quantity: a
policy step that runs into a takeover earns -p and ends the policy's return. The ground truth
follows: the simulated operator (``config.operator``) watches each rollout from the restored
state, its stall clock started when the logged episode reached the restored stage, and a
rollout it would take over returns ``-p * gamma^(n-1)`` (n the tick of the takeover, n - 1 the
policy's last); a logged policy chunk that was cut by a takeover is worth its logged
``-p * gamma^(k-1)``.

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
from aloe_ros.io.transitions import episode_to_transitions, takeover_steps
from aloe_ros.policies.base import ChunkPolicy, Observation
from aloe_ros.policies.executor import ChunkExecutor
from aloe_ros.policies.sim_rollouts import executor_config, physics_tick
from aloe_ros.sim.operator import SimulatedOperator, task_progress, task_stage
from aloe_ros.sim.robot import SimRobot

__all__ = ["GroundTruth", "LoggedChunk", "SimSnapshot", "SnapshottingSimRobot", "TakeoverWatch",
           "ground_truth_value", "logged_chunks", "physics_tick", "replay_then_policy",
           "stage_start_times"]

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


class TakeoverWatch:
    """The simulated operator's takeover decision over a ground-truth rollout: whether, and
    when, it would take a restored episode from the policy (it never drives here)."""

    def __init__(self, config: TaskFile, penalty: float, seed: int = 0) -> None:
        self.penalty = penalty
        self.dt = 1.0 / config.robot.control_rate_hz
        self.operator = SimulatedOperator(config, config.operator, np.random.default_rng(seed))

    def start(self, robot: SimRobot, stage_since_s: float) -> None:
        self.operator.watch_from(robot.privileged_state(), stage_since_s)

    def takes_over(self, robot: SimRobot) -> bool:
        """One control tick, before the policy acts (as in the in-process loop)."""
        decision = self.operator.step(robot.privileged_state(), robot.positions,
                                      float(robot.episode_time_s), human_in_control=False,
                                      episode_running=True, dt=self.dt)
        return "takeover" in decision.press


def replay_then_policy(config: TaskFile, robot: SnapshottingSimRobot, snapshot: SimSnapshot,
                       actions: np.ndarray, policy: ChunkPolicy | None,
                       gamma: float, watch: TakeoverWatch | None = None,
                       stage_since_s: float = 0.0) -> tuple[float, int, str]:
    """One ground-truth rollout: restore ``snapshot``, command ``actions`` (the chunk's executed
    steps, one per tick), then run ``policy`` to the episode's end.

    Returns (discounted return gamma^n * 1[success], ticks run, outcome reason). With
    ``policy=None`` the rollout stops after the chunk (return 0 unless it ended the episode).
    With ``watch`` the operator watches the policy's part (its stall clock started at episode
    time ``stage_since_s``, moved on if the chunk reaches a new stage) and a takeover ends the
    rollout with ``-penalty * gamma^(n-1)``, reason "takeover".
    """
    snapshot.restore(robot)
    stage = task_stage(robot.privileged_state()) if watch is not None else 0
    tick = 0
    for action in actions:
        robot.command(action)
        physics_tick(robot, config)
        if robot.outcome is not None:
            return (gamma ** tick if robot.outcome.success else 0.0), tick + 1, \
                robot.outcome.reason
        tick += 1
        if watch is not None:
            reached = task_stage(robot.privileged_state())
            if reached != stage:
                stage, stage_since_s = reached, robot.episode_time_s
    if policy is None:
        return 0.0, tick, "chunk ended"
    policy.reset()
    executor = ChunkExecutor(executor_config(config, policy.chunk_horizon))
    executor.set_measured_state(robot.positions)
    if watch is not None:
        watch.start(robot, stage_since_s)
    while True:
        if watch is not None and watch.takes_over(robot):
            # The policy's last step was the previous tick (tick >= 1: the chunk came first).
            return -watch.penalty * gamma ** (tick - 1), tick, "takeover"
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
                       seed: int = 0, stage_since_s: float = 0.0,
                       cut_by_takeover: bool = False) -> GroundTruth:
    """Q^pi(s_t, A_t) by ``rollouts`` independent rollouts (policy noise seeded per rollout).

    The sim is deterministic given its commands, so a chunk that ends the episode inside its
    executed steps needs one rollout; the policy's sampling noise is what varies otherwise.
    With ``learning.takeover_penalty`` > 0 the operator watches (module docstring);
    ``stage_since_s`` and ``cut_by_takeover`` come from the logged chunk.
    """
    import torch

    gamma = config.learning.gamma
    penalty = config.learning.takeover_penalty
    if penalty > 0 and cut_by_takeover:
        # What the logged chunk led to, as the learner's transition has it: nothing to roll out.
        value = -penalty * gamma ** (len(actions) - 1)
        return GroundTruth(value, [value], 0, [len(actions)])
    watch = TakeoverWatch(config, penalty, seed) if penalty > 0 else None
    returns: list[float] = []
    ticks: list[int] = []
    successes = 0
    for r in range(max(1, rollouts)):
        torch.manual_seed(seed * 1009 + r)
        value, n, reason = replay_then_policy(config, robot, snapshot, actions, policy, gamma,
                                              watch, stage_since_s)
        returns.append(value)
        ticks.append(n)
        successes += int(value > 0)
        if n <= len(actions) and reason not in ("chunk ended", "takeover"):
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
    stage_since_s: float = 0.0    # episode time the task stage at t was reached (stall clock)
    cut_by_takeover: bool = False  # a policy chunk that ran into a takeover


def logged_chunks(episode: Episode, snapshots: list[SimSnapshot], config: TaskFile
                  ) -> list[LoggedChunk]:
    """The critic chunks of one episode (``policy.execute_horizon`` steps, split at control
    changes, as the learner cuts them, with its ``learning.takeover_penalty``), each with the
    sim snapshot at its first step."""
    from aloe_ros.learning.replay import episode_returns

    if len(snapshots) != len(episode):
        raise ValueError(f"episode {episode.episode_id}: {len(snapshots)} snapshots for "
                         f"{len(episode)} steps")
    horizon = config.policy.execute_horizon
    gamma = config.learning.gamma
    penalty = config.learning.takeover_penalty
    returns = episode_returns(episode, gamma, penalty)
    stage_since = stage_start_times(snapshots)
    takeovers = set(takeover_steps(episode).tolist())
    out = []
    for t in episode_to_transitions(episode, chunk_length=horizon, execute_horizon=horizon,
                                    gamma=gamma, takeover_penalty=penalty):
        out.append(LoggedChunk(
            episode_id=episode.episode_id, start=t.start, source=t.source,
            observation=t.observation, next_observation=t.next_observation,
            actions=t.actions, valid_steps=t.valid_steps, reward=t.reward,
            discount=t.discount, done=t.done, snapshot=snapshots[t.start],
            mc_return=float(returns[t.start]), stage_since_s=stage_since[t.start],
            cut_by_takeover=t.start + t.valid_steps in takeovers))
    return out


def stage_start_times(snapshots: list[SimSnapshot]) -> list[float]:
    """Per logged step, the episode time at which the task stage of that step was reached: the
    simulated operator's stall clock (it starts on the first step it sees)."""
    times: list[float] = []
    previous = None
    for snapshot in snapshots:
        stage = task_progress(snapshot.objects, snapshot.scene)
        if stage != previous or not times:
            since = snapshot.time_s
        times.append(since)
        previous = stage
    return times
