/*
 * nl_dump.c - reading a live namespace's links, addresses, rules and routes.
 *
 * RTM_GETLINK / GETADDR / GETRULE / GETROUTE with NLM_F_DUMP on a socket from
 * pr_nl_open (which handles the namespace), and a decoder that turns each
 * reply into a fixed-size record appended to a flat array of the pr_dump
 * handle.  Strings, multipath legs and notes go to shared arrays that the
 * records index by offset, so the whole state is a handful of allocations,
 * freed by pr_dump_free.
 *
 * Decoding is table-driven: per message type, an array indexed by attribute
 * type gives the field's offset in the record, its kind (which fixes the
 * payload length that is accepted) and whether the type is noted.  Nested
 * attributes with structure of their own (IFLA_LINKINFO, IFLA_AF_SPEC,
 * RTA_METRICS, RTA_MULTIPATH, caches) have small handlers.  A message that
 * does not parse (a length past its container, a fixed-size attribute of
 * another size, an address of the wrong length for the family, a string
 * without its NUL) fails the call with -EBADMSG and an error text naming the
 * message and the attribute; nothing of that call stays appended.
 *
 * The dump loop believes only datagrams whose sender is the kernel (nl_pid 0)
 * and messages carrying its own seq and port id.  An interrupted dump
 * (NLM_F_DUMP_INTR: the set changed while it was being walked), a lost reply
 * (ENOBUFS) or a datagram that did not fit the buffer (MSG_TRUNC; the buffer
 * is doubled) start it again from scratch.
 *
 * Byte order: headers and integer attributes are host order, FRA_TUN_ID is
 * big-endian 64-bit and FRA_FLOWLABEL(_MASK) big-endian 32-bit (stored host
 * order); addresses are copied as they come (network order).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "alloc.h"
#include "polroute.h"

enum {
    D_HDRLEN = 16,              /* struct nlmsghdr */
    D_IFINFOLEN = 16,           /* struct ifinfomsg */
    D_IFADDRLEN = 8,            /* struct ifaddrmsg */
    D_FRHLEN = 12,              /* struct fib_rule_hdr */
    D_RTMLEN = 12,              /* struct rtmsg */
    D_RTNHLEN = 8,              /* struct rtnexthop */
    D_MSG_ERROR = 2,
    D_MSG_DONE = 3,
    D_F_REQUEST = 0x1,
    D_F_MULTI = 0x2,
    D_F_DUMP_INTR = 0x10,
    D_F_DUMP = 0x300,           /* NLM_F_ROOT | NLM_F_MATCH */
    D_NLA_TYPE_MASK = 0x3FFF,   /* without NLA_F_NESTED / NLA_F_NET_BYTEORDER */
    D_RTM_NEWADDR = 20,
    D_RTM_NEWROUTE = 24,
    D_RTM_NEWRULE = 32,
    D_MAX_RESTARTS = 8,
    D_TIMEOUT_MS = 10000,       /* no datagram for this long: the dump is abandoned */
};

#define D_BUF_INITIAL (256u << 10)   /* kernel dump datagrams are <= 32 KiB unless min_dump_alloc says more */
#define D_BUF_MAX (16u << 20)

static inline size_t align4(size_t n) { return (n + 3u) & ~(size_t)3u; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, sizeof v); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, sizeof v); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, sizeof v); return v; }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof v); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- growable arrays ------------------------------------------------------ */

typedef struct vec {
    uint8_t *p;
    size_t n, cap;              /* elements */
    size_t size;                /* element size */
} vec;

/* A zeroed new element, or NULL on ENOMEM.  Pointers into the vector are
 * invalidated by the next push to the same vector. */
static void *vec_push(vec *v, size_t count)
{
    if (count > SIZE_MAX / v->size - v->n)
        return NULL;
    if (v->n + count > v->cap) {
        size_t nc = v->cap ? v->cap : 64;
        while (nc < v->n + count)
            nc = nc <= SIZE_MAX / 2 / v->size ? nc * 2 : v->n + count;
        uint8_t *np = pr_realloc(v->p, nc * v->size);
        if (np == NULL)
            return NULL;
        v->p = np;
        v->cap = nc;
    }
    uint8_t *at = v->p + v->n * v->size;
    memset(at, 0, count * v->size);
    v->n += count;
    return at;
}

/* ---- the handle --------------------------------------------------------- */

struct pr_dump {
    vec links, addrs, rules, routes, nexthops, notes, strings, metrics;
    pr_dump_stats st;
    uint8_t *buf;               /* receive buffer */
    size_t buf_size;
    char err[256];
    /* the dump session (pr_dump_start / pr_dump_step) */
    bool active;
    int fd, msg_type, family;
    uint32_t seq, port;
    unsigned attempts;
    size_t msg_index;
};

enum { NVECS = 8 };

typedef struct marks {
    size_t n[NVECS];
} marks;

static vec *vecs(pr_dump *d, int i)
{
    vec *all[NVECS] = { &d->links, &d->addrs, &d->rules, &d->routes, &d->nexthops, &d->notes,
                        &d->strings, &d->metrics };
    return all[i];
}

static marks mark(pr_dump *d)
{
    marks m;
    for (int i = 0; i < NVECS; i++)
        m.n[i] = vecs(d, i)->n;
    return m;
}

static void rollback(pr_dump *d, const marks *m)
{
    for (int i = 0; i < NVECS; i++)
        vecs(d, i)->n = m->n[i];
}

static size_t records(const pr_dump *d)
{
    return d->links.n + d->addrs.n + d->rules.n + d->routes.n;
}

pr_dump *pr_dump_new(void)
{
    pr_dump *d = pr_calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->links.size = sizeof(pr_dump_link);
    d->addrs.size = sizeof(pr_dump_addr);
    d->rules.size = sizeof(pr_dump_rule);
    d->routes.size = sizeof(pr_dump_route);
    d->nexthops.size = sizeof(pr_dump_nexthop);
    d->notes.size = sizeof(uint16_t);
    d->strings.size = 1;
    d->metrics.size = sizeof(uint32_t);
    return d;
}

void pr_dump_free(pr_dump *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < NVECS; i++)
        free(vecs(d, i)->p);
    free(d->buf);
    free(d);
}

void pr_dump_clear(pr_dump *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < NVECS; i++)
        vecs(d, i)->n = 0;
}

