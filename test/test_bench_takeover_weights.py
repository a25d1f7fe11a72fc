"""`bench takeover-weights`: the start of each takeover told from the rest (ROS-free core)."""

from __future__ import annotations

import numpy as np
import pytest
from learning_doubles import ConstantPolicy, make_episode

from aloe_ros.benchmarks.takeover_weights import (
    chunk_groups,
    human_run_starts,
    takeover_weight_stats,
    weights_table,
)
from aloe_ros.config import LearningConfig
from aloe_ros.learning.baselines import DaggerTrainer
from aloe_ros.learning.replay import ChunkReplay, ReplaySpec

RATIOS = {"demo": 1.0, "intervention": 1.0, "online": 1.0, "historical": 1.0}
HUMAN = [False, False, True, True, True, True, False, True, True, False]


def test_human_runs_start_at_each_takeover() -> None:
    assert human_run_starts(np.array(HUMAN)).tolist() == [-1, -1, 2, 2, 2, 2, -1, 7, 7, -1]


def test_chunks_are_grouped_by_their_first_step() -> None:
    kinds = ["policy", "intervention", "intervention", "intervention", "policy",
             "intervention", "demo"]
    starts = [0, 2, 3, 4, 6, 7, 0]
    groups = chunk_groups(kinds, starts, np.array(HUMAN), assisted=True, start_steps=2)
    assert groups == ["policy, assisted episode", "takeover start", "takeover start",
                      "takeover rest", "policy, assisted episode", "takeover start", "demo"]
    alone = chunk_groups(["policy"], [0], np.zeros(10, bool), assisted=False, start_steps=2)
    assert alone == ["policy, unassisted episode"]


def test_stats_sum_the_methods_own_weights_per_group() -> None:
    replay = ChunkReplay(ReplaySpec(critic_chunk=1, actor_horizon=2, gamma=0.9, stride=1),
                         RATIOS)
    assisted = make_episode(10, episode_id=0, success=True, human=HUMAN)
    alone = make_episode(6, episode_id=1, success=True)
    trainer = DaggerTrainer(ConstantPolicy(), LearningConfig(batch_size=4))
    calls: list[tuple[int, int]] = []
    stats = takeover_weight_stats(trainer, replay, [assisted, alone], start_s=0.2,
                                  control_rate_hz=10.0,
                                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    # One-step chunks at every step: 2 + 2 takeover starts (runs at 2 and 7), 2 later human
    # steps, the policy's 4 assisted steps and 6 steps of the episode it finished alone.
    counts = {group: s.chunks for group, s in stats.items()}
    assert counts == {"takeover start": 4, "takeover rest": 2, "policy, assisted episode": 4,
                      "policy, unassisted episode": 6}
    # HG-DAgger: weight 1 on the takeovers and the unassisted success, 0 on the rescued policy.
    assert stats["policy, assisted episode"].weight_mean == 0.0
    assert stats["takeover start"].weight_mean == stats["takeover rest"].weight_mean == 1.0
    assert stats["takeover start"].weight_share == pytest.approx(4 / 12)
    assert sum(s.weight_share for s in stats.values()) == pytest.approx(1.0)
    assert "| takeover start | 4 | +0.000 | 1.00 | 1.00 | 33 % |" in weights_table(stats)
    with pytest.raises(ValueError, match="start_s"):
        takeover_weight_stats(trainer, replay, [], start_s=0.0, control_rate_hz=10.0)


def test_stats_use_the_trainers_actor_weights() -> None:
    """A trainer whose weights grow with the step: the start of a takeover gets its own mean."""
    class StepWeights(DaggerTrainer):
        def actor_weights(self, batch):  # type: ignore[no-untyped-def]
            result = super().actor_weights(batch)
            steps = batch.reward.new_tensor(np.arange(len(batch), dtype=np.float32))
            return result._replace(weights=steps + 1.0, advantage=steps)

    replay = ChunkReplay(ReplaySpec(critic_chunk=1, actor_horizon=2, gamma=0.9, stride=1),
                         RATIOS)
    trainer = StepWeights(ConstantPolicy(), LearningConfig(batch_size=4))
    stats = takeover_weight_stats(trainer, replay, [make_episode(10, human=HUMAN)],
                                  start_s=0.2, control_rate_hz=10.0)
    # Rows are the chunks in time order: takeover starts at steps 2, 3, 7, 8.
    assert stats["takeover start"].weight_mean == pytest.approx((3 + 4 + 8 + 9) / 4)
    assert stats["takeover rest"].advantage_mean == pytest.approx((4 + 5) / 2)
