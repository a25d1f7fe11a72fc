"""``aloe-ros train``: offline ALOE (or baseline) training from bags / episode directories.

Writes ``--out DIR``: a policy directory the inference node loads (policy.json +
model.safetensors), ``learner/`` (critic, optimisers, step: resumable with ``--resume``),
``replay/`` (unless ``--no-replay``), ``metrics.jsonl`` and PNG plots under ``plots/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

HELP = "train the critic ensemble and the actor offline (ALOE or a baseline) from bags or dirs"

log = logging.getLogger("aloe_ros.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="BAG_OR_DIR",
                        help="rosbag2 directories, episode directories (*.npz) or episode files")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output: policy directory + learner state + plots")
    parser.add_argument("--task", default="pack_phone", help="task name or YAML")
    parser.add_argument("--policy", default="",
                        help="initial actor checkpoint (default: policy.path, else untrained)")
    parser.add_argument("--method", choices=("aloe", "dagger", "awr_mc", "td1"), default=None,
                        help="override learning.method")
    parser.add_argument("--updates", type=int, default=None,
                        help="updates to run (default: learning.updates_per_round)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None, help="override learning.device (cpu, cuda)")
    parser.add_argument("--log-every", type=int, default=25, help="metrics row every N updates")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the learner state in --out")
    parser.add_argument("--init-learner", default="", metavar="DIR",
                        help="start the critic, optimisers and update count from the learner "
                             "state of an earlier run (rounds: the critic carries over)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-replay", action="store_true",
                        help="do not write replay/ to --out (it is rebuilt from the inputs on "
                             "every run; a node resuming from --out then starts with an empty "
                             "replay). Saves disk: the replay holds every referenced frame")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the ranks torchrun starts (gloo / nccl)")


def _load(args: argparse.Namespace) -> tuple[Any, Any, bool]:
    from aloe_ros.config import load_task_config
    from aloe_ros.learning.checkpoints import default_actor_loader
    from aloe_ros.policies.bc import new_builtin_policy

    config = load_task_config(args.task)
    learning = config.learning
    if args.method:
        learning.method = args.method
    if args.batch_size:
        learning.batch_size = args.batch_size
    if args.device:
        learning.device = args.device
    out = Path(args.out)
    source = (out if args.resume and (out / "learner" / "state.pt").is_file()
              else Path(args.policy) if args.policy
              else Path(config.policy.path) if config.policy.path else None)
    if source is None:
        return config, new_builtin_policy(config, seed=learning.seed), True
    return config, default_actor_loader(learning.device)(source), False


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from aloe_ros.config import ConfigError
    from aloe_ros.io.episodes import EpisodeFormatError
    from aloe_ros.learning.checkpoints import load_trainer_state
    from aloe_ros.learning.factory import build_replay, build_trainer
    from aloe_ros.learning.learner import Learner
    from aloe_ros.learning.replay import ReplayError
    from aloe_ros.policies.base import PolicyError
    from aloe_ros.policies.bc import load_episodes

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        config, actor, fresh = _load(args)
    except (ConfigError, PolicyError, OSError) as exc:
        print(f"aloe-ros train: {exc}")
        return 2
    out = Path(args.out)
    context = None
    sync = None
    if args.distributed:
        from aloe_ros.learning.distributed import allreduce_gradients, init_distributed

        context = init_distributed(config.learning.device)
        sync = allreduce_gradients
        if config.learning.device.startswith("cuda"):
            config.learning.device = f"cuda:{context.local_rank}"
            actor = actor.to(config.learning.device)
    main_rank = context is None or context.is_main
    trainer = build_trainer(config, actor, gradient_sync=sync)
    if args.resume and (out / "learner" / "state.pt").is_file():
        load_trainer_state(out, trainer, map_location=config.learning.device)
        print(f"aloe-ros train: resumed {trainer.method} at update {trainer.step}")
    elif args.init_learner:
        try:
            load_trainer_state(args.init_learner, trainer, map_location=config.learning.device)
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            print(f"aloe-ros train: --init-learner {args.init_learner}: no usable learner "
                  f"state for method {trainer.method} ({type(exc).__name__}: {exc})")
            return 2
        print(f"aloe-ros train: critic and optimisers from {args.init_learner} "
              f"(update {trainer.step})")
    learner = Learner(config, trainer, build_replay(config), checkpoint_dir=out,
                      fresh_actor=fresh)
    image_size = getattr(getattr(actor, "config", None), "image_size", None)
    try:
        episodes = load_episodes(args.inputs, config, resize=image_size)
        for episode in episodes:
            learner.add_episode(episode)
    except (EpisodeFormatError, ReplayError, PolicyError, OSError) as exc:
        print(f"aloe-ros train: {exc}")
        return 2
    if len(learner.replay) == 0:
        print("aloe-ros train: the inputs hold no chunk transitions")
        return 2
    if context is not None:
        from aloe_ros.learning.distributed import broadcast_parameters, trainer_modules

        learner._fit_fresh_actor()
        broadcast_parameters(trainer_modules(trainer))
        # Same data on every rank, different batches: each rank samples with its own seed.
        learner.rng = np.random.default_rng(config.learning.seed + 7919 * (context.rank + 1))
    counts = ", ".join(f"{k} {v}" for k, v in learner.replay.counts_by_source().items())
    ranks = f", {context.world_size} ranks" if context is not None else ""
    if main_rank:
        print(f"aloe-ros train: method {trainer.method}{ranks}, {len(episodes)} episodes, "
              f"{len(learner.replay)} transitions ({counts})"
              f", actor {getattr(actor, 'version', '?')}{' (untrained)' if fresh else ''}, "
              f"device {config.learning.device}")
    updates = args.updates if args.updates is not None else config.learning.updates_per_round
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    metrics_file = open(out / ("metrics.jsonl" if main_rank else os.devnull), "a")
    bar = tqdm(total=updates, desc=f"train {trainer.method}", unit="update",
               disable=not main_rank)
    window: list[dict[str, float]] = []

    def progress(i: int, stats: dict[str, float]) -> None:
        window.append(stats)
        bar.update(1)
        if (i + 1) % args.log_every == 0 or i + 1 == updates:
            keys = {k for row in window for k in row}
            row = {k: float(np.mean([r[k] for r in window if k in r])) for k in keys}
            row["update"] = float(trainer.step)
            history.append(row)
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in row.items()
                     if k.startswith("losses/")}
            bar.set_postfix(shown)
            window.clear()

    started = time.monotonic()
    first_step = trainer.step
    try:
        learner.train(updates, progress=progress)
    except KeyboardInterrupt:
        print("\naloe-ros train: interrupted; saving what was learned")
    finally:
        bar.close()
        metrics_file.close()
    elapsed = time.monotonic() - started
    if not main_rank:
        return _finish_distributed()
    info = learner.checkpoint(directory=out, save_replay=not args.no_replay)
    ran = trainer.step - first_step
    print(f"aloe-ros train: {ran} updates in {elapsed:.0f} s ({ran / max(elapsed, 1e-9):.2f}/s), "
          f"{trainer.step} in total; wrote {out} (version {info.version}, "
          f"sha256 {info.sha256[:16]}...)")
    if not args.no_plots:
        written = write_plots(learner, history, out / "plots")
        print("aloe-ros train: plots " + ", ".join(str(p) for p in written))
    return _finish_distributed() if context is not None else 0


def _finish_distributed() -> int:
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
    return 0


def write_plots(learner: Any, history: list[dict[str, float]], directory: Path) -> list[Path]:
    """losses.png, distributions.png (by source) and q_traces.png (first episodes)."""
    import numpy as np

    from aloe_ros.learning.plots import (
        EpisodeTrace,
        plot_distributions,
        plot_metrics,
        plot_q_traces,
    )

    directory.mkdir(parents=True, exist_ok=True)
    written = [plot_metrics(history, directory / "losses.png")]
    columns: dict[str, list[np.ndarray]] = {"q_aggregated": [], "value": [], "advantage": []}
    sources: list[str] = []
    traces: list[EpisodeTrace] = []
    for index, segment in enumerate(learner.replay.segments):
        batch = learner.replay.episode_batch(index)
        values = learner.trainer.evaluate(batch)
        for key in columns:
            columns[key].append(values[key].numpy())
        sources += batch.source
        if len(traces) < 6:
            done = bool(batch.done[-1])
            outcome = ("success" if batch.success[-1] > 0 else "failure") if done else "truncated"
            traces.append(EpisodeTrace(segment.episode_id, outcome, batch.start.numpy(),
                                       values["q_aggregated"].numpy(), values["value"].numpy(),
                                       values["advantage"].numpy(), list(batch.source)))
    merged = {k: np.concatenate(v) for k, v in columns.items()}
    written.append(plot_distributions(merged, sources, directory / "distributions.png"))
    written.append(plot_q_traces(traces, directory / "q_traces.png"))
    return written
