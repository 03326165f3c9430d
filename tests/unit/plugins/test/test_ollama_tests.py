# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""The ollama_model_name test agrees with the parser the module and the filter use."""

from __future__ import annotations

import pytest

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._ollama_api import normalize_model_name
from ansible_collections.selfhosted.ai_stack.plugins.test.ollama import TestModule as OllamaTests
from ansible_collections.selfhosted.ai_stack.plugins.test.ollama import ollama_model_name

GOOD = [
    "deepseek-r1:8b-0528-qwen3-q4_K_M",
    "qwen2.5vl:7b",
    "snowflake-arctic-embed2",
    "library/llama3.2",
    "registry.ollama.ai/library/llama3.2:latest",
    "registry.example.com:5000/team/model:q4",
]
BAD = ["", "qwen2.5vl:", ":7b", "bad model", "a/b/c/d/e", "model:tag:extra", "-dash", "mödel", 7, None, ["x"]]


@pytest.mark.parametrize("name", GOOD)
def test_names_ollama_accepts(name: str) -> None:
    assert ollama_model_name(name)
    assert normalize_model_name(name)


@pytest.mark.parametrize("name", BAD)
def test_names_ollama_refuses(name) -> None:
    assert not ollama_model_name(name)
    if isinstance(name, str):
        with pytest.raises(ValueError):
            normalize_model_name(name)


def test_registered() -> None:
    assert OllamaTests().tests()["ollama_model_name"] is ollama_model_name
