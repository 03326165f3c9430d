# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""The filters behind the ollama role's models_export and models_seed tasks (Ollama's store layout)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.ollama import (
    FilterModule,
    ollama_blob_mismatches,
    ollama_manifest_blobs,
    ollama_manifest_index,
    ollama_missing_models,
    ollama_verified_blobs,
)

STORE = "/var/lib/ollama/models"
MANIFESTS = f"{STORE}/manifests"
A, B, C = ("sha256:" + ch * 64 for ch in "abc")


def _find(*rel: str) -> list[dict[str, Any]]:
    """What ansible.builtin.find registers in .files for these paths below manifests/."""
    return [{"path": f"{MANIFESTS}/{path}", "mode": "0640"} for path in rel]


def test_every_filter_is_registered() -> None:
    assert sorted(FilterModule().filters()) == [
        "ollama_blob_mismatches",
        "ollama_manifest_blobs",
        "ollama_manifest_index",
        "ollama_missing_models",
        "ollama_model_ref",
        "ollama_verified_blobs",
    ]


def test_index_matches_names_under_ollamas_rules() -> None:
    files = _find(
        "registry.ollama.ai/library/llama3.2/latest",
        "registry.ollama.ai/library/qwen2.5vl/7b",
        "hf.co/org/repo/Q4_K_M",
    )
    names = ["llama3.2", "registry.ollama.ai/library/qwen2.5vl:7b", "hf.co/org/repo:q4_k_m", "absent:1b"]
    assert ollama_manifest_index(files, STORE, names) == [
        {"name": "llama3.2:latest", "path": "registry.ollama.ai/library/llama3.2/latest"},
        {"name": "qwen2.5vl:7b", "path": "registry.ollama.ai/library/qwen2.5vl/7b"},
        {"name": "hf.co/org/repo:q4_k_m", "path": "hf.co/org/repo/Q4_K_M"},  # any case
        {"name": "absent:1b", "path": ""},
    ]


def test_index_lists_each_model_once_in_the_order_asked() -> None:
    files = _find("registry.ollama.ai/library/llama3.2/latest")
    names = ["tiny:1b", "llama3.2", "llama3.2:latest", "Tiny:1B"]
    assert [m["name"] for m in ollama_manifest_index(files, STORE, names)] == ["tiny:1b", "llama3.2:latest"]


@pytest.mark.parametrize(
    "stray",
    [
        "registry.ollama.ai/library/llama3.2/latest.tmp~",  # a character Ollama never writes
        "registry.ollama.ai/library/llama3.2",  # too shallow: a directory's name, not a tag
        "registry.ollama.ai/library/x/llama3.2/latest",  # too deep
        ".partial/library/llama3.2/latest",  # a hidden directory
    ],
)
def test_index_skips_files_that_are_not_manifests(stray: str) -> None:
    assert ollama_manifest_index(_find(stray), STORE, ["llama3.2"]) == [{"name": "llama3.2:latest", "path": ""}]


def test_index_skips_files_outside_the_stores_manifests() -> None:
    files = [{"path": "/elsewhere/manifests/registry.ollama.ai/library/llama3.2/latest"}]
    assert ollama_manifest_index(files, STORE, ["llama3.2"])[0]["path"] == ""


def test_index_takes_plain_paths_and_the_last_of_two_case_variants() -> None:
    files = [
        f"{MANIFESTS}/registry.ollama.ai/library/Llama3.2/latest",
        f"{MANIFESTS}/registry.ollama.ai/library/llama3.2/latest",
    ]
    # sorted: "Llama..." < "llama...", so the lower-case one wins, as in the role's Jinja it replaces
    assert ollama_manifest_index(files, STORE, ["LLAMA3.2"]) == [
        {"name": "LLAMA3.2:latest", "path": "registry.ollama.ai/library/llama3.2/latest"}
    ]


@pytest.mark.parametrize(
    ("files", "store", "names"),
    [("not a list", STORE, []), ([{"size": 1}], STORE, []), ([], "", []), ([], STORE, "llama3.2"), ([], STORE, [3])],
)
def test_index_rejects_wrong_input(files: Any, store: Any, names: Any) -> None:
    with pytest.raises(AnsibleFilterError):
        ollama_manifest_index(files, store, names)


def test_index_rejects_a_name_ollama_rejects() -> None:
    with pytest.raises(AnsibleFilterError, match="ollama_model_ref"):
        ollama_manifest_index([], STORE, ["not a name!"])


def _manifest(config: str | None, *layers: str) -> dict[str, Any]:
    manifest: dict[str, Any] = {"schemaVersion": 2, "layers": [{"digest": d, "size": 1} for d in layers]}
    if config is not None:
        manifest["config"] = {"digest": config, "size": 1}
    return manifest