const char *pr_dump_error(const pr_dump *d) { return d ? d->err : "no handle"; }

void pr_dump_get_view(const pr_dump *d, pr_dump_view *v)
{
    memset(v, 0, sizeof *v);
    if (d == NULL)
        return;
    v->links = (const pr_dump_link *)(const void *)d->links.p;
    v->n_links = d->links.n;
    v->addrs = (const pr_dump_addr *)(const void *)d->addrs.p;
    v->n_addrs = d->addrs.n;
    v->rules = (const pr_dump_rule *)(const void *)d->rules.p;
    v->n_rules = d->rules.n;
    v->routes = (const pr_dump_route *)(const void *)d->routes.p;
    v->n_routes = d->routes.n;
    v->nexthops = (const pr_dump_nexthop *)(const void *)d->nexthops.p;
    v->n_nexthops = d->nexthops.n;
    v->notes = (const uint16_t *)(const void *)d->notes.p;
    v->n_notes = d->notes.n;
    v->metric_values = (const uint32_t *)(const void *)d->metrics.p;
    v->n_metric_values = d->metrics.n;
    v->strings = (const char *)d->strings.p;
    v->strings_len = d->strings.n;
}

void pr_dump_get_stats(const pr_dump *d, pr_dump_stats *st)
{
    if (d != NULL && st != NULL)
        *st = d->st;
}

/* ---- decoding context ----------------------------------------------------- */

typedef struct dctx {
    pr_dump *d;
    size_t msg_index;           /* within the call, for error texts */
    const char *msg_name;
    uint8_t family;             /* of the message being decoded */
    int err;                    /* 0 or a negative errno */
} dctx;

static void fail(dctx *c, int err, const char *fmt, ...)
{
    if (c->err)
        return;                 /* keep the first */
    c->err = err;
    int n = snprintf(c->d->err, sizeof c->d->err, "message %zu (%s): ", c->msg_index, c->msg_name);
    if (n < 0 || (size_t)n >= sizeof c->d->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->d->err + n, sizeof c->d->err - (size_t)n, fmt, ap);
    va_end(ap);
}

static bool oom(dctx *c)
{
    fail(c, -ENOMEM, "out of memory");
    return false;
}

/* Copies a NUL-terminated attribute string into the arena. */
static bool put_string(dctx *c, const uint8_t *p, size_t len, unsigned type, pr_dump_str *out,
                       size_t max_len)
{
    const uint8_t *nul = memchr(p, 0, len);
    if (nul == NULL) {
        fail(c, -EBADMSG, "attribute %u: string without its NUL", type);
        return false;
    }
    size_t n = (size_t)(nul - p);
    if (n > max_len) {
        fail(c, -EBADMSG, "attribute %u: string of %zu bytes, at most %zu allowed", type, n, max_len);
        return false;
    }
    if (c->d->strings.n + n + 1 > UINT32_MAX) {
        fail(c, -E2BIG, "string arena past 4 GiB");
        return false;
    }
    uint8_t *at = vec_push(&c->d->strings, n + 1);
    if (at == NULL)
        return oom(c);
    memcpy(at, p, n);                   /* the NUL is there: vec_push zeroes */
    out->off = (uint32_t)(c->d->strings.n - n - 1);
    out->len = (uint32_t)n;
    return true;
}

static bool put_note(dctx *c, unsigned type, uint32_t *off, uint32_t *count)
{
    uint16_t *n = vec_push(&c->d->notes, 1);
    if (n == NULL)
        return oom(c);
    *n = (uint16_t)type;
    if (*count == 0)
        *off = (uint32_t)(c->d->notes.n - 1);
    (*count)++;
    return true;
}

/* ---- the attribute tables --------------------------------------------------- */

enum kind {
    K_SKIP = 0,                 /* not decoded (only its `seen` bit) */
    K_U8, K_U16, K_U32, K_S32,
    K_U64ANY,                   /* u32 or u64, into a u64 */
    K_BE32, K_BE64,             /* big-endian, stored host order (u32 / u64) */
    K_ADDR,                     /* 4 or 16 bytes as the message family says, into uint8_t[16] */
    K_STR,                      /* NUL-terminated, into the string arena (pr_dump_str) */
    K_NAME16,                   /* NUL-terminated, <= 15 chars, into char[16] */
    K_PAIR16, K_PAIR32,         /* two host-order halves into two consecutive fields */
    K_NEST,                     /* a handler decodes it */
};

typedef struct attr_spec {
    uint8_t kind;
    uint8_t flags;
    uint16_t off;               /* of the field in the record */
    uint16_t fam_off;           /* K_ADDR: where to store the family (0 = nowhere) */
} attr_spec;

enum {
    A_NOTE = 1,                 /* add the type to the record's notes */
    A_PRESENT = 2,              /* set bit `type` in the record's present word (rules) */
    A_KNOWN = 4,                /* skipped, but not unknown (never noted as such) */
};

#define LINK(k, field) { (k), 0, (uint16_t)offsetof(pr_dump_link, field), 0 }
#define ADDR(k, field) { (k), 0, (uint16_t)offsetof(pr_dump_addr, field), 0 }
#define RULE(k, field, fl) { (k), (fl) | A_PRESENT, (uint16_t)offsetof(pr_dump_rule, r.field), 0 }
#define ROUTE(k, field, fl) { (k), (fl), (uint16_t)offsetof(pr_dump_route, field), 0 }

enum { IFLA_LINKINFO_ = 18, IFLA_AF_SPEC_ = 26, IFA_CACHEINFO_ = 6 };
enum { RTA_GATEWAY_ = 5, RTA_METRICS_ = 8, RTA_MULTIPATH_ = 9, RTA_FLOW_ = 11, RTA_CACHEINFO_ = 12,
       RTA_TABLE_ = 15, RTA_VIA_ = 18, RTA_ENCAP_ = 22 };

static const attr_spec link_attrs[] = {
    [3] = LINK(K_STR, name),                    /* IFLA_IFNAME */
    [4] = LINK(K_U32, mtu),                     /* IFLA_MTU */
    [5] = LINK(K_U32, link),                    /* IFLA_LINK */
    [10] = LINK(K_U32, master),                 /* IFLA_MASTER */
    [16] = LINK(K_U8, operstate),               /* IFLA_OPERSTATE */
    [IFLA_LINKINFO_] = { K_NEST, 0, 0, 0 },
    [IFLA_AF_SPEC_] = { K_NEST, 0, 0, 0 },
    [27] = LINK(K_U32, group),                  /* IFLA_GROUP */
    [37] = LINK(K_S32, link_netnsid),           /* IFLA_LINK_NETNSID */
};

