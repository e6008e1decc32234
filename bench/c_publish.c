/* c_publish.c - cost of publishing the next immutable snapshot after adding
 * one tenant to an N-tenant policy (C core only, thread CPU time, medians).
 *
 *   cmake -S . -B build/c && cmake --build build/c --target bench_publish
 *   build/c/bench_publish [tenants=10000] [main_routes=0] [runs=200]
 *
 * A tenant is `ip rule add from 172.16.x.y lookup T priority P` plus
 * `ip route add default via 10.0.k.254 dev vk table T` (k = T % 4).
 * main_routes /24s in main make one big table that gets compiled (lpm4).
 *
 * Measured per run, after adding one more tenant:
 *   clone    the previous publication: pr_policy_clone + pr_policy_compile
 *   edit     the two requests on the writer (they copy what snapshots share)
 *   snapshot pr_policy_snapshot + pr_policy_compile (the new publication)
 *   free     dropping the previous snapshot */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "polroute.h"

static double cpu_us(void)
{
    return bench_clock_s(CLOCK_THREAD_CPUTIME_ID) * 1e6;
}

static int add_tenant(pr_policy *p, uint32_t i)
{
    uint32_t table = 1000 + i;
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = table;
    q.priority = 1000 + i;
    q.present = (1u << PR_FRA_PRIORITY) | (1u << PR_FRA_SRC) | (1u << PR_FRA_TABLE);
    q.src_len = 32;
    bench_put4(q.src, 0xAC100000u + i);
    int rc = pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &q);
    if (rc < 0)
        return rc;
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = PR_RTN_UNICAST;
    r.table = table;
    r.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_GATEWAY) | (1u << PR_RTA_TABLE);
    r.oif = 2 + 2 * (table % 4);
    r.gw_family = PR_AF_INET;
    bench_put4(r.gw, 0x0A0000FEu | ((table % 4) << 8));
    return pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    uint32_t tenants = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 10000;
    uint32_t main_routes = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    int runs = argc > 3 ? atoi(argv[3]) : 200;
    if (runs < 1)
        runs = 1;
    pr_policy *p = pr_policy_new();
    pr_link_set_up(p, 1, 1);
    for (uint32_t k = 0; k < 4; k++) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "v%u", k);
        snprintf(b, sizeof(b), "p%u", k);
        int ifx = pr_link_add_veth(p, a, b);   /* peer first: v_k = 3 + 2k */
        pr_link_set_up(p, (uint32_t)ifx, 1);
        pr_link_set_up(p, (uint32_t)ifx - 1, 1);
        pr_addr_req ar;
        memset(&ar, 0, sizeof(ar));
        ar.family = PR_AF_INET;
        ar.prefixlen = 24;
        ar.ifindex = (uint32_t)ifx - 1;   /* the gateways' device: 2 + 2k */
        bench_put4(ar.local, 0x0A000001u | (k << 8));
        pr_addr_request(p, PR_RTM_NEWADDR, &ar);
    }
    for (uint32_t i = 0; i < main_routes; i++) {
        pr_route_req r;
        memset(&r, 0, sizeof(r));
        r.family = PR_AF_INET;
        r.protocol = 3;
        r.type = PR_RTN_UNICAST;
        r.table = 254;
        r.dst_len = 24;
        bench_put4(r.dst, 0x14000000u + (i << 8));
        r.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_GATEWAY);
        r.oif = 2;
        r.gw_family = PR_AF_INET;
        bench_put4(r.gw, 0x0A0000FEu);
        pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
    }
    for (uint32_t i = 0; i < tenants; i++)
        if (add_tenant(p, i) < 0) {
            fprintf(stderr, "tenant %u: %s\n", i, pr_errmsg(p));
            return 1;
        }
    double *t_clone = calloc((size_t)runs, sizeof(double)), *t_edit = calloc((size_t)runs, sizeof(double));
    double *t_snap = calloc((size_t)runs, sizeof(double)), *t_free = calloc((size_t)runs, sizeof(double));
    double *t_total = calloc((size_t)runs, sizeof(double));
    pr_policy *prev = pr_policy_snapshot(p);
    pr_policy_compile(prev, 64);
    int nclone = runs < 20 ? runs : 20;   /* the old way is slow: 20 samples are plenty */
    for (int r = 0; r < nclone; r++) {
        double t0 = cpu_us();
        pr_policy *c = pr_policy_clone(p);
        pr_policy_compile(c, 64);
        double t1 = cpu_us();
        pr_policy_free(c);
        t_clone[r] = t1 - t0;
    }
    for (int r = 0; r < runs; r++) {
        double t0 = cpu_us();
        if (add_tenant(p, tenants + (uint32_t)r) < 0) {
            fprintf(stderr, "add: %s\n", pr_errmsg(p));
            return 1;
        }
        double t1 = cpu_us();
        pr_policy *s = pr_policy_snapshot(p);
        pr_policy_compile(s, 64);
        double t2 = cpu_us();
        pr_policy_free(prev);
        double t3 = cpu_us();
        prev = s;
        t_edit[r] = t1 - t0;
        t_snap[r] = t2 - t1;
        t_free[r] = t3 - t2;
        t_total[r] = t3 - t0;
    }
    printf("tenants=%u main_routes=%u runs=%d (thread CPU time, median, microseconds)\n", tenants, main_routes, runs);
    printf("  before: full copy (pr_policy_clone + compile)      %10.1f\n", median(t_clone, nclone));
    printf("  after:  add one tenant (rule + route) on writer    %10.1f\n", median(t_edit, runs));
    printf("          publish (pr_policy_snapshot + compile)     %10.1f\n", median(t_snap, runs));
    printf("          free the previous snapshot                 %10.1f\n", median(t_free, runs));
    printf("          edit + publish + free, per tenant          %10.1f\n", median(t_total, runs));
    pr_policy_free(prev);
    pr_policy_free(p);
    free(t_clone);
    free(t_edit);
    free(t_snap);
    free(t_free);
    free(t_total);
    return 0;
}
