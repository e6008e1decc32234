/* test_nl_encode.c - the request encoder (pr_nl_batch_add_rule / _route).
 *
 *  1. Byte for byte against the reference below: the hand-written encoder
 *     netlink.c had before it walked the field tables, kept here verbatim
 *     (renamed, writing into a local buffer instead of a batch).  The only
 *     deliberate difference: the table-driven encoder writes attributes in
 *     ascending type order, so RTA_VIA (18) now follows RTA_TABLE (15)
 *     instead of RTA_GATEWAY; for a route carrying RTA_VIA both messages are
 *     compared with their attributes in type order (a stable sort), every
 *     other message exactly.  Requests are random (every present bit, bits
 *     no row has, any field bytes, names without a NUL, bad families, too
 *     many legs ...), keeping to the present bits the reference knows: the
 *     return codes must be equal too.
 *  2. Round trip: random valid requests of both families, every selector and
 *     attribute (legs with a gateway of either family, RTA_VIA, metrics) ->
 *     encode -> the dump decoder (pr_dump_decode) -> the same fields.  The
 *     requests are drawn row by row from the field tables (the structured
 *     route rows by hand) and dumped routes compared through
 *     pr_route_dump_slots, so a row added later is covered as it is.
 *  3. The error cases, each on its own: -EINVAL and nothing appended.
 *  4. The first use of the tables' views from eight threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "nlmsg.h"
#include "polroute.h"
#include "testutil.h"

enum { NL_MAX_MSG = 4096 };

/* ---- the reference: netlink.c's encoder before the tables (verbatim) ---- */

static void attr_pair32(nlm_buf *e, uint16_t type, uint32_t a, uint32_t b)
{
    uint32_t v[2] = { a, b };
    nlm_attr_put(e, type, v, sizeof v);
}

static void attr_pair16(nlm_buf *e, uint16_t type, uint16_t a, uint16_t b)
{
    uint16_t v[2] = { a, b };
    nlm_attr_put(e, type, v, sizeof v);
}

static unsigned addr_len(uint8_t family) { return family == PR_AF_INET ? 4u : 16u; }
static bool family_ok(uint8_t family) { return family == PR_AF_INET || family == PR_AF_INET6; }
static bool has(uint32_t present, unsigned attr_id) { return (present >> attr_id) & 1u; }

static void ifname_attr(nlm_buf *e, uint16_t type, const char name[16], int *err)
{
    size_t n = strnlen(name, 16);
    if (n == 16) {              /* no NUL: IFNAMSIZ is 16 with the terminator */
        *err = -EINVAL;
        return;
    }
    nlm_attr_put(e, type, name, n + 1);
}

static uint8_t table8(uint32_t table) { return table < 256 ? (uint8_t)table : (uint8_t)RT_TABLE_UNSPEC; }

static int ref_begin(nlm_buf *e, uint8_t *mem, int msg_type, int nlmsg_flags)
{
    nlm_msg_begin(e, mem, NL_MAX_MSG, (uint16_t)msg_type,
                  (uint16_t)((unsigned)nlmsg_flags | NLM_F_REQUEST | NLM_F_ACK), 0);
    return 0;
}

static int ref_commit(nlm_buf *e, int err)
{
    if (err < 0)
        return err;
    return nlm_msg_end(e);      /* the message's length */
}

