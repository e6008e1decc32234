"""Naming a network namespace safely, and telling two names of one namespace apart from two namespaces.

``--netns`` takes what ``ip netns`` takes: a name (a file under ``/run/netns``)
or an absolute path to a namespace file (``/proc/PID/ns/net``, a bind mount).
A relative path, ``.``/``..`` or a name with a slash is refused, and the file
must be a network namespace (the kernel's NS_GET_NSTYPE says so) -- so a FIFO
or a regular file named by mistake is refused at once instead of hanging or
being used.  Two spellings of one namespace (``rel-x`` and ``/run/netns/rel-x``,
or a second bind mount) have one :class:`NetnsId`: locks and journals are
keyed by it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass, field

NETNS_RUN_DIR = "/run/netns"
_NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), linux/nsfs.h
_CLONE_NEWNET = 0x40000000


class NetnsError(OSError):
    """A --netns value that does not name a network namespace (errno EINVAL)."""

    def __init__(self, message: str):
        super().__init__(errno.EINVAL, message)

    def __str__(self) -> str:
        return self.strerror


@dataclass(frozen=True)
class NetnsId:
    """One network namespace: the device and inode of its nsfs file."""

    dev: int
    ino: int
    path: str = field(compare=False)  # as given, resolved to a path ("" for the caller's own namespace)

    @property
    def tag(self) -> str:
        """A file-name-safe key (used for the lock and the journal)."""
        return f"{self.dev:x}-{self.ino}"

    def label(self) -> str:
        """How reports name it."""
        return self.path or "the current network namespace"


def netns_path(netns: str | None) -> str | None:
    """``ip netns`` name -> its path under /run/netns; an absolute path is kept;
    None or "" is the caller's own namespace.  NetnsError for anything else."""
    if netns is None or netns == "":
        return None
    if netns.startswith("/"):
        return netns
    if "/" in netns or netns in (".", "..") or "\0" in netns:
        raise NetnsError(f"--netns {netns!r}: give a name from `ip netns` or an absolute path")
    return os.path.join(NETNS_RUN_DIR, netns)


def netns_id(netns: str | None) -> NetnsId:
    """The identity of the namespace ``netns`` names (see netns_path).

    The file is opened without blocking (a FIFO cannot hang us; /proc/PID/ns/net
    is a link by nature, so links are followed: the check is on what is
    opened) and must be a network namespace: NetnsError otherwise,
    FileNotFoundError when it does not exist."""
    path = netns_path(netns)
    target = path or "/proc/self/ns/net"
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFoundError(2, f"no network namespace {netns!r}", target) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NetnsError(f"--netns {netns!r}: {target} is not a namespace file")
        try:
            kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
        except OSError:
            raise NetnsError(f"--netns {netns!r}: {target} is not a namespace file") from None
        if kind != _CLONE_NEWNET:
            raise NetnsError(f"--netns {netns!r}: {target} is a namespace, but not a network namespace")
        return NetnsId(st.st_dev, st.st_ino, path or "")
    finally:
        os.close(fd)


def checked_netns_path(netns: str | None) -> str | None:
    """netns_path, after checking that it names a network namespace (netns_id):
    what the netlink socket and the dump reader open."""
    path = netns_path(netns)
    if path is not None:
        netns_id(netns)
    return path
