/*
 * nd_peer.c: forwarding between nodes. Owns the peer listener, the peer links
 * (nd_peer: one mutual-TLS connection to another node, a wr_mux over it, its
 * keepalive and drain), the choice of a holder node for a tunnel from gossip,
 * and both ends of a forwarded stream: a visitor relayed to a peer (nd_fwd,
 * entry side) and a peer's stream spliced to a local agent (receiving side).
 * Entry points, pools and agents' tunnels stay in their own files.
 *
 * Either node of a pair may dial; a link serves streams both ways (the dialer
 * opens odd ids), and a node forwards over any READY link to the holder,
 * inbound or outbound, so two nodes usually share one link. Two links between
 * a pair (both dialed at once) are harmless: each serves streams until idle.
 */
#include "nd_int.h"

#include <stdlib.h>
#include <string.h>

#include "disc.h"

enum nd_peer_state {
    ND_PEER_ST_TLS = 0,  /* dialed or accepted: TCP and mutual TLS in progress */
    ND_PEER_ST_READY,    /* identity checked; streams flow both ways */
    ND_PEER_ST_DRAINING, /* GOAWAY sent or received, or the member left: no new streams */
    ND_PEER_ST_CLOSING,  /* close issued; waiting for the handles */
    ND_PEER_ST__COUNT    /* must be last */
};

static const char *const nd_peer_state_names[ND_PEER_ST__COUNT] = {"TLS", "READY", "DRAINING",
                                                                   "CLOSING"};

#define ND_PEER_BIT(s) (1u << (s))
static const uint32_t nd_peer_allowed[ND_PEER_ST__COUNT] = {
    [ND_PEER_ST_TLS] = ND_PEER_BIT(ND_PEER_ST_READY) | ND_PEER_BIT(ND_PEER_ST_CLOSING),
    [ND_PEER_ST_READY] = ND_PEER_BIT(ND_PEER_ST_DRAINING) | ND_PEER_BIT(ND_PEER_ST_CLOSING),
    [ND_PEER_ST_DRAINING] = ND_PEER_BIT(ND_PEER_ST_CLOSING),
    [ND_PEER_ST_CLOSING] = 0,
};

struct nd_peers {
    struct nd_node *node;
    bool on;        /* forwarding runs */
    bool listening; /* the listener handle is initialised and not closed */
    uv_tcp_t listener;
    struct wr_tls_ctx *srv, *cli;
    struct nd_list links; /* every nd_peer, any state */
    uint32_t n_links;
    uint32_t n_held; /* visitors parked on links still dialing or on the join */
    /* Right after a (re)start the node does not know the holders until its
     * gossip join completes: visitors wait for it, polled while any do. */
    uv_timer_t join_timer;
    bool join_timer_open;
    struct nd_list join_waiters; /* nd_fwd */
    struct nd_peer_stats st;
};

struct nd_peer {
    struct nd_list link; /* in peers->links */
    struct nd_peers *ps;
    struct wr_conn *conn;
    struct wr_mux *mux;
    uv_timer_t timer; /* keepalive once READY */
    enum nd_peer_state state;
    bool dialer;
    int pending_closes;
    uint64_t last_rx_ms;
    uint64_t rtt_us;
    char id[WR_ID_MAX + 1]; /* the other node: whom we dialed, or its certificate's CN */
    char addr[WR_ADDR_STRLEN];
    struct nd_list waiters; /* nd_fwd parked until the dial completes */
};

/* One visitor forwarded (or being forwarded) to a peer. */
struct nd_fwd {
    struct nd_list wait;     /* in waiting->waiters, or in peers->join_waiters */
    struct nd_peer *waiting; /* the link being dialed for us, or NULL */
    bool join_wait;          /* in peers->join_waiters */
    uint64_t deadline_ms;    /* of the join wait */
    struct nd_node *node;
    struct nd_entry *entry;
    struct wr_relay *relay;
    char client[WR_ADDR_STRLEN];
    char tried[ND_FWD_ATTEMPTS][WR_ID_MAX + 1];
    uint32_t attempts;
    bool refused; /* logged and counted as refused */
};

static void nd_peer_close(struct nd_peer *p, bool flush, const char *why);
static void nd_fwd_next(struct nd_fwd *f, const char *why);
static int nd_fwd_open(struct nd_fwd *f, struct nd_peer *p);

bool nd__peer_is_on(const struct nd_node *n)
{
    return n->peers != NULL && n->peers->on;
}

static void nd_peer_set_state(struct nd_peer *p, enum nd_peer_state to, const char *reason)
{
    enum nd_peer_state from = p->state;
    if (!(nd_peer_allowed[from] & ND_PEER_BIT(to))) {
        WR_ERROR("node", "peer_bad_transition", "node=%s from=%s to=%s", p->id,
                 nd_peer_state_names[from], nd_peer_state_names[to]);
        WR_ASSERT(!"illegal peer link state transition");
    }
    p->state = to;
    WR_DEBUG("node", "peer_state", "node=%s peer=%s from=%s to=%s reason=\"%s\"", p->id, p->addr,
             nd_peer_state_names[from], nd_peer_state_names[to], reason);
}

/* ---- the hop rule ------------------------------------------------------------ */

