/*
 * wr_conn.c: struct wr_conn, a byte stream over one uv_tcp_t, plain or TLS 1.3.
 * Owns the connection's buffers, its wolfSSL session and I/O callbacks (the
 * session reads ciphertext from rbuf and writes through uv_try_write, queueing
 * only what the kernel refuses), deferred callback delivery and the close
 * sequence, and the PROXY header a trusted balancer's connection starts with
 * (read and stripped here, parsed by wr_proxy.c). TLS policy (suites, ALPN,
 * verification) lives in wr_tls.c, record crypto in wr_tlsdev.c.
 *
 * Memory: every buffer is allocated on demand and freed as soon as it is
 * empty, so an idle connection holds only this struct and the wolfSSL session;
 * once the handshake is done, the session's all-zero pages are given back to
 * the kernel (wr__tls_mem_reclaim).
 */
#include "wr/conn.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wr/addr.h"
#include "wr/log.h"
#include "wr/proxy.h"
#include "wr/util.h"
#include "wr_tls_int.h"

/* Read buffer size: one libuv read takes up to this much ciphertext, which
 * holds four full TLS records. */
#define WR_CONN_RBUF 65536
/* Plain connections (visitors, warren-lb's relays) read up to this much at
 * once: fewer reads and writes per byte relayed. */
#define WR_CONN_RBUF_PLAIN 262144
/* Plaintext delivered to on_read in chunks of up to this much. */
#define WR_CONN_PBUF 65536
/* Smallest free tail offered for a read or a wolfSSL_read (one full record). */
#define WR_CONN_MIN_TAIL 16640
/* TLS record payload limit. */
#define WR_CONN_REC 16384
/* Writes at least this large go to wolfSSL (or the socket) at once, without a
 * copy, when nothing is staged before them. */
#define WR_CONN_DIRECT_MIN 8192
/* Staged plaintext is flushed at once when it reaches this size, otherwise at
 * the end of the loop iteration. */
#define WR_CONN_FLUSH_AT 65536
#define WR_CONN_DEF_MAX_QUEUE (64u << 20)
#define WR_CONN_DEF_HS_MS 10000u
#define WR_CONN_FLUSH_MS 2000u
#define WR_CONN_MAX_IOV 16
#define WR_CONN_NAME_MAX 256
/* A wolfSSL session after the handshake, measured with Debian's 5.5.4:
 * wolfSSL_new takes 56 KB (37.5 KB of it the WOLFSSL_SESSION, whose cert
 * chains are inline arrays with SESSION_CERTS and ALT_CERT_CHAINS), plus the
 * record keys and the kept peer certificate. For wr_conn_mem(), less what
 * the reclaim after the handshake gave back (8 of the session's 10 pages). */
#define WR_CONN_TLS_EST 63488

enum wr_conn_state {
    WR_CONN_ST_CONNECTING = 0, /* dial: TCP connect in flight */
    WR_CONN_ST_PROXY,          /* accepted from a trusted balancer: reading its PROXY header */
    WR_CONN_ST_HANDSHAKE,      /* TLS handshake in progress */
    WR_CONN_ST_READY,          /* data flows both ways */
    WR_CONN_ST_FAILED,         /* a fatal error is reported (or about to be); owner closes */
    WR_CONN_ST_FLUSHING,       /* closed with flush: queued data goes out first (bounded) */
    WR_CONN_ST_CLOSING,        /* uv_close issued on every handle; waiting for callbacks */
    WR_CONN_ST__COUNT          /* must be last */
};

static const char *const wr_conn_state_names[WR_CONN_ST__COUNT] = {
    "CONNECTING", "PROXY", "HANDSHAKE", "READY", "FAILED", "FLUSHING", "CLOSING"};

#define WR_CONN_BIT(s) (1u << (s))
static const uint32_t wr_conn_allowed[WR_CONN_ST__COUNT] = {
    [WR_CONN_ST_CONNECTING] = WR_CONN_BIT(WR_CONN_ST_HANDSHAKE) | WR_CONN_BIT(WR_CONN_ST_READY) |
                              WR_CONN_BIT(WR_CONN_ST_FAILED) | WR_CONN_BIT(WR_CONN_ST_CLOSING),
    /* PROXY is an entry state only (accept), like HANDSHAKE. */
    [WR_CONN_ST_PROXY] = WR_CONN_BIT(WR_CONN_ST_HANDSHAKE) | WR_CONN_BIT(WR_CONN_ST_READY) |
                         WR_CONN_BIT(WR_CONN_ST_FAILED) | WR_CONN_BIT(WR_CONN_ST_FLUSHING) |
                         WR_CONN_BIT(WR_CONN_ST_CLOSING),
    [WR_CONN_ST_HANDSHAKE] = WR_CONN_BIT(WR_CONN_ST_READY) | WR_CONN_BIT(WR_CONN_ST_FAILED) |
                             WR_CONN_BIT(WR_CONN_ST_FLUSHING) | WR_CONN_BIT(WR_CONN_ST_CLOSING),
    [WR_CONN_ST_READY] = WR_CONN_BIT(WR_CONN_ST_FAILED) | WR_CONN_BIT(WR_CONN_ST_FLUSHING) |
                         WR_CONN_BIT(WR_CONN_ST_CLOSING),
    [WR_CONN_ST_FAILED] = WR_CONN_BIT(WR_CONN_ST_FLUSHING) | WR_CONN_BIT(WR_CONN_ST_CLOSING),
    [WR_CONN_ST_FLUSHING] = WR_CONN_BIT(WR_CONN_ST_CLOSING),
    [WR_CONN_ST_CLOSING] = 0,
};

/* Orthogonal booleans (lifecycle is the state). */
enum {
    WR_CONN_F_TLS = 1u << 0,          /* wolfSSL session on top of TCP */
    WR_CONN_F_SERVER = 1u << 1,       /* accepted, not dialed */
    WR_CONN_F_READING = 1u << 2,      /* the owner wants on_read */
    WR_CONN_F_UV_READING = 1u << 3,   /* uv_read_start is in effect */
    WR_CONN_F_EOF_IN = 1u << 4,       /* TCP FIN received */
    WR_CONN_F_EOF_DONE = 1u << 5,     /* on_eof reported (or owed no more) */
    WR_CONN_F_READY_DONE = 1u << 6,   /* on_ready reported, or not owed */
    WR_CONN_F_SHUT_REQ = 1u << 7,     /* wr_conn_shutdown was called */
    WR_CONN_F_SHUT_SENT = 1u << 8,    /* uv_shutdown issued */
    WR_CONN_F_DRAIN = 1u << 9,        /* on_drain owed when the queue empties */
    WR_CONN_F_WRITING = 1u << 10,     /* a uv_write is in flight */
    WR_CONN_F_ABANDONED = 1u << 11,   /* creation failed: free without on_close */
    WR_CONN_F_IN_PUMP = 1u << 12,     /* inside the TLS read pump */
    WR_CONN_F_NOTIFY_SENT = 1u << 13, /* TLS close_notify written */
    WR_CONN_F_SOCK_DEAD = 1u << 14,   /* the socket failed: drop further output */
};

/* Work deferred to the connection's check handle (end of loop iteration). */
enum {
    WR_CONN_P_FLUSH = 1u << 0,    /* staged bytes to hand to wolfSSL / the socket */
    WR_CONN_P_DELIVER = 1u << 1,  /* buffered input to deliver after read_start */
    WR_CONN_P_FAIL = 1u << 2,     /* report c->err through on_ready or on_error */
    WR_CONN_P_SHUTDOWN = 1u << 3, /* half-close requested */
};

