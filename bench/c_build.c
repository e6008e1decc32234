/* c_build.c - model build time against size (provisioning issue, item 8):
 * N tenants built through the public request API, timed per size, with the
 * time ratio between consecutive sizes (linear: 10x objects ~ 10x time).
 *
 *   cmake -S . -B build/c -G Ninja && cmake --build build/c --target bench_build
 *   build/c/bench_build [sizes=10000,50000,100000 ...] [-o asc|desc|shuffle] [-r runs]
 *
 * Tenant i (0 <= i < N):
 *   route add default via 10.10.0.1 dev up0 table 1000+i      (CREATE|EXCL)
 *   rule add from 10.X.Y.Z lookup 1000+i priority P            (CREATE|EXCL, as `ip rule add`)
 * with 10.X.Y.Z = 10.16.0.0 + i and P = 1 + i * 30000 / N (spread below
 * main's 32766; shared by two to four tenants once N > 30000), plus the link
 * up0 (10.10.0.2/16) and lo.  Order: tenants in ascending priority (the order
 * of a batch file and of a kernel dump, the default), descending, or shuffled
 * (seeded).  Time: process CPU time of building and freeing one policy,
 * median of the runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "polroute.h"

static void die(pr_policy *p, const char *what, uint32_t i)
{
    fprintf(stderr, "%s %u: %s\n", what, i, pr_errmsg(p));
    exit(1);
}

static pr_policy *build(uint32_t n, const uint32_t *order)
{
    pr_policy *p = pr_policy_new();
    if (!p)
        die(p, "policy", 0);
    int up0 = pr_link_add(p, "up0", PR_LINK_OTHER, 0);
    if (up0 < 0 || pr_link_set_up(p, 1, 1) < 0 || pr_link_set_up(p, (uint32_t)up0, 1) < 0)
        die(p, "link", 0);
    pr_addr_req ar;
    memset(&ar, 0, sizeof(ar));
    ar.family = PR_AF_INET;
    ar.prefixlen = 16;
    ar.ifindex = (uint32_t)up0;
    bench_put4(ar.local, 0x0A0A0002u);
    if (pr_addr_request(p, PR_RTM_NEWADDR, &ar) < 0)
        die(p, "addr", 0);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        pr_route_req r;
        memset(&r, 0, sizeof(r));
        r.family = PR_AF_INET;
        r.protocol = 3;
        r.type = PR_RTN_UNICAST;
        r.table = 1000 + i;
        r.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_GATEWAY) | (1u << PR_RTA_TABLE);
        r.oif = (uint32_t)up0;
        r.gw_family = PR_AF_INET;
        bench_put4(r.gw, 0x0A0A0001u);
        if (pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r) < 0)
            die(p, "route", i);
        pr_rule_req q;
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET;
        q.action = PR_FR_ACT_TO_TBL;
        q.table = 1000 + i;
        q.priority = 1 + (uint32_t)((uint64_t)i * 30000 / n);
        q.present = (1u << PR_FRA_PRIORITY) | (1u << PR_FRA_SRC) | (1u << PR_FRA_TABLE);
        q.src_len = 32;
        bench_put4(q.src, 0x0A100000u + i);
        if (pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &q) < 0)
            die(p, "rule", i);
    }
    return p;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint32_t sizes[16];
    int nsizes = 0, runs = 3;
    const char *mode = "asc";
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-o") && a + 1 < argc)
            mode = argv[++a];
        else if (!strcmp(argv[a], "-r") && a + 1 < argc)
            runs = atoi(argv[++a]);
        else if (nsizes < 16)
            sizes[nsizes++] = (uint32_t)strtoul(argv[a], NULL, 10);
    }
    if (!nsizes) {
        sizes[0] = 10000;
        sizes[1] = 50000;
        sizes[2] = 100000;
        nsizes = 3;
    }
    if (runs < 1 || runs > 99 || (strcmp(mode, "asc") && strcmp(mode, "desc") && strcmp(mode, "shuffle")))
        return 2;
    printf("# tenants (route + rule + table each), order %s, CPU s median of %d\n", mode, runs);
    printf("%10s %10s %12s %10s\n", "tenants", "seconds", "us/tenant", "ratio");
    double prev = 0;
    uint32_t prevn = 0;
    for (int s = 0; s < nsizes; s++) {
        uint32_t n = sizes[s];
        if (n == 0 || n > 4000000)
            return 2;
        uint32_t *order = malloc((size_t)n * sizeof(uint32_t));
        if (!order)
            return 1;
        for (uint32_t i = 0; i < n; i++)
            order[i] = !strcmp(mode, "desc") ? n - 1 - i : i;
        if (!strcmp(mode, "shuffle"))
            for (uint32_t i = n - 1; i > 0; i--) {
                uint32_t j = bench_rnd() % (i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        double t[99];
        for (int r = 0; r < runs; r++) {
            double c = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
            pr_policy *p = build(n, order);
            if (pr_rule_count(p, PR_AF_INET) != (size_t)n + 3)
                die(p, "count", n);
            pr_policy_free(p);
            t[r] = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c;
        }
        free(order);
        qsort(t, (size_t)runs, sizeof(double), cmp_d);
        double med = t[runs / 2];
        if (prev > 0)
            printf("%10u %10.3f %12.2f %5.1fx/%.1fx\n", n, med, med / n * 1e6, med / prev, (double)n / prevn);
        else
            printf("%10u %10.3f %12.2f %10s\n", n, med, med / n * 1e6, "-");
        prev = med;
        prevn = n;
    }
    return 0;
}
