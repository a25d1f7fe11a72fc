"""The simulated operator (ROS-free): takes over a failing policy, hands back, marks outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import stuck_expert

from aloe_ros.config import SimOperatorConfig, load_task_config
from aloe_ros.sim.operator import SimulatedOperator, about_to_drop, task_progress
from aloe_ros.sim.robot import SimRobot

DT = 1 / 30


def run_episode(policy, settings: SimOperatorConfig, task: str = "pack_phone",  # noqa: ANN001
                max_s: float = 60.0) -> dict:
    """Drive a real SimRobot with ``policy`` under the operator, emulating teleop's mux."""
    config = load_task_config(task)
    config.task.episode_timeout_s = max_s
    robot = SimRobot(config.robot, config.sim, {}, max_s)
    operator = SimulatedOperator(config, settings, np.random.default_rng(0))
    human, presses, human_steps, now = False, [], 0, 0.0
    targets: list[tuple[float, np.ndarray]] = []   # (time, target) of every human step
    while robot.episode_time_s < max_s + 2:
        now += DT
        decision = operator.step(robot.privileged_state(), robot.positions, now,
                                 human_in_control=human, episode_running=True, dt=DT)
        for button in decision.press:
            presses.append((round(now, 2), button))
            human = {"takeover": True, "handback": False}.get(button, human)
        if button_pressed(presses, ("success", "failure")):
            break
        if human and decision.target is not None:
            targets.append((now, decision.target.copy()))
            robot.command(decision.target)
            human_steps += 1
        elif not human:
            robot.command(policy(robot))
        robot.step(DT / 2)
        robot.step(DT / 2)
    return {"presses": [b for _, b in presses], "outcome": robot.outcome,
            "human_steps": human_steps, "robot": robot, "targets": targets,
            "operator": operator}


def button_pressed(presses: list, buttons: tuple[str, ...]) -> bool:
    return any(b in buttons for _, b in presses)


def frozen_policy(robot: SimRobot) -> np.ndarray:
    return robot.home.copy()


def test_operator_rescues_a_policy_that_does_nothing() -> None:
    result = run_episode(frozen_policy, SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2))
    presses = result["presses"]
    assert result["outcome"] is not None and result["outcome"].success, presses
    assert presses.count("takeover") >= 1
    assert presses.count("handback") >= 1, "it hands back once a stage is done"
    assert presses[-1] == "success", "and marks the outcome like a person"
    # Every handback follows a takeover: the button sequence alternates.
    control = [b for b in presses if b in ("takeover", "handback")]
    assert all(a != b for a, b in zip(control, control[1:]))


def test_operator_that_never_intervenes_lets_the_episode_fail() -> None:
    result = run_episode(frozen_policy, SimOperatorConfig(intervention_rate=0.0, stall_s=1.0),
                         max_s=6.0)
    assert "takeover" not in result["presses"]
    assert result["outcome"] is not None and not result["outcome"].success
    assert result["presses"][-1] == "failure"
    assert result["human_steps"] == 0


def test_operator_leaves_a_good_policy_alone() -> None:
    from aloe_ros.sim.expert import ScriptedExpert

    experts: dict[int, ScriptedExpert] = {}

    def expert_policy(robot: SimRobot) -> np.ndarray:
        expert = experts.setdefault(id(robot), ScriptedExpert(robot, np.random.default_rng(1)))
        return expert.act(DT)

    result = run_episode(expert_policy, SimOperatorConfig(stall_s=3.0))
    assert result["presses"] == ["success"]


def test_danger_is_seen_before_the_phone_falls() -> None:
    state = {"objects": {"phone": {"position": [0.1, 0.3, 0.2], "held_by": "right"}},
             "grippers": {"right": {"opening": 0.5}}}
    assert about_to_drop(state)
    state["grippers"]["right"]["opening"] = 0.1
    assert not about_to_drop(state)


@pytest.mark.parametrize("task", ["pack_phone", "pick_place", "fold_laundry"])
def test_progress_starts_at_zero_for_every_task(task: str) -> None:
    config = load_task_config(task)
    robot = SimRobot(config.robot, config.sim, {}, 10.0)
    assert task_progress(robot.privileged_state()["objects"], task) == 0  # type: ignore[arg-type]


