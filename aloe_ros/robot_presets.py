"""Robot presets: ``preset: aloha`` in a task YAML merges config/robots/aloha.yaml under it.

A preset holds what belongs to the rig, not the task: joint names and limits, rates, camera
topics, command outputs, the leader-arm topic, the real-robot node list. The task file's own
keys win: mappings are merged key by key, anything else (lists, values) replaces the preset's.
Errors keep naming the YAML key path; a value that came from the preset says so.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from aloe_ros.config_loader import ConfigError, load_yaml_file

__all__ = ["PRESET_DIR_NAME", "apply_preset", "find_preset", "merge_layers", "value_at"]

PRESET_DIR_NAME = "robots"
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def merge_layers(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merged recursively, everything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy.deepcopy(base)
        for key, value in override.items():
            out[key] = merge_layers(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def value_at(data: Any, key_path: str) -> bool:
    """Whether the dotted key path (``robot.velocity_limits[3]``) exists in ``data``."""
    node = data
    for name, index in _PATH_TOKEN.findall(key_path):
        if name:
            if not isinstance(node, dict) or name not in node:
                return False
            node = node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
    return True


def find_preset(name: str, task_dir: Path, search: list[Path]) -> Path:
    """A preset by name (config/robots/<name>.yaml) or by path (relative to the task file)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        candidate = (task_dir / Path(name).expanduser()).resolve()
        if candidate.is_file():
            return candidate
        raise ConfigError("preset", f"preset file {str(candidate)!r} not found")
    for folder in search:
        path = folder / PRESET_DIR_NAME / f"{name}.yaml"
        if path.is_file():
            return path
    available = sorted({p.stem for folder in search
                        for p in (folder / PRESET_DIR_NAME).glob("*.yaml")})
    raise ConfigError("preset", f"unknown robot preset {name!r}; available: "
                                f"{', '.join(available) or 'none'}")


def apply_preset(data: Any, task_path: Path, search: list[Path]) -> tuple[Any, Path | None]:
    """The task data with its preset merged under it (``preset`` removed), and the preset path.

    Data without a ``preset`` key is returned unchanged with None.
    """
    if not isinstance(data, dict) or "preset" not in data:
        return data, None
    own = dict(data)
    name = own.pop("preset")
    if not isinstance(name, str) or not name:
        raise ConfigError("preset", f"expected a preset name or file, got {name!r}",
                          str(task_path))
    try:
        preset_path = find_preset(name, task_path.parent, search)
    except ConfigError as exc:
        raise ConfigError(exc.key_path, exc.message, str(task_path)) from None
    preset = load_yaml_file(preset_path)
    if not isinstance(preset, dict):
        raise ConfigError("", "a robot preset must be a mapping of task-file sections",
                          str(preset_path))
    if "preset" in preset or "task" in preset:
        key = "preset" if "preset" in preset else "task"
        raise ConfigError(key, "not allowed in a robot preset (presets do not nest and hold "
                               "no task)", str(preset_path))
    return merge_layers(preset, own), preset_path
