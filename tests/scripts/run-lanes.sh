#!/usr/bin/env bash
# Run molecule scenarios in parallel lanes: run-lanes.sh "LANE" "LANE"...
# Each LANE is a space-separated list of SCENARIO[@PLATFORM] that tests/scripts/run-scenarios.sh runs
# in order (so a lane can put a scenario after the one that fills the cache it reads); the lanes run
# side by side. One scenario drives one host at a time and leaves most of a second core idle (the
# controller waits on docker exec, apt and services starting), so two lanes on two cores finish the
# suite well before one lane would. Lines are prefixed with the lane's number; the full log of
# each scenario is in .cache/molecule-logs as usual. KEEP_GOING=1 as in run-scenarios.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
logs=.cache/molecule-logs
mkdir -p "$logs"
rm -f "$logs"/lane-*.log

pids=()
lane=0
for scenarios in "$@"; do
  lane=$((lane + 1))
  [ -n "${scenarios// /}" ] || continue
  # shellcheck disable=SC2086 # a lane is a list of words on purpose
  (tests/scripts/run-scenarios.sh $scenarios 2>&1 | sed -u "s/^/[lane $lane] /" ; exit "${PIPESTATUS[0]}") \
    >"$logs/lane-$lane.log" &
  pids+=("$!")
done

# Show progress (the lines each lane writes) until every lane has ended.
tail -q -n +1 -F "${logs}"/lane-*.log 2>/dev/null &
tailer=$!
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
sleep 1
kill "$tailer" 2>/dev/null || true
echo "molecule lanes summary:"
grep -h -A100 "molecule summary:" "${logs}"/lane-*.log | grep -v "molecule summary:" || true
exit "$status"
