"""The exit status of every polroute command: one table, the same for all.

The table is printed at the end of every ``--help`` (``EPILOG``) and in the
README; ``tests/py/test_cli_exit_codes.py`` runs every command and checks it
exits only with a code listed here.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """An exit status; the value is what the process returns."""

    #: done: answered, printed, applied; audit: every reply symmetric
    OK = 0
    #: a bad command line or bad input (file, line and token named), a conflict
    #: with the live state, a missing or unreadable file or namespace, out of
    #: memory or descriptors before anything changed; nothing was changed
    USAGE = 1
    #: an error answer: `get` printed the kernel's error (RTNETLINK answers: ...);
    #: `apply` had a request refused by the kernel (or ran out of memory after
    #: sending) and undid everything
    ERROR_ANSWER = 2
    #: rolled back: `apply --confirm` was not confirmed in time; everything undone
    ROLLED_BACK = 3
    #: partial failure: an undo (or `recover`) could not restore everything;
    #: the report lists what differs from before
    PARTIAL = 4
    #: `audit`: at least one asymmetric reply (or one the model cannot answer)
    ASYMMETRIC = 5
    #: interrupted (Ctrl-C, SIGINT)
    INTERRUPTED = 130
    #: stdout's reader went away (a broken pipe, SIGPIPE): nothing said
    BROKEN_PIPE = 141


#: one line per code, as --help and the README print them
MEANING: dict[Exit, str] = {
    Exit.OK: "done (answered, printed, applied; audit: all replies symmetric)",
    Exit.USAGE: "bad command line or input (named), conflict, missing file or namespace; nothing changed",
    Exit.ERROR_ANSWER: "an error answer (get: RTNETLINK answers ...; apply: refused by the kernel, undone)",
    Exit.ROLLED_BACK: "rolled back: apply --confirm not confirmed in time (everything undone)",
    Exit.PARTIAL: "partial failure: the undo or recover could not restore everything",
    Exit.ASYMMETRIC: "audit: an asymmetric reply found (or one the model cannot answer)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
    Exit.BROKEN_PIPE: "the output's reader went away (broken pipe), quietly",
}

#: every documented code
DOCUMENTED: frozenset[int] = frozenset(int(c) for c in Exit)


def table(indent: str = "  ") -> str:
    """The exit-status table as --help prints it."""
    return "\n".join(f"{indent}{int(code):>3}  {text}" for code, text in MEANING.items())


EPILOG = "exit status (the same for every command):\n" + table()

__all__ = ["Exit", "MEANING", "DOCUMENTED", "table", "EPILOG"]
