/*
 * policy.c - the namespace: lifetime, links, addresses, sysctls, and the
 * routes the kernel derives from them (fib_add_ifaddr, fib_sync_down_dev,
 * fib_sync_up, addrconf), so that a model built from `ip` commands holds the
 * same tables the kernel would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* ---------------------------------------------------------------- helpers */

/* A malloc'd copy of n elements of size bytes (NULL on ENOMEM). */
static void *dup_array(const void *src, size_t n, size_t size)
{
    void *d = pr_malloc(n * size);
    if (d)
        memcpy(d, src, n * size);
    return d;
}


void pr_set_err(pr_policy *p, const char *msg)
{
    snprintf(p->errmsg, sizeof(p->errmsg), "%s", msg ? msg : "");
}

int pr_fail(pr_policy *p, int err, const char *msg)
{
    pr_set_err(p, msg);
    return -err;
}

const char *pr_errmsg(const pr_policy *p) { return p->errmsg; }

void *pr_grow(void *ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return ptr ? ptr : pr_malloc(elem);   /* never NULL for a valid array */
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *np = pr_realloc(ptr, ncap * elem);
    if (!np)
        return NULL;
    *cap = ncap;
    return np;
}

void *pr_gap_insert(void **v, size_t *head, size_t n, size_t *cap, size_t elem, size_t pos)
{
    char *p = *v;
    bool front = pos < n - pos;   /* fewer elements before pos than from it */
    if (front && *head > 0) {
        memmove(p - elem, p, pos * elem);
        *v = p - elem;
        (*head)--;
        (*cap)++;
        return p - elem + pos * elem;
    }
    if (!front && n < *cap) {
        memmove(p + (pos + 1) * elem, p + pos * elem, (n - pos) * elem);
        return p + pos * elem;
    }
    /* a new block, the elements in its middle: room on both sides again */
    if (n > (SIZE_MAX / elem - 8) / 2)
        return NULL;
    size_t total = 2 * n + 8, nhead = (total - n - 1) / 2;
    char *b = pr_malloc(total * elem);
    if (!b)
        return NULL;
    char *d = b + nhead * elem;
    if (pos)
        memcpy(d, p, pos * elem);
    if (n - pos)
        memcpy(d + (pos + 1) * elem, p + pos * elem, (n - pos) * elem);
    if (p)
        free(p - *head * elem);
    *v = d;
    *head = nhead;
    *cap = total - nhead;
    return d + pos * elem;
}

void pr_gap_remove(void **v, size_t *head, size_t n, size_t *cap, size_t elem, size_t pos)
{
    char *p = *v;
    if (pos < n - 1 - pos) {
        memmove(p + elem, p, pos * elem);
        *v = p + elem;
        (*head)++;
        (*cap)--;
    } else {
        memmove(p + pos * elem, p + (pos + 1) * elem, (n - pos - 1) * elem);
    }
}

pr_family *pr_fam(pr_policy *p, uint8_t family) { return family == PR_AF_INET ? &p->v4 : &p->v6; }
const pr_family *pr_fam_c(const pr_policy *p, uint8_t family) { return family == PR_AF_INET ? &p->v4 : &p->v6; }

bool addr_prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    unsigned full = plen / 8, rem = plen % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rem) {
        uint8_t m = (uint8_t)(0xFFu << (8 - rem));
        if ((a[full] ^ b[full]) & m)
            return false;
    }
    return true;
}

bool addr_is_zero(const uint8_t *a, unsigned nbytes)
{
    for (unsigned i = 0; i < nbytes; i++)
        if (a[i])
            return false;
    return true;
}

void addr_mask(uint8_t out[16], const uint8_t *a, unsigned plen, unsigned nbytes)
{
    uint8_t tmp[16] = {0};
    for (unsigned i = 0; i < nbytes && i < 16; i++) {
        unsigned bitpos = i * 8;
        if (bitpos + 8 <= plen)
            tmp[i] = a[i];
        else if (bitpos < plen)
            tmp[i] = (uint8_t)(a[i] & (0xFFu << (8 - (plen - bitpos))));
    }
    memcpy(out, tmp, 16);
}

/* ---------------------------------------------------------------- lifetime */

static void devconf_defaults(pr_devconf *c)
{
    memset(c, 0, sizeof(*c));
}

/* Generations: every policy state a caller may have cached something about
 * (polroute.bulk caches a fast4 evaluator per Policy) gets its own number,
 * never reused in the process, so "same generation" means "same policy
 * object, unchanged since". */
static _Atomic uint64_t generations;

void pr_policy_touch(pr_policy *p)
{
    p->generation = atomic_fetch_add_explicit(&generations, 1u, memory_order_relaxed) + 1u;
}

uint64_t pr_policy_generation(const pr_policy *p) { return p ? p->generation : 0; }

pr_policy *pr_policy_new(void)
{
    pr_policy *p = pr_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->v4.family = PR_AF_INET;
    p->v6.family = PR_AF_INET6;
    devconf_defaults(&p->conf_all);
    devconf_defaults(&p->conf_default);
    p->next_ifindex = 1;
    p->kernel_features = PR_KF_DEFAULT;
    if (pr_link_add(p, "lo", PR_LINK_LOOPBACK, 1) < 0) {
        pr_policy_free(p);
        return NULL;
    }
    pr_rules_init_defaults(p);
    /* IPv6 has its main and local tables from the start (fib6_tables_init) */
    if (!p->v4.rules || !p->v6.rules || !pr_table_new(&p->v6, PR_TABLE_MAIN) ||
        !pr_table_new(&p->v6, PR_TABLE_LOCAL)) {
        pr_policy_free(p);
        return NULL;
    }
    pr_policy_touch(p);
    return p;
}

void pr_policy_free(pr_policy *p)
{
    if (!p)
        return;
    pr_family_free(&p->v4);
    pr_family_free(&p->v6);
    free(p->links);
    free(p->addrs);
    free(p->local4);
    free((void *)p->dump);
    pr_nhobjs_free(p);
    free(p);
}

pr_policy *pr_policy_clone(const pr_policy *src)
{
    pr_policy *p = pr_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    *p = *src;
    p->links = NULL;
    p->addrs = NULL;
    p->local4 = NULL;
    p->nlocal4 = p->caplocal4 = 0;
    p->dump = NULL;
    p->ndump = p->capdump = 0;
    p->nhobjs = NULL;
    p->nnhobjs = p->capnhobjs = 0;
    memset(&p->v4, 0, sizeof(p->v4));
    memset(&p->v6, 0, sizeof(p->v6));
    if (pr_nhobjs_clone(p, src) < 0)
        goto fail;
    if (src->nlinks) {
        if (!(p->links = dup_array(src->links, src->nlinks, sizeof(pr_link))))
            goto fail;
        p->caplinks = src->nlinks;
    }
    if (src->naddrs) {
        if (!(p->addrs = dup_array(src->addrs, src->naddrs, sizeof(pr_ifaddr))))
            goto fail;
        p->capaddrs = src->naddrs;
    }
    if (src->nlocal4) {
        if (!(p->local4 = dup_array(src->local4, src->nlocal4, sizeof(uint32_t))))
            goto fail;
        p->nlocal4 = p->caplocal4 = src->nlocal4;
    }
    if (pr_family_clone(&p->v4, &src->v4) < 0 || pr_family_clone(&p->v6, &src->v6) < 0)
        goto fail;
    pr_policy_touch(p);
    return p;
fail:
    pr_policy_free(p);
    return NULL;
}