struct wr_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline, then the flush-on-close deadline */
    uv_check_t check; /* deferred work, run after poll in the same iteration */
    uv_idle_t idle;   /* active with check, so that poll does not block meanwhile */
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;

    struct wr_conn_cbs cbs;
    void *arg;
    WOLFSSL *ssl;
    struct wr__tls_mem tls_mem; /* wolfSSL's large blocks for <ssl> */
    size_t tls_reclaimed;       /* bytes of them given back after the handshake */
    enum wr_conn_state state;
    uint32_t flags;
    uint32_t pending;
    int err;          /* the error being reported (FAILED) */
    int handles_open; /* close callbacks still to come */
    uint64_t id;
    size_t max_queue;
    uint32_t hs_timeout_ms;

    /* Plain: bytes read, delivered at once. TLS: ciphertext not yet taken by
     * wolfSSL (a partial record, or data held while the owner is not reading). */
    struct wr_buf rbuf;
    struct wr_buf pbuf;  /* TLS: decrypted bytes being gathered for on_read */
    struct wr_buf stage; /* TLS: plaintext accepted but not yet encrypted */
    /* Bytes for the kernel, double-buffered: wq[wq_app] collects while
     * wq[wq_app ^ 1] is written by the one uv_write in flight (F_WRITING).
     * For plain TCP, wq[wq_app] also stages small writes until the flush. */
    struct wr_buf wq[2];
    int wq_app;

    char peer[WR_ADDR_STRLEN];
    char *sni;                  /* server: what the client sent; dial: what we send */
    char *peer_cn;              /* the peer certificate's CN (servers: mutual TLS only) */
    char alpn[WR_TLS_ALPN_MAX]; /* the protocol this connection requires */
    bool mutual;                /* the context asks the client for a certificate */
    uint8_t proxy;              /* enum wr_conn_proxy */
    const char *proxy_why;      /* WR_CONN_PROXY_BAD: why (static) */
    char *sock_peer;            /* the socket's peer, once a PROXY header replaced <peer> */
};

static _Atomic uint64_t wr_conn_next_id = 1;

static void wr_conn_on_handle_closed(uv_handle_t *h);
static void wr_conn_on_write(uv_write_t *req, int status);
static void wr_conn_on_check(uv_check_t *h);
static void wr_conn_tls_pump(struct wr_conn *c);
static void wr_conn_fail(struct wr_conn *c, int err);

static inline uv_stream_t *wr_conn_stream(struct wr_conn *c)
{
    return (uv_stream_t *)&c->tcp;
}

static inline bool wr_conn_has(const struct wr_conn *c, uint32_t f)
{
    return (c->flags & f) != 0;
}

static size_t wr_conn_wq_len(const struct wr_conn *c)
{
    return c->wq[0].len + c->wq[1].len;
}

/* The only writer of c->state. */
static void wr_conn_set_state(struct wr_conn *c, enum wr_conn_state to)
{
    if (c->state == to)
        return;
    if ((wr_conn_allowed[c->state] & WR_CONN_BIT(to)) == 0) {
        WR_ERROR("tls", "conn_bad_transition", "conn=%llu from=%s to=%s", (unsigned long long)c->id,
                 wr_conn_state_names[c->state], wr_conn_state_names[to]);
        WR_ASSERT(!"wr_conn state transition");
    }
    WR_TRACE("tls", "conn_state", "conn=%llu from=%s to=%s", (unsigned long long)c->id,
             wr_conn_state_names[c->state], wr_conn_state_names[to]);
    c->state = to;
}

static void wr_conn_on_idle(uv_idle_t *h)
{
    (void)h; /* exists only to keep poll from blocking while check has work */
}

/* Defers <what> to the end of this loop iteration (or the next one, if the
 * loop is past its poll phase). */
static void wr_conn_schedule(struct wr_conn *c, uint32_t what)
{
    if (c->state >= WR_CONN_ST_FLUSHING)
        return;
    c->pending |= what;
    if (!uv_is_active((uv_handle_t *)&c->check)) {
        uv_check_start(&c->check, wr_conn_on_check);
        uv_idle_start(&c->idle, wr_conn_on_idle);
    }
}

/* ---- reading ------------------------------------------------------------------ */

static bool wr_conn_want_uv_read(const struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_SOCK_DEAD | WR_CONN_F_EOF_IN))
        return false;
    if (c->state == WR_CONN_ST_HANDSHAKE || c->state == WR_CONN_ST_PROXY)
        return true;
    return c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_READING) &&
           !wr_conn_has(c, WR_CONN_F_EOF_DONE);
}

static void wr_conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void wr_conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void wr_conn_update_reading(struct wr_conn *c)
{
    bool want = wr_conn_want_uv_read(c);
    if (want && !wr_conn_has(c, WR_CONN_F_UV_READING)) {
        int rc = uv_read_start(wr_conn_stream(c), wr_conn_on_alloc, wr_conn_on_read);
        if (rc != 0) {
            wr_conn_fail(c, rc);
            return;
        }
        c->flags |= WR_CONN_F_UV_READING;
    } else if (!want && wr_conn_has(c, WR_CONN_F_UV_READING)) {
        uv_read_stop(wr_conn_stream(c));
        c->flags &= ~WR_CONN_F_UV_READING;
    }
}

static void wr_conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct wr_conn *c = h->data;
    uint8_t *w = NULL;
    size_t wl = 0;
    /* The first reservation sizes the buffer to a full WR_CONN_RBUF; later ones
     * (a partial record kept) only need a record's worth of tail. */
    size_t min = c->rbuf.data == NULL
                     ? (wr_conn_has(c, WR_CONN_F_TLS) ? WR_CONN_RBUF : WR_CONN_RBUF_PLAIN)
                     : WR_CONN_MIN_TAIL;
    if (wr_buf_reserve(&c->rbuf, min, &w, &wl) != 0) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)w, (unsigned)(wl > UINT_MAX ? UINT_MAX : wl));
}

static void wr_conn_report_eof(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_EOF_DONE))
        return;
    c->flags |= WR_CONN_F_EOF_DONE;
    wr_conn_update_reading(c);
    if (c->cbs.on_eof)
        c->cbs.on_eof(c, c->arg);
}

static void wr_conn_release_idle_bufs(struct wr_conn *c)
{
    if (c->rbuf.len == 0 && c->rbuf.data != NULL)
        wr_buf_free(&c->rbuf);
    if (c->pbuf.len == 0 && c->pbuf.data != NULL)
        wr_buf_free(&c->pbuf);
}

static void wr_conn_tls_handshake(struct wr_conn *c);
static void wr_conn_ready(struct wr_conn *c);

/* Plain: hands everything rbuf holds to the owner; nothing is kept. */
static void wr_conn_plain_deliver(struct wr_conn *c)
{
    struct wr_slice d = wr_buf_peek(&c->rbuf);
    if (d.len == 0)
        return;
    wr_buf_consume(&c->rbuf, d.len); /* leaves the bytes where they are */
    if (c->state == WR_CONN_ST_READY && c->cbs.on_read)
        c->cbs.on_read(c, d.ptr, d.len, c->arg);
    wr_buf_free(&c->rbuf);
}

