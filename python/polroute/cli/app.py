"""The polroute command line.

    polroute get  [--batch FILE]... [--rt-tables FILE] [--sysctl K=V]... [--kernel P] ARGS [--json] [--explain]
    polroute eval [--batch FILE]... [--rt-tables FILE] [--sysctl K=V]... [--kernel P] --flows FILE [--json]
    polroute show rules|routes [table ID|all] [-4|-6] [--batch FILE]...
    polroute kernel [--json]                  (kernel profiles: --kernel auto|NAME; auto = this kernel)
    polroute snapshot [--netns NS] [-4|-6] [--owned [--owner P]]
                                              (the live state as an ip batch text; needs root)
    polroute plan  --batch DESIRED... [--netns NS] [--owner P] [--prune] [--adopt] [--json]
    polroute apply --batch DESIRED... [--netns NS] [--owner P] [--prune] [--adopt]
                   [--dry-run] [--confirm SECONDS] [--json]
    polroute confirm [--netns NS]             (keep what a waiting `apply --confirm` did)
    polroute demo [--offline|--live]
    polroute audit [--batch FILE]... | [--netns NS] [--json]   (reply symmetry per local address)
    polroute multihome render|discover|apply|check ...         (`polroute multihome --help`)
    polroute bench [--quick] [--plot FILE.png] [--json FILE] [--threads]   (throughput)

`polroute COMMAND --help` describes each.  Options may stand anywhere on the
line; every command takes -v/--verbose and -q/--quiet, and `-` for stdin
wherever it reads a file.  ARGS are exactly `ip route get`'s.  Every failure
is one line on stderr (under --json also `{"error": ..., "exit": N}` on
stdout): out of memory and too many open files are `polroute: COMMAND: out
of memory` / `too many open files`.  Long-running commands show progress on
a terminal after ~2 s (not with --quiet, or when stderr is not a terminal).
The exit status is the same table for every command (below).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys

from polroute.cli.exitcodes import EPILOG, Exit

# The one registry: command -> (its module, one line for `polroute --help`).
# A module is imported only when its command runs (`polroute --help` stays fast);
# each module's COMMANDS maps the command name to its Command (cli/common.py).
COMMANDS: dict[str, tuple[str, str]] = {
    "get": ("polroute.cli.get", "one `ip route get` question asked to the model"),
    "eval": ("polroute.cli.eval", "a file of questions, one answer per line"),
    "show": ("polroute.cli.show", "the model's rules or routes, as `ip rule/route show` print them"),
    "kernel": ("polroute.cli.kernel", "the kernel profiles and the one detected here"),
    "snapshot": ("polroute.cli.snapshot", "the live state as an ip batch text (root)"),
    "plan": ("polroute.cli.provision", "the operations that make a namespace hold the desired state"),
    "apply": ("polroute.cli.provision", "carry the plan out, all or nothing (root)"),
    "confirm": ("polroute.cli.provision", "keep what a waiting `apply --confirm` applied"),
    "recover": ("polroute.cli.provision", "finish an interrupted apply from its journal (undo, or --forward)"),
    "demo": ("polroute.cli.demo", "the two-NIC multi-homed host, offline and (root) live"),
    "audit": ("polroute.cli.audit", "reply symmetry of every local address"),
    "multihome": ("polroute.cli.multihome", "the multi-homed host's source routing: render, discover, apply, check"),
    "bench": ("polroute.cli.bench", "bulk-evaluation throughput on standard workloads"),
    "completion": ("polroute.cli.completion", "shell completion for bash, zsh or tcsh (from the parsers)"),
    "manpage": ("polroute.cli.completion", "the polroute(1) man page (from the parsers)"),
}


def _version() -> str:
    # the package itself is imported already (this module is inside it)
    return sys.modules["polroute"].__version__


def version_text() -> str:
    """`polroute --version`: the package, the C core (the compiled extension
    built from the same source, and its cffi), and the kernel profile that
    `--kernel auto` models here (with the running kernel's release)."""
    import platform

    lines = [f"polroute {_version()}"]
    try:
        import _cffi_backend

        from polroute._core.binding import ffi

        lines.append(f"C core {_version()} (cffi extension, abi3; _cffi_backend {_cffi_backend.__version__})")
        del ffi
    except ImportError as e:
        lines.append(f"C core: not loadable ({e})")
    try:
        from polroute.model.kernel_profile import DEFAULT, detect

        found = detect()
        profile = found.name if found else f"{DEFAULT.name} (default: the running kernel cannot be read)"
        lines.append(f"kernel profile {profile} (kernel {platform.release()})")
    except ImportError:
        pass
    return "\n".join(lines)


class _Version(argparse.Action):
    """--version, read only when asked for (no package metadata at startup)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def parser() -> argparse.ArgumentParser:
    """`polroute [-h] [--version] COMMAND ...` (the commands parse their own options)."""
    commands = "\n".join(f"  {name:10} {summary}" for name, (_, summary) in COMMANDS.items())
    ap = argparse.ArgumentParser(
        prog="polroute",
        usage="polroute [-h] [--version] COMMAND [ARGS...]",
        description=__doc__ + "\ncommands:\n" + commands,
        epilog=EPILOG,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action=_Version, help="print the version and exit")
    return ap


def command(name: str):
    """The Command registered under ``name`` (its module imported now)."""
    module, _ = COMMANDS[name]
    return importlib.import_module(module).COMMANDS[name]


EXIT_BROKEN_PIPE = Exit.BROKEN_PIPE  # 128 + SIGPIPE, the status of a command killed by it


def _stdout_gone() -> None:
    """stdout's reader went away: later writes (and the flush at exit) go to
    /dev/null, so that Python does not complain about it on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _out_of_descriptors() -> bool:
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as e:
        return e.errno in (errno.EMFILE, errno.ENFILE)
    os.close(fd)
    return False


def _bytes_through() -> None:
    """Text that came in as bytes that are not UTF-8 (arguments decoded with
    surrogateescape) goes out as those bytes, never as an encoding error."""
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors=errors)  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    """Run one command line; every failure is one line on stderr (see the
    module text), never a traceback."""
    name, oom = "polroute", b"polroute: out of memory\n"
    _bytes_through()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        if argv and not argv[0].startswith("-"):
            name = f"polroute: {argv[0]}"
            oom = f"{name}: out of memory\n".encode()
        rc = _main(argv)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        problem = "interrupted"
    except MemoryError:
        problem = "out of memory"  # said below, once the frames that hold the memory are gone
    except ImportError as e:  # out of descriptors, Python's import system says "No module named"
        problem = "too many open files" if _out_of_descriptors() else f"broken installation: {e}"
    except OSError as e:
        if e.errno == errno.EPIPE:
            _stdout_gone()
            return EXIT_BROKEN_PIPE
        if e.errno == errno.ENOMEM:
            problem = "out of memory"
        elif e.errno in (errno.EMFILE, errno.ENFILE):
            problem = "too many open files"
        else:
            problem = f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"
    except Exception as e:  # a bug: one line (POLROUTE_DEBUG=1 shows the traceback)
        if os.environ.get("POLROUTE_DEBUG"):
            raise
        problem = f"internal error ({type(e).__name__}: {e}); POLROUTE_DEBUG=1 shows where"
    try:
        from polroute.cli.common import say

        say(f"{name}: {problem}", oom if problem == "out of memory" else f"{name}: {problem}\n".encode())
    except (MemoryError, OSError, ImportError):
        with contextlib.suppress(OSError):
            os.write(2, oom)
    return Exit.INTERRUPTED if problem == "interrupted" else Exit.USAGE


def _main(argv: list[str]) -> int:
    if not argv:
        print(parser().format_help().rstrip())
        return Exit.USAGE
    if argv[0] == "help":  # `polroute help [COMMAND]`
        argv = [argv[1], "--help"] if len(argv) > 1 and argv[1] in COMMANDS else ["--help"]
    if argv[0].startswith("-"):
        try:
            parser().parse_args(argv)
        except SystemExit as e:
            return Exit.OK if e.code in (0, None) else Exit.USAGE
        print(parser().format_help().rstrip())
        return Exit.USAGE
    if argv[0] not in COMMANDS:
        print(f"polroute: unknown command {argv[0]!r}\n\n{parser().format_help().rstrip()}", file=sys.stderr)
        return Exit.USAGE
    from polroute.cli.common import invoke

    return invoke(command(argv[0]), argv[1:], argv[0])


if __name__ == "__main__":
    sys.exit(main())
