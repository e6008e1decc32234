/* test_nlmsg.c - the netlink toolkit (csrc/nlmsg.h): attribute put/parse
 * round trips and bounds, truncated / overlong / wrong-size attributes
 * refused, and the receive loop's promises (foreign port id and other
 * sequence numbers skipped, NLM_F_DUMP_INTR stops with -EINTR, NLMSG_ERROR /
 * NLMSG_DONE handled, framing errors named), plus the sender check on a real
 * datagram from a user socket. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nlmsg.h"

static int failed, passed;
#define CHECK(cond)                                                               \
    do {                                                                          \
        if (cond) {                                                               \
            passed++;                                                             \
        } else {                                                                  \
            failed++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                         \
    } while (0)

/* ---- building and parsing ---------------------------------------------------- */

static void test_put_parse_round_trip(void)
{
    uint8_t mem[256];
    memset(mem, 0xAA, sizeof mem);              /* padding must come out zero */
    nlm_buf b;
    nlm_msg_begin(&b, mem, sizeof mem, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK, 77);
    uint8_t *frh = nlm_reserve(&b, RTNL_FIB_RULE_HDR_LEN);
    CHECK(frh != NULL);
    frh[0] = 2;
    const uint8_t dst[4] = { 10, 1, 2, 3 };
    CHECK(nlm_attr_put(&b, FRA_DST, dst, 4));
    CHECK(nlm_attr_put_u8(&b, FRA_PROTOCOL, 4));
    CHECK(nlm_attr_put_u16(&b, FRA_SPORT_MASK, 0xFF00));
    CHECK(nlm_attr_put_u32(&b, FRA_PRIORITY, 1000));
    CHECK(nlm_attr_put_be32(&b, FRA_FLOWLABEL, 0x000ABCDE));
    CHECK(nlm_attr_put_be64(&b, FRA_TUN_ID, UINT64_C(0x0102030405060708)));
    CHECK(nlm_attr_put_strz(&b, FRA_IIFNAME, "veth0"));
    size_t nest = nlm_nest_begin(&b, RTA_METRICS);
    CHECK(nlm_attr_put_u32(&b, RTAX_MTU, 1400));
    nlm_nest_end(&b, nest);
    int len = nlm_msg_end(&b);
    /* 16 + 12 + (8 + 8 + 8 + 8 + 8 + 12 + 12) + (4 + 8) */
    CHECK(len == 16 + 12 + 64 + 12);
    CHECK(nlm_get32(mem) == (uint32_t)len);
    CHECK(nlm_get16(mem + 4) == RTM_NEWRULE);
    CHECK(nlm_get16(mem + 6) == (NLM_F_REQUEST | NLM_F_ACK));
    CHECK(nlm_get32(mem + 8) == 77 && nlm_get32(mem + 12) == 0);
    /* FRA_PROTOCOL: nla_len 5 (unpadded), three zero padding bytes */
    const uint8_t *proto = mem + 16 + 12 + 8;
    CHECK(nlm_get16(proto) == 5 && nlm_get16(proto + 2) == FRA_PROTOCOL);
    CHECK(proto[4] == 4 && proto[5] == 0 && proto[6] == 0 && proto[7] == 0);

    static const nlm_policy pol[FRA_MAX + 1] = {
        [FRA_DST] = { NLM_EXACT, 4 },
        [FRA_PROTOCOL] = { NLM_U8, 0 },
        [FRA_SPORT_MASK] = { NLM_U16, 0 },
        [FRA_PRIORITY] = { NLM_U32, 0 },
        [FRA_FLOWLABEL] = { NLM_U32, 0 },
        [FRA_TUN_ID] = { NLM_U64, 0 },
        [FRA_IIFNAME] = { NLM_NUL_STRING, 15 },
    };
    nlm_attr tb[FRA_MAX + 1];
    nlm_bad bad;
    const uint8_t *attrs = mem + 16 + 12;
    /* RTA_METRICS (8) is FRA_UNUSED4 here: no policy entry, NLM_ANY */
    CHECK(nlm_attr_parse(attrs, (size_t)len - 28, pol, FRA_MAX, tb, &bad) == 0);
    CHECK(tb[FRA_DST].len == 4 && memcmp(tb[FRA_DST].data, dst, 4) == 0);
    CHECK(tb[FRA_PROTOCOL].len == 1 && tb[FRA_PROTOCOL].data[0] == 4);
    CHECK(nlm_get16(tb[FRA_SPORT_MASK].data) == 0xFF00);
    CHECK(nlm_get32(tb[FRA_PRIORITY].data) == 1000);
    CHECK(nlm_get_be(tb[FRA_FLOWLABEL].data, 4) == 0x000ABCDE);
    CHECK(nlm_get_be(tb[FRA_TUN_ID].data, 8) == UINT64_C(0x0102030405060708));
    CHECK(tb[FRA_IIFNAME].len == 6 && strcmp((const char *)tb[FRA_IIFNAME].data, "veth0") == 0);
    CHECK(tb[FRA_SRC].data == NULL && tb[FRA_TABLE].data == NULL);
    /* the nest: its length covers the member, and it parses on its own */
    CHECK(tb[RTA_METRICS].len == 8);
    nlm_attr mx[RTAX_MAX + 1];
    CHECK(nlm_attr_parse(tb[RTA_METRICS].data, tb[RTA_METRICS].len, NULL, RTAX_MAX, mx, NULL) == 0);
    CHECK(mx[RTAX_MTU].data != NULL && nlm_get32(mx[RTAX_MTU].data) == 1400);
}

