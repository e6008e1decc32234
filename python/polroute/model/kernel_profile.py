"""Kernel profiles: the answers that depend on how the modelled kernel was built.

Two kernels given the same links, addresses, rules and routes can answer the
same ``ip route get`` differently when they were built with different options.
A profile names such a build; a :class:`~polroute.model.policy.Policy` models one.

Known differences (each one is a bit of ``enum pr_kernel_feature`` in
``csrc/polroute.h``):

``ipv6_mroute`` (CONFIG_IPV6_MROUTE)
    An IPv6 input-path question (``iif``) whose route has a multicast prefix
    fails with EMSGSIZE ("Message too long") when the kernel has IPv6 multicast
    routing: rt6_fill_node hands the reply to ip6mr_get_route, which finds no
    multicast cache entry.  Without it the kernel answers the ``ff00::/8`` route
    (``multicast ff02::1 ... dev X table local ... iif Y``).

``auto`` (the default everywhere) is the running kernel when it can be read,
else :data:`DEFAULT`, the build of the common distributions.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass

from polroute._core.binding import lib

__all__ = ["KernelProfile", "PROFILES", "DEFAULT", "detect", "resolve", "ProfileError"]


class ProfileError(ValueError):
    """An unknown profile name."""


@dataclass(frozen=True)
class KernelProfile:
    """One kernel build, as far as it changes answers.

    ``features`` is the bit set handed to ``pr_policy_set_kernel_features``;
    ``source`` says where a detected profile was read from ("" for a named one).
    """

    name: str
    ipv6_mroute: bool
    description: str
    source: str = ""

    @property
    def features(self) -> int:
        """The PR_KF_* bits of this profile."""
        return lib.PR_KF_IPV6_MROUTE if self.ipv6_mroute else 0


PROFILES: dict[str, KernelProfile] = {
    p.name: p
    for p in (
        KernelProfile(
            "ipv6-mroute", True, "CONFIG_IPV6_MROUTE=y, as Debian, Ubuntu, Fedora and RHEL build their kernels"
        ),
        KernelProfile("no-ipv6-mroute", False, "CONFIG_IPV6_MROUTE unset (minimal and microVM kernels)"),
    )
}
#: The profile of a policy when the running kernel cannot be read.
DEFAULT = PROFILES["ipv6-mroute"]


def _config_option(name: str, path: str = "/proc/config.gz") -> bool | None:
    """True/False for a CONFIG_ option in the running kernel's config, None if unreadable."""
    try:
        with gzip.open(path, "rt", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(name + "="):
                    return line.rstrip().split("=", 1)[1] in ("y", "m")
                if line.startswith(f"# {name} is not set"):
                    return False
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return False


def _profile_for(ipv6_mroute: bool, source: str) -> KernelProfile:
    base = PROFILES["ipv6-mroute" if ipv6_mroute else "no-ipv6-mroute"]
    return KernelProfile(base.name, base.ipv6_mroute, base.description, source)


@functools.lru_cache(maxsize=1)
def detect() -> KernelProfile | None:
    """The profile of the kernel this process runs on, or None if it cannot be told.

    ip6mr_net_init creates ``/proc/net/ip6_mr_vif`` in every network namespace
    exactly when the kernel has IPv6 multicast routing, so, with IPv6 up
    (``/proc/net/if_inet6``), its presence answers the question without any
    privilege.  ``/proc/config.gz`` is the fallback.  The build is the same in
    every namespace, so the caller's namespace is as good as any.
    """
    if os.path.exists("/proc/net/if_inet6"):
        return _profile_for(os.path.exists("/proc/net/ip6_mr_vif"), "/proc/net/ip6_mr_vif")
    found = _config_option("CONFIG_IPV6_MROUTE")
    if found is not None:
        return _profile_for(found, "/proc/config.gz")
    return None


def resolve(spec: str | KernelProfile | None = "auto") -> KernelProfile:
    """A profile from a name, ``"auto"`` (or None: the running kernel, else DEFAULT) or a profile."""
    if isinstance(spec, KernelProfile):
        return spec
    if spec is None or spec == "auto":
        return detect() or DEFAULT
    try:
        return PROFILES[spec]
    except KeyError:
        names = ", ".join(["auto", *PROFILES])
        raise ProfileError(f"unknown kernel profile {spec!r} (known: {names})") from None
