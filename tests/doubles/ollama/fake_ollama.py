# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""fake_ollama: a TEST DOUBLE of the Ollama server and CLI. It is NOT Ollama and runs no models.

It speaks the subset of the Ollama HTTP API that the selfhosted.ai_stack collection uses, so roles
and modules can be tested where ollama.com and GitHub are unreachable. Pulls stream realistic NDJSON
progress, but only tiny placeholder blobs are written. See README.md next to this file.

Single file, Python 3 standard library only (Debian 12 / Ubuntu 24.04 system python3). The release
archive built by build-archive.sh installs this file as ``bin/ollama``:

    ollama serve                  run the API server on OLLAMA_HOST (default 127.0.0.1:11434)
    ollama -v | --version         "ollama version is X" (same wording and warnings as the real CLI)
    ollama list | ls              table of local models, read from the server
    ollama pull NAME / rm NAME    pull or delete through the server
    ollama ps                     always empty: nothing ever runs

Tests can also import it and use ``serve_in_thread()``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TextIO
from urllib.parse import urlsplit

# Reported when neither FAKE_OLLAMA_VERSION nor <prefix>/lib/ollama/VERSION (written by
# build-archive.sh) says otherwise; real development builds of Ollama report 0.0.0 too.
DEFAULT_VERSION = "0.0.0"
DEFAULT_PORT = "11434"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Model names with these prefixes (the model part, e.g. "stall-test:latest") need no catalogue
# entry: they always exist and misbehave on purpose. README.md documents them.
FAIL_MIDSTREAM_PREFIX = "fail-midstream"
STALL_PREFIX = "stall"
TRUNCATE_PREFIX = "truncate"

MIDSTREAM_ERROR = "digest mismatch, file must be downloaded again: want sha256:{want}, got sha256:{got}"
UNKNOWN_MODEL_ERROR = "pull model manifest: file does not exist"

# Sizes in bytes, close to what the real models weigh (ollama.com/library, 2025/2026).
BUILTIN_CATALOGUE: dict[str, dict[str, Any]] = {
    "deepseek-r1:8b-0528-qwen3-q4_K_M": {
        "size": 5225376047,
        "family": "qwen3",
        "parameter_size": "8.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "thinking"],
    },
    "qwen2.5vl:7b": {
        "size": 5969245856,
        "family": "qwen25vl",
        "parameter_size": "8.3B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "vision"],
    },
    "snowflake-arctic-embed2:latest": {
        "size": 1160296718,
        "family": "bert",
        "parameter_size": "566.70M",
        "quantization_level": "F16",
        "capabilities": ["embedding"],
    },
    "llama3.2:latest": {
        "size": 2019393189,
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools"],
    },
    "tinyllama:latest": {
        "size": 637700138,
        "family": "llama",
        "parameter_size": "1B",
        "quantization_level": "Q4_0",
        "capabilities": ["completion"],
    },
}
INJECTION_ENTRY: dict[str, Any] = {
    "size": 734003200,
    "family": "llama",
    "parameter_size": "1B",
    "quantization_level": "Q4_0",
    "capabilities": ["completion"],
}

# Small layers every fake model gets besides the weights (and the config blob).
SMALL_LAYERS = (("template", 1429), ("license", 1065), ("params", 148))
MEDIA_PREFIX = "application/vnd.ollama.image."
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"
MANIFEST_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"


# --------------------------------------------------------------------------------------------------
# Names (a copy of Ollama's rules; plugins/module_utils/_ollama_api.py has the collection's version)
# --------------------------------------------------------------------------------------------------
def _valid_part(kind: str, value: str) -> bool:
    limit = 350 if kind == "host" else 80
    if not value or len(value) > limit or not value.isascii() or not (value[0].isalnum() or value[0] == "_"):
        return False
    allowed = "_-" + ("" if kind == "namespace" else ".") + (":" if kind == "host" else "")
    return all(char.isalnum() or char in allowed for char in value[1:])


