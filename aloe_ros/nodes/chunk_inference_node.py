"""chunk_inference_node: the actor. Observations in, ActionChunks and per-tick commands out.

Subscribes the policy's cameras (sensor QoS) and the joint states; on the control timer it
turns the current chunk into one clamped JointState command per tick (ChunkExecutor) and, when
the executor asks for the next chunk, assembles an observation from fresh inputs only and hands
it to the inference worker thread (callbacks never wait for the policy). Chunks are published on
``topics.policy_chunk``, commands on ``topics.policy_command`` (the mux forwards them).

Shadow mode (shadow.state_topic, std_msgs/Bool from teleop_node): the policy keeps running
while a human drives, its commands go to the mux, which sends them to the shadow topic only.

Interventions: TAKEOVER (unless in shadow mode) / ESTOP pause and flush; HANDBACK (and
RELEASE_ESTOP when no human holds control) resume from the measured state. Episode START /
RESET flush. PolicyUpdate: the checkpoint is loaded and verified (sha256, under
``policy.checkpoint_root``) in the background and swapped in at the next episode event (or at
once, ``policy.swap_at``); a failure keeps the old policy. Status carries the running version
and every counter.
"""

from __future__ import annotations

import array
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool

from aloe_ros.config import ConfigError
from aloe_ros.io.images import ImageError, edge_frame
from aloe_ros.msg import ActionChunk, EpisodeEvent, InterventionEvent, PolicyUpdate, Status
from aloe_ros.nodes.common import AloeNode, run_node, stamp_to_seconds
from aloe_ros.policies.base import ChunkPolicy, Observation, PolicyError
from aloe_ros.policies.executor import ChunkExecutor, InferenceRequest
from aloe_ros.policies.task_policy import (  # noqa: F401 - load_task_policy: public here too
    assemble_observation,
    load_task_policy,
    policy_mismatch,
)

INFERENCE_THREADS = 4
CONTROL_SWITCH_INTERVAL_S = 0.001
EPISODE_FLUSH_KINDS = (EpisodeEvent.START, EpisodeEvent.RESET)


@dataclass
class InferenceJob:
    request: InferenceRequest
    observation: Observation
    policy: ChunkPolicy
    reset_first: bool
    requested_at: float       # perf_counter() when the executor asked for it


@dataclass
class InferenceOutcome:
    request: InferenceRequest
    chunk: np.ndarray | None
    version: str
    error: str
    latency_s: float          # the policy call alone
    requested_at: float


