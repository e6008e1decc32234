/*
 * rules.c - the routing policy database: rule add/delete with the kernel's
 * validation, default priority, duplicate and delete matching
 * (net/core/fib_rules.c, fib4_rules.c, fib6_rules.c), and the rule walk
 * (fib_rules_lookup) with an optional trace for explanations.
 *
 * The list is an array sorted by priority, insertion order within a priority,
 * which is the kernel's list order.  A goto points at "the first rule whose
 * priority is the target": the kernel resolves to that rule on add, resolves
 * dangling gotos when such a rule appears, and on deleting the target re-points
 * to the next rule only if it has the same priority - which is again the first
 * one with that priority.  So the target is found by binary search at lookup
 * time and never stored.
 *
 * Rule selection is behind pr_rule_next_match() so that an index can replace
 * the linear scan without touching the walk.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fields.h"
#include "rule_index.h"

#define BIT(x) (1u << (x))

static const pr_rule_req *req_of(const pr_rule *r) { return &r->r; }

void pr_trace_push(pr_trace *tr, int32_t idx, uint32_t prio, uint32_t table, uint8_t kind, int32_t err,
                   uint8_t mlen)
{
    if (!tr)
        return;
    if (tr->len >= tr->cap || !tr->steps) {
        tr->dropped++;
        return;
    }
    pr_trace_step *s = &tr->steps[tr->len++];
    s->rule_index = idx;
    s->priority = prio;
    s->table = table;
    s->kind = kind;
    s->matched_len = mlen;
    s->pad = 0;
    s->error = err;
}

static void default_rule(pr_family *f, uint32_t prio, uint32_t table)
{
    pr_rule *r = &f->rules[f->nrules++];
    memset(r, 0, sizeof(*r));
    r->okey = ((uint64_t)prio << 32) | ++f->rule_seq;
    r->r.family = f->family;
    r->r.action = PR_FR_ACT_TO_TBL;
    r->r.table = table;
    r->r.priority = prio;
    r->r.present = BIT(PR_FRA_PRIORITY) | BIT(PR_FRA_TABLE);
    r->r.protocol = PR_RTPROT_KERNEL;
    r->r.suppress_prefixlen = -1;
    r->r.suppress_ifgroup = -1;
    r->r.uid_start = 0;
    r->r.uid_end = 0xFFFFFFFFu;
    /* linked by pr_rules_init_defaults (-1 is correct too, only slower) */
    r->tab_slot = -1;
}

void pr_rules_init_defaults(pr_policy *p)
{
    p->v4.rules = pr_grow(NULL, &p->v4.caprules, 8, sizeof(pr_rule));
    p->v6.rules = pr_grow(NULL, &p->v6.caprules, 8, sizeof(pr_rule));
    if (!p->v4.rules || !p->v6.rules)
        return;
    default_rule(&p->v4, 0, PR_TABLE_LOCAL);
    default_rule(&p->v4, 32766, PR_TABLE_MAIN);
    default_rule(&p->v4, 32767, PR_TABLE_DEFAULT);
    default_rule(&p->v6, 0, PR_TABLE_LOCAL);
    default_rule(&p->v6, 32766, PR_TABLE_MAIN);
    pr_family *fams[2] = {&p->v4, &p->v6};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < fams[k]->nrules; i++)
            fams[k]->rules[i].tab_slot = pr_table_slot(fams[k], fams[k]->rules[i].r.table);
    pr_rindex_rebuild(&p->v4.index, p->v4.rules, p->v4.nrules);
    pr_rindex_rebuild(&p->v6.index, p->v6.rules, p->v6.nrules);
}

static uint32_t mask_of(unsigned len) { return len == 0 ? 0 : (uint32_t)(0xFFFFFFFFu << (32 - len)); }

/* ---------------------------------------------------------------- sharing */

void pr_rshare_unref(pr_rshare *sh)
{
    /* acq_rel: see the reference-count notes in routes.c */
    if (sh && atomic_fetch_sub_explicit(&sh->refs, 1u, memory_order_acq_rel) == 1u) {
        free(sh->rules);   /* the block */
        pr_rindex_free(&sh->index);
        free(sh);
    }
}

int pr_rules_own(pr_family *f)
{
    pr_rshare *sh = f->rshare;
    if (!sh)
        return 0;
    if (atomic_load_explicit(&sh->refs, memory_order_acquire) == 1u) {
        /* every snapshot let go: take the storage back */
        f->rshare = NULL;
        free(sh);
        return 0;
    }
    size_t cap = f->nrules + 1;
    pr_rule *nv = pr_malloc(cap * sizeof(pr_rule));
    if (!nv)
        return -PR_ENOMEM;
    memcpy(nv, f->rules, f->nrules * sizeof(pr_rule));
    pr_rindex ix;
    if (pr_rindex_clone(&ix, &f->index) < 0) {
        free(nv);
        return -PR_ENOMEM;
    }
    f->rules = nv;
    f->caprules = cap;
    f->rules_head = 0;
    f->index = ix;
    f->rshare = NULL;
    pr_rshare_unref(sh);
    return 0;
}