def parse_name(name: str) -> tuple[str, str, str, str] | None:
    """(host, namespace, model, tag) with Ollama's defaults, or None when Ollama would reject it."""
    rest, tag, host, namespace = name, DEFAULT_TAG, None, DEFAULT_NAMESPACE
    if rest.rfind(":") > rest.rfind("/"):
        rest, _sep, tag = rest.rpartition(":")
    model = rest
    if "/" in rest:
        rest, _sep, model = rest.rpartition("/")
        namespace = rest
        if "/" in rest:
            host, _sep, namespace = rest.rpartition("/")
            host = host.split("://", 1)[-1]
    parts = (DEFAULT_HOST if host is None else host, namespace, model, tag)
    kinds = ("host", "namespace", "model", "tag")
    if not all(_valid_part(kind, value) for kind, value in zip(kinds, parts, strict=True)):
        return None
    return parts


def display(parts: tuple[str, str, str, str]) -> str:
    host, namespace, model, tag = parts
    if host.lower() != DEFAULT_HOST:
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace.lower() != DEFAULT_NAMESPACE:
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


def name_key(name: str) -> str | None:
    parts = parse_name(name)
    return None if parts is None else display(parts).lower()


# --------------------------------------------------------------------------------------------------
# OLLAMA_HOST, same rules as Ollama's envconfig.Host()
# --------------------------------------------------------------------------------------------------
def parse_ollama_host(value: str) -> tuple[str, str, int]:
    """(scheme, host, port). "127.0.0.1:11434", "0.0.0.0", "http://h:1" all work; bad ports fall back."""
    value = value.strip()
    scheme, sep, hostport = value.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", value
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport = hostport.partition("/")[0]
    if hostport.startswith("[") and "]:" in hostport:
        host, _sep, port = hostport[1:].partition("]:")
    elif hostport.count(":") == 1:
        host, _sep, port = hostport.partition(":")
    else:
        host, port = hostport.strip("[]") or "127.0.0.1", default_port
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    return scheme, host, int(port)


def client_address_for(value: str) -> tuple[str, int]:
    """Where the CLI connects: an unspecified bind address means this machine."""
    _scheme, host, port = parse_ollama_host(value)
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, port


# --------------------------------------------------------------------------------------------------
# Configuration and the model store on disk
# --------------------------------------------------------------------------------------------------
def resolve_version() -> str:
    """FAKE_OLLAMA_VERSION, else <prefix>/lib/ollama/VERSION next to <prefix>/bin/ollama, else the default."""
    if os.environ.get("FAKE_OLLAMA_VERSION"):
        return os.environ["FAKE_OLLAMA_VERSION"].strip()
    here = os.path.dirname(os.path.realpath(__file__))
    try:
        with open(os.path.join(here, os.pardir, "lib", "ollama", "VERSION"), encoding="utf-8") as handle:
            return handle.read().strip() or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


