"""An episode split across two bags by a recorder restart: read as parts, joined back as one.

The synthetic run is cut the way a recorder crash and respawn cut it: the first bag ends inside
an episode, the next one begins later inside the same episode, and the messages in between were
never recorded. The joined episode must carry the outcome back to its first part (Monte-Carlo
returns, HG-DAgger's filter) without any chunk reaching across the hole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_synth import DT_NS, T0_NS, EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_episodes import read_episodes
from aloe_ros.io.episodes import Episode, EpisodeFormatError
from aloe_ros.io.transitions import episode_to_transitions
from aloe_ros.learning.live_episodes import slice_episode
from aloe_ros.learning.replay import episode_returns
from aloe_ros.policies.bc import BCDataset, load_episodes

PLANS = [EpisodePlan(steps=60, takeover_at=20, handback_at=35, outcome=1, reward=1.0),
         EpisodePlan(steps=40, takeover_at=None, handback_at=None, outcome=2, reward=0.0)]
FIRST_STEP_NS = T0_NS + DT_NS   # bag_synth's step 0 of episode 0
SECOND_EPISODE_NS = FIRST_STEP_NS + (PLANS[0].steps + 15) * DT_NS


def _step_ns(step: int, episode_start: int = FIRST_STEP_NS) -> int:
    # 10 ms before the step: after the previous step's command, before this step's frames
    return episode_start + step * DT_NS - 10_000_000


@pytest.fixture(scope="module")
def split_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Any]:
    """Episode 0 recorded up to step 39 in one bag and from step 50 on in the next."""
    tmp = tmp_path_factory.mktemp("split")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp / "whole", config, PLANS)
    write_synthetic_bag(tmp / "a", config, PLANS, keep=lambda t: t < _step_ns(40))
    write_synthetic_bag(tmp / "b", config, PLANS, keep=lambda t: t >= _step_ns(50))
    return [tmp / "a", tmp / "b"], tmp / "whole", config


def test_each_bag_reads_its_part_with_the_recorded_episode_id(split_run: Any) -> None:
    (a, b), _whole, _config = split_run
    (first,) = read_episodes(a, images=False)
    assert len(first) == 40 and first.success is None
    assert first.metadata["cut_at_bag_end"] == "1" and first.metadata["recorded_episode_id"] == "0"
    rest, second = read_episodes(b, images=False)
    assert len(rest) == 10 and rest.success is True
    assert rest.metadata["begins_mid_episode"] == "1"
    assert rest.metadata["recorded_episode_id"] == "0"
    assert "begins_mid_episode" not in second.metadata
    assert second.metadata["recorded_episode_id"] == "1"


def test_load_joins_the_parts_with_a_hole(split_run: Any) -> None:
    bags, _whole, config = split_run
    joined, second = load_episodes(bags, config)
    assert len(joined) == 50 and joined.success is True and joined.done
    assert joined.hole_starts.tolist() == [40]
    assert joined.stretches() == [(0, 40), (40, 50)]
    assert joined.steps_between(39) == 11 and joined.steps_between(10) == 1
    assert np.nonzero(joined.human)[0].tolist() == list(range(20, 35))
    assert joined.metadata["interventions"] == "1" and joined.metadata["outcome"] == "success"
    assert joined.metadata["recorded_episode_id"] == "0", "an id, not a count to sum"
    assert joined.rewards[-1] == 1.0 and joined.rewards[:-1].sum() == 0
    assert "cut_at_bag_end" not in joined.metadata
    assert "begins_mid_episode" not in joined.metadata
    assert second.success is False and len(second) == PLANS[1].steps
    # the reversed bag order joins the same way
    again = load_episodes(bags[::-1], config)
    assert sorted(len(e) for e in again) == [40, 50]
    # saved and loaded, the hole stays
    reloaded = Episode.load(joined.save(bags[0].parent / "joined.npz"))
    assert reloaded.hole_starts.tolist() == [40]


def test_no_chunk_reaches_across_the_hole(split_run: Any) -> None:
    bags, _whole, config = split_run
    joined = load_episodes(bags, config)[0]
    part_a, = read_episodes(bags[0])
    part_b = read_episodes(bags[1])[0]
    horizon, gamma = config.policy.chunk_horizon, config.learning.gamma
    for stride in (0, 1):
        kwargs: dict[str, Any] = dict(chunk_length=horizon, execute_horizon=horizon,
                                      gamma=gamma, stride=stride, takeover_penalty=1.0)
        together = episode_to_transitions(joined, **kwargs)
        apart = (episode_to_transitions(part_a, **kwargs)
                 + episode_to_transitions(part_b, **kwargs))
        # what a TD learner sees is exactly the two parts' transitions: none spans the hole
        assert [(t.start, t.valid_steps, t.reward, t.discount, t.done) for t in together] == [
            (t.start + (40 if i >= len(episode_to_transitions(part_a, **kwargs)) else 0),
             t.valid_steps, t.reward, t.discount, t.done) for i, t in enumerate(apart)]
        for t in together:
            assert t.start >= 40 or t.start + t.valid_steps <= 39
    # behaviour cloning targets stop at the hole too
    dataset = BCDataset([joined], [c.name for c in config.cameras], horizon)
    targets = dataset.chunks(np.arange(40))
    assert np.all(targets[..., 0] <= joined.actions[39, 0])


def test_the_first_part_gets_the_outcome(split_run: Any) -> None:
    bags, whole, config = split_run
    gamma = config.learning.gamma
    joined = load_episodes(bags, config)[0]
    unsplit = read_episodes(whole, images=False)[0]
    returns = episode_returns(joined, gamma)
    # discounted over the time that passed, as if the whole episode had been recorded
    assert returns[0] == pytest.approx(episode_returns(unsplit, gamma)[0])
    assert returns[0] == pytest.approx(gamma ** 59)
    part_a = read_episodes(bags[0], images=False)[0]
    assert episode_returns(part_a, gamma)[0] == 0.0   # what the parts alone would have said


def test_a_different_episode_after_the_gap_is_not_joined(tmp_path: Path) -> None:
    """The recorder was down across episode 0's outcome and episode 1's START: the parts
    carry different episode ids and stay apart."""
    config = load_task_config(write_task_config(tmp_path, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp_path / "a", config, PLANS, keep=lambda t: t < _step_ns(55))
    write_synthetic_bag(tmp_path / "b", config, PLANS,
                        keep=lambda t: t >= _step_ns(5, SECOND_EPISODE_NS))
    first, second = load_episodes([tmp_path / "a", tmp_path / "b"], config)
    assert (len(first), first.success) == (55, None)
    assert (len(second), second.success) == (35, False)
    assert first.hole_starts.size == 0 and second.hole_starts.size == 0


def test_a_gap_longer_than_an_episode_is_not_joined(split_run: Any) -> None:
    bags, _whole, config = split_run
    config.task.episode_timeout_s = 0.2   # the 11-step gap is 0.37 s at 30 Hz
    try:
        assert sorted(len(e) for e in load_episodes(bags, config)) == [10, 40, 40]
    finally:
        config.task.episode_timeout_s = 30.0


def test_holes_are_validated_and_follow_a_slice(split_run: Any) -> None:
    bags, _whole, config = split_run
    joined = load_episodes(bags, config)[0]
    tail = slice_episode(joined, 30)
    assert tail.hole_starts.tolist() == [10]
    assert slice_episode(joined, 0, 30).hole_starts.size == 0
    assert slice_episode(joined, 45).hole_starts.size == 0
    for bad in ("x", "0", "50", "20,10"):
        with pytest.raises(EpisodeFormatError, match="hole_starts"):
            Episode(task="t", joint_names=["j"], control_rate_hz=30.0,
                    timestamps=np.arange(50) / 30.0, images={},
                    states=np.zeros((50, 1), np.float32), actions=np.zeros((50, 1), np.float32),
                    human=np.zeros(50, bool), policy_versions=[""] * 50,
                    rewards=np.zeros(50, np.float32), metadata={"hole_starts": bad})
