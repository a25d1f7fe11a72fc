"""sim_robot_node: the built-in simulated bimanual robot, speaking the topics of a real one.

Subscribes the robot command (sensor_msgs/JointState, positions by joint name) and the episode
stream (RESET starts a new scene); publishes joint states, the configured cameras (Image +
CameraInfo), the success/failure detector (EpisodeEvent on topics.sim_detector), privileged
state for scripted experts (std_msgs/String JSON on /aloe/sim/state) and a Status message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from aloe_ros.io.images import fill_image
from aloe_ros.msg import EpisodeEvent, Status
from aloe_ros.nodes.common import AloeNode, run_node
from aloe_ros.sim.backends import make_robot
from aloe_ros.sim.robot import CommandError, SimStep

SIM_STATE_TOPIC = "/aloe/sim/state"
MAX_CATCH_UP = 5


class SimRobotNode(AloeNode):
    def __init__(self) -> None:
        super().__init__("sim_robot")
        cfg = self.config
        self.sim_cameras = [c for c in cfg.cameras if c.source == "sim"]
        self.robot = make_robot(
            cfg.robot, cfg.sim, {c.name: (c.height, c.width) for c in self.sim_cameras},
            cfg.task.episode_timeout_s,
        )
        self.joint_names = list(cfg.robot.joint_names)
        self.joint_index = {name: i for i, name in enumerate(self.joint_names)}
        self.dt = 1.0 / cfg.sim.physics_rate_hz

        self.state_pub = self.create_publisher(JointState, cfg.topics.joint_states,
                                               self.command_qos)
        self.image_pubs = {c.name: self.create_publisher(Image, c.topic, self.sensor_qos)
                           for c in self.sim_cameras}
        self.info_pubs = {
            c.name: self.create_publisher(CameraInfo, c.topic.rsplit("/", 1)[0] + "/camera_info",
                                          self.sensor_qos)
            for c in self.sim_cameras
        }
        self.detector_pub = self.create_publisher(EpisodeEvent, cfg.topics.sim_detector,
                                                  self.events_qos)
        self.sim_state_pub = self.create_publisher(String, SIM_STATE_TOPIC, self.command_qos)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.create_subscription(JointState, cfg.topics.command, self.on_command,
                                 self.command_qos)
        self.create_subscription(EpisodeEvent, cfg.topics.episode, self.on_episode,
                                 self.events_qos)
        self.create_service(Trigger, "/aloe/sim/reset", self.on_reset_service)

        # Cameras are rendered on the physics timer when due, so a frame always shows one state.
        self.camera_period = {c.name: 1.0 / c.fps for c in self.sim_cameras}
        self.camera_due = {c.name: 0.0 for c in self.sim_cameras}
        self.sim_time = 0.0
        self.reset_due: float | None = None
        self.last_tick_ns = 0
        self.create_timer(self.dt, self.on_physics_tick)
        self.create_timer(1.0, self.publish_status)
        self.get_logger().info(
            f"sim '{cfg.sim.scene}' ({cfg.sim.backend}) up: {len(self.joint_names)} joints at "
            f"{cfg.sim.physics_rate_hz:g} Hz, cameras "
            + ", ".join(f"{c.name} {c.width}x{c.height}@{c.fps:g}" for c in self.sim_cameras)
        )
        self.publish_detector(EpisodeEvent.START, "reset")

    # ---- inputs ---------------------------------------------------------------------------
    def on_command(self, msg: JointState) -> None:
        try:
            self.robot.command(self.command_vector(msg))
            self.count("commands")
        except CommandError as exc:
            self.count("rejected_commands")
            self.get_logger().error(f"rejected command on {self.config.topics.command}: {exc}",
                                    throttle_duration_sec=1.0)

    def command_vector(self, msg: JointState) -> np.ndarray:
        """Positions in our joint order; names, when given, must be exactly our joints."""
        positions = np.asarray(msg.position, dtype=np.float64)
        if not msg.name:
            return positions
        if len(msg.name) != len(positions):
            raise CommandError(f"{len(msg.name)} names but {len(positions)} positions")
        unknown = [n for n in msg.name if n not in self.joint_index]
        if unknown:
            raise CommandError(f"unknown joint names {unknown[:3]}")
        if len(set(msg.name)) != len(self.joint_names):
            missing = sorted(set(self.joint_names) - set(msg.name))
            raise CommandError(f"missing joints {missing[:3]}")
        ordered = np.empty(len(self.joint_names))
        for name, value in zip(msg.name, positions):
            ordered[self.joint_index[name]] = value
        return ordered

    def on_episode(self, msg: EpisodeEvent) -> None:
        if msg.kind == EpisodeEvent.RESET:
            # teleop_node numbers the episodes: the scene after RESET(n) is episode n + 1, so
            # the detector's ids match the episode stream's.
            self.robot.episode_count = int(msg.episode_id)
            self.reset_scene("episode RESET")

    def on_reset_service(self, request: Trigger.Request, response: Trigger.Response
                         ) -> Trigger.Response:
        self.reset_scene("reset service")
        response.success = True
        response.message = f"episode {self.robot.episode_count} started"
        return response

    def reset_scene(self, why: str) -> None:
        self.robot.reset()
        self.reset_due = None
        self.get_logger().info(f"scene reset ({why}): episode {self.robot.episode_count}")
        self.publish_detector(EpisodeEvent.START, "reset")

    # ---- the loop ---------------------------------------------------------------------------
    def on_physics_tick(self) -> None:
        now = self.get_clock().now()
        step = self.advance_physics(now)
        if step.outcome is not None:
            kind = EpisodeEvent.SUCCESS if step.outcome.success else EpisodeEvent.FAILURE
            self.publish_detector(kind, step.outcome.reason)
            if self.config.sim.auto_reset_s > 0:
                self.reset_due = self.sim_time + self.config.sim.auto_reset_s
        if self.reset_due is not None and self.sim_time >= self.reset_due:
            self.reset_scene("auto reset")
        due = [name for name, t in self.camera_due.items() if self.sim_time >= t]
        if due:
            frames = self.robot.render()
            for name in due:
                self.camera_due[name] += self.camera_period[name]
                if self.camera_due[name] < self.sim_time:  # fell behind: skip, and say so
                    self.count(f"late_frames_{name}")
                    self.camera_due[name] = self.sim_time + self.camera_period[name]
                self.publish_image(name, frames[name], now)
        state = String()
        state.data = json.dumps(self.robot.privileged_state())
        self.sim_state_pub.publish(state)

    def advance_physics(self, now: Time) -> SimStep:
        """Step the physics by the time that really passed, in fixed steps of ``dt``.

        A late timer (a loaded machine) gets up to MAX_CATCH_UP steps at once, so the sim
        keeps real time instead of slowing down with the executor; the extra steps are counted.
        Every step publishes its joint state, stamped with the time it stands for, so the joint
        state stream keeps its configured rate like a real driver's.
        """
        elapsed = (now.nanoseconds - self.last_tick_ns) * 1e-9 if self.last_tick_ns else self.dt
        self.last_tick_ns = now.nanoseconds
        steps = int(min(MAX_CATCH_UP, max(1, round(elapsed / self.dt))))
        if steps > 1:
            self.count("physics_catch_up_steps", steps - 1)
        step_ns = int(self.dt * 1e9)
        for index in range(steps):
            step = self.robot.step(self.dt)
            self.sim_time += self.dt
            self.publish_joint_state(Time(nanoseconds=now.nanoseconds
                                          - (steps - 1 - index) * step_ns,
                                          clock_type=now.clock_type))
            if step.outcome is not None:
                return step
        return step

    def publish_joint_state(self, now: Time) -> None:
        msg = JointState()
        msg.header.stamp = now.to_msg()
        msg.name = self.joint_names
        msg.position = self.robot.positions.tolist()
        msg.velocity = self.robot.velocities.tolist()
        self.state_pub.publish(msg)

    def publish_image(self, name: str, frame: np.ndarray, now: Time) -> None:
        camera = next(c for c in self.sim_cameras if c.name == name)
        msg = Image()
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = camera.frame_id
        if camera.encoding == "bgr8":
            frame = frame[..., ::-1]
        elif camera.encoding == "mono8":
            frame = frame.mean(axis=2).astype(np.uint8)
        fill_image(msg, frame, camera.encoding)
        self.image_pubs[name].publish(msg)
        info = CameraInfo()
        info.header = msg.header
        info.height, info.width = camera.height, camera.width
        self.info_pubs[name].publish(info)

    def publish_detector(self, kind: int, reason: str) -> None:
        msg = EpisodeEvent()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.episode_id = self.robot.episode_count
        msg.task = self.config.task.name
        msg.kind = kind
        msg.reward = 1.0 if kind == EpisodeEvent.SUCCESS else 0.0
        msg.reason = reason
        self.detector_pub.publish(msg)

    def publish_status(self) -> None:
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.control_source = "sim"
        msg.episode_id = self.robot.episode_count
        outcome = self.robot.outcome
        msg.last_outcome = "" if outcome is None else (
            ("success: " if outcome.success else "failure: ") + outcome.reason)
        msg.counter_names = list(self.counters)
        msg.counter_values = [int(v) for v in self.counters.values()]
        self.status_pub.publish(msg)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(SimRobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
