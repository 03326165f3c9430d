# SPDX-License-Identifier: GPL-3.0-or-later
"""Version of the SearXNG TEST DOUBLE (not SearXNG), read from git as upstream's searx/version.py.

The version is ``<commit date>+<short hash>`` of the checkout in the working directory, with
``+dirty`` when tracked files differ; started outside a git working tree (or where git refuses the
tree, e.g. "dubious ownership"), it logs the error and falls back to 1.0.0 and "unknown", exactly
the symptoms upstream shows. git runs with upstream's minimal environment (PATH, LC_ALL, LANGUAGE):
no HOME, so only the system git configuration applies.
"""

from __future__ import annotations

import logging
import os
import subprocess

logger = logging.getLogger("searx")

VERSION_STRING = "1.0.0"
VERSION_TAG = "1.0.0"
GIT_URL = "unknown"
GIT_BRANCH = "unknown"

SUBPROCESS_RUN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANGUAGE": ""}


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], env=SUBPROCESS_RUN_ENV, capture_output=True, text=True, check=True, encoding="utf-8"
    )
    return completed.stdout.strip()


def get_git_url_and_branch() -> tuple[str, str]:
    try:
        ref = _git("rev-parse", "--abbrev-ref", "@{upstream}")
    except subprocess.CalledProcessError:
        ref = _git("rev-parse", "--abbrev-ref", "master@{upstream}")
    origin, branch = ref.split("/", 1)
    url = _git("remote", "get-url", origin)
    if url.startswith("git@"):
        url = url.replace(":", "/", 2).replace("git@", "https://", 1)
    if url.endswith(".git"):
        url = url[: -len(".git")]
    return url, branch


def get_git_version() -> tuple[str, str]:
    date_hash = _git("show", "-s", "--date=format:%Y.%m.%d", "--format=%cd+%h").replace(".0", ".")
    version = date_hash
    try:
        _git("diff", "--quiet", "--", ".", ":!searx/settings.yml")
    except subprocess.CalledProcessError as error:
        if error.returncode == 1:
            version += "+dirty"
    return version, date_hash


def get_information() -> tuple[str, str, str, str]:
    version, tag, url, branch = VERSION_STRING, VERSION_TAG, GIT_URL, GIT_BRANCH
    try:
        version, tag = get_git_version()
    except (subprocess.CalledProcessError, OSError) as error:
        logger.error("Error while getting the version: %s", getattr(error, "stderr", error))
    try:
        url, branch = get_git_url_and_branch()
    except (subprocess.CalledProcessError, OSError, ValueError) as error:
        logger.error("Error while getting the git URL & branch: %s", getattr(error, "stderr", error))
    return version, tag, url, branch


VERSION_STRING, VERSION_TAG, GIT_URL, GIT_BRANCH = get_information()
logger.info("version: %s", VERSION_STRING)
