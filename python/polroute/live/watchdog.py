"""The ``--confirm`` watchdog: the process that holds the rollback deadline.

``apply --confirm SECONDS`` applies, then starts this process in a session of
its own (no controlling terminal: a hang-up, Ctrl-C or the end of the SSH
session never reaches it) and hands it the namespace lock and the journal.
From then on the watchdog alone decides:

* ``confirm-<token>`` appears in the run directory (``polroute confirm``, or
  ``yes`` typed at the applying terminal): the journal is discarded, the
  change stays;
* ``rollback-<token>`` appears (``no`` typed, or the applying process got
  SIGINT, SIGTERM or SIGHUP), or the deadline passes: the change is undone
  from the journal.

Whatever happens to the applying process -- killed, its terminal gone -- the
deadline holds.  If the watchdog itself is killed, the journal stays and the
next polroute command on the namespace undoes it (``live/session.py``).
Run as ``python -m polroute.live.watchdog NETNS TOKEN DEADLINE LOCKFD``
(DEADLINE in CLOCK_MONOTONIC seconds, which all processes share).
"""

from __future__ import annotations

import json
import signal
import sys
import time

from polroute.live import journal
from polroute.live.netlink import KernelSocket
from polroute.live.netns import netns_id
from polroute.live.rollback import undo_journal

POLL_SECONDS = 0.05


def confirm_name(token: str) -> str:
    return f"confirm-{token}"


def rollback_name(token: str) -> str:
    return f"rollback-{token}"


def ack_name(token: str) -> str:
    return f"confirmed-{token}"


def result_name(token: str) -> str:
    return f"result-{token}.json"


def log_name(token: str) -> str:
    return f"watchdog-{token}.log"


def _roll_back(ns, netns: str | None) -> list[str]:
    header, blobs = journal.read_journal(ns)
    started = int(journal.read_state_file(ns).get("phases_started", 0))
    with KernelSocket(netns) as ks:
        ks.set_buffers(1 << 22, 1 << 22, force=True)
        return undo_journal(ks, header, blobs, started, netns)


def watch(netns: str | None, token: str, deadline: float, lock_fd: int) -> str:
    """Wait for the decision and carry it out; "confirmed" or "rolled-back"."""
    ns = netns_id(netns)
    lock = journal.NamespaceLock.adopt(ns, lock_fd)
    try:
        state = journal.read_state_file(ns)
        applier = state.get("applier", {})
        journal.write_state(ns, dict(state, state="waiting", owner=journal.owner_record()))
        while True:
            if journal.read_file(confirm_name(token)) is not None:
                journal.discard(ns)
                journal.rename_file(confirm_name(token), ack_name(token))  # tells `polroute confirm` it took
                outcome, problems = "confirmed", []
                break
            if journal.read_file(rollback_name(token)) is not None or time.monotonic() >= deadline:
                journal.write_state(ns, dict(journal.read_state_file(ns), state="rolling-back"))
                problems = _roll_back(ns, netns)
                journal.discard(ns)
                journal.remove_file(rollback_name(token))
                outcome = "rolled-back"
                break
            time.sleep(POLL_SECONDS)
        # a late `polroute confirm` must not find a flag that outlives this apply
        journal.remove_file(confirm_name(token))
        if journal.alive(applier):  # someone to tell
            journal.write_file(result_name(token), json.dumps({"outcome": outcome, "problems": problems}).encode())
        else:  # nobody will read the log of a watchdog that did its job
            journal.remove_file(log_name(token))
        return outcome
    finally:
        lock.release()


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    netns, token, deadline, fd = argv
    try:
        watch(netns or None, token, float(deadline), int(fd))
    except Exception as e:  # noqa: BLE001 - nobody reads our stderr: the journal stays for the next command
        print(f"polroute watchdog: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
