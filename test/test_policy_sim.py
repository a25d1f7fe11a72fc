"""sim-demos -> train-bc -> eval-sim end to end (tiny budgets), and the sim rollout loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_task_config
from policy_fixtures import tiny_builtin

from aloe_ros.cli import main
from aloe_ros.config import load_task_config
from aloe_ros.io.episodes import load_episode_dir
from aloe_ros.policies.bc import BCDataset, load_episodes
from aloe_ros.policies.checkpoint import load_policy
from aloe_ros.policies.sim_rollouts import make_sim_robot, rollout_policy
from aloe_ros.sim.operator import task_stage

torch.set_num_threads(1)


@pytest.fixture
def short_task(tmp_path: Path) -> Path:
    return write_task_config(tmp_path, overrides={"task": {"episode_timeout_s": 2.0}})


@pytest.mark.slow
def test_demos_train_eval_round_trip(tmp_path: Path, short_task: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    demos = tmp_path / "demos"
    assert main(["sim-demos", "--task", "pack_phone", "--episodes", "2", "--out", str(demos),
                 "--seed", "3"]) == 0
    episodes = load_episode_dir(demos)
    assert len(episodes) == 2
    for episode in episodes:
        assert episode.source == "demo" and episode.success is True
        assert episode.human.all() and episode.rewards[-1] == 1.0
        assert set(episode.images) == {"top", "left_wrist", "right_wrist"}
        # Each action is the expert's command for that step, within the joint limits.
        assert np.all(np.isfinite(episode.actions))
    out = tmp_path / "policy"
    assert main(["train-bc", str(demos), "--out", str(out), "--steps", "3",
                 "--batch-size", "4", "--threads", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    policy = load_policy(out)
    assert policy.version.startswith("bc-3-")
    assert main(["eval-sim", "--policy", str(out), "--task", str(short_task),
                 "--episodes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "success 0/1" in printed, "3 BC steps and a 2 s timeout cannot succeed"
    assert "failures by furthest stage reached: stage 0 x1" in printed


def test_teleop_demos_move_at_the_operators_speeds(tmp_path: Path) -> None:
    """--teleop demos are the simulated operator's motion: bounded by the joystick speeds
    (a direct expert demo closes a gripper in one step), and still successful."""
    config = load_task_config("pack_phone")
    dt = 1.0 / config.robot.control_rate_hz
    grippers = [config.robot.joint_names.index(j) for j in config.robot.gripper_joints]
    arms = [i for i in range(config.robot.action_dim) if i not in grippers]
    steps = {}
    for flag in ([], ["--teleop"]):
        out = tmp_path / ("teleop" if flag else "direct")
        assert main(["sim-demos", "--episodes", "1", "--out", str(out), "--seed", "4",
                     *flag]) == 0
        (episode,) = load_episode_dir(out)
        assert episode.success is True and episode.human.all()
        steps[bool(flag)] = np.abs(np.diff(episode.actions, axis=0))
    teleop, direct = steps[True], steps[False]
    tolerance = 1e-6
    assert teleop[:, arms].max() <= config.joystick.max_joint_speed * dt + tolerance
    assert teleop[:, grippers].max() <= config.joystick.gripper_speed * dt + tolerance
    assert direct[:, grippers].max() > 10 * config.joystick.gripper_speed * dt


def test_train_bc_rejects_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train-bc", str(tmp_path / "empty"), "--out", str(tmp_path / "o"),
                 "--steps", "1"]) == 2
    assert "not an episode file" in capsys.readouterr().out


def test_bc_dataset_chunks_hold_the_last_action_at_episode_end(tmp_path: Path) -> None:
    config = load_task_config("pack_phone")
    main(["sim-demos", "--episodes", "1", "--out", str(tmp_path / "d"), "--seed", "5"])
    episodes = load_episodes([tmp_path / "d"], config, resize=(12, 16))
    assert episodes[0].images["top"].shape[1:] == (12, 16, 3)
    dataset = BCDataset(episodes, ["top", "left_wrist", "right_wrist"], 50)
    last = len(dataset) - 1
    chunk = dataset.chunks(np.array([last - 3]))[0]
    np.testing.assert_array_equal(chunk[3:], np.repeat(episodes[0].actions[-1:], 47, axis=0))
    np.testing.assert_array_equal(chunk[:4], episodes[0].actions[-4:])


def test_rollout_goes_through_the_executor(short_task: Path) -> None:
    config = load_task_config(short_task)
    policy = tiny_builtin(config)
    robot = make_sim_robot(config)
    chunks: list[int] = []
    result = rollout_policy(config, robot, policy, seed=1, episode_id=0, on_chunk=chunks.append)
    assert not result.success and result.reason == "timeout"
    assert result.furthest_stage == 0, "an untrained policy never gets the lid off"
    # One chunk every execute_horizon ticks (inference answered at once in sim time).
    assert chunks[:3] == [0, 25, 50]
    step = np.abs(np.diff(result.episode.actions, axis=0))
    max_step = np.asarray(config.robot.velocity_limits) / config.robot.control_rate_hz
    assert np.all(step <= max_step + 1e-5)


def test_noise_scale_config_is_validated_and_applied(tmp_path: Path) -> None:
    from aloe_ros.config import ConfigError
    from aloe_ros.policies.checkpoint import apply_inference_settings

    bad = write_task_config(tmp_path, overrides={"policy": {"noise_scale": -1}}, name="b.yaml")
    with pytest.raises(ConfigError, match="policy.noise_scale"):
        load_task_config(bad)
    config = load_task_config("pack_phone")
    policy = tiny_builtin(config)
    apply_inference_settings(policy, flow_steps=4, noise_scale=0.0)
    assert (policy.flow_steps, policy.noise_scale) == (4, 0.0)
    # Zero noise: sampling is deterministic.
    robot = make_sim_robot(config)
    from aloe_ros.policies.base import Observation

    obs = Observation(robot.render(), robot.positions.astype(np.float32), config.task.text)
    np.testing.assert_array_equal(policy.predict_chunk(obs), policy.predict_chunk(obs))


@pytest.mark.slow
def test_train_bc_reads_rosbags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bag recorded by the logger trains like an episode directory."""
    from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag

    task = write_task_config(tmp_path, overrides=small_camera_overrides())
    write_synthetic_bag(tmp_path / "bag", load_task_config(task),
                        [EpisodePlan(steps=40, takeover_at=None, handback_at=None)])
    def train_bc(out: Path, seed: int) -> str:
        assert main(["train-bc", str(tmp_path / "bag"), "--out", str(out), "--task", str(task),
                     "--steps", "2", "--batch-size", "4", "--threads", "1",
                     "--seed", str(seed)]) == 0
        assert "1 episodes" in capsys.readouterr().out
        return load_policy(out).version

    first = train_bc(tmp_path / "from_bag", seed=3)
    assert load_policy(tmp_path / "from_bag").camera_names == ["top", "wrist"]
    # The seed fixes the initial weights as well as the batches: the same run, the same bytes
    # (the version ends with the weights' sha256); the untrained weights were unseeded once.
    assert train_bc(tmp_path / "again", seed=3) == first
    assert train_bc(tmp_path / "other_seed", seed=4) != first


