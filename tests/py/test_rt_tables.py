"""polroute.iproute2.rt_tables reads iproute2 name databases as lib/rt_names.c does.

The file of test_real_ip_file_semantics was bind-mounted over
/etc/iproute2/rt_tables for the real `ip` 6.1.0; the expected ids/names are
what that ip accepted and printed.
"""

import pytest

from polroute.iproute2.rt_tables import (
    RtTables,
    get_s32,
    get_u8,
    get_u16,
    get_u32,
    load_rt_tables,
    parse_db,
    strtoul,
)

REAL_IP_FILE = """\
700 vpn
0x2bc hexname
100 foo
5 foo
300 bar
44 bar
0x10
3000000000 neg
5000000000 wrap
  7 seven # c
\t8\ttabbed
0X20 upperx
bad line
9 nine
"""


def test_builtins():
    t = RtTables()
    assert (t.name(253), t.name(254), t.name(255)) == ("default", "main", "local")
    assert (t.id("default"), t.id("main"), t.id("local")) == (253, 254, 255)
    assert t.name(0) == "0" and t.name(100000) == "100000"
    assert t.name(254, numeric=True) == "254"
    # "unspec" only comes from the shipped file, not from the built-ins
    with pytest.raises(ValueError, match='invalid table ID "unspec"'):
        t.id("unspec")


@pytest.mark.parametrize(
    "arg,expected",
    [
        ("100", 100),
        ("0x10", 16),
        ("010", 8),
        ("4294967295", 0xFFFFFFFF),
        ("+5", 5),
        (7, 7),
    ],
)
def test_numbers(arg, expected):
    assert RtTables().id(arg) == expected


@pytest.mark.parametrize("arg", ["4294967296", "-1", "", "10x", "vpn", "0x", "1 "])
def test_bad_ids(arg):
    with pytest.raises(ValueError):
        RtTables().id(arg)


def test_real_ip_file_semantics():
    t = RtTables().load_text(REAL_IP_FILE, "/etc/iproute2/rt_tables")
    # id -> name: the entry read last wins (700 then 0x2bc == 700)
    assert t.id("vpn") == 700 and t.id("hexname") == 700
    assert t.name(700) == "hexname"
    # name -> id: buckets 0..255 in order, bucket heads first
    assert t.id("foo") == 5  # bucket 5 before bucket 100
    assert t.id("bar") == 44  # 300 & 255 == 44: same bucket, 44 read last
    assert t.name(300) == "bar" and t.name(44) == "bar"
    # a C int: 3000000000 turns negative and is skipped, 5000000000 wraps
    assert t.id("wrap") == 705032704
    with pytest.raises(ValueError):
        t.id("neg")
    # sscanf quirks: "0x10" alone reads as id 0 named "x10"; "0X20" as 0 "X20"
    assert t.id("x10") == 0 and t.id("X20") == 0
    with pytest.raises(ValueError):
        t.id("upperx")
    # whitespace, tabs and trailing comments
    assert t.id("seven") == 7 and t.id("tabbed") == 8
    # a corrupted line stops the file: "nine" is never read
    with pytest.raises(ValueError):
        t.id("nine")
    assert t.warnings == ["Database /etc/iproute2/rt_tables is corrupted at bad line\n"]


def test_parse_db_details():
    entries, bad = parse_db("# comment\n\n   \n1 one two\n0x1g g\n-5 neg\n")
    assert entries == [(1, "one"), (1, "g")] and bad is None
    # fgets(buf, 512): a long line is read in pieces; the tail is its own "line"
    long = "12 " + "x" * 600 + " 13 y\n"
    entries, bad = parse_db(long)
    assert entries[0] == (12, "x" * 508)
    assert bad is not None  # the remainder starts with "xxx": not an id


def test_system_reads_conf_dir(tmp_path):
    (tmp_path / "rt_tables").write_text("255 local\n254 main\n253 default\n0 unspec\n200 isp\n")
    d = tmp_path / "rt_tables.d"
    d.mkdir()
    (d / "b.conf").write_text("201 vpn\n")
    (d / "a.conf").write_text("202 vpn\n")  # sorted: a.conf then b.conf
    (d / "x.txt").write_text("203 ignored\n")
    (d / ".hidden.conf").write_text("204 hidden\n")
    (tmp_path / "rt_protos").write_text("250 mine\n")
    (tmp_path / "rt_dsfield").write_text("0x10 lowdelay\n")
    t = RtTables.system(str(tmp_path))
    assert t.id("isp") == 200 and t.id("unspec") == 0
    assert t.id("vpn") == 201 and t.name(202) == "vpn"
    for name in ("ignored", "hidden"):
        with pytest.raises(ValueError):
            t.id(name)
    assert t.protos.name(250) == "mine" and t.protos.name(4) == "static"
    assert t.protos.name(99) == "99"  # no shipped rt_protos here
    assert t.dsfield.name(0x10) == "lowdelay" and t.dsfield.name(0xB8) == "0xb8"
    assert t.realms.name(0) == "unknown"  # built-in without rt_realms


