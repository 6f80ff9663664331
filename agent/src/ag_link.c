/*
 * ag_link.c: one tunnel connection of the agent: resolve, dial with TLS
 * (verifying the node against the cluster CA), learn the node's name from
 * its certificate (so a dial that lands on a node already held is closed
 * before any work), send HELLO, wait for WELCOME, then keep it alive with
 * PINGs and pass streams, discovery lists and GOAWAY up to the agent. A link
 * lives for one connection: the agent decides whether and when to dial
 * again (ag_agent.c, ag_pool.c).
 */
#include "ag_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ag_link_state_names[AG_LINK_ST__COUNT] = {
    "RESOLVING", "CONNECTING", "REGISTERING", "READY", "DRAINING", "CLOSING"};

#define AG_BIT(s) (1u << (s))
static const uint32_t ag_link_allowed[AG_LINK_ST__COUNT] = {
    [AG_LINK_ST_RESOLVING] = AG_BIT(AG_LINK_ST_CONNECTING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_CONNECTING] = AG_BIT(AG_LINK_ST_REGISTERING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_REGISTERING] = AG_BIT(AG_LINK_ST_READY) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_READY] = AG_BIT(AG_LINK_ST_DRAINING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_DRAINING] = AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_CLOSING] = 0,
};

const char *ag__link_state_str(enum ag_link_state s)
{
    return s < AG_LINK_ST__COUNT ? ag_link_state_names[s] : "?";
}

static void ag_link_set_state(struct ag_link *l, enum ag_link_state to, const char *reason)
{
    enum ag_link_state from = l->state;
    if (!(ag_link_allowed[from] & AG_BIT(to))) {
        WR_ERROR("agent", "link_bad_transition", "from=%s to=%s", ag_link_state_names[from],
                 ag_link_state_names[to]);
        WR_ASSERT(!"illegal link state transition");
    }
    l->state = to;
    WR_DEBUG("agent", "link_state", "target=%s from=%s to=%s reason=%s",
             l->target[0] ? l->target : "-", ag_link_state_names[from], ag_link_state_names[to],
             reason);
}

size_t ag__link_streams(const struct ag_link *l)
{
    return l->mux != NULL ? wr_mux_streams_open(l->mux) : 0;
}

/* ---- teardown: conn, then the timer, then the agent frees the link ---------- */

static void ag_link_on_timer_closed(uv_handle_t *h)
{
    struct ag_link *l = h->data;
    ag__agent_link_gone(l->agent, l);
}

/* Every I/O is over (no conn, no resolve in flight): release the timer. */
static void ag_link_release(struct ag_link *l)
{
    if (l->conn != NULL || l->gai_pending || uv_is_closing((uv_handle_t *)&l->timer))
        return;
    uv_close((uv_handle_t *)&l->timer, ag_link_on_timer_closed);
}

static void ag_link_on_conn_close(struct wr_conn *c, void *arg)
{
    struct ag_link *l = arg;
    (void)c;
    l->conn = NULL;
    if (l->mux != NULL) {
        /* Outside any mux callback: the relays see their streams reset. */
        wr_mux_free(l->mux);
        l->mux = NULL;
    }
    ag_link_release(l);
}

void ag__link_close(struct ag_link *l, const char *why)
{
    if (l->state == AG_LINK_ST_CLOSING)
        return;
    /* A duplicate is routine (a blind dial found a node we hold): debug. */
    if (l->duplicate)
        WR_DEBUG("agent", "link_closed", "node=%s target=%s addr=%s state=%s reason=\"%s\"",
                 l->node_id[0] ? l->node_id : "-", l->target[0] ? l->target : "-", l->addr_str,
                 ag_link_state_names[l->state], why);
    else
        WR_INFO("agent", "link_closed", "node=%s target=%s addr=%s state=%s reason=\"%s\"",
                l->node_id[0] ? l->node_id : "-", l->target[0] ? l->target : "-",
                l->addr_str[0] ? l->addr_str : "-", ag_link_state_names[l->state], why);
    bool resolving = l->state == AG_LINK_ST_RESOLVING;
    ag_link_set_state(l, AG_LINK_ST_CLOSING, why);
    uv_timer_stop(&l->timer);
    if (resolving && l->gai_pending)
        uv_cancel((uv_req_t *)&l->gai); /* the callback still runs, with ECANCELED */
    if (l->conn != NULL)
        wr_conn_close(l->conn, true);
    else
        ag_link_release(l);
}

/* ---- keepalive and deadlines ------------------------------------------------ */