def test_new_builtin_policy_seeds_its_initial_weights() -> None:
    config = load_task_config("pack_phone")
    torch.manual_seed(123)
    global_state = torch.random.get_rng_state()
    first = tiny_builtin(config, seed=5).state_dict()
    assert torch.equal(torch.random.get_rng_state(), global_state), \
        "a seeded policy leaves the global generator alone"
    again = tiny_builtin(config, seed=5).state_dict()
    other = tiny_builtin(config, seed=6).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_episode_directories_are_downsampled_one_file_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full-size frames of only one episode are in memory at a time (100 demos: ~8 GB)."""
    from learning_doubles import make_episode

    from aloe_ros.io import episodes as episodes_module

    for i in range(3):
        make_episode(5, episode_id=i, image=16).save(tmp_path / "eps" / f"episode_{i:05d}.npz")
    events: list[str] = []
    real_load = episodes_module.Episode.load

    def tracking_load(path: Path):  # type: ignore[no-untyped-def]
        episode = real_load(path)
        events.append(f"load {episode.episode_id}")
        return episode

    def tracking_downsample(episode, size):  # type: ignore[no-untyped-def]
        events.append(f"resize {episode.episode_id}")
        episode.images = {k: v[:, : size[0], : size[1]] for k, v in episode.images.items()}
        return episode

    monkeypatch.setattr(episodes_module.Episode, "load", staticmethod(tracking_load))
    monkeypatch.setattr("aloe_ros.policies.bc.downsample_episode", tracking_downsample)
    loaded = load_episodes([tmp_path / "eps"], load_task_config("pack_phone"), resize=(8, 8))
    assert [e.episode_id for e in loaded] == [0, 1, 2]
    assert events == ["load 0", "resize 0", "load 1", "resize 1", "load 2", "resize 2"]
    assert loaded[2].images["top"].shape[1:3] == (8, 8)


def test_task_stage_follows_the_scene() -> None:
    config = load_task_config("pack_phone")
    robot = make_sim_robot(config)
    robot.reset(seed=2)
    assert task_stage(robot.privileged_state()) == 0, "lid on the box"
    robot.scene.objects["lid"].held_by = "left"
    assert task_stage(robot.privileged_state()) == 1, "lid held"
