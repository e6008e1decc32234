"""`polroute multihome`: the multi-homed host's source routing.

    polroute multihome render FILE --to batch|networkd|netplan|nm|systemd-unit [--out DIR] [--family 4|6]
        [--base DIR]... [--network-file IF=NAME]... [--systemd-version N] [--nm-version V]
    polroute multihome discover [--netns NS] [-o FILE] [--owner N] [--json]
    polroute multihome apply FILE [--netns NS] [--prune] [--dry-run] [--quiet]
    polroute multihome check FILE [--json] (validate only)
discover --json: {"host": THE HOST FILE AS JSON, "notes": [its comments]}
(JSON is YAML: `jq .host` of it is a host file); check --json: {"file",
"uplinks", "tenants", "rules", "owner"} (schemas docs/schemas/
multihome-discover.json, multihome-check.json).

apply's messages name the host file's line of the uplink or tenant behind
each object (FILE:LINE (uplink eth0, uplinks[0].gateway): ...), never a line
of the rendered batch.  A route the kernel holds with another protocol is a
conflict: apply leaves it alone (it has no --adopt).

Exit status: 0 done, 1 bad input (file, line and key named; nothing
applied), a conflict with what the kernel holds (nothing sent), or out of
memory / too many open files before anything was sent; apply also: 2 the
kernel refused an operation, or memory or descriptors ran out after sending
(everything undone), 4 the undo itself failed (the report lists what differs
from before).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys

from polroute.cli.common import (
    Command,
    add_json_option,
    add_quiet_option,
    new_parser,
    progress,
    resource_problem,
)
from polroute.cli.exitcodes import Exit
from polroute.multihome.hostfile import HostFileError, load_host_file
from polroute.multihome.render import TARGETS, batch_entries, batch_text, executable, render

EXIT_OK, EXIT_INPUT, EXIT_REFUSED, EXIT_UNDO_FAILED = Exit.OK, Exit.USAGE, Exit.ERROR_ANSWER, Exit.PARTIAL


def _load(path: str):
    """The host file ``path`` (``-``: stdin, named ``<stdin>`` in messages)."""
    if path != "-":
        return load_host_file(path)
    from polroute.multihome.hostfile import decode_host_bytes, parse_host_text

    return parse_host_text(decode_host_bytes(sys.stdin.buffer.read(), "<stdin>"), "<stdin>")


def _err(msg: str) -> int:
    print(f"polroute multihome: {msg}", file=sys.stderr)
    return Exit.USAGE


def cmd_render(ns) -> int:
    cfg = _load(ns.file)
    if ns.to == "batch" and ns.family:
        files = {
            os.path.splitext(os.path.basename(ns.file))[0] + (".ip6" if ns.family == 6 else ".ip"): batch_text(
                cfg, ns.family
            )
        }
        warnings = []
    else:
        try:
            files, warnings = render(cfg, ns.to, **_render_options(ns))
        except ValueError as e:
            return _err(f"{ns.file}: {e}")
    for w in warnings:
        print(f"polroute multihome: warning: {w}", file=sys.stderr)
    if ns.out:
        for rel, text in files.items():
            path = os.path.join(ns.out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                _write_no_follow(path, text, 0o755 if executable(rel) else 0o644)
            except OSError as e:
                return _err(f"{path}: {e.strerror}")
            print(path)
        return Exit.OK
    if len(files) == 1:
        sys.stdout.write(next(iter(files.values())))
    else:
        for rel, text in files.items():
            sys.stdout.write(f"# ==> {rel} <==\n{text}\n")
    return Exit.OK


NETPLAN_DIRS = ("/etc/netplan", "/run/netplan", "/lib/netplan")


def _render_options(ns) -> dict:
    """render()'s options from the command line; the base configuration is this
    host's (networkd's and netplan's directories) unless --base names one."""
    from polroute.multihome.networkd import default_network_dirs

    files = {}
    for item in ns.network_file or []:
        ifname, sep, name = item.partition("=")
        if not sep or not ifname or not name:
            raise ValueError(f"--network-file {item!r}: expected INTERFACE=NAME.network")
        files[ifname] = name
    base = ns.base
    return {
        "network_dirs": base if base is not None else default_network_dirs(),
        "network_files": files,
        "systemd_version": ns.systemd_version,
        "netplan_dirs": base if base is not None else [d for d in NETPLAN_DIRS if os.path.isdir(d)],
        "nm_version": ns.nm_version,
    }


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
    if ns.json:
        from polroute.cli.output import dumps

        text = dumps(discovered_json(text), "indented") + "\n"
    if ns.output and ns.output != "-":
        try:
            _write_no_follow(ns.output, text, 0o644)
        except OSError as e:
            return _err(f"{ns.output}: {e.strerror}")
    else:
        sys.stdout.write(text)
    return Exit.OK