static void wr_conn_proxy_fail(struct wr_conn *c, const char *why, int err)
{
    c->proxy = WR_CONN_PROXY_BAD;
    c->proxy_why = why;
    wr_conn_fail(c, err);
}

/*
 * The PROXY header a trusted peer owes, from rbuf: once complete it is
 * stripped, its source becomes the peer, and the connection goes on as if
 * accepted now (TLS handshake, or ready) with whatever followed it.
 */
static void wr_conn_proxy_read(struct wr_conn *c)
{
    struct wr_slice d = wr_buf_peek(&c->rbuf);
    struct sockaddr_storage src;
    size_t used = 0;
    const char *why = NULL;
    enum wr_proxy_result r = wr_proxy_parse(d.ptr, d.len, &src, NULL, &used, &why);
    if (r == WR_PROXY_NEED_MORE) {
        /* The parser decides within WR_PROXY_HEAD_MAX bytes; belt and braces. */
        if (d.len >= WR_PROXY_HEAD_MAX)
            wr_conn_proxy_fail(c, "header too long", WR_EPROTO);
        return;
    }
    if (r == WR_PROXY_BAD) {
        wr_conn_proxy_fail(c, why != NULL ? why : "bad header", WR_EPROTO);
        return;
    }
    if (r == WR_PROXY_OK) {
        c->sock_peer = wr_xstrdup(c->peer);
        wr_addr_str((const struct sockaddr *)&src, c->peer, sizeof(c->peer));
        c->proxy = WR_CONN_PROXY_OK;
    } else {
        c->proxy = WR_CONN_PROXY_LOCAL;
    }
    wr_buf_consume(&c->rbuf, used);
    if (wr_conn_has(c, WR_CONN_F_TLS)) {
        wr_conn_set_state(c, WR_CONN_ST_HANDSHAKE);
        wr_conn_tls_handshake(c); /* the ClientHello may have come with the header */
        if (c->state == WR_CONN_ST_READY)
            wr_conn_tls_pump(c);
        return;
    }
    wr_conn_ready(c); /* on_ready(0) */
    if (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_READING))
        wr_conn_plain_deliver(c); /* else kept for read_start */
}

static void wr_conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct wr_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            c->flags |= WR_CONN_F_EOF_IN;
            c->flags &= ~WR_CONN_F_UV_READING; /* libuv stopped reading */
            if (c->state == WR_CONN_ST_HANDSHAKE)
                wr_conn_fail(c, UV_ECONNRESET);
            else if (c->state == WR_CONN_ST_PROXY)
                wr_conn_proxy_fail(c, "closed before the header", WR_EPROTO);
            else if (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_TLS))
                wr_conn_tls_pump(c); /* delivers what is left, then on_eof */
            else if (c->state == WR_CONN_ST_READY)
                wr_conn_report_eof(c);
        } else {
            c->flags |= WR_CONN_F_SOCK_DEAD;
            wr_conn_fail(c, nread == UV_ENOBUFS ? WR_ENOMEM : (int)nread);
        }
        wr_conn_release_idle_bufs(c);
        return;
    }
    wr_buf_commit(&c->rbuf, (size_t)nread);
    if (__builtin_expect(c->state == WR_CONN_ST_PROXY, 0)) {
        wr_conn_proxy_read(c);
        wr_conn_release_idle_bufs(c);
        return;
    }
    if (!wr_conn_has(c, WR_CONN_F_TLS)) {
        /* Plain: the whole chunk goes to the owner now; nothing is kept. */
        wr_conn_plain_deliver(c);
        return;
    }
    if (c->state == WR_CONN_ST_HANDSHAKE)
        wr_conn_tls_handshake(c);
    if (c->state == WR_CONN_ST_READY)
        wr_conn_tls_pump(c);
    wr_conn_release_idle_bufs(c);
}

/* Hands the gathered plaintext to the owner. */
static void wr_conn_deliver(struct wr_conn *c)
{
    if (c->pbuf.len == 0)
        return;
    struct wr_slice d = wr_buf_peek(&c->pbuf);
    /* Emptied before the call: the owner may re-enter (write, read_stop). */
    c->pbuf.len = 0;
    c->pbuf.off = 0;
    if (c->cbs.on_read)
        c->cbs.on_read(c, d.ptr, d.len, c->arg);
}

/*
 * Decrypts everything wolfSSL can make of rbuf and delivers it, in chunks of up
 * to WR_CONN_PBUF, while the owner reads. Stops with ciphertext left in rbuf
 * (and plaintext inside wolfSSL) when the owner calls read_stop; read_start
 * resumes here from the check handle.
 */
static void wr_conn_tls_pump(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_IN_PUMP))
        return;
    c->flags |= WR_CONN_F_IN_PUMP;
    while (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_READING) &&
           !wr_conn_has(c, WR_CONN_F_EOF_DONE)) {
        uint8_t *w = NULL;
        size_t wl = 0;
        size_t min = c->pbuf.data == NULL ? WR_CONN_PBUF : 1;
        if (wr_buf_reserve(&c->pbuf, min, &w, &wl) != 0) {
            wr_conn_fail(c, WR_ENOMEM);
            break;
        }
        int n = wolfSSL_read(c->ssl, w, (int)(wl > INT_MAX ? INT_MAX : wl));
        if (n > 0) {
            wr_buf_commit(&c->pbuf, (size_t)n);
            if (c->pbuf.cap - c->pbuf.len >= WR_CONN_MIN_TAIL)
                continue; /* room for another record: gather it first */
            wr_conn_deliver(c);
            continue;
        }
        int e = wolfSSL_get_error(c->ssl, n);
        wr_conn_deliver(c);
        if (c->state != WR_CONN_ST_READY)
            break;
        if (e == WOLFSSL_ERROR_WANT_READ) {
            if (wr_conn_has(c, WR_CONN_F_EOF_IN) && c->rbuf.len == 0 &&
                wr_conn_has(c, WR_CONN_F_READING))
                wr_conn_report_eof(c);
            break;
        }
        if (e == WOLFSSL_ERROR_ZERO_RETURN) {
            wr_conn_report_eof(c); /* close_notify: the loop ran while reading */
            break;
        }
        char msg[WOLFSSL_MAX_ERROR_SZ];
        wolfSSL_ERR_error_string_n((unsigned long)(e < 0 ? -e : e), msg, sizeof(msg));
        WR_INFO("tls", "tls_read_failed", "conn=%llu peer=%s code=%d detail=\"%s\" err=ETLS",
                (unsigned long long)c->id, c->peer, e, msg);
        wr_conn_fail(c, WR_ETLS);
        break;
    }
    c->flags &= ~WR_CONN_F_IN_PUMP;
}

/* ---- writing ------------------------------------------------------------------ */

static void wr_conn_start_write(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_WRITING) || c->wq[c->wq_app].len == 0)
        return;
    int idx = c->wq_app;
    c->wq_app ^= 1;
    struct wr_slice d = wr_buf_peek(&c->wq[idx]);
    uv_buf_t b = uv_buf_init((char *)d.ptr, (unsigned)d.len);
    int rc = uv_write(&c->write_req, wr_conn_stream(c), &b, 1, wr_conn_on_write);
    if (rc != 0) {
        c->wq_app = idx;
        c->flags |= WR_CONN_F_SOCK_DEAD;
        wr_conn_fail(c, rc);
        return;
    }
    c->flags |= WR_CONN_F_WRITING;
}

