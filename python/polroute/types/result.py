"""The answer to one route question, printed as iproute2 prints it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TraceStep:
    """One rule of the walk and what it did (for --explain)."""

    rule_index: int  # position in the rule list, -1 for the merged fast path
    priority: int
    table: int
    kind: str  # no-match | goto | goto-unresolved | nop | table-miss | no-table |
    # throw | suppressed | decided | action-error | merged
    error: int = 0  # errno for decided/action-error
    matched_len: int = 0


@dataclass
class Candidate:
    """One nexthop the answer may use (several only for multipath)."""

    dev: str
    gateway: str | None = None
    prefsrc: str | None = None
    weight: int = 1


@dataclass
class RouteGetResult:
    """Fields named as `ip -j route get` names them (``from_`` for "from").

    ``error`` is the errno (0 on success); ``not_modelled`` lists the kernel
    features this answer depends on that the model does not reproduce: when it
    is non-empty the answer must not be trusted.
    """

    family: int
    error: int = 0
    error_message: str = ""  # the kernel's extended-ack text, when it gives one
    type: str = "unicast"
    dst: str = ""
    from_: str | None = None
    tos: int = 0
    gateway: str | None = None
    dev: str | None = None
    table: str | None = None  # name as iproute2 prints it; None when main or no table
    table_id: int = 0
    protocol: str | None = None  # IPv6
    prefsrc: str | None = None
    metric: int | None = None  # IPv6
    flags: list[str] = field(default_factory=list)
    mark: int = 0
    uid: int | None = None
    cache: list[str] = field(default_factory=list)  # IPv4 only
    iif: str | None = None
    pref: str | None = None  # IPv6
    rule_priority: int | None = None  # deciding rule; None for the merged path / no rule
    rule_index: int = -1
    candidates: list[Candidate] = field(default_factory=list)
    not_modelled: list[str] = field(default_factory=list)
    trace: list[TraceStep] = field(default_factory=list)
