/*
 * nlmsg.h - the core's netlink toolkit (internal; not part of polroute.h).
 *
 * One place for what the request encoder (netlink.c) and the dump decoder
 * (nl_dump.c) both need, after the ideas of libmnl:
 *  - building: a message and its attributes in a caller-owned buffer, every
 *    put checked against the buffer's end (and nla_len's 16 bits); a put
 *    that does not fit marks the buffer full and the message is refused at
 *    the end (-EMSGSIZE), so callers check once, not after every put;
 *  - reading: an attribute iterator that never reads past its container, a
 *    per-attribute validation against a policy (kind + length, like the
 *    kernel's nla_policy), and a parse into an array indexed by attribute
 *    type (the last of each type wins, as nla_parse);
 *  - the receive loop: nlm_cb_run walks the messages of one datagram, drops
 *    those for another port id or sequence, stops on NLM_F_DUMP_INTR, handles
 *    NLMSG_ERROR / NLMSG_DONE in one place and gives every other message to
 *    the caller's callback;
 *  - the socket calls both files make: the sender check, send to the kernel,
 *    one datagram in, the port id.
 *
 * Byte order: netlink headers and integer attributes are host order (the
 * get/put helpers); nlm_get_be / nlm_attr_put_be* are for the few big-endian
 * attributes.  All loads and stores go through memcpy: netlink buffers are
 * only 4-aligned and a datagram may start anywhere.
 */
#ifndef POLROUTE_NLMSG_H
#define POLROUTE_NLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <linux/netlink.h>      /* struct sockaddr_nl, NLMSG_*, NLM_F_* (stable since 2.6) */

#include "rtnl_attrs.h"

/* Newer than some build hosts' linux/netlink.h; uapi values. */
#ifndef NLM_F_DUMP_INTR
#define NLM_F_DUMP_INTR 0x10
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

enum {
    NLM_HDRLEN = 16,            /* struct nlmsghdr */
    NLM_ATTR_HDRLEN = 4,        /* struct nlattr */
    NLM_ERRLEN = 20,            /* struct nlmsgerr: s32 error + the request's nlmsghdr */
    NLM_ATTR_MAXLEN = 0xFFFF,   /* nla_len is 16 bits, header included */
    NLM_TYPE_MASK = 0x3FFF,     /* nla_type without NLA_F_NESTED / NLA_F_NET_BYTEORDER */
    NLM_ERRATTR_MSG = 1,        /* NLMSGERR_ATTR_MSG (an enum, not a macro, in uapi) */
};

static inline size_t nlm_align(size_t n) { return (n + 3u) & ~(size_t)3u; }

static inline uint16_t nlm_get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, sizeof v); return v; }
static inline uint32_t nlm_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, sizeof v); return v; }
static inline uint64_t nlm_get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, sizeof v); return v; }
static inline void nlm_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof v); }
static inline void nlm_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }

/* n (<= 8) big-endian bytes as a host integer. */
static inline uint64_t nlm_get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- building ------------------------------------------------------------- */

/* One message under construction in [mem, mem + cap) (caller-owned). */
typedef struct nlm_buf {
    uint8_t *p;
    size_t cap;
    size_t len;                 /* bytes written so far, 4-aligned */
    bool full;                  /* a put did not fit: nlm_msg_end refuses the message */
} nlm_buf;

/* Starts a message: zeroed nlmsghdr with type, flags, seq (port id 0: to the
 * kernel).  The length is written by nlm_msg_end. */
void nlm_msg_begin(nlm_buf *b, void *mem, size_t cap, uint16_t type, uint16_t flags, uint32_t seq);

/* Writes nlmsg_len: the message's length, or -EMSGSIZE if a put did not fit. */
int nlm_msg_end(nlm_buf *b);

/* n zeroed bytes (padded to 4), e.g. a family header; NULL when full. */
uint8_t *nlm_reserve(nlm_buf *b, size_t n);

