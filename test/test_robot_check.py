"""aloe-ros check: findings from synthetic graph snapshots, and the real command against the sim.

The sim graph runs as `aloe-ros up <task> --sim` in a subprocess; the check listens to it once
with the task's own config (all clear) and once with a deliberately wrong config (a renamed
joint, a missing camera, a slow topic, an output nobody listens to), and must report each
problem. (The policy comparison is the inference node's start-up check, tested there.) Rates
are judged by the check itself; no test asserts on time.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import running_process, write_task_config

from aloe_ros.bringup_check import (
    CameraFrame,
    GraphSnapshot,
    Level,
    TopicSample,
    evaluate,
    exit_code,
    format_table,
)
from aloe_ros.config import load_task_config

SMALL_CAMERAS = [{"name": n, "source": "sim", "width": 64, "height": 48, "fps": 10.0}
                 for n in ("top", "left_wrist", "right_wrist")]


# ---- findings from snapshots --------------------------------------------------------------------
def healthy_snapshot(config) -> GraphSnapshot:
    topics = {config.topics.joint_states: TopicSample(config.topics.joint_states, 120, 60.0,
                                                      ["sim_robot"], ["teleop"]),
              config.topics.command: TopicSample(config.topics.command, 0, None, ["teleop"],
                                                 ["sim_robot", "trajectory_logger"])}
    cameras = {}
    for camera in config.cameras:
        topics[camera.topic] = TopicSample(camera.topic, 60, camera.fps, ["sim_robot"], [],
                                           ["sensor_msgs/msg/Image"])
        cameras[camera.name] = CameraFrame(camera.height, camera.width, "rgb8")
    return GraphSnapshot(topics, 2.0, list(config.robot.joint_names),
                         list(config.robot.home_position), cameras, sim=True)


def levels(rows, item: str) -> list[Level]:
    return [r.level for r in rows if r.item == item]


def test_healthy_graph_is_all_clear(pack_phone_config) -> None:
    rows = evaluate(pack_phone_config, healthy_snapshot(pack_phone_config))
    assert exit_code(rows) == 0, format_table(rows)
    assert "joint states" in format_table(rows)


def test_each_problem_is_reported(pack_phone_config) -> None:
    config = pack_phone_config
    snap = healthy_snapshot(config)
    snap.joint_names[2] = "left_elbow_renamed"
    rows = evaluate(config, snap)
    assert levels(rows, "joint names") == [Level.FAIL]
    assert "left_elbow" in next(r.detail for r in rows if r.item == "joint names")

    snap = healthy_snapshot(config)
    snap.joint_positions[0] = 3.0                             # beyond position_upper 1.6
    assert levels(evaluate(config, snap), "joint limits") == [Level.FAIL]

    snap = healthy_snapshot(config)
    snap.topics[config.cameras[0].topic].rate_hz = 2.0        # slow camera
    del snap.topics[config.cameras[1].topic]                  # missing camera
    rows = evaluate(config, snap)
    assert levels(rows, "camera top") == [Level.FAIL]
    assert levels(rows, "camera left_wrist") == [Level.FAIL]

    snap = healthy_snapshot(config)
    snap.topics[config.topics.command].subscribers = ["trajectory_logger"]
    assert levels(evaluate(config, snap), "commands") == [Level.FAIL]

    snap = healthy_snapshot(config)
    snap.sim = False                                          # real robot without a pad
    assert levels(evaluate(config, snap), "joystick") == [Level.FAIL]

    snap = healthy_snapshot(config)
    snap.topics["/clock"] = TopicSample("/clock", 0, None, ["gazebo"])
    assert levels(evaluate(config, snap), "clock") == [Level.FAIL]

    rows = evaluate(config, healthy_snapshot(config), "policy joint names differ", "ckpt")
    assert levels(rows, "policy") == [Level.FAIL]


def test_driver_cameras_type_size_and_decode(tmp_path: Path) -> None:
    cameras = [{"name": "top", "source": "topic", "topic": "/usb_cam/image_raw/compressed",
                "compressed": True, "width": 64, "height": 48},
               {"name": "left_wrist", "source": "topic", "topic": "/wrist/image_raw"},
               {"name": "right_wrist", "source": "sim", "width": 64, "height": 48}]
    config = load_task_config(write_task_config(tmp_path, overrides={"cameras": cameras}))
    snap = healthy_snapshot(config)
    snap.topics["/usb_cam/image_raw/compressed"].types = ["sensor_msgs/msg/CompressedImage"]
    snap.cameras["top"] = CameraFrame(error="cannot be decoded")
    snap.cameras["left_wrist"] = CameraFrame(480, 640, "yuv422")
    snap.cameras["right_wrist"] = CameraFrame(480, 640, "rgb8")
    rows = evaluate(config, snap)
    assert levels(rows, "camera top image") == [Level.FAIL]
    assert levels(rows, "camera left_wrist image") == [Level.FAIL]      # unsupported encoding
    assert levels(rows, "camera right_wrist image") == [Level.FAIL]     # sim size must match
    snap.cameras["left_wrist"] = CameraFrame(480, 640, "bgr8")         # driver size: resized
    assert levels(evaluate(config, snap), "camera left_wrist image") == [Level.OK]
    snap.topics["/wrist/image_raw"].types = ["sensor_msgs/msg/CompressedImage"]
    assert levels(evaluate(config, snap), "camera left_wrist") == [Level.FAIL]


def test_outputs_need_a_controller_and_urdf_limits_bound_the_config(tmp_path: Path) -> None:
    outputs = [{"type": "forward_position", "topic": "/arm/commands"}]
    config = load_task_config(write_task_config(tmp_path, overrides={"outputs": outputs}))
    snap = healthy_snapshot(config)
    assert levels(evaluate(config, snap), "output 0 (forward_position)") == [Level.FAIL]
    snap.topics["/arm/commands"] = TopicSample("/arm/commands", subscribers=["controller"])
    assert levels(evaluate(config, snap), "output 0 (forward_position)") == [Level.OK]
    snap.robot_description = """<robot name="r">
      <joint name="left_waist" type="revolute"><limit lower="-1.0" upper="1.0" velocity="5"/>
      </joint></robot>"""
    rows = evaluate(config, snap)
    assert levels(rows, "URDF limits") == [Level.FAIL]        # config allows +-1.6
    assert "left_waist" in next(r.detail for r in rows if r.item == "URDF limits")


# ---- the command against the sim ----------------------------------------------------------------
def check(config_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aloe_ros.cli", "check", str(config_path),
                           "--sim", "--duration", "3", *extra],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


@pytest.fixture(scope="module")
def sim_graph(tmp_path_factory):
    """The sim and the mux (teleop) as `aloe-ros up --sim`, small cameras at 10 fps."""
    tmp = tmp_path_factory.mktemp("check_sim")
    nodes = [{"name": "sim_robot", "executable": "sim_robot_node", "when": "sim"},
             {"name": "teleop", "executable": "teleop_node"}]
    path = write_task_config(tmp, overrides={"cameras": SMALL_CAMERAS, "nodes": nodes})
    log = tmp / "up.log"
    command = [sys.executable, "-m", "aloe_ros.cli", "up", str(path), "--sim", "--no-record",
               "--duration", "150", "--status-period", "0"]
    with running_process(command, log_path=log) as process:
        for _ in range(40):                      # start-up: wait for the first joint states
            if check(path).stdout.count("joint names") and process.poll() is None:
                break
            time.sleep(0.5)
        yield tmp, path, process


def test_check_against_the_sim_is_all_clear(sim_graph) -> None:
    _, path, process = sim_graph
    result = check(path)
    assert process.poll() is None
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all clear" in result.stdout and "FAIL" not in result.stdout
    for item in ("joint names", "camera top image", "commands", "clock"):
        assert item in result.stdout


def test_check_reports_each_problem_of_a_wrong_config(sim_graph) -> None:
    tmp, path, _ = sim_graph
    right = load_task_config(path)
    joints = list(right.robot.joint_names)
    renamed = [("left_elbow_v2" if n == "left_elbow" else n) for n in joints]
    cameras = copy.deepcopy(SMALL_CAMERAS)
    cameras[0]["fps"] = 300.0                                  # the sim renders 10: slow topic
    cameras.append({"name": "ghost", "source": "topic", "topic": "/aloe/cam/ghost/image"})
    wrong = write_task_config(tmp, name="wrong.yaml", overrides={
        "cameras": cameras,
        "robot": {"joint_names": renamed,
                  "arms": {"left": renamed[:7], "right": renamed[7:]}},
        "outputs": [{"type": "joint_trajectory", "topic": "/nobody/joint_trajectory",
                     "joints": renamed[:6]}]})
    result = check(wrong)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines() if "  " in line}
    assert "FAIL" in lines["joint names"] and "left_elbow_v2" in lines["joint names"]
    assert "FAIL" in lines["camera ghost"] and "nothing received" in lines["camera ghost"]
    # a topic still silent when --duration ends gets extra time (late discovery), then fails
    late = next(line for line in out.splitlines() if line.startswith("few messages yet on"))
    assert "/aloe/cam/ghost/image" in late and late.endswith("listening up to 6 s more")
    assert "FAIL" in lines["camera top"] and "too slow" in lines["camera top"]
    assert "FAIL" in lines["output 0 (joint_trajectory)"]