/*
 * Snapshots share the tables and the rule storage of their source (see
 * routes.c for the reference-count rules); links, addresses and the local
 * address set are small and copied.  The source stays the writer: its next
 * write to a shared table or rule list copies that one first.
 */
pr_policy *pr_policy_snapshot(pr_policy *src)
{
    if (!src)
        return NULL;
    pr_policy *p = pr_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    *p = *src;
    p->links = NULL;
    p->addrs = NULL;
    p->local4 = NULL;
    p->nlinks = p->caplinks = p->naddrs = p->capaddrs = 0;
    p->nlocal4 = p->caplocal4 = 0;
    p->dump = NULL;
    p->ndump = p->capdump = 0;
    p->nhobjs = NULL;
    p->nnhobjs = p->capnhobjs = 0;
    memset(&p->v4, 0, sizeof(p->v4));
    memset(&p->v6, 0, sizeof(p->v6));
    if (pr_nhobjs_clone(p, src) < 0)
        goto fail;
    if (src->nlinks) {
        if (!(p->links = dup_array(src->links, src->nlinks, sizeof(pr_link))))
            goto fail;
        p->nlinks = p->caplinks = src->nlinks;
    }
    if (src->naddrs) {
        if (!(p->addrs = dup_array(src->addrs, src->naddrs, sizeof(pr_ifaddr))))
            goto fail;
        p->naddrs = p->capaddrs = src->naddrs;
    }
    if (src->nlocal4) {
        p->local4 = pr_malloc(src->nlocal4 * sizeof(uint32_t));
        if (!p->local4)
            goto fail;
        memcpy(p->local4, src->local4, src->nlocal4 * sizeof(uint32_t));
        p->nlocal4 = p->caplocal4 = src->nlocal4;
    }
    if (pr_family_share(&p->v4, &src->v4) < 0 || pr_family_share(&p->v6, &src->v6) < 0)
        goto fail;
    pr_policy_touch(p);
    return p;
fail:
    pr_policy_free(p);
    return NULL;
}

int pr_policy_own(pr_policy *p)
{
    pr_family *fams[2] = {&p->v4, &p->v6};
    for (int k = 0; k < 2; k++) {
        pr_family *f = fams[k];
        if (pr_rules_own(f) < 0)
            return -PR_ENOMEM;
        for (size_t i = 0; i < f->ntables; i++)
            if (!pr_table_get(f, f->tables[i].id))
                return -PR_ENOMEM;
    }
    return 0;
}

int pr_policy_v4_merged(const pr_policy *p) { return !p->v4_custom_rules; }

/* ---------------------------------------------------------------- links */

pr_link *pr_link_by_index(pr_policy *p, uint32_t ifindex)
{
    for (size_t i = 0; i < p->nlinks; i++)
        if (p->links[i].ifindex == ifindex)
            return &p->links[i];
    return NULL;
}

const pr_link *pr_link_by_index_c(const pr_policy *p, uint32_t ifindex)
{
    for (size_t i = 0; i < p->nlinks; i++)
        if (p->links[i].ifindex == ifindex)
            return &p->links[i];
    return NULL;
}

const pr_link *pr_link_by_name_c(const pr_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nlinks; i++)
        if (strncmp(p->links[i].name, name, PR_IFNAMSIZ) == 0)
            return &p->links[i];
    return NULL;
}

uint32_t pr_link_index(const pr_policy *p, const char *name)
{
    const pr_link *l = pr_link_by_name_c(p, name);
    return l ? l->ifindex : 0;
}

bool pr_link_carrier(const pr_policy *p, const pr_link *l)
{
    if (!l->up || l->carrier_forced_off || l->kind == PR_LINK_TAP)
        return false;
    if (l->kind == PR_LINK_VETH) {
        const pr_link *peer = l->peer ? pr_link_by_index_c(p, l->peer) : NULL;
        return peer && peer->up;
    }
    return true;
}

static bool valid_ifname(const char *name)
{
    size_t n = strnlen(name, PR_IFNAMSIZ);
    if (n == 0 || n >= PR_IFNAMSIZ)
        return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || name[i] == ':' || name[i] == ' ' || name[i] == '\t' || name[i] == '\n')
            return false;
    return true;
}

int pr_link_add(pr_policy *p, const char *name, int kind, uint32_t ifindex)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    if (!valid_ifname(name))
        return pr_fail(p, PR_EINVAL, "Invalid interface name");
    if (pr_link_by_name_c(p, name))
        return pr_fail(p, PR_EEXIST, "");
    if (ifindex && pr_link_by_index_c(p, ifindex))
        return pr_fail(p, PR_EEXIST, "");
    pr_link *nl = pr_grow(p->links, &p->caplinks, p->nlinks + 1, sizeof(pr_link));
    if (!nl)
        return -PR_ENOMEM;
    p->links = nl;
    if (!ifindex) {
        ifindex = p->next_ifindex;
        while (pr_link_by_index_c(p, ifindex))
            ifindex++;
    }
    pr_link *l = &p->links[p->nlinks++];
    memset(l, 0, sizeof(*l));
    l->ifindex = ifindex;
    l->kind = (uint8_t)kind;
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->conf = p->conf_default;
    /* forwarding of a new device follows the default */
    if (ifindex >= p->next_ifindex)
        p->next_ifindex = ifindex + 1;
    pr_rules_rebind(p);
    pr_set_err(p, "");
    return (int)ifindex;
}

int pr_link_add_veth(pr_policy *p, const char *name, const char *peer)
{
    pr_policy_touch(p);
    if (!valid_ifname(name) || !valid_ifname(peer))
        return pr_fail(p, PR_EINVAL, "Invalid interface name");
    if (strncmp(name, peer, PR_IFNAMSIZ) == 0 || pr_link_by_name_c(p, name) || pr_link_by_name_c(p, peer))
        return pr_fail(p, PR_EEXIST, "");
    /* veth_newlink registers the peer first: it gets the lower ifindex */
    int b = pr_link_add(p, peer, PR_LINK_VETH, 0);
    if (b < 0)
        return b;
    int a = pr_link_add(p, name, PR_LINK_VETH, 0);
    if (a < 0)
        return a;
    pr_link_by_index(p, (uint32_t)a)->peer = (uint32_t)b;
    pr_link_by_index(p, (uint32_t)b)->peer = (uint32_t)a;
    return a;
}

