"""``polroute get``: one ``ip route get`` question asked to the model.

--json prints what `ip -j route get` prints, an array of one object
(schema docs/schemas/get.json); an error answer is the object
{"error": TEXT, "errno": NAME}; --explain puts the rule walk inside the
object, as "explain": [{"rule": ..., "verdict": ...}, ...].

Exit status (the table below): 0 answered, 2 the question got an error
answer (printed as `ip` prints it), 1 bad input (file, line and token named).
"""

from __future__ import annotations

import sys

from polroute.cli.common import Command, UsageError, add_json_option, add_policy_options, new_parser, policy_from
from polroute.cli.exitcodes import Exit
from polroute.cli.output import COMPACT, LINE, Output

USAGE = "polroute get [--batch FILE]... [--rt-tables FILE] [--sysctl K=V]... [--kernel P] ARGS [--json] [--explain]"


def parser():
    ap = new_parser(
        "get",
        "One `ip route get` question asked to the model; the answer printed as `ip` prints it.",
        usage=USAGE,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument(
        "args", nargs="*", metavar="ARGS", help="exactly the arguments of `ip route get` (to, from, iif...)"
    )
    add_policy_options(ap)
    add_json_option(ap, "the answer as `ip -j route get` prints it")
    ap.add_argument("--explain", action="store_true", help="the rule walk behind the answer")
    return ap


def answer_json(policy, result, tables, explain: bool = False, question: str | None = None):
    """An answer as `ip -j route get` prints it: ``[{...}]``; an error
    answer as ``{"error": ..., "errno": ...}``; the rule walk (``explain``)
    and the question asked (``question``) inside the object."""
    from polroute.iproute2.route_get import explain_rows, to_json

    obj = to_json(result, tables)
    if question is not None:
        obj = {"question": question, **obj}
    if explain:
        obj["explain"] = explain_rows(policy, result, tables)
    return obj if result.error else [obj]


def print_answer(
    out: Output, policy, result, tables, explain: bool = False, one_line: bool = False, question: str | None = None
) -> None:
    """An answer as `ip route get` prints it (one_line: as `eval` prints it,
    after the question and a tab if ``question``), or its JSON; ``explain``
    adds the rule walk."""
    from polroute.iproute2.route_get import explain_text, to_text

    if out.as_json:
        out.json(answer_json(policy, result, tables, explain, question), COMPACT)
        return
    text = to_text(result, tables)
    if one_line:
        text = " ".join(part.strip() for part in text.split("\n")).strip()
        if question is not None:
            text = f"{question}\t{text}"
    if result.error:
        print(text, file=sys.stderr if not one_line else sys.stdout)
    else:
        print(text)
    if explain:
        print(explain_text(policy, result, tables))


def run(ns) -> int:
    from polroute._core.errors import PolicyError
    from polroute.iproute2.lexer import ParseError
    from polroute.iproute2.route_get import ask
    from polroute.iproute2.route_get_args import parse_route_get

    out = Output(ns.json)
    policy, tables = policy_from(ns)
    if not ns.args:
        raise UsageError("get needs an address (the arguments of `ip route get`)")
    try:
        args = parse_route_get(ns.args, tables)
    except ParseError as e:
        raise UsageError(f"get: {e}") from None
    try:
        result = ask(policy, args, tables, explain=ns.explain)
    except PolicyError as e:
        # an unknown iif/oif: ip itself refuses before asking the kernel
        msg = e.context or e.iproute2_text()
        if out.as_json:
            out.json({"error": msg, "errno": e.errno_name}, LINE)
        else:
            out.error(msg, prefix="")
        return Exit.USAGE
    print_answer(out, policy, result, tables, ns.explain)
    return Exit.ERROR_ANSWER if result.error else Exit.OK


COMMANDS = {"get": Command(parser, run)}
