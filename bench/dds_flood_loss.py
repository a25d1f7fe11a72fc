"""How many messages of a flood reach a slow subscriber, and does DDS say it dropped any?

A publisher sends N JointStates as fast as it can; a subscriber in another process takes
1 ms per message (a busy recorder). Side by side: the task's QoS (publisher keep-last 10, a
reader as deep as the logger's recording.subscription_depth, 100), a deep reader, and a
baseline where both histories hold the whole flood. Prints delivered / sent and the
subscriber's message-lost event count (docs/reliability.md, "Known limits").

    .venv/bin/python bench/dds_flood_loss.py --count 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

SUBSCRIBER = """
import sys, time
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
rclpy.init()
node = rclpy.create_node("flood_sub")
got, lost, last = [0], [0], [time.monotonic()]
def on_message(_msg):
    got[0] += 1
    last[0] = time.monotonic()
    time.sleep(0.001)
def on_lost(info):
    lost[0] += info.total_count_change
node.create_subscription(JointState, "/bench/flood", on_message,
    QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(sys.argv[2]),
               reliability=ReliabilityPolicy.RELIABLE),
    event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost))
# Until 3 s pass without a message once the flood began (or the time limit).
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and not (got[0] and time.monotonic() - last[0] > 3.0):
    rclpy.spin_once(node, timeout_sec=0.05)
print(got[0], lost[0], flush=True)
"""


def flood(count: int, depth: int, reader_depth: int, domain: int) -> tuple[int, int]:
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    listen_s = 30.0 + count * 0.02
    subscriber = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(listen_s),
                                   str(reader_depth)], env=env,
                                  stdout=subprocess.PIPE, text=True)
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("flood_pub", context=context)
    publisher = node.create_publisher(JointState, "/bench/flood", QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    msg = JointState(name=[f"j{i}" for i in range(14)], position=[0.0] * 14)
    for _ in range(count):
        publisher.publish(msg)
    out, _ = subscriber.communicate(timeout=listen_s + 30)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    got, lost = (int(v) for v in out.split())
    return got, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", 99)))
    args = parser.parse_args()
    # (label, publisher depth, subscriber depth): the logger subscribes with
    # recording.subscription_depth (100); publishers use qos.command (10).
    rows = [("pub 10 / logger-like reader 100", 10, 100),
            ("pub 10 / reader >= flood", 10, args.count),
            ("baseline: pub and reader >= flood", args.count, args.count)]
    results = {}
    for label, depth, reader_depth in rows:
        results[label] = flood(args.count, depth, reader_depth, args.domain)
    base = results[rows[-1][0]][0]
    for label, (got, lost) in results.items():
        print(f"{label:36s} delivered {got:5d}/{args.count}  message-lost events {lost:4d}  "
              f"ratio to baseline {got / base if base else float('nan'):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