static size_t local4_pos(const pr_policy *p, uint32_t a)
{
    size_t lo = 0, hi = p->nlocal4;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->local4[mid] < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int local4_add(pr_policy *p, uint32_t a)
{
    uint32_t *nv = pr_grow(p->local4, &p->caplocal4, p->nlocal4 + 1, sizeof(uint32_t));
    if (!nv)
        return -PR_ENOMEM;
    p->local4 = nv;
    size_t pos = local4_pos(p, a);
    memmove(&p->local4[pos + 1], &p->local4[pos], (p->nlocal4 - pos) * sizeof(uint32_t));
    p->local4[pos] = a;
    p->nlocal4++;
    return 0;
}

static void local4_del(pr_policy *p, uint32_t a)
{
    size_t pos = local4_pos(p, a);
    if (pos < p->nlocal4 && p->local4[pos] == a) {
        memmove(&p->local4[pos], &p->local4[pos + 1], (p->nlocal4 - pos - 1) * sizeof(uint32_t));
        p->nlocal4--;
    }
}

/* Each device's IPv4 addresses form one contiguous run of addrs[] (they
 * are inserted next to each other); remember where, so that source selection
 * reads one device's addresses, not all of them. */
static void addr_ranges(pr_policy *p)
{
    for (size_t li = 0; li < p->nlinks; li++)
        p->links[li].a4_first = p->links[li].a4_count = 0;
    pr_link *cur = NULL;
    for (size_t i = 0; i < p->naddrs; i++) {
        const pr_ifaddr *a = &p->addrs[i];
        if (a->family != PR_AF_INET)
            continue;
        if (!cur || cur->ifindex != a->ifindex) {
            cur = pr_link_by_index(p, a->ifindex);
            if (!cur)
                continue;
            cur->a4_first = (uint32_t)i;
            cur->a4_count = 0;
        }
        cur->a4_count = (uint32_t)i + 1 - cur->a4_first;
    }
}

static void addr_remove_at(pr_policy *p, size_t i)
{
    if (p->addrs[i].family == PR_AF_INET)
        local4_del(p, v4_get(p->addrs[i].local));
    memmove(&p->addrs[i], &p->addrs[i + 1], (p->naddrs - i - 1) * sizeof(pr_ifaddr));
    p->naddrs--;
    addr_ranges(p);
}

static int route_on_dev(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    uint32_t ifindex = *(uint32_t *)ctx;
    if (r->nh_id)
        return 0;   /* nexthop objects' routes go with their objects (pr_nexthop_flush_dev) */
    if (r->family == PR_AF_INET6) {
        /* fib6_ifdown (NETDEV_UNREGISTER) looks at each sibling alone: only
         * the legs via the device go (POLROUTE_SCENARIO=194808169236093:6) */
        uint32_t k = 0;
        while (k < r->nh_count) {
            if (route_nh_c(r, k)->ifindex != ifindex) {
                k++;
                continue;
            }
            if (r->nh_count == 1)
                return 1;
            pr_route_drop_leg(r, k);
        }
        return 0;
    }
    /* fib_sync_down_dev(force): every nexthop of the route is dead */
    for (uint32_t k = 0; k < r->nh_count; k++)
        if (route_nh_c(r, k)->ifindex == ifindex)
            return 1;
    return 0;
}

static void fib_del_ifaddr(pr_policy *p, const pr_ifaddr *a);

int pr_link_del(pr_policy *p, uint32_t ifindex)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_link *l = pr_link_by_index(p, ifindex);
    if (!l)
        return pr_fail(p, PR_ENODEV, "");
    if (l->kind == PR_LINK_LOOPBACK)
        return pr_fail(p, PR_EOPNOTSUPP, "");
    uint32_t peer = l->kind == PR_LINK_VETH ? l->peer : 0;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t idx = pass == 0 ? ifindex : peer;
        if (!idx)
            continue;
        pr_link *cl = pr_link_by_index(p, idx);
        if (!cl)
            continue;
        if (cl->up)
            pr_link_set_up(p, idx, 0);
        for (size_t i = p->naddrs; i-- > 0;) {
            if (p->addrs[i].ifindex != idx)
                continue;
            /* a copy: fib_del_ifaddr runs once the address is gone (as for
             * `addr del`) and may edit what p->addrs points into */
            const pr_ifaddr gone = p->addrs[i];
            addr_remove_at(p, i);
            if (gone.family == PR_AF_INET) {
                p->addr_genid++;   /* the addresses' removal bumps dev_addr_genid */
                /* inetdev_destroy deletes each address as `addr del` would:
                 * fib_del_ifaddr, and with it the prefsrc sweep of main
                 * (POLROUTE_SCENARIO=156604225831335:4).  But the device is
                 * dead: its primary is unlinked before its secondaries, so a
                 * secondary's fib_del_ifaddr finds no primary and returns
                 * early: routes with a secondary as prefsrc stay
                 * (POLROUTE_SCENARIO=146731699105558:4, docs/kernel-notes.md) */
                if (!(gone.flags & PR_IFA_F_SECONDARY))
                    fib_del_ifaddr(p, &gone);
            }
        }
        pr_nexthop_flush_dev(p, idx, 0);
        pr_routes_edit(p, PR_AF_INET, route_on_dev, &idx);
        pr_routes_edit(p, PR_AF_INET6, route_on_dev, &idx);
        pr_link *cur = pr_link_by_index(p, idx);
        size_t pos = (size_t)(cur - p->links);
        memmove(&p->links[pos], &p->links[pos + 1], (p->nlinks - pos - 1) * sizeof(pr_link));
        p->nlinks--;
    }
    addr_ranges(p);
    pr_rules_rebind(p);
    return 0;
}

int pr_link_rename(pr_policy *p, uint32_t ifindex, const char *name)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_link *l = pr_link_by_index(p, ifindex);
    if (!l)
        return pr_fail(p, PR_ENODEV, "");
    if (!valid_ifname(name))
        return pr_fail(p, PR_EINVAL, "Invalid interface name");
    const pr_link *o = pr_link_by_name_c(p, name);
    if (o && o != l)
        return pr_fail(p, PR_EEXIST, "");
    if (l->up)
        return pr_fail(p, 16 /* EBUSY */, "");
    snprintf(l->name, sizeof(l->name), "%s", name);
    pr_rules_rebind(p);
    return 0;
}

int pr_link_set_group(pr_policy *p, uint32_t ifindex, uint32_t group)
{
    pr_policy_touch(p);
    pr_link *l = pr_link_by_index(p, ifindex);
    if (!l)
        return pr_fail(p, PR_ENODEV, "");
    l->group = group;
    return 0;
}

/* ---------------------------------------------------------------- addresses */

bool pr_addr_is_local_v4(const pr_policy *p, uint32_t addr)
{
    size_t pos = local4_pos(p, addr);
    return pos < p->nlocal4 && p->local4[pos] == addr;
}

const pr_ifaddr *pr_addr_find(const pr_policy *p, uint8_t family, const uint8_t *addr)
{
    const pr_ifaddr *best = NULL;
    if (family == PR_AF_INET && !pr_addr_is_local_v4(p, v4_get(addr)))
        return NULL;
    for (size_t i = 0; i < p->naddrs; i++)
        if (p->addrs[i].family == family && memcmp(p->addrs[i].local, addr, fam_bytes(family)) == 0 &&
            (!best || p->addrs[i].seq > best->seq))
            best = &p->addrs[i];
    return best;
}

uint32_t pr_ip_dev_find(const pr_policy *p, uint32_t addr)
{
    if (pr_addr_is_local_v4(p, addr)) {
        uint8_t b[16] = {0};
        v4_put(b, addr);
        return pr_addr_find(p, PR_AF_INET, b)->ifindex;
    }
    return pr_ip_local_route_dev(p, addr);
}

uint32_t pr_ip_local_route_dev(const pr_policy *p, uint32_t addr)
{
    /* fallback to the local table (main's trie while merged), so that
     * loopback subnets work */
    pr_flow4 fl;
    memset(&fl, 0, sizeof(fl));
    fl.daddr = addr;
    pr_fib_res res;
    int err = pr_fib4_local_lookup(p, &fl, &res);
    if (err == 0 && res.type == PR_RTN_LOCAL)
        return route_nh_c(res.route, res.nh_index)->ifindex;
    return 0;
}

static uint32_t mask4(unsigned plen) { return plen == 0 ? 0 : (uint32_t)(0xFFFFFFFFu << (32 - plen)); }

static bool ifa4_match(const pr_ifaddr *a, uint32_t addr)
{
    uint32_t m = mask4(a->prefixlen);
    return ((v4_get(a->local) ^ addr) & m) == 0;
}

