"""systemd-networkd, really running, inside a private network namespace
(../shared/docs/consumers-in-namespaces.md).

``ip netns exec`` gives the script a private mount namespace: /sys is remounted
read-only (networkd then treats udev as absent), /run/systemd and the vendor
network directory are empty tmpfs, and /etc/systemd is the test's directory.
Nothing of the host's networking or systemd configuration is touched; no packet
is sent.  networkd is stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess

NETWORKD = "/usr/lib/systemd/systemd-networkd"

_SCRIPT = r"""
set -e
mount -o remount,ro /sys
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /usr/lib/systemd/network
mount --bind "$CONF" /etc/systemd
SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=info timeout 60 "$NETWORKD" >"$LOG" 2>&1 &
pid=$!
settled=0
for i in $(seq 150); do
    sleep 0.1
    busy=0; done_=0
    for f in /run/systemd/netif/links/*; do
        [ -e "$f" ] || continue
        case "$(grep -h '^ADMIN_STATE=' "$f")" in
            ADMIN_STATE=configured|ADMIN_STATE=failed) done_=$((done_ + 1)) ;;
            ADMIN_STATE=unmanaged|ADMIN_STATE=linger) ;;
            *) busy=1 ;;
        esac
    done
    if [ "$busy" = 0 ] && [ "$done_" -ge "$WANT" ]; then settled=1; break; fi
done
sleep 0.3
echo "settled=$settled"
echo "== rules4"; ip -4 rule show
echo "== rules6"; ip -6 rule show
echo "== routes4"; ip -4 route show table all
echo "== routes6"; ip -6 route show table all
kill "$pid"; wait "$pid" || true
"""


def available() -> str | None:
    """None when networkd can be run here, else why not."""
    if not os.path.exists(NETWORKD):
        return f"{NETWORKD} not installed"
    if shutil.which("ip") is None or os.geteuid() != 0:
        return "needs root and ip"
    return None


def run_networkd(netns: str, conf: str, want: int) -> tuple[dict[str, list[str]], str]:
    """Start networkd in ``netns`` with ``conf`` as /etc/systemd until ``want``
    links are configured or failed (bounded; the caller reads the log for
    failures); ({"rules4"|"rules6"|"routes4"|"routes6": lines}, log)."""
    log = os.path.join(conf, "networkd.log")
    from multihome_fixtures import consumer_env

    env = consumer_env(CONF=conf, LOG=log, NETWORKD=NETWORKD, WANT=str(want))
    r = subprocess.run(
        ["ip", "netns", "exec", netns, "bash", "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=90
    )
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    assert r.returncode == 0, (r.stderr, text)
    assert "settled=1" in r.stdout, ("networkd did not configure the links", r.stdout, text)
    out: dict[str, list[str]] = {}
    key = None
    for line in r.stdout.splitlines():
        if line.startswith("== "):
            key = line[3:]
            out[key] = []
        elif key:
            out[key].append(line.strip())
    return out, text


def recipe_view(dump: dict[str, list[str]]) -> dict[str, list[str]]:
    """The recipe's part of a dump, comparable across installers: the rules
    other than the default ones, and the routes of tables other than main and
    local, with no ``proto`` (networkd tags its own objects proto static)."""
    import re

    def norm(line: str) -> str:
        line = re.sub(r" proto \S+", "", line)
        return re.sub(r"\s+", " ", line).strip()

    out = {}
    for fam in ("4", "6"):
        out["rules" + fam] = sorted(norm(x) for x in dump["rules" + fam] if not re.match(r"^(0|32766|32767):", x))
        out["routes" + fam] = sorted(
            norm(x) for x in dump["routes" + fam] if " table " in x and " table local" not in x
        )
        # main's multipath routes: the head line and its legs (printed on lines of their own)
        mp, head = [], None
        for x in dump["routes" + fam]:
            if x.startswith("nexthop"):
                if head is not None and " table " not in head:
                    mp.append(norm(head) + " | " + norm(x))
            else:
                head = x
        out["multipath" + fam] = sorted(mp)
    return out
