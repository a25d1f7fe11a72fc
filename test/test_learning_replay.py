"""Chunk replay: cutting, source labels, per-source sampling, persistence, capacity."""

from __future__ import annotations

import numpy as np
import pytest
from learning_doubles import make_episode

from aloe_ros.learning.replay import (
    ChunkReplay,
    ReplayError,
    ReplaySpec,
    episode_returns,
    monte_carlo_returns,
)

SPEC = ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9)
RATIOS = {"demo": 0.5, "intervention": 0.5, "online": 0.0, "historical": 0.0}


def replay(**kwargs) -> ChunkReplay:  # type: ignore[no-untyped-def]
    return ChunkReplay(SPEC, kwargs.pop("ratios", RATIOS), **kwargs)


def test_monte_carlo_returns() -> None:
    assert monte_carlo_returns(np.array([0, 0, 1.0]), 0.5).tolist() == [0.25, 0.5, 1.0]


def test_takeover_penalty_ends_the_policy_run_at_a_takeover() -> None:
    # Steps 0-3 policy, 4-6 human (a takeover at 4), 7-9 policy; success at the end.
    human = [False] * 4 + [True] * 3 + [False] * 3
    spec = ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9, stride=1, takeover_penalty=2.0)
    penalised = ChunkReplay(spec, RATIOS)
    penalised.add_episode(make_episode(10, human=human))
    batch = penalised.episode_batch(0)
    # Chunks at 1, 2 and 3 run into the takeover: -2 on their last policy step (step 3), then
    # terminal. Chunk 0 ends at 3 and bootstraps as before; the human and the policy after the
    # handback are untouched.
    assert batch.reward.tolist() == pytest.approx([0, -2 * 0.9 ** 2, -2 * 0.9, -2,
                                                   0, 0, 0, 0.9 ** 2, 0.9, 1])
    assert batch.done.tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 1, 1]
    assert batch.discount[:4].tolist() == pytest.approx([0.9 ** 3, 0, 0, 0])
    # Monte-Carlo returns stop there too: the policy's run is over at the takeover.
    assert batch.mc_return.tolist() == pytest.approx([-2 * 0.9 ** 3, -2 * 0.9 ** 2, -2 * 0.9,
                                                      -2, 0.9 ** 5, 0.9 ** 4, 0.9 ** 3,
                                                      0.9 ** 2, 0.9, 1])
    # Without the penalty (the default) nothing changes at a takeover.
    plain = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9, stride=1),
                        RATIOS)
    plain.add_episode(make_episode(10, human=human))
    assert plain.episode_batch(0).done[:4].tolist() == [0, 0, 0, 0]
    assert plain.episode_batch(0).mc_return[0].item() == pytest.approx(0.9 ** 9)
    # A demo (all human) and a takeover-free episode have no takeover to penalise.
    demo = make_episode(6, human=[True] * 6, source="demo")
    assert episode_returns(demo, 0.9, 2.0).tolist() == pytest.approx(
        monte_carlo_returns(demo.rewards, 0.9).tolist())


def test_a_saved_replay_keeps_its_takeover_penalty(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9, takeover_penalty=1.0)
    buffer = ChunkReplay(spec, RATIOS)
    buffer.add_episode(make_episode(10, human=[False] * 4 + [True] * 6))
    buffer.save(tmp_path)
    loaded = ChunkReplay.load(tmp_path, RATIOS)
    assert loaded.spec == spec
    # rows cut with another penalty would mix rewards: refused, naming the key
    with pytest.raises(ReplayError, match="learning.takeover_penalty"):
        loaded.adopt_spec(SPEC)


def test_stride_starts_overlapping_chunks_that_never_mix_actors() -> None:
    # Steps 0-3 policy, 4-6 human, 7-9 policy; success at the end.
    human = [False] * 4 + [True] * 3 + [False] * 3
    strided = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9, stride=1),
                          RATIOS)
    assert strided.add_episode(make_episode(10, human=human)) == 10   # one per step
    batch = strided.episode_batch(0)
    assert batch.start.tolist() == list(range(10))
    # each spans up to 3 steps, cut where control changes and at the end
    assert batch.action_mask.sum(dim=1).tolist() == [3, 3, 2, 1, 3, 2, 1, 3, 2, 1]
    assert batch.source == ["online"] * 4 + ["intervention"] * 3 + ["online"] * 3
    # a true transition from any start: R, gamma^k and o_{t+k} of the steps it executed
    assert batch.discount[1].item() == pytest.approx(0.9 ** 3)
    assert batch.next_observation.state[1, 0].item() == 4.0
    assert batch.done.tolist() == [0.0] * 7 + [1.0] * 3     # 7, 8 and 9 reach the end
    assert batch.reward[8].item() == pytest.approx(0.9)
    # stride 2: every other step of each run
    every_other = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9, stride=2),
                              RATIOS)
    every_other.add_episode(make_episode(10, human=human))
    assert every_other.episode_batch(0).start.tolist() == [0, 2, 4, 6, 7, 9]


