"""The controller's model cache: export from a host that has the models, copy back on an offline site.

Runs after test_playbook_runs.py and before test_upgrade.py (file order), and in that order within
the file: export, offline copy, offline run again, a model the cache lacks. The cache is private to the module
(a pytest temporary directory, passed as ai_stack_artifact_cache_dir), so every run starts empty.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

MODELS_DIR = "/usr/share/ollama/.ollama/models"
GUIDE_MODELS = {"deepseek-r1:8b-0528-qwen3-q4_K_M", "qwen2.5vl:7b", "snowflake-arctic-embed2:latest"}
DELETED = "qwen2.5vl:7b"

# Like Ollama's, the store is content-addressed: the role verifies every blob against its name.
CHECK_CONTENT_ADDRESSED = """
import hashlib, os, sys
blobs = os.path.join(sys.argv[1], "blobs")
for name in os.listdir(blobs):
    with open(os.path.join(blobs, name), "rb") as handle:
        digest = "sha256-" + hashlib.sha256(handle.read()).hexdigest()
    assert digest == name, (name, digest)
"""


def _manifest_path(name: str) -> str:
    model, tag = name.split(":")
    return f"manifests/registry.ollama.ai/library/{model}/{tag}"


def _digests(manifest: dict) -> list[str]:
    return [layer["digest"] for layer in [manifest["config"], *manifest["layers"]]]


def _names(ollama_api) -> set[str]:
    return {model["name"] for model in ollama_api("/api/tags")["models"]}


@pytest.fixture(name="cache", scope="module")
def cache_fixture(host, tmp_path_factory):
    host.check_output("python3 -c %s %s", CHECK_CONTENT_ADDRESSED, MODELS_DIR)
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(name="offline")
def offline_fixture(cache):
    return {"ai_stack_offline": True, "ai_stack_artifact_cache_dir": str(cache)}


def test_export_fills_the_cache_with_verified_blobs(host, playbook, cache):
    manifests = {name: host.file(f"{MODELS_DIR}/{_manifest_path(name)}").content for name in GUIDE_MODELS}
    digests = sorted({digest for raw in manifests.values() for digest in _digests(json.loads(raw))})
    # The cache already has one blob, and half of another (an interrupted fetch).
    store = cache / "ollama-models"
    (store / "blobs").mkdir(parents=True)
    cached, interrupted = (store / "blobs" / digest.replace(":", "-") for digest in digests[:2])
    cached.write_bytes(host.file(f"{MODELS_DIR}/blobs/{cached.name}").content)
    interrupted.write_bytes(host.file(f"{MODELS_DIR}/blobs/{interrupted.name}").content[:10])

    run = playbook("export.yml", extra_vars={"ai_stack_artifact_cache_dir": str(cache)})
    assert run.returncode == 0, run.tail()
    assert run.changed == 2, run.tail()  # the blobs, then the manifests
    fetched = re.findall(r"^changed: \[[^]]+\] => \(item=(sha256:[0-9a-f]{64})\)", run.stdout, re.M)
    assert sorted(fetched) == digests[1:], run.tail()  # every blob but the one cached intact

    for name, raw in manifests.items():
        # The host's manifest, byte for byte (Ollama's /api/tags digest is its sha256).
        assert (store / _manifest_path(name)).read_bytes() == raw
    for digest in digests:
        content = (store / "blobs" / digest.replace(":", "-")).read_bytes()
        assert "sha256:" + hashlib.sha256(content).hexdigest() == digest
    assert len(list((store / "blobs").iterdir())) == len(digests)


def test_offline_site_copies_a_missing_model_from_the_cache(host, converge, ollama_api, offline):
    host.check_output("/usr/local/bin/ollama rm %s", DELETED)
    assert DELETED not in _names(ollama_api)
    cursor = host.check_output("journalctl -u ollama -n 0 --show-cursor --no-pager").split("-- cursor: ")[-1]

    run = converge("--tags", "ollama_models", extra_vars=offline)
    assert run.returncode == 0, run.tail()
    assert _names(ollama_api) == GUIDE_MODELS

    # Ollama was asked (its request log is in the journal), but nothing was pulled.
    log = host.check_output("journalctl -u ollama --no-pager --after-cursor %s", cursor.strip())
    assert '"/api/tags"' in log, log
    assert '"/api/pull"' not in log, log

    # Owned and moded as Ollama writes its store under the unit's UMask=0027.
    manifest = host.file(f"{MODELS_DIR}/{_manifest_path(DELETED)}")
    assert (manifest.user, manifest.group, manifest.mode) == ("ollama", "ollama", 0o640)
    assert host.file(manifest.path.rsplit("/", 1)[0]).mode == 0o750
    for digest in _digests(json.loads(manifest.content_string)):
        blob = host.file(f"{MODELS_DIR}/blobs/{digest.replace(':', '-')}")
        assert (blob.user, blob.group, blob.mode) == ("ollama", "ollama", 0o640)


def test_second_offline_run_changes_nothing(converge, offline):
    run = converge("--tags", "ollama_models", extra_vars=offline)
    assert run.returncode == 0, run.tail()
    assert run.changed == 0, run.tail()


def test_offline_site_names_models_the_cache_lacks(converge, offline, cache):
    run = converge("--tags", "ollama_models", extra_vars=dict(offline, ollama_models=["qwen2.5vl:7b", "tinyllama"]))
    assert run.returncode != 0, run.tail()
    assert "Pull the models" in run.stdout  # listed as skipped
    assert (
        f"these models are missing from {MODELS_DIR} on ai-stack-ollama and from the controller cache "
        f"{cache}/ollama-models: tinyllama:latest." in run.output
    ), run.tail()
    assert "tasks_from: models_export" in run.output