static int ref_add_rule(uint8_t *mem, int msg_type, int nlmsg_flags, const pr_rule_req *r)
{
    if (r == NULL || (msg_type != PR_RTM_NEWRULE && msg_type != PR_RTM_DELRULE)
        || !family_ok(r->family) || nlmsg_flags < 0 || nlmsg_flags > 0xFFFF)
        return -EINVAL;
    nlm_buf e;
    int err = ref_begin(&e, mem, msg_type, nlmsg_flags);
    if (err < 0)
        return err;

    const uint32_t p = r->present;
    const bool table_attr = has(p, PR_FRA_TABLE) || r->table > 255;
    uint8_t *frh = nlm_reserve(&e, RTNL_FIB_RULE_HDR_LEN);
    if (frh == NULL)
        return -EMSGSIZE;
    frh[0] = r->family;
    frh[1] = r->dst_len;
    frh[2] = r->src_len;
    frh[3] = r->tos;
    frh[4] = table8(r->table);
    frh[7] = r->action;                     /* res1, res2 (5, 6) stay 0 */
    nlm_put32(frh + 8, r->flags);

    const unsigned alen = addr_len(r->family);
    if (has(p, PR_FRA_DST)) nlm_attr_put(&e, FRA_DST, r->dst, alen);
    if (has(p, PR_FRA_SRC)) nlm_attr_put(&e, FRA_SRC, r->src, alen);
    if (has(p, PR_FRA_IIFNAME)) ifname_attr(&e, FRA_IIFNAME, r->iifname, &err);
    if (has(p, PR_FRA_GOTO)) nlm_attr_put_u32(&e, FRA_GOTO, r->goto_target);
    if (has(p, PR_FRA_PRIORITY)) nlm_attr_put_u32(&e, FRA_PRIORITY, r->priority);
    if (has(p, PR_FRA_FWMARK)) nlm_attr_put_u32(&e, FRA_FWMARK, r->fwmark);
    if (has(p, PR_FRA_FLOW)) nlm_attr_put_u32(&e, FRA_FLOW, r->realm);
    if (has(p, PR_FRA_TUN_ID)) nlm_attr_put_be64(&e, FRA_TUN_ID, r->tun_id);
    if (has(p, PR_FRA_SUPPRESS_IFGROUP))
        nlm_attr_put_u32(&e, FRA_SUPPRESS_IFGROUP, (uint32_t)r->suppress_ifgroup);
    if (has(p, PR_FRA_SUPPRESS_PREFIXLEN))
        nlm_attr_put_u32(&e, FRA_SUPPRESS_PREFIXLEN, (uint32_t)r->suppress_prefixlen);
    if (table_attr) nlm_attr_put_u32(&e, FRA_TABLE, r->table);
    if (has(p, PR_FRA_FWMASK)) nlm_attr_put_u32(&e, FRA_FWMASK, r->fwmask);
    if (has(p, PR_FRA_OIFNAME)) ifname_attr(&e, FRA_OIFNAME, r->oifname, &err);
    if (has(p, PR_FRA_L3MDEV)) nlm_attr_put_u8(&e, FRA_L3MDEV, r->l3mdev);
    if (has(p, PR_FRA_UID_RANGE)) attr_pair32(&e, FRA_UID_RANGE, r->uid_start, r->uid_end);
    if (has(p, PR_FRA_PROTOCOL)) nlm_attr_put_u8(&e, FRA_PROTOCOL, r->protocol);
    if (has(p, PR_FRA_IP_PROTO)) nlm_attr_put_u8(&e, FRA_IP_PROTO, r->ip_proto);
    if (has(p, PR_FRA_SPORT_RANGE))
        attr_pair16(&e, FRA_SPORT_RANGE, r->sport_start, r->sport_end);
    if (has(p, PR_FRA_DPORT_RANGE))
        attr_pair16(&e, FRA_DPORT_RANGE, r->dport_start, r->dport_end);
    if (has(p, PR_FRA_DSCP)) nlm_attr_put_u8(&e, FRA_DSCP, r->dscp);
    if (has(p, PR_FRA_FLOWLABEL)) nlm_attr_put_be32(&e, FRA_FLOWLABEL, r->flowlabel);
    if (has(p, PR_FRA_FLOWLABEL_MASK)) nlm_attr_put_be32(&e, FRA_FLOWLABEL_MASK, r->flowlabel_mask);
    if (has(p, PR_FRA_SPORT_MASK)) nlm_attr_put_u16(&e, FRA_SPORT_MASK, r->sport_mask);
    if (has(p, PR_FRA_DPORT_MASK)) nlm_attr_put_u16(&e, FRA_DPORT_MASK, r->dport_mask);
    if (has(p, PR_FRA_DSCP_MASK)) nlm_attr_put_u8(&e, FRA_DSCP_MASK, r->dscp_mask);
    return ref_commit(&e, err);
}

/* RTA_GATEWAY for a gateway of the route's family, else RTA_VIA (struct rtvia). */
static void gateway_attr(nlm_buf *e, uint8_t route_family, uint8_t gw_family, const uint8_t gw[16],
                         bool as_via)
{
    if (!as_via) {
        nlm_attr_put(e, RTA_GATEWAY, gw, addr_len(route_family));
        return;
    }
    uint8_t via[2 + 16];
    nlm_put16(via, gw_family);              /* __kernel_sa_family_t, host order */
    memcpy(via + 2, gw, addr_len(gw_family));
    nlm_attr_put(e, RTA_VIA, via, 2u + addr_len(gw_family));
}

