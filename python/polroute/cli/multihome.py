"""`polroute multihome`: the multi-homed host's source routing.

    polroute multihome render FILE --to batch|networkd|netplan|nm|systemd-unit [--out DIR] [--family 4|6]
    polroute multihome discover [--netns NS] [-o FILE] [--owner N]
    polroute multihome apply FILE [--netns NS] [--prune] [--dry-run]
    polroute multihome check FILE          (validate only)

Exit status: 0 done, 1 bad input (file, line and key named; nothing applied)
or a failed apply.
"""

from __future__ import annotations

import errno
import os
import sys

from polroute.cli.common import Command, new_parser
from polroute.multihome.hostfile import HostFileError, load_host_file
from polroute.multihome.render import TARGETS, batch_text, render


def _err(msg: str) -> int:
    print(f"polroute multihome: {msg}", file=sys.stderr)
    return 1


def cmd_render(ns) -> int:
    cfg = load_host_file(ns.file)
    if ns.to == "batch" and ns.family:
        files = {
            os.path.splitext(os.path.basename(ns.file))[0] + (".ip6" if ns.family == 6 else ".ip"): batch_text(
                cfg, ns.family
            )
        }
        warnings = []
    else:
        try:
            files, warnings = render(cfg, ns.to)
        except ValueError as e:
            return _err(f"{ns.file}: {e}")
    for w in warnings:
        print(f"polroute multihome: warning: {w}", file=sys.stderr)
    if ns.out:
        for rel, text in files.items():
            path = os.path.join(ns.out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                _write_no_follow(path, text, 0o755 if rel.endswith(".sh") else 0o644)
            except OSError as e:
                return _err(f"{path}: {e.strerror}")
            print(path)
        return 0
    if len(files) == 1:
        sys.stdout.write(next(iter(files.values())))
    else:
        for rel, text in files.items():
            sys.stdout.write(f"# ==> {rel} <==\n{text}\n")
    return 0


def _write_no_follow(path: str, text: str, mode: int) -> None:
    """Write a rendered file, never through a symbolic link (a link planted
    at a unit's or script's path would send root's write elsewhere)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(e.errno, "is a symbolic link: not written through") from None
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        os.fchmod(f.fileno(), mode)


def cmd_discover(ns) -> int:
    from polroute.live.read import read_state
    from polroute.multihome.discover import discover_text

    try:
        state = read_state(ns.netns)
    except (OSError, RuntimeError) as e:
        return _err(f"discover: {e}")
    text = discover_text(state, ns.owner)
    if ns.output and ns.output != "-":
        try:
            _write_no_follow(ns.output, text, 0o644)
        except OSError as e:
            return _err(f"{ns.output}: {e.strerror}")
    else:
        sys.stdout.write(text)
    return 0


def apply_engine():
    """The provisioning engine's entry point (a function, so tests can stand one in)."""
    from polroute.live.apply import apply_text

    return apply_text


def cmd_apply(ns) -> int:
    cfg = load_host_file(ns.file)
    text = batch_text(cfg)
    apply_text = apply_engine()
    try:
        report = apply_text(text, filename=ns.file, netns=ns.netns, owner=cfg.owner, prune=ns.prune, dry_run=ns.dry_run)
    except ValueError as e:  # the engine's DesiredStateError: nothing was sent
        return _err(f"apply: {e}")
    sys.stdout.write(report_text(report))
    return 0 if getattr(report, "ok", True) else 1


def report_text(report) -> str:
    """The engine's ApplyReport.text() (a method), or whatever it gives."""
    text = getattr(report, "text", None)
    text = text() if callable(text) else text if text is not None else str(report)
    return text if text.endswith("\n") else text + "\n"


def cmd_check(ns) -> int:
    cfg = load_host_file(ns.file)
    n = sum(len(u.sources(4)) + len(u.sources(6)) for u in cfg.uplinks) + len(cfg.tenants)
    print(f"{ns.file}: ok: {len(cfg.uplinks)} uplinks, {n} rules, owner protocol {cfg.owner}")
    return 0


def parser():
    ap = new_parser("multihome", __doc__)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{render,discover,apply,check}")
    p = sub.add_parser("render", help="the recipe for one target")
    p.add_argument("file")
    p.add_argument("--to", required=True, choices=TARGETS)
    p.add_argument("--out", metavar="DIR", help="write the files under DIR (else print them)")
    p.add_argument("--family", type=int, choices=(4, 6), help="batch: one family (ip -batch / ip -6 -batch)")
    p.set_defaults(fn=cmd_render)
    p = sub.add_parser("discover", help="a host file from the live state")
    p.add_argument("--netns", metavar="NS")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--owner", type=int, help="owner protocol (default: polroute's)")
    p.set_defaults(fn=cmd_discover)
    p = sub.add_parser("apply", help="render the batch and provision it")
    p.add_argument("file")
    p.add_argument("--netns", metavar="NS")
    p.add_argument("--prune", action="store_true", help="delete owned rules/routes the file no longer has")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(fn=cmd_apply)
    p = sub.add_parser("check", help="validate a host file")
    p.add_argument("file")
    p.set_defaults(fn=cmd_check)
    return ap


def run(ns) -> int:
    try:
        return ns.fn(ns)
    except HostFileError as e:
        return _err(str(e))
    except OSError as e:
        return _err(f"{e.filename or ''}: {e.strerror or e}")


COMMANDS = {"multihome": Command(parser, run)}