static const attr_spec addr_attrs[] = {
    [1] = ADDR(K_ADDR, address),                /* IFA_ADDRESS */
    [2] = ADDR(K_ADDR, local),                  /* IFA_LOCAL */
    [3] = ADDR(K_STR, label),                   /* IFA_LABEL */
    [4] = ADDR(K_ADDR, broadcast),              /* IFA_BROADCAST */
    [IFA_CACHEINFO_] = { K_NEST, 0, 0, 0 },
    [8] = ADDR(K_U32, flags),                   /* IFA_FLAGS */
    [9] = ADDR(K_U32, metric),                  /* IFA_RT_PRIORITY */
    [11] = ADDR(K_U8, proto),                   /* IFA_PROTO */
};

/* Types without an entry (5, 7-9, > 30) are noted: pyroute2 0.9 has no name
 * for them, nor for 25-30, which are decoded and noted too. */
static const attr_spec rule_attrs[] = {
    [1] = RULE(K_ADDR, dst, 0),
    [2] = RULE(K_ADDR, src, 0),
    [3] = RULE(K_NAME16, iifname, 0),
    [4] = RULE(K_U32, goto_target, 0),
    [6] = RULE(K_U32, priority, 0),
    [10] = RULE(K_U32, fwmark, 0),
    [11] = RULE(K_U32, realm, 0),               /* FRA_FLOW */
    [12] = RULE(K_BE64, tun_id, 0),
    [13] = RULE(K_U32, suppress_ifgroup, 0),
    [14] = RULE(K_U32, suppress_prefixlen, 0),
    [15] = RULE(K_U32, table, 0),
    [16] = RULE(K_U32, fwmask, 0),
    [17] = RULE(K_NAME16, oifname, 0),
    [18] = { K_SKIP, A_KNOWN, 0, 0 },           /* FRA_PAD */
    [19] = RULE(K_U8, l3mdev, 0),
    [20] = RULE(K_PAIR32, uid_start, 0),
    [21] = RULE(K_U8, protocol, 0),
    [22] = RULE(K_U8, ip_proto, 0),
    [23] = RULE(K_PAIR16, sport_start, 0),
    [24] = RULE(K_PAIR16, dport_start, 0),
    [25] = RULE(K_U8, dscp, A_NOTE),
    [26] = RULE(K_BE32, flowlabel, A_NOTE),
    [27] = RULE(K_BE32, flowlabel_mask, A_NOTE),
    [28] = RULE(K_U16, sport_mask, A_NOTE),
    [29] = RULE(K_U16, dport_mask, A_NOTE),
    [30] = RULE(K_U8, dscp_mask, A_NOTE),
};

/* Noted: what no request of the model carries (source-specific routes, iif,
 * MPLS, encapsulation, expiry, TTL propagation, nexthop objects). */
static const attr_spec route_attrs[] = {
    [1] = ROUTE(K_ADDR, dst, 0),
    [2] = ROUTE(K_ADDR, src, A_NOTE),
    [3] = ROUTE(K_U32, iif, A_NOTE),
    [4] = ROUTE(K_U32, oif, 0),
    [RTA_GATEWAY_] = { K_ADDR, 0, (uint16_t)offsetof(pr_dump_route, gw),
                       (uint16_t)offsetof(pr_dump_route, gw_family) },
    [6] = ROUTE(K_U32, priority, 0),
    [7] = ROUTE(K_ADDR, prefsrc, 0),
    [RTA_METRICS_] = { K_NEST, 0, 0, 0 },
    [RTA_MULTIPATH_] = { K_NEST, 0, 0, 0 },
    [RTA_FLOW_] = ROUTE(K_U32, realm, 0),
    [RTA_CACHEINFO_] = { K_NEST, 0, 0, 0 },
    [RTA_TABLE_] = ROUTE(K_U32, table, 0),
    [16] = ROUTE(K_U32, mark, 0),
    [RTA_VIA_] = { K_NEST, 0, 0, 0 },
    [19] = { K_SKIP, A_NOTE, 0, 0 },            /* RTA_NEWDST */
    [20] = ROUTE(K_U8, pref, 0),
    [21] = ROUTE(K_U16, encap_type, A_NOTE),
    [RTA_ENCAP_] = { K_SKIP, A_NOTE, 0, 0 },
    [23] = ROUTE(K_U64ANY, expires, A_NOTE),
    [26] = { K_SKIP, A_NOTE, 0, 0 },            /* RTA_TTL_PROPAGATE */
    [30] = ROUTE(K_U32, nh_id, A_NOTE),
};

#define NSPEC(t) (sizeof(t) / sizeof((t)[0]))

static size_t kind_len(dctx *c, uint8_t kind)
{
    switch (kind) {
    case K_U8: return 1;
    case K_U16: return 2;
    case K_U32: case K_S32: case K_BE32: case K_PAIR16: return 4;
    case K_BE64: case K_PAIR32: return 8;
    case K_ADDR: return c->family == PR_AF_INET ? 4 : 16;
    default: return 0;          /* variable */
    }
}

/* Decodes one attribute with a fixed-layout kind into rec. */
static bool decode_simple(dctx *c, uint8_t *rec, const attr_spec *s, unsigned type,
                          const uint8_t *p, size_t len)
{
    size_t want = kind_len(c, s->kind);
    if (want && len != want && !(s->kind == K_U64ANY)) {
        fail(c, -EBADMSG, "attribute %u: %zu bytes of payload, %zu expected", type, len, want);
        return false;
    }
    uint8_t *f = rec + s->off;
    switch (s->kind) {
    case K_U8: *f = p[0]; break;
    case K_U16: memcpy(f, p, 2); break;
    case K_U32: case K_S32: memcpy(f, p, 4); break;
    case K_BE32: { uint32_t v = (uint32_t)get_be(p, 4); memcpy(f, &v, 4); break; }
    case K_BE64: { uint64_t v = get_be(p, 8); memcpy(f, &v, 8); break; }
    case K_PAIR16: memcpy(f, p, 4); break;      /* start, end: consecutive u16 fields */
    case K_PAIR32: memcpy(f, p, 8); break;
    case K_U64ANY: {
        uint64_t v;
        if (len == 4)
            v = get32(p);
        else if (len == 8)
            v = get64(p);
        else {
            fail(c, -EBADMSG, "attribute %u: %zu bytes of payload, 4 or 8 expected", type, len);
            return false;
        }
        memcpy(f, &v, 8);
        break;
    }
    case K_ADDR:
        memcpy(f, p, len);
        if (s->fam_off)
            rec[s->fam_off] = c->family;
        break;
    case K_STR:
        return put_string(c, p, len, type, (pr_dump_str *)(void *)f, 0xFFFF);
    case K_NAME16: {
        const uint8_t *nul = memchr(p, 0, len);
        if (nul == NULL || nul - p > 15) {
            fail(c, -EBADMSG, "attribute %u: interface name without a NUL in its first 16 bytes", type);
            return false;
        }
        memcpy(f, p, (size_t)(nul - p));
        break;
    }
    default:
        break;
    }
    return true;
}

