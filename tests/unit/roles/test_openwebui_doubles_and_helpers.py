"""The openwebui role's readiness helper and the Ollama chat double the stack and fleet scenarios use."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parents[3]
WAIT_READY = REPO / "roles/openwebui/files/openwebui_wait_ready.py"
LOCK = REPO / "roles/openwebui/files/requirements/open-webui-0.12.4-slim.txt"


def _load_chat_double():
    spec = importlib.util.spec_from_file_location("ollama_chat", REPO / "tests/doubles/ollama_chat/ollama_chat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ollama_chat = _load_chat_double()
fake_ollama = ollama_chat.fake_ollama


@pytest.fixture(name="double")
def double_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(fake_ollama, "FakeOllamaServer", ollama_chat.ChatServer)
    with fake_ollama.serve_in_thread(tmp_path, step_delay=0) as fake:
        _post(fake.url, "/api/pull", {"model": "tinyllama", "stream": False})
        yield fake


def _post(url: str, path: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("stream", [False, True])
def test_chat_answers_with_the_model_and_the_question(double, stream):
    status, raw = _post(
        double.url,
        "/api/chat",
        {"model": "tinyllama", "messages": [{"role": "user", "content": "ping 7"}], "stream": stream},
    )
    assert status == 200
    messages = [json.loads(line) for line in raw.decode().splitlines()]
    assert "".join(m["message"]["content"] for m in messages) == "ollama-chat-double (tinyllama:latest): ping 7"
    assert messages[-1]["done"] is True and messages[-1]["done_reason"] == "stop"
    assert all(m["done"] is False for m in messages[:-1])
    assert len(messages) == (3 if stream else 1)


def test_generate_and_embeddings(double):
    status, raw = _post(double.url, "/api/generate", {"model": "tinyllama", "prompt": "hi", "stream": False})
    assert status == 200 and json.loads(raw)["response"] == "ollama-chat-double (tinyllama:latest): hi"
    status, raw = _post(double.url, "/api/embed", {"model": "tinyllama", "input": ["a", "b"]})
    embeddings = json.loads(raw)["embeddings"]
    assert status == 200 and len(embeddings) == 2 and len(embeddings[0]) == 8 and embeddings[0] != embeddings[1]
    # Deterministic: the same text, the same vector, on every endpoint.
    status, raw = _post(double.url, "/api/embeddings", {"model": "tinyllama", "prompt": "a"})
    assert status == 200 and json.loads(raw)["embedding"] == embeddings[0]


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/embed"])
def test_models_that_were_not_pulled_are_not_found(double, path):
    status, raw = _post(double.url, path, {"model": "llama3.2", "messages": [], "prompt": "", "input": ""})
    assert (status, json.loads(raw)) == (404, {"error": "model 'llama3.2' not found"})


def test_the_rest_is_fake_ollama(double):
    with urllib.request.urlopen(double.url + "/api/tags", timeout=10) as response:
        assert [m["name"] for m in json.load(response)["models"]] == ["tinyllama:latest"]


class _Flaky(BaseHTTPRequestHandler):
    """/health answers 503 twice, then 200; /ready always 200."""

    calls: ClassVar[dict[str, int]] = {}

    def do_GET(self):
        self.calls[self.path] = self.calls.get(self.path, 0) + 1
        ok = self.path != "/health" or self.calls[self.path] > 2
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, format, *args):
        pass


def test_wait_ready_returns_once_every_url_answers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        done = subprocess.run(
            [sys.executable, str(WAIT_READY), f"{base}/health", f"{base}/ready"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert "ready after" in done.stdout
    assert _Flaky.calls == {"/health": 3, "/ready": 1}


def test_wait_ready_fails_at_once_when_the_server_exits_first():
    """$MAINPID (set by systemd for ExecStartPost) names a process that is gone: no waiting for the timeout."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(WAIT_READY), "http://127.0.0.1:9/health"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MAINPID": gone.stdout.strip()},
        check=False,
    )
    assert done.returncode == 1
    assert f"the server (PID {gone.stdout.strip()}) exited before" in done.stdout
    assert time.monotonic() - started < 10


def test_wait_ready_needs_a_url():
    done = subprocess.run([sys.executable, str(WAIT_READY)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage" in done.stderr


def test_slim_lock_pins_everything_and_leaves_torch_out():
    lines = [line.split(";")[0].strip() for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    names = [line.split("==")[0].lower() for line in lines]
    assert all("==" in line for line in lines)
    assert "open-webui" in names and lines[names.index("open-webui")] == "open-webui==0.12.4"
    assert not [n for n in names if n in ("torch", "triton") or n.startswith(("nvidia-", "cuda-"))]
    assert {"sentence-transformers", "transformers", "accelerate"} <= set(names)
