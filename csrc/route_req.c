/*
 * route_req.c - RTM_NEWROUTE / RTM_DELROUTE requests: the kernel's
 * validation (rtm_to_fib_config, fib_create_info, fib_check_nh,
 * ip6_route_info_create) turning a request into a stored route, with the
 * errno and extended-ack text the kernel would answer.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BIT(x) (1u << (x))

static unsigned type_min_scope(uint8_t type)
{
    switch (type) {
    case PR_RTN_LOCAL: return PR_SCOPE_HOST;
    case PR_RTN_BROADCAST: case PR_RTN_ANYCAST: return PR_SCOPE_LINK;
    case PR_RTN_NAT: case PR_RTN_XRESOLVE: return PR_SCOPE_NOWHERE;
    default: return PR_SCOPE_UNIVERSE;
    }
}

static bool type_is_error(uint8_t type)
{
    return type == PR_RTN_BLACKHOLE || type == PR_RTN_UNREACHABLE || type == PR_RTN_PROHIBIT ||
           type == PR_RTN_THROW;
}

/* inet_addr_type_table(addr, table) == RTN_LOCAL; "local" is main's trie while merged */
static bool v4_addr_is_local_in(const pr_policy *p, uint32_t addr, uint32_t table)
{
    pr_flow4 fl;
    memset(&fl, 0, sizeof(fl));
    fl.daddr = addr;
    pr_fib_res res;
    int err;
    if (table == PR_TABLE_LOCAL) {
        if (!pr_table_get_c(&p->v4, PR_TABLE_LOCAL))
            return false;
        err = pr_fib4_local_lookup(p, &fl, &res);
    } else if (!p->v4_custom_rules && table == PR_TABLE_MAIN) {
        err = pr_fib4_local_lookup(p, &fl, &res);
    } else {
        const pr_table *t = pr_table_get_c(&p->v4, table);
        if (!t)
            return false;
        err = pr_fib4_table_lookup(p, t, &fl, &res);
    }
    return err == 0 && res.type == PR_RTN_LOCAL;
}

/* inet_addr_type_dev_table: the address's type in the local table (the
 * device only chooses the table, l3mdev aside) */
static uint8_t v4_addr_type_local(const pr_policy *p, uint32_t addr)
{
    if (addr == 0 || addr == 0xFFFFFFFFu)
        return PR_RTN_BROADCAST;
    if ((addr & 0xF0000000u) == 0xE0000000u)
        return PR_RTN_MULTICAST;
    if (!pr_table_get_c(&p->v4, PR_TABLE_LOCAL))
        return PR_RTN_BROADCAST;   /* no local table yet: the kernel's default answer */
    pr_flow4 fl;
    memset(&fl, 0, sizeof(fl));
    fl.daddr = addr;
    pr_fib_res res;
    if (pr_fib4_local_lookup(p, &fl, &res) != 0)
        return PR_RTN_UNICAST;
    return res.type;
}

static bool valid_prefsrc4(const pr_policy *p, const pr_route *r)
{
    uint32_t src = v4_get(r->prefsrc);
    if (r->type == PR_RTN_LOCAL && v4_get(r->dst) && src == v4_get(r->dst))
        return true;
    uint32_t tb = r->table == PR_TABLE_MAIN ? PR_TABLE_LOCAL : r->table;
    bool ok = v4_addr_is_local_in(p, src, tb);
    if (!ok && tb != PR_TABLE_LOCAL)
        ok = v4_addr_is_local_in(p, src, PR_TABLE_LOCAL);
    return ok;
}