typedef bool (*nest_fn)(dctx *c, uint8_t *rec, unsigned type, const uint8_t *p, size_t len);

/* Walks the attributes of [p, p+len): bounds, the table, the handler for
 * nested ones.  seen: bit per type (< 64) or NULL. */
static bool walk_attrs(dctx *c, uint8_t *rec, const attr_spec *tab, size_t ntab,
                       const uint8_t *p, size_t len, uint64_t *seen, uint32_t *present,
                       uint32_t *note_off, uint32_t *note_count, bool note_unknown, nest_fn nest)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 4) {
            fail(c, -EBADMSG, "%zu stray bytes after the last attribute", len - off);
            return false;
        }
        uint16_t alen = get16(p + off);
        unsigned type = get16(p + off + 2) & D_NLA_TYPE_MASK;
        if (alen < 4 || alen > len - off) {
            fail(c, -EBADMSG, "attribute %u: length %u past its container (%zu bytes left)",
                 type, alen, len - off);
            return false;
        }
        const uint8_t *pl = p + off + 4;
        size_t plen = (size_t)alen - 4u;
        if (type < 64 && seen)
            *seen |= UINT64_C(1) << type;
        const attr_spec *s = type < ntab ? &tab[type] : NULL;
        bool known = s != NULL && (s->kind != K_SKIP || s->flags != 0);
        if (s != NULL && s->kind == K_NEST) {
            if (!nest(c, rec, type, pl, plen))
                return false;
        } else if (s != NULL && s->kind != K_SKIP) {
            if (!decode_simple(c, rec, s, type, pl, plen))
                return false;
        }
        if (s != NULL && (s->flags & A_PRESENT) && present)
            *present |= UINT32_C(1) << type;
        if (note_count && ((s != NULL && (s->flags & A_NOTE)) || (note_unknown && !known)))
            if (!put_note(c, type, note_off, note_count))
                return false;
        off += align4(alen);
    }
    return true;
}

/* Finds attribute `type` directly inside [p, p+len) (already bounds-checked
 * by the caller's walk only for the container): NULL if absent. */
static const uint8_t *find_attr(dctx *c, const uint8_t *p, size_t len, unsigned type, size_t *plen,
                                bool *bad)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 4) {
            *bad = true;
            fail(c, -EBADMSG, "nested attribute: %zu stray bytes", len - off);
            return NULL;
        }
        uint16_t alen = get16(p + off);
        if (alen < 4 || alen > len - off) {
            *bad = true;
            fail(c, -EBADMSG, "nested attribute %u: length %u past its container",
                 get16(p + off + 2) & D_NLA_TYPE_MASK, alen);
            return NULL;
        }
        if ((get16(p + off + 2) & D_NLA_TYPE_MASK) == type) {
            *plen = (size_t)alen - 4u;
            return p + off + 4;
        }
        off += align4(alen);
    }
    return NULL;
}

/* ---- links ----------------------------------------------------------------- */

static bool link_nest(dctx *c, uint8_t *rec, unsigned type, const uint8_t *p, size_t len)
{
    pr_dump_link *l = (pr_dump_link *)(void *)rec;
    bool bad = false;
    size_t n;
    if (type == IFLA_LINKINFO_) {
        const uint8_t *kind = find_attr(c, p, len, 1, &n, &bad);          /* IFLA_INFO_KIND */
        if (bad || (kind && !put_string(c, kind, n, 1, &l->kind, 0xFFFF)))
            return false;
        const uint8_t *data = find_attr(c, p, len, 2, &n, &bad);          /* IFLA_INFO_DATA */
        if (bad)
            return false;
        if (data && kind && n > 0 && l->kind.len == 3
            && memcmp(c->d->strings.p + l->kind.off, "tun", 3) == 0) {
            size_t tl;
            const uint8_t *tt = find_attr(c, data, n, 3, &tl, &bad);        /* IFLA_TUN_TYPE */
            if (bad)
                return false;
            if (tt && tl != 1) {
                fail(c, -EBADMSG, "IFLA_TUN_TYPE: %zu bytes, 1 expected", tl);
                return false;
            }
            if (tt)
                l->tun_type = tt[0];
        }
    } else if (type == IFLA_AF_SPEC_) {
        const uint8_t *v6 = find_attr(c, p, len, PR_AF_INET6, &n, &bad);
        if (bad)
            return false;
        if (v6) {
            size_t gl;
            const uint8_t *g = find_attr(c, v6, n, 8, &gl, &bad);          /* IFLA_INET6_ADDR_GEN_MODE */
            if (bad)
                return false;
            if (g && gl != 1) {
                fail(c, -EBADMSG, "IFLA_INET6_ADDR_GEN_MODE: %zu bytes, 1 expected", gl);
                return false;
            }
            if (g) {
                l->addr_gen_mode = g[0];
                l->has_addr_gen_mode = 1;
            }
        }
    }
    return true;
}

static bool decode_link(dctx *c, const uint8_t *p, size_t len)
{
    if (len < D_IFINFOLEN) {
        fail(c, -EBADMSG, "%zu bytes, shorter than struct ifinfomsg", len);
        return false;
    }
    pr_dump_link *l = vec_push(&c->d->links, 1);
    if (l == NULL)
        return oom(c);
    c->family = p[0];
    l->ifi_type = get16(p + 2);
    l->ifindex = get32(p + 4);
    l->flags = get32(p + 8);
    return walk_attrs(c, (uint8_t *)l, link_attrs, NSPEC(link_attrs), p + D_IFINFOLEN,
                      len - D_IFINFOLEN, &l->seen, NULL, NULL, NULL, false, link_nest);
}

