"""``polroute eval``: a file of ``ip route get`` questions, one answer per line
in order (error answers included).

One output line per input line, so that `paste flows.txt answers.txt` lines
them up: a question's line gets its answer (as `ip route get` prints it, on
one line; an error answer as `RTNETLINK answers: ...`); a comment line or a
blank line is printed as it is (--json: `null`); a question continued over N
lines with a backslash gets its answer and N-1 empty lines (--json: `null`).
--echo prints the question first, then a tab, then the answer (--json: a
"question" key inside the answer's object).  --json prints one JSON value
per line (JSON Lines): the answer as `polroute get --json` prints it
(schema docs/schemas/eval-line.json).

Exit status (the table below): 0 answered (error answers included), 1 bad
input (file, line and token named; nothing is answered), or out of memory /
too many open files (one line).
"""

from __future__ import annotations

from polroute.cli.common import (
    Command,
    UsageError,
    add_json_option,
    add_policy_options,
    new_parser,
    policy_from,
    progress,
)
from polroute.cli.exitcodes import Exit
from polroute.cli.output import Output

USAGE = (
    "polroute eval [--batch FILE]... [--rt-tables FILE] [--sysctl K=V]... [--kernel P] --flows FILE [--json]\n"
    "                     [--quiet]"
)


def parser():
    ap = new_parser(
        "eval",
        "Every question of a flows file (one `ip route get` ARGS per line, `ip route get` optional) "
        "asked to the model; one answer per line, in order.",
        usage=USAGE,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument(
        "--flows", action="append", default=[], metavar="FILE", help="the questions (required; - for stdin)"
    )
    ap.add_argument("--echo", action="store_true", help="print each question before its answer (a tab between)")
    add_policy_options(ap)
    add_json_option(ap, "one `ip -j route get` answer per line")
    return ap


def run(ns) -> int:
    from polroute.cli.common import read_batch
    from polroute.cli.get import print_answer
    from polroute.iproute2.route_get import ask

    if len(ns.flows) != 1:
        raise UsageError("eval needs exactly one --flows FILE")
    with progress("eval", ns.quiet) as prog:
        policy, tables = policy_from(ns, prog)
        path = ns.flows[0]
        prog.phase(f"reading {path}")
        text = read_batch(path)
        questions = _questions(text, path, policy, tables)
        prog.phase("asking", len(questions))
        answers = {}
        for i, (lineno, args, _, _) in enumerate(questions, 1):
            answers[lineno] = ask(policy, args, tables)
            if not i % 1024:
                prog.advance(1024)
    out = Output(ns.json)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no line
    asked = {lineno: (n, question) for lineno, _, question, n in questions}
    skip = 0
    for lineno, line in enumerate(lines, 1):
        if lineno in asked:
            n, question = asked[lineno]
            print_answer(out, policy, answers[lineno], tables, one_line=True, question=question if ns.echo else None)
            skip = n - 1
        elif skip:
            skip -= 1
            print("null" if out.as_json else "")
        else:
            print("null" if out.as_json else line.rstrip("\r"))
    return Exit.OK


def _questions(text: str, path: str, policy, tables) -> list:
    """(first line, GetArgs, the question's text, lines it spans) per
    question of a flows file, or UsageError naming the file and line."""
    from polroute.iproute2.lexer import ParseError, batch_lines, split_args
    from polroute.iproute2.route_get_args import parse_route_get

    questions = []
    raw = text.split("\n")
    for lineno, line in batch_lines(text):
        try:
            words = split_args(line)
        except ParseError as e:
            raise UsageError(f"{path}:{lineno}: {e}") from None
        if not words:
            continue
        if words[:3] == ["ip", "route", "get"]:
            words = words[3:]
        try:
            args = parse_route_get(words, tables)
            for name in (args.iif, args.oif):
                if name and not policy.has_link(name):
                    raise ParseError(f'Cannot find device "{name}"')
        except ParseError as e:
            raise UsageError(f"{path}:{lineno}: {e}") from None
        # the question as written, over the lines it spans (a backslash continues it)
        end = lineno
        while raw[end - 1].split("#", 1)[0].endswith("\\") and "#" not in raw[end - 1] and end < len(raw):
            end += 1
        questions.append((lineno, args, " ".join(line.split()), end - lineno + 1))
    return questions


COMMANDS = {"eval": Command(parser, run)}
