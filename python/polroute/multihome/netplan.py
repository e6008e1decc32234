"""The recipe as a netplan file, merged by netplan with the base configuration.

netplan merges definitions of the same id across files, but only within one
device type: an uplink that the base configuration defines under ``bonds:``
or ``vlans:`` must be named there again (under ``ethernets:`` ``netplan
generate`` fails: "changes device type").  So the base configuration (the
files of /etc/netplan, or a copy) is read for each uplink's section and its
renderer.  Checked with netplan 0.106:

* ``renderer: NetworkManager`` writes the routes but no ``routing-policy``
  (0 rules, silently): rendering for such an uplink is refused (use
  ``--to nm``);
* a route without ``via`` always gets ``Scope=link`` in the networkd output,
  which networkd ignores for IPv6 with a warning; this file never writes
  ``scope`` on IPv6 routes (the warning is netplan's own);
* tables are accepted up to 2^32-1.
"""

from __future__ import annotations

import os

from polroute.multihome.hostfile import HostConfig

# netplan's device sections, as its schema names them
SECTIONS = ("ethernets", "bonds", "bridges", "vlans", "wifis", "tunnels", "vrfs", "modems", "dummy-devices")
FILE = "90-polroute-multihome.yaml"


def _pfx(net) -> str:
    return net.with_prefixlen


def read_netplan_dir(*dirs: str, skip: str = FILE) -> tuple[dict[str, tuple[str, str]], str]:
    """({id: (section, renderer)}, global renderer) of the base configuration's
    YAML files (netplan's order: by file name, a later file overrides)."""
    import yaml

    names: dict[str, str] = {}
    for d in dirs:
        try:
            entries = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in entries:
            if name.endswith(".yaml") and name != skip and name not in names:
                names[name] = os.path.join(d, name)
    devices: dict[str, tuple[str, str | None]] = {}
    glob = "networkd"
    for name in sorted(names):
        with open(names[name], encoding="utf-8") as f:
            try:
                doc = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f"{names[name]}:{mark.line + 1}" if mark else names[name]
                why = getattr(e, "problem", None) or str(e).splitlines()[0]
                raise ValueError(f"netplan: base configuration {where}: not valid YAML ({why})") from None
        net = doc.get("network") if isinstance(doc, dict) else None
        if not isinstance(net, dict):
            continue
        glob = net.get("renderer", glob)
        for sec in SECTIONS:
            defs = net.get(sec)
            for dev, conf in defs.items() if isinstance(defs, dict) else ():
                own = conf.get("renderer") if isinstance(conf, dict) else None
                devices[str(dev)] = (sec, own or net.get("renderer"))
    return {dev: (sec, rend or glob) for dev, (sec, rend) in devices.items()}, glob


def netplan_files(
    cfg: HostConfig, netplan_dirs: list[str] | None = None, renderer: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """{file name: text}, warnings.  ``netplan_dirs``: the base configuration
    (each uplink's section and renderer are taken from it); ``renderer``: the
    renderer when no base says (default networkd)."""
    import yaml

    warnings = []
    devices, glob = read_netplan_dir(*netplan_dirs) if netplan_dirs else ({}, renderer or "networkd")
    glob = renderer or glob
    doc_net: dict = {"version": 2}
    refused = []
    for i, u in enumerate(cfg.uplinks):
        section, rend = devices.get(u.interface, ("ethernets", glob))
        if netplan_dirs and u.interface not in devices:
            warnings.append(
                f"netplan: {u.interface} is not defined by the base configuration: rendered under ethernets"
            )
        if rend == "NetworkManager":
            refused.append(u.interface)
        routes = [
            {"to": _pfx(u.address.network), "scope": "link", "from": str(u.address.ip), "table": u.table},
            {"to": "default", "via": str(u.gateway), "table": u.table},
        ]
        if u.address6 is not None:
            routes += [
                {"to": _pfx(u.address6.network), "from": str(u.address6.ip), "table": u.table},
                {"to": "default", "via": str(u.gateway6), "table": u.table},
            ]
        policy = [
            {"from": _pfx(net), "table": u.table, "priority": u.priority} for fam in (4, 6) for net in u.sources(fam)
        ]
        for t in cfg.tenants:
            if t.uplink == u.interface or (t.uplink is None and i == 0):
                policy.append({"from": _pfx(t.source), "table": t.table, "priority": t.priority})
        doc_net.setdefault(section, {})[u.interface] = {"routes": routes, "routing-policy": policy}
    if refused:
        raise ValueError(
            f"netplan: {', '.join(refused)} rendered by NetworkManager: netplan (0.106) writes no routing-policy "
            "for that renderer, every rule would be dropped; render --to nm for NetworkManager instead"
        )
    if cfg.multipath_default:
        warnings.append("netplan: multipath-default is not expressible (netplan has no nexthop legs); not rendered")
    head = (
        f"# polroute multihome (from {os.path.basename(cfg.filename)}): merged by netplan with the\n"
        "# file that sets these interfaces' addresses; put it in /etc/netplan/ (mode 0600).\n"
        "# netplan's networkd output installs these rules as networkd's own; if the recipe is also\n"
        "# applied by the unit, add the networkd.conf drop-in of `render --to networkd`.\n"
    )
    if cfg.multipath_default:
        head += "# NOT RENDERED: multipath-default (netplan has no nexthop legs).\n"
    body = yaml.dump(
        {"network": doc_net},
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        default_flow_style=False,
    )
    return {FILE: head + body}, warnings
