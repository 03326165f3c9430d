#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# TEST DOUBLE of NVIDIA's CUDA runfile installer (cuda_<version>_<driver>_linux.run): not NVIDIA's
# installer, no NVIDIA software inside. See README.md next to it.
#
# A copy named like NVIDIA's file (cuda_12.4.1_550.54.15_linux.run, ..._linux_sbsa.run) takes the
# toolkit version from that name. It accepts the flags a silent, toolkit-only install uses:
#
#   sh cuda_12.4.1_550.54.15_linux.run --silent --toolkit [--toolkitpath=<dir>] [--installpath=<dir>]
#      [--defaultroot=<dir>] [--tmpdir=<dir>] [--override] [--no-man-page]
#
# and installs <dir>/bin/nvcc (which prints nvcc's banner for that version), <dir>/lib64/ and
# <dir>/version.json; <dir> defaults to /usr/local/cuda-<major>.<minor>. It refuses the driver
# (--driver and the driver's own flags) and every flag it does not know, like NVIDIA's installer,
# with a non-zero exit. Each install is logged to $CUDA_RUNFILE_DOUBLE_LOG
# (default /var/log/cuda-runfile-double.log).
set -eu

me=$(basename "$0")
log=${CUDA_RUNFILE_DOUBLE_LOG:-/var/log/cuda-runfile-double.log}

refuse() {
	echo "$me (TEST DOUBLE of NVIDIA's CUDA runfile): $*" >&2
	exit 1
}

version=$(printf '%s\n' "$me" | sed -n 's/^cuda_\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\)_[0-9][0-9.]*_linux\(_sbsa\)\{0,1\}\.run$/\1/p')
[ -n "$version" ] || refuse "cannot tell the CUDA version from my file name; name me like NVIDIA's runfile, e.g. cuda_12.4.1_550.54.15_linux.run"
short=${version%.*}

silent=false
toolkit=false
path=/usr/local/cuda-$short
for arg in "$@"; do
	case $arg in
	--silent) silent=true ;;
	--toolkit) toolkit=true ;;
	--toolkitpath=?* | --installpath=?*) path=${arg#*=} ;;
	--defaultroot=?* | --override | --no-man-page) ;;
	--tmpdir=?*)
		[ -d "${arg#*=}" ] || refuse "--tmpdir: ${arg#*=} is not a directory"
		;;
	--driver | --kernelobjects | --kernel-source-path=* | --no-opengl-libs | --no-drm | --run-nvidia-xconfig | --ui=*)
		refuse "$arg installs or configures the NVIDIA driver; this double never installs a driver"
		;;
	*) refuse "unknown option $arg" ;;
	esac
done
$silent || refuse "only --silent installs are implemented (NVIDIA's interactive installer shows a EULA first)"
$toolkit || refuse "nothing to install: only --toolkit is implemented"

mkdir -p "$path/bin" "$path/lib64"
cat >"$path/bin/nvcc" <<NVCC
#!/bin/sh
# TEST DOUBLE of nvcc, installed by tests/doubles/cuda_runfile: it compiles nothing.
case "\${1:-}" in
--version | -V)
	echo "nvcc: NVIDIA (R) Cuda compiler driver"
	echo "Copyright (c) 2005-2024 NVIDIA Corporation"
	echo "Built on Thu_Mar_28_02:18:24_PDT_2024"
	echo "Cuda compilation tools, release $short, V$short.131"
	echo "Build cuda_$short.r$short/compiler.34097967_0"
	;;
*)
	echo "nvcc (test double): only --version is implemented" >&2
	exit 1
	;;
esac
NVCC
chmod 0755 "$path/bin/nvcc"
printf '{\n  "cuda": {"name": "CUDA SDK", "version": "%s"}\n}\n' "$version" >"$path/version.json"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $me installed CUDA $version into $path: $*" >>"$log"
echo "==========="
echo "= Summary ="
echo "==========="
echo ""
echo "Driver:   Not Selected"
echo "Toolkit:  Installed in $path/"
echo ""
echo "(TEST DOUBLE of NVIDIA's CUDA $version runfile; nothing of NVIDIA's was installed)"
