/* test_fields.c - the rule and route field tables (csrc/fields.c).
 *
 *  1. The rows are well formed (terminated strings, unique names and
 *     attribute numbers, companions that point back) and cover every member
 *     of pr_rule_req / pr_route_req, each byte once, padding aside.
 *  2. Which selectors a rule carries is read from the table, and the rule
 *     index keys a rule only if every selector it carries is on the index's
 *     allow-list: for every selector row, a rule carrying it is simple
 *     exactly when the index declares it can key the row.  The allow-list
 *     classifies today's selectors as the old hand-kept deny-list did.
 *  3. Rules carrying selectors the index does not declare are answered as
 *     the linear walk answers them: random IPv4 and IPv6 policies mixing
 *     every selector row, indexed walk against the traced (linear) walk.
 *  4. The views the encoders and the dump decoder take of the tables: the
 *     wire order, the rows by type, the header slots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "polroute.h"
#include "rule_index.h"

static int failures;
#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            failures++;                                                                                           \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                         \
            fputc('\n', stderr);                                                                                  \
        }                                                                                                         \
    } while (0)

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* ---------------------------------------------------------------- 1. shape */

#define STR_OK(f, m) (strnlen((f)->m, sizeof((f)->m)) < sizeof((f)->m))

typedef struct member {
    const char *name;
    size_t offset, size;
} member;

/* The members as the struct declares them: a field added to a struct must
 * be added here and get a row (the sizeof asserts say so). */
#define RQ(m) {#m, offsetof(pr_rule_req, m), sizeof(((pr_rule_req *)0)->m)}
static const member rule_members[] = {
    RQ(family), RQ(dst_len), RQ(src_len), RQ(tos), RQ(action), RQ(protocol), RQ(ip_proto), RQ(l3mdev),
    RQ(dscp), RQ(dscp_mask), RQ(sport_start), RQ(sport_end), RQ(dport_start), RQ(dport_end), RQ(sport_mask),
    RQ(dport_mask), RQ(table), RQ(flags), RQ(present), RQ(priority), RQ(goto_target), RQ(fwmark), RQ(fwmask),
    RQ(realm), RQ(suppress_prefixlen), RQ(suppress_ifgroup), RQ(uid_start), RQ(uid_end), RQ(flowlabel),
    RQ(flowlabel_mask), RQ(tun_id), RQ(src), RQ(dst), RQ(iifname), RQ(oifname),
};
_Static_assert(sizeof(pr_rule_req) == 152, "pr_rule_req changed: give the new field a row in csrc/fields.c "
                                           "and list it in rule_members");
#define RT(m) {#m, offsetof(pr_route_req, m), sizeof(((pr_route_req *)0)->m)}
static const member route_members[] = {
    RT(family), RT(dst_len), RT(tos), RT(protocol), RT(scope), RT(type), RT(gw_family), RT(pref),
    RT(table), RT(rtm_flags), RT(present), RT(priority), RT(oif), RT(nh_id), RT(realm), RT(nh_count),
    RT(nh), RT(metrics_present), RT(metrics), RT(dst), RT(prefsrc), RT(gw),
};
_Static_assert(sizeof(pr_route_req) == (sizeof(void *) == 8 ? 176 : 168), "pr_route_req changed: give the new field a row "
                                                             "in csrc/fields.c and list it in route_members");