/* ---- addresses -------------------------------------------------------------- */

static bool addr_nest(dctx *c, uint8_t *rec, unsigned type, const uint8_t *p, size_t len)
{
    pr_dump_addr *a = (pr_dump_addr *)(void *)rec;
    if (type == IFA_CACHEINFO_) {
        if (len != 16) {
            fail(c, -EBADMSG, "IFA_CACHEINFO: %zu bytes, 16 expected", len);
            return false;
        }
        a->preferred_lft = get32(p);
        a->valid_lft = get32(p + 4);
        a->cstamp = get32(p + 8);
        a->tstamp = get32(p + 12);
    }
    return true;
}

static bool decode_addr(dctx *c, const uint8_t *p, size_t len)
{
    if (len < D_IFADDRLEN) {
        fail(c, -EBADMSG, "%zu bytes, shorter than struct ifaddrmsg", len);
        return false;
    }
    if (p[0] != PR_AF_INET && p[0] != PR_AF_INET6) {
        c->d->st.stray++;       /* another family's addresses (an AF_UNSPEC dump) */
        return true;
    }
    pr_dump_addr *a = vec_push(&c->d->addrs, 1);
    if (a == NULL)
        return oom(c);
    c->family = p[0];
    a->family = p[0];
    a->prefixlen = p[1];
    a->ifa_flags = p[2];
    a->scope = p[3];
    a->ifindex = get32(p + 4);
    a->flags = p[2];
    a->preferred_lft = a->valid_lft = UINT32_MAX;
    return walk_attrs(c, (uint8_t *)a, addr_attrs, NSPEC(addr_attrs), p + D_IFADDRLEN,
                      len - D_IFADDRLEN, &a->seen, NULL, NULL, NULL, false, addr_nest);
}

/* ---- rules ------------------------------------------------------------------- */

static bool no_nest(dctx *c, uint8_t *rec, unsigned type, const uint8_t *p, size_t len)
{
    (void)c; (void)rec; (void)type; (void)p; (void)len;
    return true;
}

static bool decode_rule(dctx *c, const uint8_t *p, size_t len)
{
    if (len < D_FRHLEN) {
        fail(c, -EBADMSG, "%zu bytes, shorter than struct fib_rule_hdr", len);
        return false;
    }
    if (p[0] != PR_AF_INET && p[0] != PR_AF_INET6) {
        c->d->st.stray++;
        return true;
    }
    pr_dump_rule *r = vec_push(&c->d->rules, 1);
    if (r == NULL)
        return oom(c);
    c->family = p[0];
    r->r.family = p[0];
    r->r.dst_len = p[1];
    r->r.src_len = p[2];
    r->r.tos = p[3];
    r->r.table = p[4];
    r->r.action = p[7];
    r->r.flags = get32(p + 8);
    r->r.suppress_prefixlen = -1;
    r->r.suppress_ifgroup = -1;
    r->r.uid_end = UINT32_MAX;
    return walk_attrs(c, (uint8_t *)r, rule_attrs, NSPEC(rule_attrs), p + D_FRHLEN, len - D_FRHLEN,
                      &r->seen, &r->r.present, &r->note_off, &r->note_count, true, no_nest);
}

/* ---- routes ------------------------------------------------------------------ */

/* RTA_VIA: u16 family + that family's address. */
static bool decode_via(dctx *c, const uint8_t *p, size_t len, uint8_t *fam, uint8_t gw[16])
{
    uint16_t f = len >= 2 ? get16(p) : 0;
    size_t want = f == PR_AF_INET ? 4 : f == PR_AF_INET6 ? 16 : 0;
    if (want == 0 || len != 2 + want) {
        fail(c, -EBADMSG, "RTA_VIA: family %u with %zu address bytes", f, len >= 2 ? len - 2 : 0);
        return false;
    }
    memcpy(gw, p + 2, want);
    *fam = (uint8_t)f;
    return true;
}

static bool decode_legs(dctx *c, pr_dump_route *r, const uint8_t *p, size_t len)
{
    size_t off = 0;
    bool realms = false;
    while (off < len) {
        if (len - off < D_RTNHLEN) {
            fail(c, -EBADMSG, "RTA_MULTIPATH: %zu stray bytes after the last nexthop", len - off);
            return false;
        }
        uint16_t nlen = get16(p + off);
        if (nlen < D_RTNHLEN || nlen > len - off) {
            fail(c, -EBADMSG, "RTA_MULTIPATH: nexthop length %u past the attribute", nlen);
            return false;
        }
        if (c->d->nexthops.n >= UINT32_MAX) {
            fail(c, -E2BIG, "too many nexthops");
            return false;
        }
        pr_dump_nexthop *h = vec_push(&c->d->nexthops, 1);
        if (h == NULL)
            return oom(c);
        if (r->nh_count == 0)
            r->nh_off = (uint32_t)(c->d->nexthops.n - 1);
        r->nh_count++;
        h->flags = p[off + 2];
        h->hops = p[off + 3];
        h->ifindex = get32(p + off + 4);
        const uint8_t *a = p + off + D_RTNHLEN;
        size_t alen = nlen - (size_t)D_RTNHLEN, ao = 0;
        while (ao < alen) {
            if (alen - ao < 4) {
                fail(c, -EBADMSG, "RTA_MULTIPATH: nexthop %u: %zu stray bytes", r->nh_count - 1, alen - ao);
                return false;
            }
            uint16_t l = get16(a + ao);
            unsigned t = get16(a + ao + 2) & D_NLA_TYPE_MASK;
            if (l < 4 || l > alen - ao) {
                fail(c, -EBADMSG, "RTA_MULTIPATH: nexthop %u: attribute %u length %u past the nexthop",
                     r->nh_count - 1, t, l);
                return false;
            }
            const uint8_t *pl = a + ao + 4;
            size_t plen = (size_t)l - 4u;
            if (t < 32)
                h->seen |= UINT32_C(1) << t;
            if (t == RTA_GATEWAY_) {
                size_t want = c->family == PR_AF_INET ? 4 : 16;
                if (plen != want) {
                    fail(c, -EBADMSG, "RTA_MULTIPATH: nexthop %u: RTA_GATEWAY of %zu bytes, %zu expected",
                         r->nh_count - 1, plen, want);
                    return false;
                }
                memcpy(h->gw, pl, plen);
                h->gw_family = c->family;
            } else if (t == RTA_VIA_) {
                if (!decode_via(c, pl, plen, &h->gw_family, h->gw))
                    return false;
            } else if (t == RTA_FLOW_) {
                if (plen != 4) {
                    fail(c, -EBADMSG, "RTA_MULTIPATH: nexthop %u: RTA_FLOW of %zu bytes, 4 expected",
                         r->nh_count - 1, plen);
                    return false;
                }
                h->realm = get32(pl);
                realms |= h->realm != 0;
            }
            ao += align4(l);
        }
        off += align4(nlen);
    }
    if (realms && !put_note(c, RTA_MULTIPATH_, &r->note_off, &r->note_count))
        return false;
    return true;
}

