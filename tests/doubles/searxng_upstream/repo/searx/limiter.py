# SPDX-License-Identifier: GPL-3.0-or-later
"""Limiter of the SearXNG TEST DOUBLE (not SearXNG): limiter.toml, trusted proxies and Valkey.

``limiter.toml`` next to the settings file is parsed at start (a broken one stops the server, as
upstream's config loader does). The client address is taken from X-Forwarded-For / X-Real-IP only
when the peer is in ``botdetection.trusted_proxies`` (upstream's rule since PR #4911: the rightmost
address that is not a trusted proxy). With ``server.limiter`` on and ``valkey.url`` set, the
double connects to the key-value server at start (an unreachable one is logged, and the server
goes on without it, as upstream's) and counts every search per client in a key
``SearXNG_counter_<hash>``, so tests can see that the server uses it; it blocks nobody.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import tomllib
import typing as t
from pathlib import Path

import valkey

logger = logging.getLogger("searx.limiter")

DEFAULT_TRUSTED_PROXIES = ["127.0.0.0/8", "::1"]


class Limiter:
    def __init__(self, settings: dict[str, t.Any], cfg_folder: Path | None) -> None:
        self.cfg: dict[str, t.Any] = {}
        cfg_file = (cfg_folder or Path("/etc/searxng")) / "limiter.toml"
        if cfg_file.is_file():
            with cfg_file.open("rb") as stream:
                self.cfg = tomllib.load(stream)
        else:
            logger.warning("missing config file: %s", cfg_file)
        botdetection = self.cfg.get("botdetection", {})
        self.trusted_proxies = [
            ipaddress.ip_network(net, strict=False)
            for net in botdetection.get("trusted_proxies", DEFAULT_TRUSTED_PROXIES)
        ]
        self.pass_ip = [
            ipaddress.ip_network(net, strict=False) for net in botdetection.get("ip_lists", {}).get("pass_ip", [])
        ]
        server = settings.get("server") or {}
        self.active = bool(server.get("limiter") or server.get("public_instance"))
        self.client: valkey.Valkey | None = None
        url = (settings.get("valkey") or {}).get("url")
        if self.active and url:
            try:
                client = valkey.Valkey.from_url(url)
                client.ping()
                self.client = client
                logger.info("connected to Valkey")
            except valkey.exceptions.ValkeyError as error:
                logger.error("can't connect valkey DB %s: %s", url.rpartition("@")[2], error)
        elif self.active:
            logger.error("The limiter requires Valkey, please consult the documentation")

    @property
    def enabled(self) -> bool:
        """Upstream's ``limiter.is_installed()``: the limiter is on and has its key-value server."""
        return self.active and self.client is not None

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_proxies)

    def client_address(self, environ: dict[str, t.Any]) -> str:
        peer = environ.get("REMOTE_ADDR", "")
        forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        real_ip = environ.get("HTTP_X_REAL_IP", "").strip()
        if not forwarded and not real_ip:
            logger.debug("X-Forwarded-For nor X-Real-IP header is set!")
            return peer
        if not self._trusted(peer):
            return peer
        for address in reversed(forwarded):
            if not self._trusted(address):
                return address
        return forwarded[0] if forwarded else real_ip

    def count(self, environ: dict[str, t.Any]) -> None:
        if self.client is None:
            return
        address = self.client_address(environ)
        try:
            if any(ipaddress.ip_address(address) in net for net in self.pass_ip):
                return
        except ValueError:
            pass
        key = "SearXNG_counter_" + hashlib.sha256(address.encode()).hexdigest()[:16]
        try:
            self.client.incr(key)
            self.client.expire(key, 600)
        except valkey.exceptions.ValkeyError as error:
            logger.error("valkey: %s", error)
