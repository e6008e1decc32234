"""The public Python API: every public name has a docstring (modules,
classes, functions, and the public methods and properties of the classes),
and the package says it is typed (py.typed)."""

from __future__ import annotations

import importlib
import inspect
import runpy
import sys
from pathlib import Path

import pytest

import polroute

# the API the README documents: one list, the one the API reference is built from
_TOOL = Path(__file__).resolve().parents[2] / "tools" / "build_api_docs.py"
PUBLIC_MODULES: list[str] = runpy.run_path(str(_TOOL))["MODULES"]


def test_mypy_checks_the_public_modules():
    """pyproject's [tool.mypy] files are the public modules (the list cannot drift)."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    conf = tomllib.loads((_TOOL.parents[1] / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    as_modules = {f.removeprefix("python/").removesuffix(".py").replace("/", ".") for f in conf}
    assert {m.removesuffix(".__init__") for m in as_modules} == set(PUBLIC_MODULES)


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and (inspect.isclass(v) or inspect.isfunction(v))
            and getattr(v, "__module__", None) == module.__name__
        ]
    return sorted(names)


def undocumented(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    missing = [] if (module.__doc__ or "").strip() else [module_name]
    for name in public_names(module):
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants: documented by the module (or a #: comment)
        if getattr(obj, "__module__", module_name) != module_name and module_name != "polroute":
            continue  # re-exported: checked where it is defined
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                target = value.fget if isinstance(value, property) else value
                if isinstance(target, (staticmethod, classmethod)):
                    target = target.__func__
                if inspect.isfunction(target) and not (target.__doc__ or "").strip():
                    missing.append(f"{module_name}.{name}.{attr}")
    return missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name):
    assert undocumented(module_name) == []


def test_the_package_is_typed():
    assert (Path(polroute.__file__).parent / "py.typed").exists()