static void check_table(const char *what, size_t count, int (*get)(size_t, pr_field_info *), size_t struct_size,
                        const member *members, size_t nmembers, int nla_max)
{
    pr_field_info rows[64];
    CHECK(count > 0 && count <= 64, "%s: %zu rows", what, count);
    if (count == 0 || count > 64)
        return;
    pr_field_info tmp;
    CHECK(get(count, &tmp) == -2, "%s: row %zu should not exist", what, count);
    CHECK(get(0, NULL) == -2, "%s: NULL out accepted", what);
    unsigned char owner[512];
    memset(owner, 0xFF, sizeof(owner));
    for (size_t i = 0; i < count; i++) {
        pr_field_info *f = &rows[i];
        CHECK(get(i, f) == 0, "%s: row %zu", what, i);
        CHECK(STR_OK(f, name) && STR_OK(f, keyword) && STR_OK(f, aliases) && STR_OK(f, syntax) &&
                  STR_OK(f, print) && STR_OK(f, example) && STR_OK(f, nla_name),
              "%s row %zu: a string fills its array (no NUL)", what, i);
        CHECK(f->name[0], "%s row %zu has no name", what, i);
        CHECK(f->size > 0 && f->offset + f->size <= struct_size, "%s %s: outside the struct", what, f->name);
        CHECK(f->aux_size == 0 || f->aux_offset + f->aux_size <= struct_size, "%s %s: aux outside", what, f->name);
        CHECK(f->nla_type >= -1 && f->nla_type <= nla_max, "%s %s: attribute %d", what, f->name, f->nla_type);
        CHECK(f->present_bit == -1 || f->present_bit == f->nla_type, "%s %s: present bit %d is not FRA/RTA %d",
              what, f->name, f->present_bit, f->nla_type);
        CHECK((f->nla_type == -1) == (strchr(f->nla_name, '_') == NULL || strncmp(f->nla_name, "rtm_", 4) == 0),
              "%s %s: nla_name %s vs type %d", what, f->name, f->nla_name, f->nla_type);
        CHECK(f->families && !(f->families & ~(PR_FAM_IPV4 | PR_FAM_IPV6)), "%s %s: families", what, f->name);
        CHECK(f->kind != PR_FK_FLAG || f->flag != 0, "%s %s: a flag row needs its bits", what, f->name);
        CHECK(f->role != PR_FROLE_SELECTOR || f->keyword[0], "%s %s: a selector without a keyword", what, f->name);
        CHECK(f->role == PR_FROLE_META || f->keyword[0] || f->syntax[0], "%s %s: no keyword nor syntax", what,
              f->name);
        CHECK(f->role == PR_FROLE_META || f->print_fmt != PR_PF_NONE, "%s %s: not printed", what, f->name);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(rows[j].name, f->name) != 0, "%s: two rows named %s", what, f->name);
            CHECK(f->nla_type < 0 || rows[j].nla_type != f->nla_type, "%s: two rows for attribute %d", what,
                  f->nla_type);
        }
        /* every byte belongs to one row; an aux field may be its companion's
         * own field (RTA_VIA's address is RTA_GATEWAY's gw) */
        pr_field_info peer;
        bool aux_is_peer = f->link >= 0 && get((size_t)f->link, &peer) == 0 && f->aux_size &&
                           peer.offset == f->aux_offset && peer.size == f->aux_size;
        for (int pass = 0; pass < (aux_is_peer ? 1 : 2); pass++) {
            uint32_t off = pass ? f->aux_offset : f->offset, size = pass ? f->aux_size : f->size;
            for (uint32_t b = off; b < off + size && b < sizeof(owner); b++) {
                CHECK(owner[b] == 0xFF, "%s: byte %u is in rows %s and %s", what, b, rows[owner[b]].name, f->name);
                owner[b] = (unsigned char)i;
            }
        }
    }
    for (size_t i = 0; i < count; i++) {
        const pr_field_info *f = &rows[i];
        if (f->link < 0)
            continue;
        CHECK((size_t)f->link < count && rows[f->link].link == (int32_t)i, "%s %s: link %d does not point back",
              what, f->name, f->link);
        if (f->kind == PR_FK_MASK && (size_t)f->link < count) {
            const pr_field_info *v = &rows[f->link];
            uint32_t width = v->kind == PR_FK_RANGE16 || v->kind == PR_FK_RANGE32 ? v->size / 2 : v->size;
            CHECK(width == f->size, "%s %s: mask of %u bytes for a value of %u", what, f->name, f->size, width);
            CHECK(!strcmp(v->keyword, f->keyword), "%s %s: mask keyword %s, value keyword %s", what, f->name,
                  f->keyword, v->keyword);
        }
    }
    /* each member covered whole; the rest is padding */
    size_t covered = 0, declared = 0;
    for (size_t b = 0; b < struct_size; b++)
        covered += owner[b] != 0xFF;
    for (size_t m = 0; m < nmembers; m++) {
        declared += members[m].size;
        for (size_t b = members[m].offset; b < members[m].offset + members[m].size; b++)
            CHECK(owner[b] != 0xFF, "%s: member %s (byte %zu) has no row", what, members[m].name, b);
    }
    CHECK(covered == declared, "%s: rows cover %zu bytes, members have %zu", what, covered, declared);
    printf("%s: %zu rows cover %zu of %zu bytes (the rest padding)\n", what, count, covered, struct_size);
}

