"""Compiled IPv4 longest-prefix match: ``Lpm4``, a read-only table built once
from prefix columns (C: ``pr_lpm4_*`` in polroute.h, csrc/lpm4.c).

    t = Lpm4(addr, plen, value)          # numpy columns (uint32, uint8, uint32)
    vals = t.lookup_bulk(dst)            # uint32 array; Lpm4.NONE = no match

Addresses are uint32 in host order.  Values are the caller's (< NONE); for a
repeated (addr, plen) the last one wins.  The lookup call releases the GIL
and only reads the table, so threads may share one Lpm4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polroute._core.binding import ffi, lib
from polroute._core.codec import column, out_struct


def _column(name: str, value: Any, dtype: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D column, got shape {arr.shape}")
    if arr.dtype != dtype:
        if arr.dtype.kind not in "ui" or (arr.size and (arr.min() < 0 or arr.max() > np.iinfo(dtype).max)):
            raise TypeError(f"{name}: dtype {arr.dtype} does not fit {np.dtype(dtype).name}")
        arr = arr.astype(dtype)
    return np.ascontiguousarray(arr)


class Lpm4:
    """A compiled IPv4 longest-prefix-match table: ``Lpm4(addr, plen, value)`` columns in, lookups by
    address (one, or a column in C with the GIL released)."""

    NONE = int(lib.PR_LPM4_NONE)

    def __init__(self, addr: Any, plen: Any, value: Any) -> None:
        a = _column("addr", addr, np.uint32)
        p = _column("plen", plen, np.uint8)
        v = _column("value", value, np.uint32)
        if not (a.shape == p.shape == v.shape):
            raise ValueError(f"addr, plen, value: lengths {a.shape[0]}, {p.shape[0]}, {v.shape[0]} differ")
        if p.size and int(p.max()) > 32:
            raise ValueError(f"plen: {int(p.max())} > 32 at index {int(p.argmax())}")
        if v.size and int(v.max()) >= self.NONE:
            raise ValueError(f"value: {int(v.max())} at index {int(v.argmax())} is >= Lpm4.NONE ({self.NONE})")
        out = out_struct("pr_lpm4 *")
        rc = lib.pr_lpm4_build(
            out,
            a.shape[0],
            column("uint32_t", a),
            column("uint8_t", p),
            column("uint32_t", v),
        )
        if rc < 0:
            raise MemoryError("pr_lpm4_build") if rc == -lib.PR_LPM4_ENOMEM else ValueError("pr_lpm4_build: bad input")
        self._h = ffi.gc(out[0], lib.pr_lpm4_free)

    def lookup_bulk(self, dst: Any, out: np.ndarray | None = None) -> np.ndarray:
        """The value of the longest matching prefix per address of ``dst`` (``NONE`` where none matches)."""
        d = _column("dst", dst, np.uint32)
        n = d.shape[0]
        if out is None:
            out = np.empty(n, dtype=np.uint32)
        elif out.dtype != np.uint32 or out.shape != (n,) or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"out: need a writable contiguous uint32[{n}]")
        lib.pr_lpm4_lookup_bulk(self._h, n, column("uint32_t", d), column("uint32_t", out, writable=True))
        return out

    def lookup(self, addr: int) -> int | None:
        """The value of the longest prefix matching ``addr`` (a host-order IPv4 integer), or None."""
        v = int(lib.pr_lpm4_lookup(self._h, addr))
        return None if v == self.NONE else v

    @property
    def memory(self) -> int:
        """Bytes held by the compiled structure."""
        return int(lib.pr_lpm4_memory(self._h))

    def __len__(self) -> int:
        return int(lib.pr_lpm4_count(self._h))
