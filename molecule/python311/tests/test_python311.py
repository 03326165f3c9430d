"""CPython 3.11 built once, installed many times: py311-builder compiled it from source and shared an
archive through the controller cache; py311-installer installed that archive and never compiled.

The tests that run ansible-playbook again (a tampered archive, a reinstall from the cache, a changed
option) put every host back the way they found it, so the order of the tests does not matter."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import testinfra

VERSION = "3.11.2"
PREFIX = f"/opt/ai_stack/python/{VERSION}-nopgo-nolto"
PYTHON = f"{PREFIX}/bin/python3.11"
MARKER = f"{PREFIX}/BUILD-INFO.json"
BUILD_ROOT = "/opt/ai_stack/python/.build"
BUILDER = "py311-builder"
INSTALLER = "py311-installer"
MODULES = "ssl, sqlite3, ctypes, lzma, bz2, readline, uuid, zlib, venv"
RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=0\s+failed=0", re.M)


def _name(host) -> str:
    return host.backend.get_hostname()


def _marker(host) -> dict:
    return json.loads(host.file(MARKER).content_string)


def _cache() -> Path:
    return Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache" / "molecule-artifacts" / "shared" / "python311"


def _archive() -> Path:
    archives = sorted(_cache().glob("*.tar.zst"))
    assert len(archives) == 1, archives
    return archives[0]


def _host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def _release_key(host) -> str:
    """The role's OS release key (distribution-codename-architecture), e.g. debian-trixie-x86_64."""
    info = host.system_info
    return f"{info.distribution}-{info.codename}-{info.arch}".lower()


def _flat(text: str) -> str:
    """The output with line wrapping undone (the yaml callback wraps long messages)."""
    return " ".join(text.split())


def _converge(*args: str) -> subprocess.CompletedProcess[str]:
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


class _MarkerRemoved:
    """Remove a host's build marker (so the role sees no installation) and put it back afterwards."""

    def __init__(self, host) -> None:
        self.host = host
        self.saved = ""

    def __enter__(self):
        self.saved = base64.b64encode(self.host.file(MARKER).content).decode()
        self.host.check_output(f"rm {MARKER}")
        return self

    def __exit__(self, *exc) -> None:
        self.host.check_output(f"echo {self.saved} | base64 -d > {MARKER}")


# Every host: a working interpreter with all its optional modules.


def test_optional_modules_import_and_use_system_libraries(host):
    out = host.check_output(
        f"{PYTHON} -c 'import {MODULES}; print(sqlite3.sqlite_version); print(ssl.OPENSSL_VERSION)'"
    )
    sqlite_version, openssl_version = out.splitlines()
    print(f"{_name(host)}: sqlite3.sqlite_version={sqlite_version} ssl.OPENSSL_VERSION={openssl_version}")
    # Linked against the distribution's libraries, not something bundled.
    assert host.check_output("dpkg-query -W -f '${Version}' libsqlite3-0").startswith(sqlite_version)
    # The package of the libssl that _ssl links: libssl3 on Debian 12, libssl3t64 on Ubuntu 24.04 and Debian 13.
    ssl_module = host.check_output(f"{PYTHON} -c 'import _ssl; print(_ssl.__file__)'")
    libssl = host.check_output(f"readlink -f $(ldd {ssl_module} | awk '/libssl[.]so/ {{print $3}}')")
    package = host.check_output(f"dpkg -S {libssl}").split(":")[0]
    version = host.check_output(f"dpkg-query -W -f '${{Version}}' {package}")
    assert openssl_version.startswith(f"OpenSSL {version.split('-')[0]} "), (package, version)


def test_version_matches(host):
    assert host.check_output(f"{PYTHON} --version") == f"Python {VERSION}"
    assert host.check_output(f"{PYTHON} -c 'import sys; print(sys.prefix)'") == PREFIX


def test_pip_works(host):
    out = host.check_output(f"{PYTHON} -m pip --version")
    assert out.startswith("pip ")
    assert f"{PREFIX}/lib/python3.11/site-packages/pip" in out
    assert "(python 3.11)" in out


def test_a_venv_from_it_has_pip(host):
    # /var/tmp, not /tmp: /tmp is noexec in the test containers, as on many servers.
    venv = "/var/tmp/py311-test-venv"
    try:
        host.check_output(f"{PYTHON} -m venv {venv}")
        assert host.check_output(f"{venv}/bin/python -c 'import sys; print(sys.base_prefix)'") == PREFIX
        assert "(python 3.11)" in host.check_output(f"{venv}/bin/python -m pip --version")
    finally:
        host.run(f"rm -rf {venv}")


def test_system_python_left_alone(host):
    # Still the distribution's interpreter (python3.11 on Debian 12, 3.12 on Ubuntu 24.04, 3.13 on Debian 13).
    system_python = host.check_output("readlink -f /usr/bin/python3")
    assert re.fullmatch(r"/usr/bin/python3\.\d+", system_python)
    assert host.run(f"dpkg -S {system_python}").rc == 0
    assert not host.file("/usr/local/bin/python3.11").exists
    assert host.check_output("command -v python3") == "/usr/bin/python3"


