"""Crash-tolerant rosbag2 (MCAP) recording from serialized messages, on a writer thread (no ROS).

``BagRecorder.submit`` is what subscription callbacks call: it never blocks and never does I/O;
it hands the bytes to a queue bounded in bytes (``queue_max_mb``). Beyond the bound a message is
dropped and counted for its topic: the counts go into the Status message and the bag metadata.

Flush policy (readable after ``kill -9``): the writer thread closes the open MCAP chunk and
flushes the file every ``flush_period_s / 2`` (fsync too, when configured), so a message that
arrived more than ``flush_period_s`` ago is in a complete chunk on disk. rosbags' writer cuts a
chunk at 1 MiB on its own. A killed recording lacks the MCAP summary and metadata.yaml;
``aloe-ros bag repair`` (io/bag_repair) rebuilds them, taking the custom metadata from the
sidecar file ``aloe_recording.yaml`` that is kept up to date while recording.

Disk guard: when free space under the bag falls below ``min_free_disk_mb`` the recording is
finished cleanly (summary and metadata written) and further messages are counted as lost.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.typesys.store import Typestore

from aloe_ros.io.bag_types import aloe_typestore, decode_cdr

__all__ = ["SIDECAR_NAME", "BagRecorder", "RecorderStats", "new_bag_path", "write_sidecar"]

log = logging.getLogger(__name__)

SIDECAR_NAME = "aloe_recording.yaml"
# Types whose messages carry a policy version worth listing in the bag metadata.
VERSIONED_TYPES = ("aloe_ros/msg/ActionChunk", "aloe_ros/msg/PolicyUpdate")


def new_bag_path(record_dir: Path | str, task: str) -> Path:
    """``<record_dir>/<task>_<YYYYmmdd-HHMMSS>`` (suffixed when taken): one bag per run."""
    folder = Path(record_dir).expanduser()
    base = f"{task}_{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / base, 1
    while path.exists():
        path, n = folder / f"{base}_{n}", n + 1
    return path


def write_sidecar(bag: Path, data: dict[str, Any]) -> None:
    """Atomically write the recording's custom metadata next to the MCAP file."""
    tmp = bag / (SIDECAR_NAME + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(bag / SIDECAR_NAME)


@dataclass
class RecorderStats:
    written: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    queued_bytes: int = 0
    flushes: int = 0
    stopped: bool = False
    error: str = ""


class BagRecorder:
    """Record serialized messages into one rosbag2 MCAP bag (see module docstring)."""

    def __init__(self, path: Path | str, topics: dict[str, str], *,
                 custom_data: dict[str, str] | None = None, flush_period_s: float = 0.5,
                 compression: str = "none", queue_max_mb: int = 512,
                 min_free_disk_mb: int = 1024, fsync: bool = True,
                 typestore: Typestore | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.store = typestore or aloe_typestore()
        self.flush_interval_s = flush_period_s / 2
        self.queue_max_bytes = queue_max_mb * 1024 * 1024
        self.min_free_bytes = min_free_disk_mb * 1024 * 1024
        self.fsync = fsync
        self.on_error = on_error
        self.custom_data = dict(custom_data or {})
        self.policy_versions: list[str] = []
        self.stats = RecorderStats()
        self._lock = threading.Lock()
        self._closing = False  # no more submits: the bag is being (or has been) finished
        self._queue: queue.SimpleQueue[tuple[str, int, bytes] | None] = queue.SimpleQueue()
        self._msgtypes: dict[str, str] = {}
        self._connections: dict[str, Any] = {}
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compression in ("zstd", "lz4"):
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        if compression == "lz4":
            # rosbags compresses chunks with zstd only; MCAP readers also accept lz4 chunks.
            import lz4.frame

            storage: Any = self._writer.storage
            storage.compression, storage.compressor = "lz4", lz4.frame.compress
        for topic, msgtype in topics.items():
            self._add_connection(topic, msgtype)
        self._sidecar_dirty = True
        self._write_sidecar()
        self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
        self._thread.start()

    # ---- called from subscription callbacks: never blocks --------------------------------
    def submit(self, topic: str, stamp_ns: int, data: bytes) -> bool:
        """Queue one serialized message; False (and counted as lost) when it cannot be kept."""
        size = len(data)
        with self._lock:
            if self._closing or self.stats.queued_bytes + size > self.queue_max_bytes:
                self.stats.lost[topic] = self.stats.lost.get(topic, 0) + 1
                return False
            self.stats.queued_bytes += size
        self._queue.put((topic, stamp_ns, data))
        return True

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Record one more topic (an extra topic whose type was discovered late)."""
        with self._lock:
            if topic in self._msgtypes or self._closing:
                return
            self._msgtypes[topic] = msgtype  # the connection is added on the writer thread
        self._queue.put((topic, -1, b""))

    def set_custom_data(self, key: str, value: str) -> None:
        with self._lock:
            self.custom_data[key] = value
            self._sidecar_dirty = True

    def snapshot(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(dict(self.stats.written), dict(self.stats.lost),
                                 self.stats.bytes_written, self.stats.queued_bytes,
                                 self.stats.flushes, self.stats.stopped, self.stats.error)

    def close(self, timeout_s: float = 30.0) -> RecorderStats:
        """Write what is queued, finish the bag (summary + metadata.yaml); idempotent."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("%s: writer thread did not finish in %.0f s", self.path, timeout_s)
        return self.snapshot()

    # ---- writer thread ---------------------------------------------------------------------
    def _add_connection(self, topic: str, msgtype: str) -> None:
        self._msgtypes[topic] = msgtype
        self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                               typestore=self.store)
        self.stats.written.setdefault(topic, 0)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            timeout = max(0.0, last_flush + self.flush_interval_s - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                break
            if item and self._closing:  # raced with a stop: not written, so lost
                with self._lock:
                    self.stats.queued_bytes -= len(item[2])
                    if item[1] >= 0:
                        self.stats.lost[item[0]] = self.stats.lost.get(item[0], 0) + 1
            elif item:
                self._write(*item)
            if time.monotonic() - last_flush >= self.flush_interval_s:
                last_flush = time.monotonic()
                self._flush_and_check()
        self._finish()

    def _write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        try:
            if stamp_ns < 0:
                if topic not in self._connections:
                    self._add_connection(topic, self._msgtypes[topic])
                    self._sidecar_dirty = True
                return
            connection = self._connections.get(topic)
            if connection is None:  # not a recorded topic: count it, keep recording
                with self._lock:
                    self.stats.lost[topic] = self.stats.lost.get(topic, 0) + 1
                return
            self._writer.write(connection, stamp_ns, data)
        except Exception as exc:  # noqa: BLE001 - a write error stops recording, never the node
            self._stop(f"write failed on {topic}: {exc}")
            return
        finally:
            with self._lock:
                self.stats.queued_bytes -= len(data)
        with self._lock:
            self.stats.written[topic] += 1
            self.stats.bytes_written += len(data)
        if self._msgtypes[topic] in VERSIONED_TYPES:
            self._note_policy_version(topic, data)

    def _note_policy_version(self, topic: str, data: bytes) -> None:
        try:
            version = str(decode_cdr(self.store, data, self._msgtypes[topic]).policy_version)
        except ValueError:
            return
        if version and version not in self.policy_versions:
            self.policy_versions.append(version)
            self.set_custom_data("aloe_ros.policy_versions", json.dumps(self.policy_versions))

    def _flush_and_check(self) -> None:
        """Close the open chunk, flush (and fsync) the file; then check the free disk space."""
        storage: Any = self._writer.storage
        if storage is None:
            return
        try:
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
            if self.fsync:
                os.fsync(storage.bio.fileno())
            self.stats.flushes += 1
            if self._sidecar_dirty:
                self._write_sidecar()
        except OSError as exc:
            self._stop(f"flush failed: {exc}")
            return
        free = shutil.disk_usage(self.path).free
        if free < self.min_free_bytes:
            self._stop(f"only {free / 2**20:.0f} MiB free on the disk of {self.path} "
                       f"(recording.min_free_disk_mb = {self.min_free_bytes // 2**20}); "
                       "recording stopped, the bag is closed and readable")

    def _write_sidecar(self) -> None:
        with self._lock:
            data = {"custom_data": dict(self.custom_data),
                    "topics": {t: m for t, m in self._msgtypes.items()},
                    "lost_messages": dict(self.stats.lost)}
            self._sidecar_dirty = False
        write_sidecar(self.path, data)

    def _stop(self, reason: str) -> None:
        """Stop recording for good: finish the bag now, count everything after as lost."""
        log.error("%s: %s", self.path, reason)
        self._finish(reason)
        if self.on_error is not None:
            self.on_error(reason)

    def _finish(self, reason: str = "") -> None:
        """Finish the bag (summary, metadata.yaml); ``stats.stopped`` is set once it is done."""
        with self._lock:
            self._closing = True
        self._drain()
        if self._writer.storage is not None:
            with self._lock:
                lost = dict(self.stats.lost)
            self.custom_data["aloe_ros.lost_messages"] = json.dumps(lost)
            for key, value in self.custom_data.items():
                self._writer.set_custom_data(key, value)
            try:
                self._writer.close()
                self._write_sidecar()
            except Exception as exc:  # noqa: BLE001 - leave a repairable file, don't crash
                log.error("%s: could not finish the bag (%s); run `aloe-ros bag repair %s`",
                          self.path, exc, self.path)
                reason = reason or f"close failed: {exc}"
                self._writer.storage = None
        with self._lock:
            self.stats.stopped = True
            self.stats.error = self.stats.error or reason

    def _drain(self) -> None:
        """Messages still queued when recording stops are not written: count them as lost."""
        sentinel = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                sentinel = True
            elif item[1] >= 0:
                with self._lock:
                    self.stats.queued_bytes -= len(item[2])
                    self.stats.lost[item[0]] = self.stats.lost.get(item[0], 0) + 1
        if sentinel:  # close() is waiting for the writer loop to see it
            self._queue.put(None)
