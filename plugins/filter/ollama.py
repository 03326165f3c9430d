# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for Ollama model references and Ollama's on-disk model store.

Documentation: one YAML file per filter next to this file (ollama_model_ref.yml, ollama_manifest_index.yml,
ollama_manifest_blobs.yml, ollama_blob_mismatches.yml, ollama_verified_blobs.yml, ollama_missing_models.yml).

An Ollama store (OLLAMA_MODELS, and the controller's model cache, which has the same layout) holds
``manifests/<registry>/<namespace>/<model>/<tag>`` (JSON: a config blob and layers, each named by digest)
and ``blobs/sha256-<hex>``, where <hex> is the sha256 of the blob's content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
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


# A manifest's path below manifests/ (registry/namespace/model/tag), Ollama's characters only; anything
# else in a store (temporary files, stray copies) is not a model.
MANIFEST_PATH = re.compile(
    r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*/[A-Za-z0-9_][A-Za-z0-9_-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$"
)


def _as_list(value: Any) -> Any:
    """A list from a list, tuple or generator (Jinja's map); anything else as it is, for the caller to refuse."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        return value
    return list(value)


def _names(value: Any, what: str) -> list[str]:
    """Model names from a list of strings or of dicts with a name (GET /api/tags' models, ollama_models entries)."""
    value = _as_list(value)
    if not isinstance(value, list):
        raise AnsibleFilterError(f"{what} must be a list of model names, got {type(value).__name__}: {value!r}")
    names = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise AnsibleFilterError(f"{what} must list model names (strings or dicts with a name), got {entry!r}")
        names.append(name)
    return names


def _unique(values: Iterable[str]) -> list[str]:
    """Each value once, the first of those equal in any case (like Ansible's ``unique`` filter)."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())


def ollama_missing_models(wanted: Any, listed: Any) -> list[str]:
    """The wanted models (normalised, each once in any case, in their order) that ``listed`` does not have.

    Names are compared under Ollama's rules: default registry and namespace, ``:latest``, any case.
    """
    have = {ollama_model_ref(name, casefold=True) for name in _names(listed, "ollama_missing_models: listed")}
    refs = _unique(ollama_model_ref(name) for name in _names(wanted, "ollama_missing_models: the input"))
    return [ref for ref in refs if ref.lower() not in have]


def ollama_manifest_index(files: Any, store_dir: str, names: Any) -> list[dict[str, str]]:
    """Find the manifest of each model name in a store: ``[{name, path}]``, ``path`` relative to manifests/.

    ``files`` is what ansible.builtin.find returned for ``<store_dir>/manifests`` (its ``files``, or
    plain paths). ``path`` is '' for a model that the store does not have. Names are normalised and
    listed once each (the first of those equal in any case), in their order; manifests match
    case-insensitively, and of two manifests that differ only in case the one sorting last wins. Files
    whose path is not registry/namespace/model/tag in Ollama's characters are not models and are skipped.
    """
    if not isinstance(store_dir, str) or not store_dir:
        raise AnsibleFilterError(f"ollama_manifest_index: store_dir must be a directory, got {store_dir!r}")
    files = _as_list(files)
    if not isinstance(files, list):
        raise AnsibleFilterError(f"ollama_manifest_index expects a list of files, got {type(files).__name__}")
    prefix = store_dir + "/manifests/"
    paths = [entry.get("path") if isinstance(entry, dict) else entry for entry in files]
    if not all(isinstance(path, str) for path in paths):
        raise AnsibleFilterError("ollama_manifest_index: every file must be a path or a dict with a path")
    found: dict[str, str] = {}
    for path in sorted(paths):
        rel = path[len(prefix) :]
        if path.startswith(prefix) and MANIFEST_PATH.match(rel):
            found[ollama_model_ref(re.sub(r"/([^/]+)$", r":\1", rel), casefold=True)] = rel
    refs = _unique(ollama_model_ref(name) for name in _names(names, "ollama_manifest_index: names"))
    return [{"name": ref, "path": found.get(ref.lower(), "")} for ref in refs]


def ollama_manifest_blobs(manifests: Any) -> list[str]:
    """The digests of the blobs that manifests name: each config blob and its layers, each digest once.

    Takes one manifest or a list of them, each parsed (a dict) or its JSON text. A config or layer
    without a digest yields '', which no digest check accepts.
    """
    manifests = [manifests] if isinstance(manifests, (dict, str)) else _as_list(manifests)
    if not isinstance(manifests, list):
        raise AnsibleFilterError(f"ollama_manifest_blobs expects manifests, got {type(manifests).__name__}")
    digests: list[str] = []
    for manifest in manifests:
        if isinstance(manifest, str):
            try:
                manifest = json.loads(manifest)
            except ValueError as exc:
                raise AnsibleFilterError(f"ollama_manifest_blobs: a manifest is not JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise AnsibleFilterError(f"ollama_manifest_blobs: a manifest must be a JSON object, got {manifest!r}")
        config = manifest.get("config")
        layers = manifest.get("layers") or []
        if not isinstance(layers, list):
            raise AnsibleFilterError(f"ollama_manifest_blobs: layers must be a list, got {layers!r}")
        digests.append(config.get("digest", "") if isinstance(config, dict) else "")
        digests.extend(layer.get("digest", "") if isinstance(layer, dict) else "" for layer in layers)
    return _unique(digests)


def ollama_blob_mismatches(results: Any) -> list[str]:
    """The digests whose blob is missing or has another sha256, from a looped ansible.builtin.stat.

    ``results`` is the registered loop's ``results`` (or the whole registered result): each stat ran on
    one blob with ``checksum_algorithm: sha256`` and the loop item (under ``loop_var``, any name) is the
    blob's ``sha256:<hex>`` digest.
    """
    if isinstance(results, dict) and "results" in results:
        results = results["results"]
    results = _as_list(results)
    if not isinstance(results, list):
        raise AnsibleFilterError(f"ollama_blob_mismatches expects the stat loop's results, got {results!r:.200}")
    mismatches = []
    for result in results:
        digest = result.get(result.get("ansible_loop_var", "item")) if isinstance(result, dict) else None
        if not isinstance(digest, str):
            raise AnsibleFilterError(f"ollama_blob_mismatches: no digest as the loop item of {result!r:.200}")
        stat = result.get("stat") or {}
        if stat.get("checksum", "") != digest[7:]:
            mismatches.append(digest)
    return mismatches


def ollama_verified_blobs(lines: Any, blobs_dir: str) -> list[str]:
    """The digests that ``sha256sum <blobs_dir>/sha256-<hex>...`` confirmed: each file's sum is its name.

    ``lines`` is sha256sum's stdout_lines (``<hex>  <path>``); lines of files that are missing or
    unreadable (sha256sum prints those on stderr) or whose sum differs yield nothing.
    """
    lines = _as_list(lines)
    if not isinstance(lines, list):
        raise AnsibleFilterError(f"ollama_verified_blobs expects stdout_lines, got {type(lines).__name__}")
    good = []
    for line in lines:
        fields = str(line).split()
        if len(fields) == 2 and fields[1] == f"{blobs_dir}/sha256-{fields[0]}":
            good.append("sha256:" + fields[0])
    return good


class FilterModule:
    """Ollama filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "ollama_blob_mismatches": ollama_blob_mismatches,
            "ollama_manifest_blobs": ollama_manifest_blobs,
            "ollama_manifest_index": ollama_manifest_index,
            "ollama_missing_models": ollama_missing_models,
            "ollama_model_ref": ollama_model_ref,
            "ollama_verified_blobs": ollama_verified_blobs,
        }
