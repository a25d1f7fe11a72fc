"""Typed task configuration: one YAML per task (config/<task>.yaml) is the single graph source.

Every node, the launch files, ``aloe-ros up``, the recorder and the learner read the same file
through :func:`load_task_config`. Unknown keys, wrong types and missing values stop start-up with
the YAML key path in the message (see :mod:`aloe_ros.config_loader`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aloe_ros.config_loader import ConfigError, from_dict, load_yaml_file

__all__ = [
    "CameraConfig",
    "ConfigError",
    "EpisodeConfig",
    "JoystickConfig",
    "LearningConfig",
    "NodeEntry",
    "OutputConfig",
    "PolicyConfig",
    "QosConfig",
    "QosProfileConfig",
    "RecordingConfig",
    "RobotConfig",
    "ShadowConfig",
    "SimConfig",
    "SimOperatorConfig",
    "TaskConfig",
    "TaskFile",
    "TopicsConfig",
    "find_task_config",
    "load_task_config",
]


@dataclass
class TaskConfig:
    """What the robot should do; ``text`` is the language instruction given to the policy."""

    name: str
    text: str
    episode_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name", "must not be empty")
        if self.episode_timeout_s <= 0:
            raise ConfigError("episode_timeout_s", f"must be > 0, got {self.episode_timeout_s}")


@dataclass
class RobotConfig:
    """Joint space of the robot: names and order are the action space of the policy."""

    joint_names: list[str]
    position_lower: list[float]
    position_upper: list[float]
    # Maximum joint speed in rad/s (or m/s for prismatic grippers); clamps every command.
    velocity_limits: list[float]
    home_position: list[float]
    control_rate_hz: float = 30.0
    # Arm name -> its joints, for arm select on the joystick and per-arm outputs.
    arms: dict[str, list[str]] = field(default_factory=dict)
    gripper_joints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = len(self.joint_names)
        if count == 0:
            raise ConfigError("joint_names", "needs at least one joint")
        if len(set(self.joint_names)) != count:
            duplicate = next(n for n in self.joint_names if self.joint_names.count(n) > 1)
            raise ConfigError("joint_names", f"joint {duplicate!r} is listed twice")
        for key in ("position_lower", "position_upper", "velocity_limits", "home_position"):
            values = getattr(self, key)
            if len(values) != count:
                raise ConfigError(key, f"has {len(values)} values but joint_names has {count}")
            for i, value in enumerate(values):
                if not math.isfinite(value):
                    raise ConfigError(f"{key}[{i}]", f"must be finite, got {value}")
        for i, (low, high) in enumerate(zip(self.position_lower, self.position_upper)):
            if low >= high:
                raise ConfigError(f"position_lower[{i}]", f"{low} is not below upper {high}")
        for i, speed in enumerate(self.velocity_limits):
            if speed <= 0:
                raise ConfigError(f"velocity_limits[{i}]", f"must be > 0, got {speed}")
        for i, (low, high, home) in enumerate(
            zip(self.position_lower, self.position_upper, self.home_position)
        ):
            if not low <= home <= high:
                raise ConfigError(f"home_position[{i}]", f"{home} is outside [{low}, {high}]")
        if self.control_rate_hz <= 0:
            raise ConfigError("control_rate_hz", f"must be > 0, got {self.control_rate_hz}")
        known = set(self.joint_names)
        for arm, joints in self.arms.items():
            for j, name in enumerate(joints):
                if name not in known:
                    raise ConfigError(f"arms.{arm}[{j}]", f"unknown joint {name!r}")
        for j, name in enumerate(self.gripper_joints):
            if name not in known:
                raise ConfigError(f"gripper_joints[{j}]", f"unknown joint {name!r}")

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)


CameraSource = Literal["sim", "device", "file", "folder", "url", "topic"]


@dataclass
class CameraConfig:
    """One camera. ``source: topic`` means an existing driver publishes it; no camera_node runs."""

    name: str
    source: CameraSource = "sim"
    # Device index or path, video file, image folder or GStreamer/RTSP URL (per ``source``).
    uri: str = ""
    # Empty: /aloe/cam/<name>/image.
    topic: str = ""
    width: int = 320
    height: int = 240
    fps: float = 30.0
    encoding: Literal["rgb8", "bgr8", "mono8"] = "rgb8"
    frame_id: str = ""
    # source: topic only: the driver publishes sensor_msgs/CompressedImage (jpeg/png) on
    # ``topic`` (e.g. /camera/color/image_raw/compressed); decoded and resized at the edge.
    compressed: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError("name", f"must be a non-empty name without '/', got {self.name!r}")
        if self.width <= 0 or self.height <= 0:
            raise ConfigError("width", f"size must be positive, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ConfigError("fps", f"must be > 0, got {self.fps}")
        if self.source in ("device", "file", "folder", "url") and not self.uri:
            raise ConfigError("uri", f"source {self.source!r} needs a uri")
        if self.compressed and self.source != "topic":
            raise ConfigError("compressed", f"needs source: topic, got {self.source!r}")
        if not self.topic:
            self.topic = f"/aloe/cam/{self.name}/image"
        if not self.frame_id:
            self.frame_id = f"{self.name}_optical_frame"


@dataclass
class TopicsConfig:
    """Topic names. The defaults are what docs, tools and tests rely on."""

    joint_states: str = "/aloe/joint_states"
    command: str = "/aloe/command"
    policy_chunk: str = "/aloe/policy/chunk"
    policy_command: str = "/aloe/policy/command"
    teleop_command: str = "/aloe/teleop/command"
    joy: str = "/joy"
    intervention: str = "/aloe/intervention"
    episode: str = "/aloe/episode"
    status: str = "/aloe/status"
    critic_stats: str = "/aloe/critic/stats"
    policy_update: str = "/aloe/policy/update"
    # The sim's success/failure detector (EpisodeEvent); a real robot has none unless configured.
    sim_detector: str = "/aloe/sim/detector"

    def __post_init__(self) -> None:
        for key, value in vars(self).items():
            if not value.startswith("/"):
                raise ConfigError(key, f"topic names must be absolute, got {value!r}")


@dataclass
class QosProfileConfig:
    reliability: Literal["reliable", "best_effort"] = "reliable"
    durability: Literal["volatile", "transient_local"] = "volatile"
    depth: int = 10

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ConfigError("depth", f"must be >= 1, got {self.depth}")


@dataclass
class QosConfig:
    """QoS per class of topic. Reliable images: best-effort dropped ~half the frames on loopback."""

    sensor: QosProfileConfig = field(default_factory=lambda: QosProfileConfig(depth=20))
    command: QosProfileConfig = field(default_factory=QosProfileConfig)
    events: QosProfileConfig = field(default_factory=lambda: QosProfileConfig(depth=100))


@dataclass
class JoystickConfig:
    """Joystick and takeover settings; the button map itself comes from ``preset`` + overrides."""

    preset: str = "xbox"
    # toggle: press takeover / handback; deadman: control while the takeover button is held.
    mode: Literal["toggle", "deadman"] = "toggle"
    # No Joy message for this long while a human holds control: hold the pose, report it.
    timeout_s: float = 0.5
    deadzone: float = 0.1
    # Joint speed at full stick deflection, rad/s.
    max_joint_speed: float = 0.8
    # Gripper speed with a trigger fully pressed (gripper units/s).
    gripper_speed: float = 1.0
    # Speeds are multiplied by this while the "slow" button is held (fine corrections).
    slow_scale: float = 0.25
    # A released button must read released this long before it can press again (chatter).
    debounce_s: float = 0.05
    # Overrides of the preset: action -> button index, axis name -> axis index (-1 unbinds).
    buttons: dict[str, int] = field(default_factory=dict)
    axes: dict[str, int] = field(default_factory=dict)
    # Stick axis per non-gripper joint of an arm, in the arm's order ("-name" inverts);
    # empty: the preset's ALOHA mapping (waist, shoulder, elbow, roll, wrist angle, rotate).
    joint_axes: list[str] = field(default_factory=list)
    # Arms the sticks drive after a takeover: both, or one name of robot.arms.
    arms: str = "both"
    # A leader-arm JointState topic (ALOHA style) the human's command follows while a human
    # holds control; absolute human targets on topics.teleop_command are followed as well.
    leader_topic: str = ""

    def __post_init__(self) -> None:
        from aloe_ros.teleop.layout import resolve_layout

        if self.timeout_s <= 0:
            raise ConfigError("timeout_s", f"must be > 0, got {self.timeout_s}")
        if not 0 <= self.deadzone < 1:
            raise ConfigError("deadzone", f"must be in [0, 1), got {self.deadzone}")
        if self.max_joint_speed <= 0:
            raise ConfigError("max_joint_speed", f"must be > 0, got {self.max_joint_speed}")
        if self.gripper_speed <= 0:
            raise ConfigError("gripper_speed", f"must be > 0, got {self.gripper_speed}")
        if not 0 < self.slow_scale <= 1:
            raise ConfigError("slow_scale", f"must be in (0, 1], got {self.slow_scale}")
        if not 0 <= self.debounce_s < self.timeout_s:
            raise ConfigError("debounce_s",
                              f"must be in [0, timeout_s={self.timeout_s}), got {self.debounce_s}")
        if self.leader_topic and not self.leader_topic.startswith("/"):
            raise ConfigError("leader_topic", f"must be absolute, got {self.leader_topic!r}")
        # Unknown preset, unknown action or axis names, clashing indices: fail at start.
        resolve_layout(self.preset, self.buttons, self.axes, self.joint_axes)


ToggleWhen = Literal["never", "sim", "always"]


@dataclass
class EpisodeConfig:
    """Episode lifecycle (teleop_node): RESET -> START -> outcome -> RESET ..."""

    # Take SUCCESS / FAILURE from the sim's detector (topics.sim_detector): never, only when
    # running on the sim, or always (a real detector publishing there).
    outcome_from_detector: ToggleWhen = "sim"
    # Reset by itself auto_reset_delay_s after an outcome (else: wait for the reset button).
    auto_reset: ToggleWhen = "sim"
    auto_reset_delay_s: float = 1.0
    # START follows RESET after this long (the scene and the robot settle).
    reset_to_start_s: float = 0.5
    # The first RESET waits for the robot's pose and this long after start-up.
    startup_delay_s: float = 1.0
    # While recording, the first RESET also waits (at most this long) for the recorder to
    # subscribe the episode topic: a START published before it is up is not in the bag, and
    # neither is its episode. 0: do not wait.
    recorder_wait_s: float = 30.0

    def __post_init__(self) -> None:
        for key in ("auto_reset_delay_s", "reset_to_start_s", "startup_delay_s",
                    "recorder_wait_s"):
            if getattr(self, key) < 0:
                raise ConfigError(key, f"must be >= 0, got {getattr(self, key)}")


@dataclass
class RecordingConfig:
    """Rosbag2 (MCAP) recording of every topic of the loop, one bag per run."""

    enabled: bool = True
    dir: str = "recordings"
    storage: Literal["mcap"] = "mcap"
    compression: Literal["none", "zstd", "lz4"] = "none"
    # Extra topics to record beside the loop's own; the loop's topics are always recorded.
    extra_topics: list[str] = field(default_factory=list)
    # Everything older than this is on disk and readable after a kill -9.
    flush_period_s: float = 0.5
    min_free_disk_mb: int = 1024
    # Bytes waiting for the writer thread; beyond this, messages are dropped and counted per topic.
    queue_max_mb: int = 512
    # fsync at every flush: data also survives a power loss, not only a crash of the logger.
    fsync: bool = True
    # Subscription history depth of the logger (per topic), so bursts queue in DDS, not drop.
    subscription_depth: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.flush_period_s <= 1.0:
            raise ConfigError("flush_period_s", f"must be in (0, 1], got {self.flush_period_s}")
        if self.min_free_disk_mb < 0:
            raise ConfigError("min_free_disk_mb", f"must be >= 0, got {self.min_free_disk_mb}")
        if self.queue_max_mb < 1:
            raise ConfigError("queue_max_mb", f"must be >= 1, got {self.queue_max_mb}")
        if self.subscription_depth < 1:
            raise ConfigError("subscription_depth",
                              f"must be >= 1, got {self.subscription_depth}")
        for i, topic in enumerate(self.extra_topics):
            if not topic.startswith("/"):
                raise ConfigError(f"extra_topics[{i}]",
                                  f"topic names must be absolute, got {topic!r}")


@dataclass
class PolicyConfig:
    """The actor: the built-in flow-matching chunk policy or a LeRobot checkpoint."""

    # A checkpoint directory; empty: a fresh, untrained built-in policy (the loop still runs).
    path: str = ""
    kind: Literal["auto", "builtin", "lerobot"] = "auto"
    chunk_horizon: int = 50
    execute_horizon: int = 25
    flow_steps: int = 10
    device: str = "cpu"
    # PolicyUpdate checkpoints are accepted only from below this directory.
    checkpoint_root: str = "checkpoints"
    swap_at: Literal["episode_boundary", "immediate"] = "episode_boundary"
    # An observation whose newest input is older than this does not start a chunk.
    max_observation_age_s: float = 0.25
    blend: Literal["none", "linear", "temporal_ensemble"] = "linear"
    blend_steps: int = 5
    # LeRobot adapter: camera name -> LeRobot image feature key.
    camera_keys: dict[str, str] = field(default_factory=dict)
    # Built-in policy: scale of the initial flow noise. 1 samples the learned distribution
    # (what RL improves); 0 integrates from the mean (deterministic, usually more successful).
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.chunk_horizon < 1:
            raise ConfigError("chunk_horizon", f"must be >= 1, got {self.chunk_horizon}")
        if not 1 <= self.execute_horizon <= self.chunk_horizon:
            raise ConfigError(
                "execute_horizon",
                f"must be in [1, chunk_horizon={self.chunk_horizon}], got {self.execute_horizon}",
            )
        if self.flow_steps < 1:
            raise ConfigError("flow_steps", f"must be >= 1, got {self.flow_steps}")
        if not 0 <= self.noise_scale <= 2:
            raise ConfigError("noise_scale", f"must be in [0, 2], got {self.noise_scale}")


@dataclass
class LearningConfig:
    """ALOE learner settings (DESIGN section 4); defaults follow the paper."""

    method: Literal["aloe", "dagger", "awr_mc", "td1"] = "aloe"
    gamma: float = 0.99
    ensemble_size: int = 10
    aggregation: Literal["min", "mean_minus_std", "subset_min"] = "min"
    aggregation_beta: float = 1.0
    aggregation_subset: int = 2
    tau: float = 0.005
    bootstrap_samples: int = 1
    value_samples: int = 4
    advantage_beta: float = 1.0
    advantage_clip: float = 5.0
    # "none": Adv as is (the paper); "value": Adv / max(|V(o)|, advantage_value_floor), the
    # fractional gain over the policy's value (learning/equations.py: scale_advantage).
    advantage_scale: Literal["none", "value"] = "none"
    advantage_value_floor: float = 0.01
    # > 0 (not the paper's; RLIF-style): a policy chunk that runs into a takeover ends there
    # and earns -takeover_penalty, so the critic sees the failure the human's rescue hides.
    takeover_penalty: float = 0.0
    # < 1 (not the paper's; HG-DAgger's choice when 0): the actor-loss weight of the policy's
    # own chunks in assisted episodes (a takeover happened) is multiplied by this; demos,
    # interventions and unassisted episodes keep their advantage weights.
    assisted_policy_weight: float = 1.0
    batch_size: int = 256
    critic_lr: float = 3.0e-4
    actor_lr: float = 1.0e-4
    schedule: Literal["rounds", "continuous"] = "rounds"
    episodes_per_round: int = 10
    updates_per_round: int = 500
    publish_every_updates: int = 500
    source_ratios: dict[str, float] = field(
        default_factory=lambda: {"demo": 0.25, "intervention": 0.25, "online": 0.4,
                                 "historical": 0.1}
    )
    device: str = "cpu"
    checkpoint_dir: str = "checkpoints"
    # Critic network: own small CNN on images resized to critic_image_size, MLP heads this wide.
    critic_width: int = 256
    critic_image_size: int = 64
    # Critic-only updates before the actor starts moving (its weights need a sane critic).
    critic_warmup_updates: int = 0
    grad_clip_norm: float = 10.0
    # A chunk transition starts every this many steps (overlapping chunks), so the actor and
    # critic see every n-th observation; 0: only at the robot's chunk boundaries (one per
    # execute_horizon steps, 1/25 of the observations behaviour cloning sees).
    transition_stride: int = 0
    # Oldest chunk transitions are evicted beyond this many; 0 = unbounded.
    replay_capacity: int = 200000
    # Checkpoint + PolicyUpdate every this many updates (continuous) or after each round.
    checkpoint_every_updates: int = 500
    # Start training (continuous) once the replay holds at least this many transitions.
    min_replay_transitions: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.gamma <= 1:
            raise ConfigError("gamma", f"must be in (0, 1], got {self.gamma}")
        if self.ensemble_size < 1:
            raise ConfigError("ensemble_size", f"must be >= 1, got {self.ensemble_size}")
        if not 1 <= self.aggregation_subset <= self.ensemble_size:
            raise ConfigError("aggregation_subset", f"must be in [1, ensemble_size="
                              f"{self.ensemble_size}], got {self.aggregation_subset}")
        for key in ("bootstrap_samples", "value_samples", "batch_size", "episodes_per_round",
                    "updates_per_round", "publish_every_updates", "critic_width",
                    "critic_image_size", "checkpoint_every_updates"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        for key in ("advantage_value_floor", "advantage_clip", "critic_lr", "actor_lr",
                    "grad_clip_norm"):
            if getattr(self, key) <= 0:
                raise ConfigError(key, f"must be > 0, got {getattr(self, key)}")
        if self.takeover_penalty < 0:
            raise ConfigError("takeover_penalty", f"must be >= 0, got {self.takeover_penalty}")
        if not 0 <= self.assisted_policy_weight <= 1:
            raise ConfigError("assisted_policy_weight",
                              f"must be in [0, 1], got {self.assisted_policy_weight}")
        if self.transition_stride < 0:
            raise ConfigError("transition_stride",
                              f"must be >= 0, got {self.transition_stride}")
        if self.replay_capacity < 0:
            raise ConfigError("replay_capacity", f"must be >= 0, got {self.replay_capacity}")
        if not 0 < self.tau <= 1:
            raise ConfigError("tau", f"must be in (0, 1], got {self.tau}")
        if self.advantage_beta <= 0:
            raise ConfigError("advantage_beta", f"must be > 0, got {self.advantage_beta}")
        allowed = {"demo", "intervention", "online", "historical"}
        for source, ratio in self.source_ratios.items():
            if source not in allowed:
                raise ConfigError(f"source_ratios.{source}",
                                  f"unknown source; use {sorted(allowed)}")
            if ratio < 0:
                raise ConfigError(f"source_ratios.{source}", f"must be >= 0, got {ratio}")


@dataclass
class SimConfig:
    """The simulated bimanual robot (used when the graph starts with sim).

    backend: builtin (kinematic sim, scenes pack_phone / fold_laundry / pick_place) or
    aloha_mujoco (gym-aloha's MuJoCo ViperX pair, scenes transfer_cube / insertion).
    """

    scene: Literal["pack_phone", "fold_laundry", "pick_place", "transfer_cube",
                   "insertion"] = "pack_phone"
    backend: Literal["builtin", "aloha_mujoco"] = "builtin"
    seed: int = 0
    # Physics and joint-state rate; cameras render at their own fps.
    physics_rate_hz: float = 60.0
    # Start a new episode by itself this long after success / failure / timeout.
    auto_reset_s: float = 1.0
    # Randomness of the initial object poses, 0..1 of the scene's range.
    randomization: float = 1.0

    def __post_init__(self) -> None:
        if self.physics_rate_hz <= 0:
            raise ConfigError("physics_rate_hz", f"must be > 0, got {self.physics_rate_hz}")
        if not 0 <= self.randomization <= 1:
            raise ConfigError("randomization", f"must be in [0, 1], got {self.randomization}")
        if (self.backend == "aloha_mujoco") != (self.scene in ("transfer_cube", "insertion")):
            raise ConfigError("scene", f"{self.scene!r} is not a scene of backend "
                                       f"{self.backend!r} (aloha_mujoco: transfer_cube, "
                                       "insertion; builtin: pack_phone, fold_laundry, pick_place)")


OutputType = Literal["joint_state", "forward_position", "joint_trajectory"]


@dataclass
class OutputConfig:
    """One controller the mux's commands (topics.command) are converted for (command_output_node).

    joint_state: sensor_msgs/JointState; forward_position: std_msgs/Float64MultiArray for a
    ros2_control forward command controller; joint_trajectory: trajectory_msgs/JointTrajectory
    for a JointTrajectoryController (one point per step, or the executed part of each policy
    chunk). ``joints``: which joints, in the controller's order (empty: robot.joint_names).
    """

    type: OutputType
    topic: str
    joints: list[str] = field(default_factory=list)
    # joint_trajectory: "step" (one point per command) or "chunk" (policy chunks as a whole).
    per: Literal["step", "chunk"] = "step"
    # joint_trajectory, per step: the point is reached this many control periods ahead.
    lookahead_steps: int = 1

    def __post_init__(self) -> None:
        if not self.topic.startswith("/"):
            raise ConfigError("topic", f"topic names must be absolute, got {self.topic!r}")
        if self.lookahead_steps < 1:
            raise ConfigError("lookahead_steps", f"must be >= 1, got {self.lookahead_steps}")
        if self.per == "chunk" and self.type != "joint_trajectory":
            raise ConfigError("per", f"'chunk' needs type joint_trajectory, got {self.type!r}")


@dataclass
class ShadowConfig:
    """Shadow mode: the policy runs, its commands go to ``command_topic`` (recorded, never
    executed) while the human drives; going live takes the go-live button combo, held."""

    # Start in shadow mode.
    enabled: bool = False
    command_topic: str = "/aloe/shadow/command"
    # std_msgs/Bool (transient local): true while in shadow mode.
    state_topic: str = "/aloe/shadow/active"
    # Pad actions held together for go_live_hold_s switch shadow <-> live.
    go_live_buttons: list[str] = field(default_factory=lambda: ["slow", "release_estop"])
    go_live_hold_s: float = 1.0

    def __post_init__(self) -> None:
        from aloe_ros.teleop.layout import ACTIONS

        for key in ("command_topic", "state_topic"):
            if not getattr(self, key).startswith("/"):
                raise ConfigError(key, f"topic names must be absolute, got {getattr(self, key)!r}")
        if len(set(self.go_live_buttons)) < 2:
            raise ConfigError("go_live_buttons", "needs at least two different actions (a "
                                                 f"combo), got {self.go_live_buttons}")
        for i, name in enumerate(self.go_live_buttons):
            if name not in ACTIONS:
                raise ConfigError(f"go_live_buttons[{i}]",
                                  f"unknown action {name!r}; use one of {', '.join(ACTIONS)}")
            if name in ("estop", "takeover", "handback"):
                raise ConfigError(f"go_live_buttons[{i}]", f"{name!r} acts on its own when "
                                  "pressed; pick buttons that are harmless alone")
        if self.go_live_hold_s < 0:
            raise ConfigError("go_live_hold_s", f"must be >= 0, got {self.go_live_hold_s}")


@dataclass
class SimOperatorConfig:
    """The simulated operator (sim_operator_node): when it takes over and how it behaves."""

    # Probability of acting on a predicted failure (1.0: always, 0.0: never intervenes).
    intervention_rate: float = 1.0
    reaction_delay_s: float = 0.3
    # No task progress for this long: take over.
    stall_s: float = 5.0
    # Past this fraction of the episode timeout: take over.
    late_fraction: float = 0.75
    # Drive at least this long after helping a stage through, then hand back.
    assist_s: float = 1.0
    # Driving with no progress for this long: give up, press failure (the episode ends) rather
    # than hold the pad idle until the timeout, as a person would. 0: never give up.
    give_up_s: float = 15.0
    # Press success / failure like a person when the episode ends (from privileged state).
    mark_outcomes: bool = True
    # An imperfect operator: with probability fumble_rate a takeover starts with fumble_s of
    # driving the arms off course (a random joint offset of up to fumble_amplitude rad on the
    # arm joints, grippers held) before the expert takes over. Real takeovers start with such
    # a grab-and-correct; HG-DAgger imitates it, an advantage-weighted actor can weigh it down.
    fumble_rate: float = 0.0
    fumble_s: float = 1.0
    fumble_amplitude: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("intervention_rate", "fumble_rate"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(key, f"must be in [0, 1], got {getattr(self, key)}")
        for key in ("reaction_delay_s", "stall_s", "assist_s", "give_up_s", "fumble_s",
                    "fumble_amplitude"):
            if getattr(self, key) < 0:
                raise ConfigError(key, f"must be >= 0, got {getattr(self, key)}")
        if not 0 < self.late_fraction <= 1:
            raise ConfigError("late_fraction", f"must be in (0, 1], got {self.late_fraction}")


NodeCondition = Literal["always", "sim", "real", "record"]


@dataclass
class NodeEntry:
    """One node of the graph, started by the launch file and by ``aloe-ros up``."""

    name: str
    executable: str
    # sim: only with sim:=true; real: only with sim:=false; record: only with record:=true.
    when: NodeCondition = "always"
    # Restart after a crash; only where that is safe (stateless drivers, recorder, learner).
    respawn: bool = False
    respawn_delay_s: float = 1.0
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from aloe_ros.nodes import NODE_MODULES

        if self.executable not in NODE_MODULES:
            raise ConfigError(
                "executable",
                f"unknown executable {self.executable!r}; known: {', '.join(sorted(NODE_MODULES))}",
            )


# The executable that records the episode topic (and every other topic of the loop).
RECORDER_EXECUTABLE = "trajectory_logger_node"


@dataclass
class TaskFile:
    """A whole task file: ``config/<task>.yaml``."""

    task: TaskConfig
    robot: RobotConfig
    cameras: list[CameraConfig]
    nodes: list[NodeEntry]
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    qos: QosConfig = field(default_factory=QosConfig)
    joystick: JoystickConfig = field(default_factory=JoystickConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    operator: SimOperatorConfig = field(default_factory=SimOperatorConfig)
    # Controllers the mux's commands go to (empty: the driver reads topics.command itself).
    outputs: list[OutputConfig] = field(default_factory=list)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    # Where the file was read from (set by load_task_config, not a YAML key).
    source_path: str = field(default="", init=False)
    # The robot preset merged under the task's keys (``preset:``), if any.
    preset_path: str = field(default="", init=False)

    def __post_init__(self) -> None:
        names = [camera.name for camera in self.cameras]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ConfigError(f"cameras[{i}].name", f"camera {name!r} is listed twice")
        node_names = [node.name for node in self.nodes]
        for i, name in enumerate(node_names):
            if node_names.index(name) != i:
                raise ConfigError(f"nodes[{i}].name", f"node {name!r} is listed twice")
        if self.joystick.arms != "both" and self.joystick.arms not in self.robot.arms:
            raise ConfigError("joystick.arms", f"unknown arm {self.joystick.arms!r}; use both "
                                               f"or one of {sorted(self.robot.arms)}")
        self._check_outputs()
        self._check_shadow_buttons()

    def _check_outputs(self) -> None:
        known = set(self.robot.joint_names)
        owner: dict[str, int] = {}
        for i, output in enumerate(self.outputs):
            if output.topic == self.topics.command:
                raise ConfigError(f"outputs[{i}].topic", "is topics.command, which the mux "
                                  "publishes itself; an output needs a topic of its own")
            for j, name in enumerate(output.joints):
                if name not in known:
                    raise ConfigError(f"outputs[{i}].joints[{j}]", f"unknown joint {name!r}")
            for name in output.joints or self.robot.joint_names:
                if name in owner:
                    raise ConfigError(f"outputs[{i}].joints", f"joint {name!r} already goes "
                                      f"to outputs[{owner[name]}]")
                owner[name] = i

    def _check_shadow_buttons(self) -> None:
        from aloe_ros.teleop.layout import resolve_layout

        layout = resolve_layout(self.joystick.preset, self.joystick.buttons, self.joystick.axes,
                                self.joystick.joint_axes)
        for i, name in enumerate(self.shadow.go_live_buttons):
            if name not in layout.buttons:
                raise ConfigError(f"shadow.go_live_buttons[{i}]", f"action {name!r} has no "
                                  f"button in pad preset {self.joystick.preset!r}")

    def nodes_for(self, *, sim: bool, record: bool) -> list[NodeEntry]:
        """The nodes to start for this combination of launch arguments."""
        wanted = {"always", "sim" if sim else "real"}
        if record:
            wanted.add("record")
        return [node for node in self.nodes if node.when in wanted]

    def recorder_names(self) -> set[str]:
        """Names of the nodes that record the episode (``trajectory_logger_node`` entries):
        `aloe-ros up` starts them before the others, and teleop_node holds episode 1 until one
        subscribes the episode topic. One definition, so the two cannot drift apart."""
        return {node.name for node in self.nodes if node.executable == RECORDER_EXECUTABLE}


def package_root() -> Path:
    """The source checkout (pip/editable install) or the installed package directory."""
    return Path(__file__).resolve().parent.parent


def config_search_dirs() -> list[Path]:
    """Where task files (and robots/ presets) are looked up: the checkout, then ament share."""
    search = [package_root() / "config"]
    try:  # a colcon install keeps config in share/aloe_ros/config
        from ament_index_python.packages import get_package_share_directory

        search.append(Path(get_package_share_directory("aloe_ros")) / "config")
    except Exception:  # noqa: BLE001 - not installed through ament: the checkout is enough
        pass
    return search


def find_task_config(task_or_path: str) -> Path:
    """Resolve a task name (``pack_phone``) or a path to a YAML file."""
    candidate = Path(task_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or os.sep in task_or_path:
        if candidate.is_file():
            return candidate
        raise ConfigError("", "config file not found", str(candidate))
    search = config_search_dirs()
    for folder in search:
        path = folder / f"{task_or_path}.yaml"
        if path.is_file():
            return path
    available = sorted({p.stem for folder in search if folder.is_dir()
                        for p in folder.glob("*.yaml")})
    raise ConfigError(
        "", f"no task {task_or_path!r}; available: {', '.join(available) or 'none'}", task_or_path
    )


def load_task_config(task_or_path: str | Path) -> TaskFile:
    """Load and validate a task file by name or path; raise ConfigError naming the key."""
    from aloe_ros.robot_presets import apply_preset, value_at

    path = find_task_config(str(task_or_path))
    own = load_yaml_file(path)
    data, preset_path = apply_preset(own, path, config_search_dirs())
    try:
        config = from_dict(TaskFile, data, source=str(path))
    except ConfigError as exc:
        if preset_path is None or value_at(own, exc.key_path):
            raise
        raise ConfigError(exc.key_path, f"{exc.message} (value from robot preset "
                                        f"{preset_path})", exc.source) from None
    config.source_path = str(path.resolve())
    config.preset_path = str(preset_path.resolve()) if preset_path else ""
    return config
