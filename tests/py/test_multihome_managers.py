"""The network managers' own readers on the renderings: netplan generate (VLAN
and bond uplinks, both renderers), libnm's keyfile reader and property parsers
(the nmcli script set twice), systemd-analyze (verify, security), and the
dispatcher hooks.  Tests marked ``consumer`` fail CI when skipped."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from multihome_fixtures import TWO_NIC_HOST, consumer_env  # noqa: E402
from polroute.iproute2.rt_tables import RtTables  # noqa: E402
from polroute.multihome.hostfile import parse_host_text  # noqa: E402
from polroute.multihome.networkd import find_base, read_network_dir  # noqa: E402
from polroute.multihome.render import render  # noqa: E402
from polroute.multihome.unit import unit_text  # noqa: E402

VLAN_BOND_HOST = """\
version: 1
priority-base: 700
uplinks:
  - interface: bond0
    address: 10.1.0.2/24
    gateway: 10.1.0.1
    table: 70000
  - interface: vlan10
    address: 10.2.0.2/24
    gateway: 10.2.0.1
    address6: 2001:db8:2::2/64
    gateway6: fe80::1
tenants:
  - from: 172.16.5.0/24
    uplink: vlan10
"""

NETPLAN_BASE = """\
network:
  version: 2
  renderer: {renderer}
  ethernets:
    eth0: {{}}
    eth1: {{}}
  bonds:
    bond0:
      interfaces: [eth1]
      addresses: [10.1.0.2/24]
  vlans:
    vlan10:
      id: 10
      link: eth0
      addresses: [10.2.0.2/24, "2001:db8:2::2/64"]
