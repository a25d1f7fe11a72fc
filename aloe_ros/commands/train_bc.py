"""``aloe-ros train-bc``: behaviour cloning of the built-in policy on episodes or bags."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "train the built-in flow-matching policy by behaviour cloning (episode dirs or bags)"

log = logging.getLogger("aloe_ros.train_bc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="episode directories (*.npz), episode files or rosbag2 directories")
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory")
    parser.add_argument("--task", default="pack_phone",
                        help="task name or YAML: joints, cameras and policy settings")
    parser.add_argument("--steps", type=int, default=3000, help="gradient steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and of the batches: the same seed, "
                             "data and --threads give the same checkpoint")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; the thread count changes "
                             "the float sums, so the weights)")
    parser.add_argument("--version", default="",
                        help="policy version to record (default: bc-<steps>-<sha prefix>)")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from aloe_ros.config import ConfigError, load_task_config
    from aloe_ros.io.episodes import EpisodeFormatError
    from aloe_ros.policies.base import PolicyError
    from aloe_ros.policies.bc import (
        BCDataset,
        BCSettings,
        load_episodes,
        new_builtin_policy,
        train_bc,
    )

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros train-bc: configuration error: {exc}")
        return 2
    policy = new_builtin_policy(config, seed=args.seed)
    try:
        episodes = load_episodes(args.inputs, config, resize=policy.config.image_size)
        dataset = BCDataset(episodes, policy.camera_names, policy.chunk_horizon)
    except (EpisodeFormatError, PolicyError, OSError) as exc:
        print(f"aloe-ros train-bc: {exc}")
        return 2
    print(f"aloe-ros train-bc: {len(episodes)} episodes, {len(dataset)} steps, cameras "
          f"{policy.camera_names}, H={policy.chunk_horizon}")
    settings = BCSettings(steps=args.steps, batch_size=args.batch_size,
                          learning_rate=args.lr, seed=args.seed)
    bar = tqdm(total=settings.steps, desc="train-bc", unit="step")
    recent: list[float] = []

    def progress(step: int, loss: float) -> None:
        recent.append(loss)
        del recent[:-50]
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")

    started = time.monotonic()
    losses = train_bc(policy, dataset, settings, progress)
    bar.close()
    out = Path(args.out)
    sha = policy.save(out, version=args.version or None,
                      extra={"bc_steps": str(settings.steps), "episodes": str(len(episodes))})
    if not args.version:
        policy.save(out, version=f"bc-{settings.steps}-{sha[:8]}",
                    extra={"bc_steps": str(settings.steps), "episodes": str(len(episodes))})
    tail = losses[-50:]
    print(f"aloe-ros train-bc: {settings.steps} steps in {time.monotonic() - started:.0f} s, "
          f"final loss {sum(tail) / len(tail):.4f}; wrote {out} (version {policy.version}, "
          f"sha256 {sha[:16]}...)")
    return 0
