"""The recipe as NetworkManager settings: keyfile sections and an nmcli script.

Per uplink, the ``[ipv4]``/``[ipv6]`` keys to merge into the keyfile of the
uplink's connection (routes with ``table=``, ``routing-rule`` keys), and an
nmcli script that sets the same properties.  The script sets each property
whole (``ipv4.routes "A, B"``), never appends (``+ipv4.routes``): running it
twice leaves the same connection, where appending added a second copy of
every rule each time.  The properties it sets are the recipe's only: routes
or rules kept there by hand are replaced (put them in the keyfile sections).

``multipath-default`` is an IPv4 default route in main with ``weight=`` on
each uplink's connection: NetworkManager >= 1.42 merges routes of equal
destination, table and metric that carry a weight into one multipath route
(ECMP).  Older versions, and IPv6 (NetworkManager has no IPv6 weight), are
warned about and not rendered.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

from polroute.multihome.hostfile import HostConfig

NM_DEFAULT = (1, 42)  # assumed when the version is neither given nor found
ECMP_SINCE = (1, 42)
MAIN_TABLE = 254


def _pfx(net) -> str:
    return net.with_prefixlen


def nm_version(explicit: str | None = None) -> tuple[tuple[int, int], str | None]:
    """((major, minor), warning): the given "1.42", else ``nmcli --version``'s, else 1.42."""
    text = explicit
    if text is None and shutil.which("nmcli"):
        try:
            text = subprocess.run(["nmcli", "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            text = None
    m = re.search(r"(\d+)\.(\d+)", text or "")
    if m:
        return (int(m.group(1)), int(m.group(2))), None
    if explicit is not None:
        raise ValueError(f"nm: not a NetworkManager version: {explicit!r} (e.g. 1.42)")
    return NM_DEFAULT, "nm: NetworkManager version unknown, rendered for 1.42 (give --nm-version)"


def connection_var(ifname: str) -> str:
    return f'"${{CONN_{ifname.replace("-", "_").replace(".", "_")}:-{ifname}}}"'


def nm_files(cfg: HostConfig, version: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Keyfile [ipv4]/[ipv6] settings per connection, and the same as an nmcli script."""
    ver, warn = nm_version(version)
    warnings: list[str] = [warn] if warn else []
    files: dict[str, str] = {}
    ecmp = cfg.multipath_default and ver >= ECMP_SINCE
    if cfg.multipath_default and not ecmp:
        warnings.append(
            f"nm: multipath-default needs NetworkManager >= 1.42 (route weight=), not {ver[0]}.{ver[1]}; not rendered"
        )
    if cfg.multipath_default and any(u.address6 for u in cfg.uplinks):
        warnings.append(
            "nm: NetworkManager has no IPv6 multipath (weight= is IPv4 only): the IPv6 default not rendered"
        )
    script = [
        "#!/bin/sh",
        f"# polroute multihome (from {os.path.basename(cfg.filename)}): NetworkManager settings.",
        "# The connection is assumed to be named after its interface; set CONN_<if> if not.",
        "# Each property is set whole (running this again changes nothing); routes and rules",
        "# kept in these properties by hand are replaced.",
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
            if ecmp and fam == 4:
                # the same explicit metric on every leg: NetworkManager merges only routes of
                # equal destination, table and metric (a device's default metric differs by type)
                routes.append((zero, f"{gw},{cfg.multipath_metric}", f"table={MAIN_TABLE},weight={u.weight}"))
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
            "# routing-rules need NetworkManager >= 1.18" + ("; route weight= (ECMP) >= 1.42." if ecmp else "."),
        ]
        conn = connection_var(u.interface)
        args = []
        for sec, (routes, rules) in sections.items():
            lines += ["", f"[{sec}]"]
            for n, (dst, gw, opts) in enumerate(routes, 1):
                lines.append(f"route{n}={dst},{gw}" if gw else f"route{n}={dst}")
                lines.append(f"route{n}_options={opts}")
            for n, rule in enumerate(rules, 1):
                lines.append(f"routing-rule{n}={rule}")
            specs = [
                " ".join(x for x in (dst, gw.replace(",", " ")) if x) + " " + opts.replace(",", " ")
                for dst, gw, opts in routes
            ]
            args += [f"{sec}.routes", shlex.quote(", ".join(specs))]
            args += [f"{sec}.routing-rules", shlex.quote(", ".join(rules))]
        script.append(f"nmcli connection modify {conn} " + " ".join(args))
        files[f"{u.interface}.nmconnection.ini"] = "\n".join(lines) + "\n"
        script.append(f"nmcli connection up {conn}")
    files["polroute-multihome-nmcli.sh"] = "\n".join(script) + "\n"
    return files, warnings