_COMMENT = re.compile(r"(?:^|\s)#\s?(.*)$")


def _yaml_data(node):
    """A composed YAML node as plain data: integers as int, every other
    scalar as its text (as the host file reader takes them)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return {k.value: _yaml_data(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_data(v) for v in node.value]
    return int(node.value) if node.tag == "tag:yaml.org,2002:int" else node.value


def discovered_json(text: str) -> dict:
    """discover's host file ``text`` as ``{"host": ..., "notes": [...]}``:
    the data, and its comments in order (what discover left out, and why)."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    notes = [m.group(1).strip() for line in text.splitlines() if (m := _COMMENT.search(line))]
    return {"host": _yaml_data(root) if root is not None else {}, "notes": notes}


def apply_engine():
    """The provisioning engine's entry point (a function, so tests can stand one in)."""
    from polroute.live.apply import apply_text

    return apply_text


class Origins:
    """Messages about the rendered batch, told in the host file's terms: the
    engine reads the batch as ``BATCH:N``; each such place becomes the YAML
    line of the uplink or tenant that rendered line N (cli messages never
    name a line of a file the user did not write)."""

    ADOPT = re.compile(r";? ?it is left alone unless --adopt is given")

    def __init__(self, filename: str, entries: list[tuple[str, tuple[int, str]]]):
        self.filename = filename
        self.batch_name = f"{filename} (rendered batch)"
        self.entries = entries
        self._place = re.compile(re.escape(self.batch_name) + r":(\d+)")

    def where(self, n: int, quote: bool = False) -> str:
        if not 1 <= n <= len(self.entries):
            return f"{self.filename}: rendered line {n}"
        text, (line, what) = self.entries[n - 1]
        said = what + (f": `{text}`" if quote and not text.startswith("#") else "")
        return f"{self.filename}:{line}" + (f" ({said})" if said else "")

    def text(self, message: str, quote: bool = False) -> str:
        """``message`` with every batch place as the host file's, and no
        option multihome apply does not take suggested."""
        message = self._place.sub(lambda m: self.where(int(m.group(1)), quote), message)
        return self.ADOPT.sub(
            "; multihome apply leaves it alone: delete it, or give the uplink a table of its own (`table:`)", message
        )


def cmd_apply(ns) -> int:
    cfg = _load(ns.file)
    entries = batch_entries(cfg)
    origins = Origins(ns.file, entries)
    text = "\n".join(line for line, _ in entries) + "\n"
    apply_text = apply_engine()
    try:
        with progress("multihome apply", ns.quiet) as prog:
            report = apply_text(
                text,
                filename=origins.batch_name,
                netns=ns.netns,
                owner=cfg.owner,
                prune=ns.prune,
                dry_run=ns.dry_run,
                progress=_tell(prog),
            )
    except ValueError as e:  # the engine's DesiredStateError: nothing was sent
        lines = getattr(e, "errors", None) or str(e).splitlines()
        for line in lines:
            _err(f"apply: {origins.text(line, quote=True)}")
        return _err("apply: nothing was changed")
    except (MemoryError, OSError) as e:
        if resource_problem(e):
            from polroute.cli.provision import _out_of_resources

            return _out_of_resources("multihome apply", ns.netns, e)
        raise
    except RuntimeError as e:  # the namespace changed meanwhile (nothing sent), a netlink failure
        return _err(f"apply: {origins.text(str(e))}")
    ok = getattr(report, "ok", True)
    if getattr(report, "dry_run", False) and getattr(report, "plan", None) is not None:
        sys.stdout.write(origins.text(report.plan.text()))
    (sys.stdout if ok else sys.stderr).write(origins.text(report_text(report)))
    if ok:
        return EXIT_OK
    if getattr(report, "rolled_back", False) and getattr(report, "restored", None) is False:
        return EXIT_UNDO_FAILED
    return EXIT_REFUSED


