"""Baselines of the paper's comparison, behind the same trainer interface (torch, no ROS).

* ``DaggerTrainer`` (HG-DAgger): behaviour cloning, flow matching with weight 1 on human data
  (demonstrations, interventions) and on every chunk of an episode the policy finished alone
  (success, no takeover), 0 elsewhere. The policy's chunks of an assisted success are what
  made the operator take over: imitating them would teach the failure.
* ``AwrMcTrainer`` (progress-style value, as in RECAP / pi*0.6): V(o) regressed on Monte-Carlo
  returns G_t of the logged data, Adv = R_t + gamma^k V(o_{t+k}) - V(o_t), actor weighted by
  exp(clip(Adv / beta, -c, c)). Its value evaluates the behaviour mixture, not the current
  policy; that is the contrast ALOE's chunked TD draws.
* 1-step TD is :class:`aloe_ros.learning.aloe_trainer.AloeTrainer` on one-step chunks.
"""

from __future__ import annotations

from typing import Any

import torch

from aloe_ros.config import LearningConfig
from aloe_ros.io.episodes import HUMAN_SOURCES
from aloe_ros.learning.batch import TransitionBatch
from aloe_ros.learning.critic import ValueNetwork
from aloe_ros.learning.trainer_base import (
    ActorWeights,
    GradientSync,
    TrainerBase,
    advantage_actor_weights,
    weight_shares,
)
from aloe_ros.policies.base import TrainableChunkPolicy

__all__ = ["AwrMcTrainer", "DaggerTrainer", "dagger_weights", "monte_carlo_value_loss",
           "n_step_advantage"]


def dagger_weights(batch: TransitionBatch) -> torch.Tensor:
    """w = 1 for demo / intervention chunks and chunks of episodes that succeeded without a
    takeover, else 0."""
    human = torch.tensor([s in HUMAN_SOURCES for s in batch.source],
                         dtype=torch.float32, device=batch.reward.device)
    if batch.assisted is None:
        raise ValueError("dagger_weights needs batch.assisted (ChunkReplay batches carry it)")
    alone = batch.success * (1.0 - batch.assisted.to(batch.success.device))
    return torch.clamp(human + alone, max=1.0)


def monte_carlo_value_loss(value: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """L_V = mean_b (V(o_b) - G_b)^2 with G_t the Monte-Carlo return of the logged episode."""
    return ((value - mc_return) ** 2).mean()


def n_step_advantage(reward: torch.Tensor, discount: torch.Tensor, done: torch.Tensor,
                     value: torch.Tensor, next_value: torch.Tensor) -> torch.Tensor:
    """Adv = R_t + gamma^k (1 - done) V(o_{t+k}) - V(o_t), V the Monte-Carlo value."""
    return reward + discount * (1.0 - done) * next_value - value


class DaggerTrainer(TrainerBase):
    method = "dagger"

    def __init__(self, actor: TrainableChunkPolicy, config: LearningConfig, *,
                 device: str | torch.device = "cpu",
                 gradient_sync: GradientSync | None = None) -> None:
        super().__init__(actor, config, device=device, gradient_sync=gradient_sync)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        weights = self.actor_weights(batch).weights
        stats = {"charts/weight_mean": float(weights.mean()),
                 **weight_shares(weights, batch.source)}
        # Nothing to imitate in this batch: skip rather than step on a zero loss.
        if float(weights.sum()) > 0:
            stats["losses/actor"] = self.actor_update(batch, weights)
        self.step += 1
        return stats

    def actor_weights(self, batch: TransitionBatch) -> ActorWeights:
        """No critic: the weights are the data filter, advantage and value 0."""
        batch = batch.to(self.device)
        zeros = torch.zeros(len(batch), device=self.device)
        return ActorWeights(zeros, zeros, dagger_weights(batch))

    def evaluate(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        zeros = torch.zeros(len(batch))
        return {"q_mean": zeros, "q_std": zeros, "q_aggregated": zeros, "value": zeros,
                "advantage": zeros}

    def state_dict(self) -> dict[str, Any]:
        return self.base_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)


class AwrMcTrainer(TrainerBase):
    method = "awr_mc"

    def __init__(self, actor: TrainableChunkPolicy, value_net: ValueNetwork,
                 config: LearningConfig, *, device: str | torch.device = "cpu",
                 gradient_sync: GradientSync | None = None) -> None:
        super().__init__(actor, config, device=device, gradient_sync=gradient_sync)
        self.value_net = value_net.to(self.device)
        self.value_optimizer = torch.optim.Adam(self.value_net.parameters(), lr=config.critic_lr)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg = self.config
        batch = batch.to(self.device)
        value = self.value_net(batch.observation)
        value_loss = monte_carlo_value_loss(value, batch.mc_return)
        self.optimise(self.value_optimizer, value_loss, self.value_net.parameters())
        stats = {"losses/value": float(value_loss.detach()),
                 "charts/value": float(value.detach().mean())}
        if self.step >= cfg.critic_warmup_updates:
            adv, _, weights = self.actor_weights(batch)
            stats.update({"losses/actor": self.actor_update(batch, weights),
                          "charts/advantage": float(adv.mean()),
                          "charts/weight_mean": float(weights.mean()),
                          **weight_shares(weights, batch.source)})
        self.step += 1
        return stats

    def actor_weights(self, batch: TransitionBatch) -> ActorWeights:
        """Adv from the value net as it is now, and the actor's weights."""
        batch = batch.to(self.device)
        adv, value = self._advantage(batch)
        return advantage_actor_weights(adv, value, batch, self.config)

    def _advantage(self, batch: TransitionBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(Adv, V(o)) from the value net as it is now, no grad."""
        with torch.no_grad():
            value = self.value_net(batch.observation)
            adv = n_step_advantage(batch.reward, batch.discount, batch.done, value,
                                   self.value_net(batch.next_observation))
        return adv, value

    def evaluate(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        batch = batch.to(self.device)
        adv, value = self._advantage(batch)
        q = (value + adv).cpu()
        return {"q_mean": q, "q_std": torch.zeros_like(q), "q_aggregated": q,
                "value": value.cpu(), "advantage": adv.cpu()}

    def state_dict(self) -> dict[str, Any]:
        state = self.base_state()
        state.update(value_net=self.value_net.state_dict(),
                     value_optimizer=self.value_optimizer.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)
        self.value_net.load_state_dict(state["value_net"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
