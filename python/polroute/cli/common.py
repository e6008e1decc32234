"""What the commands share: the parser they build on, the policy options
(``--batch/--sysctl/--kernel/--rt-tables``) and the policy they build, usage
errors, and running a command with the error and exit handling of all.

Exit status of every command: 0 done, 1 bad input (file, line and token named,
nothing applied; a command may keep another code for a bad command line, see
``Command.usage_exit``), other codes as each command documents.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polroute.iproute2.rt_tables import RtTables
    from polroute.model.policy import Policy


class UsageError(Exception):
    """A bad command line or input: ``polroute: MESSAGE`` on stderr, exit 1."""


@dataclass(frozen=True)
class Command:
    """One command: its parser (built on demand) and what runs it."""

    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    usage_exit: int = 1  # the exit status of a bad command line (argparse's own is 2)


def new_parser(name: str, description: str | None = None, usage: str | None = None, epilog: str | None = None):
    """A command's parser: ``polroute NAME``, -h/--help, no abbreviated options."""
    return argparse.ArgumentParser(
        prog=f"polroute {name}",
        description=description,
        usage=usage,
        epilog=epilog,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_json_option(ap: argparse.ArgumentParser, help: str = "print JSON instead of text") -> None:
    ap.add_argument("--json", action="store_true", help=help)


def add_family_options(ap: argparse.ArgumentParser, what: str) -> None:
    ap.add_argument("-4", dest="v4", action="store_true", help=f"IPv4 {what} only")
    ap.add_argument("-6", dest="v6", action="store_true", help=f"IPv6 {what} only")


def add_policy_options(ap: argparse.ArgumentParser, kernel: bool = True, sysctl: bool = True) -> None:
    """The model's namespace: batch files applied in order, then the sysctls."""
    g = ap.add_argument_group("the modelled namespace")
    g.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="FILE",
        help="an `ip -batch` file applied to a fresh namespace (repeatable, applied in order)",
    )
    g.add_argument("--rt-tables", metavar="FILE", help="the table names (rt_tables format; default: built-in names)")
    if sysctl:
        g.add_argument(
            "--sysctl", action="append", default=[], metavar="KEY=VALUE", help="set a sysctl after the batch files"
        )
    if kernel:
        g.add_argument(
            "--kernel", metavar="PROFILE", help="the kernel build modelled: auto (default: this kernel) or a profile"
        )


def build_policy(batches: list[str], sysctls: list[str], tables: RtTables, kernel: str | None = None) -> Policy:
    """A fresh namespace (modelling the kernel build ``kernel``, default auto)
    with the batch files applied, then the sysctls."""
    from polroute._core.errors import PolicyError
    from polroute.iproute2.batch import apply_batch
    from polroute.model.kernel_profile import ProfileError
    from polroute.model.policy import Policy

    try:
        policy = Policy(kernel=kernel or "auto")
    except ProfileError as e:
        raise UsageError(f"--kernel: {e}") from None
    for path in batches:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        apply_batch(policy, text, path, tables)
    for item in sysctls:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--sysctl {item!r}: expected KEY=VALUE")
        try:
            policy.sysctl(key.strip(), int(value.strip(), 0))
        except ValueError:
            raise UsageError(f"--sysctl {item!r}: value is not an integer") from None
        except PolicyError as e:
            raise UsageError(f"--sysctl {item!r}: {'unknown key' if e.errno == 2 else e.strerror}") from None
    return policy


def policy_from(ns: argparse.Namespace) -> tuple[Policy, RtTables]:
    """The policy and table names that add_policy_options' options describe."""
    from polroute.iproute2.rt_tables import load_rt_tables

    tables = load_rt_tables(ns.rt_tables, use_system=False)
    return build_policy(ns.batch, getattr(ns, "sysctl", []), tables, getattr(ns, "kernel", None)), tables


def parse(command: Command, argv: list[str]) -> argparse.Namespace:
    """Options may stand anywhere on the line (before, between, after the
    positional words); a command with subcommands parses them in turn."""
    ap = command.parser()
    if ap._subparsers is None:
        return ap.parse_intermixed_args(argv)
    return ap.parse_args(argv)


def invoke(command: Command, argv: list[str]) -> int:
    """Parse and run one command: -h/--help exit 0, a bad command line exits
    ``usage_exit``, bad input (a batch file, a usage error, a missing file) 1."""
    from polroute._core.errors import PolicyError
    from polroute.iproute2.lexer import BatchError

    try:
        ns = parse(command, argv)
    except SystemExit as e:  # argparse: 0 after --help, 2 after a usage message
        return 0 if e.code in (0, None) else command.usage_exit
    try:
        return command.run(ns)
    except (BatchError, UsageError) as e:
        print(f"polroute: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if isinstance(e, PolicyError):
            print(f"polroute: {e}", file=sys.stderr)
        else:
            print(f"polroute: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 1
