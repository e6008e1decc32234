/*
 * bulk.c - evaluating many IPv4 or IPv6 questions from caller-owned columns into
 * caller-owned columns, with no allocation per flow (DPDK lpm's bulk-call
 * shape).  Each flow is answered exactly as pr_route_get() answers it.
 */
#include <string.h>

#include "core.h"

/* The columns v4 and v6 share (NULL columns are not wanted); true when the
 * answer has a nexthop whose gateway/oif the caller may read. */
static bool store_common(const pr_result *res, size_t i, int32_t *error, uint8_t *type,
                         uint32_t *table, uint32_t *rule_priority, uint32_t *oif, uint32_t *flags)
{
    bool ok = !res->error && res->nh_count > 0;
    if (error)
        error[i] = res->error;
    if (type)
        type[i] = res->error ? 0 : res->type;
    if (table)
        table[i] = res->error ? 0 : res->table;
    if (rule_priority)
        rule_priority[i] = res->rule_index >= 0 ? res->rule_priority : 0xFFFFFFFFu;
    if (oif)
        oif[i] = ok ? res->nh[0].oif : 0;
    if (flags)
        flags[i] = res->not_modelled;
    return ok;
}

/* Row i of a v4 bulk call through the exact path; q holds the fields every
 * row shares (family, lookup_table) and res is scratch. */
void pr_bulk4_row(const pr_policy *p, const pr_bulk_in *in, pr_bulk_out *out, size_t i, pr_flow *q,
                  pr_result *res)
{
    v4_put(q->dst, in->dst[i]);
    uint32_t src = in->src ? in->src[i] : 0;
    q->has_src = src != 0;
    v4_put(q->src, src);
    q->iif = in->iif ? in->iif[i] : 0;
    q->oif = in->oif ? in->oif[i] : 0;
    q->tos = in->tos ? in->tos[i] : 0;
    q->mark = in->mark ? in->mark[i] : 0;
    q->has_uid = in->uid != NULL;
    q->uid = in->uid ? in->uid[i] : 0;
    q->has_ipproto = in->ipproto && in->ipproto[i];
    q->ipproto = in->ipproto ? in->ipproto[i] : 0;
    q->sport = in->sport ? in->sport[i] : 0;
    q->dport = in->dport ? in->dport[i] : 0;
    pr_route_get(p, q, res, NULL);
    bool ok = store_common(res, i, out->error, out->type, out->table, out->rule_priority, out->oif, out->flags);
    if (out->gateway)
        out->gateway[i] = ok && res->nh[0].gw_family == PR_AF_INET ? v4_get(res->nh[0].gw) : 0;
    if (out->prefsrc)
        out->prefsrc[i] = !res->error && res->has_prefsrc ? v4_get(res->prefsrc) : 0;
}

void pr_bulk4_flow_init(pr_flow *q)
{
    memset(q, 0, sizeof(*q));
    q->family = PR_AF_INET;
    q->lookup_table = 1;
}

int pr_lookup_bulk_v4(const pr_policy *p, size_t n, const pr_bulk_in *in, pr_bulk_out *out)
{
    if (!p || (n && (!in || !out || !in->dst)))
        return -PR_EINVAL;
    pr_flow q;
    pr_result res;
    pr_bulk4_flow_init(&q);
    for (size_t i = 0; i < n; i++)
        pr_bulk4_row(p, in, out, i, &q, &res);
    return 0;
}

int pr_lookup_bulk_v4_linear(const pr_policy *p, size_t n, const pr_bulk_in *in, pr_bulk_out *out)
{
    atomic_fetch_add(&pr_linear_users, 1u);
    pr_rules_force_linear = true;
    int rc = pr_lookup_bulk_v4(p, n, in, out);
    pr_rules_force_linear = false;
    atomic_fetch_sub(&pr_linear_users, 1u);
    return rc;
}

/* IPv6: the same loop over 16-byte address columns.  The flow fields are
 * set as the single-lookup path (polroute.query) sets them for family 6:
 * no RTM_F_LOOKUP_TABLE, has_src only for a non-zero source. */
