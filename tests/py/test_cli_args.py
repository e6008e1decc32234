"""The argument framework of the command line (argparse everywhere): -h/--help
on every command and subcommand, --version, unknown options named, options
anywhere on the line, usage errors exit as they always did."""

import json
import subprocess
import sys

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


HELP = [
    ["get"],
    ["eval"],
    ["show"],
    ["kernel"],
    ["snapshot"],
    ["plan"],
    ["apply"],
    ["confirm"],
    ["recover"],
    ["demo"],
    ["audit"],
    ["bench"],
    ["completion"],
    ["manpage"],
    ["multihome"],
    ["multihome", "render"],
    ["multihome", "discover"],
    ["multihome", "apply"],
    ["multihome", "check"],
]


@pytest.mark.parametrize("words", HELP, ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_every_command(capsys, words, flag):
    rc, out, err = run(capsys, *words, flag)
    assert rc == 0, err
    assert out.startswith(f"usage: polroute {' '.join(words)}"), out
    assert err == ""


def test_every_registered_command_is_covered():
    assert sorted(cli.COMMANDS) == sorted({w[0] for w in HELP})


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["help"]])
def test_top_level_help_lists_the_commands(capsys, argv):
    rc, out, _ = run(capsys, *argv)
    assert rc == 0 and out.startswith("usage: polroute")
    for name in cli.COMMANDS:
        assert f"\n  {name} " in out


def test_help_command_names_a_command(capsys):
    rc, out, _ = run(capsys, "help", "plan")
    assert rc == 0 and out.startswith("usage: polroute plan")


def test_no_arguments_prints_usage_exit_1(capsys):
    rc, out, _ = run(capsys)
    assert rc == 1 and out.startswith("usage: polroute")


def test_version(capsys):
    import polroute
    from polroute.model.kernel_profile import PROFILES

    rc, out, err = run(capsys, "--version")
    lines = out.splitlines()
    assert rc == 0 and err == "" and len(lines) == 3, out
    assert lines[0] == f"polroute {polroute.__version__}"
    assert lines[1].startswith(f"C core {polroute.__version__} (cffi extension")
    assert lines[2].split()[:2] == ["kernel", "profile"] and lines[2].split()[2] in PROFILES


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--bogus"], 1),
        (["get", "--bogus", "8.8.8.8"], 1),
        (["get", "8.8.8.8", "--bogus"], 1),
        (["eval", "--bogus"], 1),
        (["show", "rules", "--bogus"], 1),
        (["kernel", "--bogus"], 1),
        (["snapshot", "--bogus"], 1),
        (["plan", "--bogus"], 1),
        (["apply", "--bogus"], 1),
        (["confirm", "--bogus"], 1),
        (["demo", "--bogus"], 1),
        (["multihome", "check", "x.yaml", "--bogus"], 1),
        (["audit", "--bogus"], 1),  # one exit table: 1 bad command line everywhere
        (["bench", "--bogus"], 1),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_unknown_option_names_itself(capsys, argv, code):
    rc, out, err = run(capsys, *argv)
    assert rc == code
    assert "--bogus" in err and out == ""


@pytest.mark.parametrize("argv", [["kernel", "x"], ["snapshot", "x"], ["confirm", "x"], ["eval", "x"]])
def test_unexpected_argument_exit_1(capsys, argv):
    rc, out, err = run(capsys, *argv)
    assert rc == 1 and out == "" and err.rstrip().endswith("x")


def test_get_help_anywhere_asks_nothing(capsys, two_nic):
    rc, out, _ = run(capsys, "get", "--batch", two_nic, "8.8.8.8", "--help")
    assert rc == 0 and out.startswith("usage: polroute get") and "via" not in out


def test_get_args_are_ip_route_gets(capsys, two_nic):
    """ARGS reach ip route get's parser as they are: `to`, and a word like -4
    (ip takes -4 before `route`: after `get` it is an invalid prefix, exit 1)."""
    rc, out, _ = run(capsys, "get", "--batch", two_nic, "to", "8.8.8.8", "from", "192.168.16.21")
    assert rc == 0 and out.startswith("8.8.8.8 from 192.168.16.21 via 192.168.16.1 dev eth1 table 2")
    rc, _, err = run(capsys, "get", "--batch", two_nic, "-4", "8.8.8.8")
    assert rc == 1 and err == 'polroute: get: invalid prefix "-4"\n'


def test_options_with_equals_and_repeated(capsys, two_nic, tmp_path):
    empty = tmp_path / "empty.ip"
    empty.write_text("")
    rc, out, _ = run(capsys, "get", f"--batch={empty}", "8.8.8.8", f"--batch={two_nic}", "--json")
    assert rc == 0 and json.loads(out)[0]["dev"] == "eth0"


def test_python_m_polroute_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "polroute", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("polroute ")


def test_help_loads_no_command_and_not_the_core():
    """`polroute --help` imports only the command table (startup stays fast)."""
    code = (
        "import sys, contextlib, io\n"
        "from polroute.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('polroute.'))\n"
        "assert loaded == ['polroute.cli', 'polroute.cli.app', 'polroute.cli.exitcodes'], loaded\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