/* The encoders' and the dump decoder's derived views (fields.h): the wire
 * order is every attribute row once, by ascending type, row_of_type its
 * inverse; every header row, table twin and prefix length has a header slot,
 * inside the 12-byte header, no two slots sharing a byte. */
static void check_wire(const char *what, const pr_field_info *rows, size_t count, const pr_field_wire *w,
                       const pr_hdr_slot *slots)
{
    size_t attrs = 0;
    for (size_t i = 0; i < count; i++) {
        attrs += rows[i].nla_type >= 0;
        CHECK(rows[i].nla_type < PR_FIELD_TYPES, "%s %s: type %d past the present bitmap", what, rows[i].name,
              rows[i].nla_type);
    }
    CHECK(w->count == attrs, "%s: %u rows in wire order, %zu attribute rows", what, w->count, attrs);
    for (size_t k = 0; k < w->count; k++) {
        const pr_field_info *f = &rows[w->order[k]];
        CHECK(w->order[k] < count && f->nla_type >= 0, "%s: wire order %zu is row %u", what, k, w->order[k]);
        CHECK(k == 0 || rows[w->order[k - 1]].nla_type < f->nla_type, "%s: wire order not ascending at %zu", what, k);
        CHECK(w->row_of_type[f->nla_type] == (int8_t)w->order[k], "%s: row_of_type[%d]", what, f->nla_type);
    }
    size_t mapped = 0;
    for (size_t t = 0; t < PR_FIELD_TYPES; t++)
        mapped += w->row_of_type[t] >= 0;
    CHECK(mapped == attrs, "%s: %zu types mapped, %zu attribute rows", what, mapped, attrs);
    uint32_t bits = 0;
    size_t in_header = 0;
    for (size_t i = 0; i < count; i++) {
        if (rows[i].present_bit >= 0)
            bits |= UINT32_C(1) << rows[i].present_bit;
        in_header += slots[i].at || slots[i].aux_at;
    }
    CHECK(w->bits == bits, "%s: present bits %#x, rows have %#x", what, w->bits, bits);
    CHECK(w->nhdr == in_header, "%s: %u header rows, %zu slots", what, w->nhdr, in_header);
    for (size_t k = 0; k < w->nhdr && k < in_header; k++)
        CHECK(w->hdr[k] < count && (slots[w->hdr[k]].at || slots[w->hdr[k]].aux_at), "%s: header row %u", what,
              w->hdr[k]);

    unsigned char used[12] = { 0 };
    for (size_t i = 0; i < count; i++) {
        const pr_field_info *f = &rows[i];
        bool wants = (f->flags & (PR_FF_HEADER | PR_FF_ALSO_HEADER)) || f->kind == PR_FK_FAMILY;
        if (f->kind == PR_FK_FAMILY && f->nla_type >= 0)
            wants = false;                      /* RTA_VIA: an attribute */
        CHECK(!wants || slots[i].at, "%s %s: a header row without a header slot", what, f->name);
        CHECK(!(f->kind == PR_FK_ADDR && f->aux_size == 1) || slots[i].aux_at,
              "%s %s: its prefix length has no header slot", what, f->name);
        CHECK(!slots[i].at || wants, "%s %s: a header slot for an attribute row", what, f->name);
        if (slots[i].at) {
            uint32_t width = (f->flags & PR_FF_ALSO_HEADER) ? 1 : f->size;
            for (uint32_t b = slots[i].at - 1u; b < slots[i].at - 1u + width; b++) {
                CHECK(b < 12 && !used[b], "%s %s: header byte %u", what, f->name, b);
                if (b < 12)
                    used[b] = 1;
            }
        }
        if (slots[i].aux_at) {
            uint32_t b = slots[i].aux_at - 1u;
            CHECK(f->aux_size == 1 && b < 12 && !used[b], "%s %s: header byte %u for its aux", what, f->name, b);
            if (b < 12)
                used[b] = 1;
        }
    }
}

