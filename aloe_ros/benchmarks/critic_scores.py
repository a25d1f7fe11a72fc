"""Critic predictions for logged chunks, from the learner state ``aloe-ros train`` writes (torch).

How each method scores a chunk ``(o_t, A_t)`` of k executed steps:

* ``aloe``: the chunk critic's ``agg_i Q_i(o_t, A_t)`` (the aggregation of ``learning``, min by
  default: what the actor's advantage uses) and, as a second row, the ensemble mean.
* ``td1``: the per-step critic is trained on one-step chunks, ``Q(o_t, a_t)`` bootstrapped from
  the current actor at ``o_{t+1}``; a chunk is scored by its first step, ``agg Q(o_t, a_t)``.
  Its target is "do a_t, then follow pi", not "do all of A_t, then pi": the two differ by the
  k - 1 remaining logged steps.
* ``awr_mc``: the Monte-Carlo value net ``V(o)`` has no action input. Its trainer scores a chunk
  as ``R_t + gamma^k (1 - done) V(o_{t+k})`` (the Q in its advantage): the primary row. ``V(o_t)``
  is shown too; it estimates the behaviour data's return from o_t, whatever chunk follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aloe_ros.benchmarks.value_quality import LoggedChunk
from aloe_ros.config import TaskFile
from aloe_ros.learning.equations import aggregate_ensemble
from aloe_ros.policies.base import ChunkPolicy, Observation, ObservationBatch

__all__ = ["CriticScorer", "load_scorer"]


@dataclass
class CriticScorer:
    """A trained method's critic and its actor (the current policy for ground truth)."""

    method: str
    trainer: object
    actor: ChunkPolicy
    config: TaskFile
    checkpoint: Path

    def score(self, chunks: list[LoggedChunk], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Named predictions per chunk (see module docstring), no gradients."""
        rows: dict[str, list[np.ndarray]] = {}
        for i in range(0, len(chunks), batch_size):
            for name, values in self._score_batch(chunks[i:i + batch_size]).items():
                rows.setdefault(name, []).append(values)
        return {name: np.concatenate(parts) for name, parts in rows.items()}

    def _score_batch(self, chunks: list[LoggedChunk]) -> dict[str, np.ndarray]:
        obs = _stack([c.observation for c in chunks])
        learning = self.config.learning
        with torch.no_grad():
            if self.method in ("aloe", "td1"):
                critic = self.trainer.critic  # type: ignore[attr-defined]
                device = next(critic.parameters()).device
                actions = torch.from_numpy(np.stack([c.actions for c in chunks])).float()
                mask = (torch.arange(actions.shape[1])[None, :]
                        < torch.tensor([c.valid_steps for c in chunks])[:, None]).float()
                length = critic.chunk_length   # 1 for td1: the chunk's first step
                q = critic(obs.to(device), actions[:, :length].to(device),
                           mask[:, :length].to(device)).cpu()
                agg = aggregate_ensemble(q, learning.aggregation, beta=learning.aggregation_beta,
                                         subset=learning.aggregation_subset,
                                         generator=torch.Generator().manual_seed(0))
                return {f"Q {learning.aggregation}": agg.numpy(),
                        "Q ensemble mean": q.mean(dim=0).numpy()}
            if self.method == "awr_mc":
                net = self.trainer.value_net  # type: ignore[attr-defined]
                device = next(net.parameters()).device
                value = net(obs.to(device)).cpu()
                next_value = net(_stack([c.next_observation for c in chunks]).to(device)).cpu()
                reward = torch.tensor([c.reward for c in chunks])
                discount = torch.tensor([c.discount for c in chunks])
                done = torch.tensor([float(c.done) for c in chunks])
                q = reward + discount * (1.0 - done) * next_value
                return {"R + g^k V(o')": q.numpy(), "V(o)": value.numpy()}
        raise ValueError(f"method {self.method!r} has no critic to score (aloe, td1, awr_mc)")


def _stack(observations: list[Observation]) -> ObservationBatch:
    return ObservationBatch.stack(observations)


def load_scorer(config: TaskFile, checkpoint: Path | str, *, device: str = "cpu"
                ) -> CriticScorer:
    """Actor + trainer state of one ``aloe-ros train --out`` directory (method from its state)."""
    import copy
    import json

    from aloe_ros.learning.checkpoints import LEARNER_DIR, META_FILE, load_trainer_state
    from aloe_ros.learning.factory import build_trainer
    from aloe_ros.policies.checkpoint import load_policy

    checkpoint = Path(checkpoint)
    meta = json.loads((checkpoint / LEARNER_DIR / META_FILE).read_text())
    config = copy.deepcopy(config)
    config.learning.method = meta["method"]
    config.learning.device = device
    actor = load_policy(checkpoint, device=device)
    trainer = build_trainer(config, actor, device=device)  # type: ignore[arg-type]
    load_trainer_state(checkpoint, trainer, map_location=device)
    for module in ("critic", "value_net"):
        net = getattr(trainer, module, None)
        if net is not None:
            net.eval()
    return CriticScorer(config.learning.method, trainer, actor, config, checkpoint)
