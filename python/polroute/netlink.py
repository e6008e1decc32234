"""Sending rule and route requests to a live kernel (rtnetlink), from C.

The requests are the ones the model takes (:mod:`polroute.requests`, as the
iproute2 reader produces them); the C side (``csrc/netlink.c``) encodes them
the way ``ip`` does, packs many into each ``sendmsg`` and maps every ACK back
to its request.  Usage::

    with KernelSocket("myns") as ks:          # a name under /run/netns, a path, or None
        outcomes = ks.send([req1, req2, ...])
    [o for o in outcomes if not o.ok]         # Outcome(error=errno, message=extack text)

Unlike ``ip -batch`` nothing stops at the first error: every request is
tried, in order, and each gets its own outcome.  An outcome can also be
*unknown* (the ACK was lost when the receive queue overflowed: the kernel may
have applied it) or *not sent* (a socket error came first: not applied).
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Optional, Union

from ._polroute_cffi import ffi, lib
from .convert import fill_rule, route_to_c
from .requests import RouteRequest, RuleRequest

OUTCOME_UNKNOWN = lib.PR_NL_UNKNOWN
OUTCOME_NOT_SENT = lib.PR_NL_NOT_SENT

_SO_SNDBUFFORCE, _SO_RCVBUFFORCE = 32, 33


@dataclass(frozen=True)
class Outcome:
    """What became of one request: error 0 (applied), a positive errno (the
    kernel refused it), OUTCOME_UNKNOWN or OUTCOME_NOT_SENT.  message is the
    kernel's extended-ack text ("" if none), or why the outcome is not known."""
    error: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error == 0

    @property
    def unknown(self) -> bool:
        return self.error == OUTCOME_UNKNOWN

    @property
    def not_sent(self) -> bool:
        return self.error == OUTCOME_NOT_SENT

    def iproute2_text(self) -> str:
        """The line ``ip`` prints for this outcome ("" when applied)."""
        if self.error == 0:
            return ""
        if self.error < 0:
            return self.message
        if self.message:
            return f"Error: {self.message}."
        return f"RTNETLINK answers: {os.strerror(self.error)}"


class NetlinkError(OSError):
    """A socket error during send; ``outcomes`` still tells, request by
    request, what was acknowledged, unknown or not sent."""

    def __init__(self, err: int, outcomes: list[Outcome]):
        super().__init__(err, os.strerror(err))
        self.outcomes = outcomes


Request = Union[RuleRequest, RouteRequest]


def netns_path(netns: Optional[str]) -> Optional[str]:
    """``ip netns`` name -> its bind-mount path; a path is returned as is."""
    if netns is None or netns == "":
        return None
    return netns if "/" in netns else f"/run/netns/{netns}"


