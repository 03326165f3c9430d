#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# TEST DOUBLE of NVIDIA GPUs on the PCI bus, for containers (molecule/nvidia_cuda_fake_gpu): a
# tmpfs over /sys/bus/pci/devices with one directory per GPU holding what
# selfhosted.ai_stack.nvidia_gpu_info's PCI scan and the nvidia_cuda role read (vendor, class,
# device). Before a driver answers, that scan is how the role finds the GPUs.
#
#   fake_pci_gpus.sh mount <bus id>=<device id>...   e.g. 0000:01:00.0=0x1e04 0000:02:00.0=0x1e04
#   fake_pci_gpus.sh umount
#
# Needs CAP_SYS_ADMIN and no AppArmor profile that forbids mount; exits 3 when the mount is refused.
set -eu

devices=${FAKE_PCI_DEVICES_DIR:-/sys/bus/pci/devices}

case "${1:-}" in
mount)
	shift
	if ! mountpoint -q "$devices"; then
		mount -t tmpfs fake-pci-gpus "$devices" || {
			echo "fake_pci_gpus (TEST DOUBLE): cannot mount a tmpfs over $devices (AppArmor or no CAP_SYS_ADMIN?)" >&2
			exit 3
		}
	fi
	for spec in "$@"; do
		dir=$devices/${spec%%=*}
		mkdir -p "$dir"
		echo 0x10de >"$dir/vendor"
		# 0x0300: VGA compatible controller.
		echo 0x030000 >"$dir/class"
		echo "${spec#*=}" >"$dir/device"
	done
	;;
umount)
	if mountpoint -q "$devices"; then umount "$devices"; fi
	;;
*)
	echo "usage: $0 mount <bus id>=<device id>... | umount" >&2
	exit 2
	;;
esac
