#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build a release-shaped archive of the fake Ollama TEST DOUBLE (not Ollama!):
#
#   build-archive.sh [--chat] <version> <outdir>
#
# Writes <outdir>/ollama-linux-amd64.tar.zst (version >= 0.14.0, like upstream since v0.14.0-rc0)
# or <outdir>/ollama-linux-amd64.tgz (older), plus <outdir>/sha256sum.txt in upstream's format
# ("<sha256>  ./<file>"). Layout as upstream: bin/ollama, lib/ollama/*.so, lib/ollama/cuda_v12/,
# lib/ollama/cuda_v13/, owner 0:0, relative paths without "./". bin/ollama is fake_ollama.py with a
# python3 shebang. The version is baked into lib/ollama/VERSION, which the fake reads at start-up,
# and into every dummy library, so an upgrade is observable; lib/ollama/fake-ollama-<version>.marker
# exists in one version only, so an upgrade that forgets "rm -rf lib/ollama" leaves two markers.
# --chat packs the double that also answers chats, generates and embeds (../ollama_chat): bin/ollama
# is then ollama_chat.py, with fake_ollama.py beside it as bin/fake_ollama.py (the stack scenario and
# `make demo`, where Open WebUI talks to it).
set -euo pipefail

usage() {
	echo "usage: $0 [--chat] <version, e.g. 0.14.2> <outdir>" >&2
	exit 2
}

chat=false
if [[ ${1:-} == --chat ]]; then
	chat=true
	shift
fi
[[ $# -eq 2 ]] || usage
version=${1#v}
outdir=$2
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)(-rc[0-9]+)?$ ]] || usage
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/fake-ollama-archive.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/bin" "$stage/lib/ollama/cuda_v12" "$stage/lib/ollama/cuda_v13"
members=(bin/ollama)
if $chat; then
	{
		echo '#!/usr/bin/env python3'
		cat "$here/../ollama_chat/ollama_chat.py"
	} >"$stage/bin/ollama"
	cp "$here/fake_ollama.py" "$stage/bin/fake_ollama.py"
	chmod 0644 "$stage/bin/fake_ollama.py"
	members+=(bin/fake_ollama.py)
else
	{
		echo '#!/usr/bin/env python3'
		cat "$here/fake_ollama.py"
	} >"$stage/bin/ollama"
fi
chmod 0755 "$stage/bin/ollama"

echo "$version" >"$stage/lib/ollama/VERSION"
dummy() {
	printf 'dummy %s from fake_ollama %s (test double, not a real library)\n' "$1" "$version" >"$stage/lib/ollama/$1"
	chmod 0644 "$stage/lib/ollama/$1"
}
dummy libggml-base.so
dummy cuda_v12/libggml-cuda.so
dummy cuda_v13/libggml-cuda.so
dummy "fake-ollama-$version.marker"
chmod 0644 "$stage/lib/ollama/VERSION"

if ((major > 0 || minor >= 14)); then
	name=ollama-linux-amd64.tar.zst
	compress=(--zstd)
else
	name=ollama-linux-amd64.tgz
	compress=(--use-compress-program "gzip -n")
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# Members as upstream's release job lists them: bin/ollama, lib/ollama files, the cuda_v* dirs.
(
	cd "$stage"
	tar --create --file "$stage/$name" "${compress[@]}" \
		--owner=0 --group=0 --numeric-owner --sort=name \
		--mtime="@${SOURCE_DATE_EPOCH:-$(date +%s)}" \
		"${members[@]}" lib/ollama/VERSION lib/ollama/*.so lib/ollama/*.marker lib/ollama/cuda_v12 lib/ollama/cuda_v13
)
# Keep an identical archive (same bytes with SOURCE_DATE_EPOCH) so callers can report "changed"
# honestly; stderr says which it was, stdout always names the archive.
if cmp -s "$stage/$name" "$outdir/$name" && [[ -f $outdir/sha256sum.txt ]]; then
	echo "build-archive: unchanged $outdir/$name" >&2
else
	mv "$stage/$name" "$outdir/$name"
	(cd "$outdir" && sha256sum "./$name" >sha256sum.txt)
	echo "build-archive: built $outdir/$name" >&2
fi
echo "$outdir/$name"