/* in_dev_select_addr / first part of inet_select_addr */
uint32_t pr_inet_select_addr(const pr_policy *p, uint32_t ifindex, uint32_t dst, unsigned scope)
{
    const pr_link *dev = pr_link_by_index_c(p, ifindex);
    uint32_t addr = 0;
    if (dev) {
        unsigned localnet = pr_conf_route_localnet(p, dev) ? PR_SCOPE_LINK : PR_SCOPE_HOST;
        for (size_t i = dev->a4_first; i < (size_t)dev->a4_first + dev->a4_count; i++) {
            const pr_ifaddr *a = &p->addrs[i];
            if (a->flags & PR_IFA_F_SECONDARY)
                continue;
            unsigned s = a->scope < localnet ? a->scope : localnet;
            if (s > scope)
                continue;
            if (!dst || ifa4_match(a, dst))
                return v4_get(a->local);
            if (!addr)
                addr = v4_get(a->local);
        }
        if (addr)
            return addr;
    }
    /* in_dev_select_addr over all devices (lo first); no route_localnet here */
    for (size_t li = 0; li < p->nlinks; li++) {
        const pr_link *l = &p->links[li];
        for (size_t i = l->a4_first; i < (size_t)l->a4_first + l->a4_count; i++) {
            const pr_ifaddr *a = &p->addrs[i];
            if (a->flags & PR_IFA_F_SECONDARY)
                continue;
            if (a->scope <= scope && a->scope != PR_SCOPE_LINK)
                return v4_get(a->local);
        }
    }
    return 0;
}

void pr_route_cache_saddr(const pr_policy *p, pr_route *r)
{
    for (uint32_t k = 0; k < r->nh_count; k++) {
        pr_nh *nh = route_nh(r, k);
        nh->saddr_cache = pr_inet_select_addr(p, nh->ifindex, nh->gw_family == PR_AF_INET ? v4_get(nh->gw) : 0,
                                              r->scope);
        nh->saddr_genid = p->addr_genid;
    }
}

static const pr_ifaddr *primary_for(const pr_policy *p, const pr_ifaddr *a)
{
    if (!(a->flags & PR_IFA_F_SECONDARY))
        return a;
    uint32_t m = mask4(a->prefixlen);
    for (size_t i = 0; i < p->naddrs; i++) {
        const pr_ifaddr *o = &p->addrs[i];
        if (o->ifindex == a->ifindex && o->family == PR_AF_INET && !(o->flags & PR_IFA_F_SECONDARY) &&
            o->prefixlen == a->prefixlen && ((v4_get(o->local) ^ v4_get(a->local)) & m) == 0)
            return o;
    }
    return a;
}

/* fib_add_ifaddr */
static void fib_add_ifaddr(pr_policy *p, const pr_ifaddr *a)
{
    const pr_link *dev = pr_link_by_index_c(p, a->ifindex);
    const pr_ifaddr *prim = primary_for(p, a);
    uint8_t pref[16];
    memcpy(pref, prim->local, 16);
    uint32_t addr = v4_get(a->local);
    uint32_t m = mask4(a->prefixlen);
    uint32_t prefix = addr & m;
    uint8_t buf[16] = {0};
    v4_put(buf, addr);
    pr_route_magic(p, 1, PR_AF_INET, PR_RTN_LOCAL, PR_TABLE_LOCAL, buf, 32, pref, a->ifindex, 0);
    if (!dev || !dev->up)
        return;
    if (a->has_broadcast && v4_get(a->broadcast) != 0xFFFFFFFFu && v4_get(a->broadcast) != 0)
        pr_route_magic(p, 1, PR_AF_INET, PR_RTN_BROADCAST, PR_TABLE_LOCAL, a->broadcast, 32, pref, a->ifindex, 0);
    if (prefix != 0 && !(a->flags & PR_IFA_F_SECONDARY) && (prefix != addr || a->prefixlen < 32)) {
        v4_put(buf, prefix);
        if (!(a->flags & PR_IFA_F_NOPREFIXROUTE)) {
            uint8_t type = dev->kind == PR_LINK_LOOPBACK ? PR_RTN_LOCAL : PR_RTN_UNICAST;
            pr_route_magic(p, 1, PR_AF_INET, type, type == PR_RTN_LOCAL ? PR_TABLE_LOCAL : PR_TABLE_MAIN,
                           buf, a->prefixlen, pref, a->ifindex, a->metric);
        }
        if (a->prefixlen < 31) {
            v4_put(buf, prefix | ~m);
            pr_route_magic(p, 1, PR_AF_INET, PR_RTN_BROADCAST, PR_TABLE_LOCAL, buf, 32, pref, a->ifindex, 0);
        }
    }
}

/* ---- IPv6 addrconf: the routes the kernel derives (docs/kernel-notes.md 3.2) ----
 * local A (table local, metric 0) as soon as the address exists; the prefix
 * route (main, metric 256 or the address's) while the device is up; ff00::/8
 * (table local, metric 256) from the first time the device is up with carrier;
 * anycast P:: (table local, metric 0) while forwarding is on. */
static void kernel_route_del(pr_policy *p, uint8_t family, uint8_t type, uint32_t table,
                             const uint8_t *dst, unsigned len, uint32_t ifindex);
static const uint8_t v6_loopback[16] = {[15] = 1};

static bool v6_is_lo_loopback(const pr_link *dev, const pr_ifaddr *a)
{
    return dev->kind == PR_LINK_LOOPBACK && memcmp(a->local, v6_loopback, 16) == 0;
}

static void addrconf_prefix_route(pr_policy *p, const pr_ifaddr *a, int add)
{
    const pr_link *dev = pr_link_by_index_c(p, a->ifindex);
    if (!dev || (a->flags & PR_IFA_F_NOPREFIXROUTE) || v6_is_lo_loopback(dev, a))
        return;
    pr_route_magic(p, add, PR_AF_INET6, PR_RTN_UNICAST, PR_TABLE_MAIN, a->local, a->prefixlen, NULL,
                   a->ifindex, a->metric ? a->metric : 256);
}

/* the subnet-router anycast address P:: is a host route */
static void addrconf_anycast(pr_policy *p, const pr_ifaddr *a, int add)
{
    if (a->prefixlen >= 127)
        return;
    uint8_t any[16];
    addr_mask(any, a->local, a->prefixlen, 16);
    pr_route_magic(p, add, PR_AF_INET6, PR_RTN_ANYCAST, PR_TABLE_LOCAL, any, 128, NULL, a->ifindex, 0);
}

static bool has_ff00(pr_policy *p, uint32_t ifindex);

/* addrconf_add_mroute: ff00::/8 for a device that is up (fails when down) */
static void addrconf_add_mroute(pr_policy *p, const pr_link *l)
{
    static const uint8_t ff00[16] = {0xff};
    if (l->kind == PR_LINK_LOOPBACK || !l->up || has_ff00(p, l->ifindex))
        return;
    pr_route_magic(p, 1, PR_AF_INET6, PR_RTN_MULTICAST, PR_TABLE_LOCAL, ff00, 8, NULL, l->ifindex, 256);
}

static void addrconf_add_routes(pr_policy *p, const pr_ifaddr *a)
{
    const pr_link *dev = pr_link_by_index_c(p, a->ifindex);
    if (!dev)
        return;
    addrconf_add_mroute(p, dev);   /* addrconf_add_dev, before the address's own routes */
    pr_route_magic(p, 1, PR_AF_INET6, PR_RTN_LOCAL, PR_TABLE_LOCAL, a->local, 128, NULL, a->ifindex, 0);
    if (dev->up)
        addrconf_prefix_route(p, a, 1);
    if (dev->conf.v6_forwarding)
        addrconf_anycast(p, a, 1);
}