/* fib_check_nh for one IPv4 nexthop; fills nh->scope and flags. */
static int check_nh4(pr_policy *p, pr_nh *nh, uint32_t table, unsigned scope)
{
    if (nh->gw_family == PR_AF_INET) {
        uint32_t gw = v4_get(nh->gw);
        if (nh->flags & PR_RTNH_F_ONLINK) {
            if (scope >= PR_SCOPE_LINK)
                return pr_fail(p, PR_EINVAL, "Nexthop has invalid scope");
            const pr_link *dev = pr_link_by_index_c(p, nh->ifindex);
            if (!dev)
                return pr_fail(p, PR_ENODEV, "Nexthop device required for onlink");
            if (!dev->up)
                return pr_fail(p, PR_ENETDOWN, "Nexthop device is not up");
            /* inet_addr_type_dev_table(dev, gw) must be unicast */
            if (v4_addr_type_local(p, gw) != PR_RTN_UNICAST)
                return pr_fail(p, PR_EINVAL, "Nexthop has invalid gateway");
            if (!pr_link_carrier(p, dev))
                nh->flags |= PR_RTNH_F_LINKDOWN;
            nh->scope = PR_SCOPE_LINK;
            return 0;
        }
        pr_flow4 fl;
        memset(&fl, 0, sizeof(fl));
        fl.daddr = gw;
        fl.scope = (uint8_t)(scope + 1 < PR_SCOPE_LINK ? PR_SCOPE_LINK : scope + 1);
        fl.oif = nh->ifindex;
        fl.iif = PR_LOOPBACK_IFINDEX;
        fl.ignore_linkstate = 1;
        fl.proto = 0;
        pr_fib_res res;
        int err = -PR_EAGAIN;
        const pr_table *t = NULL;
        if (table && table != PR_TABLE_MAIN)
            t = pr_table_get_c(&p->v4, table);
        if (t)
            err = pr_fib4_table_lookup(p, t, &fl, &res);
        if (!t || err) {
            int32_t ri;
            err = pr_fib4_lookup(p, &fl, &res, NULL, &ri);
        }
        if (err)
            return pr_fail(p, -err == PR_EAGAIN ? PR_ENETUNREACH : -err, "Nexthop has invalid gateway");
        if (res.type != PR_RTN_UNICAST && res.type != PR_RTN_LOCAL)
            return pr_fail(p, PR_EINVAL, "Nexthop has invalid gateway");
        nh->scope = res.scope;
        const pr_nh *via = route_nh_c(res.route, res.nh_index);
        nh->ifindex = via->ifindex;
        const pr_link *dev = pr_link_by_index_c(p, nh->ifindex);
        if (!dev)
            return pr_fail(p, PR_EINVAL, "No egress device for nexthop gateway");
        if (!pr_link_carrier(p, dev))
            nh->flags |= PR_RTNH_F_LINKDOWN;
        return dev->up ? 0 : pr_fail(p, PR_ENETDOWN, "");
    }
    if (nh->gw_family == PR_AF_INET6)
        return pr_fail(p, PR_EOPNOTSUPP, "polroute: IPv6 gateways for IPv4 routes are not modelled");
    if (nh->flags & PR_RTNH_F_ONLINK)
        return pr_fail(p, PR_EINVAL, "Invalid flags for nexthop - PERVASIVE and ONLINK can not be set");
    const pr_link *dev = pr_link_by_index_c(p, nh->ifindex);
    if (!dev)
        return pr_fail(p, PR_ENODEV, "");
    if (!dev->up)
        return pr_fail(p, PR_ENETDOWN, "Device for nexthop is not up");
    nh->scope = PR_SCOPE_HOST;
    if (!pr_link_carrier(p, dev))
        nh->flags |= PR_RTNH_F_LINKDOWN;
    return 0;
}

int pr_check_nh4(pr_policy *p, pr_nh *nh, uint32_t table, unsigned scope)
{
    return check_nh4(p, nh, table, scope);
}