/* Every route attribute row of a plain kind lands in the dumped route, in a
 * place of its own; the structured kinds (handlers) and header rows do not. */
static void check_dump_slots(void)
{
    unsigned char used[sizeof(pr_dump_route)] = { 0 };
    for (size_t i = 0; i < PR_TF_COUNT; i++) {
        const pr_field_info *f = &pr_route_fields[i];
        const pr_dump_slot *d = &pr_route_dump_slots[i];
        bool plain = f->nla_type >= 0 && f->kind != PR_FK_FAMILY && f->kind != PR_FK_MULTIPATH &&
                     f->kind != PR_FK_METRICS;
        CHECK(plain == (d->at != 0), "route %s: dump slot %u for a %s row", f->name, d->at,
              plain ? "plain" : "structured or header");
        for (uint32_t b = d->at ? d->at - 1u : 0; d->at && b < d->at - 1u + f->size; b++) {
            CHECK(b < sizeof used && !used[b], "route %s: dumped route byte %u", f->name, b);
            if (b < sizeof used)
                used[b] = 1;
        }
        CHECK(!d->fam_at || (f->kind == PR_FK_ADDR && d->fam_at - 1u < sizeof used && !used[d->fam_at - 1u]),
              "route %s: family slot %u", f->name, d->fam_at);
        if (d->fam_at && d->fam_at - 1u < sizeof used)
            used[d->fam_at - 1u] = 1;
    }
}

/* ------------------------------------------------------- 2. the allow-list */

/* The deny-list the index used before the table (for the comparison only). */
static bool legacy_is_simple(const pr_rule_req *r)
{
    uint32_t complex_attrs = (1u << PR_FRA_DSCP) | (1u << PR_FRA_DSCP_MASK) | (1u << PR_FRA_FLOWLABEL) |
                             (1u << PR_FRA_FLOWLABEL_MASK) | (1u << PR_FRA_UID_RANGE);
    bool exact = !r->dport_mask && r->dport_start == r->dport_end && r->dport_start != 0;
    bool dport_ok = (!r->dport_start && !r->dport_end && !r->dport_mask) || exact;
    return !(r->flags & PR_FIB_RULE_INVERT) && !(r->present & complex_attrs) && dport_ok && r->ip_proto == 0 &&
           r->tun_id == 0 && !r->l3mdev && !r->sport_start && !r->sport_end && !r->sport_mask &&
           r->uid_start == 0 && r->uid_end == 0xFFFFFFFFu;
}

static void put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

/* 10.x.y.z / 2001:db8:x::y from a small pool, so rules and flows collide */
static void pool_addr(uint8_t family, uint8_t *b)
{
    uint32_t x = below(4), y = below(8);
    if (family == PR_AF_INET) {
        put4(b, 0x0A000000u | (x << 16) | y);
        return;
    }
    memset(b, 0, 16);
    b[0] = 0x20, b[1] = 0x01, b[2] = 0x0d, b[3] = 0xb8;
    b[5] = (uint8_t)x;
    b[15] = (uint8_t)y;
}

static const char *names[] = {"eth0", "eth1", "ghost0", "lo"};

/* A valid value for selector row `row` in request q (variant v), as the
 * kernel accepts it for q's family.  false: no such value for the family.
 * A selector row added to the table needs a case here (the test says so). */
