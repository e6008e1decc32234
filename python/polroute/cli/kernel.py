"""``polroute kernel``: the kernel profiles (``--kernel auto|NAME``) and the
one detected here (``auto``)."""

from __future__ import annotations

from polroute.cli.common import Command, add_json_option, new_parser
from polroute.cli.exitcodes import Exit
from polroute.cli.output import Output


def parser():
    ap = new_parser("kernel", __doc__)
    add_json_option(ap)
    return ap


def run(ns) -> int:
    from polroute.model.kernel_profile import DEFAULT as DEFAULT_PROFILE
    from polroute.model.kernel_profile import PROFILES
    from polroute.model.kernel_profile import detect as detect_profile

    found = detect_profile()

    def data():
        return {
            "detected": found.name if found else None,
            "source": found.source if found else None,
            "profiles": [
                {"name": p.name, "ipv6_mroute": p.ipv6_mroute, "description": p.description} for p in PROFILES.values()
            ],
        }

    def text():
        lines = []
        for p in PROFILES.values():
            mark = "*" if found and found.name == p.name else " "
            lines.append(f"{mark} {p.name:16} {p.description}")
        if found:
            lines.append(f"running kernel: {found.name} (read from {found.source}); --kernel auto uses it")
        else:
            lines.append(f"running kernel: cannot be read; --kernel auto uses {DEFAULT_PROFILE.name}")
        return "\n".join(lines)

    Output(ns.json).emit(data, text)
    return Exit.OK


COMMANDS = {"kernel": Command(parser, run)}
