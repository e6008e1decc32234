"""The recipe applied by systemd: a hardened oneshot unit, and hooks that apply
it again when a link comes up or is reconfigured.

The kernel deletes a table's routes through a link when the link goes down
(and never puts them back), and a network manager reconfiguring a link may
drop them too; a oneshot run at boot leaves the host without its recipe after
that.  ``polroute multihome apply`` is idempotent (it plans against what the
kernel holds), so the hooks only restart the unit:

* ``networkd-dispatcher/{routable,configured}.d/50-polroute-multihome``:
  networkd-dispatcher runs them when a link becomes routable (carrier and
  address back) or networkd finished (re)configuring it; ``$IFACE`` names it;
* ``NetworkManager/dispatcher.d/50-polroute-multihome``: NetworkManager runs
  it with ``IFACE ACTION`` on ``up``, ``reapply``, ``dhcp4-change`` and
  ``dhcp6-change``.

Both act only for the host file's uplinks and never wait for the unit
(``systemctl restart --no-block``).  The unit runs as root (rtnetlink needs
CAP_NET_ADMIN) with every other privilege taken away; ``systemd-analyze
security --offline`` rates the old unit 9.6 UNSAFE and this one 1.9 OK
(tests/py/test_multihome_managers.py measures both).
"""

from __future__ import annotations

import os
import sys

from polroute.multihome.hostfile import HostConfig

UNIT_NAME = "polroute-multihome.service"
HOOK = "50-polroute-multihome"
NETWORKD_STATES = ("routable", "configured")
NM_ACTIONS = ("up", "reapply", "dhcp4-change", "dhcp6-change")

HARDENING = """\
# Hardening: root for CAP_NET_ADMIN only; no other capability, no file system
# writes but /run/polroute (its journal and lock), netlink and unix sockets only.
CapabilityBoundingSet=CAP_NET_ADMIN
NoNewPrivileges=yes
RuntimeDirectory=polroute
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_NETLINK AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
IPAddressDeny=any
UMask=0077
"""


def systemd_word(word: str) -> str:
    """One argument of an Exec= line as systemd reads it back (systemd.service(5),
    "Command lines"): double-quoted unless plain, with ``\\`` and ``"`` escaped
    inside the quotes, and ``%`` (specifiers) and ``$`` (environment variables)
    doubled, since systemd expands both inside quotes too."""
    text = word.replace("%", "%%").replace("$", "$$")
    if word and all(c.isalnum() or c in "/._-+=:@," for c in word):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(cfg: HostConfig, python: str | None = None, hardened: bool = True) -> str:
    host = os.path.abspath(cfg.filename)
    exe = python or sys.executable
    command = " ".join(systemd_word(w) for w in (exe, "-m", "polroute", "multihome", "apply", host, "--quiet"))
    description = os.path.basename(host).replace("%", "%%")
    return f"""# polroute multihome: apply {host} at boot, once the network is up,
# and again whenever a dispatcher hook restarts it (a link up or reconfigured).
# Install: cp {UNIT_NAME} /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now {UNIT_NAME}
[Unit]
Description=polroute multi-homed source routing ({description})
Wants=network-online.target
After=network-online.target
# applied after networkd/NetworkManager configured the links; they must keep foreign rules
# (networkd: the networkd.conf drop-in of `polroute multihome render --to networkd`)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={command}
{HARDENING if hardened else ""}
[Install]
WantedBy=multi-user.target
"""


def _hook(cfg: HostConfig, kind: str) -> str:
    names = " ".join(u.interface for u in cfg.uplinks)
    src = os.path.basename(cfg.filename)
    if kind == "networkd":
        head = [
            "#!/bin/sh",
            f"# polroute multihome (from {src}): networkd-dispatcher hook; install as",
            f"# /etc/networkd-dispatcher/{{routable,configured}}.d/{HOOK} (mode 0755, owned by root).",
            "# networkd-dispatcher gives the link in $IFACE and its state in $STATE.",
            'iface="$IFACE"',
        ]
    else:
        head = [
            "#!/bin/sh",
            f"# polroute multihome (from {src}): NetworkManager dispatcher hook; install as",
            f"# /etc/NetworkManager/dispatcher.d/{HOOK} (mode 0755, owned by root).",
            'iface="$1"',
            'case "$2" in',
            f"    {'|'.join(NM_ACTIONS)}) ;;",
            "    *) exit 0 ;;",
            "esac",
        ]
    body = [
        f"# re-apply the recipe when one of the uplinks ({names}) comes up or is reconfigured",
        'case " ' + names + ' " in',
        '    *" $iface "*) ;;',
        "    *) exit 0 ;;",
        "esac",
        f"exec systemctl restart --no-block {UNIT_NAME}",
    ]
    return "\n".join(head + body) + "\n"


def systemd_unit_files(cfg: HostConfig, python: str | None = None) -> tuple[dict[str, str], list[str]]:
    files = {UNIT_NAME: unit_text(cfg, python)}
    for state in NETWORKD_STATES:
        files[f"networkd-dispatcher/{state}.d/{HOOK}"] = _hook(cfg, "networkd")
    files[f"NetworkManager/dispatcher.d/{HOOK}"] = _hook(cfg, "nm")
    return files, []
