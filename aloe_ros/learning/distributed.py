"""Data-parallel learning with torch.distributed (torchrun; gloo on CPU, nccl on CUDA).

Every rank holds the full model and samples its own batches (its own seed); after each
backward pass the gradients of the critic, the actor and the value net are averaged across
ranks with one all-reduce per parameter group (what ``DistributedDataParallel`` does inside),
so every rank takes the same optimiser step and the weights stay identical. We average
explicitly instead of wrapping modules in DDP because the actor's training loss is a method
(``flow_matching_loss``), not its ``forward``, and a LeRobot policy cannot be re-wrapped; the
arithmetic is the same. Initial weights are broadcast from rank 0; only rank 0 writes
checkpoints, metrics and plots.

Launch: ``torchrun --nproc_per_node 2 -m aloe_ros.cli train DATA --out DIR --distributed``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "allreduce_gradients", "broadcast_parameters",
           "init_distributed", "trainer_modules"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "cpu", backend: str | None = None) -> DistributedContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("--distributed needs torchrun (RANK / WORLD_SIZE are not set): "
                           "torchrun --nproc_per_node N -m aloe_ros.cli train ...")
    if not dist.is_initialized():
        chosen = backend or ("nccl" if device.startswith("cuda") else "gloo")
        dist.init_process_group(backend=chosen)
    context = DistributedContext(dist.get_rank(), dist.get_world_size(),
                                 int(os.environ.get("LOCAL_RANK", "0")))
    log.info("rank %d of %d joined (%s)", context.rank, context.world_size,
             dist.get_backend())
    return context


def allreduce_gradients(params: list[nn.Parameter]) -> None:
    """grad <- mean over ranks of grad, in one flat all-reduce (missing grads count as 0)."""
    if not dist.is_initialized() or dist.get_world_size() == 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for param, grad in zip(params, grads):
        count = grad.numel()
        param.grad = flat[offset:offset + count].view_as(param).clone()
        offset += count


def broadcast_parameters(modules: Iterable[Any], src: int = 0) -> None:
    """Copy every parameter and buffer of ``modules`` from rank ``src`` to all ranks."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for module in modules:
            tensors = list(module.parameters())
            buffers = getattr(module, "buffers", None)
            if callable(buffers):
                tensors += list(buffers())
            for tensor in tensors:
                dist.broadcast(tensor.data, src)


def trainer_modules(trainer: object) -> list[object]:
    """The modules whose weights must agree across ranks: actor, critic(s), value net."""
    names = ("actor", "critic", "target_critic", "value_net")
    return [getattr(trainer, n) for n in names if getattr(trainer, n, None) is not None]