/* Attributes: false when it did not fit (the buffer is then full). */
bool nlm_attr_put(nlm_buf *b, uint16_t type, const void *data, size_t len);
bool nlm_attr_put_u8(nlm_buf *b, uint16_t type, uint8_t v);
bool nlm_attr_put_u16(nlm_buf *b, uint16_t type, uint16_t v);
bool nlm_attr_put_u32(nlm_buf *b, uint16_t type, uint32_t v);
bool nlm_attr_put_be32(nlm_buf *b, uint16_t type, uint32_t v);
bool nlm_attr_put_be64(nlm_buf *b, uint16_t type, uint64_t v);
/* s and its NUL. */
bool nlm_attr_put_strz(nlm_buf *b, uint16_t type, const char *s);

/* A nested attribute (or any length-prefixed block, e.g. struct rtnexthop):
 * begin returns where it starts; end writes its u16 length there. */
size_t nlm_nest_begin(nlm_buf *b, uint16_t type);
void nlm_nest_end(nlm_buf *b, size_t start);
void nlm_len16_end(nlm_buf *b, size_t start);

/* ---- reading attributes ------------------------------------------------------ */

typedef struct nlm_attr {
    const uint8_t *data;        /* payload; NULL when absent (nlm_attr_parse) */
    uint16_t len;               /* payload length */
    uint16_t type;              /* without the NESTED / BYTEORDER flags */
} nlm_attr;

typedef struct nlm_iter {
    const uint8_t *p;
    size_t len, off;
} nlm_iter;

static inline void nlm_iter_init(nlm_iter *it, const uint8_t *p, size_t len)
{
    it->p = p;
    it->len = len;
    it->off = 0;
}

/* Bytes not yet walked (after an error: from the bad attribute on). */
static inline size_t nlm_iter_left(const nlm_iter *it) { return it->len - it->off; }

/* 1: *a is the next attribute; 0: the end; -EBADMSG: fewer than 4 stray bytes
 * are left (a->len = 0, a->type = 0), or an attribute's nla_len is below 4 or
 * past the container (a->type and a->len: the header as read).  The iterator
 * stays at a bad attribute. */
int nlm_attr_next(nlm_iter *it, nlm_attr *a);

/* What an attribute must look like (the kernel's nla_policy, reduced). */
enum nlm_kind {
    NLM_ANY = 0,                /* any payload (also: no policy) */
    NLM_U8, NLM_U16, NLM_U32, NLM_U64,
    NLM_UINT,                   /* u32 or u64 (the kernel's NLA_UINT) */
    NLM_EXACT,                  /* exactly `len` bytes (an address, a struct) */
    NLM_NUL_STRING,             /* a NUL within the first len + 1 bytes (len 0: anywhere) */
    NLM_NESTED,                 /* empty, or at least one attribute header */
};

typedef struct nlm_policy {
    uint8_t kind;               /* enum nlm_kind */
    uint16_t len;
} nlm_policy;

/* 0, -ERANGE (the payload's length does not fit the kind), or -EINVAL (a
 * string without its NUL).  *want: the length expected for fixed kinds. */
int nlm_attr_validate(const nlm_attr *a, const nlm_policy *pol, size_t *want);

/* Why nlm_attr_parse refused a container. */
typedef struct nlm_bad {
    int err;                    /* -EBADMSG (framing), -ERANGE / -EINVAL (policy) */
    uint16_t type;              /* the attribute's type (0 for stray bytes) */
    uint16_t len;               /* framing: nla_len as read; policy: payload length */
    size_t left;                /* framing: bytes left in the container from it on */
    size_t want;                /* policy: expected payload length (fixed kinds) */
} nlm_bad;

/* Fills tb[0..maxtype] (cleared first) with the last attribute of each type
 * in [p, p + len), each checked against pol[type] (pol NULL: framing only).
 * Types above maxtype are skipped unchecked: newer kernels add attributes.
 * 0, or why's err (why may be NULL). */
int nlm_attr_parse(const uint8_t *p, size_t len, const nlm_policy *pol, uint16_t maxtype,
                   nlm_attr *tb, nlm_bad *why);

/* ---- the receive loop ----------------------------------------------------------- */

