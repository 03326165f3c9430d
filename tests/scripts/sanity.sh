#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection placed where ansible-test wants it
# (.../ansible_collections/selfhosted/ai_stack), with the controller's Python.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

pip_version=$(python - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([\d.]+)'", src.read_text()).group(1).replace(".", "_"))
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$repo/tests/scripts/get_pip_offline.py" "$cache/get_pip_${pip_version}.py"

# A private copy per run, so parallel runs (or a dirty tree) never collide.
work=$(mktemp -d "${TMPDIR:-/tmp}/ai_stack-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/selfhosted/ai_stack"
mkdir -p "$dest"
# Only what git tracks (or would track): the same files a fresh clone has.
(cd "$repo" && git ls-files -co --exclude-standard -z) | (cd "$repo" && xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q . && git add -A  # ansible-test uses git to list the collection's files
py=$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
ansible-test sanity --venv --python "$py" --color no "$@"