static void test_put_bounds(void)
{
    uint8_t mem[40];
    nlm_buf b;
    nlm_msg_begin(&b, mem, sizeof mem, RTM_NEWROUTE, NLM_F_REQUEST, 1);
    CHECK(nlm_attr_put_u32(&b, RTA_OIF, 1));       /* 16 + 8 = 24 */
    CHECK(nlm_attr_put_u32(&b, RTA_TABLE, 2));     /* 32 */
    CHECK(nlm_attr_put_u32(&b, RTA_PRIORITY, 3));  /* 40: exactly full */
    CHECK(b.len == 40 && !b.full);
    CHECK(!nlm_attr_put_u8(&b, RTA_PREF, 0));      /* one byte more does not fit */
    CHECK(b.full && b.len == 40);
    /* after a refused put nothing more goes in, and the message is refused */
    CHECK(!nlm_attr_put(&b, RTA_PREF, NULL, 0));
    CHECK(nlm_msg_end(&b) == -EMSGSIZE);

    /* exactly full is fine */
    nlm_msg_begin(&b, mem, sizeof mem, RTM_NEWROUTE, NLM_F_REQUEST, 1);
    CHECK(nlm_attr_put(&b, RTA_DST, mem, 20));     /* 16 + 24 = 40 */
    CHECK(nlm_msg_end(&b) == 40);

    /* an attribute nla_len cannot describe */
    static uint8_t big[70000], src[0xFFFF];
    nlm_msg_begin(&b, big, sizeof big, RTM_NEWROUTE, NLM_F_REQUEST, 1);
    CHECK(!nlm_attr_put(&b, RTA_ENCAP, src, 0xFFFF - 3));
    CHECK(nlm_msg_end(&b) == -EMSGSIZE);
    nlm_msg_begin(&b, big, sizeof big, RTM_NEWROUTE, NLM_F_REQUEST, 1);
    CHECK(nlm_attr_put(&b, RTA_ENCAP, src, 0xFFFF - 4));   /* the largest there is */
    CHECK(nlm_msg_end(&b) == 16 + 0x10000);
    /* a nest past 64 KiB is refused at its end */
    nlm_msg_begin(&b, big, sizeof big, RTM_NEWROUTE, NLM_F_REQUEST, 1);
    size_t at = nlm_nest_begin(&b, RTA_METRICS);
    for (uint16_t i = 1; i <= 3; i++)
        CHECK(nlm_attr_put(&b, i, src, 22000));
    nlm_nest_end(&b, at);
    CHECK(b.full && nlm_msg_end(&b) == -EMSGSIZE);
    /* a buffer smaller than a header */
    nlm_msg_begin(&b, mem, 8, RTM_NEWROUTE, 0, 0);
    CHECK(nlm_msg_end(&b) == -EMSGSIZE);
}

