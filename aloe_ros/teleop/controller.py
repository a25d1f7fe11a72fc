"""The teleop controller: Joy in, control changes, human commands and episode events out.

It composes the ROS-free parts (layout, debounced buttons, human commander, mux, episode
manager) into the operator's state machine:

    POLICY --takeover--> HUMAN --handback (toggle: takeover again; deadman: release)--> POLICY
    HUMAN --no Joy for joystick.timeout_s--> HOLD --Joy again--> HUMAN (from the held pose)
    any --estop--> ESTOP --release_estop--> DISARMED --takeover / handback--> HUMAN / POLICY

Orthogonal to these, shadow mode (shadow.enabled): policy commands go to the shadow topic
only; the go-live combo (shadow.go_live_buttons held for shadow.go_live_hold_s) switches
shadow <-> live, never under e-stop.

Every change of control is one :class:`InterventionOutput`; the node publishes them as
InterventionEvent. Time is passed in (ROS time in the node, plain floats in tests).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from aloe_ros.config import TaskFile
from aloe_ros.teleop.buttons import ButtonEdges, DebouncedButtons
from aloe_ros.teleop.episode import EpisodeEventKind, EpisodeManager, EpisodeOutput
from aloe_ros.teleop.human import HumanCommander
from aloe_ros.teleop.layout import ACTIONS, JoyReadError, PadState, read_pad, resolve_layout
from aloe_ros.teleop.mux import CommandMux, ControlSource, MuxCommand, Origin
from aloe_ros.teleop.shadow import ComboHold

__all__ = ["ControllerOutput", "InterventionKind", "InterventionOutput", "TeleopController"]

log = logging.getLogger(__name__)


class InterventionKind(StrEnum):
    TAKEOVER = "takeover"
    HANDBACK = "handback"
    ESTOP = "estop"
    RELEASE_ESTOP = "release_estop"


@dataclass(frozen=True)
class InterventionOutput:
    kind: InterventionKind
    episode_id: int
    source: str
    arms: str


@dataclass
class ControllerOutput:
    """What one input or tick produced, in the order it must be published."""

    commands: list[MuxCommand] = field(default_factory=list)
    interventions: list[InterventionOutput] = field(default_factory=list)
    episodes: list[EpisodeOutput] = field(default_factory=list)
    # Shadow mode switched: True = now in shadow mode, False = now live.
    shadow_changes: list[bool] = field(default_factory=list)

    def extend(self, other: ControllerOutput) -> None:
        self.commands += other.commands
        self.interventions += other.interventions
        self.episodes += other.episodes
        self.shadow_changes += other.shadow_changes


class TeleopController:
    """The operator's side of the loop, without ROS."""

    def __init__(self, config: TaskFile, *, sim: bool) -> None:
        joystick = config.joystick
        self.robot = config.robot
        self.mode = joystick.mode
        self.timeout_s = joystick.timeout_s
        self.layout = resolve_layout(joystick.preset, joystick.buttons, joystick.axes,
                                     joystick.joint_axes)
        self.buttons = DebouncedButtons(ACTIONS, joystick.debounce_s)
        self.mux = CommandMux(config.robot)
        self.mux.shadow = config.shadow.enabled
        self.go_live = ComboHold(config.shadow.go_live_buttons, config.shadow.go_live_hold_s)
        self.go_live_label = " + ".join(config.shadow.go_live_buttons)
        self.human = HumanCommander(config.robot, joystick, self.layout)
        self.episodes = EpisodeManager(config.episode, config.task.episode_timeout_s, sim=sim)
        self.default_source = "leader_arm" if joystick.leader_topic else "joystick"
        self.control = ControlSource.POLICY
        self.pad: PadState | None = None
        self.pad_source = self.default_source
        self.last_joy_time: float | None = None
        self.pad_stale = True
        self.goal: np.ndarray | None = None
        self.goal_time: float | None = None
        self.last_tick: float | None = None
        self.counters: dict[str, int] = {}
        self.last_problem = ""
        self.problems = 0
        # False while the node waits for the recorder: the first episode waits with it.
        self.recorder_ready = True

    # ---- small helpers --------------------------------------------------------------------------
    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def problem(self, counter: str, message: str) -> None:
        """A rejected input or refused action: counted, and kept for Status and the log."""
        self.count(counter)
        self.problems += 1
        self.last_problem = message

    def _change(self, kind: InterventionKind) -> InterventionOutput:
        event = InterventionOutput(kind, self.episodes.episode_id, self.pad_source,
                                   self.human.selected)
        log.info("control: %s by %s (arms %s), episode %d", kind.value, event.source,
                 event.arms, event.episode_id)
        return event

    def _set_control(self, source: ControlSource) -> None:
        self.control = source
        self.mux.set_source(source)

    def control_label(self) -> str:
        """For Status: policy, human, estop, hold or idle."""
        if self.mux.current_pose() is None:
            return "idle"
        if self.control == ControlSource.DISARMED:
            return "hold"
        return self.control.value

    def status_message(self) -> str:
        """What the operator must do next, if anything, else the last problem."""
        if self.mux.shadow and self.control not in (ControlSource.ESTOP,
                                                    ControlSource.DISARMED):
            return (f"SHADOW mode: the policy's commands are recorded, not executed; hold "
                    f"{self.go_live_label} to go live. {self.last_problem}").strip()
        if self.control == ControlSource.ESTOP:
            return "E-STOP active: release e-stop (with the e-stop button up) to continue"
        if self.control == ControlSource.DISARMED:
            return "e-stop released: press takeover (human) or handback (policy) to re-arm"
        if self.control == ControlSource.HOLD:
            return "holding the pose: " + self.last_problem
        if not self.recorder_ready:
            return "waiting for the recorder: episode 1 starts once it is up"
        return self.last_problem

    # ---- transitions --------------------------------------------------------------------------
    def _take_over(self, now: float) -> ControllerOutput:
        """Human control from exactly the current commanded pose; its first command is sent
        at once, so the very next command the robot gets is the human's."""
        out = ControllerOutput()
        pose = self.mux.current_pose()
        if pose is None:
            self.problem("takeover_without_pose", "takeover refused: no joint state yet")
            return out
        self._set_control(ControlSource.HUMAN)
        out.interventions.append(self._change(InterventionKind.TAKEOVER))
        command = self.mux.route(self.human.start(pose), Origin.HUMAN, now)
        if command is not None:
            out.commands.append(command)
        return out

    def _hand_back(self, now: float) -> ControllerOutput:
        """Policy control; the current pose is commanded in the same step (a hold), so a
        released deadman never leaves the last human motion running."""
        out = ControllerOutput()
        self._set_control(ControlSource.POLICY)
        out.interventions.append(self._change(InterventionKind.HANDBACK))
        command = self.mux.hold(now)
        if command is not None:
            out.commands.append(command)
        return out

    def _estop(self) -> ControllerOutput:
        self._set_control(ControlSource.ESTOP)
        self.count("estops")
        return ControllerOutput(interventions=[self._change(InterventionKind.ESTOP)])

    def _release_estop(self) -> ControllerOutput:
        self._set_control(ControlSource.DISARMED)
        return ControllerOutput(interventions=[self._change(InterventionKind.RELEASE_ESTOP)])

    def _control_buttons(self, pad: PadState, edges: ButtonEdges, now: float
                         ) -> ControllerOutput:
        """Takeover / handback / e-stop from one debounced message; e-stop wins over all.

        The e-stop is level-triggered: a held e-stop button keeps the robot stopped, and a
        release is only accepted (edge of release_estop) once the e-stop button is up.
        """
        if "estop" in pad.pressed:
            return self._estop() if self.control != ControlSource.ESTOP else ControllerOutput()
        if self.control == ControlSource.ESTOP:
            if "release_estop" in edges.pressed:
                return self._release_estop()
            return ControllerOutput()
        takeover = "takeover" in edges.pressed
        handback = "handback" in edges.pressed
        if self.control in (ControlSource.POLICY, ControlSource.DISARMED):
            if takeover:
                return self._take_over(now)
            if handback and self.control == ControlSource.DISARMED:
                return self._hand_back(now)
            return ControllerOutput()
        # HUMAN or HOLD
        released = "takeover" in edges.released and self.mode == "deadman"
        if handback or released or (takeover and self.mode == "toggle"):
            return self._hand_back(now)
        return ControllerOutput()

    def _episode_buttons(self, edges: ButtonEdges, now: float) -> ControllerOutput:
        out = ControllerOutput()
        success, failure = "success" in edges.pressed, "failure" in edges.pressed
        if success and failure:
            self.problem("ambiguous_outcome", "success and failure pressed together: ignored")
        elif success:
            out.episodes += self.episodes.mark(EpisodeEventKind.SUCCESS, "button", now)
        elif failure:
            out.episodes += self.episodes.mark(EpisodeEventKind.FAILURE, "button", now)
        if "reset" in edges.pressed:
            out.episodes += self.episodes.reset_button(now)
        self._after_episode_events(out.episodes)
        return out

    def _after_episode_events(self, events: Sequence[EpisodeOutput]) -> None:
        """At RESET and START the robot may have been moved (the sim teleports home): limit
        the next command against the measured pose, and restart the human from it."""
        if any(e.kind in (EpisodeEventKind.RESET, EpisodeEventKind.START) for e in events):
            self.mux.resync()
            if self.control == ControlSource.HUMAN and self.mux.measured is not None:
                self.human.start(self.mux.measured)

    # ---- inputs -------------------------------------------------------------------------------
    def on_joint_state(self, positions: np.ndarray) -> bool:
        """The measured pose; False (and counted) when it is not a finite full vector."""
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (self.robot.action_dim,) or not np.all(np.isfinite(q)):
            self.problem("bad_joint_states", f"joint state rejected: shape {q.shape} "
                                              "or non-finite values")
            return False
        self.mux.set_measured(q)
        return True

    def on_joy(self, axes: Sequence[float], buttons: Sequence[int], now: float,
               source: str = "") -> ControllerOutput:
        """One Joy message. A message that does not fit the layout counts as no message."""
        try:
            pad = read_pad(self.layout, axes, buttons)
        except JoyReadError as exc:
            self.problem("bad_joy", str(exc))
            # The e-stop always wins: a pressed e-stop counts even in a message that is
            # otherwise unusable (NaN axes, too few axes).
            index = self.layout.buttons["estop"]
            if index < len(buttons) and buttons[index] and self.control != ControlSource.ESTOP:
                return self._estop()
            return ControllerOutput()
        self.pad_source = source if source not in ("", "joy") else self.default_source
        came_back = self.pad_stale
        self.pad, self.last_joy_time, self.pad_stale = pad, now, False
        out = ControllerOutput()
        if came_back and self.control == ControlSource.HOLD:
            if self.mode == "deadman" and "takeover" not in pad.pressed:
                out.extend(self._hand_back(now))
            else:
                self._resume_human()
        # Edges across a gap are real: joy_node without autorepeat sends only changes, so the
        # first message after a long silence may well be the press that matters.
        edges = self.buttons.update(pad.pressed, now)
        out.extend(self._control_buttons(pad, edges, now))
        out.extend(self._shadow_combo(pad, now))
        if "arm_select" in edges.pressed:
            log.info("arm select: %s", self.human.next_arms())
        out.extend(self._episode_buttons(edges, now))
        return out

    def _shadow_combo(self, pad: PadState, now: float) -> ControllerOutput:
        """The go-live combo, held: shadow -> live or live -> shadow (refused under e-stop)."""
        if not self.go_live.update(pad.pressed, now):
            return ControllerOutput()
        if self.control in (ControlSource.ESTOP, ControlSource.DISARMED):
            self.problem("shadow_switch_refused", "shadow/live switch refused under e-stop")
            return ControllerOutput()
        return self.set_shadow(not self.mux.shadow, now)

    def set_shadow(self, shadow: bool, now: float) -> ControllerOutput:
        """Enter or leave shadow mode. Entering while the policy drives holds the pose, so
        the robot never keeps following the last policy command."""
        out = ControllerOutput(shadow_changes=[shadow])
        if shadow == self.mux.shadow:
            return ControllerOutput()
        self.mux.shadow = shadow
        self.count("shadow_switches")
        log.warning("shadow mode %s", "ON: policy commands are not executed" if shadow
                    else "OFF: the policy is LIVE when it holds control")
        if shadow and self.control == ControlSource.POLICY:
            command = self.mux.hold(now)
            if command is not None:
                out.commands.append(command)
        return out

    def shadow_command(self, positions: Sequence[float]) -> np.ndarray | None:
        """A policy command for the shadow topic (shadow mode only; None when live or bad)."""
        q = np.asarray(positions, dtype=np.float64)
        if not self.mux.shadow or q.shape != (self.robot.action_dim,) \
                or not np.all(np.isfinite(q)):
            return None
        return self.mux.shadow_command(q)

    def _resume_human(self) -> None:
        """The pad is back: human control continues from the held pose (nothing jumps)."""
        pose = self.mux.current_pose()
        self._set_control(ControlSource.HUMAN)
        if pose is not None:
            self.human.start(pose)
        log.info("joystick back: human control resumes from the held pose")

    def request_estop(self, source: str) -> ControllerOutput:
        """An e-stop from outside the pad (a service, a GUI). Releasing needs the pad."""
        if self.control == ControlSource.ESTOP:
            return ControllerOutput()
        self.pad_source = source
        return self._estop()

    def on_policy_command(self, positions: Sequence[float], now: float) -> MuxCommand | None:
        """A policy command: forwarded (clamped) only while the policy holds control."""
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (self.robot.action_dim,) or not np.all(np.isfinite(q)):
            self.problem("bad_policy_commands", f"policy command rejected: shape {q.shape} "
                                                 "or non-finite values")
            return None
        return self.mux.route(q, Origin.POLICY, now)

    def on_human_target(self, goal: np.ndarray, now: float) -> None:
        """An absolute human target (leader arm, scripted operator); NaN = joint not given."""
        g = np.asarray(goal, dtype=np.float64)
        if g.shape != (self.robot.action_dim,) or np.any(np.isinf(g)):
            self.problem("bad_human_targets", f"human target rejected: shape {g.shape}")
            return
        self.goal, self.goal_time = g, now

    def on_detector(self, kind: EpisodeEventKind, reason: str, stamp: float,
                    now: float) -> ControllerOutput:
        events = self.episodes.detector(kind, reason, stamp, now)
        self._after_episode_events(events)
        return ControllerOutput(episodes=list(events))

    def tick(self, now: float) -> ControllerOutput:
        """One control tick: deadman releases, the watchdog, the human command, episode time."""
        dt = 0.0 if self.last_tick is None else min(max(now - self.last_tick, 0.0),
                                                     2.0 * self.mux.period_s)
        self.last_tick = now
        out = ControllerOutput()
        if self.pad is not None and not self.pad_stale:
            edges = self.buttons.poll(now)
            if edges.released:
                out.extend(self._control_buttons(self.pad, edges, now))
            out.extend(self._shadow_combo(self.pad, now))
        else:
            self.go_live.release()
        out.extend(self._watchdog(now))
        if self.control == ControlSource.HUMAN:
            command = self.mux.route(self._human_target(now, dt), Origin.HUMAN, now)
            if command is not None:
                out.commands.append(command)
        elif self.control == ControlSource.HOLD:
            command = self.mux.hold(now)
            if command is not None:
                out.commands.append(command)
        events = self.episodes.tick(now, ready=self.mux.current_pose() is not None
                                    and self.recorder_ready)
        self._after_episode_events(events)
        out.episodes += events
        return out

    def _watchdog(self, now: float) -> ControllerOutput:
        """No Joy for longer than joystick.timeout_s: a human's control becomes a hold."""
        silent = self.last_joy_time is None or now - self.last_joy_time > self.timeout_s
        if not silent:
            return ControllerOutput()
        self.pad_stale = True
        if self.control == ControlSource.HUMAN:
            self._set_control(ControlSource.HOLD)
            self.problem("watchdog_holds", f"no Joy for more than {self.timeout_s:g} s while a "
                                           "human holds control: holding the pose")
            log.error(self.last_problem)
        return ControllerOutput()

    def _human_target(self, now: float, dt: float) -> np.ndarray:
        fresh_goal = (self.goal is not None and self.goal_time is not None
                      and now - self.goal_time <= self.timeout_s)
        if fresh_goal:
            assert self.goal is not None
            return self.human.step_towards(self.goal, dt)
        return self.human.step_sticks(self.pad, dt)

    def all_counters(self) -> dict[str, int]:
        counters = dict(self.counters)
        for origin, n in self.mux.forwarded.items():
            counters[f"forwarded_{origin.value}"] = n
        for origin, n in self.mux.blocked.items():
            counters[f"blocked_{origin.value}"] = n
        counters["clamped_commands"] = self.mux.clamped
        counters["commands_without_pose"] = self.mux.no_pose
        counters["shadowed_policy_commands"] = self.mux.shadowed
        for what, n in self.episodes.ignored.items():
            counters[f"ignored_{what}"] = n
        return counters
