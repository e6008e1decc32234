"""The one place that turns the core's negative errno returns into exceptions.

Every call into the core that can fail goes through :func:`check` (a
negative errno) or :func:`check_handle` (a NULL handle).  ``check``'s
``error`` names the exception a caller's users see -- :class:`PolicyError`
(the model), :class:`DumpError` (reading a live namespace),
:class:`NetlinkError` (sending to one), or a plain ``OSError``/``ValueError``
-- and this module alone decides how its text is made from the errno.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable
from typing import Any


def iproute2_text(err: int, kernel_message: str = "") -> str:
    """The line ``ip`` prints for an error answer: ``Error: <msg>.`` when the
    kernel gave a message (lib/libnetlink.c adds the dot unless there is
    one), else ``RTNETLINK answers: <strerror>``."""
    if kernel_message:
        return f"Error: {kernel_message}" + ("" if kernel_message.endswith(".") else ".")
    return f"RTNETLINK answers: {os.strerror(err)}"


class PolicyError(OSError):
    """A request the kernel would refuse: carries the errno and the kernel's
    extended-ack message (``kernel_message``, may be empty).

    ``str()`` is what iproute2 prints: ``Error: <msg>.`` when the kernel gave a
    message, else ``RTNETLINK answers: <strerror>``.
    """

    def __init__(self, err: int, kernel_message: str = "", context: str = ""):
        super().__init__(err, os.strerror(err))
        self.kernel_message = kernel_message
        self.context = context

    @property
    def errno_name(self) -> str:
        """The errno's symbolic name (``"ENETUNREACH"``), or its number."""
        return _errno.errorcode.get(self.errno or 0, str(self.errno))

    def iproute2_text(self) -> str:
        """The line ``ip`` prints for this error (see :func:`iproute2_text`)."""
        return iproute2_text(self.errno or 0, self.kernel_message)

    def __str__(self) -> str:
        text = self.iproute2_text()
        return f"{self.context}: {text}" if self.context else text


class DumpError(OSError):
    """A dump the kernel refused, or a reply that did not decode (re-exported
    by :mod:`polroute.live.dump`).  ``strerror`` is the errno's text, then
    the C decoder's own text when it gave one."""


class NetlinkError(OSError):
    """A socket error during send (re-exported by :mod:`polroute.live.netlink`);
    ``outcomes`` still tells, request by request, what was acknowledged,
    unknown or not sent."""

    def __init__(self, err: int, outcomes: list[Any]):
        super().__init__(err, os.strerror(err))
        self.outcomes = outcomes


def _policy_error(err: int, what: str, kernel_message: str, **_: Any) -> BaseException:
    # -ENOMEM: the core ran out, Python did not
    if err == _errno.ENOMEM:
        return MemoryError(what or "out of memory in the polroute core")
    return PolicyError(err, kernel_message, what)


def _dump_error(err: int, what: str, kernel_message: str, **_: Any) -> BaseException:
    text = os.strerror(err)
    return DumpError(err, f"{text}: {kernel_message}" if kernel_message else text)


def _netlink_error(err: int, what: str, kernel_message: str, outcomes: list[Any], **_: Any) -> BaseException:
    return NetlinkError(err, outcomes)


def _os_error(err: int, what: str, kernel_message: str, filename: str | None = None, **_: Any) -> BaseException:
    # OSError(errno, ...) picks its subclass itself (FileNotFoundError, PermissionError, ...)
    text = f"{what}: {os.strerror(err)}" if what else os.strerror(err)
    return OSError(err, text) if filename is None else OSError(err, text, filename)


def _value_error(err: int, what: str, kernel_message: str, **_: Any) -> BaseException:
    return ValueError(f"{what}: {os.strerror(err)}" if what else os.strerror(err))


_MAKERS: dict[type, Callable[..., BaseException]] = {
    PolicyError: _policy_error,
    DumpError: _dump_error,
    NetlinkError: _netlink_error,
    OSError: _os_error,
    ValueError: _value_error,
}


def check(rc: int, what: str = "", kernel_message: str = "", *, error: type = PolicyError, **details: Any) -> int:
    """rc when it is not an error (>= 0); a negative errno raises ``error``:

    - PolicyError (the default): -ENOMEM a MemoryError naming ``what``, any
      other a PolicyError with the errno, the kernel's message and ``what``
      as context;
    - DumpError: ``"<strerror>: <kernel_message>"`` (the decoder's text);
    - NetlinkError: with ``details["outcomes"]``;
    - OSError: ``"<what>: <strerror>"`` (``details["filename"]`` if given);
    - ValueError: ``"<what>: <strerror>"``.
    """
    if rc >= 0:
        return rc
    raise _MAKERS[error](-rc, what, kernel_message, **details)


def check_handle(handle: Any, what: str, on_null: Any = None) -> Any:
    """A handle the core returned, or MemoryError when it returned NULL (the
    core's constructors return NULL only when an allocation failed);
    ``on_null()`` runs first, to release what the caller holds."""
    from polroute._core.binding import ffi

    if handle == ffi.NULL:
        if on_null is not None:
            on_null()
        raise MemoryError(what)
    return handle