/* The derived fields that depend on links (the table slot is set once, on add). */
static void bind_rule(const pr_policy *p, pr_rule *r)
{
    if (r->r.family == PR_AF_INET) {
        const pr_rule_req *q = &r->r;
        r->srcmask4 = mask_of(q->src_len);
        r->dstmask4 = mask_of(q->dst_len);
        r->src4 = v4_get(q->src) & r->srcmask4;
        r->dst4 = v4_get(q->dst) & r->dstmask4;
        /* an allow-list read from the field table: a selector added later
         * keeps its rules on the full matcher (rule_match handles "not") */
        r->only_prefixes = (pr_rule_selectors(q) &
                            ~(PR_RF_BIT(PR_RF_FROM) | PR_RF_BIT(PR_RF_TO) | PR_RF_BIT(PR_RF_NOT))) == 0;
    }
    r->iif_index = 0;
    r->oif_index = 0;
    if (r->r.present & BIT(PR_FRA_IIFNAME)) {
        const pr_link *l = pr_link_by_name_c(p, r->r.iifname);
        r->iif_index = l ? (int32_t)l->ifindex : -1;
    }
    if (r->r.present & BIT(PR_FRA_OIFNAME)) {
        const pr_link *l = pr_link_by_name_c(p, r->r.oifname);
        r->oif_index = l ? (int32_t)l->ifindex : -1;
    }
}

void pr_rules_rebind(pr_policy *p)
{
    /* callers made the rules writable (pr_policy_own); on ENOMEM there the
     * shared rules are left as they are rather than written */
    if (pr_rules_own(&p->v4) < 0 || pr_rules_own(&p->v6) < 0)
        return;
    for (size_t i = 0; i < p->v4.nrules; i++)
        bind_rule(p, &p->v4.rules[i]);
    for (size_t i = 0; i < p->v6.nrules; i++)
        bind_rule(p, &p->v6.rules[i]);
    /* iif/oif bindings are part of the index keys */
    pr_rindex_rebuild(&p->v4.index, p->v4.rules, p->v4.nrules);
    pr_rindex_rebuild(&p->v6.index, p->v6.rules, p->v6.nrules);
}

size_t pr_rule_count(const pr_policy *p, int family)
{
    if (family != PR_AF_INET && family != PR_AF_INET6)
        return 0;
    return pr_fam_c(p, (uint8_t)family)->nrules;
}

/* index of the first rule with priority >= prio */
static size_t lower_bound(const pr_family *f, uint32_t prio)
{
    size_t lo = 0, hi = f->nrules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->rules[mid].r.priority < prio)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool goto_resolved(const pr_family *f, const pr_rule *r, size_t *target)
{
    size_t t = lower_bound(f, r->r.goto_target);
    if (t < f->nrules && f->rules[t].r.priority == r->r.goto_target) {
        if (target)
            *target = t;
        return true;
    }
    return false;
}

int pr_rule_get(const pr_policy *p, int family, size_t i, pr_rule_info *out)
{
    if (family != PR_AF_INET && family != PR_AF_INET6)
        return -PR_EAFNOSUPPORT;
    const pr_family *f = pr_fam_c(p, (uint8_t)family);
    if (i >= f->nrules)
        return -PR_ENOENT;
    const pr_rule *r = &f->rules[i];
    out->r = r->r;
    if (r->r.action == PR_FR_ACT_GOTO && !goto_resolved(f, r, NULL))
        out->r.flags |= PR_FIB_RULE_UNRESOLVED;
    if (r->iif_index == -1)
        out->r.flags |= PR_FIB_RULE_IIF_DETACHED;
    if (r->oif_index == -1)
        out->r.flags |= PR_FIB_RULE_OIF_DETACHED;
    return 0;
}

/* ---------------------------------------------------------------- requests */

