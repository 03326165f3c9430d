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
# Until systemd's bus is up, systemctl cannot even ask; "degraded" (a unit containers cannot
# run) is a booted system too. is-system-running exits non-zero for both, hence the `|| true`.
state=
for _ in $(seq 1 60); do
  state=$(docker exec "$name" systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 1
done
case "$state" in
  running | degraded) ;;
  *) echo "demo: systemd in $name did not boot (state: ${state:-unknown})" >&2; exit 1 ;;
esac

extra=()
if ! curl -sfI --max-time 5 https://github.com >/dev/null 2>&1; then
  # No GitHub (CI, some offices): serve Ollama's release layout from its test double instead.
  version=$(sed -n 's/^ollama_version: "\(.*\)"/\1/p' roles/ollama/defaults/main.yml)
  releases=$PWD/.cache/fake-ollama-releases
  echo "demo: GitHub is out of reach, so Ollama $version comes from its test double (tests/doubles/ollama)" >&2
  SOURCE_DATE_EPOCH=1767225600 tests/doubles/ollama/build-archive.sh "$version" "$releases/v$version" >/dev/null
  extra=(-e "ai_stack_ollama_download_base_url=file://$releases")
fi

ansible-playbook -i tests/demo/inventory.yml tests/demo/placeholder.yml
ansible-playbook -i tests/demo/inventory.yml "${extra[@]}" selfhosted.ai_stack.site

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
