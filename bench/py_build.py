"""Model build from Python (provisioning issue, item 8): the tenant policy of
bench/c_build.c as ``ip -batch`` text, applied with
:func:`polroute.iproute2.batch.apply_batch`, timed per size.

    python bench/py_build.py [--sizes 10000,50000,100000] [--write FILE N]

Tenant i: ``route add default via 10.10.0.1 dev up0 table 1000+i`` and
``rule add from 10.16.0.0+i lookup 1000+i priority 1+i*30000//N``, after
``link add up0 type dummy``-like setup (a veth pair, its end up0 up,
10.10.0.2/16 on it).  ``--write FILE N`` only writes the text for N tenants
(for ``polroute get --batch FILE 8.8.8.8``).  Times: process CPU seconds of
the apply_batch call, with the ratio between consecutive sizes.
"""

from __future__ import annotations

import argparse
import ipaddress
import time

HEAD = """\
link add up0 type veth peer name upp0
link set lo up
link set upp0 up
link set up0 up
addr add 10.10.0.2/16 dev up0
"""


def tenants_text(n: int) -> str:
    lines = [HEAD]
    base = int(ipaddress.IPv4Address("10.16.0.0"))
    for i in range(n):
        t = 1000 + i
        lines.append(f"route add default via 10.10.0.1 dev up0 table {t}\n")
        lines.append(f"rule add from {ipaddress.IPv4Address(base + i)} lookup {t} priority {1 + i * 30000 // n}\n")
    return "".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--write", nargs=2, metavar=("FILE", "N"))
    a = ap.parse_args()
    if a.write:
        with open(a.write[0], "w") as fh:
            fh.write(tenants_text(int(a.write[1])))
        return
    from polroute import Policy
    from polroute.iproute2.batch import apply_batch

    prev = None
    print(f"{'tenants':>10} {'seconds':>10} {'ratio':>12}")
    for n in (int(x) for x in a.sizes.split(",")):
        text = tenants_text(n)
        p = Policy()
        c = time.process_time()
        apply_batch(p, text, "tenants.ip")
        dt = time.process_time() - c
        ratio = f"{dt / prev[1]:.1f}x/{n / prev[0]:.1f}x" if prev else "-"
        print(f"{n:>10} {dt:>10.2f} {ratio:>12}", flush=True)
        prev = (n, dt)


if __name__ == "__main__":
    main()
