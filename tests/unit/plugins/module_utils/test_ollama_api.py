# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""Tests for the private Ollama client, run against the fake_ollama test double (a real HTTP server)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import fake_ollama  # the test double, registered by tests/unit/conftest.py
import pytest

from ansible_collections.selfhosted.ai_stack.plugins.module_utils import _ollama_api as api

DOUBLE_DIR = Path(__file__).resolve().parents[3] / "doubles" / "ollama"


@pytest.fixture
def fake(tmp_path: Path) -> Any:
    with fake_ollama.serve_in_thread(tmp_path / "models", step_delay=0, stall_seconds=3) as server:
        yield server


@pytest.fixture
def client(fake: Any) -> api.OllamaClient:
    return api.OllamaClient(fake.url, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama3.2", "llama3.2:latest"),
        ("llama3.2:latest", "llama3.2:latest"),
        ("registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest"),
        ("registry.ollama.ai/library/llama3.2", "llama3.2:latest"),
        ("library/llama3.2", "llama3.2:latest"),
        ("REGISTRY.OLLAMA.AI/Library/llama3.2:1b", "llama3.2:1b"),
        ("Llama3.2", "Llama3.2:latest"),  # display keeps the case, comparison ignores it
        ("deepseek-r1:8b-0528-qwen3-q4_K_M", "deepseek-r1:8b-0528-qwen3-q4_K_M"),
        ("qwen2.5vl:7b", "qwen2.5vl:7b"),
        ("snowflake-arctic-embed2", "snowflake-arctic-embed2:latest"),
        ("myuser/mymodel", "myuser/mymodel:latest"),
        ("registry.ollama.ai/myuser/mymodel:v2", "myuser/mymodel:v2"),
        ("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"),
        ("hf.co/org/repo", "hf.co/org/repo:latest"),
        ("https://hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"),
        ("host:5000/ns/model", "host:5000/ns/model:latest"),  # ":5000" is a port, not a tag
        ("host:5000/ns/model:v1", "host:5000/ns/model:v1"),
        ("example.com/library/model", "example.com/library/model:latest"),  # library kept on other hosts
    ],
)
def test_normalize_model_name(name: str, expected: str) -> None:
    assert api.normalize_model_name(name) == expected


@pytest.mark.parametrize(
    "other",
    ["llama3.2", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", "Llama3.2", "LLAMA3.2:LATEST"],
)
def test_same_model_equivalent_spellings(other: str) -> None:
    assert api.same_model("llama3.2", other)


@pytest.mark.parametrize("other", ["llama3.2:1b", "myns/llama3.2", "hf.co/library/llama3.2", "llama3"])
def test_same_model_different_models(other: str) -> None:
    assert not api.same_model("llama3.2", other)


@pytest.mark.parametrize(
    "name",
    ["", "llama 3", "model:", ":tag", "/model", "ns//model", "a/b/c/d", "-model", "ns.dot/model", "m@sha256:abc", "ü"],
)
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid model name"):
        api.normalize_model_name(name)


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        api.normalize_model_name(3)  # type: ignore[arg-type]


def test_find_model_matches_normalised_and_case_insensitively() -> None:
    models = [{"name": "hf.co/org/repo:Q4_K_M"}, {"name": "llama3.2:latest"}, {"name": "not a valid name"}]
    assert api.find_model(models, "registry.ollama.ai/library/LLAMA3.2") == {"name": "llama3.2:latest"}
    assert api.find_model(models, "hf.co/org/repo:q4_k_m") == {"name": "hf.co/org/repo:Q4_K_M"}
    assert api.find_model(models, "tinyllama") is None


# --------------------------------------------------------------------------------------------------
# Host / base URL / proxies
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("gpu01", "http://gpu01:11434"),
        (":8080", "http://127.0.0.1:8080"),
        ("", "http://127.0.0.1:11434"),
        ("http://gpu01", "http://gpu01:80"),  # like OLLAMA_HOST: an explicit scheme brings its default port
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("https://proxy.example.com/ollama/", "https://proxy.example.com:443/ollama"),
        ("[::1]:11434", "http://[::1]:11434"),
        ("::1", "http://[::1]:11434"),
    ],
)
def test_ollama_base_url(host: str, url: str) -> None:
    assert api.ollama_base_url(host) == url


@pytest.mark.parametrize("host", ["ftp://h:21", "127.0.0.1:99999", "127.0.0.1:port"])
def test_ollama_base_url_rejects(host: str) -> None:
    with pytest.raises(ValueError):
        api.ollama_base_url(host)


@pytest.mark.parametrize(
    ("url", "proxied"),
    [
        ("http://127.0.0.1:11434", False),
        ("http://127.1.2.3:11434", False),
        ("http://localhost:11434", False),
        ("http://[::1]:11434", False),
        ("http://0.0.0.0:11434", False),
        ("http://gpu01.example.com:11434", True),
        ("https://10.0.0.5:443", True),
    ],
)
def test_loopback_bypasses_proxy(url: str, proxied: bool) -> None:
    assert api.OllamaClient(url).use_proxy is proxied


