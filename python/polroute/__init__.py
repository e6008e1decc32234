"""polroute: an offline model of Linux policy routing, with a C core.

``Policy`` and ``PolicyError`` load the compiled core on first use, so that
``import polroute`` (and ``polroute --help``) stays fast.  ``Policy`` comes
with its keyword form enabled (``policy.rule("add", src=..., table=1)``,
:mod:`polroute.iproute2.keywords`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at startup
if TYPE_CHECKING:
    from polroute._core.errors import PolicyError
    from polroute.model.policy import Policy

__version__ = "0.1.0"

__all__ = ["Policy", "PolicyError", "__version__"]


def __getattr__(name: str) -> object:
    if name == "Policy":
        import polroute.iproute2.keywords  # noqa: F401  (Policy.rule/route's keyword form)
        from polroute.model.policy import Policy

        globals()["Policy"] = Policy  # loaded once; documentation tools see it now
        return Policy
    if name == "PolicyError":
        from polroute._core.errors import PolicyError

        globals()["PolicyError"] = PolicyError
        return PolicyError
    raise AttributeError(f"module 'polroute' has no attribute {name!r}")
