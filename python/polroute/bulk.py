"""Bulk evaluation: many IPv4 questions from columns into columns.

Inputs are numpy arrays or any C-contiguous buffers (array.array, memoryview)
of the right item size; they are passed to C without copying.  IPv4
addresses are uint32 in host order (``int(ipaddress.IPv4Address(s))``).  The C
call releases the GIL, so several threads can evaluate on one Policy at once
(as long as nobody changes it meanwhile).  No Python object is made per flow.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._polroute_cffi import ffi, lib
from .policy import Policy

# column -> (C type, numpy dtype)
_IN_COLUMNS = {
    "dst": ("uint32_t[]", np.uint32), "src": ("uint32_t[]", np.uint32),
    "iif": ("uint32_t[]", np.uint32), "oif": ("uint32_t[]", np.uint32),
    "tos": ("uint8_t[]", np.uint8), "mark": ("uint32_t[]", np.uint32),
    "uid": ("uint32_t[]", np.uint32), "ipproto": ("uint8_t[]", np.uint8),
    "sport": ("uint16_t[]", np.uint16), "dport": ("uint16_t[]", np.uint16),
}
_OUT_COLUMNS = {
    "error": ("int32_t[]", np.int32), "type": ("uint8_t[]", np.uint8),
    "table": ("uint32_t[]", np.uint32), "rule_priority": ("uint32_t[]", np.uint32),
    "oif": ("uint32_t[]", np.uint32), "gateway": ("uint32_t[]", np.uint32),
    "prefsrc": ("uint32_t[]", np.uint32), "flags": ("uint32_t[]", np.uint32),
}
NO_RULE = 0xFFFFFFFF
# Tables with at least this many prefixes are compiled (lpm4.c) before a bulk
# call; smaller ones are quick enough as tries and a compiled copy costs ~2 MB.
COMPILE_MIN_PREFIXES = 256


@dataclass
class BulkResult:
    """Output columns (numpy arrays of length n).  ``error`` is 0 or an errno;
    ``rule_priority`` is NO_RULE when no rule decided (merged fast path or an
    error before the walk); ``flags`` has the not-modelled bits (non-zero
    means: do not trust that row)."""
    error: np.ndarray
    type: np.ndarray
    table: np.ndarray
    rule_priority: np.ndarray
    oif: np.ndarray
    gateway: np.ndarray
    prefsrc: np.ndarray
    flags: np.ndarray


def _as_column(name: str, value, n: Optional[int]):
    ctype, dtype = _IN_COLUMNS[name]
    arr = value
    if not isinstance(value, np.ndarray):
        try:
            mv = memoryview(value)
        except TypeError:
            arr = np.asarray(value, dtype=dtype)
        else:
            arr = np.frombuffer(mv, dtype=dtype) if mv.itemsize == np.dtype(dtype).itemsize and \
                mv.format.lstrip("@=<") in (np.dtype(dtype).char, {4: "I", 2: "H", 1: "B"}[mv.itemsize],
                                             {4: "L", 2: "H", 1: "B"}[mv.itemsize]) else None
            if arr is None:
                raise TypeError(f"{name}: buffer of format {mv.format!r}, expected {np.dtype(dtype).name}")
    if arr.dtype != dtype:
        if arr.dtype.kind not in "ui" or (arr.size and (arr.min() < 0 or arr.max() > np.iinfo(dtype).max)):
            raise TypeError(f"{name}: dtype {arr.dtype} does not fit {np.dtype(dtype).name}")
        arr = arr.astype(dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D column, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: length {arr.shape[0]} != {n}")
    return arr


def lookup_bulk(policy: Policy, dst, *, src=None, iif=None, oif=None, tos=None, mark=None,
                uid=None, ipproto=None, sport=None, dport=None,
                out: Optional[BulkResult] = None, linear: bool = False) -> BulkResult:
    """Answer len(dst) IPv4 route questions; see the module docstring.

    ``iif`` non-zero selects the input path for that row (ifindex, see
    ``Policy.ifindex``); ``src`` 0 means no source given; ``ipproto`` 0 the
    default (UDP); ``uid`` None the caller's uid (0 as root).  Pass ``out``
    to reuse output arrays.  ``linear=True`` gives the same answers with
    the rule index switched off (each walk scans the rule list, as the
    kernel does): a baseline for benchmarks.
    """
    cols = {"dst": _as_column("dst", dst, None)}
    n = cols["dst"].shape[0]
    for name, value in (("src", src), ("iif", iif), ("oif", oif), ("tos", tos), ("mark", mark),
                        ("uid", uid), ("ipproto", ipproto), ("sport", sport), ("dport", dport)):
        if value is not None:
            cols[name] = _as_column(name, value, n)
    if out is None:
        out = BulkResult(**{name: np.empty(n, dtype=dt) for name, (_, dt) in _OUT_COLUMNS.items()})
    else:
        for name, (_, dt) in _OUT_COLUMNS.items():
            a = getattr(out, name)
            if a.dtype != dt or a.shape != (n,) or not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError(f"out.{name}: need a writable contiguous {np.dtype(dt).name}[{n}]")
    # tables whose prefixes changed get their compiled LPM copy rebuilt (a no-op when current)
    if lib.pr_policy_compile(policy._h, COMPILE_MIN_PREFIXES) < 0:
        raise MemoryError("pr_policy_compile")
    cin = ffi.new("pr_bulk_in *")
    cout = ffi.new("pr_bulk_out *")
    keep = []
    for name, arr in cols.items():
        c = ffi.from_buffer(_IN_COLUMNS[name][0], arr)
        keep.append(c)
        setattr(cin, name, c)
    for name, (ctype, _) in _OUT_COLUMNS.items():
        c = ffi.from_buffer(ctype, getattr(out, name), require_writable=True)
        keep.append(c)
        setattr(cout, name, c)
    rc = (lib.pr_lookup_bulk_v4_linear if linear else lib.pr_lookup_bulk_v4)(policy._h, n, cin, cout)
    if rc < 0:
        raise OSError(-rc, "pr_lookup_bulk_v4")
    del keep
    return out
