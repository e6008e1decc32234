"""`ip route get` against a Policy: build the question, ask the core, and print
the answer exactly as iproute2 6.1 prints the kernel's (text and ``-j``)."""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

from polroute._core.binding import lib
from polroute._core.codec import (
    NOT_MODELLED_NAMES,
    NULL,
    ROUTE_TYPE_NAMES,
    TRACE_STEP_NAMES,
    addr_from,
    flow_to_c,
    out_struct,
    text,
    trace_to_c,
)
from polroute._core.errors import check, iproute2_text
from polroute.iproute2.route_get_args import GetArgs, parse_route_get
from polroute.iproute2.rt_tables import RtTables
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET, AF_INET6
from polroute.types.result import Candidate, RouteGetResult, TraceStep

# the core's numbers, named once in the codec (read from the extension)
_TYPE_NAMES = ROUTE_TYPE_NAMES
_STEP_NAMES = TRACE_STEP_NAMES
_NOT_MODELLED = NOT_MODELLED_NAMES
# iproute2 print_cache_flags order
_CACHE_WORDS = [
    (0x80000000, "local"),
    (0x40000000, "reject"),
    (0x20000000, "mc"),
    (0x10000000, "brd"),
    (0x08000000, "dst-nat"),
    (0x00800000, "snat"),
    (0x00400000, "masq"),
    (0x00020000, "dst-direct"),
    (0x04000000, "src-direct"),
    (0x00040000, "redirected"),
    (0x01000000, "redirect"),
    (0x00200000, "fastroute"),
    (0x00010000, "notify"),
    (0x00080000, "tproxy"),
]
_PREF_NAMES = {0: "medium", 1: "high", 3: "low"}
_DEFAULT_TABLES: RtTables | None = None


def _tables(tables: RtTables | None) -> RtTables:
    global _DEFAULT_TABLES
    if tables is not None:
        return tables
    if _DEFAULT_TABLES is None:
        _DEFAULT_TABLES = RtTables()
    return _DEFAULT_TABLES


def _addr(family: int, raw: Any) -> str:
    return str(addr_from(family, raw))


def flow_from_args(policy: Policy, args: GetArgs, caller_uid: int | None = None) -> Any:
    """The pr_flow for parsed `ip route get` arguments (names resolved)."""
    uid = args.uid
    if uid is None and caller_uid is not None and not args.iif:
        uid = caller_uid
    return flow_to_c(
        args.family,
        args.dst,
        src=args.src,
        tos=args.tos,
        fibmatch=args.fibmatch,
        iif=policy.ifindex(args.iif) if args.iif else 0,
        oif=policy.ifindex(args.oif) if args.oif else 0,
        mark=args.mark,
        uid=uid,
        ipproto=args.ip_proto,
        sport=args.sport or 0,
        dport=args.dport or 0,
    )


def route_get(policy: Policy, argv: list[str], tables: RtTables | None = None, explain: bool = False) -> RouteGetResult:
    """Answer `ip route get ARGV` on the model.  Bad arguments raise ValueError
    (naming the token); an unknown device raises PolicyError(ENODEV)."""
    tables = _tables(tables)
    args = parse_route_get(list(argv), tables)
    return ask(policy, args, tables, explain)


def ask(policy: Policy, args: GetArgs, tables: RtTables | None = None, explain: bool = False) -> RouteGetResult:
    """Ask ``policy`` one parsed ``ip route get`` question (``explain``: keep the rule walk)."""
    tables = _tables(tables)
    full = 32 if args.family == AF_INET else 128
    if args.src is not None and args.src_len not in (0, full):
        # inet_rtm_valid_getroute_req: iproute2 sends the length as written
        fam = "ipv4" if args.family == AF_INET else "ipv6"
        return RouteGetResult(
            family=args.family,
            error=_errno.EINVAL,
            error_message=f"{fam}: Invalid values in header for route get request",
        )
    q = flow_from_args(policy, args, caller_uid=os.getuid() if hasattr(os, "getuid") else 0)
    res = out_struct("pr_result")
    trace, _steps = trace_to_c(max(64, 2 * (len(policy.rules(args.family)) + 8))) if explain else (NULL, None)
    rc = lib.pr_route_get(policy._h, q, res, trace)
    check(rc, "pr_route_get")
    return _convert(policy, args, res, tables, trace if explain else None)


