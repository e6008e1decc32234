"""The keyword form of :meth:`Policy.rule` and :meth:`Policy.route`, as
pyroute2 users write them::

    policy.rule("add", src="192.168.16.20/32", table=1, priority=500)
    policy.route("add", dst="default", gateway="192.168.16.1", oif="eth0", table=1)

The keywords become the words of the matching ``ip rule``/``ip route``
command, which the batch reader turns into requests: so every default is
iproute2's (a rule given a table is a ``lookup`` rule; without one it looks
up main; routes are ``proto boot``; the scope, family and table follow from
the other arguments as ``ip`` decides them), and every refusal is the one
``ip`` or the kernel gives (a ``ValueError`` naming the token, or a
``PolicyError``).  Importing this module (``import polroute`` does) enables
the keyword form.

Keywords (pyroute2's names; iproute2's are accepted too):

* rule: ``src``/``dst`` (an address or prefix; ``src_len``/``dst_len`` as
  pyroute2 gives them), ``table``, ``priority``, ``action`` (``"to_tbl"``,
  ``"goto"``, ``"nop"``, ``"blackhole"``, ``"unreachable"``, ``"prohibit"``,
  or pyroute2's ``"FR_ACT_..."`` names), ``goto``, ``fwmark``/``fwmask``,
  ``iifname``/``iif``, ``oifname``/``oif``, ``tos``/``dscp``, ``uid_range``
  (``(start, end)`` or ``"A-B"``), ``ipproto``, ``sport``/``dport`` (a port or
  ``(start, end)``), ``suppress_prefixlen``, ``suppress_ifgroup``,
  ``protocol``, ``realms``, ``invert`` (``not``), ``l3mdev``, ``family``.
* route: ``dst`` (``"default"`` or a prefix; ``dst_len``), ``gateway``,
  ``oif`` (a device name or an ifindex), ``table``, ``priority``/``metric``,
  ``proto``/``protocol``, ``scope``, ``type``, ``prefsrc``, ``tos``,
  ``onlink``, ``metrics`` (``{"mtu": 1400}``), ``multipath`` (a list of
  ``{"gateway", "oif", "weight"/"hops"}``), ``realms``, ``pref``, ``nhid``,
  ``family``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from polroute.iproute2.batch import parse_command
from polroute.iproute2.lexer import ParseError
from polroute.model import policy as _policy_module

RULE_COMMANDS = ("add", "del", "delete", "remove")
ROUTE_COMMANDS = ("add", "del", "delete", "remove", "replace", "change", "append", "prepend")

_RULE_WORDS = {
    "table": "lookup",
    "lookup": "lookup",
    "priority": "priority",
    "pref": "priority",
    "iifname": "iif",
    "iif": "iif",
    "oifname": "oif",
    "oif": "oif",
    "tos": "tos",
    "dscp": "dscp",
    "ipproto": "ipproto",
    "ip_proto": "ipproto",
    "suppress_prefixlen": "suppress_prefixlength",
    "suppress_prefixlength": "suppress_prefixlength",
    "suppress_ifgroup": "suppress_ifgroup",
    "protocol": "protocol",
    "proto": "protocol",
    "realms": "realms",
    "realm": "realms",
    "goto": "goto",
    "tun_id": "tun_id",
    "flowlabel": "flowlabel",
}
_ACTIONS = {
    "to_tbl": None,
    "fr_act_to_tbl": None,
    "lookup": None,
    "goto": "goto",
    "fr_act_goto": "goto",
    "nop": "nop",
    "fr_act_nop": "nop",
    "blackhole": "blackhole",
    "fr_act_blackhole": "blackhole",
    "unreachable": "unreachable",
    "fr_act_unreachable": "unreachable",
    "prohibit": "prohibit",
    "fr_act_prohibit": "prohibit",
}
_ROUTE_WORDS = {
    "gateway": "via",
    "via": "via",
    "table": "table",
    "priority": "metric",
    "metric": "metric",
    "proto": "proto",
    "protocol": "proto",
    "scope": "scope",
    "prefsrc": "src",
    "tos": "tos",
    "realms": "realms",
    "realm": "realms",
    "pref": "pref",
    "nhid": "nhid",
}


def _word(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a value here")
    return str(value)


def _prefix(value: Any, length: Any) -> str:
    text = _word(value)
    if length is not None and text not in ("default", "all"):
        return f"{text}/{int(length)}"
    return text


def _range(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        start, end = value
        return f"{int(start)}-{int(end)}"
    return _word(value)


def _family(value: Any) -> list[str]:
    if value is None:
        return []
    if value in (4, socket.AF_INET, "inet", "4"):
        return ["-4"]
    if value in (6, socket.AF_INET6, "inet6", "6"):
        return ["-6"]
    raise ValueError(f"family {value!r}: 4, 6, AF_INET or AF_INET6")


def _command(cmd: str, choices: Iterable[str]) -> str:
    if not isinstance(cmd, str) or cmd not in choices:
        raise ValueError(f"command {cmd!r}: one of {', '.join(choices)}")
    return "del" if cmd in ("delete", "remove") else cmd


def rule_words(cmd: str, **kw: Any) -> list[str]:
    """The ``ip rule`` words the keyword form stands for."""
    words = [*_family(kw.pop("family", None)), "rule", _command(cmd, RULE_COMMANDS)]
    if kw.pop("invert", False) or kw.pop("not", False):
        words.append("not")
    for key in ("src", "dst"):
        value = kw.pop(key, None)
        length = kw.pop(f"{key}_len", None)
        if value is not None:
            words += ["from" if key == "src" else "to", _prefix(value, length)]
    mark, mask = kw.pop("fwmark", None), kw.pop("fwmask", None)
    if mark is not None:
        words += ["fwmark", _word(mark) + (f"/{_word(mask)}" if mask is not None else "")]
    elif mask is not None:
        raise ValueError("fwmask needs fwmark")
    uids = kw.pop("uid_range", kw.pop("uidrange", None))
    if uids is not None:
        words += ["uidrange", _range(uids)]
    for port in ("sport", "dport"):
        value = kw.pop(port, None)
        if value is not None:
            words += [port, _range(value)]
    if kw.pop("l3mdev", False):
        words.append("l3mdev")
    action = kw.pop("action", None)
    for key, value in kw.items():
        if key not in _RULE_WORDS:
            raise TypeError(f"rule(): unknown keyword {key!r}")
        if value is not None:
            words += [_RULE_WORDS[key], _word(value)]
    if action is not None:
        name = _ACTIONS.get(str(action).lower())
        if str(action).lower() not in _ACTIONS:
            raise ValueError(f"action {action!r}: one of {', '.join(a for a in _ACTIONS if '_' not in a)}")
        if name and name != "goto":
            words.append(name)
        elif name == "goto" and "goto" not in words:
            raise ValueError("action goto needs goto=PRIORITY")
    return words


def route_words(cmd: str, **kw: Any) -> list[str]:
    """The ``ip route`` words the keyword form stands for."""
    words = [*_family(kw.pop("family", None)), "route", _command(cmd, ROUTE_COMMANDS)]
    kind = kw.pop("type", None)
    if kind is not None:
        words.append(_word(kind))
    dst = kw.pop("dst", "default")
    words.append(_prefix(dst if dst is not None else "default", kw.pop("dst_len", None)))
    oif = kw.pop("oif", kw.pop("dev", None))
    multipath = kw.pop("multipath", None)
    metrics = kw.pop("metrics", None) or {}
    onlink = kw.pop("onlink", False)
    for key, value in kw.items():
        if key not in _ROUTE_WORDS:
            raise TypeError(f"route(): unknown keyword {key!r}")
        if value is not None:
            words += [_ROUTE_WORDS[key], _word(value)]
    if oif is not None:
        words += ["dev", _word(oif)]
    if onlink:
        words.append("onlink")
    for name, value in dict(metrics).items():
        words += [str(name), _word(value)]
    for hop in multipath or []:
        hop = dict(hop)
        words.append("nexthop")
        if hop.get("gateway") is not None:
            words += ["via", _word(hop.pop("gateway"))]
        if hop.get("oif") is not None:
            words += ["dev", _word(hop.pop("oif"))]
        weight = hop.pop("weight", None)
        hops = hop.pop("hops", None)
        if weight is None and hops is not None:
            weight = int(hops) + 1  # pyroute2's hops is rtnh_hops, ip's weight is hops + 1
        if weight is not None:
            words += ["weight", _word(weight)]
        if hop.pop("onlink", False):
            words.append("onlink")
        hop = {k: v for k, v in hop.items() if v is not None}
        if hop:
            raise TypeError(f"route(): unknown nexthop keyword(s) {', '.join(map(repr, hop))}")
    return words


def _resolve_oif(policy: Any, kw: dict[str, Any]) -> None:
    """An ifindex given as ``oif`` (pyroute2 passes numbers) becomes its name."""
    for hop in [kw, *(kw.get("multipath") or [])]:
        oif = hop.get("oif")
        if isinstance(oif, int) and not isinstance(oif, bool):
            hop["oif"] = policy.ifname(oif)


def rule(policy: Any, cmd: str, **kw: Any) -> None:
    """``policy.rule(cmd, **kw)``: the ``ip rule`` command the keywords
    describe, applied to ``policy`` (ValueError for what ip refuses to send,
    PolicyError for what the kernel refuses)."""
    _apply(policy, rule_words(cmd, **kw))


def route(policy: Any, cmd: str, **kw: Any) -> None:
    """``policy.route(cmd, **kw)``: the ``ip route`` command the keywords
    describe, applied to ``policy``."""
    kw = dict(kw)
    if kw.get("multipath"):
        kw["multipath"] = [dict(h) for h in kw["multipath"]]
    _resolve_oif(policy, kw)
    _apply(policy, route_words(cmd, **kw))


def _apply(policy: Any, words: list[str]) -> None:
    try:
        command = parse_command(words, policy)
    except ParseError as e:
        raise ValueError(f"{' '.join(words)}: {e}") from None
    command.apply(policy)


_policy_module.KEYWORDS = {"rule": rule, "route": route}

__all__ = ["rule", "route", "rule_words", "route_words", "RULE_COMMANDS", "ROUTE_COMMANDS"]