uint32_t nd__peer_route_check(const struct wr_msg_open *o, bool draining, const char **why)
{
    if (o->tunnel[0] == '\0') {
        *why = "peer OPEN without a tunnel";
        return WR_CODE_PROTOCOL;
    }
    if (o->hop == 0) {
        *why = "peer OPEN with hop 0";
        return WR_CODE_PROTOCOL;
    }
    /* Only an entry node forwards (hop 1): a node never forwards a peer's
     * stream again, so anything at the limit is a loop or a foreign sender. */
    if (o->hop >= WR_HOP_MAX) {
        *why = "hop limit reached";
        return WR_CODE_HOP_LIMIT;
    }
    if (draining) {
        *why = "node draining";
        return WR_CODE_SHUTDOWN;
    }
    return WR_CODE_OK;
}

/* ---- links: lookup, lifetime ----------------------------------------------------- */

static struct nd_peer *nd_peer_from_link(struct nd_list *l)
{
    return wr_container_of(l, struct nd_peer, link);
}

/* The link to use for node <id>: a READY one if any, else one we are dialing
 * (to wait on). *draining says whether a link to it is draining (the node
 * said GOAWAY or left: do not pick it). */
static struct nd_peer *nd_peer_find(struct nd_peers *ps, const char *id, bool *draining)
{
    struct nd_peer *dialing = NULL;
    if (draining != NULL)
        *draining = false;
    for (struct nd_list *l = ps->links.next; l != &ps->links; l = l->next) {
        struct nd_peer *p = nd_peer_from_link(l);
        if (strcmp(p->id, id) != 0)
            continue;
        if (p->state == ND_PEER_ST_READY)
            return p;
        if (p->state == ND_PEER_ST_TLS && p->dialer && dialing == NULL)
            dialing = p;
        if (p->state == ND_PEER_ST_DRAINING && draining != NULL)
            *draining = true;
    }
    return dialing;
}

static void nd_peer_free_if_done(struct nd_peer *p)
{
    if (--p->pending_closes > 0)
        return;
    struct nd_peers *ps = p->ps;
    struct nd_node *n = ps->node;
    nd_list_remove(&p->link);
    ps->n_links--;
    free(p);
    nd__node_maybe_stopped(n);
}

static void nd_peer_on_timer_close(uv_handle_t *h)
{
    nd_peer_free_if_done(h->data);
}

static void nd_peer_on_conn_close(struct wr_conn *c, void *arg)
{
    struct nd_peer *p = arg;
    (void)c;
    p->conn = NULL;
    /* Outside every mux callback: resetting the streams ends each splice and
     * makes each forwarded visitor's relay retry or close. */
    if (p->mux != NULL) {
        wr_mux_free(p->mux);
        p->mux = NULL;
    }
    nd_peer_free_if_done(p);
}

/* Visitors that waited for this link's dial: elsewhere, or refused. */
static void nd_peer_fail_waiters(struct nd_peer *p, const char *why)
{
    while (!nd_list_empty(&p->waiters)) {
        struct nd_fwd *f = wr_container_of(p->waiters.next, struct nd_fwd, wait);
        nd_list_remove(&f->wait);
        f->waiting = NULL;
        p->ps->n_held--;
        nd_fwd_next(f, why);
    }
}

static void nd_peer_close(struct nd_peer *p, bool flush, const char *why)
{
    if (p->state == ND_PEER_ST_CLOSING)
        return;
    bool was_up = p->state != ND_PEER_ST_TLS;
    if (was_up)
        p->ps->st.links--;
    nd_peer_set_state(p, ND_PEER_ST_CLOSING, why);
    if (was_up)
        WR_INFO("node", "peer_link_down", "node=%s peer=%s side=%s reason=\"%s\"", p->id, p->addr,
                p->dialer ? "dial" : "accept", why);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, nd_peer_on_timer_close);
    wr_conn_close(p->conn, flush);
    char reason[128];
    snprintf(reason, sizeof(reason), "peer link to %s failed: %s", p->id, why);
    nd_peer_fail_waiters(p, reason);
}

/* No new stream either way; the link closes once its streams are done. */
static void nd_peer_drain_link(struct nd_peer *p, bool send_goaway, const char *why)
{
    if (p->state == ND_PEER_ST_TLS) {
        nd_peer_close(p, false, why);
        return;
    }
    if (p->state != ND_PEER_ST_READY)
        return;
    nd_peer_set_state(p, ND_PEER_ST_DRAINING, why);
    if (send_goaway && wr_mux_goaway(p->mux, WR_CODE_SHUTDOWN) != 0) {
        nd_peer_close(p, false, "goaway failed");
        return;
    }
    if (wr_mux_streams_open(p->mux) == 0)
        nd_peer_close(p, true, "drained");
}

/* Closes the draining links whose streams are done. */
static void nd_peer_links_progress(struct nd_peers *ps)
{
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &ps->links)
    {
        struct nd_peer *p = nd_peer_from_link(pos);
        if (p->state == ND_PEER_ST_DRAINING && wr_mux_streams_open(p->mux) == 0)
            nd_peer_close(p, true, "drained");
    }
}

/* A stream of ours ended (either direction). */
static void nd_peer_stream_ended(struct nd_node *n)
{
    if (!nd__peer_is_on(n))
        return;
    nd_peer_links_progress(n->peers);
    if (n->draining)
        nd__node_drain_progress(n);
}

/* ---- keepalive ---------------------------------------------------------------- */

