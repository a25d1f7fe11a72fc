"""``aloe-ros export``: bags -> LeRobot v3; it loads back with LeRobotDataset, labels intact,
and a tiny LeRobot ACT trains one step on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.config import load_task_config

PLANS = [EpisodePlan(steps=30, takeover_at=10, handback_at=18, version="v1"),
         EpisodePlan(steps=20, takeover_at=None, handback_at=None, outcome=2, reward=0.0,
                     version="v2")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from aloe_ros.cli import main

    tmp = tmp_path_factory.mktemp("export")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp / "bag_a", config, PLANS[:1])
    write_synthetic_bag(tmp / "bag_b", config, PLANS[1:])
    code = main(["export", str(tmp / "bag_a"), str(tmp / "bag_b"), "--lerobot",
                 str(tmp / "dataset"), "--repo-id", "local/aloe_test",
                 "--current-version", "v2"])
    assert code == 0
    return tmp / "dataset", config


def test_dataset_loads_back_with_labels(exported: tuple[Path, Any]) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, config = exported
    dataset = LeRobotDataset("local/aloe_test", root=root)
    assert dataset.meta.total_episodes == 2
    assert len(dataset) == sum(p.steps for p in PLANS)
    assert dataset.fps == 30
    for key in ("observation.images.top", "observation.images.wrist", "observation.state",
                "action", "intervention", "source", "policy_version", "reward", "done"):
        assert key in dataset.features, key
    rows = [dataset[i] for i in range(len(dataset))]
    first = rows[:30]
    assert [bool(r["intervention"]) for r in first] == [10 <= k < 18 for k in range(30)]
    assert {r["source"] for r in first[:10]} == {"historical"}  # v1 while v2 is current
    assert {r["source"] for r in first[10:18]} == {"intervention"}
    assert {r["policy_version"] for r in first[10:18]} == {""}
    assert {r["source"] for r in rows[30:]} == {"online"}
    rewards = [float(r["reward"]) for r in rows]
    dones = [bool(r["done"]) for r in rows]
    assert rewards[29] == 1.0 and sum(rewards) == 1.0
    assert dones[29] and dones[49] and sum(dones) == 2
    assert np.isclose(float(first[12]["action"][0]), 12.5)
    assert rows[0]["task"] == config.task.text
    image = rows[5]["observation.images.top"]  # (C, H, W) float in [0, 1]
    assert tuple(image.shape) == (3, 24, 32)
    assert np.isclose(float(image[0, 0, 0]), 5 / 255, atol=1e-3)


def test_export_refuses_a_non_empty_directory(exported: tuple[Path, Any],
                                              tmp_path: Path) -> None:
    from aloe_ros.cli import main

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert main(["export", str(exported[0].parent / "bag_a"), "--lerobot",
                 str(tmp_path / "taken"), "--repo-id", "local/x"]) == 1


@pytest.mark.slow
def test_tiny_act_trains_a_step(exported: tuple[Path, Any]) -> None:
    import torch
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.utils.feature_utils import dataset_to_policy_features

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root, _ = exported
    meta = LeRobotDatasetMetadata("local/aloe_test", root=root)
    features = dataset_to_policy_features(meta.features)
    outputs = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    inputs = {k: f for k, f in features.items()
              if k not in outputs and k.startswith("observation.")}
    chunk = 4
    cfg = ACTConfig(input_features=inputs, output_features=outputs, chunk_size=chunk,
                    n_action_steps=chunk, dim_model=32, n_heads=2, dim_feedforward=64,
                    n_encoder_layers=1, n_decoder_layers=1, latent_dim=8, use_vae=False,
                    pretrained_backbone_weights=None, device="cpu")
    dataset = LeRobotDataset("local/aloe_test", root=root, delta_timestamps={
        "action": [i / meta.fps for i in range(chunk)]})
    policy = ACTPolicy(cfg)
    preprocessor, _ = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = preprocessor(next(iter(loader)))
    loss, _ = policy.forward(batch)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
