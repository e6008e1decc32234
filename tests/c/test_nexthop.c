/* test_nexthop.c - nexthop objects through the public header: objects,
 * groups, routes with RTA_NH_ID and their answers, removal with the device,
 * clones, and a sequence of requests with each of its allocations failed in
 * turn (-ENOMEM, nothing leaked: CI runs this under ASan/LSan). */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "polroute.h"
#include "testutil.h"

enum { EINVAL_ = 22, EEXIST_ = 17, ENOENT_ = 2, ENOMEM_ = 12, ENETUNREACH_ = 101 };

static void v4(uint8_t b[16], unsigned a, unsigned c, unsigned d, unsigned e)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)a;
    b[1] = (uint8_t)c;
    b[2] = (uint8_t)d;
    b[3] = (uint8_t)e;
}

static int nh_single(pr_policy *p, uint32_t id, uint32_t oif, unsigned gw_last)
{
    pr_nhobj_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.id = id;
    q.oif = oif;
    q.present = (1u << PR_NHA_ID) | (1u << PR_NHA_OIF);
    if (gw_last) {
        q.present |= 1u << PR_NHA_GATEWAY;
        v4(q.gw, 10, 0, 0, gw_last);
    }
    return pr_nexthop_request(p, PR_RTM_NEWNEXTHOP, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &q);
}

static int nh_group(pr_policy *p, uint32_t id, const uint32_t *members, uint32_t n)
{
    pr_nhgrp_entry g[4];
    memset(g, 0, sizeof(g));
    for (uint32_t i = 0; i < n; i++) {
        g[i].id = members[i];
        g[i].weight = (uint16_t)(i + 1);
    }
    pr_nhobj_req q;
    memset(&q, 0, sizeof(q));
    q.id = id;
    q.present = (1u << PR_NHA_ID) | (1u << PR_NHA_GROUP);
    q.group = g;
    q.ngroup = n;
    return pr_nexthop_request(p, PR_RTM_NEWNEXTHOP, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &q);
}

static int nh_del(pr_policy *p, uint32_t id)
{
    pr_nhobj_req q;
    memset(&q, 0, sizeof(q));
    q.id = id;
    q.present = 1u << PR_NHA_ID;
    return pr_nexthop_request(p, PR_RTM_DELNEXTHOP, 0, &q);
}

static int route_nhid(pr_policy *p, unsigned net, uint32_t nh_id)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.dst_len = 24;
    v4(r.dst, 198, 51, net, 0);
    r.protocol = 3;
    r.type = PR_RTN_UNICAST;
    r.table = 254;
    r.present = (1u << PR_RTA_DST) | (1u << PR_RTA_NH_ID);
    r.nh_id = nh_id;
    return pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

static void get(const pr_policy *p, unsigned net, pr_result *res)
{
    pr_flow q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.lookup_table = 1;
    v4(q.dst, 198, 51, net, 7);
    CHECK_EQ(pr_route_get(p, &q, res, NULL), 0);
}

/* Two veth ends up with 10.0.0.2/24 on eth0, objects 1 (via .1), 2 (dev
 * only), group 10 = 1/2, routes 198.51.1.0/24 -> 1 and 198.51.2.0/24 -> 10. */
static pr_policy *build(int *eth0_out)
{
    pr_policy *p = pr_policy_new();
    if (!p)
        return NULL;
    int eth0 = pr_link_add_veth(p, "eth0", "sw0");
    *eth0_out = eth0;
    if (eth0 < 0 || pr_link_set_up(p, 1, 1) || pr_link_set_up(p, (uint32_t)eth0, 1) ||
        pr_link_set_up(p, pr_link_index(p, "sw0"), 1))
        goto fail;
    pr_addr_req a;
    memset(&a, 0, sizeof(a));
    a.family = PR_AF_INET;
    a.prefixlen = 24;
    a.ifindex = (uint32_t)eth0;
    v4(a.local, 10, 0, 0, 2);
    if (pr_addr_request(p, PR_RTM_NEWADDR, &a))
        goto fail;
    static const uint32_t members[] = {1, 2};
    if (nh_single(p, 1, (uint32_t)eth0, 1) || nh_single(p, 2, (uint32_t)eth0, 0) || nh_group(p, 10, members, 2) ||
        route_nhid(p, 1, 1) || route_nhid(p, 2, 10))
        goto fail;
    return p;
fail:
    pr_policy_free(p);
    return NULL;
}