static void nd_peer_on_timer(uv_timer_t *timer)
{
    struct nd_peer *p = timer->data;
    struct nd_node *n = p->ps->node;
    uint64_t now = wr_now_ms();
    if (now - p->last_rx_ms >= n->cfg.ping_timeout_ms) {
        WR_WARN("node", "peer_silent", "node=%s peer=%s silent_ms=%llu", p->id, p->addr,
                (unsigned long long)(now - p->last_rx_ms));
        nd_peer_close(p, false, "keepalive timeout");
        return;
    }
    if (wr_mux_ping(p->mux, wr_now_ns()) != 0)
        nd_peer_close(p, false, "ping write failed");
}

/* ---- receiving side: a peer's stream to a local agent ----------------------- */

static void nd_peer_on_splice_done(struct wr_splice *sp, int err, uint32_t code, const char *why,
                                   void *arg)
{
    struct nd_node *n = arg;
    struct wr_splice_stats st;
    wr_splice_get_stats(sp, &st);
    n->stats.bytes_up += st.bytes_ab;
    n->stats.bytes_down += st.bytes_ba;
    n->n_relays--;
    if (err != 0) {
        n->stats.streams_failed++;
        WR_DEBUG("node", "peer_stream_failed", "code=%s reason=%s up=%llu down=%llu",
                 wr_proto_code_str(code), why ? why : "-", (unsigned long long)st.bytes_ab,
                 (unsigned long long)st.bytes_ba);
    }
    nd_peer_stream_ended(n);
}

static void nd_peer_refuse_stream(struct nd_peer *p, struct wr_mux_stream *s,
                                  const struct wr_msg_open *o, uint32_t code, const char *why)
{
    p->ps->st.refused_in++;
    char client[WR_ADDR_STRLEN * 4];
    WR_WARN("node", "peer_stream_refused",
            "node=%s stream=%u tunnel=%s service=%s client=%s hop=%u code=%s reason=\"%s\"", p->id,
            wr_mux_stream_id(s), o->tunnel[0] ? o->tunnel : "-", o->service[0] ? o->service : "-",
            wr_log_esc(client, sizeof(client), o->client_addr, strlen(o->client_addr)),
            (unsigned)o->hop, wr_proto_code_str(code), why);
    wr_mux_stream_reset(s, code);
}

static void nd_peer_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr,
                            void *arg)
{
    struct nd_peer *p = arg;
    struct nd_node *n = p->ps->node;
    (void)m;
    struct wr_msg_open o;
    const char *why = NULL;
    if (wr_msg_open_decode(hdr, &o, &why) != 0) {
        nd_peer_refuse_stream(p, s, &o, WR_CODE_PROTOCOL, why ? why : "bad OPEN header");
        return;
    }
    uint32_t code = nd__peer_route_check(&o, n->draining, &why);
    if (code != WR_CODE_OK) {
        nd_peer_refuse_stream(p, s, &o, code, why);
        return;
    }
    /* Local agents only: a peer's stream is never forwarded again. */
    struct nd_pool_member *pm =
        nd__pool_pick(nd__registry_get(&n->reg, o.tunnel, false), wr_rand64());
    if (pm == NULL) {
        nd_peer_refuse_stream(p, s, &o, WR_CODE_NO_ROUTE, "no live agent for tunnel here");
        return;
    }
    struct wr_msg_open ao = o;
    ao.tunnel[0] = '\0'; /* agents serve one tunnel: the key stays off their OPENs */
    struct wr_buf b = {0};
    int err = wr_msg_open_encode(&ao, &b);
    struct wr_mux_stream *as = NULL;
    if (err == 0)
        as = nd__tunc_open_stream(pm->owner, wr_buf_peek(&b), &err);
    wr_buf_free(&b);
    if (as == NULL) {
        char reason[96];
        snprintf(reason, sizeof(reason), "cannot open a stream to the agent: %s", wr_err_name(err));
        nd_peer_refuse_stream(p, s, &o, WR_CODE_REFUSED, reason);
        return;
    }
    p->ps->st.fwd_in++;
    n->stats.streams_opened++;
    n->n_relays++;
    WR_DEBUG("node", "peer_stream_routed", "node=%s stream=%u tunnel=%s service=%s agent=%s hop=%u",
             p->id, wr_mux_stream_id(s), o.tunnel, o.service, nd__tunc_agent(pm->owner),
             (unsigned)o.hop);
    wr_splice_new(s, as, nd_peer_on_splice_done, n);
}

/* ---- mux and connection callbacks --------------------------------------------- */

static int nd_peer_mux_write(void *arg, const struct wr_slice *v, int cnt)
{
    struct nd_peer *p = arg;
    if (p->conn == NULL)
        return WR_ECLOSED;
    int err = wr_conn_writev(p->conn, v, cnt);
    if (err == 0 && wr_conn_write_queued(p->conn) > WR_MUX_QUEUE_HIGH)
        wr_mux_set_congested(p->mux, true);
    return err;
}

static void nd_peer_on_pong(struct wr_mux *m, uint64_t opaque, void *arg)
{
    struct nd_peer *p = arg;
    (void)m;
    uint64_t now = wr_now_ns();
    if (opaque <= now)
        p->rtt_us = (now - opaque) / 1000;
}

static void nd_peer_on_goaway(struct wr_mux *m, uint32_t last, uint32_t code, void *arg)
{
    struct nd_peer *p = arg;
    (void)m;
    (void)last;
    WR_INFO("node", "peer_goaway", "node=%s peer=%s code=%s", p->id, p->addr,
            wr_proto_code_str(code));
    nd_peer_drain_link(p, false, "peer sent GOAWAY");
}

