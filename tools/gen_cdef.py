#!/usr/bin/env python3
"""Extract the cffi cdef from csrc/polroute.h.

Usage: gen_cdef.py HEADER OUTPUT

Keeps the text between the lines ``/* cdef-begin */`` and ``/* cdef-end */``
and drops preprocessor lines (those whose first non-blank character is ``#``,
together with their backslash continuation lines).  CMake runs this at build
time; the result feeds ``python -m cffi.gen_src``.
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN = "/* cdef-begin */"
END = "/* cdef-end */"


def extract(text: str, source: str = "<header>") -> str:
    lines = text.splitlines()
    stripped = [ln.strip() for ln in lines]
    try:
        start = stripped.index(BEGIN)
    except ValueError:
        raise SystemExit(f"gen_cdef: {source}: no line {BEGIN!r}") from None
    try:
        stop = stripped.index(END, start + 1)
    except ValueError:
        raise SystemExit(f"gen_cdef: {source}: no line {END!r} after {BEGIN!r}") from None
    if stripped.count(BEGIN) != 1 or stripped.count(END) != 1:
        raise SystemExit(f"gen_cdef: {source}: the cdef markers must appear exactly once")

    out: list[str] = []
    continuing = False
    for ln in lines[start + 1 : stop]:
        if continuing or ln.lstrip().startswith("#"):
            continuing = ln.rstrip().endswith("\\")
            continue
        out.append(ln)
    return "\n".join(out).strip("\n") + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    header, output = Path(argv[1]), Path(argv[2])
    cdef = extract(header.read_text(encoding="utf-8"), str(header))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        f"/* generated from {header.name} by tools/gen_cdef.py: do not edit */\n" + cdef, encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
