"""How a trained method weighs the operator's takeovers in the actor loss (torch, no ROS).

The question behind it: a takeover often starts with a grab-and-correct (the operator moving
the wrong way first) before the useful correction. HG-DAgger imitates all of it alike; a
critic-weighted actor can only do better if its weights tell the start of a takeover from the
rest. This scores every logged chunk of some episodes with a trained method's
``actor_weights`` (what its actor loss would weigh the chunk by now) and sums them up per
group:

* ``takeover start``: intervention chunks whose first step lies within ``start_s`` of the
  start of their human run (the takeover press);
* ``takeover rest``: the later intervention chunks;
* ``policy, assisted episode`` / ``policy, unassisted episode``: the policy's own chunks;
* ``demo``: demonstrations.

A chunk is grouped by its first step, so the last chunks of ``takeover start`` reach past
``start_s``. Weights come from the method's own code, so the numbers are those of training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from aloe_ros.io.episodes import Episode
from aloe_ros.learning.replay import ChunkReplay
from aloe_ros.learning.trainer_base import Trainer

__all__ = ["GROUPS", "GroupStats", "chunk_groups", "takeover_weight_stats", "weights_table"]

GROUPS = ("takeover start", "takeover rest", "policy, assisted episode",
          "policy, unassisted episode", "demo")


@dataclass
class GroupStats:
    chunks: int
    advantage_mean: float
    weight_mean: float
    weight_median: float
    # This group's part of the summed actor-loss weight over all scored chunks.
    weight_share: float


def human_run_starts(human: np.ndarray) -> np.ndarray:
    """Per step: the step its human run began at (-1 where the policy acted)."""
    starts = np.full(len(human), -1, dtype=np.int64)
    for step, is_human in enumerate(np.asarray(human, dtype=bool)):
        if is_human:
            starts[step] = starts[step - 1] if step > 0 and starts[step - 1] >= 0 else step
    return starts


def chunk_groups(kinds: Iterable[str], chunk_starts: Iterable[int], human: np.ndarray,
                 assisted: bool, start_steps: int) -> list[str]:
    """The group of each chunk (see the module doc) from the replay's kind per chunk
    (demo | intervention | policy) and the episode's per-step human mask."""
    run_start = human_run_starts(human)
    groups = []
    for kind, start in zip(kinds, chunk_starts):
        if kind == "intervention":
            since = int(start) - int(run_start[int(start)])
            groups.append("takeover start" if since < start_steps else "takeover rest")
        elif kind == "policy":
            groups.append("policy, assisted episode" if assisted
                          else "policy, unassisted episode")
        else:
            groups.append("demo")
    return groups


def takeover_weight_stats(trainer: Trainer, replay: ChunkReplay, episodes: list[Episode], *,
                          start_s: float, control_rate_hz: float,
                          progress: Callable[[int, int], None] | None = None
                          ) -> dict[str, GroupStats]:
    """Score every chunk of ``episodes`` (added to ``replay``, built with the trainer's
    settings) with ``trainer.actor_weights``; stats per group, groups with chunks only."""
    if start_s <= 0:
        raise ValueError(f"start_s must be > 0, got {start_s}")
    start_steps = max(1, int(round(start_s * control_rate_hz)))
    rows: dict[str, list[tuple[float, float]]] = {group: [] for group in GROUPS}
    for index, episode in enumerate(episodes):
        if replay.add_episode(episode) > 0:
            segment_index = len(replay.segments) - 1
            segment = replay.segments[segment_index]
            with torch.no_grad():
                scored = trainer.actor_weights(replay.episode_batch(segment_index))
            advantages = scored.advantage.cpu().numpy()
            weights = scored.weights.cpu().numpy()
            groups = chunk_groups(segment.kind, segment.start, episode.human,
                                  segment.assisted, start_steps)
            for group, adv, weight in zip(groups, advantages, weights):
                rows[group].append((float(adv), float(weight)))
        if progress is not None:
            progress(index + 1, len(episodes))
    total = sum(w for values in rows.values() for _, w in values)
    stats = {}
    for group, values in rows.items():
        if not values:
            continue
        adv, weight = np.array(values).T
        stats[group] = GroupStats(len(values), float(adv.mean()), float(weight.mean()),
                                  float(np.median(weight)),
                                  float(weight.sum() / total) if total > 0 else 0.0)
    return stats


def weights_table(stats: dict[str, GroupStats]) -> str:
    """A markdown table of the groups."""
    lines = ["| chunks | n | mean advantage | mean weight | median weight | weight share |",
             "|---|---|---|---|---|---|"]
    for group, s in stats.items():
        lines.append(f"| {group} | {s.chunks} | {s.advantage_mean:+.3f} | {s.weight_mean:.2f} "
                     f"| {s.weight_median:.2f} | {100 * s.weight_share:.0f} % |")
    return "\n".join(lines)