/* attr(type, payload) into w at *n; returns the new end. */
static size_t raw_attr(uint8_t *w, size_t n, uint16_t nla_len, uint16_t type, const void *p, size_t plen)
{
    nlm_put16(w + n, nla_len);
    nlm_put16(w + n + 2, type);
    if (plen)
        memcpy(w + n + 4, p, plen);
    return n + nlm_align(4 + plen);
}

static void test_malformed_attributes(void)
{
    uint8_t w[64];
    nlm_attr tb[RTA_MAX + 1];
    nlm_bad bad;
    uint32_t v = 7;
    memset(w, 0, sizeof w);

    /* nla_len past the container: refused, the bad attribute named */
    size_t n = raw_attr(w, 0, 8, RTA_OIF, &v, 4);
    n = raw_attr(w, n, 40, RTA_TABLE, &v, 4);          /* says 40, 8 are there */
    CHECK(nlm_attr_parse(w, n, NULL, RTA_MAX, tb, &bad) == -EBADMSG);
    CHECK(bad.err == -EBADMSG && bad.type == RTA_TABLE && bad.len == 40 && bad.left == 8);

    /* nla_len below the header */
    n = raw_attr(w, 0, 2, RTA_TABLE, NULL, 0);
    CHECK(nlm_attr_parse(w, n, NULL, RTA_MAX, tb, &bad) == -EBADMSG && bad.len == 2);

    /* a stray tail shorter than a header */
    n = raw_attr(w, 0, 8, RTA_OIF, &v, 4);
    CHECK(nlm_attr_parse(w, n + 2, NULL, RTA_MAX, tb, &bad) == -EBADMSG);
    CHECK(bad.left == 2 && bad.type == 0);

    /* the iterator stops at the bad attribute and stays there */
    nlm_iter it;
    nlm_attr a;
    n = raw_attr(w, 0, 8, RTA_OIF, &v, 4);
    n = raw_attr(w, n, 30, RTA_TABLE, &v, 4);
    nlm_iter_init(&it, w, n);
    CHECK(nlm_attr_next(&it, &a) == 1 && a.type == RTA_OIF && a.len == 4);
    CHECK(nlm_attr_next(&it, &a) == -EBADMSG && a.type == RTA_TABLE && a.len == 30);
    CHECK(nlm_iter_left(&it) == 8);
    CHECK(nlm_attr_next(&it, &a) == -EBADMSG);

    /* a u32 of 5 bytes (overlong) and of 3 (short): -ERANGE, 4 wanted */
    static const nlm_policy pol[RTA_MAX + 1] = {
        [RTA_TABLE] = { NLM_U32, 0 },
        [RTA_GATEWAY] = { NLM_EXACT, 16 },
        [RTA_EXPIRES] = { NLM_UINT, 0 },
        [RTA_MULTIPATH] = { NLM_NESTED, 0 },
    };
    const uint8_t five[5] = { 1, 2, 3, 4, 5 };
    n = raw_attr(w, 0, 9, RTA_TABLE, five, 5);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == -ERANGE);
    CHECK(bad.type == RTA_TABLE && bad.len == 5 && bad.want == 4);
    n = raw_attr(w, 0, 7, RTA_TABLE, five, 3);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == -ERANGE && bad.len == 3);
    /* an IPv4 gateway where 16 bytes are due */
    n = raw_attr(w, 0, 8, RTA_GATEWAY, five, 4);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == -ERANGE && bad.want == 16);
    /* NLM_UINT: 4 and 8 only */
    n = raw_attr(w, 0, 8, RTA_EXPIRES, five, 4);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == 0 && tb[RTA_EXPIRES].len == 4);
    n = raw_attr(w, 0, 9, RTA_EXPIRES, five, 5);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == -ERANGE);
    /* a nest of 2 bytes holds no attribute */
    n = raw_attr(w, 0, 6, RTA_MULTIPATH, five, 2);
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == -ERANGE);

    /* types above maxtype are skipped unchecked; the last of a type wins */
    n = raw_attr(w, 0, 9, 200, five, 5);
    uint32_t t1 = 1, t2 = 2;
    n = raw_attr(w, n, 8, RTA_TABLE, &t1, 4);
    n = raw_attr(w, n, 8, (uint16_t)(RTA_TABLE | NLA_F_NESTED), &t2, 4);   /* flags are not the type */
    CHECK(nlm_attr_parse(w, n, pol, RTA_MAX, tb, &bad) == 0);
    CHECK(tb[RTA_TABLE].data != NULL && nlm_get32(tb[RTA_TABLE].data) == 2);
    /* the last attribute's padding may be missing */
    n = raw_attr(w, 0, 5, RTA_PREF, five, 1);
    CHECK(nlm_attr_parse(w, 5, NULL, RTA_MAX, tb, &bad) == 0 && tb[RTA_PREF].len == 1);
    (void)n;
}

