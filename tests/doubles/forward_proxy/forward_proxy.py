# SPDX-License-Identifier: GPL-3.0-or-later
"""Test double for an office's HTTP proxy: CONNECT tunnels and plain-HTTP forwarding, logged."""

from __future__ import annotations

import argparse
import base64
import select
import socket
import socketserver
import threading
from pathlib import Path
from urllib.parse import urlsplit

BUFFER = 65536


class ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], log: Path, credentials: str = "") -> None:
        super().__init__(address, ProxyHandler)
        self.log = log
        # "user:password" a client must send as Proxy-Authorization: Basic, or "" for none.
        self.credentials = credentials
        self.log_lock = threading.Lock()

    def record(self, line: str) -> None:
        with self.log_lock, self.log.open("a") as log:
            log.write(line + "\n")


class ProxyHandler(socketserver.StreamRequestHandler):
    server: ProxyServer

    def handle(self) -> None:
        request_line = self.rfile.readline(BUFFER).decode("latin-1").rstrip("\r\n")
        headers = []
        while True:
            line = self.rfile.readline(BUFFER).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            headers.append(line.rstrip("\r\n"))
        try:
            method, target, version = request_line.split(" ", 2)
        except ValueError:
            return
        if not self._authorized(headers):
            # Logged without the credentials, like a real proxy's access log.
            self.server.record(f"407 {method} {target}")
            self.wfile.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="office proxy double"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        self.server.record(f"{method} {target}")
        if method == "CONNECT":
            self._tunnel(target)
        else:
            self._forward(method, target, version, headers)

    def _authorized(self, headers: list[str]) -> bool:
        if not self.server.credentials:
            return True
        expected = "Basic " + base64.b64encode(self.server.credentials.encode()).decode()
        sent = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("proxy-authorization:")]
        return expected in sent

    def _tunnel(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        _relay(self.connection, upstream)

    def _forward(self, method: str, target: str, version: str, headers: list[str]) -> None:
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((url.hostname, url.port or 80), timeout=30)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        hop_by_hop = ("connection", "proxy-connection", "keep-alive", "proxy-authorization")
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in hop_by_hop]
        # One request per connection keeps the double simple; clients reconnect.
        head = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
        upstream.sendall("\r\n".join(head).encode("latin-1"))
        # Anything the client sends after its request (pipelined requests) is not forwarded: the
        # upstream closes after one response and the client sends the rest again.
        _relay(self.connection, upstream, from_client=False)


def _relay(client: socket.socket, upstream: socket.socket, from_client: bool = True) -> None:
    sockets = [client, upstream] if from_client else [upstream]
    try:
        while True:
            readable = select.select(sockets, [], [], 60)[0]
            if not readable:
                return
            for sock in readable:
                data = sock.recv(BUFFER)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    finally:
        upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:3128", help="host:port")
    parser.add_argument("--log", required=True, type=Path, help="file that gets one line per request")
    parser.add_argument(
        "--credentials-file",
        type=Path,
        help="file holding user:password that clients must send (Proxy-Authorization: Basic); none by default",
    )
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    credentials = args.credentials_file.read_text().strip() if args.credentials_file else ""
    ProxyServer((host, int(port)), args.log, credentials).serve_forever()


if __name__ == "__main__":
    main()