static bool set_selector(pr_rule_req *q, unsigned row, uint32_t v)
{
    bool v4 = q->family == PR_AF_INET;
    switch (row) {
    case PR_RF_TOS:
        q->tos = (uint8_t)((1 + v % 7) << 2);   /* IPv4 takes 0x04..0x1c */
        return true;
    case PR_RF_IPPROTO:
        q->ip_proto = v % 2 ? 6 : 17;
        q->present |= 1u << PR_FRA_IP_PROTO;
        return true;
    case PR_RF_L3MDEV:
        q->l3mdev = 1;
        q->table = 0;   /* l3mdev and table are exclusive */
        q->present |= 1u << PR_FRA_L3MDEV;
        return true;
    case PR_RF_DSCP:
        q->tos = 0;
        q->dscp = (uint8_t)(v % 8 << 2);
        q->present |= 1u << PR_FRA_DSCP;
        return true;
    case PR_RF_DSCP_MASK:
        q->tos = 0;
        q->dscp = (uint8_t)((v % 4) << 3);
        q->dscp_mask = 0x18;
        q->present |= (1u << PR_FRA_DSCP) | (1u << PR_FRA_DSCP_MASK);
        return true;
    case PR_RF_SPORT:
    case PR_RF_DPORT: {
        uint16_t start = (uint16_t)(1 + v % 6), end = (uint16_t)(start + (v / 6) % 3);
        if (row == PR_RF_SPORT)
            q->sport_start = start, q->sport_end = end, q->present |= 1u << PR_FRA_SPORT_RANGE;
        else
            q->dport_start = start, q->dport_end = end, q->present |= 1u << PR_FRA_DPORT_RANGE;
        return true;
    }
    case PR_RF_SPORT_MASK:
    case PR_RF_DPORT_MASK: {
        uint16_t port = (uint16_t)(4 * (1 + v % 3));
        if (row == PR_RF_SPORT_MASK) {
            q->sport_start = q->sport_end = port, q->sport_mask = 0xFFFC;
            q->present |= (1u << PR_FRA_SPORT_RANGE) | (1u << PR_FRA_SPORT_MASK);
        } else {
            q->dport_start = q->dport_end = port, q->dport_mask = 0xFFFC;
            q->present |= (1u << PR_FRA_DPORT_RANGE) | (1u << PR_FRA_DPORT_MASK);
        }
        return true;
    }
    case PR_RF_NOT:
        q->flags |= PR_FIB_RULE_INVERT;
        return true;
    case PR_RF_FWMARK:
        q->fwmark = 1 + v % 3;
        q->present |= 1u << PR_FRA_FWMARK;
        return true;
    case PR_RF_FWMASK:
        q->fwmark = v % 4;
        q->fwmask = 0x3;
        q->present |= (1u << PR_FRA_FWMARK) | (1u << PR_FRA_FWMASK);
        return true;
    case PR_RF_UIDRANGE:
        q->uid_start = v % 3;
        q->uid_end = q->uid_start + v / 3 % 2;
        q->present |= 1u << PR_FRA_UID_RANGE;
        return true;
    case PR_RF_FLOWLABEL:
    case PR_RF_FLOWLABEL_MASK:
        if (v4)
            return false;   /* refused for IPv4 */
        q->flowlabel = v % 2 ? 0x10 : 0;   /* route get carries none: 0 matches */
        q->flowlabel_mask = 0xF0;
        q->present |= (1u << PR_FRA_FLOWLABEL) | (1u << PR_FRA_FLOWLABEL_MASK);
        return true;
    case PR_RF_TUN_ID:
        q->tun_id = 1 + v;
        q->present |= 1u << PR_FRA_TUN_ID;
        return true;
    case PR_RF_FROM:
        q->src_len = (uint8_t)(v4 ? (v % 2 ? 32 : 16) : (v % 2 ? 128 : 48));
        pool_addr(q->family, q->src);
        q->present |= 1u << PR_FRA_SRC;
        return true;
    case PR_RF_TO:
        q->dst_len = (uint8_t)(v4 ? (v % 2 ? 24 : 16) : (v % 2 ? 120 : 48));
        pool_addr(q->family, q->dst);
        q->present |= 1u << PR_FRA_DST;
        return true;
    case PR_RF_IIF:
        strcpy(q->iifname, names[v % 4]);
        q->present |= 1u << PR_FRA_IIFNAME;
        return true;
    case PR_RF_OIF:
        strcpy(q->oifname, names[v % 3]);
        q->present |= 1u << PR_FRA_OIFNAME;
        return true;
    default:
        return false;
    }
}

