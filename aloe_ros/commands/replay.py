"""``aloe-ros replay BAG``: republish a recorded bag with its original timing."""

from __future__ import annotations

import argparse
import signal
import sys

# After the last message: how long subscribers get to acknowledge the rest before we exit.
DELIVERY_WAIT_S = 10.0

HELP = "republish a bag with the original timing (raw bytes; --clock for use_sim_time nodes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", metavar="BAG", help="bag directory or .mcap file")
    parser.add_argument("--rate", type=float, default=1.0, metavar="R",
                        help="playback speed factor (default 1.0)")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", default=None,
                        help="replay only these topics (default: all)")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--clock", action="store_true",
                        help="publish /clock (rosgraph_msgs/Clock) with the bag's time")
    parser.add_argument("--clock-hz", type=float, default=100.0, metavar="HZ",
                        help="rate of /clock messages (default 100)")
    parser.add_argument("--wait-subscribers", type=float, default=2.0, metavar="S",
                        help="wait up to S seconds for subscribers before starting")


def run(args: argparse.Namespace) -> int:
    import rclpy

    from aloe_ros.io.bag_reader import BagError
    from aloe_ros.nodes.bag_player import BagPlayer

    rclpy.init()
    try:
        try:
            player = BagPlayer(args.bag, topics=args.topics, rate=args.rate, clock=args.clock,
                               clock_hz=args.clock_hz)
        except (BagError, ValueError) as exc:
            print(f"aloe-ros replay: {exc}", file=sys.stderr)
            return 2
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: player.stop())
        print(f"aloe-ros replay: {args.bag}: {len(player.publishers_by_topic)} topics, "
              f"{player.bag.duration_s:.1f} s at rate {args.rate:g}"
              + (", publishing /clock" if args.clock else ""), flush=True)
        player.wait_for_subscribers(args.wait_subscribers)
        try:
            report = player.play(loop=args.loop, progress=lambda t, total: print(
                f"  {t:6.1f} / {total:.1f} s", flush=True))
        except BagError as exc:
            print(f"aloe-ros replay: {exc}", file=sys.stderr)
            return 1
        total = sum(report.published.values())
        print(f"aloe-ros replay: published {total} messages"
              f"{f' in {report.loops} loops' if report.loops > 1 else ''}", flush=True)
        if not player.wait_for_delivery(DELIVERY_WAIT_S):
            print(f"aloe-ros replay: warning: subscribers had not acknowledged every message "
                  f"{DELIVERY_WAIT_S:g} s after the last one; the rest is dropped",
                  file=sys.stderr, flush=True)
        player.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()
