# SPDX-License-Identifier: GPL-3.0-or-later
"""Outgoing requests of the SearXNG TEST DOUBLE (not SearXNG), and its one real engine type.

As upstream, outgoing requests use ``outgoing.proxies`` from the settings (a URL, or a dict of
httpx-style patterns ``all://``, ``http://``, ``https://`` to a URL or a list of URLs) and ignore
the process environment's proxy variables; TLS is verified against ``SSL_CERT_FILE`` when set (as
httpx does with ``trust_env``), otherwise the system default. A proxy URL may carry
``user:password@``: it is sent as Proxy-Authorization Basic.

Plain ``http://`` is refused, as upstream's transports do, unless the engine (or ``outgoing``) has
``enable_http: true``.

``engine: json_engine`` engines are queried for real (``search_url`` with ``{query}`` and
``{pageno}``, ``results_query``, ``url_query``, ``title_query``, ``content_query``, as upstream's
json_engine). Any other engine type is not implemented here and answers as unresponsive, which is
what every engine of an upstream instance without internet access does.
"""

from __future__ import annotations

import json
import os
import ssl
import typing as t
import urllib.error
import urllib.parse
import urllib.request

USER_AGENT = "searxng-test-double/1.0"


def proxy_map(proxies: t.Any) -> dict[str, str]:
    """urllib's {scheme: proxy URL} from upstream's ``outgoing.proxies`` setting."""
    if not proxies:
        return {}
    if isinstance(proxies, str):
        proxies = {"all://": proxies}
    if not isinstance(proxies, dict):
        raise ValueError("outgoing.proxies has to be a string or a dict")
    mapping: dict[str, str] = {}
    for pattern, urls in proxies.items():
        url = urls[0] if isinstance(urls, list) else urls
        if not url:
            continue
        if pattern == "all://":
            mapping.setdefault("http", url)
            mapping.setdefault("https", url)
        elif pattern in ("http://", "https://"):
            mapping[pattern[:-3]] = url
    return mapping


def opener(outgoing: dict[str, t.Any]) -> urllib.request.OpenerDirector:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    context = ssl.create_default_context(cafile=cafile)
    # An empty ProxyHandler mapping means "no proxy": the environment's variables are not used.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(proxy_map(outgoing.get("proxies"))),
        urllib.request.HTTPSHandler(context=context),
    )


def _dig(document: t.Any, query: str) -> t.Any:
    for key in [part for part in query.split("/") if part]:
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def json_engine(engine: dict[str, t.Any], query: str, outgoing: dict[str, t.Any]) -> list[dict[str, str]]:
    url = engine["search_url"].format(query=urllib.parse.quote(query), pageno=1, lang="en")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    timeout = float(engine.get("timeout", outgoing.get("request_timeout", 3.0)))
    with opener(outgoing).open(request, timeout=timeout) as response:
        document = json.loads(response.read().decode("utf-8"))
    results = []
    for item in _dig(document, engine.get("results_query", "")):
        results.append(
            {
                "url": str(_dig(item, engine["url_query"])),
                "title": str(_dig(item, engine["title_query"])),
                "content": str(_dig(item, engine["content_query"])) if engine.get("content_query") else "",
                "engine": engine["name"],
            }
        )
    return results


def search(engines: list[dict[str, t.Any]], query: str, outgoing: dict[str, t.Any]) -> tuple[list, list]:
    """(results, unresponsive engines as [name, reason]) for ``query`` over the enabled engines."""
    results: list[dict[str, str]] = []
    unresponsive: list[list[str]] = []
    for engine in engines:
        if engine.get("disabled") or engine.get("inactive"):
            continue
        if engine.get("engine") != "json_engine":
            unresponsive.append([engine["name"], "not implemented by the test double"])
            continue
        plain_http = str(engine.get("search_url", "")).startswith("http://")
        if plain_http and not (engine.get("enable_http") or outgoing.get("enable_http")):
            unresponsive.append([engine["name"], "UnsupportedProtocol: http:// without enable_http"])
            continue
        try:
            results.extend(json_engine(engine, query, outgoing))
        except urllib.error.HTTPError as error:
            unresponsive.append([engine["name"], f"HTTP error {error.code}"])
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, IndexError) as error:
            unresponsive.append([engine["name"], f"{type(error).__name__}: {error}"])
    return results, unresponsive
