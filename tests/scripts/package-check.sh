#!/usr/bin/env bash
# Build the collection tarball, install it into a scratch path and check that the
# installed copy documents every role, module, filter and test (what users of Galaxy get).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d "${TMPDIR:-/tmp}/ai_stack-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work/dist" . >/dev/null
tarball=$(ls "$work"/dist/selfhosted-ai_stack-*.tar.gz)
echo "package-check: built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
if tar -tzf "$tarball" | grep -E '^(tests|molecule|\.ci|\.config)/' >/dev/null; then
  echo "package-check: test files leaked into the tarball (see build_ignore in galaxy.yml)" >&2
  exit 1
fi
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
ansible-galaxy collection install --force -p "$work/collections" "$tarball" >/dev/null

check_doc() {  # type name
  if ! ansible-doc -t "$1" "$2" >"$work/doc.txt" 2>&1 || ! grep -q 'OPTIONS\|ENTRY POINT' "$work/doc.txt"; then
    echo "package-check: ansible-doc -t $1 $2 did not render:" >&2
    cat "$work/doc.txt" >&2
    exit 1
  fi
  echo "package-check: ansible-doc -t $1 $2 ok"
}
for role in roles/*/; do
  role=$(basename "$role")
  [ -f "roles/$role/meta/argument_specs.yml" ] && check_doc role "selfhosted.ai_stack.$role"
done
for module in plugins/modules/*.py; do
  check_doc module "selfhosted.ai_stack.$(basename "$module" .py)"
done
for doc in plugins/filter/*.yml; do
  check_doc filter "selfhosted.ai_stack.$(basename "$doc" .yml)"
done
for doc in plugins/test/*.yml; do
  check_doc test "selfhosted.ai_stack.$(basename "$doc" .yml)"
done
ansible-playbook --syntax-check -i localhost, selfhosted.ai_stack.site >/dev/null
echo "package-check: ansible-playbook selfhosted.ai_stack.site resolves from the installed copy"
# The execution environment AWX users build from the same tarball.
tests/scripts/ee-check.sh
