"""Bulk evaluation: many IPv4 or IPv6 questions from columns into columns.

Inputs are numpy arrays or any C-contiguous buffers (array.array, memoryview)
of the right item size; they are passed to C without copying.  IPv4
addresses are uint32 in host order (``int(ipaddress.IPv4Address(s))``).
IPv6 addresses are rows of 16 bytes in network order: a uint8 array of shape
(n, 16) (``np.dtype("V16")`` / ``"S16"`` arrays of shape (n,) are viewed as
that); :func:`v6_column` makes one from ipaddress objects, strings or ints.
A 16-byte ``dst`` (or ``family=6``) selects IPv6; the answer's ``gateway``
and ``prefsrc`` are then (n, 16) uint8 too (all zero = none;
:func:`v6_addresses` turns them back into ipaddress objects).  The C call
releases the GIL, so several threads can evaluate on one Policy at once (as
long as nobody changes it meanwhile).  No Python object is made per flow.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from polroute._core.binding import lib
from polroute._core.codec import column, column_types, columns_struct, out_struct
from polroute._core.errors import check

if TYPE_CHECKING:  # annotations only: policy.py imports this module through compiled.py
    from polroute.model.compiled import CompiledPolicy
    from polroute.model.policy import Policy

# column -> (C type, numpy dtype); the C types are read from the structs
_DTYPES = {"uint8_t": np.uint8, "uint16_t": np.uint16, "uint32_t": np.uint32, "int32_t": np.int32}


def _columns(
    cname: str, rename: dict[str, str] | None = None, skip: tuple[str, ...] = ()
) -> dict[str, tuple[str, Any]]:
    rename = rename or {}
    return {rename.get(m, m): (f"{t}[]", _DTYPES[t]) for m, t in column_types(cname).items() if m not in skip}


_IN_COLUMNS = _columns("pr_bulk_in")
_OUT_COLUMNS = _columns("pr_bulk_out")
# IPv6: the same columns except 16-byte addresses; ``tos`` is the traffic class
_C6_FIELD = {"tos": "tclass"}
_IN6_COLUMNS = _columns("pr_bulk6_in", {"tclass": "tos"}, skip=("order",))
_OUT6_COLUMNS = _columns("pr_bulk6_out")
_out_arrays = operator.attrgetter(*_OUT_COLUMNS)  # a BulkResult's output arrays, in _OUT_COLUMNS order
_out6_arrays = operator.attrgetter(*_OUT6_COLUMNS)
# From this many IPv6 rows on, lookup_bulk evaluates them in address order
# (radix sort by the top 32 bits, ~10-30 ns/row): big tables' trie paths then
# stay in cache (bench/README.md, IPv6).
ORDER_MIN_ROWS = 8192
NO_RULE = 0xFFFFFFFF
# Tables with at least this many prefixes are compiled (lpm4.c) before a bulk
# call; smaller ones are quick enough as tries and a compiled copy costs ~2 MB.
COMPILE_MIN_PREFIXES = 256
# From this many IPv4 dst/src rows on, lookup_bulk on a (mutable) Policy uses
# the specialised evaluator (fast4.c) built for the policy's current state:
# building it costs about what the exact path spends on 10-60k rows.
AUTO_FAST_ROWS = 65536


@dataclass
class BulkResult:
    """Output columns (numpy arrays of length n).  ``error`` is 0 or an errno;
    ``rule_priority`` is NO_RULE when no rule decided (merged fast path or an
    error before the walk); ``flags`` has the not-modelled bits (non-zero
    means: do not trust that row).  For IPv6 (``family == 6``) ``gateway``
    and ``prefsrc`` have shape (n, 16), network byte order."""

    error: np.ndarray
    type: np.ndarray
    table: np.ndarray
    rule_priority: np.ndarray
    oif: np.ndarray
    gateway: np.ndarray
    prefsrc: np.ndarray
    flags: np.ndarray
    family: int = 4
    # rows the specialised evaluator answered (None: the exact path ran alone)
    fast_rows: int | None = None


def _as_column(name: str, value: Any, n: int | None) -> np.ndarray:
    ctype, dtype = _IN_COLUMNS[name]
    arr = value
    if not isinstance(value, np.ndarray):
        try:
            mv = memoryview(value)
        except TypeError:
            arr = np.asarray(value, dtype=dtype)
        else:
            arr = (
                np.frombuffer(mv, dtype=dtype)
                if mv.itemsize == np.dtype(dtype).itemsize
                and mv.format.lstrip("@=<")
                in (np.dtype(dtype).char, {4: "I", 2: "H", 1: "B"}[mv.itemsize], {4: "L", 2: "H", 1: "B"}[mv.itemsize])
                else None
            )
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


def v6_column(values: Any, name: str = "dst") -> np.ndarray:
    """IPv6 addresses as a C-contiguous uint8 array of shape (n, 16).

    Accepts such an array (returned as is), a 1-D ``V16``/``S16`` array, a
    bytes-like object of 16*n bytes, or an iterable of ipaddress.IPv6Address,
    strings or ints (each converted with ipaddress.IPv6Address)."""
    if isinstance(values, np.ndarray):
        arr = values
        if arr.ndim == 1 and arr.dtype.kind in "VS" and arr.dtype.itemsize == 16:
            arr = np.ascontiguousarray(arr).view(np.uint8).reshape(-1, 16)
        if arr.dtype != np.uint8:
            raise TypeError(f"{name}: dtype {arr.dtype}, expected uint8 rows of 16 bytes (IPv6)")
        if arr.ndim != 2 or arr.shape[1] != 16:
            raise ValueError(f"{name}: expected shape (n, 16) for IPv6 addresses, got {arr.shape}")
        return np.ascontiguousarray(arr)
    if isinstance(values, (bytes, bytearray, memoryview)):
        raw = memoryview(values).cast("B")
        if len(raw) % 16:
            raise ValueError(f"{name}: {len(raw)} bytes is not a multiple of 16 (IPv6 rows)")
        return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)
    packed = bytearray()
    for k, v in enumerate(values):
        try:
            packed += ipaddress.IPv6Address(v).packed
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name}[{k}]: {v!r} is not an IPv6 address ({e})") from None
    return np.frombuffer(bytes(packed), dtype=np.uint8).reshape(-1, 16)


def v6_addresses(column: np.ndarray) -> list[ipaddress.IPv6Address | None]:
    """Rows of a (n, 16) uint8 column as ipaddress.IPv6Address, None for all-zero rows."""
    raw = np.ascontiguousarray(column, dtype=np.uint8).reshape(-1, 16)
    zero = cast("np.ndarray", ~raw.any(axis=1))
    return [None if zero[i] else ipaddress.IPv6Address(raw[i].tobytes()) for i in range(raw.shape[0])]


def _is_v6(dst: Any) -> bool:
    """A dst column that can only be IPv6: 16-byte rows, or IPv6 objects/strings."""
    if isinstance(dst, np.ndarray):
        return (dst.ndim == 2 and dst.shape[-1] == 16) or (dst.dtype.kind in "VS" and dst.dtype.itemsize == 16)
    if isinstance(dst, (list, tuple)) and dst:
        first = dst[0]
        return isinstance(first, ipaddress.IPv6Address) or (isinstance(first, str) and ":" in first)
    return False


def _v4_list(value: Any) -> Any:
    """A list of IPv4Address objects or dotted strings as uint32 (other values unchanged)."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (str, ipaddress.IPv4Address)):
        return np.fromiter((int(ipaddress.IPv4Address(v)) for v in value), dtype=np.uint32, count=len(value))
    return value


