/*
 * disc_cluster.c: the libuv driver of one gossip member. It owns the
 * sockets (UDP for probes and gossip, a TCP listener and clients for
 * push/pull), the timers (the state machine's next deadline, join backoff,
 * per-connection timeouts) and the byte path: seal/open (disc_keyring.c),
 * encode/decode (disc_codec.c). Every protocol decision is the state
 * machine's (disc_swim.c); this file only moves bytes and time.
 *
 * Push/pull over TCP: the dialer sends one frame, the listener answers with
 * one frame, both close. A frame is a 4-byte big-endian length and a sealed
 * state (the same sealing as UDP packets).
 */
#include "disc_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wr/addr.h"
#include "wr/log.h"

#define DISC_FRAME_MAX (DISC_PUSHPULL_MAX + DISC_SEAL_OVERHEAD)
#define DISC_MAX_SEEDS 16
#define DISC_RECV_MAX 65536

enum disc_conn_kind {
    DISC_CONN_SERVER = 0, /* accepted: read a state, answer with ours */
    DISC_CONN_PERIODIC,   /* dialed by the machine's push/pull timer */
    DISC_CONN_JOIN,       /* dialed by a join round */
};

struct disc_cluster;

struct disc_conn {
    struct disc_cluster *c;
    enum disc_conn_kind kind;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    struct wr_buf rbuf, wbuf;
    int pending_closes;
    bool closing;
    bool done; /* the exchange completed */
    struct disc_conn *next, *prev;
};

struct disc_cluster {
    uv_loop_t *loop;
    struct disc_cluster_config cfg;
    struct disc_keyring *kr;
    struct disc_swim *swim;
    uv_udp_t udp;
    uv_tcp_t listener;
    uv_timer_t timer;      /* the machine's next deadline */
    uv_timer_t join_timer; /* join backoff */
    char addr[WR_ADDR_STRLEN];
    struct disc_conn *conns;
    uint32_t n_conns;
    char seeds[DISC_MAX_SEEDS][DISC_ADDR_MAX];
    size_t n_seeds;
    uint32_t join_pending; /* join dials of the current round still running */
    uint32_t join_attempt;
    uint64_t next_rejoin_at; /* when a member left alone may dial the seeds again */
    bool joined;
    bool closing;
    int pending_closes;
    disc_close_cb close_cb;
    void *close_arg;
    struct wr_buf plain, sealed; /* scratch of the send path */
    struct wr_buf rplain;        /* scratch of the receive path */
    uint8_t recv[DISC_RECV_MAX];
    bool recv_busy;
    struct disc_packet rpkt;
};

static uint64_t disc_cluster_now(const struct disc_cluster *c)
{
    return uv_now(c->loop);
}

/* ---- the machine's timer ---- */

static void on_disc_timer(uv_timer_t *t);

static void disc_cluster_schedule(struct disc_cluster *c)
{
    if (c->closing)
        return;
    uint64_t now = disc_cluster_now(c), d = disc__swim_next_deadline(c->swim);
    uv_timer_start(&c->timer, on_disc_timer, d > now ? d - now : 0, 0);
}

static void disc_cluster_join_round(struct disc_cluster *c);

/*
 * A joined member that finds itself alone (everyone else dead or left) dials
 * its seeds again, one round per reconnect interval: reconnecting to DEAD
 * members only works until they are reaped, and a partition or an outage of
 * the whole rest of the fleet can outlast that.
 */
static void disc_cluster_maybe_rejoin(struct disc_cluster *c, uint64_t now)
{
    if (c->n_seeds == 0 || !c->joined || c->join_pending > 0 || now < c->next_rejoin_at)
        return;
    c->next_rejoin_at = now + c->cfg.swim.reconnect_interval_ms;
    struct disc_stats st;
    disc__swim_get_stats(c->swim, &st);
    if (st.members[DISC_MEMBER_ST_ALIVE] + st.members[DISC_MEMBER_ST_SUSPECT] > 1)
        return;
    DISC_LOG(&c->cfg.swim, WR_LOG_INFO, "rejoin", "seeds=%zu", c->n_seeds);
    disc_cluster_join_round(c);
}

