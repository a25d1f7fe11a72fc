"""Bags -> Episodes on the control grid -> chunk transitions (no ROS). The learner's reader.

Rules (also in docs/recording.md):

* **Time**: every message is placed at its header stamp (its log time when the stamp is zero).
* **Episodes** run from an EpisodeEvent START to the first SUCCESS / FAILURE / ABORT (its
  outcome), or to the next START / RESET or the end of the bag (truncated: no outcome). Events
  come from ``topics.episode``; when that topic holds no event (a sim run without an episode
  manager), from the sim's detector topic. An outcome with no open episode closes an implicit
  episode that started at the previous episode's end (or the bag's start); rows before the
  first START, or a bag without any event, form a truncated episode.
* **Control grid**: rows at ``t_k = t_0 + k / control_rate_hz`` from the first command of the
  episode to its end. The rate comes from the config, else the bag's metadata, else the median
  command interval.
* **Action** of row k: the newest command (``topics.command``, what the robot executed) stamped
  at or before ``t_k + dt/2`` (zero-order hold; the half period absorbs jitter). Commands that
  fall between rows are counted as skipped, rows that reuse a command as repeated.
* **Observation** of row k: the newest joint state and the newest frame of each camera stamped
  at or before ``t_k`` (no look-ahead). Leading rows without a state or a frame of every camera
  are dropped and counted. Per camera, distinct frames used vs rows go into the metadata.
* **Human flag**: where the mux labels its commands (header.frame_id ``human:<source>``, as
  teleop_node does), the label decides, exactly per command; ``hold`` rows count as human
  inside an intervention. Otherwise a human holds control between InterventionEvent TAKEOVER
  and HANDBACK (and during an e-stop), judged at the executed command's stamp; a bag without
  intervention events falls back to which upstream command (teleop vs policy) it equals.
* **Policy version** of a policy row: that of the newest ActionChunk at or before its command.
* **Reward**: from EpisodeEvents only: the outcome event's reward on the last row.
* **Source**: an episode where a human commanded every row and no chunk arrived is a demo.
* **Split episodes**: a recorder restarted mid-episode leaves the episode's first part at the
  end of one bag (cut, no outcome) and the rest at the start of the next (no START). Each part
  carries its EpisodeEvent ``episode_id`` in the metadata; ``join_split_episodes`` puts the two
  back together, with a hole where nothing was recorded, so the first part gets the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aloe_ros.config import TaskFile, TopicsConfig
from aloe_ros.io.bag_frames import fill_images
from aloe_ros.io.bag_reader import Bag, BagError
from aloe_ros.io.bag_types import header_stamp_ns
from aloe_ros.io.episodes import HOLE_STARTS, Episode
from aloe_ros.io.transitions import ChunkTransition, episode_to_transitions

__all__ = ["BagStreams", "EpisodeSpan", "EventRow", "bag_transitions", "episode_spans",
           "join_split_episodes", "read_episodes"]

log = logging.getLogger(__name__)

START, SUCCESS, FAILURE, ABORT, RESET = 0, 1, 2, 3, 4
TAKEOVER, HANDBACK, ESTOP, RELEASE_ESTOP = 0, 1, 2, 3
OUTCOMES = {SUCCESS: "success", FAILURE: "failure", ABORT: "abort"}
# An EpisodeEvent as read: (stamp ns, source 0 manager / 1 detector, kind, reward, reason, id)
EventRow = tuple[int, int, int, float, str, int]
# Episode metadata keys of the parts of a split episode
RECORDED_ID, BEGINS_MID_EPISODE, CUT_AT_BAG_END = (
    "recorded_episode_id", "begins_mid_episode", "cut_at_bag_end")


@dataclass
class EpisodeSpan:
    episode_id: int
    start_ns: int
    end_ns: int
    outcome: str = ""          # success | failure | abort | "" (truncated)
    reason: str = ""
    reward: float = 0.0
    recorded_id: int | None = None   # EpisodeEvent.episode_id of its START or outcome
    begins_mid_episode: bool = False  # the bag began inside it (no START recorded)
    cut_at_bag_end: bool = False      # still open when the bag ended


@dataclass
class BagStreams:
    """The small streams of a bag, decoded, stamped and sorted; images only as stamps."""

    joint_names: list[str]
    task: str
    events: list[EventRow] = field(default_factory=list)
    interventions: list[tuple[int, int]] = field(default_factory=list)
    command_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    command_q: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    command_frames: list[str] = field(default_factory=list)
    state_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    state_q: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    chunk_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    chunk_versions: list[str] = field(default_factory=list)
    upstream: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # camera -> header stamps in log order
    image_t: dict[str, np.ndarray] = field(default_factory=dict)
    bad_messages: int = 0


def _stamp(msg: Any, log_ns: int) -> int:
    stamp = msg.header.stamp
    value = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    return value if value > 0 else log_ns


def _ordered(msg: Any, joint_index: dict[str, int]) -> np.ndarray | None:
    """Positions in config joint order; None when names do not match the config."""
    positions = np.asarray(msg.position, dtype=np.float32)
    names = list(msg.name)
    if not names:
        return positions if len(positions) == len(joint_index) else None
    if len(names) != len(positions) or set(names) != set(joint_index):
        return None
    out = np.empty(len(joint_index), np.float32)
    for name, value in zip(names, positions):
        out[joint_index[name]] = value
    return out


def load_streams(bag: Bag, config: TaskFile, cameras: dict[str, str]) -> BagStreams:
    """Decode everything but images (those only get their header stamps)."""
    topics = config.topics
    joint_index = {n: i for i, n in enumerate(config.robot.joint_names)}
    streams = BagStreams(list(config.robot.joint_names), config.task.text)
    vectors: dict[str, list[tuple[int, np.ndarray, str]]] = {
        topics.command: [], topics.joint_states: [], topics.policy_command: [],
        topics.teleop_command: []}
    event_sources = {topics.episode: 0, topics.sim_detector: 1}
    chunks: list[tuple[int, str]] = []
    image_topics = {topic: name for name, topic in cameras.items()}
    image_t: dict[str, list[int]] = {name: [] for name in cameras}
    wanted = set(vectors) | set(event_sources) | {topics.intervention, topics.policy_chunk}
    for topic, msgtype, log_ns, data in bag.messages(wanted | set(image_topics)):
        try:
            if topic in image_topics:
                stamp = header_stamp_ns(data)
                image_t[image_topics[topic]].append(stamp if stamp > 0 else log_ns)
                continue
            msg = bag.decode(msgtype, data)
            if topic in vectors:
                q = _ordered(msg, joint_index)
                if q is None:
                    streams.bad_messages += 1
                    continue
                vectors[topic].append((_stamp(msg, log_ns), q, str(msg.header.frame_id)))
            elif topic in event_sources:
                streams.events.append((_stamp(msg, log_ns), event_sources[topic], int(msg.kind),
                                       float(msg.reward), str(msg.reason),
                                       int(msg.episode_id)))
            elif topic == topics.intervention:
                streams.interventions.append((_stamp(msg, log_ns), int(msg.kind)))
            elif topic == topics.policy_chunk:
                chunks.append((_stamp(msg, log_ns), str(msg.policy_version)))
        except (BagError, AttributeError, ValueError) as exc:
            streams.bad_messages += 1
            log.warning("%s: skipping a bad message on %s (%s)", bag.path, topic, exc)
    dim = len(joint_index)

    def stacked(items: list[tuple[int, np.ndarray, str]]) -> tuple[np.ndarray, np.ndarray]:
        items.sort(key=lambda item: item[0])
        stamps = np.array([t for t, _, _ in items], dtype=np.int64)
        values = np.stack([q for _, q, _ in items]) if items else np.zeros((0, dim), np.float32)
        return stamps, values

    streams.command_t, streams.command_q = stacked(vectors[topics.command])
    streams.command_frames = [frame for _, _, frame in vectors[topics.command]]
    streams.state_t, streams.state_q = stacked(vectors[topics.joint_states])
    for topic in (topics.policy_command, topics.teleop_command):
        streams.upstream[topic] = stacked(vectors[topic])
    # Prefer the episode manager's stream; the sim detector only when it is the only source.
    primary = [e for e in streams.events if e[1] == 0]
    streams.events = sorted(primary or streams.events, key=lambda e: e[0])
    streams.interventions.sort()
    chunks.sort(key=lambda c: c[0])
    streams.chunk_t = np.array([t for t, _ in chunks], dtype=np.int64)
    streams.chunk_versions = [v for _, v in chunks]
    streams.image_t = {name: np.array(ts, dtype=np.int64) for name, ts in image_t.items()}
    return streams


def episode_spans(events: list[EventRow], bag_start_ns: int, bag_end_ns: int
                  ) -> list[EpisodeSpan]:
    """Cut the event stream (stamp, source, kind, reward, reason, episode id) into episodes."""
    spans: list[EpisodeSpan] = []
    current: EpisodeSpan | None = None
    last_end = bag_start_ns
    next_id = 0
    if not events:  # no lifecycle recorded at all: the whole bag is one truncated episode
        return [EpisodeSpan(0, bag_start_ns, bag_end_ns, begins_mid_episode=True,
                            cut_at_bag_end=True)]
    if events[0][2] == START and events[0][0] > bag_start_ns:
        # the recording began mid-episode: what came before the first START is truncated data
        spans.append(EpisodeSpan(next_id, bag_start_ns, events[0][0], begins_mid_episode=True))
        next_id += 1
    for stamp, _source, kind, reward, reason, recorded_id in events:
        if kind == START:
            if current is not None:
                current.end_ns = stamp
                spans.append(current)
            current = EpisodeSpan(next_id, stamp, bag_end_ns, recorded_id=recorded_id)
            next_id += 1
        elif kind in OUTCOMES or kind == RESET:
            if current is None:
                if kind == RESET:
                    last_end = stamp
                    continue
                # an outcome with no START seen; the bag's first one began before the bag
                current = EpisodeSpan(next_id, last_end, stamp, recorded_id=recorded_id,
                                      begins_mid_episode=not spans
                                      and last_end == bag_start_ns)
                next_id += 1
            current.end_ns = stamp
            if kind in OUTCOMES:
                current.outcome, current.reason, current.reward = OUTCOMES[kind], reason, reward
            spans.append(current)
            current, last_end = None, stamp
    if current is not None:
        current.end_ns = bag_end_ns
        current.cut_at_bag_end = True
        spans.append(current)
    return spans


def _newest_at_or_before(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the newest stamp <= each time (-1 where there is none); stamps sorted."""
    return np.searchsorted(stamps, times, side="right") - 1


