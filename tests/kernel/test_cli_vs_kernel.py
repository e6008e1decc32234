"""The command line prints exactly what `ip route get` prints, byte for byte,
for the shipped two-NIC batch file applied to a private namespace."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns  # noqa: E402

from polroute.cli import app as cli  # noqa: E402
from polroute.cli.demo import two_nic_batch  # noqa: E402

QUESTIONS = [
    "8.8.8.8 from 192.168.16.21",  # the example: the reply leaves through eth1
    "8.8.8.8 from 192.168.16.20",
    "8.8.8.8",
    "192.168.16.7 from 192.168.16.21",
    "192.168.16.7",
    "192.168.16.20",
    "192.168.16.255",
    "224.0.0.5",
    "255.255.255.255",
    "0.0.0.0",
    "127.0.0.1",
    "8.8.8.8 oif eth1",
    "8.8.8.8 from 10.9.9.9",  # not a local address: error
    "8.8.8.8 iif sw1 from 192.168.16.9",  # forwarding off: error
    "192.168.16.21 iif sw1 from 192.168.16.9",
    "8.8.8.8 from 192.168.16.21 mark 7 tos 0x10 ipproto tcp dport 443",
]


@pytest.mark.kernel
def test_get_prints_what_ip_prints(kernel_ok, tmp_path, capsys):
    batch = tmp_path / "two-nic.ip"
    batch.write_text(two_nic_batch())
    with Netns() as ns:
        applied = ns.batch(two_nic_batch())
        assert applied.refused() == {}, applied.refused()
        for q in QUESTIONS:
            kernel = ns.ip("route", "get", *q.split())
            rc = cli.main(["get", "--batch", str(batch), *q.split()])
            out, err = capsys.readouterr()
            assert (out, err) == (kernel.stdout, kernel.stderr), q
            assert rc == (0 if kernel.returncode == 0 else 2), q
