"""`polroute audit`: does every local address answer through its own interface?

For every local address (universe scope; lo, host/link-scope and link-local
addresses are skipped: a reply from those never leaves the link) the model is
asked the reply question ``ip route get DST from ADDR`` for a remote address
of the address's family and for one peer on every subnet that holds a
default-route gateway.  The reply is symmetric when
it leaves through the interface that owns ADDR, and either via a gateway on
one of that interface's subnets or directly to a destination on one of them.
Every other answer is listed with the rule walk that explains it.

Traffic routed through the host is checked too: for every prefix behind it
(the subnet of an interface that carries no default route, a main-table route
via a gateway on such an interface, or a host file's tenant) the forwarding
question ``ip route get DST from PREFIX-HOST iif ITS-INTERFACE`` (the input
path: reverse-path filter, forwarding, the rules) must leave through an uplink
(an interface a default route goes through), via a gateway on its subnets,
and through the tenant's own uplink when the host file names one.  A prefix
whose interface does not forward is skipped (the host does not route it).

    polroute audit [--batch FILE]... [--rt-tables FILE] [--remote ADDR]... [--json]
    polroute audit --netns NS [--kernel] [--remote ADDR]... [--json]

(the command line is polroute.cli.audit)

With --kernel every question is also asked to the live kernel (one
``ip -j -batch`` of `route get` lines) and any difference from the model is
listed ("model-differs").

Exit status: 0 every reply symmetric, 1 at least one asymmetric (or an
answer the model cannot give: listed as "not modelled"), 2 bad input.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from polroute.iproute2.route_get import ask, explain_text
from polroute.iproute2.route_get_args import parse_route_get
from polroute.iproute2.rt_tables import RtTables
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET, AF_INET6

# Public addresses (Google's resolvers) stand for "somewhere on the internet";
# nothing is sent: the model (or `ip route get`) only answers the question.
DEFAULT_REMOTES = (ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("2001:4860:4860::8888"))
SCOPE_UNIVERSE = 0
# multipath hashing is not modelled; the audit judges every leg instead.
_JUDGED_PER_LEG = {"multipath hash"}


@dataclass
class Finding:
    address: str
    interface: str
    dst: str
    problem: str  # what is wrong, in words
    dev: str | None = None
    gateway: str | None = None
    table: int | None = None
    rule_priority: int | None = None
    trail: list[str] = field(default_factory=list)
    kind: str = "asymmetric"  # asymmetric | unreachable | not-modelled | forwarded

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Routed:
    """A prefix routed through the host: its traffic arrives on ``iif`` (None:
    the interface main routes the prefix to) and must leave through ``expect``
    (None: any uplink)."""

    prefix: object  # ipaddress network
    iif: str | None = None
    expect: str | None = None
    origin: str = ""


@dataclass
class AuditReport:
    addresses: int = 0
    questions: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kernel_checked: int = 0  # questions also asked to the live kernel
    routed: int = 0  # prefixes behind the host whose forwarded traffic was checked

    @property
    def ok(self) -> bool:
        return not self.findings

    def asymmetric_addresses(self) -> list[str]:
        def key(a: str):
            net = ipaddress.ip_network(a, strict=False)
            return (net.version, net.network_address, net.prefixlen, "/" in a)

        return sorted({f.address for f in self.findings}, key=key)


def _local_addresses(policy: Policy, names: dict[int, str], report: AuditReport):
    """(address, interface, every connected network of that interface)."""
    nets: dict[int, list] = {}
    addrs = policy.addresses()
    for a in addrs:
        nets.setdefault(a.ifindex, []).append(ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False))
    out = []
    for a in addrs:
        name = names.get(a.ifindex, f"if{a.ifindex}")
        if a.scope != SCOPE_UNIVERSE or name == "lo" or a.local.is_loopback or a.local.is_link_local:
            report.skipped.append(f"{a.local} dev {name} (scope {a.scope})")
            continue
        out.append((a.local, name, nets[a.ifindex]))
    return out, addrs


def _gateways(policy: Policy, family: int) -> list:
    """Every gateway of a default route, in any table (multipath legs too)."""
    out = []
    for r in policy.routes(family):
        if r.dst_len != 0 or r.table == 255:
            continue
        legs = [r.gateway] + [n.gateway for n in (r.nexthops or [])]
        out.extend(g for g in legs if g is not None and g not in out)
    return out


def _peers(policy: Policy, family: int, addrs) -> list:
    """One peer on every subnet that holds a default gateway: the subnet's
    first host that is neither local nor a gateway (or the gateway itself
    when the subnet has no other host)."""
    gws = _gateways(policy, family)
    local = {a.local for a in addrs}
    subnets = []
    for a in addrs:
        if a.family != family or a.scope != SCOPE_UNIVERSE or a.local.is_link_local:
            continue
        net = ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False)
        if net not in subnets and any(g in net for g in gws):
            subnets.append(net)
    peers = []
    for net in subnets:
        pick = None
        for i, host in enumerate(net.hosts()):
            if host not in local and host not in gws:
                pick = host
                break
            if i > 64:
                break
        if pick is None:
            pick = next(g for g in gws if g in net)
        peers.append(pick)
    return peers


def _judge(r, ifname: str, nets: list, dst) -> str | None:
    """None when the answer is a symmetric reply, else what is wrong."""
    legs = r.candidates or []
    if not legs:
        return f"answer has no nexthop ({r.type})"
    for leg in legs:
        if leg.dev != ifname:
            via = f" via {leg.gateway}" if leg.gateway else ""
            may = "may leave" if len(legs) > 1 else "leaves"
            return f"{may} through {leg.dev}{via}, not {ifname}"
        problem = _judge_one(leg, ifname, nets, dst)
        if problem:
            return problem
    return None


def _judge_one(leg, ifname: str, nets: list, dst) -> str | None:
    if leg.gateway is not None:
        gw = ipaddress.ip_address(leg.gateway)
        # an IPv6 link-local gateway is on the link it is reached through (RFC 4291
        # 2.5.6; the usual router address), whatever the interface's prefixes
        if not (gw.version == 6 and gw.is_link_local) and not any(gw in n for n in nets):
            return f"gateway {gw} is not on {ifname}'s subnets"
    elif not any(dst in n for n in nets):
        return f"sent directly on {ifname} to {dst}, which is not on its subnets"
    return None


class _RulesCached:
    """The policy with its rule dumps kept: the explanation of each finding
    re-reads every rule, which is quadratic on a host with thousands."""

    def __init__(self, policy: Policy):
        self._policy = policy
        self._rules: dict[int, list] = {}

    def rules(self, family: int = AF_INET):
        if family not in self._rules:
            self._rules[family] = self._policy.rules(family)
        return self._rules[family]

    def __getattr__(self, name):
        return getattr(self._policy, name)


def _trail(policy, r, tables) -> list[str]:
    """The rule walk, runs of rules whose selectors did not match folded into
    one line (thousands of per-address rules would bury the decision)."""
    out: list[str] = []
    run = 0
    keep = []
    for step in r.trace + [None]:
        if step is not None and step.kind == "no-match":
            run += 1
            continue
        if run:
            if keep:
                out += explain_text(policy, dataclasses.replace(r, trace=keep), tables).splitlines()
                keep = []
            out.append(f"  ... {run} rule{'s' if run > 1 else ''}: selectors do not match: passed")
            run = 0
        if step is not None:
            keep.append(step)
    if keep:
        out += explain_text(policy, dataclasses.replace(r, trace=keep), tables).splitlines()
    return out


def audit_policy(
    policy: Policy,
    tables: RtTables | None = None,
    remotes: Iterable = DEFAULT_REMOTES,
    max_explained: int = 200,
    kernel: Callable[[list], list] | None = None,
    bulk: bool = True,
    routed: Iterable[Routed] | None = (),
) -> AuditReport:
    """Ask every local address's reply questions; collect the asymmetric ones
    (the first ``max_explained`` with their rule walk).  ``kernel``, given a
    list of `ip route get` argument lists, returns the live kernel's answers
    (``ip -j route get`` objects, or {"error": text}): each is compared with
    the model's and a difference is a finding of its own ("model-differs").
    ``routed``: prefixes behind the host whose forwarded traffic is checked
    besides those found in the policy (None: none at all)."""
    tables = tables or RtTables()
    report = AuditReport()
    cached = _RulesCached(policy)
    explained = 0
    names = {link.ifindex: link.name for link in policy.links()}
    locals_, addrs = _local_addresses(policy, names, report)
    remotes = list(remotes)
    dsts = {}
    for fam, v in ((AF_INET, 4), (AF_INET6, 6)):
        dsts[v] = [x for x in remotes if x.version == v] + _peers(policy, fam, addrs)
    asked = []
    index = {name: i for i, name in names.items()}
    if routed is not None:
        asked += _audit_routed(policy, tables, names, addrs, remotes, list(routed), report)
    todo = []
    for local, ifname, nets in locals_:
        report.addresses += 1
        todo.extend((local, ifname, nets, dst) for dst in dsts[local.version] if dst != local)
    report.questions = len(todo) + len(asked)  # (asked: the forwarding questions so far)
    # First pass over IPv4 in one bulk C call: a symmetric answer needs no more.
    # Everything else (and every question when the kernel is asked too) is
    # asked one by one below, where it is judged and explained.
    if kernel is None and bulk:
        todo = _not_plainly_symmetric(policy, todo, index)
    for local, ifname, nets, dst in todo:
        argv = [str(dst), "from", str(local)]
        args = parse_route_get(argv, tables)
        r = ask(policy, args, tables)
        asked.append((local, ifname, dst, argv, r))
        not_modelled = [n for n in r.not_modelled if n not in _JUDGED_PER_LEG]
        if r.error:
            problem, kind = f"no reply route: {r.error_message or _strerror(r.error)}", "unreachable"
        elif not_modelled:
            problem, kind = f"not modelled: {', '.join(not_modelled)}", "not-modelled"
        else:
            problem, kind = _judge(r, ifname, nets, dst), "asymmetric"
            if problem is None:
                continue
        explained += 1
        if explained <= max_explained:
            r = ask(cached, args, tables, explain=True)  # again, with the walk
            trail = _trail(cached, r, tables)
        else:
            trail = [f"(walk not shown past {max_explained} findings: polroute get --explain {dst} from {local})"]
        report.findings.append(
            Finding(
                str(local),
                ifname,
                str(dst),
                problem,
                r.dev,
                r.gateway,
                r.table_id or None,
                r.rule_priority,
                trail,
                kind,
            )
        )
    if kernel is not None:
        answers = kernel([a[3] for a in asked])
        report.kernel_checked = len(answers)
        for (local, ifname, dst, _argv, r), k in zip(asked, answers):
            diff = _differs(r, k)
            if diff:
                report.findings.append(
                    Finding(
                        str(local),
                        ifname,
                        str(dst),
                        f"model and kernel differ: {diff}",
                        r.dev,
                        r.gateway,
                        r.table_id or None,
                        r.rule_priority,
                        [f"kernel: {json.dumps(k, sort_keys=True)}"],
                        "model-differs",
                    )
                )
    return report


def _uplinks(policy: Policy, names: dict[int, str]) -> set[str]:
    """The interfaces a default route (any table but local) goes through."""
    out = set()
    for fam in (AF_INET, AF_INET6):
        for r in policy.routes(fam):
            if r.dst_len == 0 and r.table != 255:
                out.update(names.get(i, "") for i in [r.oif] + [n.ifindex for n in (r.nexthops or [])] if i)
    return out


def routed_prefixes(policy: Policy, names: dict[int, str] | None = None) -> list[Routed]:
    """The prefixes behind the host: the subnets of interfaces without a default
    route (lo aside), and main's routes via a gateway through such an interface."""
    names = names if names is not None else {link.ifindex: link.name for link in policy.links()}
    ups = _uplinks(policy, names)
    out: list[Routed] = []
    seen = set()
    for a in policy.addresses():
        name = names.get(a.ifindex, "")
        if name in ups or name == "lo" or a.scope != SCOPE_UNIVERSE or a.local.is_link_local:
            continue
        net = ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False)
        if net.prefixlen < net.max_prefixlen and (net, name) not in seen:
            seen.add((net, name))
            out.append(Routed(net, name, None, f"subnet of {name}"))
    for fam in (AF_INET, AF_INET6):
        for r in policy.routes(fam, 254):
            name = names.get(r.oif, "")
            if r.dst_len == 0 or r.gateway is None or r.type != 1 or name in ups or not name:
                continue
            net = ipaddress.ip_network(f"{r.dst}/{r.dst_len}")
            if (net, name) not in seen:
                seen.add((net, name))
                out.append(Routed(net, name, None, f"route {net} via {r.gateway} dev {name}"))
    return out


