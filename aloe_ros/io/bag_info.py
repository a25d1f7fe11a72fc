"""What is in a bag, for ``aloe-ros bag info`` (no ROS): topics, rates, episodes, interventions.

Episodes come from the same reader as the learner's (io/bag_episodes, without images), so the
numbers shown here are the numbers training sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aloe_ros.io.bag_episodes import read_episodes
from aloe_ros.io.bag_reader import Bag

__all__ = ["BagSummary", "EpisodeSummary", "TopicLine", "format_summary", "summarize_bag"]


@dataclass
class TopicLine:
    topic: str
    msgtype: str
    count: int
    rate_hz: float


@dataclass
class EpisodeSummary:
    episode_id: int
    rows: int
    duration_s: float
    outcome: str
    reward: float
    interventions: int
    human_share: float
    policy_versions: list[str]


@dataclass
class BagSummary:
    path: str
    task: str
    duration_s: float
    messages: int
    topics: list[TopicLine]
    episodes: list[EpisodeSummary] = field(default_factory=list)
    interventions: int = 0
    human_share: float = 0.0
    lost_messages: dict[str, int] = field(default_factory=dict)
    policy_versions: list[str] = field(default_factory=list)
    repaired: bool = False
    episode_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_bag(path: Path | str) -> BagSummary:
    """Summarize one bag; episodes need the task config recorded in the bag."""
    with Bag(path) as bag:
        duration = bag.duration_s
        topics = [TopicLine(t.name, t.msgtype, t.count,
                            t.count / duration if duration > 0 else 0.0)
                  for t in sorted(bag.topics.values(), key=lambda t: t.name)]
        summary = BagSummary(
            path=str(bag.path), task=bag.custom_data.get("aloe_ros.task", "?"),
            duration_s=duration, messages=bag.message_count, topics=topics,
            lost_messages=bag.custom_json("aloe_ros.lost_messages", {}),
            policy_versions=bag.custom_json("aloe_ros.policy_versions", []),
            repaired=bag.custom_data.get("aloe_ros.repaired") == "true")
        if bag.task_config() is None:
            summary.episode_error = "no task config recorded: episodes not shown"
            return summary
        episodes = read_episodes(bag, images=False)
    rows = 0
    human_rows = 0
    for episode in episodes:
        steps = len(episode)
        rows += steps
        human_rows += int(episode.human.sum())
        outcome = episode.metadata.get("outcome", "")
        summary.episodes.append(EpisodeSummary(
            episode_id=episode.episode_id, rows=steps,
            duration_s=steps / episode.control_rate_hz, outcome=outcome,
            reward=float(np.sum(episode.rewards)),
            interventions=int(episode.metadata.get("interventions", "0")),
            human_share=float(episode.human.mean()) if steps else 0.0,
            policy_versions=sorted({v for v in episode.policy_versions if v})))
        summary.interventions += summary.episodes[-1].interventions
    summary.human_share = human_rows / rows if rows else 0.0
    return summary


def format_summary(summary: BagSummary) -> str:
    """Human-readable text of a summary."""
    lines = [f"bag:          {summary.path}" + ("  (repaired)" if summary.repaired else ""),
             f"task:         {summary.task}",
             f"duration:     {summary.duration_s:.1f} s, {summary.messages} messages",
             f"policy versions seen: {', '.join(summary.policy_versions) or 'none'}"]
    lost = sum(summary.lost_messages.values())
    lines.append(f"lost while recording: {lost}" + (
        " (" + ", ".join(f"{t} {n}" for t, n in summary.lost_messages.items()) + ")"
        if lost else ""))
    lines.append("topics:")
    width = max((len(t.topic) for t in summary.topics), default=10)
    for t in summary.topics:
        lines.append(f"  {t.topic:<{width}}  {t.count:>8}  {t.rate_hz:7.1f} Hz  {t.msgtype}")
    if summary.episode_error:
        lines.append(summary.episode_error)
        return "\n".join(lines)
    outcomes: dict[str, int] = {}
    for e in summary.episodes:
        outcomes[e.outcome] = outcomes.get(e.outcome, 0) + 1
    lines.append(f"episodes:     {len(summary.episodes)} ("
                 + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + ")")
    lines.append(f"interventions: {summary.interventions}, steps under human control: "
                 f"{100 * summary.human_share:.1f} %")
    for e in summary.episodes:
        lines.append(f"  episode {e.episode_id:>3}: {e.rows:>5} steps {e.duration_s:6.1f} s  "
                     f"{e.outcome:<9} reward {e.reward:g}  takeovers {e.interventions}  "
                     f"human {100 * e.human_share:5.1f} %  policy "
                     f"{', '.join(e.policy_versions) or '-'}")
    return "\n".join(lines)
