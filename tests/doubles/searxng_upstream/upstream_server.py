# SPDX-License-Identifier: GPL-3.0-or-later
"""Test double for what SearXNG reaches on the internet: its git host and a search engine.

- ``GET /git/<path>`` serves the files under ``--git-root`` as they are, which is git's "dumb"
  HTTP protocol for a bare repository prepared with ``git update-server-info``
  (build-repo.sh does that): ``git clone http://<host>:<port>/git/searxng.git`` works.
- ``GET /search?q=<terms>`` answers JSON as a search engine would:
  ``{"results": [{"url", "title", "content"}]}``, one result that repeats the terms, for SearXNG's
  generic ``json_engine``.

- ``GET <prefix>/<path>`` for every ``--serve <prefix>=<dir>`` serves the files under ``<dir>``, with
  directory listings (an HTML page with one link per file): a PEP 503 "simple" package index for
  pip when ``<dir>`` holds one directory per project (the comfyui scenario's torch index double).

Every request adds one line to ``--log`` (``GET /search?q=...``), so tests can tell which
requests arrived. It listens on loopback; the scenario names it ``git.searxng-double.test`` and
``engine.searxng-double.test`` in /etc/hosts, so that clients reach it through the office proxy.
"""

from __future__ import annotations

import argparse
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class UpstreamHandler(SimpleHTTPRequestHandler):
    server: UpstreamServer

    def log_message(self, format: str, *args: object) -> None:  # http.server's signature
        pass

    def do_GET(self) -> None:  # http.server dispatches on this name
        self.server.record(f"GET {self.path}")
        url = urlsplit(self.path)
        if url.path == "/search":
            self._search(parse_qs(url.query).get("q", [""])[0])
        elif url.path.startswith("/git/"):
            self.path = self.path[len("/git") :]
            super().do_GET()
        elif served := [(prefix, root) for prefix, root in self.server.served if url.path.startswith(prefix + "/")]:
            prefix, root = served[0]
            self.path = self.path[len(prefix) :]
            self.directory = str(root)
            super().do_GET()
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:  # http.server dispatches on this name
        self.send_error(405)

    def _search(self, terms: str) -> None:
        results = [
            {
                "url": f"https://engine.searxng-double.test/result?q={terms}",
                "title": f"engine double result for {terms}",
                "content": f"The search engine test double was asked for: {terms}",
            }
        ]
        body = json.dumps({"results": results if terms else []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], git_root: Path, log: Path, served: list[tuple[str, Path]] | None = None
    ) -> None:
        super().__init__(address, partial(UpstreamHandler, directory=str(git_root)))
        self.served = served or []
        self.log = log
        self.log_lock = threading.Lock()

    def record(self, line: str) -> None:
        with self.log_lock, self.log.open("a") as log:
            log.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8890", help="host:port")
    parser.add_argument("--git-root", required=True, type=Path, help="directory holding bare repositories")
    parser.add_argument("--log", required=True, type=Path, help="file that gets one line per request")
    parser.add_argument(
        "--serve", action="append", default=[], metavar="PREFIX=DIR", help="also serve DIR's files under PREFIX/"
    )
    args = parser.parse_args()
    served = [(item.split("=", 1)[0].rstrip("/"), Path(item.split("=", 1)[1])) for item in args.serve]
    host, port = args.listen.rsplit(":", 1)
    UpstreamServer((host, int(port)), args.git_root, args.log, served).serve_forever()


if __name__ == "__main__":
    main()
