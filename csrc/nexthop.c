/*
 * nexthop.c - nexthop objects (`ip nexthop`, net/ipv4/nexthop.c): their
 * validation (rtm_to_nh_config, nh_check_attr_group, nexthop_create,
 * insert_nexthop, replace_nexthop), removal (remove_nexthop, also from the
 * groups that hold it) and what device events do to them
 * (nexthop_flush_dev), with the kernel's errno and extended-ack texts.
 *
 * Routes with RTA_NH_ID keep the id; the object's nexthops are copied onto
 * the route (pr_nhobj_materialize: the legs the kernel's compat dump shows)
 * so that the lookup code treats them as it treats any route: one nexthop, or
 * a multipath set answered as candidates ("multipath hash").  Every change
 * of an object refreshes the routes using it (nh_refresh_routes), and the
 * removal of an object deletes them, as __remove_nexthop_fib does.
 * docs/kernel-notes.md section 9 lists what a namespace showed.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BIT(x) (1u << (x))

static size_t nh_pos(const pr_policy *p, uint32_t id, bool *found)
{
    size_t lo = 0, hi = p->nnhobjs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->nhobjs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < p->nnhobjs && p->nhobjs[lo].id == id;
    return lo;
}

const pr_nhobj *pr_nhobj_find(const pr_policy *p, uint32_t id)
{
    bool found;
    size_t i = nh_pos(p, id, &found);
    return found ? &p->nhobjs[i] : NULL;
}

static void nhobj_free_contents(pr_nhobj *o)
{
    free(o->grp);
    o->grp = NULL;
    o->ngrp = 0;
}

void pr_nhobjs_free(pr_policy *p)
{
    for (size_t i = 0; i < p->nnhobjs; i++)
        nhobj_free_contents(&p->nhobjs[i]);
    free(p->nhobjs);
    p->nhobjs = NULL;
    p->nnhobjs = p->capnhobjs = 0;
}

int pr_nhobjs_clone(pr_policy *dst, const pr_policy *src)
{
    dst->nhobjs = NULL;
    dst->nnhobjs = dst->capnhobjs = 0;
    if (!src->nnhobjs)
        return 0;
    dst->nhobjs = pr_calloc(src->nnhobjs, sizeof(pr_nhobj));
    if (!dst->nhobjs)
        return -PR_ENOMEM;
    dst->capnhobjs = src->nnhobjs;
    for (size_t i = 0; i < src->nnhobjs; i++) {
        pr_nhobj o = src->nhobjs[i];
        if (o.ngrp) {
            o.grp = pr_malloc(o.ngrp * sizeof(pr_nhgrp_entry));
            if (!o.grp)
                return -PR_ENOMEM;   /* the caller frees what was copied */
            memcpy(o.grp, src->nhobjs[i].grp, o.ngrp * sizeof(pr_nhgrp_entry));
        }
        dst->nhobjs[dst->nnhobjs++] = o;
    }
    return 0;
}

static bool type_is_error(uint8_t type)
{
    return type == PR_RTN_BLACKHOLE || type == PR_RTN_UNREACHABLE || type == PR_RTN_PROHIBIT ||
           type == PR_RTN_THROW;
}

/* The single nexthop a group member stands for. */
static const pr_nhobj *grp_member(const pr_policy *p, const pr_nhobj *g, uint32_t i)
{
    return pr_nhobj_find(p, g->grp[i].id);
}

int pr_nhobj_materialize(const pr_policy *p, const pr_nhobj *o, pr_route *r)
{
    uint32_t n = o->is_group ? o->ngrp : 1;
    pr_nh *x = NULL;
    if (n > 1) {
        x = pr_calloc(n - 1, sizeof(pr_nh));
        if (!x)
            return -PR_ENOMEM;
    }
    free(r->nhx);
    r->nhx = x;
    r->nh_count = n;
    bool blackhole = false;
    for (uint32_t i = 0; i < n; i++) {
        const pr_nhobj *m = o->is_group ? grp_member(p, o, i) : o;
        pr_nh *nh = route_nh(r, i);
        if (!m) {   /* cannot happen: members leave their groups before they go */
            memset(nh, 0, sizeof(*nh));
            nh->flags = PR_RTNH_F_DEAD;
            continue;
        }
        *nh = m->nh;
        nh->weight = o->is_group ? o->grp[i].weight : 1;
        nh->nhc_v6 = m->family == PR_AF_INET6;
        blackhole = blackhole || m->blackhole;
    }
    /* a route through a blackhole object reports (and answers as) blackhole */
    r->type = blackhole && !type_is_error(r->fa_type) ? PR_RTN_BLACKHOLE : r->fa_type;
    return 0;
}

