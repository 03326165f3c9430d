# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for Ollama model names.

Documentation: ollama_model_name.yml next to this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._ollama_api import normalize_model_name


def ollama_model_name(value: Any) -> bool:
    """True when ``value`` is a model name Ollama accepts: the grammar the ollama_model module and the
    ollama_model_ref filter parse with, so a preflight can name a bad entry before either refuses it."""
    if not isinstance(value, str):
        return False
    try:
        normalize_model_name(value)
    except ValueError:
        return False
    return True


class TestModule:
    """Ollama tests."""

    def tests(self) -> dict[str, Callable[..., Any]]:
        return {"ollama_model_name": ollama_model_name}