def lookup_bulk(
    policy: Policy | CompiledPolicy,
    dst: Any,
    *,
    src: Any = None,
    iif: Any = None,
    oif: Any = None,
    tos: Any = None,
    mark: Any = None,
    uid: Any = None,
    ipproto: Any = None,
    sport: Any = None,
    dport: Any = None,
    out: BulkResult | None = None,
    linear: bool = False,
    family: int | None = None,
    order: bool | None = None,
    fast: bool | None = None,
) -> BulkResult:
    """Answer len(dst) IPv4 or IPv6 route questions; see the module docstring.

    ``iif`` non-zero selects the input path for that row (ifindex, see
    ``Policy.ifindex``); ``src`` 0 means no source given; ``ipproto`` 0 the
    default (UDP); ``uid`` None the caller's uid (0 as root).  Pass ``out``
    to reuse output arrays.  ``linear=True`` gives the same answers with
    the rule index switched off (each walk scans the rule list, as the
    kernel does): a baseline for benchmarks.  ``family`` (4 or 6) is
    taken from ``dst`` when not given: 16-byte rows mean IPv6; for IPv6
    ``src`` rows of all zero mean no source and ``tos`` is the traffic class.
    ``order`` (IPv6): evaluate the rows sorted by their top 32 bits
    (pr_bulk6_order) so that neighbours share trie paths in cache; the
    answers and their positions are unchanged.  None: when n >= ORDER_MIN_ROWS.
    ``fast`` (IPv4): use the specialised evaluator (fast4.c, same answers;
    rows it does not cover take the exact path).  None: always on a
    :class:`polroute.model.compiled.CompiledPolicy` (built once, on first use),
    and on a Policy for batches of at least AUTO_FAST_ROWS rows with only
    dst/src columns (built for the policy as it is and kept until its next
    change); True: also for smaller batches; False: the exact path.
    """
    if family is None:
        family = 6 if _is_v6(dst) else 4
    if family == 6 and fast:
        raise ValueError("fast=True: the specialised evaluator is IPv4 only")
    # (name, column or None) in the structs' order
    extra = (
        ("src", src),
        ("iif", iif),
        ("oif", oif),
        ("tos", tos),
        ("mark", mark),
        ("uid", uid),
        ("ipproto", ipproto),
        ("sport", sport),
        ("dport", dport),
    )
    if family == 6:
        return _lookup_bulk_v6(policy, dst, extra, out, linear, order)
    if family != 4:
        raise ValueError(f"family: {family!r}, expected 4 or 6")
    if order:
        raise ValueError("order: only for IPv6 (IPv4 tables are compiled instead)")
    if fast and linear:
        raise ValueError("fast=True and linear=True: the linear walk is the exact path's")
    cols = _v4_columns(dst, extra)
    n = cols["dst"].shape[0]
    fast_of = _fast_evaluator(policy, cols, n, fast, linear)
    out = _v4_out(out, n)
    # tables whose prefixes changed get their compiled LPM copy rebuilt (a no-op when current)
    check(lib.pr_policy_compile(policy._h, COMPILE_MIN_PREFIXES), "pr_policy_compile")
    cin, keep_in = columns_struct("pr_bulk_in", cols)
    cout, keep_out = columns_struct("pr_bulk_out", zip(_OUT_COLUMNS, _out_arrays(out)), writable=True)
    if fast_of is not None:
        slow = out_struct("size_t")
        rc = lib.pr_fast4_lookup_bulk(fast_of(), n, cin, cout, slow)
        out.fast_rows = n - int(slow[0])
    else:
        out.fast_rows = None
        rc = (lib.pr_lookup_bulk_v4_linear if linear else lib.pr_lookup_bulk_v4)(policy._h, n, cin, cout)
    check(rc, "pr_lookup_bulk_v4")
    del keep_in, keep_out
    return out


