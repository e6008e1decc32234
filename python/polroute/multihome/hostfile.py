"""The multi-homed host file (YAML): read, validate, and say where it is wrong.

YAML because PyYAML's composer gives every node its line, so an error names
``FILE:LINE: key 'uplinks[1].gateway': message`` exactly (tomllib gives no
positions).  The file is read as a node tree and typed here, not by YAML's
resolver: ``no``/``on``/``0755``/``1:30`` are never silently turned into
booleans, octal or sexagesimal numbers.  The published JSON Schema is
``schema.json`` beside this module; this module is the reference and the
tests check that both accept and refuse the same documents.

Layout (defaults in brackets)::

    version: 1
    owner-protocol: 245        # [OWNER_PROTO_DEFAULT] proto of every route and rule
    priority-base: 1000        # [1000] uplink i's rules at base+i, tenant j's at base+len(uplinks)+j
    table-base: 1000           # [1000] uplink i's table when it names none: base+i
    multipath-default: false   # [false] main default route over every uplink gateway (weights)
    multipath-metric: 0        # [0] its metric
    uplinks:
      - interface: eth0
        address: 192.168.16.20/24     # the interface's own address and subnet (link route, src)
        gateway: 192.168.16.1         # on that subnet
        table: 101                    # optional: id, or a name from rt_tables
        weight: 1                     # optional, 1..256 (multipath-default)
        address6: 2001:db8:1::20/64   # optional IPv6, with gateway6
        gateway6: 2001:db8:1::1
        serves:                       # addresses, prefixes or ranges sourced through it
          - 10.0.0.10-10.0.0.200
          - 10.1.0.0/24
    tenants:
      - from: 172.16.5.0/24
        uplink: eth0                  # an uplink's interface, or
        # table: 200                  # a table id or name
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

# polroute.live.desired.DEFAULT_OWNER_PROTO once the provisioning engine lands.
OWNER_PROTO_DEFAULT = 245
PRIORITY_BASE_DEFAULT = 1000
TABLE_BASE_DEFAULT = 1000
MAIN_RULE_PRIORITY = 32766
RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
RESERVED_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot"}


def default_owner_proto() -> int:
    try:
        from polroute.live.desired import DEFAULT_OWNER_PROTO  # type: ignore[attr-defined]

        return int(DEFAULT_OWNER_PROTO)
    except (ImportError, AttributeError):
        return OWNER_PROTO_DEFAULT


class HostFileError(ValueError):
    """``FILE:LINE: key 'K': message``; nothing has been applied."""

    def __init__(self, filename: str, line: int, key: str, message: str):
        self.filename, self.line, self.key, self.message = filename, line, key, message
        where = f"{filename}:{line}: " if line else f"{filename}: "
        super().__init__(f"{where}key '{key}': {message}" if key else f"{where}{message}")


@dataclass
class Served:
    """One `from` selector: a prefix, with the line it came from."""

    net: IPNetwork
    text: str
    line: int


@dataclass
class Uplink:
    interface: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address
    table: int
    priority: int
    weight: int = 1
    address6: ipaddress.IPv6Interface | None = None
    gateway6: ipaddress.IPv6Address | None = None
    serves: list[Served] = field(default_factory=list)
    table_text: str = ""  # as written (a name stays a name in comments)
    key: str = ""  # where it is in the file: uplinks[I], on line ``line``
    line: int = 0
    lines: dict[str, int] = field(default_factory=dict)  # its keys' lines (address, gateway, ...)

    def sources(self, family: int) -> list[IPNetwork]:
        """Every source this uplink's rules select: its own address(es) first,
        then what it serves (no duplicates)."""
        own = [self.address] if family == 4 else ([self.address6] if self.address6 else [])
        out, seen = [], set()
        for iface in own:
            net = ipaddress.ip_network(iface.ip)
            out.append(net)
            seen.add(net)
        for s in self.serves:
            if s.net.version == family and s.net not in seen:
                out.append(s.net)
                seen.add(s.net)
        return out


@dataclass
class Tenant:
    source: IPNetwork
    table: int
    priority: int
    uplink: str | None = None
    key: str = ""  # where it is in the file: tenants[J], on line ``line``
    line: int = 0


@dataclass
class HostConfig:
    filename: str
    owner: int
    priority_base: int
    table_base: int
    uplinks: list[Uplink]
    tenants: list[Tenant]
    multipath_default: bool = False
    multipath_metric: int = 0
    multipath_line: int = 0  # the line of multipath-default

    def uplink(self, interface: str) -> Uplink | None:
        for u in self.uplinks:
            if u.interface == interface:
                return u
        return None

    @property
    def has_ipv6(self) -> bool:
        return any(u.address6 is not None for u in self.uplinks) or any(t.source.version == 6 for t in self.tenants)


# ---------------------------------------------------------------------------
# YAML node access with positions
# ---------------------------------------------------------------------------


def _line(node) -> int:
    return node.start_mark.line + 1


class _Reader:
    def __init__(self, filename: str):
        self.filename = filename

    def fail(self, node, key: str, message: str):
        raise HostFileError(self.filename, _line(node) if node is not None else 0, key, message)

    def mapping(self, node, key: str, allowed: dict[str, bool]) -> dict:
        """{name: (key node, value node)}; unknown, duplicate or missing keys refused."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, "expected a mapping (key: value lines)")
        out = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.fail(knode, key, "keys must be plain words")
            name = knode.value
            sub = f"{key}.{name}" if key else name
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                self.fail(knode, sub, f"unknown key (expected one of: {known})")
            if name in out:
                self.fail(knode, sub, f"duplicate key (first on line {_line(out[name][0])})")
            out[name] = (knode, vnode)
        for name, required in allowed.items():
            if required and name not in out:
                self.fail(node, f"{key}.{name}" if key else name, "missing")
        return out

    def sequence(self, node, key: str) -> list:
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, key, "expected a list")
        return list(node.value)

    def scalar(self, node, key: str) -> str:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, "expected a single value")
        if node.tag not in (
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:null",
            "tag:yaml.org,2002:timestamp",
        ):
            self.fail(node, key, f"unsupported tag {node.tag}")
        return node.value.strip()

    def integer(self, node, key: str, lo: int, hi: int) -> int:
        text = self.scalar(node, key)
        if not text.isdigit():
            self.fail(node, key, f"expected a decimal integer, got {text!r}")
        value = int(text)
        if not lo <= value <= hi:
            self.fail(node, key, f"{value} is out of range {lo}..{hi}")
        return value

    def boolean(self, node, key: str) -> bool:
        text = self.scalar(node, key)
        if text not in ("true", "false"):
            self.fail(node, key, f"expected true or false, got {text!r}")
        return text == "true"

    def interface(self, node, key: str, version: int) -> IPInterface:
        text = self.scalar(node, key)
        if "/" not in text:
            self.fail(node, key, f"expected ADDRESS/PREFIXLEN (the interface's address and subnet), got {text!r}")
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            self.fail(node, key, f"not an IPv{version} address/prefix length: {text!r}")
        if iface.version != version:
            self.fail(node, key, f"expected an IPv{version} address, got {text!r}")
        return iface

    def address(self, node, key: str, version: int) -> IPAddr:
        text = self.scalar(node, key)
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            self.fail(node, key, f"not an IPv{version} address: {text!r}")
        if addr.version != version:
            self.fail(node, key, f"expected an IPv{version} address, got {text!r}")
        return addr

    def sources(self, node, key: str) -> list[IPNetwork]:
        """ADDR, PREFIX/LEN or FIRST-LAST (a range, summarized into prefixes)."""
        text = self.scalar(node, key)
        try:
            if "-" in text and "/" not in text:
                a, _, b = text.partition("-")
                first, last = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
                if first.version != last.version:
                    self.fail(node, key, f"range {text!r} mixes IPv4 and IPv6")
                if first > last:
                    self.fail(node, key, f"range {text!r} ends before it starts")
                return list(ipaddress.summarize_address_range(first, last))
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            if isinstance(e, HostFileError):
                raise
            self.fail(node, key, f"not an address, prefix or FIRST-LAST range: {text!r} ({e})")
        return [net]


