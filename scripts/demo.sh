#!/usr/bin/env bash
# The main job: the task graph on the built-in simulator, bounded in time, with progress lines.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-90}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
exec .venv/bin/aloe-ros up pack_phone --sim --duration "$seconds" --record runs/demo
