#!/usr/bin/env bash
# Put a pristine CPython source tarball where the python311 molecule scenarios read it, without
# python.org: Debian's source package for python3.11 carries the upstream tarball unchanged
# (python3.11_3.11.2.orig.tar.gz == Python-3.11.2.tgz). Only the controller downloads it.
#
# Usage: fetch-cpython-source.sh OUTDIR
#
# The machine's apt configuration is left alone: apt runs with a private source list (one
# deb-src line for the Debian mirror the machine already uses), private list and cache
# directories in a temporary directory, and no sources.list.d. Nothing is downloaded when
# OUTDIR already holds the file with the right checksum.
set -euo pipefail

outdir=${1:?usage: fetch-cpython-source.sh OUTDIR}
file=python3.11_3.11.2.orig.tar.gz
sha256=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849

say() { echo "fetch-cpython-source: $*" >&2; }

mkdir -p "$outdir"
if [ -f "$outdir/$file" ] && echo "$sha256  $outdir/$file" | sha256sum --check --status; then
  say "$outdir/$file is already there"
  exit 0
fi

# The first Debian mirror in the apt sources (deb822 .sources or one-line .list), with its suite
# and keyring; security and backports archives do not carry the original tarball.
read -r mirror suite keyring < <(
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      # deb822: blank lines separate stanzas; print "URI SUITE KEYRING" per stanza.
      awk 'BEGIN { RS = ""; FS = "\n" }
           {
             uri = ""; suite = ""; key = "-"
             for (i = 1; i <= NF; i++) {
               if ($i ~ /^URIs:/)      { split($i, a, /[ \t]+/); uri = a[2] }
               if ($i ~ /^Suites:/)    { split($i, a, /[ \t]+/); suite = a[2] }
               if ($i ~ /^Signed-By:/) { split($i, a, /[ \t]+/); key = a[2] }
             }
             if (uri != "" && suite != "") print uri, suite, key
           }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # one-line: deb [opts] URI SUITE COMPONENTS...
      sed -nE 's/^deb(-src)?[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\4 \5 \3/p' "$f" |
        awk '{ key = "-"; if (match($0, /signed-by=[^ ]+/)) key = substr($0, RSTART + 10, RLENGTH - 10); print $1, $2, key }'
    done
  } | grep -E '^https?://[^ ]+/debian/? ' | grep -vE -- '-(security|backports|updates) ' | head -n1
) || true
mirror=${MIRROR:-${mirror:-}}
if [ -z "$mirror" ] || [ -z "${suite:-}" ]; then
  say "no Debian mirror found in the apt sources; set MIRROR (and SUITE)"
  exit 1
fi
suite=${SUITE:-$suite}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/fetch-cpython-source.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/download"
signed_by=""
[ "${keyring:--}" = - ] || signed_by="[signed-by=$keyring] "
echo "deb-src ${signed_by}$mirror $suite main" >"$work/sources.list"
# apt drops root privileges to _apt for downloads; let it write into the private directories.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chmod 0755 "$work"
  chown -R _apt "$work/lists/partial" "$work/cache/archives/partial" "$work/download"
fi
apt_private=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
)

say "apt-get source --download-only python3.11 from $mirror $suite (private apt configuration)"
apt-get "${apt_private[@]}" -qq update
(cd "$work/download" && apt-get "${apt_private[@]}" -qq source --download-only python3.11)

if [ ! -f "$work/download/$file" ]; then
  say "the python3.11 source package in $mirror $suite does not carry $file:"
  ls -1 "$work/download" >&2
  exit 1
fi
if ! echo "$sha256  $work/download/$file" | sha256sum --check --status; then
  say "$file has an unexpected sha256 ($(sha256sum "$work/download/$file" | cut -d' ' -f1)); refusing it"
  exit 1
fi
install -m 0644 "$work/download/$file" "$outdir/$file"
say "saved $outdir/$file (sha256 $sha256)"
