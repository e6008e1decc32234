"""One exit-status table (polroute.cli.exitcodes) for every command: every
--help prints it, the README quotes it, and no command module returns a
number that is not one of its codes (the corpus test, test_cli_bad_inputs.py,
runs the commands; this reads their source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from polroute.cli import app as cli
from polroute.cli.exitcodes import DOCUMENTED, EPILOG, MEANING, Exit, table

CLI = Path(cli.__file__).parent
README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_table_is_complete():
    assert set(MEANING) == set(Exit)
    assert {0, 1, 2, 3, 4, 5, 130, 141} == DOCUMENTED
    # the categories, each one code
    assert len({Exit.USAGE, Exit.ERROR_ANSWER, Exit.ASYMMETRIC, Exit.PARTIAL, Exit.ROLLED_BACK}) == 5


@pytest.mark.parametrize("name", [*cli.COMMANDS, None])
def test_every_help_ends_with_the_table(capsys, name):
    rc = cli.main([name, "--help"] if name else ["--help"])
    out = capsys.readouterr().out
    assert rc == 0 and out.rstrip().endswith(EPILOG.rstrip()), out[-600:]


def test_subcommand_help_has_the_table_too(capsys):
    for sub in ("render", "discover", "apply", "check"):
        assert cli.main(["multihome", sub, "--help"]) == 0
        assert capsys.readouterr().out.rstrip().endswith(EPILOG.rstrip())


def test_readme_quotes_the_table():
    text = README.read_text()
    for code, meaning in MEANING.items():
        assert f"| {int(code)} | {meaning} |" in text, (code, meaning)


def _returned_numbers(tree: ast.AST) -> list[tuple[int, int]]:
    """(line, value) of every integer literal a command's run path returns."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (node.name.startswith(("run", "cmd_", "_run")) or node.name == "main"):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    for leaf in ast.walk(sub.value):
                        if isinstance(leaf, ast.Constant) and type(leaf.value) is int:
                            found.append((leaf.lineno, leaf.value))
    return found


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_commands_return_only_named_codes(path):
    """A run function returns Exit members (or the EXIT_* names made of
    them), never a bare number."""
    assert _returned_numbers(ast.parse(path.read_text())) == []


def test_exit_codes_print_as_table():
    assert table().splitlines()[0].split()[0] == "0"
