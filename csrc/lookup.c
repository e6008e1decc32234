/*
 * lookup.c - answering RTM_GETROUTE as the kernel does (inet_rtm_getroute,
 * ip_route_output_key_hash_rcu, ip_route_input_slow, fib_validate_source,
 * inet6_rtm_getroute, ipv6_dev_get_saddr) and filling what rt_fill_info /
 * rt6_fill_node would report.
 */
#include <stddef.h>
#include <string.h>

#include "core.h"

#define IPPROTO_ICMP_ 1
#define IPPROTO_IGMP_ 2
#define IPPROTO_UDP_ 17

static bool v4_multicast(uint32_t a) { return (a & 0xF0000000u) == 0xE0000000u; }
static bool v4_lbcast(uint32_t a) { return a == 0xFFFFFFFFu; }
/* ipv4_is_zeronet: only 0.0.0.0 since Linux 5.3 (0/8 became routable) */
static bool v4_zeronet(uint32_t a) { return a == 0; }
static bool v4_loopback(uint32_t a) { return (a & 0xFF000000u) == 0x7F000000u; }
static bool v4_local_multicast(uint32_t a) { return (a & 0xFFFFFF00u) == 0xE0000000u; }

/* ip_check_mc_rcu: the groups a device has joined with no socket open are
 * all-hosts (224.0.0.1) on every up device and, on an up bridge (multicast
 * snooping is on by default), all-snoopers (224.0.0.106, br_multicast's
 * join of the snoopers group; seen in the kernel: `route get 224.0.0.106 iif
 * br0` is answered, other groups are not). */
static bool mc_joined(const pr_link *dev, uint32_t group)
{
    if (!dev->up)
        return false;
    return group == 0xE0000001u || (group == 0xE000006Au && dev->kind == PR_LINK_BRIDGE);
}

static void res_set_nh(pr_result *out, const pr_policy *p, const pr_route *r, uint32_t k, uint32_t oif,
                       bool with_gw)
{
    (void)p;
    pr_result_nh *n = &out->nh[out->nh_count++];
    memset(n, 0, sizeof(*n));
    n->oif = oif;
    if (r)
        n->weight = route_nh_c(r, k)->weight;   /* a device-only leg has its weight too */
    if (r && with_gw) {
        const pr_nh *nh = route_nh_c(r, k);
        if (nh->gw_family) {
            n->gw_family = nh->gw_family;
            memcpy(n->gw, nh->gw, 16);
        }
    }
}

/* fib_result_prefsrc / fib_info_update_nhc_saddr */
static uint32_t result_prefsrc4(const pr_policy *p, const pr_route *r, uint32_t k)
{
    if (r->has_prefsrc)
        return v4_get(r->prefsrc);
    const pr_nh *nh = route_nh_c(r, k);
    /* the kernel keeps the source computed at the last address change (or
     * route creation) until the next one; later sysctl changes do not count */
    if (!nh->nhc_v6 && nh->saddr_genid == p->addr_genid)
        return nh->saddr_cache;
    uint32_t gw = nh->gw_family == PR_AF_INET ? v4_get(nh->gw) : 0;
    return pr_inet_select_addr(p, nh->ifindex, gw, r->scope);
}

uint32_t pr_result_prefsrc4(const pr_policy *p, const pr_route *r, uint32_t k)
{
    return result_prefsrc4(p, r, k);
}

/* __fib_validate_source and the fast path in fib_validate_source.
 * Returns <0 error, 0 ok, 1 ok and the source is directly connected. */
/* The packet's L4 fields, as the early flow dissection sees them: the
 * reverse lookup of source validation swaps the ports. */
typedef struct {
    uint8_t proto;
    uint16_t sport, dport;
} l4_keys;