/* The rule as the kernel stores it, from a request (fib_nl2rule + configure). */
/* fib_nl2rule: the generic validation, for add and delete alike */
static int rule_from_req(pr_policy *p, const pr_rule_req *q, pr_rule *out)
{
    uint8_t fam = q->family;
    unsigned bits = fam_bits(fam);
    if (q->src_len && (!(q->present & BIT(PR_FRA_SRC)) || q->src_len > bits))
        return pr_fail(p, PR_EINVAL, "Invalid source address");
    if (q->dst_len && (!(q->present & BIT(PR_FRA_DST)) || q->dst_len > bits))
        return pr_fail(p, PR_EINVAL, "Invalid dst address");
    memset(out, 0, sizeof(*out));
    pr_rule_req *r = &out->r;
    r->family = fam;
    r->src_len = q->src_len;
    r->dst_len = q->dst_len;
    if (q->src_len) {
        memcpy(r->src, q->src, 16);
        r->present |= BIT(PR_FRA_SRC);
    }
    if (q->dst_len) {
        memcpy(r->dst, q->dst, 16);
        r->present |= BIT(PR_FRA_DST);
    }
    r->priority = q->priority;
    r->present |= q->present & BIT(PR_FRA_PRIORITY);
    r->protocol = (q->present & BIT(PR_FRA_PROTOCOL)) ? q->protocol : 0;
    if (q->present & BIT(PR_FRA_IIFNAME)) {
        memcpy(r->iifname, q->iifname, PR_IFNAMSIZ);
        r->iifname[PR_IFNAMSIZ - 1] = 0;
        if (r->iifname[0])
            r->present |= BIT(PR_FRA_IIFNAME);
    }
    if (q->present & BIT(PR_FRA_OIFNAME)) {
        memcpy(r->oifname, q->oifname, PR_IFNAMSIZ);
        r->oifname[PR_IFNAMSIZ - 1] = 0;
        if (r->oifname[0])
            r->present |= BIT(PR_FRA_OIFNAME);
    }
    if (q->present & BIT(PR_FRA_FWMARK)) {
        r->fwmark = q->fwmark;
        if (r->fwmark)
            r->fwmask = 0xFFFFFFFFu;
    }
    if (q->present & BIT(PR_FRA_FWMASK))
        r->fwmask = q->fwmask;
    if (q->present & BIT(PR_FRA_TUN_ID))
        r->tun_id = q->tun_id;
    if (q->present & BIT(PR_FRA_L3MDEV)) {
        if (q->l3mdev != 1)
            return pr_fail(p, PR_EINVAL, "Invalid l3mdev attribute");
        r->l3mdev = 1;
    }
    r->action = q->action;
    r->flags = q->flags & PR_FIB_RULE_INVERT;
    r->table = q->table;
    r->suppress_prefixlen = (q->present & BIT(PR_FRA_SUPPRESS_PREFIXLEN)) ? q->suppress_prefixlen : -1;
    r->suppress_ifgroup = (q->present & BIT(PR_FRA_SUPPRESS_IFGROUP)) ? q->suppress_ifgroup : -1;
    if (q->present & BIT(PR_FRA_GOTO)) {
        if (r->action != PR_FR_ACT_GOTO)
            return pr_fail(p, PR_EINVAL, "Unexpected goto");
        r->goto_target = q->goto_target;
        r->present |= BIT(PR_FRA_GOTO);
    } else if (r->action == PR_FR_ACT_GOTO) {
        return pr_fail(p, PR_EINVAL, "Missing goto target for action goto");
    }
    if (r->l3mdev && r->table)
        return pr_fail(p, PR_EINVAL, "l3mdev and table are mutually exclusive");
    r->uid_start = 0;
    r->uid_end = 0xFFFFFFFFu;
    if (q->present & BIT(PR_FRA_UID_RANGE)) {
        if (q->uid_start == 0xFFFFFFFFu || q->uid_end == 0xFFFFFFFFu || q->uid_start > q->uid_end)
            return pr_fail(p, PR_EINVAL, "Invalid uid range");
        r->uid_start = q->uid_start;
        r->uid_end = q->uid_end;
        r->present |= BIT(PR_FRA_UID_RANGE);
    }
    if (q->present & BIT(PR_FRA_IP_PROTO))
        r->ip_proto = q->ip_proto;
    if (q->present & BIT(PR_FRA_SPORT_RANGE)) {
        if (q->sport_start == 0 || q->sport_end == 0 || q->sport_end >= 0xFFFF || q->sport_start > q->sport_end)
            return pr_fail(p, PR_EINVAL, "Invalid sport range");
        r->sport_start = q->sport_start;
        r->sport_end = q->sport_end;
    }
    if (q->present & BIT(PR_FRA_DPORT_RANGE)) {
        if (q->dport_start == 0 || q->dport_end == 0 || q->dport_end >= 0xFFFF || q->dport_start > q->dport_end)
            return pr_fail(p, PR_EINVAL, "Invalid dport range");
        r->dport_start = q->dport_start;
        r->dport_end = q->dport_end;
    }
    for (int d = 0; d < 2; d++) {
        unsigned attr = d ? PR_FRA_DPORT_MASK : PR_FRA_SPORT_MASK;
        if (!(q->present & BIT(attr)))
            continue;
        uint16_t start = d ? r->dport_start : r->sport_start, end = d ? r->dport_end : r->sport_end;
        uint16_t mask = d ? q->dport_mask : q->sport_mask;
        if (!start)
            return pr_fail(p, PR_EINVAL, "Cannot specify port mask without port value");
        if (start != end)
            return pr_fail(p, PR_EINVAL, "Cannot specify port mask for port range");
        if (start & (uint16_t)~mask)
            return pr_fail(p, PR_EINVAL, "Invalid port mask");
        if (d)
            r->dport_mask = mask;
        else
            r->sport_mask = mask;
    }
    return 0;
}

/* ops->configure (fib4_rule_configure / fib6_rule_configure): after the
 * duplicate check; it unmerges local/main and allocates `lookup 0` tables. */