def _v4_columns(dst: Any, extra: tuple[tuple[str, Any], ...]) -> dict[str, np.ndarray]:
    """{column: uint/int array} of the given IPv4 input columns, all of dst's length."""
    cols = {"dst": _as_column("dst", _v4_list(dst), None)}
    n = cols["dst"].shape[0]
    for name, value in extra:
        if value is not None:
            cols[name] = _as_column(name, _v4_list(value) if name == "src" else value, n)
    return cols


def _fast_evaluator(
    policy: Policy | CompiledPolicy, cols: dict[str, np.ndarray], n: int, fast: bool | None, linear: bool
) -> Callable[[], Any] | None:
    """The specialised evaluator's getter, or None for the exact path: always
    on a CompiledPolicy (immutable); on a Policy for big batches of dst/src
    questions (built for the policy as it is, rebuilt after a change: worth
    it from about AUTO_FAST_ROWS rows)."""
    fast_of = None
    if not linear and fast is not False:
        fast_of = getattr(policy, "_fast4", None)
        if fast_of is None and (fast or (n >= AUTO_FAST_ROWS and set(cols) <= {"dst", "src"})):
            fast_of = getattr(policy, "_fast4_current", None)
    if fast and fast_of is None:
        raise ValueError("fast=True: needs a Policy or CompiledPolicy")
    return fast_of


