"""The C field tables (csrc/fields.c) as plain Python records.

One :class:`FieldRow` per field of ``pr_rule_req`` (:data:`RULE_FIELDS`) and
of ``pr_route_req`` (:data:`ROUTE_FIELDS`), read once at import through
``pr_rule_field_get`` / ``pr_route_field_get``.  Each row names the struct
members it covers (found by offset in cffi's own reading of the struct, so
the names are those of the C header, which the request dataclasses mirror),
its netlink attribute, its iproute2 keyword and print format, and its
companion row (value <-> mask).  The Python lists of rule selectors (the ip
reader, ``rule_key``, ``format_rule``, the dump decoder) walk these rows
instead of keeping their own.

The enum values of ``polroute.h`` are re-exported as ``KIND_*``, ``ROLE_*``,
``PF_*``, ``FF_*``, ``FAM_*`` and ``IK_*`` so that layers above ``_core``
need not reach the extension.
"""

from __future__ import annotations

from dataclasses import dataclass

from polroute._core.binding import ffi, lib

# enum pr_field_kind: how a row's bytes read
KIND_U8 = lib.PR_FK_U8  #: u8
KIND_U16 = lib.PR_FK_U16  #: u16
KIND_U32 = lib.PR_FK_U32  #: u32
KIND_S32 = lib.PR_FK_S32  #: s32 (-1 = none for suppress_*)
KIND_U64 = lib.PR_FK_U64  #: u64
KIND_RANGE16 = lib.PR_FK_RANGE16  #: start, end (two u16, inclusive)
KIND_RANGE32 = lib.PR_FK_RANGE32  #: start, end (two u32, inclusive)
KIND_MASK = lib.PR_FK_MASK  #: the mask of the row ``link``
KIND_ADDR = lib.PR_FK_ADDR  #: an address; aux = its prefix length
KIND_IFNAME = lib.PR_FK_IFNAME  #: a device name
KIND_FLAG = lib.PR_FK_FLAG  #: the bits ``flag`` of an integer member
KIND_IFINDEX = lib.PR_FK_IFINDEX  #: an ifindex
KIND_FAMILY = lib.PR_FK_FAMILY  #: an address family
KIND_MULTIPATH = lib.PR_FK_MULTIPATH  #: RTA_MULTIPATH legs
KIND_METRICS = lib.PR_FK_METRICS  #: RTAX_* values
KIND_BITMAP = lib.PR_FK_BITMAP  #: the ``present`` bitmap

# enum pr_field_role
ROLE_SELECTOR = lib.PR_FROLE_SELECTOR  #: decides whether a flow matches
ROLE_ACTION = lib.PR_FROLE_ACTION  #: what a matching rule / a route does
ROLE_ATTR = lib.PR_FROLE_ATTR  #: identity or bookkeeping (priority, protocol ...)
ROLE_META = lib.PR_FROLE_META  #: family and the present bitmap

# enum pr_print_fmt (the ones Python printers look at)
PF_NONE = lib.PR_PF_NONE  #: not printed
PF_WITH_LINK = lib.PR_PF_WITH_LINK  #: printed by its ``link`` row
PF_U32 = lib.PR_PF_U32  #: "%u"
PF_S32 = lib.PR_PF_S32  #: "%d"
PF_HEX_MASK = lib.PR_PF_HEX_MASK  #: "%#x", then "/%#x" unless the mask is all ones
PF_RANGE = lib.PR_PF_RANGE  #: "%u-%u"
PF_PORT = lib.PR_PF_PORT  #: "%u", "%u-%u" or "%#x/%#x"
PF_FLAG = lib.PR_PF_FLAG  #: the keyword alone
PF_DSCP = lib.PR_PF_DSCP  #: rt_dsfield name of DSCP << 2, else "%u"; "%#x/%#x" with a mask
PF_HEX = lib.PR_PF_HEX  #: "%#x"
PF_U64 = lib.PR_PF_U64  #: "%llu"

# PR_FF_* flags
FF_BE_WIRE = lib.PR_FF_BE_WIRE  #: big-endian in the attribute
FF_NEW_KEYWORD = lib.PR_FF_NEW_KEYWORD  #: iproute2 6.1 has no keyword for it
FF_HEADER = lib.PR_FF_HEADER  #: a header field, not an attribute
FF_ALSO_HEADER = lib.PR_FF_ALSO_HEADER  #: the attribute has an 8-bit header twin
FF_DUMP_ONLY_BITS = lib.PR_FF_DUMP_ONLY_BITS  #: dumps carry more bits than requests take

# pr_field_info.families
FAM_IPV4 = lib.PR_FAM_IPV4  #: the row applies to IPv4
FAM_IPV6 = lib.PR_FAM_IPV6  #: the row applies to IPv6

# enum pr_index_key
IK_NONE = lib.PR_IK_NONE  #: the rule index cannot key it (linear path)
IK_IGNORED = lib.PR_IK_IGNORED  #: not a selector