static int ref_add_route(uint8_t *mem, int msg_type, int nlmsg_flags, const pr_route_req *r)
{
    if (r == NULL || (msg_type != PR_RTM_NEWROUTE && msg_type != PR_RTM_DELROUTE)
        || !family_ok(r->family) || nlmsg_flags < 0 || nlmsg_flags > 0xFFFF)
        return -EINVAL;
    const uint32_t p = r->present;
    if (has(p, PR_RTA_MULTIPATH)
        && (r->nh_count > PR_MAX_NEXTHOPS || (r->nh_count > 0 && r->nh == NULL)))
        return -EINVAL;
    if (has(p, PR_RTA_VIA) && !family_ok(r->gw_family))
        return -EINVAL;
    if (has(p, PR_RTA_METRICS) && ((r->metrics_present >> RTAX_CC_ALGO) & 1u))   /* a string: not from a u32 */
        return -EINVAL;
    nlm_buf e;
    int err = ref_begin(&e, mem, msg_type, nlmsg_flags);
    if (err < 0)
        return err;

    const bool table_attr = has(p, PR_RTA_TABLE) || r->table > 255;
    uint8_t *rtm = nlm_reserve(&e, RTNL_RTMSG_LEN);
    if (rtm == NULL)
        return -EMSGSIZE;
    rtm[0] = r->family;
    rtm[1] = r->dst_len;
    rtm[2] = 0;                             /* rtm_src_len: no source-specific routes */
    rtm[3] = r->tos;
    rtm[4] = table8(r->table);
    rtm[5] = r->protocol;
    rtm[6] = r->scope;
    rtm[7] = r->type;
    nlm_put32(rtm + 8, r->rtm_flags);

    const unsigned alen = addr_len(r->family);
    if (has(p, PR_RTA_DST)) nlm_attr_put(&e, RTA_DST, r->dst, alen);
    if (has(p, PR_RTA_OIF)) nlm_attr_put_u32(&e, RTA_OIF, r->oif);
    if (has(p, PR_RTA_GATEWAY)) gateway_attr(&e, r->family, r->family, r->gw, false);
    if (has(p, PR_RTA_VIA)) gateway_attr(&e, r->family, r->gw_family, r->gw, true);
    if (has(p, PR_RTA_PRIORITY)) nlm_attr_put_u32(&e, RTA_PRIORITY, r->priority);
    if (has(p, PR_RTA_PREFSRC)) nlm_attr_put(&e, RTA_PREFSRC, r->prefsrc, alen);
    if (has(p, PR_RTA_METRICS)) {
        size_t at = nlm_nest_begin(&e, RTA_METRICS);   /* plain, not NLA_F_NESTED, as iproute2 */
        for (uint16_t x = RTAX_LOCK; x <= RTAX_MAX; x++)
            if ((r->metrics_present >> x) & 1u)
                nlm_attr_put_u32(&e, x, r->metrics[x]);
        nlm_nest_end(&e, at);
    }
    if (has(p, PR_RTA_MULTIPATH)) {
        size_t at = nlm_nest_begin(&e, RTA_MULTIPATH);
        for (uint32_t i = 0; i < r->nh_count; i++) {
            const pr_nexthop_req *nh = &r->nh[i];
            if (nh->weight > 256 || (nh->gw_family != 0 && !family_ok(nh->gw_family))) {
                err = -EINVAL;
                break;
            }
            size_t leg = e.len;
            uint8_t *rtnh = nlm_reserve(&e, RTNL_RTNEXTHOP_LEN);
            if (rtnh == NULL)
                break;
            rtnh[2] = nh->flags;
            rtnh[3] = (uint8_t)(nh->weight ? nh->weight - 1u : 0u);   /* rtnh_hops = weight - 1 */
            nlm_put32(rtnh + 4, nh->ifindex);
            if (nh->gw_family != 0)
                gateway_attr(&e, r->family, nh->gw_family, nh->gw, nh->gw_family != r->family);
            nlm_len16_end(&e, leg);                                 /* rtnh_len */
        }
        nlm_nest_end(&e, at);
    }
    if (has(p, PR_RTA_FLOW)) nlm_attr_put_u32(&e, RTA_FLOW, r->realm);
    if (table_attr) nlm_attr_put_u32(&e, RTA_TABLE, r->table);
    if (has(p, PR_RTA_PREF)) nlm_attr_put_u8(&e, RTA_PREF, r->pref);
    if (has(p, PR_RTA_NH_ID)) nlm_attr_put_u32(&e, RTA_NH_ID, r->nh_id);
    return ref_commit(&e, err);
}

/* ---- random requests ---- */

/* What the reference encodes. */
static const unsigned rule_bits[] = {
    PR_FRA_DST, PR_FRA_SRC, PR_FRA_IIFNAME, PR_FRA_GOTO, PR_FRA_PRIORITY, PR_FRA_FWMARK, PR_FRA_FLOW,
    PR_FRA_TUN_ID, PR_FRA_SUPPRESS_IFGROUP, PR_FRA_SUPPRESS_PREFIXLEN, PR_FRA_TABLE, PR_FRA_FWMASK,
    PR_FRA_OIFNAME, PR_FRA_L3MDEV, PR_FRA_UID_RANGE, PR_FRA_PROTOCOL, PR_FRA_IP_PROTO,
    PR_FRA_SPORT_RANGE, PR_FRA_DPORT_RANGE, PR_FRA_DSCP, PR_FRA_FLOWLABEL, PR_FRA_FLOWLABEL_MASK,
    PR_FRA_SPORT_MASK, PR_FRA_DPORT_MASK, PR_FRA_DSCP_MASK,
};
static const unsigned route_bits[] = {
    PR_RTA_DST, PR_RTA_OIF, PR_RTA_GATEWAY, PR_RTA_PRIORITY, PR_RTA_PREFSRC, PR_RTA_METRICS,
    PR_RTA_MULTIPATH, PR_RTA_FLOW, PR_RTA_TABLE, PR_RTA_VIA, PR_RTA_PREF, PR_RTA_NH_ID,
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rnd();
}

static uint32_t rnd32(void)
{
    /* edges more often than a uniform draw would give them */
    switch (below(6)) {
    case 0: return 0;
    case 1: return UINT32_MAX;
    case 2: return below(256);
    case 3: return 255 + below(3);
    default: return (uint32_t)rnd();
    }
}

static void rnd_name(char name[16], bool may_lack_nul)
{
    memset(name, 0, 16);
    size_t n = may_lack_nul && below(8) == 0 ? 16 : below(16);
    for (size_t i = 0; i < n; i++)
        name[i] = (char)('a' + below(26));
}

