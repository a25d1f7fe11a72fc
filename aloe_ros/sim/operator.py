"""The simulated operator: a person at the joystick, played by the scripted expert (no ROS).

It watches the episode through privileged sim state, and when the policy is about to fail it
does what a human operator does: after a reaction delay it presses *takeover*, drives the robot
(here: the reactive scripted expert, sent as an absolute human target like a leader arm), and
presses *handback* once the stage it helped with is done. When the episode ends it presses
*success* or *failure*. Everything goes through the same path as a real pad (Joy -> teleop_node
-> mux), so the data it produces is labelled exactly like a human's.

"About to fail" means one of:

* danger: a held object the task cares about is above the safe release height and the
  gripper is opening (it is about to be dropped);
* stall: the task's progress stage has not advanced for ``stall_s`` seconds;
* late: more than ``late_fraction`` of the episode timeout has passed.

It hands back once the stage it took over for is through (at least ``assist_s`` after taking
over), but not while the phone is in a gripper. If, driving, it makes no progress for
``give_up_s`` either, it presses *failure* (the episode ends) instead of holding the pad idle.

What it watches and who drives depend on the sim backend (an "operator world"): the built-in
kinematic scenes use a mirror of the scene and the reactive scripted expert; the MuJoCo ALOHA
scenes a camera-less copy of the model and the staged ALOHA expert, with gym-aloha's task
reward as the progress stage (see :class:`AlohaWorld`).

Each trigger leads to a takeover with probability ``intervention_rate``; a declined trigger is
not retried until progress changes or another ``stall_s`` passes.

An imperfect operator (``fumble_rate`` > 0): a takeover may start with ``fumble_s`` of driving
the arm joints towards a random offset (up to ``fumble_amplitude`` rad each, grippers held
where they are) before the expert drives, as a person grabbing the pad or leader arm often
moves the wrong way first. Those steps are recorded as the human's, like any takeover.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aloe_ros.config import SimOperatorConfig, TaskFile
from aloe_ros.sim.backends import make_expert, make_robot
from aloe_ros.sim.scenes import GRIPPER_CLOSED, SAFE_DROP_HEIGHT

__all__ = ["OperatorDecision", "SimulatedOperator", "task_progress", "task_stage"]

log = logging.getLogger(__name__)

# After a takeover / handback press, wait this long for the control change before pressing again.
CONTROL_SETTLE_S = 1.0


def task_progress(objects: dict[str, Any], scene: str) -> int:
    """A monotone stage index of the task from privileged object state (higher = further)."""
    if scene == "pack_phone":
        lid, phone, box = objects["lid"], objects["phone"], objects["box"]
        lid_xy, box_xy = np.array(lid["position"][:2]), np.array(box["position"][:2])
        lid_on_box = (lid["held_by"] is None and abs(lid_xy[0] - box_xy[0]) <= 0.08
                      and abs(lid_xy[1] - box_xy[1]) <= 0.11 and lid["position"][2] > 0.03)
        if lid_on_box:
            return 0
        if lid["held_by"] is not None:
            return 1
        return 3 if phone["held_by"] is not None else 2
    if scene == "pick_place":
        return 1 if objects["cube"]["held_by"] is not None else 0
    if scene == "fold_laundry":
        held = sum(objects[f"near_{arm}"]["held_by"] is not None for arm in ("left", "right"))
        placed = sum(
            np.hypot(*(np.array(objects[f"near_{arm}"]["position"][:2])
                       - np.array(objects[f"far_{arm}"]["position"][:2]))) < 0.04
            for arm in ("left", "right"))
        return held + 2 * placed
    raise ValueError(f"no progress measure for scene {scene!r}")


def about_to_drop(state: dict[str, Any]) -> bool:
    """A held phone high above the table while its gripper opens."""
    phone = state["objects"].get("phone")
    if phone is None or phone["held_by"] is None:
        return False
    gripper = state["grippers"][phone["held_by"]]
    return (phone["position"][2] > SAFE_DROP_HEIGHT - 0.005
            and gripper["opening"] > GRIPPER_CLOSED + 0.02)


def carrying_fragile(state: dict[str, Any]) -> bool:
    """The phone is in a gripper: handing it to a failing policy can drop it from any height
    it will have reached by the time the policy acts."""
    phone = state["objects"].get("phone")
    return phone is not None and phone["held_by"] is not None


def task_stage(state: dict[str, Any]) -> int:
    """The progress stage of a privileged state (higher = further): task_progress on the
    built-in scenes, gym-aloha's task reward (0..4 contact stages) on the MuJoCo ones."""
    if state.get("backend") == "aloha_mujoco":
        return int(state["reward"])
    return task_progress(state["objects"], state["scene"])


class _MirrorWorld:
    """A render-free copy of the task's robot, synced from the published state, and the
    backend's scripted expert driving it (aloe_ros/sim/backends.py)."""

    def __init__(self, config: TaskFile, rng: np.random.Generator) -> None:
        cameras: dict[str, tuple[int, int]] = {}  # the mirror never renders
        self.mirror = make_robot(config.robot, config.sim, cameras, config.task.episode_timeout_s)
        self.expert = make_expert(self.mirror, config.sim, rng)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, dt: float) -> np.ndarray:
        return self.expert.act(dt)