static void base_rule(pr_rule_req *q, uint8_t family, uint32_t prio)
{
    memset(q, 0, sizeof(*q));
    q->family = family;
    q->action = PR_FR_ACT_TO_TBL;
    q->table = 100 + below(4);
    q->priority = prio;
    q->present = 1u << PR_FRA_PRIORITY;
}

/* for every selector row: a stored rule carrying it is simple exactly when
 * every row it carries is on the index's allow-list */
static void check_allow_list(void)
{
    int checked = 0;
    for (int fam = 0; fam < 2; fam++) {
        uint8_t family = fam ? PR_AF_INET6 : PR_AF_INET;
        for (unsigned row = 0; row < PR_RF_COUNT; row++) {
            pr_field_info f;
            pr_rule_field_get(row, &f);
            if (f.role != PR_FROLE_SELECTOR)
                continue;
            bool any = false;
            for (uint32_t v = 0; v < 12; v++) {
                pr_rule_req q;
                base_rule(&q, family, 1000);
                if (!set_selector(&q, row, v))
                    continue;
                any = true;
                pr_policy *p = pr_policy_new();
                int rc = pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE, &q);
                CHECK(rc == 0, "%s rule %s (variant %u) refused: %d %s", fam ? "IPv6" : "IPv4", f.name, v, rc,
                      pr_errmsg(p));
                pr_rule_info info;
                for (size_t i = 0; rc == 0 && i < pr_rule_count(p, family); i++) {
                    if (pr_rule_get(p, family, i, &info) < 0 || info.r.priority != 1000)
                        continue;
                    uint64_t carried = pr_rule_selectors(&info.r);
                    CHECK(carried & PR_RF_BIT(row), "%s: a stored rule does not carry it", f.name);
                    bool keyable = true;
                    for (unsigned j = 0; j < PR_RF_COUNT; j++)
                        if ((carried & PR_RF_BIT(j)) && pr_rindex_key_kind(j) == PR_IK_NONE)
                            keyable = false;
                    if (carried & PR_RF_BIT(PR_RF_DPORT))
                        keyable = keyable && info.r.dport_start == info.r.dport_end;
                    CHECK(pr_rindex_is_simple(&info.r) == keyable, "%s (variant %u): simple %d, allow-list says %d",
                          f.name, v, pr_rindex_is_simple(&info.r), keyable);
                    CHECK(pr_rindex_is_simple(&info.r) == legacy_is_simple(&info.r),
                          "%s (variant %u): the allow-list and the old deny-list disagree", f.name, v);
                    checked++;
                }
                pr_policy_free(p);
            }
            CHECK(any || (family == PR_AF_INET && !(f.families & PR_FAM_IPV4)),
                  "selector row %s has no test value: add it to set_selector", f.name);
        }
    }
    /* a rule carrying nothing is simple; the non-selector rows are ignored */
    pr_rule_req q;
    base_rule(&q, PR_AF_INET, 5);
    q.suppress_prefixlen = -1;
    q.suppress_ifgroup = -1;
    q.uid_end = 0xFFFFFFFFu;
    CHECK(pr_rule_selectors(&q) == 0, "a bare rule carries %#llx", (unsigned long long)pr_rule_selectors(&q));
    q.realm = 7, q.goto_target = 9, q.protocol = 4, q.suppress_prefixlen = 0;
    CHECK(pr_rule_selectors(&q) == 0 && pr_rindex_is_simple(&q), "actions and attributes are not selectors");
    printf("allow-list: %d stored rules classified as the table says\n", checked);
}

