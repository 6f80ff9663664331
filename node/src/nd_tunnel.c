/*
 * nd_tunnel.c: one agent's tunnel connection on the node (nd_tunc): the TLS
 * handshake, the HELLO/WELCOME exchange with token checks, membership in its
 * tunnel's pool, keepalive, drain and teardown. It does not choose agents
 * for visitors (nd_pool.c) nor relay bytes (wr_relay).
 */
#include "nd_int.h"

#include <stdlib.h>
#include <string.h>

enum nd_tunc_state {
    ND_TUNC_ST_TLS = 0,  /* accepted; TLS handshake in progress */
    ND_TUNC_ST_AUTH,     /* TLS up; waiting for the agent's HELLO */
    ND_TUNC_ST_READY,    /* in its pool; streams may be opened */
    ND_TUNC_ST_DRAINING, /* GOAWAY sent, out of the pool; open streams finish */
    ND_TUNC_ST_CLOSING,  /* close issued; waiting for handle close callbacks */
    ND_TUNC_ST__COUNT    /* must be last */
};

static const char *const nd_tunc_state_names[ND_TUNC_ST__COUNT] = {"TLS", "AUTH", "READY",
                                                                   "DRAINING", "CLOSING"};

#define ND_BIT(s) (1u << (s))
/* allowed[from] is the set of states <from> may move to. */
static const uint32_t nd_tunc_allowed[ND_TUNC_ST__COUNT] = {
    [ND_TUNC_ST_TLS] = ND_BIT(ND_TUNC_ST_AUTH) | ND_BIT(ND_TUNC_ST_CLOSING),
    [ND_TUNC_ST_AUTH] = ND_BIT(ND_TUNC_ST_READY) | ND_BIT(ND_TUNC_ST_CLOSING),
    [ND_TUNC_ST_READY] = ND_BIT(ND_TUNC_ST_DRAINING) | ND_BIT(ND_TUNC_ST_CLOSING),
    [ND_TUNC_ST_DRAINING] = ND_BIT(ND_TUNC_ST_CLOSING),
    [ND_TUNC_ST_CLOSING] = 0,
};

struct nd_tunc {
    struct nd_list link; /* in node->tuncs */
    struct nd_pool_member member;
    struct nd_node *node;
    struct wr_conn *conn;
    struct wr_mux *mux;
    uv_timer_t timer; /* HELLO deadline, then keepalive */
    enum nd_tunc_state state;
    bool in_pool;
    bool proxy_noted; /* the PROXY header's fate was counted */
    int pending_closes;
    uint64_t last_rx_ms;
    uint64_t rtt_us;
    char tunnel[WR_ID_MAX + 1];
    char agent_id[WR_ID_MAX + 1];
    char peer[WR_ADDR_STRLEN];
};

static void nd_tunc_set_state(struct nd_tunc *t, enum nd_tunc_state to, const char *reason)
{
    enum nd_tunc_state from = t->state;
    if (!(nd_tunc_allowed[from] & ND_BIT(to))) {
        WR_ERROR("node", "tunc_bad_transition", "conn=%llu from=%s to=%s",
                 (unsigned long long)wr_conn_id(t->conn), nd_tunc_state_names[from],
                 nd_tunc_state_names[to]);
        WR_ASSERT(!"illegal tunnel connection state transition");
    }
    t->state = to;
    WR_DEBUG("node", "tunc_state", "conn=%llu from=%s to=%s reason=%s",
             (unsigned long long)wr_conn_id(t->conn), nd_tunc_state_names[from],
             nd_tunc_state_names[to], reason);
}

static void nd_tunc_leave_pool(struct nd_tunc *t)
{
    if (!t->in_pool)
        return;
    nd__pool_remove(&t->node->reg, t->tunnel, &t->member);
    t->in_pool = false;
    nd__gossip_publish(t->node);
}

