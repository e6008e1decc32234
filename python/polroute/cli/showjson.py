"""``ip -j rule show`` / ``ip -j route show`` objects, read back from the
lines the text printers (``iproute2/show.py``) print, so that the two shapes
cannot say different things.  Keys are iproute2's (iprule.c print_rule,
iproute.c print_route): a rule's ``priority``, ``src``/``srclen``,
``dst``/``dstlen``, ``table``, ``action``/``target``, ``not``...; a route's
``type``, ``dst``, ``gateway``, ``dev``, ``table``, ``protocol``, ``scope``,
``prefsrc``, ``metric``, ``flags``, ``metrics``, ``nexthops``.  Schemas:
``docs/schemas/show-rules.json`` and ``docs/schemas/show-routes.json``.
"""

from __future__ import annotations

from typing import Any

# words that stand alone (a flag) in a line, and where they go
_RULE_FLAGS = {"not": "not", "l3mdev": "l3mdev", "masquerade": "masquerade"}
_ROUTE_FLAGS = ("onlink", "linkdown", "dead", "pervasive", "notify", "offload", "trap", "rt_offload", "rt_trap")
_ROUTE_TYPES = (
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
    "xresolve",
)
# route metrics (RTAX_*) as ip prints them, in the "metrics" object
_METRICS = (
    "mtu",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "quickack",
    "congctl",
    "features",
    "hoplimit",
    "fastopen_no_cookie",
)
_RULE_KEYS = {
    "tos": "tos",
    "fwmark": "fwmark",
    "iif": "iif",
    "oif": "oif",
    "ipproto": "ipproto",
    "sport": "sport",
    "dport": "dport",
    "tun_id": "tun_id",
    "lookup": "table",
    "suppress_prefixlength": "suppress_prefixlen",
    "suppress_ifgroup": "suppress_ifgroup",
    "realms": "realms",
    "proto": "protocol",
    "goto": "target",
}
_ROUTE_KEYS = {
    "via": "gateway",
    "dev": "dev",
    "table": "table",
    "proto": "protocol",
    "scope": "scope",
    "src": "prefsrc",
    "metric": "metric",
    "tos": "tos",
    "weight": "weight",
    "pref": "pref",
    "expires": "expires",
    "realms": "realms",
    "nhid": "nhid",
}


def _number(word: str) -> Any:
    return int(word) if word.isdigit() else word


def _prefix(word: str, key: str, out: dict) -> None:
    addr, slash, plen = word.partition("/")
    out[key] = addr
    if slash:
        out[key + "len"] = int(plen) if plen.isdigit() else plen


def rule_json(line: str) -> dict:
    """One ``ip rule show`` line as ``ip -j rule show`` prints its object."""
    head, _, rest = line.partition(":")
    out: dict[str, Any] = {"priority": int(head)}
    words = rest.split()
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w in _RULE_FLAGS:
            out[_RULE_FLAGS[w]] = None if w == "not" else True
        elif w in ("from", "to") and nxt is not None:
            _prefix(nxt, "src" if w == "from" else "dst", out)
            i += 1
        elif w == "[detached]":
            last = "oif" if "oif" in out else "iif"
            out[f"{last}_detached"] = True
        elif w == "[unresolved]":
            out["unresolved"] = True
        elif w == "uidrange" and nxt is not None:
            start, _, end = nxt.partition("-")
            out["uid_start"], out["uid_end"] = int(start), int(end or start)
            i += 1
        elif w == "fwmark" and nxt is not None:
            mark, slash, mask = nxt.partition("/")
            out["fwmark"] = mark
            if slash:
                out["fwmask"] = mask
            i += 1
        elif w in ("sport", "dport") and nxt is not None:
            if "-" in nxt:
                a, b = nxt.split("-", 1)
                out[f"{w}_start"], out[f"{w}_end"] = _number(a), _number(b)
            else:
                out[w] = _number(nxt)
            i += 1
        elif w == "goto":
            out["action"] = "goto"
            if nxt is not None:
                out["target"] = _number(nxt)
                i += 1
        elif w in ("nop", "blackhole", "unreachable", "prohibit"):
            out["action"] = w
        elif w in _RULE_KEYS and nxt is not None:
            out[_RULE_KEYS[w]] = _number(nxt) if w in ("suppress_prefixlength", "tun_id") else nxt
            i += 1
        elif nxt is not None:  # a selector newer than iproute2 6.1's printer: KEYWORD VALUE
            out[w] = _number(nxt)
            i += 1
        else:
            out[w] = True
        i += 1
    return out


def _route_words(words: list[str], out: dict) -> None:
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w in _ROUTE_FLAGS:
            out.setdefault("flags", []).append(w)
        elif w in _METRICS and nxt is not None:
            if nxt == "lock" and i + 2 < len(words):
                out.setdefault("metrics", [{}])[0].setdefault("lock", []).append(w)
                nxt = words[i + 2]
                i += 1
            out.setdefault("metrics", [{}])[0][w] = _number(nxt)
            i += 1
        elif w == "via" and nxt in ("inet", "inet6") and i + 2 < len(words):
            out["via"] = {"family": nxt, "host": words[i + 2]}
            i += 2
        elif w in _ROUTE_KEYS and nxt is not None:
            out[_ROUTE_KEYS[w]] = _number(nxt) if w in ("metric", "weight") else nxt
            i += 1
        elif nxt is not None:
            out[w] = _number(nxt)
            i += 1
        else:
            out.setdefault("flags", []).append(w)
        i += 1


def route_json(entry: str) -> dict:
    """One ``ip route show`` entry (its nexthop lines included) as the object
    ``ip -j route show`` prints."""
    first, *hops = entry.split("\n")
    words = first.split()
    out: dict[str, Any] = {}
    if words and words[0] in _ROUTE_TYPES:
        out["type"] = words.pop(0)
    if words:
        out["dst"] = words.pop(0)
    _route_words(words, out)
    out.setdefault("flags", [])
    nexthops = []
    for hop in hops:
        hw = hop.split()
        if hw[:1] == ["nexthop"]:
            nh: dict[str, Any] = {}
            _route_words(hw[1:], nh)
            nh.setdefault("flags", [])
            nexthops.append(nh)
    if nexthops:
        out["nexthops"] = nexthops
    return out


__all__ = ["rule_json", "route_json"]
