"""``polroute plan``, ``polroute apply`` and ``polroute confirm``: the command
line of :mod:`polroute.live.provision`.

Exit status: 0 done (plan: printed), 1 bad input or a conflict (nothing sent),
2 the kernel refused an operation (everything undone), 3 not confirmed in
time (everything undone), 4 the undo itself failed (the report lists what
differs from before).
"""

from __future__ import annotations

import json
import sys
import time

from polroute.iproute2.rt_tables import RtTables, load_rt_tables
from polroute.live.apply import apply, confirm
from polroute.live.desired import DEFAULT_OWNER_PROTO, DesiredStateError
from polroute.live.plan import plan

EXIT_OK, EXIT_INPUT, EXIT_REFUSED, EXIT_UNCONFIRMED, EXIT_UNDO_FAILED = 0, 1, 2, 3, 4


class UsageProblem(Exception):
    pass


def _parse(argv: list[str], cmd: str, value_opts: set[str], flag_opts: set[str]):
    from polroute.cli.app import UsageError, _take_options

    try:
        opts, flags, rest = _take_options(argv, value_opts, flag_opts)
    except UsageError as e:
        raise UsageProblem(f"{cmd}: {e}") from None
    if rest:
        raise UsageProblem(f"{cmd}: unexpected argument {rest[0]!r}")
    return opts, flags


def owner_protocol(value: str | None, tables: RtTables | None = None) -> int:
    """--owner's value: a number or an rt_protos name (4..255)."""
    if tables is None:
        tables = load_rt_tables(None)
    if value is None:
        return DEFAULT_OWNER_PROTO
    try:
        n = int(value, 0)
    except ValueError:
        try:
            n = tables.protos.id(value)
        except (KeyError, ValueError):
            raise UsageProblem(f"--owner: unknown protocol {value!r}") from None
    if not 4 <= n <= 255:
        raise UsageProblem(
            f"--owner {value}: the owner protocol must be 4..255 (0-3 are the kernel's "
            "and plain `ip route add`'s: polroute would take every such route for its own)"
        )
    return n


def _plan_from(opts, flags):
    # the live host's names (/etc/iproute2), as `ip` on it would read them
    tables = load_rt_tables(opts["--rt-tables"][-1] if opts["--rt-tables"] else None)
    owner = owner_protocol(opts["--owner"][-1] if opts["--owner"] else None, tables)
    paths = opts["--batch"]
    if not paths:
        raise UsageProblem("--batch FILE is required (the desired state; - for stdin)")
    netns = opts["--netns"][-1] if opts["--netns"] else None
    # one text, but every line keeps its own FILE:LINE in messages
    from polroute.live.desired import Desired, parse_desired
    from polroute.live.read import read_state

    t0 = time.perf_counter()
    state = read_state(netns, sysctls=False)
    read_s = time.perf_counter() - t0
    desired = Desired()
    errors: list[str] = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        try:
            d = parse_desired(text, state, filename="<stdin>" if path == "-" else path, owner=owner, tables=tables)
        except DesiredStateError as e:
            errors += e.errors
            continue
        desired.rules += d.rules
        desired.routes += d.routes
    if errors:
        raise DesiredStateError(errors)
    p = plan(desired, netns, owner=owner, prune=flags["--prune"], adopt=flags["--adopt"], state=state)
    p.seconds["read"] = read_s  # read here, before parsing, not inside plan()
    return p


_VALUE_OPTS = {"--batch", "--netns", "--owner", "--rt-tables"}
_FLAGS = {"--prune", "--adopt", "--json"}


def _plan_json(p) -> dict:
    return {
        "netns": p.netns,
        "owner": p.owner,
        "unchanged": p.unchanged,
        "counts": p.counts(),
        "ops": [{"phase": op.phase, "verb": op.verb, "kind": op.kind, "text": op.text, "why": op.why} for op in p.ops],
        "notes": p.notes,
    }