/* Refresh the routes using objects, delete those whose object went
 * (__remove_nexthop_fib). */
static int refresh_route(pr_policy *p, pr_route *r, void *ctx)
{
    (void)ctx;
    if (!r->nh_id)
        return 0;
    const pr_nhobj *o = pr_nhobj_find(p, r->nh_id);
    if (!o)
        return 1;
    (void)pr_nhobj_materialize(p, o, r);   /* on ENOMEM the route keeps its previous legs */
    return 0;
}

static void nh_refresh_routes(pr_policy *p)
{
    pr_routes_edit(p, PR_AF_INET, refresh_route, NULL);
    pr_routes_edit(p, PR_AF_INET6, refresh_route, NULL);
}

static bool grp_has(const pr_nhobj *g, uint32_t id)
{
    for (uint32_t i = 0; i < g->ngrp; i++)
        if (g->grp[i].id == id)
            return true;
    return false;
}

/* Whether route e goes through the single object id (itself or as a member). */
static bool route_uses(const pr_policy *p, const pr_route *e, uint32_t id)
{
    if (!e->nh_id)
        return false;
    if (e->nh_id == id)
        return true;
    const pr_nhobj *o = pr_nhobj_find(p, e->nh_id);
    return o && o->is_group && grp_has(o, id);
}

static bool reports_differently(const pr_route *a, const pr_route *b)
{
    return a->table != b->table || a->priority != b->priority || a->protocol != b->protocol ||
           a->pref != b->pref || a->has_prefsrc != b->has_prefsrc ||
           (a->has_prefsrc && memcmp(a->prefsrc, b->prefsrc, 16) != 0);
}

/* Some route e != r of family f through object `id` (the leg's member for a
 * group) for which pred(e, r) holds.  A walk over every route: only asked
 * for answers through a nexthop object. */
static bool other_route_using(const pr_policy *p, const pr_family *f, const pr_route *r, uint32_t leg,
                              bool (*pred)(const pr_route *e, const pr_route *r))
{
    const pr_nhobj *o = pr_nhobj_find(p, r->nh_id);
    if (!o)
        return false;
    uint32_t id = o->is_group ? (leg < o->ngrp ? o->grp[leg].id : 0) : o->id;
    for (size_t i = 0; i < f->ntables; i++) {
        const pr_table *t = f->tables[i].t;
        for (uint32_t s = 0; s < t->nslots; s++) {
            const pr_rlist *sl = &t->slots[s];
            for (uint32_t k = 0; k < sl->n; k++) {
                const pr_route *e = &sl->v[k];
                if (e != r && pred(e, r) && route_uses(p, e, id))
                    return true;
            }
        }
    }
    return false;
}

bool pr_nhobj_v6_cache_ambiguous(const pr_policy *p, const pr_route *r, uint32_t leg)
{
    return other_route_using(p, &p->v6, r, leg, reports_differently);
}

/* e is a route multicast destinations take (inside 224.0.0.0/4, /4 or longer) */
static bool takes_multicast(const pr_route *e, const pr_route *r)
{
    (void)r;
    return e->dst_len >= 4 && (e->dst[0] & 0xF0u) == 0xE0u;
}

bool pr_nhobj_v4_mc_shared(const pr_policy *p, const pr_route *r, uint32_t leg)
{
    return other_route_using(p, &p->v4, r, leg, takes_multicast);
}

/* nexthop_check_scope */
static int check_scope(pr_policy *p, const pr_nhobj *m, unsigned scope)
{
    if (scope == PR_SCOPE_HOST && m->nh.gw_family)
        return pr_fail(p, PR_EINVAL, "Route with host scope can not have a gateway");
    if ((m->nh.flags & PR_RTNH_F_ONLINK) && scope >= PR_SCOPE_LINK)
        return pr_fail(p, PR_EINVAL, "Scope mismatch with nexthop");
    return 0;
}

