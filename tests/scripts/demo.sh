#!/usr/bin/env bash
# `make demo`: deploy the stack into a local systemd container and print its URL.
# Usage: demo.sh up|down      (DEMO_PORT, default 8443, is published on 127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/../.."
name=ai-stack-demo
port=${DEMO_PORT:-8443}
image=${MOLECULE_IMAGE:-docker.io/geerlingguy/docker-ubuntu2404-ansible:latest}

case "${1:-up}" in
  down)
    docker rm -f "$name" >/dev/null 2>&1 && echo "demo: removed $name" || echo "demo: nothing to remove"
    exit 0
    ;;
  up) ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

if ! docker container inspect "$name" >/dev/null 2>&1; then
  # Same systemd-as-PID-1 flags as the molecule platforms (.config/molecule/config.yml).
  docker run -d --name "$name" --hostname "$name" \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
    -p "127.0.0.1:$port:443" "$image" /sbin/init >/dev/null
fi
# is-system-running exits non-zero for "degraded" (a unit containers cannot run), which is fine.
state=$(docker exec "$name" systemctl is-system-running --wait || true)
case "$state" in
  running | degraded) ;;
  *) echo "demo: systemd in $name did not boot (state: $state)" >&2; exit 1 ;;
esac

ansible-playbook -i tests/demo/inventory.yml tests/demo/placeholder.yml
ansible-playbook -i tests/demo/inventory.yml selfhosted.ai_stack.site

url="https://127.0.0.1:$port/"
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 "$url")
if [ "$code" != 200 ]; then
  echo "demo: $url answered HTTP $code" >&2
  exit 1
fi
cat <<MSG

The AI stack demo is up: $url
(self-signed certificate; remove the container with 'make demo-destroy')
MSG
