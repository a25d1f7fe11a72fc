#!/usr/bin/env bash
# The main job: the whole ALOE loop on the built-in simulator, bounded in time, with progress.
#
#   1. a weak base policy, once: scripted-expert demos + a short behaviour-cloning run
#      (cached in runs/demo/bc; delete it to make a new one)
#   2. the node graph with that policy for $1 seconds (default 90): sim robot + cameras,
#      chunk inference, the simulated operator taking over through teleop/mux when the policy
#      is about to fail, the critic learner, and the recorder writing a rosbag
#   3. a summary of the recording: episodes, outcomes, interventions
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-90}"
out=runs/demo
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
aloe=.venv/bin/aloe-ros

if [ ! -f "$out/bc/policy.json" ]; then
  echo "== 1/3 base policy: 20 scripted demos, 400 BC steps (first run only, a few minutes)"
  "$aloe" sim-demos --task pack_phone --episodes 20 --out "$out/demos"
  "$aloe" train-bc "$out/demos" --out "$out/bc" --task pack_phone --steps 400 --threads 1
else
  echo "== 1/3 base policy: reusing $out/bc"
fi

echo "== 2/3 the loop on the sim for ${seconds} s (Ctrl-C stops it cleanly)"
mkdir -p "$out/bags"
before=$(ls "$out/bags" | wc -l)
status=0
"$aloe" up pack_phone --sim --duration "$seconds" --record "$out/bags" --policy "$out/bc" || status=$?

echo "== 3/3 what was recorded"
bag=$(ls -d "$out"/bags/*/ 2>/dev/null | sort | tail -n 1)
if [ -n "$bag" ] && [ "$(ls "$out/bags" | wc -l)" -gt "$before" ]; then
  "$aloe" bag info "$bag"
  echo "plot an episode:  $aloe plot episode $bag --episode 1 --out $out/episode1.png"
else
  echo "no new bag under $out/bags"
fi
exit "$status"