def _forwarded_source(net, local: set):
    for i, host in enumerate(net if net.num_addresses <= 2 else net.hosts()):
        if host not in local:
            return host
        if i > 64:
            break
    return None


def _audit_routed(policy, tables, names, addrs, remotes, extra: list, report: AuditReport) -> list:
    """The forwarding questions of every prefix behind the host (see the module's
    doc); the questions asked, as audit_policy keeps them for the kernel."""
    asked = []
    ups = _uplinks(policy, names)
    nets_of: dict[str, list] = {}
    for a in addrs:
        nets_of.setdefault(names.get(a.ifindex, ""), []).append(
            ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False)
        )
    local = {a.local for a in addrs}
    found = routed_prefixes(policy, names)
    given = {str(x.prefix) for x in extra}
    for item in extra + [x for x in found if str(x.prefix) not in given]:
        src = _forwarded_source(item.prefix, local)
        iif = item.iif
        if iif is None and src is not None:
            r = ask(policy, parse_route_get([str(src)], tables), tables)
            iif = None if r.error else r.dev
        what = f"{item.prefix} (dev {iif or '?'}, {item.origin})"
        if src is None or iif is None or iif in ups or iif == "lo":
            report.skipped.append(f"{what}: not behind the host (its traffic arrives on no inner interface)")
            continue
        v = item.prefix.version
        if not policy.sysctl_get(f"net.ipv{v}.conf.{iif}.forwarding"):
            report.skipped.append(f"{what}: {iif} does not forward")
            continue
        report.routed += 1
        for dst in [x for x in remotes if x.version == v]:
            argv = [str(dst), "from", str(src), "iif", iif]
            r = ask(policy, parse_route_get(argv, tables), tables)
            asked.append((item.prefix, iif, dst, argv, r))
            if r.error:
                problem = f"not forwarded: {r.error_message or _strerror(r.error)}"
            elif item.expect is not None:
                problem = _judge(r, item.expect, nets_of.get(item.expect, []), dst)
                problem = problem and f"{problem} (its uplink)"
            else:
                problem = next((p for leg in r.candidates or [] if (p := _judge_leg(leg, ups, nets_of, dst))), None)
                if not r.candidates:
                    problem = f"answer has no nexthop ({r.type})"
            if problem is None:
                continue
            r = ask(_RulesCached(policy), parse_route_get(argv, tables), tables, explain=True)
            report.findings.append(
                Finding(
                    str(item.prefix),
                    iif,
                    str(dst),
                    f"forwarded from {src}: {problem}",
                    r.dev,
                    r.gateway,
                    r.table_id or None,
                    r.rule_priority,
                    _trail(policy, r, tables),
                    "forwarded",
                )
            )
    return asked


