# SPDX-License-Identifier: GPL-3.0-or-later
# Installed by selfhosted.ai_stack (openwebui role) as /usr/local/libexec/ai_stack/openwebui_wait_ready.py.
#
#   <venv>/bin/python openwebui_wait_ready.py URL...
#
# ExecStartPost of open-webui.service: returns once every URL answers HTTP 200, one after the
# other (/health, then /ready), so the unit becomes active only when Open WebUI serves requests.
# systemd's TimeoutStartSec ends a start that never gets there. A server that exits first (a
# release that cannot start, say on a database a newer one migrated) fails the start at once:
# systemd waits for ExecStartPost even when the main process is gone, and would otherwise wait the
# whole timeout. systemd names the server in $MAINPID. Loopback only: no proxy is used.
"""Wait until every URL answers HTTP 200, or fail when the server exits first."""

import os
import sys
import time
import urllib.error
import urllib.request

REPORT_EVERY = 30


def answers(opener: urllib.request.OpenerDirector, url: str) -> bool:
    try:
        with opener.open(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(urls: list[str]) -> int:
    if not urls:
        print("usage: openwebui_wait_ready.py URL...", file=sys.stderr)
        return 2
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    server = int(os.environ.get("MAINPID") or 0)
    started = time.monotonic()
    reported = started
    for url in urls:
        while not answers(opener, url):
            if server and not alive(server):
                print(f"openwebui_wait_ready: the server (PID {server}) exited before {url} answered", flush=True)
                return 1
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                print(f"openwebui_wait_ready: no answer from {url} after {reported - started:.0f} s", flush=True)
            time.sleep(1)
    print(f"openwebui_wait_ready: ready after {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