static void ag_link_on_timer(uv_timer_t *t)
{
    struct ag_link *l = t->data;
    switch (l->state) {
    case AG_LINK_ST_CONNECTING:
    case AG_LINK_ST_REGISTERING:
        ag__link_close(l, "no welcome before the deadline");
        return;
    case AG_LINK_ST_READY:
    case AG_LINK_ST_DRAINING: {
        uint64_t now = wr_now_ms();
        if (now - l->last_rx_ms >= l->ping_timeout_ms) {
            WR_WARN("agent", "node_silent", "node=%s silent_ms=%llu", l->node_id,
                    (unsigned long long)(now - l->last_rx_ms));
            ag__link_close(l, "keepalive timeout");
            return;
        }
        if (l->close_when_idle && ag__link_streams(l) == 0) {
            ag__link_close(l, "node left the cluster");
            return;
        }
        if (wr_mux_ping(l->mux, wr_now_ns()) != 0)
            ag__link_close(l, "ping write failed");
        return;
    }
    default:
        return;
    }
}

/* ---- mux callbacks ----------------------------------------------------------- */

static void ag_link_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr,
                            void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    ag__agent_link_open(l->agent, l, s, hdr);
}

static void ag_link_on_welcome(struct ag_link *l, struct wr_slice msg)
{
    struct ag_agent *a = l->agent;
    const struct ag_config *cfg = ag__agent_cfg(a);
    struct wr_msg_welcome *w = wr_xcalloc(1, sizeof(*w));
    const char *why = NULL;
    if (wr_msg_welcome_decode(msg, w, &why) != 0) {
        WR_WARN("agent", "bad_welcome", "reason=\"%s\"", why ? why : "-");
        ag__link_close(l, "malformed welcome");
        goto out;
    }
    if (strcmp(w->node_id, l->node_id) != 0) {
        char esc[WR_ID_MAX * 4 + 4];
        WR_WARN("agent", "bad_welcome",
                "reason=\"node id differs from the certificate\" cert=%s "
                "welcome=%s",
                l->node_id, wr_log_esc(esc, sizeof(esc), w->node_id, strlen(w->node_id)));
        ag__link_close(l, "welcome names another node");
        goto out;
    }
    /* The node's timers win when stricter than ours, so both ends agree on
     * when a silent link is dead. */
    l->ping_interval_ms = cfg->ping_interval_ms;
    l->ping_timeout_ms = cfg->ping_timeout_ms;
    if (w->ping_interval_ms > 0 && w->ping_interval_ms < l->ping_interval_ms)
        l->ping_interval_ms = w->ping_interval_ms;
    if (w->ping_timeout_ms > 0 && w->ping_timeout_ms < l->ping_timeout_ms)
        l->ping_timeout_ms = w->ping_timeout_ms;
    if (l->ping_timeout_ms < l->ping_interval_ms)
        l->ping_timeout_ms = l->ping_interval_ms;
    ag_link_set_state(l, AG_LINK_ST_READY, "welcome");
    l->was_ready = true;
    uv_timer_start(&l->timer, ag_link_on_timer, l->ping_interval_ms, l->ping_interval_ms);
    WR_INFO("agent", "tunnel_ready", "node=%s cluster=%s addr=%s tunnel=%s cipher=%s nodes=%u",
            l->node_id, w->cluster, l->addr_str, cfg->tunnel,
            wr_conn_cipher(l->conn) ? wr_conn_cipher(l->conn) : "-", w->n_nodes);
    ag__agent_link_ready(a, l, w);
out:
    free(w);
}

static void ag_link_on_discovery(struct ag_link *l, struct wr_slice msg)
{
    struct wr_msg_discovery *d = wr_xcalloc(1, sizeof(*d));
    const char *why = NULL;
    if (wr_msg_discovery_decode(msg, d, &why) != 0) {
        WR_WARN("agent", "bad_discovery", "node=%s reason=\"%s\"", l->node_id, why ? why : "-");
        ag__link_close(l, "malformed discovery list");
    } else {
        ag__agent_link_discovery(l->agent, l, d);
    }
    free(d);
}

static void ag_link_on_control(struct wr_mux *m, struct wr_slice msg, void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    int type = 0;
    const char *why = NULL;
    if (l->state == AG_LINK_ST_CLOSING)
        return;
    if (wr_msg_peek_type(msg, &type, &why) != 0) {
        ag__link_close(l, "control message is not msgpack");
        return;
    }
    switch (type) {
    case WR_MSG_WELCOME:
        if (l->state != AG_LINK_ST_REGISTERING) {
            ag__link_close(l, "unexpected welcome");
            return;
        }
        ag_link_on_welcome(l, msg);
        return;
    case WR_MSG_DISCOVERY:
        if (l->state != AG_LINK_ST_READY && l->state != AG_LINK_ST_DRAINING) {
            ag__link_close(l, "discovery before welcome");
            return;
        }
        ag_link_on_discovery(l, msg);
        return;
    case WR_MSG_ERROR: {
        struct wr_msg_error e;
        if (wr_msg_error_decode(msg, &e, &why) != 0) {
            ag__link_close(l, "malformed error message");
            return;
        }
        char esc[WR_ERRMSG_MAX * 4 + 4];
        WR_ERROR("agent", "node_error", "node=%s addr=%s code=%s message=%s",
                 l->node_id[0] ? l->node_id : "-", l->addr_str, wr_proto_code_str(e.code),
                 wr_log_esc(esc, sizeof(esc), e.message, strlen(e.message)));
        return;
    }
    default:
        WR_DEBUG("agent", "control_ignored", "type=%d", type);
        return;
    }
}

