"""The run directory, the namespace lock and the apply journal.

An apply writes, before its first operation, what it will do and how to undo
each step (with the full content of every foreign object it replaces) to a
journal file, fsynced, and records each phase before sending it.  A process
that dies -- killed, out of power -- leaves the journal behind; the next
``apply``, ``plan``, ``confirm`` or ``recover`` on that namespace finds it and
undoes (or, asked to, completes) the interrupted apply before anything else.

Files live in one root-only directory (``/run/polroute``, or
``$POLROUTE_RUN_DIR``): created 0700 whatever the umask, refused when it is a
symlink, not ours, or writable by others; every file in it is opened with
O_NOFOLLOW, and created with O_EXCL where it must be new.  Locks and journals
are keyed by the namespace's identity (:class:`~polroute.live.netns.NetnsId`),
not by how it was spelled.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import ipaddress
import json
import os
import secrets
import stat
import time
from typing import Any

from polroute.live.netns import NetnsId
from polroute.types.requests import NexthopRequest, RouteRequest, RuleRequest

JOURNAL_VERSION = 1


class RunDirError(RuntimeError):
    """The run directory cannot be trusted (or made)."""


class LockBusy(RuntimeError):
    """Another polroute process holds the namespace."""


# ---------------------------------------------------------------- run directory


def run_dir() -> str:
    """The run directory, created 0700 if missing; RunDirError if it is a
    symlink, not a directory, not owned by us, or open to group or others."""
    path = os.environ.get("POLROUTE_RUN_DIR", "/run/polroute")
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask; chmod is not
    except FileExistsError:
        pass
    except OSError as e:
        raise RunDirError(f"run directory {path}: {e.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"run directory {path} is not a directory (a symlink or a file)")
    if st.st_uid != os.geteuid():
        raise RunDirError(f"run directory {path} belongs to uid {st.st_uid}, not to us")
    if st.st_mode & 0o022:  # others could have planted or removed files: trust nothing in it
        raise RunDirError(
            f"run directory {path} is writable by other users (mode {st.st_mode & 0o777:o}); make it 0700"
        )
    if st.st_mode & 0o077:  # ours, only readable by others (made by an older polroute): close it
        os.chmod(path, 0o700)
    return path


def _open_in(directory: str, name: str, flags: int, mode: int = 0o600) -> int:
    """os.open of a file in the run directory, never through a symlink."""
    return os.open(os.path.join(directory, name), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(name: str, data: bytes, *, exclusive: bool = False) -> str:
    """Write ``name`` in the run directory durably (a new file fsynced, then
    renamed over the old one, then the directory fsynced).  With
    ``exclusive``, FileExistsError if ``name`` exists."""
    directory = run_dir()
    final = os.path.join(directory, name)
    if exclusive and os.path.lexists(final):
        raise FileExistsError(errno.EEXIST, "exists", final)
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = _open_in(directory, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(os.path.join(directory, tmp), final)
    _fsync_dir(directory)
    return final


def open_new(name: str) -> int:
    """A new file in the run directory, open for writing (O_EXCL, O_NOFOLLOW)."""
    return _open_in(run_dir(), name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def read_file(name: str) -> bytes | None:
    """The content of ``name`` in the run directory (None if it is missing);
    a symlink there is an error, never followed."""
    directory = run_dir()
    try:
        fd = _open_in(directory, name, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RunDirError(f"{os.path.join(directory, name)} is a symbolic link") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunDirError(f"{os.path.join(directory, name)} is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def rename_file(old: str, new: str) -> None:
    """Rename within the run directory (atomic), durably."""
    directory = run_dir()
    os.rename(os.path.join(directory, old), os.path.join(directory, new))
    _fsync_dir(directory)


def remove_file(name: str) -> bool:
    """Remove ``name`` from the run directory; False if it was not there."""
    directory = run_dir()
    try:
        os.unlink(os.path.join(directory, name))
    except FileNotFoundError:
        return False
    _fsync_dir(directory)
    return True


# ---------------------------------------------------------------- the lock


class NamespaceLock:
    """One polroute writer per namespace: an flock on ``lock-<netns id>``.

    Held from before the state is read until the apply ends (or, with
    --confirm, until the watchdog has decided).  The file is removed on
    release while still locked; a taker that finds the file replaced under
    it after locking tries again, so two holders are never possible."""

    def __init__(self, ns: NetnsId, wait: float = 0.0):
        self.ns = ns
        self.name = f"lock-{ns.tag}"
        self.wait = wait
        self.fd = -1

    def acquire(self) -> NamespaceLock:
        directory = run_dir()
        deadline = time.monotonic() + self.wait
        while True:
            fd = _open_in(directory, self.name, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    who = f" (pid {holder})" if holder else ""
                    raise LockBusy(
                        f"another polroute process{who} is changing {self.ns.label()} "
                        f"({os.path.join(directory, self.name)})"
                    ) from None
                time.sleep(0.05)
                continue
            try:
                same = os.fstat(fd).st_ino == os.lstat(os.path.join(directory, self.name)).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return self
            os.close(fd)  # released and removed by its holder meanwhile: take the new one

    def holder(self) -> int | None:
        """The pid written by the holder, if readable."""
        try:
            data = read_file(self.name)
            return int(data) if data else None
        except (ValueError, OSError, RunDirError):
            return None

    @classmethod
    def adopt(cls, ns: NetnsId, fd: int) -> NamespaceLock:
        """The lock held through an inherited descriptor (the watchdog's)."""
        lock = cls(ns)
        lock.fd = fd
        return lock

    def detach(self) -> None:
        """Close this process's descriptor only: another process sharing the
        open file (a watchdog given it) keeps the lock, and removes the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            remove_file(self.name)
        finally:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> NamespaceLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------- requests as JSON

_TYPES = {"RuleRequest": RuleRequest, "RouteRequest": RouteRequest, "NexthopRequest": NexthopRequest}


def request_to_json(req: Any) -> Any:
    """A request (with its nexthops, metrics and addresses) as plain JSON data.
    Subclasses (the dump's KRule/KRoute) are written as their request type:
    the journal keeps what is sent, every field of it."""
    if req is None:
        return None
    for name, cls in _TYPES.items():
        if isinstance(req, cls):
            out: dict[str, Any] = {"_class": name}
            for f in dataclasses.fields(cls):
                out[f.name] = _value_to_json(getattr(req, f.name))
            return out
    raise TypeError(f"cannot journal {type(req).__name__}")


def _value_to_json(v: Any) -> Any:
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return {"ip": str(v)}
    if isinstance(v, list):
        return [request_to_json(x) for x in v]
    if isinstance(v, dict):
        return {"map": [[k, x] for k, x in v.items()]}
    return v


def request_from_json(data: Any) -> Any:
    """The inverse of request_to_json."""
    if data is None:
        return None
    cls = _TYPES[data["_class"]]
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kw[f.name] = _value_from_json(data[f.name])
    return cls(**kw)


def _value_from_json(v: Any) -> Any:
    if isinstance(v, dict) and "ip" in v:
        return ipaddress.ip_address(v["ip"])
    if isinstance(v, dict) and "map" in v:
        return {int(k): x for k, x in v["map"]}
    if isinstance(v, list):
        return [request_from_json(x) for x in v]
    return v


# ---------------------------------------------------------------- the journal
#
# Two files per namespace: ``journal-<id>`` (what the apply sends, written
# once before the first operation: a JSON header and the encoded netlink
# messages of every phase, as sent, plus the messages that undo replaces) and
# ``state-<id>.json`` (small, rewritten at every step: which phases may have
# reached the kernel, who is responsible for the journal now, the confirm
# deadline).  An add is undone by sending its own message as a delete, a
# delete by sending it as an add: only replaces need a message of their own.

MAGIC = b"PRJ1"


def journal_name(ns: NetnsId) -> str:
    return f"journal-{ns.tag}"


def state_name(ns: NetnsId) -> str:
    return f"state-{ns.tag}.json"


def process_start(pid: int) -> int | None:
    """The start time of a process (clock ticks since boot), None if it is gone:
    with the pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22, starttime; [0] is field 3
    except (OSError, IndexError, ValueError):
        return None


def owner_record(pid: int | None = None) -> dict:
    """Who is responsible for a journal: a pid and its start time."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start": process_start(pid)}


def alive(owner: dict) -> bool:
    """True while the process that owns a journal still runs."""
    pid, start = owner.get("pid"), owner.get("start")
    return pid is not None and start is not None and process_start(pid) == start


def write_journal(ns: NetnsId, header: dict, blobs: list[bytes]) -> None:
    """The journal of one apply: ``header`` (JSON data) and ``blobs`` (the
    encoded batches), durably, refusing to overwrite an unfinished one."""
    header = dict(header, version=JOURNAL_VERSION, netns={"dev": ns.dev, "ino": ns.ino, "path": ns.path})
    header["blobs"] = [len(b) for b in blobs]
    head = json.dumps(header, separators=(",", ":")).encode()
    write_file(journal_name(ns), b"".join([MAGIC, len(head).to_bytes(4, "little"), head, *blobs]), exclusive=True)


def read_journal(ns: NetnsId) -> tuple[dict, list[bytes]] | None:
    """(header, blobs) of the namespace's journal, or None.  RunDirError for a
    file that is not one (it is kept for a person to read)."""
    raw = read_file(journal_name(ns))
    if raw is None:
        return None
    where = os.path.join(run_dir(), journal_name(ns))
    try:
        if raw[:4] != MAGIC:
            raise ValueError("not a polroute journal")
        n = int.from_bytes(raw[4:8], "little")
        header = json.loads(raw[8 : 8 + n])
        if header.get("version") != JOURNAL_VERSION:
            raise ValueError(f"journal version {header.get('version')!r}")
        blobs, i = [], 8 + n
        for size in header["blobs"]:
            blobs.append(raw[i : i + size])
            i += size
        if i != len(raw):
            raise ValueError("truncated")
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{where}: {e}") from None
    return header, blobs


def write_state(ns: NetnsId, state: dict) -> None:
    """The journal's progress (durable before the step it announces)."""
    write_file(state_name(ns), json.dumps(state, separators=(",", ":")).encode())


def read_state_file(ns: NetnsId) -> dict:
    raw = read_file(state_name(ns))
    if raw is None:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def remove_stale_temporaries(ns: NetnsId) -> None:
    """The half-written files of a process killed inside write_file (``.NAME.PID.X``)."""
    directory = run_dir()
    for entry in os.listdir(directory):
        for name in (journal_name(ns), state_name(ns)):
            if entry.startswith(f".{name}."):
                pid = entry[len(name) + 2 :].split(".", 1)[0]
                if pid.isdigit() and process_start(int(pid)) is None:
                    remove_file(entry)


def discard(ns: NetnsId) -> None:
    """The apply is over (committed or undone): its journal goes, then its
    progress (a progress file alone means nothing is left to do)."""
    remove_file(journal_name(ns))
    remove_file(state_name(ns))