def load_catalogue(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Built-in models, plus (overriding) those of a JSON file {"name:tag": {"size": N, ...}}."""
    entries = dict(BUILTIN_CATALOGUE)
    if path:
        with open(path, encoding="utf-8") as handle:
            entries.update(json.load(handle))
    catalogue = {}
    for name, entry in entries.items():
        parts = parse_name(name)
        if parts is None or not isinstance(entry.get("size"), int):
            raise ValueError(f"bad catalogue entry {name!r}: need a valid name and an integer 'size'")
        catalogue[display(parts).lower()] = dict(entry, name=display(parts))
    return catalogue


class Config:
    """Everything the server needs; from_env() reads the documented environment variables."""

    def __init__(
        self,
        models_dir: str,
        version: str = DEFAULT_VERSION,
        catalogue: dict[str, dict[str, Any]] | None = None,
        stall_attempts: int = 1,
        stall_seconds: float = 5.0,
        truncate_attempts: int = 1,
        step_delay: float = 0.02,
    ) -> None:
        self.models_dir = str(models_dir)
        self.version = version
        self.catalogue = load_catalogue() if catalogue is None else catalogue
        self.stall_attempts = stall_attempts
        self.stall_seconds = stall_seconds
        self.truncate_attempts = truncate_attempts
        self.step_delay = step_delay

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        models = env.get("OLLAMA_MODELS") or os.path.join(os.path.expanduser("~"), ".ollama", "models")
        return cls(
            models_dir=models,
            version=resolve_version(),
            catalogue=load_catalogue(env.get("FAKE_OLLAMA_CATALOGUE")),
            stall_attempts=int(env.get("FAKE_OLLAMA_STALL_ATTEMPTS", "1")),
            stall_seconds=float(env.get("FAKE_OLLAMA_STALL_SECONDS", "5")),
            truncate_attempts=int(env.get("FAKE_OLLAMA_TRUNCATE_ATTEMPTS", "1")),
            step_delay=float(env.get("FAKE_OLLAMA_STEP_DELAY", "0.02")),
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat()


class Store:
    """Manifests under manifests/<host>/<namespace>/<model>/<tag> (the real layout), tiny blobs."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.manifest_root = os.path.join(root, "manifests")
        self.blob_root = os.path.join(root, "blobs")

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blob_root, digest.replace(":", "-"))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def write_blob(self, digest: str, data: bytes) -> None:
        os.makedirs(self.blob_root, exist_ok=True)
        with open(self.blob_path(digest), "wb") as handle:
            handle.write(data)

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as handle:
            return handle.read()

    def manifests(self) -> Iterator[tuple[tuple[str, str, str, str], str]]:
        if not os.path.isdir(self.manifest_root):
            return
        for dirpath, _dirs, files in os.walk(self.manifest_root):
            rel = os.path.relpath(dirpath, self.manifest_root).split(os.sep)
            if len(rel) != 3:
                continue
            for tag in sorted(files):
                yield (rel[0], rel[1], rel[2], tag), os.path.join(dirpath, tag)

    def find(self, key: str) -> tuple[tuple[str, str, str, str], str] | None:
        for parts, path in self.manifests():
            if display(parts).lower() == key:
                return parts, path
        return None

    def write_manifest(self, parts: tuple[str, str, str, str], manifest: dict[str, Any]) -> None:
        path = os.path.join(self.manifest_root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(manifest, handle)
        os.replace(path + ".tmp", path)

    def delete(self, path: str) -> None:
        os.remove(path)
        directory = os.path.dirname(path)
        while directory != self.manifest_root and not os.listdir(directory):
            os.rmdir(directory)
            directory = os.path.dirname(directory)
        self._prune_blobs()

    def _prune_blobs(self) -> None:
        used = set()
        for _parts, path in self.manifests():
            manifest = self.load(path)
            used.add(manifest["config"]["digest"])
            used.update(layer["digest"] for layer in manifest["layers"])
        if os.path.isdir(self.blob_root):
            for blob in os.listdir(self.blob_root):
                if blob.replace("-", ":", 1) not in used:
                    os.remove(os.path.join(self.blob_root, blob))

    @staticmethod
    def load(path: str) -> dict[str, Any]:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def describe(self, parts: tuple[str, str, str, str], path: str) -> dict[str, Any]:
        """One /api/tags entry, in the real shape."""
        with open(path, "rb") as handle:
            raw = handle.read()
        manifest = json.loads(raw)
        config = json.loads(self.read_blob(manifest["config"]["digest"]))
        size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        name = display(parts)
        return {
            "name": name,
            "model": name,
            "modified_at": _iso(os.path.getmtime(path)),
            "size": size,
            "digest": _sha256(raw),
            "details": {
                "parent_model": "",
                "format": config.get("model_format", "gguf"),
                "family": config.get("model_family", ""),
                "families": config.get("model_families") or [],
                "parameter_size": config.get("model_type", ""),
                "quantization_level": config.get("file_type", ""),
            },
            "_capabilities": config.get("capabilities") or ["completion"],
        }


# --------------------------------------------------------------------------------------------------
# Pulls: a generator of progress messages; the HTTP layer streams or collects them
# --------------------------------------------------------------------------------------------------
class FakeOllama:
    """Server state shared by all request threads."""

    def __init__(self, config: Config, log: TextIO | None = None) -> None:
        self.config = config
        self.log_stream = log  # None: keep log lines in self.log_lines (tests), else write them there
        self.log_lines: list[str] = []
        self.store = Store(config.models_dir)
        self.lock = threading.Lock()
        self.stop = threading.Event()  # set on shutdown: ends stalls early
        self.attempts: dict[str, int] = {}  # pull requests per model key (failure injection)
        self.partial: dict[str, int] = {}  # digest -> bytes "already downloaded" (resume)
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body) for tests
        self.url = ""

    def write_log(self, line: str) -> None:
        if self.log_stream is None:
            self.log_lines.append(line)
        else:
            self.log_stream.write(line + "\n")
            self.log_stream.flush()

    def _entry(self, parts: tuple[str, str, str, str]) -> dict[str, Any] | None:
        """Catalogue entry, or a synthetic one for the failure-injection names."""
        key = display(parts).lower()
        if key in self.config.catalogue:
            return self.config.catalogue[key]
        if parts[2].lower().startswith((FAIL_MIDSTREAM_PREFIX, STALL_PREFIX, TRUNCATE_PREFIX)):
            return dict(INJECTION_ENTRY, name=display(parts))
        return None

    def _layers(self, entry: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """Layers with deterministic digests (change 'revision' in a catalogue to get new ones)."""
        seed = f"{entry['name'].lower()}#{entry.get('revision', 0)}"
        config = json.dumps(
            {
                "model_format": entry.get("format", "gguf"),
                "model_family": entry.get("family", ""),
                "model_families": [entry.get("family", "")],
                "model_type": entry.get("parameter_size", ""),
                "file_type": entry.get("quantization_level", ""),
                "capabilities": entry.get("capabilities", ["completion"]),
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "fake_ollama": seed,
            },
            sort_keys=True,
        ).encode()
        weights = entry["size"] - len(config) - sum(size for _kind, size in SMALL_LAYERS)
        # Blobs are content-addressed like Ollama's: each placeholder is stored under its own sha256
        # (the manifest keeps the model's real-looking size, so /api/tags reports gigabytes).
        layers, contents = [], {}
        for kind, size in [("model", max(weights, 1)), *SMALL_LAYERS]:
            placeholder = f"fake-ollama blob {seed}/{kind}\n".encode()
            digest = "sha256:" + _sha256(placeholder)
            contents[digest] = placeholder
            layers.append({"mediaType": MEDIA_PREFIX + kind, "digest": digest, "size": size})
        contents["sha256:" + _sha256(config)] = config
        layers.append({"mediaType": CONFIG_MEDIA, "digest": "sha256:" + _sha256(config), "size": len(config)})
        return layers, contents

    def pull(self, name: str, alive: Callable[[], bool] = lambda: True) -> Iterator[dict[str, Any]]:
        """Yield the NDJSON messages of one pull, like Ollama's PullModel.

        ``alive`` tells whether the client is still listening; like Ollama (whose pull is cancelled
        with the request), an abandoned pull stops and keeps only its partial download.
        """
        parts = parse_name(name)
        yield {"status": "pulling manifest"}
        entry = None if parts is None else self._entry(parts)
        if entry is None:
            yield {"error": UNKNOWN_MODEL_ERROR}
            return
        key = entry["name"].lower()
        with self.lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        layers, contents = self._layers(entry)
        model = entry["name"].rpartition("/")[2].lower()
        for index, layer in enumerate(layers):
            failure = self._failure(model, attempt) if index == 0 else None
            yield from self._pull_layer(layer, contents[layer["digest"]], failure)
            if failure in ("error", "truncate") or not alive():
                return
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA, "config": layers[-1], "layers": layers[:-1]}
        with self.lock:
            self.store.write_manifest(parse_name(entry["name"]) or parts, manifest)
        yield {"status": "success"}

    def _failure(self, model: str, attempt: int) -> str | None:
        if model.startswith(FAIL_MIDSTREAM_PREFIX):
            return "error"
        if model.startswith(STALL_PREFIX) and attempt <= self.config.stall_attempts:
            return "stall"
        if model.startswith(TRUNCATE_PREFIX) and attempt <= self.config.truncate_attempts:
            return "truncate"
        return None

    def _pull_layer(self, layer: dict[str, Any], content: bytes, failure: str | None) -> Iterator[dict]:
        digest, total = layer["digest"], layer["size"]
        status = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total}
        if self.store.has_blob(digest):
            yield dict(status, completed=total)  # already there: Ollama reports it as complete at once
            return
        done = self.partial.get(digest, 0)
        yield dict(status, completed=done) if done else status
        steps = 4 if total > 1_000_000 else 1  # only big blobs take long enough to report progress
        for step in range(1, steps + 1):
            self._sleep(self.config.step_delay)
            done = max(done, total * step // steps)
            if failure and step == (steps + 1) // 2:
                self.partial[digest] = done  # kept for the next attempt, as Ollama keeps partial blobs
                yield dict(status, completed=done)
                if failure == "error":
                    yield {"error": MIDSTREAM_ERROR.format(want=digest[7:], got=_sha256(digest.encode()))}
                    return
                if failure == "truncate":
                    return
                self._sleep(self.config.stall_seconds)  # "stall": silence long enough to trip a client timeout
                failure = None
                continue
            yield dict(status, completed=done)
        self.store.write_blob(digest, content)
        self.partial.pop(digest, None)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)

    # -- other endpoints ---------------------------------------------------------------------------
    def tags(self) -> list[dict[str, Any]]:
        models = [self.store.describe(parts, path) for parts, path in self.store.manifests()]
        for model in models:
            model.pop("_capabilities")
        return sorted(models, key=lambda model: model["modified_at"], reverse=True)

    def show(self, name: str) -> dict[str, Any] | None:
        key = name_key(name)
        found = None if key is None else self.store.find(key)
        if found is None:
            return None
        info = self.store.describe(*found)
        family = info["details"]["family"]
        return {
            "license": "Fake license text (fake_ollama test double).",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {info["name"]}\n',
            "parameters": 'stop "<|end|>"',
            "template": "{{ .Prompt }}",
            "details": info["details"],
            "model_info": {"general.architecture": family, "general.basename": info["name"].rsplit(":", maxsplit=1)[0]},
            "capabilities": info["_capabilities"],
            "modified_at": info["modified_at"],
        }

    def delete(self, name: str) -> bool:
        key = name_key(name)
        with self.lock:
            found = None if key is None else self.store.find(key)
            if found is None:
                return False
            self.store.delete(found[1])
        return True


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------
def _compact(data: Any) -> bytes:
    """JSON the way Go's encoder writes it (no spaces), so raw-output checks see Ollama's bytes."""
    return json.dumps(data, separators=(",", ":")).encode()