static int build_nexthops(pr_policy *p, const pr_route_req *q, pr_route *r)
{
    if ((q->present & BIT(PR_RTA_MULTIPATH)) && q->nh_count) {
        if (q->nh_count > PR_MAX_NEXTHOPS)
            return pr_fail(p, PR_EOPNOTSUPP, "polroute: more multipath legs than the model holds");
        r->nh_count = q->nh_count;
        if (q->nh_count > 1) {
            r->nhx = pr_calloc(q->nh_count - 1, sizeof(pr_nh));
            if (!r->nhx)
                return -PR_ENOMEM;
        }
        for (uint32_t i = 0; i < q->nh_count; i++) {
            pr_nh *nh = route_nh(r, i);
            const pr_nexthop_req *l = &q->nh[i];
            memset(nh, 0, sizeof(*nh));
            nh->ifindex = l->ifindex;
            nh->weight = l->weight ? l->weight : 1;
            nh->flags = l->flags & PR_RTNH_F_ONLINK;
            nh->gw_family = l->gw_family;
            memcpy(nh->gw, l->gw, 16);
        }
        /* top-level RTA_OIF / RTA_GATEWAY must agree with the first leg */
        if ((q->present & BIT(PR_RTA_OIF)) && q->oif && q->oif != r->nh0.ifindex)
            return pr_fail(p, PR_EINVAL, "Nexthop device index does not match RTA_OIF");
        return 0;
    }
    r->nh_count = 1;
    memset(&r->nh0, 0, sizeof(r->nh0));
    r->nh0.ifindex = (q->present & BIT(PR_RTA_OIF)) ? q->oif : 0;
    r->nh0.weight = 1;
    r->nh0.flags = q->rtm_flags & PR_RTNH_F_ONLINK;
    if (q->gw_family) {
        r->nh0.gw_family = q->gw_family;
        memcpy(r->nh0.gw, q->gw, 16);
    }
    return 0;
}

/* rtm_to_fib_config / rtm_to_fib6_config: RTA_NH_ID excludes a nexthop spec */
static int nh_id_exclusive(pr_policy *p, const pr_route_req *q)
{
    if (!(q->present & BIT(PR_RTA_NH_ID)))
        return 0;
    if (((q->present & BIT(PR_RTA_OIF)) && (q->oif || q->family == PR_AF_INET6)) || q->gw_family ||
        ((q->present & BIT(PR_RTA_MULTIPATH)) && (q->nh_count || q->family == PR_AF_INET6)))
        return pr_fail(p, PR_EINVAL, "Nexthop specification and nexthop id are mutually exclusive");
    return 0;
}

/* A new route through a nexthop object (the RTA_NH_ID branches of
 * fib_create_info / ip6_route_info_create): checked against the route, its
 * nexthops copied from the object. */
static int route_from_nhobj(pr_policy *p, pr_route *r, const pr_nhobj *o)
{
    r->nh_id = o->id;
    r->fa_type = r->type;
    if (!type_is_error(r->type) || r->family == PR_AF_INET6) {
        int rc = pr_nhobj_check_route(p, o, r->family, r->scope);
        if (rc)
            return rc;
    }
    return pr_nhobj_materialize(p, o, r);
}