static bool has_v4(const pr_policy *p, const pr_nhobj *o)
{
    if (!o->is_group)
        return o->family == PR_AF_INET;
    for (uint32_t i = 0; i < o->ngrp; i++) {
        const pr_nhobj *m = grp_member(p, o, i);
        if (m && m->family == PR_AF_INET)
            return true;
    }
    return false;
}

int pr_nhobj_check_route(pr_policy *p, const pr_nhobj *o, uint8_t family, unsigned scope)
{
    if (family == PR_AF_INET6) {
        /* fib6_check_nexthop */
        if (has_v4(p, o))
            return pr_fail(p, PR_EINVAL, "IPv6 routes can not use an IPv4 nexthop");
        return 0;
    }
    /* fib_check_nexthop: a group is checked by its first member */
    if (o->is_group) {
        if (scope == PR_SCOPE_HOST)
            return pr_fail(p, PR_EINVAL, "Route with host scope can not have multiple nexthops");
        const pr_nhobj *m = o->ngrp ? grp_member(p, o, 0) : NULL;
        return m ? check_scope(p, m, scope) : 0;
    }
    return check_scope(p, o, scope);
}

/* Whether any route uses id (and with which families / scopes). */
typedef struct {
    pr_policy *p;
    uint32_t id;
    const pr_nhobj *newo;
    int err;
} route_check_ctx;

static int check_users(pr_policy *p, pr_route *r, void *ctx)
{
    route_check_ctx *c = ctx;
    if (c->err || r->nh_id != c->id)
        return 0;
    c->err = pr_nhobj_check_route(p, c->newo, r->family, r->scope);
    return 0;
}

/* fib_check_nh_list + fib6_check_nh_list: the routes using old must accept new */
static int check_nh_list(pr_policy *p, uint32_t old_id, const pr_nhobj *newo)
{
    route_check_ctx c = {p, old_id, newo, 0};
    /* the walk only reads: pr_routes_edit keeps every route (callbacks return 0) */
    pr_routes_edit(p, PR_AF_INET, check_users, &c);
    if (!c.err)
        pr_routes_edit(p, PR_AF_INET6, check_users, &c);
    return c.err;
}

/* replace_nexthop: old keeps its id and its place in the groups */
static int replace_nexthop(pr_policy *p, size_t oi, pr_nhobj *newo)
{
    pr_nhobj *old = &p->nhobjs[oi];
    newo->id = old->id;
    int rc = check_nh_list(p, old->id, newo);
    if (rc)
        return rc;
    if (!old->is_group) {
        for (size_t i = 0; i < p->nnhobjs; i++) {
            pr_nhobj *g = &p->nhobjs[i];
            if (!g->is_group || !grp_has(g, old->id))
                continue;
            if (newo->blackhole && g->ngrp > 1)
                return pr_fail(p, PR_EINVAL,
                               "Blackhole nexthop can not be a member of a group with more than one path");
            /* fib_check_nh_list / fib6_check_nh_list(group, new): the
             * group's routes are checked against new itself */
            rc = check_nh_list(p, g->id, newo);
            if (rc)
                return rc;
        }
    }
    if (old->is_group != newo->is_group)
        return pr_fail(p, PR_EINVAL, old->is_group ? "Can not replace a nexthop group with a nexthop."
                                                  : "Can not replace a nexthop with a nexthop group.");
    nhobj_free_contents(old);
    *old = *newo;
    newo->grp = NULL;
    newo->ngrp = 0;
    nh_refresh_routes(p);
    return 0;
}

/* remove_nexthop: routes using it go, it leaves its groups, a group left
 * empty goes the same way */
static void remove_nexthop(pr_policy *p, uint32_t id)
{
    bool found;
    size_t i = nh_pos(p, id, &found);
    if (!found)
        return;
    pr_nhobj gone = p->nhobjs[i];
    memmove(&p->nhobjs[i], &p->nhobjs[i + 1], (p->nnhobjs - i - 1) * sizeof(pr_nhobj));
    p->nnhobjs--;
    if (!gone.is_group) {
        for (size_t k = 0; k < p->nnhobjs;) {
            pr_nhobj *g = &p->nhobjs[k];
            if (g->is_group && grp_has(g, id)) {
                uint32_t w = 0;
                for (uint32_t j = 0; j < g->ngrp; j++)
                    if (g->grp[j].id != id)
                        g->grp[w++] = g->grp[j];
                g->ngrp = w;
                if (w == 0) {
                    uint32_t gid = g->id;
                    remove_nexthop(p, gid);
                    k = 0;   /* the array moved */
                    continue;
                }
            }
            k++;
        }
    }
    nhobj_free_contents(&gone);
}

