"""The pyroute2 reader: the reference the C dump reader is checked against
(tests only; pyroute2 is a test dependency)."""

from __future__ import annotations

import ipaddress
import os
import struct
import time
from collections.abc import Iterable

from polroute.live.lines import _RTAX_BY_NAME, RTAX_CC_ALGO
from polroute.live.objects import IFF_LOWER_UP, IFF_UP, INFINITY_LIFE, KAddr, KernelState, KLink, KRoute, KRule
from polroute.live.read import _v4_merged, read_sysctls_into
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FRA_DPORT_RANGE,
    FRA_DST,
    FRA_FLOW,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_GOTO,
    FRA_IIFNAME,
    FRA_IP_PROTO,
    FRA_L3MDEV,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    FRA_SPORT_RANGE,
    FRA_SRC,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
    FRA_TABLE,
    FRA_TUN_ID,
    FRA_UID_RANGE,
    RTA_DST,
    RTA_FLOW,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PREF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    IPAddress,
    NexthopRequest,
    bit,
)

# ---------------------------------------------------------------------------
# reading: the pyroute2 reference reader (the C reader is kernel_dump.py)
# ---------------------------------------------------------------------------


def _pyroute2_iproute():
    try:
        from pyroute2 import IPRoute
    except ImportError as exc:  # pragma: no cover - pyroute2 is a test/bench dependency
        raise RuntimeError("reading live state needs pyroute2 (pip install pyroute2)") from exc
    return IPRoute


def _attr(msg, name, default=None):
    for k, v in msg.get("attrs", ()):
        if k == name:
            return v
    return default


def _ip(s) -> IPAddress | None:
    return ipaddress.ip_address(s) if s not in (None, "") else None


def _link_from_msg(m) -> KLink:
    name = _attr(m, "IFLA_IFNAME", "")
    flags = m.get("flags", 0)
    info = _attr(m, "IFLA_LINKINFO")
    info_kind = _attr(info, "IFLA_INFO_KIND", "") if info else ""
    kind = "other"
    if m.get("ifi_type") == 772:  # ARPHRD_LOOPBACK
        kind = "loopback"
    elif info_kind in ("veth", "bridge", "ifb"):
        kind = info_kind
    elif info_kind == "tun":
        data = _attr(info, "IFLA_INFO_DATA")
        kind = "tap" if data and _attr(data, "IFLA_TUN_TYPE") == 2 else "tun"
    link = KLink(
        m["index"],
        name,
        kind,
        info_kind or "",
        bool(flags & IFF_UP),
        bool(flags & IFF_LOWER_UP),
        group=_attr(m, "IFLA_GROUP", 0) or 0,
        master=_attr(m, "IFLA_MASTER", 0) or 0,
    )
    if kind == "veth":
        if _attr(m, "IFLA_LINK_NETNSID") is not None:
            link.peer_elsewhere = True
        else:
            link.peer = _attr(m, "IFLA_LINK", 0) or 0
    spec = _attr(m, "IFLA_AF_SPEC")
    if spec:
        v6 = _attr(spec, "AF_INET6")
        if v6:
            link.addr_gen_mode = _attr(v6, "IFLA_INET6_ADDR_GEN_MODE")
    return link


def _addr_from_msg(m) -> KAddr:
    fam = m["family"]
    local = _attr(m, "IFA_LOCAL")
    address = _attr(m, "IFA_ADDRESS")
    if local is None:
        local, address = address, None
    peer = _ip(address) if address not in (None, local) else None
    flags = _attr(m, "IFA_FLAGS")
    if flags is None:
        flags = m.get("flags", 0)
    ci = _attr(m, "IFA_CACHEINFO") or {}
    return KAddr(
        fam,
        m["index"],
        _ip(local),
        m["prefixlen"],
        m.get("scope", 0),
        flags,
        _attr(m, "IFA_LABEL", "") or "",
        _ip(_attr(m, "IFA_BROADCAST")),
        peer,
        _attr(m, "IFA_RT_PRIORITY", 0) or 0,
        ci.get("ifa_valid", INFINITY_LIFE),
        ci.get("ifa_preferred", INFINITY_LIFE),
        _attr(m, "IFA_PROTO", 0) or 0,
    )


# new FRA_* attributes iproute2 6.1 has no keyword for (pyroute2 0.9 does not
# name them): type -> (KRule field, struct format, name in KRule.unsupported)
_RULE_NEWER = {
    25: ("dscp", "=B", "dscp"),
    26: ("flowlabel", ">I", "flowlabel"),
    27: ("flowlabel_mask", ">I", "flowlabel mask"),
    28: ("sport_mask", "=H", "sport mask"),
    29: ("dport_mask", "=H", "dport mask"),
    30: ("dscp_mask", "=B", "dscp mask"),
}


