# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""ollama_model runs in-process (main()) against the fake_ollama test double on an ephemeral port."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fake_ollama  # the test double, registered by tests/unit/conftest.py
import pytest
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.ai_stack.plugins.module_utils import _ollama_api
from ansible_collections.selfhosted.ai_stack.plugins.modules import ollama_model

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, Any] | None = None) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode())
            yield


LLAMA_SIZE = 2019393189  # fake_ollama's catalogue size for llama3.2:latest


class ModuleExit(Exception):
    """exit_json/fail_json end the module; the result travels in args[0]."""


@pytest.fixture(autouse=True)
def _capture_results(monkeypatch: pytest.MonkeyPatch) -> None:
    def exit_json(self: AnsibleModule, **result: Any) -> None:
        raise ModuleExit(dict(result, failed=False))

    def fail_json(self: AnsibleModule, msg: str, **result: Any) -> None:
        raise ModuleExit(dict(result, msg=msg, failed=True))

    monkeypatch.setattr(AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(AnsibleModule, "fail_json", fail_json)


@pytest.fixture
def fake(tmp_path: Path) -> Any:
    with fake_ollama.serve_in_thread(tmp_path / "models", step_delay=0, stall_seconds=3) as server:
        yield server


@pytest.fixture
def run(fake: Any) -> Callable[..., dict[str, Any]]:
    """run(name=..., **options) -> result dict; talks to the fake unless host is given."""

    def _run(**args: Any) -> dict[str, Any]:
        args.setdefault("host", fake.url)
        args.setdefault("retry_delay", 0)
        with patch_module_args(args), pytest.raises(ModuleExit) as info:
            ollama_model.main()
        return info.value.args[0]

    return _run


def _listed(fake: Any) -> list[str]:
    return [model["name"] for model in fake.tags()]


def _pulls(fake: Any) -> list[str]:
    return [body["model"] for method, path, body in fake.requests if (method, path) == ("POST", "/api/pull")]


# --------------------------------------------------------------------------------------------------
# state / idempotency
# --------------------------------------------------------------------------------------------------
def test_present_pulls_then_is_idempotent(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    first = run(name="llama3.2")
    assert first["failed"] is False
    assert first["changed"] is True
    assert first["name"] == "llama3.2:latest"
    assert re.fullmatch(r"[0-9a-f]{64}", first["digest"])
    assert first["size"] == LLAMA_SIZE
    assert first["attempts"] == 1
    assert _listed(fake) == ["llama3.2:latest"]

    second = run(name="llama3.2")  # idempotency row: same arguments, no change, no pull
    assert second["changed"] is False
    assert second["attempts"] == 0
    assert (second["digest"], second["size"]) == (first["digest"], first["size"])
    assert _pulls(fake) == ["llama3.2:latest"]


@pytest.mark.parametrize("spelling", ["registry.ollama.ai/library/llama3.2:latest", "Llama3.2", "llama3.2:latest"])
def test_other_spellings_of_a_present_model_do_not_pull(
    run: Callable[..., dict[str, Any]], fake: Any, spelling: str
) -> None:
    run(name="llama3.2")
    result = run(model=spelling)  # the alias works too
    assert result["changed"] is False
    assert _pulls(fake) == ["llama3.2:latest"]


def test_absent_deletes_then_is_idempotent(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    run(name="tinyllama")
    first = run(name="tinyllama", state="absent")
    assert first["changed"] is True
    assert (first["digest"], first["size"]) == (None, None)
    assert _listed(fake) == []
    assert not list((Path(fake.config.models_dir) / "manifests").rglob("latest"))

    second = run(name="tinyllama", state="absent")
    assert second["changed"] is False
    assert second["failed"] is False


def test_delete_racing_with_someone_else_is_ok(
    run: Callable[..., dict[str, Any]], fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /api/tags still lists the model, but by the time we delete it someone else has: Ollama says 404.
    listed = [{"name": "tinyllama:latest", "digest": "0" * 64, "size": 1}]
    monkeypatch.setattr(_ollama_api.OllamaClient, "list_models", lambda self: listed)
    result = run(name="tinyllama", state="absent", _ansible_diff=True)
    assert result["failed"] is False
    assert result["changed"] is False
    assert result["diff"]["before"]["present"] is False
    assert [path for _method, path, _body in fake.requests] == ["/api/delete"]


def test_the_guide_models_in_a_loop(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    guide = ["deepseek-r1:8b-0528-qwen3-q4_K_M", "qwen2.5vl:7b", "snowflake-arctic-embed2"]
    results = [run(name=name) for name in guide]
    assert [r["changed"] for r in results] == [True, True, True]
    sizes = {r["name"]: r["size"] for r in results}
    assert sizes["snowflake-arctic-embed2:latest"] == 1160296718
    assert 5.0e9 < sizes["deepseek-r1:8b-0528-qwen3-q4_K_M"] < 5.5e9
    assert [run(name=name)["changed"] for name in guide] == [False, False, False]


# --------------------------------------------------------------------------------------------------
# check mode and diff
# --------------------------------------------------------------------------------------------------
def test_check_mode_present_touches_nothing(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="qwen2.5vl:7b", _ansible_check_mode=True)
    assert result["changed"] is True
    assert (result["digest"], result["size"], result["attempts"]) == (None, None, 0)
    assert _pulls(fake) == []
    assert _listed(fake) == []
    assert not (Path(fake.config.models_dir) / "manifests").exists()


def test_check_mode_absent_touches_nothing(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    run(name="tinyllama")
    result = run(name="tinyllama", state="absent", _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["size"] == fake_ollama.BUILTIN_CATALOGUE["tinyllama:latest"]["size"]
    assert _listed(fake) == ["tinyllama:latest"]
    assert all(path != "/api/delete" for _method, path, _body in fake.requests)


@pytest.mark.parametrize(
    ("state", "before", "after"),
    [("present", False, True), ("absent", False, False)],
)
def test_diff_for_a_missing_model(run: Callable[..., dict[str, Any]], state: str, before: bool, after: bool) -> None:
    result = run(name="snowflake-arctic-embed2", state=state, _ansible_diff=True)
    assert result["diff"] == {
        "before": {"name": "snowflake-arctic-embed2:latest", "present": before},
        "after": {"name": "snowflake-arctic-embed2:latest", "present": after},
    }


def test_diff_for_a_present_model_in_check_mode(run: Callable[..., dict[str, Any]]) -> None:
    run(name="tinyllama")
    result = run(name="tinyllama", state="absent", _ansible_diff=True, _ansible_check_mode=True)
    assert result["diff"]["before"] == {"name": "tinyllama:latest", "present": True}
    assert result["diff"]["after"] == {"name": "tinyllama:latest", "present": False}


def test_no_diff_key_without_diff_mode(run: Callable[..., dict[str, Any]]) -> None:
    assert "diff" not in run(name="tinyllama")


# --------------------------------------------------------------------------------------------------
# failures and retries
# --------------------------------------------------------------------------------------------------
def test_midstream_error_fails_with_ollamas_message(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="fail-midstream")
    assert result["failed"] is True
    assert result["msg"].startswith(f"failed to pull model 'fail-midstream:latest' from {fake.url}: ")
    assert "digest mismatch, file must be downloaded again" in result["msg"]
    assert (result["changed"], result["attempts"], result["digest"]) == (False, 1, None)
    assert fake.attempts == {"fail-midstream:latest": 1}  # Ollama's own verdict is not retried
    assert _listed(fake) == []


def test_unknown_model_fails(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="no-such-model:13b")
    assert result["failed"] is True
    assert result["msg"] == (
        f"failed to pull model 'no-such-model:13b' from {fake.url}: pull model manifest: file does not exist"
    )


def test_timeout_then_retry_succeeds(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="stall-test", timeout=1, retries=2)
    assert result["failed"] is False
    assert result["changed"] is True
    assert result["attempts"] == 2
    assert fake.attempts == {"stall-test:latest": 2}
    assert _listed(fake) == ["stall-test:latest"]


def test_retries_exhausted_fails(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    fake.config.stall_attempts = 5
    result = run(name="stall-forever", timeout=1, retries=1)
    assert result["failed"] is True
    assert result["msg"].startswith(f"failed to pull model 'stall-forever:latest' from {fake.url}: ")
    assert "gave up after 2 attempts" in result["msg"]
    assert (result["changed"], result["attempts"]) == (False, 2)
    assert fake.attempts == {"stall-forever:latest": 2}
    assert _listed(fake) == []


def test_stream_without_success_is_retried(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="truncate-once")
    assert (result["failed"], result["changed"], result["attempts"]) == (False, True, 2)


def test_stream_without_success_and_no_retries_fails(run: Callable[..., dict[str, Any]]) -> None:
    result = run(name="truncate-once", retries=0)
    assert result["failed"] is True
    assert "pull stream ended without 'success'" in result["msg"]
    assert "gave up after 1 attempts" in result["msg"]


def test_pull_that_does_not_stick_fails(run: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ollama_api.OllamaClient, "pull", lambda self, name, insecure=False: {"status": "success"})
    result = run(name="tinyllama")
    assert result["failed"] is True
    assert "pull succeeded but /api/tags does not list it" in result["msg"]
    assert "exception" not in result  # no traceback when there was no exception


def test_insecure_is_passed_to_ollama(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    run(name="tinyllama", insecure=True)
    assert fake.requests[-1][2] == {"model": "tinyllama:latest", "insecure": True, "stream": True}


def test_server_down_fails_at_listing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with patch_module_args({"name": "tinyllama", "host": f"127.0.0.1:{port}"}), pytest.raises(ModuleExit) as info:
        ollama_model.main()
    result = info.value.args[0]
    assert result["failed"] is True
    assert result["msg"].startswith(f"failed to list models on http://127.0.0.1:{port}: cannot reach")


def test_host_without_scheme(run: Callable[..., dict[str, Any]], fake: Any) -> None:
    result = run(name="tinyllama", host=fake.url.replace("http://", ""))
    assert (result["failed"], result["changed"]) == (False, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "not a model"}, "invalid model name 'not a model'"),
        ({"name": "tinyllama", "host": "ftp://x"}, "unsupported scheme"),
        ({"name": "tinyllama", "timeout": 0}, "timeout must be at least 1"),
        ({"name": "tinyllama", "retries": -1}, "retries must not be negative"),
        ({"name": "tinyllama", "state": "latest"}, "value of state must be one of"),
    ],
)
def test_bad_arguments(run: Callable[..., dict[str, Any]], fake: Any, args: dict[str, Any], message: str) -> None:
    result = run(**args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fake.requests == []


def test_delete_error_fails(run: Callable[..., dict[str, Any]], fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run(name="tinyllama")

    def refuse(self: Any, name: str) -> None:
        raise _ollama_api.OllamaError("DELETE /api/delete returned HTTP 500: disk on fire", status=500)

    monkeypatch.setattr(_ollama_api.OllamaClient, "delete", refuse)
    result = run(name="tinyllama", state="absent")
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == (
        f"failed to delete model 'tinyllama:latest' from {fake.url}: DELETE /api/delete returned HTTP 500: disk on fire"
    )
    assert "Traceback" in result["exception"]
    assert _listed(fake) == ["tinyllama:latest"]
