"""ALOE's update (and the 1-step TD baseline, the same update on one-step chunks). Torch, no ROS.

One ``update(batch)`` reads top to bottom in the order of DESIGN section 4:

1. chunked TD target from the *current* actor: y = R + gamma^k (1 - done) agg_i Qbar_i(o', A');
2. critic step on the mean squared TD error of all K heads, then Polyak averaging of targets;
3. (after ``critic_warmup_updates``) V(o) from M sampled chunks, Adv = agg Q(o, A) - V(o),
   w = exp(clip(Adv / beta, -c, c)), and one step of w-weighted flow matching on the actor.

With ``method: td1`` the replay cuts one-step chunks (critic_chunk = 1), so the same code is a
per-step critic Q(o_t, a_t) bootstrapped from o_{t+1}: the 1-step TD baseline.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from aloe_ros.config import LearningConfig
from aloe_ros.learning.batch import TransitionBatch
from aloe_ros.learning.critic import CriticEnsemble
from aloe_ros.learning.equations import (
    advantage,
    aggregate_ensemble,
    bootstrap_value,
    chunked_td_target,
    critic_td_loss,
    polyak_update,
    state_value,
)
from aloe_ros.learning.trainer_base import (
    ActorWeights,
    GradientSync,
    TrainerBase,
    advantage_actor_weights,
    weight_shares,
)
from aloe_ros.policies.base import TrainableChunkPolicy

__all__ = ["AloeTrainer"]


class AloeTrainer(TrainerBase):
    method = "aloe"

    def __init__(self, actor: TrainableChunkPolicy, critic: CriticEnsemble,
                 config: LearningConfig, *, device: str | torch.device = "cpu",
                 gradient_sync: GradientSync | None = None, method: str = "aloe") -> None:
        super().__init__(actor, config, device=device, gradient_sync=gradient_sync)
        self.method = method
        self.critic = critic.to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)

    def _aggregate(self, q: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return aggregate_ensemble(q, cfg.aggregation, beta=cfg.aggregation_beta,
                                  subset=cfg.aggregation_subset, generator=self.generator)

    def _state_value(self, batch: TransitionBatch) -> torch.Tensor:
        cfg = self.config
        return state_value(self.critic, self.actor, batch.observation,
                           samples=cfg.value_samples, aggregation=cfg.aggregation,
                           beta=cfg.aggregation_beta, subset=cfg.aggregation_subset,
                           generator=self.generator)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg = self.config
        batch = batch.to(self.device)
        # 1. Target: bootstrap from chunks the CURRENT actor samples at o', not logged actions.
        next_value = bootstrap_value(
            self.target_critic, self.actor, batch.next_observation,
            samples=cfg.bootstrap_samples, aggregation=cfg.aggregation,
            beta=cfg.aggregation_beta, subset=cfg.aggregation_subset, generator=self.generator)
        target = chunked_td_target(batch.reward, batch.discount, batch.done, next_value)
        # 2. Critic step on every head, then the slow target copy.
        q = self.critic(batch.observation, batch.actions, batch.action_mask)
        critic_loss = critic_td_loss(q, target)
        critic_grad = self.optimise(self.critic_optimizer, critic_loss,
                                    self.critic.parameters())
        polyak_update(self.target_critic, self.critic, cfg.tau)
        stats = {
            "losses/critic": float(critic_loss.detach()), "charts/critic_grad_norm": critic_grad,
            "charts/td_target": float(target.mean()), "charts/q_mean": float(q.detach().mean()),
            "charts/q_ensemble_std": float(q.detach().std(dim=0, unbiased=False).mean()),
        }
        # 3. Actor: advantage-weighted flow matching (weights detached, V a constant).
        if self.step >= cfg.critic_warmup_updates:
            adv, value, weights = self.actor_weights(batch)
            stats.update({
                "losses/actor": self.actor_update(batch, weights),
                "charts/value": float(value.mean()), "charts/advantage": float(adv.mean()),
                "charts/advantage_std": float(adv.std(unbiased=False)),
                "charts/weight_mean": float(weights.mean()),
                "charts/weight_max": float(weights.max()),
                **weight_shares(weights, batch.source),
            })
        self.step += 1
        return stats

    def actor_weights(self, batch: TransitionBatch) -> ActorWeights:
        """Adv = agg Q(o, A) - V(o) from the critic as it is now, and the actor's weights."""
        batch = batch.to(self.device)
        with torch.no_grad():
            q_agg = self._aggregate(self.critic(batch.observation, batch.actions,
                                                batch.action_mask))
        value = self._state_value(batch)
        return advantage_actor_weights(advantage(q_agg, value), value, batch, self.config)

    def evaluate(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        """Per row: Q mean / std over heads, aggregated Q, V(o) and advantage (no grad)."""
        batch = batch.to(self.device)
        with torch.no_grad():
            q = self.critic(batch.observation, batch.actions, batch.action_mask)
            q_agg = self._aggregate(q)
            value = self._state_value(batch)
        return {"q_mean": q.mean(dim=0).cpu(), "q_std": q.std(dim=0, unbiased=False).cpu(),
                "q_aggregated": q_agg.cpu(), "value": value.cpu(),
                "advantage": advantage(q_agg, value).cpu()}

    def state_dict(self) -> dict[str, Any]:
        state = self.base_state()
        state.update(critic=self.critic.state_dict(),
                     target_critic=self.target_critic.state_dict(),
                     critic_optimizer=self.critic_optimizer.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)
        self.critic.load_state_dict(state["critic"])
        self.target_critic.load_state_dict(state["target_critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