static int new_route4(pr_policy *p, int nlflags, const pr_route_req *q)
{
    if (q->tos & 0x03)
        return pr_fail(p, PR_EINVAL, "Invalid dsfield (tos): ECN bits must be 0");
    int nrc = nh_id_exclusive(p, q);
    if (nrc)
        return nrc;
    uint32_t table = q->table ? q->table : PR_TABLE_MAIN;
    if (!pr_table_new(&p->v4, table))
        return -PR_ENOMEM;
    if (q->dst_len > 32)
        return pr_fail(p, PR_EINVAL, "Invalid prefix length");
    uint32_t key = v4_get(q->dst);
    if (q->dst_len < 32 && (q->dst_len == 0 ? key : (key << q->dst_len)))
        return pr_fail(p, PR_EINVAL, "Invalid prefix for given prefix length");
    pr_route r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.dst_len = q->dst_len;
    memcpy(r.dst, q->dst, 4);
    r.tos = q->tos;
    r.protocol = q->protocol;
    r.scope = q->scope;
    r.type = q->type;
    r.table = table;
    r.priority = (q->present & BIT(PR_RTA_PRIORITY)) ? q->priority : 0;
    r.realm = q->realm;
    if (q->present & BIT(PR_RTA_PREFSRC)) {
        r.has_prefsrc = 1;
        memcpy(r.prefsrc, q->prefsrc, 4);
    }
    if (q->present & BIT(PR_RTA_METRICS)) {
        r.metrics_present = q->metrics_present;
        memcpy(r.metrics, q->metrics, sizeof(r.metrics));
    }
    /* fib_create_info */
    if (r.type > PR_RTN_XRESOLVE)
        return pr_fail(p, PR_EINVAL, "Invalid route type");
    if (type_min_scope(r.type) > r.scope)
        return pr_fail(p, PR_EINVAL, "Invalid scope");
    if (q->rtm_flags & (PR_RTNH_F_DEAD | PR_RTNH_F_LINKDOWN))
        return pr_fail(p, PR_EINVAL, "Invalid rtm_flags - can not contain DEAD or LINKDOWN");
    bool has_mp = (q->present & BIT(PR_RTA_MULTIPATH)) && q->nh_count;
    if (q->present & BIT(PR_RTA_NH_ID)) {
        const pr_nhobj *o = pr_nhobj_find(p, q->nh_id);
        if (!o)
            return pr_fail(p, PR_EINVAL, "Nexthop id does not exist");
        if (!type_is_error(r.type)) {
            if (r.type != PR_RTN_UNICAST && r.type != PR_RTN_LOCAL && r.type != PR_RTN_BROADCAST &&
                r.type != PR_RTN_ANYCAST && r.type != PR_RTN_MULTICAST)
                return pr_fail(p, PR_EINVAL, "Invalid route type");
            if (r.scope > PR_SCOPE_HOST)
                return pr_fail(p, PR_EINVAL, "Invalid scope");
        }
        int rc = route_from_nhobj(p, &r, o);
        if (rc < 0) {
            pr_route_free_contents(&r);
            return rc;
        }
        if (r.has_prefsrc && !valid_prefsrc4(p, &r)) {
            pr_route_free_contents(&r);
            return pr_fail(p, PR_EINVAL, "Invalid prefsrc address");
        }
        rc = pr_route_insert(p, &r, nlflags);
        if (rc == 0 && r.type == PR_RTN_LOCAL)
            p->v4_custom_local_routes = true;
        return rc;
    }
    if (type_is_error(r.type)) {
        if (q->gw_family || ((q->present & BIT(PR_RTA_OIF)) && q->oif) || has_mp)
            return pr_fail(p, PR_EINVAL, "Gateway, device and multipath can not be specified for this route type");
        r.nh_count = 0;
    } else {
        if (r.type != PR_RTN_UNICAST && r.type != PR_RTN_LOCAL && r.type != PR_RTN_BROADCAST &&
            r.type != PR_RTN_ANYCAST && r.type != PR_RTN_MULTICAST)
            return pr_fail(p, PR_EINVAL, "Invalid route type");
        if (r.scope > PR_SCOPE_HOST)
            return pr_fail(p, PR_EINVAL, "Invalid scope");
        int rc = build_nexthops(p, q, &r);
        if (rc < 0) {
            pr_route_free_contents(&r);
            return rc;
        }
        if (r.scope == PR_SCOPE_HOST) {
            if (r.nh_count != 1) {
                pr_route_free_contents(&r);
                return pr_fail(p, PR_EINVAL, "Route with host scope can not have multiple nexthops");
            }
            if (r.nh0.gw_family)
                return pr_fail(p, PR_EINVAL, "Route with host scope can not have a gateway");
            r.nh0.scope = PR_SCOPE_NOWHERE;
            if (!pr_link_by_index_c(p, r.nh0.ifindex))
                return pr_fail(p, PR_ENODEV, "");
        } else {
            for (uint32_t i = 0; i < r.nh_count; i++) {
                rc = check_nh4(p, route_nh(&r, i), r.table, r.scope);
                if (rc < 0) {
                    pr_route_free_contents(&r);
                    return rc;
                }
            }
        }
    }
    if (r.has_prefsrc && !valid_prefsrc4(p, &r)) {
        pr_route_free_contents(&r);
        return pr_fail(p, PR_EINVAL, "Invalid prefsrc address");
    }
    pr_route_cache_saddr(p, &r);
    int rc = pr_route_insert(p, &r, nlflags);
    if (rc == 0 && r.type == PR_RTN_LOCAL)
        p->v4_custom_local_routes = true;
    return rc;
}