static int validate_source4(const pr_policy *p, uint32_t src, uint32_t dst, uint8_t tos, uint32_t oif,
                            const pr_link *dev, uint32_t mark, const l4_keys *l4)
{
    int rpf = pr_conf_rp_filter(p, dev);
    if (!rpf && dev->ifindex != oif) {
        if (pr_conf_accept_local(p, dev))
            return 0;
        if (!p->v4_custom_local_routes && !p->v4_custom_rules) {
            if (pr_addr_is_local_v4(p, src))
                return -PR_EINVAL;
            return 0;
        }
    } else if (!rpf && dev->ifindex == oif) {
        /* send_redirects is 1 by default: the full check runs */
    }
    bool no_addr = dev->a4_count == 0;
    pr_flow4 fl;
    memset(&fl, 0, sizeof(fl));
    fl.daddr = src;
    fl.saddr = dst;
    fl.iif = oif ? oif : PR_LOOPBACK_IFINDEX;
    fl.tos = tos;
    fl.mark = (p->conf_all.src_valid_mark || dev->conf.src_valid_mark) ? mark : 0;
    /* only rules with L4 selectors look at these, and only they make the
     * kernel dissect the packet: setting them always gives the same answers */
    fl.proto = l4->proto;
    fl.sport = l4->dport;
    fl.dport = l4->sport;
    pr_fib_res res;
    int32_t ri;
    if (pr_fib4_lookup(p, &fl, &res, NULL, &ri) != 0)
        goto last_resort;
    if (res.type != PR_RTN_UNICAST && (res.type != PR_RTN_LOCAL || !pr_conf_accept_local(p, dev)))
        return -PR_EINVAL;
    bool dev_match = false;
    for (uint32_t k = 0; k < res.route->nh_count; k++)
        if (route_nh_c(res.route, k)->ifindex == dev->ifindex)
            dev_match = true;
    if (dev_match)
        return route_nh_c(res.route, res.nh_index)->scope >= PR_SCOPE_HOST;
    if (no_addr)
        goto last_resort;
    if (rpf == 1)
        return -PR_EXDEV;
    fl.oif = dev->ifindex;
    fl.ignore_linkstate = 1;
    if (pr_fib4_lookup(p, &fl, &res, NULL, &ri) == 0 && res.type == PR_RTN_UNICAST)
        return route_nh_c(res.route, res.nh_index)->scope >= PR_SCOPE_HOST;
    return 0;
last_resort:
    if (rpf)
        return -PR_EXDEV;
    return 0;
}

static void fill_candidates4(const pr_policy *p, pr_result *out, const pr_route *r, bool with_gw)
{
    out->nh_count = 0;
    for (uint32_t k = 0; k < r->nh_count && out->nh_count < 32; k++) {
        const pr_nh *nh = route_nh_c(r, k);
        if (nh->flags & PR_RTNH_F_DEAD)
            continue;
        const pr_link *l = pr_link_by_index_c(p, nh->ifindex);
        if ((nh->flags & PR_RTNH_F_LINKDOWN) && l && pr_conf_ignore_linkdown(p, l, PR_AF_INET))
            continue;
        uint32_t oif = nh->ifindex;
        res_set_nh(out, p, r, k, oif, with_gw && nh->scope == PR_SCOPE_LINK);
        uint32_t src = r->has_prefsrc ? v4_get(r->prefsrc)
                                      : pr_inet_select_addr(p, nh->ifindex,
                                                            nh->gw_family == PR_AF_INET ? v4_get(nh->gw) : 0, r->scope);
        v4_put(out->nh[out->nh_count - 1].prefsrc, src);
    }
}

