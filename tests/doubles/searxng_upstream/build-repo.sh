#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build the git repository of the SearXNG TEST DOUBLE (not SearXNG!), as the scenario serves it:
#
#   build-repo.sh <outdir>                          # the double, from repo/ next to this script
#   build-repo.sh <outdir> <git repository> <commit>  # a real SearXNG repository (the manual trial)
#
# Writes into <outdir>:
#   searxng.git/           bare repository, branch master, ready for git's dumb HTTP protocol
#   searxng.git.tar.gz     the same, packed for copying onto a test host (owner 0:0, sorted, no times)
#   commit                 the commit a scenario pins; for the double the first of two commits, so a
#                          role that checks out the branch tip instead of the pin is caught
#   tip                    the newest commit of master
#   searxng.bundle         `git bundle` of master, for the offline source path
#   searxng.bundle.sha256  its sha256
# With the same inputs (and SOURCE_DATE_EPOCH) the commits and files are identical byte for byte;
# stderr then says "build-repo: unchanged" (and "build-repo: built" otherwise), stdout prints the commit.
set -euo pipefail

usage() {
	echo "usage: $0 <outdir> [<git repository> <40-hex commit>]" >&2
	exit 2
}

[[ $# -eq 1 || $# -eq 3 ]] || usage
outdir=$1
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/searxng-double-repo.XXXXXX")
trap 'rm -rf "$stage"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
epoch=${SOURCE_DATE_EPOCH:-1767225600}

if [[ $# -eq 1 ]]; then
	export GIT_AUTHOR_NAME="SearXNG test double" GIT_AUTHOR_EMAIL="double@searxng-double.test"
	export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
	export GIT_AUTHOR_DATE="@$epoch +0000" GIT_COMMITTER_DATE="@$epoch +0000"
	work=$stage/work
	mkdir -p "$work"
	cp -R "$here/repo/." "$work/"
	find "$work" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	git -C "$work" init -q -b master
	git -C "$work" add -A
	git -C "$work" commit -q -m "SearXNG test double"
	pinned=$(git -C "$work" rev-parse HEAD)
	# A second, newer commit: scenarios pin the first one.
	export GIT_AUTHOR_DATE="@$((epoch + 86400)) +0000" GIT_COMMITTER_DATE="@$((epoch + 86400)) +0000"
	echo "A newer commit than the pinned one; the role must not check it out." >"$work/NEWER"
	git -C "$work" add NEWER
	git -C "$work" commit -q -m "A newer commit of the test double"
	git clone -q --bare "$work" "$stage/searxng.git"
else
	source_repo=$2
	pinned=$3
	[[ $pinned =~ ^[0-9a-f]{40}$ ]] || usage
	git clone -q --bare --single-branch --branch master "$source_repo" "$stage/searxng.git"
	git -C "$stage/searxng.git" cat-file -e "$pinned^{commit}" || {
		echo "build-repo: $pinned is not on master of $source_repo" >&2
		exit 1
	}
fi

bare=$stage/searxng.git
git -C "$bare" remote remove origin 2>/dev/null || true
# One pack, and the info files git's dumb HTTP protocol reads.
git -C "$bare" repack -q -a -d
git -C "$bare" update-server-info
git -C "$bare" bundle create -q "$stage/searxng.bundle" master
echo "$pinned" >"$stage/commit"
git -C "$bare" rev-parse refs/heads/master >"$stage/tip"
tar -C "$stage" --create --file - --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$epoch" searxng.git |
	gzip -n >"$stage/searxng.git.tar.gz"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
if [[ -f $outdir/commit ]] && cmp -s "$stage/commit" "$outdir/commit" && cmp -s "$stage/tip" "$outdir/tip" &&
	cmp -s "$stage/searxng.git.tar.gz" "$outdir/searxng.git.tar.gz"; then
	echo "build-repo: unchanged $outdir" >&2
else
	rm -rf "$outdir/searxng.git"
	mv "$bare" "$stage/searxng.git.tar.gz" "$stage/commit" "$stage/tip" "$stage/searxng.bundle" "$outdir/"
	(cd "$outdir" && sha256sum searxng.bundle | cut -d' ' -f1 >searxng.bundle.sha256)
	echo "build-repo: built $outdir" >&2
fi
cat "$outdir/commit"
