"""The public Python API: every public name has a docstring (modules,
classes, functions, and the public methods and properties of the classes),
and the package says it is typed (py.typed)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import polroute

# the API the README documents
PUBLIC_MODULES = [
    "polroute",
    "polroute.model.policy",
    "polroute.model.compiled",
    "polroute.model.bulk",
    "polroute.model.lpm",
    "polroute.model.kernel_profile",
    "polroute.iproute2.batch",
    "polroute.iproute2.route_get",
    "polroute.iproute2.keywords",
    "polroute.iproute2.rt_tables",
    "polroute._core.errors",
    "polroute.types.requests",
    "polroute.cli.exitcodes",
]


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
