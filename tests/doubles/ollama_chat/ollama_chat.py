# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""ollama_chat: the Ollama TEST DOUBLE (../ollama/fake_ollama.py) plus chat, generate and embeddings.

It is NOT Ollama and runs no models. Open WebUI talks to its Ollama backend through /api/tags,
/api/version, /api/chat (chat completions) and /api/embed (RAG embeddings); fake_ollama speaks the
first two, this file adds the others with canned, deterministic answers, so a test can prove that a
chat sent to Open WebUI reached "Ollama" and came back:

    POST /api/chat       {"model", "messages", "stream"}   -> "ollama-chat-double (<model>): <last user message>"
    POST /api/generate   {"model", "prompt", "stream"}     -> the same for the prompt
    POST /api/embed      {"model", "input"}                 -> 8-dimensional embeddings, one per input
    POST /api/embeddings {"model", "prompt"}                -> the legacy single embedding

Only pulled models answer (404 "model 'x' not found" otherwise, like Ollama). Streaming answers are
NDJSON in two chunks and a final "done" message, as Ollama sends them.

    OLLAMA_HOST=127.0.0.1:11434 OLLAMA_MODELS=/srv/models python3 ollama_chat.py serve

Every other command and variable is fake_ollama's (see its README.md). fake_ollama.py is looked for
next to this file first, then in ../ollama/ (the checkout's layout).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

ANSWER_PREFIX = "ollama-chat-double"
EMBEDDING_DIMENSIONS = 8


def _load_fake_ollama() -> Any:
    if "fake_ollama" in sys.modules:
        return sys.modules["fake_ollama"]
    here = Path(__file__).resolve().parent
    for candidate in (here / "fake_ollama.py", here.parent / "ollama" / "fake_ollama.py"):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("fake_ollama", candidate)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules["fake_ollama"] = module
            spec.loader.exec_module(module)
            return module
    raise SystemExit("ollama_chat: fake_ollama.py not found next to this file or in ../ollama/")


fake_ollama = _load_fake_ollama()


def answer_for(model: str, text: str) -> str:
    """The canned answer: names the model and repeats what was asked, so tests can match it."""
    return f"{ANSWER_PREFIX} ({model}): {text}"


def embedding_for(text: str) -> list[float]:
    """A deterministic unit-ish vector derived from the text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255.0, 6) for byte in digest[:EMBEDDING_DIMENSIONS]]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # OpenAI-style parts
                content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content)
    return ""


class ChatHandler(fake_ollama.Handler):
    routes: ClassVar[dict[tuple[str, str], str]] = {
        **fake_ollama.Handler.routes,
        ("POST", "/api/chat"): "chat",
        ("POST", "/api/generate"): "generate",
        ("POST", "/api/embed"): "embed",
        ("POST", "/api/embeddings"): "embeddings",
    }

    def _model(self, body: dict[str, Any]) -> str | None:
        """The model's display name, or None after answering 400/404 the way Ollama does."""
        name = str(body.get("model") or "")
        if not name:
            self._send_json(400, {"error": "model is required"})
            return None
        if fake_ollama.name_key(name) is None or self.fake.show(name) is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return None
        return fake_ollama.display(fake_ollama.parse_name(name))

    def _model_request(self) -> tuple[dict[str, Any], str] | None:
        """The request's JSON body and model, or None after answering the error the way Ollama does."""
        body = self._request_json()
        if body is None:
            return None
        model = self._model(body)
        if model is None:
            return None
        return body, model

    def _answer(self, model: str, text: str, key: str, wrap: Any, stream: bool) -> None:
        final = {
            "model": model,
            "created_at": _now(),
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000000,
            "load_duration": 1000,
            "prompt_eval_count": len(text.split()),
            "prompt_eval_duration": 1000,
            "eval_count": 3,
            "eval_duration": 1000,
        }
        self.fake.write_log(f'level=INFO source=ollama_chat.py msg="{key} answered" model={model}')
        if not stream:
            self._send_json(200, {"model": model, "created_at": final["created_at"], **wrap(text), **final})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(text) // 2
        for part in (text[:half], text[half:]):
            self._chunk(
                fake_ollama._compact({"model": model, "created_at": _now(), **wrap(part), "done": False}) + b"\n"
            )
        self._chunk(fake_ollama._compact({**final, **wrap("")}) + b"\n")
        self._chunk(b"")

    def route_chat(self) -> None:
        request = self._model_request()
        if request is None:
            return
        body, model = request
        text = answer_for(model, _last_user_text(body.get("messages")))
        self._answer(
            model, text, "chat", lambda t: {"message": {"role": "assistant", "content": t}}, body.get("stream", True)
        )

    def route_generate(self) -> None:
        request = self._model_request()
        if request is None:
            return
        body, model = request
        text = answer_for(model, str(body.get("prompt", "")))
        self._answer(model, text, "generate", lambda t: {"response": t}, body.get("stream", True))

    def route_embed(self) -> None:
        request = self._model_request()
        if request is None:
            return
        body, model = request
        inputs = body.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        self._send_json(200, {"model": model, "embeddings": [embedding_for(str(item)) for item in inputs]})

    def route_embeddings(self) -> None:
        request = self._model_request()
        if request is None:
            return
        body = request[0]
        self._send_json(200, {"embedding": embedding_for(str(body.get("prompt", "")))})


class ChatServer(fake_ollama.FakeOllamaServer):
    """fake_ollama's server with the chatting handler."""

    handler_class = ChatHandler


def main(argv: list[str] | None = None) -> int:
    # fake_ollama's CLI, with its server class swapped for the one that chats.
    fake_ollama.FakeOllamaServer = ChatServer
    return fake_ollama.main(argv)


if __name__ == "__main__":
    os.environ.setdefault("FAKE_OLLAMA_STEP_DELAY", "0")
    sys.exit(main())