def _errors_out(cmd: str, e: Exception) -> int:
    if isinstance(e, DesiredStateError):
        for line in e.errors:
            print(f"polroute: {line}", file=sys.stderr)
        print(f"polroute: {cmd}: nothing was changed", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, UsageProblem):
        print(f"polroute: {e}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, OSError):
        print(f"polroute: {cmd}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return EXIT_INPUT
    print(f"polroute: {cmd}: {e}", file=sys.stderr)
    return EXIT_INPUT


def cmd_plan(argv: list[str]) -> int:
    """polroute plan --batch FILE... [--netns NS] [--owner P] [--prune] [--adopt] [--json]"""
    try:
        opts, flags = _parse(argv, "plan", _VALUE_OPTS, _FLAGS)
        p = _plan_from(opts, flags)
    except (DesiredStateError, UsageProblem, OSError, RuntimeError) as e:
        return _errors_out("plan", e)
    if flags["--json"]:
        print(json.dumps(_plan_json(p), indent=1))
    else:
        sys.stdout.write(p.text())
    return EXIT_OK


def cmd_apply(argv: list[str]) -> int:
    """polroute apply --batch FILE... [--netns NS] [--owner P] [--prune] [--adopt]
    [--dry-run] [--confirm SECONDS] [--json]"""
    try:
        opts, flags = _parse(argv, "apply", _VALUE_OPTS | {"--confirm"}, _FLAGS | {"--dry-run"})
        seconds = None
        if opts["--confirm"]:
            try:
                seconds = float(opts["--confirm"][-1])
            except ValueError:
                raise UsageProblem(f"--confirm {opts['--confirm'][-1]!r}: seconds expected") from None
            if seconds <= 0:
                raise UsageProblem("--confirm needs a positive number of seconds")
        p = _plan_from(opts, flags)
        if seconds is not None and p.ops:
            print(
                f"applying {p.summary()}; keep it by answering 'yes' here or running "
                f"`polroute confirm{' --netns ' + p.netns if p.netns else ''}` within "
                f"{seconds:g} s, otherwise it is rolled back",
                file=sys.stderr,
            )
        rep = apply(p, dry_run=flags["--dry-run"], confirm_seconds=seconds)
    except (DesiredStateError, UsageProblem, OSError, RuntimeError) as e:
        return _errors_out("apply", e)
    if flags["--json"]:
        out = {
            "ok": rep.ok,
            "dry_run": rep.dry_run,
            "plan": _plan_json(p),
            "applied": rep.applied,
            "confirmed": rep.confirmed,
            "failures": [
                {"text": f.op.text, "why": f.op.why, "errno": f.outcome.error, "message": f.outcome.iproute2_text()}
                for f in rep.failures
            ],
            "rolled_back": rep.rolled_back,
            "restored": rep.restored,
            "leftover": rep.leftover,
            "seconds": rep.seconds,
        }
        print(json.dumps(out, indent=1))
    else:
        if flags["--dry-run"]:
            sys.stdout.write(p.text())
        (sys.stdout if rep.ok else sys.stderr).write(rep.text())
    if rep.ok:
        return EXIT_OK
    if rep.rolled_back and rep.restored is False:
        return EXIT_UNDO_FAILED
    if rep.confirmed is False:
        return EXIT_UNCONFIRMED
    return EXIT_REFUSED


def cmd_confirm(argv: list[str]) -> int:
    """polroute confirm [--netns NS]: keep what a waiting `apply --confirm` applied."""
    try:
        opts, _ = _parse(argv, "confirm", {"--netns"}, set())
    except UsageProblem as e:
        return _errors_out("confirm", e)
    netns = opts["--netns"][-1] if opts["--netns"] else None
    if confirm(netns):
        print("confirmed")
        return EXIT_OK
    print(
        "polroute: confirm: no apply is waiting for confirmation" + (f" in namespace {netns}" if netns else ""),
        file=sys.stderr,
    )
    return EXIT_INPUT


COMMANDS = {"plan": cmd_plan, "apply": cmd_apply, "confirm": cmd_confirm}
