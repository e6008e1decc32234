"""Every command's --json output is valid JSON of the shape its schema in
docs/schemas/ describes (jsonschema), errors included."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from polroute.cli import app as cli
from polroute.cli.demo import two_nic_batch

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
MANY = str(Path(__file__).parent / "data" / "many-features.ip")


def schema(name: str) -> jsonschema.protocols.Validator:
    data = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(data)
    cls.check_schema(data)
    return cls(data)


@pytest.fixture
def two_nic(tmp_path):
    path = tmp_path / "two-nic.ip"
    path.write_text(two_nic_batch())
    return str(path)


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_schema_is_a_valid_schema():
    names = sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert names == [
        "apply.json",
        "audit.json",
        "confirm.json",
        "error.json",
        "eval-line.json",
        "get.json",
        "kernel.json",
        "multihome-check.json",
        "multihome-discover.json",
        "plan.json",
        "recover.json",
        "show-nexthops.json",
        "show-routes.json",
        "show-rules.json",
    ]
    for name in names:
        schema(name)


@pytest.mark.parametrize(
    "args, code",
    [
        (["8.8.8.8"], 0),
        (["8.8.8.8", "from", "192.168.16.21"], 0),
        (["8.8.8.8", "from", "192.168.16.21", "--explain"], 0),
        (["8.8.8.8", "from", "10.9.9.9"], 2),
        (["8.8.8.8", "from", "10.9.9.9", "--explain"], 2),
        (["192.168.16.20"], 0),
        (["255.255.255.255"], 0),
        (["2001:db8::1"], 2),
        (["8.8.8.8", "oif", "eth1"], 0),
        (["8.8.8.8", "iif", "eth0", "from", "1.2.3.4"], 2),  # forwarding is off
    ],
)
def test_get_json(capsys, two_nic, args, code):
    rc, out, err = run(capsys, "get", "--json", "--batch", two_nic, *args)
    assert rc == code, err
    data = json.loads(out)
    schema("get.json").validate(data)
    if "--explain" in args:
        assert "explain" in (data[0] if isinstance(data, list) else data)


def test_get_json_multipath_and_types(capsys):
    for dst in ("10.9.1.1", "10.0.0.2", "10.0.0.255", "2001:db8::7", "10.8.0.1"):
        rc, out, err = run(capsys, "get", "--json", "--batch", MANY, dst)
        schema("get.json").validate(json.loads(out))


def test_eval_json_lines(capsys, two_nic, tmp_path):
    flows = tmp_path / "flows"
    flows.write_text("8.8.8.8 from 192.168.16.21\n# c\n\n8.8.8.8 from 10.9.9.9\n1.1.1.1 \\\n  from 192.168.16.20\n")
    for extra in ([], ["--echo"]):
        rc, out, _ = run(capsys, "eval", "--json", "--batch", two_nic, "--flows", str(flows), *extra)
        assert rc == 0
        lines = out.splitlines()
        assert len(lines) == 6
        for line in lines:
            schema("eval-line.json").validate(json.loads(line))
        assert [json.loads(x) is None for x in lines] == [False, True, True, False, False, True]


@pytest.mark.parametrize(
    "what",
    [
        ["rules"],
        ["rules", "-6"],
        ["routes"],
        ["routes", "-6"],
        ["routes", "table", "all"],
        ["routes", "table", "all", "-6"],
        ["routes", "table", "local"],
        ["routes", "table", "5"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("batch", ["two-nic", "many"])
def test_show_json(capsys, two_nic, what, batch):
    rc, out, err = run(capsys, "show", *what, "--json", "--batch", two_nic if batch == "two-nic" else MANY)
    assert rc == 0, err
    data = json.loads(out)
    schema("show-rules.json" if what[0] == "rules" else "show-routes.json").validate(data)
    # as many objects as the text has entries
    rc, text, _ = run(capsys, "show", *what, "--batch", two_nic if batch == "two-nic" else MANY)
    assert len(data) == sum(1 for line in text.splitlines() if not line.startswith("\t"))


NEXTHOPS = (
    "link set lo up\nlink add v0 type veth peer name v0p\nlink set v0 up\nlink set v0p up\n"
    "addr add 10.7.0.1/24 dev v0\naddr add 2001:db8:7::1/64 dev v0 nodad\n"
    "nexthop add id 1 via 10.7.0.9 dev v0\nnexthop add id 2 dev v0\nnexthop add id 3 blackhole\n"
    "nexthop add id 4 via 2001:db8:7::9 dev v0\nnexthop add id 5 group 1/2,3\n"
    "nexthop add id 6 via 10.7.0.8 dev v0 proto static onlink\nroute add 10.20.0.0/16 nhid 5\n"
)


@pytest.mark.parametrize("family", [[], ["-4"], ["-6"]], ids=lambda f: " ".join(f) or "all")
def test_show_nexthops_json(capsys, tmp_path, family):
    batch = tmp_path / "nh.ip"
    batch.write_text(NEXTHOPS)
    rc, out, err = run(capsys, "show", "nexthops", *family, "--json", "--batch", str(batch))
    assert rc == 0, err
    data = json.loads(out)
    schema("show-nexthops.json").validate(data)
    ids = {"": [1, 2, 3, 4, 5, 6], "-4": [1, 2, 3, 6], "-6": [4]}["".join(family)]
    assert [o["id"] for o in data] == ids
    rc, text, _ = run(capsys, "show", "nexthops", *family, "--batch", str(batch))
    assert rc == 0 and [int(line.split()[1]) for line in text.splitlines()] == ids
    if not family:
        by_id = {o["id"]: o for o in data}
        assert by_id[5] == {"id": 5, "group": [{"id": 1}, {"id": 2, "weight": 3}], "flags": []}
        assert by_id[3] == {"id": 3, "blackhole": None, "flags": []}
        assert by_id[6]["flags"] == ["onlink"] and by_id[6]["protocol"] == "static"
        assert text.splitlines()[4] == "id 5 group 1/2,3 "


def test_show_nexthops_netns_is_an_error(capsys):
    """The live reader has no nexthop dump: an explicit error, not an empty list."""
    rc, out, err = run(capsys, "show", "nexthops", "--json", "--netns", "prt-no-such-ns")
    assert rc == 1
    data = json.loads(out)
    schema("error.json").validate(data)
    assert "--netns cannot show nexthop objects" in data["error"]
    rc, out, err = run(capsys, "show", "nh", "--netns", "prt-no-such-ns")
    assert rc == 1 and out == "" and "nexthop dump" in err


def test_multihome_check_json(capsys):
    host = str(ROOT / "examples" / "two-nic.yaml")
    rc, out, err = run(capsys, "multihome", "check", host, "--json")
    assert rc == 0, err
    data = json.loads(out)
    schema("multihome-check.json").validate(data)
    assert data == {"file": host, "uplinks": ["eth0", "eth1"], "tenants": 0, "rules": 2, "owner": data["owner"]}
    rc, text, _ = run(capsys, "multihome", "check", host)
    assert text == f"{host}: ok: 2 uplinks, 2 rules, owner protocol {data['owner']}\n"
    rc, out, err = run(capsys, "multihome", "check", "/nonexistent.yaml", "--json")
    assert rc == 1
    schema("error.json").validate(json.loads(out))


DISCOVERED = """# polroute multihome host file, discovered from namespace x.
# Check the gateways and tables, then: polroute multihome render FILE --to batch
version: 1
owner-protocol: 245
priority-base: 1000
table-base: 1000
uplinks:
  - interface: eth0
    address: 192.168.16.20/24
    gateway: 192.168.16.1
    table: 1000    # reused: holds this uplink's owned default route
    address6: 2001:db8:1:2:3:4:5:6/64
    gateway6: 2001:db8:1:2::1
    serves:
      - 10.0.0.0/24
  - interface: eth1
    address: 192.168.16.21/24
    gateway: 192.168.16.1  # inferred: eth0's default gateway is on this subnet
