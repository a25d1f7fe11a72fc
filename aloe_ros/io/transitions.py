"""Chunk transitions cut from episodes: the unit of data of ALOE's learner (no ROS).

    (o_t, A_t = a_t..a_{t+k-1}, R_t = sum_{i<k} gamma^i r_{t+i}, o_{t+k}, done, source, version)

A chunk normally spans ``execute_horizon`` steps. It ends early (a *partial* chunk, k smaller)
where control changes hands (takeover / handback) or the episode ends, so that a chunk never
mixes human and policy actions. Partial chunks are kept, never dropped: their actions are padded
to the full length by repeating the last executed action, ``valid_steps`` says how many are
real, and the bootstrap discount is gamma^k for the k steps actually executed.

Chunks start where the previous one ended (the robot's own chunk boundaries). With ``stride``
s > 0 a chunk starts every s steps instead (overlapping chunks): each is still a true
transition (the actions executed from o_t for k steps, their reward, o_{t+k}), and the learner
sees every s-th observation instead of one per chunk, as behaviour cloning does.

A takeover censors the policy's rollout: what it would have done next is never seen, and a
critic that bootstraps through the human's rescue learns that the stalling policy succeeds.
With ``takeover_penalty`` p > 0 (RLIF-style, off by default) a policy chunk that runs into a
takeover ends there: its last policy step earns -p and the chunk is terminal (done, nothing to
bootstrap from). The human's steps after it are transitions of their own, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from aloe_ros.io.episodes import Episode
from aloe_ros.policies.base import Observation

__all__ = ["ChunkTransition", "chunk_boundaries", "chunk_spans", "episode_to_transitions",
           "same_control_end", "step_source", "takeover_steps"]


@dataclass
class ChunkTransition:
    episode_id: int
    start: int                       # step index t of the chunk's first action
    observation: Observation         # o_t
    actions: np.ndarray              # (chunk_length, D) executed actions, padded past valid_steps
    valid_steps: int                 # k, the executed steps (k < chunk_length: partial chunk)
    reward: float                    # sum_{i<k} gamma^i r_{t+i}
    discount: float                  # gamma^k (0 when done: nothing to bootstrap from)
    next_observation: Observation    # o_{t+k}
    done: bool                       # the episode ended in success/failure inside this chunk
    source: str                      # demo | intervention | online | historical
    policy_version: str              # "" for human chunks


def step_source(episode: Episode, step: int, current_version: str | None) -> str:
    """Source label of one step: who produced its action, relative to the current policy."""
    if episode.human[step]:
        return "demo" if episode.source == "demo" else "intervention"
    if episode.source == "demo":
        return "demo"
    version = episode.policy_versions[step]
    if current_version is None or version == current_version:
        return "online"
    return "historical"


def chunk_boundaries(episode: Episode, execute_horizon: int) -> Iterator[tuple[int, int]]:
    """(start, end) step ranges: at most ``execute_horizon`` long, split where control changes.

    The final step of a truncated episode (no outcome) starts no chunk of its own and ends
    none: there is no next observation after it to bootstrap from. The last step before a hole
    in the recording (an episode joined across bags) is treated the same way, so no chunk
    reaches across steps that were never recorded.
    """
    for stretch_start, stretch_end in episode.stretches():
        ends_episode = stretch_end == len(episode)
        last = stretch_end if ends_episode and episode.done else stretch_end - 1
        start = stretch_start
        while start < last:
            end = min(same_control_end(episode, start, execute_horizon), last)
            yield start, end
            start = end


def chunk_spans(episode: Episode, execute_horizon: int, stride: int = 0
                ) -> Iterator[tuple[int, int]]:
    """(start, end) of each transition: the chunk boundaries (stride 0), or a start every
    ``stride`` steps of each run of one actor, each at most ``execute_horizon`` long and never
    past that run (so a chunk never mixes who acted)."""
    if stride <= 0:
        yield from chunk_boundaries(episode, execute_horizon)
        return
    for run_start, run_end in chunk_boundaries(episode, len(episode)):
        for start in range(run_start, run_end, stride):
            yield start, min(start + execute_horizon, run_end)


def same_control_end(episode: Episode, start: int, horizon: int) -> int:
    """End (exclusive) of the steps from ``start`` on, at most ``horizon``, that the same
    actor produced: the same human flag and the same policy version as at ``start``, and no
    hole in the recording between them."""
    end = min(start + horizon, episode.stretch_end(start))
    human = np.asarray(episode.human[start:end], dtype=bool)
    versions = np.asarray(episode.policy_versions[start:end])
    changed = np.flatnonzero((human != human[0]) | (versions != versions[0]))
    return start + int(changed[0]) if changed.size else end


def takeover_steps(episode: Episode) -> np.ndarray:
    """Steps where a human took control from the policy: the first human step after a policy
    step (demos, all human, have none). A change of hands inside a hole in the recording is
    not counted: when the policy's run ended there was not seen."""
    human = np.asarray(episode.human, dtype=bool)
    steps = np.flatnonzero(human[1:] & ~human[:-1]) + 1
    return steps[~np.isin(steps, episode.hole_starts)]


def _observation(episode: Episode, step: int) -> Observation:
    return Observation(images={name: frames[step] for name, frames in episode.images.items()},
                       state=episode.states[step], task=episode.task,
                       stamp=float(episode.timestamps[step]))


def episode_to_transitions(episode: Episode, *, chunk_length: int, execute_horizon: int,
                           gamma: float, current_version: str | None = None, stride: int = 0,
                           takeover_penalty: float = 0.0) -> list[ChunkTransition]:
    """Cut one episode into chunk transitions (see module docstring)."""
    if not 1 <= execute_horizon <= chunk_length:
        raise ValueError(f"execute_horizon {execute_horizon} must be in [1, {chunk_length}]")
    if takeover_penalty < 0:
        raise ValueError(f"takeover_penalty must be >= 0, got {takeover_penalty}")
    transitions = []
    steps = len(episode)
    taken_over = set(takeover_steps(episode).tolist()) if takeover_penalty > 0 else set()
    for start, end in chunk_spans(episode, execute_horizon, stride):
        k = end - start
        executed = episode.actions[start:end].astype(np.float32)
        padded = np.concatenate([executed, np.repeat(executed[-1:], chunk_length - k, axis=0)])
        discounts = gamma ** np.arange(k)
        reward = float(np.sum(discounts * episode.rewards[start:end]))
        done = episode.done and end == steps
        if end in taken_over:  # a policy chunk cut by a takeover (chunks never mix actors)
            reward -= takeover_penalty * float(gamma ** (k - 1))
            done = True
        next_step = min(end, steps - 1)
        transitions.append(ChunkTransition(
            episode_id=episode.episode_id, start=start,
            observation=_observation(episode, start), actions=padded, valid_steps=k,
            reward=reward, discount=0.0 if done else float(gamma ** k),
            next_observation=_observation(episode, next_step), done=done,
            source=step_source(episode, start, current_version),
            policy_version="" if episode.human[start] else episode.policy_versions[start],
        ))
    return transitions