static void test_strings(void)
{
    static const nlm_policy name = { NLM_NUL_STRING, 15 }, any = { NLM_NUL_STRING, 0 };
    uint8_t s[20];
    memset(s, 'x', sizeof s);
    nlm_attr a = { s, 20, 3 };
    size_t want;
    CHECK(nlm_attr_validate(&a, &any, &want) == -EINVAL);       /* no NUL at all */
    s[16] = '\0';
    CHECK(nlm_attr_validate(&a, &any, &want) == 0);
    CHECK(nlm_attr_validate(&a, &name, &want) == -EINVAL);      /* 16 chars: past IFNAMSIZ */
    s[15] = '\0';
    CHECK(nlm_attr_validate(&a, &name, &want) == 0);            /* 15 chars and the NUL */
    a.len = 0;
    CHECK(nlm_attr_validate(&a, &any, &want) == -EINVAL);       /* empty: no NUL either */
}

/* ---- the receive loop ------------------------------------------------------------ */

typedef struct seen {
    int data, ctl;
    uint32_t last_seq;
    uint16_t last_type;
    bool last_truncated;
    size_t last_len;
    int stop_at;                /* return STOP on this data message (1-based), 0 never */
    int fail_with;              /* return this on the first data message, 0 never */
} seen;

static int count_data(const nlm_msg *m, void *arg)
{
    seen *s = arg;
    s->data++;
    s->last_seq = m->seq;
    s->last_type = m->type;
    s->last_truncated = m->truncated;
    s->last_len = m->len;
    if (s->fail_with)
        return s->fail_with;
    return s->data == s->stop_at ? NLM_CB_STOP : NLM_CB_OK;
}

/* One message: header + payload, padded; returns the new end. */
static size_t put_msg(uint8_t *w, size_t n, uint16_t type, uint16_t flags, uint32_t seq,
                      uint32_t port, const void *payload, size_t plen)
{
    nlm_put32(w + n, (uint32_t)(NLM_HDRLEN + plen));
    nlm_put16(w + n + 4, type);
    nlm_put16(w + n + 6, flags);
    nlm_put32(w + n + 8, seq);
    nlm_put32(w + n + 12, port);
    if (plen)
        memcpy(w + n + NLM_HDRLEN, payload, plen);
    return n + nlm_align(NLM_HDRLEN + plen);
}

static size_t put_error(uint8_t *w, size_t n, uint16_t type, uint32_t seq, uint32_t port, int32_t e)
{
    uint8_t p[NLM_ERRLEN];
    memset(p, 0, sizeof p);
    memcpy(p, &e, 4);
    return put_msg(w, n, type, 0, seq, port, p, type == NLMSG_DONE ? 4 : sizeof p);
}