static bool route_nest(dctx *c, uint8_t *rec, unsigned type, const uint8_t *p, size_t len)
{
    pr_dump_route *r = (pr_dump_route *)(void *)rec;
    if (type == RTA_VIA_)
        return decode_via(c, p, len, &r->gw_family, r->gw);
    if (type == RTA_MULTIPATH_)
        return decode_legs(c, r, p, len);
    if (type == RTA_CACHEINFO_) {
        if (len != 32) {
            fail(c, -EBADMSG, "RTA_CACHEINFO: %zu bytes, 32 expected", len);
            return false;
        }
        memcpy(&r->cache_expires, p + 8, 4);
        return true;
    }
    /* RTA_METRICS: RTAX_* u32 values, RTAX_CC_ALGO a string */
    size_t off = 0;
    while (off < len) {
        if (len - off < 4) {
            fail(c, -EBADMSG, "RTA_METRICS: %zu stray bytes", len - off);
            return false;
        }
        uint16_t l = get16(p + off);
        unsigned t = get16(p + off + 2) & D_NLA_TYPE_MASK;
        if (l < 4 || l > len - off) {
            fail(c, -EBADMSG, "RTA_METRICS: RTAX %u length %u past the attribute", t, l);
            return false;
        }
        const uint8_t *pl = p + off + 4;
        size_t plen = (size_t)l - 4u;
        if (t == 16) {                          /* RTAX_CC_ALGO */
            if (!put_string(c, pl, plen, t, &r->congctl, 0xFFFF))
                return false;
            if (!put_note(c, RTA_METRICS_, &r->note_off, &r->note_count))
                return false;
        } else if (t >= 1 && t <= 17) {
            if (plen != 4) {
                fail(c, -EBADMSG, "RTA_METRICS: RTAX %u of %zu bytes, 4 expected", t, plen);
                return false;
            }
            if (r->metrics_present == 0) {      /* this route's 18 slots */
                if (c->d->metrics.n + 18 > UINT32_MAX) {
                    fail(c, -E2BIG, "metric array past 4 G entries");
                    return false;
                }
                if (vec_push(&c->d->metrics, 18) == NULL)
                    return oom(c);
                r->metrics_off = (uint32_t)(c->d->metrics.n - 18);
            }
            uint32_t v = get32(pl);
            memcpy(c->d->metrics.p + ((size_t)r->metrics_off + t) * sizeof v, &v, sizeof v);
            r->metrics_present |= UINT32_C(1) << t;
        }
        off += align4(l);
    }
    return true;
}

static bool decode_route(dctx *c, const uint8_t *p, size_t len)
{
    if (len < D_RTMLEN) {
        fail(c, -EBADMSG, "%zu bytes, shorter than struct rtmsg", len);
        return false;
    }
    if (p[0] != PR_AF_INET && p[0] != PR_AF_INET6) {
        c->d->st.stray++;       /* e.g. RTNL_FAMILY_IPMR */
        return true;
    }
    pr_dump_route *r = vec_push(&c->d->routes, 1);
    if (r == NULL)
        return oom(c);
    c->family = p[0];
    r->family = p[0];
    r->dst_len = p[1];
    r->src_len = p[2];
    r->tos = p[3];
    r->table8 = p[4];
    r->table = p[4];
    r->protocol = p[5];
    r->scope = p[6];
    r->type = p[7];
    r->rtm_flags = get32(p + 8);
    /* pointers into the routes array stay valid: the handlers push elsewhere */
    return walk_attrs(c, (uint8_t *)r, route_attrs, NSPEC(route_attrs), p + D_RTMLEN, len - D_RTMLEN,
                      &r->seen, NULL, &r->note_off, &r->note_count, false, route_nest);
}

/* ---- messages ------------------------------------------------------------------ */

static const char *type_name(uint16_t t)
{
    switch (t) {
    case PR_RTM_NEWLINK: return "RTM_NEWLINK";
    case D_RTM_NEWADDR: return "RTM_NEWADDR";
    case D_RTM_NEWROUTE: return "RTM_NEWROUTE";
    case D_RTM_NEWRULE: return "RTM_NEWRULE";
    case D_MSG_ERROR: return "NLMSG_ERROR";
    case D_MSG_DONE: return "NLMSG_DONE";
    default: return "other";
    }
}

/* One message's payload by type; false on a decoding error. */
static bool decode_message(dctx *c, uint16_t type, const uint8_t *p, size_t len)
{
    switch (type) {
    case PR_RTM_NEWLINK: return decode_link(c, p, len);
    case D_RTM_NEWADDR: return decode_addr(c, p, len);
    case D_RTM_NEWRULE: return decode_rule(c, p, len);
    case D_RTM_NEWROUTE: return decode_route(c, p, len);
    default:
        c->d->st.stray++;
        return true;
    }
}

/* What a datagram said about the dump. */
typedef struct dgram_res {
    bool done;                  /* NLMSG_DONE (or an error) seen */
    bool interrupted;           /* NLM_F_DUMP_INTR on a message */
    int error;                  /* NLMSG_ERROR / NLMSG_DONE error, or a decoding error */
} dgram_res;

/* Decodes the messages of one buffer.  check_seq: only messages with this
 * seq and port id count (0 and 0 accept all). */
