"""``polroute audit``: reply symmetry of every local address (the audit itself
is :mod:`polroute.audit`).

    polroute audit [--batch FILE]... [--rt-tables FILE] [--remote ADDR]... [--host FILE] [--json]
    polroute audit --netns NS [--kernel] [--remote ADDR]... [--host FILE] [--json]

Prefixes routed through the host (subnets of interfaces without a default
route, main's routes via a gateway behind them, --host's tenants) are asked
the forwarding question on the input path from their interface (--kernel
asks the kernel those too).

Exit status (the table below): 0 every reply symmetric, 5 at least one
asymmetric (or an answer the model cannot give: listed as "not modelled"),
1 bad input, or out of memory / too many open files (one line).
"""

from __future__ import annotations

from polroute.cli.common import Command, add_json_option, add_quiet_option, new_parser, progress, resource_problem
from polroute.cli.exitcodes import Exit
from polroute.cli.output import INDENTED, Output

EXIT_BAD_INPUT = Exit.USAGE


def parser():
    ap = new_parser(
        "audit", "Reply symmetry of every local address.", epilog=__doc__.split("\n\n", 1)[1].strip() + "\n"
    )
    ap.add_argument("--batch", action="append", default=[], metavar="FILE", help="the model: ip batch files")
    ap.add_argument("--rt-tables", metavar="FILE", help="the table names (rt_tables format)")
    ap.add_argument("--netns", metavar="NS", help="the model of a live namespace instead")
    ap.add_argument(
        "--remote",
        action="append",
        default=[],
        metavar="ADDR",
        help="remote destination(s) to ask about (default 8.8.8.8 and 2001:4860:4860::8888)",
    )
    ap.add_argument(
        "--host",
        metavar="FILE",
        help="a multihome host file: its tenants' forwarded traffic must leave through their uplinks",
    )
    add_json_option(ap)
    ap.add_argument(
        "--kernel",
        action="store_true",
        help="with --netns: also ask the live kernel every question (one ip -batch) "
        "and report where it answers differently from the model",
    )
    add_quiet_option(ap)
    return ap


def _bad(message: str) -> int:
    Output.error(message, prefix="polroute audit: ")
    return EXIT_BAD_INPUT


def run(ns) -> int:
    import ipaddress

    from polroute._core.errors import PolicyError
    from polroute.audit import (
        DEFAULT_REMOTES,
        audit_policy,
        format_report,
        kernel_route_get,
        policy_from_netns,
        report_json,
    )
    from polroute.cli.common import UsageError, build_policy, load_tables
    from polroute.iproute2.lexer import BatchError

    try:
        remotes = [ipaddress.ip_address(x) for x in ns.remote] or list(DEFAULT_REMOTES)
    except ValueError as e:
        return _bad(f"--remote: {e}")
    if ns.netns and ns.batch:
        return _bad("--netns and --batch exclude each other")
    with progress("audit", ns.quiet) as prog:
        try:
            tables = load_tables(ns.rt_tables)
            if ns.netns:
                prog.phase(f"reading namespace {ns.netns}")
                try:
                    policy = policy_from_netns(ns.netns)
                except (OSError, RuntimeError) as e:
                    if resource_problem(e):
                        raise
                    return _bad(f"--netns {ns.netns}: {e}")
            else:
                if not ns.batch:
                    return _bad("give --batch FILE... (a model) or --netns NS (a live namespace)")
                policy = build_policy(ns.batch, [], tables, prog=prog)
        except (BatchError, UsageError) as e:
            return _bad(str(e))
        except (OSError, PolicyError) as e:
            if resource_problem(e):
                raise  # one line from cli/common.py invoke
            return _bad(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}")
        if ns.kernel and not ns.netns:
            return _bad("--kernel needs --netns NS (the kernel to ask)")
        prog.phase("auditing" + (" (asking the kernel too)" if ns.kernel else ""))
        routed = []
        if ns.host:
            from polroute.audit import Routed
            from polroute.multihome.hostfile import HostFileError, load_host_file

            try:
                cfg = load_host_file(ns.host, tables)
            except (HostFileError, OSError) as e:
                return _bad(str(e))
            routed = [Routed(t.source, None, t.uplink, f"{ns.host}:{t.line} {t.key}") for t in cfg.tenants]
        report = audit_policy(
            policy, tables, remotes, kernel=kernel_route_get(ns.netns) if ns.kernel else None, routed=routed
        )
    Output(ns.json, INDENTED).emit(lambda: report_json(report), lambda: format_report(report))
    return Exit.OK if report.ok else Exit.ASYMMETRIC


COMMANDS = {"audit": Command(parser, run, usage_exit=EXIT_BAD_INPUT)}
