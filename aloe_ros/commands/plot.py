"""``aloe-ros plot episode BAG --episode N --out FILE``: a picture (and video) of one episode."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "plot one recorded episode: frames, joint traces, critic Q/advantage, interventions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    episode = sub.add_parser("episode", help="one episode of a bag", description=HELP)
    episode.add_argument("bag", type=Path, help="rosbag2 directory (or its .mcap file)")
    episode.add_argument("--episode", type=int, required=True, metavar="N",
                         help="episode id (as in `aloe-ros bag info`)")
    episode.add_argument("--out", type=Path, required=True, metavar="FILE",
                         help="image file (.png, .svg, .pdf)")
    episode.add_argument("--mp4", type=Path, default=None, metavar="FILE",
                         help="also write a video of the camera")
    episode.add_argument("--camera", default=None, help="camera to show (default: the first)")
    episode.add_argument("--frames", type=int, default=6, help="frames along the top row")


def run(args: argparse.Namespace) -> int:
    from aloe_ros.io.bag_episodes import read_episodes
    from aloe_ros.io.bag_reader import Bag, BagError
    from aloe_ros.io.episode_plot import CriticPoint, plot_episode, write_episode_video

    try:
        with Bag(args.bag) as bag:
            episodes = read_episodes(bag)
            chosen = next((e for e in episodes if e.episode_id == args.episode), None)
            if chosen is None:
                ids = ", ".join(str(e.episode_id) for e in episodes) or "none"
                print(f"aloe-ros plot: {args.bag}: no episode {args.episode}; episodes: {ids}")
                return 2
            config = bag.task_config()
            topic = config.topics.critic_stats if config else "/aloe/critic/stats"
            start = float(chosen.timestamps[0])
            critic = [
                CriticPoint(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - start,
                            float(msg.q_aggregated), float(msg.q_std), float(msg.value),
                            float(msg.advantage))
                for _, _, msg in bag.decoded([topic]) if int(msg.episode_id) == args.episode]
    except BagError as exc:
        print(f"aloe-ros plot: {exc}")
        return 2
    if args.camera and args.camera not in chosen.images:
        print(f"aloe-ros plot: no camera {args.camera!r}; cameras: {sorted(chosen.images)}")
        return 2
    out = plot_episode(chosen, critic, args.out, frames=args.frames, camera=args.camera)
    print(f"aloe-ros plot: episode {args.episode} ({len(chosen)} steps, {len(critic)} critic "
          f"points) -> {out}")
    if args.mp4:
        video = write_episode_video(chosen, args.mp4, camera=args.camera)
        print(f"aloe-ros plot: video -> {video}")
    return 0