# ---------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------

_TOP = {
    "version": False,
    "owner-protocol": False,
    "priority-base": False,
    "table-base": False,
    "multipath-default": False,
    "multipath-metric": False,
    "uplinks": True,
    "tenants": False,
}
_UPLINK = {
    "interface": True,
    "address": True,
    "gateway": True,
    "table": False,
    "weight": False,
    "address6": False,
    "gateway6": False,
    "serves": False,
}
_TENANT = {"from": True, "uplink": False, "table": False}


def _ifname_ok(name: str) -> bool:
    # the kernel's dev_valid_name()
    return 0 < len(name) < 16 and name not in (".", "..") and not any(c in "/: \t\n" for c in name)


def _table_id(r: _Reader, node, key: str, rt_tables) -> tuple[int, str]:
    text = r.scalar(node, key)
    if text.isdigit():
        value = int(text)
    else:
        try:
            value = rt_tables.id(text)
        except ValueError:
            r.fail(node, key, f"unknown table name {text!r} (not in rt_tables; give a number)")
    if value in RESERVED_TABLES or value > 0xFFFFFFFF:
        r.fail(
            node,
            key,
            f"table {value} is reserved ({RESERVED_TABLES.get(value, 'out of range')}); use 1..252 or 256..4294967295",
        )
    return value, text


