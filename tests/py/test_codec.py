"""The codec names every constant the extension defines, and maps errors in one place."""

import errno

import pytest

from polroute._core import codec
from polroute._core.binding import lib
from polroute._core.errors import PolicyError, check


@pytest.mark.parametrize(
    "prefix, table",
    [("PR_NM_", codec.NOT_MODELLED_NAMES), ("PR_STEP_", codec.TRACE_STEP_NAMES), ("PR_RTN_", codec.ROUTE_TYPE_NAMES)],
)
def test_every_core_constant_has_a_name(prefix, table):
    # a constant added to polroute.h and not named here would print as a bare number
    values = {getattr(lib, n) for n in dir(lib) if n.startswith(prefix)}
    assert values and values == set(table)


def test_check_maps_errnos_once():
    assert check(3) == 3
    with pytest.raises(MemoryError, match="pr_fast4_build"):
        check(-errno.ENOMEM, "pr_fast4_build")
    with pytest.raises(PolicyError) as e:
        check(-errno.EEXIST, "rule add", "Rule exists")
    assert (e.value.errno, e.value.kernel_message, e.value.context) == (errno.EEXIST, "Rule exists", "rule add")
    assert str(e.value) == "rule add: Error: Rule exists."
    with pytest.raises(PolicyError, match="RTNETLINK answers: No such process"):
        check(-errno.ESRCH)
