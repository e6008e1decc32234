/* test_fast4_alloc.c - every allocation of pr_fast4_build fails in turn.
 *
 * On a realistic policy (tenants with `from` rules and their own tables,
 * `to` rules, an inverted rule, local routes; and the same links without
 * custom rules, where fast4 takes the merged walk) the build is run with the
 * core's allocation hook (csrc/alloc.h) armed at N = 1, 2, ...: each build
 * whose N-th allocation fails must return -ENOMEM with *out NULL and leave
 * nothing allocated, and the first N past the build's last allocation must
 * give an evaluator whose answers equal the exact path's (pr_lookup_bulk_v4).
 *
 * Leaks are looked for after every failed build with LeakSanitizer (the
 * sanitizer build, as CI runs ctest); a canary leak first proves it is on.
 * Usage: test_fast4_alloc [seed]   (the flows' seed; the policies are fixed) */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "polroute.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
/* on even where LSan is not on by default (ASAN_OPTIONS still overrides it) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=1"; }
#endif

#define ENOMEM_ 12

static void put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

/* A route in table; oif 0 with a non-unicast type: no nexthop. */
static void route(pr_policy *p, uint32_t table, uint8_t type, uint32_t dst, uint8_t len, uint32_t oif,
                  uint32_t gw)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = type;
    r.table = table;
    r.dst_len = len;
    put4(r.dst, dst);
    r.present = 1u << PR_RTA_TABLE;
    if (type == PR_RTN_LOCAL)
        r.scope = 254;
    if (oif) {
        r.present |= 1u << PR_RTA_OIF;
        r.oif = oif;
    }
    if (gw) {
        r.present |= 1u << PR_RTA_GATEWAY;
        r.gw_family = PR_AF_INET;
        put4(r.gw, gw);
    } else if (type == PR_RTN_UNICAST) {
        r.scope = 253;
    }
    int rc = pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
    CHECK_MSG(rc == 0, "route table %u %08x/%u: %d %s", table, dst, len, rc, pr_errmsg(p));
}

static void rule(pr_policy *p, uint32_t prio, uint32_t src, uint8_t src_len, uint32_t dst, uint8_t dst_len,
                 uint32_t table, uint32_t flags)
{
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = table;
    q.priority = prio;
    q.flags = flags;
    q.present = (1u << PR_FRA_PRIORITY) | (1u << PR_FRA_TABLE);
    if (src_len) {
        q.src_len = src_len;
        put4(q.src, src);
        q.present |= 1u << PR_FRA_SRC;
    }
    if (dst_len) {
        q.dst_len = dst_len;
        put4(q.dst, dst);
        q.present |= 1u << PR_FRA_DST;
    }
    int rc = pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE, &q);
    CHECK_MSG(rc == 0, "rule prio %u: %d %s", prio, rc, pr_errmsg(p));
}

static void addr(pr_policy *p, uint32_t ifindex, uint32_t a, uint8_t len)
{
    pr_addr_req ar;
    memset(&ar, 0, sizeof(ar));
    ar.family = PR_AF_INET;
    ar.prefixlen = len;
    ar.ifindex = ifindex;
    put4(ar.local, a);
    int rc = pr_addr_request(p, PR_RTM_NEWADDR, &ar);
    CHECK_MSG(rc == 0, "address %08x/%u: %d %s", a, len, rc, pr_errmsg(p));
}

#define TENANTS 24u
#define VETH(k) (3u + 2u * (k))            /* v_k; its peer is VETH(k) - 1 */
#define VETH_GW(k) (0x0AC800FEu | ((uint32_t)(k) << 8))   /* 10.200.k.254 */
#define TENANT(i) (0xAC100001u + (i))       /* 172.16.0.1 + i */

/* Links, addresses, main (30 /24s and a default) and an explicit local
 * route; with tenants, every custom rule and table too. */