def _convert(policy: Policy, args: GetArgs, res: Any, tables: RtTables, trace: Any) -> RouteGetResult:
    fam = res.family
    out = RouteGetResult(family=fam, error=res.error)
    out.not_modelled = [name for bit, name in _NOT_MODELLED.items() if res.not_modelled & bit]
    out.rule_index = res.rule_index
    if res.rule_index >= 0:
        out.rule_priority = res.rule_priority
    if trace is not None:
        for i in range(trace.len):
            s = trace.steps[i]
            out.trace.append(
                TraceStep(
                    s.rule_index, s.priority, s.table, _STEP_NAMES.get(s.kind, str(s.kind)), s.error, s.matched_len
                )
            )
    if res.error:
        if res.errmsg != NULL:
            out.error_message = text(res.errmsg)
        return out
    out.type = _TYPE_NAMES.get(res.type, str(res.type))
    out.dst = _addr(fam, res.dst)
    if res.has_from:
        out.from_ = _addr(fam, getattr(res, "from"))
    out.tos = res.tos
    names = {link.ifindex: link.name for link in policy.links()}
    for i in range(res.nh_count):
        nh = res.nh[i]
        out.candidates.append(
            Candidate(
                dev=names.get(nh.oif, f"if{nh.oif}"),
                gateway=_addr(nh.gw_family, nh.gw) if nh.gw_family else None,
                prefsrc=_addr(fam, nh.prefsrc) if fam == AF_INET else None,
                weight=nh.weight or 1,
            )
        )
    if res.nh_count == 1:
        out.dev = out.candidates[0].dev
        out.gateway = out.candidates[0].gateway
    out.table_id = res.table
    if res.table and res.table != 254:
        out.table = tables.name(res.table)
    if fam == AF_INET6 and res.protocol != 3:
        out.protocol = tables.protos.name(res.protocol)
    if res.has_prefsrc:
        out.prefsrc = _addr(fam, res.prefsrc)
    if res.has_metric:
        out.metric = res.metric
    if res.rtm_flags & 0x20000000:
        out.flags.append("rt_offload_failed")
    out.mark = res.mark
    if res.has_uid:
        out.uid = res.uid
    if fam == AF_INET:
        out.cache = [w for bit, w in _CACHE_WORDS if res.cache_flags & bit]
    if res.input:
        out.iif = names.get(res.iif, f"if{res.iif}")
    if fam == AF_INET6:
        out.pref = _PREF_NAMES.get(res.pref, str(res.pref))
    return out


# ---------------------------------------------------------------- printing


def _mark_text(mark: int) -> str:
    return str(mark) if mark < 16 else f"0x{mark:x}"


def error_text(err: int, message: str = "") -> str:
    """What ip prints for an error answer."""
    return iproute2_text(err, message)


def to_json(r: RouteGetResult, tables: RtTables | None = None) -> dict[str, Any]:
    """The object `ip -j route get` prints (the first element of its list),
    or {"error": ..., "errno": ...} for an error."""
    tables = _tables(tables)
    if r.error:
        err: dict[str, Any] = {"error": os.strerror(r.error), "errno": _errno.errorcode.get(r.error, str(r.error))}
        if r.error_message:
            err["message"] = r.error_message
        if r.not_modelled:
            err["not_modelled"] = list(r.not_modelled)
        return err
    d: dict[str, Any] = {}
    if r.type != "unicast":
        d["type"] = r.type
    d["dst"] = r.dst
    if r.from_ is not None:
        d["from"] = r.from_
    if r.tos:
        d["tos"] = tables.dsfield.name(r.tos)
    if r.gateway is not None and r.family == AF_INET and ":" in r.gateway:
        d["via"] = {"family": "inet6", "host": r.gateway}  # an IPv6 nexthop object's gateway
    elif r.gateway is not None:
        d["gateway"] = r.gateway
    if r.dev is not None:
        d["dev"] = r.dev
    if r.table is not None:
        d["table"] = r.table
    if r.protocol is not None:
        d["protocol"] = r.protocol
    if r.prefsrc is not None:
        d["prefsrc"] = r.prefsrc
    if r.metric is not None:
        d["metric"] = r.metric
    d["flags"] = list(r.flags)
    if r.mark:
        d["mark"] = r.mark
    if r.uid is not None:
        d["uid"] = r.uid
    if r.family == AF_INET:
        d["cache"] = list(r.cache)
    if r.iif is not None:
        d["iif"] = r.iif
    if r.pref is not None:
        d["pref"] = r.pref
    if r.not_modelled:
        d["not_modelled"] = list(r.not_modelled)
        d["candidates"] = [
            {"dev": c.dev, **({"gateway": c.gateway} if c.gateway else {}), "weight": c.weight} for c in r.candidates
        ]
    return d