def parse_host_text(text: str, filename: str = "<host>", rt_tables=None) -> HostConfig:
    """Validate a host file; HostFileError (file, line, key) on the first problem."""
    from polroute.iproute2.rt_tables import RtTables

    if rt_tables is None:
        rt_tables = RtTables.system()
    r = _Reader(filename)
    root = _compose(text, filename)
    top = r.mapping(root, "", _TOP)
    opts = _top_options(r, top)
    uplinks = _parse_uplinks(r, top, opts, rt_tables)
    tenants = _parse_tenants(r, top, opts, uplinks, rt_tables)
    last = opts.prio_base + len(uplinks) - 1
    if last >= MAIN_RULE_PRIORITY:
        r.fail(
            top.get("priority-base", (root, root))[1],
            "priority-base",
            f"uplink rules would reach priority {last}, not below main's rule ({MAIN_RULE_PRIORITY})",
        )
    mp_line = _line(top["multipath-default"][0]) if "multipath-default" in top else 0
    return HostConfig(
        filename,
        opts.owner,
        opts.prio_base,
        opts.table_base,
        uplinks,
        tenants,
        opts.multipath,
        opts.mp_metric,
        mp_line,
    )


def _compose(text: str, filename: str):
    """Phase 1: the YAML node tree (positions kept); HostFileError for text that is not YAML."""
    import yaml

    try:
        # libyaml's parser when present (same marks, ~10x faster on 5,000-line files)
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise HostFileError(
            filename, mark.line + 1 if mark else 0, "", f"not valid YAML: {e.problem or e.context}"
        ) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (a control character)
        line = text.count("\n", 0, e.position) + 1 if isinstance(e.position, int) else 0
        raise HostFileError(
            filename, line, "", f"not valid YAML: character {_char(e.character)} is not allowed ({e.reason})"
        ) from None
    except yaml.YAMLError as e:
        raise HostFileError(filename, 0, "", f"not valid YAML: {e}") from None
    if root is None:
        raise HostFileError(filename, 1, "", "empty host file (needs at least `uplinks:`)")
    return root


