"""`aloe-ros up`: the graph starts from the task YAML, data flows, and it stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from helpers import spin_until, write_task_config
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState

from aloe_ros.config import NodeEntry, load_task_config
from aloe_ros.nodes.common import qos_profile, stamp_to_seconds
from aloe_ros.runner import GraphRunner

AloeRos = [str(Path(sys.executable).with_name("aloe-ros"))]


def stamp_rate(stamps: list[float]) -> float:
    """Messages per second of ROS time, from header stamps (not from arrival times), over the
    second half of the stream: start-up of the other nodes (torch imports) loads the CPU."""
    steady = [s for s in stamps if s >= stamps[0] + (stamps[-1] - stamps[0]) / 2]
    span = steady[-1] - steady[0]
    return (len(steady) - 1) / span if span > 0 else 0.0


def test_up_pack_phone_sim_delivers_joint_states_and_images(ros_context, tmp_path: Path
                                                            ) -> None:  # noqa: ANN001
    config = load_task_config("pack_phone")
    stamps: dict[str, list[float]] = {"joint_states": []}
    shapes: dict[str, tuple[int, int]] = {}
    node = rclpy.create_node("up_listener", context=ros_context)
    node.create_subscription(
        JointState, config.topics.joint_states,
        lambda m: stamps["joint_states"].append(stamp_to_seconds(m.header.stamp)),
        qos_profile(config.qos.command))
    for camera in config.cameras:
        stamps[camera.name] = []

        def on_image(msg: Image, name: str = camera.name) -> None:
            stamps[name].append(stamp_to_seconds(msg.header.stamp))
            shapes[name] = (msg.height, msg.width)

        node.create_subscription(Image, camera.topic, on_image, qos_profile(config.qos.sensor))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    log_path = tmp_path / "up.log"
    config_path = write_task_config(tmp_path)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*AloeRos, "up", str(config_path), "--sim", "--duration", "20", "--record",
             str(tmp_path / "bags")], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            # Collect until the runner exits (its --duration bounds the test).
            # 20 s: the torch nodes take ~10 s to start on 2 cores; rates are read after that.
            spin_until(executor, lambda: process.poll() is not None, timeout_s=120)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
    node.destroy_node()
    output = log_path.read_text(errors="replace")
    assert process.returncode == 0, output
    assert "stopped cleanly" in output
    assert len(stamps["joint_states"]) > 60, output
    # Never faster than configured; slower only by what a starved 2-core host skips (the sim
    # counts those as late_frames_<camera> in its Status). The bands are wide on purpose: CI
    # runs this next to other suites, and rates are not what a unit test can pin down.
    assert 0.5 * config.sim.physics_rate_hz < stamp_rate(stamps["joint_states"]) \
        < 1.1 * config.sim.physics_rate_hz
    for camera in config.cameras:
        assert len(stamps[camera.name]) > 30, (camera.name, output)
        assert 0.5 * camera.fps < stamp_rate(stamps[camera.name]) < 1.1 * camera.fps
        assert shapes[camera.name] == (camera.height, camera.width)


def test_up_rejects_a_bad_config_with_the_key_path(tmp_path: Path) -> None:
    path = write_task_config(tmp_path, overrides={"robot": {"control_rate_hz": "fast"}})
    result = subprocess.run([*AloeRos, "up", str(path), "--sim", "--duration", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "robot.control_rate_hz" in result.stdout


def _runner_with(tmp_path: Path, script: str, respawn: bool) -> GraphRunner:
    """A runner whose one node is a stand-in process running ``script``."""
    config = load_task_config("pack_phone")
    config.nodes = [NodeEntry("flaky", "sim_robot_node", respawn=respawn, respawn_delay_s=0.1)]
    runner = GraphRunner(config, sim=True, record=False)
    runner.nodes[0].command = [sys.executable, "-c", script]
    return runner


def test_runner_reports_a_dead_node_with_a_nonzero_exit(tmp_path: Path) -> None:
    runner = _runner_with(tmp_path, "import sys; sys.exit(3)", respawn=False)
    lines: list[str] = []
    assert runner.run(5.0, lines.append) == 1
    assert any("flaky died (exit code 3); not restarted" in line for line in lines)


def test_runner_respawns_nodes_marked_respawn(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    script = (f"import pathlib, sys, time; p = pathlib.Path({str(marker)!r}); "
              "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); "
              "sys.exit(1) if len(p.read_text()) < 3 else time.sleep(60)")
    runner = _runner_with(tmp_path, script, respawn=True)
    lines: list[str] = []
    code = runner.run(6.0, lines.append)
    assert marker.read_text() == "xxx", lines  # died twice, third start stayed up
    assert sum("restarted" in line for line in lines) == 2
    assert code == 1, "a node that died is reported even when it came back"


def test_runner_starts_the_recorder_first_and_waits_until_it_is_ready() -> None:
    config = load_task_config("pack_phone")
    runner = GraphRunner(config, sim=True, record=True)
    events: list[str] = []
    runner._spawn = lambda node: events.append(f"spawn {node.entry.name}")  # type: ignore[method-assign]
    polls = iter([False, False, True])

    def ready() -> bool:
        events.append("ready?")
        return next(polls, True)

    runner.start(recorder_ready=ready)
    first_other = next(i for i, e in enumerate(events)
                       if e.startswith("spawn ") and e != "spawn logger")
    assert events[0] == "spawn logger"
    assert events[1:first_other].count("ready?") >= 3, events   # waited until ready
    assert sorted(e for e in events if e.startswith("spawn ")) == sorted(
        f"spawn {n.entry.name}" for n in runner.nodes)


def test_a_stop_before_the_run_starts_no_node(tmp_path: Path) -> None:
    """`aloe-ros up` collects signals from its first line; one that came during its imports
    ends the run before any node is spawned, cleanly."""
    runner = _runner_with(tmp_path, "import time; time.sleep(60)", respawn=False)
    spawned: list[str] = []
    runner._spawn = lambda node: spawned.append(node.entry.name)  # type: ignore[method-assign]
    lines: list[str] = []
    assert runner.run(5.0, lines.append, stop_requested=[signal.SIGTERM]) == 0
    assert spawned == [] and any("SIGTERM before starting" in line for line in lines)


def test_nodes_stopped_right_after_they_were_spawned_stop_cleanly() -> None:
    """A stop that reaches a node during Python's start-up, before boot's handler, used to
    raise KeyboardInterrupt in an import (exit 1): every node was reported as died."""
    runner = GraphRunner(load_task_config("pack_phone"), sim=True, record=False)
    runner.start()
    runner.stop()
    assert runner.died() == [], [(n.entry.name, n.failures) for n in runner.nodes]


def test_runner_stops_everything_on_sigterm(tmp_path: Path) -> None:
    """The runner itself as a process: SIGTERM stops it and its nodes."""
    path = write_task_config(tmp_path)
    process = subprocess.Popen([*AloeRos, "up", str(path), "--sim", "--no-record",
                                "--status-period", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline() if process.stdout else ""
        if "started" in line or not line:
            break
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    assert "received SIGTERM" in out