"""


def _netplan_generate(root) -> subprocess.CompletedProcess:
    for f in os.listdir(root / "etc/netplan"):
        os.chmod(root / "etc/netplan" / f, 0o600)
    return subprocess.run(
        ["netplan", "generate", "--root-dir", str(root)], capture_output=True, text=True, env=consumer_env()
    )


@pytest.mark.consumer
@pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan (Debian netplan.io) not installed")
def test_netplan_vlan_and_bond_uplinks(tmp_path):
    """Uplinks the base defines under bonds: and vlans: are named there again
    (under ethernets: `netplan generate` fails: "changes device type"); every
    rule reaches netplan's networkd output; a table above 65535 is fine."""
    cfg = parse_host_text(VLAN_BOND_HOST, "h.yaml", RtTables())
    etc = tmp_path / "etc/netplan"
    etc.mkdir(parents=True)
    (etc / "10-base.yaml").write_text(NETPLAN_BASE.format(renderer="networkd"))
    files, _ = render(cfg, "netplan", netplan_dirs=[str(etc)])
    (etc / "90-polroute-multihome.yaml").write_text(files["90-polroute-multihome.yaml"])
    r = _netplan_generate(tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run/systemd/network"
    rules = {}
    for u in cfg.uplinks:
        text = (out / f"10-netplan-{u.interface}.network").read_text()
        rules[u.interface] = sorted(re.findall(r"From=(\S+)\nTable=(\d+)\nPriority=(\d+)", text))
        assert f"Table={u.table}" in text
    assert rules == {
        "bond0": [("10.1.0.2/32", "70000", "700")],
        "vlan10": sorted(
            [("10.2.0.2/32", "1001", "701"), ("2001:db8:2::2/128", "1001", "701"), ("172.16.5.0/24", "1001", "702")]
        ),
    }
    import yaml

    doc = yaml.safe_load(files["90-polroute-multihome.yaml"])["network"]
    v6 = [r for r in doc["vlans"]["vlan10"]["routes"] if ":" in r["to"] or ":" in r.get("via", "")]
    assert v6 and not any("scope" in r for r in v6)  # (netplan adds Scope=link itself to a route without via)
    # the old rendering (everything under ethernets:) is what netplan refuses
    bad = files["90-polroute-multihome.yaml"].replace("  bonds:\n", "  ethernets:\n").replace("  vlans:\n", "")
    (etc / "90-polroute-multihome.yaml").write_text(bad)
    r = _netplan_generate(tmp_path)
    assert r.returncode != 0


@pytest.mark.consumer
@pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan (Debian netplan.io) not installed")
def test_netplan_networkmanager_renderer_drops_rules_so_render_refuses(tmp_path):
    cfg = parse_host_text(VLAN_BOND_HOST, "h.yaml", RtTables())
    etc = tmp_path / "etc/netplan"
    etc.mkdir(parents=True)
    (etc / "10-base.yaml").write_text(NETPLAN_BASE.format(renderer="networkd"))
    files, _ = render(cfg, "netplan", netplan_dirs=[str(etc)])
    (etc / "10-base.yaml").write_text(NETPLAN_BASE.format(renderer="NetworkManager"))
    with pytest.raises(ValueError, match="NetworkManager.*render --to nm"):
        render(cfg, "netplan", netplan_dirs=[str(etc)])
    # what netplan itself does with the rules under that renderer: routes kept, 0 rules
    (etc / "90-polroute-multihome.yaml").write_text(files["90-polroute-multihome.yaml"])
    r = _netplan_generate(tmp_path)
    assert r.returncode == 0, r.stderr
    conns = tmp_path / "run/NetworkManager/system-connections"
    text = "".join((conns / f).read_text() for f in os.listdir(conns))
    assert "table=70000" in text and "routing-rule" not in text


# ---------------------------------------------------------------------------
# NetworkManager: libnm's reader (system python with gi, NM 1.0)
# ---------------------------------------------------------------------------


def _gi_python() -> str | None:
    for py in ("/usr/bin/python3", sys.executable):
        if os.path.exists(py):
            r = subprocess.run(
                [py, "-c", "import gi; gi.require_version('NM', '1.0'); from gi.repository import NM"],
                capture_output=True,
                env=consumer_env(),
            )
            if r.returncode == 0:
                return py
    return None


GI_PY = _gi_python()

_LIBNM = r"""
import json, sys
import gi
gi.require_version("NM", "1.0")
from gi.repository import GLib, NM

job = json.load(sys.stdin)
out = {}
for name, text in job["keyfiles"].items():
    kf = GLib.KeyFile()
    kf.load_from_data(text, len(text.encode()), GLib.KeyFileFlags.NONE)
    conn = NM.keyfile_read(kf, "/etc/NetworkManager/system-connections", NM.KeyfileHandlerFlags.NONE, None, None)
    conn.normalize()
    conn.verify()
    got = {}
    for fam, s in (("ipv4", conn.get_setting_ip4_config()), ("ipv6", conn.get_setting_ip6_config())):
        routes = []
        for i in range(s.get_num_routes()):
            r = s.get_route(i)
            attrs = {k: r.get_attribute(k).unpack() for k in r.get_attribute_names()}
            routes.append([r.get_dest(), r.get_prefix(), r.get_next_hop(), r.get_metric(), attrs])
        rules = [s.get_routing_rule(i).to_string(NM.IPRoutingRuleAsStringFlags.NONE, None)
                 for i in range(s.get_num_routing_rules())]
        got[fam] = {"routes": routes, "rules": rules}
    out[name] = got
# nmcli property values: routes "DST [GW] [ATTR=V]..., ..." and rules "RULE, RULE"
props = {}
for key, fam, kind, value in job["props"]:
    famn = 2 if fam == "ipv4" else 10
    items = []
    for part in [p.strip() for p in value.split(",") if p.strip()]:
        if kind == "routing-rules":
            rule = NM.IPRoutingRule.from_string(part, NM.IPRoutingRuleAsStringFlags.NONE, None)
            rule.validate()
            items.append(rule.to_string(NM.IPRoutingRuleAsStringFlags.NONE, None))
        else:
            words = part.split()
            dst, plen = words[0].split("/")
            gw = words[1] if len(words) > 1 and "=" not in words[1] else None
            metric = int(words[2]) if len(words) > 2 and "=" not in words[2] else -1
            r = NM.IPRoute.new(famn, dst, int(plen), gw, metric)
            for w in words[1:]:
                if "=" not in w:
                    continue
                k, v = w.split("=", 1)
                var = GLib.Variant("s", v) if k == "src" else GLib.Variant("u", int(v))
                ok, known = NM.IPRoute.attribute_validate(k, var, famn)
                assert ok and known, w
                r.set_attribute(k, var)
            items.append([r.get_dest(), r.get_prefix(), r.get_next_hop(), r.get_metric(),
                          {k: r.get_attribute(k).unpack() for k in r.get_attribute_names()}])
    props.setdefault(key, {})[fam + "." + kind] = items  # set whole: a second run gives the same
print(json.dumps({"keyfiles": out, "props": props}))
"""


def _libnm(keyfiles: dict, props: list) -> dict:
    r = subprocess.run(
        [GI_PY, "-c", _LIBNM],
        input=json.dumps({"keyfiles": keyfiles, "props": props}),
        capture_output=True,
        text=True,
        env=consumer_env(),
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


RICH_NM = TWO_NIC_HOST.replace("table-base: 1\n", "table-base: 1\nmultipath-default: true\n").replace(
    "    gateway: 192.168.16.1\n  - interface: eth1", "    gateway: 192.168.16.1\n    weight: 3\n  - interface: eth1"
)


@pytest.mark.consumer
@pytest.mark.skipif(GI_PY is None, reason="libnm's introspection data (Debian gir1.2-nm-1.0, python3-gi) not installed")
def test_nm_keyfiles_read_by_libnm_and_nmcli_script_idempotent():
    """Each keyfile section merged into a usual keyfile: libnm reads, normalizes
    and verifies it, with every route (table, src, ECMP weight) and rule; the
    nmcli script's values parse with libnm's own parsers to the same lists, and
    the script sets each property whole (running it twice gives the same)."""
    cfg = parse_host_text(RICH_NM, "h.yaml", RtTables())
    files, _ = render(cfg, "nm", nm_version="1.42")
    keyfiles = {}
    for u in cfg.uplinks:
        base = (
            f"[connection]\nid={u.interface}\ntype=ethernet\ninterface-name={u.interface}\n\n"
            f"[ipv4]\nmethod=manual\naddress1={u.address},{u.gateway}\n"
        )
        extra = files[f"{u.interface}.nmconnection.ini"].split("[ipv4]\n", 1)[1]
        keyfiles[u.interface] = base + extra
    props = []
    for line in files["polroute-multihome-nmcli.sh"].splitlines():
        if line.startswith("nmcli connection modify"):
            words = shlex.split(line)
            conn = re.search(r":-([^}]+)}", words[3]).group(1)
            for prop, value in zip(words[4::2], words[5::2]):
                assert not prop.startswith(("+", "-")), prop
                fam, kind = prop.split(".")
                props.append([conn, fam, kind, value])
    got = _libnm(keyfiles, props)
    for u in cfg.uplinks:
        kf = got["keyfiles"][u.interface]["ipv4"]
        assert sorted(kf["rules"]) == sorted(got["props"][u.interface]["ipv4.routing-rules"])
        assert kf["rules"] == [f"priority {u.priority} from {u.address.ip} table {u.table}"]
        assert sorted(map(json.dumps, kf["routes"])) == sorted(
            map(json.dumps, got["props"][u.interface]["ipv4.routes"])
        )
        ecmp = [r for r in kf["routes"] if r[4].get("table") == 254]
        assert ecmp == [["0.0.0.0", 0, str(u.gateway), 0, {"table": 254, "weight": u.weight}]]
    # before 1.42: no weight, the multipath default is left out with a warning
    files, warnings = render(cfg, "nm", nm_version="1.40")
    assert "weight" not in "".join(files.values()) and any("1.42" in w for w in warnings)


# ---------------------------------------------------------------------------
# systemd: the unit and the hooks
# ---------------------------------------------------------------------------


def _exposure(path) -> float:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)], capture_output=True, text=True
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return float(m.group(1))


