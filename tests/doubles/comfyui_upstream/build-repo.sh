#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build the git repository of the ComfyUI TEST DOUBLE (not ComfyUI!) from repo/ next to this script:
#
#   build-repo.sh <outdir>
#
# Writes into <outdir>:
#   comfyui.git/           bare repository (branch master, tag v0.3.64 on its first commit, one newer commit
#                          on master), ready for git's dumb HTTP protocol (upstream_server.py of searxng_upstream)
#   comfyui.git.tar.gz     the same, packed for copying onto a test host (owner 0:0, sorted, no times)
#   commit                 the commit of the tag
#   comfyui.bundle         `git bundle` of master and the tag, for the offline source path
#   comfyui.bundle.sha256  its sha256
# With the same inputs (and SOURCE_DATE_EPOCH) the output is identical byte for byte; stderr then says
# "build-repo: unchanged" (and "build-repo: built" otherwise), stdout prints the commit.
set -euo pipefail

[[ $# -eq 1 ]] || {
	echo "usage: $0 <outdir>" >&2
	exit 2
}
outdir=$1
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/comfyui-double-repo.XXXXXX")
trap 'rm -rf "$stage"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
epoch=${SOURCE_DATE_EPOCH:-1767225600}
export GIT_AUTHOR_NAME="ComfyUI test double" GIT_AUTHOR_EMAIL="double@comfyui-double.test"
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_DATE="@$epoch +0000" GIT_COMMITTER_DATE="@$epoch +0000"

work=$stage/work
mkdir -p "$work"
cp -R "$here/repo/." "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
# What a local run of main.py leaves behind (upstream keeps these out of git too).
rm -rf "$work/user" "$work/input" "$work/output" "$work/temp"
git -C "$work" init -q -b master
git -C "$work" add -A
git -C "$work" commit -q -m "ComfyUI test double"
git -C "$work" tag v0.3.64
pinned=$(git -C "$work" rev-parse HEAD)
# A newer commit on master: the role must check out the tag, not the branch tip.
export GIT_AUTHOR_DATE="@$((epoch + 86400)) +0000" GIT_COMMITTER_DATE="@$((epoch + 86400)) +0000"
echo "A newer commit than the tag; the role must not check it out." >"$work/NEWER"
git -C "$work" add NEWER
git -C "$work" commit -q -m "A newer commit of the test double"
git clone -q --bare "$work" "$stage/comfyui.git"

bare=$stage/comfyui.git
git -C "$bare" remote remove origin
git -C "$bare" repack -q -a -d
git -C "$bare" update-server-info
git -C "$bare" bundle create -q "$stage/comfyui.bundle" master v0.3.64
echo "$pinned" >"$stage/commit"
tar -C "$stage" --create --file - --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$epoch" comfyui.git |
	gzip -n >"$stage/comfyui.git.tar.gz"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
if [[ -f $outdir/commit ]] && cmp -s "$stage/commit" "$outdir/commit" &&
	cmp -s "$stage/comfyui.git.tar.gz" "$outdir/comfyui.git.tar.gz"; then
	echo "build-repo: unchanged $outdir" >&2
else
	rm -rf "$outdir/comfyui.git"
	mv "$bare" "$stage/comfyui.git.tar.gz" "$stage/commit" "$stage/comfyui.bundle" "$outdir/"
	(cd "$outdir" && sha256sum comfyui.bundle | cut -d' ' -f1 >comfyui.bundle.sha256)
	echo "build-repo: built $outdir" >&2
fi
cat "$outdir/commit"
