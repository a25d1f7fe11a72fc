"""Open recorded rosbag2 (MCAP) bags without ROS: topics, metadata, raw and decoded messages.

``Bag`` wraps rosbags' reader so that every failure (missing, unfinished, truncated or corrupt
bag) becomes one ``BagError`` whose message names the file and says what to do. Messages are
decoded with rosbags' typestore plus our types (io/bag_types), tolerating rclpy's padding; no
rclpy import anywhere, so a learner machine without ROS reads bags too.

Episodes on the control grid are built from a Bag by io/bag_episodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from rosbags.rosbag2 import Reader

from aloe_ros.config import ConfigError, TaskFile
from aloe_ros.config_loader import from_dict
from aloe_ros.io.bag_types import DecodeError, aloe_typestore, decode_cdr, register_definitions

__all__ = ["Bag", "BagError", "TopicSummary"]


class BagError(RuntimeError):
    """A bag that cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class TopicSummary:
    name: str
    msgtype: str
    count: int


class Bag:
    """A finished rosbag2 bag directory (or its .mcap file), opened for reading."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path).expanduser()
        if path.is_file() and path.suffix == ".mcap":
            path = path.parent
        self.path = path
        if not path.exists():
            raise BagError(f"{path}: no such bag")
        if not path.is_dir():
            raise BagError(f"{path}: not a bag directory or .mcap file")
        if not (path / "metadata.yaml").is_file():
            if any(path.glob("*.mcap")):
                raise BagError(f"{path}: unfinished bag (no metadata.yaml; the recorder was "
                               f"killed?). Run `aloe-ros bag repair {path}` first")
            raise BagError(f"{path}: not a rosbag2 bag (no metadata.yaml)")
        self.store = aloe_typestore()
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds; name the file
            raise BagError(f"{path}: cannot open bag ({type(exc).__name__}: {exc}); if it was "
                           f"cut short, `aloe-ros bag repair {path}` may recover it") from None
        self._connections = list(self._reader.connections)
        unknown = {c.msgtype: c.msgdef.data for c in self._connections
                   if c.msgtype not in self.store.fielddefs}
        if unknown:
            try:
                register_definitions(self.store, unknown)
            except Exception as exc:  # noqa: BLE001 - a bad embedded definition
                raise BagError(f"{path}: bad message definition in the bag ({exc})") from None

    # ---- context manager -------------------------------------------------------------------
    def __enter__(self) -> Bag:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    # ---- what is in it ------------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, TopicSummary]:
        out: dict[str, TopicSummary] = {}
        for c in self._connections:
            known = out.get(c.topic)
            out[c.topic] = TopicSummary(c.topic, c.msgtype,
                                        c.msgcount + (known.count if known else 0))
        return out

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time) if self._reader.message_count else 0

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time) if self._reader.message_count else 0

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    @property
    def custom_data(self) -> dict[str, str]:
        custom = getattr(self._reader.storage, "metadata", None)
        data = getattr(custom, "custom", None) or {}
        return {str(k): str(v) for k, v in data.items()}

    def custom_json(self, key: str, default: Any) -> Any:
        text = self.custom_data.get(key)
        if not text:
            return default
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return default

    def task_config(self) -> TaskFile | None:
        """The task config recorded with the bag (aloe_ros.config), or None."""
        text = self.custom_data.get("aloe_ros.config")
        if not text:
            return None
        try:
            config = from_dict(TaskFile, yaml.safe_load(text), source=f"{self.path} (recorded)")
        except (ConfigError, yaml.YAMLError) as exc:
            raise BagError(f"{self.path}: recorded task config is unusable: {exc}") from None
        config.source_path = self.custom_data.get("aloe_ros.config_path", "")
        return config

    # ---- messages -----------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None
                 ) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, log time ns, serialized bytes) in log-time order."""
        wanted = None if topics is None else set(topics)
        connections = [c for c in self._connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        expected = sum(c.msgcount for c in connections)
        seen = 0
        try:
            for connection, stamp, data in self._reader.messages(connections=connections):
                seen += 1
                yield connection.topic, connection.msgtype, int(stamp), data
        except Exception as exc:  # noqa: BLE001 - corrupt chunk etc.: name the file
            raise BagError(f"{self.path}: corrupt data while reading "
                           f"({type(exc).__name__}: {exc})") from None
        # rosbags can skip a damaged chunk silently: the metadata's counts catch that.
        if seen != expected:
            raise BagError(f"{self.path}: corrupt bag: {seen} messages readable, the index "
                           f"lists {expected}")

    def decode(self, msgtype: str, data: bytes | memoryview) -> Any:
        """A rosbags message object (fields as in ROS; arrays as numpy)."""
        try:
            return decode_cdr(self.store, data, msgtype)
        except DecodeError as exc:
            raise BagError(f"{self.path}: {exc}") from None

    def decoded(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """(topic, log time ns, decoded message) in log-time order."""
        for topic, msgtype, stamp, data in self.messages(topics):
            yield topic, stamp, self.decode(msgtype, data)
