/*
 * nlmsg.c - the core's netlink toolkit: building, reading attributes, the
 * receive loop and the socket calls.  See nlmsg.h for the contracts.
 */
#include "nlmsg.h"

#include <errno.h>
#include <sys/uio.h>

/* ---- building ------------------------------------------------------------- */

uint8_t *nlm_reserve(nlm_buf *b, size_t n)
{
    /* n > cap first: align4 of a huge n would wrap */
    if (b->full || n > b->cap || nlm_align(n) > b->cap - b->len) {
        b->full = true;
        return NULL;
    }
    uint8_t *at = b->p + b->len;
    size_t padded = nlm_align(n);
    memset(at, 0, padded);      /* padding is zero: the kernel may look at it */
    b->len += padded;
    return at;
}

void nlm_msg_begin(nlm_buf *b, void *mem, size_t cap, uint16_t type, uint16_t flags, uint32_t seq)
{
    *b = (nlm_buf){ (uint8_t *)mem, cap, 0, false };
    uint8_t *h = nlm_reserve(b, NLM_HDRLEN);
    if (h == NULL)
        return;
    nlm_put16(h + 4, type);
    nlm_put16(h + 6, flags);
    nlm_put32(h + 8, seq);      /* nlmsg_pid (h + 12) stays 0: toward the kernel */
}

int nlm_msg_end(nlm_buf *b)
{
    if (b->full || b->len < NLM_HDRLEN || b->len > (size_t)INT32_MAX)
        return -EMSGSIZE;
    nlm_put32(b->p, (uint32_t)b->len);
    return (int)b->len;
}

bool nlm_attr_put(nlm_buf *b, uint16_t type, const void *data, size_t len)
{
    if (len > NLM_ATTR_MAXLEN - NLM_ATTR_HDRLEN) {
        b->full = true;         /* nla_len cannot say it */
        return false;
    }
    uint8_t *a = nlm_reserve(b, NLM_ATTR_HDRLEN + len);
    if (a == NULL)
        return false;
    nlm_put16(a, (uint16_t)(NLM_ATTR_HDRLEN + len));   /* nla_len: unpadded */
    nlm_put16(a + 2, type);
    if (len > 0)
        memcpy(a + NLM_ATTR_HDRLEN, data, len);
    return true;
}

bool nlm_attr_put_u8(nlm_buf *b, uint16_t type, uint8_t v) { return nlm_attr_put(b, type, &v, 1); }
bool nlm_attr_put_u16(nlm_buf *b, uint16_t type, uint16_t v) { return nlm_attr_put(b, type, &v, 2); }
bool nlm_attr_put_u32(nlm_buf *b, uint16_t type, uint32_t v) { return nlm_attr_put(b, type, &v, 4); }

bool nlm_attr_put_be32(nlm_buf *b, uint16_t type, uint32_t v)
{
    uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return nlm_attr_put(b, type, be, sizeof be);
}

