"""Progress and messages (provisioning item 9), without a kernel: progress
only on a terminal, one line per failure (out of memory, descriptors, broken
pipe, files that are not UTF-8), multihome messages in the host file's terms,
snapshot -6 without the links of -4."""

from __future__ import annotations

import errno
import os
import pty
import select
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from multihome_fixtures import TWO_NIC_HOST  # noqa: E402
from polroute.cli import app as cli  # noqa: E402
from polroute.cli import common  # noqa: E402
from polroute.cli.progress import Progress, wanted  # noqa: E402

POLROUTE = [sys.executable, "-m", "polroute"]
BATCH = "link set lo up\nroute add 10.0.0.0/8 dev lo\n"


def _big(n: int) -> str:
    return "link set lo up\n" + "".join(f"route add 10.{i // 256}.{i % 256}.0/24 dev lo\n" for i in range(n))


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def batch(tmp_path):
    path = tmp_path / "b.ip"
    path.write_text(BATCH)
    return str(path)


# ---- 1. progress ---------------------------------------------------------------


class _Tty:
    def __init__(self):
        self.data = []

    def isatty(self):
        return True

    def write(self, s):
        self.data.append(s)

    def flush(self):
        pass


def test_progress_only_on_a_terminal_and_not_with_quiet():
    tty = _Tty()
    assert wanted(False, tty) and not wanted(True, tty)
    with open(os.devnull, "w") as f:
        assert not wanted(False, f)  # not a terminal: nothing


def test_progress_appears_after_the_delay_and_counts_from_the_start():
    tty = _Tty()
    p = Progress("apply", True, delay=0.0, stream=tty)
    p.phase("phase 1/4: route adds/replaces (5 operation(s))", 5)
    p.advance(5)
    deadline = time.monotonic() + 3
    while not p.shown and time.monotonic() < deadline:
        time.sleep(0.01)
    p.close()
    assert p.shown
    slow = Progress("plan", True, delay=30.0, stream=_Tty())
    slow.phase("reading")
    slow.close()  # ended before the delay: never shown
    assert not slow.shown
    off = Progress("plan", False, delay=0.0, stream=_Tty())
    time.sleep(0.05)
    off.close()
    assert not off.shown