static int nh_insert(pr_policy *p, size_t pos, pr_nhobj *o)
{
    if (p->nnhobjs == p->capnhobjs) {
        size_t cap = p->capnhobjs ? p->capnhobjs * 2 : 8;
        pr_nhobj *v = pr_realloc(p->nhobjs, cap * sizeof(pr_nhobj));
        if (!v)
            return -PR_ENOMEM;
        p->nhobjs = v;
        p->capnhobjs = cap;
    }
    memmove(&p->nhobjs[pos + 1], &p->nhobjs[pos], (p->nnhobjs - pos) * sizeof(pr_nhobj));
    p->nhobjs[pos] = *o;
    p->nnhobjs++;
    o->grp = NULL;
    return 0;
}

/* nh_find_unused_id */
static uint32_t nh_unused_id(pr_policy *p)
{
    uint32_t start = p->nh_last_auto;
    for (;;) {
        p->nh_last_auto++;
        if (p->nh_last_auto == start)
            break;
        if (!pr_nhobj_find(p, p->nh_last_auto))
            return p->nh_last_auto;
    }
    return 0;
}

static int not_modelled(pr_policy *p, const char *what)
{
    return pr_fail(p, PR_EOPNOTSUPP, what);
}

/* rtm_to_nh_config + nh_check_attr_group */
static int nh_config(pr_policy *p, const pr_nhobj_req *q)
{
    const uint32_t pr = q->present;
    bool group = pr & BIT(PR_NHA_GROUP);
    if (q->scope)
        return pr_fail(p, PR_EINVAL, "Invalid values in ancillary header");
    if (q->flags & ~(uint32_t)PR_RTNH_F_ONLINK)
        return pr_fail(p, PR_EINVAL, "Invalid nexthop flags in ancillary header");
    if (q->family != PR_AF_INET && q->family != PR_AF_INET6 && !(q->family == 0 && group))
        return pr_fail(p, PR_EINVAL, "Invalid address family");
    if (pr & BIT(PR_NHA_FDB))
        return not_modelled(p, "polroute: fdb nexthops are not modelled");
    if (group) {
        if (q->family != 0)
            return pr_fail(p, PR_EINVAL, "Invalid family for group");
        uint16_t type = (pr & BIT(PR_NHA_GROUP_TYPE)) ? q->group_type : PR_NEXTHOP_GRP_TYPE_MPATH;
        if (type > PR_NEXTHOP_GRP_TYPE_RES)
            return pr_fail(p, PR_EINVAL, "Invalid group type");
        if (q->ngroup == 0 || !q->group)
            return pr_fail(p, PR_EINVAL, "Invalid length for nexthop group attribute");
        for (uint32_t i = 0; i < q->ngroup; i++) {
            if (q->group[i].weight == 0 || q->group[i].weight > 256)
                return pr_fail(p, PR_EINVAL, "Invalid value for weight");
            for (uint32_t j = i + 1; j < q->ngroup; j++)
                if (q->group[i].id == q->group[j].id)
                    return pr_fail(p, PR_EINVAL, "Nexthop id can not be used twice in a group");
        }
        if (pr & (BIT(PR_NHA_BLACKHOLE) | BIT(PR_NHA_OIF) | BIT(PR_NHA_GATEWAY) | BIT(PR_NHA_ENCAP_TYPE) |
                  BIT(PR_NHA_ENCAP)) ||
            ((pr & BIT(PR_NHA_RES_GROUP)) && type != PR_NEXTHOP_GRP_TYPE_RES))
            return pr_fail(p, PR_EINVAL, "No other attributes can be set in nexthop groups");
        for (uint32_t i = 0; i < q->ngroup; i++) {
            const pr_nhobj *m = pr_nhobj_find(p, q->group[i].id);
            if (!m)
                return pr_fail(p, PR_EINVAL, "Invalid nexthop id");
            if (m->is_group)
                return pr_fail(p, PR_EINVAL, "Hash-threshold group can not be a nexthop within a group");
            if (m->blackhole && q->ngroup > 1)
                return pr_fail(p, PR_EINVAL, "Blackhole nexthop can not be used in a group with more than 1 path");
        }
        if (type == PR_NEXTHOP_GRP_TYPE_RES)
            return not_modelled(p, "polroute: resilient nexthop groups are not modelled");
        return 0;
    }
    if (pr & BIT(PR_NHA_BLACKHOLE)) {
        if (pr & (BIT(PR_NHA_GATEWAY) | BIT(PR_NHA_OIF) | BIT(PR_NHA_ENCAP) | BIT(PR_NHA_ENCAP_TYPE)))
            return pr_fail(p, PR_EINVAL, "Blackhole attribute can not be used with gateway, oif, encap or fdb");
        return 0;
    }
    if (!(pr & BIT(PR_NHA_OIF)))
        return pr_fail(p, PR_EINVAL, "Device attribute required for non-blackhole and non-fdb nexthops");
    const pr_link *dev = q->oif ? pr_link_by_index_c(p, q->oif) : NULL;
    if (!dev)
        return pr_fail(p, PR_EINVAL, "Invalid device index");
    if (!dev->up)
        return pr_fail(p, PR_ENETDOWN, "Nexthop device is not up");
    if (!pr_link_carrier(p, dev))
        return pr_fail(p, PR_ENETDOWN, "Carrier for nexthop device is down");
    if (!(pr & BIT(PR_NHA_GATEWAY)) && (q->flags & PR_RTNH_F_ONLINK))
        return pr_fail(p, PR_EINVAL, "ONLINK flag can not be set for nexthop without a gateway");
    if (pr & BIT(PR_NHA_ENCAP))
        return not_modelled(p, "polroute: nexthop encapsulation is not modelled");
    if (pr & BIT(PR_NHA_ENCAP_TYPE))
        return pr_fail(p, PR_EINVAL, "LWT encapsulation attribute is missing");
    return 0;
}

