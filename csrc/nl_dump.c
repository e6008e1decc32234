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
 * type (the uapi names of rtnl_attrs.h) gives the field's offset in the
 * record, its kind (which fixes the payload length the toolkit's policy
 * accepts) and whether the type is noted.  For rules and routes that array
 * is built once from the field tables (fields.c: type, kind, and for rules
 * the offset, pr_dump_rule.r being a pr_rule_req; a rule's header is read
 * through the tables' header slots).  Top-level attributes are walked in
 * wire order (the notes keep it); nested ones with structure of their own
 * (IFLA_LINKINFO, IFLA_AF_SPEC, RTA_METRICS, RTA_MULTIPATH legs, caches) have
 * small handlers that parse them into type-indexed arrays.  A message that
 * does not parse (a length past its container, a fixed-size attribute of
 * another size, an address of the wrong length for the family, a string
 * without its NUL) fails the call with -EBADMSG and an error text naming the
 * message and the attribute; nothing of that call stays appended.
 *
 * Framing, attribute walking, the receive loop and the socket calls are the
 * netlink toolkit's (nlmsg.h).  The dump loop believes only datagrams whose
 * sender is the kernel (nl_pid 0) and messages carrying its own seq and port
 * id (nlm_cb_run skips the others).  An interrupted dump
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "fields.h"
#include "nlmsg.h"
#include "polroute.h"

enum {
    D_MAX_RESTARTS = 8,
    D_TIMEOUT_MS = 10000,       /* no datagram for this long: the dump is abandoned */
};

#define D_BUF_INITIAL (256u << 10)   /* kernel dump datagrams are <= 32 KiB unless min_dump_alloc says more */
#define D_BUF_MAX (16u << 20)

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
#define ROUTE(k, field, fl) { (k), (fl), (uint16_t)offsetof(pr_dump_route, field), 0 }
#define NEST { K_NEST, 0, 0, 0 }

static const attr_spec link_attrs[] = {
    [IFLA_IFNAME] = LINK(K_STR, name),
    [IFLA_MTU] = LINK(K_U32, mtu),
    [IFLA_LINK] = LINK(K_U32, link),
    [IFLA_MASTER] = LINK(K_U32, master),
    [IFLA_OPERSTATE] = LINK(K_U8, operstate),
    [IFLA_LINKINFO] = NEST,
    [IFLA_AF_SPEC] = NEST,
    [IFLA_GROUP] = LINK(K_U32, group),
    [IFLA_LINK_NETNSID] = LINK(K_S32, link_netnsid),
};

static const attr_spec addr_attrs[] = {
    [IFA_ADDRESS] = ADDR(K_ADDR, address),
    [IFA_LOCAL] = ADDR(K_ADDR, local),
    [IFA_LABEL] = ADDR(K_STR, label),
    [IFA_BROADCAST] = ADDR(K_ADDR, broadcast),
    [IFA_CACHEINFO] = NEST,
    [IFA_FLAGS] = ADDR(K_U32, flags),
    [IFA_RT_PRIORITY] = ADDR(K_U32, metric),
    [IFA_PROTO] = ADDR(K_U8, proto),
};

/* Rules and routes: the attribute rows of the field tables (fields.c) give
 * the type, the kind and, for rules, the offset (pr_dump_rule.r is a
 * pr_rule_req); the decoder's tables below are built from them on first
 * use.  The decoder's kind of a plain row follows from the row's kind, size
 * and byte order; the structured kinds (RTA_VIA, RTA_MULTIPATH legs,
 * RTA_METRICS) are nests with handlers chosen by kind. */
static uint8_t row_kind(const pr_field_info *f)
{
    const bool be = (f->flags & PR_FF_BE_WIRE) != 0;
    switch (f->kind) {
    case PR_FK_U8: case PR_FK_U16: case PR_FK_U32: case PR_FK_S32: case PR_FK_U64:
    case PR_FK_MASK: case PR_FK_FLAG: case PR_FK_IFINDEX:
        switch (f->size) {
        case 1: return K_U8;
        case 2: return be ? K_SKIP : K_U16;
        case 4: return be ? K_BE32 : K_U32;
        case 8: return be ? K_BE64 : K_SKIP;    /* no row is a host-order u64 (the round trip test says) */
        default: return K_SKIP;
        }
    case PR_FK_RANGE16: return K_PAIR16;
    case PR_FK_RANGE32: return K_PAIR32;
    case PR_FK_ADDR: return K_ADDR;
    case PR_FK_IFNAME: return f->size == 16 ? K_NAME16 : K_SKIP;
    default: return K_NEST;
    }
}

/* pyroute2 0.9 (fibmsg.nla_map) names FRA_* up to FRA_DPORT_RANGE: a rule's
 * later types (FRA_DSCP .. FRA_DSCP_MASK) are decoded and noted, as are types
 * no row has (FRA_UNUSED2..5, > FRA_MAX); FRA_PAD is known and skipped. */
enum { PYROUTE2_FRA_LAST = FRA_DPORT_RANGE };

static attr_spec rule_attrs[PR_FIELD_TYPES];

static void rule_attrs_build(void)
{
    for (size_t i = 0; i < PR_RF_COUNT; i++) {
        const pr_field_info *f = &pr_rule_fields[i];
        if (f->nla_type < 0 || f->nla_type >= PR_FIELD_TYPES)
            continue;
        rule_attrs[f->nla_type] = (attr_spec){
            row_kind(f), (uint8_t)(A_PRESENT | (f->nla_type > PYROUTE2_FRA_LAST ? A_NOTE : 0)),
            (uint16_t)(offsetof(pr_dump_rule, r) + f->offset), 0 };
    }
    rule_attrs[FRA_PAD] = (attr_spec){ K_SKIP, A_KNOWN, 0, 0 };
}

/* Where a route row lands in pr_dump_route is fields.c's pr_route_dump_slots;
 * its type and kind are the row's.  Noted: what no request of the model
 * carries, nexthop objects (RTA_NH_ID's row) and, below, source-specific
 * routes, iif, MPLS, encapsulation, expiry, TTL propagation. */
static uint8_t route_row_flags(size_t row) { return row == PR_TF_NHID ? A_NOTE : 0; }

/* The types no route row has. */
static const attr_spec route_dump_only[PR_FIELD_TYPES] = {
    [RTA_SRC] = ROUTE(K_ADDR, src, A_NOTE),
    [RTA_IIF] = ROUTE(K_U32, iif, A_NOTE),
    [RTA_CACHEINFO] = NEST,
    [RTA_MARK] = ROUTE(K_U32, mark, 0),
    [RTA_NEWDST] = { K_SKIP, A_NOTE, 0, 0 },
    [RTA_ENCAP_TYPE] = ROUTE(K_U16, encap_type, A_NOTE),
    [RTA_ENCAP] = { K_SKIP, A_NOTE, 0, 0 },
    [RTA_EXPIRES] = ROUTE(K_U64ANY, expires, A_NOTE),
    [RTA_TTL_PROPAGATE] = { K_SKIP, A_NOTE, 0, 0 },
};

static attr_spec route_attrs[PR_FIELD_TYPES];

/* A plain row without a place in the record stays unknown (skipped): the
 * round trip test (tests/c/test_nl_encode.c) fails for it. */
static void route_attrs_build(void)
{
    memcpy(route_attrs, route_dump_only, sizeof route_attrs);
    for (size_t i = 0; i < PR_TF_COUNT; i++) {
        const pr_field_info *f = &pr_route_fields[i];
        if (f->nla_type < 0 || f->nla_type >= PR_FIELD_TYPES)
            continue;
        const uint8_t kind = row_kind(f);
        const pr_dump_slot *at = &pr_route_dump_slots[i];
        if (kind == K_NEST)
            route_attrs[f->nla_type] = (attr_spec)NEST;
        else if (at->at && kind != K_SKIP)
            route_attrs[f->nla_type] = (attr_spec){ kind, route_row_flags(i), (uint16_t)(at->at - 1),
                                                    (uint16_t)(at->fam_at ? at->fam_at - 1 : 0) };
    }
}

static const attr_spec *rule_specs(void)
{
    static atomic_int once;
    pr_field_once(&once, rule_attrs_build);
    return rule_attrs;
}

static const attr_spec *route_specs(void)
{
    static atomic_int once;
    pr_field_once(&once, route_attrs_build);
    return route_attrs;
}

#define NSPEC(t) (sizeof(t) / sizeof((t)[0]))

/* The toolkit's policy for a kind: what length its payload must have. */
static nlm_policy kind_policy(const dctx *c, uint8_t kind)
{
    switch (kind) {
    case K_U8: return (nlm_policy){ NLM_U8, 0 };
    case K_U16: return (nlm_policy){ NLM_U16, 0 };
    case K_U32: case K_S32: case K_BE32: return (nlm_policy){ NLM_U32, 0 };
    case K_PAIR16: return (nlm_policy){ NLM_EXACT, 4 };
    case K_BE64: case K_PAIR32: return (nlm_policy){ NLM_EXACT, 8 };
    case K_U64ANY: return (nlm_policy){ NLM_UINT, 0 };
    case K_ADDR: return (nlm_policy){ NLM_EXACT, c->family == PR_AF_INET ? 4 : 16 };
    case K_STR: return (nlm_policy){ NLM_NUL_STRING, 0 };
    case K_NAME16: return (nlm_policy){ NLM_NUL_STRING, 15 };   /* IFNAMSIZ with the NUL */
    default: return (nlm_policy){ NLM_ANY, 0 };
    }
}

/* Checks one attribute against its kind's policy; false (with the error text)
 * when it does not fit. */
static bool check_attr(dctx *c, const attr_spec *s, const nlm_attr *a)
{
    nlm_policy pol = kind_policy(c, s->kind);
    size_t want = 0;
    if (nlm_attr_validate(a, &pol, &want) == 0)
        return true;
    if (s->kind == K_STR)
        fail(c, -EBADMSG, "attribute %u: string without its NUL", a->type);
    else if (s->kind == K_NAME16)
        fail(c, -EBADMSG, "attribute %u: interface name without a NUL in its first 16 bytes", a->type);
    else if (s->kind == K_U64ANY)
        fail(c, -EBADMSG, "attribute %u: %u bytes of payload, 4 or 8 expected", a->type, a->len);
    else
        fail(c, -EBADMSG, "attribute %u: %u bytes of payload, %zu expected", a->type, a->len, want);
    return false;
}

/* Decodes one checked attribute with a fixed-layout kind into rec. */
static bool decode_simple(dctx *c, uint8_t *rec, const attr_spec *s, const nlm_attr *a)
{
    const uint8_t *p = a->data;
    uint8_t *f = rec + s->off;
    switch (s->kind) {
    case K_U8: *f = p[0]; break;
    case K_U16: memcpy(f, p, 2); break;
    case K_U32: case K_S32: memcpy(f, p, 4); break;
    case K_BE32: { uint32_t v = (uint32_t)nlm_get_be(p, 4); memcpy(f, &v, 4); break; }
    case K_BE64: { uint64_t v = nlm_get_be(p, 8); memcpy(f, &v, 8); break; }
    case K_PAIR16: memcpy(f, p, 4); break;      /* start, end: consecutive u16 fields */
    case K_PAIR32: memcpy(f, p, 8); break;
    case K_U64ANY: {
        uint64_t v = a->len == 4 ? nlm_get32(p) : nlm_get64(p);
        memcpy(f, &v, 8);
        break;
    }
    case K_ADDR:
        memcpy(f, p, a->len);
        if (s->fam_off)
            rec[s->fam_off] = c->family;
        break;
    case K_STR:
        return put_string(c, p, a->len, a->type, (pr_dump_str *)(void *)f, 0xFFFF);
    case K_NAME16: {
        const uint8_t *nul = memchr(p, 0, a->len);     /* within 16: checked */
        memcpy(f, p, (size_t)(nul - p));
        break;
    }
    default:
        break;
    }
    return true;
}

typedef bool (*nest_fn)(dctx *c, uint8_t *rec, const nlm_attr *a);

/* The error text of a container that did not walk. */
static void framing_fail(dctx *c, const char *where, const nlm_attr *a, size_t left)
{
    if (left < NLM_ATTR_HDRLEN)
        fail(c, -EBADMSG, "%s%zu stray bytes after the last attribute", where, left);
    else
        fail(c, -EBADMSG, "%sattribute %u: length %u past its container (%zu bytes left)",
             where, a->type, a->len, left);
}

/* Walks the attributes of [p, p+len) in wire order (notes keep it): the
 * table, the handler for nested ones.  seen: bit per type (< 64) or NULL. */
static bool walk_attrs(dctx *c, uint8_t *rec, const attr_spec *tab, size_t ntab,
                       const uint8_t *p, size_t len, uint64_t *seen, uint32_t *present,
                       uint32_t *note_off, uint32_t *note_count, bool note_unknown, nest_fn nest)
{
    nlm_iter it;
    nlm_attr a;
    int rc;
    nlm_iter_init(&it, p, len);
    while ((rc = nlm_attr_next(&it, &a)) > 0) {
        const unsigned type = a.type;
        if (type < 64 && seen)
            *seen |= UINT64_C(1) << type;
        const attr_spec *s = type < ntab ? &tab[type] : NULL;
        bool known = s != NULL && (s->kind != K_SKIP || s->flags != 0);
        if (s != NULL && s->kind == K_NEST) {
            if (!nest(c, rec, &a))
                return false;
        } else if (s != NULL && s->kind != K_SKIP) {
            if (!check_attr(c, s, &a) || !decode_simple(c, rec, s, &a))
                return false;
        }
        if (s != NULL && (s->flags & A_PRESENT) && present)
            *present |= UINT32_C(1) << type;
        if (note_count && ((s != NULL && (s->flags & A_NOTE)) || (note_unknown && !known)))
            if (!put_note(c, type, note_off, note_count))
                return false;
    }
    if (rc < 0) {
        framing_fail(c, "", &a, nlm_iter_left(&it));
        return false;
    }
    return true;
}

/* Parses a nest into tb[0..maxtype] against pol; false (with the error text:
 * `what` names the nest, names[type] or "<member> <type>" its members) when it
 * does not fit. */
static bool parse_nest(dctx *c, const char *what, const char *member, const uint8_t *p, size_t len,
                       const nlm_policy *pol, uint16_t maxtype, nlm_attr *tb,
                       const char *const *names)
{
    nlm_bad bad;
    if (nlm_attr_parse(p, len, pol, maxtype, tb, &bad) == 0)
        return true;
    char lab[48];
    if (names != NULL && bad.type <= maxtype && names[bad.type] != NULL)
        snprintf(lab, sizeof lab, "%s", names[bad.type]);
    else
        snprintf(lab, sizeof lab, "%s %u", member, bad.type);
    if (bad.err == -EBADMSG && bad.left < NLM_ATTR_HDRLEN)
        fail(c, -EBADMSG, "%s: %zu stray bytes", what, bad.left);
    else if (bad.err == -EBADMSG)
        fail(c, -EBADMSG, "%s: %s length %u past its container", what, lab, bad.len);
    else if (bad.err == -EINVAL)
        fail(c, -EBADMSG, "%s: %s: string without its NUL", what, lab);
    else
        fail(c, -EBADMSG, "%s: %s of %u bytes, %zu expected", what, lab, bad.len, bad.want);
    return false;
}

/* ---- links ----------------------------------------------------------------- */

static const nlm_policy linkinfo_policy[IFLA_INFO_MAX + 1] = {
    [IFLA_INFO_KIND] = { NLM_NUL_STRING, 0 },
    [IFLA_INFO_DATA] = { NLM_NESTED, 0 },
};

static const nlm_policy tun_policy[IFLA_TUN_TYPE + 1] = {
    [IFLA_TUN_TYPE] = { NLM_U8, 0 },
};

static const char *const tun_names[IFLA_TUN_TYPE + 1] = {
    [IFLA_TUN_TYPE] = "IFLA_TUN_TYPE",
};

static const nlm_policy inet6_policy[IFLA_INET6_ADDR_GEN_MODE + 1] = {
    [IFLA_INET6_ADDR_GEN_MODE] = { NLM_U8, 0 },
};

static const char *const inet6_names[IFLA_INET6_ADDR_GEN_MODE + 1] = {
    [IFLA_INET6_ADDR_GEN_MODE] = "IFLA_INET6_ADDR_GEN_MODE",
};

static bool link_nest(dctx *c, uint8_t *rec, const nlm_attr *a)
{
    pr_dump_link *l = (pr_dump_link *)(void *)rec;
    if (a->type == IFLA_LINKINFO) {
        nlm_attr info[IFLA_INFO_MAX + 1];
        if (!parse_nest(c, "IFLA_LINKINFO", "attribute", a->data, a->len, linkinfo_policy,
                        IFLA_INFO_MAX, info, NULL))
            return false;
        const nlm_attr *kind = &info[IFLA_INFO_KIND], *data = &info[IFLA_INFO_DATA];
        if (kind->data == NULL)
            return true;
        if (!put_string(c, kind->data, kind->len, IFLA_INFO_KIND, &l->kind, 0xFFFF))
            return false;
        if (data->data != NULL && data->len > 0 && l->kind.len == 3
            && memcmp(c->d->strings.p + l->kind.off, "tun", 3) == 0) {
            nlm_attr tun[IFLA_TUN_TYPE + 1];
            if (!parse_nest(c, "IFLA_INFO_DATA", "attribute", data->data, data->len, tun_policy,
                            IFLA_TUN_TYPE, tun, tun_names))
                return false;
            if (tun[IFLA_TUN_TYPE].data != NULL)
                l->tun_type = tun[IFLA_TUN_TYPE].data[0];
        }
    } else if (a->type == IFLA_AF_SPEC) {
        nlm_attr af[PR_AF_INET6 + 1];   /* indexed by address family */
        if (!parse_nest(c, "IFLA_AF_SPEC", "family", a->data, a->len, NULL, PR_AF_INET6, af, NULL))
            return false;
        const nlm_attr *v6 = &af[PR_AF_INET6];
        if (v6->data == NULL)
            return true;
        nlm_attr in6[IFLA_INET6_ADDR_GEN_MODE + 1];
        if (!parse_nest(c, "IFLA_AF_SPEC AF_INET6", "attribute", v6->data, v6->len, inet6_policy,
                        IFLA_INET6_ADDR_GEN_MODE, in6, inet6_names))
            return false;
        const nlm_attr *g = &in6[IFLA_INET6_ADDR_GEN_MODE];
        if (g->data != NULL) {
            l->addr_gen_mode = g->data[0];
            l->has_addr_gen_mode = 1;
        }
    }
    return true;
}

static bool decode_link(dctx *c, const uint8_t *p, size_t len)
{
    if (len < RTNL_IFINFOMSG_LEN) {
        fail(c, -EBADMSG, "%zu bytes, shorter than struct ifinfomsg", len);
        return false;
    }
    pr_dump_link *l = vec_push(&c->d->links, 1);
    if (l == NULL)
        return oom(c);
    c->family = p[0];
    l->ifi_type = nlm_get16(p + 2);
    l->ifindex = nlm_get32(p + 4);
    l->flags = nlm_get32(p + 8);
    return walk_attrs(c, (uint8_t *)l, link_attrs, NSPEC(link_attrs), p + RTNL_IFINFOMSG_LEN,
                      len - RTNL_IFINFOMSG_LEN, &l->seen, NULL, NULL, NULL, false, link_nest);
}

/* ---- addresses -------------------------------------------------------------- */

static bool addr_nest(dctx *c, uint8_t *rec, const nlm_attr *a)
{
    pr_dump_addr *ad = (pr_dump_addr *)(void *)rec;
    if (a->type == IFA_CACHEINFO) {
        static const nlm_policy pol = { NLM_EXACT, RTNL_IFA_CACHEINFO_LEN };
        size_t want;
        if (nlm_attr_validate(a, &pol, &want) < 0) {
            fail(c, -EBADMSG, "IFA_CACHEINFO: %u bytes, %zu expected", a->len, want);
            return false;
        }
        ad->preferred_lft = nlm_get32(a->data);
        ad->valid_lft = nlm_get32(a->data + 4);
        ad->cstamp = nlm_get32(a->data + 8);
        ad->tstamp = nlm_get32(a->data + 12);
    }
    return true;
}

static bool decode_addr(dctx *c, const uint8_t *p, size_t len)
{
    if (len < RTNL_IFADDRMSG_LEN) {
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
    a->ifindex = nlm_get32(p + 4);
    a->flags = p[2];
    a->preferred_lft = a->valid_lft = UINT32_MAX;
    return walk_attrs(c, (uint8_t *)a, addr_attrs, NSPEC(addr_attrs), p + RTNL_IFADDRMSG_LEN,
                      len - RTNL_IFADDRMSG_LEN, &a->seen, NULL, NULL, NULL, false, addr_nest);
}

/* ---- rules ------------------------------------------------------------------- */

static bool no_nest(dctx *c, uint8_t *rec, const nlm_attr *a)
{
    (void)c; (void)rec; (void)a;
    return true;
}

static void store_uint(uint8_t *p, uint32_t size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    case 8: memcpy(p, &v, 8); break;
    default: break;
    }
}

/* The header rows (the table id's 8-bit twin, the prefix lengths) out of the
 * family header, where pr_*_hdr_slots put them. */
static void read_header(const uint8_t *hdr, uint8_t *req, const pr_field_info *rows, const pr_hdr_slot *slots,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pr_field_info *f = &rows[i];
        if (slots[i].at) {
            const uint8_t *at = hdr + slots[i].at - 1;
            if (f->flags & PR_FF_ALSO_HEADER)
                store_uint(req + f->offset, f->size, *at);
            else
                memcpy(req + f->offset, at, f->size);
        }
        if (slots[i].aux_at)
            req[f->aux_offset] = hdr[slots[i].aux_at - 1];
    }
}