static void nd_tunc_free_if_done(struct nd_tunc *t)
{
    if (--t->pending_closes > 0)
        return;
    struct nd_node *n = t->node;
    nd_list_remove(&t->link);
    n->n_tuncs--;
    free(t);
    nd__node_maybe_stopped(n);
}

static void nd_tunc_on_timer_close(uv_handle_t *h)
{
    nd_tunc_free_if_done(h->data);
}

static void nd_tunc_on_conn_close(struct wr_conn *c, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    t->conn = NULL;
    /* Outside every mux callback now: resetting the streams makes each relay
     * close its visitor. */
    if (t->mux != NULL) {
        wr_mux_free(t->mux);
        t->mux = NULL;
    }
    nd_tunc_free_if_done(t);
}

static void nd_tunc_send_error(struct nd_tunc *t, uint32_t code, const char *msg)
{
    struct wr_msg_error e = {.code = code};
    snprintf(e.message, sizeof(e.message), "%s", msg);
    struct wr_buf b = {0};
    /* Best effort: the connection closes right after either way. */
    if (wr_msg_error_encode(&e, &b) == 0 && wr_mux_send_control(t->mux, wr_buf_peek(&b)) != 0)
        WR_DEBUG("node", "error_not_sent", "conn=%llu", (unsigned long long)wr_conn_id(t->conn));
    wr_buf_free(&b);
}

void nd__tunc_close(struct nd_tunc *t, uint32_t code, const char *why)
{
    if (t->state == ND_TUNC_ST_CLOSING)
        return;
    bool was_ready = t->state >= ND_TUNC_ST_READY;
    nd_tunc_leave_pool(t);
    if (code != WR_CODE_OK && t->state >= ND_TUNC_ST_AUTH && t->mux != NULL)
        nd_tunc_send_error(t, code, why);
    nd_tunc_set_state(t, ND_TUNC_ST_CLOSING, why);
    if (was_ready)
        WR_INFO("node", "agent_gone", "conn=%llu tunnel=%s agent=%s peer=%s reason=%s",
                (unsigned long long)wr_conn_id(t->conn), t->tunnel, t->agent_id, t->peer, why);
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, nd_tunc_on_timer_close);
    /* Flush so that an ERROR can reach the agent before the close. */
    wr_conn_close(t->conn, code != WR_CODE_OK);
}

static enum nd_reject_class nd_tunc_reject_class(uint32_t code)
{
    switch (code) {
    case WR_CODE_AUTH:
        return ND_REJECT_AUTH;
    case WR_CODE_PROTOCOL:
        return ND_REJECT_PROTOCOL;
    case WR_CODE_VERSION:
        return ND_REJECT_VERSION;
    case WR_CODE_TIMEOUT:
        return ND_REJECT_TIMEOUT;
    default:
        return ND_REJECT_OTHER;
    }
}

static void nd_tunc_reject(struct nd_tunc *t, uint32_t code, const char *why)
{
    nd__node_count_reject(t->node, nd_tunc_reject_class(code));
    WR_WARN("node", "agent_rejected", "conn=%llu peer=%s code=%s reason=\"%s\"",
            (unsigned long long)wr_conn_id(t->conn), t->peer, wr_proto_code_str(code), why);
    nd__tunc_close(t, code, why);
}

/*
 * PROXY protocol: once the header a trusted peer owes is decided, counts
 * it and takes the client address it names (logs, /v1/tunnels). <if_waiting>
 * is the reason to give when it is still not complete (the connection failed
 * or the deadline passed first); NULL: not decided yet, nothing to do.
 * Returns false when the header is missing or bad: the connection is closed.
 */
