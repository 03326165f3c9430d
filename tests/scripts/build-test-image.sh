#!/usr/bin/env bash
# Build a Debian 12 image with systemd as PID 1 from the apt mirror this machine already
# uses, for machines that cannot pull from a container registry (CI, offline offices).
# Usage: build-test-image.sh [image-name]   (default: localhost/ai-stack-test:debian12)
# The image is rebuilt only when this script changes (its hash is kept as a label).
set -euo pipefail
image=${1:-localhost/ai-stack-test:debian12}
script_hash=$(sha256sum "$0" | cut -c1-16)

if [ "$(docker image inspect -f '{{ index .Config.Labels "ai-stack.script" }}' "$image" 2>/dev/null)" = "$script_hash" ]; then
  echo "build-test-image: $image is up to date" >&2
  exit 0
fi

# The first http(s) mirror that apt is configured with (deb822 or one-line sources).
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
  | grep -v -- '-security' | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)
mirror=${MIRROR:-$mirror}
if [ -z "$mirror" ]; then
  echo "build-test-image: no Debian mirror found in the apt sources; set MIRROR" >&2
  exit 1
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
command -v debootstrap >/dev/null || {
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq debootstrap >/dev/null
}

root=$(mktemp -d /var/tmp/ai-stack-rootfs.XXXXXX)
trap '"${sudo_cmd[@]}" rm -rf "$root"' EXIT
echo "build-test-image: debootstrap bookworm from $mirror" >&2
"${sudo_cmd[@]}" debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps \
  bookworm "$root" "$mirror" >/dev/null
# The same mirror inside the image, so roles install from where the host does.
echo "deb $mirror bookworm main" | "${sudo_cmd[@]}" tee "$root/etc/apt/sources.list" >/dev/null
# No getty or udev races in a container; keep the boot to what services need.
"${sudo_cmd[@]}" chroot "$root" systemctl mask getty@tty1.service systemd-udevd.service \
  systemd-logind.service >/dev/null 2>&1 || true
"${sudo_cmd[@]}" chroot "$root" apt-get clean
"${sudo_cmd[@]}" tar -C "$root" -c . | docker import \
  -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' -c "LABEL ai-stack.script=$script_hash" \
  - "$image" >/dev/null
echo "build-test-image: built $image" >&2
