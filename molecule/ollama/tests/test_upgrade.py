"""Upgrade from the scenario's 0.13.5 (.tgz) to 0.32.7 (.tar.zst, pinned by sha256).

Runs last (file order) because it leaves the host on 0.32.7; `molecule converge` goes back to the
scenario's version before another `molecule verify`. Only the install and service steps run (tags),
which is all an upgrade touches: the unit does not depend on the version.
"""

from __future__ import annotations

import os
import pathlib

OLD, NEW = "0.13.5", "0.32.7"
LIB = "/usr/local/lib/ollama"
STEPS = ("--tags", "ollama_install,ollama_service")
GUIDE_MODELS = {"deepseek-r1:8b-0528-qwen3-q4_K_M", "qwen2.5vl:7b", "snowflake-arctic-embed2:latest"}


def _pinned_checksum(version: str) -> str:
    """The sha256 from the release's sha256sum.txt, as a user would pin it."""
    releases = pathlib.Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "fake-ollama-releases")
    line = (releases / f"v{version}" / "sha256sum.txt").read_text().split()
    assert line[1] == "./ollama-linux-amd64.tar.zst"
    return "sha256:" + line[0]


def _markers(host) -> list[str]:
    return sorted(host.check_output(f"ls {LIB}").split())


def test_upgrade_replaces_the_libraries_and_restarts(host, converge, ollama_api):
    assert f"fake-ollama-{OLD}.marker" in _markers(host)

    run = converge(*STEPS, extra_vars={"ollama_version": NEW, "ollama_archive_checksum": _pinned_checksum(NEW)})
    assert run.returncode == 0, run.tail()
    assert "Restart ollama" in run.stdout

    markers = [name for name in _markers(host) if name.startswith("fake-ollama-")]
    assert markers == [f"fake-ollama-{NEW}.marker"], "the old lib/ollama was not removed before unpacking"
    assert ollama_api("/api/version")["version"] == NEW
    assert host.file(f"{LIB}/.selfhosted.ai_stack.json").contains(_pinned_checksum(NEW)[7:])
    # The models survive the upgrade.
    assert {m["name"] for m in ollama_api("/api/tags")["models"]} == GUIDE_MODELS