static int rule_configure(pr_policy *p, const pr_rule_req *q, pr_rule *out)
{
    pr_rule_req *r = &out->r;
    uint8_t fam = q->family;
    if (q->tos & 0x03)
        return pr_fail(p, PR_EINVAL, "Invalid dsfield (tos): ECN bits must be 0");
    if (fam == PR_AF_INET && (q->tos & ~0x1Eu))
        return pr_fail(p, PR_EINVAL, "Invalid tos");
    r->tos = q->tos;
    if (q->present & BIT(PR_FRA_DSCP)) {
        if (q->tos)
            return pr_fail(p, PR_EINVAL, "Cannot specify both TOS and DSCP");
        if (q->dscp > 63)
            return pr_fail(p, PR_EINVAL, "Invalid dscp value");
        r->dscp = q->dscp;
        r->dscp_mask = 0x3F;
        r->present |= BIT(PR_FRA_DSCP);
    }
    if (q->present & BIT(PR_FRA_DSCP_MASK)) {
        if (!(q->present & BIT(PR_FRA_DSCP)))
            return pr_fail(p, PR_EINVAL, "Missing DSCP");
        if (q->dscp_mask > 63 || (r->dscp & ~q->dscp_mask))
            return pr_fail(p, PR_EINVAL, "Invalid DSCP mask");
        r->dscp_mask = q->dscp_mask;
        r->present |= BIT(PR_FRA_DSCP_MASK);
    }
    if (q->present & (BIT(PR_FRA_FLOWLABEL) | BIT(PR_FRA_FLOWLABEL_MASK))) {
        if (fam == PR_AF_INET)
            return pr_fail(p, PR_EINVAL, "Flow label cannot be specified for IPv4 FIB rules");
        if (!(q->present & BIT(PR_FRA_FLOWLABEL)) || !(q->present & BIT(PR_FRA_FLOWLABEL_MASK)))
            return pr_fail(p, PR_EINVAL, "Flow label and mask must be specified together");
        if (q->flowlabel & ~q->flowlabel_mask)
            return pr_fail(p, PR_EINVAL, "Invalid flow label");
        r->flowlabel = q->flowlabel;
        r->flowlabel_mask = q->flowlabel_mask;
        r->present |= BIT(PR_FRA_FLOWLABEL) | BIT(PR_FRA_FLOWLABEL_MASK);
    }
    if (q->present & BIT(PR_FRA_FLOW))
        r->realm = q->realm;
    if (fam == PR_AF_INET) {
        /* fib_unmerge: the first IPv4 rule request splits local from main */
        p->v4_custom_rules = true;
        if (r->table == 0 && !r->l3mdev && r->action == PR_FR_ACT_TO_TBL) {
            uint32_t id;
            for (id = 1; id != 0; id++)
                if (!pr_table_get(&p->v4, id))
                    break;
            if (id == 0 || !pr_table_new(&p->v4, id))
                return pr_fail(p, PR_ENOBUFS, "");
            r->table = id;
        }
    } else if (r->action == PR_FR_ACT_TO_TBL && !r->l3mdev) {
        if (r->table == 0)
            return pr_fail(p, PR_EINVAL, "Invalid table");
        if (!pr_table_new(&p->v6, r->table))
            return -PR_ENOMEM;
    }
    r->present |= BIT(PR_FRA_TABLE);
    return 0;
}

/* ops->compare: the family fields, compared only when the request sets them */
static bool family_compare(const pr_rule_req *r, const pr_rule_req *q)
{
    unsigned nb = fam_bytes(r->family);
    if (q->src_len && r->src_len != q->src_len)
        return false;
    if (q->dst_len && r->dst_len != q->dst_len)
        return false;
    if (q->tos && (r->tos != q->tos || (r->present & BIT(PR_FRA_DSCP))))
        return false;
    if ((q->present & BIT(PR_FRA_DSCP)) && (!(r->present & BIT(PR_FRA_DSCP)) || r->dscp != q->dscp))
        return false;
    if ((q->present & BIT(PR_FRA_DSCP_MASK)) && r->dscp_mask != q->dscp_mask)
        return false;
    if ((q->present & BIT(PR_FRA_FLOW)) && r->realm != q->realm)
        return false;
    if ((q->present & BIT(PR_FRA_FLOWLABEL)) && r->flowlabel != q->flowlabel)
        return false;
    if ((q->present & BIT(PR_FRA_FLOWLABEL_MASK)) && r->flowlabel_mask != q->flowlabel_mask)
        return false;
    if (q->src_len && memcmp(r->src, q->src, nb) != 0)
        return false;
    if (q->dst_len && memcmp(r->dst, q->dst, nb) != 0)
        return false;
    return true;
}

/* A rule equal to n (fib_nl_newrule's rule_exists).  Equal priorities are
 * required and the list is sorted by priority: only that run is visited. */
static bool rule_exists(const pr_family *f, const pr_rule_req *n, const pr_rule_req *q)
{
    for (size_t i = lower_bound(f, n->priority); i < f->nrules && f->rules[i].r.priority == n->priority; i++) {
        const pr_rule_req *r = req_of(&f->rules[i]);
        if (r->action != n->action || r->table != n->table)
            continue;
        if (memcmp(r->iifname, n->iifname, PR_IFNAMSIZ) || memcmp(r->oifname, n->oifname, PR_IFNAMSIZ))
            continue;
        if (r->fwmark != n->fwmark || r->fwmask != n->fwmask)
            continue;
        if (r->suppress_ifgroup != n->suppress_ifgroup || r->suppress_prefixlen != n->suppress_prefixlen)
            continue;
        if (r->tun_id != n->tun_id || r->l3mdev != n->l3mdev)
            continue;
        if (r->uid_start != n->uid_start || r->uid_end != n->uid_end)
            continue;
        if (r->ip_proto != n->ip_proto || r->protocol != n->protocol)
            continue;
        if (r->sport_start != n->sport_start || r->sport_end != n->sport_end ||
            r->dport_start != n->dport_start || r->dport_end != n->dport_end ||
            r->sport_mask != n->sport_mask || r->dport_mask != n->dport_mask)
            continue;
        if (!family_compare(r, q))
            continue;
        return true;
    }
    return false;
}