class ChunkInferenceNode(AloeNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("chunk_inference", **kwargs)
        self.declare_parameter(
            "policy_path", "",
            ParameterDescriptor(description="Checkpoint directory; overrides policy.path "
                                "(empty: policy.path, and if that is empty an untrained policy)",
                                read_only=True))
        cfg = self.config
        path = self.get_parameter("policy_path").get_parameter_value().string_value \
            or cfg.policy.path
        self.policy = self.initial_policy(path)
        self.joint_names = list(cfg.robot.joint_names)
        self.joint_index = {name: i for i, name in enumerate(self.joint_names)}
        self.executor_core = self.make_executor(self.policy)
        self.lock = threading.Lock()
        self.latest_state: tuple[np.ndarray, float] | None = None
        self.latest_images: dict[str, tuple[np.ndarray, float]] = {}
        self.camera_sizes = {c.name: (c.height, c.width) for c in cfg.cameras}
        # Driver cameras (source: topic) publish their own resolution: resized at the edge.
        self.resized_cameras = {c.name for c in cfg.cameras if c.source == "topic"}
        self.human_control = False
        self.estop = False
        self.shadow = cfg.shadow.enabled
        self.episode_id = 0
        self.reset_policy = True
        self.pending_policy: tuple[ChunkPolicy, str] | None = None
        self.last_problem = ""
        self.inference_seconds: list[float] = []
        # Request -> ActionChunk published (observation, queue, policy, checks, publish).
        self.chunk_seconds: list[float] = []
        # request id -> ROS time of its observation (ActionChunk.start_time).
        self.request_stamps: dict[int, object] = {}

        self.jobs: queue.Queue[InferenceJob | None] = queue.Queue(maxsize=1)
        self.running = True
        self.worker = threading.Thread(target=self.inference_loop, name="inference",
                                       daemon=True)
        self.worker.start()
        self.loader_lock = threading.Lock()

        inputs = ReentrantCallbackGroup()
        self.chunk_pub = self.create_publisher(ActionChunk, cfg.topics.policy_chunk,
                                               self.command_qos)
        self.command_pub = self.create_publisher(JointState, cfg.topics.policy_command,
                                                 self.command_qos)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        cameras = [c for c in cfg.cameras if c.name in self.policy.camera_names]
        for camera in cameras:
            self.create_subscription(
                CompressedImage if camera.compressed else Image, camera.topic,
                lambda msg, name=camera.name: self.on_image(name, msg),
                self.sensor_qos, callback_group=inputs)
        self.create_subscription(JointState, cfg.topics.joint_states, self.on_joint_state,
                                 self.command_qos, callback_group=inputs)
        self.create_subscription(InterventionEvent, cfg.topics.intervention,
                                 self.on_intervention, self.events_qos, callback_group=inputs)
        self.create_subscription(EpisodeEvent, cfg.topics.episode, self.on_episode,
                                 self.events_qos, callback_group=inputs)
        if self.use_sim:
            self.create_subscription(EpisodeEvent, cfg.topics.sim_detector, self.on_episode,
                                     self.events_qos, callback_group=inputs)
        self.create_subscription(PolicyUpdate, cfg.topics.policy_update, self.on_policy_update,
                                 self.events_qos, callback_group=inputs)
        self.create_subscription(Bool, cfg.shadow.state_topic, self.on_shadow_state, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL), callback_group=inputs)
        # Threads waiting for the GIL get it within ~1 ms instead of the default 5 ms, so the
        # control thread is not held up by image callbacks or the policy's Python code.
        sys.setswitchinterval(CONTROL_SWITCH_INTERVAL_S)
        # The control loop is a thread on an absolute schedule (node clock, so sim time is
        # honoured): Python timers in an executor jitter by tens of ms under load.
        self.control_thread = threading.Thread(target=self.control_loop, name="control",
                                               daemon=True)
        self.control_thread.start()
        self.create_timer(1.0, self.publish_status, callback_group=inputs)
        self.get_logger().info(
            f"policy {self.policy.version}: H={self.policy.chunk_horizon}, executing "
            f"{self.executor_core.config.execute_horizon} at {cfg.robot.control_rate_hz:g} Hz, "
            f"cameras {self.policy.camera_names}, blend {cfg.policy.blend}; commands on "
            f"{cfg.topics.policy_command}")

    # ---- start-up ---------------------------------------------------------------------------
    def initial_policy(self, path: str) -> ChunkPolicy:
        """Load the start-up policy; a bad or mismatched checkpoint stops with exit code 2."""
        if not path:
            from aloe_ros.policies.bc import new_builtin_policy

            self.get_logger().warning(
                "no policy path (policy.path / --policy): running a fresh, UNTRAINED built-in "
                "policy; the robot will move aimlessly")
            # learning.seed: the same untrained weights as the learner's fresh actor.
            policy = new_builtin_policy(self.config, seed=self.config.learning.seed)
            policy.noise_scale = self.config.policy.noise_scale
            return policy
        try:
            return load_task_policy(self.config, path)
        except PolicyError as exc:
            raise ConfigError("policy.path", str(exc)) from None

    def make_executor(self, policy: ChunkPolicy) -> ChunkExecutor:
        from aloe_ros.policies.sim_rollouts import executor_config

        settings = executor_config(self.config, policy.chunk_horizon)
        if settings.execute_horizon < self.config.policy.execute_horizon:
            self.get_logger().warning(
                f"policy horizon {policy.chunk_horizon} < policy.execute_horizon "
                f"{self.config.policy.execute_horizon}: executing {settings.execute_horizon}")
        return ChunkExecutor(settings)

    # ---- inputs -----------------------------------------------------------------------------
    def stamp_or_now(self, stamp: object) -> float:
        seconds = stamp_to_seconds(stamp)
        return seconds if seconds > 0 else self.now_seconds()

    def on_image(self, camera: str, msg: Image | CompressedImage) -> None:
        try:
            frame = edge_frame(msg, encoding="rgb8", size=self.camera_sizes[camera],
                               resize=camera in self.resized_cameras)
        except ImageError as exc:
            self.count(f"bad_images_{camera}")
            self.problem(f"camera {camera}: {exc}")
            return
        with self.lock:
            self.latest_images[camera] = (frame, self.stamp_or_now(msg.header.stamp))

    def on_joint_state(self, msg: JointState) -> None:
        positions = np.asarray(msg.position, dtype=np.float64)
        if len(msg.name) != len(positions) or set(msg.name) != set(self.joint_names) \
                or not np.all(np.isfinite(positions)):
            self.count("bad_joint_states")
            self.problem("joint state rejected: names must be exactly robot.joint_names with "
                         f"one finite position each (got {len(msg.name)} names, "
                         f"{len(positions)} positions)")
            return
        ordered = np.empty(len(self.joint_names))
        for name, value in zip(msg.name, positions):
            ordered[self.joint_index[name]] = value
        with self.lock:
            self.latest_state = (ordered, self.stamp_or_now(msg.header.stamp))
            self.executor_core.set_measured_state(ordered)

    def on_intervention(self, msg: InterventionEvent) -> None:
        with self.lock:
            if msg.kind == InterventionEvent.TAKEOVER:
                self.human_control = True
            elif msg.kind == InterventionEvent.HANDBACK:
                self.human_control = False
            elif msg.kind == InterventionEvent.ESTOP:
                self.estop = True
            elif msg.kind == InterventionEvent.RELEASE_ESTOP:
                self.estop = False
            else:
                self.count("unknown_interventions")
                return
            active = self.policy_runs()
            if not active and not self.executor_core.paused:
                self.executor_core.pause(f"intervention kind {msg.kind}")
            elif active and self.executor_core.paused:
                state = self.latest_state[0] if self.latest_state else None
                self.executor_core.resume(state, "handback")
                self.reset_policy = True
            elif msg.kind == InterventionEvent.HANDBACK:
                self.executor_core.flush("handback")
        self.get_logger().info(f"intervention kind {msg.kind} from {msg.source or '?'}: "
                               f"{'paused' if not active else 'running'}")

    def policy_runs(self) -> bool:
        """Whether the executor runs: not under e-stop, and no human drives unless in shadow
        mode (there the policy runs beside the human; its commands are never executed)."""
        return not ((self.human_control and not self.shadow) or self.estop)

    def on_shadow_state(self, msg: Bool) -> None:
        with self.lock:
            if bool(msg.data) == self.shadow:
                return
            self.shadow = bool(msg.data)
            active = self.policy_runs()
            if not active and not self.executor_core.paused:
                self.executor_core.pause("shadow mode off while a human drives")
            elif active and self.executor_core.paused:
                state = self.latest_state[0] if self.latest_state else None
                self.executor_core.resume(state, "shadow mode")
                self.reset_policy = True
        self.get_logger().info(f"shadow mode {'on' if msg.data else 'off'}")

    def on_episode(self, msg: EpisodeEvent) -> None:
        with self.lock:
            self.episode_id = int(msg.episode_id)
            if msg.kind in EPISODE_FLUSH_KINDS:
                self.executor_core.flush(f"episode event {msg.kind}")
                self.reset_policy = True
            self.swap_pending_policy("episode boundary")

    # ---- hot swap ---------------------------------------------------------------------------
    def on_policy_update(self, msg: PolicyUpdate) -> None:
        """Load in the background; the newest update wins; failures keep the old policy."""
        threading.Thread(target=self.load_update, args=(msg,), name="policy-loader",
                         daemon=True).start()

    def load_update(self, msg: PolicyUpdate) -> None:
        root = str(Path(self.config.policy.checkpoint_root).expanduser())
        with self.loader_lock:
            try:
                policy = load_task_policy(self.config, msg.checkpoint_uri, root=root,
                                          expected_sha256=msg.sha256 or None)
            except PolicyError as exc:
                with self.lock:
                    self.count("rejected_updates")
                self.problem(f"policy update {msg.policy_version!r} rejected, keeping "
                             f"{self.policy.version}: {exc}")
                return
            if msg.policy_version:
                policy.version = msg.policy_version
            with self.lock:
                self.pending_policy = (policy, msg.checkpoint_uri)
                self.count("loaded_updates")
                self.get_logger().info(f"policy {policy.version} loaded from "
                                       f"{msg.checkpoint_uri}; swap at "
                                       f"{self.config.policy.swap_at}")
                if self.config.policy.swap_at == "immediate":
                    self.swap_pending_policy("immediate")

    def swap_pending_policy(self, why: str) -> None:
        """Make the loaded update the running policy (caller holds the lock)."""
        if self.pending_policy is None:
            return
        policy, uri = self.pending_policy
        self.pending_policy = None
        old = self.policy.version
        if policy.chunk_horizon != self.policy.chunk_horizon:
            state = self.latest_state[0] if self.latest_state else None
            paused = self.executor_core.paused
            self.executor_core = self.make_executor(policy)
            if state is not None:
                self.executor_core.set_measured_state(state)
            if paused:
                self.executor_core.pause("swap while paused")
        self.policy = policy
        self.reset_policy = True
        self.count("policy_swaps")
        self.get_logger().info(f"policy swapped ({why}): {old} -> {policy.version} ({uri})")

    # ---- inference --------------------------------------------------------------------------
    def inference_loop(self) -> None:
        """Worker thread: one chunk per job; never touches ROS objects."""
        while True:
            job = self.jobs.get()
            if job is None:
                return
            started = time.perf_counter()
            try:
                if job.reset_first:
                    job.policy.reset()
                chunk = np.asarray(job.policy.predict_chunk(job.observation), dtype=np.float32)
                error = ""
            except Exception as exc:  # noqa: BLE001 - a failing policy must not kill the node
                chunk, error = None, f"{type(exc).__name__}: {exc}"
            outcome = InferenceOutcome(job.request, chunk, job.policy.version, error,
                                       time.perf_counter() - started, job.requested_at)
            # Handed over at once (not at the next tick): the chunk is usable from this tick.
            with self.lock:
                if not self.running:
                    return
                try:
                    self.handle_outcome(outcome)
                except Exception as exc:  # noqa: BLE001 - the worker must outlive bad chunks
                    self.count("inference_errors")
                    self.problem(f"chunk handling failed: {type(exc).__name__}: {exc}")

    def observation(self, now: float) -> Observation | str:
        """An observation from fresh inputs, or why there is none (caller holds the lock)."""
        return assemble_observation(self.latest_state, self.latest_images,
                                    self.policy.camera_names, now,
                                    self.config.policy.max_observation_age_s,
                                    self.config.task.text)

    def control_loop(self) -> None:
        """Run on_control_tick every 1/rate s of node-clock time, on an absolute schedule.

        A tick missed entirely (the thread woke more than a period late) is still stepped, so
        the plan stays aligned with time, but not published; it is counted as a late tick.
        """
        clock = self.get_clock()
        period_ns = int(round(1e9 / self.config.robot.control_rate_hz))
        next_ns = clock.now().nanoseconds
        while self.running and self.context.ok():
            next_ns += period_ns
            clock.sleep_until(Time(nanoseconds=next_ns, clock_type=clock.clock_type),
                              context=self.context)
            if not (self.running and self.context.ok()):
                return
            now_ns = clock.now().nanoseconds
            missed = (now_ns - next_ns) // period_ns
            if missed >= 1:
                with self.lock:
                    self.count("late_ticks", int(missed))
                    for _ in range(int(missed)):
                        self.executor_core.step()
                next_ns += int(missed) * period_ns
            elif now_ns < next_ns - period_ns:   # the clock jumped back (sim reset): re-anchor
                next_ns = now_ns
            try:
                self.on_control_tick()
            except Exception as exc:  # noqa: BLE001 - the control loop must keep running
                self.count("control_errors")
                self.problem(f"control tick failed: {type(exc).__name__}: {exc}")

    def on_control_tick(self) -> None:
        with self.lock:
            result = self.executor_core.step()
            if result.command is not None:
                self.publish_command(result.command)
            request = self.executor_core.want_inference()
            if request is None:
                return
            requested_at = time.perf_counter()
            observation = self.observation(self.now_seconds())
            if isinstance(observation, str):
                self.executor_core.fail(request, observation)
                self.count("skipped_observations")
                self.problem(f"no new chunk: {observation}", level="warning")
                return
            job = InferenceJob(request, observation, self.policy, self.reset_policy, requested_at)
            self.reset_policy = False
            self.request_stamps[request.request_id] = self.get_clock().now().to_msg()
            try:
                self.jobs.put_nowait(job)
            except queue.Full:
                self.executor_core.fail(request, "worker busy")
                self.count("worker_busy")

    def handle_outcome(self, outcome: InferenceOutcome) -> None:
        """Hand a finished chunk to the executor; publish it if accepted (lock held)."""
        stamp = self.request_stamps.pop(outcome.request.request_id, None)
        if outcome.chunk is None:
            self.executor_core.fail(outcome.request, outcome.error)
            self.count("inference_errors")
            self.problem(f"inference failed: {outcome.error}")
            return
        self.inference_seconds.append(outcome.latency_s)
        del self.inference_seconds[:-200]
        accepted, why = self.executor_core.submit(outcome.request, outcome.chunk,
                                                  outcome.version)
        if not accepted:
            if "flush" in why:
                self.problem(f"chunk from {outcome.version} dropped: {why}", level="warning")
            else:
                self.problem(f"chunk from {outcome.version} rejected: {why}")
            return
        self.publish_chunk(outcome, stamp)
        self.chunk_seconds.append(time.perf_counter() - outcome.requested_at)
        del self.chunk_seconds[:-200]

    # ---- outputs ----------------------------------------------------------------------------
    def publish_command(self, command: np.ndarray) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = self.joint_names
        msg.position = command.tolist()
        self.command_pub.publish(msg)

    def publish_chunk(self, outcome: InferenceOutcome, start_stamp: object) -> None:
        assert outcome.chunk is not None
        chunk = self.executor_core.chunks[-1]
        msg = ActionChunk()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.chunk_id = chunk.chunk_id
        msg.episode_id = self.episode_id
        msg.policy_version = outcome.version
        msg.control_rate_hz = float(self.config.robot.control_rate_hz)
        msg.horizon = int(outcome.chunk.shape[0])
        msg.execute_horizon = int(self.executor_core.config.execute_horizon)
        msg.action_dim = int(outcome.chunk.shape[1])
        msg.joint_names = self.joint_names
        msg.actions = array.array("f", outcome.chunk.astype(np.float32).tobytes())
        if start_stamp is not None:
            msg.start_time = start_stamp
        self.chunk_pub.publish(msg)

    def problem(self, text: str, level: str = "error") -> None:
        self.last_problem = text
        # rclpy keys throttling by call site, and a call site must keep one severity.
        if level == "warning":
            self.get_logger().warning(text, throttle_duration_sec=2.0)
        else:
            self.get_logger().error(text, throttle_duration_sec=2.0)

    def control_source(self) -> str:
        if self.estop:
            return "estop"
        if self.human_control:
            return "human"
        return "policy" if self.executor_core.chunks else "hold"

    def publish_status(self) -> None:
        with self.lock:
            counters = dict(self.counters)
            counters.update(self.executor_core.counters.as_dict())
            msg = Status()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.node = self.get_name()
            msg.control_source = self.control_source()
            msg.episode_id = self.episode_id
            msg.estop_active = self.estop
            msg.policy_version = self.policy.version
            msg.counter_names = list(counters)
            msg.counter_values = [max(0, int(v)) for v in counters.values()]
            latency = (f"inference p50 {1000 * float(np.median(self.inference_seconds)):.0f} ms"
                       f", request->chunk p50 {1000 * float(np.median(self.chunk_seconds)):.0f} ms"
                       if self.inference_seconds and self.chunk_seconds
                       else "no chunk yet")
            msg.message = latency + (f"; last problem: {self.last_problem}"
                                     if self.last_problem else "")
        self.status_pub.publish(msg)

    def close(self) -> None:
        """Stop the control loop and the worker before the node's publishers go away."""
        with self.lock:
            self.running = False
        if self.control_thread.is_alive():
            self.control_thread.join(timeout=2.0)
        try:
            self.jobs.put(None, timeout=1.0)
        except queue.Full:
            pass
        self.worker.join(timeout=5.0)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(ChunkInferenceNode, args, threads=INFERENCE_THREADS)


if __name__ == "__main__":
    raise SystemExit(main())
