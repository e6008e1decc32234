"""Writes the bad-input corpus next to this file (run it to regenerate; the
files are committed).  Each file is read by tests/py/test_cli_bad_inputs.py
in every role it can play: batch file, flows file, host file (YAML),
rt_tables file.  None may give a traceback or an undocumented exit code."""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(13)

TWO_NIC = "link add eth0 type dummy\nlink set eth0 up\naddr add 192.168.16.20/24 dev eth0\n"
FILES: dict[str, bytes] = {
    "empty": b"",
    "only-comments": b"# nothing\n   # more nothing\n\n",
    "only-newlines": b"\n" * 1000,
    "binary-random": bytes(rng.randrange(256) for _ in range(4096)),
    "binary-nul": b"route add 10.0.0.0/8 dev lo\n\x00\x00\x00\n",
    "nul-in-token": b"route add 10.0.\x000.0/8 dev lo\n",
    "utf16-le-bom": "\ufeffroute add 10.0.0.0/8 dev lo\n".encode("utf-16-le"),
    "utf16-be-bom": "\ufeffroute add 10.0.0.0/8 dev lo\n".encode("utf-16-be"),
    "utf16-le-no-bom": "route add 10.0.0.0/8 dev lo\n".encode("utf-16-le"),
    "utf32-bom": "route add 10.0.0.0/8 dev lo\n".encode("utf-32"),
    "utf8-bom": b"\xef\xbb\xbfroute add 10.0.0.0/8 dev lo\n",
    "latin1-token": "route add 10.0.0.0/8 dev l\xf6\n".encode("latin-1"),
    "latin1-comment": "# caf\xe9\nroute add 10.0.0.0/8 dev lo\n".encode("latin-1"),
    "overlong-utf8": b"route add 10.0.0.0/8 dev \xc0\xaf\n",
    "surrogate-utf8": b"route add 10.0.0.0/8 dev \xed\xa0\x80\n",
    "crlf": b"link add eth0 type dummy\r\nroute add 10.0.0.0/8 dev eth0\r\n",
    "cr-only": b"link add eth0 type dummy\rroute add 10.0.0.0/8 dev eth0\r",
    "control-chars": b"route add 10.0.0.0/8 dev \x01\x02\x1b[31m\n",
    "huge-metric": b"route add 10.0.0.0/8 dev lo metric 99999999999999999999999999999999\n",
    "huge-table": b"route add 10.0.0.0/8 dev lo table 4294967296\n",
    "huge-pref": b"rule add from all lookup main pref 18446744073709551616\n",
    "negative-numbers": b"rule add from all lookup -1 pref -5\nroute add 10.0.0.0/8 dev lo metric -1\n",
    "huge-prefix-len": b"route add 10.0.0.0/999999999999 dev lo\n",
    "prefix-33": b"route add 10.0.0.0/33 dev lo\nroute add 2001:db8::/129 dev lo\n",
    "bad-address": b"route add 999.1.2.3 dev lo\nroute add 1.2.3 dev lo\nroute add ::g dev lo\n",
    "bad-table-name": b"route add 10.0.0.0/8 dev lo table nosuch\nrule add from all lookup nosuch\n",
    "table-zero": b"route add 10.0.0.0/8 dev lo table 0\nrule add lookup 0\n",
    "unknown-device": b"route add 10.0.0.0/8 dev nosuch0\n",
    "unknown-keyword": b"route add 10.0.0.0/8 frobnicate 7\nrule add wibble\nflurb\n",
    "missing-argument": b"route add\nrule add from\nroute add 10.0.0.0/8 via\naddr add\nlink add\n",
    "unbalanced-quote": b'route add "10.0.0.0/8 dev lo\n',
    "backslash-eof": b"route add 10.0.0.0/8 \\\n",
    "many-continuations": b"route add \\\n" * 2000 + b"10.0.0.0/8 dev lo\n",
    "long-line": b"route add 10.0.0.0/8 dev lo " + b"metric 1 " * 3000 + b"\n",
    "long-token": b"route add " + b"1" * 20000 + b" dev lo\n",
    "many-lines-bad-last": b"route add 10.%d.0.0/16 dev lo\n" % 1 * 1000 + b"route add bogus\n",
    "duplicate-route": b"route add 10.0.0.0/8 dev lo\nroute add 10.0.0.0/8 dev lo\n",
    "rule-goto-self": b"rule add pref 10 goto 10\n",
    "ipv6-mixed": b"route add 2001:db8::/32 via 10.0.0.1 dev lo\n-6 rule add from 10.0.0.1 lookup 5\n",
    "numbers-as-names": b"route add 10.0.0.0/8 dev 12345678901234567890\n",
    "shell-metachars": b"route add $(reboot) dev `id`; rm -rf / | cat > /etc/passwd\n",
    "json-instead": b'{"routes": [{"dst": "10.0.0.0/8"}]}\n',
    "yaml-instead": b"version: 1\nuplinks:\n  - name: eth0\n    gateway: 192.168.16.1\n",
    "yaml-bad-indent": b"version: 1\nuplinks:\n - name: eth0\n   gateway: [\n",
    "yaml-tab": b"version: 1\nuplinks:\n\t- name: eth0\n",
    "yaml-list-top": b"- 1\n- 2\n",
    "yaml-scalar-top": b"just a string\n",
    "yaml-wrong-types": b"version: [1]\nuplinks: 7\ntenants: {a: b}\n",
    "yaml-huge-number": b"version: 1\nuplinks:\n  - name: eth0\n    table: 99999999999999999999999\n",
    "yaml-anchors": b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n",
    "yaml-python-tag": b"!!python/object/apply:os.system ['true']\n",
    "yaml-dup-keys": b"version: 1\nversion: 2\nuplinks: []\n",
    "rt-tables-corrupt": b"1 one\n2 two\nthis is corrupt\n",
    "rt-tables-huge-id": b"99999999999999999999 huge\n",
    "rt-tables-negative": b"-5 neg\n",
    "rt-tables-no-name": b"7\n",
    "flows-bad": b"8.8.8.8 from\n8.8.8.8 iif\n8.8.8.8 tos zz\n8.8.8.8 mark 99999999999999\n",
    "flows-ip-prefix": b"ip route get 8.8.8.8\nip route get\nip\n",
    "flows-bad-device": b"8.8.8.8 oif nosuch0\n",
    "flows-huge-numbers": b"8.8.8.8 uid 99999999999999999999\n8.8.8.8 sport 70000 ipproto tcp\n",
}


def main() -> None:
    for name, data in FILES.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
