#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build a TEST DOUBLE of NVIDIA's CUDA apt repository (not NVIDIA's repository, no NVIDIA code):
#
#   build-repo.sh <outdir> <repo path, e.g. debian12/x86_64> <dpkg architecture> [toolkit version...]
#
# Writes, shaped like https://developer.download.nvidia.com/compute/cuda/repos/<repo path>/:
#   <outdir>/compute/cuda/repos/<repo path>/
#     cuda-toolkit-<major>-<minor>_<version>.1-1_<arch>.deb   one per version (default: 12.4 12.6); only
#                                                             versions NVIDIA publishes for that path (exit 3)
#     Packages, Packages.gz, Release (Origin NVIDIA, Label "NVIDIA CUDA"), InRelease, Release.gpg
#     3bf863cc.pub                                            the signing key, ASCII-armored
#   <outdir>/KEY_FINGERPRINT                                   its fingerprint (40 hex digits)
# A flat repository (apt line "deb <url> /"), signed by an ed25519 key generated on each run.
# Each dummy toolkit installs only /usr/local/cuda-<version>/bin/nvcc, a shell script that prints
# an nvcc-like banner for --version, and an empty /usr/local/cuda-<version>/lib64.
# EXTRA_PACKAGES="name[=version] ..." adds empty packages (default version 580.95.05-1), e.g. to
# stand in for driver metapackages such as nvidia-open-580.
# Needs dpkg-deb, apt-ftparchive (apt-utils), gpg and gpg-agent.
set -euo pipefail

usage() {
	echo "usage: $0 <outdir> <repo path, e.g. debian12/x86_64> <dpkg arch, e.g. amd64> [version...]" >&2
	exit 2
}

[[ $# -ge 3 ]] || usage
outdir=$1
repo_path=$2
arch=$3
shift 3
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(12.4 12.6)
for version in "${versions[@]}"; do
	[[ $version =~ ^[0-9]+\.[0-9]+$ ]] || usage
done

# --- only toolkits NVIDIA publishes for this repository path -------------------------------
# A double that offers what NVIDIA's repository lacks hides exactly the bug a user then hits (the
# role's default 12.4 looked installable on ubuntu2404). The first cuda-toolkit-X-Y of each path,
# from NVIDIA's directory listings (https://developer.download.nvidia.com/compute/cuda/repos/<path>/,
# read 2026): debian12/x86_64 starts with cuda-12-3 12.3.0 (2023-10-16, the repository's first
# day: its key 3bf863cc.pub has that date); ubuntu2404/x86_64 and ubuntu2404/sbsa start with 12.5
# (the key is from 2024-05-06, after 12.4.1 of 2024-03-28; 12.5.0 followed on 2024-05-15). CUDA
# 12.7 was never released. Paths without an entry (e.g. debian12/sbsa) are refused: add them here,
# with the source, before building them.
first_toolkit() {
	case $1 in
	debian12/x86_64) echo 12.3 ;;
	ubuntu2404/x86_64 | ubuntu2404/sbsa) echo 12.5 ;;
	*) return 1 ;;
	esac
}
first=$(first_toolkit "$repo_path") || {
	echo "$0: no table entry for NVIDIA's repository path $repo_path; add its first CUDA toolkit to first_toolkit()" >&2
	exit 3
}
for version in "${versions[@]}"; do
	if [[ $version == 12.7 ]]; then
		echo "$0: CUDA 12.7 was never released; NVIDIA has no cuda-toolkit-12-7 anywhere" >&2
		exit 3
	elif [[ $(printf '%s\n' "$first" "$version" | sort -V | head -n1) != "$first" ]]; then
		echo "$0: NVIDIA does not publish cuda-toolkit-${version/./-} in $repo_path, which starts with CUDA $first" >&2
		exit 3
	fi
done

repo="$outdir/compute/cuda/repos/$repo_path"
mkdir -p "$repo"
# Not /tmp: it is mounted noexec in the test containers.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/cuda-repo-double.XXXXXX")
trap 'gpgconf --homedir "$work/gnupg" --kill gpg-agent 2>/dev/null || true; rm -rf "$work"' EXIT

# --- signing key ---------------------------------------------------------------------------
export GNUPGHOME="$work/gnupg"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
	--quick-generate-key "CUDA repository TEST DOUBLE <cuda-repo-double@example.invalid>" ed25519 sign never
fingerprint=$(gpg --batch --with-colons --list-keys | awk -F: '$1 == "fpr" { print $10; exit }')
gpg --batch --armor --export "$fingerprint" >"$repo/3bf863cc.pub"
echo "$fingerprint" >"$outdir/KEY_FINGERPRINT"

# --- dummy toolkits ------------------------------------------------------------------------
for version in "${versions[@]}"; do
	package="cuda-toolkit-${version/./-}"
	root="$work/$package"
	prefix="$root/usr/local/cuda-$version"
	mkdir -p "$root/DEBIAN" "$prefix/bin" "$prefix/lib64"
	cat >"$prefix/bin/nvcc" <<EOF
#!/bin/sh
# TEST DOUBLE of nvcc from tests/doubles/cuda_repo: it compiles nothing.
case "\${1:-}" in
--version | -V)
	echo "nvcc: NVIDIA (R) Cuda compiler driver"
	echo "Copyright (c) 2005-2024 NVIDIA Corporation"
	echo "Built on Thu_Mar_28_02:18:24_PDT_2024"
	echo "Cuda compilation tools, release $version, V$version.131"
	echo "Build cuda_$version.r$version/compiler.34097967_0"
	;;
*)
	echo "nvcc (test double): only --version is implemented" >&2
	exit 1
	;;
esac
EOF
	chmod 0755 "$prefix/bin/nvcc"
	cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version.1-1
Architecture: $arch
Maintainer: selfhosted.ai_stack tests <cuda-repo-double@example.invalid>
Section: devel
Priority: optional
Description: CUDA Toolkit $version meta-package (TEST DOUBLE)
 Stands in for NVIDIA's cuda-toolkit package in tests; installs only a fake nvcc.
EOF
	dpkg-deb --root-owner-group --build "$root" "$repo/${package}_$version.1-1_$arch.deb" >/dev/null
done

# --- empty stand-ins for other packages ----------------------------------------------------
for spec in ${EXTRA_PACKAGES:-}; do
	package=${spec%%=*}
	version=580.95.05-1
	[[ $spec == *=* ]] && version=${spec#*=}
	root="$work/extra-$package"
	mkdir -p "$root/DEBIAN"
	cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: selfhosted.ai_stack tests <cuda-repo-double@example.invalid>
Section: misc
Priority: optional
Description: empty TEST DOUBLE of $package
 Stands in for an NVIDIA package in tests; installs nothing.
EOF
	dpkg-deb --root-owner-group --build "$root" "$repo/${package}_${version}_$arch.deb" >/dev/null
done

# --- indexes and signatures ----------------------------------------------------------------
(
	cd "$repo"
	rm -f Packages Packages.gz Release InRelease Release.gpg
	apt-ftparchive packages . >Packages
	gzip -9 -n -k Packages
	apt-ftparchive \
		-o APT::FTPArchive::Release::Origin=NVIDIA \
		-o "APT::FTPArchive::Release::Label=NVIDIA CUDA" \
		-o "APT::FTPArchive::Release::Architectures=$arch" \
		release . >"$work/Release"
	mv "$work/Release" Release
	gpg --batch --yes --local-user "$fingerprint" --clearsign --output InRelease Release
	gpg --batch --yes --local-user "$fingerprint" --armor --detach-sign --output Release.gpg Release
)
chmod -R a+rX "$outdir"
echo "$repo"
