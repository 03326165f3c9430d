#!/usr/bin/env bash
# Make sure a Docker engine answers. On a fresh Debian/Ubuntu machine only the CLI may be
# there: install docker.io and, when no init system manages it, start dockerd ourselves.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq docker.io >/dev/null
fi

if [ -d /run/systemd/system ]; then
  "${sudo_cmd[@]}" systemctl start docker
else
  echo "ensure-docker: no systemd here, starting dockerd in the background" >&2
  log=${DOCKERD_LOG:-/tmp/dockerd.log}
  "${sudo_cmd[@]}" sh -c "nohup dockerd >'$log' 2>&1 &"
fi

for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "ensure-docker: the Docker engine did not come up; see ${DOCKERD_LOG:-/tmp/dockerd.log}" >&2
exit 1
