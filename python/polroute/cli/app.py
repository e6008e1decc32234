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
    polroute demo
    polroute audit [--batch FILE]... | [--netns NS] [--json]   (reply symmetry per local address)
    polroute multihome render|discover|apply ...               (`polroute multihome --help`)
    polroute bench [--quick] [--plot FILE.png] [--json FILE] [--threads]   (throughput; bench.py)

ARGS are exactly `ip route get`'s.  Exit status: 0 answered, 2 the question
got an error answer (as `ip` prints it), 1 bad input (file, line and token
named, nothing applied).
"""

from __future__ import annotations

import json
import sys

from polroute._core.errors import PolicyError
from polroute.cli import provision as provision_cli
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.lexer import BatchError, ParseError, batch_lines, split_args
from polroute.iproute2.route_get import ask, explain_text, to_json, to_text
from polroute.iproute2.route_get_args import parse_route_get
from polroute.iproute2.rt_tables import RtTables, load_rt_tables
from polroute.model.kernel_profile import DEFAULT as DEFAULT_PROFILE
from polroute.model.kernel_profile import PROFILES, ProfileError
from polroute.model.kernel_profile import detect as detect_profile
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET, AF_INET6

USAGE = __doc__


class UsageError(Exception):
    pass


def _take_options(argv: list[str], with_value: set[str], flags: set[str]):
    """Pull --options out of argv wherever they stand; the rest are ARGS."""
    opts: dict[str, list[str]] = {k: [] for k in with_value}
    seen = {k: False for k in flags}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in with_value:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{key} needs a value")
                val = argv[i + 1]
                i += 1
            opts[key].append(val)
        elif a in flags:
            seen[a] = True
        elif a.startswith("--"):
            raise UsageError(f"unknown option {a!r}")
        else:
            rest.append(a)
        i += 1
    return opts, seen, rest


def build_policy(batches: list[str], sysctls: list[str], tables: RtTables, kernel: list[str] | None = None) -> Policy:
    """A fresh namespace (modelling the kernel build named by the last --kernel,
    default auto) with the batch files applied, then the sysctls."""
    try:
        policy = Policy(kernel=kernel[-1] if kernel else "auto")
    except ProfileError as e:
        raise UsageError(f"--kernel: {e}") from None
    for path in batches:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        apply_batch(policy, text, path, tables)
    for item in sysctls:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--sysctl {item!r}: expected KEY=VALUE")
        try:
            policy.sysctl(key.strip(), int(value.strip(), 0))
        except ValueError:
            raise UsageError(f"--sysctl {item!r}: value is not an integer") from None
        except PolicyError as e:
            raise UsageError(f"--sysctl {item!r}: {'unknown key' if e.errno == 2 else e.strerror}") from None
    return policy


def _print_answer(policy: Policy, result, tables: RtTables, as_json: bool, explain: bool, one_line: bool):
    if as_json:
        print(json.dumps(to_json(result, tables), separators=(",", ":")))
    else:
        text = to_text(result, tables)
        if one_line:
            text = " ".join(part.strip() for part in text.split("\n")).strip()
        if result.error:
            print(text, file=sys.stderr if not one_line else sys.stdout)
        else:
            print(text)
    if explain:
        print(explain_text(policy, result, tables))


def cmd_get(argv: list[str]) -> int:
    opts, flags, rest = _take_options(argv, {"--batch", "--rt-tables", "--sysctl", "--kernel"}, {"--json", "--explain"})
    tables = load_rt_tables(opts["--rt-tables"][-1] if opts["--rt-tables"] else None, use_system=False)
    policy = build_policy(opts["--batch"], opts["--sysctl"], tables, opts["--kernel"])
    if not rest:
        raise UsageError("get needs an address (the arguments of `ip route get`)")
    try:
        args = parse_route_get(rest, tables)
    except ParseError as e:
        raise UsageError(f"get: {e}") from None
    try:
        result = ask(policy, args, tables, explain=flags["--explain"])
    except PolicyError as e:
        # an unknown iif/oif: ip itself refuses before asking the kernel
        msg = e.context or e.iproute2_text()
        if flags["--json"]:
            print(json.dumps({"error": msg, "errno": e.errno_name}))
        else:
            print(msg, file=sys.stderr)
        return 1
    _print_answer(policy, result, tables, flags["--json"], flags["--explain"], one_line=False)
    return 2 if result.error else 0


def cmd_eval(argv: list[str]) -> int:
    opts, flags, rest = _take_options(argv, {"--batch", "--rt-tables", "--sysctl", "--kernel", "--flows"}, {"--json"})
    if rest:
        raise UsageError(f"eval: unexpected argument {rest[0]!r}")
    if len(opts["--flows"]) != 1:
        raise UsageError("eval needs exactly one --flows FILE")
    tables = load_rt_tables(opts["--rt-tables"][-1] if opts["--rt-tables"] else None, use_system=False)
    policy = build_policy(opts["--batch"], opts["--sysctl"], tables, opts["--kernel"])
    path = opts["--flows"][0]
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
    for args in questions:
        _print_answer(policy, ask(policy, args, tables), tables, flags["--json"], False, one_line=True)
    return 0


def cmd_show(argv: list[str]) -> int:
    from polroute.iproute2.show import format_routes, format_rules

    opts, flags, rest = _take_options(argv, {"--batch", "--rt-tables", "--sysctl", "--kernel"}, {"-4", "-6"})
    tables = load_rt_tables(opts["--rt-tables"][-1] if opts["--rt-tables"] else None, use_system=False)
    policy = build_policy(opts["--batch"], opts["--sysctl"], tables, opts["--kernel"])
    family = AF_INET6 if flags["-6"] else AF_INET
    if not rest or rest[0] not in ("rules", "routes", "rule", "route"):
        raise UsageError("show rules|routes [table ID|all]")
    names = {link.ifindex: link.name for link in policy.links()}
    ifname = lambda i: names.get(i, f"if{i}")  # noqa: E731
    if rest[0].startswith("rule"):
        if len(rest) > 1:
            raise UsageError(f"show rules: unexpected argument {rest[1]!r}")
        lines = format_rules(policy.rules(family), tables)
    else:
        table_filter: object | None = None
        if len(rest) >= 3 and rest[1] in ("table", "tab"):
            table_filter = rest[2]
        elif len(rest) > 1:
            raise UsageError(f"show routes: unexpected argument {rest[1]!r}")
        lines = format_routes(policy.routes(family), tables, ifname, table_filter)
    for line in lines:
        print(line)
    return 0


def cmd_snapshot(argv: list[str]) -> int:
    """polroute snapshot [--netns NS] [-4|-6]: the live state as an ip batch text."""
    from polroute.live.state import read_state, snapshot_text

    opts, flags, rest = _take_options(argv, {"--netns", "--owner"}, {"-4", "-6", "--owned"})
    if rest:
        raise UsageError(f"snapshot: unexpected argument {rest[0]!r}")
    if opts["--owner"] and not flags["--owned"]:
        raise UsageError("snapshot: --owner goes with --owned")
    if flags["-4"] and flags["-6"]:
        raise UsageError("snapshot: -4 and -6 exclude each other (neither: both families)")
    family = AF_INET if flags["-4"] else AF_INET6 if flags["-6"] else None
    try:
        state = read_state(
            opts["--netns"][-1] if opts["--netns"] else None, families=(family,) if family else (AF_INET, AF_INET6)
        )
    except (OSError, RuntimeError) as e:
        print(f"polroute: snapshot: {e.strerror if isinstance(e, OSError) and e.strerror else e}", file=sys.stderr)
        return 1
    if flags["--owned"]:
        # only what the owner protocol marks, as a desired-state file for plan/apply
        from polroute.live.provision import owned_text

        try:
            owner = provision_cli.owner_protocol(opts["--owner"][-1] if opts["--owner"] else None)
        except provision_cli.UsageProblem as e:
            raise UsageError(f"snapshot: {e}") from None
        sys.stdout.write(owned_text(state, owner))
        return 0
    sys.stdout.write(snapshot_text(state, family))
    return 0


def cmd_kernel(argv: list[str]) -> int:
    """polroute kernel [--json]: the kernel profiles and the one detected here."""
    _, flags, rest = _take_options(argv, set(), {"--json"})
    if rest:
        raise UsageError(f"kernel: unexpected argument {rest[0]!r}")
    found = detect_profile()
    if flags["--json"]:
        print(
            json.dumps(
                {
                    "detected": found.name if found else None,
                    "source": found.source if found else None,
                    "profiles": [
                        {"name": p.name, "ipv6_mroute": p.ipv6_mroute, "description": p.description}
                        for p in PROFILES.values()
                    ],
                }
            )
        )
        return 0
    for p in PROFILES.values():
        mark = "*" if found and found.name == p.name else " "
        print(f"{mark} {p.name:16} {p.description}")
    if found:
        print(f"running kernel: {found.name} (read from {found.source}); --kernel auto uses it")
    else:
        print(f"running kernel: cannot be read; --kernel auto uses {DEFAULT_PROFILE.name}")
    return 0


def cmd_demo(argv: list[str]) -> int:
    from polroute.cli.demo import run_demo

    return run_demo(argv)


COMMANDS = {
    "get": cmd_get,
    "eval": cmd_eval,
    "show": cmd_show,
    "demo": cmd_demo,
    "snapshot": cmd_snapshot,
    "kernel": cmd_kernel,
}
COMMANDS.update(provision_cli.COMMANDS)
COMMANDS["audit"] = lambda argv: __import__("polroute.audit", fromlist=["main"]).main(argv)
COMMANDS["multihome"] = lambda argv: __import__("polroute.cli.multihome", fromlist=["main"]).main(argv)
COMMANDS["bench"] = lambda argv: __import__("polroute.cli.bench", fromlist=["run"]).run(argv)  # bench.py


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0 if argv else 1
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"polroute: unknown command {argv[0]!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 1
    try:
        return cmd(argv[1:])
    except BatchError as e:
        print(f"polroute: {e}", file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"polroute: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if isinstance(e, PolicyError):
            print(f"polroute: {e}", file=sys.stderr)
        else:
            print(f"polroute: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