def _human_flags(streams: BagStreams, command_idx: np.ndarray, topics: TopicsConfig
                 ) -> np.ndarray:
    """Who commanded each row: the mux's labels, else intervention events, else the
    matching upstream command (see module docstring)."""
    at = streams.command_t[command_idx]
    actions = streams.command_q[command_idx]
    by_events = _human_by_events(streams, at)
    if any(f.startswith("human:") for f in streams.command_frames):
        frames = [streams.command_frames[i] for i in command_idx]
        return np.array([f.startswith("human:") or (f == "hold" and bool(e))
                         for f, e in zip(frames, by_events)], dtype=bool)
    if streams.interventions:
        return by_events
    return _human_by_matching(streams, at, actions, topics)


def _human_by_events(streams: BagStreams, at: np.ndarray) -> np.ndarray:
    """Human control state at each time from TAKEOVER/HANDBACK/ESTOP/RELEASE_ESTOP."""
    human = np.zeros(len(at), dtype=bool)
    state, before_estop, i = False, False, 0
    for row, t in enumerate(at):
        while i < len(streams.interventions) and streams.interventions[i][0] <= t:
            kind = streams.interventions[i][1]
            if kind == TAKEOVER:
                state = True
            elif kind == HANDBACK:
                state = False
            elif kind == ESTOP:
                before_estop, state = state, True
            elif kind == RELEASE_ESTOP:
                state = before_estop
            i += 1
        human[row] = state
    return human