static bool nd_tunc_check_proxy(struct nd_tunc *t, const char *if_waiting)
{
    const char *why = NULL;
    enum wr_conn_proxy r = wr_conn_get_proxy(t->conn, &why);
    if (r == WR_CONN_PROXY_OFF || t->proxy_noted)
        return true;
    if (r == WR_CONN_PROXY_WAITING) {
        if (if_waiting == NULL)
            return true;
        r = WR_CONN_PROXY_BAD;
        why = if_waiting;
    }
    t->proxy_noted = true;
    nd__node_count_proxy(t->node, t->conn, r, why, "listener=agents");
    if (r == WR_CONN_PROXY_BAD) {
        nd__tunc_close(t, WR_CODE_OK, "bad PROXY header");
        return false;
    }
    snprintf(t->peer, sizeof(t->peer), "%s", wr_conn_peer_str(t->conn));
    return true;
}

/* ---- keepalive -------------------------------------------------------------- */

static void nd_tunc_on_timer(uv_timer_t *timer)
{
    struct nd_tunc *t = timer->data;
    struct nd_node *n = t->node;
    if (t->state < ND_TUNC_ST_READY) {
        if (!nd_tunc_check_proxy(t, "timeout"))
            return;
        /* Slowloris guard: TLS and HELLO must finish within hello_timeout. */
        nd_tunc_reject(t, WR_CODE_TIMEOUT, "hello timeout");
        return;
    }
    uint64_t now = wr_now_ms();
    if (now - t->last_rx_ms >= n->cfg.ping_timeout_ms) {
        WR_WARN("node", "agent_silent", "conn=%llu tunnel=%s agent=%s silent_ms=%llu",
                (unsigned long long)wr_conn_id(t->conn), t->tunnel, t->agent_id,
                (unsigned long long)(now - t->last_rx_ms));
        nd__tunc_close(t, WR_CODE_TIMEOUT, "keepalive timeout");
        return;
    }
    if (wr_mux_ping(t->mux, wr_now_ns()) != 0)
        nd__tunc_close(t, WR_CODE_OK, "ping write failed");
}

/* ---- mux callbacks ------------------------------------------------------------ */

static int nd_tunc_mux_write(void *arg, const struct wr_slice *v, int n)
{
    struct nd_tunc *t = arg;
    if (t->conn == NULL)
        return WR_ECLOSED;
    int err = wr_conn_writev(t->conn, v, n);
    if (err == 0 && wr_conn_write_queued(t->conn) > WR_MUX_QUEUE_HIGH)
        wr_mux_set_congested(t->mux, true);
    return err;
}

