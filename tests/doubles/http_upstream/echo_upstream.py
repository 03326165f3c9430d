# SPDX-License-Identifier: GPL-3.0-or-later
"""Test double for the services behind nginx: echoes requests, answers websocket upgrades."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open so nginx can reuse them

    def setup(self) -> None:
        super().setup()
        self.requests_on_connection = 0

    def do_GET(self) -> None:  # http.server dispatches on this name
        self.requests_on_connection += 1
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._switch_protocols()
            return
        body = json.dumps(
            {
                "upstream": "test-double",
                "path": self.path,
                "connection_requests": self.requests_on_connection,
                "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-")},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _switch_protocols(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), EchoHandler).serve_forever()


if __name__ == "__main__":
    main()