/* --------------------------------------------- 3. indexed == linear, exact */

/* table's route to 10.x.0.0/16 or 2001:db8:x::/48 (x = table - 100), or its default */
static void route(pr_policy *p, uint8_t family, uint32_t table, uint8_t type, uint32_t oif, bool subnet)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = family;
    r.protocol = 3;
    r.type = type;
    r.table = table;
    if (subnet && family == PR_AF_INET) {
        put4(r.dst, 0x0A000000u | (table - 100) << 16);
        r.dst_len = 16;
    } else if (subnet) {
        r.dst[0] = 0x20, r.dst[1] = 0x01, r.dst[2] = 0x0d, r.dst[3] = 0xb8, r.dst[5] = (uint8_t)(table - 100);
        r.dst_len = 48;
    }
    r.present |= r.dst_len ? 1u << PR_RTA_DST : 0;
    if (type == PR_RTN_UNICAST) {
        r.present = 1u << PR_RTA_OIF;
        r.oif = oif;
        r.scope = family == PR_AF_INET ? 253 : 0;
    }
    int rc = pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
    CHECK(rc == 0, "route in table %u: %d %s", table, rc, pr_errmsg(p));
}

static int compare(const pr_policy *p, uint8_t family, size_t nflows, size_t *custom)
{
    int bad = 0;
    static uint8_t seen[4096];
    memset(seen, 0, sizeof(seen));
    *custom = 0;
    pr_result a, b;
    pr_trace_step step;
    for (size_t i = 0; i < nflows; i++) {
        pr_flow q;
        memset(&q, 0, sizeof(q));
        q.family = family;
        q.lookup_table = family == PR_AF_INET;
        pool_addr(family, q.dst);
        if (below(2) || family == PR_AF_INET6) {
            q.has_src = 1;
            pool_addr(family, q.src);
        }
        if (!below(4))
            q.oif = 2 + below(3);
        if (!below(5))
            q.iif = 2 + below(3);
        q.mark = below(3) ? 0 : below(8);
        if (below(3)) {
            q.has_uid = 1;
            q.uid = below(4);
        }
        if (below(2)) {
            q.has_ipproto = 1;
            q.ipproto = below(2) ? 6 : 17;
        }
        q.sport = (uint16_t)below(16);
        q.dport = (uint16_t)below(16);
        q.tos = (uint8_t)(below(3) ? 0 : below(8) << 2);
        pr_trace tr = {0, 0, 0, &step};   /* non-NULL: the linear walk */
        int ra = pr_route_get(p, &q, &a, NULL);
        int rb = pr_route_get(p, &q, &b, &tr);
        if (a.rule_index >= 0 && a.rule_priority != 0 && a.rule_priority < 32766 && a.rule_index < 4096 &&
            !seen[a.rule_index]) {
            seen[a.rule_index] = 1;
            ++*custom;
        }
        if (ra != rb || a.error != b.error || a.type != b.type || a.table != b.table ||
            a.rule_index != b.rule_index) {
            if (bad < 5)
                fprintf(stderr, "family %u flow %zu: indexed err=%d rule=%d table=%u / linear err=%d rule=%d "
                        "table=%u\n", family, i, a.error, a.rule_index, a.table, b.error, b.rule_index, b.table);
            bad++;
        }
    }
    return bad;
}