/*
 * Hands <len> bytes to the kernel: written at once when nothing is queued
 * ahead of them, the remainder copied to the queue. This is the path of every
 * TLS record (from the wolfSSL send callback) and of large plain writes.
 */
static int wr_conn_out(struct wr_conn *c, const uint8_t *p, size_t len)
{
    if (wr_conn_has(c, WR_CONN_F_SOCK_DEAD))
        return 0;
    if (!wr_conn_has(c, WR_CONN_F_WRITING) && c->wq[c->wq_app].len == 0 &&
        c->state != WR_CONN_ST_CONNECTING) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)(len > UINT_MAX ? UINT_MAX : len));
        int n = uv_try_write(wr_conn_stream(c), &b, 1);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            c->flags |= WR_CONN_F_SOCK_DEAD;
            wr_conn_fail(c, n);
            return n;
        }
    }
    if (len == 0)
        return 0;
    if (wr_buf_append(&c->wq[c->wq_app], p, len) != 0) {
        wr_conn_fail(c, WR_ENOMEM);
        return WR_ENOMEM;
    }
    c->flags |= WR_CONN_F_DRAIN;
    if (c->state != WR_CONN_ST_CONNECTING)
        wr_conn_start_write(c);
    return 0;
}

/* Plain TCP: hands the staged bytes in wq[wq_app] to the kernel. */
static void wr_conn_plain_flush(struct wr_conn *c)
{
    struct wr_buf *q = &c->wq[c->wq_app];
    if (wr_conn_has(c, WR_CONN_F_WRITING) || q->len == 0 || c->state == WR_CONN_ST_CONNECTING)
        return;
    if (wr_conn_has(c, WR_CONN_F_SOCK_DEAD)) {
        wr_buf_free(q);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)q->data + q->off, (unsigned)q->len);
    int n = uv_try_write(wr_conn_stream(c), &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        c->flags |= WR_CONN_F_SOCK_DEAD;
        wr_conn_fail(c, n);
        return;
    }
    if (n > 0)
        wr_buf_consume(q, (size_t)n);
    if (q->len == 0) {
        wr_buf_free(q);
        return;
    }
    c->flags |= WR_CONN_F_DRAIN;
    wr_conn_start_write(c);
}

/* TLS: encrypts <len> bytes into records; they leave through wr_conn_out. */
static int wr_conn_tls_write(struct wr_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int chunk = (int)(len > (1u << 30) ? (1u << 30) : len);
        int n = wolfSSL_write(c->ssl, p, chunk);
        if (n <= 0) {
            if (c->state >= WR_CONN_ST_FAILED)
                return c->err ? c->err : WR_ECLOSED;
            int e = wolfSSL_get_error(c->ssl, n);
            WR_INFO("tls", "tls_write_failed", "conn=%llu peer=%s code=%d err=ETLS",
                    (unsigned long long)c->id, c->peer, e);
            wr_conn_fail(c, WR_ETLS);
            return WR_ETLS;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int wr_conn_tls_flush(struct wr_conn *c)
{
    int rc = 0;
    if (c->stage.len > 0) {
        struct wr_slice d = wr_buf_peek(&c->stage);
        rc = wr_conn_tls_write(c, d.ptr, d.len);
    }
    wr_buf_free(&c->stage);
    return rc;
}

/* Stage bytes go to wolfSSL (TLS) or to the kernel (plain). READY only. */
static void wr_conn_flush(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_TLS))
        (void)wr_conn_tls_flush(c);
    else
        wr_conn_plain_flush(c);
}

static void wr_conn_close_handles(struct wr_conn *c, bool reset);

/* The queue is empty after a write: finish what waited on it. */
static void wr_conn_on_queue_empty(struct wr_conn *c)
{
    if (c->state == WR_CONN_ST_FLUSHING) {
        wr_conn_close_handles(c, false);
        return;
    }
    if (c->state != WR_CONN_ST_READY)
        return;
    if (wr_conn_has(c, WR_CONN_F_SHUT_REQ) && !wr_conn_has(c, WR_CONN_F_SHUT_SENT) &&
        c->stage.len == 0)
        wr_conn_schedule(c, WR_CONN_P_SHUTDOWN);
    if (wr_conn_has(c, WR_CONN_F_DRAIN) && wr_conn_write_queued(c) == 0) {
        c->flags &= ~WR_CONN_F_DRAIN;
        if (c->cbs.on_drain)
            c->cbs.on_drain(c, c->arg);
    }
}

static void wr_conn_on_write(uv_write_t *req, int status)
{
    struct wr_conn *c = wr_container_of(req, struct wr_conn, write_req);
    c->flags &= ~WR_CONN_F_WRITING;
    if (status == UV_ECANCELED || c->state == WR_CONN_ST_CLOSING)
        return; /* buffers are released with the connection */
    wr_buf_free(&c->wq[c->wq_app ^ 1]);
    if (status < 0) {
        c->flags |= WR_CONN_F_SOCK_DEAD;
        if (c->state == WR_CONN_ST_FLUSHING)
            wr_conn_close_handles(c, true);
        else
            wr_conn_fail(c, status);
        return;
    }
    if (c->wq[c->wq_app].len > 0) {
        wr_conn_start_write(c);
        return;
    }
    wr_conn_on_queue_empty(c);
}

size_t wr_conn_write_queued(const struct wr_conn *c)
{
    return c->stage.len + wr_conn_wq_len(c);
}

static int wr_conn_check_writable(struct wr_conn *c, size_t total)
{
    if (c->state >= WR_CONN_ST_FAILED || wr_conn_has(c, WR_CONN_F_SHUT_REQ))
        return WR_ECLOSED;
    if (wr_conn_write_queued(c) + total > c->max_queue)
        return WR_ETOOBIG;
    return 0;
}

static int wr_conn_writev_tls(struct wr_conn *c, const struct wr_slice *v, int n)
{
    bool ready = c->state == WR_CONN_ST_READY;
    for (int i = 0; i < n; i++) {
        struct wr_slice s = v[i];
        if (!ready || s.len < WR_CONN_DIRECT_MIN) {
            if (wr_buf_append(&c->stage, s.ptr, s.len) != 0)
                goto fail_nomem;
            continue;
        }
        if (c->stage.len > 0) {
            /* Top the staged bytes up to a record boundary from <s>, so the
             * small pieces before it share a record with its start. */
            size_t rem = c->stage.len % WR_CONN_REC;
            size_t take = rem ? WR_CONN_REC - rem : 0;
            take = take > s.len ? s.len : take;
            if (wr_buf_append(&c->stage, s.ptr, take) != 0)
                goto fail_nomem;
            s = wr_slice_adv(s, take);
            int rc = wr_conn_tls_flush(c);
            if (rc != 0)
                return rc;
        }
        if (s.len > 0) {
            int rc = wr_conn_tls_write(c, s.ptr, s.len);
            if (rc != 0)
                return rc;
        }
    }
    if (!ready) {
        if (c->stage.len > 0)
            c->flags |= WR_CONN_F_DRAIN;
        return 0;
    }
    if (c->stage.len >= WR_CONN_FLUSH_AT)
        return wr_conn_tls_flush(c);
    if (c->stage.len > 0)
        wr_conn_schedule(c, WR_CONN_P_FLUSH);
    return 0;

fail_nomem:
    wr_conn_fail(c, WR_ENOMEM);
    return WR_ENOMEM;
}