static void test_objects_and_answers(void)
{
    int eth0;
    pr_policy *p = build(&eth0);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ(pr_nexthop_count(p), 3);
    pr_nhobj_info info;
    pr_nhgrp_entry g[4];
    CHECK_EQ(pr_nexthop_get(p, 2, &info, g, 4), 0);
    CHECK(info.id == 10 && info.is_group && info.ngroup == 2 && g[0].id == 1 && g[1].id == 2 && g[1].weight == 2);
    CHECK_EQ(pr_nexthop_get(p, 0, &info, NULL, 0), 0);
    CHECK(info.id == 1 && info.scope == 253 && info.gw_family == PR_AF_INET && info.ifindex == (uint32_t)eth0);

    CHECK_EQ(nh_single(p, 1, (uint32_t)eth0, 3), -EEXIST_);
    CHECK_EQ(route_nhid(p, 3, 99), -EINVAL_);
    CHECK(strcmp(pr_errmsg(p), "Nexthop id does not exist") == 0);
    static const uint32_t twice[] = {1, 1};
    CHECK_EQ(nh_group(p, 11, twice, 2), -EINVAL_);
    CHECK(strcmp(pr_errmsg(p), "Nexthop id can not be used twice in a group") == 0);

    pr_result res;
    get(p, 1, &res);
    CHECK(res.error == 0 && res.nh_count == 1 && res.nh[0].oif == (uint32_t)eth0 && res.nh[0].gw[3] == 1);
    CHECK_EQ(res.not_modelled, 0);
    get(p, 2, &res);
    CHECK(res.error == 0 && res.nh_count == 2 && (res.not_modelled & PR_NM_MULTIPATH_HASH));
    CHECK(res.nh[0].weight == 1 && res.nh[1].weight == 2);

    /* a clone is independent */
    pr_policy *c = pr_policy_clone(p);
    CHECK(c != NULL);
    CHECK_EQ(nh_del(p, 1), 0);
    CHECK_EQ(pr_nexthop_count(p), 2);   /* 1 gone, 10 keeps 2 */
    get(p, 1, &res);
    CHECK_EQ(res.error, ENETUNREACH_);   /* its route went with it */
    get(p, 2, &res);
    CHECK(res.error == 0 && res.nh_count == 1 && res.not_modelled == 0);
    if (c) {
        CHECK_EQ(pr_nexthop_count(c), 3);
        get(c, 1, &res);
        CHECK_EQ(res.error, 0);
    }
    CHECK_EQ(nh_del(p, 1), -ENOENT_);

    /* the device going down takes its objects, the emptied group, their routes */
    CHECK_EQ(pr_link_set_up(p, (uint32_t)eth0, 0), 0);
    CHECK_EQ(pr_nexthop_count(p), 0);
    get(p, 2, &res);
    CHECK_EQ(res.error, ENETUNREACH_);
    if (c) {
        CHECK_EQ(pr_link_del(c, (uint32_t)eth0), 0);
        CHECK_EQ(pr_nexthop_count(c), 0);
        pr_policy_free(c);
    }
    pr_policy_free(p);
}

/* Every allocation of build() failed in turn: each failure is -ENOMEM (or
 * NULL), never a crash; LSan reports any leak. */
static void test_allocation_failures(void)
{
    int eth0;
    pr_alloc_fail_nth(UINT64_MAX);
    pr_policy *p = build(&eth0);
    uint64_t total = pr_alloc_calls();
    pr_alloc_fail_nth(0);
    CHECK(p != NULL);
    pr_policy_free(p);
    for (uint64_t n = 1; n <= total; n++) {
        pr_alloc_fail_nth(n);
        p = build(&eth0);
        pr_alloc_fail_nth(0);
        pr_policy_free(p);
    }
    /* the same for a delete on a clone (route refresh, object removal) */
    p = build(&eth0);
    CHECK(p != NULL);
    for (uint64_t n = 1; p && n <= 64; n++) {
        pr_policy *c = pr_policy_clone(p);
        if (!c)
            break;
        pr_alloc_fail_nth(n);
        int rc = nh_del(c, 2);
        int fired = pr_alloc_failed();
        pr_alloc_fail_nth(0);
        CHECK(rc == 0 || (rc == -ENOMEM_ && fired));
        pr_policy_free(c);
        if (!fired)
            break;
    }
    pr_policy_free(p);
}

int main(int argc, char **argv)
{
    tu_seed("test_nexthop", argc, argv, 20261208u);
    test_objects_and_answers();
    test_allocation_failures();
    return tu_summary("test_nexthop");
}