# eth2: IPv6 only (2001:db8:9::1/64); an uplink needs an IPv4 address
"""


def test_multihome_discover_json_is_a_host_file(tmp_path):
    """discover --json's `host` is the YAML's data (integers as integers,
    addresses as text, even an IPv6 one YAML 1.1 would read as a number):
    written as JSON, it is a host file check takes the same."""
    from polroute.cli.multihome import discovered_json
    from polroute.multihome.hostfile import parse_host_text

    data = discovered_json(DISCOVERED)
    schema("multihome-discover.json").validate(data)
    assert data["host"]["uplinks"][0]["address6"] == "2001:db8:1:2:3:4:5:6/64"
    assert data["host"]["uplinks"][0]["table"] == 1000
    assert data["notes"][2:] == [
        "reused: holds this uplink's owned default route",
        "inferred: eth0's default gateway is on this subnet",
        "eth2: IPv6 only (2001:db8:9::1/64); an uplink needs an IPv4 address",
    ]
    a, b = parse_host_text(DISCOVERED, "x.yaml"), parse_host_text(json.dumps(data["host"]), "x.json")
    assert [(u.interface, u.address, u.gateway, u.table, u.address6, u.sources(4)) for u in a.uplinks] == [
        (u.interface, u.address, u.gateway, u.table, u.address6, u.sources(4)) for u in b.uplinks
    ]
    empty = discovered_json("version: 1\nowner-protocol: 245\nuplinks:\n  []   # none found\n")
    schema("multihome-discover.json").validate(empty)
    assert empty == {"host": {"version": 1, "owner-protocol": 245, "uplinks": []}, "notes": ["none found"]}


def test_show_json_keys_are_ips(capsys):
    rc, out, _ = run(capsys, "show", "rules", "--json", "--batch", MANY)
    rules = {r["priority"]: r for r in json.loads(out)}
    assert rules[0] == {"priority": 0, "src": "all", "table": "local"}
    assert rules[100] == {
        "priority": 100,
        "not": None,
        "src": "10.0.0.0",
        "srclen": 8,
        "fwmark": "0x5",
        "fwmask": "0xff",
        "table": "5",
    }
    assert rules[200]["action"] == "goto" and rules[200]["target"] == 32766
    rc, out, _ = run(capsys, "show", "routes", "--json", "--batch", MANY)
    routes = {r["dst"]: r for r in json.loads(out)}
    assert routes["10.9.0.0/16"]["nexthops"][0] == {"gateway": "10.0.0.1", "dev": "eth0", "weight": 2, "flags": []}
    assert routes["10.0.0.0/24"] == {
        "dst": "10.0.0.0/24",
        "dev": "eth0",
        "protocol": "kernel",
        "scope": "link",
        "prefsrc": "10.0.0.2",
        "flags": [],
    }


def test_kernel_json(capsys):
    rc, out, _ = run(capsys, "kernel", "--json")
    assert rc == 0
    schema("kernel.json").validate(json.loads(out))


def test_audit_json(capsys, two_nic, tmp_path):
    rc, out, _ = run(capsys, "audit", "--json", "--batch", two_nic)
    assert rc in (0, 5)
    schema("audit.json").validate(json.loads(out))
    from polroute.cli.demo import split_recipe

    base, _ = split_recipe(two_nic_batch())
    (tmp_path / "base.ip").write_text(base)
    rc, out, _ = run(capsys, "audit", "--json", "--batch", str(tmp_path / "base.ip"))
    assert rc == 5
    data = json.loads(out)
    schema("audit.json").validate(data)
    assert data["findings"]


@pytest.mark.parametrize(
    "argv, code",
    [
        (["get", "--json", "--batch", "/nonexistent/x.ip", "8.8.8.8"], 1),
        (["get", "--json", "8.8.8.8", "bogus"], 1),
        (["get", "--json"], 1),
        (["get", "--json", "8.8.8.8", "iif", "nosuch0"], 1),
        (["eval", "--json"], 1),
        (["eval", "--json", "--flows", "/nonexistent"], 1),
        (["show", "routes", "table", "nosuch", "--json"], 1),
        (["show", "--json"], 1),
        (["audit", "--json"], 1),
        (["audit", "--json", "--batch", "/nonexistent"], 1),
        (["plan", "--json", "--batch", "/nonexistent", "--netns", "prt-no-such-ns"], 1),
        (["apply", "--json", "--batch", "/nonexistent", "--netns", "prt-no-such-ns"], 1),
        (["get", "--json", "--rt-tables", "/nonexistent", "8.8.8.8"], 1),
        (["show", "rules", "--json", "--netns", "prt-no-such-ns"], 1),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_errors_are_json_objects(capsys, argv, code):
    rc, out, err = run(capsys, *argv)
    assert rc == code, err
    data = json.loads(out)
    if "error" in data and "errno" in data:  # an error answer: get's own object
        schema("get.json").validate(data)
    else:
        schema("error.json").validate(data)
        assert data["exit"] == code and data["error"] in err
