"""``polroute eval``: a file of ``ip route get`` questions, one answer per line
in order (error answers included).

Exit status: 0 answered, 1 bad input (file, line and token named; nothing is
answered).
"""

from __future__ import annotations

from polroute.cli.common import Command, UsageError, add_json_option, add_policy_options, new_parser, policy_from
from polroute.cli.output import Output

USAGE = "polroute eval [--batch FILE]... [--rt-tables FILE] [--sysctl K=V]... [--kernel P] --flows FILE [--json]"


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
    from polroute.cli.get import print_answer
    from polroute.iproute2.lexer import ParseError, batch_lines, split_args
    from polroute.iproute2.route_get import ask
    from polroute.iproute2.route_get_args import parse_route_get

    if len(ns.flows) != 1:
        raise UsageError("eval needs exactly one --flows FILE")
    policy, tables = policy_from(ns)
    path = ns.flows[0]
    with open(path, encoding="utf-8") as f:
        text = f.read()
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
    out = Output(ns.json)
    for args in questions:
        print_answer(out, policy, ask(policy, args, tables), tables, one_line=True)
    return 0


COMMANDS = {"eval": Command(parser, run)}
