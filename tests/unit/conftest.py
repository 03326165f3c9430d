"""Make this checkout importable as ``ansible_collections.selfhosted.ai_stack``.

The repository root *is* the collection, but Python can only import it under its
collection name when it sits at ``<dir>/ansible_collections/selfhosted/ai_stack``.
We point such a path at the checkout with a symlink in the git-ignored ``.cache``
directory (the same one ``make`` uses for ``ANSIBLE_COLLECTIONS_PATH``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO_ROOT / ".cache" / "collections"


def _link_collection() -> None:
    link = COLLECTIONS_ROOT / "ansible_collections" / "selfhosted" / "ai_stack"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    root = str(COLLECTIONS_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)
    # ``ansible_collections`` may already be imported from site-packages (the bundled
    # community collections); extend its namespace path so both locations resolve.
    namespace = sys.modules.get("ansible_collections")
    if namespace is not None and root + "/ansible_collections" not in list(namespace.__path__):
        namespace.__path__.append(root + "/ansible_collections")


def _register_ollama_double() -> None:
    """Make ``import fake_ollama`` load tests/doubles/ollama/fake_ollama.py (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("fake_ollama", REPO_ROOT / "tests/doubles/ollama/fake_ollama.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_ollama"] = module
    spec.loader.exec_module(module)


_link_collection()
_register_ollama_double()