def _tell(prog):
    from polroute.cli.provision import _apply_progress

    return _apply_progress(prog)


def report_text(report) -> str:
    """The engine's ApplyReport.text() (a method), or whatever it gives."""
    text = getattr(report, "text", None)
    text = text() if callable(text) else text if text is not None else str(report)
    return text if text.endswith("\n") else text + "\n"


def cmd_check(ns) -> int:
    cfg = _load(ns.file)
    n = sum(len(u.sources(4)) + len(u.sources(6)) for u in cfg.uplinks) + len(cfg.tenants)
    if ns.json:
        from polroute.cli.output import Output

        data = {"file": ns.file, "uplinks": [u.interface for u in cfg.uplinks], "tenants": len(cfg.tenants)}
        Output(True).json({**data, "rules": n, "owner": cfg.owner})
        return Exit.OK
    print(f"{ns.file}: ok: {len(cfg.uplinks)} uplinks, {n} rules, owner protocol {cfg.owner}")
    return Exit.OK


def parser():
    summary, epilog = __doc__.split("\n\n", 1)
    ap = new_parser("multihome", summary + "\n\n" + epilog.split("\n\n", 1)[0], epilog=epilog.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{render,discover,apply,check}")
    p = sub.add_parser("render", help="the recipe for one target")
    p.add_argument("file", help="the host file (YAML; - for stdin)")
    p.add_argument("--to", required=True, choices=TARGETS)
    p.add_argument("--out", metavar="DIR", help="write the files under DIR (else print them)")
    p.add_argument("--family", type=int, choices=(4, 6), help="batch: one family (ip -batch / ip -6 -batch)")
    p.add_argument(
        "--base",
        metavar="DIR",
        action="append",
        help="networkd: where the uplinks' .network files are; netplan: the base YAML files "
        "(default: this host's; give an empty directory for none)",
    )
    p.add_argument("--network-file", metavar="IF=NAME", action="append", help="networkd: the uplink's .network file")
    p.add_argument(
        "--systemd-version", type=int, metavar="N", help="networkd: the target's systemd (default: this one)"
    )
    p.add_argument("--nm-version", metavar="V", help="nm: the target's NetworkManager, e.g. 1.42 (default: this one)")
    p.set_defaults(fn=cmd_render)
    p = sub.add_parser("discover", help="a host file from the live state")
    p.add_argument("--netns", metavar="NS")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--owner", type=int, help="owner protocol (default: polroute's)")
    add_json_option(p, 'print {"host": the host file as JSON, "notes": its comments}')
    p.set_defaults(fn=cmd_discover)
    p = sub.add_parser(
        "apply",
        help="render the batch and provision it",
        description="Render the host file's batch and provision it (polroute.live.apply).",
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file")
    p.add_argument("--netns", metavar="NS")
    p.add_argument("--prune", action="store_true", help="delete owned rules/routes the file no longer has")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    add_quiet_option(p)
    p.set_defaults(fn=cmd_apply)
    p = sub.add_parser("check", help="validate a host file")
    p.add_argument("file")
    add_json_option(p, 'print {"file", "uplinks", "tenants", "rules", "owner"}')
    p.set_defaults(fn=cmd_check)
    return ap


def run(ns) -> int:
    try:
        return ns.fn(ns)
    except HostFileError as e:
        return _err(str(e))
    except OSError as e:
        if resource_problem(e):
            raise  # one line from cli/common.py invoke
        return _err(f"{e.filename or ''}: {e.strerror or e}")


COMMANDS = {"multihome": Command(parser, run)}