static uint8_t rnd_family(bool may_be_bad)
{
    if (may_be_bad && below(16) == 0) {
        static const uint8_t bad[] = { 0, 1, 3, 7, 28, 129, 255 };
        return bad[below(NELEM(bad))];
    }
    return below(2) ? PR_AF_INET : PR_AF_INET6;
}

/* One row's value as the dump decoder reads it back: any bytes, but a name
 * has its NUL and an address fills only its family's bytes, its prefix
 * length fitting.  Plain kinds only (the structured ones are the caller's). */
static void rnd_row(uint8_t *req, const pr_field_info *f, uint8_t family)
{
    uint8_t *v = req + f->offset;
    switch (f->kind) {
    case PR_FK_ADDR: {
        const unsigned alen = addr_len(family);
        fill_random(v, alen);
        if (f->aux_size == 1)
            req[f->aux_offset] = (uint8_t)below(alen * 8 + 1);
        break;
    }
    case PR_FK_IFNAME:
        rnd_name((char *)v, false);
        break;
    default:
        if (f->size == 4) {
            uint32_t x = rnd32();
            memcpy(v, &x, 4);
        } else {
            fill_random(v, f->size);
        }
        break;
    }
}

/* The rows of a table at random, as the rows say: header rows any value,
 * each attribute row sent one time in three; a table id not sent fits the
 * header (else it would be sent). */
static void rnd_rows(uint8_t *req, uint32_t *present, const pr_field_info *rows, size_t n, uint8_t family)
{
    for (size_t i = 0; i < n; i++) {
        const pr_field_info *f = &rows[i];
        if (f->flags & PR_FF_HEADER) {
            if (f->kind != PR_FK_FAMILY)
                rnd_row(req, f, family);
            continue;
        }
        if (f->present_bit < 0)
            continue;
        bool sent = below(3) == 0;
        if (sent) {
            *present |= UINT32_C(1) << f->present_bit;
            if (f->kind != PR_FK_FAMILY && f->kind != PR_FK_MULTIPATH && f->kind != PR_FK_METRICS)
                rnd_row(req, f, family);
        } else if (f->flags & PR_FF_ALSO_HEADER) {
            uint32_t id = below(256);
            memcpy(req + f->offset, &id, sizeof id);
        }
    }
}

/* valid: what the dump decoder reads back unchanged (defaults where absent,
 * names with their NUL, IPv4 addresses in the first 4 bytes only, FRA_TABLE
 * sent when the id does not fit the header), from the table's rows: a new
 * row is in the round trip without an edit here.  Else any bytes. */
static void rnd_rule(pr_rule_req *r, bool valid)
{
    memset(r, 0, sizeof *r);
    if (!valid) {
        fill_random(r, sizeof *r);
        r->family = rnd_family(true);
        r->table = rnd32();
        rnd_name(r->iifname, true);
        rnd_name(r->oifname, true);
        r->present = (uint32_t)rnd() & (below(2) ? UINT32_MAX : 0x7FFFFFFEu);
        return;
    }
    *r = pr_rule_neutral;
    r->family = rnd_family(false);
    rnd_rows((uint8_t *)r, &r->present, pr_rule_fields, PR_RF_COUNT, r->family);
}

static void rnd_leg(pr_nexthop_req *h, uint8_t route_family, bool valid)
{
    memset(h, 0, sizeof *h);
    if (!valid) {
        fill_random(h, sizeof *h);
        if (below(4))
            h->gw_family = below(3) == 0 ? 0 : rnd_family(true);
        if (below(4))
            h->weight = (uint16_t)below(258);
        return;
    }
    h->flags = (uint8_t)rnd();
    h->weight = (uint16_t)(1 + below(256));
    h->ifindex = rnd32();
    switch (below(3)) {
    case 0: break;
    case 1: h->gw_family = route_family; break;
    default: h->gw_family = rnd_family(false); break;
    }
    if (h->gw_family != 0)
        fill_random(h->gw, addr_len(h->gw_family));
}

/* As rnd_rule; legs go to nh[PR_MAX_NEXTHOPS + 2] (an invalid one may have
 * one leg too many, or none at all behind a count). */
