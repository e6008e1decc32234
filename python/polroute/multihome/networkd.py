"""The recipe as systemd-networkd configuration.

networkd applies a drop-in (``FOO.network.d/*.conf``) only to the ``.network``
file named ``FOO.network``, and configures a link from the first ``.network``
file (in lexical order over /etc, /run and /usr/lib/systemd/network) whose
``[Match]`` matches it.  So, per uplink:

* its ``.network`` file is known (found in a configuration directory given,
  or named by the caller), matches no other uplink: a drop-in
  ``network/NAME.network.d/50-polroute-multihome.conf``;
* it has none: a complete ``network/05-polroute-IF.network`` with
  ``[Match] Name=IF``, the uplink's addresses and the recipe;
* its file also matches another uplink (``Name=eth*``): a drop-in would apply
  one uplink's routes to the other, so a complete ``05-polroute-IF.network``
  is rendered that carries the base file's sections (so it configures the
  link as before) plus the recipe, and sorts before it; a warning says so.

Keys are gated by the systemd version they need (networkd.conf
``ManageForeignRoutes=`` 246, ``ManageForeignRoutingPolicyRules=`` 249,
``MultiPathRoute=`` 243, ``[RoutingPolicyRule]`` 240).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from polroute.multihome.hostfile import HostConfig, Uplink

SYSTEMD_DEFAULT = 252  # assumed when the version is neither given nor found
DROPIN = "50-polroute-multihome.conf"
# the directories networkd reads, highest precedence first (systemd.network(5))
NETWORK_DIRS = (
    "/etc/systemd/network",
    "/run/systemd/network",
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/network",
)
KEY_SINCE = {
    "RoutingPolicyRule": 240,
    "MultiPathRoute": 243,
    "ManageForeignRoutes": 246,
    "ManageForeignRoutingPolicyRules": 249,
}


def _pfx(net) -> str:
    return net.with_prefixlen


def systemd_version(explicit: int | None = None) -> tuple[int, str | None]:
    """(version, warning): the given one, else this machine's (``networkctl --version``), else 252."""
    if explicit is not None:
        return explicit, None
    for exe in ("networkctl", "systemctl"):
        path = shutil.which(exe)
        if not path:
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.match(r"systemd (\d+)", out)
        if m:
            return int(m.group(1)), None
    return (
        SYSTEMD_DEFAULT,
        f"networkd: systemd version unknown, keys gated for {SYSTEMD_DEFAULT} (give --systemd-version)",
    )


@dataclass
class NetworkFile:
    """A base ``.network`` file: its name, where it is, its [Match] Name= patterns, its text."""

    name: str
    path: str
    names: list[str] | None  # None: [Match] has no Name= (it matches by other keys, or everything)
    other_match: list[str]  # [Match] keys other than Name=
    text: str

    def matches(self, ifname: str) -> str:
        """ "yes" (by Name= alone), "no", "likely" (Name= matches, other [Match] keys
        too), "unknown" (no Name=, other keys decide: Type=wlan, Driver=, ...)."""
        if self.names is not None:
            pos = [p for p in self.names if not p.startswith("!")]
            neg = [p[1:] for p in self.names if p.startswith("!")]
            hit = (not pos or any(fnmatch.fnmatchcase(ifname, p) for p in pos)) and not any(
                fnmatch.fnmatchcase(ifname, p) for p in neg
            )
            if not hit:
                return "no"
            return "yes" if not self.other_match else "likely"
        return "yes" if not self.other_match else "unknown"


def _match_section(text: str) -> tuple[list[str] | None, list[str]]:
    names: list[str] | None = None
    other: list[str] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        if section != "Match" or "=" not in line:
            continue
        key, _, value = (x.strip() for x in line.partition("="))
        if key == "Name":
            names = [] if not value else (names or []) + value.split()
        else:
            other.append(key)
    return names, other


def read_network_dir(*dirs: str) -> list[NetworkFile]:
    """The ``.network`` files of ``dirs`` (earlier ones shadow later files of the same
    name, as /etc shadows /usr/lib), in the order networkd tries them."""
    seen: dict[str, NetworkFile] = {}
    for d in dirs:
        try:
            entries = sorted(os.listdir(d))
        except FileNotFoundError:
            continue
        for name in entries:
            path = os.path.join(d, name)
            if not name.endswith(".network") or name in seen or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            names, other = _match_section(text)
            seen[name] = NetworkFile(name, path, names, other, text)
    return [seen[n] for n in sorted(seen)]