@dataclass
class _Options:
    owner: int
    prio_base: int
    table_base: int
    multipath: bool
    mp_metric: int


def _top_options(r: _Reader, top: dict) -> _Options:
    """Phase 2: the top-level scalars (version, owner protocol, bases, multipath)."""

    def opt_int(name: str, default: int, lo: int, hi: int) -> int:
        return r.integer(top[name][1], name, lo, hi) if name in top else default

    if "version" in top:
        r.integer(top["version"][1], "version", 1, 1)
    owner = opt_int("owner-protocol", default_owner_proto(), 0, 255)
    if owner in RESERVED_PROTOS:
        r.fail(
            top["owner-protocol"][1],
            "owner-protocol",
            f"protocol {owner} ({RESERVED_PROTOS[owner]}) belongs to the kernel; use 4..255 "
            f"(default {default_owner_proto()})",
        )
    prio_base = opt_int("priority-base", PRIORITY_BASE_DEFAULT, 1, MAIN_RULE_PRIORITY - 1)
    table_base = opt_int("table-base", TABLE_BASE_DEFAULT, 1, 0xFFFFFFFF)
    multipath = r.boolean(top["multipath-default"][1], "multipath-default") if "multipath-default" in top else False
    mp_metric = opt_int("multipath-metric", 0, 0, 0xFFFFFFFF)
    return _Options(owner, prio_base, table_base, multipath, mp_metric)


def _parse_uplinks(r: _Reader, top: dict, opts: _Options, rt_tables) -> list[Uplink]:
    """Phase 3: every uplink, then no source served through two of them."""
    uplink_nodes = r.sequence(top["uplinks"][1], "uplinks")
    if not uplink_nodes:
        r.fail(top["uplinks"][1], "uplinks", "needs at least one uplink")
    uplinks: list[Uplink] = []
    tables_used: dict[int, str] = {}
    owners: list[tuple[int, int, str, int]] = []  # (first, last, key, line) of every source
    for i, unode in enumerate(uplink_nodes):
        up, m = _parse_uplink(r, unode, i, opts, uplinks, tables_used, rt_tables)
        _collect_sources(r, unode, m, up, owners)
        uplinks.append(up)
    _check_overlaps(r, owners, what="served through two uplinks")
    return uplinks


def _parse_uplink(r: _Reader, unode, i: int, opts: _Options, uplinks: list, tables_used: dict, rt_tables):
    """(Uplink, its key mapping): one uplink's interface, addresses, gateways,
    table and weight (not its sources)."""
    k = f"uplinks[{i}]"
    m = r.mapping(unode, k, _UPLINK)
    ifname = r.scalar(m["interface"][1], f"{k}.interface")
    if not _ifname_ok(ifname):
        r.fail(m["interface"][1], f"{k}.interface", f"not a valid interface name: {ifname!r}")
    for j, other in enumerate(uplinks):
        if other.interface == ifname:
            r.fail(m["interface"][1], f"{k}.interface", f"{ifname} is already uplinks[{j}]")
    address = r.interface(m["address"][1], f"{k}.address", 4)
    gateway = r.address(m["gateway"][1], f"{k}.gateway", 4)
    if gateway not in address.network:
        r.fail(m["gateway"][1], f"{k}.gateway", f"{gateway} is not on {ifname}'s subnet {address.network}")
    if gateway == address.ip:
        r.fail(m["gateway"][1], f"{k}.gateway", f"{gateway} is the interface's own address")
    if "table" in m:
        table, table_text = _table_id(r, m["table"][1], f"{k}.table", rt_tables)
        tnode = m["table"][1]
    else:
        table, table_text, tnode = opts.table_base + i, "", unode
        if table in RESERVED_TABLES or table > 0xFFFFFFFF:
            r.fail(
                unode,
                f"{k}.table",
                f"table-base + {i} = {table} is reserved or out of range; set table-base or this uplink's table",
            )
    if table in tables_used:
        r.fail(tnode, f"{k}.table", f"table {table} is already used by {tables_used[table]}")
    tables_used[table] = k
    weight = r.integer(m["weight"][1], f"{k}.weight", 1, 256) if "weight" in m else 1
    address6 = gateway6 = None
    if "address6" in m or "gateway6" in m:
        if "address6" not in m or "gateway6" not in m:
            missing = "address6" if "address6" not in m else "gateway6"
            r.fail(unode, f"{k}.{missing}", "address6 and gateway6 go together")
        address6 = r.interface(m["address6"][1], f"{k}.address6", 6)
        gateway6 = r.address(m["gateway6"][1], f"{k}.gateway6", 6)
        if gateway6 not in address6.network and not gateway6.is_link_local:
            r.fail(
                m["gateway6"][1],
                f"{k}.gateway6",
                f"{gateway6} is neither link-local nor on {ifname}'s subnet {address6.network}",
            )
    up = Uplink(ifname, address, gateway, table, opts.prio_base + i, weight, address6, gateway6, table_text=table_text)
    up.key, up.line = k, _line(unode)
    up.lines = {
        name: _line(m[name][1])
        for name in ("interface", "address", "gateway", "table", "address6", "gateway6")
        if name in m
    }
    return up, m