static void nd_peer_on_control(struct wr_mux *m, struct wr_slice msg, void *arg)
{
    struct nd_peer *p = arg;
    (void)m;
    /* Nothing is defined on peer links yet: ignored, for newer peers. */
    WR_DEBUG("node", "peer_control_ignored", "node=%s len=%zu", p->id, msg.len);
}

static void nd_peer_on_mux_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct nd_peer *p = arg;
    (void)m;
    if (p->state == ND_PEER_ST_CLOSING)
        return;
    WR_WARN("node", "peer_protocol_error", "node=%s peer=%s err=%s reason=\"%s\"", p->id, p->addr,
            wr_err_name(err), why);
    nd_peer_close(p, false, why);
}

static const struct wr_mux_cbs nd_peer_mux_cbs = {
    .write = nd_peer_mux_write,
    .on_open = nd_peer_on_open,
    .on_control = nd_peer_on_control,
    .on_pong = nd_peer_on_pong,
    .on_goaway = nd_peer_on_goaway,
    .on_error = nd_peer_on_mux_error,
};

/* TLS is up: check who is on the other end. */
static const char *nd_peer_check_identity(struct nd_peer *p)
{
    struct nd_node *n = p->ps->node;
    const char *cn = wr_conn_peer_cn(p->conn);
    if (cn == NULL || !wr_id_is_valid(cn, strlen(cn)))
        return "peer certificate has no valid node id";
    if (p->dialer) {
        /* The CA vouches for the name; gossip said who should answer here. */
        if (strcmp(cn, p->id) != 0)
            return "peer certificate is another node's";
        return NULL;
    }
    if (strcmp(cn, n->node_id) == 0)
        return "peer certificate is this node's own";
    snprintf(p->id, sizeof(p->id), "%s", cn);
    return NULL;
}

static void nd_peer_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct nd_peer *p = arg;
    struct nd_node *n = p->ps->node;
    (void)c;
    if (p->state == ND_PEER_ST_CLOSING)
        return;
    if (status != 0) {
        WR_WARN("node", "peer_tls_failed", "node=%s peer=%s side=%s err=%s", p->id[0] ? p->id : "-",
                p->addr, p->dialer ? "dial" : "accept", wr_err_name(status));
        nd_peer_close(p, false, "tls handshake failed");
        return;
    }
    const char *bad = nd_peer_check_identity(p);
    if (bad != NULL) {
        const char *cn = wr_conn_peer_cn(p->conn);
        char esc[WR_ID_MAX * 4 + 4];
        WR_WARN("node", "peer_identity_refused", "node=%s peer=%s side=%s cn=%s reason=\"%s\"",
                p->dialer ? p->id : "-", p->addr, p->dialer ? "dial" : "accept",
                cn ? wr_log_esc(esc, sizeof(esc), cn, strlen(cn)) : "-", bad);
        nd_peer_close(p, false, bad);
        return;
    }
    p->last_rx_ms = wr_now_ms();
    nd_peer_set_state(p, ND_PEER_ST_READY, "tls done");
    p->ps->st.links++;
    uv_timer_start(&p->timer, nd_peer_on_timer, n->cfg.ping_interval_ms, n->cfg.ping_interval_ms);
    WR_INFO("node", "peer_link_up", "node=%s peer=%s side=%s", p->id, p->addr,
            p->dialer ? "dial" : "accept");
    if (n->draining) {
        nd_peer_drain_link(p, true, "node draining");
        return;
    }
    /* Visitors held for this dial go now. */
    while (!nd_list_empty(&p->waiters) && p->state == ND_PEER_ST_READY) {
        struct nd_fwd *f = wr_container_of(p->waiters.next, struct nd_fwd, wait);
        nd_list_remove(&f->wait);
        f->waiting = NULL;
        p->ps->n_held--;
        int err = nd_fwd_open(f, p);
        if (err != 0) {
            char why[96];
            snprintf(why, sizeof(why), "cannot open a stream to %s: %s", p->id, wr_err_name(err));
            nd_fwd_next(f, why);
        }
    }
}

static void nd_peer_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct nd_peer *p = arg;
    (void)c;
    if (p->state == ND_PEER_ST_CLOSING || p->mux == NULL)
        return;
    p->last_rx_ms = wr_now_ms();
    ssize_t r = wr_mux_feed(p->mux, wr_slice_make(data, len));
    (void)r; /* errors arrive through on_error */
}

static void nd_peer_on_eof(struct wr_conn *c, void *arg)
{
    struct nd_peer *p = arg;
    (void)c;
    nd_peer_close(p, false, "peer closed the connection");
}

static void nd_peer_on_error(struct wr_conn *c, int err, void *arg)
{
    struct nd_peer *p = arg;
    (void)c;
    if (p->state == ND_PEER_ST_CLOSING)
        return;
    char why[96];
    snprintf(why, sizeof(why), "connection error %s", wr_err_name(err));
    nd_peer_close(p, false, why);
}

static void nd_peer_on_drain(struct wr_conn *c, void *arg)
{
    struct nd_peer *p = arg;
    (void)c;
    if (p->mux != NULL && p->state != ND_PEER_ST_CLOSING)
        wr_mux_set_congested(p->mux, false);
}