static int wr_conn_writev_plain(struct wr_conn *c, const struct wr_slice *v, int n, size_t total)
{
    bool ready = c->state == WR_CONN_ST_READY;
    struct wr_buf *q = &c->wq[c->wq_app];
    if (ready && total >= WR_CONN_DIRECT_MIN && n <= WR_CONN_MAX_IOV &&
        !wr_conn_has(c, WR_CONN_F_WRITING) && q->len == 0) {
        /* Straight to the kernel, one writev, no copy unless it pushes back. */
        uv_buf_t b[WR_CONN_MAX_IOV] = {{0}};
        for (int i = 0; i < n; i++)
            b[i] = uv_buf_init((char *)v[i].ptr, (unsigned)v[i].len);
        int w = uv_try_write(wr_conn_stream(c), b, (unsigned)n);
        if (w < 0 && w != UV_EAGAIN) {
            c->flags |= WR_CONN_F_SOCK_DEAD;
            wr_conn_fail(c, w);
            return w;
        }
        size_t done = w > 0 ? (size_t)w : 0;
        for (int i = 0; i < n; i++) {
            struct wr_slice s = v[i];
            size_t skip = done > s.len ? s.len : done;
            done -= skip;
            s = wr_slice_adv(s, skip);
            if (s.len > 0 && wr_buf_append(q, s.ptr, s.len) != 0)
                goto fail_nomem;
        }
        if (q->len > 0) {
            c->flags |= WR_CONN_F_DRAIN;
            wr_conn_start_write(c);
        }
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (wr_buf_append(q, v[i].ptr, v[i].len) != 0)
            goto fail_nomem;
    if (!ready) {
        c->flags |= WR_CONN_F_DRAIN;
        return 0;
    }
    if (!wr_conn_has(c, WR_CONN_F_WRITING)) {
        if (q->len >= WR_CONN_FLUSH_AT)
            wr_conn_plain_flush(c);
        else
            wr_conn_schedule(c, WR_CONN_P_FLUSH);
    }
    return 0;

fail_nomem:
    wr_conn_fail(c, WR_ENOMEM);
    return WR_ENOMEM;
}

int wr_conn_writev(struct wr_conn *c, const struct wr_slice *v, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].len;
    int rc = wr_conn_check_writable(c, total);
    if (rc != 0 || total == 0)
        return rc;
    if (wr_conn_has(c, WR_CONN_F_TLS))
        return wr_conn_writev_tls(c, v, n);
    return wr_conn_writev_plain(c, v, n, total);
}

int wr_conn_write(struct wr_conn *c, const uint8_t *data, size_t len)
{
    struct wr_slice s = wr_slice_make(data, len);
    return wr_conn_writev(c, &s, 1);
}

/* ---- wolfSSL I/O callbacks -------------------------------------------------- */

static int wr_conn_tls_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct wr_conn *c = ctx;
    if (c->rbuf.len == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = (size_t)sz < c->rbuf.len ? (size_t)sz : c->rbuf.len;
    memcpy(buf, c->rbuf.data + c->rbuf.off, n);
    wr_buf_consume(&c->rbuf, n);
    return (int)n;
}

/* Always takes the whole record: what the kernel refuses is queued, so
 * wolfSSL never sees WANT_WRITE and never holds output itself. */
static int wr_conn_tls_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct wr_conn *c = ctx;
    if (sz <= 0)
        return 0;
    if (wr_conn_out(c, (const uint8_t *)buf, (size_t)sz) == WR_ENOMEM)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

/* ---- handshake ---------------------------------------------------------------- */

static int wr_conn_tls_fail_handshake(struct wr_conn *c, int e)
{
    int err = wr__tls_alpn_refused(c->ssl) ? WR_EALPN : wr__tls_map_err(e);
    char msg[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)(e < 0 ? -e : e), msg, sizeof(msg));
    WR_INFO("tls", "tls_handshake_failed", "conn=%llu peer=%s side=%s code=%d detail=\"%s\" err=%s",
            (unsigned long long)c->id, c->peer,
            wr_conn_has(c, WR_CONN_F_SERVER) ? "server" : "client", e, msg, wr_err_name(err));
    return err;
}

static void wr_conn_ready(struct wr_conn *c)
{
    wr_conn_set_state(c, WR_CONN_ST_READY);
    uv_timer_stop(&c->timer);
    bool report = !wr_conn_has(c, WR_CONN_F_READY_DONE);
    c->flags |= WR_CONN_F_READY_DONE;
    if (report && c->cbs.on_ready)
        c->cbs.on_ready(c, 0, c->arg);
    if (c->state != WR_CONN_ST_READY)
        return;
    /* Writes accepted before the handshake, then a half-close asked for then. */
    wr_conn_flush(c);
    if (wr_conn_has(c, WR_CONN_F_SHUT_REQ))
        wr_conn_schedule(c, WR_CONN_P_SHUTDOWN);
    if (wr_conn_has(c, WR_CONN_F_DRAIN) && wr_conn_write_queued(c) == 0)
        wr_conn_schedule(c, WR_CONN_P_FLUSH); /* on_drain from the check */
    wr_conn_update_reading(c);
}

static void wr_conn_tls_done(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_SERVER)) {
        /* Belt and braces: the ClientHello callback refuses a missing ALPN. */
        if (!wr__tls_alpn_ok(c->ssl, c->alpn)) {
            WR_INFO("tls", "tls_handshake_failed", "conn=%llu peer=%s side=server err=EALPN",
                    (unsigned long long)c->id, c->peer);
            wr_conn_fail(c, WR_EALPN);
            return;
        }
        void *name = NULL;
        unsigned short nlen = wolfSSL_SNI_GetRequest(c->ssl, WOLFSSL_SNI_HOST_NAME, &name);
        if (nlen > 0 && name != NULL && nlen < WR_CONN_NAME_MAX &&
            memchr(name, '\0', nlen) == NULL) {
            c->sni = wr_xmalloc((size_t)nlen + 1);
            memcpy(c->sni, name, nlen);
            c->sni[nlen] = '\0';
        }
    }
    /* wolfSSL verified the chain against the CA (servers: only when mutual). */
    if (!wr_conn_has(c, WR_CONN_F_SERVER) || c->mutual) {
        char cn[WR_CONN_NAME_MAX];
        if (wr__tls_peer_cn(c->ssl, cn, sizeof(cn)) == 0)
            c->peer_cn = wr_xstrdup(cn);
    }
    wr__tls_count_handshake(true);
    /* The session is complete: what it left zero (on a node, the client
     * certificate chains agents never send) need not stay resident. */
    c->tls_reclaimed = wr__tls_mem_reclaim(&c->tls_mem);
    WR_DEBUG("tls", "tls_handshake_done", "conn=%llu peer=%s side=%s suite=%s reclaimed=%zu",
             (unsigned long long)c->id, c->peer,
             wr_conn_has(c, WR_CONN_F_SERVER) ? "server" : "client",
             wolfSSL_get_cipher_name(c->ssl), c->tls_reclaimed);
    wr_conn_ready(c);
}

