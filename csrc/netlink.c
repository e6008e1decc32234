/*
 * netlink.c - sending rule and route requests to a live kernel over rtnetlink.
 *
 * The model's requests (pr_rule_req / pr_route_req) already have the shape of
 * RTM_NEWRULE / RTM_DELRULE / RTM_NEWROUTE / RTM_DELROUTE messages; this file
 * encodes them from the field tables (fields.c), as iproute2 would (each
 * attribute's payload; the order is ascending type), and sends many of
 * them at once.
 * The wire format and the kernel's batch behaviour are section 8 of the
 * project's specification (shared/docs/kernel-semantics.md, beside the repository).
 *
 * Design
 *  - A batch (pr_nl_batch) is one contiguous buffer of encoded messages plus
 *    the offset of each, so a chunk of consecutive operations is a single
 *    iovec: no copy at send time.  Sequence numbers are written at send time:
 *    operation i gets seq base+i, which is how each ACK maps back to it.
 *  - Every message asks for an ACK (NLM_F_ACK).  The kernel runs the messages
 *    of one sendmsg in order, synchronously inside the call, and queues one
 *    ACK per message on our receive queue; an error does not stop the rest.
 *  - Chunking: a chunk must fit the send buffer (len <= sk_sndbuf - 32, else
 *    EMSGSIZE) and its ACKs must fit the receive buffer, because nothing can
 *    read them while the kernel is still inside sendmsg: when the queue
 *    overflows the kernel drops ACKs and the next recv fails with ENOBUFS.
 *    So each chunk is followed by reading all of its ACKs before the next
 *    one is sent ("read while sending"), and chunks are sized from SO_SNDBUF
 *    and SO_RCVBUF (an ACK costs about 832 bytes of receive buffer here; we
 *    count 1024, plus the echoed request when NETLINK_CAP_ACK is off).
 *  - ACK accounting: results[i].error is PR_NL_NOT_SENT until operation i is
 *    handed to the kernel, PR_NL_UNKNOWN while its ACK is owed, and the
 *    final 0 / errno when the ACK arrives.  After ENOBUFS the ACKs still
 *    queued are read; operations whose ACK was dropped stay PR_NL_UNKNOWN:
 *    the kernel may well have applied them, so they are never reported as
 *    done (nor as failed).  The budget is then halved for later chunks.
 *  - EMSGSIZE on send (the send buffer shrank, or the caller asked for bigger
 *    chunks than it allows): nothing of that chunk ran, so it is halved and
 *    sent again; a single message that is still too big fails alone.
 *  - Only replies whose sender address has nl_pid 0 (the kernel) are
 *    believed; anything else on the socket is counted and dropped.  Each
 *    datagram then goes through the toolkit's loop (nlmsg.h, nlm_cb_run):
 *    messages outside the batch's sequence window or for another port id
 *    count as stray, ACKs settle their operation.
 *
 * Byte order: netlink headers and integer attributes are host order, and so
 * are the FRA_*_RANGE ports; addresses are copied as given (network order),
 * FRA_TUN_ID is big-endian 64-bit and FRA_FLOWLABEL(_MASK) big-endian 32-bit.
 */
#define _GNU_SOURCE   /* setns, recvmmsg */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "fields.h"
#include "nlmsg.h"
#include "polroute.h"

enum {
    NL_MAX_MSG = 4096,          /* bound on one encoded request (a 32-leg IPv6 route is ~1.4 KiB) */
};