static const struct wr_conn_cbs nd_peer_conn_cbs = {
    .on_ready = nd_peer_on_ready,
    .on_read = nd_peer_on_read,
    .on_eof = nd_peer_on_eof,
    .on_error = nd_peer_on_error,
    .on_drain = nd_peer_on_drain,
    .on_close = nd_peer_on_conn_close,
};

/* The rest of a link once its connection exists: mux, timer, list. */
static struct nd_peer *nd_peer_setup(struct nd_peers *ps, struct nd_peer *p)
{
    struct nd_node *n = ps->node;
    struct wr_mux_opts mo = {
        .initial_window = n->cfg.window,
        .max_streams = n->cfg.max_streams,
        .dialer = p->dialer,
    };
    p->mux = wr_mux_new(&mo, &nd_peer_mux_cbs, p);
    if (p->mux == NULL)
        wr_fatal("what=out_of_memory");
    uv_timer_init(n->loop, &p->timer);
    p->timer.data = p;
    p->pending_closes = 2; /* conn + timer */
    p->state = ND_PEER_ST_TLS;
    nd_list_insert_tail(&ps->links, &p->link);
    ps->n_links++;
    return p;
}

static struct nd_peer *nd_peer_alloc(struct nd_peers *ps, bool dialer)
{
    struct nd_peer *p = wr_xcalloc(1, sizeof(*p));
    p->ps = ps;
    p->dialer = dialer;
    nd_list_init(&p->waiters);
    nd_list_init(&p->link);
    return p;
}

/* Dials node <id> at its advertised peer address. NULL with *err set. */
static struct nd_peer *nd_peer_dial(struct nd_peers *ps, const char *id, const char *addr, int *err)
{
    struct nd_node *n = ps->node;
    struct sockaddr_storage ss;
    if (ps->n_links >= ND_PEER_MAX_LINKS) {
        *err = WR_ELIMIT;
        return NULL;
    }
    if (wr_addr_parse(addr, &ss) != 0) {
        *err = WR_EUSAGE;
        return NULL;
    }
    struct nd_peer *p = nd_peer_alloc(ps, true);
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    /* SNI as an SNI-routing load balancer would want it; never checked here. */
    char sni[2 * WR_ID_MAX + 2];
    snprintf(sni, sizeof(sni), "%s.%s", id, n->cluster);
    struct wr_conn_opts opts = {
        .tls = ps->cli,
        .sni = sni,
        .handshake_timeout_ms = ND_PEER_DIAL_TIMEOUT_MS,
        .nodelay = true,
    };
    p->conn = wr_conn_dial(n->loop, (const struct sockaddr *)&ss, &opts, &nd_peer_conn_cbs, p, err);
    if (p->conn == NULL) {
        free(p);
        return NULL;
    }
    WR_DEBUG("node", "peer_dial", "node=%s addr=%s", id, addr);
    return nd_peer_setup(ps, p);
}

static void nd_peer_on_connection(uv_stream_t *server, int status)
{
    struct nd_peers *ps = server->data;
    struct nd_node *n = ps->node;
    if (status < 0) {
        WR_WARN("node", "peer_accept_failed", "err=%s", wr_err_name(status));
        return;
    }
    struct nd_peer *p = nd_peer_alloc(ps, false);
    struct wr_conn_opts opts = {
        .tls = ps->srv,
        .handshake_timeout_ms = n->cfg.hello_timeout_ms,
        .nodelay = true,
    };
    int err = 0;
    p->conn = wr_conn_accept(server, &opts, &nd_peer_conn_cbs, p, &err);
    if (p->conn == NULL) {
        WR_WARN("node", "peer_accept_failed", "err=%s", wr_err_name(err));
        free(p);
        return;
    }
    snprintf(p->addr, sizeof(p->addr), "%s", wr_conn_peer_str(p->conn));
    nd_peer_setup(ps, p);
    if (n->draining || ps->n_links > ND_PEER_MAX_LINKS) {
        WR_WARN("node", "peer_refused", "peer=%s reason=%s", p->addr,
                n->draining ? "draining" : "max_links");
        nd_peer_close(p, false, "refused");
    }
}

/* ---- entry side: a visitor forwarded to a holder ------------------------------- */

/* Sum of the weights node <m> advertises for <tunnel> (0: it holds none). */
static uint64_t nd_fwd_member_weight(const struct disc_member *m, const char *tunnel)
{
    uint64_t w = 0;
    for (size_t i = 0; i < disc_member_tunnel_count(m); i++) {
        const struct disc_tunnel_entry *t = disc_member_tunnel_get(m, i);
        if (t != NULL && strcmp(t->tunnel, tunnel) == 0)
            w += t->weight > 0 ? t->weight : 1;
    }
    return w;
}

static bool nd_fwd_tried(const struct nd_fwd *f, const char *id)
{
    for (uint32_t i = 0; i < f->attempts; i++)
        if (strcmp(f->tried[i], id) == 0)
            return true;
    return false;
}

/* The weight of <m> as a holder of <tunnel> for <f> (NULL: a new visitor);
 * 0 when it cannot be picked. */
static uint64_t nd_fwd_holder_weight(struct nd_peers *ps, const struct disc_member *m,
                                     const char *tunnel, const struct nd_fwd *f)
{
    if (disc_member_is_self(m) || disc_member_get_state(m) != DISC_MEMBER_ST_ALIVE ||
        disc_member_role(m) != DISC_ROLE_NODE || disc_member_addr(m, DISC_ADDR_PEER)[0] == '\0')
        return 0;
    const char *id = disc_member_id(m);
    if (f != NULL && nd_fwd_tried(f, id))
        return 0;
    bool draining = false;
    (void)nd_peer_find(ps, id, &draining);
    if (draining)
        return 0; /* it said GOAWAY: gossip will say LEFT soon */
    return nd_fwd_member_weight(m, tunnel);
}