def _rule_from_msg(m) -> KRule:
    r = KRule(
        RTM_NEWRULE,
        0,
        family=m["family"],
        dst_len=m["dst_len"],
        src_len=m["src_len"],
        tos=m["tos"],
        action=m["action"],
        table=m["table"],
        flags=m["flags"],
    )
    r.present = bit(FRA_PRIORITY)
    unknown = []
    for k, v in m.get("attrs", ()):
        if k == "FRA_PRIORITY":
            r.priority = v
        elif k == "FRA_TABLE":
            r.table = v
            r.present |= bit(FRA_TABLE)
        elif k == "FRA_SRC":
            r.src = _ip(v)
            r.present |= bit(FRA_SRC)
        elif k == "FRA_DST":
            r.dst = _ip(v)
            r.present |= bit(FRA_DST)
        elif k == "FRA_IIFNAME":
            r.iifname = v
            r.present |= bit(FRA_IIFNAME)
        elif k == "FRA_OIFNAME":
            r.oifname = v
            r.present |= bit(FRA_OIFNAME)
        elif k == "FRA_GOTO":
            r.goto_target = v
            r.present |= bit(FRA_GOTO)
        elif k == "FRA_FWMARK":
            r.fwmark = v
            r.present |= bit(FRA_FWMARK)
        elif k == "FRA_FWMASK":
            r.fwmask = v
            r.present |= bit(FRA_FWMASK)
        elif k == "FRA_FLOW":
            r.realm = v
            r.present |= bit(FRA_FLOW)
        elif k == "FRA_TUN_ID":
            r.tun_id = v
            r.present |= bit(FRA_TUN_ID)
        elif k == "FRA_SUPPRESS_PREFIXLEN":
            r.suppress_prefixlen = -1 if v in (-1, 0xFFFFFFFF) else v
            if r.suppress_prefixlen != -1:
                r.present |= bit(FRA_SUPPRESS_PREFIXLEN)
        elif k == "FRA_SUPPRESS_IFGROUP":
            r.suppress_ifgroup = -1 if v in (-1, 0xFFFFFFFF) else v
            if r.suppress_ifgroup != -1:
                r.present |= bit(FRA_SUPPRESS_IFGROUP)
        elif k == "FRA_L3MDEV":
            r.l3mdev = v
            if v:
                r.present |= bit(FRA_L3MDEV)
        elif k == "FRA_UID_RANGE":
            r.uid_start, r.uid_end = _range(v)
            r.present |= bit(FRA_UID_RANGE)
        elif k == "FRA_PROTOCOL":
            r.protocol = v
            r.present |= bit(FRA_PROTOCOL)
        elif k == "FRA_IP_PROTO":
            r.ip_proto = v
            r.present |= bit(FRA_IP_PROTO)
        elif k == "FRA_SPORT_RANGE":
            r.sport_start, r.sport_end = _range(v)
            r.present |= bit(FRA_SPORT_RANGE)
        elif k == "FRA_DPORT_RANGE":
            r.dport_start, r.dport_end = _range(v)
            r.present |= bit(FRA_DPORT_RANGE)
        elif k == "UNKNOWN":
            t = (v.get("header") or {}).get("type")
            unknown.append(t)
            if t in _RULE_NEWER:  # the raw payload, decoded here
                name, fmt, _ = _RULE_NEWER[t]
                (value,) = struct.unpack_from(fmt, v.data, v.offset + 4)
                setattr(r, name, value)
                r.present |= bit(t)
        elif k.startswith("FRA_") and k not in ("FRA_UNSPEC", "FRA_PAD"):
            r.unsupported.append(k)
    for t in unknown:
        # a single port gets an implicit all-ones mask, which newer kernels dump:
        # that is what `sport N` makes, not extra; so is dscp's 0x3f
        single = {28: (r.sport_start, r.sport_end, FRA_SPORT_RANGE), 29: (r.dport_start, r.dport_end, FRA_DPORT_RANGE)}
        if t in single:
            start, end, rng = single[t]
            implied = start == end and r.present & bit(rng) and getattr(r, _RULE_NEWER[t][0]) == 0xFFFF
        else:
            implied = (t == 30 and r.dscp_mask == 0x3F) or (t == 27 and r.flowlabel_mask == 0xFFFFF)
        if implied:
            continue
        r.unsupported.append(_RULE_NEWER[t][2] if t in _RULE_NEWER else f"FRA attribute {t}")
    return r


def _range(v) -> tuple[int, int]:
    """pyroute2 gives uid/port ranges as "START:END" (or a dict)."""
    if isinstance(v, dict):
        return v["start"], v["end"]
    a, _, b = str(v).partition(":")
    return int(a), int(b or a)