static void rnd_route(pr_route_req *r, pr_nexthop_req *nh, bool valid)
{
    memset(r, 0, sizeof *r);
    if (!valid) {
        fill_random(r, sizeof *r);
        r->family = rnd_family(true);
        r->table = rnd32();
        r->gw_family = below(4) ? rnd_family(true) : r->gw_family;
        r->present = (uint32_t)rnd();
        r->metrics_present = (uint32_t)rnd() & (below(4) ? ~(UINT32_C(1) << RTAX_CC_ALGO) : UINT32_MAX);
        r->nh_count = below(PR_MAX_NEXTHOPS + 2);
        for (uint32_t i = 0; i < r->nh_count; i++)
            rnd_leg(&nh[i], r->family, below(8) != 0);
        r->nh = below(32) ? nh : NULL;
        return;
    }
    r->family = rnd_family(false);
    rnd_rows((uint8_t *)r, &r->present, pr_route_fields, PR_TF_COUNT, r->family);
    /* the structured rows */
    if (has(r->present, PR_RTA_GATEWAY) && has(r->present, PR_RTA_VIA))   /* one gateway: the last would win */
        r->present &= ~(UINT32_C(1) << (below(2) ? PR_RTA_GATEWAY : PR_RTA_VIA));
    const uint32_t p = r->present;
    if (has(p, PR_RTA_GATEWAY))
        r->gw_family = r->family;
    else
        memset(r->gw, 0, sizeof r->gw);
    if (has(p, PR_RTA_VIA)) { r->gw_family = rnd_family(false); fill_random(r->gw, addr_len(r->gw_family)); }
    if (has(p, PR_RTA_METRICS)) {
        r->metrics_present = (uint32_t)rnd() & (((UINT32_C(1) << (RTAX_MAX + 1)) - 2) & ~(UINT32_C(1) << RTAX_CC_ALGO));
        for (unsigned x = RTAX_LOCK; x <= RTAX_MAX; x++)
            if ((r->metrics_present >> x) & 1u)
                r->metrics[x] = rnd32();
    }
    if (has(p, PR_RTA_MULTIPATH)) {
        r->nh_count = 1 + below(PR_MAX_NEXTHOPS);
        for (uint32_t i = 0; i < r->nh_count; i++)
            rnd_leg(&nh[i], r->family, true);
        r->nh = nh;
    }
}

/* ---- comparing messages ---- */

/* The message with its top-level attributes stably sorted by type (hdr: the
 * family header's length); false if it does not walk. */
static bool in_type_order(const uint8_t *m, size_t len, size_t hdr, uint8_t *out)
{
    enum { MAXA = 64 };
    size_t off[MAXA], alen[MAXA], n = 0;
    size_t at = NLM_HDRLEN + hdr;
    while (at < len) {
        if (n == MAXA || len - at < 4)
            return false;
        size_t l = nlm_get16(m + at);
        if (l < 4 || l > len - at)
            return false;
        off[n] = at;
        alen[n++] = nlm_align(l);
        at += nlm_align(l);
    }
    memcpy(out, m, NLM_HDRLEN + hdr);
    size_t w = NLM_HDRLEN + hdr;
    for (unsigned t = 0; t <= NLM_TYPE_MASK; t++) {
        for (size_t i = 0; i < n; i++) {
            if ((nlm_get16(m + off[i] + 2) & NLM_TYPE_MASK) != t)
                continue;
            memcpy(out + w, m + off[i], alen[i]);
            w += alen[i];
        }
        if (w == len)
            break;
    }
    return w == len;
}

/* How message i of b compares with the reference's (rc its return). */
static void check_same(pr_nl_batch *b, int got, int want, const uint8_t *ref, size_t hdr, bool sorted,
                       const char *what, size_t trial)
{
    CHECK_MSG(got >= 0 ? want > 0 : got == want, "%s %zu: encoder %d, reference %d", what, trial, got, want);
    if (got < 0 || want <= 0)
        return;
    size_t len = 0;
    const uint8_t *m = pr_nl_batch_message(b, (size_t)got, &len);
    CHECK_MSG(m != NULL && len == (size_t)want, "%s %zu: %zu bytes, reference %d", what, trial, len, want);
    if (m == NULL || len != (size_t)want)
        return;
    static uint8_t canon[NL_MAX_MSG];
    const uint8_t *expect = ref;
    if (sorted) {
        CHECK(in_type_order(ref, len, hdr, canon));
        expect = canon;
    }
    size_t at = 0;
    while (at < len && m[at] == expect[at])
        at++;
    CHECK_MSG(at == len, "%s %zu: differs at byte %zu of %zu", what, trial, at, len);
}

/* The present bits the reference can encode: its own, and those no row has
 * (both encoders ignore them).  A row added later is left out here. */
static uint32_t ref_known(const unsigned *bits, size_t n, const pr_field_wire *w)
{
    uint32_t known = 0;
    for (unsigned t = 0; t < 32; t++)
        if (w->row_of_type[t] < 0)
            known |= UINT32_C(1) << t;
    for (size_t i = 0; i < n; i++)
        known |= UINT32_C(1) << bits[i];
    return known;
}

