"""The fast subset of `aloe-ros bench faults`: one kill -9 of the logger and of the learner in
a running sim graph (recording), then the bags. The full suite is `aloe-ros bench faults`."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TEST_CONFIG_DEFAULTS

from aloe_ros.reliability.suite import SuiteOptions, run_suite


@pytest.mark.slow
def test_killing_the_logger_and_the_learner(tmp_path: Path) -> None:
    lines: list[str] = []
    options = SuiteOptions(out_dir=tmp_path, trials=1, nodes=["logger", "learner"],
                           estop_trials=0, bad_inputs=False, offline=False,
                           camera_size=(64, 48), observe_s=2.5, wait_range_s=(0.5, 1.5),
                           startup_timeout_s=150.0, back_timeout_s=150.0,
                           overrides=TEST_CONFIG_DEFAULTS)
    result = run_suite(options, lines.append)
    log = "\n".join(lines) + "\n" + (tmp_path / "nodes.log").read_text(errors="replace")[-3000:]
    assert not result.not_started, log
    by_node = {t.node: t for t in result.trials}
    assert set(by_node) == {"logger", "learner"}, log

    logger = by_node["logger"]
    assert logger.came_back and logger.back_by == "runner", log
    assert logger.others_running and logger.safe, (logger, log)
    assert logger.bag_readable, (logger, log)
    # Everything older than a flush period (0.5 s) was on disk when the recorder died.
    assert logger.data_lost_s is not None and logger.data_lost_s <= 1.0, (logger, log)

    learner = by_node["learner"]
    assert learner.came_back and learner.back_by == "runner", log
    assert learner.others_running and learner.safe, (learner, log)
    assert learner.policy_kept, (learner.safety_detail, log)   # the robot kept its policy

    # Two logger processes, two bags, both readable to the end (one repaired after the kill).
    assert len(result.bags) == 2 and all(b.readable for b in result.bags), result.bags
    assert result.commands.safe, result.commands
