"""Loading one test module (or tests/reference_model.py) from another, once.

pytest imports test files by path (``--import-mode=importlib``-safe names
below), so a test module that reuses another's generators loads it here:
one module object per file for the whole run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def load(name: str, path: Path):
    """The module at path, registered in sys.modules as name (loaded once)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def reference_vs_core():
    """tests/py/test_reference_vs_core.py: the random policy generator (Gen, Flow, PROPERTY)."""
    return load("polroute_tests_reference_vs_core", TESTS / "py" / "test_reference_vs_core.py")