bool nlm_attr_put_be64(nlm_buf *b, uint16_t type, uint64_t v)
{
    uint8_t be[8];
    for (unsigned i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    return nlm_attr_put(b, type, be, sizeof be);
}

bool nlm_attr_put_strz(nlm_buf *b, uint16_t type, const char *s)
{
    return nlm_attr_put(b, type, s, strlen(s) + 1);
}

size_t nlm_nest_begin(nlm_buf *b, uint16_t type)
{
    size_t start = b->len;
    uint8_t *a = nlm_reserve(b, NLM_ATTR_HDRLEN);
    if (a != NULL)
        nlm_put16(a + 2, type);
    return start;
}

void nlm_len16_end(nlm_buf *b, size_t start)
{
    if (b->full)
        return;
    size_t n = b->len - start;  /* padding of the last member included, as the kernel's nla_nest_end */
    if (n > NLM_ATTR_MAXLEN) {
        b->full = true;
        return;
    }
    nlm_put16(b->p + start, (uint16_t)n);
}

void nlm_nest_end(nlm_buf *b, size_t start) { nlm_len16_end(b, start); }

/* ---- reading attributes ------------------------------------------------------ */

int nlm_attr_next(nlm_iter *it, nlm_attr *a)
{
    size_t left = it->len - it->off;
    if (left == 0)
        return 0;
    const uint8_t *h = it->p + it->off;
    a->data = NULL;
    if (left < NLM_ATTR_HDRLEN) {
        a->len = 0;
        a->type = 0;
        return -EBADMSG;
    }
    uint16_t nla_len = nlm_get16(h);
    a->type = (uint16_t)(nlm_get16(h + 2) & NLM_TYPE_MASK);
    if (nla_len < NLM_ATTR_HDRLEN || nla_len > left) {
        a->len = nla_len;
        return -EBADMSG;
    }
    a->data = h + NLM_ATTR_HDRLEN;
    a->len = (uint16_t)(nla_len - NLM_ATTR_HDRLEN);
    size_t step = nlm_align(nla_len);
    it->off += step < left ? step : left;   /* the last attribute's padding may be missing */
    return 1;
}

int nlm_attr_validate(const nlm_attr *a, const nlm_policy *pol, size_t *want)
{
    size_t w = 0;
    int err = 0;
    switch (pol->kind) {
    case NLM_U8: w = 1; break;
    case NLM_U16: w = 2; break;
    case NLM_U32: w = 4; break;
    case NLM_U64: w = 8; break;
    case NLM_EXACT: w = pol->len; break;
    case NLM_UINT:
        if (a->len != 4 && a->len != 8)
            err = -ERANGE;
        break;
    case NLM_NUL_STRING: {
        /* as the kernel's NLA_NUL_STRING: the NUL within len + 1 bytes */
        size_t scan = pol->len && (size_t)pol->len + 1u < a->len ? (size_t)pol->len + 1u : a->len;
        if (scan == 0 || memchr(a->data, 0, scan) == NULL)
            err = -EINVAL;
        break;
    }
    case NLM_NESTED:
        if (a->len != 0 && a->len < NLM_ATTR_HDRLEN)
            err = -ERANGE;
        break;
    default:
        break;
    }
    if (w != 0 && a->len != w)
        err = -ERANGE;
    if (want != NULL)
        *want = w;
    return err;
}

int nlm_attr_parse(const uint8_t *p, size_t len, const nlm_policy *pol, uint16_t maxtype,
                   nlm_attr *tb, nlm_bad *why)
{
    memset(tb, 0, ((size_t)maxtype + 1u) * sizeof *tb);
    nlm_bad bad = { 0, 0, 0, 0, 0 };
    nlm_iter it;
    nlm_attr a;
    int rc;
    nlm_iter_init(&it, p, len);
    while ((rc = nlm_attr_next(&it, &a)) > 0) {
        if (a.type > maxtype)
            continue;
        if (pol != NULL) {
            size_t want = 0;
            int e = nlm_attr_validate(&a, &pol[a.type], &want);
            if (e < 0) {
                bad = (nlm_bad){ e, a.type, a.len, 0, want };
                goto fail;
            }
        }
        tb[a.type] = a;
    }
    if (rc == 0)
        return 0;
    bad = (nlm_bad){ rc, a.type, a.len, nlm_iter_left(&it), 0 };
fail:
    if (why != NULL)
        *why = bad;
    return bad.err;
}

/* ---- the receive loop ----------------------------------------------------------- */

int nlm_errno(int32_t e)
{
    if (e == 0)
        return 0;
    return e < 0 && e > -4096 ? (int)e : -EPROTO;   /* a positive or wild value is no errno */
}

/* NLMSG_ERROR / NLMSG_DONE when the caller has no ctl_cb. */
static int ctl_default(const nlm_msg *m, nlm_run *r)
{
    int32_t e = 0;
    r->ended_by = m->type;
    if (m->payload_len >= sizeof e) {
        memcpy(&e, m->payload, sizeof e);
    } else if (m->type == NLMSG_ERROR) {
        r->bad_type = m->type;  /* DONE may come without its int, an error may not */
        r->bad_len = (uint32_t)m->len;
        return -EBADMSG;
    }
    r->kernel_error = e;
    return e == 0 ? NLM_CB_STOP : nlm_errno(e);
}

int nlm_cb_run(const uint8_t *buf, size_t len, nlm_run *r)
{
    r->ended_by = 0;
    r->kernel_error = 0;
    r->bad_type = 0;
    r->bad_len = 0;
    r->bad_left = 0;
    size_t off = 0;
    while (off < len) {
        const size_t left = len - off;
        const uint8_t *h = buf + off;
        if (left < NLM_HDRLEN) {
            if (r->allow_truncated)
                return NLM_CB_OK;       /* a cut datagram: nothing more to read */
            r->bad_left = left;
            return -EBADMSG;
        }
        const uint32_t mlen = nlm_get32(h);
        const uint16_t type = nlm_get16(h + 4);
        if (mlen < NLM_HDRLEN || (mlen > left && !r->allow_truncated)) {
            r->bad_type = type;
            r->bad_len = mlen;
            r->bad_left = left;
            return -EBADMSG;
        }
        const size_t avail = mlen <= left ? mlen : left;
        nlm_msg m = { h, avail, type, nlm_get16(h + 6), nlm_get32(h + 8), nlm_get32(h + 12),
                      h + NLM_HDRLEN, avail - NLM_HDRLEN, mlen > left };
        r->messages++;
        const size_t step = nlm_align(avail);
        off += step < left ? step : left;
        /* not ours: an earlier request's late reply, or another sender's */
        if ((r->seq_span != 0 && (uint32_t)(m.seq - r->seq) >= r->seq_span)
            || (r->port != 0 && m.port != r->port)) {
            r->skipped++;
            continue;
        }
        if ((m.flags & NLM_F_DUMP_INTR) && !r->ignore_dump_intr)
            return -EINTR;              /* the set changed under the dump: nothing of it holds */
        int rc;
        if (type == NLMSG_ERROR || type == NLMSG_DONE)
            rc = r->ctl_cb != NULL ? r->ctl_cb(&m, r->arg) : ctl_default(&m, r);
        else
            rc = r->data_cb != NULL ? r->data_cb(&m, r->arg) : NLM_CB_OK;
        if (rc <= NLM_CB_STOP)
            return rc;
    }
    return NLM_CB_OK;
}

/* ---- the socket ----------------------------------------------------------------- */

bool nlm_from_kernel(const struct sockaddr_nl *sa, socklen_t salen)
{
    return salen >= (socklen_t)sizeof *sa && sa->nl_family == AF_NETLINK && sa->nl_pid == 0;
}

int nlm_port_id(int fd, uint32_t *port)
{
    struct sockaddr_nl sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -errno;
    *port = sa.nl_pid;
    return 0;
}

int nlm_send(int fd, const void *buf, size_t len)
{
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    for (;;) {
        ssize_t s = sendto(fd, buf, len, 0, (const struct sockaddr *)&kernel, sizeof kernel);
        if (s >= 0)
            return 0;           /* a datagram goes whole or not at all */
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t nlm_recv(int fd, void *buf, size_t size, int flags, bool *kernel, bool *truncated)
{
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = { buf, size };
        struct msghdr mh;
        memset(&from, 0, sizeof from);
        memset(&mh, 0, sizeof mh);
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t k = recvmsg(fd, &mh, flags);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        *kernel = nlm_from_kernel(&from, mh.msg_namelen);
        *truncated = (mh.msg_flags & MSG_TRUNC) != 0;
        return k;
    }
}
