"""The specialised IPv4 evaluator (csrc/fast4.c) as a Python object."""

from __future__ import annotations

from typing import Any

from polroute._core.binding import ffi, lib
from polroute._core.codec import out_struct
from polroute._core.errors import check


def build_fast4(handle: Any) -> Any:
    """pr_fast4_build on a policy handle; the evaluator is freed with the
    returned object (it must not outlive the policy, nor see it change)."""
    hp = out_struct("pr_fast4 *")
    rc = lib.pr_fast4_build(handle, hp)
    check(rc, "pr_fast4_build")
    return ffi.gc(hp[0], lib.pr_fast4_free)
