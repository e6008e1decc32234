"""The one place that turns the core's negative errno returns into exceptions."""

from __future__ import annotations

import errno as _errno
import os


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
        return _errno.errorcode.get(self.errno, str(self.errno))

    def iproute2_text(self) -> str:
        if self.kernel_message:
            msg = self.kernel_message
            return f"Error: {msg}" + ("" if msg.endswith(".") else ".")
        return f"RTNETLINK answers: {self.strerror}"

    def __str__(self) -> str:
        text = self.iproute2_text()
        return f"{self.context}: {text}" if self.context else text


def check(rc: int, kernel_message: str = "") -> int:
    """Return rc when it is not an error; raise PolicyError for -errno."""
    if rc < 0:
        raise PolicyError(-rc, kernel_message)
    return rc
