"""The multihome host file, its renderers read back, and `polroute audit` on models."""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from importlib import resources

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from multihome_fixtures import TWO_NIC_HOST, big_host  # noqa: E402
from polroute import Policy
from polroute.audit import audit_policy, format_report  # noqa: E402
from polroute.cli import app as cli  # noqa: E402
from polroute.cli.demo import split_recipe, two_nic_batch  # noqa: E402
from polroute.iproute2.batch import apply_batch  # noqa: E402
from polroute.iproute2.route_get import route_get  # noqa: E402
from polroute.iproute2.rt_tables import RtTables  # noqa: E402
from polroute.multihome.hostfile import HostFileError, parse_host_text  # noqa: E402
from polroute.multihome.render import batch_text, render, systemd_word  # noqa: E402

RICH_HOST = """\
version: 1
owner-protocol: 201
priority-base: 3000
table-base: 300
multipath-default: true
uplinks:
  - interface: wan0
    address: 198.51.100.10/24
    gateway: 198.51.100.1
    weight: 3
    address6: 2001:db8:1::10/64
    gateway6: 2001:db8:1::1
    serves:
      - 10.0.0.10-10.0.0.20
      - 10.1.0.0/24
      - 2001:db8:ff::/48
  - interface: wan1
    address: 203.0.113.10/24
    gateway: 203.0.113.1
    table: 77
    serves:
      - 10.2.0.5
tenants:
  - from: 172.16.5.0/24
    uplink: wan1
  - from: 172.16.6.0/24
    table: 500
"""


def _probe(net):
    """The address a test asks about for a served source (one of its own)."""
    return net[0] if net.num_addresses == 1 else net[1]


def _base(cfg) -> str:
    """The host without the recipe: the uplinks' links and addresses, one
    local address in every served source (an output-route question from a
    non-local source is ENETUNREACH, as in the kernel), and a LAN link
    towards the tenants with forwarding on."""
    out = [
        "link set lo up",
        "link add lan0 type veth peer name lanp",
        "link set lanp up",
        "link set lan0 up",
        "addr add 172.16.0.1/12 dev lan0",
    ]
    for i, u in enumerate(cfg.uplinks):
        out += [
            f"link add {u.interface} type veth peer name p{i}",
            f"link set p{i} up",
            f"link set {u.interface} up",
            f"addr add {u.address} dev {u.interface}",
        ]
        if u.address6:
            out.append(f"addr add {u.address6} dev {u.interface} nodad")
        for s in u.serves:
            nodad = " nodad" if s.net.version == 6 else ""
            out.append(f"addr add {_probe(s.net)}/{s.net.max_prefixlen} dev {u.interface}{nodad}")
    return "\n".join(out) + "\n"


def _model(cfg, extra: str = "") -> Policy:
    p = Policy()
    apply_batch(p, _base(cfg) + extra + batch_text(cfg), cfg.filename)
    p.sysctl("net.ipv4.conf.all.forwarding", 1)
    return p


# ---------------------------------------------------------------------------
# the host file
# ---------------------------------------------------------------------------


def test_rich_host_file_parsed():
    cfg = parse_host_text(RICH_HOST, "rich.yaml")
    assert cfg.owner == 201 and cfg.multipath_default
    wan0, wan1 = cfg.uplinks
    assert (wan0.table, wan0.priority, wan0.weight) == (300, 3000, 3)
    assert (wan1.table, wan1.priority) == (77, 3001)
    # the range is summarized into prefixes covering exactly 10.0.0.10..10.0.0.20
    nets = [n for n in wan0.sources(4)][1:]
    covered = {a for n in nets[:-1] for a in n}
    assert covered == {ipaddress.ip_address(f"10.0.0.{i}") for i in range(10, 21)}
    assert [str(n) for n in wan0.sources(6)] == ["2001:db8:1::10/128", "2001:db8:ff::/48"]
    assert [(str(t.source), t.table, t.priority) for t in cfg.tenants] == [
        ("172.16.5.0/24", 77, 3002),
        ("172.16.6.0/24", 500, 3003),
    ]


