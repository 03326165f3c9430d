# SPDX-License-Identifier: GPL-3.0-or-later
"""Test double for an upstream download site: serves files and counts the GETs per path."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        super().__init__(address, CountingHandler)
        self.root = root
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.last_request = time.monotonic()


class CountingHandler(BaseHTTPRequestHandler):
    server: CountingServer

    def do_GET(self) -> None:  # http.server dispatches on this name
        self.server.last_request = time.monotonic()
        if self.path == "/_counts":
            with self.server.lock:
                self._reply(200, json.dumps(self.server.counts).encode(), "application/json")
            return
        with self.server.lock:
            self.server.counts[self.path] = self.server.counts.get(self.path, 0) + 1
        name = self.path.removeprefix("/files/")
        candidate = (self.server.root / name).resolve()
        if name == self.path or candidate.parent != self.server.root.resolve() or not candidate.is_file():
            self._reply(404, b"not found\n", "text/plain")
            return
        self._reply(200, candidate.read_bytes(), "application/octet-stream")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def _exit_when_idle(server: CountingServer, idle: float, lifetime: float) -> None:
    started = time.monotonic()
    while True:
        time.sleep(1)
        now = time.monotonic()
        if now - server.last_request > idle or now - started > lifetime:
            server.shutdown()
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, type=Path, help="directory served under /files/")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free port)")
    parser.add_argument("--port-file", required=True, type=Path, help="where to write the port once listening")
    parser.add_argument("--idle-exit", type=float, default=900, help="exit after this many seconds without requests")
    parser.add_argument("--max-lifetime", type=float, default=1800, help="exit after this many seconds in any case")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = CountingServer((host, int(port)), args.root)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(f"{server.server_address[1]}\n")
    os.replace(tmp, args.port_file)
    threading.Thread(target=_exit_when_idle, args=(server, args.idle_exit, args.max_lifetime), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
