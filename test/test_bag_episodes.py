"""Bag -> episodes on the control grid -> chunk transitions: rows, labels and boundaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_synth import EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.config import load_task_config
from aloe_ros.io.bag_episodes import bag_transitions, episode_spans, read_episodes

PLANS = [EpisodePlan(steps=60, takeover_at=20, handback_at=35, outcome=1, reward=1.0,
                     version="v1"),
         EpisodePlan(steps=40, takeover_at=None, handback_at=None, outcome=2, reward=0.0,
                     version="v2"),
         EpisodePlan(steps=30, takeover_at=0, handback_at=None, outcome=1, reward=1.0,
                     version="v2")]


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("episodes")
    config = load_task_config(write_task_config(tmp, overrides=small_camera_overrides()))
    write_synthetic_bag(tmp / "bag", config, PLANS)
    return tmp / "bag", config


def test_episodes_rows_and_outcomes(bag: tuple[Path, Any]) -> None:
    episodes = read_episodes(bag[0])
    assert [len(e) for e in episodes] == [p.steps for p in PLANS]
    assert [e.success for e in episodes] == [True, False, True]
    for e, episode in enumerate(episodes):
        # executed actions are exactly the recorded commands, one per row, none repeated
        want = np.array([e * 10 + k + (0.5 if episode.human[k] else 0.0)
                         for k in range(len(episode))], np.float32)
        assert np.allclose(episode.actions[:, 0], want)
        assert episode.metadata["commands_repeated"] == "0"
        assert episode.metadata["commands_skipped"] == "0"
        # observations: the frame and state published just before each command
        assert np.array_equal(episode.images["top"][:, 0, 0, 0],
                              (e * 100 + np.arange(len(episode))) % 256)
        assert np.allclose(episode.states[:, 0], e + np.arange(len(episode)) * 0.01)
        assert episode.metadata["frames_used_top"] == str(len(episode))
        assert episode.metadata["frames_in_episode_top"] == str(len(episode))
        # reward only on the last row, from the outcome event
        assert episode.rewards[:-1].sum() == 0
        assert episode.rewards[-1] == PLANS[e].reward
        assert np.allclose(np.diff(episode.timestamps), 1 / 30, atol=1e-6)


def test_human_flags_versions_and_sources(bag: tuple[Path, Any]) -> None:
    first, second, third = read_episodes(bag[0], images=False)
    assert np.nonzero(first.human)[0].tolist() == list(range(20, 35))
    assert set(first.policy_versions[:20]) == {"v1"} and first.policy_versions[25] == ""
    assert first.source == "online" and first.metadata["interventions"] == "1"
    assert not second.human.any() and set(second.policy_versions) == {"v2"}
    assert third.human.all() and third.source == "demo"  # a human drove all of it


def test_transitions_cut_at_takeover_and_handback(bag: tuple[Path, Any]) -> None:
    transitions = [t for t in bag_transitions([bag[0]], current_version="v2")
                   if t.episode_id == 0]
    horizon = bag[1].policy.execute_horizon
    assert [(t.start, t.valid_steps) for t in transitions] == [
        (0, 20), (20, 15), (35, horizon)]
    assert [t.source for t in transitions] == ["historical", "intervention", "historical"]
    assert [t.done for t in transitions] == [False, False, True]
    # the human's executed actions, padded with the last one past the partial chunk
    takeover = transitions[1]
    assert np.allclose(takeover.actions[:15, 0], np.arange(20, 35) + 0.5)
    assert np.allclose(takeover.actions[15:, 0], 34.5)
    assert takeover.policy_version == ""
    assert transitions[0].discount == pytest.approx(0.99 ** 20)
    last = transitions[-1]
    assert last.discount == 0.0
    assert last.reward == pytest.approx(0.99 ** (last.valid_steps - 1))
    assert np.array_equal(takeover.observation.images["top"],
                          np.full((24, 32, 3), 20, np.uint8))


def test_resize_and_rate_override(bag: tuple[Path, Any]) -> None:
    episodes = read_episodes(bag[0], resize=(12, 16), control_rate_hz=15.0)
    assert episodes[0].images["wrist"].shape[1:] == (12, 16, 3)
    # half the rate: every other command is skipped
    assert len(episodes[0]) == 30 and episodes[0].metadata["commands_skipped"] == "30"


def test_episode_spans_from_event_stream() -> None:
    # START, outcome; an outcome without START (recording began mid-episode); a START cut by
    # RESET; and a START still open at the end of the bag.
    events = [(150, 0, 1, 1.0, "x", 6),
              (200, 0, 0, 0.0, "", 7), (300, 0, 2, 0.0, "dropped", 7),
              (400, 0, 0, 0.0, "", 8), (450, 0, 4, 0.0, "", 8),
              (500, 0, 0, 0.0, "", 9)]
    spans = episode_spans(events, bag_start_ns=100, bag_end_ns=900)
    assert [(s.start_ns, s.end_ns, s.outcome) for s in spans] == [
        (100, 150, "success"), (200, 300, "failure"), (400, 450, ""), (500, 900, "")]
    # recording began mid-episode: the part before the first START is a truncated episode
    late = episode_spans(events[1:], bag_start_ns=100, bag_end_ns=900)
    assert [(s.start_ns, s.end_ns, s.outcome) for s in late][:2] == [
        (100, 200, ""), (200, 300, "failure")]
    assert [(s.start_ns, s.end_ns) for s in episode_spans([], 100, 900)] == [(100, 900)]


def test_mux_labels_decide_exactly(tmp_path: Path) -> None:
    """teleop_node publishes a takeover's first human command before the TAKEOVER event; its
    frame_id labels make the human rows exact anyway."""
    config = load_task_config(write_task_config(tmp_path, overrides=small_camera_overrides()))
    plan = EpisodePlan(steps=40, takeover_at=10, handback_at=25, labelled=True)
    write_synthetic_bag(tmp_path / "bag", config, [plan])
    (episode,) = read_episodes(tmp_path / "bag", images=False)
    assert np.nonzero(episode.human)[0].tolist() == list(range(10, 25))
