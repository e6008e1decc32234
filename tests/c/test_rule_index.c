/* test_rule_index.c - indexed rule selection equals the linear walk.
 *
 * pr_route_get() selects rules through the tuple-space index, except when a
 * trace is requested (an explanation lists every rule passed over, so it
 * scans).  The same question asked both ways must get the same answer, on
 * random policies of mixed rule shapes with up to 100,000 rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polroute.h"
#include "testutil.h"

static void put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

/* addresses from a small pool so that rules and flows collide often */
static uint32_t pool_addr(void) { return 0x0A000000u | (below(4) << 16) | (below(4) << 8) | below(8); }

static const char *names[] = {"eth0", "eth1", "ghost0", "lo"};

static void random_rule(pr_policy *p, uint32_t prio)
{
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = 100 + below(8);
    q.priority = prio;
    q.present = 1u << PR_FRA_PRIORITY;
    if (below(3)) {
        q.src_len = (uint8_t)(below(2) ? 32 : 8 * (1 + below(3)));
        put4(q.src, pool_addr());
        q.present |= 1u << PR_FRA_SRC;
    }
    if (!below(3)) {
        q.dst_len = (uint8_t)(below(2) ? 24 : 16);
        put4(q.dst, pool_addr());
        q.present |= 1u << PR_FRA_DST;
    }
    if (!below(6)) {
        strcpy(q.iifname, names[below(4)]);
        q.present |= 1u << PR_FRA_IIFNAME;
    }
    if (!below(8)) {
        strcpy(q.oifname, names[below(3)]);
        q.present |= 1u << PR_FRA_OIFNAME;
    }
    if (!below(6)) {
        q.fwmark = below(4);
        q.present |= 1u << PR_FRA_FWMARK;
        if (below(2)) {
            q.fwmask = below(2) ? 0xF : 0x3;
            q.present |= 1u << PR_FRA_FWMASK;
        }
    }
    /* complex selectors */
    switch (below(12)) {
    case 0:
        q.flags |= PR_FIB_RULE_INVERT;
        break;
    case 1:
        q.uid_start = below(3);
        q.uid_end = q.uid_start + below(2);
        q.present |= 1u << PR_FRA_UID_RANGE;
        break;
    case 2:
        q.ip_proto = below(2) ? 6 : 17;
        q.present |= 1u << PR_FRA_IP_PROTO;
        break;
    case 3:
        q.dport_start = (uint16_t)(1 + below(3));
        q.dport_end = (uint16_t)(q.dport_start + below(3));
        q.present |= 1u << PR_FRA_DPORT_RANGE;
        break;
    case 4:
        q.tos = 0x10;
        break;
    default:
        break;
    }
    switch (below(10)) {
    case 0:
        q.action = PR_FR_ACT_NOP;
        break;
    case 1:
        q.action = PR_FR_ACT_UNREACHABLE;
        q.table = 0;
        break;
    case 2:
        q.action = PR_FR_ACT_GOTO;
        q.table = 0;
        q.goto_target = prio + 1 + below(50);
        q.present |= 1u << PR_FRA_GOTO;
        break;
    case 3:
        q.suppress_prefixlen = 0;
        q.present |= 1u << PR_FRA_SUPPRESS_PREFIXLEN;
        break;
    default:
        break;
    }
    (void)pr_rule_request(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE, &q);
}

static void route(pr_policy *p, uint32_t table, uint32_t dst, unsigned len, uint8_t type, uint32_t oif)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = type;
    r.table = table;
    r.dst_len = (uint8_t)len;
    put4(r.dst, dst);
    if (type == PR_RTN_UNICAST) {
        r.present = 1u << PR_RTA_OIF;
        r.oif = oif;
        r.scope = 253;
    }
    (void)pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

