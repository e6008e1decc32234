"""What the commands share: the parser they build on, the policy options
(``--batch/--sysctl/--kernel/--rt-tables``) and the policy they build, usage
errors, and running a command with the error and exit handling of all.

Exit status: the one table of cli/exitcodes.py (printed by every ``--help``).
Whatever fails, one line on stderr (and, under ``--json``, a JSON object
``{"error": ..., "exit": N}`` on stdout) and no traceback: out of memory and
too many open files are ``polroute: CMD: out of memory`` / ``too many open
files``, exit 1 (a command that changed the kernel before says so, with its
own code); an interrupt (Ctrl-C) outside an apply exits 130.

Every parser gets ``-v/--verbose`` (repeatable: Python ``logging`` at INFO,
then DEBUG, on stderr) and ``-q/--quiet`` (no progress display, warnings
only), on each subcommand too (``finish_parser``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno as _errno
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polroute.cli.exitcodes import EPILOG, Exit

if TYPE_CHECKING:
    from polroute.iproute2.rt_tables import RtTables
    from polroute.model.policy import Policy


class UsageError(Exception):
    """A bad command line or input: ``polroute: MESSAGE`` on stderr, exit 1."""


log = logging.getLogger("polroute")


@dataclass(frozen=True)
class Command:
    """One command: its parser (built on demand) and what runs it."""

    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    usage_exit: int = Exit.USAGE  # the exit status of a bad command line (argparse's own is 2)


def new_parser(name: str, description: str | None = None, usage: str | None = None, epilog: str | None = None):
    """A command's parser: ``polroute NAME``, -h/--help, no abbreviated
    options, -v/-q, the exit-status table at the end of its help."""
    ap = argparse.ArgumentParser(
        prog=f"polroute {name}",
        description=description,
        usage=usage,
        epilog=epilog,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_verbosity_options(ap)
    return ap


def add_quiet_option(ap: argparse.ArgumentParser) -> None:
    """-q/--quiet (no progress display; logging: warnings only), once."""
    if "--quiet" not in ap._option_string_actions:
        ap.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="no progress display (shown on a terminal after ~2 s otherwise); log warnings only",
        )


def add_verbosity_options(ap: argparse.ArgumentParser) -> None:
    """-v/--verbose (repeatable) and -q/--quiet, once per parser."""
    if "--verbose" not in ap._option_string_actions:
        ap.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0,
            help="say what is done on stderr (Python logging: -v INFO, -vv DEBUG)",
        )
    add_quiet_option(ap)


def finish_parser(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``ap`` and every subcommand parser under it with -v/-q and the
    exit-status table at the end of their help (a subcommand added later,
    by any module, gets them too)."""
    add_verbosity_options(ap)
    if not (ap.epilog or "").rstrip().endswith(EPILOG.rstrip()):
        ap.epilog = ((ap.epilog or "").rstrip() + "\n\n" + EPILOG).lstrip()
        if ap.formatter_class is argparse.HelpFormatter:
            ap.formatter_class = argparse.RawDescriptionHelpFormatter
    if ap._subparsers is not None:
        for action in ap._subparsers._group_actions:
            for sub in getattr(action, "choices", {}).values():
                finish_parser(sub)
    return ap


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """polroute's loggers to stderr: WARNING by default, INFO with -v, DEBUG
    with -vv, ERROR with --quiet; messages as ``polroute: LEVEL: text``."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    log.setLevel(level)
    if not any(getattr(h, "_polroute", False) for h in log.handlers):
        handler = logging.StreamHandler()  # sys.stderr at the time of each message
        handler.setFormatter(logging.Formatter("polroute: %(levelname)s: %(message)s"))
        handler._polroute = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False


def progress(command: str, quiet: bool):
    """The progress display of a long-running command (cli/progress.py)."""
    from polroute.cli.progress import Progress, wanted

    return Progress(command, wanted(quiet))


def resource_problem(e: BaseException) -> str | None:
    """ "out of memory" / "too many open files" for the exceptions that mean
    it (None for any other): Python's MemoryError, and an OSError with
    ENOMEM, EMFILE or ENFILE (not the model's PolicyError, whose errno is an
    answer to a question)."""
    from polroute._core.errors import PolicyError

    if isinstance(e, MemoryError):
        return "out of memory"
    if isinstance(e, OSError) and not isinstance(e, PolicyError):
        if e.errno == _errno.ENOMEM:
            return "out of memory"
        if e.errno in (_errno.EMFILE, _errno.ENFILE):
            return "too many open files"
    return None


def add_json_option(ap: argparse.ArgumentParser, help: str = "print JSON instead of text") -> None:
    ap.add_argument("--json", action="store_true", help=help)


def add_family_options(ap: argparse.ArgumentParser, what: str) -> None:
    ap.add_argument("-4", dest="v4", action="store_true", help=f"IPv4 {what} only")
    ap.add_argument("-6", dest="v6", action="store_true", help=f"IPv6 {what} only")


def add_policy_options(ap: argparse.ArgumentParser, kernel: bool = True, sysctl: bool = True) -> None:
    """The model's namespace: batch files applied in order, then the sysctls
    (and --quiet: reading big batch files shows progress on a terminal)."""
    add_quiet_option(ap)
    g = ap.add_argument_group("the modelled namespace")
    g.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="FILE",
        help="an `ip -batch` file applied to a fresh namespace (repeatable, applied in order; - for stdin)",
    )
    g.add_argument(
        "--netns",
        dest="netns",
        metavar="NS",
        help="a live namespace (read over netlink; root) as the policy, instead of --batch",
    )
    g.add_argument(
        "--rt-tables", metavar="FILE", help="the table names (rt_tables format, - for stdin; default: built-in names)"
    )
    if sysctl:
        g.add_argument(
            "--sysctl", action="append", default=[], metavar="KEY=VALUE", help="set a sysctl after the batch files"
        )
    if kernel:
        g.add_argument(
            "--kernel", metavar="PROFILE", help="the kernel build modelled: auto (default: this kernel) or a profile"
        )


def build_policy(
    batches: list[str], sysctls: list[str], tables: RtTables, kernel: str | None = None, prog=None
) -> Policy:
    """A fresh namespace (modelling the kernel build ``kernel``, default auto)
    with the batch files applied, then the sysctls; ``prog`` (a Progress)
    is told of each file."""
    from polroute.iproute2.batch import apply_batch
    from polroute.model.kernel_profile import ProfileError
    from polroute.model.policy import Policy

    try:
        policy = Policy(kernel=kernel or "auto")
    except ProfileError as e:
        raise UsageError(f"--kernel: {e}") from None
    log.info("modelling kernel profile %s", policy.kernel.name)
    for i, path in enumerate(batches, 1):
        if prog is not None:
            prog.phase(f"reading {path}" + (f" ({i}/{len(batches)})" if len(batches) > 1 else ""))
        text = read_batch(path)
        warnings = apply_batch(policy, text, path, tables)
        log.info("applied %s (%d lines)", "<stdin>" if path == "-" else path, text.count("\n"))
        for w in warnings:
            log.warning("%s", w)
    _apply_sysctls(policy, sysctls)
    return policy


def _apply_sysctls(policy: Policy, sysctls: list[str]) -> None:
    from polroute._core.errors import PolicyError

    for item in sysctls:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--sysctl {item!r}: expected KEY=VALUE")
        try:
            policy.sysctl(key.strip(), int(value.strip(), 0))
        except ValueError:
            raise UsageError(f"--sysctl {item!r}: value is not an integer") from None
        except OverflowError:
            raise UsageError(f"--sysctl {item!r}: value out of range") from None
        except PolicyError as e:
            raise UsageError(f"--sysctl {item!r}: {'unknown key' if e.errno == 2 else e.strerror}") from None


def load_tables(path: str | None) -> RtTables:
    """The table names of ``--rt-tables FILE`` (``-``: stdin; none: the
    built-in names): a missing or unreadable file, or a line iproute2 would
    stop at (its "Database ... is corrupted"), is a UsageError naming the
    file and the line."""
    from polroute.iproute2.rt_tables import RtTables, parse_db

    if path is None:
        return RtTables()
    try:
        text = read_batch(path)
    except OSError as e:
        raise UsageError(f"--rt-tables {path}: {e.strerror or e}") from None
    label = "<stdin>" if path == "-" else path
    for lineno, line in enumerate(text.split("\n"), 1):
        if parse_db(line + "\n")[1] is not None:
            shown = line.strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise UsageError(f"{label}:{lineno}: corrupt rt_tables line {shown!r} (expected: NUMBER NAME)")
    log.info("table names from %s", label)
    return RtTables().load_text(text, label)


def policy_from_netns(netns: str, sysctls: list[str] | None = None, kernel: str | None = None) -> Policy:
    """The model of the live namespace ``netns`` (read over netlink, as
    ``snapshot`` reads it), then ``sysctls``; an unreadable namespace is a
    UsageError."""
    from polroute.live.read import read_state
    from polroute.live.snapshot import policy_from_state

    log.info("reading namespace %s over netlink", netns)
    try:
        policy = policy_from_state(read_state(netns))
    except (OSError, RuntimeError) as e:
        if resource_problem(e):
            raise
        raise UsageError(f"--netns {netns}: {e.strerror if isinstance(e, OSError) and e.strerror else e}") from None
    if kernel:
        from polroute.model.kernel_profile import ProfileError

        try:
            policy.set_kernel(kernel)
        except ProfileError as e:
            raise UsageError(f"--kernel: {e}") from None
    _apply_sysctls(policy, sysctls or [])
    return policy


def policy_from(ns: argparse.Namespace, prog=None) -> tuple[Policy, RtTables]:
    """The policy and table names that add_policy_options' options describe
    (``prog``: a Progress to tell; default one of the command's own, shown
    on a terminal unless --quiet)."""
    tables = load_tables(ns.rt_tables)
    if getattr(ns, "netns", None):
        if ns.batch:
            raise UsageError("--netns and --batch exclude each other (the policy is one or the other)")
        return policy_from_netns(ns.netns, getattr(ns, "sysctl", []), getattr(ns, "kernel", None)), tables
    if prog is not None or not ns.batch:
        return build_policy(ns.batch, getattr(ns, "sysctl", []), tables, getattr(ns, "kernel", None), prog), tables
    with progress(getattr(ns, "command_name", "polroute"), getattr(ns, "quiet", False)) as own:
        return build_policy(ns.batch, getattr(ns, "sysctl", []), tables, getattr(ns, "kernel", None), own), tables


def parse(command: Command, argv: list[str]) -> argparse.Namespace:
    """Options may stand anywhere on the line (before, between, after the
    positional words); a command with subcommands parses them in turn."""
    ap = finish_parser(command.parser())
    if ap._subparsers is None:
        return ap.parse_intermixed_args(argv)
    return ap.parse_args(argv)


def invoke(command: Command, argv: list[str], name: str = "") -> int:
    """Parse and run one command: -h/--help exit 0, a bad command line exits
    ``usage_exit``, bad input (a batch file, a usage error, a missing file) 1,
    out of memory or descriptors 1 (``polroute: NAME: out of memory``).
    Under ``--json`` a failure that printed nothing on stdout prints
    ``{"error": MESSAGE, "exit": N}`` there (the message is on stderr too)."""
    try:
        ns = parse(command, argv)
    except SystemExit as e:  # argparse: 0 after --help, 2 after a usage message
        return Exit.OK if e.code in (0, None) else command.usage_exit
    setup_logging(getattr(ns, "verbose", 0) or 0, bool(getattr(ns, "quiet", False)))
    log.debug("polroute %s: %s", name, ns)
    if not getattr(ns, "json", False):
        return _run(command, ns, name)
    out, err = _Watch(sys.stdout), _Watch(sys.stderr)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        rc = _run(command, ns, name)
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
    if rc not in (Exit.OK, Exit.BROKEN_PIPE) and not out.written:
        from polroute.cli.output import error_json

        print(error_json(err.lines or [f"polroute: {ns.command_name}: failed"], rc))
    return rc


class _Watch:
    """A text stream that remembers whether anything was written, and the
    first lines written (a failing command's error lines)."""

    def __init__(self, stream):
        self.stream = stream
        self.written = False
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if text:
            self.written = True
            if len(self.lines) < 100:
                self.lines.extend(line for line in text.strip().splitlines() if line.strip())
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _run(command: Command, ns: argparse.Namespace, name: str) -> int:
    from polroute._core.errors import PolicyError
    from polroute.iproute2.lexer import BatchError

    name = " ".join(x for x in (name, getattr(ns, "cmd", None)) if x) or "polroute"
    ns.command_name = name
    oom = f"polroute: {name}: out of memory\n".encode()  # made now: nothing to allocate then
    try:
        return int(command.run(ns))
    except (BatchError, UsageError) as e:
        print(f"polroute: {e}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        print(f"polroute: {name}: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        raise  # stdout's reader went away: cli/app.py main exits quietly
    except MemoryError:
        problem = "out of memory"  # said below, once the command's frames are gone
    except OSError as e:
        problem = resource_problem(e)
        if not problem:
            if isinstance(e, PolicyError):
                print(f"polroute: {e}", file=sys.stderr)
            else:
                print(f"polroute: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
            return Exit.USAGE
    line = f"polroute: {name}: {problem}"
    say(line, oom if problem == "out of memory" else (line + "\n").encode())
    return Exit.USAGE


def say(line: str, fallback: bytes) -> None:
    """``line`` on stderr; ``fallback`` (bytes made beforehand) written
    directly if printing fails for want of memory."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (MemoryError, OSError):
        with contextlib.suppress(OSError):
            os.write(2, fallback)


# ---- text files (batch and flows files), read as `ip -batch` reads them --------
#
# Bytes, where ``#`` starts a comment anywhere on a line.  A command is UTF-8
# (ASCII in practice: names, addresses, keywords); a comment may be anything
# ``ip`` skips - a Latin-1 comment is read, not refused.  What cannot be a
# command is refused in one message naming the file, the line and the token:
# a byte that is not UTF-8 outside a comment, a NUL byte (binary data: ``ip``
# would stop reading the line there), a UTF-16 or UTF-32 file (its byte-order
# mark names it).  A UTF-8 byte-order mark is skipped.

_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def token_at(line: bytes, pos: int) -> str:
    """The whitespace-separated word of ``line`` around byte ``pos``, as
    Python shows bytes (non-ASCII escaped), at most 40 characters."""
    start = max(line.rfind(b" ", 0, pos), line.rfind(b"\t", 0, pos)) + 1
    ends = [i for i in (line.find(b" ", pos), line.find(b"\t", pos)) if i >= 0]
    word = line[start : min(ends) if ends else len(line)].rstrip(b"\r\n")
    shown = repr(word)[2:-1]
    return shown if len(shown) <= 40 else shown[:37] + "..."


def decode_batch(data: bytes, filename: str) -> str:
    """``data`` (a batch or flows file) as text, or UsageError
    (``FILE:LINE: ...``) for what cannot be read as ``ip`` reads it."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise UsageError(
                f"{filename}: {name} text (it starts with a byte-order mark); `ip -batch` and polroute read "
                f"UTF-8 or ASCII: convert it (iconv -f {name} -t UTF-8)"
            )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\0" not in text:
        return text
    out = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        command, hash_, comment = line.partition(b"#")
        nul = command.find(b"\0")
        if nul >= 0:
            raise UsageError(
                f"{filename}:{lineno}: binary data (a NUL byte) in '{token_at(line, nul)}': not a text file"
            )
        try:
            head = command.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(
                f"{filename}:{lineno}: not UTF-8 text: byte 0x{command[e.start]:02x} in '{token_at(line, e.start)}'"
            ) from None
        # a comment is skipped by ip whatever its bytes are (Latin-1 often)
        out.append(head + hash_.decode() + comment.decode("utf-8", "replace").replace("\0", " "))
    return "\n".join(out)


def read_batch(path: str, label: str | None = None) -> str:
    """The text of the batch or flows file ``path`` (``-``: stdin)."""
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    return decode_batch(data, label or ("<stdin>" if path == "-" else path))