static bool v6_is_local(const pr_policy *p, const uint8_t *a)
{
    return pr_addr_find(p, PR_AF_INET6, a) != NULL;
}

/* fib6_is_reject: reject types, and "true" routes through lo, which the
 * kernel turns into reject routes rather than loop */
static bool v6_route_is_reject(const pr_route *r)
{
    static const uint8_t lo6[16] = {[15] = 1};
    if (r->type == PR_RTN_BLACKHOLE || r->type == PR_RTN_UNREACHABLE || r->type == PR_RTN_PROHIBIT ||
        r->type == PR_RTN_THROW)
        return true;
    return r->nh0.ifindex == PR_LOOPBACK_IFINDEX && r->type != PR_RTN_LOCAL && r->type != PR_RTN_ANYCAST &&
           !(r->dst_len == 128 && memcmp(r->dst, lo6, 16) == 0);
}

/* fib6_nh_init + ip6_validate_gw, in the kernel's order. */
static int check_nh6(pr_policy *p, pr_nh *nh, uint32_t table)
{
    static const uint8_t zero[16] = {0};
    const pr_link *dev = NULL;
    const bool need_addr_check = nh->ifindex == 0;
    if (nh->ifindex) {
        dev = pr_link_by_index_c(p, nh->ifindex);
        if (!dev)
            return pr_fail(p, PR_ENODEV, "");
    }
    if (nh->flags & PR_RTNH_F_ONLINK) {
        if (!dev)
            return pr_fail(p, PR_ENODEV, "Nexthop device required for onlink");
        if (!dev->up)
            return pr_fail(p, PR_ENETDOWN, "Nexthop device is not up");
    }
    if (nh->gw_family == PR_AF_INET) {
        return pr_fail(p, PR_EINVAL, "polroute: IPv4 gateways for IPv6 routes are not modelled");
    } else if (nh->gw_family == PR_AF_INET6) {
        bool linklocal = nh->gw[0] == 0xFE && (nh->gw[1] & 0xC0) == 0x80;
        const pr_ifaddr *local = pr_addr_find(p, PR_AF_INET6, nh->gw);
        if (dev && local && (!linklocal || local->ifindex == dev->ifindex))
            return pr_fail(p, PR_EINVAL, "Gateway can not be a local address");
        if (!linklocal) {
            if (memcmp(nh->gw, zero, 16) == 0 || nh->gw[0] == 0xFF)
                return pr_fail(p, PR_EINVAL, "Invalid gateway address");
            if (nh->flags & PR_RTNH_F_ONLINK) {
                /* ip6_route_check_nh_onlink: a matching non-default route in main
                 * must be unicast through the same device */
                pr_flow6 fl;
                memset(&fl, 0, sizeof(fl));
                memcpy(fl.daddr, nh->gw, 16);
                fl.oif = nh->ifindex;
                fl.score_oif = nh->ifindex;
                const pr_table *t = pr_table_get_c(&p->v6, PR_TABLE_MAIN);
                pr_fib_res res;
                /* a route whose prefix address is :: counts as "the default" */
                /* a reject route (a route via lo is one: fib6_is_reject) is no objection
                 * (POLROUTE_SCENARIO=213667567676761:6) */
                if (t && pr_fib6_table_lookup(p, t, &fl, &res) == 0 && !addr_is_zero(res.route->dst, 16) &&
                    !v6_route_is_reject(res.route) &&
                    (res.type != PR_RTN_UNICAST ||
                     route_nh_c(res.route, res.nh_index)->ifindex != nh->ifindex))
                    return pr_fail(p, PR_EINVAL, "Nexthop has invalid gateway or device mismatch");
            } else {
                /* ip6_route_check_nh: the route's table first, then a full
                 * lookup; the gateway must not need a gateway itself nor hit a
                 * reject route, and must leave through the given device */
                pr_flow6 fl;
                memset(&fl, 0, sizeof(fl));
                memcpy(fl.daddr, nh->gw, 16);
                fl.oif = nh->ifindex;
                fl.score_oif = nh->ifindex;
                fl.strict_oif = 1;
                fl.iif = 0;   /* the flow of ip6_route_check_nh has no iif */
                pr_fib_res res;
                bool ok = false;
                const pr_table *t = table ? pr_table_get_c(&p->v6, table) : NULL;
                if (t && pr_fib6_table_lookup(p, t, &fl, &res) == 0 && !res.route->nh0.gw_family &&
                    !v6_route_is_reject(res.route) &&
                    (!nh->ifindex || route_nh_c(res.route, res.nh_index)->ifindex == nh->ifindex))
                    ok = true;
                if (!ok) {
                    /* fib6_lookup with fib6_table_lookup: any route found, reject
                     * ones included, ends the rule walk */
                    if (pr_fib6_lookup_alt(p, &fl, &res) != 0 || res.route->nh0.gw_family ||
                        v6_route_is_reject(res.route))
                        return pr_fail(p, PR_EHOSTUNREACH, "");
                }
                uint32_t via = route_nh_c(res.route, res.nh_index)->ifindex;
                if (nh->ifindex && via != nh->ifindex)
                    return pr_fail(p, PR_EHOSTUNREACH, "");
                nh->ifindex = via;
                dev = pr_link_by_index_c(p, via);
            }
        }
        if (!dev)
            return pr_fail(p, PR_EINVAL, "Egress device not specified");
        if (dev->kind == PR_LINK_LOOPBACK)
            return pr_fail(p, PR_EINVAL, "Egress device can not be loopback device for this route");
        if (need_addr_check) {
            /* ip6_validate_gw: without a device the address check waits until
             * the lookup has resolved one (POLROUTE_SCENARIO=79015325570131:6) */
            const pr_ifaddr *l2 = pr_addr_find(p, PR_AF_INET6, nh->gw);
            if (l2 && (!linklocal || l2->ifindex == dev->ifindex))
                return pr_fail(p, PR_EINVAL, "Gateway can not be a local address");
        }
    }
    if (!dev)
        return pr_fail(p, PR_ENODEV, "");
    if (!dev->up)
        return pr_fail(p, PR_ENETDOWN, "Nexthop device is not up");
    if (!pr_link_carrier(p, dev))
        nh->flags |= PR_RTNH_F_LINKDOWN;
    return 0;
}

