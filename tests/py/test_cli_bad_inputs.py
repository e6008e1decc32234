"""No tracebacks, only documented exit codes: every file of the bad-input
corpus (tests/py/bad_inputs/, written by its make.py) in every role a file
plays on the command line (batch, flows, host file, rt_tables; also through
`-` on stdin), and bad options for every command.  Each run is in-process
(cli.main, as the installed command runs it); under --json, stdout must be
JSON whatever happened."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from polroute.cli import app as cli
from polroute.cli.demo import two_nic_batch
from polroute.cli.exitcodes import DOCUMENTED

CORPUS = Path(__file__).parent / "bad_inputs"
FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "make.py" and p.is_file())
NO_NS = "prt-no-such-namespace"

# {F}: the corpus file; {T}: a good two-NIC batch file; {S}: the file given as `-` on stdin
ROLES = [
    ["get", "--batch", "{F}", "8.8.8.8"],
    ["get", "--json", "--batch", "{F}", "8.8.8.8", "--explain"],
    ["get", "--batch", "{T}", "--rt-tables", "{F}", "8.8.8.8"],
    ["eval", "--batch", "{T}", "--flows", "{F}"],
    ["eval", "--json", "--echo", "--batch", "{T}", "--flows", "{F}"],
    ["eval", "--batch", "{F}", "--flows", "-", "{S}"],
    ["show", "routes", "table", "all", "--batch", "{F}"],
    ["show", "rules", "--json", "--batch", "-", "{S}"],
    ["show", "routes", "table", "one", "--rt-tables", "{F}", "--batch", "{T}"],
    ["audit", "--batch", "{F}"],
    ["multihome", "check", "{F}"],
    ["multihome", "render", "{F}", "--to", "networkd"],
]


def run(capsys, argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    try:
        rc = cli.main(argv)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return rc, out, err


def check(rc: int, out: str, err: str, argv: list[str]) -> None:
    assert rc in DOCUMENTED, (rc, err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out, err[-4000:]
    assert "internal error" not in err, err[-2000:]
    if rc not in (0, 5):
        assert err.strip() or ("--json" in argv and out.strip()), "a failure says why (stderr, or JSON on stdout)"
    if "--json" in argv and out.strip():
        for line in out.splitlines() if argv[0] == "eval" else [out]:
            json.loads(line)


@pytest.fixture(scope="module")
def two_nic(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "two-nic.ip"
    path.write_text(two_nic_batch())
    return str(path)


def test_the_corpus_is_big_enough():
    assert len(FILES) * len(ROLES) + len(BAD_OPTIONS) >= 300


@pytest.mark.parametrize("role", ROLES, ids=lambda r: " ".join(r))
@pytest.mark.parametrize("name", FILES)
def test_bad_file(capsys, two_nic, name, role):
    path = str(CORPUS / name)
    stdin = (CORPUS / name).read_bytes() if "{S}" in role else None
    argv = [w.replace("{F}", path).replace("{T}", two_nic) for w in role if w != "{S}"]
    rc, out, err = run(capsys, argv, stdin)
    check(rc, out, err, argv)


BAD_OPTIONS = [
    *[[cmd, "--bogus"] for cmd in cli.COMMANDS],
    *[[cmd, "--json", "--bogus"] for cmd in ("get", "eval", "show", "kernel", "audit", "plan", "apply")],
    *[[cmd, "-x"] for cmd in cli.COMMANDS],
    *[[cmd, "--batch"] for cmd in ("get", "eval", "show", "audit", "plan", "apply")],
    *[[cmd, "--netns"] for cmd in ("get", "eval", "show", "audit", "plan", "apply", "snapshot", "confirm", "recover")],
    *[[cmd, "--rt-tables"] for cmd in ("get", "eval", "show", "audit", "plan", "apply")],
    *[[cmd, "--rt-tables", "/nonexistent/rt_tables", "--batch", "{T}"] for cmd in ("eval", "show", "audit")],
    *[[cmd, "--batch", "/nonexistent/x.ip"] for cmd in ("get", "eval", "show", "audit", "plan", "apply")],
    *[[cmd, "--batch", "/"] for cmd in ("get", "eval", "show", "audit")],
    *[[cmd, "--batch", "/dev/null", "--netns", NO_NS] for cmd in ("get", "show", "audit", "plan", "apply")],
    *[[cmd, "--netns", NO_NS] for cmd in ("snapshot", "confirm", "recover", "plan", "audit")],
    ["get"],
    ["get", "--batch", "{T}"],
    ["get", "--batch", "{T}", "8.8.8.8", "from"],
    ["get", "--batch", "{T}", "8.8.8.8", "bogus"],
    ["get", "--batch", "{T}", "8.8.8.8", "iif", "nosuch0"],
    ["get", "--batch", "{T}", "8.8.8.8", "oif", "nosuch0", "--json"],
    ["get", "--batch", "{T}", "8.8.8.8", "tos", "999999999999"],
    ["get", "--batch", "{T}", "8.8.8.8", "mark", "0x1ffffffff"],
    ["get", "--batch", "{T}", "8.8.8.8", "uid", "-1"],
    ["get", "--batch", "{T}", "1" * 5000],
    ["get", "--batch", "{T}", "8.8.8.8", "--sysctl", "x"],
    ["get", "--batch", "{T}", "8.8.8.8", "--sysctl", "net.ipv4.ip_forward=99999999999999999999"],
    ["get", "--batch", "{T}", "8.8.8.8", "--sysctl", "no.such.key=1"],
    ["get", "--batch", "{T}", "8.8.8.8", "--sysctl", "net.ipv4.ip_forward=x"],
    ["get", "--batch", "{T}", "8.8.8.8", "--kernel", "nosuch"],
    ["get", "--batch", "{T}", "8.8.8.8", "--netns", NO_NS],
    ["get", "--batch", "{T}", "\udcff"],
    ["eval"],
    ["eval", "--flows", "a", "--flows", "b"],
    ["eval", "--flows", "/nonexistent"],
    ["eval", "--flows", "/"],
    ["eval", "x"],
    ["show"],
    ["show", "bogus"],
    ["show", "rules", "extra"],
    ["show", "routes", "table"],
    ["show", "routes", "table", "nosuch", "--batch", "{T}"],
    ["show", "routes", "table", "99999999999999999999", "--batch", "{T}"],
    ["show", "routes", "table", "-1", "--batch", "{T}"],
    ["show", "routes", "-4", "-6"],
    ["show", "routes", "tab", "1", "extra"],
    ["kernel", "extra"],
    ["snapshot", "-4", "-6", "--netns", NO_NS],
    ["snapshot", "--owner", "5"],
    ["snapshot", "--owned", "--owner", "nosuchproto", "--netns", NO_NS],
    ["plan"],
    ["plan", "--batch", "{T}", "--owner", "nosuchproto", "--netns", NO_NS],
    ["apply", "--batch", "{T}", "--confirm", "x", "--netns", NO_NS],
    ["apply", "--batch", "{T}", "--confirm", "-1", "--netns", NO_NS],
    ["apply", "--batch", "{T}", "--confirm", "1e999", "--netns", NO_NS],
    ["apply", "--batch", "{T}", "--confirm", "nan", "--netns", NO_NS],
    ["audit", "--remote", "not-an-address", "--batch", "{T}"],
    ["audit", "--kernel", "--batch", "{T}"],
    ["audit", "--batch", "{T}", "--netns", NO_NS],
    ["multihome"],
    ["multihome", "bogus"],
    ["multihome", "render"],
    ["multihome", "render", "/nonexistent.yaml", "--to", "batch"],
    ["multihome", "render", "{T}", "--to", "nosuch"],
    ["multihome", "render", "{T}", "--to", "batch", "--family", "5"],
    ["multihome", "check", "/nonexistent.yaml"],
    ["multihome", "check", "/"],
    ["multihome", "discover", "--netns", NO_NS],
    ["multihome", "discover", "--owner", "x"],
    ["multihome", "apply", "/nonexistent.yaml", "--netns", NO_NS, "--dry-run"],
    ["completion"],
    ["completion", "fish"],
    ["manpage", "extra"],
    ["bench", "--plot"],
    ["demo", "--offline", "--live"],
    ["help", "nosuch"],
    ["nosuch"],
    ["--nosuch"],
    ["-"],
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=lambda v: " ".join(v)[:80])
def test_bad_command_line(capsys, two_nic, argv):
    argv = [w.replace("{T}", two_nic) for w in argv]
    rc, out, err = run(capsys, argv)
    check(rc, out, err, argv)
    assert rc != 0 or argv[0] in ("help",), (rc, out[:500], err[:500])
