"""The one place that turns the core's negative errno returns into exceptions."""

from __future__ import annotations

import errno as _errno
import os
from typing import Any


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
        """The errno's symbolic name (``ENETUNREACH``)."""
        return _errno.errorcode.get(self.errno or 0, str(self.errno))

    def iproute2_text(self) -> str:
        """The refusal as ``ip`` prints it (``Error: ...`` or ``RTNETLINK answers: ...``)."""
        if self.kernel_message:
            msg = self.kernel_message
            return f"Error: {msg}" + ("" if msg.endswith(".") else ".")
        return f"RTNETLINK answers: {self.strerror}"

    def __str__(self) -> str:
        text = self.iproute2_text()
        return f"{self.context}: {text}" if self.context else text


def check(rc: int, what: str = "", kernel_message: str = "") -> int:
    """rc when it is not an error (>= 0).  A negative errno raises: -ENOMEM a
    MemoryError naming ``what`` (the core ran out, Python did not), any other
    a PolicyError with the errno, the kernel's message and ``what`` as context.
    Every call into the core that returns an errno goes through here."""
    if rc >= 0:
        return rc
    if rc == -_errno.ENOMEM:
        raise MemoryError(what or "out of memory in the polroute core")
    raise PolicyError(-rc, kernel_message, what)


def check_handle(handle: Any, what: str) -> Any:
    """A handle the core returned, or MemoryError when it returned NULL (the
    core's constructors return NULL only when an allocation failed)."""
    from polroute._core.binding import ffi

    if handle == ffi.NULL:
        raise MemoryError(what)
    return handle