class KernelSocket:
    """One NETLINK_ROUTE socket, in the current namespace or in ``netns``
    (a name under /run/netns or a path).  A context manager."""

    def __init__(self, netns: Optional[str] = None, *, sndbuf: Optional[int] = None,
                 rcvbuf: Optional[int] = None):
        path = netns_path(netns)
        fd = lib.pr_nl_open(path.encode() if path else ffi.NULL)
        if fd < 0:
            raise OSError(-fd, os.strerror(-fd), path)
        self._fd: Optional[int] = fd
        self.stats: dict[str, int] = {}     # pr_nl_stats of the last send()
        self.timing: dict[str, float] = {}  # seconds of the last send(): encode, kernel
        if sndbuf is not None or rcvbuf is not None:
            self.set_buffers(sndbuf, rcvbuf)

    # ---- lifetime -------------------------------------------------------
    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("socket is closed")
        return self._fd

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            lib.pr_nl_close(fd)

    def __enter__(self) -> "KernelSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # ---- options ---------------------------------------------------------
    def set_buffers(self, sndbuf: Optional[int] = None, rcvbuf: Optional[int] = None,
                    force: bool = False) -> None:
        """Set SO_SNDBUF / SO_RCVBUF (the kernel doubles the value); force
        uses SO_*BUFFORCE to pass net.core.[wr]mem_max."""
        with socket.fromfd(self.fileno(), socket.AF_NETLINK, socket.SOCK_RAW) as s:   # a dup
            if sndbuf is not None:
                s.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE if force else socket.SO_SNDBUF, sndbuf)
            if rcvbuf is not None:
                s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE if force else socket.SO_RCVBUF, rcvbuf)

    def buffers(self) -> tuple[int, int]:
        """The effective (sndbuf, rcvbuf) in bytes."""
        with socket.fromfd(self.fileno(), socket.AF_NETLINK, socket.SOCK_RAW) as s:
            return (s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                    s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    # ---- sending ---------------------------------------------------------
    def send(self, requests: Iterable[Request], *, max_chunk_bytes: int = 0,
             max_chunk_acks: int = 0, timeout_ms: int = 0) -> list[Outcome]:
        """Send every request, in order; one Outcome per request.

        ValueError (nothing sent) if a request cannot be encoded.  NetlinkError
        on a socket error, with the outcomes so far.  ``max_chunk_bytes`` and
        ``max_chunk_acks`` override the sizes derived from the socket buffers
        (tests only: they can make the kernel refuse or drop ACKs)."""
        t0 = time.perf_counter()
        batch = encode(requests)
        t1 = time.perf_counter()
        n = lib.pr_nl_batch_count(batch)
        results = ffi.new("pr_nl_result[]", max(n, 1))
        opt = ffi.new("pr_nl_options *", {"max_chunk_bytes": max_chunk_bytes,
                                          "max_chunk_acks": max_chunk_acks,
                                          "timeout_ms": timeout_ms})
        st = ffi.new("pr_nl_stats *")
        rc = lib.pr_nl_send(self.fileno(), batch, results, n, opt, st)
        self.timing = {"encode": t1 - t0, "kernel": time.perf_counter() - t1}
        self.stats = {name: getattr(st, name) for name, _ in ffi.typeof("pr_nl_stats").fields}
        outcomes = [Outcome(results[i].error, ffi.string(results[i].msg).decode("utf-8", "replace"))
                    for i in range(n)]
        if rc < 0:
            raise NetlinkError(-rc, outcomes)
        return outcomes


def encode(requests: Iterable[Request]):
    """A pr_nl_batch (garbage-collected cdata) holding the encoded requests."""
    reqs = list(requests)
    batch = lib.pr_nl_batch_new(len(reqs))
    if batch == ffi.NULL:
        raise MemoryError("pr_nl_batch_new")
    batch = ffi.gc(batch, lib.pr_nl_batch_free)
    rule = ffi.new("pr_rule_req *")      # reused: fill_rule sets every field
    for i, req in enumerate(reqs):
        if isinstance(req, RuleRequest):
            fill_rule(rule, req)
            rc = lib.pr_nl_batch_add_rule(batch, req.msg_type, req.nlmsg_flags, rule)
        elif isinstance(req, RouteRequest):
            c, _keep = route_to_c(req)
            rc = lib.pr_nl_batch_add_route(batch, req.msg_type, req.nlmsg_flags, c)
        else:
            raise TypeError(f"request {i}: cannot send a {type(req).__name__} to the kernel")
        if rc < 0:
            raise ValueError(f"request {i}: cannot encode {req!r}: {os.strerror(-rc)}")
    return batch


def encoded_messages(requests: Iterable[Request]) -> list[bytes]:
    """The netlink messages send() would write (seq 0), for inspection."""
    batch = encode(requests)
    out = []
    size = ffi.new("size_t *")
    for i in range(lib.pr_nl_batch_count(batch)):
        p = lib.pr_nl_batch_message(batch, i, size)
        out.append(bytes(ffi.buffer(p, size[0])))
    return out
