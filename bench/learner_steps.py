"""Learner updates per second: ALOE and the baselines, with the built-in actor, side by side.

Synthetic episodes (random frames at the built-in policy's image size, the task's cameras and
joints) fill one replay; every method trains on it with the task's learning settings (K, M,
batch, ...). HG-DAgger's update is plain behaviour cloning, so ``x BC`` says what the critic,
the bootstrap samples and V(o) cost on top of a BC step. Methods alternate round by round so
machine load hits them alike; medians.

    .venv/bin/python bench/learner_steps.py [--task pack_phone --batch 64 --updates 3 --device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from aloe_ros.config import load_task_config
from aloe_ros.io.episodes import Episode
from aloe_ros.learning.factory import build_replay, build_trainer
from aloe_ros.policies.bc import new_builtin_policy

METHODS = ("dagger", "awr_mc", "aloe", "td1")


def synthetic_episode(config, steps: int, episode_id: int, image: tuple[int, int]) -> Episode:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(episode_id)
    dim = config.robot.action_dim
    states = np.cumsum(rng.normal(0, 0.01, (steps, dim)), axis=0).astype(np.float32)
    rewards = np.zeros(steps, np.float32)
    rewards[-1] = float(episode_id % 2)
    human = np.zeros(steps, bool)
    human[steps // 3: steps // 2] = True
    return Episode(
        task=config.task.text, joint_names=list(config.robot.joint_names),
        control_rate_hz=config.robot.control_rate_hz,
        timestamps=np.arange(steps) / config.robot.control_rate_hz,
        images={c.name: rng.integers(0, 255, (steps, *image, 3), dtype=np.uint8)
                for c in config.cameras},
        states=states, actions=states + 0.01, human=human,
        policy_versions=["" if h else "bc@1" for h in human], rewards=rewards,
        episode_id=episode_id, success=bool(episode_id % 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pack_phone")
    parser.add_argument("--batch", type=int, default=0, help="0: learning.batch_size")
    parser.add_argument("--updates", type=int, default=3, help="timed rounds per method")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300, help="control steps per episode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_task_config(args.task)
    config.learning.device = args.device
    if args.batch:
        config.learning.batch_size = args.batch
    methods = args.methods.split(",")
    torch.manual_seed(0)
    probe = new_builtin_policy(config)
    image = tuple(probe.config.image_size)
    episodes = [synthetic_episode(config, args.steps, i, image)  # type: ignore[arg-type]
                for i in range(args.episodes)]
    trainers, replays = {}, {}
    for method in methods:
        config.learning.method = method
        actor = new_builtin_policy(config).to(args.device)
        replay = build_replay(config)
        for episode in episodes:
            replay.add_episode(episode)
        states = np.concatenate([s.states[s.obs_row] for s in replay.segments])
        actor.fit_normalization(states, np.concatenate([s.target_actions
                                                        for s in replay.segments]))
        trainers[method], replays[method] = build_trainer(config, actor), replay
    learning = config.learning
    print(f"task {args.task}: batch {learning.batch_size}, K={learning.ensemble_size}, "
          f"bootstrap M={learning.bootstrap_samples}, value M={learning.value_samples}, "
          f"H={config.policy.chunk_horizon}/{config.policy.execute_horizon}, "
          f"{len(config.cameras)} cameras {image[0]}x{image[1]}, device {args.device}, "
          f"threads {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {m: [] for m in methods}
    for round_index in range(args.updates + 1):
        for method in methods:
            batch = replays[method].sample(learning.batch_size, rng)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainers[method].update(batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if round_index > 0:  # round 0 warms up
                times[method].append(time.perf_counter() - start)
    base = statistics.median(times[methods[0]])
    for method in methods:
        median = statistics.median(times[method])
        print(f"{method:<7} {1 / median:8.3f} updates/s  ({median * 1e3:8.1f} ms/update, "
              f"{learning.batch_size / median:8.1f} samples/s)  {median / base:5.2f}x "
              f"{methods[0]}")


if __name__ == "__main__":
    main()