static int route_get4_output(const pr_policy *p, const pr_flow *q, pr_result *out, pr_trace *tr)
{
    uint32_t daddr = v4_get(q->dst);
    uint32_t saddr = q->has_src ? v4_get(q->src) : 0;
    uint32_t given_src = saddr;
    uint32_t oif = q->oif;
    uint32_t orig_oif = oif;
    uint32_t flags = 0;
    uint8_t type = PR_RTN_UNICAST;
    const pr_link *dev_out = NULL;
    pr_fib_res res;
    memset(&res, 0, sizeof(res));
    bool have_res = false;
    uint32_t table_id = 0;

    if (saddr) {
        if (v4_multicast(saddr) || v4_lbcast(saddr) || v4_zeronet(saddr))
            return -PR_EINVAL;
        if (oif == 0 && (v4_multicast(daddr) || v4_lbcast(daddr))) {
            uint32_t dev = pr_ip_dev_find(p, saddr);
            if (!dev)
                return -PR_ENETUNREACH;
            dev_out = pr_link_by_index_c(p, dev);
            oif = dev;
            goto make_route;
        }
        /* __ip_dev_find != NULL; the device itself is not needed here */
        if (!pr_addr_is_local_v4(p, saddr) && !pr_ip_local_route_dev(p, saddr))
            return -PR_ENETUNREACH;
    }
    if (oif) {
        dev_out = pr_link_by_index_c(p, oif);
        if (!dev_out)
            return -PR_ENODEV;
        if (!dev_out->up)
            return -PR_ENETUNREACH;
        if (v4_local_multicast(daddr) || v4_lbcast(daddr) || q->ipproto == IPPROTO_IGMP_) {
            if (!saddr)
                saddr = pr_inet_select_addr(p, oif, 0, PR_SCOPE_LINK);
            goto make_route;
        }
        if (!saddr) {
            if (v4_multicast(daddr))
                saddr = pr_inet_select_addr(p, oif, 0, PR_SCOPE_UNIVERSE);
            else if (!daddr)
                saddr = pr_inet_select_addr(p, oif, 0, PR_SCOPE_HOST);
        }
    }
    if (!daddr) {
        daddr = saddr;
        if (!daddr)
            daddr = saddr = 0x7F000001u;
        dev_out = pr_link_by_index_c(p, PR_LOOPBACK_IFINDEX);
        oif = PR_LOOPBACK_IFINDEX;
        type = PR_RTN_LOCAL;
        flags |= PR_RTCF_LOCAL;
        goto make_route;
    }
    {
        pr_flow4 fl;
        memset(&fl, 0, sizeof(fl));
        fl.daddr = daddr;
        fl.saddr = saddr;
        fl.iif = PR_LOOPBACK_IFINDEX;
        fl.oif = oif;
        fl.mark = q->mark;
        fl.uid = q->has_uid ? q->uid : 0;
        fl.tos = q->tos & 0xFC;
        fl.proto = q->has_ipproto ? q->ipproto : IPPROTO_UDP_;
        fl.sport = q->sport;
        fl.dport = q->dport;
        int err = pr_fib4_lookup(p, &fl, &res, tr, &out->rule_index);
        if (err) {
            if (oif) {
                /* the kernel assumes the destination is on link */
                memset(&res, 0, sizeof(res));
                if (!saddr)
                    saddr = pr_inet_select_addr(p, oif, 0, PR_SCOPE_LINK);
                type = PR_RTN_UNICAST;
                out->rule_index = -1;
                goto make_route;
            }
            return err;
        }
        have_res = true;
        table_id = res.table;
        type = res.type;
        out->matched_len = res.prefixlen;
        memcpy(out->matched_dst, res.route->dst, 16);
        if (res.type == PR_RTN_LOCAL) {
            if (!saddr)
                saddr = res.route->has_prefsrc ? v4_get(res.route->prefsrc) : daddr;
            dev_out = pr_link_by_index_c(p, PR_LOOPBACK_IFINDEX);
            orig_oif = route_nh_c(res.route, res.nh_index)->ifindex;
            oif = PR_LOOPBACK_IFINDEX;
            flags |= PR_RTCF_LOCAL;
            goto make_route;
        }
        /* fib_select_path */
        if (!q->oif) {
            if (res.route->nh_count > 1) {
                out->not_modelled |= PR_NM_MULTIPATH_HASH;
            }
            /* Several same-metric default gateways: fib_select_default keeps
             * the first unless ARP has neighbour entries for them.  The model
             * has no neighbour state (nothing is ever sent), so it keeps the
             * first, as the kernel does in that state. */
        }
        if (!saddr)
            saddr = result_prefsrc4(p, res.route, res.nh_index);
        dev_out = pr_link_by_index_c(p, route_nh_c(res.route, res.nh_index)->ifindex);
        oif = dev_out ? dev_out->ifindex : 0;
    }
make_route:
    /* __mkroute_output */
    if (!dev_out)
        return -PR_EINVAL;
    if (!pr_conf_route_localnet(p, dev_out) && v4_loopback(saddr) && dev_out->kind != PR_LINK_LOOPBACK)
        return -PR_EINVAL;
    bool with_gw = have_res;
    if (v4_lbcast(daddr))
        type = PR_RTN_BROADCAST;
    else if (v4_multicast(daddr))
        type = PR_RTN_MULTICAST;
    else if (v4_zeronet(daddr))
        return -PR_EINVAL;
    if (dev_out->kind == PR_LINK_LOOPBACK)
        flags |= PR_RTCF_LOCAL;
    if (type == PR_RTN_BROADCAST) {
        flags |= PR_RTCF_BROADCAST | PR_RTCF_LOCAL;
        with_gw = false;
    } else if (type == PR_RTN_MULTICAST) {
        flags |= PR_RTCF_MULTICAST | PR_RTCF_LOCAL;
        /* no socket joins anything here: only the device's own groups */
        if (!mc_joined(dev_out, daddr))
            flags &= ~PR_RTCF_LOCAL;
        if (have_res && res.prefixlen < 4)
            with_gw = false;
        else if (have_res && (res.type == PR_RTN_UNICAST || res.type == PR_RTN_BROADCAST) &&
                 !(flags & PR_RTCF_LOCAL))
            /* the rtable is cached on the nexthop and shared with other
             * destinations: the kernel's answer depends on earlier lookups.
             * A broadcast route's fib_info is shared too (another broadcast
             * route, same device and attributes): after `get 10.2.0.1` (a
             * broadcast /32) a multicast address under `broadcast
             * 239.1.0.0/16` answers "broadcast ... cache local brd"
             * (POLROUTE_SCENARIO=233969017792374:4) */
            out->not_modelled |= PR_NM_ROUTE_CACHE;
    } else if (type == PR_RTN_UNICAST && have_res && res.route->nh_id &&
               pr_nhobj_v4_mc_shared(p, res.route, res.nh_index)) {
        /* the nexthop object is shared with a route that multicast
         * destinations take: its cached rtable may say multicast
         * (POLROUTE_SCENARIO=312:4) */
        out->not_modelled |= PR_NM_ROUTE_CACHE;
    }
    (void)orig_oif;
    out->type = type;
    out->cache_flags = flags;
    out->rtm_flags = (flags & PR_RTM_F_OFFLOAD_FAILED);
    out->table = q->lookup_table ? table_id : PR_TABLE_MAIN;
    out->tos = have_res && res.route ? res.route->tos : 0;
    v4_put(out->dst, v4_get(q->dst));   /* the reply names the asked destination */
    if (given_src) {   /* rt_fill_info: RTA_SRC only when non-zero */
        out->has_from = 1;
        v4_put(out->from, given_src);
    }
    if (saddr != given_src) {
        out->has_prefsrc = 1;
        v4_put(out->prefsrc, saddr);
    }
    out->mark = q->mark;
    out->has_uid = 1;
    out->uid = q->has_uid ? q->uid : 0;
    out->nh_count = 0;
    if (have_res && type != PR_RTN_LOCAL && (out->not_modelled & PR_NM_MULTIPATH_HASH)) {
        fill_candidates4(p, out, res.route, with_gw);
        out->iif = 0;
        return 0;
    }
    res_set_nh(out, p, have_res ? res.route : NULL, res.nh_index, dev_out->ifindex,
               with_gw && have_res && route_nh_c(res.route, res.nh_index)->scope == PR_SCOPE_LINK);
    v4_put(out->nh[0].prefsrc, saddr);
    return 0;
}