static void test_loop_filters_port_and_seq(void)
{
    uint8_t w[512];
    uint8_t body[12] = { 2 };
    size_t n = 0;
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 100, 4242, body, sizeof body);   /* ours */
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 100, 999, body, sizeof body);    /* foreign port */
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 99, 4242, body, sizeof body);    /* old seq */
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 100, 4242, body, sizeof body);   /* ours */
    n = put_error(w, n, NLMSG_DONE, 7, 4242, -EPERM);     /* another dump's end: not ours */
    seen s = { 0 };
    nlm_run r = { .seq = 100, .seq_span = 1, .port = 4242, .data_cb = count_data, .arg = &s };
    CHECK(nlm_cb_run(w, n, &r) == NLM_CB_OK);              /* more to come: no DONE of ours */
    CHECK(s.data == 2 && r.skipped == 3 && r.messages == 5);
    CHECK(r.ended_by == 0);

    /* then our DONE ends it, and what follows it is not read */
    n = put_error(w, 0, NLMSG_DONE, 100, 4242, 0);
    n = put_msg(w, n, RTM_NEWROUTE, 0, 100, 4242, body, sizeof body);
    CHECK(nlm_cb_run(w, n, &r) == NLM_CB_STOP);
    CHECK(r.ended_by == NLMSG_DONE && r.kernel_error == 0 && s.data == 2);
    CHECK(r.messages == 6);                                 /* counts accumulate over calls */

    /* port 0 and span 0 take everything */
    n = put_msg(w, 0, RTM_NEWROUTE, 0, 1, 1, body, sizeof body);
    n = put_msg(w, n, RTM_NEWROUTE, 0, 2, 2, body, sizeof body);
    seen s2 = { 0 };
    nlm_run any = { .data_cb = count_data, .arg = &s2 };
    CHECK(nlm_cb_run(w, n, &any) == NLM_CB_OK && s2.data == 2 && any.skipped == 0);

    /* a sequence window: a batch's ACKs are [seq, seq + span) */
    n = 0;
    for (uint32_t q = 0xFFFFFFFEu; q != 3; q++)            /* wraps: 4 in, 1 out */
        n = put_msg(w, n, RTM_NEWRULE, 0, q, 0, body, sizeof body);
    seen s3 = { 0 };
    nlm_run win = { .seq = 0xFFFFFFFEu, .seq_span = 4, .data_cb = count_data, .arg = &s3 };
    CHECK(nlm_cb_run(w, n, &win) == NLM_CB_OK && s3.data == 4 && win.skipped == 1);
}

static void test_loop_dump_intr(void)
{
    uint8_t w[256];
    uint8_t body[12] = { 2 };
    size_t n = 0;
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 5, 9, body, sizeof body);
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI | NLM_F_DUMP_INTR, 5, 9, body, sizeof body);
    n = put_msg(w, n, RTM_NEWROUTE, NLM_F_MULTI, 5, 9, body, sizeof body);
    seen s = { 0 };
    nlm_run r = { .seq = 5, .seq_span = 1, .port = 9, .data_cb = count_data, .arg = &s };
    CHECK(nlm_cb_run(w, n, &r) == -EINTR);
    CHECK(s.data == 1);                                     /* the flagged message is not handed on */
    CHECK(r.ended_by == 0);

    /* on a foreign message the flag means nothing: it is skipped first */
    n = put_msg(w, 0, RTM_NEWROUTE, NLM_F_DUMP_INTR, 5, 1234, body, sizeof body);
    n = put_error(w, n, NLMSG_DONE, 5, 9, 0);
    seen s2 = { 0 };
    nlm_run r2 = { .seq = 5, .seq_span = 1, .port = 9, .data_cb = count_data, .arg = &s2 };
    CHECK(nlm_cb_run(w, n, &r2) == NLM_CB_STOP && r2.skipped == 1 && s2.data == 0);

    /* on a DONE too: the whole dump is void */
    n = put_msg(w, 0, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 5, 9, body, 4);
    nlm_run r3 = { .seq = 5, .seq_span = 1, .port = 9 };
    CHECK(nlm_cb_run(w, n, &r3) == -EINTR && r3.ended_by == 0);

    /* ignore_dump_intr: handed on like any other */
    n = put_msg(w, 0, RTM_NEWROUTE, NLM_F_DUMP_INTR, 5, 9, body, sizeof body);
    seen s4 = { 0 };
    nlm_run r4 = { .ignore_dump_intr = true, .data_cb = count_data, .arg = &s4 };
    CHECK(nlm_cb_run(w, n, &r4) == NLM_CB_OK && s4.data == 1);
}

