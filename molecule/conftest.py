"""Shared by every scenario's testinfra tests: make molecule/shared importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "shared"))