@dataclass(frozen=True)
class FieldRow:
    """One row of a field table (``pr_field_info``), with the struct members
    it covers named.

    ``members`` are the request struct's members the row's bytes are (two
    for a range, in order); ``aux_members`` those of its second field (an
    address's prefix length, a metric bitmap); ``link`` the index of its
    companion row or -1; ``max`` the largest value the kernel takes (0: the
    type's).  The other fields are those of ``pr_field_info`` (polroute.h).
    """

    index: int
    name: str
    keyword: str
    aliases: tuple[str, ...]
    syntax: str
    print: str
    example: str
    nla_name: str
    nla_type: int
    present_bit: int
    offset: int
    size: int
    members: tuple[str, ...]
    aux_members: tuple[str, ...]
    link: int
    flag: int
    max: int
    kind: int
    role: int
    index_key: int
    print_fmt: int
    families: int
    flags: int

    @property
    def width_mask(self) -> int:
        """All ones over one member's width (0xFFFF for a u16 or a u16 range)."""
        width = self.size // max(len(self.members), 1)
        return (1 << (8 * width)) - 1

    @property
    def all_ones(self) -> int:
        """The mask value that masks nothing: ``max`` when the kernel bounds
        it (a DSCP or flow-label mask), else all ones over the width."""
        return self.max or self.width_mask


def _text(a) -> str:
    return ffi.string(a).decode()


def _members_in(ctype: str, offset: int, size: int) -> tuple[str, ...]:
    """The members of ``ctype`` lying inside [offset, offset + size), in order."""
    if not size:
        return ()
    return tuple(
        name
        for name, f in ffi.typeof(ctype).fields
        if offset <= f.offset and f.offset + ffi.sizeof(f.type) <= offset + size
    )


def _load(count, get, ctype: str) -> tuple[FieldRow, ...]:
    out = []
    f = ffi.new("pr_field_info *")
    for i in range(count()):
        if get(i, f) != 0:
            raise RuntimeError(f"{ctype} field row {i} unreadable")
        out.append(
            FieldRow(
                index=i,
                name=_text(f.name),
                keyword=_text(f.keyword),
                aliases=tuple(a for a in _text(f.aliases).split(",") if a),
                syntax=_text(f.syntax),
                print=_text(f.print),
                example=_text(f.example),
                nla_name=_text(f.nla_name),
                nla_type=f.nla_type,
                present_bit=f.present_bit,
                offset=f.offset,
                size=f.size,
                members=_members_in(ctype, f.offset, f.size),
                aux_members=_members_in(ctype, f.aux_offset, f.aux_size),
                link=f.link,
                flag=f.flag,
                max=f.max,
                kind=f.kind,
                role=f.role,
                index_key=f.index_key,
                print_fmt=f.print_fmt,
                families=f.families,
                flags=f.flags,
            )
        )
    return tuple(out)


#: The rule table: one row per field of ``pr_rule_req``, in struct order.
RULE_FIELDS: tuple[FieldRow, ...] = _load(lib.pr_rule_field_count, lib.pr_rule_field_get, "pr_rule_req")
#: The route table: one row per field of ``pr_route_req``, in struct order.
ROUTE_FIELDS: tuple[FieldRow, ...] = _load(lib.pr_route_field_count, lib.pr_route_field_get, "pr_route_req")
#: Rule rows by name ("fwmark", "sport_mask" ...).
RULE_BY_NAME: dict[str, FieldRow] = {r.name: r for r in RULE_FIELDS}
#: Route rows by name.
ROUTE_BY_NAME: dict[str, FieldRow] = {r.name: r for r in ROUTE_FIELDS}
#: The rule rows that decide whether a flow matches.
RULE_SELECTORS: tuple[FieldRow, ...] = tuple(r for r in RULE_FIELDS if r.role == ROLE_SELECTOR)
#: Bit FRA_x for every rule row that is an attribute (its ``present`` bit).
RULE_PRESENT_BITS: int = sum(1 << r.present_bit for r in RULE_FIELDS if r.present_bit >= 0)


#: Kinds whose bytes are one number (parsed and printed from the row alone:
#: a new row of these kinds needs no Python edit).
NUMBER_KINDS = (lib.PR_FK_U8, lib.PR_FK_U16, lib.PR_FK_U32, lib.PR_FK_U64)
#: Kinds whose bytes are a range of two numbers (the same for ranges).
RANGE_KINDS = (lib.PR_FK_RANGE16, lib.PR_FK_RANGE32)


def rule_link(row: FieldRow) -> FieldRow | None:
    """The companion row of a rule row (a value's mask, a mask's value)."""
    return RULE_FIELDS[row.link] if row.link >= 0 else None


def mask_of(row: FieldRow, table: tuple[FieldRow, ...]) -> FieldRow | None:
    """The mask row of a value row of ``table``, if it has one."""
    link = table[row.link] if row.link >= 0 else None
    return link if link is not None and link.kind == KIND_MASK and row.kind != KIND_MASK else None


def rule_mask_of(row: FieldRow) -> FieldRow | None:
    """The mask row of a rule value row, if it has one."""
    return mask_of(row, RULE_FIELDS)