def test_operator_hands_a_new_episode_back_to_the_policy() -> None:
    config = load_task_config("pack_phone")
    robot = SimRobot(config.robot, config.sim, {}, 40.0)
    operator = SimulatedOperator(config, SimOperatorConfig(reaction_delay_s=0.1))
    presses: list[str] = []
    for tick in range(10):  # human still holds control from the previous episode
        decision = operator.step(robot.privileged_state(), robot.positions, tick * DT,
                                 human_in_control=True, episode_running=True, dt=DT)
        presses += decision.press
    assert presses == ["handback"]


def drive_stuck(settings: SimOperatorConfig, seconds: float) -> list[tuple[float, str, str]]:
    """A frozen policy, then an operator whose expert is stuck; the presses with their times."""
    config = load_task_config("pack_phone")
    robot = SimRobot(config.robot, config.sim, {}, 60.0)
    operator = SimulatedOperator(config, settings, np.random.default_rng(0))
    stuck_expert(operator)
    human, presses, now = False, [], 0.0
    while now < seconds:
        now += DT
        decision = operator.step(robot.privileged_state(), robot.positions, now,
                                 human_in_control=human, episode_running=True, dt=DT)
        for button in decision.press:
            presses.append((now, button, decision.reason))
            human = {"takeover": True, "handback": False}.get(button, human)
        robot.command(decision.target if human and decision.target is not None
                      else robot.home.copy())
        robot.step(DT)
    return presses


def test_operator_gives_up_when_its_own_driving_makes_no_progress() -> None:
    settings = SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2, give_up_s=3.0)
    presses = drive_stuck(settings, seconds=10.0)
    buttons = [b for _, b, _ in presses]
    assert buttons == ["takeover", "failure"], presses
    (took_over, _, _), (failed, _, reason) = presses
    assert "gave up" in reason and "3 s" in reason
    # counted from the takeover, not from the stall that caused it
    assert failed - took_over == pytest.approx(3.0 + 0.2, abs=2 * DT)


def test_operator_with_give_up_off_holds_control_to_the_end() -> None:
    settings = SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2, give_up_s=0.0)
    assert [b for _, b, _ in drive_stuck(settings, seconds=10.0)] == ["takeover"]


def test_a_fumbling_operator_first_drives_the_arms_off_course_then_rescues() -> None:
    settings = SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2, fumble_rate=1.0,
                                 fumble_s=0.5, fumble_amplitude=0.3)
    result = run_episode(frozen_policy, settings)
    assert result["outcome"] is not None and result["outcome"].success, result["presses"]
    operator, targets = result["operator"], result["targets"]
    assert operator.fumbles == result["presses"].count("takeover") >= 1
    config = load_task_config("pack_phone")
    gripper = np.array([n in config.robot.gripper_joints for n in config.robot.joint_names])
    start_time, first = targets[0]
    # The press tick starts the fumble; the first human step is the tick after it.
    fumbling = [t for now, t in targets if now - start_time < 0.5 - DT - 1e-6]
    assert len(fumbling) >= 10
    # One fixed off-course target: the arm joints moved by the drawn offset, grippers held.
    assert all(np.array_equal(t, first) for t in fumbling)
    home = frozen_policy(result["robot"])
    assert np.allclose(first[gripper], home[gripper])
    moved = np.abs(first - home)
    assert moved[~gripper].max() > 0.05 and moved[~gripper].max() <= 0.3 + 1e-9
    # Then the expert drives: its targets differ from the fumble's.
    after = [t for now, t in targets if now - start_time > 0.5 + DT]
    assert after and not np.array_equal(after[0], first)


def test_an_operator_that_never_fumbles_draws_the_same_episode_as_before(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """fumble_rate 0 draws nothing from the operator's generator: runs stay reproducible."""
    off = run_episode(frozen_policy, SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2,
                                                       fumble_rate=0.0, fumble_s=3.0))
    # The operator as it was before fumbles existed: the takeover press does nothing more.
    monkeypatch.setattr(SimulatedOperator, "_maybe_fumble", lambda self, now: None)
    plain = run_episode(frozen_policy, SimOperatorConfig(stall_s=1.0, reaction_delay_s=0.2))
    assert off["operator"].fumbles == 0
    assert (off["operator"].rng.bit_generator.state
            == plain["operator"].rng.bit_generator.state)
    assert plain["presses"] == off["presses"]
    assert len(plain["targets"]) == len(off["targets"])
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(plain["targets"],
                                                               off["targets"]))