def test_schema_accepts_the_examples():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("polroute.multihome").joinpath("schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for text in (RICH_HOST, TWO_NIC_HOST, big_host(50)[0]):
        jsonschema.validate(yaml.safe_load(text), schema)


BAD = [
    # (text, line, key, words in the message)
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.1.1\n",
        4,
        "uplinks[0].gateway",
        "not on eth0's subnet",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2\n    gateway: 10.0.0.1\n",
        3,
        "uplinks[0].address",
        "ADDRESS/PREFIXLEN",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n"
        "  - interface: eth1\n    address: 10.0.1.2/24\n    gateway: 10.0.1.300\n",
        7,
        "uplinks[1].gateway",
        "not an IPv4 address",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    tabel: 5\n",
        5,
        "uplinks[0].tabel",
        "unknown key",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    table: 254\n",
        5,
        "uplinks[0].table",
        "reserved",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    table: nosuch\n",
        5,
        "uplinks[0].table",
        "unknown table name",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    serves:\n"
        "      - 10.5.0.0/16\n      - 10.5.3.0/24\n",
        7,
        "uplinks[0].serves[1]",
        "overlaps uplinks[0].serves[0]",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    serves:\n"
        "      - 10.9.0.9-10.9.0.1\n",
        6,
        "uplinks[0].serves[0]",
        "ends before it starts",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    serves:\n"
        "      - 10.9.0.1/16\n",
        6,
        "uplinks[0].serves[0]",
        "host bits set",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n    weight: no\n",
        5,
        "uplinks[0].weight",
        "decimal integer",
    ),
    (
        "priority-base: 32765\nuplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n"
        "  - interface: eth1\n    address: 10.0.1.2/24\n    gateway: 10.0.1.1\n",
        1,
        "priority-base",
        "32766",
    ),
    ("owner-protocol: 2\nuplinks: []\n", 1, "owner-protocol", "belongs to the kernel"),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n"
        "tenants:\n  - from: 172.16.0.0/24\n    uplink: eth9\n",
        7,
        "tenants[0].uplink",
        "no uplink",
    ),
    (
        "uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n    gateway: 10.0.0.1\n"
        "tenants:\n  - from: 172.16.0.0/24\n",
        6,
        "tenants[0]",
        "exactly one of",
    ),
    ("uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n  gateway: 10.0.0.1\n", 4, "", "not valid YAML"),
    ("uplinks:\n  - interface: eth0\n    interface: eth1\n", 3, "uplinks[0].interface", "duplicate key"),
    ("uplinks:\n  - interface: eth0\n    address: 10.0.0.2/24\n", 2, "uplinks[0].gateway", "missing"),
]


@pytest.mark.parametrize("text,line,key,words", BAD)
def test_malformed_host_file_names_line_and_key(text, line, key, words):
    with pytest.raises(HostFileError) as ei:
        parse_host_text(text, "h.yaml", RtTables())
    e = ei.value
    assert (e.line, e.key) == (line, key), str(e)
    assert words in str(e)
    prefix = f"h.yaml:{line}: key '{key}': " if key else f"h.yaml:{line}: "
    assert str(e).startswith(prefix)


def test_cli_refuses_a_bad_file_and_applies_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD[0][0])
    for argv in (
        ["multihome", "render", str(bad), "--to", "batch"],
        ["multihome", "apply", str(bad)],
        ["multihome", "check", str(bad)],
    ):
        assert cli.main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and f"{bad}:4: key 'uplinks[0].gateway':" in err


_FIELDS = {  # key -> (a valid value, an invalid one)
    "address": ("10.{i}.0.2/24", "10.{i}.0.2/33"),
    "gateway": ("10.{i}.0.1", "10.{i}.0.256"),
    "table": ("{t}", "main"),
    "weight": ("{w}", "0"),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 5), data=st.data())
def test_property_one_bad_field_is_named_with_its_line(n, data):
    """A random valid host file is accepted (also by the schema); breaking one
    field of one uplink is refused at exactly that line and key."""
    bad_i = data.draw(st.integers(0, n - 1))
    bad_key = data.draw(st.sampled_from(sorted(_FIELDS)))
    lines, where = ["version: 1", "uplinks:"], {}
    for i in range(n):
        lines.append(f"  - interface: eth{i}")
        for key in sorted(_FIELDS):
            if key in ("table", "weight") and not data.draw(st.booleans()) and (i, key) != (bad_i, bad_key):
                continue
            good, bad = _FIELDS[key]
            where[(i, key)] = len(lines) + 1
            fmt = dict(i=i, t=100 + i, w=data.draw(st.integers(1, 256)))
            lines.append(f"    {key}: " + (bad if (i, key) == (bad_i, bad_key) else good).format(**fmt))
    text = "\n".join(lines) + "\n"
    with pytest.raises(HostFileError) as ei:
        parse_host_text(text, "p.yaml", RtTables())
    assert (ei.value.line, ei.value.key) == (where[(bad_i, bad_key)], f"uplinks[{bad_i}].{bad_key}")
    good_text = text.replace(
        lines[where[(bad_i, bad_key)] - 1], f"    {bad_key}: " + _FIELDS[bad_key][0].format(i=bad_i, t=100 + bad_i, w=1)
    )
    cfg = parse_host_text(good_text, "p.yaml", RtTables())
    assert [u.interface for u in cfg.uplinks] == [f"eth{i}" for i in range(n)]
    validator = _validator()
    if validator is None:
        return
    assert not list(validator.iter_errors(yaml.safe_load(good_text)))
    assert list(validator.iter_errors(yaml.safe_load(text))), text


_VALIDATOR = []