def _collect_sources(r: _Reader, unode, m: dict, up: Uplink, owners: list) -> None:
    """An uplink's own addresses and its `serves:` list, each recorded in ``owners``
    (the spans the overlap check sweeps)."""
    k = up.key
    own_nets = {ipaddress.ip_network(x.ip) for x in (up.address, up.address6) if x is not None}
    for iface in (up.address, up.address6):
        if iface is not None:
            net = ipaddress.ip_network(iface.ip)
            owners.append((_key(net, 0), _key(net, 1), f"{k}.address", _line(unode)))
    if "serves" not in m:
        return
    for j, snode in enumerate(r.sequence(m["serves"][1], f"{k}.serves")):
        sk = f"{k}.serves[{j}]"
        for net in r.sources(snode, sk):
            if net.version == 6 and up.address6 is None:
                r.fail(snode, sk, f"an IPv6 source needs {k}.address6 and gateway6")
            if net.prefixlen == 0:
                r.fail(snode, sk, "a /0 source would take every reply; use multipath-default")
            up.serves.append(Served(net, snode.value, _line(snode)))
            if net in own_nets:
                continue  # its own address again: harmless
            owners.append((_key(net, 0), _key(net, 1), sk, _line(snode)))


def _parse_tenants(r: _Reader, top: dict, opts: _Options, uplinks: list[Uplink], rt_tables) -> list[Tenant]:
    """Phase 4: the tenants, each through an uplink or to a table, at priorities after the uplinks'."""
    tenants: list[Tenant] = []
    tenant_nodes = r.sequence(top["tenants"][1], "tenants") if "tenants" in top else []
    for j, tnode in enumerate(tenant_nodes):
        k = f"tenants[{j}]"
        m = r.mapping(tnode, k, _TENANT)
        nets = r.sources(m["from"][1], f"{k}.from")
        if len(nets) != 1:
            r.fail(m["from"][1], f"{k}.from", "a tenant is one prefix (a range that is not one prefix)")
        if nets[0].prefixlen == 0:
            r.fail(m["from"][1], f"{k}.from", "a /0 tenant would take every reply")
        if ("uplink" in m) == ("table" in m):
            r.fail(tnode, k, "give exactly one of `uplink:` or `table:`")
        prio = opts.prio_base + len(uplinks) + j
        if "uplink" in m:
            name = r.scalar(m["uplink"][1], f"{k}.uplink")
            up = next((u for u in uplinks if u.interface == name), None)
            if up is None:
                r.fail(
                    m["uplink"][1],
                    f"{k}.uplink",
                    f"no uplink on interface {name!r} (uplinks: {', '.join(u.interface for u in uplinks)})",
                )
            if nets[0].version == 6 and up.address6 is None:
                r.fail(m["from"][1], f"{k}.from", f"an IPv6 tenant needs uplink {name}'s address6")
            tenants.append(Tenant(nets[0], up.table, prio, up.interface, k, _line(tnode)))
        else:
            table, _ = _table_id(r, m["table"][1], f"{k}.table", rt_tables)
            tenants.append(Tenant(nets[0], table, prio, None, k, _line(tnode)))
        if prio >= MAIN_RULE_PRIORITY:
            r.fail(
                tnode,
                k,
                f"priority {prio} would not come before main's rule ({MAIN_RULE_PRIORITY}); lower priority-base",
            )
    return tenants


