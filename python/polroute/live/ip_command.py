"""Running iproute2's `ip` (live demo, audit --kernel): one place for how.

The child never inherits a sanitizer runtime: under the ASan+UBSan test run
(LD_PRELOAD=libasan) iproute2 6.1 aborts in print_route (strncpy-param-overlap)
and every exec gets far slower.
"""

from __future__ import annotations

import os
import subprocess

IP = os.environ.get("POLROUTE_IP", "ip")
_SCRUB_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PYTHONMALLOC")


def child_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}


def run_ip(args: list[str], stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``ip ARGS`` with ``stdin``, output captured as text."""
    return subprocess.run([IP, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=child_env())