static void wr_conn_tls_handshake(struct wr_conn *c)
{
    struct wr__tls_mem *prev = wr__tls_mem_enter(&c->tls_mem);
    int rc = wr_conn_has(c, WR_CONN_F_SERVER) ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
    wr__tls_mem_leave(prev);
    if (rc == WOLFSSL_SUCCESS) {
        wr_conn_tls_done(c);
        return;
    }
    if (c->state != WR_CONN_ST_HANDSHAKE)
        return; /* the socket failed under wolfSSL; already reported */
    int e = wolfSSL_get_error(c->ssl, rc);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return;
    wr_conn_fail(c, wr_conn_tls_fail_handshake(c, e));
}

/* ---- deferred work, errors, timers ---------------------------------------- */

static void wr_conn_fail(struct wr_conn *c, int err)
{
    if (c->state >= WR_CONN_ST_FAILED) {
        if (c->state == WR_CONN_ST_FLUSHING && wr_conn_has(c, WR_CONN_F_SOCK_DEAD))
            wr_conn_close_handles(c, true);
        return;
    }
    if (c->state == WR_CONN_ST_PROXY && c->proxy == WR_CONN_PROXY_WAITING) {
        c->proxy = WR_CONN_PROXY_BAD; /* the socket failed under it */
        c->proxy_why = "connection failed before the header";
    }
    /* Every way out of the handshake other than success passes here once. */
    if (c->state == WR_CONN_ST_HANDSHAKE && wr_conn_has(c, WR_CONN_F_TLS))
        wr__tls_count_handshake(false);
    c->err = err;
    wr_conn_set_state(c, WR_CONN_ST_FAILED);
    uv_timer_stop(&c->timer);
    wr_conn_update_reading(c);
    c->flags &= ~WR_CONN_F_DRAIN;
    /* wr_conn_schedule refuses FAILED+ states for ordinary work; the report
     * itself is the one thing still owed. */
    c->pending = WR_CONN_P_FAIL;
    if (!uv_is_active((uv_handle_t *)&c->check)) {
        uv_check_start(&c->check, wr_conn_on_check);
        uv_idle_start(&c->idle, wr_conn_on_idle);
    }
}

static void wr_conn_on_shutdown(uv_shutdown_t *req, int status)
{
    struct wr_conn *c = wr_container_of(req, struct wr_conn, shutdown_req);
    if (status < 0 && status != UV_ECANCELED)
        WR_DEBUG("tls", "conn_shutdown_failed", "conn=%llu err=%s", (unsigned long long)c->id,
                 wr_err_name(status));
}

static void wr_conn_do_shutdown(struct wr_conn *c)
{
    if (wr_conn_has(c, WR_CONN_F_SHUT_SENT))
        return;
    wr_conn_flush(c);
    if (c->state != WR_CONN_ST_READY)
        return;
    if (wr_conn_has(c, WR_CONN_F_TLS) && !wr_conn_has(c, WR_CONN_F_NOTIFY_SENT)) {
        c->flags |= WR_CONN_F_NOTIFY_SENT;
        (void)wolfSSL_shutdown(c->ssl); /* writes close_notify; we keep reading */
    }
    if (wr_conn_has(c, WR_CONN_F_WRITING) || wr_conn_wq_len(c) > 0) {
        if (!wr_conn_has(c, WR_CONN_F_WRITING))
            wr_conn_start_write(c);
        return; /* on_queue_empty schedules us again */
    }
    c->flags |= WR_CONN_F_SHUT_SENT;
    int rc = uv_shutdown(&c->shutdown_req, wr_conn_stream(c), wr_conn_on_shutdown);
    if (rc != 0)
        WR_DEBUG("tls", "conn_shutdown_failed", "conn=%llu err=%s", (unsigned long long)c->id,
                 wr_err_name(rc));
}

static void wr_conn_on_check(uv_check_t *h)
{
    struct wr_conn *c = h->data;
    uint32_t p = c->pending;
    c->pending = 0;
    if (c->state >= WR_CONN_ST_FLUSHING) {
        uv_check_stop(&c->check);
        uv_idle_stop(&c->idle);
        return;
    }
    if (p & WR_CONN_P_FAIL) {
        /* The owner hears of the failure once, through on_ready if it is
         * still waiting for it. */
        bool ready_owed = !wr_conn_has(c, WR_CONN_F_READY_DONE);
        c->flags |= WR_CONN_F_READY_DONE | WR_CONN_F_EOF_DONE;
        if (ready_owed && c->cbs.on_ready)
            c->cbs.on_ready(c, c->err, c->arg);
        else if (!ready_owed && c->cbs.on_error)
            c->cbs.on_error(c, c->err, c->arg);
    } else if (c->state == WR_CONN_ST_READY) {
        if (p & WR_CONN_P_FLUSH)
            wr_conn_flush(c);
        if ((p & WR_CONN_P_DELIVER) && c->state == WR_CONN_ST_READY) {
            if (wr_conn_has(c, WR_CONN_F_TLS)) {
                wr_conn_tls_pump(c);
                wr_conn_release_idle_bufs(c);
            } else if (wr_conn_has(c, WR_CONN_F_READING)) {
                /* Plain: bytes that followed a PROXY header, then a FIN. */
                wr_conn_plain_deliver(c);
                if (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_EOF_IN) &&
                    wr_conn_has(c, WR_CONN_F_READING))
                    wr_conn_report_eof(c);
            }
        }
        if ((p & WR_CONN_P_SHUTDOWN) && c->state == WR_CONN_ST_READY)
            wr_conn_do_shutdown(c);
        if (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_DRAIN) &&
            wr_conn_write_queued(c) == 0 && !wr_conn_has(c, WR_CONN_F_WRITING)) {
            c->flags &= ~WR_CONN_F_DRAIN;
            if (c->cbs.on_drain)
                c->cbs.on_drain(c, c->arg);
        }
    }
    if (c->pending == 0 && c->state < WR_CONN_ST_FLUSHING) {
        uv_check_stop(&c->check);
        uv_idle_stop(&c->idle);
    }
}

static void wr_conn_on_timer(uv_timer_t *t)
{
    struct wr_conn *c = t->data;
    if (c->state == WR_CONN_ST_PROXY) {
        wr_conn_proxy_fail(c, "timeout", WR_ETIMEDOUT); /* the owner logs it */
    } else if (c->state == WR_CONN_ST_CONNECTING || c->state == WR_CONN_ST_HANDSHAKE) {
        WR_INFO("tls", "tls_handshake_timeout", "conn=%llu peer=%s err=ETIMEDOUT",
                (unsigned long long)c->id, c->peer);
        wr_conn_fail(c, WR_ETIMEDOUT);
    } else if (c->state == WR_CONN_ST_FLUSHING) {
        WR_DEBUG("tls", "conn_flush_timeout", "conn=%llu queued=%zu", (unsigned long long)c->id,
                 wr_conn_write_queued(c));
        wr_conn_close_handles(c, true);
    }
}

/* ---- lifetime ----------------------------------------------------------------- */

static void wr_conn_destroy(struct wr_conn *c)
{
    if (!wr_conn_has(c, WR_CONN_F_ABANDONED) && c->cbs.on_close)
        c->cbs.on_close(c, c->arg);
    if (c->ssl != NULL)
        wolfSSL_free(c->ssl);
    wr__tls_mem_cleanup(&c->tls_mem);
    wr_buf_free(&c->rbuf);
    wr_buf_free(&c->pbuf);
    wr_buf_free(&c->stage);
    wr_buf_free(&c->wq[0]);
    wr_buf_free(&c->wq[1]);
    WR_FREE(c->sni);
    WR_FREE(c->peer_cn);
    WR_FREE(c->sock_peer);
    free(c);
}