static pr_policy *make_policy(int tenants)
{
    pr_policy *p = pr_policy_new();
    if (!p)
        return NULL;
    pr_link_set_up(p, 1, 1);
    for (uint32_t k = 0; k < 4; k++) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "v%u", k);
        snprintf(b, sizeof(b), "v%up", k);
        int ifx = pr_link_add_veth(p, a, b);
        CHECK_EQ(ifx, VETH(k));
        pr_link_set_up(p, VETH(k), 1);
        pr_link_set_up(p, VETH(k) - 1, 1);
        addr(p, VETH(k), 0x0AC80001u | (k << 8), 24);   /* 10.200.k.1/24 */
    }
    for (uint32_t i = 0; i < TENANTS; i++)
        addr(p, VETH(i % 4), TENANT(i), 32);
    for (uint32_t j = 0; j < 30; j++)
        route(p, 254, PR_RTN_UNICAST, 0x14000000u + (j << 8), 24, VETH(j % 4), VETH_GW(j % 4));
    route(p, 254, PR_RTN_UNICAST, 0, 0, VETH(0), VETH_GW(0));
    route(p, 255, PR_RTN_LOCAL, 0xC6336407u, 32, 1, 0);   /* local 198.51.100.7 dev lo table local */
    if (!tenants) {
        route(p, 253, PR_RTN_UNICAST, 0x0A630000u, 16, VETH(1), 0);   /* table default */
        return p;
    }
    for (uint32_t i = 0; i < TENANTS; i++) {
        uint32_t t = 1000 + i, k = i % 4;
        route(p, t, PR_RTN_UNICAST, 0, 0, VETH(k), VETH_GW(k));
        if (i % 5 == 0)
            route(p, t, PR_RTN_UNREACHABLE, 0x0A320000u, 16, 0, 0);   /* 10.50/16 */
        if (i % 7 == 0)
            route(p, t, PR_RTN_THROW, 0x0A3C0000u, 16, 0, 0);         /* 10.60/16 */
        rule(p, 100 + i, TENANT(i), 32, 0, 0, t, 0);
    }
    /* `to` rules ahead of the tenants': a 13-prefix table (compiled to an
     * lpm4) and a 3-prefix one (a short list) */
    for (uint32_t j = 0; j < 12; j++)
        route(p, 200, PR_RTN_UNICAST, 0x0A630000u + (j << 8), 24, VETH(j % 4), VETH_GW(j % 4));
    route(p, 200, PR_RTN_PROHIBIT, 0x0A630000u, 16, 0, 0);
    rule(p, 50, 0, 0, 0x0A630000u, 16, 200, 0);                       /* to 10.99/16 */
    route(p, 201, PR_RTN_UNICAST, 0xC0000200u, 24, VETH(2), VETH_GW(2));
    route(p, 201, PR_RTN_UNICAST, 0xC0000280u, 25, VETH(3), 0);
    route(p, 201, PR_RTN_BLACKHOLE, 0xC0000200u, 28, 0, 0);
    rule(p, 60, 0, 0, 0xC0000200u, 24, 201, 0);                       /* to 192.0.2/24 */
    /* behind the tenants: a /24 of them, and an inverted rule (the exact path's) */
    route(p, 202, PR_RTN_UNICAST, 0, 0, VETH(1), VETH_GW(1));
    rule(p, 900, 0xAC100000u, 24, 0, 0, 202, 0);
    rule(p, 30000, 0xAC100005u, 32, 0, 0, 202, PR_FIB_RULE_INVERT);
    return p;
}

#define NFLOWS 6000u

static uint32_t pick_dst(void)
{
    switch (below(10)) {
    case 0: case 1: case 2: return 0x14000000u + (below(32) << 8) + below(256);   /* main's /24s */
    case 3: return 0x0A630000u + (below(16) << 8) + below(256);                   /* 10.99/16 */
    case 4: return 0xC0000200u + below(256);                                      /* 192.0.2/24 */
    case 5: return (below(2) ? 0x0A320000u : 0x0A3C0000u) + below(65536);         /* 10.50, 10.60 */
    case 6: return below(2) ? TENANT(below(TENANTS + 2)) : 0x0AC80001u | (below(4) << 8);
    case 7: {
        static const uint32_t special[] = {0, 0xFFFFFFFFu, 0xE0000001u, 0x7F000001u, 0xC6336407u, 0x0AC800FFu};
        return special[below(6)];
    }
    default: return (uint32_t)rnd();
    }
}

static uint32_t pick_src(void)
{
    switch (below(10)) {
    case 0: case 1: case 2: case 3: case 4: case 5: return TENANT(below(TENANTS + 1));
    case 6: return 0;
    case 7: return 0x0AC80001u | (below(4) << 8);   /* reaches the inverted rule: the exact path */
    case 8: return below(2) ? 0x7F000001u : 0xC6336407u;
    default: return (uint32_t)rnd();
    }
}

typedef struct {
    int32_t error[NFLOWS];
    uint8_t type[NFLOWS];
    uint32_t cols[6][NFLOWS];
} answers;

