"""The source-routing recipe of a host file, for each place it can live.

Every target says the same thing: per uplink a table with a link route for
the uplink's subnet (``src`` its address) and a default route via its
gateway; per served source a ``from SOURCE lookup TABLE`` rule at the
uplink's priority; per tenant a rule at its own priority; optionally a
multipath default route in main.  :func:`render` returns ``{relative path:
text}`` plus warnings for what a target cannot express (never dropped
silently).
"""

from __future__ import annotations

import os

from polroute.multihome.hostfile import HostConfig
from polroute.multihome.netplan import netplan_files
from polroute.multihome.networkd import networkd_files
from polroute.multihome.nm import nm_files
from polroute.multihome.unit import UNIT_NAME, systemd_unit_files, systemd_word

__all__ = ["TARGETS", "UNIT_NAME", "batch_entries", "batch_lines", "batch_text", "render", "systemd_word"]

TARGETS = ("batch", "networkd", "netplan", "nm", "systemd-unit")


def _pfx(net) -> str:
    return net.with_prefixlen


# ---------------------------------------------------------------------------
# ip batch
# ---------------------------------------------------------------------------


def batch_lines(cfg: HostConfig, family: int | None = None) -> list[str]:
    """The recipe as `ip` batch lines.  ``family`` None: both families, IPv6
    rules prefixed ``-6`` (polroute's reader takes that per line; for
    ``ip -batch`` render each family on its own: 4 for ``ip -batch``, 6 for
    ``ip -6 -batch``, where a rule gets its family from the option)."""
    return [text for text, _ in batch_entries(cfg, family)]


def batch_entries(cfg: HostConfig, family: int | None = None) -> list[tuple[str, tuple[int, str]]]:
    """batch_lines' lines, each with its origin in the host file: (YAML line,
    what: ``uplink eth0, uplinks[0].gateway``, ``tenant 172.16.5.0/24,
    tenants[0]``...), so that a message about a rendered line can name
    the line of the file it came from."""
    p = cfg.owner
    fams = (4, 6) if family is None else (family,)
    out = [
        (
            f"# polroute multihome recipe from {os.path.basename(cfg.filename)}: "
            f"owner protocol {p}, rules at {cfg.priority_base}.."
            f"{cfg.priority_base + len(cfg.uplinks) + len(cfg.tenants) - 1}",
            (1, "the recipe"),
        )
    ]
    six = "-6 " if family is None else ""
    for u in cfg.uplinks:

        def at(name: str, u=u) -> tuple[int, str]:
            return (u.lines.get(name, u.line), f"uplink {u.interface}, {u.key}.{name}" if name else "")

        served = {}
        for j, s in enumerate(u.serves):
            served.setdefault(s.net, (s.line, f"uplink {u.interface}, {u.key}.serves[{j}]"))
        out.append((f"# uplink {u.interface}: table {u.table}, rules at priority {u.priority}", at("interface")))
        if 4 in fams:
            out.append(
                (
                    f"route add {_pfx(u.address.network)} dev {u.interface} scope link "
                    f"src {u.address.ip} table {u.table} proto {p}",
                    at("address"),
                )
            )
            out.append(
                (f"route add default via {u.gateway} dev {u.interface} table {u.table} proto {p}", at("gateway"))
            )
        if 6 in fams and u.address6 is not None:
            out.append(
                (
                    f"route add {_pfx(u.address6.network)} dev {u.interface} src {u.address6.ip} "
                    f"table {u.table} proto {p}",
                    at("address6"),
                )
            )
            out.append(
                (f"route add default via {u.gateway6} dev {u.interface} table {u.table} proto {p}", at("gateway6"))
            )
        own = {4: at("address"), 6: at("address6")}
        for fam in fams:
            for i, net in enumerate(u.sources(fam)):
                pre = six if fam == 6 else ""
                origin = own[fam] if i == 0 else served.get(net, own[fam])
                out.append((f"{pre}rule add from {_pfx(net)} lookup {u.table} priority {u.priority} proto {p}", origin))
    for t in cfg.tenants:
        if t.source.version in fams:
            pre = six if t.source.version == 6 else ""
            via = f" (uplink {t.uplink})" if t.uplink else ""
            origin = (t.line, f"tenant {_pfx(t.source)}, {t.key}")
            out.append((f"# tenant {_pfx(t.source)}{via}", origin))
            out.append(
                (f"{pre}rule add from {_pfx(t.source)} lookup {t.table} priority {t.priority} proto {p}", origin)
            )
    mp = (cfg.multipath_line, "multipath-default")
    if cfg.multipath_default and 4 in fams:
        legs = " ".join(f"nexthop via {u.gateway} dev {u.interface} weight {u.weight}" for u in cfg.uplinks)
        out.append(("# main: one default route over every uplink", mp))
        out.append((f"route replace default metric {cfg.multipath_metric} proto {p} {legs}", mp))
    if cfg.multipath_default and 6 in fams and any(u.address6 for u in cfg.uplinks):
        legs = " ".join(
            f"nexthop via {u.gateway6} dev {u.interface} weight {u.weight}" for u in cfg.uplinks if u.address6
        )
        out.append((f"route replace default metric {cfg.multipath_metric} proto {p} {legs}", mp))
    return out


def batch_text(cfg: HostConfig, family: int | None = None) -> str:
    return "\n".join(batch_lines(cfg, family)) + "\n"


def split_for_ip(text: str) -> tuple[str, str]:
    """(lines for ``ip -batch``, lines for ``ip -6 -batch``) of a both-family text."""
    v4, v6 = [], []
    for line in text.splitlines():
        if line.startswith("-6 "):
            v6.append(line[3:])
        else:
            v4.append(line)
    return "\n".join(v4) + "\n", "\n".join(v6) + "\n" if v6 else ""


def executable(rel: str) -> bool:
    """Whether a rendered file is a script (written mode 0755)."""
    return rel.endswith(".sh") or "dispatcher" in rel


def render(cfg: HostConfig, target: str, **options) -> tuple[dict[str, str], list[str]]:
    """{relative path: text}, warnings.  ``options`` by target: networkd
    ``network_dirs`` (where to find each uplink's .network file),
    ``network_files`` ({interface: .network file name}), ``systemd_version``;
    netplan ``netplan_dirs`` (the base configuration), ``renderer``; nm
    ``nm_version`` ("1.42"); systemd-unit ``python``.  ValueError for a
    recipe the target cannot carry."""
    if target == "batch":
        name = os.path.splitext(os.path.basename(cfg.filename))[0] or "host"
        files = {f"{name}.ip": batch_text(cfg)}
        if cfg.has_ipv6:
            files[f"{name}.ip"] = batch_text(cfg, 4)
            files[f"{name}.ip6"] = batch_text(cfg, 6)
        return files, []
    if target == "networkd":
        return networkd_files(
            cfg,
            options.get("network_dirs"),
            options.get("network_files"),
            options.get("systemd_version"),
        )
    if target == "netplan":
        return netplan_files(cfg, options.get("netplan_dirs"), options.get("renderer"))
    if target == "nm":
        return nm_files(cfg, options.get("nm_version"))
    if target == "systemd-unit":
        return systemd_unit_files(cfg, options.get("python"))
    raise ValueError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
