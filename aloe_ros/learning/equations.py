"""ALOE's equations, one function each (DESIGN section 4). Torch, no ROS.

Shapes: K ensemble heads, B transitions, M sampled chunks, Hc critic chunk steps, D joints.
Transitions carry ``discount`` = gamma^k for the k executed steps (0 when the episode ended),
so partial chunks bootstrap with the right power of gamma without knowing k here.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import nn

from aloe_ros.policies.base import ObservationBatch

__all__ = [
    "AdvantageScale", "Aggregation", "advantage", "advantage_weights", "aggregate_ensemble",
    "bootstrap_value", "chunked_td_target", "critic_td_loss", "polyak_update",
    "sample_critic_chunks", "scale_advantage", "state_value",
]

# How advantages are scaled before the weights: see scale_advantage.
AdvantageScale = Literal["none", "value"]
Aggregation = Literal["min", "mean_minus_std", "subset_min"]


class ChunkSampler(Protocol):
    def sample_actions(self, batch: ObservationBatch, count: int = 1) -> torch.Tensor: ...


class EnsembleCritic(Protocol):
    chunk_length: int

    def __call__(self, observation: ObservationBatch, actions: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor: ...


def aggregate_ensemble(q: torch.Tensor, method: Aggregation = "min", *, beta: float = 1.0,
                       subset: int = 2, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """Conservative aggregation over the ensemble axis 0 of ``q`` (K, ...):

    * ``min``:            agg Q = min_i Q_i                       (the paper's default)
    * ``mean_minus_std``: agg Q = mean_i Q_i - beta * std_i Q_i   (population std)
    * ``subset_min``:     agg Q = min_{i in S} Q_i, S a random subset of ``subset`` heads drawn
                          afresh on every call (REDQ style)
    """
    if method == "min":
        return q.min(dim=0).values
    if method == "mean_minus_std":
        return q.mean(dim=0) - beta * q.std(dim=0, unbiased=False)
    if method == "subset_min":
        heads = torch.randperm(q.shape[0], generator=generator)[:subset].to(q.device)
        return q.index_select(0, heads).min(dim=0).values
    raise ValueError(f"unknown aggregation {method!r}")


def sample_critic_chunks(actor: ChunkSampler, observation: ObservationBatch, samples: int,
                         chunk_length: int) -> torch.Tensor:
    """A ~ pi_theta(. | o) from the actor's *current* weights, cut to the critic's executed part:
    (B, M, chunk_horizon, D) -> (B, M, Hc, D). No gradient flows into the actor."""
    with torch.no_grad():
        chunks = actor.sample_actions(observation, samples)
    return chunks[:, :, :chunk_length, :].detach()


def bootstrap_value(target_critic: EnsembleCritic, actor: ChunkSampler,
                    next_observation: ObservationBatch, *, samples: int,
                    aggregation: Aggregation = "min", beta: float = 1.0, subset: int = 2,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Q_next = 1/M sum_m agg_i Qbar_i(o', A'_m),  A'_m ~ pi_theta(. | o') (current actor).

    The next chunk comes from the policy being improved, not from the logged next action, so
    the target evaluates the current policy instead of the behaviour mixture. Returns (B,).
    """
    chunks = sample_critic_chunks(actor, next_observation, samples, target_critic.chunk_length)
    with torch.no_grad():
        q = target_critic(next_observation, chunks)          # (K, B, M)
    return aggregate_ensemble(q, aggregation, beta=beta, subset=subset,
                              generator=generator).mean(dim=-1)


def chunked_td_target(reward: torch.Tensor, discount: torch.Tensor, done: torch.Tensor,
                      next_value: torch.Tensor) -> torch.Tensor:
    """y = R + gamma^k * (1 - done) * Q_next, with ``discount`` = gamma^k already.

    R is the discounted reward over the k executed steps of the chunk (k < H for partial
    chunks); done = 1 stops the bootstrap. The target is a constant for the critic loss.
    """
    return (reward + discount * (1.0 - done) * next_value).detach()


def critic_td_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_Q = mean_i mean_b (Q_i(o_b, A_b) - y_b)^2: every head regresses the same target."""
    return ((q - target.unsqueeze(0)) ** 2).mean()


def state_value(critic: EnsembleCritic, actor: ChunkSampler, observation: ObservationBatch, *,
                samples: int, aggregation: Aggregation = "min", beta: float = 1.0,
                subset: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """V(o) = 1/M sum_m agg_i Q_i(o, A_m),  A_m ~ pi_theta(. | o). Returns (B,), no grad."""
    chunks = sample_critic_chunks(actor, observation, samples, critic.chunk_length)
    with torch.no_grad():
        q = critic(observation, chunks)                      # (K, B, M)
    return aggregate_ensemble(q, aggregation, beta=beta, subset=subset,
                              generator=generator).mean(dim=-1)


def advantage(q_aggregated: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Adv(o, A) = agg Q(o, A) - V(o)."""
    return q_aggregated - value


def scale_advantage(adv: torch.Tensor, value: torch.Tensor, scale: AdvantageScale,
                    value_floor: float) -> torch.Tensor:
    """The advantage the weights see: as is ("none", the paper), or relative to V(o) ("value").

    With a sparse success reward and a per-step gamma of 0.99, V(o) is gamma^(steps to go):
    ~1 just before success, ~0.01 twenty seconds before it. An absolute advantage is then
    large only near the end of an episode, and a single beta is too flat early and too sharp
    late. ``Adv / max(|V|, floor)`` is the fractional gain over the policy's own value, the
    same for a chunk that saves a second at any distance from the goal (saving 25 steps is
    +0.28 everywhere). The floor keeps critic noise at near-zero values from blowing up.
    """
    if scale == "none":
        return adv
    return adv / value.detach().abs().clamp(min=value_floor)


def advantage_weights(adv: torch.Tensor, beta: float, clip: float) -> torch.Tensor:
    """w = exp(clip(Adv / beta, -c, c)), detached: weights scale the actor loss, never train."""
    return torch.exp(torch.clamp(adv.detach() / beta, -clip, clip))


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """theta_bar <- tau * theta + (1 - tau) * theta_bar for every parameter (buffers copied)."""
    for target_param, param in zip(target.parameters(), online.parameters()):
        target_param.lerp_(param, tau)
    for target_buffer, buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(buffer)