def _validator():
    """The schema's validator (built once), or None without jsonschema."""
    if not _VALIDATOR:
        try:
            import jsonschema
        except ImportError:
            _VALIDATOR.append(None)
        else:
            schema = json.loads(resources.files("polroute.multihome").joinpath("schema.json").read_text())
            _VALIDATOR.append(jsonschema.Draft202012Validator(schema))
    return _VALIDATOR[0]


# ---------------------------------------------------------------------------
# batch: read back through the model
# ---------------------------------------------------------------------------


def test_batch_read_back_routes_every_source_through_its_uplink():
    cfg = parse_host_text(RICH_HOST, "rich.yaml", RtTables())
    p = _model(cfg)
    rules4 = [(r.priority, r.table, r.protocol) for r in p.rules(2) if r.priority not in (0, 32766, 32767)]
    assert all(proto == 201 for _, _, proto in rules4)
    for u in cfg.uplinks:
        for fam in (4, 6):
            for net in u.sources(fam):
                src = _probe(net)
                dst = "8.8.8.8" if fam == 4 else "2001:4860:4860::8888"
                r = route_get(p, [dst, "from", str(src)])
                assert (r.error, r.dev, r.table_id) == (0, u.interface, u.table), (src, r)
                gw = u.gateway if fam == 4 else u.gateway6
                assert ipaddress.ip_address(r.gateway) == gw
    # the tenant with a table of its own has no routes there: the lookup falls through to main,
    # whose multipath default spans both uplinks with their weights
    r = route_get(p, ["8.8.8.8", "from", "172.16.6.9", "iif", "lan0"])
    assert r.error == 0 and sorted((c.dev, c.weight) for c in r.candidates) == [("wan0", 3), ("wan1", 1)]
    r = route_get(p, ["8.8.8.8", "from", "172.16.5.9", "iif", "lan0"])
    assert (r.error, r.dev, r.table_id) == (0, "wan1", 77)
    # every local address of the host answers symmetrically (lan0 has no uplink: its own
    # address is the one finding)
    rep = audit_policy(p)
    assert rep.asymmetric_addresses() == ["172.16.0.1"]


def test_audit_finds_the_two_nic_problem_and_passes_after_the_recipe():
    base, _ = split_recipe(two_nic_batch())
    before = Policy()
    apply_batch(before, base, "two-nic.ip")
    rep = audit_policy(before)
    assert rep.asymmetric_addresses() == ["192.168.16.21"]
    assert {(f.dst, f.dev) for f in rep.findings} == {("8.8.8.8", "eth0"), ("192.168.16.2", "eth0")}
    assert all(f.trail for f in rep.findings)
    cfg = parse_host_text(TWO_NIC_HOST, "two-nic.yaml", RtTables())
    after = before.clone()
    apply_batch(after, batch_text(cfg), "recipe")
    rep = audit_policy(after)
    assert rep.ok and rep.addresses == 2 and rep.questions == 4


def test_audit_cli_exit_codes(tmp_path, capsys):
    base, _ = split_recipe(two_nic_batch())
    (tmp_path / "base.ip").write_text(base)
    cfg = parse_host_text(TWO_NIC_HOST, "two-nic.yaml", RtTables())
    (tmp_path / "recipe.ip").write_text(batch_text(cfg))
    assert cli.main(["audit", "--batch", str(tmp_path / "base.ip"), "--json"]) == 5
    out = json.loads(capsys.readouterr().out)
    assert out["asymmetric"] == ["192.168.16.21"] and not out["ok"]
    assert any("lookup main" in line or "merged" in line for f in out["findings"] for line in f["trail"])
    assert cli.main(["audit", "--batch", str(tmp_path / "base.ip"), "--batch", str(tmp_path / "recipe.ip")]) == 0
    assert "all replies symmetric" in capsys.readouterr().out
    (tmp_path / "bad.ip").write_text("route add nonsense\n")
    assert cli.main(["audit", "--batch", str(tmp_path / "bad.ip")]) == 1
    assert "bad.ip:1:" in capsys.readouterr().err
    assert cli.main(["audit"]) == 1