static int compare(const pr_policy *p, size_t nflows)
{
    int bad = 0;
    pr_result a, b;
    pr_trace_step step;
    for (size_t i = 0; i < nflows; i++) {
        pr_flow q;
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET;
        q.lookup_table = 1;
        put4(q.dst, below(4) ? pool_addr() : (uint32_t)rnd());
        if (below(2)) {
            q.has_src = 1;
            put4(q.src, below(3) ? 0x0A000001u : pool_addr());
        }
        if (!below(4))
            q.oif = 2 + below(3);
        if (!below(5)) {
            q.iif = 2 + below(3);
            q.has_src = 1;
            put4(q.src, pool_addr());
        }
        q.mark = below(4) ? 0 : below(8);
        if (below(3)) {
            q.has_uid = 1;
            q.uid = below(4);
        }
        if (below(2)) {
            q.has_ipproto = 1;
            q.ipproto = below(2) ? 6 : 17;
        }
        q.dport = (uint16_t)below(6);
        q.tos = below(4) ? 0 : 0x10;
        pr_trace tr = {0, 0, 0, &step};   /* non-NULL: the linear walk */
        pr_route_get(p, &q, &a, NULL);
        pr_route_get(p, &q, &b, &tr);
        if (a.error != b.error || a.type != b.type || a.table != b.table || a.rule_index != b.rule_index ||
            a.nh_count != b.nh_count || (a.nh_count && a.nh[0].oif != b.nh[0].oif)) {
            if (bad < 5)
                fprintf(stderr, "flow %zu: indexed err=%d rule=%d table=%u / linear err=%d rule=%d table=%u\n", i,
                        a.error, a.rule_index, a.table, b.error, b.rule_index, b.table);
            bad++;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    tu_seed("test_rule_index", argc, argv, 20261126u);
    static const size_t sizes[][2] = {{20, 2000}, {300, 3000}, {3000, 2000}, {100000, 300}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        pr_policy *p = pr_policy_new();
        int e0 = pr_link_add_veth(p, "eth0", "sw0");
        int e1 = pr_link_add_veth(p, "eth1", "sw1");
        for (uint32_t i = 1; i <= 5; i++)
            pr_link_set_up(p, i, 1);
        for (uint32_t t = 100; t < 108; t++) {
            route(p, t, 0, 0, below(3) ? PR_RTN_UNICAST : PR_RTN_THROW, (uint32_t)(below(2) ? e0 : e1));
            route(p, t, 0x0A000000u, 16, below(2) ? PR_RTN_UNICAST : PR_RTN_PROHIBIT, (uint32_t)e1);
        }
        /* ascending priorities with repeats: appending keeps the build linear */
        uint32_t prio = 1;
        for (size_t i = 0; i < sizes[s][0]; i++) {
            prio += below(3);
            random_rule(p, below(50) ? prio : 1 + below(prio));
        }
        int bad = compare(p, sizes[s][1]);
        printf("%zu rules, %zu flows: %d differences\n", pr_rule_count(p, PR_AF_INET), sizes[s][1], bad);
        CHECK_EQ(bad, 0);
        /* deleting half the rules (by priority) keeps the index in step */
        size_t ndel = sizes[s][0] / 2 < 500 ? sizes[s][0] / 2 : 500;   /* each delete scans, as in the kernel */
        for (size_t i = 0; i < ndel; i++) {
            pr_rule_req d;
            memset(&d, 0, sizeof(d));
            d.family = PR_AF_INET;
            d.priority = 1 + below(prio);
            d.present = 1u << PR_FRA_PRIORITY;
            (void)pr_rule_request(p, PR_RTM_DELRULE, 0, &d);
        }
        pr_link_rename(p, (uint32_t)e1, "ghost0");   /* rebinding too (eth1 is up: EBUSY, kept) */
        bad = compare(p, sizes[s][1]);
        printf("after deletions, %zu rules: %d differences\n", pr_rule_count(p, PR_AF_INET), bad);
        CHECK_EQ(bad, 0);
        pr_policy *c = pr_policy_clone(p);
        bad = compare(c, sizes[s][1] / 4);
        CHECK_EQ(bad, 0);
        pr_policy_free(c);
        pr_policy_free(p);
    }
    return tu_summary("test_rule_index");
}
