"""Suite-wide pytest configuration.

- The compiled extension must be importable: a wheel built without it fails the
  run at start-up instead of skipping or erroring test by test (a build that
  silently left the extension out must not look like a pass).
- Tests marked ``kernel`` (and every test under tests/kernel/, which gets the
  mark automatically) need root and a working ``ip netns``; without them they
  are skipped.  With ``--require-kernel`` or ``POLROUTE_REQUIRE_KERNEL=1`` any
  skipped kernel test fails the run, so CI cannot go green without comparing
  against the kernel.
- ``kernel_ok``: session fixture that skips when the kernel is unavailable.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

_KERNEL_DIR = Path(__file__).resolve().parent / "kernel"
_SKIPPED_KEY = pytest.StashKey[list]()
# Modules under tests/kernel skipped as a whole (pytest_collectreport gets no config).
_collect_skips: list[tuple[str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-kernel",
        action="store_true",
        default=False,
        help="fail the run if any test marked 'kernel' is skipped (same as POLROUTE_REQUIRE_KERNEL=1)",
    )


def _require_kernel(config: pytest.Config) -> bool:
    env = os.environ.get("POLROUTE_REQUIRE_KERNEL", "").strip().lower()
    return bool(config.getoption("--require-kernel")) or env in ("1", "true", "yes", "on")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SKIPPED_KEY] = []
    _collect_skips.clear()


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        import polroute._polroute_cffi  # noqa: F401
    except ImportError as exc:
        pytest.exit(
            f"cannot import the compiled extension polroute._polroute_cffi: {exc}\n"
            "Either polroute is not installed in this Python, or it was built without "
            "its extension, or the extension is broken (e.g. a function declared in "
            "csrc/polroute.h has no definition: 'undefined symbol'). "
            "Install with `pip install .` (see README.md).",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


# ---- kernel availability -------------------------------------------------------


@functools.cache
def kernel_unavailable_reason() -> str | None:
    """None if this process can create network namespaces, else why not."""
    if os.geteuid() != 0:
        return "kernel tests need root"
    if shutil.which("ip") is None:
        return "kernel tests need the `ip` command (iproute2)"
    name = f"prt-probe-{os.getpid()}"
    try:
        add = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` failed: {exc}"
    if add.returncode != 0:
        return f"`ip netns add` failed: {add.stderr.strip() or add.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    return None


@pytest.fixture(scope="session")
def kernel_ok() -> bool:
    """Skips the test unless we are root and `ip netns` works."""
    reason = kernel_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _KERNEL_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.kernel)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") is not None:
        reason = kernel_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)


# ---- --require-kernel: a skipped kernel test fails the run ----------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    required = item.get_closest_marker("kernel") or item.get_closest_marker("consumer")
    if rep.skipped and not hasattr(rep, "wasxfail") and required is not None:
        item.config.stash[_SKIPPED_KEY].append((item.nodeid, _skip_reason(rep)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module under tests/kernel skipped as a whole (e.g. importorskip) never
    # produces items, so it is counted here.
    if report.skipped and report.nodeid.startswith("tests/kernel/"):
        _collect_skips.append((report.nodeid, _skip_reason(report)))


def _skip_reason(rep) -> str:
    longrepr = rep.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _all_skipped(config: pytest.Config) -> list[tuple[str, str]]:
    return config.stash[_SKIPPED_KEY] + _collect_skips


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    required = _require_kernel(session.config) and _all_skipped(session.config)
    if required and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = _all_skipped(config)
    if not (_require_kernel(config) and skipped):
        return
    tr = terminalreporter
    tr.section("kernel tests were skipped but are required", sep="=", red=True, bold=True)
    tr.write_line(
        "POLROUTE_REQUIRE_KERNEL=1 / --require-kernel is set, so the run FAILS "
        f"because {len(skipped)} kernel test(s) were skipped:",
        red=True,
    )
    for nodeid, reason in skipped:
        tr.write_line(f"  SKIPPED {nodeid}: {reason}")
