"""``polroute eval``: a file of ``ip route get`` questions, one answer per line
in order (error answers included).

Exit status: 0 answered, 1 bad input (file, line and token named; nothing is
answered), or out of memory / too many open files (one line).
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
    ap.add_argument("--flows", action="append", default=[], metavar="FILE", help="the questions (required)")
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
        questions = _questions(read_batch(path), path, policy, tables)
        prog.phase("asking", len(questions))
        answers = []
        for i, args in enumerate(questions, 1):
            answers.append(ask(policy, args, tables))
            if not i % 1024:
                prog.advance(1024)
    out = Output(ns.json)
    for result in answers:
        print_answer(out, policy, result, tables, one_line=True)
    return 0


def _questions(text: str, path: str, policy, tables) -> list:
    from polroute.iproute2.lexer import ParseError, batch_lines, split_args
    from polroute.iproute2.route_get_args import parse_route_get

    questions = []
    for lineno, line in batch_lines(text):
        words = split_args(line)
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
        questions.append(args)
    return questions


COMMANDS = {"eval": Command(parser, run)}
