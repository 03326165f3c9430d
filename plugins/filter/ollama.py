# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for Ollama model references (documentation: ollama_model_ref.yml next to this file)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._ollama_api import normalize_model_name


def ollama_model_ref(value: Any, casefold: bool = False) -> str:
    """Normalise an Ollama model name exactly like the ollama_model module does.

    ``casefold=True`` lower-cases the result, because Ollama compares names case-insensitively:
    use it on both sides when comparing wanted models with what /api/tags lists.
    """
    if not isinstance(value, str):
        raise AnsibleFilterError(f"ollama_model_ref expects a string, got {type(value).__name__}: {value!r}")
    try:
        ref = normalize_model_name(value)
    except ValueError as exc:
        raise AnsibleFilterError(f"ollama_model_ref: {exc}") from exc
    return ref.lower() if casefold else ref


class FilterModule:
    """Ollama filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ollama_model_ref": ollama_model_ref}