def _v4_out(out: BulkResult | None, n: int) -> BulkResult:
    """New output columns for n rows, or out once its columns are checked."""
    if out is None:
        return BulkResult(
            **cast("dict[str, Any]", {name: np.empty(n, dtype=dt) for name, (_, dt) in _OUT_COLUMNS.items()})
        )
    for name, (_, dt) in _OUT_COLUMNS.items():
        a = getattr(out, name)
        if a.dtype != dt or a.shape != (n,) or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"out.{name}: need a writable contiguous {np.dtype(dt).name}[{n}]")
    return out


def _lookup_bulk_v6(
    policy: Policy | CompiledPolicy,
    dst: Any,
    extra: tuple[tuple[str, Any], ...],
    out: BulkResult | None,
    linear: bool,
    order: bool | None,
) -> BulkResult:
    cols = {"dst": v6_column(dst, "dst")}
    n = cols["dst"].shape[0]
    for name, value in extra:
        if value is None:
            continue
        if name == "src":
            col = v6_column(value, "src")
            if col.shape[0] != n:
                raise ValueError(f"src: length {col.shape[0]} != {n}")
            cols[name] = col
        else:
            cols[name] = _as_column(name, value, n)
    shapes = {name: (n, 16) if name in ("gateway", "prefsrc") else (n,) for name in _OUT6_COLUMNS}
    if out is None:
        out = BulkResult(
            **cast(
                "dict[str, Any]", {name: np.empty(shapes[name], dtype=dt) for name, (_, dt) in _OUT6_COLUMNS.items()}
            ),
            family=6,
        )
    else:
        for name, (_, dt) in _OUT6_COLUMNS.items():
            a = getattr(out, name)
            if a.dtype != dt or a.shape != shapes[name] or not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError(f"out.{name}: need a writable contiguous {np.dtype(dt).name}{list(shapes[name])}")
        out.family = 6
    cin, keep = columns_struct("pr_bulk6_in", cols, rename=_C6_FIELD)
    cout, keep_out = columns_struct("pr_bulk6_out", zip(_OUT6_COLUMNS, _out6_arrays(out)), writable=True)
    keep += keep_out
    if order or (order is None and n >= ORDER_MIN_ROWS):
        perm = np.empty(n, dtype=np.uint32)
        scratch = np.empty(2 * n, dtype=np.uint64)
        c_perm = column("uint32_t", perm, writable=True)
        c_scratch = column("uint64_t", scratch, writable=True)
        keep += [c_perm, c_scratch]
        if lib.pr_bulk6_order(n, cin.dst, c_perm, c_scratch) < 0:
            raise ValueError(f"dst: {n} rows: too many to order")
        cin.order = c_perm
    rc = (lib.pr_lookup_bulk_v6_linear if linear else lib.pr_lookup_bulk_v6)(policy._h, n, cin, cout)
    check(rc, "pr_lookup_bulk_v6")
    del keep
    return out