/* A holder of <tunnel> by weighted random choice, or NULL. */
static const struct disc_member *nd_fwd_pick(struct nd_node *n, const char *tunnel,
                                             const struct nd_fwd *f)
{
    size_t count = disc_cluster_member_count(n->gossip);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const struct disc_member *m = disc_cluster_member_at(n->gossip, i);
        if (m != NULL)
            total += nd_fwd_holder_weight(n->peers, m, tunnel, f);
    }
    if (total == 0)
        return NULL;
    uint64_t r = wr_rand64() % total;
    for (size_t i = 0; i < count; i++) {
        const struct disc_member *m = disc_cluster_member_at(n->gossip, i);
        uint64_t w = m != NULL ? nd_fwd_holder_weight(n->peers, m, tunnel, f) : 0;
        if (r < w)
            return m;
        r -= w;
    }
    return NULL;
}

/* Opens the forwarded stream on READY link <p> and hands it to the relay. */
static int nd_fwd_open(struct nd_fwd *f, struct nd_peer *p)
{
    struct nd_entry *e = f->entry;
    struct wr_msg_open o;
    memset(&o, 0, sizeof(o));
    memcpy(o.service, e->cfg.service, sizeof(o.service));
    memcpy(o.tunnel, e->cfg.tunnel, sizeof(o.tunnel));
    snprintf(o.client_addr, sizeof(o.client_addr), "%s", f->client);
    o.hop = 1;
    struct wr_buf hdr = {0};
    int err = wr_msg_open_encode(&o, &hdr);
    struct wr_mux_stream *s = NULL;
    if (err == 0)
        s = wr_mux_open(p->mux, wr_buf_peek(&hdr), NULL, NULL, &err);
    wr_buf_free(&hdr);
    if (s == NULL)
        return err;
    p->ps->st.fwd_out++;
    WR_DEBUG("node", "visitor_forwarded",
             "entry=%s client=%s tunnel=%s node=%s stream=%u attempt=%u", e->addr_str, f->client,
             e->cfg.tunnel, p->id, wr_mux_stream_id(s), f->attempts);
    wr_relay_attach(f->relay, s);
    return 0;
}

/* Sends <f> toward holder <m>: over a READY link, or parked on a dial. */
static int nd_fwd_route(struct nd_fwd *f, const struct disc_member *m)
{
    struct nd_peers *ps = f->node->peers;
    const char *id = disc_member_id(m);
    snprintf(f->tried[f->attempts], sizeof(f->tried[0]), "%s", id);
    f->attempts++;
    struct nd_peer *p = nd_peer_find(ps, id, NULL);
    if (p != NULL && p->state == ND_PEER_ST_READY)
        return nd_fwd_open(f, p);
    if (ps->n_held >= ND_PEER_HOLD_MAX)
        return WR_ELIMIT;
    int err = 0;
    if (p == NULL)
        p = nd_peer_dial(ps, id, disc_member_addr(m, DISC_ADDR_PEER), &err);
    if (p == NULL)
        return err;
    /* Held (bounded by the dial's deadline); the relay buffers what the
     * visitor sends meanwhile. */
    nd_list_insert_tail(&p->waiters, &f->wait);
    f->waiting = p;
    ps->n_held++;
    return 0;
}

static void nd_fwd_refuse(struct nd_fwd *f, const char *why)
{
    struct nd_node *n = f->node;
    struct nd_entry *e = f->entry;
    f->refused = true;
    n->stats.visitors_refused++;
    n->peers->st.refused_out++;
    /* The shape of nd_entry.c's refusals. */
    WR_WARN("node", "visitor_refused", "entry=%s tunnel=%s service=%s client=%s reason=\"%s\"",
            e->addr_str, e->cfg.tunnel, e->cfg.service, f->client, why);
    wr_relay_abort(f->relay, WR_CODE_CANCEL);
}

/* The attempt failed (<why>): one other holder, or a refusal. */
static void nd_fwd_next(struct nd_fwd *f, const char *why)
{
    struct nd_node *n = f->node;
    if (n->draining) {
        nd_fwd_refuse(f, "node draining");
        return;
    }
    char buf[128];
    while (f->attempts < ND_FWD_ATTEMPTS) {
        const struct disc_member *m =
            n->gossip != NULL ? nd_fwd_pick(n, f->entry->cfg.tunnel, f) : NULL;
        if (m == NULL) {
            nd_fwd_refuse(f, "no live agent for tunnel on any node");
            return;
        }
        WR_INFO("node", "forward_retry", "entry=%s tunnel=%s client=%s node=%s after=\"%s\"",
                f->entry->addr_str, f->entry->cfg.tunnel, f->client, disc_member_id(m), why);
        int err = nd_fwd_route(f, m);
        if (err == 0)
            return;
        snprintf(buf, sizeof(buf), "cannot forward to %s: %s", disc_member_id(m), wr_err_name(err));
        why = buf;
    }
    nd_fwd_refuse(f, why);
}

/* The holder reset the stream before any byte came back (no agent there any
 * more, draining, or the link died): the relay kept the visitor's bytes. */
