"""Policy checkpoint directories: find, verify and load them safely (no ROS).

A checkpoint is a directory:

* built-in: ``policy.json`` (kind "builtin", version, joint names, cameras, model config, the
  sha256 of the weights) + ``model.safetensors``;
* LeRobot: what ``save_pretrained`` writes (``config.json``, ``model.safetensors`` and the
  pre/post-processor files), loaded through :mod:`aloe_ros.policies.lerobot_adapter`.

The content hash of a checkpoint is the sha256 of its ``model.safetensors`` file; it is what
``PolicyUpdate.sha256`` carries. Only weight formats that cannot run code are read:
safetensors, or a torch file through ``torch.load(weights_only=True)``; pickles never. With a
``root``, only directories below it are accepted (symlinks resolved first).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_ros.policies.base import ChunkPolicy, PolicyError

__all__ = ["LeRobotBinding", "apply_inference_settings", "checkpoint_kind", "checkpoint_sha256",
           "load_policy", "resolve_checkpoint_dir"]

log = logging.getLogger(__name__)

SAFETENSORS = "model.safetensors"
TORCH_WEIGHTS = "model.pt"


@dataclass
class LeRobotBinding:
    """How a LeRobot policy meets our robot: joints in order, cameras -> LeRobot feature keys."""

    joint_names: list[str]
    camera_names: list[str]
    # camera name -> LeRobot image key; missing: observation.images.<camera>.
    camera_keys: dict[str, str] = field(default_factory=dict)
    task: str = ""


def resolve_checkpoint_dir(directory: Path | str, root: Path | str | None = None) -> Path:
    """The real path of a checkpoint directory; PolicyError if missing or outside ``root``.

    A ``file://`` URI (what the learner puts in PolicyUpdate.checkpoint_uri) is accepted too.
    """
    text = str(directory)
    if text.startswith("file://"):
        from urllib.parse import unquote, urlparse

        text = unquote(urlparse(text).path)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise PolicyError(f"checkpoint {path}: no such directory")
    real = path.resolve()
    if root is not None:
        real_root = Path(root).expanduser().resolve()
        if not real.is_relative_to(real_root):
            raise PolicyError(f"checkpoint {path} is outside the checkpoint root {real_root}; "
                              "refusing to load it (policy.checkpoint_root)")
    return real


def checkpoint_kind(directory: Path) -> str:
    """'builtin' (policy.json) or 'lerobot' (config.json from save_pretrained)."""
    if (directory / "policy.json").is_file():
        return "builtin"
    if (directory / "config.json").is_file():
        return "lerobot"
    raise PolicyError(f"checkpoint {directory}: neither policy.json (built-in) nor config.json "
                      "(LeRobot save_pretrained) found")


def weights_file(directory: Path) -> Path:
    """The weights of a checkpoint: model.safetensors, else model.pt (weights only)."""
    for name in (SAFETENSORS, TORCH_WEIGHTS):
        if (directory / name).is_file():
            return directory / name
    unsafe = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pkl", ".pth"))
    hint = f" (found {unsafe}: formats that can run code are not accepted)" if unsafe else ""
    raise PolicyError(f"checkpoint {directory}: no {SAFETENSORS} or {TORCH_WEIGHTS}{hint}")


def checkpoint_sha256(directory: Path | str) -> str:
    """The content hash of a checkpoint: sha256 of its weights file."""
    from aloe_ros.policies.builtin import file_sha256

    return file_sha256(weights_file(Path(directory)))


def verify_sha256(directory: Path, expected: str | None) -> str:
    """Hash the weights; PolicyError when ``expected`` is given and differs."""
    actual = checkpoint_sha256(directory)
    if expected and actual != expected.strip().lower():
        raise PolicyError(f"checkpoint {directory}: sha256 of {weights_file(directory).name} is "
                          f"{actual[:16]}..., expected {expected[:16]}...; refusing to load it")
    return actual


def read_state_dict(path: Path) -> dict[str, Any]:
    """Weights as a state dict, from safetensors or a weights-only torch file."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoder error means an unusable file
        raise PolicyError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, dict):
        raise PolicyError(f"{path}: expected a state dict, got {type(loaded).__name__}")
    return loaded


def load_builtin(directory: Path, *, device: str = "cpu") -> ChunkPolicy:
    from aloe_ros.policies.builtin import KIND, BuiltinPolicy

    try:
        meta = json.loads((directory / "policy.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{directory}/policy.json: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise PolicyError(f"{directory}/policy.json: kind is {meta.get('kind')!r}, "
                          f"expected {KIND!r}")
    # The hash recorded at save time guards against a torn or swapped weights file.
    verify_sha256(directory, meta.get("sha256"))
    policy = BuiltinPolicy.from_metadata(meta, read_state_dict(weights_file(directory)))
    return policy.to(device)


def load_policy(directory: Path | str, *, root: Path | str | None = None,
                expected_sha256: str | None = None, kind: str = "auto", device: str = "cpu",
                binding: LeRobotBinding | None = None) -> ChunkPolicy:
    """Load a checkpoint directory as a ChunkPolicy (built-in or LeRobot, auto-detected).

    ``root``: refuse directories outside it. ``expected_sha256``: refuse weights whose hash
    differs (PolicyUpdate). ``binding`` maps a LeRobot policy onto our joints and cameras.
    Every failure is a PolicyError that names the directory.
    """
    path = resolve_checkpoint_dir(directory, root)
    detected = checkpoint_kind(path)
    if kind != "auto" and kind != detected:
        raise PolicyError(f"checkpoint {path} is a {detected} checkpoint, but policy.kind "
                          f"is {kind!r}")
    if expected_sha256:
        verify_sha256(path, expected_sha256)
    if detected == "builtin":
        return load_builtin(path, device=device)
    if binding is None:
        raise PolicyError(f"checkpoint {path} is a LeRobot policy: loading it needs the robot's "
                          "joint and camera names (a LeRobotBinding)")
    from aloe_ros.policies.lerobot_adapter import LeRobotChunkPolicy

    return LeRobotChunkPolicy.load(path, binding, device=device)


def apply_inference_settings(policy: ChunkPolicy, *, flow_steps: int, noise_scale: float
                             ) -> ChunkPolicy:
    """Task settings that change how a built-in policy samples (not its weights)."""
    from aloe_ros.policies.builtin import BuiltinPolicy

    if isinstance(policy, BuiltinPolicy):
        policy.flow_steps = flow_steps
        policy.noise_scale = noise_scale
    return policy