static void on_disc_timer(uv_timer_t *t)
{
    struct disc_cluster *c = wr_container_of(t, struct disc_cluster, timer);
    uv_update_time(c->loop);
    uint64_t now = disc_cluster_now(c);
    disc__swim_tick(c->swim, now);
    disc_cluster_maybe_rejoin(c, now);
    disc_cluster_schedule(c);
}

/* ---- UDP ---- */

static void on_swim_send(void *arg, const char *addr, const struct disc_packet *p)
{
    struct disc_cluster *c = arg;
    struct sockaddr_storage ss;
    struct disc_stats *st = disc__swim_stats_mut(c->swim);
    if (c->closing || wr_addr_parse(addr, &ss) != 0) {
        st->send_drops++;
        return;
    }
    wr_buf_consume(&c->plain, c->plain.len);
    wr_buf_consume(&c->sealed, c->sealed.len);
    if (disc__codec_packet_encode(p, &c->plain) != 0 ||
        disc__keyring_seal(c->kr, wr_buf_peek(&c->plain), &c->sealed) != 0) {
        st->send_drops++;
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->sealed.data + c->sealed.off, (unsigned)c->sealed.len);
    /* UDP is lossy anyway: a full socket buffer drops the packet, counted,
     * rather than queueing without bound. */
    int r = uv_udp_try_send(&c->udp, &b, 1, (const struct sockaddr *)&ss);
    if (r < 0) {
        st->send_drops++;
        return;
    }
    st->bytes_out += c->sealed.len;
}

static void on_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct disc_cluster *c = wr_container_of((uv_udp_t *)h, struct disc_cluster, udp);
    (void)hint;
    if (c->recv_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    c->recv_busy = true;
    *buf = uv_buf_init((char *)c->recv, sizeof(c->recv));
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct disc_cluster *c = wr_container_of(h, struct disc_cluster, udp);
    (void)flags;
    if (buf->base == (char *)c->recv)
        c->recv_busy = false;
    if (nread <= 0 || from == NULL || c->closing)
        return;
    struct disc_stats *st = disc__swim_stats_mut(c->swim);
    st->bytes_in += (uint64_t)nread;
    wr_buf_consume(&c->rplain, c->rplain.len);
    int err = disc__keyring_open(c->kr, wr_slice_make(c->recv, (size_t)nread), &c->rplain);
    if (err != 0) {
        /* Not ours, or forged: dropped unparsed. */
        st->decrypt_failures++;
        return;
    }
    const char *why = NULL;
    if (disc__codec_packet_decode(wr_buf_peek(&c->rplain), &c->rpkt, &why) != 0) {
        st->decode_failures++;
        DISC_LOG(&c->cfg.swim, WR_LOG_DEBUG, "packet_invalid", "why=\"%s\" len=%zd", why, nread);
        return;
    }
    char fromstr[WR_ADDR_STRLEN];
    wr_addr_str(from, fromstr, sizeof(fromstr));
    uv_update_time(c->loop);
    disc__swim_on_packet(c->swim, disc_cluster_now(c), fromstr, &c->rpkt);
    disc__packet_clear(&c->rpkt);
    /* Someone authenticated reached us: we are part of a cluster. With
     * seeds to join, though, "joined" waits for a full state exchange: a
     * probe from a member that remembers our previous run says nothing of
     * who holds what, and a restarted node would route on an empty view. */
    if (c->n_seeds == 0)
        c->joined = true;
    disc_cluster_schedule(c);
}

/* ---- TCP push/pull connections ---- */

static void disc_cluster_maybe_free(struct disc_cluster *c);
static void disc_cluster_join_round_done(struct disc_cluster *c, bool ok);

