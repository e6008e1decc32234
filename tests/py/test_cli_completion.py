"""Shell completion and the man page come from the parsers: every command
(and multihome's subcommands) and their options are in them; the man page
formats with groff when it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from polroute.cli import app as cli

# bash and groff are not sanitized programs: under the ASan run (LD_PRELOAD=libasan)
# they must not inherit the runtime (troff then aborts on its own new/free mismatch)
_TOOL_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_names_every_command(capsys, shell):
    rc, out, err = run(capsys, "completion", shell)
    assert rc == 0 and err == ""
    for name in cli.COMMANDS:
        assert name in out, name
    for word in ("render", "discover", "apply", "check") + (
        ("--batch", "--netns", "--json", "--explain", "--rt-tables", "--flows") if shell != "tcsh" else ()
    ):
        assert word in out, word


def test_bash_completion_is_valid_bash(capsys, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    rc, out, _ = run(capsys, "completion", "bash")
    script = tmp_path / "polroute.bash"
    script.write_text(out)
    r = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, timeout=60, env=_TOOL_ENV)
    assert r.returncode == 0, r.stderr


def test_manpage(capsys, tmp_path):
    rc, out, err = run(capsys, "manpage")
    assert rc == 0 and out.startswith(".TH POLROUTE")
    for name in cli.COMMANDS:
        assert f"polroute {name}" in out.replace("\\-", "-"), name
    assert "exit status" in out
    groff = shutil.which("groff")
    if groff:
        page = tmp_path / "polroute.1"
        page.write_text(out)
        cmd = [groff, "-man", "-Tutf8", "-ww", str(page)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_TOOL_ENV)
        assert r.returncode == 0 and "polroute" in r.stdout, r.stderr
