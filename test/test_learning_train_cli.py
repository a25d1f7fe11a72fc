"""``aloe-ros train``: episodes in, a loadable policy directory + learner state + plots out."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import write_task_config
from learning_doubles import make_episode

from aloe_ros.cli import main
from aloe_ros.policies.checkpoint import checkpoint_sha256, load_policy

torch.set_num_threads(1)
pytestmark = pytest.mark.slow
CAMERAS = ("top", "left_wrist", "right_wrist")


@pytest.fixture
def setup(tmp_path):  # type: ignore[no-untyped-def]
    task = write_task_config(tmp_path, overrides={
        "policy": {"chunk_horizon": 4, "execute_horizon": 2},
        "learning": {"ensemble_size": 2, "critic_width": 16, "critic_image_size": 8,
                     "batch_size": 8, "value_samples": 1}})
    episodes = tmp_path / "episodes"
    make_episode(8, episode_id=0, action_dim=14, cameras=CAMERAS, source="demo",
                 human=[True] * 8).save(episodes / "e0.npz")
    make_episode(8, episode_id=1, action_dim=14, cameras=CAMERAS, success=False,
                 human=[False] * 4 + [True] * 4).save(episodes / "e1.npz")
    return task, episodes


@pytest.mark.parametrize("method", ["aloe", "dagger", "awr_mc", "td1"])
def test_train_writes_a_loadable_policy(setup, tmp_path, method) -> None:  # type: ignore[no-untyped-def]
    task, episodes = setup
    out = tmp_path / f"out_{method}"
    plots = method == "aloe"   # and the replay; the others skip both
    argv = ["train", str(episodes), "--out", str(out), "--task", str(task), "--method", method,
            "--updates", "3", "--log-every", "1", "--threads", "1"]
    assert main(argv + ([] if plots else ["--no-plots", "--no-replay"])) == 0
    assert (out / "replay" / "index.json").is_file() == plots
    policy = load_policy(out)
    assert policy.version == f"pack_phone-{method}-3-{checkpoint_sha256(out)[:8]}"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2, 3]
    meta = json.loads((out / "learner" / "learner.json").read_text())
    assert meta["method"] == method and meta["step"] == 3
    if plots:
        for name in ("losses.png", "distributions.png", "q_traces.png"):
            assert (out / "plots" / name).stat().st_size > 1000
        # --resume continues from the learner state, with the trained actor.
        assert main(argv + ["--no-plots", "--resume", "--updates", "2"]) == 0
        assert json.loads((out / "learner" / "learner.json").read_text())["step"] == 5


def test_train_reports_unusable_inputs(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "not an episode file" in capsys.readouterr().out


def test_train_from_a_bag_labels_interventions_and_versions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bags are first-class inputs: the replay is rebuilt from them with the right sources."""
    from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag

    from aloe_ros.config import load_task_config
    from aloe_ros.learning.factory import build_replay
    from aloe_ros.policies.bc import load_episodes

    task = write_task_config(tmp_path, overrides={
        **small_camera_overrides(),
        "policy": {"chunk_horizon": 8, "execute_horizon": 5},
        "learning": {"ensemble_size": 2, "critic_width": 16, "critic_image_size": 8,
                     "batch_size": 8, "value_samples": 1}})
    config = load_task_config(str(task))
    plans = [EpisodePlan(steps=30, takeover_at=12, handback_at=20, version="v1"),
             EpisodePlan(steps=20, takeover_at=None, handback_at=None, outcome=2,
                         reward=0.0, version="v2")]
    write_synthetic_bag(tmp_path / "bag", config, plans)
    replay = build_replay(config)
    for episode in load_episodes([tmp_path / "bag"], config):
        replay.add_episode(episode)
    replay.set_current_version("v2")
    first = replay.episode_batch(0)
    assert set(first.source) == {"historical", "intervention"}
    # Chunks are cut at the takeover (12) and the handback (20): partial chunks, kept.
    assert first.start.tolist() == [0, 5, 10, 12, 17, 20, 25]
    assert first.action_mask.sum(1).tolist() == [5, 5, 2, 5, 3, 5, 5]
    assert set(replay.episode_batch(1).source) == {"online"}
    out = tmp_path / "out"
    assert main(["train", str(tmp_path / "bag"), "--out", str(out), "--task", str(task),
                 "--updates", "2", "--no-plots", "--threads", "1"]) == 0
    assert load_policy(out).version.startswith("pack_phone-aloe-2-")
