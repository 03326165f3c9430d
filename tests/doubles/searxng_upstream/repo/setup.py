# SPDX-License-Identifier: GPL-3.0-or-later
"""Installer of the SearXNG TEST DOUBLE (not SearXNG), shaped like upstream's setup.py.

Like upstream it imports the package it installs (for the version and settings), so msgspec and
PyYAML must already be in the environment that runs it: ``pip install -e .`` fails with build
isolation, and the upstream order (build requirements first, then ``--no-build-isolation``) works.
"""

from searx import get_setting
from searx.version import GIT_URL, VERSION_TAG
from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as f:
    long_description = f.read()

with open("requirements.txt", encoding="utf-8") as f:
    requirements = [line.strip() for line in f if line.strip()]

with open("requirements-dev.txt", encoding="utf-8") as f:
    dev_requirements = [line.strip() for line in f if line.strip()]

setup(
    name="searxng",
    description="TEST DOUBLE of SearXNG for selfhosted.ai_stack (not SearXNG)",
    long_description=long_description,
    license="GPL-3.0-or-later",
    python_requires=">=3.10",
    version=VERSION_TAG,
    url=get_setting("brand.docs_url"),
    project_urls={"Code": GIT_URL},
    packages=find_packages(include=["searx", "searx.*"]),
    package_data={"searx": ["settings.yml"]},
    install_requires=requirements,
    extras_require={"test": dev_requirements},
)
