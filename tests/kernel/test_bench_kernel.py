"""The kernel anchor of `polroute bench`: the tenant policy in a private
namespace answers every question, and the namespace is gone afterwards."""

import os
import subprocess

from polroute.cli import bench


def test_kernel_anchor_asks_a_private_namespace_and_deletes_it(kernel_ok):
    rows = []
    flows = bench.tenant_flows(300, 40)
    bench.bench_kernel(rows, 40, flows, 1e7, n=150)
    assert len(rows) == 1 and not rows[0].skipped, rows[0].method
    assert "150/150 answered" in rows[0].notes
    ns = f"{os.environ.get('POLROUTE_NETNS_PREFIX', 'prt-')}bench-{os.getpid()}"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in listed.split()