/* The public present bits and constants are the uapi numbers (linux/fib_rules.h, linux/rtnetlink.h):
 * the field tables' rows carry PR_ numbers, and the encoder writes each as the FRA_ / RTA_ type. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(PR_FRA_DST, FRA_DST) && SAME(PR_FRA_SRC, FRA_SRC) && SAME(PR_FRA_IIFNAME, FRA_IIFNAME)
               && SAME(PR_FRA_GOTO, FRA_GOTO) && SAME(PR_FRA_PRIORITY, FRA_PRIORITY)
               && SAME(PR_FRA_FWMARK, FRA_FWMARK) && SAME(PR_FRA_FLOW, FRA_FLOW)
               && SAME(PR_FRA_TUN_ID, FRA_TUN_ID) && SAME(PR_FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_IFGROUP)
               && SAME(PR_FRA_SUPPRESS_PREFIXLEN, FRA_SUPPRESS_PREFIXLEN) && SAME(PR_FRA_TABLE, FRA_TABLE)
               && SAME(PR_FRA_FWMASK, FRA_FWMASK) && SAME(PR_FRA_OIFNAME, FRA_OIFNAME)
               && SAME(PR_FRA_L3MDEV, FRA_L3MDEV) && SAME(PR_FRA_UID_RANGE, FRA_UID_RANGE)
               && SAME(PR_FRA_PROTOCOL, FRA_PROTOCOL) && SAME(PR_FRA_IP_PROTO, FRA_IP_PROTO)
               && SAME(PR_FRA_SPORT_RANGE, FRA_SPORT_RANGE) && SAME(PR_FRA_DPORT_RANGE, FRA_DPORT_RANGE)
               && SAME(PR_FRA_DSCP, FRA_DSCP) && SAME(PR_FRA_FLOWLABEL, FRA_FLOWLABEL)
               && SAME(PR_FRA_FLOWLABEL_MASK, FRA_FLOWLABEL_MASK) && SAME(PR_FRA_SPORT_MASK, FRA_SPORT_MASK)
               && SAME(PR_FRA_DPORT_MASK, FRA_DPORT_MASK) && SAME(PR_FRA_DSCP_MASK, FRA_DSCP_MASK),
               "PR_FRA_* are the uapi FRA_* numbers");
_Static_assert(SAME(PR_RTA_DST, RTA_DST) && SAME(PR_RTA_OIF, RTA_OIF) && SAME(PR_RTA_GATEWAY, RTA_GATEWAY)
               && SAME(PR_RTA_PRIORITY, RTA_PRIORITY) && SAME(PR_RTA_PREFSRC, RTA_PREFSRC)
               && SAME(PR_RTA_METRICS, RTA_METRICS) && SAME(PR_RTA_MULTIPATH, RTA_MULTIPATH)
               && SAME(PR_RTA_FLOW, RTA_FLOW) && SAME(PR_RTA_TABLE, RTA_TABLE) && SAME(PR_RTA_VIA, RTA_VIA)
               && SAME(PR_RTA_PREF, RTA_PREF) && SAME(PR_RTA_NH_ID, RTA_NH_ID) && SAME(PR_RTAX_MAX, RTAX_MAX),
               "PR_RTA_* are the uapi RTA_* numbers");
_Static_assert(SAME(PR_RTM_NEWRULE, RTM_NEWRULE) && SAME(PR_RTM_DELRULE, RTM_DELRULE)
               && SAME(PR_RTM_NEWROUTE, RTM_NEWROUTE) && SAME(PR_RTM_DELROUTE, RTM_DELROUTE),
               "PR_RTM_* are the uapi RTM_* numbers");
#undef SAME

#define NL_SNDBUF_WANT (1 << 20)      /* the kernel doubles it: 2 MiB chunks */
#define NL_RCVBUF_WANT (16 << 20)     /* 32 MiB: room for ~32k ACKs per chunk */
#define NL_ACK_COST 1024u             /* receive-buffer bytes charged per queued ACK */
#define NL_RECV_SLOTS 32
#define NL_RECV_SLOT_SIZE 4096        /* an ACK is 36 bytes + TLVs (+ echo when not capped) */
#define NL_DEFAULT_TIMEOUT_MS 5000

/* ---- the batch ---------------------------------------------------------- */

struct pr_nl_batch {
    uint8_t *buf;               /* encoded messages, back to back (each 4-aligned) */
    size_t len, cap;
    uint32_t *off;              /* offset of message i in buf */
    size_t n, capn;
};

pr_nl_batch *pr_nl_batch_new(size_t capacity)
{
    pr_nl_batch *b = pr_calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    if (capacity > 0) {
        /* a hint: ~64 bytes per rule, more for routes; both grow on demand */
        size_t bytes = capacity < SIZE_MAX / 128u ? capacity * 96u : 0;
        b->off = pr_malloc(capacity * sizeof *b->off);
        b->buf = bytes ? pr_malloc(bytes) : NULL;
        if (b->off == NULL || (bytes && b->buf == NULL)) {
            free(b->off);
            free(b->buf);
            free(b);
            return NULL;
        }
        b->capn = capacity;
        b->cap = bytes;
    }
    return b;
}

void pr_nl_batch_free(pr_nl_batch *b)
{
    if (b == NULL)
        return;
    free(b->buf);
    free(b->off);
    free(b);
}

void pr_nl_batch_clear(pr_nl_batch *b)
{
    if (b != NULL)
        b->len = b->n = 0;
}

size_t pr_nl_batch_count(const pr_nl_batch *b) { return b ? b->n : 0; }
size_t pr_nl_batch_bytes(const pr_nl_batch *b) { return b ? b->len : 0; }

const uint8_t *pr_nl_batch_message(const pr_nl_batch *b, size_t i, size_t *len)
{
    if (b == NULL || i >= b->n)
        return NULL;
    const uint8_t *m = b->buf + b->off[i];
    if (len != NULL)
        *len = nlm_get32(m);
    return m;
}

/* Room for one more message of at most NL_MAX_MSG bytes. */
static int batch_reserve(pr_nl_batch *b)
{
    if (b->n >= (size_t)INT_MAX || b->len > (size_t)UINT32_MAX - NL_MAX_MSG)
        return -E2BIG;          /* offsets are u32 and the op index is returned as int */
    if (b->n == b->capn) {
        size_t nc = b->capn ? b->capn * 2 : 64;
        uint32_t *no = pr_realloc(b->off, nc * sizeof *no);
        if (no == NULL)
            return -ENOMEM;
        b->off = no;
        b->capn = nc;
    }
    if (b->cap - b->len < NL_MAX_MSG) {
        size_t nc = b->cap ? b->cap * 2 : 16384;
        while (nc - b->len < NL_MAX_MSG)
            nc *= 2;
        uint8_t *nb = pr_realloc(b->buf, nc);
        if (nb == NULL)
            return -ENOMEM;
        b->buf = nb;
        b->cap = nc;
    }
    return 0;
}