int pr_check_nh6(pr_policy *p, pr_nh *nh, uint32_t table)
{
    return check_nh6(p, nh, table);
}

static int new_route6(pr_policy *p, int nlflags, const pr_route_req *q)
{
    int nrc = nh_id_exclusive(p, q);
    if (nrc)
        return nrc;
    if (q->dst_len > 128)
        return pr_fail(p, PR_EINVAL, "Invalid prefix length");
    uint32_t table = q->table ? q->table : PR_TABLE_MAIN;
    if (!pr_table_new(&p->v6, table))
        return -PR_ENOMEM;
    pr_route r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET6;
    r.dst_len = q->dst_len;
    addr_mask(r.dst, q->dst, q->dst_len, 16);
    r.protocol = q->protocol;
    r.scope = PR_SCOPE_UNIVERSE;
    r.type = q->type ? q->type : PR_RTN_UNICAST;
    r.table = table;
    r.priority = ((q->present & BIT(PR_RTA_PRIORITY)) && q->priority) ? q->priority : 1024;
    if (q->present & BIT(PR_RTA_PREF))
        r.pref = (q->pref == 1 || q->pref == 3) ? q->pref : 0;   /* invalid values mean medium */
    if (q->present & BIT(PR_RTA_METRICS)) {
        r.metrics_present = q->metrics_present;
        memcpy(r.metrics, q->metrics, sizeof(r.metrics));
    }
    if (q->present & BIT(PR_RTA_NH_ID)) {
        const pr_nhobj *o = pr_nhobj_find(p, q->nh_id);
        if (!o)
            return pr_fail(p, PR_EINVAL, "Nexthop id does not exist");
        if (r.type != PR_RTN_UNICAST)
            return pr_fail(p, PR_EOPNOTSUPP, "polroute: IPv6 routes of this type with a nexthop object are not modelled");
        int rc = route_from_nhobj(p, &r, o);
        if (rc == 0 && (q->present & BIT(PR_RTA_PREFSRC))) {
            if (!v6_is_local(p, q->prefsrc)) {
                rc = pr_fail(p, PR_EINVAL, "Invalid source address");
            } else {
                r.has_prefsrc = 1;
                memcpy(r.prefsrc, q->prefsrc, 16);
            }
        }
        if (rc < 0) {
            pr_route_free_contents(&r);
            return rc;
        }
        return pr_route_insert(p, &r, nlflags);
    }
    if (type_is_error(r.type)) {
        /* reject routes sit on lo */
        r.nh_count = 1;
        r.nh0.ifindex = PR_LOOPBACK_IFINDEX;
        r.nh0.weight = 1;
    } else {
        int rc = build_nexthops(p, q, &r);
        if (rc < 0) {
            pr_route_free_contents(&r);
            return rc;
        }
        if (r.type == PR_RTN_LOCAL || r.type == PR_RTN_ANYCAST) {
            const pr_link *dev = pr_link_by_index_c(p, r.nh0.ifindex);
            if (!dev && r.nh0.ifindex) {
                pr_route_free_contents(&r);
                return pr_fail(p, PR_ENODEV, "");
            }
            if (dev && !dev->up) {
                pr_route_free_contents(&r);
                return pr_fail(p, PR_ENETDOWN, "Nexthop device is not up");
            }
        } else {
            /* leg by leg as ip6_route_multipath_add builds its list: validate
             * the nexthop and the source, then refuse a duplicate of an
             * earlier leg, before anything is added */
            for (uint32_t i = 0; i < r.nh_count; i++) {
                rc = check_nh6(p, route_nh(&r, i), table);
                if (rc == 0 && (q->present & BIT(PR_RTA_PREFSRC)) && !v6_is_local(p, q->prefsrc))
                    rc = pr_fail(p, PR_EINVAL, "Invalid source address");
                for (uint32_t j = 0; rc == 0 && j < i; j++) {
                    const pr_nh *x = route_nh_c(&r, i), *y = route_nh_c(&r, j);
                    if (x->ifindex == y->ifindex && x->gw_family == y->gw_family && memcmp(x->gw, y->gw, 16) == 0)
                        rc = pr_fail(p, PR_EEXIST, "");
                }
                if (rc < 0) {
                    pr_route_free_contents(&r);
                    return rc;
                }
            }
        }
    }
    if (q->present & BIT(PR_RTA_PREFSRC)) {
        if (!v6_is_local(p, q->prefsrc)) {
            pr_route_free_contents(&r);
            return pr_fail(p, PR_EINVAL, "Invalid source address");
        }
        r.has_prefsrc = 1;
        memcpy(r.prefsrc, q->prefsrc, 16);
    }
    if (r.nh_count > 1) {
        /* multipath add: each leg is a sibling route (duplicates were refused above) */
        pr_route first = r;
        first.nh_count = 1;
        first.nhx = NULL;
        pr_nh *legs = r.nhx;
        uint32_t n = r.nh_count;
        int rc = pr_route_insert(p, &first, nlflags);
        uint32_t added = rc == 0 ? 1 : 0;
        for (uint32_t i = 1; rc == 0 && i < n; i++) {
            pr_route sib = r;
            sib.nh_count = 1;
            sib.nhx = NULL;
            sib.nh0 = legs[i - 1];
            rc = pr_route_insert(p, &sib, (nlflags & ~(PR_NLM_F_EXCL | PR_NLM_F_REPLACE)) | PR_NLM_F_CREATE);
            if (rc == 0)
                added++;
        }
        if (rc < 0 && added) {
            /* the kernel deletes the legs it already added */
            char saved[sizeof(p->errmsg)];
            memcpy(saved, p->errmsg, sizeof(saved));
            for (uint32_t i = 0; i < added; i++) {
                const pr_nh *leg = i == 0 ? &r.nh0 : &legs[i - 1];
                pr_route_req d;
                memset(&d, 0, sizeof(d));
                d.family = PR_AF_INET6;
                d.dst_len = r.dst_len;
                memcpy(d.dst, r.dst, 16);
                d.table = r.table;
                d.present = (1u << PR_RTA_PRIORITY) | (1u << PR_RTA_OIF);
                d.priority = r.priority;
                d.oif = leg->ifindex;
                d.gw_family = leg->gw_family;
                memcpy(d.gw, leg->gw, 16);
                (void)pr_route_delete_req(p, &d);
            }
            memcpy(p->errmsg, saved, sizeof(saved));
        }
        free(legs);
        return rc;
    }
    return pr_route_insert(p, &r, nlflags);
}