def test_audit_judges_each_reply_by_interface_and_gateway():
    """Two uplinks on different subnets, a hand-written recipe for eth1 only:
    eth0's reply to a peer on eth1's subnet leaves directly through eth1
    (main's link route) and is flagged; eth1's replies are fine.  Pointing
    eth1's rule at a table that does not exist flags eth1 too, with the rule
    that was passed over in the trail."""
    text = (
        "link add eth0 type veth peer name a0\nlink add eth1 type veth peer name a1\n"
        "link set a0 up\nlink set a1 up\nlink set eth0 up\nlink set eth1 up\n"
        "addr add 10.0.0.2/24 dev eth0\naddr add 10.0.1.2/24 dev eth1\n"
        "route add default via 10.0.0.1 dev eth0\n"
        "route add default via 10.0.1.1 dev eth1 table 11\n"
        "rule add from 10.0.1.2 lookup 11 priority 100\n"
    )
    p = Policy()
    apply_batch(p, text, "t.ip")
    rep = audit_policy(p)
    assert [(f.address, f.dst, f.dev, f.gateway) for f in rep.findings] == [("10.0.0.2", "10.0.1.3", "eth1", None)]
    p2 = Policy()
    apply_batch(p2, text.replace("table 11", "table 12"), "t.ip")
    rep = audit_policy(p2)
    assert rep.asymmetric_addresses() == ["10.0.0.2", "10.0.1.2"]
    trail = [f.trail for f in rep.findings if f.address == "10.0.1.2"][0]
    assert any("10.0.1.2 lookup 11" in line and "does not exist" in line for line in trail), trail


def test_big_host_model_audit():
    host, base, owner = big_host(600, 4)
    cfg = parse_host_text(host, "big.yaml", RtTables())
    p = Policy()
    apply_batch(p, base, "base")
    rep = audit_policy(p)
    bad = set(rep.asymmetric_addresses())
    assert bad == {a for a, dev in owner.items() if dev != "eth0"}
    apply_batch(p, batch_text(cfg), "recipe")
    rep = audit_policy(p)
    assert rep.ok and rep.addresses == 604


# ---------------------------------------------------------------------------
# the other targets, parsed back
# ---------------------------------------------------------------------------


