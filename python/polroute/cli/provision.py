"""``polroute plan``, ``polroute apply`` and ``polroute confirm``: the command
line of :mod:`polroute.live.plan` and :mod:`polroute.live.apply`.

Exit status: 0 done (plan: printed; --dry-run: the plan and "dry run: would
apply ..."), 1 bad input or a conflict (nothing sent), 2 the kernel refused
an operation, or the apply ran out of memory or descriptors after sending
(everything undone), 3 not confirmed in time (everything undone), 4 the undo
itself failed (the report lists what differs from before).  Out of memory or
too many open files before anything was sent: one line, exit 1.
"""

from __future__ import annotations

import math
import sys
import time

from polroute.cli.common import (
    Command,
    UsageError,
    add_json_option,
    add_quiet_option,
    load_tables,
    new_parser,
    progress,
    resource_problem,
)
from polroute.cli.exitcodes import Exit
from polroute.cli.output import INDENTED, Output
from polroute.iproute2.rt_tables import RtTables, load_rt_tables
from polroute.live import journal, session
from polroute.live.apply import apply, confirm
from polroute.live.desired import DEFAULT_OWNER_PROTO, DesiredStateError
from polroute.live.netns import netns_id
from polroute.live.ops import PHASE_NAMES
from polroute.live.plan import plan

EXIT_OK, EXIT_INPUT, EXIT_REFUSED, EXIT_UNCONFIRMED, EXIT_UNDO_FAILED = (
    Exit.OK,
    Exit.USAGE,
    Exit.ERROR_ANSWER,
    Exit.ROLLED_BACK,
    Exit.PARTIAL,
)

PLAN_USAGE = (
    "polroute plan --batch DESIRED... [--netns NS] [--owner P] [--rt-tables FILE] [--prune] [--adopt] [--json]\n"
    "                     [--quiet]"
)
APPLY_USAGE = (
    "polroute apply --batch DESIRED... [--netns NS] [--owner P] [--rt-tables FILE] [--prune] [--adopt]\n"
    "                      [--dry-run] [--confirm SECONDS] [--json] [--quiet]"
)


def _common_parser(name: str, description: str, usage: str):
    ap = new_parser(name, description, usage=usage, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="DESIRED",
        help="the desired rules and routes, `ip -batch` lines (repeatable; - for stdin)",
    )
    ap.add_argument("--netns", metavar="NS", help="the namespace to change (default: this one)")
    ap.add_argument("--owner", metavar="P", help="the owner protocol, a number or rt_protos name (default: polroute's)")
    ap.add_argument("--rt-tables", metavar="FILE", help="the table names (default: the host's /etc/iproute2)")
    ap.add_argument("--prune", action="store_true", help="delete owned rules and routes the desired state lacks")
    ap.add_argument("--adopt", action="store_true", help="take over matching objects that other protocols own")
    add_json_option(ap)
    add_quiet_option(ap)
    return ap


def plan_parser():
    return _common_parser(
        "plan", "The ordered operations that make the live namespace hold the desired rules and routes.", PLAN_USAGE
    )


def apply_parser():
    ap = _common_parser(
        "apply", "Carry the plan out; any failure (or no confirmation in time) undoes everything.", APPLY_USAGE
    )
    ap.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    ap.add_argument("--confirm", metavar="SECONDS", help="roll back unless confirmed within SECONDS")
    return ap


def confirm_parser():
    ap = new_parser("confirm", "Keep what a waiting `apply --confirm` applied.")
    ap.add_argument("--netns", metavar="NS", help="the namespace of the waiting apply")
    add_json_option(ap, 'print {"confirmed": true, "netns": NS} (nothing waiting: the error object, exit 1)')
    return ap


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
            raise UsageError(f"--owner: unknown protocol {value!r}") from None
    if not 4 <= n <= 255:
        raise UsageError(
            f"--owner {value}: the owner protocol must be 4..255 (0-3 are the kernel's "
            "and plain `ip route add`'s: polroute would take every such route for its own)"
        )
    return n