static void ag_link_on_pong(struct wr_mux *m, uint64_t opaque, void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    uint64_t now = wr_now_ns();
    if (opaque <= now)
        l->rtt_us = (now - opaque) / 1000;
}

static void ag_link_on_goaway(struct wr_mux *m, uint32_t last_stream, uint32_t code, void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    (void)last_stream;
    WR_INFO("agent", "node_goaway", "node=%s code=%s streams=%u", l->node_id,
            wr_proto_code_str(code), wr_mux_streams_open(l->mux));
    if (l->state == AG_LINK_ST_READY) {
        ag_link_set_state(l, AG_LINK_ST_DRAINING, "goaway");
        ag__agent_link_goaway(l->agent, l);
    } else if (l->state != AG_LINK_ST_DRAINING) {
        ag__link_close(l, "goaway before registration");
    }
}

static void ag_link_on_mux_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    char reason[160];
    snprintf(reason, sizeof(reason), "protocol error %s: %s", wr_err_name(err), why);
    ag__link_close(l, reason);
}

static int ag_link_mux_write(void *arg, const struct wr_slice *v, int n)
{
    struct ag_link *l = arg;
    if (l->conn == NULL)
        return WR_ECLOSED;
    int err = wr_conn_writev(l->conn, v, n);
    if (err == 0 && wr_conn_write_queued(l->conn) > WR_MUX_QUEUE_HIGH)
        wr_mux_set_congested(l->mux, true);
    return err;
}

static const struct wr_mux_cbs ag_link_mux_cbs = {
    .write = ag_link_mux_write,
    .on_open = ag_link_on_open,
    .on_control = ag_link_on_control,
    .on_pong = ag_link_on_pong,
    .on_goaway = ag_link_on_goaway,
    .on_error = ag_link_on_mux_error,
};

/* ---- connection ----------------------------------------------------------------- */

static void ag_link_send_hello(struct ag_link *l)
{
    const struct ag_config *cfg = ag__agent_cfg(l->agent);
    struct wr_msg_hello *h = wr_xcalloc(1, sizeof(*h));
    h->version = WR_WIRE_VERSION;
    snprintf(h->role, sizeof(h->role), "%s", WR_ROLE_AGENT);
    memcpy(h->tunnel, cfg->tunnel, sizeof(h->tunnel));
    memcpy(h->agent_id, cfg->agent_id, sizeof(h->agent_id));
    snprintf(h->token, sizeof(h->token), "%s", ag__agent_token(l->agent));
    h->weight = cfg->weight;
    h->n_services = cfg->n_services;
    for (uint32_t i = 0; i < cfg->n_services; i++)
        memcpy(h->services[i], cfg->services[i].name, sizeof(h->services[i]));
    struct wr_buf b = {0};
    int err = wr_msg_hello_encode(h, &b);
    wr_memzero(h, sizeof(*h));
    free(h);
    if (err == 0)
        err = wr_mux_send_control(l->mux, wr_buf_peek(&b));
    wr_memzero(b.data, b.cap);
    wr_buf_free(&b);
    if (err != 0) {
        ag__link_close(l, "cannot send hello");
        return;
    }
    l->last_rx_ms = wr_now_ms();
    ag_link_set_state(l, AG_LINK_ST_REGISTERING, "hello sent");
}

static void ag_link_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct ag_link *l = arg;
    if (l->state != AG_LINK_ST_CONNECTING)
        return;
    if (status != 0) {
        char why[96];
        snprintf(why, sizeof(why), "dial failed: %s", wr_err_name(status));
        ag__link_close(l, why);
        return;
    }
    const char *cn = wr_conn_peer_cn(c);
    if (cn == NULL || !wr_id_is_valid(cn, strlen(cn))) {
        ag__link_close(l, "node certificate has no valid node id");
        return;
    }
    snprintf(l->node_id, sizeof(l->node_id), "%s", cn);
    l->identified = true;
    /* Known before any work: a node we already hold costs no HELLO. */
    if (!ag__agent_link_identified(l->agent, l)) {
        l->duplicate = true;
        ag__link_close(l, "node already held");
        return;
    }
    ag_link_send_hello(l);
}