/* Does another IPv6 address of the device still provide this prefix route? */
static bool v6_prefix_shared(const pr_policy *p, const pr_ifaddr *a)
{
    for (size_t i = 0; i < p->naddrs; i++) {
        const pr_ifaddr *o = &p->addrs[i];
        if (o != a && o->family == PR_AF_INET6 && o->ifindex == a->ifindex && o->prefixlen == a->prefixlen &&
            addr_prefix_match(o->local, a->local, a->prefixlen))
            return true;
    }
    return false;
}

/* rt6_remove_prefsrc: routes keep going, without the vanished source */
static int rt6_clear_prefsrc(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    if (r->has_prefsrc && memcmp(r->prefsrc, ctx, 16) == 0) {
        r->has_prefsrc = 0;
        memset(r->prefsrc, 0, 16);
    }
    return 0;
}

static void addrconf_del_routes(pr_policy *p, const pr_ifaddr *gone)
{
    if (!pr_addr_find(p, PR_AF_INET6, gone->local))
        pr_routes_edit(p, PR_AF_INET6, rt6_clear_prefsrc, (void *)(uintptr_t)gone->local);
    kernel_route_del(p, PR_AF_INET6, PR_RTN_LOCAL, PR_TABLE_LOCAL, gone->local, 128, gone->ifindex);
    if (!v6_prefix_shared(p, gone)) {
        if (!(gone->flags & PR_IFA_F_NOPREFIXROUTE))
            kernel_route_del(p, PR_AF_INET6, PR_RTN_UNICAST, PR_TABLE_MAIN, gone->local, gone->prefixlen,
                             gone->ifindex);
        if (gone->prefixlen < 127) {
            uint8_t any[16];
            addr_mask(any, gone->local, gone->prefixlen, 16);
            kernel_route_del(p, PR_AF_INET6, PR_RTN_ANYCAST, PR_TABLE_LOCAL, any, 128, gone->ifindex);
        }
    }
}

static bool has_ff00(pr_policy *p, uint32_t ifindex)
{
    static const uint8_t ff00[16] = {0xff};
    const pr_table *t = pr_table_get_c(&p->v6, PR_TABLE_LOCAL);
    if (!t)
        return false;
    uint32_t *slot = pr_trie_find(&t->trie, ff00, 8);
    if (!slot)
        return false;
    const pr_rlist *s = &t->slots[*slot];
    for (uint32_t i = 0; i < s->n; i++)
        if (s->v[i].type == PR_RTN_MULTICAST && s->v[i].nh0.ifindex == ifindex)
            return true;
    return false;
}

/* carrier came on for an up device: ff00::/8 is appended once */
static void addrconf_carrier_on(pr_policy *p, const pr_link *l)
{
    addrconf_add_mroute(p, l);
}

/* after a change of IPv6 forwarding: anycast routes follow it */
static void addrconf_sync_anycast(pr_policy *p)
{
    /* dev_forward_change walks the devices in list order, then their addresses */
    for (size_t li = 0; li < p->nlinks; li++) {
        uint32_t ifindex = p->links[li].ifindex;
        int fwd = p->links[li].conf.v6_forwarding;
        for (size_t i = 0; i < p->naddrs; i++) {
            pr_ifaddr a = p->addrs[i];
            if (a.family == PR_AF_INET6 && a.ifindex == ifindex)
                addrconf_anycast(p, &a, fwd);
        }
    }
}

static int rt_prefsrc_is(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    const uint8_t *addr = ctx;
    /* fib_sync_down_addr looks at main only (the l3mdev table aside) */
    return r->family == PR_AF_INET && r->table == PR_TABLE_MAIN && r->has_prefsrc &&
           memcmp(r->prefsrc, addr, 4) == 0;
}

typedef struct {
    uint32_t ifindex;
    uint8_t family;
    uint8_t type;
    uint8_t dst[16];
    uint8_t dst_len;
    uint32_t table;
} kroute_match;

static int rt_is_kernel_route(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    kroute_match *m = ctx;
    return r->protocol == PR_RTPROT_KERNEL && r->table == m->table && r->type == m->type &&
           r->dst_len == m->dst_len && memcmp(r->dst, m->dst, 16) == 0 && r->nh0.ifindex == m->ifindex;
}

static void kernel_route_del(pr_policy *p, uint8_t family, uint8_t type, uint32_t table,
                             const uint8_t *dst, unsigned len, uint32_t ifindex)
{
    kroute_match m;
    memset(&m, 0, sizeof(m));
    m.ifindex = ifindex;
    m.family = family;
    m.type = type;
    m.table = table;
    m.dst_len = (uint8_t)len;
    addr_mask(m.dst, dst, len, fam_bytes(family));
    pr_routes_edit(p, family, rt_is_kernel_route, &m);
}

/* fib_del_ifaddr, simplified: drop what this address contributed unless
 * another address of the device still provides it. */
static void fib_del_ifaddr(pr_policy *p, const pr_ifaddr *a)
{
    uint32_t addr = v4_get(a->local);
    uint32_t m = mask4(a->prefixlen);
    uint32_t prefix = addr & m;
    bool local_used = false, prefix_used = false, brd_used = false;
    for (size_t i = 0; i < p->naddrs; i++) {
        const pr_ifaddr *o = &p->addrs[i];
        if (o->family != PR_AF_INET || o == a)
            continue;
        /* LOCAL_OK looks at the same device only: the same address on
         * another device keeps its own local route */
        if (o->ifindex == a->ifindex && v4_get(o->local) == addr)
            local_used = true;
        if (o->ifindex == a->ifindex && !(o->flags & PR_IFA_F_SECONDARY) && o->prefixlen == a->prefixlen &&
            (v4_get(o->local) & m) == prefix) {
            prefix_used = true;
            brd_used = true;
        }
    }
    uint8_t buf[16] = {0};
    if (!(a->flags & PR_IFA_F_SECONDARY)) {
        if (!prefix_used) {
            v4_put(buf, prefix);
            kernel_route_del(p, PR_AF_INET, PR_RTN_UNICAST, PR_TABLE_MAIN, buf, a->prefixlen, a->ifindex);
            kernel_route_del(p, PR_AF_INET, PR_RTN_LOCAL, PR_TABLE_LOCAL, buf, a->prefixlen, a->ifindex);
        }
        if (!brd_used && a->prefixlen < 31) {
            v4_put(buf, prefix | ~m);
            kernel_route_del(p, PR_AF_INET, PR_RTN_BROADCAST, PR_TABLE_LOCAL, buf, 32, a->ifindex);
        }
    }
    if (!local_used) {
        v4_put(buf, addr);
        kernel_route_del(p, PR_AF_INET, PR_RTN_LOCAL, PR_TABLE_LOCAL, buf, 32, a->ifindex);
        /* fib_sync_down_addr, once the address is no longer local anywhere:
         * routes using it as prefsrc go */
        bool still_local = false;
        for (size_t i = 0; i < p->naddrs && !still_local; i++)
            still_local = &p->addrs[i] != a && p->addrs[i].family == PR_AF_INET && v4_get(p->addrs[i].local) == addr;
        if (!still_local && !pr_ip_local_route_dev(p, addr))
            pr_routes_edit(p, PR_AF_INET, rt_prefsrc_is, buf);
    }
}

/* fib_disable_ip(force): every nexthop on the device dies, host routes too */
static int nh_kill_all(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    if (r->nh_id)
        return 0;   /* nexthop objects follow their devices themselves (nexthop.c) */
    uint32_t ifindex = *(uint32_t *)ctx, dead = 0;
    for (uint32_t k = 0; k < r->nh_count; k++) {
        pr_nh *nh = route_nh(r, k);
        if (nh->ifindex == ifindex)
            nh->flags |= PR_RTNH_F_DEAD | PR_RTNH_F_LINKDOWN;
        if (nh->flags & PR_RTNH_F_DEAD)
            dead++;
    }
    return r->nh_count > 0 && dead == r->nh_count;
}

