"""E-stop latency on the live graph: from the button edge (a Joy on topics.joy) to the last
command on topics.command, in control ticks, over many presses.

Each trial: take over with the pad (human commands then flow every control tick, whatever
the policy does), stream the pad at 50 Hz with a stick slightly deflected, press e-stop, hold
it, release it, press release-e-stop; the robot is then disarmed for the next trial. After the
last trial the policy is re-armed with handback. Latency = (stamp of the last command stamped
at or after the edge - the edge's stamp) / control period: 0 means no command followed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sensor_msgs.msg import Joy

from aloe_ros.msg import InterventionEvent
from aloe_ros.reliability.checks import estop_latency
from aloe_ros.reliability.probe import INJECTED_FRAME
from aloe_ros.reliability.session import GraphSession
from aloe_ros.teleop.layout import PadLayout, resolve_layout

__all__ = ["EstopFigures", "run_estop_trials"]

PAD_PERIOD_S = 0.02


@dataclass
class EstopFigures:
    trials: int = 0
    measured: int = 0               # trials with human commands flowing before the press
    latencies_ticks: list[float] = field(default_factory=list)
    commands_after_edge: list[int] = field(default_factory=list)
    # Joy stamp -> ESTOP InterventionEvent stamp (the mux's reaction, DDS included), seconds.
    reaction_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def within_one_tick(self) -> int:
        return sum(1 for t in self.latencies_ticks if t <= 1.0)


class Pad:
    """Publishes Joy messages the way joy_node does, for the task's pad layout."""

    def __init__(self, session: GraphSession) -> None:
        joystick = session.config.joystick
        self.layout: PadLayout = resolve_layout(joystick.preset, joystick.buttons,
                                                joystick.axes, joystick.joint_axes)
        self.session = session
        self.topic = session.config.topics.joy
        self.n_buttons = max(self.layout.min_buttons(), 11)
        self.n_axes = max(self.layout.min_axes(), 8)

    def message(self, pressed: tuple[str, ...] = (), stick: float = 0.0) -> Joy:
        msg = Joy()
        axes = [0.0] * self.n_axes
        for trigger in ("trigger_left", "trigger_right"):
            if trigger in self.layout.axes:
                axes[self.layout.axes[trigger]] = self.layout.trigger_released
        if "left_x" in self.layout.axes:
            axes[self.layout.axes["left_x"]] = stick
        buttons = [0] * self.n_buttons
        for name in pressed:
            buttons[self.layout.buttons[name]] = 1
        msg.axes, msg.buttons = axes, buttons
        msg.header.frame_id = INJECTED_FRAME
        return msg

    def send(self, pressed: tuple[str, ...] = (), stick: float = 0.0) -> float:
        """Publish one Joy stamped now; return its stamp (wall-clock seconds)."""
        msg = self.message(pressed, stick)
        now_ns = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        self.session.probe.publish(self.topic, msg)
        return now_ns / 1e9

    def hold(self, seconds: float, pressed: tuple[str, ...] = (), stick: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send(pressed, stick)
            time.sleep(PAD_PERIOD_S)
        self.session.poll()


def run_estop_trials(session: GraphSession, trials: int, report: Callable[[str], None]
                     ) -> EstopFigures:
    pad = Pad(session)
    period = 1.0 / session.config.robot.control_rate_hz
    figures = EstopFigures()
    if not session.probe.wait_for_subscribers(pad.topic, Joy, 10.0):
        figures.problems.append(f"nobody subscribes {pad.topic}")
        return figures
    pad.hold(0.3)
    for trial in range(trials):
        figures.trials += 1
        stick = 0.3 if trial % 2 == 0 else -0.3
        pad.hold(0.1, ("takeover",), stick)
        pad.hold(0.6, (), stick)
        before_ns = time.time_ns()
        flowing = len(session.probe.commands(before_ns - 300_000_000, before_ns))
        edge_s = pad.send(("estop",), stick)
        pad.hold(0.3, ("estop",), stick)
        pad.hold(0.3)
        commands = session.probe.commands(int((edge_s - 0.5) * 1e9))
        count, ticks = estop_latency(commands, edge_s, period)
        stops = [i for i in session.probe.interventions(int((edge_s - 0.1) * 1e9))
                 if i[2] == InterventionEvent.ESTOP]
        pad.hold(0.1, ("release_estop",))
        pad.hold(0.3)
        if flowing == 0:
            figures.problems.append(f"trial {trial + 1}: no human commands before the press")
            continue
        figures.measured += 1
        figures.latencies_ticks.append(ticks)
        figures.commands_after_edge.append(count)
        reaction = f"{1000 * (stops[0][1] - edge_s):.0f} ms" if stops else "no event"
        if stops:
            figures.reaction_s.append(stops[0][1] - edge_s)
        report(f"  e-stop {trial + 1}/{trials}: {count} command(s) after the edge, last "
               f"{ticks:.2f} ticks after it; ESTOP event after {reaction}")
    # Back to the policy: re-arm with handback (from disarmed).
    pad.hold(0.1, ("handback",))
    pad.hold(0.3)
    return figures