/* One message of a datagram. */
typedef struct nlm_msg {
    const uint8_t *hdr;         /* the nlmsghdr */
    size_t len;                 /* nlmsg_len, or what arrived when truncated */
    uint16_t type, flags;
    uint32_t seq, port;
    const uint8_t *payload;     /* after the header */
    size_t payload_len;
    bool truncated;             /* nlmsg_len went past the datagram (allow_truncated) */
} nlm_msg;

/* Callback results, as libmnl: < 0 a negative errno (the loop returns it),
 * NLM_CB_STOP ends the loop, NLM_CB_OK goes on. */
enum { NLM_CB_STOP = 0, NLM_CB_OK = 1 };
typedef int (*nlm_cb_fn)(const nlm_msg *m, void *arg);

typedef struct nlm_run {
    /* what is ours: messages with another seq or port id are skipped (counted) */
    uint32_t seq;
    uint32_t seq_span;          /* seq in [seq, seq + seq_span); 0: any seq */
    uint32_t port;              /* 0: any port id */
    bool allow_truncated;       /* a last message cut short is handed on, not refused */
    bool ignore_dump_intr;      /* not a dump: the flag means nothing here */
    nlm_cb_fn data_cb;          /* every message but NLMSG_ERROR / NLMSG_DONE (may be NULL) */
    nlm_cb_fn ctl_cb;           /* NLMSG_ERROR / NLMSG_DONE instead of the default (NULL) */
    void *arg;
    /* what happened (accumulates over calls) */
    size_t messages;            /* headers read, skipped ones too */
    size_t skipped;             /* another seq or port id */
    /* set by the call that returned */
    uint16_t ended_by;          /* NLMSG_ERROR / NLMSG_DONE that ended it, else 0 */
    int32_t kernel_error;       /* its error field as sent (0 for an ACK or DONE) */
    uint16_t bad_type;          /* -EBADMSG framing: the message's type (0 if unknown) */
    uint32_t bad_len;           /* -EBADMSG framing: nlmsg_len as read (0: header cut) */
    size_t bad_left;            /* -EBADMSG framing: bytes left from the bad message on */
} nlm_run;

/* Runs the messages of buf[0, len) through r's callbacks, in order.
 * Returns NLM_CB_OK: all consumed, more to come; NLM_CB_STOP: the end (an
 * NLMSG_DONE, an ACK, or a callback said stop); or a negative errno:
 *   -EINTR     an NLM_F_DUMP_INTR message of ours (the dump must start again;
 *              that message is not handed on), unless ignore_dump_intr;
 *   -EBADMSG   a header cut short or nlmsg_len past the buffer (bad_*), or an
 *              NLMSG_ERROR shorter than its error field;
 *   -errno     the kernel's error from NLMSG_ERROR / NLMSG_DONE (-EPROTO for
 *              a positive or out-of-range value; kernel_error has it raw);
 *   < 0        what a callback returned.
 * Default control handling (ctl_cb NULL): NLMSG_ERROR with error 0 (an ACK)
 * and NLMSG_DONE (error 0 or none) stop; a negative error is returned. */
int nlm_cb_run(const uint8_t *buf, size_t len, nlm_run *r);

/* Maps a kernel error field to a negative errno (0 stays 0). */
int nlm_errno(int32_t e);

/* ---- the socket ----------------------------------------------------------------- */

/* Whether a datagram's source address is the kernel's (nl_pid 0): only the
 * kernel answers requests; any local process may send to our port. */
bool nlm_from_kernel(const struct sockaddr_nl *sa, socklen_t salen);

/* The socket's port id (nl_pid), or a negative errno. */
int nlm_port_id(int fd, uint32_t *port);

/* Sends one buffer to the kernel, retrying EINTR: 0 or a negative errno. */
int nlm_send(int fd, const void *buf, size_t len);

/* One datagram into buf (flags as recvmsg, e.g. MSG_DONTWAIT), retrying
 * EINTR: its length or a negative errno.  *kernel: it came from the kernel;
 * *truncated: it was larger than size (MSG_TRUNC). */
ssize_t nlm_recv(int fd, void *buf, size_t size, int flags, bool *kernel, bool *truncated);

#endif /* POLROUTE_NLMSG_H */
