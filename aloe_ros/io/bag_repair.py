"""Finish a bag that a crash left open: rebuild the MCAP summary and metadata.yaml (no ROS).

A recording killed with ``kill -9`` (or a power loss) leaves an MCAP file of complete chunks,
possibly a torn last chunk, and no summary, footer or metadata.yaml. ``repair_bag`` reads the
complete records sequentially with the independent ``mcap`` reader (stopping at the first torn
or corrupt record), writes them into a fresh rosbag2 bag with rosbags, and restores the custom
metadata (task, config, policy versions) from the sidecar ``aloe_recording.yaml``. The original
is kept as ``<bag>.unfinished`` until the new bag is complete, then removed (unless ``keep``).
"""

from __future__ import annotations

import logging
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin

from aloe_ros.io.bag_types import aloe_typestore, register_definitions
from aloe_ros.io.bag_writer import SIDECAR_NAME, write_sidecar

__all__ = ["RepairError", "RepairReport", "find_unfinished_bags", "mcap_file", "repair_bag"]

log = logging.getLogger(__name__)


class RepairError(RuntimeError):
    """The bag cannot be repaired; the message names the file."""


@dataclass
class RepairReport:
    path: Path
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""


def mcap_file(bag: Path) -> Path:
    """The MCAP file of a bag directory (or the file itself)."""
    if bag.is_file():
        return bag
    files = sorted(bag.glob("*.mcap"))
    if not files:
        raise RepairError(f"{bag}: no .mcap file in the bag directory")
    if len(files) > 1:
        raise RepairError(f"{bag}: {len(files)} .mcap files; split bags are not supported")
    return files[0]


def find_unfinished_bags(record_dir: Path) -> list[Path]:
    """Bag directories under ``record_dir`` with an MCAP file but no metadata.yaml, and bags
    whose repair was interrupted (``<bag>.unfinished`` left beside an unfinished ``<bag>``)."""
    if not record_dir.is_dir():
        return []
    found = {p for p in record_dir.iterdir()
             if p.is_dir() and not p.name.endswith(".unfinished")
             and any(p.glob("*.mcap")) and not (p / "metadata.yaml").exists()}
    for aside in record_dir.glob("*.unfinished"):
        bag = aside.with_name(aside.name.removesuffix(".unfinished"))
        if aside.is_dir() and any(aside.glob("*.mcap")) and not (bag / "metadata.yaml").exists():
            found.add(bag)
    return sorted(found)


def _read_sidecar(bag: Path) -> dict[str, Any]:
    path = bag / SIDECAR_NAME
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        log.warning("%s: unreadable sidecar (%s); custom metadata is lost", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def repair_bag(bag: Path | str, *, keep: bool = False) -> RepairReport:
    """Rewrite the complete records of ``bag`` into a finished bag at the same path.

    The original moves aside to ``<bag>.unfinished`` while the new bag is written. If a repair
    was itself interrupted (the recorder killed again while repairing), the aside is the
    original: the partial rewrite is dropped and the repair starts again from the aside.
    """
    bag = Path(bag)
    aside = bag.with_name(bag.name + ".unfinished")
    if aside.is_dir():
        if (bag / "metadata.yaml").exists():
            raise RepairError(f"{bag} is finished but {aside} exists too (a repair stopped "
                              "before removing it): check the bag, then remove the aside")
        log.warning("%s: an earlier repair was interrupted; repairing again from %s", bag, aside)
        shutil.rmtree(bag, ignore_errors=True)
    else:
        if not bag.is_dir():
            raise RepairError(f"{bag}: not a bag directory")
        mcap_file(bag)
        bag.rename(aside)
    source_file = mcap_file(aside)
    sidecar = _read_sidecar(aside)
    try:
        report = _rewrite(source_file, bag, sidecar)
    except BaseException:
        shutil.rmtree(bag, ignore_errors=True)
        aside.rename(bag)
        raise
    if sidecar:
        sidecar.setdefault("custom_data", {})["aloe_ros.repaired"] = "true"
        write_sidecar(bag, sidecar)
    if not keep:
        shutil.rmtree(aside)
    log.debug("%s: repaired, %d messages kept (%s)", bag, report.messages,
             f"stopped at a torn or corrupt record: {report.stop_reason}"
             if report.stop_reason else "clean end")
    return report


def _rewrite(source: Path, target: Path, sidecar: dict[str, Any]) -> RepairReport:
    store = aloe_typestore()
    report = RepairReport(target)
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    connections: dict[int, Any] = {}
    writer = Writer(target, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    with open(source, "rb") as handle:
        reader = StreamReader(handle, skip_magic=False, validate_crcs=True)
        records = reader.records
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except (McapError, struct.error, ValueError, EOFError, OSError) as exc:
                # a torn or corrupt tail: everything before it is kept
                report.stop_reason = (f"{type(exc).__name__}: {exc}" if str(exc)
                                      else f"{type(exc).__name__} (no summary after the data)")
                break
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                connection = connections.get(record.channel_id)
                if connection is None:
                    connection = _connect(writer, store, channels, schemas, record.channel_id)
                    connections[record.channel_id] = connection
                writer.write(connection, record.log_time, record.data)
                report.messages += 1
                topic = connection.topic
                report.topics[topic] = report.topics.get(topic, 0) + 1
    # Topics that were subscribed but got no message still belong in the bag.
    for channel_id in channels:
        if channel_id not in connections:
            connections[channel_id] = _connect(writer, store, channels, schemas, channel_id)
    for key, value in (sidecar.get("custom_data") or {}).items():
        writer.set_custom_data(str(key), str(value))
    writer.set_custom_data("aloe_ros.repaired", "true")
    writer.close()
    if not report.messages and report.stop_reason:
        log.warning("%s: no complete chunk could be read (%s)", source, report.stop_reason)
    return report


def _connect(writer: Writer, store: Any, channels: dict[int, Channel],
             schemas: dict[int, Schema], channel_id: int) -> Any:
    channel = channels.get(channel_id)
    if channel is None:
        raise RepairError(f"message on channel {channel_id} before its channel record")
    schema = schemas.get(channel.schema_id)
    if schema is None:
        raise RepairError(f"channel {channel.topic} refers to unknown schema {channel.schema_id}")
    definition = schema.data.decode()
    register_definitions(store, {schema.name: definition})
    return writer.add_connection(channel.topic, schema.name, msgdef=definition,
                                 rihs01=store.hash_rihs01(schema.name))
