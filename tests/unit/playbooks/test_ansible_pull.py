"""ansible-pull for offices the controller cannot reach: the ai-stack-pull wrapper checks out a git
repository holding the collection and an office inventory, and runs playbooks/pull.yml with the real
ansible-pull, here from a file:// repository built from this checkout.

Only the plays tagged always run (--tags with a tag nothing else has): the check that this machine is a
host of the inventory, and the site playbook resolving from the checkout with the host's inventory
variables. Converging the roles themselves is what the molecule scenarios test; this test shows the
mechanism that hands a host to them, not a full self-converge.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WRAPPER = ROOT / "playbooks" / "files" / "ai-stack-pull"
NOTHING_ELSE = "ai_stack_pull_test_only"  # a tag no task has: only the always plays run
# ansible-pull limits the run to the machine's own names; the node name is one of them.
THIS_MACHINE = platform.node()
# The interpreter of this test run (interpreter discovery trips over pyenv shims on developer machines).
HOST_VARS = {"ansible_python_interpreter": sys.executable}


def _office_repo(tmp_path: Path, inventory_data: dict[str, Any]) -> Path:
    """A git repository as an office keeps it: the collection plus inventories/pulltest."""
    repo = tmp_path / "office.git"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            (repo / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / os.fsdecode(name))
    inventory = repo / "inventories" / "pulltest"
    inventory.mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(inventory_data))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "office"], cwd=repo, check=True)
    return repo


def _pull(tmp_path: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        AI_STACK_PULL_URL=f"file://{repo}",
        AI_STACK_PULL_INVENTORY="inventories/pulltest/hosts.yml",
        AI_STACK_PULL_DIR=str(tmp_path / "pull"),
    )
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)  # only what the wrapper sets: the checkout and the host's collections
    return subprocess.run(
        [str(WRAPPER), "--tags", NOTHING_ELSE], capture_output=True, text=True, env=env, check=False, timeout=300
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="ansible-pull's checkout needs git")
def test_a_host_in_the_inventory_converges_itself_from_the_checkout(tmp_path: Path) -> None:
    run = _pull(tmp_path, _office_repo(tmp_path, {"ai_stack": {"hosts": {THIS_MACHINE: HOST_VARS}}}))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"ansible-pull converges {THIS_MACHINE}" in run.stdout
    # The site playbook came from the checkout, where the wrapper put it as the collection.
    checkout = tmp_path / "pull" / "ansible_collections" / "selfhosted" / "ai_stack"
    assert (checkout / "playbooks" / "site.yml").is_file()
    # The site's plays ran on this machine (facts gathered; their roles are tagged, so skipped here).
    assert "PLAY [Preflight (changes nothing)]" in run.stdout
    assert f"ok: [{THIS_MACHINE}]" in run.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="ansible-pull's checkout needs git")
def test_a_host_under_another_name_fails_instead_of_doing_nothing(tmp_path: Path) -> None:
    # This machine is in the inventory (so the checkout and ansible-playbook find a host), but the
    # stack's group names it otherwise: the site's plays would match nothing and "succeed".
    inventory_data = {
        "ai_stack": {"hosts": {"ai-elsewhere.example.internal": {}}},
        "office_printers": {"hosts": {THIS_MACHINE: HOST_VARS}},
    }
    run = _pull(tmp_path, _office_repo(tmp_path, inventory_data))
    assert run.returncode != 0
    assert "none of them is a host of ai_stack" in run.stdout


def test_the_wrapper_refuses_to_run_without_its_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_STACK_PULL_")}
    run = subprocess.run([str(WRAPPER)], capture_output=True, text=True, env=env, check=False)
    assert run.returncode != 0 and "AI_STACK_PULL_URL" in run.stderr


def test_setup_installs_what_the_unit_runs() -> None:
    plays = yaml.safe_load((ROOT / "playbooks" / "pull_setup.yml").read_text())
    settings = plays[0]["vars"]
    service = (ROOT / "playbooks" / "templates" / "ai-stack-pull.service.j2").read_text()
    assert "ExecStart={{ ai_stack_pull_wrapper }}" in service
    assert "EnvironmentFile=/etc/ai-stack-pull.env" in service
    copies = [t["ansible.builtin.copy"] for t in plays[0]["tasks"] if "ansible.builtin.copy" in t]
    assert {"src": "ai-stack-pull", "dest": "{{ ai_stack_pull_wrapper }}"}.items() <= copies[0].items()
    assert settings["ai_stack_pull_wrapper"].startswith("/")


@pytest.mark.parametrize("playbook", ["pull", "pull_setup"])
def test_playbooks_resolve_from_the_collection(playbook: str) -> None:
    run = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", f"selfhosted.ai_stack.{playbook}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
