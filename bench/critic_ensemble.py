"""Critic ensemble update throughput: K heads in one batched call vs a Python loop over critics.

Side by side in one run, interleaved (A B A B ...) so machine load hits both alike; medians.
One "update" = forward of all K heads on a batch, MSE to a target, backward, Adam step.

* ``heads``: the part the vectorisation replaces. Trunk features given; our EnsembleLinear
  stack (one baddbmm per layer) vs K separate nn.Sequential MLPs of the same shape in a loop.
* ``critic``: the whole CriticEnsemble (shared image trunk + batched heads) vs the same trunk
  + a loop over K head MLPs.
* ``separate``: the common naive ensemble, K complete critics (each with its own image trunk)
  in a loop, vs our CriticEnsemble.

    .venv/bin/python bench/critic_ensemble.py [--ensemble 10 --batch 256 --repeats 7]

Goal (issue 7): vectorised >= 3x the naive loop at K = 10, batch 256.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aloe_ros.learning.critic import CriticEnsemble
from aloe_ros.policies.base import ObservationBatch

CAMERAS = ["top", "left_wrist", "right_wrist"]


class LoopHeads(nn.Module):
    """K separate head MLPs (same layer sizes as CriticEnsemble's heads), run in a loop."""

    def __init__(self, ensemble: CriticEnsemble) -> None:
        super().__init__()
        self.heads = nn.ModuleList()
        for k in range(ensemble.ensemble_size):
            layers: list[nn.Module] = []
            for i, layer in enumerate(ensemble.layers):
                linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[2])
                with torch.no_grad():
                    linear.weight.copy_(layer.weight[k].T)
                    linear.bias.copy_(layer.bias[k, 0])
                layers.append(linear)
                if i < len(ensemble.layers) - 1:
                    layers.append(nn.ReLU())
            self.heads.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


class LoopCritic(nn.Module):
    """The same shared trunk as CriticEnsemble, then a loop over K head MLPs."""

    def __init__(self, ensemble: CriticEnsemble) -> None:
        super().__init__()
        self.ensemble = copy.deepcopy(ensemble)
        self.loop = LoopHeads(ensemble)

    def forward(self, obs: ObservationBatch, actions: torch.Tensor) -> torch.Tensor:
        features = self.ensemble.encoder(obs)
        x = torch.cat([features, self.ensemble.chunk_features(actions, None)], dim=-1)
        return self.loop(x)


class SeparateCritics(nn.Module):
    """K complete single-head critics (own trunk each), evaluated in a loop."""

    def __init__(self, make: Callable[[], CriticEnsemble], ensemble_size: int) -> None:
        super().__init__()
        self.critics = nn.ModuleList([make() for _ in range(ensemble_size)])

    def forward(self, obs: ObservationBatch, actions: torch.Tensor) -> torch.Tensor:
        return torch.cat([critic(obs, actions) for critic in self.critics])


def timed_update(module: nn.Module, run: Callable[[], torch.Tensor]) -> Callable[[], float]:
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)

    def step() -> float:
        start = time.perf_counter()
        q = run()
        loss = F.mse_loss(q, torch.zeros_like(q))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start
    return step


def compare(name: str, fast: Callable[[], float], slow: Callable[[], float],
            repeats: int, batch: int) -> None:
    fast(), slow()  # warm-up
    fast_times, slow_times = [], []
    for _ in range(repeats):
        fast_times.append(fast())
        slow_times.append(slow())
    f, s = statistics.median(fast_times), statistics.median(slow_times)
    print(f"{name:<9} vectorised {f * 1e3:8.1f} ms ({batch / f:8.0f} samples/s)   "
          f"loop {s * 1e3:8.1f} ms ({batch / s:8.0f} samples/s)   ratio {s / f:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=25, help="critic chunk (execute_horizon)")
    parser.add_argument("--joints", type=int, default=14)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--frames", default="48x64", help="stored frame size HxW")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    height, width = (int(v) for v in args.frames.split("x"))
    torch.manual_seed(0)

    def make(k: int) -> CriticEnsemble:
        return CriticEnsemble(CAMERAS, args.joints, args.joints, args.chunk, ensemble_size=k,
                              width=args.width, image_size=args.image_size).to(device)

    ensemble = make(args.ensemble)
    obs = ObservationBatch(
        {c: torch.randint(0, 255, (args.batch, height, width, 3), dtype=torch.uint8,
                          device=device) for c in CAMERAS},
        torch.randn(args.batch, args.joints, device=device), ["task"] * args.batch)
    actions = torch.randn(args.batch, args.chunk, args.joints, device=device)
    print(f"K={args.ensemble} batch={args.batch} chunk={args.chunk}x{args.joints} "
          f"width={args.width} image {args.image_size} (frames {height}x{width}, "
          f"{len(CAMERAS)} cameras), device {device}, threads {torch.get_num_threads()}, "
          f"median of {args.repeats}")

    with torch.no_grad():
        features = ensemble.encoder(obs)
        head_input = torch.cat([features, ensemble.chunk_features(actions, None)], dim=-1)
    batched_heads = copy.deepcopy(ensemble)
    loop_heads = LoopHeads(ensemble).to(device)

    def batched_head_q() -> torch.Tensor:
        return batched_heads.heads(features, actions, None)

    compare("heads", timed_update(batched_heads, batched_head_q),
            timed_update(loop_heads, lambda: loop_heads(head_input)), args.repeats, args.batch)
    loop_critic = LoopCritic(ensemble).to(device)
    compare("critic", timed_update(ensemble, lambda: ensemble(obs, actions)),
            timed_update(loop_critic, lambda: loop_critic(obs, actions)),
            args.repeats, args.batch)
    separate = SeparateCritics(lambda: make(1), args.ensemble).to(device)
    compare("separate", timed_update(ensemble, lambda: ensemble(obs, actions)),
            timed_update(separate, lambda: separate(obs, actions)),
            max(3, args.repeats // 2), args.batch)


if __name__ == "__main__":
    main()