/* ---- raw messages (the journal's replay) ----------------------------------- */

const uint8_t *pr_nl_batch_data(const pr_nl_batch *b, size_t *len)
{
    if (len != NULL)
        *len = b ? b->len : 0;
    return b && b->n ? b->buf : NULL;
}

int pr_nl_batch_add_raw(pr_nl_batch *b, const uint8_t *msg, size_t len, int msg_type, int nlmsg_flags)
{
    if (b == NULL || msg == NULL || len < 16 || len > NL_MAX_MSG || (len & 3) != 0 || nlm_get32(msg) != len
        || nlmsg_flags < 0 || nlmsg_flags > 0xFFFF)
        return -EINVAL;
    /* a rule stays a rule and a route a route: only NEW <-> DEL */
    uint16_t was;
    memcpy(&was, msg + 4, sizeof was);
    bool rule = msg_type == PR_RTM_NEWRULE || msg_type == PR_RTM_DELRULE;
    bool route = msg_type == PR_RTM_NEWROUTE || msg_type == PR_RTM_DELROUTE;
    if (!(rule && (was == PR_RTM_NEWRULE || was == PR_RTM_DELRULE))
        && !(route && (was == PR_RTM_NEWROUTE || was == PR_RTM_DELROUTE)))
        return -EINVAL;
    int err = batch_reserve(b);
    if (err < 0)
        return err;
    uint8_t *m = b->buf + b->len;
    memcpy(m, msg, len);
    nlm_put16(m + 4, (uint16_t)msg_type);
    nlm_put16(m + 6, (uint16_t)((unsigned)nlmsg_flags | NLM_F_REQUEST | NLM_F_ACK));
    nlm_put32(m + 8, 0);        /* seq and port are set at send time */
    nlm_put32(m + 12, 0);
    b->off[b->n] = (uint32_t)b->len;
    b->len += len;
    return (int)b->n++;
}

/* ---- encoding ------------------------------------------------------------ */

/* The requests are encoded from the field tables (fields.c): header rows
 * fill fib_rule_hdr / struct rtmsg where pr_*_hdr_slots put them; attribute
 * rows are written in ascending attribute type (pr_field_wire.order) by the
 * row's kind.  Only the structured route kinds (RTA_VIA's struct rtvia, the
 * RTA_MULTIPATH legs, the RTA_METRICS nest) have helpers of their own. */

static unsigned addr_len(uint8_t family) { return family == PR_AF_INET ? 4u : 16u; }
static bool family_ok(uint8_t family) { return family == PR_AF_INET || family == PR_AF_INET6; }

static uint64_t load_uint(const uint8_t *p, uint32_t size)
{
    switch (size) {
    case 1: return *p;
    case 2: return nlm_get16(p);
    case 4: return nlm_get32(p);
    case 8: return nlm_get64(p);
    default: return 0;
    }
}

/* Table ids >= 256 only fit in FRA_TABLE / RTA_TABLE; iproute2 then puts
 * RT_TABLE_UNSPEC in the 8-bit header field. */
static uint8_t table8(uint64_t table) { return table < 256 ? (uint8_t)table : (uint8_t)RT_TABLE_UNSPEC; }

/* The header rows (and the table id's 8-bit twin, the prefix lengths) into
 * the zeroed family header.  Returns the present bits of the ALSO_HEADER
 * rows the header cannot hold (a table id > 255): those go out as attributes
 * too. */
static uint32_t fill_header(uint8_t *hdr, const uint8_t *req, const pr_field_info *rows, const pr_hdr_slot *slots,
                            const pr_field_wire *w)
{
    uint32_t also = 0;
    for (size_t k = 0; k < w->nhdr; k++) {
        const size_t i = w->hdr[k];
        const pr_field_info *f = &rows[i];
        if (slots[i].at) {
            uint8_t *at = hdr + slots[i].at - 1;
            if (f->flags & PR_FF_ALSO_HEADER) {
                const uint64_t v = load_uint(req + f->offset, f->size);
                *at = table8(v);
                if (v > 255)
                    also |= UINT32_C(1) << f->present_bit;
            } else {
                memcpy(at, req + f->offset, f->size);           /* host order, as stored */
            }
        }
        if (slots[i].aux_at)
            hdr[slots[i].aux_at - 1] = req[f->aux_offset];
    }
    return also;
}

/* The next row to send, in ascending type: a row's present bit is its type
 * (tests/c/test_fields.c), so the lowest bit left is the next in wire order. */
