"""`polroute bench` runs from an installed package and prints its table (smoke test; no timing is asserted)."""

import json
import subprocess
import sys


def test_bench_quick_two_nic_prints_fast4_and_exact_rows(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "polroute",
            "bench",
            "--quick",
            "--only",
            "two-nic",
            "--no-kernel",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "| two-NIC | polroute compiled lookup_bulk (fast4) |" in r.stdout
    assert "| two-NIC | polroute lookup_bulk (exact path, rule index) |" in r.stdout
    assert "answers == exact: True" in r.stdout
    data = json.loads(out.read_text())
    text = json.dumps(data)
    assert "fast4" in text and "two-NIC" in text