def _human_by_matching(streams: BagStreams, at: np.ndarray, actions: np.ndarray,
                       topics: TopicsConfig) -> np.ndarray:
    """Human where the executed command equals the newest teleop command."""
    teleop_t, teleop_q = streams.upstream.get(topics.teleop_command, (np.zeros(0), None))
    if teleop_q is None or not len(teleop_t):
        return np.zeros(len(at), dtype=bool)
    idx = _newest_at_or_before(teleop_t, at)
    matched = np.array([i >= 0 and bool(np.allclose(teleop_q[i], a, atol=1e-6))
                        for i, a in zip(idx, actions)])
    return matched.astype(bool)


def _control_rate(bag: Bag, config: TaskFile | None, streams: BagStreams,
                  override: float | None) -> float:
    if override:
        return float(override)
    if config is not None:
        return float(config.robot.control_rate_hz)
    recorded = bag.custom_data.get("aloe_ros.control_rate_hz")
    if recorded:
        return float(recorded)
    if len(streams.command_t) > 2:
        return float(1e9 / np.median(np.diff(streams.command_t)))
    raise BagError(f"{bag.path}: cannot tell the control rate (no config, no commands)")


@dataclass
class _Rows:
    """One episode's rows before the images are filled in."""

    span: EpisodeSpan
    times: np.ndarray                       # t_k, ns
    command_idx: np.ndarray                 # index into streams.command_t per row
    state_idx: np.ndarray
    frame_idx: dict[str, np.ndarray]        # camera -> index into log-order frames
    stats: dict[str, int]


