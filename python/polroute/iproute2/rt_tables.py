"""iproute2 6.1 name databases: rt_tables, rt_protos, rt_dsfield, rt_scopes,
rt_realms and group, parsed and looked up exactly as ``lib/rt_names.c`` does.

Two storage shapes exist in iproute2 and both are reproduced because they give
different answers for duplicate ids and names:

* *hash* (rt_tables, group): 256 buckets keyed by ``id & 255``, each new entry
  pushed at the bucket head.  id -> name walks one bucket (so the entry read
  last wins); name -> id scans buckets 0..255 (so the lowest bucket wins).
* *tab* (rt_protos, rt_dsfield, rt_scopes, rt_realms): a 256-slot array, a
  later line simply overwrites the slot.

The module also holds the small C number parsers (``strtoul`` and friends)
that iproute2's argument parsing is built on; the batch reader (:mod:`polroute.iproute2.args`
and the per-object modules) uses them so that ``0x10``, ``010`` or ``+5`` mean what they mean to ``ip``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

DEFAULT_CONFDIR = "/etc/iproute2"

# ---------------------------------------------------------------------------
# C number parsing (glibc semantics, 64-bit long)
# ---------------------------------------------------------------------------

ULONG_MAX = (1 << 64) - 1
_C_SPACE = " \t\n\v\f\r"


def _parse_digits(s: str, base: int, i: int) -> tuple[int, int, int]:
    """Digits of s from i (base 0 = C auto-detect, 16 takes an optional 0x):
    (magnitude, end, effective base); end == i when there are none."""
    n = len(s)
    # "0x" only counts as a prefix when a hex digit follows it
    if (
        base in (0, 16)
        and s[i : i + 2].lower() == "0x"
        and i + 2 < n
        and _digit(s[i + 2]) is not None
        and (_digit(s[i + 2]) or 0) < 16
    ):
        i += 2
        base = 16
    elif base == 0:
        base = 8 if s[i : i + 1] == "0" else 10
    start = i
    value = 0
    while i < n:
        d = _digit(s[i])
        if d is None or d >= base:
            break
        if value <= ULONG_MAX:  # past it the value only says "overflow" (no huge integers)
            value = value * base + d
        i += 1
    return value, i, start


def _skip_space_sign(s: str, i: int) -> tuple[int, bool]:
    while i < len(s) and s[i] in _C_SPACE:
        i += 1
    neg = False
    if i < len(s) and s[i] in "+-":
        neg = s[i] == "-"
        i += 1
    return i, neg


def strtoul(s: str, base: int = 0, pos: int = 0) -> tuple[int, int, bool]:
    """glibc strtoul on s[pos:]: returns (value, end index, overflowed).

    end == pos means "no digits" (C's endptr == nptr).  A leading '-' negates
    modulo 2**64, as in C.
    """
    if base in (0, 10) and pos < len(s):
        # fast path (most arguments): plain decimal digits to the end and no
        # leading 0 (octal under base 0) - what the general path gives
        rest = s[pos:] if pos else s
        if len(rest) <= 20 and rest.isascii() and rest.isdigit() and (base == 10 or rest[0] != "0" or len(rest) == 1):
            value = int(rest)
            return (ULONG_MAX, len(s), True) if value > ULONG_MAX else (value, len(s), False)
    i, neg = _skip_space_sign(s, pos)
    value, end, start = _parse_digits(s, base, i)
    if end == start:
        return 0, pos, False
    if value > ULONG_MAX:
        return ULONG_MAX, end, True
    if neg:
        value = (-value) & ULONG_MAX
    return value, end, False


def strtol(s: str, base: int = 0, pos: int = 0) -> tuple[int, int, bool]:
    """glibc strtol: (value, end, overflowed), value clamped to the long range."""
    i, neg = _skip_space_sign(s, pos)
    mag, end, start = _parse_digits(s, base, i)
    if end == start:
        return 0, pos, False
    if neg:
        if mag > 1 << 63:
            return -(1 << 63), end, True
        return -mag, end, False
    if mag > (1 << 63) - 1:
        return (1 << 63) - 1, end, True
    return mag, end, False


def _digit(c: str) -> int | None:
    if "0" <= c <= "9":
        return ord(c) - 48
    if "a" <= c <= "z":
        return ord(c) - 87
    if "A" <= c <= "Z":
        return ord(c) - 55
    return None


def get_unsigned_max(arg: str, maximum: int, base: int = 0) -> int | None:
    """iproute2 get_u32/get_u16/get_u8/get_unsigned: whole string, in range."""
    if not arg:
        return None
    value, end, ovf = strtoul(arg, base)
    if end == 0 or end != len(arg) or ovf or value > maximum:
        return None
    return value


def get_u32(arg: str, base: int = 0) -> int | None:
    """iproute2 get_u32: the whole string as an unsigned 32-bit number, else None."""
    return get_unsigned_max(arg, 0xFFFFFFFF, base)


def get_u16(arg: str, base: int = 0) -> int | None:
    """iproute2 get_u16: the whole string as an unsigned 16-bit number, else None."""
    return get_unsigned_max(arg, 0xFFFF, base)


def get_u8(arg: str, base: int = 0) -> int | None:
    """iproute2 get_u8: the whole string as an unsigned 8-bit number, else None."""
    return get_unsigned_max(arg, 0xFF, base)


def get_u64(arg: str, base: int = 0) -> int | None:
    """iproute2 get_u64: the whole string as an unsigned 64-bit number, else None."""
    return get_unsigned_max(arg, ULONG_MAX, base)


def get_s32(arg: str, base: int = 0) -> int | None:
    """iproute2 get_s32: the whole string as a signed 32-bit number, else None."""
    if not arg:
        return None
    value, end, ovf = strtol(arg, base)
    if end == 0 or end != len(arg) or ovf or not -(1 << 31) <= value < (1 << 31):
        return None
    return value


def _wrap32(v: int, signed: bool) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if signed and v >= 1 << 31 else v


def scan_uint(s: str, pos: int, base: int = 10) -> tuple[int, int] | None:
    """sscanf "%u"/"%x"/"%hu"-style conversion (no width): (value, end) or None."""
    i = pos
    while i < len(s) and s[i] in _C_SPACE:
        i += 1
    value, end, _ = strtoul(s, base, i)
    if end == i:
        return None
    return value, end


# ---------------------------------------------------------------------------
# fread_id_name(): one "<id> <name>" line of a database file
# ---------------------------------------------------------------------------


class _Corrupted(Exception):
    pass


def _scan_id_name(p: str) -> tuple[int, str] | None:
    """The four sscanf formats of fread_id_name; None when none yields 2 items.

    "0x%x %s" then "%d %s" (the variants ending in "\\n" / " #" convert the
    same items).  %x and %d store into a C int, hence the 32-bit wrap.
    """
    for hexform in (True, False):
        if hexform:
            if not p.startswith("0x"):
                continue
            got = scan_uint(p, 2, 16)
            if got is None:
                continue
            value = _wrap32(got[0], True)
        else:
            v, end, _ = strtol(p, 10)
            if end == 0:
                continue
            got = (v, end)
            value = _wrap32(v, True)
        i = got[1]
        while i < len(p) and p[i] in _C_SPACE:
            i += 1
        j = i
        while j < len(p) and p[j] not in _C_SPACE:
            j += 1
        if j > i:
            return value, p[i:j]
    return None


def _fgets_lines(text: str, bufsize: int = 512) -> Iterable[str]:
    """Lines as fgets(buf, 512) returns them: long lines come in pieces."""
    start = 0
    while start < len(text):
        nl = text.find("\n", start)
        stop = len(text) if nl < 0 else nl + 1
        stop = min(stop, start + bufsize - 1)
        yield text[start:stop]
        start = stop


def parse_db(text: str) -> tuple[list[tuple[int, str]], str | None]:
    """All (id, name) entries of a database text, in file order, plus the
    corrupted line if reading stopped at one (iproute2 keeps what it read
    before it).  Negative ids are dropped, as iproute2 does."""
    entries: list[tuple[int, str]] = []
    for line in _fgets_lines(text):
        p = line.lstrip(" \t")
        if not p or p[0] in "#\n":
            continue
        got = _scan_id_name(p)
        if got is None:
            return entries, p
        if got[0] >= 0:
            entries.append(got)
    return entries, None


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


# ---------------------------------------------------------------------------
# The two storage shapes
# ---------------------------------------------------------------------------


class _HashDB:
    """rtnl_hash_entry buckets (rt_tables, group)."""

    def __init__(self, builtins: dict[int, str]):
        self.buckets: list[list[tuple[int, str]]] = [[] for _ in range(256)]
        self._first_id: dict[str, int] | None = None  # a2n's answers, built on first use
        for i, name in builtins.items():
            self.buckets[i & 255].insert(0, (i, name))

    def add(self, ident: int, name: str) -> None:
        self.buckets[ident & 255].insert(0, (ident, name))  # bucket head
        self._first_id = None

    def n2a(self, ident: int) -> str | None:
        for i, name in self.buckets[ident & 255]:
            if i == ident:
                return name
        return None

    def n2a_any_bucket(self, ident: int) -> str | None:
        # rtnl_group_n2a scans every bucket, not just id & 255
        for bucket in self.buckets:
            for i, name in bucket:
                if i == ident:
                    return name
        return None

    def a2n(self, arg: str) -> int | None:
        # iproute2 scans every bucket in order and takes the first name that
        # matches; a table of those first matches gives the same answer
        # without a 256-bucket scan per `table N` argument.
        if self._first_id is None:
            first: dict[str, int] = {}
            for bucket in self.buckets:
                for i, name in bucket:
                    first.setdefault(name, i)
            self._first_id = first
        return self._first_id.get(arg)


class NameTab:
    """A 256-slot rtnl_*_tab (rt_protos, rt_dsfield, rt_scopes, rt_realms)."""

    def __init__(self, builtins: dict[int, str], *, a2n_base: int = 0, unknown_fmt: str = "{}"):
        self.tab: list[str | None] = [None] * 256
        for i, name in builtins.items():
            self.tab[i] = name
        self.a2n_base = a2n_base
        self.unknown_fmt = unknown_fmt

    def load_text(self, text: str) -> str | None:
        """Add the entries of a database text; the corrupted line it stopped at, if any."""
        entries, bad = parse_db(text)
        for ident, name in entries:
            if ident < 256:  # iproute2 writes tab[id]; ids past 255 are UB there
                self.tab[ident] = name
        return bad

    def name(self, ident: int, numeric: bool = False) -> str:
        """The name of ``ident`` (its number when it has none, or with ``numeric``)."""
        if not numeric and 0 <= ident < 256:
            name = self.tab[ident]
            if name is not None:
                return name
        return self.unknown_fmt.format(ident)

    def id(self, arg: str) -> int:
        """The number a name (or a number) stands for; ValueError when neither."""
        for i, name in enumerate(self.tab):
            if name is not None and name == arg:
                return i
        value, end, _ = strtoul(arg, self.a2n_base)
        if end == 0 or end != len(arg) or value > 255:
            raise ValueError(f'invalid value "{arg}"')
        return value


# ---------------------------------------------------------------------------
# Shipped iproute2 6.1 databases (what `ip` prints on a standard install)
# ---------------------------------------------------------------------------

#: iproute2 6.1's compiled-in protocol names (lib/rt_names.c): known to `ip` whatever
#: /etc/iproute2 says
COMPILED_PROTOS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    18: "keepalived",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
SHIPPED_RT_PROTOS = """\
0 unspec\n1 redirect\n2 kernel\n3 boot\n4 static\n8 gated\n9 ra\n10 mrt
11 zebra\n12 bird\n13 dnrouted\n14 xorp\n15 ntk\n16 dhcp\n18 keepalived
42 babel\n99 openr\n186 bgp\n187 isis\n188 ospf\n189 rip\n192 eigrp
"""
#: iproute2 6.1's compiled-in scope names
COMPILED_SCOPES = {0: "global", 255: "nowhere", 254: "host", 253: "link", 200: "site"}
SHIPPED_RT_SCOPES = "0 global\n255 nowhere\n254 host\n253 link\n200 site\n"
_C_REALMS = {0: "unknown"}
SHIPPED_RT_REALMS = "0 cosmos\n"
_C_DSFIELD = {0: "0"}
SHIPPED_RT_DSFIELD = """\
0x0 default\n0x28 AF11\n0x30 AF12\n0x38 AF13\n0x48 AF21\n0x50 AF22\n0x58 AF23
0x68 AF31\n0x70 AF32\n0x78 AF33\n0x88 AF41\n0x90 AF42\n0x98 AF43\n0x20 CS1
0x40 CS2\n0x60 CS3\n0x80 CS4\n0xA0 CS5\n0xC0 CS6\n0xE0 CS7\n0xB8 EF
"""
_C_GROUPS = {0: "default"}
SHIPPED_GROUP = "0 default\n"
_C_TABLES = {253: "default", 254: "main", 255: "local"}


class RtTables:
    """Table names plus the other iproute2 name databases.

    ``RtTables()`` has the built-in table names (default 253, main 254,
    local 255) and, for protocols/dsfield/scopes/realms/groups, iproute2's
    built-ins plus the files iproute2 6.1 ships (so ``proto 99`` prints
    ``openr`` and ``tos 0xb8`` prints ``EF`` as on a standard install).
    Files are only read when asked: :meth:`load_file`, :meth:`from_file`,
    :meth:`system`.
    """

    def __init__(self, *, shipped_names: bool = True):
        self._tables = _HashDB(_C_TABLES)
        self.protos = NameTab(COMPILED_PROTOS, unknown_fmt="{}")
        self.scopes = NameTab(COMPILED_SCOPES, unknown_fmt="{}")
        self.realms = NameTab(_C_REALMS, unknown_fmt="{}")
        self.dsfield = NameTab(_C_DSFIELD, a2n_base=16, unknown_fmt="0x{:02x}")
        self.groups = _HashDB(_C_GROUPS)
        # "Database ... is corrupted at ..." lines iproute2 would print
        self.warnings: list[str] = []
        if shipped_names:
            self.protos.load_text(SHIPPED_RT_PROTOS)
            self.scopes.load_text(SHIPPED_RT_SCOPES)
            self.realms.load_text(SHIPPED_RT_REALMS)
            self.dsfield.load_text(SHIPPED_RT_DSFIELD)
            for ident, name in parse_db(SHIPPED_GROUP)[0]:
                self.groups.add(ident, name)

    # ---- loading -----------------------------------------------------------
    def load_text(self, text: str, source: str = "<rt_tables>") -> RtTables:
        """Add the entries of an rt_tables-format text (stops at a corrupted line)."""
        entries, bad = parse_db(text)
        for ident, name in entries:
            self._tables.add(ident, name)
        if bad is not None:
            self.warnings.append(f"Database {source} is corrupted at {bad}")
        return self

    def load_file(self, path: str) -> RtTables:
        """Add one rt_tables file; a missing file adds nothing (as in iproute2)."""
        text = _read(path)
        if text is not None:
            self.load_text(text, path)
        return self

    @classmethod
    def from_file(cls, path: str) -> RtTables:
        """Built-ins plus one explicit rt_tables file (the CLI's --rt-tables)."""
        return cls().load_file(path)

    @classmethod
    def system(cls, confdir: str = DEFAULT_CONFDIR) -> RtTables:
        """What `ip` on this machine uses: confdir/rt_tables, then
        confdir/rt_tables.d/*.conf (dotfiles and other suffixes ignored),
        and confdir's rt_protos, rt_dsfield, rt_scopes, rt_realms, group.

        iproute2 reads rt_tables.d in readdir() order; we sort the names so
        the result does not depend on the filesystem.
        """
        self = cls(shipped_names=False)
        self.load_file(os.path.join(confdir, "rt_tables"))
        ddir = os.path.join(confdir, "rt_tables.d")
        try:
            names = sorted(os.listdir(ddir))
        except OSError:
            names = []
        for fname in names:
            if fname.startswith(".") or len(fname) <= 5 or not fname.endswith(".conf"):
                continue
            self.load_file(os.path.join(ddir, fname))
        for attr, fname in (
            ("protos", "rt_protos"),
            ("scopes", "rt_scopes"),
            ("realms", "rt_realms"),
            ("dsfield", "rt_dsfield"),
        ):
            path = os.path.join(confdir, fname)
            text = _read(path)
            if text is not None:
                bad = getattr(self, attr).load_text(text)
                if bad is not None:
                    self.warnings.append(f"Database {path} is corrupted at {bad}")
        path = os.path.join(confdir, "group")
        text = _read(path)
        if text is not None:
            entries, bad = parse_db(text)
            for ident, name in entries:
                self.groups.add(ident, name)
            if bad is not None:
                self.warnings.append(f"Database {path} is corrupted at {bad}")
        return self

    # ---- tables --------------------------------------------------------------
    def name(self, ident: int, numeric: bool = False) -> str:
        """rtnl_rttable_n2a: the last-read name for this exact id, else the number."""
        if not numeric:
            name = self._tables.n2a(ident)
            if name is not None:
                return name
        return str(ident)

    def id(self, arg: Any) -> int:
        """rtnl_rttable_a2n: a name (buckets scanned 0..255) or a number
        (strtoul base 0, at most 0xFFFFFFFF).  ValueError otherwise."""
        if isinstance(arg, int):
            if 0 <= arg <= 0xFFFFFFFF:
                return arg
            raise ValueError(f'invalid table ID "{arg}"')
        ident = self._tables.a2n(arg)
        if ident is not None:
            return ident
        value, end, _ = strtoul(arg, 0)
        if end == 0 or end != len(arg) or value > 0xFFFFFFFF:
            raise ValueError(f'invalid table ID "{arg}"')
        return value

    # ---- groups (device groups: ip link set group, rule suppress_ifgroup) ----
    def group_name(self, ident: int, numeric: bool = False) -> str:
        """The name of device group ``ident`` (from the group database)."""
        if not numeric:
            name = self.groups.n2a_any_bucket(ident)
            if name is not None:
                return name
        return str(ident)

    def group_id(self, arg: str) -> int:
        """The number of a device group name (or number); ValueError when neither."""
        ident = self.groups.a2n(arg)
        if ident is not None:
            return ident
        value, end, _ = strtol(arg, 0)
        value = _wrap32(value, True)  # stored into a C int
        if end == 0 or end != len(arg) or value < 0:
            raise ValueError(f'invalid group "{arg}"')
        return value


def load_rt_tables(path: str | None = None, use_system: bool = True, confdir: str = DEFAULT_CONFDIR) -> RtTables:
    """The tables the CLI should use: an explicit file (built-ins + that
    file), else the machine's databases when use_system, else built-ins."""
    if path is not None:
        return RtTables.from_file(path)
    if use_system:
        return RtTables.system(confdir)
    return RtTables()