static void test_bytes(size_t trials)
{
    const uint32_t rule_known = ref_known(rule_bits, NELEM(rule_bits), pr_rule_wire());
    const uint32_t route_known = ref_known(route_bits, NELEM(route_bits), pr_route_wire());
    pr_nl_batch *b = pr_nl_batch_new(0);
    CHECK(b != NULL);
    if (b == NULL)
        return;
    static uint8_t ref[NL_MAX_MSG];
    static pr_nexthop_req nh[PR_MAX_NEXTHOPS + 2];
    for (size_t t = 0; t < trials; t++) {
        if (t % 256 == 0)
            pr_nl_batch_clear(b);
        bool valid = below(4) != 0;
        int msg_type = below(2) ? PR_RTM_NEWRULE : PR_RTM_DELRULE;
        int flags = below(64) ? (int)below(0x10000) : (below(2) ? -1 : 0x10000);
        pr_rule_req r;
        rnd_rule(&r, valid);
        r.present &= rule_known;
        size_t before = pr_nl_batch_count(b);
        int want = ref_add_rule(ref, msg_type, flags, &r);
        int got = pr_nl_batch_add_rule(b, msg_type, flags, &r);
        check_same(b, got, want, ref, RTNL_FIB_RULE_HDR_LEN, false, "rule", t);
        CHECK_EQ(pr_nl_batch_count(b), before + (got >= 0));

        msg_type = below(2) ? PR_RTM_NEWROUTE : PR_RTM_DELROUTE;
        pr_route_req q;
        rnd_route(&q, nh, valid);
        q.present &= route_known;
        before = pr_nl_batch_count(b);
        want = ref_add_route(ref, msg_type, flags, &q);
        got = pr_nl_batch_add_route(b, msg_type, flags, &q);
        check_same(b, got, want, ref, RTNL_RTMSG_LEN, has(q.present, PR_RTA_VIA), "route", t);
        CHECK_EQ(pr_nl_batch_count(b), before + (got >= 0));
    }
    /* a rule type for a route and the other way round */
    pr_rule_req r;
    rnd_rule(&r, true);
    pr_route_req q;
    rnd_route(&q, nh, true);
    CHECK_EQ(pr_nl_batch_add_rule(b, PR_RTM_NEWROUTE, 0, &r), -EINVAL);
    CHECK_EQ(pr_nl_batch_add_route(b, PR_RTM_NEWRULE, 0, &q), -EINVAL);
    pr_nl_batch_free(b);
}

/* ---- round trip through the dump decoder ---- */

static bool decode_one(pr_dump *d, pr_nl_batch *b, int i, pr_dump_view *v)
{
    size_t len = 0;
    const uint8_t *m = pr_nl_batch_message(b, (size_t)i, &len);
    uint8_t copy[NL_MAX_MSG];
    if (m == NULL || len > sizeof copy)
        return false;
    memcpy(copy, m, len);
    uint16_t type = PR_RTM_NEWRULE;         /* dumps answer with NEW whatever was asked */
    if (nlm_get16(copy + 4) == PR_RTM_DELROUTE || nlm_get16(copy + 4) == PR_RTM_NEWROUTE)
        type = PR_RTM_NEWROUTE;
    nlm_put16(copy + 4, type);
    pr_dump_clear(d);
    int n = pr_dump_decode(d, copy, len);
    CHECK_MSG(n == 1, "decoded %d records: %s", n, pr_dump_error(d));
    pr_dump_get_view(d, v);
    return n == 1;
}

static void test_round_trip(size_t trials)
{
    pr_nl_batch *b = pr_nl_batch_new(0);
    pr_dump *d = pr_dump_new();
    CHECK(b != NULL && d != NULL);
    static pr_nexthop_req nh[PR_MAX_NEXTHOPS + 2];
    for (size_t t = 0; b != NULL && d != NULL && t < trials; t++) {
        pr_nl_batch_clear(b);
        pr_rule_req r;
        rnd_rule(&r, true);
        int i = pr_nl_batch_add_rule(b, below(2) ? PR_RTM_NEWRULE : PR_RTM_DELRULE, 0, &r);
        CHECK_EQ(i, 0);
        pr_dump_view v;
        if (i == 0 && decode_one(d, b, i, &v) && v.n_rules == 1) {
            const pr_rule_req *got = &v.rules[0].r;
            CHECK_MSG(memcmp(got, &r, sizeof r) == 0, "rule %zu: present %#x, decoded %#x", t, r.present,
                      got->present);
            /* field by field, so that a failure names the member */
            CHECK_EQ(got->table, r.table);
            CHECK_EQ(got->tun_id, r.tun_id);
            CHECK_EQ(got->flowlabel, r.flowlabel);
            CHECK_EQ(got->uid_end, r.uid_end);
            CHECK_EQ(got->sport_end, r.sport_end);
            CHECK_EQ(got->suppress_prefixlen, r.suppress_prefixlen);
        }

        pr_route_req q;
        rnd_route(&q, nh, true);
        pr_nl_batch_clear(b);
        i = pr_nl_batch_add_route(b, below(2) ? PR_RTM_NEWROUTE : PR_RTM_DELROUTE, 0, &q);
        CHECK_EQ(i, 0);
        if (i != 0 || !decode_one(d, b, i, &v) || v.n_routes != 1)
            continue;
        const pr_dump_route *g = &v.routes[0];
        CHECK_EQ(g->family, q.family);
        CHECK_EQ(g->dst_len, q.dst_len);
        CHECK_EQ(g->src_len, 0);
        CHECK_EQ(g->tos, q.tos);
        CHECK_EQ(g->table8, q.table < 256 ? q.table : 0);
        CHECK_EQ(g->table, q.table);
        CHECK_EQ(g->protocol, q.protocol);
        CHECK_EQ(g->scope, q.scope);
        CHECK_EQ(g->type, q.type);
        CHECK_EQ(g->rtm_flags, q.rtm_flags);
        CHECK_EQ(g->gw_family, q.gw_family);
        /* every plain attribute row where the table puts it in the record */
        for (size_t k = 0; k < PR_TF_COUNT; k++) {
            const pr_field_info *f = &pr_route_fields[k];
            const pr_dump_slot *at = &pr_route_dump_slots[k];
            if (at->at)
                CHECK_MSG(memcmp((const uint8_t *)g + at->at - 1, (const uint8_t *)&q + f->offset, f->size) == 0,
                          "route %zu: %s", t, f->name);
        }
        CHECK(memcmp(g->gw, q.gw, 16) == 0);    /* RTA_VIA's too */
        /* the attributes seen are exactly those sent */
        CHECK_MSG(g->seen == q.present, "route %zu: sent %#x, seen %#llx", t, q.present,
                  (unsigned long long)g->seen);
        CHECK_EQ(g->metrics_present, q.metrics_present);
        for (unsigned x = 0; x <= RTAX_MAX && g->metrics_present; x++)
            if ((g->metrics_present >> x) & 1u)
                CHECK_EQ(v.metric_values[g->metrics_off + x], q.metrics[x]);
        CHECK_EQ(g->nh_count, q.nh_count);
        for (uint32_t k = 0; k < g->nh_count && k < q.nh_count; k++) {
            const pr_dump_nexthop *h = &v.nexthops[g->nh_off + k];
            CHECK_EQ(h->flags, q.nh[k].flags);
            CHECK_EQ(h->hops + 1u, q.nh[k].weight);
            CHECK_EQ(h->ifindex, q.nh[k].ifindex);
            CHECK_EQ(h->gw_family, q.nh[k].gw_family);
            CHECK(memcmp(h->gw, q.nh[k].gw, 16) == 0);
        }
    }
    pr_dump_free(d);
    pr_nl_batch_free(b);
}

