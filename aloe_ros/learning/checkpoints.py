"""Learner checkpoints: a policy directory the inference node loads, plus the learner's state.

Layout of one checkpoint directory (``<checkpoint_dir>/<version>/`` for the online learner,
``--out DIR`` for ``aloe-ros train``)::

    policy.json, model.safetensors   the actor, written by the policy's own ``save``
    learner/state.pt                 critic, target critic, optimisers, step (torch, loadable
                                     with weights_only=True: tensors and plain containers only)
    learner/learner.json             method, step, version, sha256, metrics, replay directory

``<checkpoint_dir>/latest.json`` names the newest complete checkpoint; it is replaced
atomically only after the directory is complete, so a crash mid-write resumes from the previous
one. The replay lives beside it (``<checkpoint_dir>/replay``), written incrementally.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aloe_ros.learning.trainer_base import Trainer
from aloe_ros.policies.base import PolicyError, TrainableChunkPolicy

__all__ = ["CheckpointInfo", "ActorLoader", "default_actor_loader", "latest_checkpoint",
           "load_trainer_state", "prune_checkpoints", "write_checkpoint"]

log = logging.getLogger(__name__)

LEARNER_DIR = "learner"
STATE_FILE = "state.pt"
META_FILE = "learner.json"
LATEST_FILE = "latest.json"

ActorLoader = Callable[[Path], TrainableChunkPolicy]


@dataclass
class CheckpointInfo:
    path: Path
    version: str
    sha256: str
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


def default_actor_loader(device: str = "cpu") -> ActorLoader:
    """Load an actor with the inference issue's checkpoint reader; it must be trainable."""
    def load(directory: Path) -> TrainableChunkPolicy:
        from aloe_ros.policies.checkpoint import load_policy

        policy = load_policy(directory, device=device)
        if not isinstance(policy, TrainableChunkPolicy):
            raise PolicyError(f"checkpoint {directory}: {type(policy).__name__} cannot be "
                              "trained by the learner (no sample_actions / flow_matching_loss)")
        return policy
    return load


def _save_actor(actor: TrainableChunkPolicy, directory: Path, version: str,
                extra: dict[str, str]) -> str:
    try:
        return str(actor.save(directory, version=version, extra=extra))  # type: ignore[call-arg]
    except TypeError:  # a policy whose save() takes only the directory
        actor.version = version
        return str(actor.save(directory))


def write_checkpoint(directory: Path | str, trainer: Trainer, *, version_prefix: str,
                     metrics: dict[str, float] | None = None, replay_dir: str = "",
                     update_latest: Path | None = None) -> CheckpointInfo:
    """Write actor + learner state into ``directory``; version = <prefix>-<step>-<sha[:8]>.

    The actor is saved twice when its version must contain its own hash: the first save
    computes the weights' sha256 (the version string is metadata, not weights).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = trainer.step
    extra = {"learner_method": trainer.method, "learner_step": str(step)}
    sha = _save_actor(trainer.actor, directory, f"{version_prefix}-{step}", extra)
    version = f"{version_prefix}-{step}-{sha[:8]}"
    sha = _save_actor(trainer.actor, directory, version, extra)
    learner_dir = directory / LEARNER_DIR
    learner_dir.mkdir(exist_ok=True)
    tmp = learner_dir / (STATE_FILE + ".tmp")
    torch.save(trainer.state_dict(), tmp)
    tmp.replace(learner_dir / STATE_FILE)
    info = CheckpointInfo(directory, version, sha, step, dict(metrics or {}))
    meta = {"method": trainer.method, "step": step, "version": version, "sha256": sha,
            "metrics": info.metrics, "replay_dir": replay_dir}
    (learner_dir / META_FILE).write_text(json.dumps(meta, indent=1))
    if update_latest is not None:
        latest_tmp = update_latest / (LATEST_FILE + ".tmp")
        latest_tmp.write_text(json.dumps({"path": str(directory.resolve()), **meta}, indent=1))
        latest_tmp.replace(update_latest / LATEST_FILE)
    return info


def latest_checkpoint(checkpoint_dir: Path | str) -> Path | None:
    """The newest complete checkpoint under ``checkpoint_dir`` (from latest.json), if any."""
    path = Path(checkpoint_dir) / LATEST_FILE
    if not path.is_file():
        return None
    try:
        target = Path(json.loads(path.read_text())["path"])
    except (OSError, KeyError, ValueError) as exc:
        log.error("%s unreadable (%s); starting fresh", path, exc)
        return None
    return target if (target / LEARNER_DIR / STATE_FILE).is_file() else None


def load_trainer_state(directory: Path | str, trainer: Trainer,
                       map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Restore critic, optimisers and step from ``directory/learner``; returns learner.json."""
    learner_dir = Path(directory) / LEARNER_DIR
    state = torch.load(learner_dir / STATE_FILE, map_location=map_location, weights_only=True)
    trainer.load_state_dict(state)
    meta: dict[str, Any] = json.loads((learner_dir / META_FILE).read_text())
    return meta


def prune_checkpoints(checkpoint_dir: Path | str, keep: int, *, prefix: str) -> None:
    """Delete all but the ``keep`` newest checkpoint directories named ``<prefix>-*``."""
    root = Path(checkpoint_dir)
    candidates = sorted((p for p in root.glob(f"{prefix}-*")
                         if (p / LEARNER_DIR / META_FILE).is_file()),
                        key=lambda p: p.stat().st_mtime_ns)
    latest = latest_checkpoint(root)
    for path in candidates[:-keep] if keep > 0 else []:
        if latest is not None and path.resolve() == latest.resolve():
            continue
        shutil.rmtree(path, ignore_errors=True)