def test_blobs_config_first_then_layers_each_once_across_manifests() -> None:
    first, second = _manifest(A, B, C), _manifest(C, A)
    assert ollama_manifest_blobs([first, json.dumps(second)]) == [A, B, C]
    assert ollama_manifest_blobs(first) == [A, B, C]  # one manifest
    assert ollama_manifest_blobs(json.dumps(second)) == [C, A]  # one manifest's JSON text


def test_blobs_without_a_digest_yield_an_empty_one_for_the_digest_check() -> None:
    assert ollama_manifest_blobs({"layers": [{"size": 1}]}) == [""]
    assert ollama_manifest_blobs(_manifest(None, A)) == ["", A]


@pytest.mark.parametrize("manifests", ["{not json", [[1]], 5, [{"layers": "x"}]])
def test_blobs_reject_what_is_not_a_manifest(manifests: Any) -> None:
    with pytest.raises(AnsibleFilterError):
        ollama_manifest_blobs(manifests)


def _stat(digest: str, checksum: str | None, loop_var: str = "__ollama_digest") -> dict[str, Any]:
    """One result of a looped ansible.builtin.stat with loop_control.loop_var."""
    stat = {"exists": checksum is not None} | ({"checksum": checksum} if checksum else {})
    return {"stat": stat, loop_var: digest, "ansible_loop_var": loop_var, "changed": False}


def test_mismatches_are_missing_or_other_sums() -> None:
    results = [_stat(A, "a" * 64), _stat(B, None), _stat(C, "d" * 64)]
    assert ollama_blob_mismatches(results) == [B, C]
    assert ollama_blob_mismatches({"results": results, "changed": False}) == [B, C]  # the whole registered result
    assert ollama_blob_mismatches([_stat(A, "a" * 64, loop_var="item")]) == []
    assert ollama_blob_mismatches([]) == []


@pytest.mark.parametrize("results", ["x", [{"stat": {}}], [{"stat": {}, "ansible_loop_var": "item", "item": 1}]])
def test_mismatches_need_a_digest_per_result(results: Any) -> None:
    with pytest.raises(AnsibleFilterError):
        ollama_blob_mismatches(results)


def test_verified_blobs_are_those_whose_sum_is_their_name() -> None:
    blobs = f"{STORE}/blobs"
    lines = [
        f"{'a' * 64}  {blobs}/sha256-{'a' * 64}",
        f"{'e' * 64}  {blobs}/sha256-{'b' * 64}",  # corrupt: another sum
        f"{'c' * 64}  /tmp/sha256-{'c' * 64}",  # another directory
        "",
    ]
    assert ollama_verified_blobs(lines, blobs) == [A]
    assert ollama_verified_blobs([], blobs) == []
    with pytest.raises(AnsibleFilterError):
        ollama_verified_blobs("not lines", blobs)


def test_missing_models_compares_under_ollamas_rules() -> None:
    listed = [{"name": "llama3.2:latest", "size": 1}, {"name": "HF.co/Org/Repo:Q4_K_M"}]
    wanted = ["registry.ollama.ai/library/llama3.2", "hf.co/org/repo:q4_k_m", "Tiny:1B", "tiny:1b", "qwen2.5vl:7b"]
    assert ollama_missing_models(wanted, listed) == ["Tiny:1B", "qwen2.5vl:7b"]  # Tiny:1B and tiny:1b: one model
    assert ollama_missing_models(wanted, ["llama3.2", "hf.co/org/repo:Q4_K_M", "tiny:1b", "qwen2.5vl:7b"]) == []
    assert ollama_missing_models([], []) == []


@pytest.mark.parametrize(("wanted", "listed"), [("llama3.2", []), ([], None), ([{"size": 1}], [])])
def test_missing_models_rejects_wrong_input(wanted: Any, listed: Any) -> None:
    with pytest.raises(AnsibleFilterError):
        ollama_missing_models(wanted, listed)


def test_generators_count_as_lists() -> None:
    """Jinja's map hands filters generators; each filter takes them like lists."""
    assert ollama_missing_models((n for n in ["llama3.2"]), iter([])) == ["llama3.2:latest"]
    assert ollama_manifest_index(iter(_find("a.io/b/c/d")), STORE, iter(["a.io/b/c:d"]))[0]["path"] == "a.io/b/c/d"
    assert ollama_manifest_blobs(json.dumps(m) for m in [_manifest(A, B)]) == [A, B]
    assert ollama_blob_mismatches(iter([_stat(A, None)])) == [A]
    assert ollama_verified_blobs(iter([]), STORE) == []