static const uint8_t zero16[16];

int pr_lookup_bulk_v6(const pr_policy *p, size_t n, const pr_bulk6_in *in, pr_bulk6_out *out)
{
    if (!p || (n && (!in || !out || !in->dst)))
        return -PR_EINVAL;
    const uint32_t *order = n ? in->order : NULL;
    if (order) {
        for (size_t k = 0; k < n; k++)
            if (order[k] >= n)
                return -PR_EINVAL;   /* checked before any row is written */
    }
    pr_flow q;
    pr_result res;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET6;
    q.has_uid = in && in->uid != NULL;
    for (size_t k = 0; k < n; k++) {
        size_t i = order ? order[k] : k;
        memcpy(q.dst, in->dst + 16 * i, 16);
        const uint8_t *src = in->src ? in->src + 16 * i : zero16;
        memcpy(q.src, src, 16);
        q.has_src = memcmp(src, zero16, 16) != 0;
        q.iif = in->iif ? in->iif[i] : 0;
        q.oif = in->oif ? in->oif[i] : 0;
        q.tos = in->tclass ? in->tclass[i] : 0;
        q.mark = in->mark ? in->mark[i] : 0;
        q.uid = in->uid ? in->uid[i] : 0;
        q.has_ipproto = in->ipproto && in->ipproto[i];
        q.ipproto = in->ipproto ? in->ipproto[i] : 0;
        q.sport = in->sport ? in->sport[i] : 0;
        q.dport = in->dport ? in->dport[i] : 0;
        pr_route_get(p, &q, &res, NULL);
        bool ok = store_common(&res, i, out->error, out->type, out->table, out->rule_priority,
                               out->oif, out->flags);
        if (out->gateway) {
            uint8_t *g = out->gateway + 16 * i;
            memset(g, 0, 16);
            if (ok && res.nh[0].gw_family == PR_AF_INET6) {
                memcpy(g, res.nh[0].gw, 16);
            } else if (ok && res.nh[0].gw_family == PR_AF_INET) {
                g[10] = g[11] = 0xFF;   /* IPv4-mapped */
                memcpy(g + 12, res.nh[0].gw, 4);
            }
        }
        if (out->prefsrc) {
            if (!res.error && res.has_prefsrc)
                memcpy(out->prefsrc + 16 * i, res.prefsrc, 16);
            else
                memset(out->prefsrc + 16 * i, 0, 16);
        }
    }
    return 0;
}

static uint32_t top32(const uint8_t *a)
{
    return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | (uint32_t)a[3];
}

/* LSD radix sort of (top 32 bits << 32 | row) pairs: 3 stable passes of 11,
 * 11 and 10 bits over the key half, so equal keys keep row order. */
int pr_bulk6_order(size_t n, const uint8_t *dst, uint32_t *order, uint64_t *scratch)
{
    if (n && (!dst || !order || !scratch))
        return -PR_EINVAL;
    if (n > (size_t)UINT32_MAX)
        return -PR_EINVAL;
    uint64_t *a = scratch, *b = scratch + n;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint64_t)top32(dst + 16 * i) << 32 | (uint64_t)i;
    static const unsigned shift[3] = {32, 43, 54};
    for (unsigned pass = 0; pass < 3; pass++) {
        size_t pos[2048];
        memset(pos, 0, sizeof(pos));
        for (size_t i = 0; i < n; i++)
            pos[(a[i] >> shift[pass]) & 2047u]++;
        size_t sum = 0;
        for (size_t d = 0; d < 2048; d++) {
            size_t c = pos[d];
            pos[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            b[pos[(a[i] >> shift[pass]) & 2047u]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)a[i];
    return 0;
}

int pr_lookup_bulk_v6_linear(const pr_policy *p, size_t n, const pr_bulk6_in *in, pr_bulk6_out *out)
{
    atomic_fetch_add(&pr_linear_users, 1u);
    pr_rules_force_linear = true;
    int rc = pr_lookup_bulk_v6(p, n, in, out);
    pr_rules_force_linear = false;
    atomic_fetch_sub(&pr_linear_users, 1u);
    return rc;
}