static void on_conn_closed(uv_handle_t *h)
{
    struct disc_conn *k = h->data;
    if (--k->pending_closes > 0)
        return;
    struct disc_cluster *c = k->c;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    c->n_conns--;
    if (k->kind == DISC_CONN_JOIN)
        disc_cluster_join_round_done(c, k->done);
    wr_buf_free(&k->rbuf);
    wr_buf_free(&k->wbuf);
    free(k);
    disc_cluster_maybe_free(c);
}

static void disc_conn_close(struct disc_conn *k, bool ok)
{
    if (k->closing)
        return;
    k->closing = true;
    k->done = ok;
    struct disc_stats *st = disc__swim_stats_mut(k->c->swim);
    if (ok)
        st->pushpulls++;
    else
        st->pushpull_failures++;
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->timer, on_conn_closed);
    uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

static void on_conn_timeout(uv_timer_t *t)
{
    struct disc_conn *k = t->data;
    DISC_LOG(&k->c->cfg.swim, WR_LOG_DEBUG, "pushpull_timeout", "kind=%d", (int)k->kind);
    disc_conn_close(k, false);
}

static struct disc_conn *disc_conn_new(struct disc_cluster *c, enum disc_conn_kind kind)
{
    if (c->n_conns >= c->cfg.max_tcp_conns)
        return NULL;
    struct disc_conn *k = wr_xcalloc(1, sizeof(*k));
    k->c = c;
    k->kind = kind;
    uv_tcp_init(c->loop, &k->tcp);
    uv_timer_init(c->loop, &k->timer);
    k->tcp.data = k;
    k->timer.data = k;
    k->pending_closes = 2;
    k->next = c->conns;
    if (c->conns != NULL)
        c->conns->prev = k;
    c->conns = k;
    c->n_conns++;
    uv_timer_start(&k->timer, on_conn_timeout, c->cfg.tcp_timeout_ms, 0);
    return k;
}

/* Our state, sealed and framed, into k->wbuf. */
static int disc_conn_build(struct disc_conn *k, bool join)
{
    struct disc_cluster *c = k->c;
    struct disc_state st;
    int err = disc__swim_state_build(c->swim, join, &st);
    if (err != 0)
        return err;
    wr_buf_consume(&c->plain, c->plain.len);
    err = disc__codec_state_encode(&st, &c->plain);
    disc__state_clear(&st);
    if (err != 0)
        return err;
    uint8_t hdr[4] = {0};
    err = wr_buf_append(&k->wbuf, hdr, sizeof(hdr));
    if (err == 0)
        err = disc__keyring_seal(c->kr, wr_buf_peek(&c->plain), &k->wbuf);
    if (err != 0)
        return err;
    size_t n = k->wbuf.len - 4;
    uint8_t *h = k->wbuf.data + k->wbuf.off;
    h[0] = (uint8_t)(n >> 24);
    h[1] = (uint8_t)(n >> 16);
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    return 0;
}

static void on_conn_written(uv_write_t *w, int status)
{
    struct disc_conn *k = w->data;
    if (status == UV_ECANCELED || k->closing)
        return;
    if (status < 0) {
        disc_conn_close(k, false);
        return;
    }
    /* The listener's job ends with its answer; the dialer now reads. */
    if (k->kind == DISC_CONN_SERVER)
        disc_conn_close(k, true);
}

static int disc_conn_send(struct disc_conn *k, bool join)
{
    int err = disc_conn_build(k, join);
    if (err != 0)
        return err;
    uv_buf_t b = uv_buf_init((char *)k->wbuf.data + k->wbuf.off, (unsigned)k->wbuf.len);
    k->write.data = k;
    return uv_write(&k->write, (uv_stream_t *)&k->tcp, &b, 1, on_conn_written);
}

static void on_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct disc_conn *k = h->data;
    uint8_t *w;
    size_t wl;
    (void)hint;
    if (wr_buf_reserve(&k->rbuf, 65536, &w, &wl) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)w, (unsigned)(wl > 65536 ? 65536 : wl));
}