/* nexthop_create / nexthop_create_group: o is filled (o->grp owned by the caller) */
static int nh_create(pr_policy *p, const pr_nhobj_req *q, pr_nhobj *o)
{
    memset(o, 0, sizeof(*o));
    o->protocol = q->protocol;
    if (q->present & BIT(PR_NHA_GROUP)) {
        o->is_group = 1;
        o->grp = pr_malloc(q->ngroup * sizeof(pr_nhgrp_entry));
        if (!o->grp)
            return -PR_ENOMEM;
        memcpy(o->grp, q->group, q->ngroup * sizeof(pr_nhgrp_entry));
        for (uint32_t i = 0; i < q->ngroup; i++)
            o->grp[i].pad = 0;
        o->ngrp = q->ngroup;
        return 0;
    }
    o->family = q->family;
    pr_nh *nh = &o->nh;
    nh->weight = 1;
    nh->scope = PR_SCOPE_LINK;
    if (q->present & BIT(PR_NHA_BLACKHOLE)) {
        o->blackhole = 1;
        nh->ifindex = PR_LOOPBACK_IFINDEX;
    } else {
        nh->ifindex = q->oif;
        nh->flags = (uint8_t)(q->flags & PR_RTNH_F_ONLINK);
        if (q->present & BIT(PR_NHA_GATEWAY)) {
            nh->gw_family = q->family;
            memcpy(nh->gw, q->gw, fam_bytes(q->family));
        }
    }
    int rc;
    if (q->family == PR_AF_INET) {
        /* nh_create_ipv4: fib_check_nh in main at scope 0, then the source
         * cached at the scope just inside the nexthop's own (6.18:
         * fib_nh_scope - 1; a device-only nexthop's source is never lo's
         * 127.0.0.1, POLROUTE_SCENARIO=11:4) */
        rc = pr_check_nh4(p, nh, PR_TABLE_MAIN, 0);
        if (rc)
            return rc;
        nh->saddr_cache = pr_inet_select_addr(p, nh->ifindex, nh->gw_family ? v4_get(nh->gw) : 0,
                                              nh->scope ? nh->scope - 1u : 0u);
        nh->saddr_genid = p->addr_genid;
    } else {
        rc = pr_check_nh6(p, nh, 0);
        if (rc)
            return rc;
        nh->scope = PR_SCOPE_LINK;
        nh->nhc_v6 = 1;
    }
    nh->flags &= (uint8_t)~PR_RTNH_F_LINKDOWN;   /* a nexthop object needs carrier */
    return 0;
}

