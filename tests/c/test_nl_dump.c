/* test_nl_dump.c - the dump decoder (pr_dump_decode) on hand-built replies:
 * fields of a route, a rule, a link and an address; every truncation refused
 * whole; seeded random byte corruption never read out of bounds (run under
 * ASan/UBSan in CI) and either decodes or is refused with nothing appended. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "polroute.h"
#include "testutil.h"

/* ---- a tiny message writer ---- */

typedef struct w {
    uint8_t b[4096];
    size_t n;
} w;

static void put(w *x, const void *p, size_t len)
{
    memcpy(x->b + x->n, p, len);
    x->n += len;
    while (x->n % 4)
        x->b[x->n++] = 0;
}

static size_t attr_begin(w *x, uint16_t type)
{
    size_t at = x->n;
    uint16_t h[2] = { 4, type };
    memcpy(x->b + x->n, h, 4);
    x->n += 4;
    return at;
}

static void attr_end(w *x, size_t at, size_t unpadded_end)
{
    uint16_t len = (uint16_t)(unpadded_end - at);
    memcpy(x->b + at, &len, 2);
}

static void attr(w *x, uint16_t type, const void *p, size_t len)
{
    size_t at = attr_begin(x, type);
    memcpy(x->b + x->n, p, len);
    x->n += len;
    attr_end(x, at, x->n);
    while (x->n % 4)
        x->b[x->n++] = 0;
}

static void a32(w *x, uint16_t type, uint32_t v) { attr(x, type, &v, 4); }

static size_t msg_begin(w *x, uint16_t type)
{
    size_t at = x->n;
    uint8_t h[16] = { 0 };
    memcpy(h + 4, &type, 2);
    memcpy(x->b + x->n, h, 16);
    x->n += 16;
    return at;
}

static void msg_end(w *x, size_t at)
{
    uint32_t len = (uint32_t)(x->n - at);
    memcpy(x->b + at, &len, 4);
}

static size_t build(w *x)
{
    x->n = 0;
    /* RTM_NEWROUTE: 198.18.7.0/24 table 100000 metric 7, multipath 2 legs, mtu 1400 */
    size_t m = msg_begin(x, PR_RTM_NEWROUTE);
    uint8_t rtm[12] = { PR_AF_INET, 24, 0, 0, 0, 3, 0, 1 };
    put(x, rtm, sizeof rtm);
    a32(x, 15, 100000);
    uint8_t dst[4] = { 198, 18, 7, 0 };
    attr(x, 1, dst, 4);
    a32(x, 6, 7);
    size_t mx = attr_begin(x, 8);
    a32(x, 2, 1400);
    attr_end(x, mx, x->n);
    size_t mp = attr_begin(x, 9);
    for (int i = 0; i < 2; i++) {
        uint8_t nh[8] = { 12 + 4, 0, 0, 0 };
        nh[2] = (uint8_t)(i ? 0 : 4);           /* flags */
        nh[3] = (uint8_t)i;                     /* hops */
        uint32_t ifindex = (uint32_t)(3 + i);
        memcpy(nh + 4, &ifindex, 4);
        put(x, nh, 8);
        uint8_t gw[4] = { 10, 0, (uint8_t)i, 9 };
        attr(x, 5, gw, 4);
    }
    attr_end(x, mp, x->n);
    msg_end(x, m);
    /* RTM_NEWRULE: from 10.1.2.3/32 iif d0 lookup 4000000000 pref 100 */
    m = msg_begin(x, 32);
    uint8_t frh[12] = { PR_AF_INET, 0, 32, 0, 0, 0, 0, 1 };
    put(x, frh, sizeof frh);
    a32(x, 15, 4000000000u);
    a32(x, 6, 100);
    uint8_t src[4] = { 10, 1, 2, 3 };
    attr(x, 2, src, 4);
    attr(x, 3, "d0", 3);
    attr(x, 40, "xyz", 3);                      /* unknown: noted */
    msg_end(x, m);
    /* RTM_NEWLINK: d0 veth peer 6 */
    m = msg_begin(x, PR_RTM_NEWLINK);
    uint8_t ifi[16] = { 0, 0, 1, 0, 5, 0, 0, 0, 0x41, 0, 1, 0 };
    put(x, ifi, sizeof ifi);
    attr(x, 3, "d0", 3);
    a32(x, 5, 6);
    size_t li = attr_begin(x, 18);
    attr(x, 1, "veth", 5);
    attr_end(x, li, x->n);
    msg_end(x, m);
    /* RTM_NEWADDR: 10.0.1.1/32 peer 10.0.1.2 */
    m = msg_begin(x, 20);
    uint8_t ifa[8] = { PR_AF_INET, 32, 0x80, 0, 5, 0, 0, 0 };
    put(x, ifa, sizeof ifa);
    uint8_t loc[4] = { 10, 0, 1, 1 }, peer[4] = { 10, 0, 1, 2 };
    attr(x, 1, peer, 4);
    attr(x, 2, loc, 4);
    msg_end(x, m);
    return x->n;
}