def _go_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.6f}s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.6f}ms"
    return f"{seconds * 1_000_000:.3f}us"


class Handler(BaseHTTPRequestHandler):
    """Routes of the documented subset; everything else is gin's plain-text 404."""

    server_version = "fake-ollama"
    timeout = 300  # seconds an idle keep-alive connection may stay open
    protocol_version = "HTTP/1.1"  # so the pull stream is chunked, like Ollama's
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/"): "root",
        ("HEAD", "/"): "root",
        ("GET", "/api/version"): "version",
        ("HEAD", "/api/version"): "version",
        ("GET", "/api/tags"): "tags",
        ("HEAD", "/api/tags"): "tags",
        ("GET", "/api/ps"): "ps",
        ("POST", "/api/pull"): "pull",
        ("POST", "/api/show"): "show",
        ("DELETE", "/api/delete"): "delete",
    }

    @property
    def fake(self) -> FakeOllama:
        return self.server.fake  # type: ignore[attr-defined]  # set by FakeOllamaServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        self.status = 0
        path = urlsplit(self.path).path
        route = self.routes.get((method, path))
        try:
            if route is None:
                self._read_body()
                self._send(404, b"404 page not found", "text/plain")
            else:
                getattr(self, "route_" + route)()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout, Ctrl-C): nothing to answer
        finally:
            self._log_access(method, path, time.monotonic() - started)

    # -- plumbing ----------------------------------------------------------------------------------
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.status = int(code) if str(code).isdigit() else 0

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        self.fake.write_log(f"time={_iso(time.time())} level=WARN source=fake_ollama.py msg={format % args!r}")

    def _log_access(self, method: str, path: str, seconds: float) -> None:
        now = datetime.datetime.now().strftime("%Y/%m/%d - %H:%M:%S")
        client = self.client_address[0]
        self.fake.write_log(
            f'[GIN] {now} | {self.status:3d} | {_go_duration(seconds):>14} | {client:>15} | {method:<7} "{path}"'
        )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _request_json(self) -> dict[str, Any] | None:
        """The JSON body, or None after answering 400 the way Ollama does."""
        raw = self._read_body()
        if not raw.strip():
            self._send_json(400, {"error": "missing request body"})
            return None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self._send_json(400, {"error": f"invalid character in request body: {exc}"})
            return None
        if not isinstance(body, dict):
            self._send_json(400, {"error": "json: cannot unmarshal into Go value of type api.Request"})
            return None
        self.fake.requests.append((self.command, self.path, body))
        return body

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Any) -> None:
        self._send(status, _compact(data), "application/json; charset=utf-8")

    def _client_alive(self) -> bool:
        """False once the client closed its end (it timed out); a pending read would return b""."""
        try:
            readable, _w, _x = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- routes ------------------------------------------------------------------------------------
    def route_root(self) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def route_version(self) -> None:
        self._send_json(200, {"version": self.fake.config.version})

    def route_tags(self) -> None:
        self._send_json(200, {"models": self.fake.tags()})

    def route_ps(self) -> None:
        self._send_json(200, {"models": []})

    def route_show(self) -> None:
        body = self._request_json()
        if body is None:
            return
        name = str(body.get("model") or body.get("name") or "")
        if not name:
            self._send_json(400, {"error": "model is required"})
            return
        info = self.fake.show(name)
        if info is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
        else:
            self._send_json(200, info)

    def route_delete(self) -> None:
        body = self._request_json()
        if body is None:
            return
        name = str(body.get("model") or body.get("name") or "")
        if name_key(name) is None:
            self._send_json(400, {"error": f"name {name!r} is invalid"})
        elif self.fake.delete(name):
            self._send(200, b"", "application/json; charset=utf-8")
        else:
            self._send_json(404, {"error": f"model '{name}' not found"})

    def route_pull(self) -> None:
        body = self._request_json()
        if body is None:
            return
        name = str(body.get("model") or body.get("name") or "")  # "name" is the legacy field
        if name_key(name) is None:
            self._send_json(400, {"error": "invalid model name"})  # refused before any output
            return
        if body.get("stream", True) is False:
            self._pull_blocking(name)
        else:
            self._pull_streaming(name)

    def _pull_blocking(self, name: str) -> None:
        last: dict[str, Any] = {}
        for message in self.fake.pull(name):
            last = message
            if "error" in message:
                self._send_json(500, {"error": message["error"]})
                return
        if last.get("status") == "success":
            self._send_json(200, last)
        else:
            self._send_json(500, {"error": "pull ended unexpectedly"})

    def _pull_streaming(self, name: str) -> None:
        # HTTP 200 goes out before the pull starts: from here on, failures can only be NDJSON lines.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for message in self.fake.pull(name, alive=self._client_alive):
            self._chunk(_compact(message) + b"\n")
        self._chunk(b"")  # the terminating zero-length chunk: a clean end of the stream


class FakeOllamaServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # An idle keep-alive client must not hold up "systemctl stop"; serve_in_thread() turns this on
    # so that tests end only after every request thread has finished.
    block_on_close = False
    # Doubles that speak more of the API (tests/doubles/ollama_chat) put their handler here.
    handler_class: type[Handler] = Handler

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.fake = fake
        super().__init__(address, self.handler_class)


@contextlib.contextmanager
def serve_in_thread(models_dir: str, log: TextIO | None = None, **options: Any) -> Iterator[FakeOllama]:
    """Run a server on an ephemeral 127.0.0.1 port for the duration of a with-block (tests).

    ``options`` are Config arguments; log lines go to ``log`` or, by default, to ``fake.log_lines``.
    """
    fake = FakeOllama(Config(models_dir=str(models_dir), **options), log=log)
    server = FakeOllamaServer(("127.0.0.1", 0), fake)
    server.block_on_close = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
USAGE = """Large language model runner (fake_ollama test double)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information
"""


class CliError(Exception):
    pass


def _api(method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """Talk to the server on OLLAMA_HOST directly (never through a proxy, like the real CLI on loopback)."""
    host, port = client_address_for(os.environ.get("OLLAMA_HOST", ""))
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        return connection.getresponse(), connection
    except OSError as exc:
        connection.close()
        raise CliError("could not connect to ollama server, run 'ollama serve' to start it") from exc


def _api_json(method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    response, connection = _api(method, path, body, timeout)
    with contextlib.closing(connection):
        raw = response.read()
    data = json.loads(raw) if raw.strip() else {}
    if response.status >= 400:
        raise CliError(data.get("error") or f"HTTP {response.status}")
    return data


def human_bytes(size: int) -> str:
    for unit, factor in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= factor:
            value = size / factor
            return f"{int(value)} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def human_time(iso: str) -> str:
    then = datetime.datetime.fromisoformat(iso)
    seconds = int((datetime.datetime.now(then.tzinfo) - then).total_seconds())
    for unit, length in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    if seconds < 1:
        return "Less than a second ago"
    return f"{seconds} second{'s' if seconds > 1 else ''} ago"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(len(rows[0]) - 1)]
    lines = ["".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + row[-1] for row in rows]
    return "\n".join(lines)


def cmd_version(_args: list[str]) -> int:
    # Same logic as the real CLI: ask the server, warn when it is unreachable or differs.
    client_version = resolve_version()
    try:
        server_version = _api_json("GET", "/api/version", timeout=3).get("version", "")
    except (CliError, ValueError):
        server_version = ""
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != client_version:
        print(f"Warning: client version is {client_version}")
    return 0


def cmd_list(_args: list[str]) -> int:
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for model in _api_json("GET", "/api/tags")["models"]:
        rows.append([model["name"], model["digest"][:12], human_bytes(model["size"]), human_time(model["modified_at"])])
    print(_table(rows))
    return 0


def cmd_ps(_args: list[str]) -> int:
    print(_table([["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]))
    return 0


def cmd_rm(args: list[str]) -> int:
    if not args:
        raise CliError("requires at least 1 arg(s), only received 0")
    for name in args:
        _api_json("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


def cmd_pull(args: list[str]) -> int:
    if len(args) != 1:
        raise CliError(f"accepts 1 arg(s), received {len(args)}")
    response, connection = _api("POST", "/api/pull", {"model": args[0], "stream": True}, timeout=600)
    with contextlib.closing(connection):
        if response.status >= 400:
            raise CliError(json.loads(response.read() or b"{}").get("error") or f"HTTP {response.status}")
        shown = set()
        for line in iter(response.readline, b""):
            message = json.loads(line)
            if "error" in message:
                raise CliError(message["error"])
            status = message.get("status", "")
            if status not in shown:
                shown.add(status)
                print(status)
    return 0


def cmd_serve(_args: list[str]) -> int:
    config = Config.from_env()
    os.makedirs(config.models_dir, exist_ok=True)
    _scheme, host, port = parse_ollama_host(os.environ.get("OLLAMA_HOST", ""))
    fake = FakeOllama(config, log=sys.stderr)
    try:
        server = FakeOllamaServer((host, port), fake)
    except OSError as exc:
        raise CliError(f"listen tcp {host}:{port}: {exc.strerror}") from exc
    # systemd stops services with SIGTERM: leave serve_forever() cleanly instead of dying mid-write.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    fake.write_log(
        f"time={_iso(time.time())} level=INFO source=fake_ollama.py "
        f'msg="Listening on {host}:{port} (version {config.version})" models={config.models_dir} '
        'note="fake_ollama test double, not the real Ollama"'
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop.set()
        server.server_close()
    return 0


COMMANDS = {"serve": cmd_serve, "list": cmd_list, "ls": cmd_list, "ps": cmd_ps, "pull": cmd_pull, "rm": cmd_rm}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] in ("-v", "--version"):
        return cmd_version(args[1:])
    command = COMMANDS.get(args[0])
    if command is None:
        sys.stderr.write(f'Error: unknown command "{args[0]}" for "ollama"\n')
        return 1
    try:
        return command(args[1:])
    except CliError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
