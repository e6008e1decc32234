"""Sending rule and route requests to a live kernel (rtnetlink), from C.

The requests are the ones the model takes (:mod:`polroute.types.requests`, as the
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
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from polroute._core.binding import ffi, lib
from polroute._core.codec import (
    NULL,
    copy_into,
    fill_rule,
    new_struct,
    out_struct,
    pack_route,
    pack_rule,
    raw_bytes,
    route_to_c,
    struct_dict,
    text,
)
from polroute._core.errors import NetlinkError, check, check_handle, iproute2_text
from polroute.live.netns import checked_netns_path
from polroute.types.requests import RouteRequest, RuleRequest

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
        if self.message:  # (always a dot, even after one: what this printed before)
            return f"Error: {self.message}."
        return iproute2_text(self.error)


Request = RuleRequest | RouteRequest


_SO_NETNS_COOKIE = 71  # asm-generic/socket.h


class KernelSocket:
    """One NETLINK_ROUTE socket, in the current namespace or in ``netns``
    (a name under /run/netns or a path).  A context manager."""

    def __init__(self, netns: str | None = None, *, sndbuf: int | None = None, rcvbuf: int | None = None):
        path = checked_netns_path(netns)
        fd = check(lib.pr_nl_open(path.encode() if path else ffi.NULL), error=OSError, filename=path)
        self._fd: int | None = fd
        self.stats: dict[str, int] = {}  # pr_nl_stats of the last send()
        self.timing: dict[str, float] = {}  # seconds of the last send(): encode, kernel
        if sndbuf is not None or rcvbuf is not None:
            self.set_buffers(sndbuf, rcvbuf)

    def netns_cookie(self) -> int | None:
        """The namespace's cookie (SO_NETNS_COOKIE, Linux 5.14+): unique for
        the boot, never reused, unlike the namespace file's inode.  None on
        older kernels."""
        s = socket.socket(fileno=os.dup(self.fileno()))
        try:
            return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, _SO_NETNS_COOKIE, 8), sys.byteorder)
        except OSError:
            return None
        finally:
            s.close()

    # ---- lifetime -------------------------------------------------------
    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("socket is closed")
        return self._fd

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            lib.pr_nl_close(fd)

    def __enter__(self) -> KernelSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # ---- options ---------------------------------------------------------
    def set_buffers(self, sndbuf: int | None = None, rcvbuf: int | None = None, force: bool = False) -> None:
        """Set SO_SNDBUF / SO_RCVBUF (the kernel doubles the value); force
        uses SO_*BUFFORCE to pass net.core.[wr]mem_max."""
        with socket.fromfd(self.fileno(), socket.AF_NETLINK, socket.SOCK_RAW) as s:  # a dup
            if sndbuf is not None:
                s.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE if force else socket.SO_SNDBUF, sndbuf)
            if rcvbuf is not None:
                s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE if force else socket.SO_RCVBUF, rcvbuf)

    def buffers(self) -> tuple[int, int]:
        """The effective (sndbuf, rcvbuf) in bytes."""
        with socket.fromfd(self.fileno(), socket.AF_NETLINK, socket.SOCK_RAW) as s:
            return (
                s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            )

    # ---- sending ---------------------------------------------------------
    def send(
        self, requests: Iterable[Request], *, max_chunk_bytes: int = 0, max_chunk_acks: int = 0, timeout_ms: int = 0
    ) -> list[Outcome]:
        """Send every request (or a batch made by :func:`encode` or
        :func:`raw_batch`), in order; one Outcome per request.

        ValueError (nothing sent) if a request cannot be encoded.  NetlinkError
        on a socket error, with the outcomes so far.  ``max_chunk_bytes`` and
        ``max_chunk_acks`` override the sizes derived from the socket buffers
        (tests only: they can make the kernel refuse or drop ACKs)."""
        t0 = time.perf_counter()
        batch = requests if isinstance(requests, ffi.CData) else encode(requests)
        t1 = time.perf_counter()
        n = lib.pr_nl_batch_count(batch)
        results = out_struct("pr_nl_result", max(n, 1))
        opt = new_struct(
            "pr_nl_options",
            {"max_chunk_bytes": max_chunk_bytes, "max_chunk_acks": max_chunk_acks, "timeout_ms": timeout_ms},
        )
        st = out_struct("pr_nl_stats")
        rc = lib.pr_nl_send(self.fileno(), batch, results, n, opt, st)
        self.timing = {"encode": t1 - t0, "kernel": time.perf_counter() - t1}
        self.stats = struct_dict(st)
        outcomes = [Outcome(results[i].error, text(results[i].msg, "replace")) for i in range(n)]
        check(rc, error=NetlinkError, outcomes=outcomes)
        return outcomes


def batch_data(batch) -> bytes:
    """The encoded messages of a batch, back to back (what the journal keeps)."""
    n = out_struct("size_t")
    ptr = lib.pr_nl_batch_data(batch, n)
    return raw_bytes(ptr, n[0]) if ptr != NULL else b""


def split_messages(data: bytes) -> list[memoryview]:
    """The messages of batch_data(), one view each."""
    view = memoryview(data)
    out, i = [], 0
    while i < len(view):
        n = int.from_bytes(view[i : i + 4], "little")
        if n < 16 or i + n > len(view):
            raise ValueError(f"corrupt message at byte {i}")
        out.append(view[i : i + n])
        i += (n + 3) & ~3
    return out


def message_type(msg: memoryview) -> tuple[int, int]:
    """(nlmsg_type, nlmsg_flags) of one encoded message."""
    return int.from_bytes(msg[4:6], "little"), int.from_bytes(msg[6:8], "little")


def raw_batch(messages: Iterable[tuple[memoryview | bytes, int, int]]):
    """A batch of encoded messages sent again with another type and flags:
    (message, nlmsg_type, nlmsg_flags) each (see pr_nl_batch_add_raw)."""
    msgs = list(messages)
    batch = ffi.gc(check_handle(lib.pr_nl_batch_new(len(msgs)), "pr_nl_batch_new"), lib.pr_nl_batch_free)
    for i, (msg, mtype, flags) in enumerate(msgs):
        raw = bytes(msg)
        rc = lib.pr_nl_batch_add_raw(batch, raw, len(raw), mtype, flags)
        if rc < 0:  # (the text is made only for an error)
            check(rc, f"message {i}: cannot be sent again", error=ValueError)
    return batch


def encode(requests: Iterable[Request], *, fast: bool = True):
    """A pr_nl_batch (garbage-collected cdata) holding the encoded requests.

    ``fast`` packs each request's C struct with one precompiled
    ``struct.Struct`` into a shared buffer instead of setting its ~30 fields
    one cffi attribute at a time (measured below).  A request the packer does not cover (multipath legs, a metric
    id past the array, a value out of its C type's range) takes the field-by-
    field path, which is also the reference (tests compare the two)."""
    reqs = list(requests)
    batch = ffi.gc(check_handle(lib.pr_nl_batch_new(len(reqs)), "pr_nl_batch_new"), lib.pr_nl_batch_free)
    rule = out_struct("pr_rule_req")  # reused: fill_rule sets every field, and the add encodes at once
    packed = _Packed() if fast else None
    for i, req in enumerate(reqs):
        if isinstance(req, RuleRequest):
            c = packed.rule(req) if packed is not None else None
            if c is None:
                fill_rule(rule, req)
                c = rule
            rc = lib.pr_nl_batch_add_rule(batch, req.msg_type, req.nlmsg_flags, c)
        elif isinstance(req, RouteRequest):
            c = packed.route(req) if packed is not None else None
            if c is None:
                c, _keep = route_to_c(req)
            rc = lib.pr_nl_batch_add_route(batch, req.msg_type, req.nlmsg_flags, c)
        else:
            raise TypeError(f"request {i}: cannot send a {type(req).__name__} to the kernel")
        if rc < 0:  # (the text is made only for an error)
            check(rc, f"request {i}: cannot encode {req!r}", error=ValueError)
    return batch


# ---- the packed fast path ------------------------------------------------------------


class _Packed:
    """One C struct per kind, packed anew for each request by the codec
    (pr_nl_batch_add_* encodes the message at once, so the struct can be
    reused)."""

    def __init__(self):
        self._rule = out_struct("pr_rule_req")
        self._route = out_struct("pr_route_req")

    def rule(self, r: RuleRequest):
        data = pack_rule(r)
        return None if data is None else copy_into(self._rule, data)

    def route(self, r: RouteRequest):
        data = pack_route(r)
        return None if data is None else copy_into(self._route, data)


def encoded_messages(requests: Iterable[Request], *, fast: bool = True) -> list[bytes]:
    """The netlink messages send() would write (seq 0), for inspection."""
    batch = encode(requests, fast=fast)
    out = []
    size = out_struct("size_t")
    for i in range(lib.pr_nl_batch_count(batch)):
        p = lib.pr_nl_batch_message(batch, i, size)
        out.append(raw_bytes(p, size[0]))
    return out