def _plan_from(ns, prog=None):
    """The plan of the --batch files (``prog``: a Progress told each step);
    its "plan" time includes parsing the files."""
    from polroute.cli.common import read_batch

    tell = prog.phase if prog is not None else (lambda *a: None)
    # the live host's names (/etc/iproute2), as `ip` on it would read them
    tables = load_tables(ns.rt_tables) if ns.rt_tables else load_rt_tables(None)
    owner = owner_protocol(ns.owner, tables)
    paths = ns.batch
    if not paths:
        raise UsageError("--batch FILE is required (the desired state; - for stdin)")
    netns = ns.netns
    # one text, but every line keeps its own FILE:LINE in messages
    from polroute.live.desired import Desired, parse_desired
    from polroute.live.read import read_state

    t0 = time.perf_counter()
    tell(f"reading {'namespace ' + netns if netns else 'the namespace'}")
    state = read_state(netns, sysctls=False)
    read_s = time.perf_counter() - t0
    desired = Desired()
    errors: list[str] = []
    for i, path in enumerate(paths, 1):
        tell(f"reading {'<stdin>' if path == '-' else path}" + (f" ({i}/{len(paths)})" if len(paths) > 1 else ""))
        text = read_batch(path)
        try:
            d = parse_desired(text, state, filename="<stdin>" if path == "-" else path, owner=owner, tables=tables)
        except DesiredStateError as e:
            errors += e.errors
            continue
        desired.rules += d.rules
        desired.routes += d.routes
    if errors:
        raise DesiredStateError(errors)
    parse_s = time.perf_counter() - t0 - read_s
    tell("planning")
    p = plan(desired, netns, owner=owner, prune=ns.prune, adopt=ns.adopt, state=state)
    p.seconds["read"] = read_s  # read here, before parsing, not inside plan()
    p.seconds["plan"] = p.seconds.get("plan", 0.0) + parse_s  # the reported plan time includes parsing
    return p


def _plan_json(p) -> dict:
    return {
        "netns": p.netns,
        "owner": p.owner,
        "unchanged": p.unchanged,
        "counts": p.counts(),
        "ops": [{"phase": op.phase, "verb": op.verb, "kind": op.kind, "text": op.text, "why": op.why} for op in p.ops],
        "notes": p.notes,
    }