int pr_route_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_route_req *q)
{
    pr_policy_touch(p);
    pr_set_err(p, "");
    if (q->family != PR_AF_INET && q->family != PR_AF_INET6)
        return pr_fail(p, PR_EAFNOSUPPORT, "");
    if (msg_type == PR_RTM_NEWROUTE)
        return q->family == PR_AF_INET ? new_route4(p, nlmsg_flags, q) : new_route6(p, nlmsg_flags, q);
    if (msg_type != PR_RTM_DELROUTE)
        return pr_fail(p, PR_EINVAL, "");
    if (q->family == PR_AF_INET) {
        if (q->tos & 0x03)
            return pr_fail(p, PR_EINVAL, "Invalid dsfield (tos): ECN bits must be 0");
        int nrc = nh_id_exclusive(p, q);
        if (nrc)
            return nrc;
        if ((q->present & BIT(PR_RTA_NH_ID)) && !pr_nhobj_find(p, q->nh_id))
            return pr_fail(p, PR_EINVAL, "Nexthop id does not exist");
        uint32_t tid = q->table ? q->table : PR_TABLE_MAIN;
        if (!pr_table_get(&p->v4, tid))
            return pr_fail(p, PR_ESRCH, "FIB table does not exist");
        if (q->dst_len > 32)
            return pr_fail(p, PR_EINVAL, "Invalid prefix length");
        uint32_t key = v4_get(q->dst);
        if (q->dst_len < 32 && (q->dst_len == 0 ? key : (key << q->dst_len)))
            return pr_fail(p, PR_EINVAL, "Invalid prefix for given prefix length");
    } else {
        int nrc = nh_id_exclusive(p, q);
        if (nrc)
            return nrc;
        if ((q->present & BIT(PR_RTA_NH_ID)) && !pr_nhobj_find(p, q->nh_id))
            return pr_fail(p, PR_EINVAL, "Nexthop id does not exist");
        if (q->dst_len > 128)
            return pr_fail(p, PR_EINVAL, "Invalid prefix length");
    }
    return pr_route_delete_req(p, q);
}