static size_t addr_insert_pos(const pr_policy *p, const pr_ifaddr *a)
{
    size_t first = SIZE_MAX, last = SIZE_MAX, after_primary = SIZE_MAX;
    for (size_t i = 0; i < p->naddrs; i++) {
        const pr_ifaddr *o = &p->addrs[i];
        if (o->ifindex != a->ifindex || o->family != a->family)
            continue;
        if (first == SIZE_MAX)
            first = i;
        last = i;
        if (a->family == PR_AF_INET) {
            if (!(o->flags & PR_IFA_F_SECONDARY) && a->scope <= o->scope)
                after_primary = i + 1;
        } else if (after_primary == SIZE_MAX) {
            /* IPv6: before the first address of equal or narrower scope */
            unsigned so = o->scope, sa = a->scope;
            if (sa <= so || so == PR_SCOPE_UNIVERSE)
                after_primary = i;
        }
    }
    if (first == SIZE_MAX)
        return p->naddrs;
    if (a->family == PR_AF_INET6)
        return after_primary == SIZE_MAX ? last + 1 : after_primary;
    if (a->flags & PR_IFA_F_SECONDARY)
        return last + 1;
    return after_primary == SIZE_MAX ? first : after_primary;
}

int pr_addr_request(pr_policy *p, int msg_type, const pr_addr_req *req)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_set_err(p, "");
    if (req->family != PR_AF_INET && req->family != PR_AF_INET6)
        return pr_fail(p, PR_EAFNOSUPPORT, "");
    if (req->prefixlen > fam_bits(req->family))
        return pr_fail(p, PR_EINVAL, req->family == PR_AF_INET ? "" : "Invalid prefix length");
    pr_link *dev = pr_link_by_index(p, req->ifindex);
    if (!dev)
        return pr_fail(p, PR_ENODEV, "");
    unsigned nb = fam_bytes(req->family);
    if (msg_type == PR_RTM_DELADDR) {
        for (size_t i = 0; i < p->naddrs; i++) {
            pr_ifaddr *a = &p->addrs[i];
            if (a->ifindex != req->ifindex || a->family != req->family ||
                memcmp(a->local, req->local, nb) != 0)
                continue;
            if (req->prefixlen && a->prefixlen != req->prefixlen && req->family == PR_AF_INET)
                continue;
            pr_ifaddr gone = *a;
            if (req->family == PR_AF_INET) {
                /* a primary takes its secondaries with it (promote_secondaries 0) */
                if (!(gone.flags & PR_IFA_F_SECONDARY) &&
                    !(p->conf_all.promote_secondaries || dev->conf.promote_secondaries)) {
                    uint32_t m = mask4(gone.prefixlen);
                    for (size_t j = p->naddrs; j-- > 0;) {
                        pr_ifaddr *s = &p->addrs[j];
                        if (s->ifindex == gone.ifindex && s->family == PR_AF_INET &&
                            (s->flags & PR_IFA_F_SECONDARY) && s->prefixlen == gone.prefixlen &&
                            ((v4_get(s->local) ^ v4_get(gone.local)) & m) == 0) {
                            pr_ifaddr sg = *s;
                            addr_remove_at(p, j);
                            if (j < i)
                                i--;
                            fib_del_ifaddr(p, &sg);
                        }
                    }
                }
                addr_remove_at(p, i);
                fib_del_ifaddr(p, &gone);
                bool any = false;
                for (size_t j = 0; j < p->naddrs; j++)
                    any |= p->addrs[j].ifindex == gone.ifindex && p->addrs[j].family == PR_AF_INET;
                if (!any)
                    pr_routes_edit(p, PR_AF_INET, nh_kill_all, &gone.ifindex);
                p->addr_genid++;
            } else {
                addr_remove_at(p, i);
                addrconf_del_routes(p, &gone);
            }
            return 0;
        }
        return pr_fail(p, PR_EADDRNOTAVAIL, req->family == PR_AF_INET6 ? "ipv6: address not found" : "");
    }
    if (msg_type != PR_RTM_NEWADDR)
        return pr_fail(p, PR_EINVAL, "");
    pr_ifaddr a;
    memset(&a, 0, sizeof(a));
    a.ifindex = req->ifindex;
    a.family = req->family;
    a.prefixlen = req->prefixlen;
    a.scope = req->scope;
    a.flags = req->flags & PR_IFA_F_NOPREFIXROUTE;
    a.metric = req->metric;
    memcpy(a.local, req->local, nb);
    if (req->has_broadcast) {
        a.has_broadcast = 1;
        memcpy(a.broadcast, req->broadcast, nb);
    }
    if (a.family == PR_AF_INET) {
        uint32_t m = mask4(a.prefixlen);
        for (size_t i = 0; i < p->naddrs; i++) {
            const pr_ifaddr *o = &p->addrs[i];
            if (o->ifindex != a.ifindex || o->family != PR_AF_INET)
                continue;
            if (o->prefixlen == a.prefixlen && ((v4_get(o->local) ^ v4_get(a.local)) & m) == 0) {
                if (v4_get(o->local) == v4_get(a.local))
                    return pr_fail(p, PR_EEXIST, "");
                if (o->scope != a.scope)
                    return pr_fail(p, PR_EINVAL, "ipv4: Invalid scope value");
                a.flags |= PR_IFA_F_SECONDARY;
            }
        }
    } else {
        for (size_t i = 0; i < p->naddrs; i++) {
            const pr_ifaddr *o = &p->addrs[i];
            if (o->ifindex == a.ifindex && o->family == PR_AF_INET6 && memcmp(o->local, a.local, 16) == 0)
                return pr_fail(p, PR_EEXIST, "");
        }
    }
    pr_ifaddr *na = pr_grow(p->addrs, &p->capaddrs, p->naddrs + 1, sizeof(pr_ifaddr));
    if (!na)
        return -PR_ENOMEM;
    p->addrs = na;
    if (a.family == PR_AF_INET && local4_add(p, v4_get(a.local)) < 0)
        return -PR_ENOMEM;
    a.seq = ++p->addr_seq;
    size_t pos = addr_insert_pos(p, &a);
    memmove(&p->addrs[pos + 1], &p->addrs[pos], (p->naddrs - pos) * sizeof(pr_ifaddr));
    p->addrs[pos] = a;
    p->naddrs++;
    addr_ranges(p);
    if (a.family == PR_AF_INET) {
        fib_add_ifaddr(p, &p->addrs[pos]);
        p->addr_genid++;
    } else {
        addrconf_add_routes(p, &p->addrs[pos]);
    }
    return 0;
}

size_t pr_addr_count(const pr_policy *p) { return p->naddrs; }

int pr_addr_get(const pr_policy *p, size_t i, pr_addr_info *out)
{
    if (i >= p->naddrs)
        return -PR_ENOENT;
    const pr_ifaddr *a = &p->addrs[i];
    memset(out, 0, sizeof(*out));
    out->a.family = a->family;
    out->a.prefixlen = a->prefixlen;
    out->a.scope = a->scope;
    out->a.has_broadcast = a->has_broadcast;
    out->a.ifindex = a->ifindex;
    out->a.flags = a->flags;
    out->a.metric = a->metric;
    memcpy(out->a.local, a->local, 16);
    memcpy(out->a.broadcast, a->broadcast, 16);
    out->secondary = (a->flags & PR_IFA_F_SECONDARY) != 0;
    return 0;
}