def test_the_test_suite_is_left_out(host):
    """python311_with_test_suite false (the default): no Lib/test, no _testcapi, a third smaller."""
    lib = f"{PREFIX}/lib/python{VERSION.rsplit('.', 1)[0]}"
    assert host.file(f"{lib}/json/__init__.py").exists
    assert not host.file(f"{lib}/test").exists
    assert host.run(f"{PREFIX}/bin/python3.11 -c 'import _testcapi'").rc != 0
    size = int(host.check_output(f"du -sm {PREFIX} | cut -f1"))
    print(f"installed CPython: {size} MB")
    assert size < 250


def test_build_tree_removed(host):
    assert host.check_output(f"find {BUILD_ROOT} -mindepth 1 -print") == ""


def test_marker_describes_the_build(host):
    marker = _marker(host)
    assert marker["identity"]["version"] == VERSION
    assert marker["identity"]["os_release"] == _release_key(host)
    assert marker["identity"]["configure_args"] == [
        f"--prefix={PREFIX}",
        "--with-ensurepip=install",
        "--disable-test-modules",
    ]
    assert marker["archive"] == _archive().name
    assert marker["archive_sha256"] == hashlib.sha256(_archive().read_bytes()).hexdigest()


# Build once, install many.


def test_builder_compiled(host):
    if _name(host) != BUILDER:
        pytest.skip("builder only")
    marker = _marker(host)
    assert marker["origin"] == "built"
    assert marker["built_by"] == BUILDER
    assert marker["build_seconds"] > 0
    assert host.package("build-essential").is_installed


def test_installer_never_compiled(host):
    if _name(host) != INSTALLER:
        pytest.skip("installer only")
    marker = _marker(host)
    assert marker["origin"] == "archive"
    assert "build_seconds" not in marker
    # Never had a compiler, so it cannot have built anything.
    assert not host.package("build-essential").is_installed
    assert not host.exists("gcc")
    assert host.check_output("find / -xdev '(' -name make.log -o -name config.status ')' -print") == ""


def test_archive_and_checksum_in_controller_cache():
    archive = _archive()
    digest, name = (archive.parent / f"{archive.name}.sha256").read_text().split()
    assert name == archive.name
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    assert archive.name.startswith(f"cpython-{VERSION}-nopgo-nolto-{_release_key(_host(BUILDER))}-")


def test_installing_the_archive_is_much_faster_than_building():
    built, installed = _marker(_host(BUILDER)), _marker(_host(INSTALLER))
    ratio = built["build_seconds"] / installed["install_seconds"]
    print(
        f"build {built['build_seconds']} s (make -j{built['build_jobs']}), pack and share {built['pack_seconds']} s, "
        f"install from archive {installed['install_seconds']} s: ratio {ratio:.0f}x, "
        f"archive {_archive().stat().st_size / 1e6:.0f} MB"
    )
    assert ratio > 5


# Runs of the role beyond converge: refused archive, reinstall from the cache, changed option.


def test_tampered_archive_is_refused(tmp_path):
    installer = _host(INSTALLER)
    cache = tmp_path / "artifacts"
    shutil.copytree(_cache(), cache / "python311")
    with (cache / "python311" / _archive().name).open("ab") as archive:
        archive.write(b"tampered")
    with _MarkerRemoved(installer):
        run = _converge("--limit", INSTALLER, "-e", f"ai_stack_artifact_cache_dir={cache}")
        output = _flat(run.stdout + run.stderr)
        assert run.returncode != 0, output[-3000:]
        assert f"Refusing {cache / 'python311' / _archive().name}: its sha256 is" in output, output[-3000:]
        assert "The cached file was changed or damaged; nothing was installed." in output
        # The refused file is gone and the installed interpreter was not touched.
        assert installer.check_output(f"find {BUILD_ROOT} -mindepth 1 -print") == ""
        assert installer.run(f"{PYTHON} -c 'import {MODULES}'").rc == 0


def test_later_run_installs_from_cache_without_building():
    builder = _host(BUILDER)
    with _MarkerRemoved(builder):
        run = _converge("--limit", BUILDER)
        assert run.returncode == 0, run.stdout[-3000:]
        recap = {m["host"]: int(m["changed"]) for m in RECAP.finditer(run.stdout)}
        assert recap.get(BUILDER, 0) > 0, run.stdout[-3000:]
        assert "Compile with make" not in run.stdout
        assert "Unpack the archive" in run.stdout
        reinstalled = _marker(builder)
        assert reinstalled["origin"] == "archive"
        print(f"reinstall from the controller cache: {reinstalled['install_seconds']} s")
    assert _marker(builder)["origin"] == "built"


def test_changed_option_plans_a_new_prefix_and_keeps_the_old_one():
    run = _converge("--limit", INSTALLER, "--check", "-e", "python311_with_lto=true")
    assert run.returncode == 0, run.stdout[-3000:]
    new_prefix = f"/opt/ai_stack/python/{VERSION}-nopgo "
    assert f"from source into {new_prefix}" in _flat(run.stdout), run.stdout[-3000:]
    installer = _host(INSTALLER)
    assert installer.file(PYTHON).exists
    assert not installer.file(new_prefix.strip()).exists
