"""The one trainer interface shared by ALOE and the baselines (torch, no ROS).

``update(batch) -> stats`` (metrics named ``losses/*`` and ``charts/*``), ``evaluate(batch)``
(per-row Q, ensemble std, V and advantage, for CriticStats and plots), ``state_dict`` /
``load_state_dict`` (critic, target, optimisers, step; the actor's weights are saved as a
policy directory by the learner, not here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from aloe_ros.config import LearningConfig
from aloe_ros.io.episodes import HUMAN_SOURCES, SOURCES
from aloe_ros.learning.batch import TransitionBatch
from aloe_ros.learning.equations import advantage_weights, scale_advantage
from aloe_ros.policies.base import TrainableChunkPolicy

__all__ = ["ActorWeights", "GradientSync", "Trainer", "TrainerBase", "advantage_actor_weights",
           "scale_assisted_policy_chunks", "weight_shares"]

# Called between backward() and the optimiser step, e.g. to all-reduce gradients across ranks.
GradientSync = Callable[[list[nn.Parameter]], None]


def scale_assisted_policy_chunks(weights: torch.Tensor, batch: TransitionBatch,
                                 factor: float) -> torch.Tensor:
    """``learning.assisted_policy_weight``: multiply the actor-loss weight of the policy's own
    chunks (online / historical) of assisted episodes by ``factor``. 1 leaves the weights as
    they are (the paper: advantage weighting on everything); 0 drops those chunks as HG-DAgger
    does, since in an assisted episode the policy needed rescuing whatever its advantage says.
    Demos, interventions and episodes without a takeover keep their weights."""
    if factor == 1.0:
        return weights
    if batch.assisted is None:
        raise ValueError("assisted_policy_weight needs batch.assisted (ChunkReplay batches "
                         "carry it)")
    policy = torch.tensor([s not in HUMAN_SOURCES for s in batch.source],
                          dtype=weights.dtype, device=weights.device)
    assisted = batch.assisted.to(device=weights.device, dtype=weights.dtype)
    return weights * (1.0 - policy * assisted * (1.0 - factor))


class ActorWeights(NamedTuple):
    """Per row of a batch: what the actor loss weighs it by now, and why (no grad).
    ``advantage`` and ``value`` are 0 for a method without a critic (HG-DAgger)."""

    advantage: torch.Tensor
    value: torch.Tensor
    weights: torch.Tensor


def advantage_actor_weights(adv: torch.Tensor, value: torch.Tensor, batch: TransitionBatch,
                            config: LearningConfig) -> ActorWeights:
    """The critic methods' weights: Adv scaled per ``advantage_scale``, then
    exp(clip(Adv / beta, -c, c)), then ``assisted_policy_weight`` on the policy's chunks of
    assisted episodes. One function, so ALOE, td1, AWR-MC and the analysis tools agree."""
    scaled = scale_advantage(adv, value, config.advantage_scale, config.advantage_value_floor)
    weights = scale_assisted_policy_chunks(
        advantage_weights(scaled, config.advantage_beta, config.advantage_clip), batch,
        config.assisted_policy_weight)
    return ActorWeights(adv.detach(), value.detach(), weights.detach())


def weight_shares(weights: torch.Tensor, sources: list[str]) -> dict[str, float]:
    """Each source's share of the batch's total actor-loss weight, as
    ``charts/weight_share/<source>``: set beside the sampling ratios, it says whether a method
    up-weights the operator's takeovers or imitates everything alike. Every source is reported,
    0 when the batch drew none of it, so a mean over updates is not taken over only the
    batches that happened to sample a rare source. Empty when all weights are 0."""
    total = float(weights.sum())
    if total <= 0 or len(sources) != len(weights):
        return {}
    rows = weights.detach().cpu()
    return {f"charts/weight_share/{label}":
            float(rows[torch.tensor([s == label for s in sources])].sum()) / total
            for label in dict.fromkeys((*SOURCES, *sources))}


@runtime_checkable
class Trainer(Protocol):
    method: str
    actor: TrainableChunkPolicy
    step: int

    def update(self, batch: TransitionBatch) -> dict[str, float]: ...

    def evaluate(self, batch: TransitionBatch) -> dict[str, torch.Tensor]: ...

    def actor_weights(self, batch: TransitionBatch) -> ActorWeights: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TrainerBase:
    """Device handling, optimiser steps with clipping and gradient sync, save/load plumbing."""

    method = "base"

    def __init__(self, actor: TrainableChunkPolicy, config: LearningConfig, *,
                 device: str | torch.device = "cpu",
                 gradient_sync: GradientSync | None = None) -> None:
        self.actor = actor
        self.config = config
        self.device = torch.device(device)
        self.gradient_sync = gradient_sync
        self.step = 0
        move = getattr(actor, "to", None)
        if callable(move):  # an actor built on the CPU follows the learner's device
            move(self.device)
        _set_train(actor, False)
        self.actor_params = [p for p in actor.parameters() if p.requires_grad]
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=config.actor_lr)
        self.generator = torch.Generator().manual_seed(config.seed)

    def optimise(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                 params: Iterable[nn.Parameter]) -> float:
        """zero_grad, backward, gradient sync (data-parallel), clip to grad_clip_norm, step.

        Returns the gradient norm before clipping.
        """
        params = list(params)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.gradient_sync is not None:
            self.gradient_sync(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip_norm)
        optimizer.step()
        return float(norm)

    def actor_update(self, batch: TransitionBatch, weights: torch.Tensor) -> float:
        """One step of weighted flow matching on the batch's target chunks; returns the loss."""
        _set_train(self.actor, True)
        try:
            loss = self.actor.flow_matching_loss(batch.observation, batch.target_actions,
                                                 weights=weights.detach(),
                                                 action_mask=batch.target_mask)
            self.optimise(self.actor_optimizer, loss, self.actor_params)
        finally:
            # Chunks for targets and V(o) are sampled as the robot would: eval mode.
            _set_train(self.actor, False)
        return float(loss.detach())

    def base_state(self) -> dict[str, Any]:
        return {"method": self.method, "step": self.step,
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_base_state(self, state: dict[str, Any]) -> None:
        if state.get("method") != self.method:
            raise ValueError(f"checkpoint is for method {state.get('method')!r}, "
                             f"this trainer is {self.method!r}")
        self.step = int(state["step"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        # The sampling generator lives on the CPU; a state loaded with map_location="cuda"
        # arrives as a CUDA tensor, which set_state refuses.
        self.generator.set_state(state["generator"].cpu())


def _set_train(module: object, mode: bool) -> None:
    train = getattr(module, "train", None)
    if callable(train):
        train(mode)