static void ag_link_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct ag_link *l = arg;
    (void)c;
    if (l->state == AG_LINK_ST_CLOSING || l->mux == NULL)
        return;
    l->last_rx_ms = wr_now_ms();
    ssize_t r = wr_mux_feed(l->mux, wr_slice_make(data, len));
    (void)r; /* errors arrive through on_error */
}

static void ag_link_on_eof(struct wr_conn *c, void *arg)
{
    (void)c;
    ag__link_close(arg, "node closed the connection");
}

static void ag_link_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)c;
    char why[96];
    snprintf(why, sizeof(why), "connection error %s", wr_err_name(err));
    ag__link_close(arg, why);
}

/* The node took our queue: the services' streams may send again. */
static void ag_link_on_drain(struct wr_conn *c, void *arg)
{
    struct ag_link *l = arg;
    (void)c;
    if (l->mux != NULL && l->state != AG_LINK_ST_CLOSING)
        wr_mux_set_congested(l->mux, false);
}

static const struct wr_conn_cbs ag_link_conn_cbs = {
    .on_drain = ag_link_on_drain,
    .on_ready = ag_link_on_ready,
    .on_read = ag_link_on_read,
    .on_eof = ag_link_on_eof,
    .on_error = ag_link_on_error,
    .on_close = ag_link_on_conn_close,
};

static void ag_link_connect(struct ag_link *l, const struct sockaddr *sa)
{
    struct ag_agent *a = l->agent;
    const struct ag_config *cfg = ag__agent_cfg(a);
    wr_addr_str(sa, l->addr_str, sizeof(l->addr_str));
    struct wr_conn_opts opts = {
        .tls = ag__agent_tls(a),
        .sni = l->sni,
        .handshake_timeout_ms = cfg->hello_timeout_ms,
        .nodelay = true,
    };
    struct wr_mux_opts mo = {
        .initial_window = cfg->window,
        .max_streams = cfg->max_streams,
        .dialer = true,
    };
    l->mux = wr_mux_new(&mo, &ag_link_mux_cbs, l);
    if (l->mux == NULL)
        wr_fatal("what=out_of_memory");
    ag_link_set_state(l, AG_LINK_ST_CONNECTING, "resolved");
    int err = 0;
    l->conn = wr_conn_dial(ag__agent_loop(a), sa, &opts, &ag_link_conn_cbs, l, &err);
    if (l->conn == NULL) {
        wr_mux_free(l->mux);
        l->mux = NULL;
        char why[96];
        snprintf(why, sizeof(why), "dial failed: %s", wr_err_name(err));
        ag__link_close(l, why);
        return;
    }
    /* The whole registration (TCP, TLS, HELLO/WELCOME) has one deadline. */
    uv_timer_start(&l->timer, ag_link_on_timer, cfg->hello_timeout_ms, 0);
}

static void ag_link_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ag_link *l = req->data;
    l->gai_pending = false;
    if (l->state == AG_LINK_ST_CLOSING || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        if (l->state != AG_LINK_ST_CLOSING)
            ag__link_close(l, "resolve cancelled");
        else
            ag_link_release(l);
        return;
    }
    if (status != 0 || res == NULL) {
        WR_WARN("agent", "resolve_failed", "host=%s err=%s", l->host, wr_err_name(status));
        uv_freeaddrinfo(res);
        ag__link_close(l, "cannot resolve");
        return;
    }
    /* Several addresses: pick one at random so agents spread over them. */
    int n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    int k = (int)wr_rand_below((uint32_t)n);
    struct addrinfo *ai = res;
    while (k-- > 0)
        ai = ai->ai_next;
    ag_link_connect(l, ai->ai_addr);
    uv_freeaddrinfo(res);
}

void ag__link_start(struct ag_link *l)
{
    uv_loop_t *loop = ag__agent_loop(l->agent);
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->state = AG_LINK_ST_RESOLVING;
    /* A numeric address needs no resolver thread. */
    struct sockaddr_storage ss;
    char hp[AG_HOST_MAX + 16];
    snprintf(hp, sizeof(hp), strchr(l->host, ':') ? "[%s]:%s" : "%s:%s", l->host, l->port);
    if (wr_addr_parse(hp, &ss) == 0) {
        ag_link_connect(l, (const struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    l->gai.data = l;
    int err = uv_getaddrinfo(loop, &l->gai, ag_link_on_resolved, l->host, l->port, &hints);
    if (err != 0) {
        WR_WARN("agent", "resolve_failed", "host=%s err=%s", l->host, wr_err_name(err));
        ag__link_close(l, "cannot resolve");
        return;
    }
    l->gai_pending = true;
}