static void wr_conn_on_handle_closed(uv_handle_t *h)
{
    struct wr_conn *c = h->data;
    WR_ASSERT(c->handles_open > 0);
    if (--c->handles_open == 0)
        wr_conn_destroy(c);
}

static void wr_conn_close_handles(struct wr_conn *c, bool reset)
{
    if (c->state == WR_CONN_ST_CLOSING)
        return;
    wr_conn_set_state(c, WR_CONN_ST_CLOSING);
    c->pending = 0;
    c->handles_open = 4;
    if (reset) {
        /* SO_LINGER 0: the peer sees RST, so it cannot take the truncated
         * stream for a complete one. Not possible after uv_shutdown. */
        if (uv_tcp_close_reset(&c->tcp, wr_conn_on_handle_closed) != 0)
            uv_close((uv_handle_t *)&c->tcp, wr_conn_on_handle_closed);
    } else {
        uv_close((uv_handle_t *)&c->tcp, wr_conn_on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, wr_conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->check, wr_conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, wr_conn_on_handle_closed);
}

void wr_conn_close(struct wr_conn *c, bool flush)
{
    if (c->state == WR_CONN_ST_CLOSING)
        return;
    if (c->state == WR_CONN_ST_FLUSHING) {
        if (!flush)
            wr_conn_close_handles(c, true);
        return;
    }
    bool connected = c->state != WR_CONN_ST_CONNECTING;
    bool can_flush = flush && connected && !wr_conn_has(c, WR_CONN_F_SOCK_DEAD);
    c->flags &= ~WR_CONN_F_READING;
    if (wr_conn_has(c, WR_CONN_F_UV_READING)) {
        uv_read_stop(wr_conn_stream(c));
        c->flags &= ~WR_CONN_F_UV_READING;
    }
    uv_timer_stop(&c->timer);
    if (can_flush) {
        if (c->state == WR_CONN_ST_READY) {
            wr_conn_flush(c);
            if (c->state == WR_CONN_ST_READY && wr_conn_has(c, WR_CONN_F_TLS) &&
                !wr_conn_has(c, WR_CONN_F_NOTIFY_SENT)) {
                c->flags |= WR_CONN_F_NOTIFY_SENT;
                (void)wolfSSL_shutdown(c->ssl);
            }
        }
        if (!wr_conn_has(c, WR_CONN_F_SOCK_DEAD) &&
            (wr_conn_has(c, WR_CONN_F_WRITING) || wr_conn_wq_len(c) > 0)) {
            /* Plain bytes staged in wq[wq_app] go out after the one in flight. */
            wr_conn_set_state(c, WR_CONN_ST_FLUSHING);
            if (!wr_conn_has(c, WR_CONN_F_WRITING)) {
                if (wr_conn_has(c, WR_CONN_F_TLS))
                    wr_conn_start_write(c);
                else
                    wr_conn_plain_flush(c);
            }
            if (c->state == WR_CONN_ST_FLUSHING && !wr_conn_has(c, WR_CONN_F_WRITING) &&
                wr_conn_wq_len(c) == 0) {
                wr_conn_close_handles(c, false);
                return;
            }
            if (c->state == WR_CONN_ST_FLUSHING)
                uv_timer_start(&c->timer, wr_conn_on_timer, WR_CONN_FLUSH_MS, 0);
            return;
        }
        wr_conn_close_handles(c, false);
        return;
    }
    bool pending = connected && (wr_conn_has(c, WR_CONN_F_WRITING) || wr_conn_write_queued(c) > 0);
    wr_conn_close_handles(c, pending);
}

/* Common part of dial and accept: everything but the TCP handle's own setup. */
static struct wr_conn *wr_conn_alloc(uv_loop_t *loop, const struct wr_conn_opts *opts,
                                     const struct wr_conn_cbs *cbs, void *arg, int *err)
{
    struct wr_conn *c = wr_xcalloc(1, sizeof(*c));
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc != 0) {
        free(c);
        *err = rc;
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    uv_check_init(loop, &c->check);
    uv_idle_init(loop, &c->idle);
    c->tcp.data = c->timer.data = c->check.data = c->idle.data = c;
    c->cbs = *cbs;
    c->arg = arg;
    c->id = atomic_fetch_add(&wr_conn_next_id, 1);
    c->max_queue = opts->max_queue ? opts->max_queue : WR_CONN_DEF_MAX_QUEUE;
    c->hs_timeout_ms = opts->handshake_timeout_ms ? opts->handshake_timeout_ms : WR_CONN_DEF_HS_MS;
    c->flags = WR_CONN_F_READING;
    snprintf(c->peer, sizeof(c->peer), "%s", "?");
    if (opts->nodelay)
        (void)uv_tcp_nodelay(&c->tcp, 1);
    return c;
}

/* Creation failed after the handles exist: they are closed, the memory is
 * freed in their callbacks, and the owner never hears of <c>. */
static void wr_conn_abandon(struct wr_conn *c)
{
    c->flags |= WR_CONN_F_ABANDONED;
    wr_conn_close_handles(c, false);
}

static int wr_conn_tls_setup(struct wr_conn *c, struct wr_tls_ctx *tls, const char *sni)
{
    int rc = 0;
    struct wr__tls_mem *prev = wr__tls_mem_enter(&c->tls_mem);
    c->ssl = wr__tls_ssl_new(tls, sni, &rc);
    wr__tls_mem_leave(prev);
    if (c->ssl == NULL)
        return rc;
    wolfSSL_SSLSetIORecv(c->ssl, wr_conn_tls_recv);
    wolfSSL_SSLSetIOSend(c->ssl, wr_conn_tls_send);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    c->flags |= WR_CONN_F_TLS;
    memcpy(c->alpn, tls->alpn, sizeof(c->alpn));
    c->mutual = tls->mutual;
    if (sni != NULL && !tls->server)
        c->sni = wr_xstrdup(sni);
    return 0;
}

static void wr_conn_on_connect(uv_connect_t *req, int status)
{
    struct wr_conn *c = wr_container_of(req, struct wr_conn, connect_req);
    if (status == UV_ECANCELED || c->state != WR_CONN_ST_CONNECTING)
        return;
    if (status < 0) {
        c->flags |= WR_CONN_F_SOCK_DEAD;
        wr_conn_fail(c, status);
        return;
    }
    if (!wr_conn_has(c, WR_CONN_F_TLS)) {
        wr_conn_ready(c);
        return;
    }
    wr_conn_set_state(c, WR_CONN_ST_HANDSHAKE);
    wr_conn_update_reading(c);
    if (c->state == WR_CONN_ST_HANDSHAKE)
        wr_conn_tls_handshake(c); /* sends the ClientHello */
}

struct wr_conn *wr_conn_dial(uv_loop_t *loop, const struct sockaddr *addr,
                             const struct wr_conn_opts *opts, const struct wr_conn_cbs *cbs,
                             void *arg, int *err)
{
    int rc = 0;
    struct wr_conn *c = wr_conn_alloc(loop, opts, cbs, arg, &rc);
    if (c == NULL)
        goto fail;
    c->state = WR_CONN_ST_CONNECTING;
    wr_addr_str(addr, c->peer, sizeof(c->peer));
    if (opts->tls != NULL) {
        rc = wr_conn_tls_setup(c, opts->tls, opts->sni);
        if (rc != 0)
            goto fail_conn;
    }
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, wr_conn_on_connect);
    if (rc != 0)
        goto fail_conn;
    /* The deadline covers the TCP connect too: a dial into a black hole
     * fails in handshake_timeout_ms rather than the kernel's minutes. */
    if (opts->tls != NULL)
        uv_timer_start(&c->timer, wr_conn_on_timer, c->hs_timeout_ms, 0);
    return c;

fail_conn:
    wr_conn_abandon(c);
fail:
    if (err)
        *err = rc;
    return NULL;
}

