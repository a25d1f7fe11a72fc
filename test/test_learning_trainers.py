"""Trainers behind one interface: ALOE, 1-step TD, HG-DAgger, AWR with Monte-Carlo values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from learning_doubles import ConstantPolicy, make_episode

from aloe_ros.config import LearningConfig
from aloe_ros.learning.aloe_trainer import AloeTrainer
from aloe_ros.learning.baselines import (
    AwrMcTrainer,
    DaggerTrainer,
    dagger_weights,
    n_step_advantage,
)
from aloe_ros.learning.critic import CriticEnsemble, EnsembleLinear, ValueNetwork
from aloe_ros.learning.replay import ChunkReplay, ReplaySpec
from aloe_ros.learning.trainer_base import scale_assisted_policy_chunks, weight_shares

torch.set_num_threads(1)
RATIOS = {"demo": 1.0, "intervention": 1.0, "online": 1.0, "historical": 1.0}


def learning(**overrides) -> LearningConfig:  # type: ignore[no-untyped-def]
    values = {"ensemble_size": 3, "batch_size": 16, "critic_lr": 3e-3, "actor_lr": 1e-2,
              "critic_width": 32, "critic_image_size": 8, "value_samples": 2,
              "advantage_clip": 2.0}
    values.update(overrides)
    return LearningConfig(**values)


def tiny_critic(cfg: LearningConfig, chunk: int = 3) -> CriticEnsemble:
    torch.manual_seed(0)
    return CriticEnsemble(["top"], 2, 2, chunk, ensemble_size=cfg.ensemble_size,
                          width=cfg.critic_width, image_size=cfg.critic_image_size)


def filled_replay(chunk: int = 3) -> ChunkReplay:
    buffer = ChunkReplay(ReplaySpec(critic_chunk=chunk, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(9, episode_id=0, success=True))
    buffer.add_episode(make_episode(9, episode_id=1, success=False, source="demo"))
    buffer.add_episode(make_episode(9, episode_id=2, success=None,
                                    human=[False] * 3 + [True] * 6))
    return buffer


def test_ensemble_linear_matches_separate_layers() -> None:
    layer = EnsembleLinear(3, 4, 5)
    x = torch.randn(3, 7, 4)
    out = layer(x)
    for k in range(3):
        expected = x[k] @ layer.weight[k] + layer.bias[k]
        assert torch.allclose(out[k], expected, atol=1e-6)


def test_critic_shapes_and_heads_differ() -> None:
    cfg = learning()
    critic = tiny_critic(cfg)
    batch = filled_replay().sample(5, np.random.default_rng(0))
    q = critic(batch.observation, batch.actions, batch.action_mask)
    assert q.shape == (3, 5)
    assert q.std(dim=0).mean() > 0
    many = critic(batch.observation, batch.target_actions[:, None].repeat(1, 4, 1, 1))
    assert many.shape == (3, 5, 4)


def test_aloe_critic_sees_the_takeover_penalty() -> None:
    """Policy steps 0-2, then a human takes over and succeeds. With the penalty the policy's
    chunk is terminal at -1 * 0.9^2; without it, it bootstraps through the rescue instead."""
    q_policy = {}
    for penalty in (0.0, 1.0):
        cfg = learning(tau=0.05)
        trainer = AloeTrainer(ConstantPolicy(chunk_horizon=4, action_dim=2, value=0.0),
                              tiny_critic(cfg), cfg)
        buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9,
                                        takeover_penalty=penalty), RATIOS)
        buffer.add_episode(make_episode(9, success=True, human=[False] * 3 + [True] * 6))
        batch = buffer.episode_batch(0)
        assert batch.source[0] == "online" and batch.done[0].item() == float(penalty > 0)
        for _ in range(200):
            trainer.update(batch)
        q_policy[penalty] = trainer.evaluate(batch)["q_mean"][0].item()
    assert q_policy[1.0] == pytest.approx(-0.81, abs=0.15)
    assert q_policy[0.0] > q_policy[1.0] + 0.4


def test_aloe_update_fits_terminal_rewards_and_weights_the_actor() -> None:
    cfg = learning(tau=0.05)
    actor = ConstantPolicy(chunk_horizon=4, action_dim=2, value=0.0)
    trainer = AloeTrainer(actor, tiny_critic(cfg), cfg)
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(3, success=True))       # one chunk, done, R = 0.9^2
    batch = buffer.sample(8, np.random.default_rng(0))
    for _ in range(150):
        stats = trainer.update(batch)
    q = trainer.critic(batch.observation, batch.actions, batch.action_mask)
    assert q.detach() == pytest.approx(torch.full_like(q, 0.81), abs=0.05)
    assert stats["losses/critic"] < 1e-2
    assert actor.last_weights is not None and actor.last_weights.shape == (8,)
    c = cfg.advantage_clip
    assert bool(((actor.last_weights >= math.exp(-c) - 1e-6)
                 & (actor.last_weights <= math.exp(c) + 1e-6)).all())
    assert trainer.step == 150


def test_update_bootstraps_from_actor_samples_not_logged_actions() -> None:
    cfg = learning(bootstrap_samples=3)
    actor = ConstantPolicy(chunk_horizon=4, action_dim=2, value=-7.0)   # never in the data
    trainer = AloeTrainer(actor, tiny_critic(cfg), cfg)
    seen: list[torch.Tensor] = []
    original = trainer.target_critic.forward

    def spy(observation, actions, mask=None):  # type: ignore[no-untyped-def]
        seen.append(actions.clone())
        return original(observation, actions, mask)

    trainer.target_critic.forward = spy  # type: ignore[method-assign]
    batch = filled_replay().sample(8, np.random.default_rng(0))
    trainer.update(batch)
    assert len(seen) == 1 and seen[0].shape == (8, 3, 3, 2)     # B x M x Hc x D
    assert bool((seen[0] == -7.0).all())
    assert actor.sample_calls[0] == 3                            # the bootstrap's M samples


def test_critic_warmup_leaves_the_actor_alone() -> None:
    cfg = learning(critic_warmup_updates=2)
    actor = ConstantPolicy()
    trainer = AloeTrainer(actor, tiny_critic(cfg), cfg)
    batch = filled_replay().sample(8, np.random.default_rng(0))
    assert "losses/actor" not in trainer.update(batch)
    assert actor.last_weights is None
    trainer.update(batch)
    assert "losses/actor" in trainer.update(batch)


@pytest.mark.parametrize("scale", ["none", "value"])
def test_actor_weights_follow_the_advantage_scale(scale: str) -> None:
    cfg = learning(advantage_scale=scale, advantage_value_floor=1e-3, advantage_beta=0.5,
                   advantage_clip=50.0)
    actor = ConstantPolicy(chunk_horizon=4, action_dim=2, value=0.0)  # V(o) deterministic
    trainer = AloeTrainer(actor, tiny_critic(cfg), cfg)
    batch = filled_replay().sample(8, np.random.default_rng(0))
    trainer.update(batch)
    assert actor.last_weights is not None
    # The actor step leaves the critic alone: evaluate() sees what the weights were made from.
    evaluation = trainer.evaluate(batch)
    adv, value = evaluation["advantage"], evaluation["value"]
    assert float(adv.abs().max()) > 0
    scaled = adv / value.abs().clamp(min=1e-3) if scale == "value" else adv
    assert actor.last_weights.cpu() == pytest.approx(torch.exp(scaled / 0.5), rel=1e-4)


def test_awr_mc_weights_scale_by_its_monte_carlo_value() -> None:
    cfg = learning(advantage_scale="value", advantage_value_floor=1e-3, advantage_beta=1.0,
                   advantage_clip=50.0)
    torch.manual_seed(0)
    actor = ConstantPolicy()
    trainer = AwrMcTrainer(actor, ValueNetwork(["top"], 2, width=32, image_size=8), cfg)
    batch = filled_replay().sample(8, np.random.default_rng(0))
    trainer.update(batch)
    evaluation = trainer.evaluate(batch)      # the value net after its step, as update used
    expected = torch.exp(evaluation["advantage"]
                         / evaluation["value"].abs().clamp(min=1e-3))
    assert actor.last_weights is not None
    assert actor.last_weights.cpu() == pytest.approx(expected, rel=1e-4)


def test_td1_runs_on_one_step_chunks() -> None:
    cfg = learning()
    trainer = AloeTrainer(ConstantPolicy(), tiny_critic(cfg, chunk=1), cfg, method="td1")
    buffer = filled_replay(chunk=1)
    assert len(buffer) == 9 + 9 + 8                      # one transition per step
    stats = trainer.update(buffer.sample(8, np.random.default_rng(0)))
    assert math.isfinite(stats["losses/critic"])
    assert trainer.evaluate(buffer.episode_batch(0))["advantage"].shape == (9,)


def test_state_dict_round_trip_restores_critic_and_optimisers() -> None:
    cfg = learning()
    trainer = AloeTrainer(ConstantPolicy(), tiny_critic(cfg), cfg)
    batch = filled_replay().sample(8, np.random.default_rng(0))
    trainer.update(batch)
    state = trainer.state_dict()
    other = AloeTrainer(ConstantPolicy(), tiny_critic(learning()), cfg)
    with torch.no_grad():
        other.critic.layers[0].weight.add_(1.0)
    other.load_state_dict(state)
    assert other.step == 1
    assert torch.equal(other.critic(batch.observation, batch.actions),
                       trainer.critic(batch.observation, batch.actions))
    with pytest.raises(ValueError, match="method"):
        DaggerTrainer(ConstantPolicy(), cfg).load_state_dict(state)


def test_dagger_weights_interventions_demos_and_successes() -> None:
    batch = filled_replay().episode_batch(2)            # truncated: policy, then intervention
    assert batch.source == ["online", "intervention", "intervention"]
    assert dagger_weights(batch).tolist() == [0.0, 1.0, 1.0]
    assert dagger_weights(filled_replay().episode_batch(0)).tolist() == [1.0] * 3
    assert dagger_weights(filled_replay().episode_batch(1)).tolist() == [1.0] * 3  # demo
    # An assisted success: the policy's chunks before the takeover are what failed; only the
    # operator's are imitated.
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(9, success=True, human=[False] * 3 + [True] * 6))
    batch = buffer.episode_batch(0)
    assert batch.source == ["online", "intervention", "intervention"]
    assert batch.assisted is not None and batch.assisted.tolist() == [1.0] * 3
    assert dagger_weights(batch).tolist() == [0.0, 1.0, 1.0]
    assert dagger_weights(batch.select(torch.tensor([0]))).tolist() == [0.0]


def test_weight_shares_split_the_batch_weight_by_source() -> None:
    weights = torch.tensor([1.0, 3.0, 0.0, 4.0])
    shares = weight_shares(weights, ["online", "intervention", "online", "intervention"])
    # sources the batch did not draw are 0, not missing (means over updates stay shares)
    assert shares == {"charts/weight_share/online": pytest.approx(1 / 8),
                      "charts/weight_share/intervention": pytest.approx(7 / 8),
                      "charts/weight_share/demo": 0.0, "charts/weight_share/historical": 0.0}
    assert weight_shares(torch.zeros(2), ["demo", "online"]) == {}


def test_updates_report_weight_shares() -> None:
    # HG-DAgger's weights are 0 on the policy's own chunks of an assisted episode.
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(9, success=True, human=[False] * 3 + [True] * 6))
    batch = buffer.episode_batch(0)
    stats = DaggerTrainer(ConstantPolicy(), learning()).update(batch)
    assert stats["charts/weight_share/intervention"] == pytest.approx(1.0)
    assert stats["charts/weight_share/online"] == 0.0
    cfg = learning()
    stats = AloeTrainer(ConstantPolicy(), tiny_critic(cfg), cfg).update(batch)
    shares = {k: v for k, v in stats.items() if k.startswith("charts/weight_share/")}
    assert len(shares) == 4 and sum(shares.values()) == pytest.approx(1.0)
    assert shares["charts/weight_share/demo"] == shares["charts/weight_share/historical"] == 0


def test_assisted_policy_weight_scales_only_the_policy_chunks_of_assisted_episodes() -> None:
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(9, success=True, human=[False] * 3 + [True] * 6))
    buffer.add_episode(make_episode(9, episode_id=1, success=False))         # no takeover
    assisted = buffer.episode_batch(0)                  # online, intervention, intervention
    alone = buffer.episode_batch(1)                     # online x 3, not assisted
    weights = torch.tensor([2.0, 3.0, 4.0])
    assert scale_assisted_policy_chunks(weights, assisted, 1.0).tolist() == [2.0, 3.0, 4.0]
    assert scale_assisted_policy_chunks(weights, assisted, 0.0).tolist() == [0.0, 3.0, 4.0]
    assert scale_assisted_policy_chunks(weights, assisted, 0.5).tolist() == [1.0, 3.0, 4.0]
    assert scale_assisted_policy_chunks(weights, alone, 0.0).tolist() == [2.0, 3.0, 4.0]
    # Both critic-weighted trainers apply it: the policy's chunk of the assisted episode gets
    # no share of the actor loss at 0, a share at the paper's 1.
    for trainer in ("aloe", "awr_mc"):
        shares = {}
        for factor in (0.0, 1.0):
            cfg = learning(assisted_policy_weight=factor)
            built = (AloeTrainer(ConstantPolicy(), tiny_critic(cfg), cfg) if trainer == "aloe"
                     else AwrMcTrainer(ConstantPolicy(),
                                       ValueNetwork(["top"], 2, width=32, image_size=8), cfg))
            shares[factor] = built.update(assisted)["charts/weight_share/online"]
        assert shares[0.0] == 0.0 and shares[1.0] > 0.0, (trainer, shares)


def test_dagger_skips_batches_with_nothing_to_imitate() -> None:
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(6, success=False))
    actor = ConstantPolicy()
    stats = DaggerTrainer(actor, learning()).update(buffer.sample(4, np.random.default_rng(0)))
    assert "losses/actor" not in stats and actor.last_weights is None


def test_n_step_advantage() -> None:
    adv = n_step_advantage(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5]),
                           torch.tensor([1.0, 0.0]), torch.tensor([0.2, 1.0]),
                           torch.tensor([9.0, 4.0]))
    assert adv.tolist() == pytest.approx([0.8, 1.0])


def test_awr_mc_value_regresses_monte_carlo_returns() -> None:
    cfg = learning(critic_lr=1e-2)
    torch.manual_seed(0)
    value_net = ValueNetwork(["top"], 2, width=32, image_size=8)
    actor = ConstantPolicy()
    trainer = AwrMcTrainer(actor, value_net, cfg)
    buffer = ChunkReplay(ReplaySpec(critic_chunk=3, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(make_episode(9, success=True))
    batch = buffer.episode_batch(0)
    for _ in range(200):
        stats = trainer.update(batch)
    assert stats["losses/value"] < 1e-3
    evaluation = trainer.evaluate(batch)
    assert evaluation["value"] == pytest.approx(batch.mc_return, abs=0.05)
    assert actor.last_weights is not None
    assert stats["charts/weight_share/online"] == pytest.approx(1.0)   # the only source


def test_critic_ranks_a_successful_chunk_above_a_failing_one() -> None:
    """Same observation, two chunks, two outcomes: the better chunk gets the larger advantage
    and therefore the larger actor weight."""
    cfg = learning(critic_lr=1e-2, tau=0.1, value_samples=1, batch_size=4)
    good = make_episode(2, episode_id=0, success=True)
    bad = make_episode(2, episode_id=1, success=False)
    bad.images = {k: v.copy() for k, v in good.images.items()}
    good.actions[:] = 1.0
    bad.actions[:] = -1.0
    buffer = ChunkReplay(ReplaySpec(critic_chunk=2, actor_horizon=4, gamma=0.9), RATIOS)
    buffer.add_episode(good)
    buffer.add_episode(bad)
    actor = ConstantPolicy(chunk_horizon=4, action_dim=2, value=0.0)  # V(o) at a middle chunk
    trainer = AloeTrainer(actor, tiny_critic(cfg, chunk=2), cfg)
    both = buffer.sample(4, np.random.default_rng(0))
    assert set(both.episode_id.tolist()) == {0, 1}
    for _ in range(60):
        trainer.update(both)
    adv = [trainer.evaluate(buffer.episode_batch(i))["advantage"].item() for i in (0, 1)]
    assert adv[0] > adv[1] + 0.3
    weights = torch.exp(torch.tensor(adv).clamp(-cfg.advantage_clip, cfg.advantage_clip))
    assert weights[0] > weights[1]


def test_build_trainer_samples_the_actor_as_deployed() -> None:
    """The learner's bootstrap / V samples use the task's noise_scale and flow_steps."""
    from policy_fixtures import tiny_builtin

    from aloe_ros.config import load_task_config
    from aloe_ros.learning.factory import build_trainer

    config = load_task_config("pack_phone")
    config.policy.noise_scale, config.policy.flow_steps = 0.5, 3
    config.learning.method = "dagger"
    actor = tiny_builtin(config)
    assert actor.noise_scale == 1.0
    build_trainer(config, actor)
    assert (actor.noise_scale, actor.flow_steps) == (0.5, 3)
    # noise 0: every sample is the same chunk (integrated from the mean).
    config.policy.noise_scale = 0.0
    build_trainer(config, actor)
    from aloe_ros.policies.base import Observation

    frames = {c.name: np.zeros((24, 32, 3), np.uint8) for c in config.cameras}
    observation = Observation(frames, np.zeros(config.robot.action_dim, np.float32),
                              config.task.text, 0.0)
    chunks = actor.sample_chunks(observation, 3)
    assert np.allclose(chunks[0], chunks[1]) and np.allclose(chunks[0], chunks[2])


def test_update_weighs_the_actor_loss_by_actor_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """actor_weights is what update() uses, so tools that report it report training."""
    batch = filled_replay().sample(12, np.random.default_rng(0))
    cfg = learning(critic_warmup_updates=0)
    trainers = [DaggerTrainer(ConstantPolicy(), cfg),
                AloeTrainer(ConstantPolicy(), tiny_critic(cfg), cfg),
                AwrMcTrainer(ConstantPolicy(), ValueNetwork(["top"], 2, width=32, image_size=8),
                             cfg)]
    for trainer in trainers:
        reported, used = [], []
        original = trainer.actor_weights

        def spy(b, original=original, reported=reported):  # type: ignore[no-untyped-def]
            result = original(b)
            reported.append(result.weights.clone())
            return result

        monkeypatch.setattr(trainer, "actor_weights", spy)
        monkeypatch.setattr(trainer, "actor_update",
                            lambda b, w, used=used: used.append(w.clone()) or 0.0)
        trainer.update(batch)
        assert len(reported) == len(used) == 1, trainer.method
        assert torch.equal(reported[0], used[0]), trainer.method


def test_actor_weights_are_the_clipped_exponential_of_the_advantage() -> None:
    batch = filled_replay().episode_batch(2)     # online then intervention chunks
    cfg = learning(advantage_beta=0.05, advantage_clip=1.5)
    aloe = AloeTrainer(ConstantPolicy(), tiny_critic(cfg), cfg)
    scored = aloe.actor_weights(batch)
    expected = torch.exp(torch.clamp(scored.advantage / 0.05, -1.5, 1.5))
    assert torch.allclose(scored.weights, expected)
    assert scored.weights.max() <= math.exp(1.5) + 1e-6
    dagger = DaggerTrainer(ConstantPolicy(), cfg).actor_weights(batch)
    assert torch.equal(dagger.weights, dagger_weights(batch))
    assert not dagger.advantage.any() and not dagger.value.any()