static bool decode_rule(dctx *c, const uint8_t *p, size_t len)
{
    if (len < RTNL_FIB_RULE_HDR_LEN) {
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
    r->r = pr_rule_neutral;
    read_header(p, (uint8_t *)&r->r, pr_rule_fields, pr_rule_hdr_slots, PR_RF_COUNT);
    return walk_attrs(c, (uint8_t *)r, rule_specs(), PR_FIELD_TYPES, p + RTNL_FIB_RULE_HDR_LEN,
                      len - RTNL_FIB_RULE_HDR_LEN, &r->seen, &r->r.present, &r->note_off,
                      &r->note_count, true, no_nest);
}

/* ---- routes ------------------------------------------------------------------ */

/* RTA_VIA: u16 family + that family's address. */
static bool decode_via(dctx *c, const nlm_attr *a, uint8_t *fam, uint8_t gw[16])
{
    uint16_t f = a->len >= 2 ? nlm_get16(a->data) : 0;
    size_t want = f == PR_AF_INET ? 4 : f == PR_AF_INET6 ? 16 : 0;
    if (want == 0 || a->len != 2 + want) {
        fail(c, -EBADMSG, "RTA_VIA: family %u with %u address bytes", f, a->len >= 2 ? a->len - 2u : 0u);
        return false;
    }
    memcpy(gw, a->data + 2, want);
    *fam = (uint8_t)f;
    return true;
}

/* RTA_MULTIPATH: struct rtnexthop legs (not attributes), each followed by
 * its own attributes: a gateway (the route rows' RTA_GATEWAY or RTA_VIA)
 * and the realms (their RTA_FLOW).  type: the multipath attribute's. */
static bool decode_legs(dctx *c, pr_dump_route *r, uint16_t type, const uint8_t *p, size_t len)
{
    const pr_field_info *gw_row = &pr_route_fields[PR_TF_GATEWAY], *via_row = &pr_route_fields[PR_TF_VIA];
    const pr_field_info *flow_row = &pr_route_fields[PR_TF_REALMS];
    const unsigned t_gw = (unsigned)gw_row->nla_type, t_via = (unsigned)via_row->nla_type;
    const unsigned t_flow = (unsigned)flow_row->nla_type;
    nlm_policy leg_policy[RTA_MAX + 1] = { { 0, 0 } };
    const char *leg_names[RTA_MAX + 1] = { NULL };
    leg_policy[t_gw] = (nlm_policy){ NLM_EXACT, c->family == PR_AF_INET ? 4 : 16 };
    leg_policy[t_flow] = (nlm_policy){ NLM_U32, 0 };
    leg_names[t_gw] = gw_row->nla_name;
    leg_names[t_flow] = flow_row->nla_name;
    size_t off = 0;
    bool realms = false;
    while (off < len) {
        if (len - off < RTNL_RTNEXTHOP_LEN) {
            fail(c, -EBADMSG, "RTA_MULTIPATH: %zu stray bytes after the last nexthop", len - off);
            return false;
        }
        uint16_t nlen = nlm_get16(p + off);
        if (nlen < RTNL_RTNEXTHOP_LEN || nlen > len - off) {
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
        h->ifindex = nlm_get32(p + off + 4);
        char what[48];
        snprintf(what, sizeof what, "RTA_MULTIPATH: nexthop %u", r->nh_count - 1);
        nlm_attr tb[RTA_MAX + 1];
        if (!parse_nest(c, what, "attribute", p + off + RTNL_RTNEXTHOP_LEN,
                        nlen - (size_t)RTNL_RTNEXTHOP_LEN, leg_policy, RTA_MAX, tb, leg_names))
            return false;
        for (unsigned t = 0; t <= RTA_MAX; t++)
            if (tb[t].data != NULL)
                h->seen |= UINT32_C(1) << t;
        if (tb[t_gw].data != NULL) {
            memcpy(h->gw, tb[t_gw].data, tb[t_gw].len);
            h->gw_family = c->family;
        }
        if (tb[t_via].data != NULL && !decode_via(c, &tb[t_via], &h->gw_family, h->gw))
            return false;
        if (tb[t_flow].data != NULL) {
            h->realm = nlm_get32(tb[t_flow].data);
            realms |= h->realm != 0;
        }
        off += nlm_align(nlen);
    }
    if (realms && !put_note(c, type, &r->note_off, &r->note_count))
        return false;
    return true;
}

/* RTAX_* u32 values, RTAX_CC_ALGO a string. */
static bool decode_metrics(dctx *c, pr_dump_route *r, const nlm_attr *a)
{
    static const nlm_policy pol[RTAX_MAX + 1] = {
        [RTAX_LOCK] = { NLM_U32, 0 }, [RTAX_MTU] = { NLM_U32, 0 },
        [RTAX_WINDOW] = { NLM_U32, 0 }, [RTAX_RTT] = { NLM_U32, 0 },
        [RTAX_RTTVAR] = { NLM_U32, 0 }, [RTAX_SSTHRESH] = { NLM_U32, 0 },
        [RTAX_CWND] = { NLM_U32, 0 }, [RTAX_ADVMSS] = { NLM_U32, 0 },
        [RTAX_REORDERING] = { NLM_U32, 0 }, [RTAX_HOPLIMIT] = { NLM_U32, 0 },
        [RTAX_INITCWND] = { NLM_U32, 0 }, [RTAX_FEATURES] = { NLM_U32, 0 },
        [RTAX_RTO_MIN] = { NLM_U32, 0 }, [RTAX_INITRWND] = { NLM_U32, 0 },
        [RTAX_QUICKACK] = { NLM_U32, 0 }, [RTAX_CC_ALGO] = { NLM_NUL_STRING, 0 },
        [RTAX_FASTOPEN_NO_COOKIE] = { NLM_U32, 0 },
    };
    nlm_attr tb[RTAX_MAX + 1];
    if (!parse_nest(c, "RTA_METRICS", "RTAX", a->data, a->len, pol, RTAX_MAX, tb, NULL))
        return false;
    for (unsigned t = RTAX_LOCK; t <= RTAX_MAX; t++) {
        const nlm_attr *m = &tb[t];
        if (m->data == NULL)
            continue;
        if (t == RTAX_CC_ALGO) {
            if (!put_string(c, m->data, m->len, t, &r->congctl, 0xFFFF)
                || !put_note(c, a->type, &r->note_off, &r->note_count))
                return false;
            continue;
        }
        if (r->metrics_present == 0) {          /* this route's RTAX_MAX + 1 slots */
            if (c->d->metrics.n + RTAX_MAX + 1 > UINT32_MAX) {
                fail(c, -E2BIG, "metric array past 4 G entries");
                return false;
            }
            if (vec_push(&c->d->metrics, RTAX_MAX + 1) == NULL)
                return oom(c);
            r->metrics_off = (uint32_t)(c->d->metrics.n - (RTAX_MAX + 1));
        }
        uint32_t v = nlm_get32(m->data);
        memcpy(c->d->metrics.p + ((size_t)r->metrics_off + t) * sizeof v, &v, sizeof v);
        r->metrics_present |= UINT32_C(1) << t;
    }
    return true;
}

/* The nests: RTA_CACHEINFO (dumps only), else the route row's kind. */
static bool route_nest(dctx *c, uint8_t *rec, const nlm_attr *a)
{
    pr_dump_route *r = (pr_dump_route *)(void *)rec;
    if (a->type == RTA_CACHEINFO) {
        static const nlm_policy pol = { NLM_EXACT, RTNL_RTA_CACHEINFO_LEN };
        size_t want;
        if (nlm_attr_validate(a, &pol, &want) < 0) {
            fail(c, -EBADMSG, "RTA_CACHEINFO: %u bytes, %zu expected", a->len, want);
            return false;
        }
        memcpy(&r->cache_expires, a->data + 8, 4);     /* rta_expires */
        return true;
    }
    const int row = a->type < PR_FIELD_TYPES ? pr_route_wire()->row_of_type[a->type] : -1;
    switch (row < 0 ? PR_FK_BITMAP : pr_route_fields[row].kind) {
    case PR_FK_FAMILY:                          /* RTA_VIA */
        return decode_via(c, a, &r->gw_family, r->gw);
    case PR_FK_MULTIPATH:
        return decode_legs(c, r, a->type, a->data, a->len);
    case PR_FK_METRICS:
        return decode_metrics(c, r, a);
    default:
        return true;
    }
}

static bool decode_route(dctx *c, const uint8_t *p, size_t len)
{
    if (len < RTNL_RTMSG_LEN) {
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
    r->rtm_flags = nlm_get32(p + 8);
    /* pointers into the routes array stay valid: the handlers push elsewhere */
    return walk_attrs(c, (uint8_t *)r, route_specs(), PR_FIELD_TYPES, p + RTNL_RTMSG_LEN,
                      len - RTNL_RTMSG_LEN, &r->seen, NULL, &r->note_off, &r->note_count, false,
                      route_nest);
}

/* ---- messages ------------------------------------------------------------------ */

static const char *type_name(uint16_t t)
{
    switch (t) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    case RTM_NEWRULE: return "RTM_NEWRULE";
    case NLMSG_ERROR: return "NLMSG_ERROR";
    case NLMSG_DONE: return "NLMSG_DONE";
    default: return "other";
    }
}

/* What the loop's data callback needs. */
typedef struct dec_arg {
    pr_dump *d;
    const nlm_run *run;
    int err;                    /* a decoding error (its text is in d->err) */
} dec_arg;

/* The loop's data callback: one message's payload by type. */
static int on_message(const nlm_msg *m, void *arg)
{
    dec_arg *x = arg;
    dctx c = { x->d, x->run->messages - 1, type_name(m->type), 0, 0 };
    bool ok;
    switch (m->type) {
    case RTM_NEWLINK: ok = decode_link(&c, m->payload, m->payload_len); break;
    case RTM_NEWADDR: ok = decode_addr(&c, m->payload, m->payload_len); break;
    case RTM_NEWRULE: ok = decode_rule(&c, m->payload, m->payload_len); break;
    case RTM_NEWROUTE: ok = decode_route(&c, m->payload, m->payload_len); break;
    default:
        x->d->st.stray++;
        return NLM_CB_OK;
    }
    if (!ok) {
        x->err = c.err < 0 ? c.err : -EBADMSG;
        return x->err;
    }
    x->d->st.messages++;
    return NLM_CB_OK;
}

/* What a datagram said about the dump. */
typedef struct dgram_res {
    bool done;                  /* NLMSG_DONE (or an error) seen */
    bool interrupted;           /* NLM_F_DUMP_INTR on a message */
    int error;                  /* NLMSG_ERROR / NLMSG_DONE error, or a decoding error */
} dgram_res;

/* Decodes the messages of one buffer through the toolkit's loop.  check:
 * only messages with this seq and port id count (else all do). */
static void decode_buffer(pr_dump *d, const uint8_t *buf, size_t len, bool check, uint32_t seq,
                          uint32_t port, size_t *msg_index, dgram_res *res)
{
    dec_arg x = { d, NULL, 0 };
    nlm_run run = {
        .seq = seq,
        .seq_span = check ? 1 : 0,
        .port = check ? port : 0,
        .ignore_dump_intr = !check,     /* a buffer handed in is decoded whole */
        .data_cb = on_message,
        .arg = &x,
        .messages = *msg_index,
    };
    x.run = &run;
    const size_t skipped_before = run.skipped;
    int rc = nlm_cb_run(buf, len, &run);
    *msg_index = run.messages;
    d->st.stray += (uint32_t)(run.skipped - skipped_before);   /* earlier requests' late replies */
    if (rc == NLM_CB_OK)
        return;
    if (rc == NLM_CB_STOP) {
        res->done = true;
        return;
    }
    if (x.err != 0) {
        res->error = rc;
        return;
    }
    const char *name = type_name(run.bad_type);
    if (run.ended_by == NLMSG_ERROR && rc == -EBADMSG) {
        snprintf(d->err, sizeof d->err, "message %zu (%s): %zu bytes, shorter than struct nlmsgerr",
                 run.messages - 1, name, (size_t)run.bad_len - NLM_HDRLEN);
        res->error = rc;
    } else if (run.ended_by != 0) {
        res->done = true;
        res->error = rc;
        if (run.kernel_error < 0)
            snprintf(d->err, sizeof d->err, "the kernel answered the dump with %s: %s",
                     type_name(run.ended_by), strerror(-rc));
        else
            snprintf(d->err, sizeof d->err, "%s with a positive error %d",
                     type_name(run.ended_by), (int)run.kernel_error);
    } else if (rc == -EINTR) {
        res->interrupted = true;
    } else if (run.bad_left < NLM_HDRLEN) {
        snprintf(d->err, sizeof d->err, "message %zu (header): %zu stray bytes after the last message",
                 run.messages, run.bad_left);
        res->error = rc;
    } else {
        snprintf(d->err, sizeof d->err, "message %zu (%s): length %u past the buffer (%zu bytes left)",
                 run.messages, name, run.bad_len, run.bad_left);
        res->error = rc;
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

/* Receives one datagram from the kernel into d->buf: its length, 0 on a
 * foreign datagram (dropped), or a negative errno (-EMSGSIZE: truncated,
 * -ETIMEDOUT: nothing for D_TIMEOUT_MS). */
static ssize_t recv_kernel(pr_dump *d, int fd)
{
    for (;;) {
        bool kernel, truncated;
        ssize_t k = nlm_recv(fd, d->buf, d->buf_size, MSG_DONTWAIT, &kernel, &truncated);
        if (k < 0) {
            if (k != -EAGAIN && k != -EWOULDBLOCK)
                return k;
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
        if (truncated)
            return -EMSGSIZE;
        if (!kernel) {
            d->st.foreign++;    /* only the kernel answers dumps */
            return 0;
        }
        return k;
    }
}

/* A dump request: the nlmsghdr and a zeroed family header whose first byte is
 * the family (rtm_table 0: all tables). */
static int request_header(int msg_type, int family, uint32_t seq, uint8_t *msg, size_t cap)
{
    size_t hl = msg_type == PR_RTM_GETLINK ? RTNL_IFINFOMSG_LEN
              : msg_type == PR_RTM_GETADDR ? RTNL_IFADDRMSG_LEN
              : msg_type == PR_RTM_GETRULE ? RTNL_FIB_RULE_HDR_LEN : RTNL_RTMSG_LEN;
    nlm_buf b;
    nlm_msg_begin(&b, msg, cap, (uint16_t)msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq);
    uint8_t *fh = nlm_reserve(&b, hl);
    if (fh != NULL)
        fh[0] = (uint8_t)family;
    return nlm_msg_end(&b);
}

/* Sends the dump request of the session (again after a restart). */
static int session_send(pr_dump *d)
{
    drain(d, d->fd);
    uint8_t req[64];
    d->seq = next_seq();
    int rl = request_header(d->msg_type, d->family, d->seq, req, sizeof req);
    if (rl < 0)
        return rl;
    d->msg_index = 0;
    d->active = true;
    return nlm_send(d->fd, req, (size_t)rl);
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
        rc = nlm_port_id(fd, &d->port);
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

/* The answer to one RTM_GETROUTE: the table of the first route of ours. */
typedef struct table_arg {
    uint32_t *table;
    bool got;
    int err;
} table_arg;

static int on_route_reply(const nlm_msg *m, void *arg)
{
    table_arg *t = arg;
    if (m->type != RTM_NEWROUTE || m->payload_len < RTNL_RTMSG_LEN)
        return NLM_CB_OK;                       /* not the answer: keep reading */
    nlm_attr tb[RTA_TABLE + 1];
    if (nlm_attr_parse(m->payload + RTNL_RTMSG_LEN, m->payload_len - RTNL_RTMSG_LEN, NULL,
                       RTA_TABLE, tb, NULL) < 0) {
        t->err = -EBADMSG;
        return t->err;
    }
    *t->table = m->payload[4];                  /* rtm_table, unless RTA_TABLE says more */
    if (tb[RTA_TABLE].data != NULL && tb[RTA_TABLE].len == 4)
        *t->table = nlm_get32(tb[RTA_TABLE].data);
    t->got = true;
    return NLM_CB_STOP;
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
        rc = nlm_port_id(fd, &port);
    if (rc < 0)
        return rc;
    drain(d, fd);
    const size_t alen = family == PR_AF_INET ? 4 : 16;
    uint8_t req[NLM_HDRLEN + RTNL_RTMSG_LEN + NLM_ATTR_HDRLEN + 16];
    const uint32_t seq = next_seq();
    nlm_buf b;
    nlm_msg_begin(&b, req, sizeof req, RTM_GETROUTE, NLM_F_REQUEST, seq);
    uint8_t *rtm = nlm_reserve(&b, RTNL_RTMSG_LEN);
    if (rtm != NULL) {
        rtm[0] = (uint8_t)family;
        rtm[1] = (uint8_t)(alen * 8);           /* rtm_dst_len */
    }
    nlm_attr_put(&b, RTA_DST, dst, alen);
    int len = nlm_msg_end(&b);
    if (len < 0)
        return len;
    rc = nlm_send(fd, req, (size_t)len);
    if (rc < 0)
        return rc;
    table_arg t = { table, false, 0 };
    nlm_run run = { .seq = seq, .seq_span = 1, .port = port, .data_cb = on_route_reply, .arg = &t };
    for (;;) {
        ssize_t k = recv_kernel(d, fd);
        if (k < 0)
            return (int)k;
        rc = nlm_cb_run(d->buf, (size_t)k, &run);
        if (t.got)
            return 0;
        if (rc < 0)
            return rc;                          /* the kernel's error, or a malformed reply */
        if (rc == NLM_CB_STOP)
            return -EPROTO;                     /* an ACK or a DONE, but no route */
    }
}