/* The part of accepting that follows the socket's arrival in c->tcp. */
static struct wr_conn *wr_conn_accepted(struct wr_conn *c, const struct wr_conn_opts *opts,
                                        int *err)
{
    int rc = 0;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        wr_addr_str((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
        if (opts->n_proxy_from > 0 &&
            wr_cidr_match_any(opts->proxy_from, opts->n_proxy_from, (struct sockaddr *)&ss)) {
            /* The entry state of a connection that owes a PROXY header,
             * set before any event as accept sets HANDSHAKE. */
            c->state = WR_CONN_ST_PROXY;
            c->proxy = WR_CONN_PROXY_WAITING;
        }
    }
    if (opts->tls != NULL) {
        rc = wr_conn_tls_setup(c, opts->tls, NULL);
        if (rc != 0)
            goto fail_conn;
        uv_timer_start(&c->timer, wr_conn_on_timer, c->hs_timeout_ms, 0);
    } else if (c->state == WR_CONN_ST_PROXY) {
        /* Ready (and on_ready) once the header is in. */
        uv_timer_start(&c->timer, wr_conn_on_timer, c->hs_timeout_ms, 0);
    } else {
        /* Plain accepted connections are ready at once; on_ready is not owed. */
        wr_conn_set_state(c, WR_CONN_ST_READY);
        c->flags |= WR_CONN_F_READY_DONE;
    }
    wr_conn_update_reading(c);
    if (c->state >= WR_CONN_ST_FAILED) {
        rc = c->err;
        goto fail_conn;
    }
    return c;

fail_conn:
    wr_conn_abandon(c);
    if (err)
        *err = rc;
    return NULL;
}

struct wr_conn *wr_conn_accept(uv_stream_t *server, const struct wr_conn_opts *opts,
                               const struct wr_conn_cbs *cbs, void *arg, int *err)
{
    int rc = 0;
    struct wr_conn *c = wr_conn_alloc(server->loop, opts, cbs, arg, &rc);
    if (c == NULL)
        goto fail;
    c->state = WR_CONN_ST_HANDSHAKE;
    c->flags |= WR_CONN_F_SERVER;
    rc = uv_accept(server, wr_conn_stream(c));
    if (rc != 0) {
        wr_conn_abandon(c);
        goto fail;
    }
    return wr_conn_accepted(c, opts, err);
fail:
    if (err)
        *err = rc;
    return NULL;
}

struct wr_conn *wr_conn_adopt(uv_loop_t *loop, uv_os_sock_t fd, const struct wr_conn_opts *opts,
                              const struct wr_conn_cbs *cbs, void *arg, int *err)
{
    int rc = 0;
    struct wr_conn *c = wr_conn_alloc(loop, opts, cbs, arg, &rc);
    if (c == NULL) {
        close(fd);
        goto fail;
    }
    c->state = WR_CONN_ST_HANDSHAKE;
    c->flags |= WR_CONN_F_SERVER;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) {
        close(fd);
        wr_conn_abandon(c);
        goto fail;
    }
    if (opts->nodelay)
        (void)uv_tcp_nodelay(&c->tcp, 1);
    return wr_conn_accepted(c, opts, err);
fail:
    if (err)
        *err = rc;
    return NULL;
}

/* ---- flow control, accessors -------------------------------------------------- */

int wr_conn_read_start(struct wr_conn *c)
{
    if (c->state >= WR_CONN_ST_FAILED)
        return WR_ECLOSED;
    if (wr_conn_has(c, WR_CONN_F_READING))
        return 0;
    c->flags |= WR_CONN_F_READING;
    if (c->state != WR_CONN_ST_READY)
        return 0; /* reading begins with on_ready */
    wr_conn_update_reading(c);
    /* Input kept while stopped is delivered from the check handle, never
     * from inside this call. */
    if (wr_conn_has(c, WR_CONN_F_TLS) || wr_conn_has(c, WR_CONN_F_EOF_IN) || c->rbuf.len > 0)
        wr_conn_schedule(c, WR_CONN_P_DELIVER);
    return 0;
}

int wr_conn_read_stop(struct wr_conn *c)
{
    if (c->state >= WR_CONN_ST_FAILED)
        return WR_ECLOSED;
    c->flags &= ~WR_CONN_F_READING;
    if (c->state == WR_CONN_ST_READY)
        wr_conn_update_reading(c);
    return 0;
}

int wr_conn_shutdown(struct wr_conn *c)
{
    if (c->state >= WR_CONN_ST_FAILED)
        return WR_ECLOSED;
    if (wr_conn_has(c, WR_CONN_F_SHUT_REQ))
        return 0;
    c->flags |= WR_CONN_F_SHUT_REQ;
    if (c->state == WR_CONN_ST_READY)
        wr_conn_schedule(c, WR_CONN_P_SHUTDOWN);
    return 0;
}

bool wr_conn_is_tls(const struct wr_conn *c)
{
    return wr_conn_has(c, WR_CONN_F_TLS);
}

bool wr_conn_is_ready(const struct wr_conn *c)
{
    return wr_conn_has(c, WR_CONN_F_READY_DONE) && c->err == 0 &&
           (c->state == WR_CONN_ST_READY || c->state == WR_CONN_ST_FLUSHING);
}

const char *wr_conn_peer_str(const struct wr_conn *c)
{
    return c->peer;
}

const char *wr_conn_sock_peer_str(const struct wr_conn *c)
{
    return c->sock_peer != NULL ? c->sock_peer : c->peer;
}

enum wr_conn_proxy wr_conn_get_proxy(const struct wr_conn *c, const char **why)
{
    if (why != NULL)
        *why = c->proxy == WR_CONN_PROXY_BAD ? c->proxy_why : NULL;
    return (enum wr_conn_proxy)c->proxy;
}

const char *wr_conn_sni(const struct wr_conn *c)
{
    return wr_conn_has(c, WR_CONN_F_SERVER) ? c->sni : NULL;
}

const char *wr_conn_peer_cn(const struct wr_conn *c)
{
    return c->peer_cn;
}

const char *wr_conn_cipher(const struct wr_conn *c)
{
    if (c->ssl == NULL)
        return NULL;
    return wolfSSL_get_cipher_name(c->ssl);
}

uint64_t wr_conn_id(const struct wr_conn *c)
{
    return c->id;
}

size_t wr_conn_mem(const struct wr_conn *c)
{
    return sizeof(*c) + c->rbuf.cap + c->pbuf.cap + c->stage.cap + c->wq[0].cap + c->wq[1].cap +
           (c->ssl != NULL ? WR_CONN_TLS_EST - c->tls_reclaimed : 0);
}

void wr_conn_set_cbs(struct wr_conn *c, const struct wr_conn_cbs *cbs, void *arg)
{
    c->cbs = *cbs;
    c->arg = arg;
}
