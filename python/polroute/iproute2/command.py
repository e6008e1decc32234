"""A parsed ``ip`` command (the requests it sends) and what parsing one needs
(the policy for device names, the name databases, ip's -4/-6)."""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass

from polroute._core.errors import PolicyError
from polroute.iproute2.args import AF_UNSPEC, matches
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables, scan_uint
from polroute.types.requests import RTPROT_BOOT


@dataclass
class Context:
    policy: object
    tables: RtTables
    family: int = AF_UNSPEC
    route_proto: int = RTPROT_BOOT  # what a route add gets without `proto` (ip: boot)

    def ifindex(self, name: str) -> int:
        """ll_name_to_index(): a known name, else "ifN" means ifindex N."""
        try:
            return self.policy.ifindex(name)
        except PolicyError as e:
            if e.errno != _errno.ENODEV:
                raise
        if name.startswith("if"):
            got = scan_uint(name, 2)
            if got is not None and got[0] & 0xFFFFFFFF:
                return got[0] & 0xFFFFFFFF
        raise ParseError(f'Cannot find device "{name}"')


class Command:
    """A parsed command: the requests ``ip`` would send, in order, as
    (Policy method name, request) pairs."""

    def __init__(self, requests: list | None = None, warnings: list | None = None):
        self.requests: list[tuple[str, object]] = requests or []
        self.warnings: list[str] = warnings or []

    def apply(self, policy) -> None:
        for method, req in self.requests:
            getattr(policy, method)(req)


# ---- the end of each object's command table (do_iproute() and friends)


def first_match(word: str, choices) -> str | None:
    """The first of ``choices`` that ``word`` abbreviates (ip tests them in order)."""
    for c in choices:
        if matches(word, c):
            return c
    return None


def not_a_change(obj: str, sub: str) -> ParseError:
    return ParseError(f'"{obj} {sub}" does not change anything; not supported here')


def no_change(obj: str, sub_word: str, sub: str | None) -> ParseError:
    """An unknown command (``sub`` None), or a known one that sends nothing
    (list, show, save, ...)."""
    if sub is None:
        return ParseError(f'unknown command "{sub_word}" for "{obj}"')
    return not_a_change(obj, sub)