static void test_loop_errors_and_acks(void)
{
    uint8_t w[256];
    uint8_t body[12] = { 2 };
    size_t n;
    seen s = { 0 };

    /* the kernel's error: returned as a negative errno, raw value kept */
    n = put_msg(w, 0, RTM_NEWLINK, NLM_F_MULTI, 1, 0, body, sizeof body);
    n = put_error(w, n, NLMSG_ERROR, 1, 0, -EPERM);
    nlm_run r = { .data_cb = count_data, .arg = &s };
    CHECK(nlm_cb_run(w, n, &r) == -EPERM);
    CHECK(r.ended_by == NLMSG_ERROR && r.kernel_error == -EPERM && s.data == 1);

    /* an ACK (error 0) ends it */
    n = put_error(w, 0, NLMSG_ERROR, 1, 0, 0);
    CHECK(nlm_cb_run(w, n, &r) == NLM_CB_STOP && r.ended_by == NLMSG_ERROR);
    /* a DONE carrying an error */
    n = put_error(w, 0, NLMSG_DONE, 1, 0, -ENOBUFS);
    CHECK(nlm_cb_run(w, n, &r) == -ENOBUFS && r.ended_by == NLMSG_DONE);
    /* a DONE without its int is a plain end */
    n = put_msg(w, 0, NLMSG_DONE, 0, 1, 0, NULL, 0);
    CHECK(nlm_cb_run(w, n, &r) == NLM_CB_STOP && r.kernel_error == 0);
    /* positive and out-of-range errors are no errno */
    n = put_error(w, 0, NLMSG_ERROR, 1, 0, 5);
    CHECK(nlm_cb_run(w, n, &r) == -EPROTO && r.kernel_error == 5);
    n = put_error(w, 0, NLMSG_ERROR, 1, 0, -100000);
    CHECK(nlm_cb_run(w, n, &r) == -EPROTO);
    /* an NLMSG_ERROR without its error field */
    n = put_msg(w, 0, NLMSG_ERROR, 0, 1, 0, body, 2);
    CHECK(nlm_cb_run(w, n, &r) == -EBADMSG && r.ended_by == NLMSG_ERROR && r.bad_len == 18);

    /* a ctl_cb takes the control messages instead (an ACK reader) */
    seen acks = { 0 };
    n = put_error(w, 0, NLMSG_ERROR, 1, 0, -EEXIST);
    n = put_error(w, n, NLMSG_ERROR, 2, 0, 0);
    nlm_run ar = { .ctl_cb = count_data, .arg = &acks };
    CHECK(nlm_cb_run(w, n, &ar) == NLM_CB_OK && acks.data == 2 && acks.last_seq == 2);

    /* a callback's STOP and error end the loop */
    n = put_msg(w, 0, RTM_NEWLINK, 0, 1, 0, body, sizeof body);
    n = put_msg(w, n, RTM_NEWLINK, 0, 2, 0, body, sizeof body);
    seen st = { .stop_at = 1 };
    nlm_run rs = { .data_cb = count_data, .arg = &st };
    CHECK(nlm_cb_run(w, n, &rs) == NLM_CB_STOP && st.data == 1 && rs.ended_by == 0);
    seen se = { .fail_with = -ENOMEM };
    nlm_run re = { .data_cb = count_data, .arg = &se };
    CHECK(nlm_cb_run(w, n, &re) == -ENOMEM && se.data == 1);
}