static int rule_find(const pr_family *f, const pr_rule_req *n, const pr_rule_req *q)
{
    bool user_prio = (q->present & BIT(PR_FRA_PRIORITY)) != 0;
    /* with a priority only its run of the sorted list can match */
    size_t i = user_prio ? lower_bound(f, n->priority) : 0;
    for (; i < f->nrules; i++) {
        const pr_rule_req *r = req_of(&f->rules[i]);
        if (user_prio && r->priority > n->priority)
            break;
        if (n->action && r->action != n->action)
            continue;
        if (n->table && r->table != n->table)
            continue;
        if (user_prio && r->priority != n->priority)
            continue;
        if (n->iifname[0] && memcmp(r->iifname, n->iifname, PR_IFNAMSIZ))
            continue;
        if (n->oifname[0] && memcmp(r->oifname, n->oifname, PR_IFNAMSIZ))
            continue;
        if (n->fwmark && r->fwmark != n->fwmark)
            continue;
        if (n->suppress_ifgroup != -1 && r->suppress_ifgroup != n->suppress_ifgroup)
            continue;
        if (n->suppress_prefixlen != -1 && r->suppress_prefixlen != n->suppress_prefixlen)
            continue;
        if (n->fwmask && r->fwmask != n->fwmask)
            continue;
        if (n->tun_id && r->tun_id != n->tun_id)
            continue;
        if (n->l3mdev && r->l3mdev != n->l3mdev)
            continue;
        if ((n->present & BIT(PR_FRA_UID_RANGE)) && (r->uid_start != n->uid_start || r->uid_end != n->uid_end))
            continue;
        if (n->ip_proto && r->ip_proto != n->ip_proto)
            continue;
        if (n->protocol && r->protocol != n->protocol)
            continue;
        if (n->sport_start && (r->sport_start != n->sport_start || r->sport_end != n->sport_end))
            continue;
        if (n->dport_start && (r->dport_start != n->dport_start || r->dport_end != n->dport_end))
            continue;
        if (n->sport_mask && r->sport_mask != n->sport_mask)
            continue;
        if (n->dport_mask && r->dport_mask != n->dport_mask)
            continue;
        if (!family_compare(r, q))
            continue;
        return (int)i;
    }
    return -1;
}

static uint32_t default_pref(const pr_family *f)
{
    if (f->nrules >= 2 && f->rules[1].r.priority)
        return f->rules[1].r.priority - 1;
    return 0;
}