class KinematicWorld(_MirrorWorld):
    """The built-in sim as the operator sees it: a mirror of the robot and scene, driven by the
    reactive scripted expert."""

    def sync(self, state: dict[str, Any], positions: np.ndarray) -> None:
        self.mirror.positions = positions.astype(np.float64).copy()
        self.mirror.target = self.mirror.positions.copy()
        for name, obj in state["objects"].items():
            mirrored = self.mirror.scene.objects[name]
            mirrored.position = np.asarray(obj["position"], dtype=np.float64)
            mirrored.held_by = obj["held_by"]

    def begin_assist(self) -> None:
        """The expert reacts to the state every tick: nothing to re-plan at a takeover."""

    def about_to_drop(self, state: dict[str, Any]) -> bool:
        return about_to_drop(state)

    def carrying(self, state: dict[str, Any]) -> bool:
        return carrying_fragile(state)


class AlohaWorld(_MirrorWorld):
    """The MuJoCo ALOHA scenes as the operator sees them: a camera-less copy of the model put
    in the published state, driven by the staged ALOHA expert (aloha_expert.py).

    Progress is gym-aloha's task reward (0..4 contact stages). The expert runs its stage list,
    so a takeover re-plans from stage one where the objects are now (its stages skip what is
    already done: goals come from the current poses)."""

    def sync(self, state: dict[str, Any], positions: np.ndarray) -> None:
        self.mirror.mirror(positions, state["objects"])  # type: ignore[attr-defined]

    def begin_assist(self) -> None:
        self.expert.reset()

    def about_to_drop(self, state: dict[str, Any]) -> bool:
        """Not detected from contacts: a drop shows as lost progress, then a stall."""
        return False

    def carrying(self, state: dict[str, Any]) -> bool:
        """Lifted but not yet handed over / inserted (reward 2-3): keep it to the end."""
        return 2 <= int(state["reward"]) < 4


OperatorWorld = KinematicWorld | AlohaWorld


def operator_world(config: TaskFile, rng: np.random.Generator) -> OperatorWorld:
    """The mirror and expert of the task's sim backend."""
    if config.sim.backend == "aloha_mujoco":
        return AlohaWorld(config, rng)
    return KinematicWorld(config, rng)


@dataclass
class OperatorDecision:
    """What the operator does this tick: buttons to press and, while driving, a joint target."""

    press: list[str] = field(default_factory=list)
    target: np.ndarray | None = None
    reason: str = ""