def _episode_rows(span: EpisodeSpan, streams: BagStreams, dt_ns: float) -> _Rows | None:
    """The control grid of one episode and the message picked for each row (see module doc)."""
    in_span = np.nonzero((streams.command_t >= span.start_ns)
                         & (streams.command_t <= span.end_ns))[0]
    if not len(in_span):
        return None
    first = int(streams.command_t[in_span[0]])
    count = int((span.end_ns - first) // dt_ns) + 1
    times = first + np.round(np.arange(count) * dt_ns).astype(np.int64)
    command_idx = _newest_at_or_before(streams.command_t, times + int(dt_ns / 2))
    state_idx = _newest_at_or_before(streams.state_t, times)
    frame_idx: dict[str, np.ndarray] = {}
    valid = (command_idx >= 0) & (state_idx >= 0)
    for name, stamps in streams.image_t.items():
        order = np.argsort(stamps, kind="stable")
        pos = _newest_at_or_before(stamps[order], times)
        valid &= pos >= 0
        frame_idx[name] = np.where(pos >= 0, order[np.maximum(pos, 0)], -1)
    keep = np.nonzero(valid)[0]
    if not len(keep):
        return None
    keep = np.arange(keep[0], count)  # only leading rows can lack an observation
    used = command_idx[keep]
    stats = {
        "rows": len(keep),
        "rows_dropped_no_observation": int(count - len(keep)),
        "commands_in_episode": len(in_span),
        "commands_repeated": int(len(used) - len(np.unique(used))),
        "commands_skipped": int(len(set(in_span.tolist()) - set(used.tolist()))),
    }
    for name, idx in frame_idx.items():
        stamps = streams.image_t[name]
        window = (stamps > times[keep[0]] - dt_ns) & (stamps <= times[keep[-1]])
        stats[f"frames_used_{name}"] = len(np.unique(idx[keep]))
        stats[f"frames_in_episode_{name}"] = int(window.sum())
    return _Rows(span, times[keep], used, state_idx[keep],
                 {n: i[keep] for n, i in frame_idx.items()}, stats)


def _to_episode(rows: _Rows, streams: BagStreams, config: TaskFile, rate: float,
                bag: Bag, images: dict[str, np.ndarray]) -> Episode:
    topics = config.topics
    command_stamps = streams.command_t[rows.command_idx]
    actions = streams.command_q[rows.command_idx].astype(np.float32)
    human = _human_flags(streams, rows.command_idx, topics)
    chunk_idx = _newest_at_or_before(streams.chunk_t, command_stamps)
    versions = ["" if h or i < 0 else streams.chunk_versions[i]
                for h, i in zip(human, chunk_idx)]
    rewards = np.zeros(len(rows.times), np.float32)
    span = rows.span
    if span.outcome:
        rewards[-1] = span.reward
    chunks_in_span = bool(((streams.chunk_t >= span.start_ns)
                           & (streams.chunk_t <= span.end_ns)).any())
    source = "demo" if human.all() and not chunks_in_span else "online"
    metadata = {k: str(v) for k, v in rows.stats.items()}
    metadata.update(bag=str(bag.path), outcome=span.outcome or "truncated",
                    interventions=str(sum(
                        1 for t, k in streams.interventions
                        if k == TAKEOVER and span.start_ns <= t <= span.end_ns)))
    if span.recorded_id is not None:
        metadata[RECORDED_ID] = str(span.recorded_id)
    if span.begins_mid_episode:
        metadata[BEGINS_MID_EPISODE] = "1"
    if span.cut_at_bag_end:
        metadata[CUT_AT_BAG_END] = "1"
    return Episode(
        task=config.task.text, joint_names=list(config.robot.joint_names),
        control_rate_hz=rate, timestamps=rows.times.astype(np.float64) * 1e-9,
        images=images, states=streams.state_q[rows.state_idx].astype(np.float32),
        actions=actions, human=human, policy_versions=versions, rewards=rewards,
        episode_id=span.episode_id, source=source,
        success=None if span.outcome in ("", "abort") else span.outcome == "success",
        outcome_reason=span.reason if span.outcome != "abort" else f"abort: {span.reason}",
        metadata=metadata)


def read_episodes(bag: Bag | Path | str, config: TaskFile | None = None, *,
                  images: bool = True, resize: tuple[int, int] | None = None,
                  control_rate_hz: float | None = None) -> list[Episode]:
    """Every episode of a bag on the control grid (see module docstring for the rules).

    ``config`` defaults to the task config recorded in the bag; ``images=False`` skips the
    frames (bag info); ``resize`` = (height, width) scales every frame.
    """
    owned = not isinstance(bag, Bag)
    handle = Bag(bag) if not isinstance(bag, Bag) else bag
    try:
        recorded = handle.task_config()
        task_config = config or recorded
        if task_config is None:
            raise BagError(f"{handle.path}: no task config recorded in the bag; pass one")
        cameras = {c.name: c.topic for c in task_config.cameras if c.topic in handle.topics}
        if images:
            missing = [c.name for c in task_config.cameras if c.topic not in handle.topics]
            if missing:
                log.warning("%s: no frames recorded for camera(s) %s", handle.path, missing)
        streams = load_streams(handle, task_config, cameras if images else {})
        rate = _control_rate(handle, config, streams, control_rate_hz)
        spans = episode_spans(streams.events, handle.start_ns, handle.end_ns)
        all_rows = [r for r in (_episode_rows(s, streams, 1e9 / rate) for s in spans)
                    if r is not None]
        if len(all_rows) < len(spans):
            log.info("%s: %d of %d episodes have no command and are skipped", handle.path,
                     len(spans) - len(all_rows), len(spans))
        frames = (fill_images(handle, cameras, [r.frame_idx for r in all_rows],
                              [len(r.times) for r in all_rows], resize)
                  if images and cameras
                  else [{} for _ in all_rows])
        return [_to_episode(rows, streams, task_config, rate, handle, imgs)
                for rows, imgs in zip(all_rows, frames)]
    finally:
        if owned:
            handle.close()


def bag_transitions(bags: Iterable[Path | str], config: TaskFile | None = None, *,
                    current_version: str | None = None,
                    resize: tuple[int, int] | None = None) -> list[ChunkTransition]:
    """Chunk transitions of every episode of every bag (horizons and gamma from the config,
    by default the one recorded in each bag)."""
    transitions: list[ChunkTransition] = []
    for path in bags:
        with Bag(path) as handle:
            task_config = config or handle.task_config()
            if task_config is None:
                raise BagError(f"{handle.path}: no task config recorded in the bag; pass one")
            for episode in read_episodes(handle, task_config, resize=resize):
                transitions += episode_to_transitions(
                    episode, chunk_length=task_config.policy.chunk_horizon,
                    execute_horizon=task_config.policy.execute_horizon,
                    gamma=task_config.learning.gamma, current_version=current_version,
                    takeover_penalty=task_config.learning.takeover_penalty)
    return transitions


def _joinable(tail: Episode, head: Episode, max_gap_s: float) -> bool:
    """``head`` is the rest of ``tail``, which a recorder restart cut off (see module doc)."""
    if (tail.metadata.get(CUT_AT_BAG_END) != "1" or head.metadata.get(BEGINS_MID_EPISODE) != "1"
            or RECORDED_ID not in tail.metadata
            or tail.metadata[RECORDED_ID] != head.metadata.get(RECORDED_ID)):
        return False
    gap = float(head.timestamps[0] - tail.timestamps[-1])
    same_shape = (set(tail.images) == set(head.images)
                  and all(tail.images[c].shape[1:] == head.images[c].shape[1:]
                          for c in tail.images))
    return (0 < gap <= max_gap_s and same_shape and tail.task == head.task
            and tail.joint_names == head.joint_names
            and tail.control_rate_hz == head.control_rate_hz)


def _joined_metadata(tail: Episode, head: Episode, hole: int) -> dict[str, str]:
    # The id, the part flags and the holes are not counts: set apart from the summing below.
    special = {RECORDED_ID, BEGINS_MID_EPISODE, CUT_AT_BAG_END, HOLE_STARTS}
    metadata: dict[str, str] = {}
    for key in {**tail.metadata, **head.metadata}.keys() - special:
        first, second = tail.metadata.get(key), head.metadata.get(key)
        if first is not None and second is not None and first.isdigit() and second.isdigit():
            metadata[key] = str(int(first) + int(second))   # row, frame and takeover counts
        else:
            metadata[key] = first if first is not None else str(second)
    metadata.update(bag=f"{tail.metadata.get('bag', '')},{head.metadata.get('bag', '')}",
                    outcome=head.metadata.get("outcome", "truncated"))
    metadata[RECORDED_ID] = tail.metadata[RECORDED_ID]
    holes = [*tail.hole_starts.tolist(), hole, *(head.hole_starts + hole).tolist()]
    metadata[HOLE_STARTS] = ",".join(map(str, holes))
    # the joined episode begins where its first part did and ends where its second did
    if BEGINS_MID_EPISODE in tail.metadata:
        metadata[BEGINS_MID_EPISODE] = tail.metadata[BEGINS_MID_EPISODE]
    if CUT_AT_BAG_END in head.metadata:
        metadata[CUT_AT_BAG_END] = head.metadata[CUT_AT_BAG_END]
    return metadata


def _join(tail: Episode, head: Episode) -> Episode:
    hole = len(tail)
    return Episode(
        task=tail.task, joint_names=list(tail.joint_names),
        control_rate_hz=tail.control_rate_hz,
        timestamps=np.concatenate([tail.timestamps, head.timestamps]),
        images={c: np.concatenate([tail.images[c], head.images[c]]) for c in tail.images},
        states=np.concatenate([tail.states, head.states]),
        actions=np.concatenate([tail.actions, head.actions]),
        human=np.concatenate([tail.human, head.human]),
        policy_versions=[*tail.policy_versions, *head.policy_versions],
        rewards=np.concatenate([tail.rewards, head.rewards]),
        episode_id=tail.episode_id,
        source="demo" if tail.source == head.source == "demo" else "online",
        success=head.success, outcome_reason=head.outcome_reason,
        metadata=_joined_metadata(tail, head, hole))


def join_split_episodes(episodes: list[Episode], max_gap_s: float) -> list[Episode]:
    """Put back together each episode that a recorder restart split across two bags.

    Without this the first part is a truncated episode of its own: a Monte-Carlo return sees
    no reward after it, and HG-DAgger's success filter drops its policy chunks even when the
    episode succeeded in the next bag. Parts join when the first was cut at its bag's end, the
    second began its bag without a START, both carry the same EpisodeEvent ``episode_id`` and
    the second starts at most ``max_gap_s`` after the first ends (same task, joints, cameras
    and rate). The joined episode keeps the first part's place in the list and has a hole
    (``metadata['hole_starts']``) where nothing was recorded; chunks never reach across it.
    """
    joined: list[Episode | None] = list(episodes)
    order = sorted(range(len(episodes)), key=lambda i: float(episodes[i].timestamps[0])
                   if len(episodes[i]) else 0.0)
    for i in order:
        tail = joined[i]
        if tail is None or not len(tail) or tail.metadata.get(CUT_AT_BAG_END) != "1":
            continue
        heads = [j for j in order if j != i and (other := joined[j]) is not None
                 and len(other) and _joinable(tail, other, max_gap_s)]
        if not heads:
            continue
        head = joined[heads[0]]   # the earliest: order is by start time
        assert head is not None
        gap = float(head.timestamps[0] - tail.timestamps[-1])
        log.info("joined episode %s split across %s and %s (%.1f s not recorded)",
                 tail.metadata[RECORDED_ID], tail.metadata.get("bag", "?"),
                 head.metadata.get("bag", "?"), gap)
        joined[i], joined[heads[0]] = _join(tail, head), None
    return [e for e in joined if e is not None]