def test_partial_chunks_at_takeover_and_target_chunks() -> None:
    # Steps 0-3 policy, 4-6 human (a takeover at 4), 7-9 policy; success at the end.
    human = [False] * 4 + [True] * 3 + [False] * 3
    buffer = replay()
    added = buffer.add_episode(make_episode(10, human=human))
    batch = buffer.episode_batch(0)
    assert added == len(batch) == 4
    assert batch.start.tolist() == [0, 3, 4, 7]
    # Chunk at 3 is partial (1 step before the takeover): padded by repeating, masked.
    assert batch.action_mask[1].tolist() == [1, 0, 0]
    assert batch.actions[1, :, 0].tolist() == [3.5, 3.5, 3.5]
    assert batch.discount[1].item() == pytest.approx(0.9)
    assert batch.source == ["online", "online", "intervention", "online"]
    # Actor target: the next 4 actions of whoever acted at the chunk's start; it stops where
    # control changes hands (the human's target never ends in the policy's actions after the
    # handback, nor the policy's in the human's) and at the episode's end; held and masked.
    assert batch.target_actions[0, :, 0].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert batch.target_mask[0].tolist() == [1, 1, 1, 1]
    assert batch.target_actions[1, :, 0].tolist() == [3.5, 3.5, 3.5, 3.5]
    assert batch.target_mask[1].tolist() == [1, 0, 0, 0]
    assert batch.target_actions[2, :, 0].tolist() == [4.5, 5.5, 6.5, 6.5]
    assert batch.target_mask[2].tolist() == [1, 1, 1, 0]
    assert batch.target_actions[-1, :, 0].tolist() == [7.5, 8.5, 9.5, 9.5]
    assert batch.target_mask[-1].tolist() == [1, 1, 1, 0]
    # The last chunk ends the episode: done, no discount, reward 1 at its last step.
    assert batch.done[-1].item() == 1.0 and batch.discount[-1].item() == 0.0
    assert batch.reward[-1].item() == pytest.approx(0.9 ** 2)   # reward at the chunk's step 3
    assert batch.mc_return[0].item() == pytest.approx(0.9 ** 9)
    assert batch.success.tolist() == [1.0] * 4
    # o_{t+k} of a chunk is o of the next chunk's start.
    assert batch.next_observation.state[0, 0].item() == 3.0
    assert (batch.next_observation.images["top"][0] == batch.observation.images["top"][1]).all()


def test_only_referenced_frames_are_stored() -> None:
    buffer = replay()
    buffer.add_episode(make_episode(30))
    assert len(buffer.segments[0].states) == 11          # starts 0,3,..,27 + last step 29


def test_online_becomes_historical_when_the_version_moves() -> None:
    buffer = replay(current_version="v1")
    buffer.add_episode(make_episode(6))
    assert set(buffer.counts_by_source()) == {"online"}
    buffer.set_current_version("v2")
    assert buffer.counts_by_source() == {"historical": 2}


def test_sampling_follows_source_ratios() -> None:
    buffer = replay(ratios={"demo": 0.8, "intervention": 0.0, "online": 0.2, "historical": 0.0})
    buffer.add_episode(make_episode(30, episode_id=0, source="demo"))
    buffer.add_episode(make_episode(30, episode_id=1))
    buffer.add_episode(make_episode(30, episode_id=2, human=[True] * 30))
    batch = buffer.sample(1000, np.random.default_rng(0))
    counts = {s: batch.source.count(s) for s in set(batch.source)}
    assert set(counts) == {"demo", "online"}              # ratio 0: never sampled
    assert 740 < counts["demo"] < 860
    assert buffer.source_probabilities() == pytest.approx({"demo": 0.8, "online": 0.2})


def test_absent_sources_are_renormalised_away() -> None:
    buffer = replay()
    buffer.add_episode(make_episode(9, human=[True] * 9))
    assert buffer.source_probabilities() == {"intervention": 1.0}
    assert set(buffer.sample(20, np.random.default_rng(1)).source) == {"intervention"}


def test_empty_replay_cannot_sample() -> None:
    with pytest.raises(ReplayError, match="empty"):
        replay().sample(4, np.random.default_rng(0))


def test_incompatible_episode_is_rejected_with_a_reason() -> None:
    buffer = replay()
    buffer.add_episode(make_episode(6))
    with pytest.raises(ReplayError, match="cameras"):
        buffer.add_episode(make_episode(6, cameras=("other",)))
    with pytest.raises(ReplayError, match="frames"):
        buffer.add_episode(make_episode(6, image=4))
    assert len(buffer.segments) == 1


def test_capacity_evicts_oldest_episodes() -> None:
    buffer = replay(capacity=6)
    for i in range(4):
        buffer.add_episode(make_episode(9, episode_id=i))   # 3 transitions each
    assert [s.episode_id for s in buffer.segments] == [2, 3]


def test_save_load_round_trip_and_incremental(tmp_path) -> None:  # type: ignore[no-untyped-def]
    buffer = replay(capacity=7, current_version="v1")
    buffer.add_episode(make_episode(9, episode_id=0, source="demo"))
    buffer.add_episode(make_episode(9, episode_id=1))
    buffer.save(tmp_path)
    first = (tmp_path / "segment_0000000.npz").stat().st_mtime_ns
    buffer.add_episode(make_episode(9, episode_id=2))         # evicts episode 0
    buffer.save(tmp_path)
    assert not (tmp_path / "segment_0000000.npz").exists()
    assert (tmp_path / "segment_0000001.npz").stat().st_mtime_ns >= first
    loaded = ChunkReplay.load(tmp_path, RATIOS, capacity=7)
    assert len(loaded) == len(buffer) == 6
    assert loaded.current_version == "v1" and loaded.spec == SPEC
    a, b = buffer.episode_batch(1), loaded.episode_batch(1)
    assert (a.observation.images["top"] == b.observation.images["top"]).all()
    assert a.target_actions.equal(b.target_actions) and a.source == b.source
    loaded.add_episode(make_episode(9, episode_id=3))
    assert loaded.segments[-1].serial == 3


def test_unreadable_replay_names_the_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "index.json").write_text("{broken")
    with pytest.raises(ReplayError, match=str(tmp_path)):
        ChunkReplay.load(tmp_path, RATIOS)