static int nh_new(pr_policy *p, int nlflags, const pr_nhobj_req *q)
{
    int rc = nh_config(p, q);
    if (rc)
        return rc;
    bool replace = nlflags & PR_NLM_F_REPLACE, create = nlflags & PR_NLM_F_CREATE;
    uint32_t id = (q->present & BIT(PR_NHA_ID)) ? q->id : 0;
    if (replace && !id)
        return pr_fail(p, PR_EINVAL, "Replace requires nexthop id");
    if (!id) {
        id = nh_unused_id(p);
        if (!id)
            return pr_fail(p, PR_EINVAL, "No unused id");
    }
    pr_nhobj o;
    rc = nh_create(p, q, &o);
    if (rc) {
        nhobj_free_contents(&o);
        return rc;
    }
    o.id = id;
    bool found;
    size_t pos = nh_pos(p, id, &found);
    if (found) {
        if (replace)
            rc = replace_nexthop(p, pos, &o);
        else
            rc = create ? -PR_EEXIST : 0;
        if (rc == -PR_EEXIST)
            pr_set_err(p, "");
    } else if (replace && !create) {
        rc = pr_fail(p, PR_ENOENT, "Replace specified without create and no entry exists");
    } else {
        rc = nh_insert(p, pos, &o);
    }
    nhobj_free_contents(&o);
    return rc;
}

int pr_nexthop_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_nhobj_req *q)
{
    pr_policy_touch(p);
    pr_set_err(p, "");
    /* removals edit routes in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    if (msg_type == PR_RTM_NEWNEXTHOP)
        return nh_new(p, nlmsg_flags, q);
    if (msg_type != PR_RTM_DELNEXTHOP)
        return pr_fail(p, PR_EINVAL, "");
    /* nh_valid_get_del_req */
    if (q->protocol || q->scope || q->flags)
        return pr_fail(p, PR_EINVAL, "Invalid values in header");
    if (!(q->present & BIT(PR_NHA_ID)))
        return pr_fail(p, PR_EINVAL, "Nexthop id is missing");
    if (!q->id)
        return pr_fail(p, PR_EINVAL, "Invalid nexthop id");
    if (!pr_nhobj_find(p, q->id))
        return -PR_ENOENT;
    remove_nexthop(p, q->id);
    nh_refresh_routes(p);
    return 0;
}

void pr_nexthop_flush_dev(pr_policy *p, uint32_t ifindex, int down)
{
    bool any = false;
    for (size_t i = 0; i < p->nnhobjs;) {
        const pr_nhobj *o = &p->nhobjs[i];
        /* blackholes sit on lo and stay when it goes down */
        if (!o->is_group && o->nh.ifindex == ifindex && !(o->blackhole && down)) {
            remove_nexthop(p, o->id);
            any = true;
            i = 0;
            continue;
        }
        i++;
    }
    if (any)
        nh_refresh_routes(p);
}

size_t pr_nexthop_count(const pr_policy *p) { return p->nnhobjs; }

int pr_nexthop_get(const pr_policy *p, size_t i, pr_nhobj_info *out, pr_nhgrp_entry *grp, size_t grp_cap)
{
    if (i >= p->nnhobjs)
        return -PR_ENOENT;
    const pr_nhobj *o = &p->nhobjs[i];
    memset(out, 0, sizeof(*out));
    out->id = o->id;
    out->family = o->family;
    out->protocol = o->protocol;
    out->blackhole = o->blackhole;
    out->is_group = o->is_group;
    out->ngroup = o->ngrp;
    if (!o->is_group && !o->blackhole) {
        out->scope = o->nh.scope;
        out->flags = o->nh.flags & PR_RTNH_F_ONLINK;
        out->ifindex = o->nh.ifindex;
        out->gw_family = o->nh.gw_family;
        memcpy(out->gw, o->nh.gw, 16);
    }
    for (uint32_t k = 0; grp && k < o->ngrp && k < grp_cap; k++)
        grp[k] = o->grp[k];
    return 0;
}