def test_load_rt_tables_choices(tmp_path):
    f = tmp_path / "tables"
    f.write_text("42 answer\n")
    assert load_rt_tables(str(f)).id("answer") == 42
    assert load_rt_tables(None, use_system=False).name(42) == "42"
    missing = RtTables.from_file(str(tmp_path / "nope"))
    assert missing.name(254) == "main" and missing.warnings == []


def test_other_databases():
    t = RtTables()
    assert t.protos.name(3) == "boot" and t.protos.name(99) == "openr"
    assert t.protos.name(77) == "77"
    assert t.protos.id("static") == 4 and t.protos.id("0x10") == 16
    with pytest.raises(ValueError):
        t.protos.id("256")
    # rt_dsfield: names, and numbers in base 16 (so "10" is 0x10)
    assert t.dsfield.id("10") == 0x10 and t.dsfield.id("0x18") == 0x18
    assert t.dsfield.id("EF") == 0xB8 and t.dsfield.name(0x28) == "AF11"
    assert t.dsfield.name(0x04) == "0x04"
    assert t.scopes.id("link") == 253 and t.scopes.name(17) == "17"
    assert t.scopes.name(0) == "global"
    assert t.realms.name(0) == "cosmos" and t.realms.id("cosmos") == 0
    assert t.group_name(0) == "default" and t.group_id("default") == 0
    assert t.group_id("0x10") == 16
    with pytest.raises(ValueError):
        t.group_id("-1")


def test_c_number_parsers():
    assert strtoul("0x1f") == (31, 4, False)
    assert strtoul("0x") == (0, 1, False)  # "0" parsed, "x" left over
    assert strtoul("-1")[0] == 2**64 - 1
    assert strtoul("abc") == (0, 0, False)
    assert get_u32("4294967295") == 0xFFFFFFFF and get_u32("4294967296") is None
    assert get_u32("-1") is None and get_u32("") is None and get_u32(" 5") == 5
    assert get_u16("65536") is None and get_u8("0xff") == 255
    assert get_s32("-5") == -5 and get_s32("2147483648") is None


def _ref_strtoul(s, base):
    """glibc strtoul, written again from the C standard: the reference for strtoul()."""
    i = 0
    while i < len(s) and s[i] in " \t\n\v\f\r":
        i += 1
    neg = i < len(s) and s[i] == "-"
    if i < len(s) and s[i] in "+-":
        i += 1
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"

    def val(c):
        d = digits.find(c.lower()) if c.isascii() else -1
        return d if d >= 0 else 99

    if base in (0, 16) and s[i : i + 2].lower() == "0x" and i + 2 < len(s) and val(s[i + 2]) < 16:
        i, base = i + 2, 16
    elif base == 0:
        base = 8 if s[i : i + 1] == "0" else 10
    start, value = i, 0
    while i < len(s) and val(s[i]) < base:
        value, i = value * base + val(s[i]), i + 1
    if i == start:
        return 0, 0, False
    if value > 2**64 - 1:
        return 2**64 - 1, i, True
    return (-value) & (2**64 - 1) if neg else value, i, False


def test_strtoul_matches_char_by_char_reference():
    import random

    rng = random.Random(20261126)
    alphabet = "0123456789789abcdefxX_-+ \t\u0663Zz"  # \u0663: a non-ASCII digit
    for _ in range(20000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        for base in (0, 2, 8, 10, 16, 36):
            assert strtoul(s, base) == _ref_strtoul(s, base), (s, base)


def test_name_lookup_follows_later_adds():
    from polroute.iproute2.rt_tables import _HashDB

    db = _HashDB({254: "main"})
    assert db.a2n("main") == 254 and db.a2n("x") is None
    db.add(300, "x")  # bucket 44
    assert db.a2n("x") == 300
    db.add(20, "x")  # a lower bucket: scanned first, so it wins
    assert db.a2n("x") == 20
    db.add(276, "x")  # same bucket as 20 and at its head: wins again
    assert db.a2n("x") == 276
