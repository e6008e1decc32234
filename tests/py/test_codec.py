"""The codec names every constant the extension defines, maps errors in one
place, and reads every struct layout it packs or unpacks from cffi."""

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polroute._core import codec
from polroute._core.binding import ffi, lib
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


# ---- one layout reader for every struct the codec packs or reads

_STRUCTS = ("pr_rule_req", "pr_route_req", "pr_dump_rule", "pr_dump_route", "pr_dump_nexthop", "pr_dump_link")


@pytest.mark.parametrize("ctype", _STRUCTS)
def test_layouts_have_the_c_size(ctype):
    st_, names = codec.struct_layout(ctype)
    assert st_.size == ffi.sizeof(ctype)
    assert codec._record_layout(ctype)[0].size == ffi.sizeof(ctype)


def test_the_packers_have_their_layouts():
    # None would silently send every request down the field-by-field path
    assert codec._RULE_STRUCT is not None and codec._ROUTE_OK and codec.route_values is not None


_U32 = st.integers(0, 2**32 - 1)


@given(st.lists(st.tuples(st.integers(0, 255), _U32, _U32, st.integers(0, 255)), min_size=1, max_size=5))
def test_records_read_back_what_was_written(rows):
    """records() over a C array gives each member's value, nested ones and
    arrays included (pr_dump_route: congctl.off, the 16-byte dst)."""
    arr = ffi.new("pr_dump_route[]", len(rows))
    for c, (fam, table, off, b) in zip(arr, rows):
        c.family, c.table, c.congctl.off = fam, table, off
        c.dst[0] = b
    got = list(codec.records(arr, len(rows), "pr_dump_route", ("family", "table", "congctl.off", "dst")))
    assert got == [(fam, table, off, bytes([b]) + bytes(15)) for fam, table, off, b in rows]


def test_rule_request_has_every_integer_member_of_the_c_struct():
    """RULE_INT_FIELDS is read from pr_rule_req: a selector added in C without
    its RuleRequest attribute fails here, not later in a conversion."""
    import dataclasses

    from polroute.types.requests import RuleRequest

    names = {f.name for f in dataclasses.fields(RuleRequest)}
    assert set(codec.RULE_INT_FIELDS) <= names
    assert {"fwmark", "uid_start", "tun_id", "suppress_prefixlen"} <= set(codec.RULE_INT_FIELDS)
