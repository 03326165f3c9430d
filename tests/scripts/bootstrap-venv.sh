#!/usr/bin/env bash
# Build the pinned toolchain: bootstrap-venv.sh VENV_DIR REQUIREMENTS_FILE
# Also installs the few Debian/Ubuntu packages the test tiers call: python3-venv, the
# shell linter (ansible-test sanity silently skips shell scripts without it) and zstd
# (the Ollama test double ships .tar.zst archives like upstream), and Debian's chromium with its
# driver for the browser tests (selenium drives the system browser: nothing else can be downloaded).
set -euo pipefail
venv=$1
requirements=$2

missing=()
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v zstd >/dev/null || missing+=(zstd)
command -v chromedriver >/dev/null || missing+=(chromium chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "bootstrap: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$requirements"
