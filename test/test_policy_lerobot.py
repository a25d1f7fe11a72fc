"""LeRobot adapter: tiny ACT and Diffusion policies saved offline, loaded through load_policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from policy_fixtures import save_tiny_lerobot

from aloe_ros.policies.base import Observation, PolicyError
from aloe_ros.policies.checkpoint import LeRobotBinding, checkpoint_sha256, load_policy
from aloe_ros.policies.lerobot_adapter import LeRobotChunkPolicy

torch.set_num_threads(1)

JOINTS = [f"j{i}" for i in range(6)]


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_lerobot("act", tmp_path_factory.mktemp("act"), joints=6, cameras=["cam"])


@pytest.fixture(scope="module")
def diffusion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_lerobot("diffusion", tmp_path_factory.mktemp("diffusion"), joints=6,
                             cameras=["cam"])


def binding(**camera_keys: str) -> LeRobotBinding:
    return LeRobotBinding(JOINTS, ["top"], camera_keys or {"top": "observation.images.cam"},
                          "pack the phone")


def observation() -> Observation:
    rng = np.random.default_rng(0)
    return Observation({"top": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)},
                       rng.normal(size=6).astype(np.float32), "pack the phone")


def test_act_loads_and_predicts_a_chunk(act_dir: Path) -> None:
    policy = load_policy(act_dir, binding=binding())
    assert isinstance(policy, LeRobotChunkPolicy)
    assert policy.chunk_horizon == 20 and policy.action_dim == 6
    assert policy.version.startswith("lerobot-act-")
    chunk = policy.predict_chunk(observation())
    assert chunk.shape == (20, 6) and chunk.dtype == np.float32
    assert np.all(np.isfinite(chunk))
    assert policy.sample_chunks(observation(), 2).shape == (2, 20, 6)


def test_diffusion_loads_and_keeps_an_observation_history(diffusion_dir: Path) -> None:
    policy = load_policy(diffusion_dir, binding=binding())
    assert isinstance(policy, LeRobotChunkPolicy)
    assert policy.history_length == 2
    first = policy.predict_chunk(observation())
    second = policy.predict_chunk(observation())
    assert first.shape == second.shape == (policy.chunk_horizon, 6)
    assert len(policy.history) == 2
    policy.reset()
    assert len(policy.history) == 0


def test_expected_sha_is_checked_for_lerobot_dirs(act_dir: Path) -> None:
    assert load_policy(act_dir, binding=binding(), expected_sha256=checkpoint_sha256(act_dir))
    with pytest.raises(PolicyError, match="sha256"):
        load_policy(act_dir, binding=binding(), expected_sha256="f" * 64)


def test_camera_key_that_the_policy_lacks(act_dir: Path) -> None:
    with pytest.raises(PolicyError, match="not inputs of this act policy"):
        load_policy(act_dir, binding=binding(top="observation.images.front"))


def test_state_size_mismatch(act_dir: Path) -> None:
    wrong = LeRobotBinding(JOINTS[:4], ["top"], {"top": "observation.images.cam"})
    with pytest.raises(PolicyError, match="state of 6"):
        load_policy(act_dir, binding=wrong)


def test_needs_a_binding(act_dir: Path) -> None:
    with pytest.raises(PolicyError, match="LeRobotBinding"):
        load_policy(act_dir)


def test_kind_mismatch(act_dir: Path) -> None:
    with pytest.raises(PolicyError, match="is a lerobot checkpoint"):
        load_policy(act_dir, kind="builtin", binding=binding())


def test_corrupt_config_is_a_policy_error(tmp_path: Path, act_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in act_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["type"] = "no_such_policy"
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(PolicyError, match="cannot load"):
        load_policy(broken, binding=binding())


def test_default_keys_and_unused_cameras(act_dir: Path) -> None:
    """Cameras named like the policy's keys need no mapping; extra task cameras are ignored."""
    both = LeRobotBinding(JOINTS, ["wrist", "cam"], {})
    policy = load_policy(act_dir, binding=both)
    assert isinstance(policy, LeRobotChunkPolicy)
    assert policy.camera_names == ["cam"]
    with pytest.raises(PolicyError, match="needs image input"):
        load_policy(act_dir, binding=LeRobotBinding(JOINTS, ["wrist"], {}))