static void decode_buffer(pr_dump *d, const uint8_t *buf, size_t len, bool check, uint32_t seq,
                          uint32_t port, size_t *msg_index, dgram_res *res)
{
    size_t off = 0;
    while (off < len && !res->done) {
        dctx c = { d, *msg_index, "header", 0, 0 };
        if (len - off < D_HDRLEN) {
            fail(&c, -EBADMSG, "%zu stray bytes after the last message", len - off);
            res->error = c.err;
            return;
        }
        const uint8_t *m = buf + off;
        uint32_t mlen = get32(m);
        uint16_t type = get16(m + 4), flags = get16(m + 6);
        c.msg_name = type_name(type);
        if (mlen < D_HDRLEN || mlen > len - off) {
            fail(&c, -EBADMSG, "length %u past the buffer (%zu bytes left)", mlen, len - off);
            res->error = c.err;
            return;
        }
        (*msg_index)++;
        off += align4(mlen);
        if (check && (get32(m + 8) != seq || get32(m + 12) != port)) {
            d->st.stray++;          /* an earlier request's late reply */
            continue;
        }
        if (flags & D_F_DUMP_INTR)
            res->interrupted = true;
        const uint8_t *pl = m + D_HDRLEN;
        size_t plen = mlen - (size_t)D_HDRLEN;
        if (type == D_MSG_DONE || type == D_MSG_ERROR) {
            int32_t e = 0;
            if (plen >= 4)
                memcpy(&e, pl, 4);
            else if (type == D_MSG_ERROR) {
                fail(&c, -EBADMSG, "%zu bytes, shorter than struct nlmsgerr", plen);
                res->error = c.err;
                return;
            }
            res->done = true;
            if (e < 0) {
                res->error = e > -4096 ? e : -EPROTO;
                snprintf(d->err, sizeof d->err, "the kernel answered the dump with %s: %s",
                         c.msg_name, strerror(-res->error));
            } else if (e > 0) {
                res->error = -EPROTO;
                snprintf(d->err, sizeof d->err, "%s with a positive error %d", c.msg_name, (int)e);
            }
            return;
        }
        if (!decode_message(&c, type, pl, plen)) {
            res->error = c.err;
            return;
        }
        d->st.messages++;
    }
}