static int route_get4_input(const pr_policy *p, const pr_flow *q, pr_result *out, pr_trace *tr)
{
    uint32_t daddr = v4_get(q->dst);
    uint32_t saddr = q->has_src ? v4_get(q->src) : 0;
    const pr_link *dev = pr_link_by_index_c(p, q->iif);
    if (!dev)
        return -PR_ENODEV;
    uint8_t tos = q->tos & 0xFC;
    pr_fib_res res;
    memset(&res, 0, sizeof(res));
    uint32_t flags = 0;
    uint8_t type;
    bool local_dev = true;   /* result dev is lo (local input) */
    uint32_t out_oif = PR_LOOPBACK_IFINDEX;
    bool with_gw = false;

    /* The input path dissects the skb inet_rtm_getroute built: an ICMP
     * header has no ports (proto_ports_offset), so port rules see 0. */
    const uint8_t l4_proto = q->has_ipproto ? q->ipproto : IPPROTO_UDP_;
    const bool l4_ports = l4_proto != IPPROTO_ICMP_;
    const l4_keys l4 = {l4_proto, l4_ports ? q->sport : 0, l4_ports ? q->dport : 0};
    out->input = 1;
    out->iif = q->iif;
    v4_put(out->dst, daddr);
    out->has_from = saddr != 0;
    v4_put(out->from, saddr);
    out->mark = q->mark;
    out->has_uid = q->has_uid;
    out->uid = q->uid;

    if (v4_multicast(daddr)) {
        if (mc_joined(dev, daddr)) {
            /* a joined group is received (ip_route_input_mc): not modelled yet */
            out->not_modelled |= PR_NM_MULTICAST_GROUP;
            return -PR_EINVAL;
        }
        return -PR_EINVAL;
    }
    if (v4_multicast(saddr) || v4_lbcast(saddr))
        return -PR_EINVAL;
    if (v4_lbcast(daddr) || (saddr == 0 && daddr == 0))
        goto brd_input;
    if (v4_zeronet(saddr))
        return -PR_EINVAL;
    if (v4_zeronet(daddr))
        return -PR_EINVAL;
    if (v4_loopback(daddr)) {
        if (!pr_conf_route_localnet(p, dev))
            return -PR_EINVAL;
    } else if (v4_loopback(saddr)) {
        if (!pr_conf_route_localnet(p, dev))
            return -PR_EINVAL;
    }
    {
        pr_flow4 fl;
        memset(&fl, 0, sizeof(fl));
        fl.daddr = daddr;
        fl.saddr = saddr;
        fl.iif = dev->ifindex;
        fl.mark = q->mark;
        fl.tos = tos;
        fl.uid = 0;
        fl.proto = l4.proto;
        fl.sport = l4.sport;
        fl.dport = l4.dport;
        int err = pr_fib4_lookup(p, &fl, &res, tr, &out->rule_index);
        if (err) {
            if (!pr_conf_forwarding(p, dev))
                err = -PR_EHOSTUNREACH;
            return err;
        }
        out->matched_len = res.prefixlen;
        memcpy(out->matched_dst, res.route->dst, 16);
        out->tos = res.route->tos;
        out->table = q->lookup_table ? res.table : PR_TABLE_MAIN;
        if (res.type == PR_RTN_BROADCAST)
            goto brd_input;
        if (res.type == PR_RTN_LOCAL) {
            int v = validate_source4(p, saddr, daddr, tos, 0, dev, q->mark, &l4);
            if (v < 0)
                return v;
            type = PR_RTN_LOCAL;
            flags |= PR_RTCF_LOCAL;
            goto done;
        }
        if (!pr_conf_forwarding(p, dev))
            return -PR_EHOSTUNREACH;
        if (res.type != PR_RTN_UNICAST)
            return -PR_EINVAL;
        /* ip_mkroute_input */
        if (res.route->nh_count > 1)
            out->not_modelled |= PR_NM_MULTIPATH_HASH;
        const pr_nh *nh = route_nh_c(res.route, res.nh_index);
        const pr_link *odev = pr_link_by_index_c(p, nh->ifindex);
        if (!odev)
            return -PR_EINVAL;
        int v = validate_source4(p, saddr, daddr, tos, nh->ifindex, dev, q->mark, &l4);
        if (v < 0)
            return v;
        if (odev == dev && v > 0) {
            uint32_t gw = nh->gw_family == PR_AF_INET ? v4_get(nh->gw) : 0;
            /* inet_addr_onlink(out_dev, saddr, gw) */
            bool onlink = false;
            for (size_t i = odev->a4_first; i < (size_t)odev->a4_first + odev->a4_count; i++) {
                const pr_ifaddr *a = &p->addrs[i];
                uint32_t m = a->prefixlen ? (uint32_t)(0xFFFFFFFFu << (32 - a->prefixlen)) : 0;
                if (((v4_get(a->local) ^ saddr) & m) == 0 && (!gw || ((v4_get(a->local) ^ gw) & m) == 0))
                    onlink = true;
            }
            if (onlink)
                flags |= PR_RTCF_DOREDIRECT;
        }
        type = res.type;
        local_dev = false;
        out_oif = nh->ifindex;
        with_gw = nh->scope == PR_SCOPE_LINK;
        goto done;
    }
brd_input:
    if (saddr) {
        int v = validate_source4(p, saddr, 0, tos, 0, dev, q->mark, &l4);
        if (v < 0)
            return v;
    }
    flags |= PR_RTCF_BROADCAST | PR_RTCF_LOCAL;
    type = PR_RTN_BROADCAST;
    if (!res.route)
        out->table = q->lookup_table ? 0 : PR_TABLE_MAIN;
done:
    out->type = type;
    out->cache_flags = flags;
    out->rtm_flags = flags & PR_RTM_F_OFFLOAD_FAILED;
    out->nh_count = 0;
    if (!local_dev && (out->not_modelled & PR_NM_MULTIPATH_HASH)) {
        fill_candidates4(p, out, res.route, true);
        return 0;
    }
    res_set_nh(out, p, res.route, res.nh_index, local_dev ? PR_LOOPBACK_IFINDEX : out_oif, with_gw);
    return 0;
}