def find_base(files: list[NetworkFile], ifname: str) -> tuple[NetworkFile | None, str | None]:
    """(the file networkd configures ``ifname`` from, a warning when that is uncertain).
    A file that names ``ifname`` by ``Name=`` is taken; files that match only by
    other keys (the vendor ``Type=wlan`` ones, ``Driver=``...) are taken as not
    matching, and named in the warning when they come first."""
    unknown: list[NetworkFile] = []
    for f in files:
        hit = f.matches(ifname)
        if hit == "no":
            continue
        if hit == "unknown":
            unknown.append(f)
            continue
        w = None
        if hit == "likely":
            w = f"networkd: {f.name} matches {ifname} by Name= and also by {', '.join(f.other_match)}"
        if unknown:
            w = (w + "; " if w else "networkd: ") + (
                f"{', '.join(x.name for x in unknown)} (matching by {_keys(unknown)}) come before {f.name}"
            )
        if w:
            w += f"; {f.name} taken as {ifname}'s .network file (give --network-file {ifname}=NAME if not)"
        return f, w
    if unknown and any(not x.path.startswith("/usr/lib/") for x in unknown):
        return None, (
            f"networkd: no .network file names {ifname}; {', '.join(x.name for x in unknown)} "
            f"(matching by {_keys(unknown)}) taken as not matching it (give --network-file {ifname}=NAME if one does)"
        )
    return None, None


def _keys(files: list[NetworkFile]) -> str:
    return ", ".join(sorted({k for f in files for k in f.other_match}))


def _without_match(text: str) -> str:
    out, skip = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            skip = s.strip("[]").strip() == "Match"
        if not skip:
            out.append(line)
    return "\n".join(out).strip("\n")