def _route_from_msg(m) -> KRoute:
    fam = m["family"]
    r = KRoute(
        RTM_NEWROUTE,
        0,
        family=fam,
        dst_len=m["dst_len"],
        tos=m["tos"],
        protocol=m["proto"],
        scope=m["scope"],
        type=m["type"],
        table=m["table"],
        rtm_flags=m["flags"],
    )
    r.present = bit(RTA_TABLE) | bit(RTA_PRIORITY)
    if m.get("src_len"):
        r.unsupported.append("from (source-specific route)")
    for k, v in m.get("attrs", ()):
        if k == "RTA_TABLE":
            r.table = v
        elif k == "RTA_DST":
            r.dst = _ip(v)
            r.present |= bit(RTA_DST)
        elif k == "RTA_PRIORITY":
            r.priority = v
        elif k == "RTA_PREFSRC":
            r.prefsrc = _ip(v)
            r.present |= bit(RTA_PREFSRC)
        elif k == "RTA_GATEWAY":
            r.gateway = _ip(v)
            r.present |= bit(RTA_GATEWAY)
        elif k == "RTA_VIA":
            r.gateway = _ip(v["addr"])
            r.present |= bit(RTA_GATEWAY)
        elif k == "RTA_OIF":
            r.oif = v
            r.present |= bit(RTA_OIF)
        elif k == "RTA_FLOW":
            r.realm = v
            r.present |= bit(RTA_FLOW)
        elif k == "RTA_PREF":
            r.pref = v
            r.present |= bit(RTA_PREF)
        elif k == "RTA_NH_ID":
            r.nh_id = v
            r.present |= bit(RTA_NH_ID)
            r.unsupported.append("nhid (nexthop objects)")
        elif k == "RTA_EXPIRES":
            r.expires = v
            if v:
                r.unsupported.append(f"expires {v}")
        elif k == "RTA_METRICS":
            for mk, mv in v.get("attrs", ()):
                ident = _RTAX_BY_NAME.get(mk)
                if ident == RTAX_CC_ALGO:
                    r.congctl = mv
                    r.unsupported.append(f"congctl {mv}")
                elif ident is not None:
                    r.metrics[ident] = mv
            if r.metrics:
                r.present |= bit(RTA_METRICS)
        elif k == "RTA_MULTIPATH":
            for leg in v:
                gw = _attr(leg, "RTA_GATEWAY")
                if gw is None:
                    via = _attr(leg, "RTA_VIA")
                    gw = via["addr"] if via else None
                if _attr(leg, "RTA_FLOW"):
                    r.unsupported.append("nexthop realms")
                r.nexthops.append(
                    NexthopRequest(_ip(gw), leg.get("oif", 0), leg.get("hops", 0) + 1, leg.get("flags", 0))
                )
            r.present |= bit(RTA_MULTIPATH)
        elif k in ("RTA_ENCAP", "RTA_ENCAP_TYPE", "RTA_SRC", "RTA_IIF", "RTA_NEWDST", "RTA_TTL_PROPAGATE"):
            r.unsupported.append(k)
    return r


def _open_iproute(netns: str | None):
    IPRoute = _pyroute2_iproute()
    if netns is None:
        return IPRoute()
    if not os.path.exists(os.path.join("/run/netns", netns)):
        raise FileNotFoundError(2, f'Cannot open network namespace "{netns}": No such file or directory')
    return IPRoute(netns=netns, flags=0)  # flags=0: never create the namespace


def read_state_pyroute2(
    netns: str | None = None, families: Iterable[int] = (AF_INET, AF_INET6), sysctls: bool = True
) -> KernelState:
    """polroute.live.read.read_state through pyroute2 (the reference the C
    reader is cross-checked against; ~20x slower)."""
    state = _read_state_pyroute2(netns, tuple(families))
    if sysctls:
        read_sysctls_into(state)
    return state


def _read_state_pyroute2(netns: str | None, families: tuple[int, ...]) -> KernelState:
    state = KernelState(netns)
    ipr = _open_iproute(netns)
    try:
        t0 = time.perf_counter()
        state.links = sorted((_link_from_msg(m) for m in ipr.get_links()), key=lambda l: l.ifindex)
        state.addrs = [_addr_from_msg(m) for m in ipr.get_addr() if m["family"] in (AF_INET, AF_INET6)]
        t1 = time.perf_counter()
        for fam in families:
            state.rules[fam] = [_rule_from_msg(m) for m in ipr.get_rules(family=fam)]
        t2 = time.perf_counter()
        for fam in families:
            state.routes[fam] = [_route_from_msg(m) for m in ipr.route("dump", family=fam)]
        t3 = time.perf_counter()
        if AF_INET in families:
            state.v4_merged = _v4_merged(lambda dst: _pyroute2_table(ipr, dst), state)
        state.timings = {"links+addrs": t1 - t0, "rules": t2 - t1, "routes": t3 - t2}
    finally:
        ipr.close()
    return state


def _pyroute2_table(ipr, dst) -> int | None:
    for msg in ipr.route("get", dst=str(dst)):
        return _attr(msg, "RTA_TABLE", msg.get("table"))
    return None