/* ---------------------------------------------------------------- IPv6 */

/* __ipv6_addr_src_scope; the unspecified address has no scope (-1 -> 0 here,
 * which puts it with link-local: only the outgoing device's addresses count) */
static unsigned v6_scope(const uint8_t *a)
{
    if (addr_is_zero(a, 16))
        return 0;
    if (a[0] == 0xFF)
        return a[1] & 0x0F;
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80)
        return 0x2;
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0)
        return 0x5;
    static const uint8_t lo[16] = {[15] = 1};
    if (a[0] == 0 && memcmp(a, lo, 16) == 0)
        return 0x2;   /* __ipv6_addr_type: ::1 counts as link-local for source selection */
    if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0 && a[4] == 0 && a[5] == 0 && a[6] == 0 &&
        a[7] == 0 && a[8] == 0 && a[9] == 0 && ((a[10] == 0xFF && a[11] == 0xFF) || (a[10] == 0 && a[11] == 0)))
        return 0xE;   /* v4-mapped / compat: global */
    return 0xE;
}

/* ipv6_addr_label with the default policy table (RFC 6724), longest prefix
 * first: ::1/128 0, ::ffff:0:0/96 4, ::/96 3, 2001:10::/28 7, 2001::/32 6,
 * 2002::/16 2, 3ffe::/16 12, fec0::/10 11, fc00::/7 5, ::/0 1.  Spelled
 * out byte by byte: it runs for every candidate source address of every
 * IPv6 output lookup (checked equal to the table walk on 20 M addresses). */
