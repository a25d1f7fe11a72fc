"""Data-parallel learning on CPU with gloo and 2 processes: averaged gradients keep the ranks'
weights identical and equal to one process training on the union of their batches; torchrun
drives ``aloe-ros train --distributed`` end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import write_task_config
from learning_doubles import ConstantPolicy, make_episode

from aloe_ros.config import LearningConfig
from aloe_ros.learning.aloe_trainer import AloeTrainer
from aloe_ros.learning.critic import CriticEnsemble
from aloe_ros.learning.distributed import (
    allreduce_gradients,
    broadcast_parameters,
    trainer_modules,
)
from aloe_ros.learning.replay import ChunkReplay, ReplaySpec

pytestmark = pytest.mark.slow
UPDATES = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_trainer(seed: int, sync=None) -> AloeTrainer:  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    config = LearningConfig(ensemble_size=2, critic_width=16, critic_image_size=8,
                            batch_size=8, value_samples=1, critic_lr=1e-2)
    critic = CriticEnsemble(["top"], 2, 2, 3, ensemble_size=2, width=16, image_size=8)
    return AloeTrainer(ConstantPolicy(), critic, config, gradient_sync=sync)


def batches():  # type: ignore[no-untyped-def]
    replay = ChunkReplay(ReplaySpec(3, 4, 0.9), {"online": 1.0, "demo": 1.0})
    replay.add_episode(make_episode(12, episode_id=0))
    replay.add_episode(make_episode(12, episode_id=1, source="demo"))
    rng = np.random.default_rng(0)
    return [replay.sample(8, rng) for _ in range(2 * UPDATES)]


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    # Different seeds per rank: the broadcast from rank 0 must make them agree.
    trainer = make_trainer(seed=rank, sync=allreduce_gradients)
    broadcast_parameters(trainer_modules(trainer))
    data = batches()
    for update in range(UPDATES):
        trainer.update(data[2 * update + rank])
    torch.save({k: v.clone() for k, v in trainer.critic.state_dict().items()},
               Path(out) / f"rank{rank}.pt")
    torch.save(trainer.actor.state_dict(), Path(out) / f"actor{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_two_ranks_match_one_process_on_the_union_of_batches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    actor0, actor1 = torch.load(tmp_path / "actor0.pt"), torch.load(tmp_path / "actor1.pt")
    assert all(torch.equal(actor0[k], actor1[k]) for k in actor0)
    # One process, same initial weights (rank 0's seed), batch = both ranks' halves.
    torch.set_num_threads(1)
    single = make_trainer(seed=0)
    data = batches()
    for update in range(UPDATES):
        both = data[2 * update]
        other = data[2 * update + 1]
        merged = _concat(both, other)
        _critic_step_only(single, merged)
    for key, value in single.critic.state_dict().items():
        assert torch.allclose(value, rank0[key], atol=1e-5), key


def _concat(a, b):  # type: ignore[no-untyped-def]
    from aloe_ros.learning.batch import TransitionBatch
    from aloe_ros.policies.base import ObservationBatch

    def obs(x, y):  # type: ignore[no-untyped-def]
        return ObservationBatch({k: torch.cat([x.images[k], y.images[k]]) for k in x.images},
                                torch.cat([x.state, y.state]), x.task + y.task)

    fields = {}
    for name in ("actions", "action_mask", "reward", "discount", "done", "target_actions",
                 "target_mask", "mc_return", "success", "episode_id", "start"):
        fields[name] = torch.cat([getattr(a, name), getattr(b, name)])
    return TransitionBatch(observation=obs(a.observation, b.observation),
                           next_observation=obs(a.next_observation, b.next_observation),
                           source=a.source + b.source, **fields)


def _critic_step_only(trainer: AloeTrainer, batch) -> None:  # type: ignore[no-untyped-def]
    """The critic half of AloeTrainer.update (the actor's weighted mean does not split)."""
    from aloe_ros.learning.equations import (
        bootstrap_value,
        chunked_td_target,
        critic_td_loss,
        polyak_update,
    )

    next_value = bootstrap_value(trainer.target_critic, trainer.actor, batch.next_observation,
                                 samples=1)
    target = chunked_td_target(batch.reward, batch.discount, batch.done, next_value)
    loss = critic_td_loss(trainer.critic(batch.observation, batch.actions, batch.action_mask),
                          target)
    trainer.optimise(trainer.critic_optimizer, loss, trainer.critic.parameters())
    polyak_update(trainer.target_critic, trainer.critic, trainer.config.tau)


def test_torchrun_drives_train_distributed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = write_task_config(tmp_path, overrides={
        "cameras": [{"name": "top", "source": "sim", "width": 16, "height": 16}],
        "policy": {"chunk_horizon": 4, "execute_horizon": 2},
        "learning": {"ensemble_size": 2, "critic_width": 16, "critic_image_size": 8,
                     "batch_size": 4, "value_samples": 1}})
    episodes = tmp_path / "episodes"
    for i in range(2):
        make_episode(8, episode_id=i, action_dim=14, image=16).save(episodes / f"e{i}.npz")
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(free_port()), "-m", "aloe_ros.cli", "train", str(episodes),
         "--out", str(out), "--task", str(task), "--updates", "2", "--no-plots",
         "--distributed", "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 ranks" in result.stdout
    assert (out / "policy.json").is_file() and (out / "learner" / "state.pt").is_file()
