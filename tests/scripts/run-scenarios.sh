#!/usr/bin/env bash
# Run molecule scenarios one after another and print how long each took.
# Usage: run-scenarios.sh SCENARIO[@PLATFORM]|make:TARGET...
# A bare SCENARIO runs on MOLECULE_IMAGE (the public Ubuntu 24.04 image when unset);
# SCENARIO@debian13 (or @debian12) runs it on the local image localhost/ai-stack-test:<platform>
# that tests/scripts/build-test-image.sh builds. KEEP_GOING=1 runs the rest after a failure.
# Each scenario passes only when molecule passes, its dry run on the fresh host (the `check`
# action) succeeded and predicted changes (tests/scripts/fresh_host_check.py), and the shared
# check-mode test on the converged host ran and passed. A make:TARGET item runs `make TARGET` (the
# static tiers: `make test` puts them in a lane beside the scenarios, where a core waits on docker)
# and counts in the summary like a scenario.
set -euo pipefail
cd "$(dirname "$0")/../.."
logs=.cache/molecule-logs
# Wide lines keep molecule from wrapping the verifier output that is checked below.
export COLUMNS=${COLUMNS:-200}
mkdir -p "$logs"

platform_of() {  # the label of an image: its tag for the local test images
  case "$1" in
    "") echo ubuntu2404 ;;
    localhost/ai-stack-test:*) echo "${1#localhost/ai-stack-test:}" ;;
    *) basename "$1" | tr -c 'A-Za-z0-9.\n-' _ ;;
  esac
}

default_image=${MOLECULE_IMAGE:-}

run_make() {  # make:TARGET; sets result and label
  label=$1
  result=PASS
  echo "run-scenarios: make ${1#make:}" >&2
  make --no-print-directory "${1#make:}" 2>&1 | tee "$logs/${1#make:}.log" || result=FAIL
}

run_scenario() {  # SCENARIO[@PLATFORM]; sets result and label
  local scenario=${1%@*} platform image log
  if [ "$scenario" != "$1" ]; then
    platform=${1#*@}
    image=localhost/ai-stack-test:$platform
  else
    image=$default_image
    platform=$(platform_of "$image")
  fi
  if [ -n "$image" ]; then export MOLECULE_IMAGE=$image; else unset MOLECULE_IMAGE; fi
  label=$scenario@$platform
  log="$logs/$scenario-$platform.log"
  result=PASS
  echo "run-scenarios: $scenario on $platform (${image:-the default image})" >&2
  if ! molecule test --scenario-name "$scenario" 2>&1 | tee "$log"; then
    result=FAIL
  fi
  # A failed dry run already failed molecule; this also catches one that predicted nothing.
  if ! python3 tests/scripts/fresh_host_check.py "$log"; then
    result=FAIL
  fi
  if [ "$result" = PASS ] && ! sed 's/\x1b\[[0-9;]*m//g' "$log" | tr -d '\n' | grep -qa 'test_check_mode_reports_no_changes[ │]*PASSED'; then
    # Molecule silently drops verifier files it cannot find; never let that pass.
    echo "run-scenarios: $scenario did not run the shared check-mode test" >&2
    result=FAIL
  fi
  if [ "$result" = FAIL ]; then
    molecule destroy --scenario-name "$scenario" >/dev/null 2>&1 || echo "run-scenarios: could not destroy $scenario" >&2
  fi
}

summary=()
status=0
for item in "$@"; do
  start=$SECONDS
  if [ "${item#make:}" != "$item" ]; then run_make "$item"; else run_scenario "$item"; fi
  summary+=("$result  $label  $((SECONDS - start))s")
  if [ "$result" = FAIL ]; then
    status=1
    [ "${KEEP_GOING:-0}" = 1 ] || break
  fi
done
printf '%s\n' "molecule summary:" "${summary[@]}"
exit "$status"
