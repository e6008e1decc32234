"""The command line, run in-process through polroute.cli.app.main."""

import json

import pytest

from polroute.cli import app as cli
from polroute.cli.demo import two_nic_batch


@pytest.fixture
def two_nic(tmp_path):
    path = tmp_path / "two-nic.ip"
    path.write_text(two_nic_batch())
    return str(path)


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_get_text(capsys, two_nic):
    rc, out, err = run(capsys, "get", "--batch", two_nic, "8.8.8.8", "from", "192.168.16.21")
    assert rc == 0
    assert out == "8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth1 table 2 uid 0 \n    cache \n"


def test_get_json_and_options_after_args(capsys, two_nic):
    rc, out, _ = run(capsys, "get", "8.8.8.8", "--json", "--batch", two_nic)
    assert rc == 0
    assert json.loads(out) == [
        {
            "dst": "8.8.8.8",
            "gateway": "192.168.16.1",
            "dev": "eth0",
            "prefsrc": "192.168.16.20",
            "flags": [],
            "uid": 0,
            "cache": [],
        }
    ]


def test_get_error_exit_2(capsys, two_nic):
    rc, out, err = run(capsys, "get", "--batch", two_nic, "8.8.8.8", "from", "10.9.9.9")
    assert rc == 2
    assert err == "RTNETLINK answers: Network is unreachable\n"
    rc, out, err = run(capsys, "get", "--json", "--batch", two_nic, "8.8.8.8", "from", "10.9.9.9")
    assert rc == 2
    assert json.loads(out) == {"error": "Network is unreachable", "errno": "ENETUNREACH"}


def test_get_explain_lists_the_rules(capsys, two_nic):
    rc, out, _ = run(capsys, "get", "--explain", "--batch", two_nic, "8.8.8.8", "from", "192.168.16.21")
    assert rc == 0
    lines = out.splitlines()
    assert lines[2].split()[:5] == ["0:", "from", "all", "lookup", "local"]
    assert "no route in the table" in lines[2]
    assert "do not match" in lines[3] and lines[3].split()[0] == "500:"
    assert "decided" in lines[4] and lines[4].split()[0] == "501:"


def test_get_sysctl(capsys, two_nic):
    rc, out, err = run(capsys, "get", "--batch", two_nic, "8.8.8.8", "iif", "sw0", "from", "192.168.16.9")
    assert rc == 2 and "No route to host" in err
    rc, out, err = run(
        capsys,
        "get",
        "--batch",
        two_nic,
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "8.8.8.8",
        "iif",
        "sw0",
        "from",
        "192.168.16.9",
    )
    assert rc == 0 and out.startswith("8.8.8.8 from 192.168.16.9 via 192.168.16.1 dev eth0")


def test_bad_batch_names_file_line_token(capsys, tmp_path):
    bad = tmp_path / "bad.ip"
    bad.write_text("link set lo up\nroute add 10.0.0.0/33 dev lo\n")
    rc, out, err = run(capsys, "get", "--batch", str(bad), "8.8.8.8")
    assert rc == 1
    assert err.startswith(f"polroute: {bad}:2: ") and "10.0.0.0/33" in err
    assert out == ""


def test_bad_sysctl(capsys, two_nic):
    rc, _, err = run(capsys, "get", "--batch", two_nic, "--sysctl", "net.ipv4.bogus=1", "8.8.8.8")
    assert rc == 1 and "net.ipv4.bogus" in err


def test_eval_one_answer_per_line(capsys, two_nic, tmp_path):
    flows = tmp_path / "flows.txt"
    flows.write_text("8.8.8.8 from 192.168.16.21\n# comment\n8.8.8.8 from 10.9.9.9\n192.168.16.20\n")
    rc, out, _ = run(capsys, "eval", "--batch", two_nic, "--flows", str(flows))
    assert rc == 0
    assert out.splitlines() == [
        "8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth1 table 2 uid 0 cache",
        "# comment",
        "RTNETLINK answers: Network is unreachable",
        "local 192.168.16.20 dev lo table local src 192.168.16.20 uid 0 cache <local>",
    ]
    rc, out, _ = run(capsys, "eval", "--json", "--batch", two_nic, "--flows", str(flows))
    answers = [json.loads(line) for line in out.splitlines()]
    answers = [a[0] if isinstance(a, list) else a for a in answers]
    assert [a and a.get("dev", a.get("errno")) for a in answers] == ["eth1", None, "ENETUNREACH", "lo"]


def test_eval_bad_flow_line(capsys, two_nic, tmp_path):
    flows = tmp_path / "flows.txt"
    flows.write_text("8.8.8.8\n8.8.8.8 iif nosuch0\n")
    rc, out, err = run(capsys, "eval", "--batch", two_nic, "--flows", str(flows))
    assert rc == 1 and out == ""
    assert f"{flows}:2:" in err and "nosuch0" in err


def test_show_rules_and_routes(capsys, two_nic):
    rc, out, _ = run(capsys, "show", "rules", "--batch", two_nic)
    assert rc == 0
    assert out.splitlines() == [
        "0:\tfrom all lookup local",
        "500:\tfrom 192.168.16.20 lookup 1",
        "501:\tfrom 192.168.16.21 lookup 2",
        "32766:\tfrom all lookup main",
        "32767:\tfrom all lookup default",
    ]
    rc, out, _ = run(capsys, "show", "routes", "table", "2", "--batch", two_nic)
    assert out.splitlines() == [
        "default via 192.168.16.1 dev eth1 ",
        "192.168.16.0/24 dev eth1 scope link src 192.168.16.21 ",
    ]


def test_demo_tells_the_story(capsys):
    rc, out, _ = run(capsys, "demo")
    assert rc == 0
    assert "asymmetric before the recipe: yes; fixed after: yes" in out
    assert "8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth0 uid 0" in out
    assert "8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth1 table 2 uid 0" in out


def test_unknown_command(capsys):
    rc, _, err = run(capsys, "frobnicate")
    assert rc == 1 and "frobnicate" in err


def test_eval_maps_lines_one_to_one_and_echoes(capsys, two_nic, monkeypatch):
    import io

    flows = "# header\n\n8.8.8.8 from 192.168.16.21\n1.1.1.1 \\\n  from 192.168.16.20\n8.8.8.8 from 10.9.9.9\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(flows.encode())))
    rc, out, _ = run(capsys, "eval", "--batch", two_nic, "--flows", "-", "--echo")
    assert rc == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == len(flows.split("\n")) - 1  # one output line per input line
    assert lines[:2] == ["# header", ""]
    assert lines[2].startswith("8.8.8.8 from 192.168.16.21\t8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth1")
    assert lines[3].startswith("1.1.1.1 from 192.168.16.20\t1.1.1.1 from 192.168.16.20 via") and lines[4] == ""
    assert lines[5] == "8.8.8.8 from 10.9.9.9\tRTNETLINK answers: Network is unreachable"
