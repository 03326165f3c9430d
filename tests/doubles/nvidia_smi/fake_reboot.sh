#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# TEST DOUBLE of a reboot, for containers that cannot reboot (molecule/nvidia_cuda_fake_gpu):
# installed as /usr/local/sbin/fake-reboot and given to the nvidia_cuda role as
# nvidia_cuda_reboot_command and (with --boot-id) nvidia_cuda_boot_time_command.
#
#   fake-reboot            "reboots": changes what a real reboot changes for the role. The boot id
#                          goes up by one, the driver counts as loaded (the nvidia-smi double
#                          answers again), /run/reboot-required is gone (/run is a tmpfs). One line
#                          per reboot goes to $FAKE_REBOOT_LOG (default /var/log/fake-reboot.log).
#   fake-reboot --boot-id  prints the current boot id, as `cat /proc/sys/kernel/random/boot_id`
#                          does for ansible.builtin.reboot on a real host.
set -eu

state_dir=${FAKE_REBOOT_STATE_DIR:-/var/lib/fake-reboot}
driver_state=${FAKE_NVIDIA_SMI_DRIVER_STATE:-/usr/local/share/fake-nvidia-smi/driver-state}
log=${FAKE_REBOOT_LOG:-/var/log/fake-reboot.log}
boot_id=$state_dir/boot_id

mkdir -p "$state_dir"
[ -s "$boot_id" ] || echo 1 >"$boot_id"
case "${1:-}" in
--boot-id)
	cat "$boot_id"
	exit 0
	;;
"") ;;
*)
	echo "fake-reboot (TEST DOUBLE): unknown argument $1" >&2
	exit 2
	;;
esac

echo $(($(cat "$boot_id") + 1)) >"$boot_id"
mkdir -p "$(dirname "$driver_state")"
echo loaded >"$driver_state"
rm -f /run/reboot-required
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) fake reboot, now boot $(cat "$boot_id")" >>"$log"