int pr_rule_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_rule_req *q)
{
    pr_policy_touch(p);
    pr_set_err(p, "");
    if (q->family != PR_AF_INET && q->family != PR_AF_INET6)
        return pr_fail(p, PR_EAFNOSUPPORT, "Rule family not supported");
    pr_family *f = pr_fam(p, q->family);
    pr_rule nr;
    int rc = rule_from_req(p, q, &nr);
    if (rc < 0)
        return rc;
    if (!(q->present & BIT(PR_FRA_PRIORITY)))
        nr.r.priority = default_pref(f);
    nr.r.present |= BIT(PR_FRA_PRIORITY);
    if (q->present & BIT(PR_FRA_GOTO) && nr.r.goto_target <= nr.r.priority)
        return pr_fail(p, PR_EINVAL, "Backward goto not supported");
    if (msg_type == PR_RTM_DELRULE) {
        int idx = rule_find(f, &nr.r, q);
        if (idx < 0)
            return pr_fail(p, PR_ENOENT, "");
        if (pr_rules_own(f) < 0)
            return pr_fail(p, PR_ENOMEM, "out of memory");
        pr_rindex_del(&f->index, &f->rules[idx]);
        void *v = f->rules;
        pr_gap_remove(&v, &f->rules_head, f->nrules, &f->caprules, sizeof(pr_rule), (size_t)idx);
        f->rules = v;
        f->nrules--;
        if (q->family == PR_AF_INET)
            p->v4_custom_rules = true;   /* fib4_rule_delete unmerges too */
        return 0;
    }
    if (msg_type != PR_RTM_NEWRULE)
        return pr_fail(p, PR_EINVAL, "");
    if ((nlmsg_flags & PR_NLM_F_EXCL) && rule_exists(f, &nr.r, q))
        return pr_fail(p, PR_EEXIST, "");
    rc = rule_configure(p, q, &nr);
    if (rc < 0)
        return rc;
    if (pr_rules_own(f) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    /* after the last rule whose priority <= the new one */
    size_t pos = nr.r.priority == UINT32_MAX ? f->nrules : lower_bound(f, nr.r.priority + 1);
    bind_rule(p, &nr);
    nr.tab_slot = -1;
    if (nr.r.action == PR_FR_ACT_TO_TBL && (nr.tab_slot = pr_table_slot(f, nr.r.table)) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    nr.okey = ((uint64_t)nr.r.priority << 32) | ++f->rule_seq;
    if (pr_rindex_add(&f->index, &nr) < 0) {
        pr_rindex_del(&f->index, &nr);
        return -PR_ENOMEM;
    }
    void *v = f->rules;
    pr_rule *slot = pr_gap_insert(&v, &f->rules_head, f->nrules, &f->caprules, sizeof(pr_rule), pos);
    if (!slot) {
        pr_rindex_del(&f->index, &nr);
        return -PR_ENOMEM;
    }
    f->rules = v;
    *slot = nr;
    f->nrules++;
    return 0;
}

/* ---------------------------------------------------------------- matching */

static bool port_match(uint16_t start, uint16_t end, uint16_t mask, uint16_t port)
{
    if (!start && !end && !mask)
        return true;
    if (mask)
        return ((start ^ port) & mask) == 0;
    return port >= start && port <= end;
}

typedef struct {
    uint8_t family;
    uint32_t daddr4, saddr4;  /* IPv4 only */
    const uint8_t *daddr, *saddr;
    bool has_saddr;
    uint32_t iif, oif, mark, uid;
    uint8_t tos, proto;
    uint16_t sport, dport;
} rule_flow;

static bool rule_match(const pr_rule *rule, const rule_flow *fl)
{
    const pr_rule_req *r = &rule->r;
    bool ret = false;
    if (rule->only_prefixes && fl->family == PR_AF_INET) {
        ret = ((fl->saddr4 & rule->srcmask4) == rule->src4) && ((fl->daddr4 & rule->dstmask4) == rule->dst4);
        return (r->flags & PR_FIB_RULE_INVERT) ? !ret : ret;
    }
    if (rule->iif_index && (uint32_t)rule->iif_index != fl->iif)
        goto out;
    if (rule->oif_index && (uint32_t)rule->oif_index != fl->oif)
        goto out;
    if ((r->fwmark ^ fl->mark) & r->fwmask)
        goto out;
    if (r->tun_id)
        goto out;   /* no tunnel metadata on a route get flow */
    if (r->l3mdev)
        goto out;   /* no VRF in the model: the flow never carries an l3mdev */
    if (fl->uid < r->uid_start || fl->uid > r->uid_end)
        goto out;
    if (fl->family == PR_AF_INET) {
        if (((fl->saddr4 & rule->srcmask4) != rule->src4) || ((fl->daddr4 & rule->dstmask4) != rule->dst4))
            goto out;
        if (r->present & BIT(PR_FRA_DSCP)) {
            if (((r->dscp ^ (fl->tos >> 2)) & r->dscp_mask) != 0)
                goto out;
        } else if (r->tos && r->tos != (fl->tos & 0x1C)) {
            goto out;
        }
    } else {
        if (r->dst_len && !addr_prefix_match(fl->daddr, r->dst, r->dst_len))
            goto out;
        if (r->src_len) {
            if (!fl->has_saddr || !addr_prefix_match(fl->saddr, r->src, r->src_len))
                goto out;
        }
        if (r->present & BIT(PR_FRA_DSCP)) {
            if (((r->dscp ^ (fl->tos >> 2)) & r->dscp_mask) != 0)
                goto out;
        } else if (r->tos && r->tos != (fl->tos & 0xFC)) {
            goto out;
        }
        if (r->flowlabel_mask && (r->flowlabel & r->flowlabel_mask))
            goto out;   /* route get carries no flow label here */
    }
    if (r->ip_proto && r->ip_proto != fl->proto)
        goto out;
    if (!port_match(r->sport_start, r->sport_end, r->sport_mask, fl->sport))
        goto out;
    if (!port_match(r->dport_start, r->dport_end, r->dport_mask, fl->dport))
        goto out;
    ret = true;
out:
    return (r->flags & PR_FIB_RULE_INVERT) ? !ret : ret;
}

/* For fast4.c: what rule i of an IPv4 family is to an output-path question
 * whose only varying fields are source and destination (iif lo, no oif, mark,
 * uid, tos or ports, proto UDP).  The other selectors do not depend on the
 * addresses, so testing them once with addresses inside the rule's own
 * prefixes is exact. */
int pr_rule4_fast_kind(const pr_family *f, size_t i)
{
    const pr_rule *rule = &f->rules[i];
    const pr_rule_req *r = &rule->r;
    if (r->flags & PR_FIB_RULE_INVERT)
        return PR_RULE4_COMPLEX;   /* the address test is inverted too */
    rule_flow fl = {PR_AF_INET, rule->dst4, rule->src4, NULL, NULL, true, PR_LOOPBACK_IFINDEX, 0, 0, 0,
                    0, 17, 0, 0};
    uint8_t d[16] = {0}, s[16] = {0};
    v4_put(d, rule->dst4);
    v4_put(s, rule->src4);
    fl.daddr = d;
    fl.saddr = s;
    if (!rule_match(rule, &fl))
        return PR_RULE4_NEVER;
    if (r->action == PR_FR_ACT_TO_TBL && !pr_rule_table(f, rule))
        return PR_RULE4_NEVER;     /* the walk passes a rule whose table does not exist */
    if (r->action != PR_FR_ACT_TO_TBL || r->suppress_prefixlen != -1 || r->suppress_ifgroup != -1)
        return PR_RULE4_COMPLEX;
    return PR_RULE4_LOOKUP;
}

/* Position of the rule with this order key (it exists). */
static size_t rule_pos(const pr_family *f, uint64_t okey)
{
    if (f->index.nall == f->nrules)
        return pr_rindex_position(&f->index, okey);
    size_t lo = 0, hi = f->nrules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->rules[mid].okey < okey)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Below this many rules a scan beats hashing every shape. */
#define PR_RULE_SCAN_MAX 16
/* Rules tested one by one before the index is asked (< PR_RULE_SCAN_MAX). */
#define PR_RULE_PEEK 2

/* First matching rule at or after position i; f->nrules when none.  With a
 * trace every rule passed over is recorded, so the walk scans. */
/* Set by pr_lookup_bulk_v4_linear for the duration of one call on one
 * thread.  A thread-local costs a __tls_get_addr call in a shared module, so
 * the walk reads it only while some thread has it set (pr_linear_users). */
_Thread_local bool pr_rules_force_linear;
atomic_uint pr_linear_users;

static inline bool force_linear(void)
{
    return atomic_load_explicit(&pr_linear_users, memory_order_relaxed) && pr_rules_force_linear;
}

static size_t pr_rule_next_match(const pr_family *f, size_t i, const rule_flow *fl, pr_trace *tr)
{
    if (!tr && !force_linear() && i < f->nrules && f->nrules - i > PR_RULE_SCAN_MAX) {
        /* the next rules often decide (the local rule, a catch-all): testing
         * them directly is cheaper than hashing every shape */
        for (size_t stop = i + PR_RULE_PEEK; i < stop; i++)
            if (rule_match(&f->rules[i], fl))
                return i;
        uint64_t from = f->rules[i].okey;
        pr_rflow rf = {fl->family, fl->has_saddr, fl->saddr, fl->daddr, fl->saddr4, fl->daddr4,
                       fl->iif, fl->oif, fl->mark, fl->dport, fl->tos};
        uint64_t best = pr_rindex_first_simple(&f->index, &rf, from);
        /* complex rules before the best simple candidate get the full matcher */
        const pr_rindex *ix = &f->index;
        size_t lo = 0, hi = ix->ncomplex;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ix->complex[mid] < from)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t c = lo; c < ix->ncomplex && ix->complex[c] < best; c++) {
            size_t pos = rule_pos(f, ix->complex[c]);
            if (rule_match(&f->rules[pos], fl))
                return pos;
        }
        return best == UINT64_MAX ? f->nrules : rule_pos(f, best);
    }
    for (; i < f->nrules; i++) {
        if (rule_match(&f->rules[i], fl))
            return i;
        pr_trace_push(tr, (int32_t)i, f->rules[i].r.priority, f->rules[i].r.table, PR_STEP_NO_MATCH, 0, 0);
    }
    return i;
}

