/* c_fast4.c - the specialised IPv4 evaluator (fast4.c) in C alone: flows/s
 * on the tenant policy, and the wall-time speed-up of T threads sharing one
 * evaluator (each thread evaluates the whole flow array into its own output).
 *
 *   cmake -S . -B build/c && cmake --build build/c --target bench_fast4
 *   build/c/bench_fast4 [tenants=10000] [flows=1000000] [runs=7] [threads=2] [base=0]
 *
 * With base > 0 a second policy of `base` tenants is built and the two are
 * timed alternately (runs rounds), so that both see the same machine: the
 * per-flow time ratio tenants/base is printed (the target: 100k tenants within 1.5x of 1k).
 *
 * The policy is bench/workloads.py's: tenant i owns 172.16.0.0+i/32 on one of
 * 4 veths, table 1000+i with a default route, `from <addr>/32 lookup 1000+i`
 * (priorities spread below main's 32766); main has a default route and 999
 * /24s.  Flows: 90% from a random tenant, 10% without a source, destinations
 * uniform in 1.0.0.0-223.255.255.255 outside 172.16/12.  Times: thread CPU
 * time per run (median [best]); threads: wall time of T threads vs one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "polroute.h"

static int route(pr_policy *p, uint32_t table, uint32_t dst, uint8_t len, uint32_t k)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = PR_RTN_UNICAST;
    r.table = table;
    r.dst_len = len;
    bench_put4(r.dst, dst);
    r.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_GATEWAY) | (1u << PR_RTA_TABLE);
    r.oif = 3 + 2 * k;
    r.gw_family = PR_AF_INET;
    bench_put4(r.gw, 0x0AC800FEu | (k << 8));
    return pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

static pr_policy *tenants_policy(uint32_t n)
{
    pr_policy *p = pr_policy_new();
    pr_link_set_up(p, 1, 1);
    for (uint32_t k = 0; k < 4; k++) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "v%u", k);
        snprintf(b, sizeof(b), "v%up", k);
        int ifx = pr_link_add_veth(p, a, b);   /* v_k = 3 + 2k, its peer 2 + 2k */
        pr_link_set_up(p, (uint32_t)ifx, 1);
        pr_link_set_up(p, (uint32_t)ifx - 1, 1);
        pr_addr_req ar;
        memset(&ar, 0, sizeof(ar));
        ar.family = PR_AF_INET;
        ar.prefixlen = 24;
        ar.ifindex = 3 + 2 * k;
        bench_put4(ar.local, 0x0AC80001u | (k << 8));
        pr_addr_request(p, PR_RTM_NEWADDR, &ar);
    }
    for (uint32_t i = 0; i < n; i++) {
        pr_addr_req ar;
        memset(&ar, 0, sizeof(ar));
        ar.family = PR_AF_INET;
        ar.prefixlen = 32;
        ar.ifindex = 3 + 2 * (i % 4);
        bench_put4(ar.local, 0xAC100000u + i);
        pr_addr_request(p, PR_RTM_NEWADDR, &ar);
    }
    for (uint32_t j = 0; j < 999; j++)
        route(p, 254, 0x14000000u + (j << 8), 24, j % 4);
    route(p, 254, 0, 0, 0);
    for (uint32_t i = 0; i < n; i++)
        route(p, 1000 + i, 0, 0, i % 4);
    for (uint32_t i = 0; i < n; i++) {
        pr_rule_req q;
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET;
        q.action = PR_FR_ACT_TO_TBL;
        q.table = 1000 + i;
        q.priority = n <= 32000 ? 1 + i : 1 + (uint32_t)((uint64_t)i * 32000 / n);
        q.present = (1u << PR_FRA_PRIORITY) | (1u << PR_FRA_SRC) | (1u << PR_FRA_TABLE);
        q.src_len = 32;
        bench_put4(q.src, 0xAC100000u + i);
        if (pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE, &q) < 0) {
            fprintf(stderr, "rule %u: %s\n", i, pr_errmsg(p));
            exit(1);
        }
    }
    return p;
}

typedef struct {
    const pr_fast4 *f;
    size_t n;
    int runs;
    const pr_bulk_in *in;
    pr_bulk_out out;
} job;

static pr_bulk_out new_out(size_t n)
{
    pr_bulk_out o = {malloc(n * 4), malloc(n), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 4),
                     malloc(n * 4), malloc(n * 4)};
    return o;
}

static void free_out(pr_bulk_out *o)
{
    free(o->error);
    free(o->type);
    free(o->table);
    free(o->rule_priority);
    free(o->oif);
    free(o->gateway);
    free(o->prefsrc);
    free(o->flags);
}

