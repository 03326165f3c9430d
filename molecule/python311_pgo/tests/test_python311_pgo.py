"""The guide's build: profile-guided and link-time optimised CPython 3.11 (slow tier)."""

from __future__ import annotations

import json
import re

VERSION = "3.11.2"
PREFIX = f"/opt/ai_stack/python/{VERSION}"
PYTHON = f"{PREFIX}/bin/python3.11"
MODULES = "ssl, sqlite3, ctypes, lzma, bz2, readline, uuid, zlib, venv"


def test_optional_modules_import(host):
    out = host.check_output(
        f"{PYTHON} -c 'import {MODULES}; print(sqlite3.sqlite_version); print(ssl.OPENSSL_VERSION)'"
    )
    sqlite_version, openssl_version = out.splitlines()
    print(f"sqlite3.sqlite_version={sqlite_version} ssl.OPENSSL_VERSION={openssl_version}")
    assert openssl_version.startswith("OpenSSL 3.")


def test_version_and_pip(host):
    assert host.check_output(f"{PYTHON} --version") == f"Python {VERSION}"
    assert "(python 3.11)" in host.check_output(f"{PYTHON} -m pip --version")


def test_built_with_pgo_and_lto(host):
    script = "import json, sysconfig; print(json.dumps(sysconfig.get_config_vars()))"
    config = json.loads(host.check_output(f"{PYTHON} -c '{script}'"))
    assert "--enable-optimizations" in config["CONFIG_ARGS"]
    assert "--with-lto" in config["CONFIG_ARGS"]
    assert "-flto" in config["CONFIGURE_CFLAGS_NODIST"]
    assert "-flto" in config["CONFIGURE_LDFLAGS_NODIST"]
    # configure makes profile-opt (instrument, run the profile task, rebuild) the default target.
    makefile = host.file(f"{config['LIBPL']}/Makefile").content_string
    assert re.search(r"^all:\s+profile-opt$", makefile, re.M)


def test_marker_records_the_build_time(host):
    marker = json.loads(host.file(f"{PREFIX}/BUILD-INFO.json").content_string)
    assert marker["origin"] == "built"
    assert "--enable-optimizations" in marker["identity"]["configure_args"]
    print(f"PGO+LTO build: {marker['build_seconds']} s with make -j{marker['build_jobs']}")
    assert marker["build_seconds"] > 0
