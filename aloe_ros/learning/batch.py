"""The learner's unit of work: a batch of chunk transitions as torch tensors (no ROS).

One row is ``(o_t, A_t, R_t, discount_t = gamma^k or 0, o_{t+k}, done)`` plus what the actor
update needs: the *target chunk*, the next ``chunk_horizon`` actions actually executed in the
episode from step t by the same actor (it stops at a takeover / handback; padded by repeating
the last one, with a mask), and the Monte-Carlo return
G_t for the progress-style baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from aloe_ros.policies.base import ObservationBatch

__all__ = ["TransitionBatch"]


@dataclass
class TransitionBatch:
    observation: ObservationBatch      # o_t
    actions: torch.Tensor              # (B, Hc, D) executed chunk for the critic, padded
    action_mask: torch.Tensor          # (B, Hc) float, 1 on the k executed steps
    reward: torch.Tensor               # (B,) R_t = sum_{i<k} gamma^i r_{t+i}
    discount: torch.Tensor             # (B,) gamma^k, 0 when done
    done: torch.Tensor                 # (B,) float 1/0
    next_observation: ObservationBatch  # o_{t+k}
    target_actions: torch.Tensor       # (B, H, D) actor target: same actor's actions from t
    target_mask: torch.Tensor          # (B, H) float, 1 where the episode had a step
    mc_return: torch.Tensor            # (B,) G_t = sum_{i>=t} gamma^{i-t} r_i
    success: torch.Tensor              # (B,) float 1 when the row's episode ended in success
    # (B,) float 1 when an operator took over somewhere in the row's episode (None: unknown)
    assisted: torch.Tensor | None = None
    source: list[str] = field(default_factory=list)
    episode_id: torch.Tensor | None = None  # (B,) int64
    start: torch.Tensor | None = None       # (B,) int64 step index t

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    def to(self, device: str | torch.device) -> TransitionBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return TransitionBatch(
            observation=self.observation.to(device), actions=self.actions.to(device),
            action_mask=self.action_mask.to(device), reward=self.reward.to(device),
            discount=self.discount.to(device), done=self.done.to(device),
            next_observation=self.next_observation.to(device),
            target_actions=self.target_actions.to(device),
            target_mask=self.target_mask.to(device), mc_return=self.mc_return.to(device),
            success=self.success.to(device), assisted=move(self.assisted),
            source=list(self.source), episode_id=move(self.episode_id), start=move(self.start),
        )

    def select(self, index: torch.Tensor) -> TransitionBatch:
        """The rows ``index`` (a 1-D long tensor) of this batch."""
        def pick(obs: ObservationBatch) -> ObservationBatch:
            return ObservationBatch({k: v[index] for k, v in obs.images.items()},
                                    obs.state[index], [obs.task[i] for i in index.tolist()])

        rows = index.tolist()
        return TransitionBatch(
            observation=pick(self.observation), actions=self.actions[index],
            action_mask=self.action_mask[index], reward=self.reward[index],
            discount=self.discount[index], done=self.done[index],
            next_observation=pick(self.next_observation),
            target_actions=self.target_actions[index], target_mask=self.target_mask[index],
            mc_return=self.mc_return[index], success=self.success[index],
            assisted=None if self.assisted is None else self.assisted[index],
            source=[self.source[i] for i in rows],
            episode_id=None if self.episode_id is None else self.episode_id[index],
            start=None if self.start is None else self.start[index],
        )