def _sections(text: str) -> list[tuple[str, dict]]:
    """A systemd unit-file reader: repeated sections stay separate, repeated keys accumulate."""
    out: list[tuple[str, dict]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            out.append((line.strip("[]"), {}))
            continue
        k, _, v = line.partition("=")
        out[-1][1].setdefault(k.strip(), []).append(v.strip())
    return out


def _expected(cfg):
    """{interface: (set of (table, gateway), set of (subnet, src, table), set of (from, table, priority))}"""
    exp = {}
    for i, u in enumerate(cfg.uplinks):
        gws = {(u.table, str(u.gateway))} | ({(u.table, str(u.gateway6))} if u.gateway6 else set())
        links = {(str(u.address.network), str(u.address.ip), u.table)}
        if u.address6:
            links.add((str(u.address6.network), str(u.address6.ip), u.table))
        rules = {(str(n), u.table, u.priority) for f in (4, 6) for n in u.sources(f)}
        rules |= {
            (str(t.source), t.table, t.priority)
            for t in cfg.tenants
            if t.uplink == u.interface or (t.uplink is None and i == 0)
        }
        exp[u.interface] = (gws, links, rules)
    return exp


@pytest.mark.parametrize("host", [TWO_NIC_HOST, RICH_HOST])
def test_networkd_read_back(host, tmp_path):
    cfg = parse_host_text(host, "h.yaml", RtTables())
    for u in cfg.uplinks:
        (tmp_path / f"10-{u.interface}.network").write_text(f"[Match]\nName={u.interface}\n")
    files, _ = render(cfg, "networkd", network_dirs=[str(tmp_path)], systemd_version=252)
    conf = _sections(files["networkd.conf.d/50-polroute-multihome.conf"])
    assert conf == [("Network", {"ManageForeignRoutingPolicyRules": ["no"], "ManageForeignRoutes": ["no"]})]
    got = {}
    for u in cfg.uplinks:
        secs = _sections(files[f"network/10-{u.interface}.network.d/50-polroute-multihome.conf"])
        gws = {(int(d["Table"][0]), d["Gateway"][0]) for s, d in secs if s == "Route" and "Gateway" in d}
        links = {
            (d["Destination"][0], d["PreferredSource"][0], int(d["Table"][0]))
            for s, d in secs
            if s == "Route" and "PreferredSource" in d
        }
        rules = {(d["From"][0], int(d["Table"][0]), int(d["Priority"][0])) for s, d in secs if s == "RoutingPolicyRule"}
        got[u.interface] = (gws, links, rules)
        mp = [d for s, d in secs if s == "Route" and "MultiPathRoute" in d]
        if cfg.multipath_default and u is cfg.uplinks[0]:
            assert mp[0]["MultiPathRoute"] == [f"{x.gateway}@{x.interface} {x.weight}" for x in cfg.uplinks]
    assert got == _expected(cfg)


@pytest.mark.parametrize("host", [TWO_NIC_HOST, RICH_HOST])
def test_netplan_read_back(host):
    cfg = parse_host_text(host, "h.yaml", RtTables())
    files, warnings = render(cfg, "netplan")
    assert bool(warnings) == cfg.multipath_default
    doc = yaml.safe_load(files["90-polroute-multihome.yaml"])
    got = {}
    for ifname, eth in doc["network"]["ethernets"].items():
        gws = {(r["table"], r["via"]) for r in eth["routes"] if r["to"] == "default"}
        links = {(r["to"], r["from"], r["table"]) for r in eth["routes"] if r["to"] != "default"}
        rules = {(r["from"], r["table"], r["priority"]) for r in eth["routing-policy"]}
        got[ifname] = (gws, links, rules)
    assert got == _expected(cfg)


@pytest.mark.consumer
@pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan (Debian netplan.io) not installed")
@pytest.mark.parametrize("host", [TWO_NIC_HOST, RICH_HOST])
def test_netplan_generate_accepts_it_and_agrees_with_networkd_target(tmp_path, host):
    """netplan's own parser validates the file; the networkd files it renders
    carry the same routes and rules as our networkd target."""
    cfg = parse_host_text(host, "h.yaml", RtTables())
    files, _ = render(cfg, "netplan", netplan_dirs=[])
    d = tmp_path / "etc" / "netplan"
    d.mkdir(parents=True)
    (d / "90-polroute-multihome.yaml").write_text(files["90-polroute-multihome.yaml"])
    os.chmod(d / "90-polroute-multihome.yaml", 0o600)
    r = subprocess.run(["netplan", "generate", "--root-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ours, _ = render(cfg, "networkd", network_dirs=[], systemd_version=252)
    for u in cfg.uplinks:
        theirs = _sections((tmp_path / "run/systemd/network" / f"10-netplan-{u.interface}.network").read_text())
        mine = _sections(ours[f"network/05-polroute-{u.interface}.network"])

        def key(secs):
            out = set()
            for s, dd in secs:
                if s == "RoutingPolicyRule":
                    out.add((s, dd["From"][0], dd["Table"][0], dd["Priority"][0]))
                elif s == "Route" and "MultiPathRoute" not in dd:
                    dst = dd.get("Destination", ["default"])[0]
                    dst = "default" if dst in ("0.0.0.0/0", "::/0") else dst
                    out.add((s, dst, dd.get("Gateway", [""])[0], dd.get("PreferredSource", [""])[0], dd["Table"][0]))
            return out

        assert key(theirs) == key(mine)


@pytest.mark.parametrize("host", [TWO_NIC_HOST, RICH_HOST])
def test_nm_read_back(host):
    cfg = parse_host_text(host, "h.yaml", RtTables())
    files, _ = render(cfg, "nm", nm_version="1.42")
    got = {}
    for u in cfg.uplinks:
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(files[f"{u.interface}.nmconnection.ini"])
        gws, links, rules = set(), set(), set()
        for sec in ("ipv4", "ipv6"):
            if not cp.has_section(sec):
                continue
            s = cp[sec]
            for k in s:
                if k.startswith("route") and not k.endswith("_options") and not k.startswith("routing-rule"):
                    dst, _, gw = s[k].partition(",")
                    gw = gw.split(",")[0]  # (an ECMP leg also gives its metric)
                    opts = dict(o.split("=") for o in s[f"{k}_options"].split(","))
                    if opts["table"] == "254":  # multipath-default: ECMP legs in main (NM >= 1.42)
                        assert cfg.multipath_default and opts["weight"] == str(u.weight) and dst == "0.0.0.0/0"
                        continue
                    if gw:
                        assert dst in ("0.0.0.0/0", "::/0")
                        gws.add((int(opts["table"]), gw))
                    else:
                        links.add((dst, opts["src"], int(opts["table"])))
                elif k.startswith("routing-rule"):
                    w = s[k].split()
                    assert w[0::2] == ["priority", "from", "table"]
                    rules.add((w[3], int(w[5]), int(w[1])))
        got[u.interface] = (gws, links, rules)
    assert got == _expected(cfg)
    script = files["polroute-multihome-nmcli.sh"]
    # one modify per connection, every property set whole (never `+prop`: idempotent)
    assert script.count("nmcli connection modify") == len(cfg.uplinks)
    assert " +ipv" not in script


@pytest.mark.consumer
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_quotes_a_hostile_path(tmp_path):
    """A host file under a path with a space, a quote, `%` and `$`: systemd itself accepts the
    unit (unquoted, `%z` is an unknown specifier and the unit has a fatal error)."""
    d = tmp_path / 'dir with "space" %z $HOME'
    d.mkdir()
    host = d / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    text = render(cfg, "systemd-unit")[0]["polroute-multihome.service"]
    quoted = str(host).replace("%", "%%").replace("$", "$$").replace('"', '\\"')
    assert f'multihome apply "{quoted}"' in text
    unit = tmp_path / "polroute-multihome.service"
    unit.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and "specifier" not in r.stderr, r.stderr
    assert systemd_word("/usr/bin/python3") == "/usr/bin/python3"
    assert systemd_word("a b\\c") == '"a b\\\\c"'


def test_systemd_unit_read_back(tmp_path):
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    files, _ = render(cfg, "systemd-unit")
    secs = dict(_sections(files["polroute-multihome.service"]))
    assert secs["Unit"]["After"] == ["network-online.target"]
    assert secs["Unit"]["Wants"] == ["network-online.target"]
    assert secs["Service"]["Type"] == ["oneshot"]
    assert secs["Service"]["ExecStart"] == [f"{sys.executable} -m polroute multihome apply {host} --quiet"]
    assert secs["Install"]["WantedBy"] == ["multi-user.target"]
    if shutil.which("systemd-analyze"):
        path = tmp_path / "polroute-multihome.service"
        path.write_text(files["polroute-multihome.service"])
        r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_render_cli_out_dir(tmp_path, capsys):
    host = tmp_path / "host.yaml"
    host.write_text(RICH_HOST)
    for target in ("batch", "networkd", "netplan", "nm", "systemd-unit"):
        rc = cli.main(["multihome", "render", str(host), "--to", target, "--out", str(tmp_path / target)])
        assert rc == 0
        written = capsys.readouterr().out.split()
        assert written and all(os.path.exists(p) for p in written)
    # batch with IPv6: one file per ip(8) family
    assert sorted(os.listdir(tmp_path / "batch")) == ["host.ip", "host.ip6"]
    v6 = (tmp_path / "batch" / "host.ip6").read_text()
    assert "rule add from 2001:db8:ff::/48 lookup 300 priority 3000 proto 201" in v6
    assert "-6" not in v6


def test_render_refuses_to_write_through_a_symlink(tmp_path, capsys):
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    out = tmp_path / "unit"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (out / "polroute-multihome.service").symlink_to(victim)
    rc = cli.main(["multihome", "render", str(host), "--to", "systemd-unit", "--out", str(out)])
    assert rc == 1
    assert "is a symbolic link: not written through" in capsys.readouterr().err
    assert victim.read_text() == "keep me\n"


def test_demo_without_root_tells_the_offline_story(capsys, monkeypatch):
    from polroute.cli import demo

    monkeypatch.setattr(demo, "live_unavailable", lambda: "root")
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "asymmetric before the recipe: yes; fixed after: yes" in out
    assert "needs root; this was the offline model only" in out
    assert cli.main(["demo", "--live"]) == 1


def test_shipped_example_host_file_matches_the_two_nic_batch():
    """examples/two-nic.yaml renders exactly the recipe of examples/two-nic.ip
    (same tables and priorities), as the model sees it."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "examples", "two-nic.yaml")) as f:
        cfg = parse_host_text(f.read(), "two-nic.yaml", RtTables())
    base, recipe = split_recipe(two_nic_batch())
    ours, theirs = Policy(), Policy()
    apply_batch(ours, base + batch_text(cfg), "ours")
    apply_batch(theirs, base + recipe, "theirs")
    for q in (
        ["8.8.8.8", "from", "192.168.16.20"],
        ["8.8.8.8", "from", "192.168.16.21"],
        ["192.168.16.7", "from", "192.168.16.21"],
        ["8.8.8.8"],
    ):
        a, b = route_get(ours, q), route_get(theirs, q)
        assert (a.dev, a.gateway, a.table_id, a.prefsrc, a.rule_priority) == (
            b.dev,
            b.gateway,
            b.table_id,
            b.prefsrc,
            b.rule_priority,
        ), q


def test_shipped_base_example_is_the_two_nic_host_without_recipe():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "examples", "two-nic-base.ip")) as f:
        assert f.read().strip() == split_recipe(two_nic_batch())[0].strip()


def test_table_by_name_from_rt_tables():
    tables = RtTables().load_text("100 isp_a\n")
    text = TWO_NIC_HOST.replace(
        "    gateway: 192.168.16.1\n  - interface: eth1",
        "    gateway: 192.168.16.1\n    table: isp_a\n  - interface: eth1",
    )
    cfg = parse_host_text(text, "h.yaml", tables)
    assert [u.table for u in cfg.uplinks] == [100, 2]
    assert "lookup 100 priority 500" in batch_text(cfg)
    with pytest.raises(HostFileError) as ei:
        parse_host_text(text, "h.yaml", RtTables())
    assert (ei.value.line, ei.value.key) == (9, "uplinks[0].table")


def test_render_batch_one_family(tmp_path, capsys):
    host = tmp_path / "rich.yaml"
    host.write_text(RICH_HOST)
    assert cli.main(["multihome", "render", str(host), "--to", "batch", "--family", "6"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert lines and all("2001:db8" in line or "nexthop" in line for line in lines), lines
    assert not any(line.startswith("-6") for line in lines)


def test_audit_reports_where_the_kernel_answers_differently():
    """The kernel cross-check (audit --kernel) with a stand-in kernel: an
    answer that differs from the model's is a finding of its own."""
    base, _ = split_recipe(two_nic_batch())
    cfg = parse_host_text(TWO_NIC_HOST, "two-nic.yaml", RtTables())
    p = Policy()
    apply_batch(p, base + batch_text(cfg), "two-nic")
    asked = []

    def kernel(questions):
        asked.extend(questions)
        out = []
        for q in questions:
            r = route_get(p, q)
            ans = {"dst": q[0], "dev": r.dev, "gateway": r.gateway}
            if q == ["8.8.8.8", "from", "192.168.16.21"]:
                ans = {"dst": q[0], "dev": "eth0", "gateway": "192.168.16.1"}
            if q == ["192.168.16.2", "from", "192.168.16.20"]:
                ans = {"error": "RTNETLINK answers: Network is unreachable"}
            out.append(ans if ans.get("gateway") else {k: v for k, v in ans.items() if k != "gateway"})
        return out

    rep = audit_policy(p, kernel=kernel)
    assert rep.kernel_checked == rep.questions == len(asked) == 4
    assert sorted((f.address, f.dst, f.kind) for f in rep.findings) == [
        ("192.168.16.20", "192.168.16.2", "model-differs"),
        ("192.168.16.21", "8.8.8.8", "model-differs"),
    ]
    assert (
        "kernel dev eth0 via 192.168.16.1, model dev eth1 via 192.168.16.1"
        in [f.problem for f in rep.findings if f.dst == "8.8.8.8"][0]
    )


@pytest.mark.parametrize("seed", range(6))
def test_audit_bulk_first_pass_changes_nothing(seed):
    """The bulk IPv4 first pass only skips answers the per-question judge
    would pass: with and without it the findings are the same, on a host
    whose recipe lost random lines (and got a multipath default in main)."""
    import random

    rnd = random.Random(seed)
    host, base, _ = big_host(120, 3)
    cfg = parse_host_text(host, "big.yaml", RtTables())
    lines = batch_text(cfg).splitlines()
    kept = [line for line in lines if rnd.random() > 0.15]
    if seed % 2:
        kept.append("route replace default proto 245 nexthop via 10.0.0.1 dev eth0 nexthop via 10.1.0.1 dev eth1")
    p = Policy()
    apply_batch(p, base + "\n".join(kept) + "\n", "partial")
    fast, slow = audit_policy(p), audit_policy(p, bulk=False)
    key = lambda rep: [(f.address, f.dst, f.problem, f.kind, f.trail) for f in rep.findings]  # noqa: E731
    assert key(fast) == key(slow) and fast.questions == slow.questions
    assert fast.findings  # 15% of the recipe lost: some replies go astray


def test_apply_hands_the_batch_to_the_engine(tmp_path, capsys, monkeypatch):
    """multihome apply passes the rendered text and the options to
    polroute.live.apply.apply_text and prints its report (a stand-in engine)."""
    from polroute.cli import multihome as mcli

    seen = {}

    class Report:
        ok = True

        def text(self):
            return "applied to namespace x: 6 operations"

    def engine(text, **kw):
        seen.update(kw, text=text)
        return Report()

    monkeypatch.setattr(mcli, "apply_engine", lambda: engine)
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    assert cli.main(["multihome", "apply", str(host), "--netns", "x", "--prune", "--dry-run"]) == 0
    assert capsys.readouterr().out == "applied to namespace x: 6 operations\n"
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    assert callable(seen.pop("progress"))
    assert seen == {
        "text": batch_text(cfg),
        "filename": f"{host} (rendered batch)",  # its places are told as the host file's lines
        "netns": "x",
        "owner": 245,
        "prune": True,
        "dry_run": True,
    }

    def refusing(text, **kw):
        raise ValueError("host.yaml:3: nope")

    monkeypatch.setattr(mcli, "apply_engine", lambda: refusing)
    assert cli.main(["multihome", "apply", str(host)]) == 1
    assert "host.yaml:3: nope" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# audit: IPv6 link-local gateways, traffic routed through the host (issue 14, item 5)
# ---------------------------------------------------------------------------

LL_HOST = """\
uplinks:
  - interface: eth0
    address: 10.0.0.2/24
    gateway: 10.0.0.1
    address6: 2001:db8:1::2/64
    gateway6: fe80::1
  - interface: eth1
    address: 10.0.1.2/24
    gateway: 10.0.1.1
    address6: 2001:db8:2::2/64
    gateway6: fe80::1
tenants:
  - from: 172.16.5.0/24
    uplink: eth1
  - from: 2001:db8:5::/64
    uplink: eth1
"""

LL_BASE = """\
link add eth0 type veth peer name a0
link add eth1 type veth peer name a1
link add lan0 type veth peer name a2
link set a0 up
link set a1 up
link set a2 up
link set eth0 up
link set eth1 up
link set lan0 up
addr add 10.0.0.2/24 dev eth0
addr add 10.0.1.2/24 dev eth1
addr add 172.16.0.1/16 dev lan0
addr add 2001:db8:1::2/64 dev eth0 nodad
addr add 2001:db8:2::2/64 dev eth1 nodad
addr add 2001:db8:5::1/64 dev lan0 nodad
route add default via 10.0.0.1 dev eth0
route add 10.9.0.0/16 via 172.16.0.9 dev lan0
-6 route add default via fe80::1 dev eth0
"""


def _ll_policy(recipe: str, forwarding: int = 1, rp_filter: int = 0) -> Policy:
    p = Policy()
    for key in ("net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding"):
        p.sysctl(key, forwarding)
    p.sysctl("net.ipv4.conf.all.rp_filter", rp_filter)
    apply_batch(p, LL_BASE + recipe, "ll.ip")
    return p


def test_audit_accepts_an_ipv6_link_local_gateway():
    """fe80::1 through the uplink is the usual IPv6 router: not asymmetric
    (it was: "gateway fe80::1 is not on eth0's subnets")."""
    cfg = parse_host_text(LL_HOST, "ll.yaml", RtTables())
    rep = audit_policy(_ll_policy(batch_text(cfg)))
    assert [f for f in rep.findings if f.interface != "lan0"] == []  # (lan0's own address has no uplink)
    # a link-local gateway through another interface is still flagged
    bad = batch_text(cfg).replace("default via fe80::1 dev eth1 table", "default via fe80::1 dev eth0 table")
    rep = audit_policy(_ll_policy(bad))
    assert "2001:db8:2::2" in rep.asymmetric_addresses()


def test_audit_checks_traffic_routed_through_the_host():
    """lan0's subnets and the 10.9.0.0/16 behind it are asked the forwarding
    question from lan0 (input path); the host file's tenants must leave
    through their own uplink; a LAN that does not forward is skipped."""
    from polroute.audit import Routed, routed_prefixes

    cfg = parse_host_text(LL_HOST, "ll.yaml", RtTables())
    recipe = batch_text(cfg)
    p = _ll_policy(recipe)
    found = {(str(r.prefix), r.iif) for r in routed_prefixes(p)}
    assert found == {("172.16.0.0/16", "lan0"), ("2001:db8:5::/64", "lan0"), ("10.9.0.0/16", "lan0")}
    tenants = [Routed(t.source, None, t.uplink, t.key) for t in cfg.tenants]
    rep = audit_policy(p, routed=tenants)
    assert [f for f in rep.findings if f.kind == "forwarded"] == [] and rep.routed == 4, format_report(rep)
    # the tenant's rule lost: its traffic leaves through eth0 (main), not its uplink eth1
    lost = "\n".join(x for x in recipe.splitlines() if "172.16.5.0/24" not in x) + "\n"
    rep = audit_policy(_ll_policy(lost), routed=tenants)
    assert [(f.address, f.interface, f.kind, f.dev) for f in rep.findings if f.kind == "forwarded"] == [
        ("172.16.5.0/24", "lan0", "forwarded", "eth0")
    ]
    assert "(its uplink)" in rep.findings[0].problem and rep.findings[0].trail
    assert "1 of 4 prefixes routed through" in format_report(rep)
    # strict reverse-path filtering on lan0 with the prefix's route elsewhere: not forwarded
    p = _ll_policy(recipe, rp_filter=1)
    p.sysctl("net.ipv4.conf.lan0.rp_filter", 1)
    rep = audit_policy(p, routed=[Routed(ipaddress.ip_network("10.0.1.128/25"), "lan0", None, "test")])
    f = [f for f in rep.findings if f.address == "10.0.1.128/25"]
    assert f and f[0].problem.startswith("forwarded from 10.0.1.129: not forwarded"), format_report(rep)
    # forwarding off: the host routes nothing; nothing is asked
    rep = audit_policy(_ll_policy(recipe, forwarding=0), routed=tenants)
    assert rep.routed == 0 and not [f for f in rep.findings if f.kind == "forwarded"]
    assert any("does not forward" in s for s in rep.skipped)


def test_audit_cli_host_option(tmp_path, capsys):
    cfg = parse_host_text(LL_HOST, "ll.yaml", RtTables())
    (tmp_path / "ll.yaml").write_text(LL_HOST)
    lost = "\n".join(x for x in batch_text(cfg).splitlines() if "172.16.5.0/24" not in x) + "\n"
    (tmp_path / "b.ip").write_text(LL_BASE + lost)
    # forwarding is the model's default (off): the tenants are skipped
    assert cli.main(["audit", "--batch", str(tmp_path / "b.ip"), "--host", str(tmp_path / "ll.yaml"), "--json"]) == 5
    out = json.loads(capsys.readouterr().out)
    assert out["routed"] == 0 and any("does not forward" in s for s in out["skipped"])
    assert cli.main(["audit", "--batch", str(tmp_path / "b.ip"), "--host", str(tmp_path / "nope.yaml")]) == 1