/* One complete frame in k->rbuf: open, decode, merge, then answer or finish. */
static void disc_conn_on_frame(struct disc_conn *k, struct wr_slice sealed)
{
    struct disc_cluster *c = k->c;
    struct disc_stats *st = disc__swim_stats_mut(c->swim);
    struct disc_state state;
    const char *why = NULL;
    st->bytes_in += sealed.len + 4;
    wr_buf_consume(&c->rplain, c->rplain.len);
    if (disc__keyring_open(c->kr, sealed, &c->rplain) != 0) {
        st->decrypt_failures++;
        disc_conn_close(k, false);
        return;
    }
    if (disc__codec_state_decode(wr_buf_peek(&c->rplain), &state, &why) != 0) {
        st->decode_failures++;
        DISC_LOG(&c->cfg.swim, WR_LOG_DEBUG, "state_invalid", "why=\"%s\"", why);
        disc_conn_close(k, false);
        return;
    }
    uv_update_time(c->loop);
    disc__swim_state_merge(c->swim, disc_cluster_now(c), &state);
    disc__state_clear(&state);
    c->joined = true;
    disc_cluster_schedule(c);
    if (k->closing)
        return; /* an event callback closed the cluster */
    if (k->kind == DISC_CONN_SERVER) {
        uv_read_stop((uv_stream_t *)&k->tcp);
        if (disc_conn_send(k, false) != 0)
            disc_conn_close(k, false);
        else
            st->bytes_out += k->wbuf.len;
    } else {
        disc_conn_close(k, true);
    }
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct disc_conn *k = s->data;
    (void)buf;
    if (k->closing)
        return;
    if (nread < 0) {
        disc_conn_close(k, false);
        return;
    }
    wr_buf_commit(&k->rbuf, (size_t)nread);
    if (k->rbuf.len < 4)
        return;
    const uint8_t *h = k->rbuf.data + k->rbuf.off;
    size_t n = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (n > DISC_FRAME_MAX || n < DISC_SEAL_OVERHEAD) {
        disc__swim_stats_mut(k->c->swim)->decode_failures++;
        disc_conn_close(k, false);
        return;
    }
    if (k->rbuf.len < 4 + n)
        return;
    if (k->rbuf.len > 4 + n) {
        /* One frame per direction: anything more is a protocol error. */
        disc_conn_close(k, false);
        return;
    }
    disc_conn_on_frame(k, wr_slice_make(h + 4, n));
}

static void on_conn_connected(uv_connect_t *req, int status)
{
    struct disc_conn *k = req->data;
    if (status == UV_ECANCELED || k->closing)
        return;
    if (status < 0 || disc_conn_send(k, k->kind == DISC_CONN_JOIN) != 0 ||
        uv_read_start((uv_stream_t *)&k->tcp, on_conn_alloc, on_conn_read) != 0) {
        disc_conn_close(k, false);
        return;
    }
    disc__swim_stats_mut(k->c->swim)->bytes_out += k->wbuf.len;
}

/* Dials <addr> for a push/pull. false when it could not even start. */
static bool disc_cluster_dial(struct disc_cluster *c, const char *addr, enum disc_conn_kind kind)
{
    struct sockaddr_storage ss;
    if (c->closing || wr_addr_parse(addr, &ss) != 0)
        return false;
    struct disc_conn *k = disc_conn_new(c, kind);
    if (k == NULL)
        return false;
    k->connect.data = k;
    if (uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&ss, on_conn_connected) !=
        0) {
        /* Closed through the normal path, so the join bookkeeping runs once. */
        disc_conn_close(k, false);
    }
    return true;
}

static void on_swim_pushpull(void *arg, const char *addr)
{
    struct disc_cluster *c = arg;
    if (!disc_cluster_dial(c, addr, DISC_CONN_PERIODIC))
        disc__swim_stats_mut(c->swim)->pushpull_failures++;
}

static void on_dropped_closed(uv_handle_t *h)
{
    free(h);
}

