#!/usr/bin/env bash
# Build the collection's HTML documentation site with antsibull-docs and Sphinx, from the
# plugins' own DOCUMENTATION and the roles' meta/argument_specs.yml (what ansible-doc shows):
#
#   tests/scripts/docs.sh [DEST]     # default: build/docs; open DEST/index.html
#
# Fails when antsibull-docs rejects a plugin's or role's documentation, or when Sphinx warns about
# our content. Warnings that only mean "this machine cannot reach docs.ansible.com / docs.python.org"
# (intersphinx inventories, and so links to ansible.builtin modules and the Ansible docs) are left
# out: CI is offline, and those links work on the published site. The tools live in a cached venv,
# .cache/docs-venv, rebuilt when the pins below change.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$repo/build/docs}
venv="$repo/.cache/docs-venv"
wanted="antsibull-docs==2.28.0 ansible-core==2.19.14 sphinx==9.0.4 sphinx-ansible-theme==0.10.4 ansible-pygments==0.1.2"

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]; then
  echo "docs: building $venv ($wanted)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086  # $wanted is a list of requirement specifiers
  "$venv/bin/python" -m pip install --quiet $wanted
  echo "$wanted" >"$venv/.installed"
fi
export PATH="$venv/bin:$PATH"

collections="$repo/.cache/collections"
mkdir -p "$collections/ansible_collections/selfhosted"
ln -sfn "$repo" "$collections/ansible_collections/selfhosted/ai_stack"
export ANSIBLE_COLLECTIONS_PATH="$collections"

work=$(mktemp -d "${TMPDIR:-/tmp}/ai_stack-docs.XXXXXX")  # mktemp: 0700, as antsibull-docs wants
trap 'rm -rf "$work"' EXIT
site="$work/site"
mkdir -m 0700 "$site"
antsibull-docs sphinx-init --use-current --dest-dir "$site" --project selfhosted.ai_stack \
  --copyright "selfhosted.ai_stack contributors" --title "selfhosted.ai_stack" selfhosted.ai_stack >/dev/null
# Offline: no intersphinx inventories to fetch (each try would only wait for a network that is not there).
echo "intersphinx_mapping = {}" >>"$site/conf.py"

chmod 0700 "$site/rst"  # sphinx-init wrote rst/index.rst; antsibull-docs wants the directory private
if ! antsibull-docs --config-file "$site/antsibull-docs.cfg" collection --cleanup everything --use-current \
    --dest-dir "$site/rst" selfhosted.ai_stack >"$work/antsibull.log" 2>&1 || grep -q 'ERROR' "$work/antsibull.log"; then
  echo "docs: antsibull-docs could not document the collection:" >&2
  cat "$work/antsibull.log" >&2
  exit 1
fi

if ! sphinx-build -q -b html -c "$site" --keep-going -w "$work/warnings.log" "$site/rst" "$work/html" \
    2>"$work/sphinx.log"; then
  cat "$work/sphinx.log" >&2
  exit 1
fi
# Links that can only resolve against docs.ansible.com's inventory (intersphinx, offline here).
external="undefined label: '(ansible_collections\.(ansible|community)\.|common_return_values'|ansible_configuration_settings')"
grep -vE "$external" "$work/warnings.log" >"$work/ours.log" || true
if [ -s "$work/ours.log" ]; then
  echo "docs: Sphinx warned about the collection's documentation:" >&2
  cat "$work/ours.log" >&2
  exit 1
fi
[ -f "$work/html/index.html" ] || { echo "docs: Sphinx wrote no index.html" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -r "$work/html" "$dest"
pages=$(find "$dest/collections/selfhosted/ai_stack" -name '*.html' | wc -l)
echo "docs: $pages pages for selfhosted.ai_stack in $dest (open $dest/index.html)" >&2
