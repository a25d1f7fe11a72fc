"""`aloe-ros plot episode`: a figure (and video) of one recorded episode, critic included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bag_synth import T0_NS, EpisodePlan, small_camera_overrides, write_synthetic_bag
from helpers import write_task_config

from aloe_ros.cli import main as aloe_ros
from aloe_ros.config import load_task_config
from aloe_ros.io.episode_plot import human_spans
from aloe_ros.io.episodes import Episode


def critic_stats(episode_id: int, count: int) -> list[tuple[str, str, int, object]]:
    from aloe_ros.msg import CriticStats

    out = []
    for k in range(count):
        msg = CriticStats(episode_id=episode_id, chunk_id=k, q_aggregated=0.1 * k, q_std=0.05,
                          value=0.1, advantage=0.1 * k - 0.1)
        t_ns = T0_NS + int((0.5 + 0.3 * k) * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
        out.append(("/aloe/critic/stats", "aloe_ros/msg/CriticStats", t_ns, msg))
    return out


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    config = load_task_config(write_task_config(tmp_path, overrides=small_camera_overrides()))
    plans = [EpisodePlan(steps=60, takeover_at=20, handback_at=35)]
    write_synthetic_bag(tmp_path / "bag", config, plans, extra=critic_stats(0, 4))
    return tmp_path / "bag"


def test_plot_episode_writes_a_figure_and_a_video(bag: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out, video = tmp_path / "episode.png", tmp_path / "episode.mp4"
    code = aloe_ros(["plot", "episode", str(bag), "--episode", "0", "--out", str(out),
                     "--mp4", str(video)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "4 critic points" in printed
    assert out.stat().st_size > 10_000 and video.stat().st_size > 1_000
    import cv2

    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) >= 50
    capture.release()


def test_unknown_episode_lists_the_ones_there(bag: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = aloe_ros(["plot", "episode", str(bag), "--episode", "7", "--out",
                     str(tmp_path / "x.png")])
    assert code == 2
    assert "no episode 7; episodes: 0" in capsys.readouterr().out


def test_missing_bag_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = aloe_ros(["plot", "episode", str(tmp_path / "nope"), "--episode", "0", "--out",
                     str(tmp_path / "x.png")])
    assert code == 2
    assert "no such bag" in capsys.readouterr().out


def test_human_spans_follow_the_human_flags() -> None:
    steps = 10
    human = np.zeros(steps, bool)
    human[2:5] = True
    human[8:] = True
    episode = Episode(task="t", joint_names=["a"], control_rate_hz=10.0,
                      timestamps=np.arange(steps) / 10.0, images={},
                      states=np.zeros((steps, 1), np.float32),
                      actions=np.zeros((steps, 1), np.float32), human=human,
                      policy_versions=[""] * steps, rewards=np.zeros(steps, np.float32))
    assert human_spans(episode) == [(0.2, 0.5), (0.8, 1.0)]
