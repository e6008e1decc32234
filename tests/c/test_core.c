/* test_core.c - the C core through its public header only: a two-NIC policy,
 * lookups, rule/route errors, clone independence and cleanup (run under
 * ASan/LSan in CI, so a leak fails it). */
#include <stdio.h>
#include <string.h>

#include "polroute.h"
#include "testutil.h"

static void v4(uint8_t b[16], unsigned a, unsigned c, unsigned d, unsigned e)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)a;
    b[1] = (uint8_t)c;
    b[2] = (uint8_t)d;
    b[3] = (uint8_t)e;
}

static int add_addr(pr_policy *p, uint32_t ifindex, unsigned last)
{
    pr_addr_req a;
    memset(&a, 0, sizeof(a));
    a.family = PR_AF_INET;
    a.prefixlen = 24;
    a.ifindex = ifindex;
    v4(a.local, 192, 168, 16, last);
    return pr_addr_request(p, PR_RTM_NEWADDR, &a);
}

static int add_default(pr_policy *p, uint32_t table, uint32_t oif)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = PR_RTN_UNICAST;
    r.table = table;
    r.gw_family = PR_AF_INET;
    v4(r.gw, 192, 168, 16, 1);
    r.present = 1u << PR_RTA_OIF;
    r.oif = oif;
    return pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

static int add_rule(pr_policy *p, unsigned last, uint32_t table, uint32_t prio)
{
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = table;
    q.src_len = 32;
    v4(q.src, 192, 168, 16, last);
    q.priority = prio;
    q.present = (1u << PR_FRA_SRC) | (1u << PR_FRA_PRIORITY);
    return pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &q);
}

static void ask(const pr_policy *p, unsigned src_last, pr_result *res)
{
    pr_flow q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.lookup_table = 1;
    v4(q.dst, 8, 8, 8, 8);
    if (src_last) {
        q.has_src = 1;
        v4(q.src, 192, 168, 16, src_last);
    }
    pr_route_get(p, &q, res, NULL);
}

int main(void)
{
    pr_policy *p = pr_policy_new();
    CHECK(p != NULL);
    CHECK(pr_link_count(p) == 1 && pr_rule_count(p, PR_AF_INET) == 3 && pr_rule_count(p, PR_AF_INET6) == 2);
    CHECK(pr_policy_v4_merged(p) == 1);
    int eth0 = pr_link_add_veth(p, "eth0", "sw0");
    int eth1 = pr_link_add_veth(p, "eth1", "sw1");
    CHECK(eth0 > 0 && eth1 > 0);
    CHECK(pr_link_add_veth(p, "eth0", "x") == -17);   /* EEXIST */
    for (uint32_t i = 1; i <= 5; i++)
        CHECK(pr_link_set_up(p, i, 1) == 0);
    CHECK(add_addr(p, (uint32_t)eth0, 20) == 0);
    CHECK(add_addr(p, (uint32_t)eth1, 21) == 0);
    CHECK(add_default(p, 254, (uint32_t)eth0) == 0);
    CHECK(add_default(p, 254, (uint32_t)eth0) == -17);   /* EEXIST */
    CHECK(add_default(p, 2, (uint32_t)eth1) == 0);

    pr_result res;
    ask(p, 21, &res);
    CHECK(res.error == 0 && res.nh_count == 1 && res.nh[0].oif == (uint32_t)eth0 && res.rule_index == -1);

    pr_policy *before = pr_policy_clone(p);
    CHECK(before != NULL);
    CHECK(add_rule(p, 21, 2, 501) == 0);
    CHECK(add_rule(p, 21, 2, 501) == -17);
    CHECK(pr_policy_v4_merged(p) == 0 && pr_policy_v4_merged(before) == 1);
    ask(p, 21, &res);
    CHECK(res.error == 0 && res.nh[0].oif == (uint32_t)eth1 && res.table == 2 && res.rule_priority == 501);
    ask(before, 21, &res);
    CHECK(res.nh[0].oif == (uint32_t)eth0);
    ask(p, 99, &res);   /* 192.168.16.99 is not a local address */
    CHECK(res.error == 101);

    /* a trace with too little room counts what it dropped */
    pr_trace_step steps[2];
    pr_trace tr = {2, 0, 0, steps};
    pr_flow q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    v4(q.dst, 8, 8, 8, 8);
    pr_route_get(p, &q, &res, &tr);
    CHECK(tr.len == 2 && tr.dropped == 1);   /* local miss, 501 no match, main decided */

    /* bulk equals single */
    uint32_t dst[3] = {0x08080808u, 0xC0A81014u, 0x08080808u};
    uint32_t src[3] = {0xC0A81015u, 0, 0};
    uint32_t oif[3], prio[3];
    int32_t err[3];
    pr_bulk_in in;
    memset(&in, 0, sizeof(in));
    in.dst = dst;
    in.src = src;
    pr_bulk_out out;
    memset(&out, 0, sizeof(out));
    out.oif = oif;
    out.error = err;
    out.rule_priority = prio;
    CHECK(pr_lookup_bulk_v4(p, 3, &in, &out) == 0);
    CHECK(err[0] == 0 && oif[0] == (uint32_t)eth1 && prio[0] == 501);
    CHECK(err[1] == 0 && oif[1] == 1 && prio[1] == 0);       /* local: dev lo, decided by rule 0 */
    CHECK(err[2] == 0 && oif[2] == (uint32_t)eth0 && prio[2] == 32766);

    /* link down removes the routes through it from every table */
    CHECK(pr_link_set_up(p, (uint32_t)eth1, 0) == 0);
    CHECK(pr_route_dump(p, PR_AF_INET, 2) == 0);
    CHECK(pr_sysctl_set(p, "net.ipv4.conf.eth1.rp_filter", 1) == 0);
    CHECK(pr_sysctl_set(p, "net.ipv4.conf.nosuch.rp_filter", 1) == -2);

    /* generations: every request moves them (a refused one too); clones and
     * snapshots get their own; a lookup does not */
    uint64_t g0 = pr_policy_generation(p);
    pr_route_get(p, &q, &res, NULL);
    CHECK(pr_policy_generation(p) == g0);
    CHECK(pr_sysctl_set(p, "net.ipv4.conf.nosuch.rp_filter", 1) == -2);
    uint64_t g1 = pr_policy_generation(p);
    CHECK(g1 != g0);
    pr_policy *c = pr_policy_clone(p), *s = pr_policy_snapshot(p);
    CHECK(c && s && pr_policy_generation(c) != g1 && pr_policy_generation(s) != g1 &&
          pr_policy_generation(c) != pr_policy_generation(s));
    CHECK(pr_policy_generation(p) == g1);   /* taking a snapshot does not change p */
    CHECK(add_default(p, 254, (uint32_t)eth0) != 0 && pr_policy_generation(p) != g1);
    pr_policy_free(s);
    pr_policy_free(c);

    pr_policy_free(before);
    pr_policy_free(p);
    return tu_summary("test_core");
}
