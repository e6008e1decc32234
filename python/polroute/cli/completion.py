"""``polroute completion SHELL`` and ``polroute manpage``: shell completion
(bash, zsh, tcsh; shtab) and a man page (roff; argparse-manpage), both
generated from the commands' own argparse parsers, so that they cannot drift
from what the command line accepts.

    polroute completion bash > /etc/bash_completion.d/polroute
    polroute completion zsh > "${fpath[1]}/_polroute"
    polroute manpage > polroute.1 && man ./polroute.1
"""

from __future__ import annotations

import argparse

from polroute.cli.common import Command, UsageError, finish_parser, new_parser
from polroute.cli.exitcodes import Exit

SHELLS = ("bash", "zsh", "tcsh")


def tree() -> argparse.ArgumentParser:
    """One parser holding every command's parser as a subcommand (the
    commands build their own parsers lazily; this builds them all)."""
    from polroute.cli.app import COMMANDS, command, parser

    root = parser()
    root.prog = "polroute"
    sub = root.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (_, summary) in COMMANDS.items():
        child = finish_parser(command(name).parser())
        # the command's own parser, registered as it is (add_parser would build a new one)
        sub.choices[name] = child
        sub._choices_actions.append(sub._ChoicesPseudoAction(name, (), summary))
    return root


def completion_parser() -> argparse.ArgumentParser:
    ap = new_parser("completion", __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    return ap


def manpage_parser() -> argparse.ArgumentParser:
    return new_parser("manpage", "The polroute(1) man page (roff) on stdout, from the parsers.")


def _needs(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"this needs the Python package {package} (pip install {package})") from None


_FILE_METAVARS = {"FILE", "DESIRED", "FILE.png", "DIR"}


def _mark_files(ap: argparse.ArgumentParser, shtab) -> None:
    """Options and arguments that name files complete file names."""
    for action in ap._actions:
        if action.metavar in _FILE_METAVARS or action.dest in ("file", "output"):
            action.complete = shtab.DIRECTORY if action.metavar == "DIR" else shtab.FILE  # type: ignore[attr-defined]
        for sub in (
            (getattr(action, "choices", None) or {}).values() if isinstance(action, argparse._SubParsersAction) else ()
        ):
            _mark_files(sub, shtab)


def run_completion(ns: argparse.Namespace) -> int:
    shtab = _needs("shtab", "shtab")
    root = tree()
    _mark_files(root, shtab)
    print(shtab.complete(root, shell=ns.shell), end="")
    return Exit.OK


def manpage_text() -> str:
    """The man page of polroute, every command a section, as roff."""
    manpage = _needs("argparse_manpage.manpage", "argparse-manpage")
    import sys

    root = tree()
    page = manpage.Manpage(
        root,
        _data={
            "prog": "polroute",
            "project_name": "polroute",
            "version": sys.modules["polroute"].__version__,
            "description": "an offline model of Linux policy routing",
            "url": "https://github.com/polroute/polroute",
            "authors": ["the polroute authors"],
        },
    )
    return str(page)


def run_manpage(ns: argparse.Namespace) -> int:
    print(manpage_text(), end="")
    return Exit.OK


COMMANDS = {"completion": Command(completion_parser, run_completion), "manpage": Command(manpage_parser, run_manpage)}