static int action_error(uint8_t action)
{
    switch (action) {
    case PR_FR_ACT_UNREACHABLE: return -PR_ENETUNREACH;
    case PR_FR_ACT_PROHIBIT: return -PR_EACCES;
    default: return -PR_EINVAL;
    }
}

typedef int (*table_lookup_fn)(const pr_policy *p, const pr_table *t, const void *fl, pr_fib_res *res);

static int lookup4_adapter(const pr_policy *p, const pr_table *t, const void *fl, pr_fib_res *res)
{
    return pr_fib4_table_lookup(p, t, fl, res);
}

static int lookup6_adapter(const pr_policy *p, const pr_table *t, const void *fl, pr_fib_res *res)
{
    return pr_fib6_table_lookup(p, t, fl, res);
}

/* fib6_rule_action_alt: a reject route found in the table ends the walk */
static int lookup6_alt_adapter(const pr_policy *p, const pr_table *t, const void *fl, pr_fib_res *res)
{
    memset(res, 0, sizeof(*res));
    int err = pr_fib6_table_lookup(p, t, fl, res);
    if (err && err != -PR_EAGAIN)
        return 0;
    if (err == -PR_EAGAIN && res->route && res->route->type == PR_RTN_THROW)
        return 0;
    return err;
}

static bool leg_in_group(const pr_policy *p, const pr_route *rt, uint32_t k, int32_t group)
{
    const pr_link *l = pr_link_by_index_c(p, route_nh_c(rt, k)->ifindex);
    return l && (int32_t)l->group == group;
}

/* fib4_rule_suppress looks at the first nexthop's device; fib6_rule_suppress
 * at the device of the rt6_info, whose leg fib6_select_path chose by hash:
 * with legs on both sides of the group, the decision is the hash's
 * (*hash_dependent; the first leg's is taken, and the answer is flagged). */
static bool suppressed(const pr_policy *p, const pr_rule_req *r, const pr_fib_res *res, bool *hash_dependent)
{
    if ((int)res->prefixlen <= r->suppress_prefixlen)
        return true;
    if (r->suppress_ifgroup == -1 || !res->route || !res->route->nh_count)
        return false;
    bool first = leg_in_group(p, res->route, 0, r->suppress_ifgroup);
    if (r->family == PR_AF_INET6)
        for (uint32_t k = 1; k < res->route->nh_count; k++)
            if (leg_in_group(p, res->route, k, r->suppress_ifgroup) != first)
                *hash_dependent = true;
    return first;
}

