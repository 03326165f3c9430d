#!/usr/bin/env bash
# `make demo`: the whole stack, as molecule/stack tests it, in a local systemd container: the site
# playbook with the real nginx, CPython build and Open WebUI, and TEST DOUBLES only for what this
# machine cannot reach (each named below when it is used). Prints the URL and where the admin's
# password is.
# Usage: demo.sh up|down      (DEMO_PORT, default 8443, is published on 127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/../.."
name=ai-stack-demo
port=${DEMO_PORT:-8443}
export DEMO_PORT=$port
image=${MOLECULE_IMAGE:-docker.io/geerlingguy/docker-ubuntu2404-ansible:latest}
secrets=.cache/demo/secrets.yml

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
    --cap-add SYS_ADMIN --cap-add SYS_PTRACE --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
    -p "127.0.0.1:$port:443" "$image" /sbin/init >/dev/null
fi

# The admin's password (and the one of SearXNG's basic auth), generated once, readable by you only.
if [ ! -s "$secrets" ]; then
  mkdir -p "$(dirname "$secrets")"
  (
    umask 077
    python3 - "$secrets" <<'PY'
import secrets, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("---\n")
    out.write(f"openwebui_admin_password: {secrets.token_urlsafe(18)}\n")
    out.write(f"nginx_basic_auth_users: [{{name: office, password: {secrets.token_urlsafe(18)}}}]\n")
PY
  )
fi

# The stack's group_vars and prepare playbook find the checkout (and its doubles) here.
export MOLECULE_PROJECT_DIRECTORY=$PWD
extra=(-e "@$secrets")
doubles=("the office proxy (tests/doubles/forward_proxy; it forwards to the internet where there is one)")
if curl -sfI --max-time 5 https://github.com >/dev/null 2>&1; then
  # The real releases: Ollama's archive and SearXNG's repository at the role's pinned commit.
  commit=$(sed -n 's/^searxng_commit: //p' roles/searxng/defaults/main.yml)
  extra+=(-e ai_stack_ollama_download_base_url=https://github.com/ollama/ollama/releases/download
          -e searxng_repository_url=https://github.com/searxng/searxng -e "searxng_commit=$commit")
else
  doubles+=("Ollama (tests/doubles/ollama with chat: canned answers; GitHub is out of reach)"
            "SearXNG's git repository and its search engine (tests/doubles/searxng_upstream)")
fi
echo "demo: test doubles in this demo:" >&2
printf '  - %s\n' "${doubles[@]}" >&2

ansible-playbook -i tests/stack/demo.yml molecule/stack/doubles.yml
ansible-playbook -i tests/stack/demo.yml "${extra[@]}" selfhosted.ai_stack.site

url="https://localhost:$port/"
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 30 --resolve "localhost:$port:127.0.0.1" "$url")
if [ "$code" != 200 ]; then
  echo "demo: $url answered HTTP $code" >&2
  exit 1
fi
email=$(sed -n 's/^openwebui_admin_email: //p' tests/stack/group_vars/all.yml)
cat <<MSG

The AI stack demo is up: $url  (Open WebUI through nginx; self-signed certificate)
  sign in as:  $email
  password:    openwebui_admin_password in $secrets (readable by you only)
  search:      ${url}searxng/ (basic auth: office, the other password in $secrets)
Remove it with 'make demo-destroy'.
MSG