static void on_listener_conn(uv_stream_t *l, int status)
{
    struct disc_cluster *c = wr_container_of((uv_tcp_t *)l, struct disc_cluster, listener);
    if (status < 0 || c->closing)
        return;
    struct disc_conn *k = disc_conn_new(c, DISC_CONN_SERVER);
    if (k == NULL) {
        /* Over the limit: accept and drop, so the backlog does not fill. */
        uv_tcp_t *tmp = wr_xmalloc(sizeof(*tmp));
        uv_tcp_init(c->loop, tmp);
        (void)uv_accept(l, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, on_dropped_closed);
        disc__swim_stats_mut(c->swim)->pushpull_failures++;
        return;
    }
    if (uv_accept(l, (uv_stream_t *)&k->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&k->tcp, on_conn_alloc, on_conn_read) != 0)
        disc_conn_close(k, false);
}

/* ---- joining ---- */

static void on_join_timer(uv_timer_t *t);

static void disc_cluster_join_round(struct disc_cluster *c)
{
    uv_update_time(c->loop);
    c->join_attempt++;
    for (size_t i = 0; i < c->n_seeds; i++) {
        disc__swim_announce(c->swim, disc_cluster_now(c), c->seeds[i]);
        if (disc_cluster_dial(c, c->seeds[i], DISC_CONN_JOIN))
            c->join_pending++;
    }
    if (c->join_pending == 0)
        disc_cluster_join_round_done(c, false);
    disc_cluster_schedule(c);
}

static void disc_cluster_join_round_done(struct disc_cluster *c, bool ok)
{
    if (c->join_pending > 0)
        c->join_pending--;
    if (ok) {
        c->joined = true;
        DISC_LOG(&c->cfg.swim, WR_LOG_INFO, "joined", "attempt=%u", c->join_attempt);
    }
    if (c->join_pending > 0 || c->closing || c->joined)
        return;
    /* Jittered exponential backoff: min * 2^attempt, capped, times 0.5..1. */
    uint64_t d = c->cfg.join_backoff_min_ms;
    for (uint32_t i = 1; i < c->join_attempt && d < c->cfg.join_backoff_max_ms; i++)
        d *= 2;
    if (d > c->cfg.join_backoff_max_ms)
        d = c->cfg.join_backoff_max_ms;
    d = d / 2 + wr_rand_below((uint32_t)(d / 2 + 1));
    DISC_LOG(&c->cfg.swim, WR_LOG_DEBUG, "join_retry", "attempt=%u in_ms=%llu", c->join_attempt,
             (unsigned long long)d);
    uv_timer_start(&c->join_timer, on_join_timer, d, 0);
}

static void on_join_timer(uv_timer_t *t)
{
    struct disc_cluster *c = wr_container_of(t, struct disc_cluster, join_timer);
    if (!c->closing && !c->joined)
        disc_cluster_join_round(c);
}

int disc_cluster_join(struct disc_cluster *c, const char *const *addrs, size_t n)
{
    struct sockaddr_storage ss;
    if (c->closing)
        return WR_ECLOSED;
    if (n == 0 || n > DISC_MAX_SEEDS)
        return WR_EUSAGE;
    for (size_t i = 0; i < n; i++)
        if (strlen(addrs[i]) >= DISC_ADDR_MAX || wr_addr_parse(addrs[i], &ss) != 0)
            return WR_EUSAGE;
    for (size_t i = 0; i < n; i++)
        snprintf(c->seeds[i], DISC_ADDR_MAX, "%s", addrs[i]);
    c->n_seeds = n;
    c->joined = false;
    c->join_attempt = 0;
    uv_timer_stop(&c->join_timer);
    /* Dialed from the loop, not from inside this call. */
    uv_timer_start(&c->join_timer, on_join_timer, 0, 0);
    return 0;
}

bool disc_cluster_is_joined(const struct disc_cluster *c)
{
    return c->joined;
}

/* ---- lifecycle ---- */

