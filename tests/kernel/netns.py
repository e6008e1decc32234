"""Private network namespaces for the kernel differential tests.

Everything here only *configures* a namespace that this process created
(links, addresses, routes, rules, sysctls) and asks ``ip route get``.  No
packet is ever sent by this code.  Every namespace is named
``prt-<pid>-<counter>``, deleted on ``__exit__``, and any that a crash left
behind in this process are deleted by :func:`cleanup_all` (registered with
``atexit`` and called by the test session fixture).

Usage::

    with Netns() as ns:
        res = ns.batch("link set lo up\\nroute add 10.0.0.0/8 dev lo\\n")
        res.failures        # {lineno: "Error: ... ." | "RTNETLINK answers: ..."}
        ns.sysctl("net.ipv4.ip_forward", 1)
        ns.route_get_json(["10.1.2.3", "mark", "5"])
"""

from __future__ import annotations

import atexit
import errno as _errno
import itertools
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field

IP = os.environ.get("POLROUTE_IP", "ip")
# CI sets POLROUTE_NETNS_PREFIX (prt-ci<pid>-) so that its cleanup deletes
# only the namespaces of its own run, never those of a run beside it.
PREFIX = os.environ.get("POLROUTE_NETNS_PREFIX", "prt-")
if not PREFIX.startswith("prt-"):
    raise ValueError("POLROUTE_NETNS_PREFIX must start with prt-")
_counter = itertools.count(1)
_lock = threading.Lock()
_live: set[str] = set()

# A command that always fails with a fixed message and writes nothing to
# stdout.  Put after every batch line it tells, on stderr and in order, that
# the line before it has been executed (see Netns.batch).
_MARK_DEV = "prtmark0"
MARKER = f"link show dev {_MARK_DEV}"
_MARKER_MSG = f'Device "{_MARK_DEV}" does not exist.'
_FAILED_RE = re.compile(r"^Command failed (?:-|\S+):(\d+)$")

# strerror text -> errno name (glibc texts, which iproute2 prints).
ERRNO_BY_TEXT: dict[str, str] = {}
for _num, _name in sorted(_errno.errorcode.items(), reverse=True):
    ERRNO_BY_TEXT[os.strerror(_num)] = _name
# Extack messages seen from `ip route get` / batch lines, with the errno the
# kernel returned alongside (checked with strace / raw netlink).
ERRNO_BY_EXTACK = {
    "Nexthop has invalid gateway": "EINVAL",
    "Backward goto not supported": "EINVAL",
    "Invalid prefix for given prefix length": "EINVAL",
    "FIB table does not exist": "ESRCH",
    "Invalid prefsrc address": "EINVAL",
    "ipv4: Unsupported attribute in route get request": "EINVAL",
    "ipv4: Invalid values in header for route get request": "EINVAL",
    "Device for nexthop is not up": "ENETDOWN",
    "Nexthop device is not up": "ENETDOWN",
}


def errno_name(text: str) -> str:
    """Map an ip(8) error text back to an errno name (best effort).

    ``RTNETLINK answers: <strerror>`` maps exactly; ``Error: <extack>.`` uses
    :data:`ERRNO_BY_EXTACK` and otherwise guesses EINVAL (the kernel's usual
    errno for extack-carrying failures); ``Cannot find device`` is ENODEV.
    """
    t = text.strip().splitlines()[-1].strip() if text.strip() else ""
    if t.startswith("RTNETLINK answers: "):
        return ERRNO_BY_TEXT.get(t[len("RTNETLINK answers: ") :], "EUNKNOWN")
    if t.startswith("Error: "):
        msg = t[len("Error: ") :].rstrip(".")
        return ERRNO_BY_EXTACK.get(msg, "EINVAL")
    if t.startswith("Cannot find device"):
        return "ENODEV"
    return ERRNO_BY_TEXT.get(t, "EINVAL")


# Never hand a sanitizer runtime to ip(8): under the ASan test run (LD_PRELOAD=libasan)
# every `ip route get` aborted (iproute2 6.1's print_route trips strncpy-param-overlap)
# and each exec got ~70x slower.
_SCRUB_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PYTHONMALLOC")


def _child_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}


def _run(argv: list[str], stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=_child_env())


@dataclass
class BatchResult:
    """Outcome of ``ip -force -batch``: which lines failed and with what text."""

    failures: dict[int, str] = field(default_factory=dict)  # 1-based line -> message
    warnings: dict[int, str] = field(default_factory=dict)  # stderr of lines that did not fail
    executed: int = 0  # number of lines run (all of them unless `fatal`)
    fatal: int | None = None  # line at which ip exited (usage error); later lines not run
    fatal_msg: str = ""

    def refused(self) -> dict[int, str]:
        """Lines refused, the fatal one included."""
        out = dict(self.failures)
        if self.fatal is not None:
            out[self.fatal] = self.fatal_msg
        return out