/* ---- the error cases, one by one ---- */

static void expect_einval_rule(pr_nl_batch *b, int msg_type, int flags, const pr_rule_req *r, const char *what)
{
    size_t n = pr_nl_batch_count(b), bytes = pr_nl_batch_bytes(b);
    int rc = pr_nl_batch_add_rule(b, msg_type, flags, r);
    CHECK_MSG(rc == -EINVAL, "%s: %d", what, rc);
    CHECK_EQ(pr_nl_batch_count(b), n);
    CHECK_EQ(pr_nl_batch_bytes(b), bytes);
}

static void expect_einval_route(pr_nl_batch *b, const pr_route_req *r, const char *what)
{
    size_t n = pr_nl_batch_count(b), bytes = pr_nl_batch_bytes(b);
    int rc = pr_nl_batch_add_route(b, PR_RTM_NEWROUTE, 0, r);
    CHECK_MSG(rc == -EINVAL, "%s: %d", what, rc);
    CHECK_EQ(pr_nl_batch_count(b), n);
    CHECK_EQ(pr_nl_batch_bytes(b), bytes);
}

static void test_errors(void)
{
    pr_nl_batch *b = pr_nl_batch_new(4);
    CHECK(b != NULL);
    if (b == NULL)
        return;
    pr_rule_req r = { .family = PR_AF_INET, .present = UINT32_C(1) << PR_FRA_PRIORITY, .priority = 5 };
    CHECK_EQ(pr_nl_batch_add_rule(b, PR_RTM_NEWRULE, 0, &r), 0);   /* something before the failures */

    pr_rule_req x = r;
    x.present |= UINT32_C(1) << PR_FRA_IIFNAME;
    memset(x.iifname, 'a', 16);
    expect_einval_rule(b, PR_RTM_NEWRULE, 0, &x, "iifname without a NUL");
    x = r;
    x.present |= UINT32_C(1) << PR_FRA_OIFNAME;
    memset(x.oifname, 'b', 16);
    expect_einval_rule(b, PR_RTM_NEWRULE, 0, &x, "oifname without a NUL");
    x = r;
    memset(x.oifname, 'b', 16);                 /* not sent: not looked at */
    CHECK_EQ(pr_nl_batch_add_rule(b, PR_RTM_NEWRULE, 0, &x), 1);
    static const uint8_t bad_families[] = { 0, 1, 3, 7, 28, 129, 255 };
    for (size_t i = 0; i < NELEM(bad_families); i++) {
        x = r;
        x.family = bad_families[i];
        expect_einval_rule(b, PR_RTM_NEWRULE, 0, &x, "rule family");
    }
    expect_einval_rule(b, PR_RTM_NEWROUTE, 0, &r, "a route type");
    expect_einval_rule(b, PR_RTM_NEWRULE, -1, &r, "negative flags");
    expect_einval_rule(b, PR_RTM_NEWRULE, 0x10000, &r, "flags past 16 bits");
    expect_einval_rule(b, PR_RTM_NEWRULE, 0, NULL, "no request");
    CHECK_EQ(pr_nl_batch_add_rule(NULL, PR_RTM_NEWRULE, 0, &r), -EINVAL);

    pr_nexthop_req legs[PR_MAX_NEXTHOPS + 1];
    for (size_t i = 0; i < NELEM(legs); i++)
        legs[i] = (pr_nexthop_req){ .weight = 1, .ifindex = (uint32_t)i + 1 };
    const pr_route_req q = { .family = PR_AF_INET6, .dst_len = 64, .present = UINT32_C(1) << PR_RTA_MULTIPATH,
                             .nh_count = PR_MAX_NEXTHOPS, .nh = legs };
    CHECK_EQ(pr_nl_batch_add_route(b, PR_RTM_NEWROUTE, 0, &q), 2);   /* 32 legs: the most */
    pr_route_req y = q;
    y.nh_count = PR_MAX_NEXTHOPS + 1;
    expect_einval_route(b, &y, "33 legs");
    y = q;
    y.nh = NULL;
    expect_einval_route(b, &y, "legs without their array");
    y = q;
    y.present = 0;
    y.nh_count = PR_MAX_NEXTHOPS + 1;           /* not sent: not looked at */
    CHECK_EQ(pr_nl_batch_add_route(b, PR_RTM_NEWROUTE, 0, &y), 3);
    for (size_t i = 0; i < NELEM(bad_families); i++) {
        y = q;
        y.family = bad_families[i];
        expect_einval_route(b, &y, "route family");
        y = q;
        y.present = UINT32_C(1) << PR_RTA_VIA;
        y.gw_family = bad_families[i];
        expect_einval_route(b, &y, "via family");
        if (bad_families[i] == 0)
            continue;                           /* a leg without a gateway */
        y = q;
        legs[3].gw_family = bad_families[i];
        expect_einval_route(b, &y, "leg gateway family");
        legs[3].gw_family = 0;
    }
    y = q;
    legs[31].weight = 257;
    expect_einval_route(b, &y, "leg weight 257");
    legs[31].weight = 256;
    CHECK_EQ(pr_nl_batch_add_route(b, PR_RTM_NEWROUTE, 0, &y), 4);
    y = q;
    y.present = UINT32_C(1) << PR_RTA_METRICS;
    y.metrics_present = UINT32_C(1) << RTAX_CC_ALGO;
    expect_einval_route(b, &y, "a congestion control metric");
    expect_einval_route(b, NULL, "no request");
    CHECK_EQ(pr_nl_batch_add_route(b, PR_RTM_NEWRULE, 0, &q), -EINVAL);
    CHECK_EQ(pr_nl_batch_count(b), 5);
    pr_nl_batch_free(b);
}