static void nd_tunc_on_hello(struct nd_tunc *t, struct wr_slice msg)
{
    struct nd_node *n = t->node;
    struct wr_msg_hello *h = wr_xcalloc(1, sizeof(*h));
    const char *why = NULL;
    if (wr_msg_hello_decode(msg, h, &why) != 0) {
        nd_tunc_reject(t, WR_CODE_PROTOCOL, why ? why : "bad hello");
        goto out;
    }
    if (h->version != WR_WIRE_VERSION) {
        nd_tunc_reject(t, WR_CODE_VERSION, "unsupported version");
        goto out;
    }
    if (strcmp(h->role, WR_ROLE_AGENT) != 0) {
        nd_tunc_reject(t, WR_CODE_PROTOCOL, "unknown role");
        goto out;
    }
    struct wr_token_claims claims;
    int err = wr_token_verify(h->token, strlen(h->token), n->ca_pk, wr_wall_s(), &claims, &why);
    if (err != 0) {
        char reason[160];
        snprintf(reason, sizeof(reason), "token %s%s%s",
                 err == WR_EEXPIRED ? "expired"
                 : err == WR_EAUTH  ? "signature invalid"
                                    : "malformed",
                 why ? ": " : "", why ? why : "");
        nd_tunc_reject(t, WR_CODE_AUTH, reason);
        goto out;
    }
    if (strcmp(claims.tunnel, h->tunnel) != 0) {
        nd_tunc_reject(t, WR_CODE_AUTH, "token is for another tunnel");
        goto out;
    }
    if (h->weight < 1 || h->weight > claims.max_weight) {
        nd_tunc_reject(t, WR_CODE_AUTH, "weight above the token's maximum");
        goto out;
    }

    memcpy(t->tunnel, h->tunnel, sizeof(t->tunnel));
    memcpy(t->agent_id, h->agent_id, sizeof(t->agent_id));
    t->member.weight = h->weight;

    struct wr_msg_welcome *w = wr_xcalloc(1, sizeof(*w));
    w->version = WR_WIRE_VERSION;
    memcpy(w->node_id, n->node_id, sizeof(w->node_id));
    memcpy(w->cluster, n->cluster, sizeof(w->cluster));
    w->ping_interval_ms = n->cfg.ping_interval_ms;
    w->ping_timeout_ms = n->cfg.ping_timeout_ms;
    w->n_nodes = (uint32_t)nd__gossip_node_list(n, w->nodes, WR_MAX_NODES);
    struct wr_buf b = {0};
    err = wr_msg_welcome_encode(w, &b);
    free(w);
    if (err == 0)
        err = wr_mux_send_control(t->mux, wr_buf_peek(&b));
    wr_buf_free(&b);
    if (err != 0) {
        nd__tunc_close(t, WR_CODE_INTERNAL, "welcome failed");
        goto out;
    }
    nd_tunc_set_state(t, ND_TUNC_ST_READY, "hello accepted");
    nd__pool_add(&n->reg, t->tunnel, &t->member);
    t->in_pool = true;
    nd__gossip_publish(n);
    n->stats.agents_accepted++;
    uv_timer_start(&t->timer, nd_tunc_on_timer, n->cfg.ping_interval_ms, n->cfg.ping_interval_ms);
    char agent[WR_ID_MAX * 4 + 4];
    WR_INFO("node", "agent_ready", "conn=%llu tunnel=%s agent=%s weight=%u peer=%s services=%u",
            (unsigned long long)wr_conn_id(t->conn), t->tunnel,
            wr_log_esc(agent, sizeof(agent), t->agent_id, strlen(t->agent_id)), h->weight, t->peer,
            h->n_services);
out:
    free(h);
}

static void nd_tunc_on_control(struct wr_mux *m, struct wr_slice msg, void *arg)
{
    struct nd_tunc *t = arg;
    (void)m;
    int type = 0;
    const char *why = NULL;
    if (t->state == ND_TUNC_ST_CLOSING)
        return;
    if (wr_msg_peek_type(msg, &type, &why) != 0) {
        nd_tunc_reject(t, WR_CODE_PROTOCOL, why ? why : "control message is not msgpack");
        return;
    }
    switch (type) {
    case WR_MSG_HELLO:
        if (t->state != ND_TUNC_ST_AUTH) {
            nd_tunc_reject(t, WR_CODE_PROTOCOL, "duplicate hello");
            return;
        }
        nd_tunc_on_hello(t, msg);
        return;
    case WR_MSG_ERROR: {
        struct wr_msg_error e;
        if (wr_msg_error_decode(msg, &e, &why) == 0) {
            char esc[WR_ERRMSG_MAX * 4 + 4];
            WR_WARN("node", "agent_error", "conn=%llu code=%s message=%s",
                    (unsigned long long)wr_conn_id(t->conn), wr_proto_code_str(e.code),
                    wr_log_esc(esc, sizeof(esc), e.message, strlen(e.message)));
        }
        return;
    }
    default:
        if (t->state == ND_TUNC_ST_AUTH) {
            nd_tunc_reject(t, WR_CODE_PROTOCOL, "expected hello");
            return;
        }
        WR_DEBUG("node", "control_ignored", "conn=%llu type=%d",
                 (unsigned long long)wr_conn_id(t->conn), type);
        return;
    }
}

static void nd_tunc_on_pong(struct wr_mux *m, uint64_t opaque, void *arg)
{
    struct nd_tunc *t = arg;
    (void)m;
    uint64_t now = wr_now_ns();
    if (opaque <= now)
        t->rtt_us = (now - opaque) / 1000;
}