/* fast4's answers equal the exact path's on NFLOWS seeded flows. */
static void compare_exact(const pr_policy *p, const pr_fast4 *f, const char *name)
{
    static uint32_t dst[NFLOWS], src[NFLOWS];
    static answers a, b;
    for (size_t i = 0; i < NFLOWS; i++) {
        dst[i] = pick_dst();
        src[i] = pick_src();
    }
    memset(&a, 0xAA, sizeof(a));
    memset(&b, 0x55, sizeof(b));
    pr_bulk_in in;
    memset(&in, 0, sizeof(in));
    in.dst = dst;
    in.src = src;
    pr_bulk_out oa = {a.error, a.type, a.cols[0], a.cols[1], a.cols[2], a.cols[3], a.cols[4], a.cols[5]};
    pr_bulk_out ob = {b.error, b.type, b.cols[0], b.cols[1], b.cols[2], b.cols[3], b.cols[4], b.cols[5]};
    size_t slow = NFLOWS;
    CHECK_EQ(pr_fast4_lookup_bulk(f, NFLOWS, &in, &oa, &slow), 0);
    CHECK_EQ(pr_lookup_bulk_v4(p, NFLOWS, &in, &ob), 0);
    size_t diff = 0;
    for (size_t i = 0; i < NFLOWS; i++) {
        int same = a.error[i] == b.error[i] && a.type[i] == b.type[i];
        for (int c = 0; c < 6; c++)
            same = same && a.cols[c][i] == b.cols[c][i];
        if (!same && diff++ < 5)
            fprintf(stderr, "%s: flow %zu %08x -> %08x: fast4 error %d table %u, exact error %d table %u\n",
                    name, i, src[i], dst[i], a.error[i], a.cols[0][i], b.error[i], b.cols[0][i]);
    }
    CHECK_EQ(diff, 0);
    printf("%s: fast4 answered %zu of %u flows itself, the exact path %zu\n", name, NFLOWS - slow, NFLOWS,
           slow);
    CHECK(NFLOWS - slow >= NFLOWS / 3);   /* the comparison is about fast4, not its fallback */
}

/* Once a leak is found, every later check would report it again. */
static int leak_seen;

/* nonzero when some block is unreachable (leaked) now */
static int leaked(void)
{
#ifdef HAVE_LSAN
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

static max_align_t not_set;   /* aligned for any type: a valid non-NULL pr_fast4 pointer value */

/* Fails every allocation of building p's evaluator in turn. */
static void sweep_allocations(const pr_policy *p, const char *name)
{
    pr_fast4 *f = NULL;
    pr_alloc_fail_nth(UINT64_MAX);   /* counts, never fails */
    int rc = pr_fast4_build(p, &f);
    uint64_t total = pr_alloc_calls();
    pr_alloc_fail_nth(0);
    CHECK_EQ(rc, 0);
    pr_fast4_free(f);
    printf("%s: a build makes %llu allocations\n", name, (unsigned long long)total);
    CHECK(total >= 20);
    uint64_t n = 1;
    for (;; n++) {
        f = (pr_fast4 *)(void *)&not_set;   /* a failed build must reset it to NULL */
        pr_alloc_fail_nth(n);
        rc = pr_fast4_build(p, &f);
        int fired = pr_alloc_failed();
        pr_alloc_fail_nth(0);
        if (rc == 0 && !fired)
            break;
        CHECK_MSG(rc == -ENOMEM_ && f == NULL && fired, "%s: allocation %llu failed: rc %d, out %p, fired %d",
                  name, (unsigned long long)n, rc, (void *)f, fired);
        if (rc == 0)
            pr_fast4_free(f);   /* an allocation failure went unnoticed */
        if (!leak_seen) {
            leak_seen = leaked();
            CHECK_MSG(!leak_seen, "%s: the build that failed at allocation %llu leaked (report above)", name,
                      (unsigned long long)n);
        }
        if (n > total + 10)
            break;
    }
    CHECK_EQ(n, total + 1);   /* each of the build's allocations failed once, then it built */
    if (rc == 0 && f) {
        compare_exact(p, f, name);
        pr_fast4_free(f);
    }
}

#ifdef HAVE_LSAN
/* The leak checks above are only worth something if LeakSanitizer is on:
 * a block whose only pointer is hidden must be reported. */
static uintptr_t canary;
__attribute__((noinline)) static void leak_canary(void) { canary = (uintptr_t)malloc(64) ^ ~(uintptr_t)0; }

static void check_lsan_is_on(void)
{
    printf("test_fast4_alloc: a leak canary (one 64-byte block) is reported next, on purpose\n");
    fflush(stdout);
    leak_canary();
    int found = __lsan_do_recoverable_leak_check();
    free((void *)(canary ^ ~(uintptr_t)0));
    CHECK_MSG(found, "LeakSanitizer is off (ASAN_OPTIONS=detect_leaks=0?): the leak checks would see nothing");
}
#endif

int main(int argc, char **argv)
{
    tu_seed("test_fast4_alloc", argc, argv, 20261127u);
#ifdef HAVE_LSAN
    check_lsan_is_on();
#else
    printf("test_fast4_alloc: not a sanitizer build, failed builds are not checked for leaks\n");
#endif
    static const char *names[2] = {"merged", "tenants"};
    for (int t = 0; t < 2; t++) {
        pr_policy *p = make_policy(t);
        pr_policy *snap = p ? pr_policy_snapshot(p) : NULL;   /* what fast4 is built from */
        CHECK(snap != NULL);
        if (snap)
            sweep_allocations(snap, names[t]);
        pr_policy_free(snap);
        pr_policy_free(p);
    }
    return tu_summary("test_fast4_alloc");
}
