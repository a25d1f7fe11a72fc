"""ALOE's equations on hand-computed cases (aloe_ros/learning/equations.py)."""

from __future__ import annotations

import math

import pytest
import torch
from learning_doubles import ConstantPolicy
from torch import nn

from aloe_ros.learning.equations import (
    advantage,
    advantage_weights,
    aggregate_ensemble,
    bootstrap_value,
    chunked_td_target,
    critic_td_loss,
    polyak_update,
    scale_advantage,
    state_value,
)
from aloe_ros.policies.base import ObservationBatch

torch.set_num_threads(1)


def obs(batch: int = 2) -> ObservationBatch:
    return ObservationBatch({"top": torch.zeros(batch, 8, 8, 3, dtype=torch.uint8)},
                            torch.zeros(batch, 2), ["t"] * batch)


class SumCritic(nn.Module):
    """Q_i(o, A) = scale_i * sum(A): K heads with known, distinct outputs."""

    def __init__(self, scales: list[float], chunk_length: int = 2) -> None:
        super().__init__()
        self.scales = torch.tensor(scales)
        self.chunk_length = chunk_length
        self.seen: list[torch.Tensor] = []

    def forward(self, observation, actions, mask=None):  # type: ignore[no-untyped-def]
        self.seen.append(actions.clone())
        total = actions.sum(dim=(-1, -2))
        return self.scales.view(-1, *([1] * total.dim())) * total


def test_min_aggregation_takes_the_smallest_head() -> None:
    q = torch.tensor([[1.0, 5.0], [3.0, -2.0], [2.0, 0.0]])
    assert aggregate_ensemble(q, "min").tolist() == [1.0, -2.0]


def test_mean_minus_std_aggregation() -> None:
    q = torch.tensor([[1.0], [3.0]])      # mean 2, population std 1
    assert aggregate_ensemble(q, "mean_minus_std", beta=0.5).item() == pytest.approx(1.5)


def test_subset_min_is_min_over_a_subset() -> None:
    q = torch.tensor([[0.0], [10.0], [20.0], [30.0]])
    generator = torch.Generator().manual_seed(0)
    values = {aggregate_ensemble(q, "subset_min", subset=2, generator=generator).item()
              for _ in range(50)}
    assert values <= {0.0, 10.0, 20.0}           # never the max head alone
    assert len(values) > 1                       # the subset changes between calls
    assert aggregate_ensemble(q, "subset_min", subset=4).item() == 0.0


def test_td_target_full_chunk_uses_gamma_to_the_k() -> None:
    gamma, k = 0.9, 3
    y = chunked_td_target(torch.tensor([0.5]), torch.tensor([gamma ** k]), torch.tensor([0.0]),
                          torch.tensor([2.0]))
    assert y.item() == pytest.approx(0.5 + 0.729 * 2.0)


def test_td_target_partial_chunk_uses_its_own_k() -> None:
    # A partial chunk of k = 1 step (cut at a takeover) bootstraps with gamma^1, not gamma^H.
    y = chunked_td_target(torch.tensor([0.0]), torch.tensor([0.9]), torch.tensor([0.0]),
                          torch.tensor([1.0]))
    assert y.item() == pytest.approx(0.9)


def test_td_target_done_stops_the_bootstrap() -> None:
    # Even with a (wrong) non-zero discount, done = 1 keeps only the reward.
    y = chunked_td_target(torch.tensor([1.0]), torch.tensor([0.99]), torch.tensor([1.0]),
                          torch.tensor([100.0]))
    assert y.item() == 1.0


def test_bootstrap_samples_the_current_actor_not_logged_actions() -> None:
    critic = SumCritic([1.0, 2.0])               # min head = 1 * sum(A')
    actor = ConstantPolicy(chunk_horizon=4, action_dim=2, value=0.25)
    value = bootstrap_value(critic, actor, obs(), samples=3)
    # A' = 0.25 everywhere, cut to the critic's 2 steps: sum = 0.25 * 2 * 2 = 1.0
    assert value.tolist() == pytest.approx([1.0, 1.0])
    assert actor.sample_calls == [3]
    assert critic.seen[0].shape == (2, 3, 2, 2)
    # Changing the actor changes the target: it is the *current* policy that is evaluated.
    actor.value = -1.0
    assert bootstrap_value(critic, actor, obs(), samples=1).tolist() == pytest.approx(
        [-8.0, -8.0])                             # min(1 * -4, 2 * -4)


def test_bootstrap_averages_over_samples() -> None:
    class Alternating(ConstantPolicy):
        def sample_actions(self, batch, count=1):  # type: ignore[no-untyped-def]
            out = torch.zeros(len(batch), count, self.chunk_horizon, self.action_dim)
            out[:, 1::2] = 1.0
            return out

    critic = SumCritic([1.0])
    value = bootstrap_value(critic, Alternating(), obs(1), samples=2)
    assert value.item() == pytest.approx((0.0 + 4.0) / 2)


def test_value_and_advantage() -> None:
    critic = SumCritic([1.0, 3.0])
    actor = ConstantPolicy(value=1.0)
    v = state_value(critic, actor, obs(1), samples=4)
    assert v.item() == pytest.approx(4.0)        # min(4, 12)
    assert advantage(torch.tensor([5.0]), v).item() == pytest.approx(1.0)


def test_advantage_weights_clip_and_detach() -> None:
    adv = torch.tensor([0.0, 1.0, 100.0, -100.0], requires_grad=True)
    w = advantage_weights(adv, beta=2.0, clip=3.0)
    assert w.tolist() == pytest.approx([1.0, math.exp(0.5), math.exp(3.0), math.exp(-3.0)])
    assert not w.requires_grad


def test_scale_advantage_divides_by_the_value_with_a_floor() -> None:
    adv = torch.tensor([0.1, -0.1, 0.001, 0.5])
    value = torch.tensor([0.5, -0.2, 0.001, 0.0], requires_grad=True)
    assert torch.equal(scale_advantage(adv, value, "none", 0.01), adv)
    scaled = scale_advantage(adv, value, "value", 0.01)
    # |V| for a negative critic output; V under the floor counts as the floor.
    assert scaled.tolist() == pytest.approx([0.2, -0.5, 0.1, 50.0])
    assert not scaled.requires_grad
    # Saving 25 steps at gamma 0.99 is the same relative gain far from and near the goal.
    gain = 0.99 ** -25 - 1
    for steps_to_go in (30, 300):
        v = torch.tensor([0.99 ** steps_to_go])
        q = v * 0.99 ** -25
        assert scale_advantage(q - v, v, "value", 1e-6).item() == pytest.approx(gain, rel=1e-4)


def test_critic_loss_averages_heads() -> None:
    q = torch.tensor([[1.0, 2.0], [3.0, 2.0]])
    assert critic_td_loss(q, torch.tensor([1.0, 2.0])).item() == pytest.approx(4.0 / 4)


def test_polyak_update() -> None:
    online, target = nn.Linear(1, 1), nn.Linear(1, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    polyak_update(target, online, 0.005)
    assert target.weight.item() == pytest.approx(0.005)