size_t pr_link_count(const pr_policy *p) { return p->nlinks; }

int pr_link_get(const pr_policy *p, size_t i, pr_link_info *out)
{
    if (i >= p->nlinks)
        return -PR_ENOENT;
    const pr_link *l = &p->links[i];
    memset(out, 0, sizeof(*out));
    out->ifindex = l->ifindex;
    out->group = l->group;
    out->kind = l->kind;
    out->up = l->up;
    out->carrier = pr_link_carrier(p, l);
    memcpy(out->name, l->name, sizeof(out->name));
    return 0;
}

/* ---------------------------------------------------------------- link state */

static int nh_sync_down(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    if (r->nh_id)
        return 0;   /* nexthop objects follow their devices themselves (nexthop.c) */
    uint32_t ifindex = *(uint32_t *)ctx;
    if (r->family == PR_AF_INET6) {
        /* fib6_ifdown (NETDEV_DOWN): a single-path route via the device goes;
         * a multipath route (our legs are the kernel's siblings) goes only
         * when every leg would be dead (rt6_multipath_dead_count), otherwise
         * its legs via the device are marked dead + linkdown and kept - they
         * come back with the device (POLROUTE_SCENARIO=218599973981958:6) */
        uint32_t dead = 0;
        bool uses = false;
        for (uint32_t k = 0; k < r->nh_count; k++) {
            const pr_nh *nh = route_nh_c(r, k);
            if (nh->ifindex == ifindex) {
                uses = true;
                dead++;
            } else if (nh->flags & PR_RTNH_F_DEAD) {
                dead++;
            }
        }
        if (!uses)
            return 0;
        if (r->nh_count == 1 || dead == r->nh_count)
            return 1;
        for (uint32_t k = 0; k < r->nh_count; k++) {
            pr_nh *nh = route_nh(r, k);
            if (nh->ifindex == ifindex)
                nh->flags |= PR_RTNH_F_DEAD | PR_RTNH_F_LINKDOWN;
        }
        return 0;
    }
    uint32_t dead = 0;
    for (uint32_t k = 0; k < r->nh_count; k++) {
        pr_nh *nh = route_nh(r, k);
        if (nh->ifindex == ifindex && nh->scope != PR_SCOPE_NOWHERE)
            nh->flags |= PR_RTNH_F_DEAD | PR_RTNH_F_LINKDOWN;
        if (nh->flags & PR_RTNH_F_DEAD)
            dead++;
    }
    return r->nh_count > 0 && dead == r->nh_count;
}

void pr_sync_link_down(pr_policy *p, uint32_t ifindex)
{
    pr_nexthop_flush_dev(p, ifindex, 1);   /* nh_netdev_event NETDEV_DOWN */
    pr_routes_edit(p, PR_AF_INET, nh_sync_down, &ifindex);
    /* IPv6: addresses go (keep_addr_on_down 0) with their routes */
    for (size_t i = p->naddrs; i-- > 0;)
        if (p->addrs[i].ifindex == ifindex && p->addrs[i].family == PR_AF_INET6)
            addr_remove_at(p, i);
    pr_routes_edit(p, PR_AF_INET6, nh_sync_down, &ifindex);
}

typedef struct {
    uint32_t ifindex;
    bool carrier;
} carrier_ctx;

static int nh_sync_up(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    if (r->nh_id)
        return 0;   /* nexthop objects follow their devices themselves (nexthop.c) */
    carrier_ctx *c = ctx;
    for (uint32_t k = 0; k < r->nh_count; k++) {
        pr_nh *nh = route_nh(r, k);
        if (nh->ifindex != c->ifindex)
            continue;
        nh->flags &= (uint8_t)~PR_RTNH_F_DEAD;
        if (c->carrier)
            nh->flags &= (uint8_t)~PR_RTNH_F_LINKDOWN;
    }
    return 0;
}

static int nh_carrier(pr_policy *p, pr_route *r, void *ctx)
{
    (void)p;
    if (r->nh_id)
        return 0;   /* nexthop objects follow their devices themselves (nexthop.c) */
    carrier_ctx *c = ctx;
    for (uint32_t k = 0; k < r->nh_count; k++) {
        pr_nh *nh = route_nh(r, k);
        if (nh->ifindex != c->ifindex || (nh->flags & PR_RTNH_F_DEAD))
            continue;
        if (r->family == PR_AF_INET && nh->scope == PR_SCOPE_NOWHERE)
            continue;
        if (r->family == PR_AF_INET6 && (r->type == PR_RTN_LOCAL || r->type == PR_RTN_ANYCAST))
            continue;   /* fib6_nh_init: no LINKDOWN for local and anycast routes */
        if (c->carrier)
            nh->flags &= (uint8_t)~PR_RTNH_F_LINKDOWN;
        else
            nh->flags |= PR_RTNH_F_LINKDOWN;
    }
    return 0;
}

void pr_sync_carrier(pr_policy *p, uint32_t ifindex)
{
    const pr_link *l = pr_link_by_index_c(p, ifindex);
    if (!l || !l->up)
        return;
    carrier_ctx c = {ifindex, pr_link_carrier(p, l)};
    if (!c.carrier)
        pr_nexthop_flush_dev(p, ifindex, 1);   /* NETDEV_CHANGE without IFF_RUNNING|IFF_LOWER_UP */
    pr_routes_edit(p, PR_AF_INET, nh_carrier, &c);
    pr_routes_edit(p, PR_AF_INET6, nh_carrier, &c);
}

void pr_sync_link_up(pr_policy *p, uint32_t ifindex)
{
    const pr_link *l = pr_link_by_index_c(p, ifindex);
    if (!l)
        return;
    if (l->kind == PR_LINK_LOOPBACK) {
        /* inetdev_event: lo gets 127.0.0.1/8 (host scope) and ::1/128 */
        pr_addr_req q;
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET;
        q.prefixlen = 8;
        q.scope = PR_SCOPE_HOST;
        q.ifindex = ifindex;
        q.local[0] = 127;
        q.local[3] = 1;
        if (!pr_addr_find(p, PR_AF_INET, q.local))
            (void)pr_addr_request(p, PR_RTM_NEWADDR, &q);
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET6;
        q.prefixlen = 128;
        q.scope = PR_SCOPE_HOST;
        q.ifindex = ifindex;
        q.local[15] = 1;
        if (!pr_addr_find(p, PR_AF_INET6, q.local))
            (void)pr_addr_request(p, PR_RTM_NEWADDR, &q);
    }
    for (size_t i = 0; i < p->naddrs; i++) {
        pr_ifaddr a = p->addrs[i];
        if (a.ifindex != ifindex)
            continue;
        if (a.family == PR_AF_INET)
            fib_add_ifaddr(p, &a);
        else
            addrconf_prefix_route(p, &a, 1);
    }
    carrier_ctx c = {ifindex, pr_link_carrier(p, l)};
    pr_routes_edit(p, PR_AF_INET, nh_sync_up, &c);
    pr_routes_edit(p, PR_AF_INET6, nh_sync_up, &c);
}

