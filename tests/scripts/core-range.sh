#!/usr/bin/env bash
# The ansible-core range that meta/runtime.yml claims, tested: for each older release, unit tests
# and `ansible-test sanity` run with that ansible-core (the newest release in the range, 2.19, is the
# main toolchain's and runs in `make unit` / `make sanity`).
#
#   tests/scripts/core-range.sh            # 2.16 2.17 2.18
#   tests/scripts/core-range.sh 2.16       # one release
#
# Each release gets a cached venv in .cache/core-<release>: that ansible-core, the `ansible` package
# of the same release train (it bundles the collections galaxy.yml depends on, at the versions a user
# pinning that ansible-core has: ansible 9 ships community.general 8, the oldest galaxy.yml allows),
# and pytest, PyYAML and requests for the unit tests. Nothing else from requirements.txt: the linters and
# molecule are not what this tier tests.
#
# On the oldest release the range claims (2.16), one scenario also converges for real: molecule from
# the main toolchain runs the playbooks with that venv's ansible-playbook (first on PATH), so the
# roles, templates and plugins run on ansible-core 2.16 in a systemd container (CORE_SCENARIO, nginx
# by default; it needs Docker and the test image, as `make molecule` does).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

# ansible-core release -> the ansible package built on it.
declare -A ansible_package=([2.16]=9 [2.17]=10 [2.18]=11)
releases=("$@")
[ "${#releases[@]}" -gt 0 ] || releases=(2.16 2.17 2.18)

# The oldest release the collection claims: the one a converge runs on.
oldest=2.16

collections="$repo/.cache/collections"
mkdir -p "$collections/ansible_collections/selfhosted"
ln -sfn "$repo" "$collections/ansible_collections/selfhosted/ai_stack"

failed=()
for release in "${releases[@]}"; do
  package=${ansible_package[$release]:-}
  if [ -z "$package" ]; then
    echo "core-range: no ansible package known for ansible-core $release (known: ${!ansible_package[*]})" >&2
    exit 2
  fi
  venv="$repo/.cache/core-$release"
  # requests: the ComfyUI double imports it as upstream does (unit tests), and community.docker's
  # modules need it on the controller (the converge's container create and destroy).
  wanted="ansible-core==$release.* ansible==$package.* pytest PyYAML requests"
  # Rebuild when the requirement line changes, not only when the venv is missing.
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]; then
    echo "core-range: building $venv ($wanted)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086  # $wanted is a list of requirement specifiers
    "$venv/bin/python" -m pip install --quiet $wanted
    echo "$wanted" >"$venv/.installed"
  fi
  version=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  case $version in
    "$release".*) ;;
    *) echo "core-range: $venv holds ansible-core $version, not $release" >&2; exit 1 ;;
  esac
  echo "core-range: ansible-core $version: unit tests" >&2
  if ! PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" \
      python -m pytest -q -p no:cacheprovider tests/unit; then
    failed+=("$version unit")
  fi
  echo "core-range: ansible-core $version: ansible-test sanity" >&2
  # sanity.sh reads the pip version that this ansible-test pins and installs the offline get-pip
  # stand-in under the name it looks for (get_pip_23_1_2.py for 2.16, get_pip_24_2.py for 2.19).
  if ! PATH="$venv/bin:$PATH" tests/scripts/sanity.sh; then
    failed+=("$version sanity")
  fi
  if [ "$release" = "$oldest" ]; then
    echo "core-range: ansible-core $version: molecule scenario ${CORE_SCENARIO:-nginx}" >&2
    # The playbooks must run on this release, not on the main toolchain's.
    runs=$(PATH="$venv/bin:$repo/.venv/bin:$PATH" ansible-playbook --version | head -n 1)
    case $runs in
      *"[core $release."*) ;;
      *) echo "core-range: ansible-playbook on PATH is '$runs', not ansible-core $release" >&2; exit 1 ;;
    esac
    if ! PATH="$venv/bin:$repo/.venv/bin:$PATH" tests/scripts/run-scenarios.sh "${CORE_SCENARIO:-nginx}"; then
      failed+=("$version molecule ${CORE_SCENARIO:-nginx}")
    fi
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'core-range: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "core-range: passed on ansible-core ${releases[*]}" >&2