/* ---- first use from many threads at once ---- */

/* The encoders and the decoder build their views of the tables on first use
 * (pr_field_once): threads that all start there must all see them whole.
 * Each encodes the same rule and route and decodes them back. */
typedef struct first_use {
    pthread_barrier_t *go;
    pr_rule_req rule;
    pr_route_req route;
    int ok;
} first_use;

static void *first_use_thread(void *arg)
{
    first_use *u = arg;
    pr_nl_batch *b = pr_nl_batch_new(2);
    pr_dump *d = pr_dump_new();
    pthread_barrier_wait(u->go);
    if (b == NULL || d == NULL || pr_nl_batch_add_rule(b, PR_RTM_NEWRULE, 0, &u->rule) != 0
        || pr_nl_batch_add_route(b, PR_RTM_NEWROUTE, 0, &u->route) != 1) {
        pr_dump_free(d);
        pr_nl_batch_free(b);
        return NULL;
    }
    size_t len = 0;
    const uint8_t *m = pr_nl_batch_data(b, &len);
    uint8_t copy[2 * NL_MAX_MSG];
    pr_dump_view v = { 0 };
    if (len <= sizeof copy) {
        memcpy(copy, m, len);
        if (pr_dump_decode(d, copy, len) == 2)
            pr_dump_get_view(d, &v);
    }
    u->ok = v.n_rules == 1 && v.n_routes == 1 && memcmp(&v.rules[0].r, &u->rule, sizeof u->rule) == 0
            && v.routes[0].priority == u->route.priority && v.routes[0].table == u->route.table;
    pr_dump_free(d);
    pr_nl_batch_free(b);
    return NULL;
}

static void test_first_use(void)
{
    enum { T = 8 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, T);
    static first_use u[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        u[i] = (first_use){ .go = &go };
        u[i].rule = pr_rule_neutral;
        u[i].rule.family = PR_AF_INET6;
        u[i].rule.present = (UINT32_C(1) << PR_FRA_PRIORITY) | (UINT32_C(1) << PR_FRA_FLOWLABEL)
                            | (UINT32_C(1) << PR_FRA_TABLE);
        u[i].rule.priority = 100u + (uint32_t)i;
        u[i].rule.flowlabel = 0x12345u;
        u[i].rule.table = 1000u + (uint32_t)i;
        u[i].route = (pr_route_req){ .family = PR_AF_INET, .table = 70000u + (uint32_t)i, .priority = (uint32_t)i,
                                     .present = (UINT32_C(1) << PR_RTA_PRIORITY) | (UINT32_C(1) << PR_RTA_TABLE) };
        CHECK(pthread_create(&th[i], NULL, first_use_thread, &u[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(u[i].ok, "thread %d", i);
    }
    pthread_barrier_destroy(&go);
}

int main(int argc, char **argv)
{
    tu_seed("test_nl_encode", argc, argv, 0x6e6c656e636f6465ull);
    test_first_use();                   /* first: nothing has built the views yet */
    test_errors();
    test_bytes(20000);
    test_round_trip(5000);
    return tu_summary("test_nl_encode");
}