@pytest.mark.consumer
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_hardened_and_verified(tmp_path):
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    files, _ = render(cfg, "systemd-unit")
    scores = {}
    for hardened in (False, True):
        d = tmp_path / str(hardened)
        d.mkdir()
        unit = d / "polroute-multihome.service"
        unit.write_text(files["polroute-multihome.service"] if hardened else unit_text(cfg, hardened=False))
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        scores[hardened] = _exposure(unit)
    print(f"systemd-analyze security: {scores[False]} before, {scores[True]} after")
    assert scores[False] >= 9.0 and scores[True] <= 3.0, scores


@pytest.mark.parametrize("kind", ["networkd", "nm"])
def test_dispatcher_hooks_restart_the_unit_for_uplinks_only(tmp_path, kind):
    cfg = parse_host_text(TWO_NIC_HOST, "h.yaml", RtTables())
    files, _ = render(cfg, "systemd-unit")
    name = (
        "networkd-dispatcher/routable.d/50-polroute-multihome"
        if kind == "networkd"
        else ("NetworkManager/dispatcher.d/50-polroute-multihome")
    )
    hook = tmp_path / "hook"
    hook.write_text(files[name])
    log = tmp_path / "calls"
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    os.chmod(stub / "systemctl", 0o755)
    env = dict(os.environ, PATH=f"{stub}:{os.environ['PATH']}")
    cases = [("eth0", "up", True), ("eth1", "up", True), ("lan0", "up", False), ("eth", "up", False)]
    if kind == "nm":
        cases += [("eth0", "down", False), ("eth0", "dhcp4-change", True), ("eth0", "reapply", True)]
    for iface, action, want in cases:
        if log.exists():
            log.unlink()
        argv = ["sh", str(hook)] + ([iface, action] if kind == "nm" else [])
        r = subprocess.run(argv, env=dict(env, IFACE=iface, STATE="routable"), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        called = log.read_text() if log.exists() else ""
        assert (called == "restart --no-block polroute-multihome.service\n") == want, (iface, action, called)


def test_networkd_base_file_choice(tmp_path):
    """networkd's choice: the first file in lexical order whose [Match] Name= matches
    (globs, negation), /etc before /usr/lib; a file shared by two uplinks gets a
    complete .network file per uplink instead of a drop-in."""
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    etc.mkdir()
    lib.mkdir()
    (lib / "10-eth0.network").write_text("[Match]\nName=eth0\n")
    (etc / "10-eth0.network").write_text("[Match]\nName=!eth*\n")  # /etc shadows /usr/lib: eth0 not matched
    (etc / "20-all.network").write_text("[Match]\nName=eth* wan*\n[Network]\nDHCP=yes\n")
    files = read_network_dir(str(etc), str(lib))
    assert [f.name for f in files] == ["10-eth0.network", "20-all.network"]
    assert find_base(files, "eth0")[0].name == "20-all.network"
    assert find_base(files, "lan0")[0].name == "10-eth0.network"  # Name=!eth* matches it
    assert find_base(files[1:], "lan0") == (None, None)
    cfg = parse_host_text(TWO_NIC_HOST, "h.yaml", RtTables())
    out, warnings = render(cfg, "networkd", network_dirs=[str(etc), str(lib)], systemd_version=252)
    assert sorted(out) == [
        "network/05-polroute-eth0.network",
        "network/05-polroute-eth1.network",
        "networkd.conf.d/50-polroute-multihome.conf",
    ]
    assert "DHCP=yes" in out["network/05-polroute-eth0.network"] and len(warnings) == 2
    out, _ = render(cfg, "networkd", network_files={"eth0": "30-up", "eth1": "31-up.network"}, systemd_version=248)
    assert sorted(out) == [
        "network/30-up.network.d/50-polroute-multihome.conf",
        "network/31-up.network.d/50-polroute-multihome.conf",
        "networkd.conf.d/50-polroute-multihome.conf",
    ]
    # 248 has ManageForeignRoutes= but not ManageForeignRoutingPolicyRules= (249)
    assert "ManageForeignRoutingPolicyRules" not in out["networkd.conf.d/50-polroute-multihome.conf"]
    assert "ManageForeignRoutes=no" in out["networkd.conf.d/50-polroute-multihome.conf"]


def test_networkd_complete_file_when_no_base_and_version_gates():
    from test_multihome import RICH_HOST

    cfg = parse_host_text(RICH_HOST, "h.yaml", RtTables())
    files, warnings = render(cfg, "networkd", network_dirs=[], systemd_version=252)
    wan0 = files["network/05-polroute-wan0.network"]
    assert wan0.startswith("# polroute") and "[Match]\nName=wan0\n" in wan0
    assert "Address=198.51.100.10/24\nAddress=2001:db8:1::10/64\nIPv6AcceptRA=no\n" in wan0
    assert "IPv6AcceptRA" not in files["network/05-polroute-wan1.network"]  # its IPv6 is not the host file's
    assert sum("no .network file matches" in w for w in warnings) == 2
    # 242: no MultiPathRoute= (243), no networkd.conf keys (246, 249); 239: no rules at all
    files, warnings = render(cfg, "networkd", network_dirs=[], systemd_version=242)
    assert "MultiPathRoute" not in "".join(files.values()) and "networkd.conf.d/50-polroute-multihome.conf" not in files
    assert any("243" in w for w in warnings) and any("249" in w for w in warnings)
    files, warnings = render(cfg, "networkd", network_dirs=[], systemd_version=239)
    assert "[RoutingPolicyRule]" not in "".join(files.values()) and any("240" in w for w in warnings)


def test_netplan_base_configuration_read_per_device(tmp_path, capsys):
    """A device's own renderer wins over the file's; a later file overrides;
    a broken base file is one line naming it, exit 1."""
    from polroute.cli import app as cli
    from polroute.multihome.netplan import read_netplan_dir

    (tmp_path / "01-a.yaml").write_text("network:\n  renderer: NetworkManager\n  ethernets:\n    eth0: {}\n")
    (tmp_path / "02-b.yaml").write_text(
        "network:\n  bonds:\n    bond0:\n      renderer: networkd\n  vlans:\n    v5: {id: 5, link: eth0}\n"
    )
    devices, glob = read_netplan_dir(str(tmp_path))
    assert glob == "NetworkManager"
    assert devices == {
        "eth0": ("ethernets", "NetworkManager"),
        "bond0": ("bonds", "networkd"),
        "v5": ("vlans", "NetworkManager"),
    }
    (tmp_path / "03-c.yaml").write_text("network: [\n")
    host = tmp_path / "h.yaml"
    host.write_text(TWO_NIC_HOST)
    assert cli.main(["multihome", "render", str(host), "--to", "netplan", "--base", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "03-c.yaml:2: not valid YAML" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_network_file_option_is_a_name(tmp_path, capsys):
    from polroute.cli import app as cli

    host = tmp_path / "h.yaml"
    host.write_text(TWO_NIC_HOST)
    for bad in ("eth0=../../x", "eth0", "eth9=10-eth9.network"):
        rc = cli.main(
            ["multihome", "render", str(host), "--to", "networkd", "--network-file", bad, "--out", str(tmp_path / "o")]
        )
        assert rc == 1 and not (tmp_path / "o").exists()
        assert len(capsys.readouterr().err.splitlines()) == 1
    argv = ["multihome", "render", str(host), "--to", "networkd", "--base", str(tmp_path / "none")]
    assert (
        cli.main(argv + ["--network-file", "eth0=10-up", "--systemd-version", "252", "--out", str(tmp_path / "o")]) == 0
    )
    written = sorted(os.path.relpath(p, tmp_path / "o") for p in capsys.readouterr().out.split())
    assert written == [
        "network/05-polroute-eth1.network",
        "network/10-up.network.d/50-polroute-multihome.conf",
        "networkd.conf.d/50-polroute-multihome.conf",
    ]


def test_unit_and_hooks_written_with_their_modes(tmp_path, capsys):
    from polroute.cli import app as cli

    host = tmp_path / "h.yaml"
    host.write_text(TWO_NIC_HOST)
    assert cli.main(["multihome", "render", str(host), "--to", "systemd-unit", "--out", str(tmp_path / "o")]) == 0
    modes = {os.path.relpath(p, tmp_path / "o"): os.stat(p).st_mode & 0o777 for p in capsys.readouterr().out.split()}
    assert modes == {
        "polroute-multihome.service": 0o644,
        "networkd-dispatcher/routable.d/50-polroute-multihome": 0o755,
        "networkd-dispatcher/configured.d/50-polroute-multihome": 0o755,
        "NetworkManager/dispatcher.d/50-polroute-multihome": 0o755,
    }


def test_networkd_files_matching_by_other_keys(tmp_path):
    """A file without Name= (the vendor `Type=wlan` ones) is not taken for an
    uplink: it is named in a warning; Name= plus other keys is taken, with one."""
    (tmp_path / "05-wifi.network").write_text("[Match]\nType=wlan\nWLANInterfaceType=ad-hoc\n")
    (tmp_path / "20-eth0.network").write_text("[Match]\nName=eth0\nDriver=virtio_net\n")
    files = read_network_dir(str(tmp_path))
    base, w = find_base(files, "eth0")
    assert base.name == "20-eth0.network" and "05-wifi.network" in w and "Driver" in w
    base, w = find_base(files, "eth1")
    assert base is None and "05-wifi.network" in w and "taken as not matching" in w