static void check_exact(uint8_t family, size_t nrules, size_t nflows)
{
    pr_policy *p = pr_policy_new();
    int e0 = pr_link_add_veth(p, "eth0", "sw0");
    int e1 = pr_link_add_veth(p, "eth1", "sw1");
    for (uint32_t i = 1; i <= 5; i++)
        pr_link_set_up(p, i, 1);
    /* each table answers for one of the pool's subnets and throws the rest:
     * most walks pass several rules before one decides */
    static const uint8_t types[] = {PR_RTN_UNICAST, PR_RTN_UNREACHABLE, PR_RTN_UNICAST, PR_RTN_PROHIBIT};
    for (uint32_t t = 100; t < 104; t++) {
        route(p, family, t, types[t - 100], (uint32_t)(below(2) ? e0 : e1), true);
        route(p, family, t, PR_RTN_THROW, 0, false);
    }
    /* selector rows to draw from: every one the table has */
    unsigned rows[PR_RF_COUNT], nrows = 0, complex_rules = 0;
    for (unsigned row = 0; row < PR_RF_COUNT; row++)
        if (pr_rule_fields[row].role == PR_FROLE_SELECTOR)
            rows[nrows++] = row;
    uint32_t prio = 1;
    for (size_t i = 0; i < nrules; i++) {
        prio += below(3);
        pr_rule_req q;
        base_rule(&q, family, prio);
        /* one to three selectors, any mix: a rule with a selector the index
         * does not key must land on the complex list */
        for (uint32_t k = 2 + below(3); k > 0; k--) {
            unsigned row = rows[below(nrows)];
            if (row == PR_RF_NOT && below(4))
                continue;   /* an inverted rule matches nearly every flow: keep them few */
            if (row == PR_RF_TOS && (q.present & (1u << PR_FRA_DSCP)))
                continue;
            if ((row == PR_RF_DSCP || row == PR_RF_DSCP_MASK) && q.tos)
                continue;
            if ((row == PR_RF_SPORT && (q.present & (1u << PR_FRA_SPORT_MASK))) ||
                (row == PR_RF_DPORT && (q.present & (1u << PR_FRA_DPORT_MASK))))
                continue;
            set_selector(&q, row, (uint32_t)rnd());
        }
        if (!below(8)) {
            q.action = PR_FR_ACT_GOTO;
            q.table = 0;
            q.l3mdev = 0;
            q.present &= ~(1u << PR_FRA_L3MDEV);
            q.goto_target = prio + 1 + below(20);
            q.present |= 1u << PR_FRA_GOTO;
        }
        (void)pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE, &q);
    }
    for (size_t i = 0; i < pr_rule_count(p, family); i++) {
        pr_rule_info info;
        if (pr_rule_get(p, family, i, &info) == 0 && !pr_rindex_is_simple(&info.r))
            complex_rules++;
    }
    size_t custom;
    int bad = compare(p, family, nflows, &custom);
    CHECK(custom >= 10, "only %zu of the random rules decided a flow", custom);
    CHECK(bad == 0, "IPv%d: %d flows answered differently by the index", family == PR_AF_INET ? 4 : 6, bad);
    printf("IPv%d: %zu rules (%u complex), %zu flows (%zu rules decided one): %d differences\n",
           family == PR_AF_INET ? 4 : 6, pr_rule_count(p, family), complex_rules, nflows, custom, bad);
    pr_policy_free(p);
}

int main(int argc, char **argv)
{
    rng_state = argc > 1 ? strtoull(argv[1], NULL, 10) : 20261127u;
    printf("seed %llu\n", (unsigned long long)rng_state);
    check_table("rule fields", pr_rule_field_count(), pr_rule_field_get, sizeof(pr_rule_req), rule_members,
                sizeof(rule_members) / sizeof(rule_members[0]), 30);
    check_table("route fields", pr_route_field_count(), pr_route_field_get, sizeof(pr_route_req), route_members,
                sizeof(route_members) / sizeof(route_members[0]), 30);
    check_wire("rule fields", pr_rule_fields, PR_RF_COUNT, pr_rule_wire(), pr_rule_hdr_slots);
    check_wire("route fields", pr_route_fields, PR_TF_COUNT, pr_route_wire(), pr_route_hdr_slots);
    check_dump_slots();
    check_allow_list();
    check_exact(PR_AF_INET, 60, 3000);
    check_exact(PR_AF_INET, 2000, 3000);
    check_exact(PR_AF_INET6, 60, 3000);
    check_exact(PR_AF_INET6, 2000, 3000);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