def test_proxy_env_is_ignored_for_loopback(fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_proxy = f"http://127.0.0.1:{_free_port()}"
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, dead_proxy)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert api.OllamaClient(fake.url, timeout=5).version() == "0.0.0"
    # The same request forced through the (dead) proxy fails: the bypass above is real.
    with pytest.raises(api.OllamaTransientError):
        api.OllamaClient(fake.url, timeout=5, use_proxy=True).version()
    # urllib honours no_proxy when the proxy is in use.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    assert api.OllamaClient(fake.url, timeout=5, use_proxy=True).version() == "0.0.0"


# --------------------------------------------------------------------------------------------------
# Client against the fake server
# --------------------------------------------------------------------------------------------------
def test_version_and_empty_list(client: api.OllamaClient) -> None:
    assert client.version() == "0.0.0"
    assert client.list_models() == []


def test_pull_show_delete_cycle(client: api.OllamaClient, fake: Any) -> None:
    seen: list[dict[str, Any]] = []
    assert client.pull("llama3.2", on_progress=seen.append) == {"status": "success"}
    statuses = [line["status"] for line in seen]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert any(line.get("completed") == line.get("total") and "digest" in line for line in seen)
    assert fake.requests[-1][2] == {"model": "llama3.2", "insecure": False, "stream": True}

    entry = client.find_model("registry.ollama.ai/library/Llama3.2:latest")
    assert entry is not None
    assert entry["name"] == "llama3.2:latest"
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    assert entry["size"] == fake_ollama.BUILTIN_CATALOGUE["llama3.2:latest"]["size"]
    assert entry["details"]["quantization_level"] == "Q4_K_M"

    shown = client.show("llama3.2")
    assert shown is not None and "completion" in shown["capabilities"]
    client.delete("llama3.2")
    assert client.list_models() == []
    assert client.show("llama3.2") is None
    with pytest.raises(api.OllamaNotFoundError, match=r"model 'llama3\.2' not found") as info:
        client.delete("llama3.2")
    assert info.value.status == 404


def test_unknown_model_fails_mid_stream(client: api.OllamaClient) -> None:
    with pytest.raises(api.OllamaError, match="pull model manifest: file does not exist") as info:
        client.pull("no-such-model")
    assert not isinstance(info.value, api.OllamaTransientError)  # Ollama's verdict: no point retrying
    assert info.value.status is None  # HTTP said 200; the error came in the stream


def test_midstream_error_after_http_200(client: api.OllamaClient) -> None:
    seen: list[dict[str, Any]] = []
    with pytest.raises(api.OllamaError, match="digest mismatch") as info:
        client.pull("fail-midstream", on_progress=seen.append)
    assert not isinstance(info.value, api.OllamaTransientError)
    assert any("completed" in line for line in seen)  # progress arrived before the error
    assert client.list_models() == []


def test_invalid_name_is_an_http_error(client: api.OllamaClient) -> None:
    with pytest.raises(api.OllamaError, match="HTTP 400: invalid model name") as info:
        client.pull("not a name")
    assert info.value.status == 400


def test_non_json_404(client: api.OllamaClient) -> None:
    with pytest.raises(api.OllamaNotFoundError, match="404 page not found"):
        client._json("GET", "/api/nothing-here")


def test_truncated_stream_is_transient_then_succeeds(client: api.OllamaClient) -> None:
    with pytest.raises(api.OllamaTransientError, match="ended without 'success'"):
        client.pull("truncate-me")
    assert client.list_models() == []
    client.pull("truncate-me")
    assert client.find_model("truncate-me") is not None


def test_stall_times_out_then_resumes(fake: Any) -> None:
    impatient = api.OllamaClient(fake.url, timeout=1)
    started = time.monotonic()
    with pytest.raises(api.OllamaTimeoutError):
        impatient.pull("stall-test")
    assert time.monotonic() - started < 2.5
    seen: list[dict[str, Any]] = []
    impatient.pull("stall-test", on_progress=seen.append)
    first_layer = next(line for line in seen if "digest" in line)
    assert first_layer["completed"] == first_layer["total"] // 2  # resumed where the stalled pull stopped
    assert fake.attempts == {"stall-test:latest": 2}


def test_connection_refused_is_transient() -> None:
    with pytest.raises(api.OllamaTransientError, match="cannot reach") as info:
        api.OllamaClient(f"http://127.0.0.1:{_free_port()}", timeout=2).version()
    assert not isinstance(info.value, api.OllamaTimeoutError)


class _Response(io.BytesIO):
    """Just enough of an HTTP response for the stream parser."""