def _is_link_event(line: str) -> bool:
    """Batch lines after which linkwatch may run asynchronously."""
    w = line.split("#", 1)[0].split()
    if len(w) >= 2 and w[0] in ("link", "l", "li", "lin") and w[1] in ("set", "del", "delete"):
        return "up" in w[3:] or "down" in w[3:] or w[1] != "set"
    return False


def _poll(done, timeout: float) -> bool:
    """Call done() every few ms until it is true (True) or timeout s passed (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.003)
    return True


def _is_addr_line(line: str) -> bool:
    w = line.split("#", 1)[0].split()
    return len(w) >= 2 and "address".startswith(w[0]) and w[0].startswith("a")


class Netns:
    """A private network namespace, created on enter and deleted on exit."""

    def __init__(self, name: str | None = None):
        self.name = name or f"{PREFIX}{os.getpid()}-{next(_counter)}"
        if not self.name.startswith("prt-"):
            raise ValueError("namespace names must start with prt-")
        self.created = False

    # ---- lifetime ---------------------------------------------------------
    def create(self) -> Netns:
        with _lock:
            _live.add(self.name)
        r = _run([IP, "netns", "add", self.name])
        if r.returncode != 0:
            with _lock:
                _live.discard(self.name)
            raise RuntimeError(f"ip netns add {self.name}: {r.stderr.strip()}")
        self.created = True
        return self

    def delete(self) -> None:
        if self.created:
            _run([IP, "netns", "del", self.name])
            self.created = False
        with _lock:
            _live.discard(self.name)

    def __enter__(self) -> Netns:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.delete()

    # ---- configuration -----------------------------------------------------
    def ip(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return _run([IP, "-n", self.name, *args], stdin=stdin)

    def batch(self, text: str, settle: bool = True, family: int = 0) -> BatchResult:
        """Run ``text`` with ``ip -n NS -force -batch -`` (``ip -6 ...`` when
        ``family`` is 6, which is the only way a batch can make IPv6 rules).

        Lines are numbered from 1 like ip does.  Each error message is mapped
        back to its line.  A marker command runs after every line, so even
        stderr output of lines that did not fail (warnings) and a usage error
        that makes ip exit (no ``Command failed`` line) are attributed to the
        right line.  With ``settle``, the batch is cut after every line that
        changes a link's state and the namespace is left to settle (linkwatch
        runs carrier changes asynchronously), so that the kernel's state is
        the one a sequential model gives.
        """
        lines = text.splitlines()
        res = BatchResult()
        chunks: list[tuple[int, list[str]]] = []
        start, cur = 0, []
        for i, line in enumerate(lines):
            cur.append(line)
            if settle and _is_link_event(line):
                chunks.append((start, cur))
                start, cur = i + 1, []
        if cur:
            chunks.append((start, cur))
        opts = ["-6"] if family == 6 else ["-4"] if family == 4 else []
        for offset, chunk in chunks:
            self._batch_chunk(chunk, offset, res, opts)
            if res.fatal is not None:
                break
            if settle and _is_link_event(chunk[-1]):
                self.settle()
        if settle and any(_is_addr_line(l) for l in lines):
            self.settle_addresses()
        return res

    def _batch_chunk(self, lines: list[str], offset: int, res: BatchResult, opts: list[str]) -> None:
        feed = []
        for line in lines:
            feed.append(line)
            feed.append(MARKER)
        r = self.ip(*opts, "-force", "-batch", "-", stdin="\n".join(feed) + "\n")
        buf: list[str] = []
        done = 0
        for sl in r.stderr.splitlines():
            m = _FAILED_RE.match(sl.strip())
            if not m:
                buf.append(sl)
                continue
            n = int(m.group(1))
            if n % 2 == 1:  # a real line failed
                res.failures[offset + (n + 1) // 2] = "\n".join(buf).strip()
            else:  # marker after line n/2
                if buf and buf[-1].strip() == _MARKER_MSG:
                    buf.pop()
                if any(b.strip() for b in buf):
                    res.warnings[offset + n // 2] = "\n".join(buf).strip()
                done = n // 2
            buf = []
        res.executed = offset + done
        if done < len(lines):
            res.fatal = offset + done + 1
            res.fatal_msg = "\n".join(buf).strip()

    def settle(self, timeout: float = 2.0) -> None:
        """Wait until linkwatch has caught up with every link's carrier.

        Settled means: operstate agrees with (UP and LOWER_UP) for every link,
        and every up link with carrier (other than lo) has its IPv6 ff00::/8
        route, which addrconf adds in the same linkwatch pass.
        """
        if _poll(self._settled, timeout):
            time.sleep(0.002)

    def settle_addresses(self, timeout: float = 2.0) -> bool:
        """Wait until the kernel has finished every IPv6 address: none on a
        link with carrier is tentative, and every address that is not
        tentative has its local route.

        Even with ``nodad`` the kernel finishes an address (and inserts its
        local route) from a workqueue, so on a busy machine a lookup or a dump
        right after ``addr add`` can miss the address's local route.  Returns
        False on timeout.
        """
        return _poll(self._addresses_settled, timeout)

    def _ip_json(self, *args: str) -> list | None:
        """``ip -j ARGS`` parsed, or None when the output is not JSON."""
        try:
            return json.loads(self.ip("-j", *args).stdout or "[]")
        except ValueError:
            return None

    def _addresses_settled(self) -> bool:
        links = self._ip_json("-6", "addr", "show")
        if links is None:
            return False
        want = set()
        for l in links:
            carrier = "LOWER_UP" in l.get("flags", []) and "UP" in l.get("flags", [])
            for a in l.get("addr_info", []):
                if a.get("tentative"):
                    if carrier and not a.get("dadfailed"):
                        return False
                    continue
                if not a.get("dadfailed") and a.get("local"):
                    want.add(a["local"])
        if not want:
            return True
        routes = self._ip_json("-6", "route", "show", "table", "local", "type", "local")
        return routes is not None and want <= {x.get("dst") for x in routes}

    def _settled(self) -> bool:
        links = self._ip_json("link", "show")
        if links is None:
            return False
        ready = set()
        for l in links:
            flags = set(l.get("flags", []))
            oper = l.get("operstate", "")
            live = "UP" in flags and "LOWER_UP" in flags
            if live and oper not in ("UP", "UNKNOWN"):
                return False
            if not live and oper in ("UP",):
                return False
            if live and l.get("ifname") != "lo":
                ready.add(l.get("ifname"))
        if not ready:
            return True
        routes = self._ip_json("-6", "route", "show", "table", "local", "type", "multicast")
        if routes is None:
            return False
        mroutes = {x.get("dev") for x in routes if x.get("dst") == "ff00::/8"}
        # a link whose IPv6 is disabled never gets one; only wait for the others
        return all(dev in mroutes or self._ipv6_disabled(dev) for dev in ready)

    def _ipv6_disabled(self, dev: str) -> bool:
        r = _run([IP, "netns", "exec", self.name, "cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"])
        return r.stdout.strip() != "0"

    def sysctl(self, key: str, value) -> str | None:
        """Set a sysctl inside the namespace; returns None or the error text."""
        r = _run([IP, "netns", "exec", self.name, "sysctl", "-qw", f"{key}={value}"])
        if r.returncode != 0:
            return r.stderr.strip() or f"sysctl {key} failed"
        return None

    def sysctl_get(self, key: str) -> str:
        r = _run([IP, "netns", "exec", self.name, "sysctl", "-n", key])
        return r.stdout.strip()

    # ---- queries ---------------------------------------------------------
    def route_get_json(self, argv: list[str]) -> dict:
        """``ip -n NS -j route get ARGV`` in normal mode (strict checking on).

        Returns the first JSON object, or ``{"error": text, "errno": NAME}``.
        """
        r = self.ip("-j", "route", "get", *argv)
        out = r.stdout.strip()
        if r.returncode == 0 and out:
            try:
                data = json.loads(out)
            except ValueError:
                return {"error": "unparsable ip output: " + out, "errno": "EUNKNOWN"}
            if isinstance(data, list) and data:
                return data[0]
            return {"error": "empty ip output", "errno": "EUNKNOWN"}
        text = r.stderr.strip()
        return {"error": text, "errno": errno_name(text)}

    def show(self) -> str:
        """A human dump of the namespace's state (for failure messages)."""
        parts = []
        for args in (
            ["-d", "link", "show"],
            ["addr", "show"],
            ["rule", "show"],
            ["-6", "rule", "show"],
            ["route", "show", "table", "all"],
            ["-6", "route", "show", "table", "all"],
        ):
            parts.append(f"$ ip {' '.join(args)}\n" + self.ip(*args).stdout)
        return "\n".join(parts)


def cleanup_all() -> None:
    """Delete every namespace this process created and has not deleted yet."""
    with _lock:
        names = list(_live)
    for name in names:
        _run([IP, "netns", "del", name])
        with _lock:
            _live.discard(name)


atexit.register(cleanup_all)


def netns_available() -> bool:
    """True when we may create network namespaces here (root + ip netns)."""
    if os.geteuid() != 0:
        return False
    try:
        with Netns() as ns:
            return ns.ip("link", "show", "lo").returncode == 0
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return False
