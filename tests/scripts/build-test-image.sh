#!/usr/bin/env bash
# Build a Debian image with systemd as PID 1 from the apt mirror this machine already uses, for
# machines that cannot pull from a container registry (CI, offline offices).
# Usage: build-test-image.sh [image-name [suite]]
#   build-test-image.sh localhost/ai-stack-test:debian12            Debian 12 (bookworm), the default
#   build-test-image.sh localhost/ai-stack-test:debian13            Debian 13 (trixie)
# The suite follows the tag (debian12 bookworm, debian13 trixie) unless given (or SUITE is set).
# Debian 12 keeps the one-line /etc/apt/sources.list debootstrap writes; Debian 13 gets the deb822
# /etc/apt/sources.list.d/debian.sources (archive, -updates and, where this machine has one, the
# security archive) and no sources.list, as the official Debian 13 and Ubuntu 24.04 images have.
# The image is rebuilt only when this script or the suite changes (kept as a label).
set -euo pipefail
image=${1:-localhost/ai-stack-test:debian12}
case "$image" in
  *debian12) default_suite=bookworm ;;
  *debian13) default_suite=trixie ;;
  *) default_suite= ;;
esac
suite=${2:-${SUITE:-$default_suite}}
case "$suite" in
  bookworm | trixie) ;;
  *) echo "build-test-image: say which suite to build for $image (bookworm or trixie)" >&2; exit 2 ;;
esac
script_hash=$(sha256sum "$0" | cut -c1-16)-$suite

if [ "$(docker image inspect -f '{{ index .Config.Labels "ai-stack.script" }}' "$image" 2>/dev/null)" = "$script_hash" ]; then
  echo "build-test-image: $image is up to date" >&2
  exit 0
fi

# The first http(s) mirror that apt is configured with (deb822 or one-line sources), and its
# security archive if it has one.
apt_uris() {
  grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true
}
mirror=$(apt_uris | grep -v -- '-security' | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)
mirror=${MIRROR:-$mirror}
security=$(apt_uris | grep -oE 'https?://[^ ]+/debian-security/?' | head -n1 || true)
security=${SECURITY_MIRROR-$security}
if [ -z "$mirror" ]; then
  echo "build-test-image: no Debian mirror found in the apt sources; set MIRROR (for example on an Ubuntu" \
    "machine), or skip the Debian 13 scenarios of make test with TRIXIE_SCENARIOS=" >&2
  exit 1
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
# Debian's archive keys (Ubuntu machines do not have them by default).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [ "${#missing[@]}" -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

root=$(mktemp -d /var/tmp/ai-stack-rootfs.XXXXXX)
trap '"${sudo_cmd[@]}" rm -rf "$root"' EXIT
echo "build-test-image: debootstrap $suite from $mirror" >&2
"${sudo_cmd[@]}" debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps \
  "$suite" "$root" "$mirror" >/dev/null
# The same mirror inside the image, so roles install from where the host does.
if [ "$suite" = bookworm ]; then
  echo "deb $mirror $suite main" | "${sudo_cmd[@]}" tee "$root/etc/apt/sources.list" >/dev/null
else
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
      "$mirror" "$suite" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg
    if [ -n "$security" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
        "$security" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg
    fi
  } | "${sudo_cmd[@]}" tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null
  "${sudo_cmd[@]}" rm -f "$root/etc/apt/sources.list"
fi
# No getty or udev races in a container; keep the boot to what services need.
"${sudo_cmd[@]}" chroot "$root" systemctl mask getty@tty1.service systemd-udevd.service \
  systemd-logind.service >/dev/null 2>&1 || true
"${sudo_cmd[@]}" chroot "$root" apt-get clean
"${sudo_cmd[@]}" tar -C "$root" -c . | docker import \
  -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' -c "LABEL ai-stack.script=$script_hash" \
  - "$image" >/dev/null
echo "build-test-image: built $image" >&2