static void counts(pr_dump *d, size_t out[8])
{
    pr_dump_view v;
    pr_dump_get_view(d, &v);
    size_t c[8] = { v.n_links, v.n_addrs, v.n_rules, v.n_routes, v.n_nexthops, v.n_notes,
                    v.n_metric_values, v.strings_len };
    memcpy(out, c, sizeof c);
}

int main(int argc, char **argv)
{
    tu_seed("test_nl_dump", argc, argv, 12345);
    static w x;
    size_t len = build(&x);
    pr_dump *d = pr_dump_new();
    CHECK(d != NULL);
    CHECK(pr_dump_decode(d, x.b, len) == 4);
    pr_dump_view v;
    pr_dump_get_view(d, &v);
    CHECK(v.n_routes == 1 && v.n_rules == 1 && v.n_links == 1 && v.n_addrs == 1);
    const pr_dump_route *r = &v.routes[0];
    CHECK(r->table == 100000 && r->priority == 7 && r->dst_len == 24 && r->dst[0] == 198);
    CHECK(r->nh_count == 2 && v.nexthops[r->nh_off].flags == 4 && v.nexthops[r->nh_off + 1].hops == 1);
    CHECK(v.nexthops[r->nh_off + 1].gw_family == PR_AF_INET && v.nexthops[r->nh_off + 1].gw[2] == 1);
    CHECK(r->metrics_present == (1u << 2) && v.metric_values[r->metrics_off + 2] == 1400);
    const pr_dump_rule *ru = &v.rules[0];
    CHECK(ru->r.table == 4000000000u && ru->r.priority == 100 && strcmp(ru->r.iifname, "d0") == 0);
    CHECK(ru->r.suppress_prefixlen == -1 && ru->r.uid_end == UINT32_MAX);
    CHECK(ru->note_count == 1 && v.notes[ru->note_off] == 40);
    const pr_dump_link *l = &v.links[0];
    CHECK(l->ifindex == 5 && l->link == 6 && l->kind.len == 4
          && memcmp(v.strings + l->kind.off, "veth", 5) == 0);
    CHECK(l->name.len == 2 && memcmp(v.strings + l->name.off, "d0", 3) == 0);
    CHECK(v.addrs[0].local[3] == 1 && v.addrs[0].address[3] == 2 && v.addrs[0].valid_lft == UINT32_MAX);

    /* every cut inside a message is refused and leaves the handle as it was */
    size_t before[8], now[8];
    counts(d, before);
    size_t refused = 0;
    for (size_t cut = 1; cut < len; cut++) {
        int rc = pr_dump_decode(d, x.b, cut);
        if (rc == -EBADMSG) {
            refused++;
            counts(d, now);
            CHECK(memcmp(now, before, sizeof now) == 0);
            CHECK(strncmp(pr_dump_error(d), "message ", 8) == 0);
        } else {
            CHECK(rc >= 0 && rc < 4);       /* a message boundary */
            pr_dump_clear(d);
            CHECK(pr_dump_decode(d, x.b, len) == 4);
            counts(d, before);
        }
    }
    CHECK(refused >= len - 4);

    /* random corruption: decoded or refused whole, never out of bounds */
    static uint8_t buf[4096];
    int ok = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, x.b, len);
        int edits = 1 + (int)((uint32_t)rnd() % 4);
        for (int e = 0; e < edits; e++)
            buf[(uint32_t)rnd() % len] = (uint8_t)(uint32_t)rnd();
        size_t cut = round % 3 == 0 ? (uint32_t)rnd() % (len + 1) : len;
        pr_dump_clear(d);
        int rc = pr_dump_decode(d, buf, cut);
        counts(d, now);
        if (rc < 0) {
            bad++;
            size_t zero[8] = { 0 };
            CHECK(memcmp(now, zero, sizeof now) == 0);
        } else {
            ok++;
        }
    }
    CHECK(ok > 0 && bad > 0);

    /* a live dump of this namespace (read only): whole, and in steps of one record */
    int fd = pr_nl_open(NULL);
    if (fd >= 0) {
        pr_dump_clear(d);
        int nl = pr_dump_run(d, fd, PR_RTM_GETLINK, 0);
        int nr = pr_dump_run(d, fd, PR_RTM_GETROUTE, PR_AF_INET);
        CHECK(nl >= 1 && nr >= 0);
        pr_dump_get_view(d, &v);
        CHECK(v.n_links == (size_t)nl && v.n_routes == (size_t)nr);
        int total = 0, rc;
        CHECK(pr_dump_start(d, fd, PR_RTM_GETROUTE, PR_AF_INET) == 0);
        while ((rc = pr_dump_step(d, 1)) != 0) {
            if (rc == PR_DUMP_RESTARTED) {
                total = 0;
                continue;
            }
            CHECK(rc > 0);
            if (rc < 0)
                break;
            total += rc;
            pr_dump_clear(d);
        }
        CHECK(total == nr);
        CHECK(pr_dump_run(d, fd, 99, 0) == -EINVAL);
        pr_nl_close(fd);
    }
    pr_dump_free(d);
    printf("test_nl_dump: corruptions: %d decoded, %d refused\n", ok, bad);
    return tu_summary("test_nl_dump");
}