def _in_pty(argv: list[str], env: dict, timeout: float = 30) -> tuple[int, str]:
    """Run argv with stderr (and stdout) on a pseudo-terminal; all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    rc = proc.wait(timeout)
    os.close(master)
    return rc, out.decode("utf-8", "replace")


def test_progress_on_a_terminal_with_big_batch_and_silent_with_quiet(tmp_path):
    big = tmp_path / "big.ip"
    big.write_text(_big(30000))
    env = dict(os.environ, POLROUTE_PROGRESS_DELAY="0", COLUMNS="100")
    rc, text = _in_pty(POLROUTE + ["get", "10.1.2.3", "--batch", str(big)], env)
    assert rc == 0, text
    assert f"get: reading {big}" in text, text
    rc, text = _in_pty(POLROUTE + ["get", "10.1.2.3", "--batch", str(big), "--quiet"], env)
    assert rc == 0 and "reading" not in text, text
    # stderr not a terminal: nothing either
    res = subprocess.run(POLROUTE + ["get", "10.1.2.3", "--batch", str(big)], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and res.stderr == "", res.stderr


@pytest.mark.parametrize(
    "words",
    [["apply"], ["plan"], ["snapshot"], ["audit"], ["multihome", "apply"], ["get"], ["eval"], ["show"]],
    ids=" ".join,
)
def test_long_running_commands_take_quiet(capsys, words):
    rc, out, _ = run(capsys, *words, "--help")
    assert rc == 0 and "--quiet" in out


# ---- 4. one message per failure --------------------------------------------------


@pytest.mark.parametrize(
    "exc, said",
    [
        (MemoryError(), "out of memory"),
        (OSError(errno.EMFILE, "Too many open files"), "too many open files"),
        (OSError(errno.ENFILE, "Too many open files in system"), "too many open files"),
    ],
)
def test_out_of_memory_or_descriptors_is_one_line(capsys, monkeypatch, batch, exc, said):
    def boom(*a, **kw):
        raise exc

    monkeypatch.setattr(common, "build_policy", boom)
    rc, out, err = run(capsys, "get", "10.1.2.3", "--batch", batch)
    assert (rc, out, err) == (1, "", f"polroute: get: {said}\n")
    # before the command runs (its module failing to import) too
    monkeypatch.setattr(cli, "command", boom)
    rc, out, err = run(capsys, "show", "routes")
    assert (rc, out, err) == (1, "", f"polroute: show: {said}\n")


def test_interrupt_is_one_line(capsys, monkeypatch, batch):
    def boom(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "build_policy", boom)
    assert run(capsys, "get", "10.1.2.3", "--batch", batch) == (130, "", "polroute: get: interrupted\n")


def _ulimited(limit: str, argv: list[str]) -> subprocess.CompletedProcess:
    cmd = " ".join(f"'{w}'" for w in POLROUTE + argv)
    return subprocess.run(["bash", "-c", f"ulimit {limit}; exec {cmd}"], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer reserves its shadow memory up front: no `ulimit -v` leaves it room "
    "(the run without sanitizers covers this)",
)
def test_ulimit_memory_gives_one_line(tmp_path):
    big = tmp_path / "big.ip"
    big.write_text(_big(60000))
    seen = set()
    for kib in (30_000, 50_000, 60_000, 70_000, 75_000, 80_000, 90_000, 4_000_000):
        res = _ulimited(f"-v {kib}", ["show", "routes", "--batch", str(big)])
        if "Fatal Python error" in res.stderr:  # too little to start Python at all: not polroute's
            continue
        assert "Traceback" not in res.stderr, res.stderr
        assert res.returncode in (0, 1), res.stderr
        if res.returncode:
            assert res.stderr == "polroute: show: out of memory\n", res.stderr
        seen.add(res.returncode)
    assert seen == {0, 1}, seen


def test_ulimit_descriptors_give_one_line(batch):
    for n in range(6, 13):
        res = _ulimited(f"-n {n}", ["get", "10.1.2.3", "--batch", batch])
        assert "Traceback" not in res.stderr, (n, res.stderr)
        assert res.returncode == 0 or res.stderr == "polroute: get: too many open files\n", (n, res.stderr)


def test_broken_pipe_exits_quietly(tmp_path):
    big = tmp_path / "big.ip"
    big.write_text(_big(20000))
    for argv in (["--help"], ["show", "routes", "--batch", str(big)]):
        cmd = " ".join(f"'{w}'" for w in POLROUTE + argv)
        res = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {cmd} | head -1"], capture_output=True, text=True, timeout=60
        )
        assert res.stdout.count("\n") == 1 and res.stderr == "", res.stderr
        assert res.returncode in (0, 141), res.returncode


# ---- 4. files that are not UTF-8 -----------------------------------------------


def test_latin1_comment_in_a_batch_is_read_as_ip_reads_it(capsys, tmp_path):
    path = tmp_path / "latin1.ip"
    path.write_bytes(b"# r\xe9seau du caf\xe9\nlink set lo up\nroute add 10.0.0.0/8 dev lo  # caf\xe9\n")
    rc, out, err = run(capsys, "get", "10.1.2.3", "--batch", str(path))
    assert rc == 0 and "dev lo" in out, err


@pytest.mark.parametrize(
    "data, words",
    [
        (b"link set lo up\nroute add 10.0.0.0/8 dev caf\xe9\n", ["b.ip:2:", "not UTF-8", "0xe9", "'caf\\xe9'"]),
        ("link set lo up\n".encode("utf-16"), ["b.ip:", "UTF-16", "byte-order mark"]),
        (b"link set lo up\n\x7fELF\x02\x01\x00\x00\x00\x00 junk\n", ["b.ip:2:", "binary data", "NUL"]),
    ],
    ids=["latin1-token", "utf16", "binary"],
)
def test_unreadable_batch_names_file_line_and_token(capsys, tmp_path, data, words):
    path = tmp_path / "b.ip"
    path.write_bytes(data)
    for argv in (["get", "10.1.2.3", "--batch", str(path)], ["show", "routes", "--batch", str(path)]):
        rc, out, err = run(capsys, *argv)
        assert rc == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        for w in words:
            assert w in err, (w, err)


def test_unreadable_flows_file(capsys, tmp_path, batch):
    flows = tmp_path / "f.txt"
    flows.write_bytes(b"# d\xe9parts\n10.1.2.3\n10.1.2.\xff\n")
    rc, out, err = run(capsys, "eval", "--batch", batch, "--flows", str(flows))
    assert rc == 1 and "f.txt:3: not UTF-8 text: byte 0xff in '10.1.2.\\xff'" in err, err


def test_host_file_encodings(capsys, tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_bytes(b"# h\xf4te \xe0 deux cartes\n" + TWO_NIC_HOST.encode())
    assert run(capsys, "multihome", "check", str(ok))[0] == 0
    u16 = tmp_path / "u16.yaml"
    u16.write_bytes(TWO_NIC_HOST.encode("utf-16"))
    assert run(capsys, "multihome", "check", str(u16))[0] == 0  # YAML allows UTF-16 with its mark
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(TWO_NIC_HOST.replace("eth1", "eth\xb9").encode("latin-1"))
    rc, _, err = run(capsys, "multihome", "check", str(bad))
    assert rc == 1 and f"{bad}:9: not UTF-8 text: byte 0xb9 in 'eth\\xb9'" in err, err
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"version: 1\n\x00\x01\x02\x03\n")
    rc, _, err = run(capsys, "multihome", "check", str(junk))
    assert rc == 1 and f"{junk}:2: binary data" in err and "Traceback" not in err, err
    ctrl = tmp_path / "ctrl.yaml"
    ctrl.write_bytes(b"version: 1\n# a \x01 b\nuplinks: []\n")
    rc, _, err = run(capsys, "multihome", "check", str(ctrl))
    assert rc == 1 and f"{ctrl}:2: not valid YAML: character U+0001" in err, err


# ---- 3. multihome apply in the host file's terms ----------------------------------


def test_multihome_apply_names_yaml_lines_and_no_adopt(capsys, monkeypatch, tmp_path):
    from polroute.cli import multihome as mcli
    from polroute.live.desired import DesiredStateError

    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    name = f"{host} (rendered batch)"

    def conflicting(text, **kw):
        lines = text.splitlines()
        n = next(i for i, l in enumerate(lines, 1) if l.startswith("route add default") and "eth1" in l)
        r = next(i for i, l in enumerate(lines, 1) if l.startswith("rule add from 192.168.16.20"))
        raise DesiredStateError(
            [
                f"{kw['filename']}:{n}: the kernel already has 'route add default table 2 via 192.168.16.1 dev "
                "eth1 proto 4' with the same table, prefix, tos and metric, not owned by polroute (protocol 4 != "
                "245); it is left alone unless --adopt is given",
                f"{kw['filename']}:{r}: Error: Nexthop has invalid gateway.",
            ]
        )

    monkeypatch.setattr(mcli, "apply_engine", lambda: conflicting)
    rc, out, err = run(capsys, "multihome", "apply", str(host))
    assert rc == 1 and out == ""
    lines = err.splitlines()
    # eth1's gateway is line 11 of the file, eth0's address line 7
    assert lines[0].startswith(f"polroute multihome: apply: {host}:11 (uplink eth1, uplinks[1].gateway: `route add ")
    assert "--adopt" not in err and "multihome apply leaves it alone" in lines[0]
    assert lines[1].startswith(f"polroute multihome: apply: {host}:7 (uplink eth0, uplinks[0].address: `rule add")
    assert lines[-1] == "polroute multihome: apply: nothing was changed"
    assert name not in err

    class Failed:
        ok, dry_run, rolled_back, restored = False, False, True, True

        def text(self):
            return (
                f"failed: {name}:5: route add default table 1 via 192.168.16.1 dev eth0 proto 245: Error: nope.\n"
                "rolled back 1 applied operation(s); the kernel is as it was before (checked by a new dump)\n"
            )

    monkeypatch.setattr(mcli, "apply_engine", lambda: lambda text, **kw: Failed())
    rc, out, err = run(capsys, "multihome", "apply", str(host))
    assert rc == 2 and out == ""
    assert err.startswith(f"failed: {host}:") and "(uplink eth0, uplinks[0]." in err and name not in err
    assert "the kernel is as it was before" in err


def test_batch_entries_point_at_the_yaml():
    from polroute.iproute2.rt_tables import RtTables
    from polroute.multihome.hostfile import parse_host_text
    from polroute.multihome.render import batch_entries, batch_text

    text = TWO_NIC_HOST + "tenants:\n  - from: 172.16.5.0/24\n    uplink: eth1\n"
    cfg = parse_host_text(text, "h.yaml", RtTables())
    entries = batch_entries(cfg)
    assert "\n".join(t for t, _ in entries) + "\n" == batch_text(cfg)
    file_lines = text.splitlines()
    for line, (yline, what) in entries[1:]:
        assert 1 <= yline <= len(file_lines), (line, yline)
        if "dev eth1" in line and line.startswith("route add default"):
            assert "gateway: 192.168.16.1" in file_lines[yline - 1] and what == "uplink eth1, uplinks[1].gateway"
        if "from 172.16.5.0/24" in line:
            assert "from: 172.16.5.0/24" in file_lines[yline - 1] and what == "tenant 172.16.5.0/24, tenants[0]"


# ---- 5. snapshot -6 after -4 -----------------------------------------------------------


def test_snapshot_v6_text_leaves_out_what_v4_made():
    from polroute.cli.snapshot import after_v4

    v6 = (
        "# polroute snapshot of namespace a, IPv6: run with `ip -6 -batch`\n"
        "link add v0p type veth peer name v0\nlink add prpeer7 type veth peer name x7\nlink add br0 type bridge\n"
        "tuntap add t0 mode tap\nlink add prsnap1 type veth peer name prsnap2\nlink set v0 addrgenmode none\n"
        "addr add 2001:db8::1/64 dev v0 nodad\nlink set v0 up\nroute add 2001:db8:9::/64 via 2001:db8::9 dev v0\n"
        "link del prsnap1\n# sysctl -w net.ipv4.ip_forward=1\n# sysctl -w net.ipv6.conf.all.forwarding=1\n"
    )
    got = after_v4(v6, {"lo", "v0", "v0p", "x7", "br0", "t0"})
    assert "link add" not in got.replace("link add prsnap1", "") and "tuntap" not in got
    assert "link add prsnap1 type veth peer name prsnap2" in got and "link del prsnap1" in got  # its own helper
    assert "net.ipv4" not in got and "net.ipv6.conf.all.forwarding" in got
    assert "addr add 2001:db8::1/64 dev v0 nodad" in got and "after the -4 snapshot" in got.splitlines()[0]