class SimulatedOperator:
    """Decides takeovers and outcome marks; drives the expert while holding control."""

    def __init__(self, config: TaskFile, settings: SimOperatorConfig,
                 rng: np.random.Generator | None = None) -> None:
        self.settings = settings
        self.timeout_s = config.task.episode_timeout_s
        robot = config.robot
        self.arm_joints = np.array([name not in robot.gripper_joints
                                    for name in robot.joint_names], dtype=np.float64)
        self.position_lower = np.asarray(robot.position_lower, dtype=np.float64)
        self.position_upper = np.asarray(robot.position_upper, dtype=np.float64)
        self.rng = rng or np.random.default_rng(settings.seed)
        self.world = operator_world(config, self.rng)
        self.reset()

    def reset(self) -> None:
        """A new episode: forget progress, triggers and pending presses."""
        self.world.reset()
        self.driving = False
        self.assisting = False   # the expert has re-planned for the current takeover
        self.pending: tuple[float, str, str] | None = None   # (due time, button, reason)
        self.progress = -1
        self.progress_time = 0.0
        self.declined_until_progress = -1
        self.takeover_progress = -1
        self.takeover_time = 0.0
        self.marked = False
        self.episode_seen: int | None = None
        self.takeovers = 0
        self.last_control_press = -CONTROL_SETTLE_S
        self.fumble_until = 0.0
        self.fumble_offset: np.ndarray | None = None
        self.fumble_start: np.ndarray | None = None
        self.fumbles = 0

    def watch_from(self, state: dict[str, Any], stage_since_s: float) -> None:
        """Start watching mid-episode with the policy in control, as if it had watched since
        the episode began: the stage of ``state`` was reached at episode time ``stage_since_s``
        (the stall clock runs from there). Ground-truth rollouts restore a logged state and
        need the takeover the operator would make from it (aloe_ros/benchmarks/value_quality)."""
        self.reset()
        self.episode_seen = state.get("episode")
        self.progress = task_stage(state)
        self.progress_time = float(stage_since_s)

    # ---- decisions ----------------------------------------------------------------------
    def step(self, state: dict[str, Any], positions: np.ndarray, now: float, *,
             human_in_control: bool, episode_running: bool, dt: float) -> OperatorDecision:
        """One control tick. ``state`` is the sim's privileged state (SimRobot.privileged_state)."""
        decision = OperatorDecision()
        if state.get("episode") != self.episode_seen:
            self.reset()
            self.episode_seen = state.get("episode")
        pressed = self.pending is not None and now >= self.pending[0]
        if pressed and self.pending is not None:
            decision.press.append(self.pending[1])
            decision.reason = self.pending[2]
            if self.pending[1] == "takeover":
                self.driving, self.takeovers = True, self.takeovers + 1
                self.takeover_progress, self.takeover_time = self.progress, now
                self._maybe_fumble(now)
            elif self.pending[1] == "handback":
                self.driving = False
            if self.pending[1] in ("takeover", "handback"):
                self.last_control_press = now
            self.pending = None
        if not episode_running:
            return decision
        outcome = state.get("outcome")
        if outcome is not None:
            if not self.marked and self.settings.mark_outcomes and self.pending is None:
                self.marked = True
                button = "success" if outcome["success"] else "failure"
                self.pending = (now + self.settings.reaction_delay_s, button, outcome["reason"])
            return decision
        # Give teleop_node time to act on a control press before pressing again.
        settling = now - self.last_control_press < CONTROL_SETTLE_S
        if (human_in_control and not self.driving and self.pending is None and not pressed
                and not settling):
            # Still holding control from the last episode: give the new one to the policy.
            self.pending = (now + self.settings.reaction_delay_s, "handback", "new episode")
            return decision
        progress = task_stage(state)
        if progress != self.progress:
            self.progress, self.progress_time = progress, now
        elapsed = float(state.get("time_s", 0.0))
        if human_in_control:
            if now < self.fumble_until:
                decision.target = self._fumble_target(positions)
                return decision
            self.world.sync(state, positions)
            if not self.assisting:
                self.world.begin_assist()
                self.assisting = True
            decision.target = self.world.act(dt)
            # Free to press a control button: driving, nothing pending, nothing pressed now.
            can_press = self.driving and self.pending is None and not pressed
            if can_press and self._gives_up(now):
                # The expert is stuck as well (a state its script has no way out of). A person
                # marks the episode failed and resets; holding the pad idle until the timeout
                # would label seconds of standing still as the human's action.
                self.marked = True
                self.pending = (now + self.settings.reaction_delay_s, "failure",
                                f"operator gave up: no progress for {self.settings.give_up_s:g} s"
                                " while driving")
                return decision
            # Hand back once the stage is through, but never with the phone in a gripper:
            # giving it back to a failing policy mid-carry is how phones get dropped.
            helped = self.progress > self.takeover_progress and not self.world.carrying(state)
            if can_press and helped and now - self.takeover_time >= self.settings.assist_s:
                self.pending = (now + self.settings.reaction_delay_s, "handback", "stage done")
            return decision
        self.assisting = False
        if self.pending is not None or self.driving:
            return decision
        reason = self._trigger(state, now, elapsed)
        if reason and progress != self.declined_until_progress:
            if self.rng.random() < self.settings.intervention_rate:
                self.pending = (now + self.settings.reaction_delay_s, "takeover", reason)
            else:
                self.declined_until_progress = progress
                self.progress_time = now  # a declined stall waits another stall_s
        return decision

    def _maybe_fumble(self, now: float) -> None:
        """At a takeover press: with probability fumble_rate, start this takeover off course.
        The offset is drawn here, the pose it is added to at the first driving tick."""
        self.fumble_until, self.fumble_start = now, None
        rate = self.settings.fumble_rate
        if rate <= 0 or self.rng.random() >= rate:  # rate 0 draws nothing: same stream as before
            return
        direction = self.rng.uniform(-1.0, 1.0, size=self.arm_joints.shape)
        self.fumble_offset = self.settings.fumble_amplitude * direction * self.arm_joints
        self.fumble_until = now + self.settings.fumble_s
        self.fumbles += 1

    def _fumble_target(self, positions: np.ndarray) -> np.ndarray:
        """The off-course target: the pose at the takeover plus the drawn offset, in limits.
        The expert re-plans from wherever this leaves the arms (``assisting`` is reset)."""
        if self.fumble_start is None:
            self.fumble_start = np.asarray(positions, dtype=np.float64).copy()
        self.assisting = False
        assert self.fumble_offset is not None
        return np.clip(self.fumble_start + self.fumble_offset, self.position_lower,
                       self.position_upper)

    def _gives_up(self, now: float) -> bool:
        """No progress for give_up_s since the later of the takeover and the last progress."""
        give_up_s = self.settings.give_up_s
        return (give_up_s > 0 and not self.marked
                and now - max(self.progress_time, self.takeover_time) >= give_up_s)

    def _trigger(self, state: dict[str, Any], now: float, elapsed: float) -> str:
        if self.world.about_to_drop(state):
            return "about to drop the phone"
        if now - self.progress_time >= self.settings.stall_s:
            return f"no progress for {self.settings.stall_s:g} s"
        if elapsed >= self.settings.late_fraction * self.timeout_s:
            return "running out of time"
        return ""
