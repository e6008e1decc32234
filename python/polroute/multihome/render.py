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
import shlex
import sys

from polroute.multihome.hostfile import HostConfig

TARGETS = ("batch", "networkd", "netplan", "nm", "systemd-unit")
UNIT_NAME = "polroute-multihome.service"


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


# ---------------------------------------------------------------------------
# systemd-networkd
# ---------------------------------------------------------------------------

NETWORKD_CONF = """# polroute multihome: keep networkd from deleting the rules and routes it did
# not create (the recipe's, owner protocol {owner}); networkd >= 248 deletes them by default.
[Network]
ManageForeignRoutingPolicyRules=no
ManageForeignRoutes=no
"""


def networkd_files(cfg: HostConfig) -> tuple[dict[str, str], list[str]]:
    files: dict[str, str] = {}
    warnings: list[str] = []
    for i, u in enumerate(cfg.uplinks):
        lines = [
            f"# polroute multihome drop-in for {u.interface} (from {os.path.basename(cfg.filename)}).",
            f"# Put it in the drop-in directory of the .network file that matches {u.interface},",
            f"# e.g. /etc/systemd/network/10-{u.interface}.network.d/; then `networkctl reload`.",
            "# networkd tags what it configures as its own (proto static), not with the owner protocol.",
        ]
        lines += [
            "",
            "[Route]",
            f"Destination={_pfx(u.address.network)}",
            "Scope=link",
            f"PreferredSource={u.address.ip}",
            f"Table={u.table}",
            "",
            "[Route]",
            f"Gateway={u.gateway}",
            f"Table={u.table}",
        ]
        if u.address6 is not None:
            lines += [
                "",
                "[Route]",
                f"Destination={_pfx(u.address6.network)}",
                f"PreferredSource={u.address6.ip}",
                f"Table={u.table}",
                "",
                "[Route]",
                f"Gateway={u.gateway6}",
                f"Table={u.table}",
            ]
        for fam in (4, 6):
            for net in u.sources(fam):
                lines += ["", "[RoutingPolicyRule]", f"From={_pfx(net)}", f"Table={u.table}", f"Priority={u.priority}"]
        for t in cfg.tenants:
            # a tenant's rule is global; it lives in its uplink's file, table-only ones in the first
            if t.uplink == u.interface or (t.uplink is None and i == 0):
                lines += [
                    "",
                    "[RoutingPolicyRule]",
                    f"From={_pfx(t.source)}",
                    f"Table={t.table}",
                    f"Priority={t.priority}",
                ]
        if cfg.multipath_default and i == 0:
            lines += ["", "[Route]", "Destination=0.0.0.0/0", f"Metric={cfg.multipath_metric}"]
            lines += [f"MultiPathRoute={x.gateway}@{x.interface} {x.weight}" for x in cfg.uplinks]
            six = [x for x in cfg.uplinks if x.address6]
            if six:
                lines += ["", "[Route]", "Destination=::/0", f"Metric={cfg.multipath_metric}"]
                lines += [f"MultiPathRoute={x.gateway6}@{x.interface} {x.weight}" for x in six]
        files[f"network/{u.interface}.network.d/50-polroute-multihome.conf"] = "\n".join(lines) + "\n"
    files["networkd.conf.d/50-polroute-multihome.conf"] = NETWORKD_CONF.format(owner=cfg.owner)
    return files, warnings


# ---------------------------------------------------------------------------
# netplan
# ---------------------------------------------------------------------------


def netplan_files(cfg: HostConfig) -> tuple[dict[str, str], list[str]]:
    import yaml

    warnings = []
    ethernets: dict = {}
    for i, u in enumerate(cfg.uplinks):
        if u.table > 0xFFFF:
            raise ValueError(f"netplan: uplink {u.interface}'s table {u.table} is above netplan's 65535")
        routes = [
            {"to": _pfx(u.address.network), "scope": "link", "from": str(u.address.ip), "table": u.table},
            {"to": "default", "via": str(u.gateway), "table": u.table},
        ]
        if u.address6 is not None:
            routes += [
                {"to": _pfx(u.address6.network), "scope": "link", "from": str(u.address6.ip), "table": u.table},
                {"to": "default", "via": str(u.gateway6), "table": u.table},
            ]
        policy = [
            {"from": _pfx(net), "table": u.table, "priority": u.priority} for fam in (4, 6) for net in u.sources(fam)
        ]
        for t in cfg.tenants:
            if t.uplink == u.interface or (t.uplink is None and i == 0):
                if t.table > 0xFFFF:
                    raise ValueError(f"netplan: tenant {t.source}'s table {t.table} is above 65535")
                policy.append({"from": _pfx(t.source), "table": t.table, "priority": t.priority})
        ethernets[u.interface] = {"routes": routes, "routing-policy": policy}
    if cfg.multipath_default:
        warnings.append("netplan: multipath-default is not expressible (netplan has no nexthop legs); not rendered")
    doc = {"network": {"version": 2, "ethernets": ethernets}}
    head = (
        f"# polroute multihome (from {os.path.basename(cfg.filename)}): merged by netplan with the\n"
        "# file that sets these interfaces' addresses; put it in /etc/netplan/ (mode 0600).\n"
        "# networkd (netplan's default renderer) also needs the networkd.conf drop-in of\n"
        "# `polroute multihome render --to networkd` to keep rules it did not create.\n"
    )
    if cfg.multipath_default:
        head += "# NOT RENDERED: multipath-default (netplan has no nexthop legs).\n"
    body = yaml.dump(
        doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, default_flow_style=False
    )
    return {"90-polroute-multihome.yaml": head + body}, warnings


