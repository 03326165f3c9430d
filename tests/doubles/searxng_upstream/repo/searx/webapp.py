# SPDX-License-Identifier: GPL-3.0-or-later
"""WSGI application of the SearXNG TEST DOUBLE (not SearXNG): ``searx.webapp:app``, as upstream's.

Served as upstream's container does: ``granian --interface wsgi searx.webapp:app``.

- ``GET /healthz``: ``OK`` (text/plain).
- ``GET|POST /search?q=...&format=...``: a format not in ``search.formats`` answers 403 (a format
  upstream does not know counts as html); no ``q`` answers 400 (for json: ``{"error": "No query"}``);
  json answers 200 ``application/json`` with upstream's keys (results, unresponsive_engines, ...),
  after querying the enabled engines through ``outgoing.proxies`` (searx/network.py).
- ``GET /config``: JSON with upstream's keys the tests read (version, brand.GIT_URL/GIT_BRANCH,
  instance_name, engines, limiter.enabled, public_instance).
- ``GET /``: a small HTML page.

At import it refuses upstream's placeholder ``server.secret_key`` ("ultrasecretkey") outside debug
mode: it logs upstream's error and exits with status 1.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from html import escape
from urllib.parse import parse_qs

import msgspec

import searx
from searx import get_setting, network, settings, settings_loader
from searx.limiter import Limiter
from searx.version import GIT_BRANCH, GIT_URL, VERSION_STRING

logger = logging.getLogger("searx.webapp")

OUTPUT_FORMATS = ["html", "csv", "json", "rss"]
PLACEHOLDER_SECRET = "ultrasecretkey"

StartResponse = t.Callable[..., t.Any]


def init() -> Limiter:
    # Upstream's schema defaults a missing secret_key to the placeholder too.
    if not searx.sxng_debug and get_setting("server.secret_key", PLACEHOLDER_SECRET) == PLACEHOLDER_SECRET:
        logger.error("server.secret_key is not changed. Please use something else instead of ultrasecretkey.")
        sys.exit(1)
    return Limiter(settings, settings_loader.get_user_cfg_folder())


def _respond(start_response: StartResponse, status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: StartResponse, status: str, document: t.Any) -> list[bytes]:
    return _respond(start_response, status, msgspec.json.encode(document), "application/json")


def _form(environ: dict[str, t.Any]) -> dict[str, str]:
    fields = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        fields.update(parse_qs(environ["wsgi.input"].read(length).decode("utf-8")))
    return {key: values[0] for key, values in fields.items()}


def _engines() -> list[dict[str, t.Any]]:
    return [engine for engine in settings.get("engines", []) if not engine.get("inactive")]


def search(environ: dict[str, t.Any], start_response: StartResponse) -> list[bytes]:
    form = _form(environ)
    output_format = form.get("format", "html")
    if output_format not in OUTPUT_FORMATS:
        output_format = "html"
    if output_format not in get_setting("search.formats", ["html"]):
        return _respond(start_response, "403 FORBIDDEN", b"Forbidden", "text/html")
    query = form.get("q", "")
    if not query:
        if output_format == "json":
            return _json(start_response, "400 BAD REQUEST", {"error": "No query"})
        return _respond(start_response, "400 BAD REQUEST", b"No query", "text/html")
    LIMITER.count(environ)
    results, unresponsive = network.search(_engines(), query, settings.get("outgoing", {}))
    if output_format == "json":
        document = {
            "query": query,
            "number_of_results": len(results),
            "results": results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": unresponsive,
        }
        return _json(start_response, "200 OK", document)
    if output_format == "csv":
        lines = ["title,url,content,engine"] + [
            f"{r['title']},{r['url']},{r['content']},{r['engine']}" for r in results
        ]
        return _respond(start_response, "200 OK", ("\n".join(lines) + "\n").encode(), "application/csv")
    items = "".join(f'<li><a href="{escape(r["url"])}">{escape(r["title"])}</a></li>' for r in results)
    page = f"<!DOCTYPE html><title>{escape(query)}</title><ul>{items}</ul>"
    return _respond(start_response, "200 OK", page.encode(), "text/html; charset=utf-8")


def config(start_response: StartResponse) -> list[bytes]:
    document = {
        "instance_name": get_setting("general.instance_name", "SearXNG"),
        "version": VERSION_STRING,
        "brand": {"GIT_URL": GIT_URL, "GIT_BRANCH": GIT_BRANCH, "DOCS_URL": get_setting("brand.docs_url", "")},
        "engines": [
            {"name": e["name"], "shortcut": e.get("shortcut", ""), "enabled": not e.get("disabled", False)}
            for e in _engines()
        ],
        "limiter": {"enabled": LIMITER.enabled},
        "public_instance": bool(get_setting("server.public_instance", False)),
        "test_double": True,
    }
    return _json(start_response, "200 OK", document)


def app(environ: dict[str, t.Any], start_response: StartResponse) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        return _respond(start_response, "200 OK", b"OK", "text/plain; charset=utf-8")
    if path == "/search":
        return search(environ, start_response)
    if path == "/config":
        return config(start_response)
    if path == "/":
        name = escape(get_setting("general.instance_name", "SearXNG"))
        return _respond(start_response, "200 OK", f"<!DOCTYPE html><title>{name}</title>".encode(), "text/html")
    return _respond(start_response, "404 NOT FOUND", b"Not Found", "text/html")


# Upstream keeps this name for uWSGI.
application = app

LIMITER = init()