static void nd_fwd_on_retry(struct wr_relay *r, uint32_t code, void *arg)
{
    struct nd_fwd *f = arg;
    (void)r;
    const char *holder = f->attempts > 0 ? f->tried[f->attempts - 1] : "-";
    WR_WARN("node", "forward_reset", "entry=%s tunnel=%s client=%s node=%s code=%s",
            f->entry->addr_str, f->entry->cfg.tunnel, f->client, holder, wr_proto_code_str(code));
    char why[128];
    snprintf(why, sizeof(why), "node %s reset the stream: %s", holder, wr_proto_code_str(code));
    nd_fwd_next(f, why);
}

static void nd_fwd_on_done(struct wr_relay *r, int err, const char *why, void *arg)
{
    struct nd_fwd *f = arg;
    struct nd_node *n = f->node;
    struct wr_relay_stats st;
    wr_relay_get_stats(r, &st);
    n->stats.bytes_up += st.bytes_up;
    n->stats.bytes_down += st.bytes_down;
    n->n_relays--;
    if (f->waiting != NULL || f->join_wait) {
        nd_list_remove(&f->wait);
        n->peers->n_held--;
    }
    if (err != 0 && !f->refused) {
        n->stats.streams_failed++;
        WR_DEBUG("node", "visitor_stream_failed",
                 "tunnel=%s node=%s err=%s reason=%s up=%llu "
                 "down=%llu",
                 f->entry->cfg.tunnel, f->attempts ? f->tried[f->attempts - 1] : "-",
                 wr_err_name(err), why ? why : "-", (unsigned long long)st.bytes_up,
                 (unsigned long long)st.bytes_down);
    }
    free(f);
    nd_peer_stream_ended(n);
}

static void nd_fwd_on_join_tick(uv_timer_t *timer)
{
    struct nd_peers *ps = timer->data;
    struct nd_node *n = ps->node;
    bool joined = nd__gossip_is_joined(n);
    uint64_t now = wr_now_ms();
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &ps->join_waiters)
    {
        struct nd_fwd *f = wr_container_of(pos, struct nd_fwd, wait);
        const struct disc_member *m = nd_fwd_pick(n, f->entry->cfg.tunnel, NULL);
        if (m == NULL && !joined && now < f->deadline_ms)
            continue;
        nd_list_remove(&f->wait);
        f->join_wait = false;
        ps->n_held--;
        if (m == NULL) {
            nd_fwd_refuse(f, "no live agent for tunnel on any node");
            continue;
        }
        int err = nd_fwd_route(f, m);
        if (err != 0) {
            char why[128];
            snprintf(why, sizeof(why), "cannot forward to %s: %s", disc_member_id(m),
                     wr_err_name(err));
            nd_fwd_next(f, why);
        }
    }
    if (nd_list_empty(&ps->join_waiters))
        uv_timer_stop(&ps->join_timer);
}

const char *nd__peer_forward(struct nd_node *n, struct nd_entry *e, struct wr_conn *c)
{
    if (!nd__peer_is_on(n) || n->gossip == NULL)
        return "no live agent for tunnel";
    struct nd_peers *ps = n->peers;
    const struct disc_member *m = nd_fwd_pick(n, e->cfg.tunnel, NULL);
    /* Not joined yet (just started): the holders are not known, only soon. */
    bool wait_join = m == NULL && !n->draining && !nd__gossip_is_joined(n) && ps->join_timer_open &&
                     ps->n_held < ND_PEER_HOLD_MAX;
    if (m == NULL && !wait_join) {
        ps->st.refused_out++;
        return "no live agent for tunnel on any node";
    }
    struct nd_fwd *f = wr_xcalloc(1, sizeof(*f));
    f->node = n;
    f->entry = e;
    nd_list_init(&f->wait);
    char esc[WR_ADDR_STRLEN];
    const char *peer = wr_conn_peer_str(c);
    snprintf(f->client, sizeof(f->client), "%s", wr_log_esc(esc, sizeof(esc), peer, strlen(peer)));
    /* Parked until a stream is attached: the visitor's first bytes are kept. */
    f->relay = wr_relay_new(c, NULL, nd_fwd_on_done, f);
    wr_relay_set_retry(f->relay, ND_PEER_REPLAY_MAX, nd_fwd_on_retry);
    n->n_relays++;
    if (m == NULL) {
        f->join_wait = true;
        f->deadline_ms = wr_now_ms() + ND_PEER_DIAL_TIMEOUT_MS;
        nd_list_insert_tail(&ps->join_waiters, &f->wait);
        ps->n_held++;
        if (!uv_is_active((uv_handle_t *)&ps->join_timer))
            uv_timer_start(&ps->join_timer, nd_fwd_on_join_tick, 10, 10);
        return NULL;
    }
    int err = nd_fwd_route(f, m);
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "cannot forward to %s: %s", disc_member_id(m), wr_err_name(err));
        nd_fwd_next(f, why);
    }
    return NULL;
}

/* ---- node hooks ------------------------------------------------------------------ */

/* The listener's and the join timer's close callback. */
static void nd_peer_on_listener_close(uv_handle_t *h)
{
    struct nd_peers *ps = h->data;
    ps->node->pending_closes--;
}