static void disc_cluster_maybe_free(struct disc_cluster *c)
{
    if (!c->closing || c->pending_closes > 0 || c->conns != NULL)
        return;
    disc_close_cb cb = c->close_cb;
    void *arg = c->close_arg;
    disc__swim_free(c->swim);
    disc_keyring_free(c->kr);
    wr_buf_free(&c->plain);
    wr_buf_free(&c->sealed);
    wr_buf_free(&c->rplain);
    free(c);
    if (cb != NULL)
        cb(arg);
}

static void on_cluster_handle_closed(uv_handle_t *h)
{
    struct disc_cluster *c = h->data;
    c->pending_closes--;
    disc_cluster_maybe_free(c);
}

void disc_cluster_close(struct disc_cluster *c, disc_close_cb cb, void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_arg = arg;
    uv_udp_recv_stop(&c->udp);
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->join_timer);
    for (struct disc_conn *k = c->conns; k != NULL; k = k->next)
        disc_conn_close(k, false);
    uv_handle_t *hs[] = {(uv_handle_t *)&c->udp, (uv_handle_t *)&c->listener,
                         (uv_handle_t *)&c->timer, (uv_handle_t *)&c->join_timer};
    for (size_t i = 0; i < WR_ARRAY_LEN(hs); i++) {
        hs[i]->data = c;
        c->pending_closes++;
        uv_close(hs[i], on_cluster_handle_closed);
    }
}

int disc_cluster_leave(struct disc_cluster *c)
{
    if (c->closing)
        return WR_ECLOSED;
    uv_update_time(c->loop);
    int err = disc__swim_leave(c->swim, disc_cluster_now(c));
    disc_cluster_schedule(c);
    return err;
}

/* The machine calls back with its <arg> (c); the embedder wants its own. */
static void on_swim_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                          enum disc_member_state old)
{
    struct disc_cluster *c = arg;
    if (c->cfg.event_cb != NULL)
        c->cfg.event_cb(c->cfg.event_arg, ev, m, old);
}

/*
 * Binds UDP and TCP on one port. With port 0 the kernel picks the UDP port,
 * and that port may be taken for TCP (ephemeral ports are shared with
 * outgoing connections): then both sockets are dropped and we try again.
 * Plain descriptors first, handed to libuv once both are bound, so that a
 * failed attempt has no handle to close.
 */
static int disc_cluster_bind(struct disc_cluster *c)
{
    struct sockaddr_storage ss;
    if (wr_addr_parse(c->cfg.bind, &ss) != 0)
        return WR_EUSAGE;
    bool any_port = wr_addr_port((const struct sockaddr *)&ss) == 0;
    socklen_t sslen =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int err = 0;
    for (int attempt = 0; attempt < 32; attempt++) {
        struct sockaddr_storage got = ss;
        socklen_t gotlen = sizeof(got);
        int one = 1;
        int fu = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int ft = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fu < 0 || ft < 0) {
            err = -errno;
            goto fail_fds;
        }
        (void)setsockopt(ft, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fu, (const struct sockaddr *)&ss, sslen) != 0 ||
            getsockname(fu, (struct sockaddr *)&got, &gotlen) != 0) {
            err = -errno;
            goto fail_fds;
        }
        if (bind(ft, (const struct sockaddr *)&got, gotlen) != 0) {
            err = -errno;
            if (err == UV_EADDRINUSE && any_port) {
                close(fu);
                close(ft);
                continue;
            }
            goto fail_fds;
        }
        err = uv_udp_open(&c->udp, fu);
        if (err != 0)
            goto fail_fds;
        fu = -1; /* the handle owns it now */
        err = uv_tcp_open(&c->listener, ft);
        if (err != 0)
            goto fail_fds;
        ft = -1;
        err = uv_listen((uv_stream_t *)&c->listener, 64, on_listener_conn);
        if (err != 0)
            return err;
        wr_addr_str((const struct sockaddr *)&got, c->addr, sizeof(c->addr));
        return 0;

    fail_fds:
        if (fu >= 0)
            close(fu);
        if (ft >= 0)
            close(ft);
        return err;
    }
    return err;
}

