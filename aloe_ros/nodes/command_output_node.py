"""command_output_node: the mux's commands to the robot's controllers (the task's ``outputs:``).

Subscribes what the mux forwards (topics.command, JointState in robot.joint_names order; its
frame_id says who produced it: ``human:<source>``, ``hold`` or the policy's version) and
publishes each command, converted by :class:`aloe_ros.io.command_outputs.CommandOutput`, to
every configured output: JointState, Float64MultiArray (ros2_control forward position
controller) or JointTrajectory (JointTrajectoryController). Grippers can be outputs of their own.

A ``joint_trajectory`` output with ``per: chunk`` sends the executed part of each policy chunk
(topics.policy_chunk) as one trajectory while the policy is live on topics.command; human and
hold commands always go out per step (a new trajectory replaces the running one), and an
e-stop sends an empty trajectory, which makes a JointTrajectoryController stop and hold.
Nothing reaches an output that did not pass the mux: a chunk is forwarded only while the
mux's latest command came from the policy within two control periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sensor_msgs.msg import JointState

from aloe_ros.io.command_outputs import CommandOutput
from aloe_ros.msg import ActionChunk, InterventionEvent, Status
from aloe_ros.nodes.common import AloeNode, run_node

NON_POLICY_FRAMES = ("hold",)


def from_policy(frame_id: str) -> bool:
    """Whether a mux command came from the policy (not ``human:<source>`` nor ``hold``)."""
    return not (frame_id in NON_POLICY_FRAMES or frame_id.startswith("human:"))


class CommandOutputNode(AloeNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("command_output", **kwargs)
        cfg = self.config
        self.joint_names = list(cfg.robot.joint_names)
        self.joint_index = {name: i for i, name in enumerate(self.joint_names)}
        self.period_s = 1.0 / cfg.robot.control_rate_hz
        self.outputs = [CommandOutput(output, cfg.robot) for output in cfg.outputs]
        self.publishers_ = [self.create_publisher(out.message_type, out.topic, self.command_qos)
                            for out in self.outputs]
        self.last_command: np.ndarray | None = None
        self.last_command_time = -1.0
        self.last_from_policy = False
        self.chunk_until = -1.0
        self.estop = False
        self.create_subscription(JointState, cfg.topics.command, self.on_command,
                                 self.command_qos)
        self.create_subscription(InterventionEvent, cfg.topics.intervention,
                                 self.on_intervention, self.events_qos)
        if any(out.per_chunk for out in self.outputs):
            self.create_subscription(ActionChunk, cfg.topics.policy_chunk, self.on_chunk,
                                     self.command_qos)
        self.status_pub = self.create_publisher(Status, cfg.topics.status, self.events_qos)
        self.create_timer(1.0, self.publish_status)
        if self.outputs:
            described = "; ".join(out.describe() for out in self.outputs)
            self.get_logger().info(f"commands from {cfg.topics.command} to: {described}")
        else:
            self.get_logger().warning(f"no outputs configured: the robot driver must read "
                                      f"{cfg.topics.command} itself")

    # ---- inputs -------------------------------------------------------------------------------
    def positions(self, msg: JointState) -> np.ndarray | None:
        values = np.asarray(msg.position, dtype=np.float64)
        if list(msg.name) == self.joint_names and values.shape == (len(self.joint_names),):
            ordered = values
        elif len(msg.name) == len(values) and set(msg.name) == set(self.joint_names):
            ordered = np.empty(len(self.joint_names))
            for name, value in zip(msg.name, values):
                ordered[self.joint_index[name]] = value
        else:
            self.reject("bad_commands", f"command on {self.config.topics.command} rejected: "
                        f"{len(msg.name)} names / {len(values)} positions do not match "
                        "robot.joint_names")
            return None
        if not np.all(np.isfinite(ordered)):
            self.reject("bad_commands", "command with non-finite positions rejected")
            return None
        return ordered

    def reject(self, counter: str, text: str) -> None:
        self.count(counter)
        self.get_logger().error(text, throttle_duration_sec=1.0)

    def on_command(self, msg: JointState) -> None:
        positions = self.positions(msg)
        if positions is None:
            return
        now = self.now_seconds()
        policy = from_policy(msg.header.frame_id)
        if not policy:
            self.chunk_until = -1.0          # a human / hold step replaces a running chunk
        chunk_running = policy and now < self.chunk_until
        for out, pub in zip(self.outputs, self.publishers_):
            if out.per_chunk and chunk_running:
                continue                     # the chunk trajectory already covers this tick
            pub.publish(out.step_message(positions, msg.header.stamp, msg.header.frame_id))
            self.count("published_steps")
        self.last_command, self.last_command_time = positions, now
        self.last_from_policy = policy

    def on_chunk(self, msg: ActionChunk) -> None:
        now = self.now_seconds()
        live = (self.last_from_policy and not self.estop and self.last_command is not None
                and now - self.last_command_time <= 2.0 * self.period_s)
        if not live:
            self.count("chunks_not_live")    # shadow mode, human control, e-stop, idle
            return
        if list(msg.joint_names) != self.joint_names or msg.action_dim != len(self.joint_names) \
                or len(msg.actions) != msg.horizon * msg.action_dim:
            self.reject("bad_chunks", "chunk rejected: joint names or sizes differ from "
                        "robot.joint_names")
            return
        actions = np.asarray(msg.actions, dtype=np.float64).reshape(msg.horizon, msg.action_dim)
        if not np.all(np.isfinite(actions)):
            self.reject("bad_chunks", "chunk with non-finite actions rejected")
            return
        assert self.last_command is not None
        executed = self.executed_part(actions, int(msg.execute_horizon), self.last_command)
        for out, pub in zip(self.outputs, self.publishers_):
            if out.per_chunk:
                pub.publish(out.chunk_message(executed, self.last_command))
                self.count("published_chunks")
        self.chunk_until = now + len(executed) * self.period_s

    @staticmethod
    def executed_part(actions: np.ndarray, execute_horizon: int,
                      current: np.ndarray) -> np.ndarray:
        """The rows the executor will run: from the row nearest the current command (the
        executor skips the steps that passed during inference) for execute_horizon steps."""
        horizon = max(1, min(execute_horizon or len(actions), len(actions)))
        search = actions[: max(1, len(actions) - horizon + 1)]
        start = int(np.argmin(np.linalg.norm(search - current, axis=1)))
        return actions[start:start + horizon]

    def on_intervention(self, msg: InterventionEvent) -> None:
        if msg.kind == InterventionEvent.ESTOP:
            self.estop = True
        elif msg.kind == InterventionEvent.RELEASE_ESTOP:
            self.estop = False
        if msg.kind in (InterventionEvent.ESTOP, InterventionEvent.TAKEOVER):
            self.chunk_until = -1.0
            for out, pub in zip(self.outputs, self.publishers_):
                stop = out.stop_message()
                if stop is not None:
                    pub.publish(stop)
                    self.count("published_stops")

    # ---- status -------------------------------------------------------------------------------
    def publish_status(self) -> None:
        counters = dict(self.counters)
        counters["clamped_at_output"] = sum(out.clamped for out in self.outputs)
        msg = Status()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.node = self.get_name()
        msg.estop_active = self.estop
        msg.counter_names = list(counters)
        msg.counter_values = [int(v) for v in counters.values()]
        msg.message = f"{len(self.outputs)} output(s)"
        self.status_pub.publish(msg)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(CommandOutputNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