/* Refuses the visitors waiting for the join and closes its timer. */
static void nd_peer_close_join(struct nd_peers *ps, const char *why)
{
    while (!nd_list_empty(&ps->join_waiters)) {
        struct nd_fwd *f = wr_container_of(ps->join_waiters.next, struct nd_fwd, wait);
        nd_list_remove(&f->wait);
        f->join_wait = false;
        ps->n_held--;
        nd_fwd_refuse(f, why);
    }
    if (!ps->join_timer_open)
        return;
    ps->join_timer_open = false;
    ps->node->pending_closes++;
    uv_close((uv_handle_t *)&ps->join_timer, nd_peer_on_listener_close);
}

static void nd_peer_close_listener(struct nd_peers *ps)
{
    if (!ps->listening)
        return;
    ps->listening = false;
    ps->node->pending_closes++;
    uv_close((uv_handle_t *)&ps->listener, nd_peer_on_listener_close);
}

int nd__peer_start(struct nd_node *n)
{
    if (!n->cfg.gossip_enabled || !n->cfg.peer_enabled)
        return 0; /* no gossip, no holders to forward to */
    struct nd_peers *ps = wr_xcalloc(1, sizeof(*ps));
    ps->node = n;
    nd_list_init(&ps->links);
    nd_list_init(&ps->join_waiters);
    uv_timer_init(n->loop, &ps->join_timer);
    ps->join_timer.data = ps;
    ps->join_timer_open = true;
    n->peers = ps;
    char a[WR_ADDR_STRLEN];
    wr_addr_str((const struct sockaddr *)&n->cfg.peer_addr, a, sizeof(a));
    int err = 0;
    ps->srv = wr_tls_ctx_new_server_mtls(n->cfg.cert_file, n->cfg.key_file, n->cfg.ca_file,
                                         WR_ALPN_PEER, &err);
    if (ps->srv != NULL)
        ps->cli = wr_tls_ctx_new_client_mtls(n->cfg.cert_file, n->cfg.key_file, n->cfg.ca_file,
                                             WR_ALPN_PEER, &err);
    if (ps->cli == NULL) {
        WR_ERROR("node", "peer_tls_setup_failed", "err=%s", wr_err_name(err));
        return err;
    }
    char cn[WR_ID_MAX + 1];
    if (wr_cert_cn(n->cfg.cert_file, cn, sizeof(cn)) != 0 || strcmp(cn, n->node_id) != 0)
        WR_WARN("node", "peer_identity_mismatch",
                "what=\"the certificate's CN is not --node-id: other nodes will refuse this "
                "node's peer links\" node=%s",
                n->node_id);
    uv_tcp_init(n->loop, &ps->listener);
    ps->listener.data = ps;
    ps->listening = true;
    err = uv_tcp_bind(&ps->listener, (const struct sockaddr *)&n->cfg.peer_addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&ps->listener, 1024, nd_peer_on_connection);
    if (err != 0) {
        nd_peer_close_listener(ps);
        if (n->cfg.peer_addr_set) {
            WR_ERROR("node", "peer_listen_failed", "addr=%s err=%s", a, wr_err_name(err));
            return err;
        }
        /* The default port taken (another node on this host): run without
         * forwarding rather than not at all. */
        WR_WARN("node", "peer_listen_failed",
                "addr=%s err=%s what=\"forwarding off; set --peer-addr\"", a, wr_err_name(err));
        return 0;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&ps->listener, (struct sockaddr *)&ss, &len);
    wr_addr_str((struct sockaddr *)&ss, n->peer_str, sizeof(n->peer_str));
    ps->on = true;
    WR_INFO("node", "peer_listening", "addr=%s alpn=%s", n->peer_str, WR_ALPN_PEER);
    return 0;
}

void nd__peer_drain(struct nd_node *n)
{
    struct nd_peers *ps = n->peers;
    if (ps == NULL)
        return;
    nd_peer_close_listener(ps);
    nd_peer_close_join(ps, "node draining");
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &ps->links)
    {
        nd_peer_drain_link(nd_peer_from_link(pos), true, "node draining");
    }
}

void nd__peer_drain_progress(struct nd_node *n)
{
    if (n->peers != NULL)
        nd_peer_links_progress(n->peers);
}

void nd__peer_force_close(struct nd_node *n)
{
    struct nd_peers *ps = n->peers;
    if (ps == NULL)
        return;
    nd_peer_close_listener(ps);
    nd_peer_close_join(ps, "node draining");
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &ps->links)
    {
        nd_peer_close(nd_peer_from_link(pos), false, "drain deadline");
    }
}

bool nd__peer_idle(const struct nd_node *n)
{
    return n->peers == NULL || n->peers->n_links == 0;
}

void nd__peer_free(struct nd_node *n)
{
    struct nd_peers *ps = n->peers;
    if (ps == NULL)
        return;
    WR_ASSERT(ps->n_links == 0 && !ps->listening && !ps->join_timer_open);
    wr_tls_ctx_free(ps->srv);
    wr_tls_ctx_free(ps->cli);
    free(ps);
    n->peers = NULL;
}

void nd__peer_member_gone(struct nd_node *n, const char *id)
{
    if (!nd__peer_is_on(n))
        return;
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &n->peers->links)
    {
        struct nd_peer *p = nd_peer_from_link(pos);
        if (strcmp(p->id, id) == 0)
            nd_peer_drain_link(p, false, "member dead or left");
    }
}

void nd__peer_get_stats(const struct nd_node *n, struct nd_peer_stats *out)
{
    if (n->peers == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = n->peers->st;
}