int pr_dump_decode(pr_dump *d, const uint8_t *buf, size_t len)
{
    if (d == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    d->err[0] = '\0';
    marks m = mark(d);
    size_t before = records(d), idx = 0;
    dgram_res res = { false, false, 0 };
    decode_buffer(d, buf, len, false, 0, 0, &idx, &res);
    if (res.error < 0) {
        rollback(d, &m);
        return res.error;
    }
    size_t n = records(d) - before;
    return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

/* ---- the dump loop -------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t next_seq(void)
{
    static _Atomic uint32_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint32_t)ts.tv_nsec ^ (uint32_t)(counter++ * 0x9E3779B9u)) | 1u;
}

/* Reads and drops whatever is queued (late replies, a pending error). */
static void drain(pr_dump *d, int fd)
{
    for (int i = 0; i < 4096; i++) {
        ssize_t k = recv(fd, d->buf, d->buf_size, MSG_DONTWAIT | MSG_TRUNC);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != ENOBUFS)
            return;             /* EAGAIN: empty */
    }
}

static int ensure_buf(pr_dump *d, size_t size)
{
    if (d->buf_size >= size)
        return 0;
    uint8_t *nb = pr_realloc(d->buf, size);
    if (nb == NULL)
        return -ENOMEM;
    d->buf = nb;
    d->buf_size = size;
    return 0;
}

static int port_id(int fd, uint32_t *port)
{
    struct sockaddr_nl sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -errno;
    *port = sa.nl_pid;
    return 0;
}

static int send_request(int fd, const uint8_t *msg, size_t len)
{
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    for (;;) {
        ssize_t s = sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
        if (s >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Receives one datagram from the kernel into d->buf: its length, 0 on a
 * foreign datagram (dropped), or a negative errno (-EMSGSIZE: truncated,
 * -ETIMEDOUT: nothing for D_TIMEOUT_MS). */
static ssize_t recv_kernel(pr_dump *d, int fd)
{
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = { d->buf, d->buf_size };
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        memset(&from, 0, sizeof from);
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t k = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (k < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e != EAGAIN && e != EWOULDBLOCK)
                return -e;
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int pr = poll(&pfd, 1, D_TIMEOUT_MS);
            if (pr == 0)
                return -ETIMEDOUT;
            if (pr < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        d->st.datagrams++;
        d->st.bytes += (uint64_t)k;
        if (mh.msg_flags & MSG_TRUNC)
            return -EMSGSIZE;
        if (mh.msg_namelen < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
            d->st.foreign++;    /* only the kernel answers dumps */
            return 0;
        }
        return k;
    }
}

static size_t request_header(int msg_type, int family, uint32_t seq, uint8_t *msg)
{
    size_t hl = msg_type == PR_RTM_GETLINK ? D_IFINFOLEN
              : msg_type == PR_RTM_GETADDR ? D_IFADDRLEN
              : msg_type == PR_RTM_GETRULE ? D_FRHLEN : D_RTMLEN;
    size_t len = D_HDRLEN + hl;
    memset(msg, 0, len);
    put32(msg, (uint32_t)len);
    put16(msg + 4, (uint16_t)msg_type);
    put16(msg + 6, D_F_REQUEST | D_F_DUMP);
    put32(msg + 8, seq);
    msg[D_HDRLEN] = (uint8_t)family;    /* every family header starts with it; rtm_table 0: all tables */
    return len;
}

/* Sends the dump request of the session (again after a restart). */
static int session_send(pr_dump *d)
{
    drain(d, d->fd);
    uint8_t req[64];
    d->seq = next_seq();
    size_t rl = request_header(d->msg_type, d->family, d->seq, req);
    d->msg_index = 0;
    d->active = true;
    return send_request(d->fd, req, rl);
}

int pr_dump_start(pr_dump *d, int fd, int msg_type, int family)
{
    if (d == NULL || fd < 0)
        return -EINVAL;
    if (msg_type != PR_RTM_GETLINK && msg_type != PR_RTM_GETADDR && msg_type != PR_RTM_GETRULE
        && msg_type != PR_RTM_GETROUTE)
        return -EINVAL;
    if (family < 0 || family > 255)
        return -EINVAL;
    d->err[0] = '\0';
    d->active = false;
    int rc = ensure_buf(d, D_BUF_INITIAL);
    if (rc == 0)
        rc = port_id(fd, &d->port);
    if (rc < 0)
        return rc;
    d->fd = fd;
    d->msg_type = msg_type;
    d->family = family;
    d->attempts = 0;
    return session_send(d);
}

/* Ends the session with an error: what this step appended is taken back. */
static int step_fail(pr_dump *d, const marks *m, int err)
{
    rollback(d, m);
    d->active = false;
    return err;
}

int pr_dump_step(pr_dump *d, size_t min_records)
{
    if (d == NULL)
        return -EINVAL;
    if (!d->active)
        return 0;
    marks m = mark(d);
    size_t before = records(d);
    int64_t started = now_ms();
    for (;;) {
        ssize_t k = recv_kernel(d, d->fd);
        bool restart = false;
        if (k == -ENOBUFS) {                /* a reply was lost */
            restart = true;
        } else if (k == -EMSGSIZE) {        /* a datagram bigger than the buffer */
            if (d->buf_size >= D_BUF_MAX || ensure_buf(d, d->buf_size * 2) < 0) {
                snprintf(d->err, sizeof d->err, "a dump datagram is larger than %zu bytes", d->buf_size);
                return step_fail(d, &m, -EMSGSIZE);
            }
            restart = true;
        } else if (k < 0) {
            snprintf(d->err, sizeof d->err, "receiving the dump: %s", strerror((int)-k));
            return step_fail(d, &m, (int)k);
        } else if (k == 0) {
            if (now_ms() - started > D_TIMEOUT_MS) {
                snprintf(d->err, sizeof d->err, "no end of dump from the kernel");
                return step_fail(d, &m, -ETIMEDOUT);
            }
            continue;
        } else {
            dgram_res res = { false, false, 0 };
            decode_buffer(d, d->buf, (size_t)k, true, d->seq, d->port, &d->msg_index, &res);
            if (res.interrupted || res.error == -EINTR) {
                /* NLM_F_DUMP_INTR: the set changed while it was walked */
                restart = true;
            } else if (res.error < 0) {
                return step_fail(d, &m, res.error);
            } else if (res.done) {
                d->active = false;
                size_t n = records(d) - before;
                return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
            }
        }
        if (restart) {
            rollback(d, &m);
            d->st.restarts++;
            if (++d->attempts >= D_MAX_RESTARTS) {
                snprintf(d->err, sizeof d->err, "the dump was interrupted %d times in a row",
                         D_MAX_RESTARTS);
                d->active = false;
                return -EAGAIN;
            }
            d->err[0] = '\0';
            int rc = session_send(d);
            if (rc < 0) {
                d->active = false;
                return rc;
            }
            return PR_DUMP_RESTARTED;
        }
        size_t n = records(d) - before;
        if (n >= min_records && n > 0)
            return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
    }
}

int pr_dump_run(pr_dump *d, int fd, int msg_type, int family)
{
    if (d == NULL)
        return -EINVAL;
    marks m = mark(d);
    size_t before = records(d);
    int rc = pr_dump_start(d, fd, msg_type, family);
    if (rc < 0)
        return rc;
    while ((rc = pr_dump_step(d, SIZE_MAX)) != 0) {
        if (rc == PR_DUMP_RESTARTED) {
            rollback(d, &m);            /* what earlier steps took is stale too */
            continue;
        }
        if (rc < 0) {
            rollback(d, &m);
            return rc;
        }
    }
    size_t n = records(d) - before;
    return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

int pr_dump_route_table(pr_dump *d, int fd, int family, const uint8_t *dst, uint32_t *table)
{
    if (d == NULL || fd < 0 || dst == NULL || table == NULL
        || (family != PR_AF_INET && family != PR_AF_INET6))
        return -EINVAL;
    d->err[0] = '\0';
    int rc = ensure_buf(d, D_BUF_INITIAL);
    uint32_t port;
    if (rc == 0)
        rc = port_id(fd, &port);
    if (rc < 0)
        return rc;
    drain(d, fd);
    size_t alen = family == PR_AF_INET ? 4 : 16;
    uint8_t req[D_HDRLEN + D_RTMLEN + 4 + 16];
    uint32_t seq = next_seq();
    size_t len = D_HDRLEN + D_RTMLEN + 4 + alen;
    memset(req, 0, sizeof req);
    put32(req, (uint32_t)len);
    put16(req + 4, PR_RTM_GETROUTE);
    put16(req + 6, D_F_REQUEST);
    put32(req + 8, seq);
    req[D_HDRLEN] = (uint8_t)family;
    req[D_HDRLEN + 1] = (uint8_t)(alen * 8);
    put16(req + D_HDRLEN + D_RTMLEN, (uint16_t)(4 + alen));
    put16(req + D_HDRLEN + D_RTMLEN + 2, 1);            /* RTA_DST */
    memcpy(req + D_HDRLEN + D_RTMLEN + 4, dst, alen);
    rc = send_request(fd, req, len);
    if (rc < 0)
        return rc;
    for (;;) {
        ssize_t k = recv_kernel(d, fd);
        if (k < 0)
            return (int)k;
        size_t off = 0, n = (size_t)k;
        while (n - off >= D_HDRLEN) {
            const uint8_t *m = d->buf + off;
            uint32_t mlen = get32(m);
            if (mlen < D_HDRLEN || mlen > n - off)
                return -EBADMSG;
            off += align4(mlen);
            if (get32(m + 8) != seq || get32(m + 12) != port)
                continue;
            uint16_t type = get16(m + 4);
            if (type == D_MSG_ERROR) {
                int32_t e = 0;
                if (mlen >= D_HDRLEN + 4)
                    memcpy(&e, m + D_HDRLEN, 4);
                return e < 0 ? e : -EPROTO;
            }
            if (type != D_RTM_NEWROUTE || mlen < D_HDRLEN + D_RTMLEN)
                continue;
            *table = m[D_HDRLEN + 4];
            size_t ao = D_HDRLEN + D_RTMLEN;
            while (ao + 4 <= mlen) {
                uint16_t l = get16(m + ao);
                if (l < 4 || l > mlen - ao)
                    return -EBADMSG;
                if ((get16(m + ao + 2) & D_NLA_TYPE_MASK) == RTA_TABLE_ && l == 8)
                    *table = get32(m + ao + 4);
                ao += align4(l);
            }
            return 0;
        }
    }
}