def _key(net: IPNetwork, end: int) -> tuple[int, int]:
    addr = net.broadcast_address if end else net.network_address
    return (net.version, int(addr))


def _check_overlaps(r: _Reader, spans: list[tuple], what: str) -> None:
    """Refuse a source selected by two entries (sort + sweep: thousands are cheap)."""
    spans = sorted(spans)
    prev = None
    for span in spans:
        if prev is not None and span[0] <= prev[1]:
            a, b = (prev, span) if prev[3] <= span[3] else (span, prev)
            raise HostFileError(r.filename, b[3], b[2], f"overlaps {a[2]} (line {a[3]}): a source {what} is ambiguous")
        if prev is None or span[1] > prev[1]:
            prev = span


def _char(c) -> str:
    n = c if isinstance(c, int) else ord(c) if isinstance(c, str) and len(c) == 1 else None
    return f"U+{n:04X}" if n is not None else repr(c)


def load_host_file(path: str, rt_tables=None) -> HostConfig:
    with open(path, "rb") as f:
        data = f.read()
    return parse_host_text(decode_host_bytes(data, path), path, rt_tables)


def _word_at(line: bytes, pos: int) -> str:
    """The word of ``line`` around byte ``pos``, bytes escaped, at most 40 characters."""
    start = max(line.rfind(b" ", 0, pos), line.rfind(b"\t", 0, pos)) + 1
    ends = [i for i in (line.find(b" ", pos), line.find(b"\t", pos)) if i >= 0]
    shown = repr(line[start : min(ends) if ends else len(line)].rstrip(b"\r"))[2:-1]
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _comment_start(line: bytes) -> int:
    """Where a YAML comment starts on ``line`` (-1: none): a ``#`` at the
    start or after a blank, outside quotes."""
    quote = None
    for i, c in enumerate(line):
        ch = chr(c)
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in b" \t"):
            return i
    return -1


def decode_host_bytes(data: bytes, filename: str) -> str:
    """A host file's text: UTF-8 (or UTF-16/32 with a byte-order mark, as
    YAML allows); a comment may hold other bytes (a Latin-1 comment is read,
    as ``ip -batch`` reads one).  Anything else is a HostFileError naming
    the line and the word: a byte that is not UTF-8, or binary data."""
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as e:
                raise HostFileError(filename, 0, "", f"not valid {codec.upper()} text ({e.reason})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
        if "\0" not in text:
            return text
    except UnicodeDecodeError:
        pass
    out = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        cut = _comment_start(line)
        body, comment = (line, b"") if cut < 0 else (line[:cut], line[cut:])
        nul = body.find(b"\0")
        if nul >= 0:
            raise HostFileError(
                filename, lineno, "", f"binary data (a NUL byte) in '{_word_at(line, nul)}': not YAML text"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HostFileError(
                filename, lineno, "", f"not UTF-8 text: byte 0x{body[e.start]:02x} in '{_word_at(line, e.start)}'"
            ) from None
        out.append(text + comment.decode("utf-8", "replace").replace("\0", " "))
    return "\n".join(out)