static void nd_tunc_on_mux_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct nd_tunc *t = arg;
    (void)m;
    if (t->state == ND_TUNC_ST_CLOSING)
        return;
    WR_WARN("node", "tunnel_protocol_error", "conn=%llu peer=%s err=%s reason=\"%s\"",
            (unsigned long long)wr_conn_id(t->conn), t->peer, wr_err_name(err), why);
    nd__tunc_close(t, err == WR_EFLOW ? WR_CODE_FLOW : WR_CODE_PROTOCOL, why);
}

static const struct wr_mux_cbs nd_tunc_mux_cbs = {
    .write = nd_tunc_mux_write,
    .on_control = nd_tunc_on_control,
    .on_pong = nd_tunc_on_pong,
    .on_error = nd_tunc_on_mux_error,
};

/* ---- connection callbacks ------------------------------------------------------ */

static void nd_tunc_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    if (t->state == ND_TUNC_ST_CLOSING)
        return;
    if (!nd_tunc_check_proxy(t, "connection failed before the header"))
        return;
    if (status != 0) {
        nd__node_count_reject(t->node, ND_REJECT_TLS);
        WR_WARN("node", "agent_tls_failed", "conn=%llu peer=%s err=%s",
                (unsigned long long)wr_conn_id(t->conn), t->peer, wr_err_name(status));
        nd__tunc_close(t, WR_CODE_OK, "tls handshake failed");
        return;
    }
    t->last_rx_ms = wr_now_ms();
    nd_tunc_set_state(t, ND_TUNC_ST_AUTH, "tls done");
}

static void nd_tunc_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    if (t->state == ND_TUNC_ST_CLOSING || t->mux == NULL)
        return;
    t->last_rx_ms = wr_now_ms();
    ssize_t r = wr_mux_feed(t->mux, wr_slice_make(data, len));
    (void)r; /* errors arrive through on_error */
}

static void nd_tunc_on_eof(struct wr_conn *c, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    nd__tunc_close(t, WR_CODE_OK, "agent closed the connection");
}

static void nd_tunc_on_error(struct wr_conn *c, int err, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    if (t->state == ND_TUNC_ST_CLOSING)
        return;
    char why[96];
    snprintf(why, sizeof(why), "connection error %s", wr_err_name(err));
    nd__tunc_close(t, WR_CODE_OK, why);
}

/* The agent took our queue: visitors' streams may send again. */
static void nd_tunc_on_drain(struct wr_conn *c, void *arg)
{
    struct nd_tunc *t = arg;
    (void)c;
    if (t->mux != NULL && t->state != ND_TUNC_ST_CLOSING)
        wr_mux_set_congested(t->mux, false);
}

static const struct wr_conn_cbs nd_tunc_conn_cbs = {
    .on_drain = nd_tunc_on_drain,
    .on_ready = nd_tunc_on_ready,
    .on_read = nd_tunc_on_read,
    .on_eof = nd_tunc_on_eof,
    .on_error = nd_tunc_on_error,
    .on_close = nd_tunc_on_conn_close,
};

