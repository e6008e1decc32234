"""``ip -batch`` text -> commands -> words, and the two errors the reader raises.

What ip.c's batch loop does with getcmdline() (comments, backslash
continuations) and lib/utils.c makeargs() (whitespace, quotes), iproute2 v6.1.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# a word of a line without quotes: a run of anything but makeargs' whitespace
_WORD = re.compile(r"[^ \t\r\n]+")


class ParseError(ValueError):
    """A command line ``ip`` would refuse before sending anything; the
    message names the offending token."""


class BatchError(Exception):
    """First failing line of a batch: ``FILE:LINE: message``.

    ``cause`` is the ParseError or PolicyError behind it; for a request the
    model refused, ``message`` is what ip prints (``RTNETLINK answers: ...``
    or ``Error: ....``).
    """

    def __init__(self, filename: str, lineno: int, message: str, line: str = "", cause: BaseException | None = None):
        super().__init__(f"{filename}:{lineno}: {message}")
        self.filename = filename
        self.lineno = lineno
        self.message = message
        self.line = line
        self.cause = cause


def split_args(line: str) -> list[str]:
    """makeargs(): whitespace separated words; a word starting with ' or "
    runs to the matching quote."""
    if "'" not in line and '"' not in line:
        return _WORD.findall(line)  # what _split_quoted gives such a line, ~8x faster
    return _split_quoted(line)


def _split_quoted(line: str) -> list[str]:
    """makeargs() character by character (the reference for split_args)."""
    ws = " \t\r\n"
    args, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] in ws:
            i += 1
        if i >= n:
            break
        if line[i] in "'\"":
            quote = line[i]
            end = line.find(quote, i + 1)
            if end < 0:
                raise ParseError("Unterminated quoted string")
            args.append(line[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and line[j] not in ws:
                j += 1
            args.append(line[i:j])
            i = j + 1
    return args


def batch_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, command text) per command of a batch.

    As getcmdline(): '#' starts a comment anywhere on a line, a backslash
    before the newline continues the command on the next line; empty
    commands are skipped.
    """
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start = i
        cur = lines[i].split("#", 1)[0] if "#" in lines[i] else lines[i]
        raw = lines[i]
        while cur.endswith("\\") and "#" not in raw and i + 1 < len(lines):
            i += 1
            raw = lines[i]
            nxt = raw.split("#", 1)[0]
            cur = cur[:-1] + nxt
        i += 1
        if cur.strip(" \t\r\n"):
            yield start + 1, cur.strip()