def _errors_out(cmd: str, e: BaseException) -> int:
    problem = resource_problem(e)
    if problem:
        said = {
            "plan": "; nothing was changed",
            "apply": "; nothing was changed",
            "recover": "; what is left to undo stays in the journal: run it again",
        }.get(cmd, "")
        print(f"polroute: {cmd}: {problem}{said}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, DesiredStateError):
        for line in e.errors:
            print(f"polroute: {line}", file=sys.stderr)
        print(f"polroute: {cmd}: nothing was changed", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, UsageError):
        print(f"polroute: {e}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, OSError):
        print(f"polroute: {cmd}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return EXIT_INPUT
    print(f"polroute: {cmd}: {e}", file=sys.stderr)
    return EXIT_INPUT


def _report_recoveries() -> None:
    """An interrupted apply finished while taking the namespace is said first."""
    while session.RECOVERED:
        sys.stderr.write("polroute: " + session.RECOVERED.pop(0).text())


def run_plan(ns) -> int:
    try:
        with session.writer(ns.netns), progress("plan", ns.quiet) as prog:
            _report_recoveries()
            p = _plan_from(ns, prog)
    except (DesiredStateError, UsageError, OSError, RuntimeError, MemoryError) as e:
        return _errors_out("plan", e)
    out = Output(ns.json, INDENTED)
    if out.as_json:
        out.json(_plan_json(p))
    else:
        out.text(p.text())
    return EXIT_OK


def run_apply(ns) -> int:
    try:
        seconds = None
        if ns.confirm is not None:
            try:
                seconds = float(ns.confirm)
            except ValueError:
                raise UsageError(f"--confirm {ns.confirm!r}: seconds expected") from None
            if not math.isfinite(seconds) or seconds <= 0:
                raise UsageError(f"--confirm {ns.confirm}: a finite number of seconds above 0 is needed")
        with session.writer(ns.netns), progress("apply", ns.quiet) as prog:
            _report_recoveries()
            p = _plan_from(ns, prog)
            if seconds is not None and p.ops and not ns.dry_run:
                prog.close()  # the terminal is the confirmation's now
                print(
                    f"applying {p.summary()}; keep it by typing 'yes' here or running "
                    f"`polroute confirm{' --netns ' + p.netns if p.netns else ''}` within "
                    f"{seconds:g} s, otherwise it is rolled back",
                    file=sys.stderr,
                )
            rep = apply(p, dry_run=ns.dry_run, confirm_seconds=seconds, progress=_apply_progress(prog))
    except (MemoryError, OSError) as e:
        if resource_problem(e):
            return _out_of_resources("apply", ns.netns, e)
        return _errors_out("apply", e)
    except (DesiredStateError, UsageError, RuntimeError) as e:
        return _errors_out("apply", e)
    out = Output(ns.json, INDENTED)
    if out.as_json:
        out.json(
            {
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
        )
    else:
        if ns.dry_run:
            out.text(p.text())
        (sys.stdout if rep.ok else sys.stderr).write(rep.text())
    if rep.ok:
        return EXIT_OK
    if rep.rolled_back and rep.restored is False:
        return EXIT_UNDO_FAILED
    if rep.confirmed is False:
        return EXIT_UNCONFIRMED
    return EXIT_REFUSED


def _apply_progress(prog):
    """apply()'s progress callback: each phase a step of the display."""
    names = {name: k for k, name in enumerate(PHASE_NAMES)}

    def tell(step: str, count: int) -> None:
        if step in names:
            prog.phase(f"phase {names[step] + 1}/{len(PHASE_NAMES)}: {step} ({count} operation(s))")
        elif step == "waiting for confirmation":
            prog.close()
        else:
            prog.phase(f"{step} ({count} operation(s))")

    return tell


def _out_of_resources(cmd: str, netns: str | None, e: BaseException) -> int:
    """Out of memory or descriptors during an apply: the namespace is
    released; if the apply had sent anything, its journal is undone now (as
    the next command on the namespace would) and the outcome said."""
    problem = resource_problem(e)
    try:
        rec = session.recover(netns)
        if rec in session.RECOVERED:  # told here, not again by the next command of this process
            session.RECOVERED.remove(rec)
    except (MemoryError, OSError, RuntimeError) as again:
        print(
            f"polroute: {cmd}: {problem}; whether anything was sent is unknown, and the undo could not run "
            f"({resource_problem(again) or again}): run `polroute recover{' --netns ' + netns if netns else ''}`",
            file=sys.stderr,
        )
        return EXIT_UNDO_FAILED
    if rec is None or (rec.steps == 0 and not rec.problems):
        print(f"polroute: {cmd}: {problem}; nothing was changed", file=sys.stderr)
        return EXIT_INPUT
    if rec.problems:
        print(
            f"polroute: {cmd}: {problem} while applying; undoing the {rec.steps} operation(s) it may have "
            "sent left: " + "; ".join(rec.problems),
            file=sys.stderr,
        )
        return EXIT_UNDO_FAILED
    print(
        f"polroute: {cmd}: {problem} while applying; the {rec.steps} operation(s) it may have sent "
        "were undone from its journal",
        file=sys.stderr,
    )
    return EXIT_REFUSED


def run_confirm(ns) -> int:
    try:
        if confirm(ns.netns):
            Output(ns.json).emit({"confirmed": True, "netns": ns.netns}, "confirmed")
            return EXIT_OK
        # nothing waits: an apply that died (its journal left behind) is undone now, as any
        # command would; without a journal the lock is not taken (an apply may be starting)
        if journal.read_journal(netns_id(ns.netns)) is not None:
            session.recover(ns.netns)
            _report_recoveries()
    except (OSError, RuntimeError, MemoryError) as e:
        return _errors_out("confirm", e)
    print(
        "polroute: confirm: no apply is waiting for confirmation" + (f" in namespace {ns.netns}" if ns.netns else ""),
        file=sys.stderr,
    )
    return EXIT_INPUT


def recover_parser():
    ap = new_parser(
        "recover",
        "Finish an apply that was interrupted (killed, or its machine lost power): undo it from its journal, "
        "or with --forward complete it.  Every other command on the namespace does this first by itself.",
    )
    ap.add_argument("--netns", metavar="NS", help="the namespace (default: this one)")
    ap.add_argument("--forward", action="store_true", help="complete the interrupted apply instead of undoing it")
    add_json_option(ap, 'print {"recovered": ..., "direction", "steps", "problems"} (schema docs/schemas/recover.json)')
    return ap


def run_recover(ns) -> int:
    try:
        rec = session.recover(ns.netns, forward=ns.forward)
    except (OSError, RuntimeError, MemoryError) as e:
        return _errors_out("recover", e)
    out = Output(ns.json)
    if rec is None:
        out.emit({"recovered": False, "netns": ns.netns}, "nothing to recover")
        return EXIT_OK
    if out.as_json:
        out.json(
            {
                "recovered": True,
                "netns": rec.netns,
                "direction": rec.direction,
                "steps": rec.steps,
                "problems": list(rec.problems),
            }
        )
    else:
        sys.stdout.write(rec.text())
    return EXIT_OK if not rec.problems else EXIT_UNDO_FAILED


COMMANDS = {
    "plan": Command(plan_parser, run_plan),
    "apply": Command(apply_parser, run_apply),
    "confirm": Command(confirm_parser, run_confirm),
    "recover": Command(recover_parser, run_recover),
}
