#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build a TEST DOUBLE of PyTorch's wheel index (download.pytorch.org/whl/<build>/, not PyTorch's):
#
#   build-index.sh <outdir> <torch CPU wheel>
#
# PEP 503 layout, one directory per normalized project name, served as plain directory listings
# (upstream_server.py --serve /whl=<outdir>/whl answers them as HTML with a link per file):
#   whl/cpu/torch/<the real CPU wheel given>      with its dependencies next to it (whl/cpu/<name>/), as
#                                                 PyTorch's index holds them (downloaded once, from the
#                                                 controller's package index)
#   whl/cu130/torch/torch-<version>+cu130-...whl  a tiny wheel holding metadata only: what pip resolves from a
#                                                 CUDA 13 index, for the role's refusal on an older driver.
#                                                 It cannot be imported: only --dry-run ever sees it.
# stderr says "build-index: unchanged" when the index is there already.
set -euo pipefail

[[ $# -eq 2 ]] || {
	echo "usage: $0 <outdir> <torch CPU wheel>" >&2
	exit 2
}
outdir=$1
wheel=$2
name=$(basename "$wheel")
[[ $name =~ ^torch-([0-9.]+)\+cpu-(cp[0-9]+)-(cp[0-9]+)-([a-z0-9_]+)\.whl$ ]] || {
	echo "build-index: $name is not a torch CPU wheel" >&2
	exit 2
}
version=${BASH_REMATCH[1]} tag=${BASH_REMATCH[2]} platform=${BASH_REMATCH[4]}
cpu=$outdir/whl/cpu
if [[ -f $cpu/torch/$name && -f $outdir/complete ]]; then
	echo "build-index: unchanged $outdir" >&2
	exit 0
fi
rm -rf "$outdir"
mkdir -p "$cpu/torch" "$outdir/deps"
cp "$wheel" "$cpu/torch/"
# torch's own requirements (Requires-Dist without an extra), and theirs.
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: --dest "$outdir/deps" \
	--python-version "${tag#cp}" --implementation cp --abi "$tag" --platform "$platform" --platform any \
	filelock 'typing-extensions>=4.10.0' 'setuptools>=77.0.3' 'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5'
for dep in "$outdir"/deps/*.whl; do
	project=$(basename "$dep" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
	mkdir -p "$cpu/$project"
	mv "$dep" "$cpu/$project/"
done
rmdir "$outdir/deps"

fake=$outdir/fake
info=$fake/torch-$version+cu130.dist-info
mkdir -p "$info" "$outdir/whl/cu130/torch"
printf 'Metadata-Version: 2.1\nName: torch\nVersion: %s+cu130\nSummary: TEST DOUBLE of a CUDA 13 torch build (metadata only)\n' \
	"$version" >"$info/METADATA"
printf 'Wheel-Version: 1.0\nGenerator: comfyui test double\nRoot-Is-Purelib: false\nTag: %s-%s-%s\n' \
	"$tag" "$tag" "$platform" >"$info/WHEEL"
printf 'torch-%s+cu130.dist-info/METADATA,,\ntorch-%s+cu130.dist-info/WHEEL,,\ntorch-%s+cu130.dist-info/RECORD,,\n' \
	"$version" "$version" "$version" >"$info/RECORD"
(cd "$fake" && python3 -m zipfile -c "$outdir/whl/cu130/torch/torch-$version+cu130-$tag-$tag-$platform.whl" \
	"torch-$version+cu130.dist-info")
rm -rf "$fake"
touch "$outdir/complete"
echo "build-index: built $outdir" >&2
