#!/usr/bin/env bash
# Check the execution environment definition (execution-environment/) the way AWX users build it:
# ansible-builder create must produce a complete build context from the collection tarball, and
# ansible-builder introspect must find the collection's controller-side dependencies
# (meta/execution-environment.yml). Building the image itself needs a registry, which CI lacks.
# Usage: ee-check.sh [CONTEXT_DIR] (default build/ee)
set -euo pipefail
cd "$(dirname "$0")/../.."
context=${1:-build/ee}
venv=.cache/ee-venv
builder_version=3.2.0
if [ ! -x "$venv/bin/ansible-builder" ] || ! "$venv/bin/ansible-builder" --version | grep -qx "$builder_version"; then
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install -q "ansible-builder==$builder_version" >"$venv/install.log" 2>&1; then
    cat "$venv/install.log" >&2
    exit 1
  fi
fi
version=$(sed -n 's/^version: *//p' galaxy.yml)
mkdir -p build
ansible-galaxy collection build --force --output-path build/dist . >/dev/null
cp "build/dist/selfhosted-ai_stack-$version.tar.gz" build/selfhosted-ai_stack.tar.gz
rm -rf "$context"
"$venv/bin/ansible-builder" create -f execution-environment/execution-environment.yml -c "$context" --output-filename Containerfile >/dev/null
fail() { echo "ee-check: $*" >&2; exit 1; }
[ -f "$context/Containerfile" ] || fail "no Containerfile in $context"
for file in requirements.yml collections/selfhosted-ai_stack.tar.gz; do
  [ -f "$context/_build/$file" ] || fail "the build context lacks _build/$file"
done
grep -q 'ansible-galaxy' "$context/Containerfile" || fail "the Containerfile installs no collections"
grep -q 'ansible-core>=2.16,<2.20' "$context/Containerfile" || fail "the Containerfile does not pin ansible-core's range"
# What the image build would find in the installed collection.
work=$(mktemp -d "${TMPDIR:-/tmp}/ai_stack-ee.XXXXXX")
trap 'rm -rf "$work"' EXIT
ANSIBLE_COLLECTIONS_PATH="$work" ansible-galaxy collection install --no-deps --force -p "$work" build/selfhosted-ai_stack.tar.gz >/dev/null
"$venv/bin/ansible-builder" introspect --sanitize "$work" >"$work/introspect.txt"
for need in passlib zstd; do
  grep -q "$need" "$work/introspect.txt" || fail "introspect did not find $need:$(printf '\n')$(cat "$work/introspect.txt")"
done
echo "ee-check: ansible-builder $builder_version created $context; introspect finds passlib and zstd"