static int v6_label(const uint8_t *a)
{
    if (a[0] == 0x00) {
        for (int i = 1; i < 10; i++)
            if (a[i])
                return 1;
        if (a[10] == 0xFF && a[11] == 0xFF)
            return 4;
        if (a[10] == 0 && a[11] == 0)
            return a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1 ? 0 : 3;
        return 1;
    }
    if (a[0] == 0x20) {
        if (a[1] == 0x01 && a[2] == 0x00 && (a[3] & 0xF0) == 0x10)
            return 7;
        if (a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x00)
            return 6;
        return a[1] == 0x02 ? 2 : 1;
    }
    if (a[0] == 0x3F && a[1] == 0xFE)
        return 12;
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0)
        return 11;
    if ((a[0] & 0xFE) == 0xFC)
        return 5;
    return 1;
}

static unsigned common_prefix(const uint8_t *a, const uint8_t *b)
{
    unsigned n = 0;
    for (unsigned i = 0; i < 16; i++) {
        uint8_t x = a[i] ^ b[i];
        if (!x) {
            n += 8;
            continue;
        }
        while (!(x & 0x80)) {
            n++;
            x = (uint8_t)(x << 1);
        }
        return n;
    }
    return n;
}

/* RFC 6724 source selection as ipv6_dev_get_saddr does it (rules 1,2,5,6,8). */
static bool v6_select_saddr(const pr_policy *p, uint32_t dst_dev, const uint8_t *daddr, uint8_t out[16])
{
    unsigned dscope = v6_scope(daddr);
    int dlabel = v6_label(daddr);
    bool use_oif_only = dst_dev && (daddr[0] == 0xFF || dscope <= 0x2);
    const pr_ifaddr *best = NULL;
    int bs[5] = {0};
    for (size_t li = 0; li < p->nlinks; li++) {
        const pr_link *l = &p->links[li];
        if (use_oif_only && l->ifindex != dst_dev)
            continue;
        for (size_t i = 0; i < p->naddrs; i++) {
            const pr_ifaddr *a = &p->addrs[i];
            if (a->ifindex != l->ifindex || a->family != PR_AF_INET6)
                continue;
            if (a->local[0] == 0xFF || addr_is_zero(a->local, 16))
                continue;
            int s[5];
            s[0] = memcmp(a->local, daddr, 16) == 0;
            int sc = (int)v6_scope(a->local);
            s[1] = sc >= (int)dscope ? -sc : sc - 128;
            s[2] = !dst_dev || dst_dev == a->ifindex;
            s[3] = v6_label(a->local) == dlabel;
            unsigned cp = common_prefix(a->local, daddr);
            s[4] = (int)(cp > a->prefixlen ? a->prefixlen : cp);
            if (!best) {
                best = a;
                memcpy(bs, s, sizeof(s));
                continue;
            }
            for (int k = 0; k < 5; k++) {
                if (s[k] > bs[k]) {
                    best = a;
                    memcpy(bs, s, sizeof(s));
                    break;
                }
                if (s[k] < bs[k])
                    break;
            }
        }
    }
    if (!best)
        return false;
    memcpy(out, best->local, 16);
    return true;
}

