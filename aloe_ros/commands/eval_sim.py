"""``aloe-ros eval-sim``: closed-loop rollouts of a policy in the sim; prints the success rate."""

from __future__ import annotations

import argparse
import logging

HELP = "evaluate a policy checkpoint in the sim (no ROS): success rate over N episodes"

log = logging.getLogger("aloe_ros.eval_sim")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="", metavar="DIR",
                        help="checkpoint directory (built-in or LeRobot); empty: untrained")
    parser.add_argument("--task", default="pack_phone", help="task name or YAML")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first episode (default: sim_rollouts.FIRST_EVAL_SEED, "
                             "100000, away from the seeds of sim-demos and the bench's rounds)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--execute-horizon", type=int, default=0, metavar="N",
                        help="override policy.execute_horizon (0: the task's)")
    parser.add_argument("--noise-scale", type=float, default=None, metavar="S",
                        help="built-in policy: scale of the initial flow noise "
                             "(default: policy.noise_scale)")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from aloe_ros.config import ConfigError, load_task_config
    from aloe_ros.policies.base import PolicyError
    from aloe_ros.policies.bc import new_builtin_policy
    from aloe_ros.policies.checkpoint import LeRobotBinding, apply_inference_settings, load_policy
    from aloe_ros.policies.sim_rollouts import FIRST_EVAL_SEED, RolloutResult, evaluate_policy

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        config = load_task_config(args.task)
    except ConfigError as exc:
        print(f"aloe-ros eval-sim: configuration error: {exc}")
        return 2
    try:
        if args.policy:
            binding = LeRobotBinding(list(config.robot.joint_names),
                                     [c.name for c in config.cameras],
                                     dict(config.policy.camera_keys), config.task.text)
            policy = load_policy(args.policy, binding=binding, device=config.policy.device)
        else:
            policy = new_builtin_policy(config, seed=config.learning.seed)
    except PolicyError as exc:
        print(f"aloe-ros eval-sim: {exc}")
        return 2
    if args.execute_horizon > 0:
        config.policy.execute_horizon = min(args.execute_horizon, policy.chunk_horizon)
    apply_inference_settings(policy, flow_steps=config.policy.flow_steps,
                             noise_scale=(config.policy.noise_scale if args.noise_scale is None
                                          else args.noise_scale))
    successes = 0
    reasons: dict[str, int] = {}
    failed_at: dict[int, int] = {}
    bar = tqdm(total=args.episodes, desc="eval-sim", unit="ep")

    def count(i: int, result: RolloutResult) -> None:
        nonlocal successes
        successes += int(result.success)
        reasons[result.reason] = reasons.get(result.reason, 0) + 1
        if not result.success:
            failed_at[result.furthest_stage] = failed_at.get(result.furthest_stage, 0) + 1
        bar.update(1)
        bar.set_postfix(success=f"{successes}/{i + 1}")

    evaluate_policy(config, policy, args.episodes, on_episode=count,
                    first_seed=FIRST_EVAL_SEED if args.seed is None else args.seed)
    bar.close()
    rate = successes / args.episodes
    noise = getattr(policy, "noise_scale", None)
    print(f"aloe-ros eval-sim: policy {policy.version} on {config.task.name} (execute "
          f"{config.policy.execute_horizon} of {policy.chunk_horizon}"
          + (f", noise scale {noise:g}" if noise is not None else "") + "): "
          f"success {successes}/{args.episodes} = {rate:.0%}")
    print("aloe-ros eval-sim: outcomes: "
          + ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])))
    if failed_at:
        # Where the failures got stuck: the task's progress stage (docs/inference.md).
        print("aloe-ros eval-sim: failures by furthest stage reached: "
              + ", ".join(f"stage {k} x{v}" for k, v in sorted(failed_at.items())))
    return 0
