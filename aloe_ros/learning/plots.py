"""PNG plots of a training run (matplotlib, Agg backend; no display, no ROS).

* ``losses.png``: every ``losses/*`` and ``charts/*`` metric over updates;
* ``distributions.png``: histograms of Q (aggregated), V and advantage, one colour per source;
* ``q_traces.png``: per-episode Q, V and advantage along the episode's chunks, with the chunks
  under human control shaded and the outcome in the title.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["EpisodeTrace", "plot_distributions", "plot_metrics", "plot_q_traces"]

SOURCE_COLOURS = {"demo": "tab:green", "intervention": "tab:orange", "online": "tab:blue",
                  "historical": "tab:gray"}


@dataclass
class EpisodeTrace:
    episode_id: int
    outcome: str
    start: np.ndarray            # chunk start steps
    q: np.ndarray
    value: np.ndarray
    advantage: np.ndarray
    source: list[str] = field(default_factory=list)


def plot_metrics(history: list[dict[str, float]], path: Path) -> Path:
    """One panel per metric, x = update index (rows of ``history`` carry 'update')."""
    keys = sorted({k for row in history for k in row if k != "update"})
    columns = 3
    rows = max(1, (len(keys) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(r["update"], r[key]) for r in history if key in r]
        if points:
            x, y = zip(*points)
            ax.plot(x, y, lw=1)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_distributions(values: dict[str, np.ndarray], sources: list[str], path: Path) -> Path:
    """Histograms of q_aggregated, value and advantage, split by source."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    labels = np.array(sources)
    for ax, key in zip(axes, ("q_aggregated", "value", "advantage")):
        data = np.asarray(values[key])
        bins = np.histogram_bin_edges(data, bins=30) if len(data) else 10
        for source in sorted(set(sources)):
            ax.hist(data[labels == source], bins=bins, alpha=0.55, label=source,
                    color=SOURCE_COLOURS.get(source))
        ax.set_title(key)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_q_traces(traces: list[EpisodeTrace], path: Path) -> Path:
    """Q / V / advantage per chunk along each episode; human chunks shaded."""
    count = max(1, len(traces))
    fig, axes = plt.subplots(count, 1, figsize=(9, 2.4 * count), squeeze=False)
    for ax, trace in zip(axes[:, 0], traces):
        ax.plot(trace.start, trace.q, marker=".", label="agg Q")
        ax.plot(trace.start, trace.value, ls="--", label="V")
        ax.plot(trace.start, trace.advantage, ls=":", label="advantage")
        width: np.ndarray = (np.diff(np.append(trace.start, trace.start[-1] + 1))
                             if len(trace.start) else np.zeros(0))
        for x, w, source in zip(trace.start, width, trace.source):
            if source in ("intervention", "demo"):
                ax.axvspan(x, x + w, color="tab:orange", alpha=0.2, lw=0)
        ax.set_title(f"episode {trace.episode_id} ({trace.outcome}); shaded: human control",
                     fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