static int rules_walk(const pr_policy *p, const pr_family *f, const rule_flow *rf, const void *tfl,
                      table_lookup_fn lookup, bool can_suppress, pr_fib_res *res, pr_trace *tr,
                      int32_t *rule_index)
{
    size_t i = 0;
    bool hash_dependent = false;
    *rule_index = -1;
    while ((i = pr_rule_next_match(f, i, rf, tr)) < f->nrules) {
        const pr_rule_req *r = &f->rules[i].r;
        for (;;) {
            if (r->action == PR_FR_ACT_GOTO) {
                size_t t;
                if (!goto_resolved(f, &f->rules[i], &t)) {
                    pr_trace_push(tr, (int32_t)i, r->priority, 0, PR_STEP_GOTO_UNRESOLVED, 0, 0);
                    i++;
                    break;
                }
                pr_trace_push(tr, (int32_t)i, r->priority, 0, PR_STEP_GOTO, 0, 0);
                /* the target must match too; if not, go on after it */
                i = t;
                if (!rule_match(&f->rules[i], rf)) {
                    pr_trace_push(tr, (int32_t)i, f->rules[i].r.priority, f->rules[i].r.table, PR_STEP_NO_MATCH,
                                  0, 0);
                    i++;
                    break;
                }
                r = &f->rules[i].r;
                continue;
            }
            if (r->action == PR_FR_ACT_NOP) {
                pr_trace_push(tr, (int32_t)i, r->priority, 0, PR_STEP_NOP, 0, 0);
                i++;
                break;
            }
            if (r->action != PR_FR_ACT_TO_TBL) {
                int err = action_error(r->action);
                pr_trace_push(tr, (int32_t)i, r->priority, 0, PR_STEP_ACTION_ERROR, -err, 0);
                *rule_index = (int32_t)i;
                memset(res, 0, sizeof(*res));
                res->hash_dependent = hash_dependent;
                return err;
            }
            const pr_table *t = pr_rule_table(f, &f->rules[i]);
            if (!t) {
                pr_trace_push(tr, (int32_t)i, r->priority, r->table, PR_STEP_NO_TABLE, 0, 0);
                i++;
                break;
            }
            int err = lookup(p, t, tfl, res);
            if (err == 0 && can_suppress && suppressed(p, r, res, &hash_dependent)) {
                pr_trace_push(tr, (int32_t)i, r->priority, r->table, PR_STEP_SUPPRESSED, 0, res->prefixlen);
                i++;
                break;
            }
            if (err == -PR_EAGAIN) {
                bool throw = res->route && res->route->type == PR_RTN_THROW && res->table == r->table;
                pr_trace_push(tr, (int32_t)i, r->priority, r->table, throw ? PR_STEP_THROW : PR_STEP_TABLE_MISS,
                              0, throw ? res->prefixlen : 0);
                memset(res, 0, sizeof(*res));
                i++;
                break;
            }
            pr_trace_push(tr, (int32_t)i, r->priority, r->table, PR_STEP_DECIDED, -err, res->prefixlen);
            *rule_index = (int32_t)i;
            res->hash_dependent = hash_dependent;
            return err;
        }
    }
    memset(res, 0, sizeof(*res));
    res->hash_dependent = hash_dependent;
    return -PR_ENETUNREACH;
}

int pr_fib4_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res, pr_trace *tr, int32_t *rule_index)
{
    memset(res, 0, sizeof(*res));
    if (!p->v4_custom_rules) {
        *rule_index = -1;
        int err = pr_fib4_merged_lookup(p, fl, res);
        pr_trace_push(tr, -1, 0, res->table, PR_STEP_MERGED, -err, res->prefixlen);
        return err;
    }
    uint8_t d[16] = {0}, s[16] = {0};
    v4_put(d, fl->daddr);
    v4_put(s, fl->saddr);
    rule_flow rf = {PR_AF_INET, fl->daddr, fl->saddr, d, s, true, fl->iif, fl->oif, fl->mark, fl->uid,
                    fl->tos, fl->proto, fl->sport, fl->dport};
    return rules_walk(p, &p->v4, &rf, fl, lookup4_adapter, true, res, tr, rule_index);
}

int pr_fib6_lookup(const pr_policy *p, const pr_flow6 *fl, pr_fib_res *res, pr_trace *tr, int32_t *rule_index)
{
    memset(res, 0, sizeof(*res));
    rule_flow rf = {PR_AF_INET6, 0, 0, fl->daddr, fl->saddr, fl->has_saddr != 0, fl->iif, fl->oif, fl->mark, fl->uid,
                    fl->tclass, fl->proto, fl->sport, fl->dport};
    return rules_walk(p, &p->v6, &rf, fl, lookup6_adapter, true, res, tr, rule_index);
}

int pr_fib6_lookup_alt(const pr_policy *p, const pr_flow6 *fl, pr_fib_res *res)
{
    int32_t ri;
    memset(res, 0, sizeof(*res));
    rule_flow rf = {PR_AF_INET6, 0, 0, fl->daddr, fl->saddr, fl->has_saddr != 0, fl->iif, fl->oif, fl->mark,
                    fl->uid, fl->tclass, fl->proto, fl->sport, fl->dport};
    /* fib6_rule_suppress needs the rt6_info this path never makes: no suppression */
    return rules_walk(p, &p->v6, &rf, fl, lookup6_alt_adapter, false, res, NULL, &ri);
}