def _judge_leg(leg, ups: set, nets_of: dict, dst) -> str | None:
    if leg.dev not in ups:
        return f"leaves through {leg.dev}, which is no uplink"
    return _judge_one(leg, leg.dev, nets_of.get(leg.dev, []), dst)


def _not_plainly_symmetric(policy: Policy, todo: list, index: dict) -> list:
    """The questions that the bulk IPv4 lookup does not show to be symmetric
    (single nexthop on the owner's interface, gateway or destination on its
    subnets, nothing not modelled); IPv6 ones are all kept."""
    v4 = [q for q in todo if q[0].version == 4]
    if not v4:
        return todo
    import numpy as np

    from polroute.model.bulk import lookup_bulk

    out = lookup_bulk(
        policy,
        np.fromiter((int(q[3]) for q in v4), dtype=np.uint32, count=len(v4)),
        src=np.fromiter((int(q[0]) for q in v4), dtype=np.uint32, count=len(v4)),
    )
    err, oif, gw, flags = (out.error.tolist(), out.oif.tolist(), out.gateway.tolist(), out.flags.tolist())
    spans: dict[int, list] = {}
    symmetric = set()
    for i, (_local, ifname, nets, dst) in enumerate(v4):
        idx = index.get(ifname)
        if err[i] or flags[i] or oif[i] != idx:
            continue
        sp = spans.get(idx)
        if sp is None:
            sp = spans[idx] = [(int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4]
        target = gw[i] or int(dst)
        if any(lo <= target <= hi for lo, hi in sp):
            symmetric.add(id(v4[i]))
    return [q for q in todo if id(q) not in symmetric]


def _differs(r, k: dict) -> str | None:
    """What the kernel's answer says differently (device, gateway, error);
    a multipath answer of the model holds when the kernel's leg is one of its legs."""
    if "error" in k or r.error:
        if ("error" in k) != bool(r.error):
            model = _strerror(r.error) if r.error else f"dev {r.dev}"
            return f"kernel {k.get('error', 'dev ' + str(k.get('dev')))!r}, model {model!r}"
        return None
    legs = {(c.dev, c.gateway) for c in r.candidates}
    if (k.get("dev"), k.get("gateway")) not in legs:
        model = ", ".join(f"dev {d}" + (f" via {g}" if g else "") for d, g in sorted(legs, key=str))
        kern = f"dev {k.get('dev')}" + (f" via {k['gateway']}" if k.get("gateway") else "")
        return f"kernel {kern}, model {model}"
    return None


def kernel_route_get(netns: str | None) -> Callable[[list], list]:
    """Ask the live kernel many `ip route get` questions through one
    ``ip -j -force -batch`` (asking is all it does: nothing is sent)."""
    import re

    from polroute.live.ip_command import run_ip

    def answer(questions: list) -> list:
        out: list = []
        for start in range(0, len(questions), 5000):
            chunk = questions[start : start + 5000]
            text = "".join("route get " + " ".join(q) + "\n" for q in chunk)
            cmd = (["-n", netns] if netns else []) + ["-j", "-force", "-batch", "-"]
            r = run_ip(cmd, stdin=text, timeout=600)
            failed: dict[int, str] = {}
            msg: list[str] = []
            for line in r.stderr.splitlines():
                m = re.match(r"^Command failed -:(\d+)$", line.strip())
                if m:
                    failed[int(m.group(1))] = " ".join(msg).strip()
                    msg = []
                else:
                    msg.append(line.strip())
            ok = iter(line for line in r.stdout.splitlines() if line.strip())
            for i in range(1, len(chunk) + 1):
                if i in failed:
                    out.append({"error": failed[i]})
                else:
                    data = json.loads(next(ok, "[]") or "[]")
                    out.append(data[0] if data else {"error": "no answer"})
        return out

    return answer


def _strerror(err: int) -> str:
    import os

    return os.strerror(err)


def format_report(report: AuditReport) -> str:
    lines = []
    by_addr: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_addr.setdefault(f.address, []).append(f)
    for addr in report.asymmetric_addresses():
        fs = by_addr[addr]
        kinds = sorted({f.kind for f in fs})
        lines.append(f"{'/'.join(k.upper() for k in kinds)} {addr} (dev {fs[0].interface}):")
        for f in fs:
            where = [f"table {f.table}"] if f.table else []
            if f.rule_priority is not None:
                where.append(f"rule {f.rule_priority}")
            lines.append(f"  reply to {f.dst}: {f.problem}" + (f" [{', '.join(where)}]" if where else ""))
            lines.extend("    " + t.strip() for t in f.trail)
    fwd = {f.address for f in report.findings if f.kind == "forwarded"}
    bad = (
        [f"{len(set(by_addr) - fwd)} of {report.addresses} addresses answer asymmetrically"]
        if set(by_addr) - fwd
        else []
    )
    bad += [f"{len(fwd)} of {report.routed} prefixes routed through are not forwarded as they should"] if fwd else []
    verdict = "all replies symmetric" if report.ok else "; ".join(bad)
    checked = " (each also asked to the kernel)" if report.kernel_checked else ""
    if report.routed:
        what = f"{report.addresses} local addresses and {report.routed} prefixes routed through"
        what += f", {report.questions} questions"
    else:
        what = f"{report.addresses} local addresses, {report.questions} reply questions"
    lines.append(f"audit: {what}{checked}: {verdict}")
    return "\n".join(lines)


def report_json(report: AuditReport) -> dict:
    return {
        "ok": report.ok,
        "addresses": report.addresses,
        "questions": report.questions,
        "kernel_checked": report.kernel_checked,
        "routed": report.routed,
        "asymmetric": report.asymmetric_addresses(),
        "findings": [f.to_json() for f in report.findings],
        "skipped": report.skipped,
    }


def policy_from_netns(netns: str | None) -> Policy:
    """The model of a live namespace (read through kernel_state)."""
    from polroute.live.read import read_state
    from polroute.live.snapshot import policy_from_state

    return policy_from_state(read_state(netns))