int pr_link_set_up(pr_policy *p, uint32_t ifindex, int up)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_link *l = pr_link_by_index(p, ifindex);
    if (!l)
        return pr_fail(p, PR_ENODEV, "");
    pr_set_err(p, "");
    if (!!l->up == !!up)
        return 0;
    uint32_t peer = l->kind == PR_LINK_VETH ? l->peer : 0;
    bool self_before = pr_link_carrier(p, l);
    const pr_link *pl = peer ? pr_link_by_index_c(p, peer) : NULL;
    bool peer_before = pl && pr_link_carrier(p, pl);
    l->up = up ? 1 : 0;
    if (up)
        pr_sync_link_up(p, ifindex);
    else
        pr_sync_link_down(p, ifindex);
    pr_sync_carrier(p, ifindex);
    if (peer)
        pr_sync_carrier(p, peer);
    /* the device that came up second gets its ff00::/8 first, then its peer */
    l = pr_link_by_index(p, ifindex);
    if (l && pr_link_carrier(p, l) && !self_before)
        addrconf_carrier_on(p, l);
    pl = peer ? pr_link_by_index_c(p, peer) : NULL;
    if (pl && pr_link_carrier(p, pl) && !peer_before)
        addrconf_carrier_on(p, pl);
    return 0;
}

int pr_link_set_carrier(pr_policy *p, uint32_t ifindex, int carrier)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_link *l = pr_link_by_index(p, ifindex);
    if (!l)
        return pr_fail(p, PR_ENODEV, "");
    bool before = pr_link_carrier(p, l);
    l->carrier_forced_off = carrier ? 0 : 1;
    pr_sync_carrier(p, ifindex);
    if (pr_link_carrier(p, l) && !before)
        addrconf_carrier_on(p, l);
    return 0;
}

/* ----------------------------------------------------------- kernel build */

int pr_policy_set_kernel_features(pr_policy *p, uint32_t features)
{
    pr_policy_touch(p);
    if (features & ~(uint32_t)PR_KF_ALL)
        return pr_fail(p, PR_EINVAL, "unknown kernel feature");
    pr_set_err(p, "");
    p->kernel_features = features;
    return 0;
}

uint32_t pr_policy_kernel_features(const pr_policy *p) { return p->kernel_features; }

/* ---------------------------------------------------------------- sysctls */

int pr_conf_forwarding(const pr_policy *p, const pr_link *l) { (void)p; return l->conf.forwarding; }
int pr_conf_route_localnet(const pr_policy *p, const pr_link *l)
{
    return p->conf_all.route_localnet || l->conf.route_localnet;
}
int pr_conf_rp_filter(const pr_policy *p, const pr_link *l)
{
    return p->conf_all.rp_filter > l->conf.rp_filter ? p->conf_all.rp_filter : l->conf.rp_filter;
}
int pr_conf_accept_local(const pr_policy *p, const pr_link *l)
{
    return p->conf_all.accept_local || l->conf.accept_local;
}
int pr_conf_ignore_linkdown(const pr_policy *p, const pr_link *l, uint8_t family)
{
    if (family == PR_AF_INET)
        return p->conf_all.ignore_linkdown || l->conf.ignore_linkdown;
    return p->conf_all.v6_ignore_linkdown || l->conf.v6_ignore_linkdown;
}

typedef struct {
    const char *name;
    size_t off;
    int64_t min, max;
} conf_key;

#define CONF(n, f, lo, hi) {n, offsetof(pr_devconf, f), lo, hi}
static const conf_key v4_keys[] = {
    CONF("forwarding", forwarding, 0, 1),
    CONF("route_localnet", route_localnet, 0, 1),
    CONF("rp_filter", rp_filter, 0, 2),
    CONF("accept_local", accept_local, 0, 1),
    CONF("ignore_routes_with_linkdown", ignore_linkdown, 0, 1),
    CONF("src_valid_mark", src_valid_mark, 0, 1),
    CONF("promote_secondaries", promote_secondaries, 0, 1),
};
static const conf_key v6_keys[] = {
    CONF("forwarding", v6_forwarding, 0, 2),
    CONF("ignore_routes_with_linkdown", v6_ignore_linkdown, 0, 1),
    CONF("disable_ipv6", v6_disable, 0, 1),
};
#undef CONF

static int32_t *conf_field(pr_devconf *c, const conf_key *k) { return (int32_t *)(void *)((char *)c + k->off); }

static int set_forwarding_all(pr_policy *p, int v6, int32_t v)
{
    if (v6) {
        p->conf_all.v6_forwarding = v;
        p->conf_default.v6_forwarding = v;
        for (size_t i = 0; i < p->nlinks; i++)
            p->links[i].conf.v6_forwarding = v;
    } else {
        p->conf_all.forwarding = v;
        p->conf_default.forwarding = v;
        for (size_t i = 0; i < p->nlinks; i++)
            p->links[i].conf.forwarding = v;
    }
    return 0;
}

static int sysctl_access(pr_policy *p, const char *key, int64_t *value, int set)
{
    const char *rest;
    int v6;
    if (strcmp(key, "net.ipv4.ip_forward") == 0) {
        if (set) {
            if (*value < 0 || *value > 1)
                return -PR_EINVAL;
            return set_forwarding_all(p, 0, (int32_t)*value);
        }
        *value = p->conf_all.forwarding;
        return 0;
    }
    if (strcmp(key, "net.ipv4.ip_nonlocal_bind") == 0) {
        if (set)
            p->ip_nonlocal_bind = (int32_t)*value;
        else
            *value = p->ip_nonlocal_bind;
        return 0;
    }
    if (strncmp(key, "net.ipv4.conf.", 14) == 0) {
        rest = key + 14;
        v6 = 0;
    } else if (strncmp(key, "net.ipv6.conf.", 14) == 0) {
        rest = key + 14;
        v6 = 1;
    } else {
        return -PR_ENOENT;
    }
    const char *dot = strrchr(rest, '.');
    if (!dot || dot == rest || (size_t)(dot - rest) >= PR_IFNAMSIZ)
        return -PR_ENOENT;
    char dev[PR_IFNAMSIZ];
    memcpy(dev, rest, (size_t)(dot - rest));
    dev[dot - rest] = 0;
    const char *field = dot + 1;
    const conf_key *keys = v6 ? v6_keys : v4_keys;
    size_t nkeys = v6 ? sizeof(v6_keys) / sizeof(v6_keys[0]) : sizeof(v4_keys) / sizeof(v4_keys[0]);
    const conf_key *k = NULL;
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, field) == 0)
            k = &keys[i];
    if (!k)
        return -PR_ENOENT;
    pr_devconf *c;
    bool all = strcmp(dev, "all") == 0;
    if (all)
        c = &p->conf_all;
    else if (strcmp(dev, "default") == 0)
        c = &p->conf_default;
    else {
        pr_link *l = NULL;
        for (size_t i = 0; i < p->nlinks; i++)
            if (strcmp(p->links[i].name, dev) == 0)
                l = &p->links[i];
        if (!l)
            return -PR_ENOENT;
        c = &l->conf;
    }
    if (!set) {
        *value = *conf_field(c, k);
        return 0;
    }
    if (*value < k->min || *value > k->max)
        return -PR_EINVAL;
    if (all && strcmp(field, "forwarding") == 0)
        return set_forwarding_all(p, v6, (int32_t)*value);
    *conf_field(c, k) = (int32_t)*value;
    return 0;
}

int pr_sysctl_set(pr_policy *p, const char *key, int64_t value)
{
    pr_policy_touch(p);
    /* these edit routes/rules in place: nothing may be shared with a snapshot */
    if (pr_policy_own(p) < 0)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    pr_set_err(p, "");
    int rc = sysctl_access(p, key, &value, 1);
    if (rc == 0 && strncmp(key, "net.ipv6.conf.", 14) == 0)
        addrconf_sync_anycast(p);
    return rc;
}

int pr_sysctl_get(const pr_policy *p, const char *key, int64_t *value)
{
    return sysctl_access((pr_policy *)(uintptr_t)p, key, value, 0);
}