static void test_loop_framing(void)
{
    uint8_t w[256];
    memset(w, 0, sizeof w);
    uint8_t body[12] = { 2 };
    size_t n = put_msg(w, 0, RTM_NEWROUTE, 0, 1, 0, body, sizeof body);
    seen s = { 0 };
    nlm_run r = { .data_cb = count_data, .arg = &s };

    /* a stray tail shorter than a header */
    CHECK(nlm_cb_run(w, n + 6, &r) == -EBADMSG && r.bad_left == 6 && r.bad_len == 0);
    CHECK(s.data == 1);
    /* nlmsg_len past the buffer: named, nothing of it handed on */
    s.data = 0;
    CHECK(nlm_cb_run(w, n - 4, &r) == -EBADMSG);
    CHECK(r.bad_type == RTM_NEWROUTE && r.bad_len == 28 && r.bad_left == 24 && s.data == 0);
    /* nlmsg_len below a header */
    nlm_put32(w, 8);
    CHECK(nlm_cb_run(w, n, &r) == -EBADMSG && r.bad_len == 8);
    nlm_put32(w, 28);
    /* allow_truncated: the cut message is handed on with what came */
    nlm_run rt = { .allow_truncated = true, .data_cb = count_data, .arg = &s };
    s.data = 0;
    CHECK(nlm_cb_run(w, n - 4, &rt) == NLM_CB_OK);
    CHECK(s.data == 1 && s.last_truncated && s.last_len == 24);
    /* an empty buffer is no error */
    CHECK(nlm_cb_run(w, 0, &r) == NLM_CB_OK);
}

/* ---- the socket ------------------------------------------------------------------- */

static void test_sender_check(void)
{
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    CHECK(nlm_from_kernel(&sa, sizeof sa));
    sa.nl_pid = 1234;
    CHECK(!nlm_from_kernel(&sa, sizeof sa));
    sa.nl_pid = 0;
    CHECK(!nlm_from_kernel(&sa, 4));                        /* a short address proves nothing */

    /* a datagram from a user socket is not the kernel's */
    int a = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int b = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (a < 0 || b < 0) {
        fprintf(stderr, "test_nlmsg: no netlink sockets here (%s): socket part skipped\n",
                strerror(errno));
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
        return;
    }
    struct sockaddr_nl bind_any;
    memset(&bind_any, 0, sizeof bind_any);
    bind_any.nl_family = AF_NETLINK;
    CHECK(bind(a, (struct sockaddr *)&bind_any, sizeof bind_any) == 0);
    CHECK(bind(b, (struct sockaddr *)&bind_any, sizeof bind_any) == 0);
    uint32_t pa = 0, pb = 0;
    CHECK(nlm_port_id(a, &pa) == 0 && nlm_port_id(b, &pb) == 0 && pa != 0 && pa != pb);

    uint8_t w[64];
    size_t n = put_error(w, 0, NLMSG_ERROR, 1, pa, -EPERM);    /* a forged "ACK" */
    struct sockaddr_nl to;
    memset(&to, 0, sizeof to);
    to.nl_family = AF_NETLINK;
    to.nl_pid = pa;
    CHECK(sendto(b, w, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n);
    uint8_t in[64];
    bool kernel = true, truncated = true;
    ssize_t k = nlm_recv(a, in, sizeof in, 0, &kernel, &truncated);
    CHECK(k == (ssize_t)n && !kernel && !truncated);

    /* one bigger than the buffer is reported cut */
    CHECK(sendto(b, w, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n);
    k = nlm_recv(a, in, 16, 0, &kernel, &truncated);
    CHECK(k == 16 && truncated);
    /* nothing queued: EAGAIN, not a hang */
    CHECK(nlm_recv(a, in, sizeof in, MSG_DONTWAIT, &kernel, &truncated) == -EAGAIN);
    close(a);
    close(b);
}

int main(void)
{
    test_put_parse_round_trip();
    test_put_bounds();
    test_malformed_attributes();
    test_strings();
    test_loop_filters_port_and_seq();
    test_loop_dump_intr();
    test_loop_errors_and_acks();
    test_loop_framing();
    test_sender_check();
    printf("test_nlmsg: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