@pytest.mark.parametrize(
    ("stream", "error", "match"),
    [
        (b'{"status":"pulling manifest"}\n{"status":"success"}\n{"error":"late"}\n', api.OllamaError, "late"),
        (b'{"status":"pulling manifest"}\nnot json\n', api.OllamaError, "unexpected line"),
        (b'["a list"]\n', api.OllamaError, "unexpected line"),
        (b'{"status":"pulling manifest"}\n', api.OllamaTransientError, "last status: 'pulling manifest'"),
        (b"", api.OllamaTransientError, "last status: None"),
    ],
)
def test_stream_parser_failures(stream: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        api.OllamaClient._follow_pull_stream(_Response(stream), None)


def test_stream_parser_skips_blank_lines() -> None:
    stream = b'\n{"status":"pulling manifest"}\n\n{"status":"success"}\n'
    assert api.OllamaClient._follow_pull_stream(_Response(stream), None) == {"status": "success"}


# --------------------------------------------------------------------------------------------------
# The test double's release archive (build-archive.sh) and its bin/ollama entry point
# --------------------------------------------------------------------------------------------------
ARCHIVE_MEMBERS = {
    "bin/ollama",
    "lib/ollama/VERSION",
    "lib/ollama/libggml-base.so",
    "lib/ollama/fake-ollama-{v}.marker",
    "lib/ollama/cuda_v12",
    "lib/ollama/cuda_v12/libggml-cuda.so",
    "lib/ollama/cuda_v13",
    "lib/ollama/cuda_v13/libggml-cuda.so",
}


def _build(version: str, outdir: Path) -> Path:
    done = subprocess.run(
        [str(DOUBLE_DIR / "build-archive.sh"), version, str(outdir)], capture_output=True, text=True, check=True
    )
    return Path(done.stdout.strip())


def _check_archive(archive: Path, tar: tarfile.TarFile, version: str) -> None:
    members = {member.name: member for member in tar.getmembers()}
    assert set(members) == {name.format(v=version) for name in ARCHIVE_MEMBERS}
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["bin/ollama"].mode == 0o755
    binary = tar.extractfile("bin/ollama").read()  # type: ignore[union-attr]
    assert binary.startswith(b"#!/usr/bin/env python3\n")
    assert tar.extractfile("lib/ollama/VERSION").read() == f"{version}\n".encode()  # type: ignore[union-attr]
    assert version.encode() in tar.extractfile("lib/ollama/cuda_v13/libggml-cuda.so").read()  # type: ignore[union-attr]
    line = (archive.parent / "sha256sum.txt").read_text()
    assert line == f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  ./{archive.name}\n"


def test_archive_before_0_14_is_tgz(tmp_path: Path) -> None:
    archive = _build("0.13.5", tmp_path)
    assert archive.name == "ollama-linux-amd64.tgz"
    with tarfile.open(archive, "r:gz") as tar:
        _check_archive(archive, tar, "0.13.5")


@pytest.fixture
def zstd_archive(tmp_path: Path) -> tuple[Path, tarfile.TarFile]:
    if shutil.which("zstd") is None:
        pytest.skip("zstd is not installed")
    archive = _build("v0.14.2", tmp_path / "dist")
    assert archive.name == "ollama-linux-amd64.tar.zst"
    raw = subprocess.run(["zstd", "-dc", str(archive)], capture_output=True, check=True).stdout
    return archive, tarfile.open(fileobj=io.BytesIO(raw))


def test_archive_from_0_14_is_zstd(zstd_archive: tuple[Path, tarfile.TarFile]) -> None:
    archive, tar = zstd_archive
    _check_archive(archive, tar, "0.14.2")


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            api.OllamaClient(url, timeout=1).version()
            return
        except api.OllamaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_installed_archive_serves_and_reports_its_version(
    zstd_archive: tuple[Path, tarfile.TarFile], tmp_path: Path
) -> None:
    _archive, tar = zstd_archive
    prefix = tmp_path / "usr"
    tar.extractall(prefix, filter="data")
    ollama = str(prefix / "bin" / "ollama")
    port = _free_port()
    env = {
        **os.environ,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(tmp_path / "models"),
        "FAKE_OLLAMA_STEP_DELAY": "0",
    }
    env.pop("FAKE_OLLAMA_VERSION", None)

    offline = subprocess.run([ollama, "--version"], env=env, capture_output=True, text=True, check=True)
    assert offline.stdout == (
        "Warning: could not connect to a running Ollama instance\nWarning: client version is 0.14.2\n"
    )

    for round_ in range(2):  # the second server start must still see the model pulled in the first
        server = subprocess.Popen([ollama, "serve"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            client = api.OllamaClient(f"http://127.0.0.1:{port}", timeout=10)
            _wait_for(client.base_url)
            assert client.version() == "0.14.2"
            if round_ == 0:
                client.pull("tinyllama")
            listing = subprocess.run([ollama, "list"], env=env, capture_output=True, text=True, check=True)
            assert re.search(r"^tinyllama:latest\s+[0-9a-f]{12}\s+637 MB\s", listing.stdout, re.MULTILINE)
            online = subprocess.run([ollama, "-v"], env=env, capture_output=True, text=True, check=True)
            assert online.stdout == "ollama version is 0.14.2\n"
        finally:
            server.terminate()
            _out, log = server.communicate(timeout=10)
        assert server.returncode == 0  # SIGTERM (systemctl stop) is a clean exit
        assert 'msg="Listening on 127.0.0.1:' in log
        assert "| 200 |" in log and '"/api/version"' in log
