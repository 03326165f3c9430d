"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each sanity venv by downloading ``get_pip_<ver>.py``
from an Ansible CI host. Machines without that host (CI here, branch-office build
boxes) fail there. This file is copied to ``~/.ansible/test/cache/`` under the name
ansible-test expects, and does the same job with the standard library's ensurepip.
"""

import ensurepip
import os
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null, hiding the machine's pip config (and so
# its index, proxy and CA settings) from the upgrade below.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--upgrade", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