def _recipe_sections(cfg: HostConfig, i: int, u: Uplink, version: int, warnings: list[str]) -> list[str]:
    lines = [
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
    rules = [(net, u.table, u.priority) for fam in (4, 6) for net in u.sources(fam)]
    # a tenant's rule is global; it lives in its uplink's file, table-only ones in the first
    rules += [
        (t.source, t.table, t.priority) for t in cfg.tenants if t.uplink == u.interface or (t.uplink is None and i == 0)
    ]
    if version < KEY_SINCE["RoutingPolicyRule"]:
        warnings.append(f"networkd: systemd {version} has no [RoutingPolicyRule] (needs 240): rules not rendered")
        rules = []
    for net, table, prio in rules:
        lines += ["", "[RoutingPolicyRule]", f"From={_pfx(net)}", f"Table={table}", f"Priority={prio}"]
    if cfg.multipath_default and i == 0:
        if version < KEY_SINCE["MultiPathRoute"]:
            warnings.append(
                f"networkd: systemd {version} has no MultiPathRoute= (needs 243): multipath-default not rendered"
            )
        else:
            lines += ["", "[Route]", "Destination=0.0.0.0/0", f"Metric={cfg.multipath_metric}"]
            lines += [f"MultiPathRoute={x.gateway}@{x.interface} {x.weight}" for x in cfg.uplinks]
            six = [x for x in cfg.uplinks if x.address6]
            if six:
                lines += ["", "[Route]", "Destination=::/0", f"Metric={cfg.multipath_metric}"]
                lines += [f"MultiPathRoute={x.gateway6}@{x.interface} {x.weight}" for x in six]
    return lines


def _networkd_conf(cfg: HostConfig, version: int, warnings: list[str]) -> str | None:
    keys = [k for k in ("ManageForeignRoutingPolicyRules", "ManageForeignRoutes") if version >= KEY_SINCE[k]]
    if version < KEY_SINCE["ManageForeignRoutingPolicyRules"]:
        warnings.append(
            f"networkd: systemd {version} has no ManageForeignRoutingPolicyRules= (needs 249): at start it "
            f"deletes rules it did not create; the rules of these .network files are its own, but a recipe "
            f"applied by other means (batch, the unit) must be applied after networkd started"
        )
    if not keys:
        return None
    text = (
        "# polroute multihome: keep networkd from deleting rules and routes it did not create\n"
        f"# (e.g. the recipe applied by `polroute multihome apply`, owner protocol {cfg.owner});\n"
        f"# rendered for systemd {version}. With the default (yes) networkd may remove them\n"
        "# (networkd.conf(5)); 252 in a namespace was seen to keep them at start anyway.\n"
        "[Network]\n"
    )
    return text + "".join(f"{k}=no\n" for k in keys)


def networkd_files(
    cfg: HostConfig,
    network_dirs: list[str] | None = None,
    network_files: dict[str, str] | None = None,
    version: int | None = None,
) -> tuple[dict[str, str], list[str]]:
    """{relative path under /etc/systemd/: text}, warnings.  ``network_dirs``: the
    directories to find each uplink's ``.network`` file in (e.g. a copy of
    /etc/systemd/network); ``network_files``: {interface: .network file name}, which wins."""
    version, warn = systemd_version(version)
    warnings: list[str] = [warn] if warn else []
    files: dict[str, str] = {}
    bases = read_network_dir(*network_dirs) if network_dirs else []
    given = dict(network_files or {})
    unknown = sorted(set(given) - {u.interface for u in cfg.uplinks})
    if unknown:
        raise ValueError(f"networkd: --network-file for {', '.join(unknown)}, which is no uplink")
    chosen: dict[str, NetworkFile | str | None] = {}
    for u in cfg.uplinks:
        if u.interface in given:
            name = given[u.interface]
            if "/" in name or name.startswith("."):
                raise ValueError(f"networkd: --network-file {u.interface}={name}: a file name, not a path")
            name = name if name.endswith(".network") else name + ".network"
            chosen[u.interface] = next((b for b in bases if b.name == name), name)
            continue
        base, w = find_base(bases, u.interface)
        if w:
            warnings.append(w)
        chosen[u.interface] = base
    shared: dict[str, list[str]] = {}
    for ifname, base in chosen.items():
        if isinstance(base, NetworkFile):
            shared.setdefault(base.name, []).append(ifname)
        elif isinstance(base, str):
            shared.setdefault(base, []).append(ifname)
    src = os.path.basename(cfg.filename)
    for i, u in enumerate(cfg.uplinks):
        base = chosen[u.interface]
        body = _recipe_sections(cfg, i, u, version, warnings)
        bname = base.name if isinstance(base, NetworkFile) else base
        if bname is not None and len(shared[bname]) == 1:
            head = [
                f"# polroute multihome drop-in for {u.interface} (from {src}), applied by networkd to",
                f"# {bname} only (a drop-in belongs to the .network file of its directory's name).",
                "# Install under /etc/systemd/network/, then `networkctl reload`.",
            ]
            files[f"network/{bname}.d/{DROPIN}"] = "\n".join(head + [""] + body) + "\n"
            continue
        path = f"network/05-polroute-{u.interface}.network"
        head = [f"# polroute multihome: {u.interface}'s .network file (from {src}); networkd takes the first"]
        head.append("# matching file in lexical order, so this one sorts first.")
        match = ["[Match]", f"Name={u.interface}"]
        if bname is None:
            own = ["[Network]", f"Address={u.address}"] + ([f"Address={u.address6}"] if u.address6 else [])
            if u.address6:  # static IPv6 (the host file's): no RA wait, no SLAAC address besides it
                own.append("IPv6AcceptRA=no")
            head.append(f"# No .network file matched {u.interface}: networkd now manages it with these addresses")
            head.append("# (add Gateway= to [Network] if main's default route should go through it).")
            warnings.append(f"networkd: no .network file matches {u.interface}: rendered {os.path.basename(path)}")
            text = head + [""] + match + [""] + own + [""] + body
        else:
            others = ", ".join(x for x in shared[bname] if x != u.interface)
            head.append(f"# {bname} also matches {others}: its sections are copied here, with the recipe.")
            warnings.append(
                f"networkd: {bname} matches {u.interface} and {others}: a drop-in would apply to both; "
                f"rendered {os.path.basename(path)} (a copy of {bname}'s settings plus the recipe) instead"
            )
            copied = _without_match(base.text) if isinstance(base, NetworkFile) else ""
            if not copied:
                warnings.append(f"networkd: {bname} not read (give its directory): its settings are not copied")
            text = head + [""] + match + ([""] + [copied] if copied else []) + [""] + body
        files[path] = "\n".join(text) + "\n"
    conf = _networkd_conf(cfg, version, warnings)
    if conf:
        files[f"networkd.conf.d/{DROPIN}"] = conf
    return files, warnings


def default_network_dirs() -> list[str]:
    return [d for d in NETWORK_DIRS if os.path.isdir(d)]
