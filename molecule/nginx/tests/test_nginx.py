"""nginx in front of a test upstream: TLS policy, redirect, proxying, websockets, auth."""

from __future__ import annotations

import json
import re

import pytest

BASE = "https://127.0.0.1"
CURL = "curl --silent --show-error --insecure --max-time 10"


def test_service_active_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_only_http_and_https_listen_beyond_loopback(host):
    listeners = host.check_output("ss -H -tln | awk '{print $4}'").split()
    public = set()
    for address in listeners:
        ip, port = address.rsplit(":", 1)
        if ip not in ("127.0.0.1", "[::1]", "::1") and not ip.startswith("127."):
            public.add(port)
    assert public == {"80", "443"}


def test_https_proxies_to_upstream_with_forwarded_headers(host):
    reply = json.loads(host.check_output(f"{CURL} {BASE}/api/config"))
    assert reply["upstream"] == "test-double"
    assert reply["path"] == "/api/config"
    headers = {k.lower(): v for k, v in reply["headers"].items()}
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"


def test_upstream_connections_are_kept_alive(host):
    # Ten requests on one client connection land in one worker; with keepalive that
    # worker reuses its upstream connection, so the upstream counts more than one request.
    urls = " ".join(f"{BASE}/keepalive/{n}" for n in range(10))
    out = host.check_output(f"{CURL} {urls}")
    counts = [json.loads(line)["connection_requests"] for line in out.replace("}{", "}\n{").splitlines()]
    assert max(counts) > 1, counts


def test_hsts_and_security_headers(host):
    headers = host.check_output(f"{CURL} -o /dev/null -D - {BASE}/").lower()
    assert "strict-transport-security: max-age=63072000; includesubdomains" in headers
    assert "x-content-type-options: nosniff" in headers


def test_http_redirects_to_https(host):
    out = host.check_output("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/chat?x=1")
    assert out == "308 https://127.0.0.1/chat?x=1"


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_tls_versions_refused(host, version):
    # SECLEVEL=0 lets the *client* offer TLS 1.0/1.1, so a refusal comes from nginx.
    cmd = host.run(f"openssl s_client -connect 127.0.0.1:443 {version} -cipher 'DEFAULT:@SECLEVEL=0' </dev/null")
    assert cmd.rc != 0
    assert "Cipher is (NONE)" in cmd.stdout or "no protocols available" in cmd.stderr + cmd.stdout


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_modern_tls_versions_accepted(host, version):
    cmd = host.run(f"openssl s_client -connect 127.0.0.1:443 {version} -cipher 'DEFAULT:@SECLEVEL=0' </dev/null")
    assert cmd.rc == 0, cmd.stderr
    assert "Cipher is (NONE)" not in cmd.stdout


def test_self_signed_certificate_names(host):
    text = host.check_output("openssl x509 -in /etc/ssl/ai_stack/nginx.crt -noout -text")
    # OpenSSL 3.0 (Debian 12, Ubuntu 24.04) prints "CN = name", 3.5 (Debian 13) "CN=name".
    assert re.search(r"Subject: CN ?= ?ai\.office\.example\n", text), text
    assert "DNS:ai.office.example" in text
    assert "IP Address:127.0.0.1" in text
    assert host.file("/etc/ssl/ai_stack/nginx.key").mode == 0o600


def test_websocket_handshake_through_nginx(host):
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example key and its accept value
    out = host.run(
        f"{CURL} --http1.1 -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
        f"-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: {key}' "
        f"'{BASE}/ws/socket.io/?EIO=4&transport=websocket'"
    ).stdout
    assert out.startswith("HTTP/1.1 101"), out
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in out.lower()


def test_extra_location_requires_basic_auth(host):
    code = host.check_output(f"{CURL} -o /dev/null -w '%{{http_code}}' {BASE}/searxng/search")
    assert code == "401"
    reply = json.loads(host.check_output(f"{CURL} -u admin:correct-horse-battery {BASE}/searxng/search?q=x"))
    assert reply["path"] == "/search?q=x"  # the location prefix is stripped


def test_extra_location_without_auth(host):
    reply = json.loads(host.check_output(f"{CURL} {BASE}/open/health"))
    assert reply["path"] == "/health"


def test_distro_default_site_removed(host):
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_managed_files_carry_the_ansible_managed_header(host):
    for path in (
        "/etc/nginx/conf.d/ai_stack.conf",
        "/etc/nginx/snippets/ai_stack_tls.conf",
        "/etc/nginx/snippets/ai_stack_proxy.conf",
    ):
        assert host.file(path).content_string.startswith("#\n# Ansible managed"), path