void nd__tunc_accept(struct nd_node *n, uv_stream_t *server)
{
    struct nd_tunc *t = wr_xcalloc(1, sizeof(*t));
    t->node = n;
    t->member.owner = t;
    nd_list_init(&t->member.link);
    struct wr_conn_opts opts = {
        .tls = n->tls,
        .handshake_timeout_ms = n->cfg.hello_timeout_ms,
        .nodelay = true,
        /* A peer that stops reading cannot make us queue more than the
         * streams' windows allow, plus control traffic: past this it is cut. */
        .max_queue = 0,
        /* Trusted balancers send a PROXY header before the ClientHello; the
         * handshake deadline covers both. */
        .proxy_from = n->cfg.proxy_from,
        .n_proxy_from = n->cfg.n_proxy_from,
    };
    int err = 0;
    t->conn = wr_conn_accept(server, &opts, &nd_tunc_conn_cbs, t, &err);
    if (t->conn == NULL) {
        WR_WARN("node", "accept_failed", "err=%s", wr_err_name(err));
        free(t);
        return;
    }
    struct wr_mux_opts mo = {
        .initial_window = n->cfg.window,
        .max_streams = n->cfg.max_streams,
        .dialer = false,
    };
    t->mux = wr_mux_new(&mo, &nd_tunc_mux_cbs, t);
    if (t->mux == NULL)
        wr_fatal("what=out_of_memory");
    snprintf(t->peer, sizeof(t->peer), "%s", wr_conn_peer_str(t->conn));
    uv_timer_init(n->loop, &t->timer);
    t->timer.data = t;
    t->pending_closes = 2; /* conn + timer */
    t->state = ND_TUNC_ST_TLS;
    nd_list_insert_tail(&n->tuncs, &t->link);
    n->n_tuncs++;
    if (n->draining || n->n_tuncs > n->cfg.max_agents) {
        WR_WARN("node", "agent_refused", "peer=%s reason=%s", t->peer,
                n->draining ? "draining" : "max_agents");
        nd__node_count_reject(n, ND_REJECT_LIMIT);
        nd__tunc_close(t, WR_CODE_OK, "refused");
        return;
    }
    uv_timer_start(&t->timer, nd_tunc_on_timer, n->cfg.hello_timeout_ms, 0);
}

struct wr_mux_stream *nd__tunc_open_stream(struct nd_tunc *t, struct wr_slice hdr, int *err)
{
    if (t->state != ND_TUNC_ST_READY) {
        *err = WR_ECLOSED;
        return NULL;
    }
    return wr_mux_open(t->mux, hdr, NULL, NULL, err);
}

const char *nd__tunc_agent(const struct nd_tunc *t)
{
    return t->agent_id;
}

/* Drain: the agent opens nothing new here and frees its slot; the open
 * streams finish, then nd__node_drain_progress closes us. */
void nd__tunc_send_control(struct nd_tunc *t, struct wr_slice msg)
{
    if (t->state != ND_TUNC_ST_READY)
        return;
    if (wr_mux_send_control(t->mux, msg) != 0)
        nd__tunc_close(t, WR_CODE_INTERNAL, "control write failed");
}

void nd__tunc_goaway(struct nd_tunc *t)
{
    if (t->state < ND_TUNC_ST_READY) {
        nd__tunc_close(t, WR_CODE_SHUTDOWN, "node shutting down");
        return;
    }
    if (t->state != ND_TUNC_ST_READY)
        return;
    nd_tunc_leave_pool(t);
    nd_tunc_set_state(t, ND_TUNC_ST_DRAINING, "node draining");
    if (wr_mux_goaway(t->mux, WR_CODE_SHUTDOWN) != 0 || wr_mux_streams_open(t->mux) == 0)
        nd__tunc_close(t, WR_CODE_OK, "drained");
}

bool nd__tunc_drained(const struct nd_tunc *t)
{
    return t->state == ND_TUNC_ST_DRAINING && wr_mux_streams_open(t->mux) == 0;
}

struct nd_tunc *nd__tunc_from_link(struct nd_list *link)
{
    return wr_container_of(link, struct nd_tunc, link);
}

void nd__tunc_get_info(const struct nd_tunc *t, struct nd_tunc_info *out)
{
    out->tunnel = t->tunnel;
    out->agent_id = t->agent_id;
    out->peer = t->peer;
    out->state = nd_tunc_state_names[t->state];
    out->conn_id = t->conn != NULL ? wr_conn_id(t->conn) : 0;
    out->rtt_us = t->rtt_us;
    out->streams_open = t->mux != NULL ? wr_mux_streams_open(t->mux) : 0;
    out->weight = t->member.weight;
    out->in_pool = t->in_pool;
}
