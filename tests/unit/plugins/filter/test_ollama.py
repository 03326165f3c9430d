# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""ollama_model_ref must normalise exactly like the ollama_model module (same module_utils code)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.ollama import FilterModule, ollama_model_ref
from ansible_collections.selfhosted.ai_stack.plugins.module_utils._ollama_api import normalize_model_name

CASES = [
    # (input, ollama_model_ref, ollama_model_ref(casefold=true))
    ("llama3.2", "llama3.2:latest", "llama3.2:latest"),
    ("llama3.2:latest", "llama3.2:latest", "llama3.2:latest"),  # idempotency row: normalising twice changes nothing
    ("registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest", "llama3.2:latest"),
    ("Llama3.2", "Llama3.2:latest", "llama3.2:latest"),
    ("deepseek-r1:8b-0528-qwen3-q4_K_M", "deepseek-r1:8b-0528-qwen3-q4_K_M", "deepseek-r1:8b-0528-qwen3-q4_k_m"),
    ("qwen2.5vl:7b", "qwen2.5vl:7b", "qwen2.5vl:7b"),
    ("snowflake-arctic-embed2", "snowflake-arctic-embed2:latest", "snowflake-arctic-embed2:latest"),
    ("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M", "hf.co/org/repo:q4_k_m"),
    ("host:5000/ns/model", "host:5000/ns/model:latest", "host:5000/ns/model:latest"),
    ("myuser/mymodel", "myuser/mymodel:latest", "myuser/mymodel:latest"),
]


@pytest.mark.parametrize(("name", "ref", "folded"), CASES)
def test_ollama_model_ref(name: str, ref: str, folded: str) -> None:
    assert ollama_model_ref(name) == ref
    assert ollama_model_ref(name, casefold=True) == folded
    assert ollama_model_ref(ref) == ref  # a normalised name is a fixed point


@pytest.mark.parametrize(("name", "_ref", "_folded"), CASES)
def test_filter_and_module_agree(name: str, _ref: str, _folded: str) -> None:
    assert ollama_model_ref(name) == normalize_model_name(name)


def test_equivalent_spellings_compare_equal_with_casefold() -> None:
    spellings = ["llama3.2", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", "Llama3.2"]
    assert {ollama_model_ref(name, casefold=True) for name in spellings} == {"llama3.2:latest"}


def test_prune_style_difference() -> None:
    """What a role does: installed (as /api/tags lists them) minus wanted, both normalised."""
    installed = ["llama3.2:latest", "qwen2.5vl:7b", "tinyllama:latest"]
    wanted = ["Llama3.2", "registry.ollama.ai/library/qwen2.5vl:7b"]
    wanted_refs = {ollama_model_ref(name, casefold=True) for name in wanted}
    assert [name for name in installed if ollama_model_ref(name, casefold=True) not in wanted_refs] == [
        "tinyllama:latest"
    ]


@pytest.mark.parametrize("name", ["", "not a model", "model:", "a/b/c/d"])
def test_invalid_name_raises_filter_error_naming_the_value(name: str) -> None:
    with pytest.raises(AnsibleFilterError, match="invalid model name") as info:
        ollama_model_ref(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("value", [None, 3, ["llama3.2"], {"name": "llama3.2"}])
def test_non_string_raises_filter_error(value: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="expects a string"):
        ollama_model_ref(value)


def test_filter_is_registered() -> None:
    assert FilterModule().filters()["ollama_model_ref"] is ollama_model_ref
