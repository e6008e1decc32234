"""Reading a live namespace: :func:`read_state` dumps links, addresses, rules
and routes through the C dump reader (:mod:`polroute.live.dump`), reads the
sysctls the model knows from ``/proc/sys/net`` inside the namespace (a
thread that entered it), and asks whether IPv4's local and main tables are
still merged.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterable

from polroute.live.dump import LiveDump
from polroute.live.keys import _DEFAULT_RULES, _is_default_rule, _rule_sig
from polroute.live.objects import SYSCTL_V4_KEYS, SYSCTL_V6_KEYS, KernelState
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    RT_TABLE_LOCAL,
    RTN_LOCAL,
    IPAddress,
)


def _netns_thread(netns: str | None, fn: Callable[[], object]):
    """Run ``fn`` in a new thread that has entered the named network
    namespace (setns only changes the calling thread's namespace)."""
    if netns is None:
        return fn()
    out: dict = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc

    t = threading.Thread(target=work, name=f"polroute-netns-{netns}")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _read_sysctls(netns: str | None, devices: list[str]) -> dict[str, int]:
    def read() -> dict[str, int]:
        out = {}
        for fam, keys in (("ipv4", SYSCTL_V4_KEYS), ("ipv6", SYSCTL_V6_KEYS)):
            for dev in ["all", "default"] + devices:
                for key in keys:
                    try:
                        with open(f"/proc/sys/net/{fam}/conf/{dev}/{key}") as f:
                            out[f"net.{fam}.conf.{dev}.{key}"] = int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
        try:
            with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
                out["net.ipv4.ip_nonlocal_bind"] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        return out

    return _netns_thread(netns, read)


def read_state(
    netns: str | None = None, families: Iterable[int] = (AF_INET, AF_INET6), sysctls: bool = True
) -> KernelState:
    """Dump the current namespace, or the named one (``ip netns`` name):
    links, addresses (both families), the rules and the routes of every table
    of each family in ``families``, the model's sysctls, and whether IPv4's
    local and main tables are still merged (when observable).  The dumps are
    decoded in C (:mod:`polroute.live.dump`)."""
    families = tuple(families)
    state = _read_state_c(netns, families)
    if sysctls:
        read_sysctls_into(state)
    return state


def read_sysctls_into(state: KernelState) -> None:
    """Fill ``state.sysctls`` from its namespace (and time it)."""
    t4 = time.perf_counter()
    state.sysctls = _read_sysctls(state.netns, [l.name for l in state.links])
    state.timings["sysctls"] = time.perf_counter() - t4


def _read_state_c(netns: str | None, families: tuple[int, ...]) -> KernelState:
    state = KernelState(netns)
    with LiveDump(netns) as live:
        t0 = time.perf_counter()
        state.links = live.links()
        state.addrs = live.addrs()
        t1 = time.perf_counter()
        for fam in families:
            state.rules[fam] = live.rules(fam)
        t2 = time.perf_counter()
        for fam in families:
            state.routes[fam] = live.routes(fam)
        t3 = time.perf_counter()
        if AF_INET in families:
            state.v4_merged = _v4_merged(live.route_table, state)
    state.timings = {"links+addrs": t1 - t0, "rules": t2 - t1, "routes": t3 - t2}
    return state


def _v4_merged(route_table: Callable[[IPAddress], int | None], state: KernelState) -> bool | None:
    """IPv4 keeps local and main in one trie until the first rule change; the
    dump cannot tell, a lookup can: a local address answers from table 254
    while merged, 255 after.  None when there is no local route to ask for.
    ``route_table(dst)``: the table the kernel reports for ``route get dst``."""
    rules = state.rules.get(AF_INET, [])
    if [(_rule_sig(r)) for r in rules] != [(p, t) for p, t in _DEFAULT_RULES[AF_INET]] or not all(
        _is_default_rule(r) for r in rules
    ):
        return False  # rules changed: unmerged for sure
    for r in state.routes.get(AF_INET, []):
        if r.type == RTN_LOCAL and r.table == RT_TABLE_LOCAL and r.dst is not None and r.dst_len == 32:
            try:
                tb = route_table(r.dst)
            except Exception:  # noqa: BLE001 - best effort
                return None
            return None if tb is None else tb != RT_TABLE_LOCAL
    return None