def to_text(r: RouteGetResult, tables: RtTables | None = None) -> str:
    """What `ip route get` prints (without the trailing newline)."""
    tables = _tables(tables)
    if r.error:
        return error_text(r.error, r.error_message)
    parts = []
    if r.type != "unicast":
        parts.append(r.type)
    parts.append(r.dst)
    if r.from_ is not None:
        parts += ["from", r.from_]
    if r.tos:
        parts += ["tos", tables.dsfield.name(r.tos)]
    if r.gateway is not None:
        parts += ["via", "inet6", r.gateway] if r.family == AF_INET and ":" in r.gateway else ["via", r.gateway]
    if r.dev is not None:
        parts += ["dev", r.dev]
    if r.table is not None:
        parts += ["table", r.table]
    if r.protocol is not None:
        parts += ["proto", r.protocol]
    if r.prefsrc is not None:
        parts += ["src", r.prefsrc]
    if r.metric is not None:
        parts += ["metric", str(r.metric)]
    parts += r.flags
    if r.mark:
        parts += ["mark", _mark_text(r.mark)]
    if r.uid is not None:
        parts += ["uid", str(r.uid)]
    # iproute2 prints every token followed by a space; IPv6 ends with
    # "pref X" and no space
    line = "".join(p + " " for p in parts)
    if r.family == AF_INET:
        line += "\n    cache "
        if r.cache:
            line += "<" + ",".join(r.cache) + "> "
        if r.iif is not None:
            line += f"iif {r.iif} "
    else:
        if r.iif is not None:
            line += f"iif {r.iif} "
        if r.pref is not None:
            line += f"pref {r.pref}"
    if r.not_modelled:
        line += "\n    not modelled: " + ", ".join(r.not_modelled)
        if len(r.candidates) > 1:
            line += "\n    candidates: " + "; ".join(
                (f"via {c.gateway} " if c.gateway else "") + f"dev {c.dev} weight {c.weight}" for c in r.candidates
            )
    return line


def explain_text(policy: Policy, r: RouteGetResult, tables: RtTables | None = None) -> str:
    """The rule walk behind an answer, one line per rule tried."""
    return "\n".join(f"  {row['rule']:<58} {row['verdict']}" for row in explain_rows(policy, r, tables))


def explain_rows(policy: Policy, r: RouteGetResult, tables: RtTables | None = None) -> list[dict[str, str]]:
    """The rule walk behind an answer: ``{"rule": ..., "verdict": ...}`` per
    rule tried (the rule as `ip rule show` prints it)."""
    from polroute.iproute2.show import format_rule

    tables = _tables(tables)
    rules = policy.rules(r.family)
    lines = []
    for s in r.trace:
        if s.rule_index < 0:
            what = "local/main merged lookup (no rule was ever changed)"
        else:
            what = format_rule(rules[s.rule_index], tables)
        verdict = {
            "no-match": "selectors do not match: passed",
            "goto": "matched: goto",
            "goto-unresolved": "matched: goto target missing, continue",
            "nop": "matched: nop, continue",
            "table-miss": "matched: no route in the table, continue",
            "no-table": "matched: table does not exist, continue",
            "throw": f"matched: throw route /{s.matched_len}, continue",
            "suppressed": f"matched: result /{s.matched_len} suppressed, continue",
            "decided": ("matched: decided" + (f" (/{s.matched_len})" if not s.error else f": {os.strerror(s.error)}")),
            "action-error": f"matched: {os.strerror(s.error)}",
            "merged": ("decided" if not s.error else os.strerror(s.error)),
        }.get(s.kind, s.kind)
        what = what.strip().replace("\t", " ")
        lines.append({"rule": what, "verdict": verdict})
    return lines


def get_json(policy: Policy, argv: list[str], tables: RtTables | None = None) -> dict[str, Any]:
    """`ip -j route get ARGV` on the model (the dict, or an error dict)."""
    from polroute._core.errors import PolicyError

    try:
        return to_json(route_get(policy, argv, tables), tables)
    except PolicyError as e:
        # an unknown device is refused by ip itself, before the kernel is asked
        return {"error": e.context or e.iproute2_text(), "errno": e.errno_name}