static void *work(void *arg)
{
    job *j = arg;
    for (int r = 0; r < j->runs; r++)
        pr_fast4_lookup_bulk(j->f, j->n, j->in, &j->out, NULL);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint32_t tenants = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 10000;
    size_t n = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1000000;
    int runs = argc > 3 ? atoi(argv[3]) : 7;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    if (runs < 1 || threads < 1 || threads > 64 || n == 0 || tenants == 0)
        return 2;
    double t0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
    pr_policy *w = tenants_policy(tenants);
    pr_policy *snap = pr_policy_snapshot(w);
    pr_policy_compile(snap, 256);
    double t1 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
    pr_fast4 *f = NULL;
    if (pr_fast4_build(snap, &f) != 0)
        return 1;
    double t2 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
    pr_fast4_stats st;
    pr_fast4_get_stats(f, &st);

    uint32_t *dst = malloc(n * 4), *src = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        uint32_t d;
        do
            d = 0x01000000u + bench_rnd() % (0xE0000000u - 0x01000000u);
        while ((d & 0xFFF00000u) == 0xAC100000u || (d >> 24) == 10 || (d >> 24) == 127);
        dst[i] = d;
        src[i] = bench_rnd() % 10 ? 0xAC100000u + bench_rnd() % tenants : 0;
    }
    pr_bulk_in in;
    memset(&in, 0, sizeof(in));
    in.dst = dst;
    in.src = src;
    job jobs[64];
    for (int k = 0; k < threads; k++)
        jobs[k] = (job){f, n, 1, &in, new_out(n)};
    size_t slow = 0;
    pr_fast4_lookup_bulk(f, n, &in, &jobs[0].out, &slow);   /* warm-up */
    double *t = calloc((size_t)runs, sizeof(double));
    for (int r = 0; r < runs; r++) {
        double c = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        pr_fast4_lookup_bulk(f, n, &in, &jobs[0].out, NULL);
        t[r] = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - c;
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_d);
    printf("tenants %u: policy %.2f s, fast4 build %.3f s CPU; %zu classes, %zu outcomes, %.1f MB; "
           "%zu of %zu rows on the exact path\n",
           tenants, t1 - t0, t2 - t1, st.classes, st.outcomes, (double)st.memory / 1e6, slow, n);
    printf("one thread: %.1f M flows/s median [%.1f best], %.1f ns/flow\n", (double)n / t[runs / 2] / 1e6,
           (double)n / t[0] / 1e6, t[runs / 2] / (double)n * 1e9);
    /* wall time: one thread alone, then `threads` threads at once (same work each) */
    double wall[2];
    for (int pass = 0; pass < 2; pass++) {
        int nt = pass ? threads : 1;
        pthread_t th[64];
        for (int k = 0; k < nt; k++)
            jobs[k].runs = runs;
        double w0 = bench_clock_s(CLOCK_MONOTONIC);
        for (int k = 0; k < nt; k++)
            pthread_create(&th[k], NULL, work, &jobs[k]);
        for (int k = 0; k < nt; k++)
            pthread_join(th[k], NULL);
        wall[pass] = bench_clock_s(CLOCK_MONOTONIC) - w0;
    }
    printf("threads: 1 -> %.1f M flows/s wall, %d -> %.1f M flows/s wall: speed-up %.2fx\n",
           (double)n * runs / wall[0] / 1e6, threads, (double)n * runs * threads / wall[1] / 1e6,
           wall[0] * threads / wall[1]);
    uint32_t base = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 0;
    if (base) {
        pr_policy *bw = tenants_policy(base);
        pr_policy *bs = pr_policy_snapshot(bw);
        pr_policy_compile(bs, 256);
        pr_fast4 *bf = NULL;
        if (pr_fast4_build(bs, &bf) != 0)
            return 1;
        uint32_t *bsrc = malloc(n * 4);
        for (size_t i = 0; i < n; i++)   /* the same flows, tenants drawn among base */
            bsrc[i] = src[i] ? 0xAC100000u + (src[i] - 0xAC100000u) % base : 0;
        pr_bulk_in bin = in;
        bin.src = bsrc;
        double *tb = calloc((size_t)runs, sizeof(double)), *tt = calloc((size_t)runs, sizeof(double));
        for (int r = 0; r < runs; r++) {
            double c = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
            pr_fast4_lookup_bulk(bf, n, &bin, &jobs[0].out, NULL);
            tb[r] = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - c;
            c = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
            pr_fast4_lookup_bulk(f, n, &in, &jobs[0].out, NULL);
            tt[r] = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - c;
        }
        qsort(tb, (size_t)runs, sizeof(double), cmp_d);
        qsort(tt, (size_t)runs, sizeof(double), cmp_d);
        printf("alternating %d rounds: %u tenants %.1f ns/flow median [%.1f best], %u tenants %.1f [%.1f]: "
               "ratio %.2fx median, %.2fx best\n",
               runs, base, tb[runs / 2] / (double)n * 1e9, tb[0] / (double)n * 1e9, tenants,
               tt[runs / 2] / (double)n * 1e9, tt[0] / (double)n * 1e9, tt[runs / 2] / tb[runs / 2], tt[0] / tb[0]);
        free(tb);
        free(tt);
        free(bsrc);
        pr_fast4_free(bf);
        pr_policy_free(bs);
        pr_policy_free(bw);
    }
    for (int k = 0; k < threads; k++)
        free_out(&jobs[k].out);
    free(t);
    free(dst);
    free(src);
    pr_fast4_free(f);
    pr_policy_free(snap);
    pr_policy_free(w);
    return 0;
}