int disc_cluster_start(uv_loop_t *loop, const struct disc_cluster_config *cfg,
                       struct disc_keyring *kr, struct disc_cluster **out)
{
    *out = NULL;
    if (cfg->bind == NULL || kr == NULL) {
        disc_keyring_free(kr);
        return WR_EUSAGE;
    }
    struct disc_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        disc_keyring_free(kr);
        return WR_ENOMEM;
    }
    c->loop = loop;
    c->cfg = *cfg;
    /* Our own copy reads the timers too (the rejoin interval): defaults in. */
    disc_config_defaults(&c->cfg.swim);
    c->kr = kr;
    if (c->cfg.join_backoff_min_ms == 0)
        c->cfg.join_backoff_min_ms = 250;
    if (c->cfg.join_backoff_max_ms == 0)
        c->cfg.join_backoff_max_ms = 30000;
    if (c->cfg.tcp_timeout_ms == 0)
        c->cfg.tcp_timeout_ms = 5000;
    /* A fleet started at once joins through one seed: let it answer them all. */
    if (c->cfg.max_tcp_conns == 0)
        c->cfg.max_tcp_conns = 128;
    uv_udp_init(loop, &c->udp);
    uv_tcp_init(loop, &c->listener);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->join_timer);
    int err = disc_cluster_bind(c);
    if (err == 0) {
        struct disc_config swim = cfg->swim;
        /* A restarted member starts above any incarnation its previous life
         * reached (unless that life refuted more than once a second). */
        if (swim.initial_incarnation == 0)
            swim.initial_incarnation = wr_wall_s();
        struct disc_self self = cfg->self;
        if (self.addr[DISC_ADDR_GOSSIP][0] == '\0')
            snprintf(self.addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "%s", c->addr);
        const struct disc_swim_ops ops = {
            .send = on_swim_send, .pushpull = on_swim_pushpull, .event = on_swim_event};
        uv_update_time(loop);
        c->swim = disc__swim_new(&swim, &self, disc_cluster_now(c), &ops, c);
        if (c->swim == NULL)
            err = WR_EUSAGE;
    }
    if (err == 0)
        err = uv_udp_recv_start(&c->udp, on_udp_alloc, on_udp_recv);
    if (err != 0) {
        DISC_LOG(&c->cfg.swim, WR_LOG_WARN, "start_failed", "bind=%s err=%s", cfg->bind,
                 wr_err_name(err));
        /* The handles were initialised: they close through the normal path,
         * which frees <c> (and the keyring) in the last close callback. */
        disc_cluster_close(c, NULL, NULL);
        return err;
    }
    disc_cluster_schedule(c);
    DISC_LOG(&c->cfg.swim, WR_LOG_INFO, "start", "addr=%s id=%s", c->addr, cfg->self.id);
    *out = c;
    return 0;
}

int disc_cluster_set_tunnels(struct disc_cluster *c, const struct disc_tunnel_entry *e, size_t n)
{
    if (c->closing)
        return WR_ECLOSED;
    int err = disc__swim_set_tunnels(c->swim, e, n);
    if (err == 0)
        disc_cluster_schedule(c);
    return err;
}

struct disc_keyring *disc_cluster_keyring(struct disc_cluster *c)
{
    return c->kr;
}

const char *disc_cluster_addr(const struct disc_cluster *c)
{
    return c->addr;
}

const struct disc_member *disc_cluster_self(const struct disc_cluster *c)
{
    return disc__swim_self(c->swim);
}

const struct disc_member *disc_cluster_find(const struct disc_cluster *c, const char *id)
{
    return disc__swim_find(c->swim, id);
}

size_t disc_cluster_member_count(const struct disc_cluster *c)
{
    return disc__swim_member_count(c->swim);
}

const struct disc_member *disc_cluster_member_at(const struct disc_cluster *c, size_t i)
{
    return disc__swim_member_at(c->swim, i);
}

void disc_cluster_get_stats(const struct disc_cluster *c, struct disc_stats *out)
{
    disc__swim_get_stats(c->swim, out);
}
