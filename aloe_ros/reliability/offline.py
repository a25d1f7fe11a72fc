"""Bad inputs that need no running graph: malformed YAML, a truncated bag, a clock that jumps.

Each returns a CaseResult (case, expected, observed, passed) for the suite's table; the same
behaviours have their own unit tests (test_config, test_bag_errors, test_reliability_*).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from aloe_ros.config import ConfigError, TaskFile, load_task_config
from aloe_ros.reliability.bad_inputs import CaseResult

__all__ = ["clock_jump_case", "malformed_yaml_case", "offline_cases", "truncated_bag_case"]


def malformed_yaml_case(folder: Path) -> CaseResult:
    """A YAML syntax error stops start-up with the file and line; a bad value with its key."""
    expected = "start-up refused; error names the file and line / the key path"
    broken = folder / "broken.yaml"
    broken.write_text("task:\n  name: x\n  text: [unclosed\nrobot: {}\n")
    bad_value = folder / "bad_value.yaml"
    source = Path(load_task_config("pack_phone").source_path).read_text()
    bad_value.write_text(source.replace("control_rate_hz: 30.0", "control_rate_hz: fast"))
    observed, passed = [], True
    for path, needle in ((broken, "line"), (bad_value, "robot.control_rate_hz")):
        try:
            load_task_config(path)
            observed.append(f"{path.name}: loaded!")
            passed = False
        except ConfigError as exc:
            text = str(exc)
            ok = path.name in text and needle in text
            passed = passed and ok
            observed.append(f"{path.name}: {text.splitlines()[0][-70:]}")
    return CaseResult("malformed YAML / bad value", expected, "; ".join(observed), passed)


def truncated_bag_case(bag: Path | None, folder: Path) -> CaseResult:
    """A bag cut off mid-file: reading it names the file; repair keeps its complete records."""
    from aloe_ros.io.bag_reader import Bag, BagError
    from aloe_ros.io.bag_repair import mcap_file, repair_bag

    expected = "read error names the bag; `bag repair` recovers the complete records"
    if bag is None:
        return CaseResult("truncated bag", expected, "no finished bag to truncate", False)
    target = folder / "truncated_bag"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    source = mcap_file(bag)
    size = source.stat().st_size
    keep = min(size // 2, 64 * 2**20)
    with open(source, "rb") as src, open(target / source.name, "wb") as dst:
        dst.write(src.read(keep))
    shutil.copy(bag / "metadata.yaml", target / "metadata.yaml")
    observed = []
    named = False
    try:
        with Bag(target) as reader:
            sum(1 for _ in reader.messages())
        observed.append("read without error!")
    except BagError as exc:
        named = str(target) in str(exc)
        observed.append("error names the bag: " + str(exc).replace(str(target), "<bag>")[:70])
    (target / "metadata.yaml").unlink()
    try:
        report = repair_bag(target)
        with Bag(target) as reader:
            count = sum(1 for _ in reader.messages())
        observed.append(f"repaired: {count} messages readable ({report.messages} kept)")
        repaired = count > 0
    except Exception as exc:  # noqa: BLE001 - reported in the table
        observed.append(f"repair failed: {exc}")
        repaired = False
    shutil.rmtree(target, ignore_errors=True)
    return CaseResult(f"truncated bag (first {keep / 2**20:.0f} of {size / 2**20:.0f} MiB)",
                      expected, "; ".join(observed), named and repaired)


def clock_jump_case(config: TaskFile) -> CaseResult:
    """Sim time that jumps back (a bag replay restarted) or far forward (a paused replay):
    the mux never moves more than one tick's worth, and e-stop still wins."""
    from aloe_ros.teleop.controller import TeleopController

    expected = "no step above one tick of full speed; nothing crashes"
    robot = config.robot
    controller = TeleopController(config, sim=True)
    home = np.asarray(robot.home_position, dtype=np.float64)
    controller.on_joint_state(home)
    step_limit = np.asarray(robot.velocity_limits) / robot.control_rate_hz
    rng = np.random.default_rng(0)
    times = [100.0 + i / robot.control_rate_hz for i in range(30)]
    times += [5.0, 5.0, 4.9]                                 # back in time, repeated, back
    times += [1e6 + i / robot.control_rate_hz for i in range(30)]   # a jump far forward
    previous = None
    worst = 0.0
    forwarded = 0
    for now in times:
        # A far jump forward times the episode out: RESET / START resync the mux to the
        # measured pose, which is where this robot (tracking perfectly) stands.
        controller.tick(now)
        target = home + rng.normal(0.0, 1.0, home.shape)
        command = controller.on_policy_command(target.tolist(), now)
        if command is None:
            continue
        forwarded += 1
        if previous is not None:
            worst = max(worst, float(np.max(np.abs(command.positions - previous) / step_limit)))
        previous = command.positions
        controller.on_joint_state(previous)
    passed = forwarded > 0 and worst <= 1.0 + 1e-9
    return CaseResult("clock jumps back / far forward (sim time)", expected,
                      f"{forwarded} commands forwarded, worst step {worst:.2f} of the limit",
                      passed)


def offline_cases(config: TaskFile, folder: Path, bag: Path | None) -> list[CaseResult]:
    folder.mkdir(parents=True, exist_ok=True)
    return [malformed_yaml_case(folder), truncated_bag_case(bag, folder),
            clock_jump_case(config)]