static const pr_field_info *next_row(const pr_field_info *rows, const pr_field_wire *w, uint32_t *sent)
{
    const unsigned t = (unsigned)__builtin_ctz(*sent);
    *sent &= *sent - 1;
    return &rows[w->row_of_type[t]];
}

/* An attribute row of a plain kind; -EINVAL for a name without its NUL, or
 * for a kind that needs structure (the route encoder's helpers take those). */
static int put_plain(nlm_buf *e, const pr_field_info *f, const uint8_t *req, uint8_t family)
{
    const uint8_t *v = req + f->offset;
    const uint16_t type = (uint16_t)f->nla_type;
    switch (f->kind) {
    case PR_FK_U8: case PR_FK_U16: case PR_FK_U32: case PR_FK_S32: case PR_FK_U64:
    case PR_FK_MASK: case PR_FK_FLAG: case PR_FK_IFINDEX:
        if (!(f->flags & PR_FF_BE_WIRE))
            nlm_attr_put(e, type, v, f->size);                  /* host order, as stored */
        else if (f->size == 4)
            nlm_attr_put_be32(e, type, nlm_get32(v));
        else if (f->size == 8)
            nlm_attr_put_be64(e, type, nlm_get64(v));
        else
            return -EINVAL;
        return 0;
    case PR_FK_RANGE16: case PR_FK_RANGE32:
        nlm_attr_put(e, type, v, f->size);      /* start, end: two host-order halves, as stored */
        return 0;
    case PR_FK_ADDR:
        nlm_attr_put(e, type, v, addr_len(family));
        return 0;
    case PR_FK_IFNAME: {
        size_t n = strnlen((const char *)v, f->size);
        if (n == f->size)                       /* no NUL: IFNAMSIZ is 16 with the terminator */
            return -EINVAL;
        nlm_attr_put(e, type, v, n + 1);
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* Opens the next message of the batch (seq is set at send time); batch_commit
 * closes it. */
static int batch_begin(pr_nl_batch *b, nlm_buf *e, int msg_type, int nlmsg_flags)
{
    int err = batch_reserve(b);
    if (err < 0)
        return err;
    nlm_msg_begin(e, b->buf + b->len, NL_MAX_MSG, (uint16_t)msg_type,
                  (uint16_t)((unsigned)nlmsg_flags | NLM_F_REQUEST | NLM_F_ACK), 0);
    return 0;
}

static int batch_commit(pr_nl_batch *b, nlm_buf *e, int err)
{
    if (err < 0)
        return err;
    int len = nlm_msg_end(e);
    if (len < 0)
        return len;
    b->off[b->n] = (uint32_t)b->len;
    b->len += (size_t)len;
    return (int)b->n++;
}

int pr_nl_batch_add_rule(pr_nl_batch *b, int msg_type, int nlmsg_flags, const pr_rule_req *r)
{
    if (b == NULL || r == NULL || (msg_type != PR_RTM_NEWRULE && msg_type != PR_RTM_DELRULE)
        || !family_ok(r->family) || nlmsg_flags < 0 || nlmsg_flags > 0xFFFF)
        return -EINVAL;
    nlm_buf e;
    int err = batch_begin(b, &e, msg_type, nlmsg_flags);
    if (err < 0)
        return err;
    const uint8_t *req = (const uint8_t *)r;
    uint8_t *frh = nlm_reserve(&e, RTNL_FIB_RULE_HDR_LEN);
    if (frh == NULL)
        return -EMSGSIZE;
    const pr_field_wire *w = pr_rule_wire();
    uint32_t sent = (r->present | fill_header(frh, req, pr_rule_fields, pr_rule_hdr_slots, w)) & w->bits;
    while (sent != 0 && err == 0)
        err = put_plain(&e, next_row(pr_rule_fields, w, &sent), req, r->family);
    return batch_commit(b, &e, err);
}

/* A gateway as RTA_GATEWAY (the route's family) or RTA_VIA (struct rtvia:
 * u16 family, host order, then that family's address). */
static void gateway_attr(nlm_buf *e, uint8_t route_family, uint8_t gw_family, const uint8_t *gw, bool as_via)
{
    if (!as_via) {
        nlm_attr_put(e, (uint16_t)pr_route_fields[PR_TF_GATEWAY].nla_type, gw, addr_len(route_family));
        return;
    }
    uint8_t via[2 + 16];
    nlm_put16(via, gw_family);
    memcpy(via + 2, gw, addr_len(gw_family));
    nlm_attr_put(e, (uint16_t)pr_route_fields[PR_TF_VIA].nla_type, via, 2u + addr_len(gw_family));
}

/* PR_FK_MULTIPATH: the leg count at offset, the pr_nexthop_req array at aux. */
static uint32_t legs_of(const pr_field_info *f, const uint8_t *req, const pr_nexthop_req **nh)
{
    memcpy(nh, req + f->aux_offset, sizeof *nh);
    return nlm_get32(req + f->offset);
}

/* The legs: struct rtnexthop each, then its gateway. */
static int put_legs(nlm_buf *e, const pr_field_info *f, const uint8_t *req, uint8_t family)
{
    const pr_nexthop_req *nh;
    const uint32_t count = legs_of(f, req, &nh);
    size_t at = nlm_nest_begin(e, (uint16_t)f->nla_type);
    for (uint32_t i = 0; i < count; i++) {
        const pr_nexthop_req *h = &nh[i];
        if (h->weight > 256 || (h->gw_family != 0 && !family_ok(h->gw_family)))
            return -EINVAL;
        size_t leg = e->len;
        uint8_t *rtnh = nlm_reserve(e, RTNL_RTNEXTHOP_LEN);
        if (rtnh == NULL)
            break;                              /* full: nlm_msg_end refuses the message */
        rtnh[2] = h->flags;
        rtnh[3] = (uint8_t)(h->weight ? h->weight - 1u : 0u);   /* rtnh_hops = weight - 1 */
        nlm_put32(rtnh + 4, h->ifindex);
        if (h->gw_family != 0)
            gateway_attr(e, family, h->gw_family, h->gw, h->gw_family != family);
        nlm_len16_end(e, leg);                                  /* rtnh_len */
    }
    nlm_nest_end(e, at);
    return 0;
}

/* PR_FK_METRICS: u32 values indexed by RTAX_x at offset, their bitmap at aux;
 * a plain nest (not NLA_F_NESTED), as iproute2 sends it. */
static void put_metrics(nlm_buf *e, const pr_field_info *f, const uint8_t *req)
{
    const uint32_t have = nlm_get32(req + f->aux_offset);
    size_t at = nlm_nest_begin(e, (uint16_t)f->nla_type);
    for (uint16_t x = RTAX_LOCK; x <= RTAX_MAX; x++)
        if ((have >> x) & 1u)
            nlm_attr_put_u32(e, x, nlm_get32(req + f->offset + 4u * x));
    nlm_nest_end(e, at);
}

/* What a structured row must hold before anything is written. */
static bool route_row_ok(const pr_field_info *f, const uint8_t *req)
{
    switch (f->kind) {
    case PR_FK_FAMILY:                          /* RTA_VIA's family */
        return family_ok(req[f->offset]);
    case PR_FK_MULTIPATH: {
        const pr_nexthop_req *nh;
        uint32_t count = legs_of(f, req, &nh);
        return count <= f->max && (count == 0 || nh != NULL);
    }
    case PR_FK_METRICS:                         /* RTAX_CC_ALGO is a string: not from a u32 */
        return !((nlm_get32(req + f->aux_offset) >> RTAX_CC_ALGO) & 1u);
    default:
        return true;
    }
}

int pr_nl_batch_add_route(pr_nl_batch *b, int msg_type, int nlmsg_flags, const pr_route_req *r)
{
    if (b == NULL || r == NULL || (msg_type != PR_RTM_NEWROUTE && msg_type != PR_RTM_DELROUTE)
        || !family_ok(r->family) || nlmsg_flags < 0 || nlmsg_flags > 0xFFFF)
        return -EINVAL;
    const uint8_t *req = (const uint8_t *)r;
    const pr_field_wire *w = pr_route_wire();
    for (uint32_t check = r->present & w->bits; check != 0;)    /* an ALSO_HEADER row is plain */
        if (!route_row_ok(next_row(pr_route_fields, w, &check), req))
            return -EINVAL;
    nlm_buf e;
    int err = batch_begin(b, &e, msg_type, nlmsg_flags);
    if (err < 0)
        return err;
    uint8_t *rtm = nlm_reserve(&e, RTNL_RTMSG_LEN);
    if (rtm == NULL)
        return -EMSGSIZE;
    uint32_t sent = (r->present | fill_header(rtm, req, pr_route_fields, pr_route_hdr_slots, w)) & w->bits;
    while (sent != 0 && err == 0) {
        const pr_field_info *f = next_row(pr_route_fields, w, &sent);
        switch (f->kind) {
        case PR_FK_FAMILY:
            gateway_attr(&e, r->family, req[f->offset], req + f->aux_offset, true);
            break;
        case PR_FK_MULTIPATH:
            err = put_legs(&e, f, req, r->family);
            break;
        case PR_FK_METRICS:
            put_metrics(&e, f, req);
            break;
        default:
            err = put_plain(&e, f, req, r->family);
            break;
        }
    }
    return batch_commit(b, &e, err);
}

/* ---- the socket ------------------------------------------------------------ */

static void set_buffer(int fd, int force_opt, int opt, int bytes)
{
    /* *BUFFORCE (CAP_NET_ADMIN) passes net.core.[rw]mem_max; otherwise take what the cap allows */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) < 0)
        (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static int socket_in_current_ns(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    int one = 1;
    for (int i = 0; i < 2; i++) {
        int opt = i == 0 ? NETLINK_EXT_ACK : NETLINK_CAP_ACK;
        if (setsockopt(fd, SOL_NETLINK, opt, &one, sizeof one) < 0 && errno != ENOPROTOOPT) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, NL_SNDBUF_WANT);
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, NL_RCVBUF_WANT);
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;                      /* nl_pid 0: the kernel assigns the port id */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int open_own_netns(void)
{
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {                                   /* before Linux 3.17 */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return fd < 0 ? -errno : fd;
}

int pr_nl_open(const char *netns_path)
{
    if (netns_path == NULL || netns_path[0] == '\0')
        return socket_in_current_ns();

    /* A socket belongs to the namespace of the thread that creates it, so
     * this thread visits the target namespace just for socket(). */
    int home = open_own_netns();
    if (home < 0)
        return home;
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        int err = -errno;
        close(home);
        return err;
    }
    int fd = setns(target, CLONE_NEWNET) < 0 ? -errno : socket_in_current_ns();
    close(target);
    if (setns(home, CLONE_NEWNET) < 0) {            /* always go home, also after errors */
        int err = -errno;
        if (fd >= 0)
            close(fd);
        fd = err;
    }
    close(home);
    return fd;
}

int pr_nl_close(int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

/* ---- sending and ACK accounting ------------------------------------------ */

typedef struct recv_ctx {
    int fd;
    uint32_t seq_base;
    uint32_t port;              /* ours: ACKs carry it (0: unknown, not checked) */
    size_t n;                   /* operations in the batch */
    size_t lo, hi;              /* the chunk whose owed ACKs are counted */
    size_t settled;             /* owed ACKs of [lo, hi) that came in this datagram */
    pr_nl_result *res;
    pr_nl_stats *st;
    struct mmsghdr mm[NL_RECV_SLOTS];
    struct iovec iov[NL_RECV_SLOTS];
    struct sockaddr_nl from[NL_RECV_SLOTS];
    uint8_t *bufs;
} recv_ctx;

static void set_msg(pr_nl_result *r, const char *text)
{
    snprintf(r->msg, sizeof r->msg, "%s", text);
}

/* NLMSGERR_ATTR_MSG from the TLVs after the nlmsgerr (and the echoed request unless capped). */
static void ack_message(const nlm_msg *m, pr_nl_result *r)
{
    r->msg[0] = '\0';
    if (!(m->flags & NLM_F_ACK_TLVS))
        return;
    size_t off = NLM_ERRLEN;    /* within the payload */
    if (!(m->flags & NLM_F_CAPPED)) {
        uint32_t req_len = nlm_get32(m->payload + 4);
        if (req_len < NLM_HDRLEN)
            return;
        off = nlm_align(NLM_ERRLEN + (size_t)(req_len - NLM_HDRLEN));
    }
    if (off >= m->payload_len)
        return;
    nlm_iter it;
    nlm_attr a;
    nlm_iter_init(&it, m->payload + off, m->payload_len - off);
    while (nlm_attr_next(&it, &a) > 0) {      /* the first message; a bad TLV ends the search */
        if (a.type != NLM_ERRATTR_MSG)
            continue;
        size_t slen = strnlen((const char *)a.data, a.len);
        if (slen > sizeof r->msg - 1)
            slen = sizeof r->msg - 1;
        memcpy(r->msg, a.data, slen);
        r->msg[slen] = '\0';
        return;
    }
}

/* An NLMSG_ERROR of one of our operations (the loop checked seq and port). */
static int on_ack(const nlm_msg *m, void *arg)
{
    recv_ctx *c = arg;
    size_t idx = (size_t)(uint32_t)(m->seq - c->seq_base);
    if (m->type != NLMSG_ERROR || m->len < NLM_HDRLEN + NLM_ERRLEN
        || c->res[idx].error != PR_NL_UNKNOWN) {
        c->st->stray++;                         /* an NLMSG_DONE, cut short, or a second ACK */
        return NLM_CB_OK;
    }
    int32_t e;
    memcpy(&e, m->payload, sizeof e);
    pr_nl_result *r = &c->res[idx];
    r->error = e < 0 && e > INT32_MIN ? -e : (e == 0 ? 0 : EPROTO);
    ack_message(m, r);
    c->st->acks++;
    if (idx >= c->lo && idx < c->hi)
        c->settled++;
    return NLM_CB_OK;                           /* an ACK ends nothing: more are owed */
}

static int on_stray(const nlm_msg *m, void *arg)
{
    (void)m;
    ((recv_ctx *)arg)->st->stray++;             /* nothing but ACKs is expected here */
    return NLM_CB_OK;
}

static int on_stale(const nlm_msg *m, void *arg)
{
    (void)m;
    ((recv_ctx *)arg)->st->stale++;
    return NLM_CB_OK;
}

/* One datagram from the kernel: may hold several messages. Returns how many
 * owed ACKs of operations in [lo, hi) it settled. */
static size_t parse_datagram(recv_ctx *c, const uint8_t *d, size_t len, size_t lo, size_t hi,
                             bool stale)
{
    nlm_run run = {
        .seq = c->seq_base,
        .seq_span = stale ? 0 : (uint32_t)c->n,      /* only this batch's ACKs */
        .port = stale ? 0 : c->port,
        .allow_truncated = true,                      /* the error code leads: use what came */
        .ignore_dump_intr = true,                     /* no dumps here */
        .data_cb = stale ? on_stale : on_stray,
        .ctl_cb = stale ? on_stale : on_ack,
        .arg = c,
    };
    c->lo = lo;
    c->hi = hi;
    c->settled = 0;
    (void)nlm_cb_run(d, len, &run);     /* a malformed rest is dropped, as a lost ACK */
    c->st->stray += (uint32_t)run.skipped;            /* not ours: another batch's late ACK */
    return c->settled;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads replies until the `owed` ACKs of operations [lo, hi) have come, the
 * queue is empty after an overflow, or timeout_ms have passed (a deadline, so
 * that a stream of foreign messages cannot keep us here).  stale: discard
 * what is queued until the queue is empty (before sending; bounded too).
 * Returns 0, or a negative errno for a socket error other than ENOBUFS. */
static int collect(recv_ctx *c, size_t lo, size_t hi, size_t owed, bool stale,
                   int timeout_ms, bool *overflow, bool *timed_out)
{
    const int64_t deadline = now_ms() + timeout_ms;
    unsigned rounds = 0;
    while (owed > 0 || (stale && rounds++ < 1024)) {
        if (owed > 0 && now_ms() > deadline) {
            *timed_out = true;
            return 0;
        }
        for (int i = 0; i < NL_RECV_SLOTS; i++) {
            c->iov[i].iov_base = c->bufs + (size_t)i * NL_RECV_SLOT_SIZE;
            c->iov[i].iov_len = NL_RECV_SLOT_SIZE;
            memset(&c->mm[i], 0, sizeof c->mm[i]);
            c->mm[i].msg_hdr.msg_name = &c->from[i];
            c->mm[i].msg_hdr.msg_namelen = sizeof c->from[i];
            c->mm[i].msg_hdr.msg_iov = &c->iov[i];
            c->mm[i].msg_hdr.msg_iovlen = 1;
        }
        int k = recvmmsg(c->fd, c->mm, NL_RECV_SLOTS, MSG_DONTWAIT, NULL);
        c->st->recv_calls++;
        if (k < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e == ENOBUFS) {                 /* ACKs were dropped; read those that were kept */
                *overflow = true;
                c->st->enobufs++;
                continue;
            }
            if (e != EAGAIN && e != EWOULDBLOCK)
                return -e;
            if (stale || *overflow)
                return 0;                       /* the kernel sends nothing more for this chunk */
            int64_t left = deadline - now_ms();
            struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
            int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (pr == 0) {
                *timed_out = true;
                return 0;
            }
            if (pr < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        for (int i = 0; i < k; i++) {
            const struct msghdr *h = &c->mm[i].msg_hdr;
            if (!nlm_from_kernel(&c->from[i], h->msg_namelen)) {
                c->st->foreign++;               /* only the kernel answers requests */
                continue;
            }
            size_t got = c->mm[i].msg_len < NL_RECV_SLOT_SIZE ? c->mm[i].msg_len : NL_RECV_SLOT_SIZE;
            size_t s = parse_datagram(c, (const uint8_t *)c->iov[i].iov_base, got, lo, hi, stale);
            owed = s < owed ? owed - s : 0;
        }
    }
    return 0;
}

static int sockopt_int(int fd, int level, int opt, int dflt)
{
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, level, opt, &v, &l) < 0 ? dflt : v;
}

static uint32_t pick_seq_base(void)
{
    static atomic_uint calls;               /* two calls in the same nanosecond still differ */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned k = atomic_fetch_add(&calls, 1u) + 1u;
    return (uint32_t)ts.tv_nsec ^ ((uint32_t)ts.tv_sec << 20) ^ (uint32_t)(k * 0x9E3779B9u);
}

int pr_nl_send(int fd, pr_nl_batch *b, pr_nl_result *results, size_t nresults,
               const pr_nl_options *opt, pr_nl_stats *stats)
{
    pr_nl_stats st_local;
    pr_nl_stats *st = stats != NULL ? stats : &st_local;
    memset(st, 0, sizeof *st);
    if (fd < 0 || b == NULL || nresults < b->n || (b->n > 0 && results == NULL))
        return -EINVAL;
    const size_t n = b->n;
    for (size_t i = 0; i < n; i++) {
        results[i].error = PR_NL_NOT_SENT;
        set_msg(&results[i], "not sent");
    }
    if (n == 0)
        return 0;

    const int sndbuf = sockopt_int(fd, SOL_SOCKET, SO_SNDBUF, 212992 * 2);
    const int rcvbuf = sockopt_int(fd, SOL_SOCKET, SO_RCVBUF, 212992 * 2);
    const bool capped = sockopt_int(fd, SOL_NETLINK, NETLINK_CAP_ACK, 0) != 0;
    st->sndbuf = (uint32_t)(sndbuf > 0 ? sndbuf : 0);
    st->rcvbuf = (uint32_t)(rcvbuf > 0 ? rcvbuf : 0);
    /* netlink_sendmsg refuses len > sk_sndbuf - 32 with EMSGSIZE */
    size_t max_bytes = opt && opt->max_chunk_bytes ? opt->max_chunk_bytes
                       : (sndbuf > 64 ? (size_t)sndbuf - 32u : 32u);
    /* ACK budget in receive-buffer bytes, or a fixed ACK count if the caller asked */
    size_t max_acks = opt && opt->max_chunk_acks ? opt->max_chunk_acks : 0;
    size_t ack_cost = NL_ACK_COST;
    const size_t rcv_budget = rcvbuf > 0 ? (size_t)rcvbuf : 1u;
    const int timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms : NL_DEFAULT_TIMEOUT_MS;

    recv_ctx *c = pr_calloc(1, sizeof *c);
    uint8_t *bufs = pr_malloc((size_t)NL_RECV_SLOTS * NL_RECV_SLOT_SIZE);
    if (c == NULL || bufs == NULL) {
        free(c);
        free(bufs);
        return -ENOMEM;
    }
    c->fd = fd;
    c->bufs = bufs;
    c->n = n;
    c->res = results;
    c->st = st;
    if (nlm_port_id(fd, &c->port) < 0)
        c->port = 0;                    /* not checked then; the sender still is */

    /* Whatever an earlier call left on the socket (late ACKs, a pending
     * ENOBUFS) must not be taken for this call's answers. */
    bool overflow = false, timed_out = false;
    int rc = collect(c, 0, 0, 0, true, 0, &overflow, &timed_out);
    st->enobufs = 0;

    c->seq_base = pick_seq_base();
    for (size_t i = 0; i < n; i++)
        nlm_put32(b->buf + b->off[i] + 8, c->seq_base + (uint32_t)i);

    size_t i = 0;
    while (rc == 0 && i < n) {
        /* the chunk [i, j): contiguous in the buffer, so one iovec */
        size_t j = i, bytes = 0, cost = 0;
        while (j < n) {
            size_t end = j + 1 < n ? b->off[j + 1] : b->len;
            size_t mlen = end - b->off[j];
            size_t c_ack = ack_cost + (capped ? 0 : mlen);
            if (j > i && (bytes + mlen > max_bytes
                          || (max_acks ? j - i >= max_acks : cost + c_ack > rcv_budget)))
                break;
            bytes += mlen;
            cost += c_ack;
            j++;
        }
        st->chunk_bytes_limit = (uint32_t)(max_bytes < UINT32_MAX ? max_bytes : UINT32_MAX);
        for (size_t k = i; k < j; k++)
            results[k].error = PR_NL_UNKNOWN;

        /* one datagram: the chunk is contiguous in the buffer */
        int sent = nlm_send(fd, b->buf + b->off[i], bytes);
        st->send_calls++;
        if (sent < 0) {
            int e = -sent;
            for (size_t k = i; k < j; k++)  /* a refused send ran none of the chunk */
                results[k].error = PR_NL_NOT_SENT;
            if (e == EMSGSIZE && j - i > 1) {
                max_bytes = bytes / 2;          /* split and try again */
                st->emsgsize_splits++;
                continue;
            }
            if (e == EMSGSIZE) {                /* one message alone is too big for this socket */
                results[i].error = EMSGSIZE;
                set_msg(&results[i], "message larger than the socket's send buffer allows");
                i = j;
                continue;
            }
            rc = -e;
            break;
        }
        st->chunks++;
        st->messages += (uint32_t)(j - i);
        st->bytes += (uint64_t)bytes;
        if (j - i > st->max_chunk_ops)
            st->max_chunk_ops = (uint32_t)(j - i);

        overflow = timed_out = false;
        rc = collect(c, i, j, j - i, false, timeout_ms, &overflow, &timed_out);
        for (size_t k = i; k < j; k++) {
            if (results[k].error != PR_NL_UNKNOWN)
                continue;
            set_msg(&results[k], overflow
                    ? "outcome unknown: its ACK was dropped (receive queue overflow, ENOBUFS)"
                    : timed_out ? "outcome unknown: no ACK before the timeout"
                                : "outcome unknown: socket error while reading ACKs");
        }
        if (overflow) {                         /* smaller chunks from now on */
            if (max_acks)
                max_acks = max_acks > 1 ? max_acks / 2 : 1;
            else
                ack_cost *= 2;
        }
        i = j;
    }
    if (rc < 0) {
        for (size_t k = i; k < n; k++)
            if (results[k].error == PR_NL_NOT_SENT)
                snprintf(results[k].msg, sizeof results[k].msg, "not sent: %s", strerror(-rc));
    }
    free(bufs);
    free(c);

    size_t failed = 0;
    for (size_t k = 0; k < n; k++)
        failed += results[k].error != 0;
    if (rc < 0)
        return rc;
    return failed > (size_t)INT_MAX ? INT_MAX : (int)failed;
}
