"""The one output layer: a command's answer as text or, with ``--json``, as
JSON on stdout; errors on stderr.

JSON comes in three shapes, each kept byte for byte as the command has always
printed it: ``COMPACT`` (one line, no spaces: ``get``/``eval`` answers, one per
line), ``LINE`` (one line, ``json.dumps``' spacing) and ``INDENTED`` (indent 1:
``plan``, ``apply``, ``audit`` reports).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

COMPACT = "compact"
LINE = "line"
INDENTED = "indented"
_DUMPS = {COMPACT: {"separators": (",", ":")}, LINE: {}, INDENTED: {"indent": 1}}


def dumps(data: Any, style: str = LINE) -> str:
    """``data`` as JSON text in one of the shapes above."""
    return json.dumps(data, **_DUMPS[style])


def error_json(lines: list[str], code: int) -> str:
    """A failure under ``--json``: ``{"error": FIRST LINE, "exit": CODE}``
    plus ``"messages"`` (every line) when the command said more than one
    (schema ``docs/schemas/error.json``); lines without ``polroute: ``."""
    said = [line[len("polroute: ") :] if line.startswith("polroute: ") else line for line in lines]
    data: dict[str, Any] = {"error": said[0], "exit": int(code)}
    if len(said) > 1:
        data["messages"] = said
    return dumps(data, LINE)


class Output:
    """Where one command prints: ``as_json`` (its --json) picks the shape."""

    def __init__(self, as_json: bool = False, style: str = LINE):
        self.as_json = as_json
        self.style = style

    def json(self, data: Any, style: str | None = None) -> None:
        print(dumps(data, style or self.style))

    def text(self, text: str) -> None:
        """Text printed as is (a trailing newline is the caller's)."""
        sys.stdout.write(text)

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            print(line)

    def emit(self, data: Any | Callable[[], Any], text: str | Callable[[], str]) -> None:
        """The answer: ``data`` as JSON with --json, else ``text`` plus a newline
        (either may be a function, so that only the shape printed is built)."""
        if self.as_json:
            self.json(data() if callable(data) else data)
        else:
            print(text() if callable(text) else text)

    @staticmethod
    def error(message: str, prefix: str = "polroute: ") -> None:
        print(f"{prefix}{message}", file=sys.stderr)