/* rt6_need_strict: multicast, link-local and loopback destinations */
static bool v6_need_strict(const uint8_t *d)
{
    static const uint8_t lo[16] = {[15] = 1};
    return d[0] == 0xFF || (d[0] == 0xFE && (d[1] & 0xC0) == 0x80) || memcmp(d, lo, 16) == 0;
}

static int route_get6(const pr_policy *p, const pr_flow *q, pr_result *out, pr_trace *tr)
{
    pr_flow6 fl;
    memset(&fl, 0, sizeof(fl));
    memcpy(fl.daddr, q->dst, 16);
    memcpy(fl.saddr, q->src, 16);
    fl.has_saddr = q->has_src && !addr_is_zero(q->src, 16);
    fl.tclass = q->tos;
    fl.proto = q->has_ipproto ? q->ipproto : 0;
    fl.sport = q->sport;
    fl.dport = q->dport;
    fl.mark = q->mark;
    bool input = q->iif != 0;
    /* inet6_rtm_getroute: no RTA_UID means INVALID_UID on the input path */
    fl.uid = q->has_uid ? q->uid : (input ? 0xFFFFFFFFu : 0);
    if (input) {
        if (!pr_link_by_index_c(p, q->iif))
            return -PR_ENODEV;
        fl.iif = q->iif;
        fl.score_oif = q->iif;   /* ip6_pol_route_input scores routes by the input device */
        fl.strict_oif = v6_need_strict(q->dst);
    } else {
        fl.iif = PR_LOOPBACK_IFINDEX;
        fl.oif = q->oif;
        fl.score_oif = q->oif;
        fl.strict_oif = v6_need_strict(q->dst) || (q->oif && !fl.has_saddr);
    }
    pr_fib_res res;
    int err = pr_fib6_lookup(p, &fl, &res, tr, &out->rule_index);
    if (res.hash_dependent)
        out->not_modelled |= PR_NM_MULTIPATH_HASH;
    if (err)
        return err;
    const pr_route *r = res.route;
    if (input && r->dst[0] == 0xFF && (p->kernel_features & PR_KF_IPV6_MROUTE))
        return -PR_EMSGSIZE;   /* a multicast prefix: the reply fill (ip6mr_get_route) fails */
    out->input = input;
    out->type = r->type;
    out->table = r->table;
    out->protocol = r->protocol;
    out->pref = r->pref;
    out->has_metric = 1;
    out->metric = r->priority;
    if (r->nh_id && pr_nhobj_v6_cache_ambiguous(p, r, res.nh_index))
        out->not_modelled |= PR_NM_NEXTHOP_OBJECT;
    out->matched_len = res.prefixlen;
    memcpy(out->matched_dst, r->dst, 16);
    memcpy(out->dst, q->dst, 16);
    out->has_from = 1;
    memcpy(out->from, q->src, 16);
    out->mark = 0;
    out->has_uid = 0;
    /* fib6_select_path hashes among siblings even with an oif */
    if (r->nh_count > 1)
        out->not_modelled |= PR_NM_MULTIPATH_HASH;
    const pr_nh *nh = route_nh_c(r, res.nh_index);
    uint32_t dev = nh->ifindex;
    if (r->type == PR_RTN_LOCAL || r->type == PR_RTN_ANYCAST)
        dev = PR_LOOPBACK_IFINDEX;
    out->nh_count = 0;
    uint32_t cands = (out->not_modelled & PR_NM_MULTIPATH_HASH) ? r->nh_count : 1;
    for (uint32_t k = 0; k < cands; k++) {
        uint32_t idx = cands == 1 ? res.nh_index : k;
        const pr_nh *n = route_nh_c(r, idx);
        if (cands > 1 && (n->flags & PR_RTNH_F_DEAD))
            continue;
        res_set_nh(out, p, r, idx, cands == 1 ? dev : n->ifindex, n->gw_family != 0);
    }
    uint8_t src[16];
    if (input) {
        out->iif = q->iif;
        if (r->has_prefsrc) {   /* the route's own prefsrc is reported on both paths */
            memcpy(out->prefsrc, r->prefsrc, 16);
            out->has_prefsrc = 1;
        }
        return 0;
    }
    if (r->has_prefsrc) {
        memcpy(out->prefsrc, r->prefsrc, 16);
        out->has_prefsrc = 1;
    } else if (v6_select_saddr(p, nh->ifindex, q->dst, src)) {
        memcpy(out->prefsrc, src, 16);
        out->has_prefsrc = 1;
    }
    return 0;
}

