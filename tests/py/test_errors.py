"""polroute._core.errors: the one errno-to-exception mapper."""

from __future__ import annotations

import errno
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polroute._core.errors import DumpError, NetlinkError, PolicyError, check, iproute2_text
from polroute.live import dump, netlink

ERRNOS = st.sampled_from(sorted(errno.errorcode))


def test_live_modules_reexport_the_one_class_each():
    assert dump.DumpError is DumpError
    assert netlink.NetlinkError is NetlinkError


@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_a_non_negative_rc_is_returned_for_every_kind(rc):
    for error in (PolicyError, DumpError, NetlinkError, OSError, ValueError):
        assert check(rc, "what", error=error, outcomes=[]) == rc


@given(ERRNOS, st.text(max_size=20), st.text(max_size=20))
def test_policy_error_carries_errno_message_and_context(err, what, msg):
    if err == errno.ENOMEM:
        with pytest.raises(MemoryError) as e:
            check(-err, what, msg)
        assert str(e.value) == (what or "out of memory in the polroute core")
        return
    with pytest.raises(PolicyError) as e:
        check(-err, what, msg)
    assert (e.value.errno, e.value.kernel_message, e.value.context) == (err, msg, what)
    assert e.value.iproute2_text() == iproute2_text(err, msg)


@given(ERRNOS, st.text(max_size=20))
def test_dump_error_text_is_strerror_then_the_decoders_text(err, msg):
    with pytest.raises(DumpError) as e:
        check(-err, "", msg, error=DumpError)
    assert e.value.errno == err
    assert e.value.strerror == (f"{os.strerror(err)}: {msg}" if msg else os.strerror(err))


@given(ERRNOS)
def test_netlink_error_keeps_the_outcomes(err):
    outcomes = [netlink.Outcome(0), netlink.Outcome(err, "x")]
    with pytest.raises(NetlinkError) as e:
        check(-err, error=NetlinkError, outcomes=outcomes)
    assert (e.value.errno, e.value.strerror, e.value.outcomes) == (err, os.strerror(err), outcomes)


@given(ERRNOS, st.text(min_size=1, max_size=20))
def test_os_and_value_errors_name_what_then_strerror(err, what):
    with pytest.raises(OSError) as e:
        check(-err, what, error=OSError, filename="/p")
    assert (e.value.errno, e.value.strerror, e.value.filename) == (err, f"{what}: {os.strerror(err)}", "/p")
    assert type(e.value) is type(OSError(err, "x"))  # the errno's own subclass (FileNotFoundError, ...)
    with pytest.raises(ValueError, match="^" + re.escape(f"{what}: {os.strerror(err)}") + "$"):
        check(-err, what, error=ValueError)


def test_iproute2_text_adds_the_dot_only_when_missing():
    assert iproute2_text(errno.EINVAL, "Invalid prefix") == "Error: Invalid prefix."
    assert iproute2_text(errno.EINVAL, "Done.") == "Error: Done."
    assert iproute2_text(errno.ENETUNREACH) == "RTNETLINK answers: Network is unreachable"