# ---------------------------------------------------------------------------
# NetworkManager
# ---------------------------------------------------------------------------


def nm_files(cfg: HostConfig) -> tuple[dict[str, str], list[str]]:
    """Keyfile [ipv4]/[ipv6] settings per connection, and the same as nmcli commands."""
    files: dict[str, str] = {}
    warnings: list[str] = []
    script = [
        "#!/bin/sh",
        f"# polroute multihome (from {os.path.basename(cfg.filename)}): NetworkManager settings.",
        "# The connection is assumed to be named after its interface; change CONN_<if> if not.",
        "set -e",
    ]
    for i, u in enumerate(cfg.uplinks):
        sections = {}
        for fam in (4, 6):
            iface = u.address if fam == 4 else u.address6
            gw = u.gateway if fam == 4 else u.gateway6
            if iface is None:
                continue
            zero = "0.0.0.0/0" if fam == 4 else "::/0"
            routes = [(_pfx(iface.network), "", f"table={u.table},src={iface.ip}"), (zero, str(gw), f"table={u.table}")]
            rules = [f"priority {u.priority} from {_pfx(net)} table {u.table}" for net in u.sources(fam)]
            rules += [
                f"priority {t.priority} from {_pfx(t.source)} table {t.table}"
                for t in cfg.tenants
                if t.source.version == fam and (t.uplink == u.interface or (t.uplink is None and i == 0))
            ]
            sections[f"ipv{fam}"] = (routes, rules)
        lines = [
            f"# polroute multihome settings for the connection of {u.interface}: merge these keys",
            "# into its keyfile in /etc/NetworkManager/system-connections/ (or run the nmcli script).",
            "# routing-rules need NetworkManager >= 1.18.",
        ]
        conn = f'"${{CONN_{u.interface.replace("-", "_").replace(".", "_")}:-{u.interface}}}"'
        for sec, (routes, rules) in sections.items():
            lines += ["", f"[{sec}]"]
            for n, (dst, gw, opts) in enumerate(routes, 1):
                lines.append(f"route{n}={dst},{gw}" if gw else f"route{n}={dst}")
                lines.append(f"route{n}_options={opts}")
            for n, rule in enumerate(rules, 1):
                lines.append(f"routing-rule{n}={rule}")
            args = []
            for dst, gw, opts in routes:
                spec = " ".join(x for x in (dst, gw) if x) + " " + opts.replace(",", " ")
                args += [f"+{sec}.routes", shlex.quote(spec)]
            for rule in rules:
                args += [f"+{sec}.routing-rules", shlex.quote(rule)]
            script.append(f"nmcli connection modify {conn} " + " ".join(args))
        files[f"{u.interface}.nmconnection.ini"] = "\n".join(lines) + "\n"
        script.append(f"nmcli connection up {conn}")
    if cfg.multipath_default:
        warnings.append("nm: multipath-default is not expressible as NetworkManager settings; not rendered")
    files["polroute-multihome-nmcli.sh"] = "\n".join(script) + "\n"
    return files, warnings


# ---------------------------------------------------------------------------
# systemd unit
# ---------------------------------------------------------------------------


def systemd_word(word: str) -> str:
    """One argument of an Exec= line as systemd reads it back (systemd.service(5),
    "Command lines"): double-quoted unless plain, with ``\\`` and ``"`` escaped
    inside the quotes, and ``%`` (specifiers) and ``$`` (environment variables)
    doubled, since systemd expands both inside quotes too."""
    text = word.replace("%", "%%").replace("$", "$$")
    if word and all(c.isalnum() or c in "/._-+=:@," for c in word):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit_files(cfg: HostConfig, python: str | None = None) -> tuple[dict[str, str], list[str]]:
    host = os.path.abspath(cfg.filename)
    exe = python or sys.executable
    command = " ".join(systemd_word(w) for w in (exe, "-m", "polroute", "multihome", "apply", host))
    description = os.path.basename(host).replace("%", "%%")
    text = f"""# polroute multihome: apply {host} at boot, once the network is up.
# Install: cp {UNIT_NAME} /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now {UNIT_NAME}
[Unit]
Description=polroute multi-homed source routing ({description})
Wants=network-online.target
After=network-online.target
# applied after networkd/NetworkManager configured the links; they must keep foreign rules
# (networkd: the networkd.conf drop-in of `polroute multihome render --to networkd`)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={command}

[Install]
WantedBy=multi-user.target
"""
    return {UNIT_NAME: text}, []


def render(cfg: HostConfig, target: str) -> tuple[dict[str, str], list[str]]:
    """{relative path: text}, warnings."""
    if target == "batch":
        name = os.path.splitext(os.path.basename(cfg.filename))[0] or "host"
        files = {f"{name}.ip": batch_text(cfg)}
        if cfg.has_ipv6:
            files[f"{name}.ip"] = batch_text(cfg, 4)
            files[f"{name}.ip6"] = batch_text(cfg, 6)
        return files, []
    if target == "networkd":
        return networkd_files(cfg)
    if target == "netplan":
        return netplan_files(cfg)
    if target == "nm":
        return nm_files(cfg)
    if target == "systemd-unit":
        return systemd_unit_files(cfg)
    raise ValueError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