/* Zero the answer but not the nexthop array: only nh[0..nh_count) is valid,
 * and clearing 32 nexthops per flow would dominate bulk evaluation. */
static void result_clear(pr_result *res)
{
    memset(res, 0, offsetof(pr_result, nh));
}

int pr_route_get(const pr_policy *p, const pr_flow *q, pr_result *res, pr_trace *trace)
{
    result_clear(res);
    res->rule_index = -1;
    res->family = q->family;
    if (trace) {
        trace->len = 0;
        trace->dropped = 0;
    }
    if (q->family != PR_AF_INET && q->family != PR_AF_INET6)
        return -PR_EAFNOSUPPORT;
    if (q->fibmatch)
        res->not_modelled |= PR_NM_OTHER;
    int err;
    if (q->has_ipproto) {
        /* rtm_getroute_parse_ip_proto */
        bool ok = q->ipproto == 6 || q->ipproto == IPPROTO_UDP_ ||
                  (q->family == PR_AF_INET && q->ipproto == IPPROTO_ICMP_) ||
                  (q->family == PR_AF_INET6 && q->ipproto == 58);
        if (!ok) {
            res->error = PR_EOPNOTSUPP;
            res->errmsg = "Unsupported ip proto";
            return 0;
        }
    }
    if (q->family == PR_AF_INET)
        err = q->iif ? route_get4_input(p, q, res, trace) : route_get4_output(p, q, res, trace);
    else
        err = route_get6(p, q, res, trace);
    if (err < 0) {
        uint32_t nm = res->not_modelled;
        int32_t ri = res->rule_index;
        result_clear(res);
        res->family = q->family;
        res->error = -err;
        res->not_modelled = nm;
        res->rule_index = ri;
    }
    if (res->rule_index >= 0) {
        const pr_family *f = pr_fam_c(p, q->family);
        res->rule_priority = f->rules[res->rule_index].r.priority;
    }
    return 0;
}
