/*
 * ag_agent.c: the agent's tunnel link and its dial loop: resolve the fleet
 * address, dial with TLS (verifying the node against the cluster CA), send
 * HELLO, wait for WELCOME, then serve the streams the node opens by dialing
 * the named local service. On any loss, back off (exponential, full jitter,
 * capped) and dial again. Relaying bytes is wr_relay's job.
 */
#include "ag_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ag_link_state {
    AG_LINK_ST_IDLE = 0,    /* nothing started */
    AG_LINK_ST_RESOLVING,   /* getaddrinfo on the fleet address */
    AG_LINK_ST_CONNECTING,  /* TCP connect and TLS handshake */
    AG_LINK_ST_REGISTERING, /* HELLO sent, waiting for WELCOME */
    AG_LINK_ST_READY,       /* registered; the node may open streams */
    AG_LINK_ST_DRAINING,    /* the node sent GOAWAY; open streams finish */
    AG_LINK_ST_CLOSING,     /* connection closing; then BACKOFF or stop */
    AG_LINK_ST_BACKOFF,     /* waiting out a jittered delay before the next dial */
    AG_LINK_ST__COUNT       /* must be last */
};

static const char *const ag_link_state_names[AG_LINK_ST__COUNT] = {
    "IDLE", "RESOLVING", "CONNECTING", "REGISTERING", "READY", "DRAINING", "CLOSING", "BACKOFF"};

#define AG_BIT(s) (1u << (s))
static const uint32_t ag_link_allowed[AG_LINK_ST__COUNT] = {
    [AG_LINK_ST_IDLE] = AG_BIT(AG_LINK_ST_RESOLVING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_RESOLVING] =
        AG_BIT(AG_LINK_ST_CONNECTING) | AG_BIT(AG_LINK_ST_BACKOFF) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_CONNECTING] = AG_BIT(AG_LINK_ST_REGISTERING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_REGISTERING] = AG_BIT(AG_LINK_ST_READY) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_READY] = AG_BIT(AG_LINK_ST_DRAINING) | AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_DRAINING] = AG_BIT(AG_LINK_ST_CLOSING),
    [AG_LINK_ST_CLOSING] = AG_BIT(AG_LINK_ST_BACKOFF) | AG_BIT(AG_LINK_ST_IDLE),
    [AG_LINK_ST_BACKOFF] = AG_BIT(AG_LINK_ST_RESOLVING) | AG_BIT(AG_LINK_ST_IDLE),
};

struct ag_link {
    struct ag_agent *agent;
    enum ag_link_state state;
    struct wr_conn *conn;
    struct wr_mux *mux;
    uv_getaddrinfo_t gai;
    uv_timer_t timer; /* backoff, HELLO deadline, then keepalive */
    bool gai_pending;
    uint32_t attempt; /* dials since the last READY */
    uint64_t last_rx_ms;
    uint64_t rtt_us;
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    char node_id[WR_ID_MAX + 1];
    char addr_str[WR_ADDR_STRLEN];
};

struct ag_agent {
    uv_loop_t *loop;
    struct ag_config cfg;
    char token[WR_TOKEN_MAX + 1];
    char sni[AG_HOST_MAX + 1];
    struct wr_tls_ctx *tls;
    struct ag_link link;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uint32_t n_relays;
    uint64_t streams_served, streams_refused, dials, registrations;
    int pending_closes;
    bool stopping;
};

static void ag_link_dial(struct ag_link *l);
static void ag_link_on_timer(uv_timer_t *t);

static void ag_link_set_state(struct ag_link *l, enum ag_link_state to, const char *reason)
{
    enum ag_link_state from = l->state;
    if (!(ag_link_allowed[from] & AG_BIT(to))) {
        WR_ERROR("agent", "link_bad_transition", "from=%s to=%s", ag_link_state_names[from],
                 ag_link_state_names[to]);
        WR_ASSERT(!"illegal link state transition");
    }
    l->state = to;
    WR_DEBUG("agent", "link_state", "from=%s to=%s reason=%s", ag_link_state_names[from],
             ag_link_state_names[to], reason);
}

/* ---- stop ----------------------------------------------------------------- */

static void ag_agent_on_handle_close(uv_handle_t *h)
{
    struct ag_agent *a = h->data;
    a->pending_closes--;
}

static void ag_agent_close_handle(struct ag_agent *a, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = a;
    a->pending_closes++;
    uv_close(h, ag_agent_on_handle_close);
}

/* Once stopping, and the link is idle and every relay finished, close the rest. */
static void ag_agent_maybe_stopped(struct ag_agent *a)
{
    if (!a->stopping || a->link.state != AG_LINK_ST_IDLE || a->link.gai_pending || a->n_relays > 0)
        return;
    ag_agent_close_handle(a, (uv_handle_t *)&a->link.timer);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_term);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_int);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_usr1);
}

/* ---- link teardown and backoff ---------------------------------------------- */

uint64_t ag__backoff_delay(uint32_t base_ms, uint32_t max_ms, uint32_t attempt, uint64_t rnd)
{
    if (attempt == 0)
        return 0; /* a link that was up is redialed at once */
    uint64_t ceil = base_ms;
    for (uint32_t i = 1; i < attempt && ceil < max_ms; i++)
        ceil *= 2;
    if (ceil > max_ms)
        ceil = max_ms;
    /* Full jitter (AWS architecture blog): spreads a fleet of agents that
     * lost the same node instead of having them redial in lockstep. */
    return rnd % (ceil + 1);
}

static void ag_link_schedule_dial(struct ag_link *l)
{
    struct ag_agent *a = l->agent;
    uint64_t delay =
        ag__backoff_delay(a->cfg.backoff_base_ms, a->cfg.backoff_max_ms, l->attempt, wr_rand64());
    ag_link_set_state(l, AG_LINK_ST_BACKOFF, "scheduled");
    WR_INFO("agent", "dial_scheduled", "attempt=%u delay_ms=%llu", l->attempt + 1,
            (unsigned long long)delay);
    uv_timer_start(&l->timer, ag_link_on_timer, delay, 0);
}

static void ag_link_on_conn_close(struct wr_conn *c, void *arg)
{
    struct ag_link *l = arg;
    struct ag_agent *a = l->agent;
    (void)c;
    l->conn = NULL;
    if (l->mux != NULL) {
        /* Outside any mux callback: the relays see their streams reset. */
        wr_mux_free(l->mux);
        l->mux = NULL;
    }
    if (a->stopping) {
        ag_link_set_state(l, AG_LINK_ST_IDLE, "stopped");
        ag_agent_maybe_stopped(a);
        return;
    }
    ag_link_schedule_dial(l);
}

static void ag_link_close(struct ag_link *l, const char *why)
{
    if (l->state == AG_LINK_ST_CLOSING || l->conn == NULL)
        return;
    WR_INFO("agent", "link_closed", "node=%s addr=%s state=%s reason=\"%s\"",
            l->node_id[0] ? l->node_id : "-", l->addr_str, ag_link_state_names[l->state], why);
    ag_link_set_state(l, AG_LINK_ST_CLOSING, why);
    uv_timer_stop(&l->timer);
    wr_conn_close(l->conn, true);
}

/* ---- keepalive and deadlines ------------------------------------------------ */

static void ag_link_on_timer(uv_timer_t *t)
{
    struct ag_link *l = t->data;
    switch (l->state) {
    case AG_LINK_ST_BACKOFF:
        ag_link_dial(l);
        return;
    case AG_LINK_ST_CONNECTING:
    case AG_LINK_ST_REGISTERING:
        ag_link_close(l, "no welcome before the deadline");
        return;
    case AG_LINK_ST_READY:
    case AG_LINK_ST_DRAINING: {
        uint64_t now = wr_now_ms();
        if (now - l->last_rx_ms >= l->ping_timeout_ms) {
            WR_WARN("agent", "node_silent", "node=%s silent_ms=%llu", l->node_id,
                    (unsigned long long)(now - l->last_rx_ms));
            ag_link_close(l, "keepalive timeout");
            return;
        }
        if (wr_mux_ping(l->mux, wr_now_ns()) != 0)
            ag_link_close(l, "ping write failed");
        return;
    }
    default:
        return;
    }
}

/* ---- streams from the node ---------------------------------------------------- */

static void ag_agent_on_relay_done(struct wr_relay *r, int err, const char *why, void *arg)
{
    struct ag_agent *a = arg;
    (void)r;
    a->n_relays--;
    if (err != 0)
        WR_DEBUG("agent", "stream_failed", "err=%s reason=%s", wr_err_name(err), why ? why : "-");
    ag_agent_maybe_stopped(a);
}

static void ag_agent_on_placeholder_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs ag_agent_placeholder_cbs = {
    .on_close = ag_agent_on_placeholder_close,
};

static void ag_link_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr,
                            void *arg)
{
    struct ag_link *l = arg;
    struct ag_agent *a = l->agent;
    (void)m;
    struct wr_msg_open o;
    const char *why = NULL;
    if (wr_msg_open_decode(hdr, &o, &why) != 0) {
        WR_WARN("agent", "stream_refused", "node=%s stream=%u reason=\"%s\"", l->node_id,
                wr_mux_stream_id(s), why ? why : "bad open header");
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_PROTOCOL);
        return;
    }
    const struct ag_service *svc = NULL;
    for (uint32_t i = 0; i < a->cfg.n_services; i++)
        if (strcmp(a->cfg.services[i].name, o.service) == 0)
            svc = &a->cfg.services[i];
    if (svc == NULL) {
        WR_WARN("agent", "stream_refused",
                "node=%s stream=%u service=%s reason=\"unknown "
                "service\"",
                l->node_id, wr_mux_stream_id(s), o.service);
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_REFUSED);
        return;
    }
    struct wr_conn_opts opts = {.nodelay = true};
    int err = 0;
    struct wr_conn *c = wr_conn_dial(a->loop, (const struct sockaddr *)&svc->addr, &opts,
                                     &ag_agent_placeholder_cbs, NULL, &err);
    if (c == NULL) {
        WR_WARN("agent", "service_dial_failed", "service=%s err=%s", svc->name, wr_err_name(err));
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_CONNECT);
        return;
    }
    a->streams_served++;
    a->n_relays++;
    WR_DEBUG("agent", "stream_open", "node=%s stream=%u service=%s client=%s", l->node_id,
             wr_mux_stream_id(s), svc->name, o.client_addr[0] ? o.client_addr : "-");
    wr_relay_new(c, s, ag_agent_on_relay_done, a);
}

/* ---- control messages ------------------------------------------------------------ */

static void ag_link_on_welcome(struct ag_link *l, struct wr_slice msg)
{
    struct ag_agent *a = l->agent;
    struct wr_msg_welcome *w = wr_xcalloc(1, sizeof(*w));
    const char *why = NULL;
    if (wr_msg_welcome_decode(msg, w, &why) != 0) {
        WR_WARN("agent", "bad_welcome", "reason=\"%s\"", why ? why : "-");
        ag_link_close(l, "malformed welcome");
        goto out;
    }
    memcpy(l->node_id, w->node_id, sizeof(l->node_id));
    /* The node's timers win when stricter than ours, so both ends agree on
     * when a silent link is dead. */
    l->ping_interval_ms = a->cfg.ping_interval_ms;
    l->ping_timeout_ms = a->cfg.ping_timeout_ms;
    if (w->ping_interval_ms > 0 && w->ping_interval_ms < l->ping_interval_ms)
        l->ping_interval_ms = w->ping_interval_ms;
    if (w->ping_timeout_ms > 0 && w->ping_timeout_ms < l->ping_timeout_ms)
        l->ping_timeout_ms = w->ping_timeout_ms;
    if (l->ping_timeout_ms < l->ping_interval_ms)
        l->ping_timeout_ms = l->ping_interval_ms;
    ag_link_set_state(l, AG_LINK_ST_READY, "welcome");
    l->attempt = 0;
    a->registrations++;
    uv_timer_start(&l->timer, ag_link_on_timer, l->ping_interval_ms, l->ping_interval_ms);
    WR_INFO("agent", "tunnel_ready", "node=%s cluster=%s addr=%s tunnel=%s cipher=%s nodes=%u",
            l->node_id, w->cluster, l->addr_str, a->cfg.tunnel,
            wr_conn_cipher(l->conn) ? wr_conn_cipher(l->conn) : "-", w->n_nodes);
out:
    free(w);
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
        ag_link_close(l, "control message is not msgpack");
        return;
    }
    switch (type) {
    case WR_MSG_WELCOME:
        if (l->state != AG_LINK_ST_REGISTERING) {
            ag_link_close(l, "unexpected welcome");
            return;
        }
        ag_link_on_welcome(l, msg);
        return;
    case WR_MSG_ERROR: {
        struct wr_msg_error e;
        if (wr_msg_error_decode(msg, &e, &why) != 0) {
            ag_link_close(l, "malformed error message");
            return;
        }
        char esc[WR_ERRMSG_MAX * 4 + 4];
        WR_ERROR("agent", "node_error", "addr=%s code=%s message=%s", l->addr_str,
                 wr_proto_code_str(e.code),
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
    if (l->state == AG_LINK_ST_READY)
        ag_link_set_state(l, AG_LINK_ST_DRAINING, "goaway");
}

static void ag_link_on_mux_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct ag_link *l = arg;
    (void)m;
    char reason[160];
    snprintf(reason, sizeof(reason), "protocol error %s: %s", wr_err_name(err), why);
    ag_link_close(l, reason);
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

/* ---- connection -------------------------------------------------------------------- */

static void ag_link_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct ag_link *l = arg;
    struct ag_agent *a = l->agent;
    (void)c;
    if (l->state != AG_LINK_ST_CONNECTING)
        return;
    if (status != 0) {
        char why[96];
        snprintf(why, sizeof(why), "dial failed: %s", wr_err_name(status));
        ag_link_close(l, why);
        return;
    }
    struct wr_msg_hello *h = wr_xcalloc(1, sizeof(*h));
    h->version = WR_WIRE_VERSION;
    snprintf(h->role, sizeof(h->role), "%s", WR_ROLE_AGENT);
    memcpy(h->tunnel, a->cfg.tunnel, sizeof(h->tunnel));
    memcpy(h->agent_id, a->cfg.agent_id, sizeof(h->agent_id));
    memcpy(h->token, a->token, sizeof(h->token));
    h->weight = a->cfg.weight;
    h->n_services = a->cfg.n_services;
    for (uint32_t i = 0; i < a->cfg.n_services; i++)
        memcpy(h->services[i], a->cfg.services[i].name, sizeof(h->services[i]));
    struct wr_buf b = {0};
    int err = wr_msg_hello_encode(h, &b);
    wr_memzero(h, sizeof(*h));
    free(h);
    if (err == 0)
        err = wr_mux_send_control(l->mux, wr_buf_peek(&b));
    wr_memzero(b.data, b.cap);
    wr_buf_free(&b);
    if (err != 0) {
        ag_link_close(l, "cannot send hello");
        return;
    }
    l->last_rx_ms = wr_now_ms();
    ag_link_set_state(l, AG_LINK_ST_REGISTERING, "hello sent");
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
    ag_link_close(arg, "node closed the connection");
}

static void ag_link_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)c;
    char why[96];
    snprintf(why, sizeof(why), "connection error %s", wr_err_name(err));
    ag_link_close(arg, why);
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
    wr_addr_str(sa, l->addr_str, sizeof(l->addr_str));
    l->node_id[0] = '\0';
    struct wr_conn_opts opts = {
        .tls = a->tls,
        .sni = a->sni,
        .handshake_timeout_ms = a->cfg.hello_timeout_ms,
        .nodelay = true,
    };
    struct wr_mux_opts mo = {
        .initial_window = a->cfg.window,
        .max_streams = a->cfg.max_streams,
        .dialer = true,
    };
    l->mux = wr_mux_new(&mo, &ag_link_mux_cbs, l);
    if (l->mux == NULL)
        wr_fatal("what=out_of_memory");
    ag_link_set_state(l, AG_LINK_ST_CONNECTING, "resolved");
    a->dials++;
    l->attempt++;
    int err = 0;
    l->conn = wr_conn_dial(a->loop, sa, &opts, &ag_link_conn_cbs, l, &err);
    if (l->conn == NULL) {
        WR_WARN("agent", "dial_failed", "addr=%s err=%s", l->addr_str, wr_err_name(err));
        wr_mux_free(l->mux);
        l->mux = NULL;
        /* CONNECTING -> CLOSING -> BACKOFF, as if the connection had closed. */
        ag_link_set_state(l, AG_LINK_ST_CLOSING, "dial failed");
        ag_link_schedule_dial(l);
        return;
    }
    /* The whole registration (TCP, TLS, HELLO/WELCOME) has one deadline. */
    uv_timer_start(&l->timer, ag_link_on_timer, a->cfg.hello_timeout_ms, 0);
}

static void ag_link_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ag_link *l = req->data;
    struct ag_agent *a = l->agent;
    l->gai_pending = false;
    if (a->stopping || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        if (l->state == AG_LINK_ST_RESOLVING) {
            ag_link_set_state(l, AG_LINK_ST_CLOSING, "stopped");
            ag_link_set_state(l, AG_LINK_ST_IDLE, "stopped");
        }
        ag_agent_maybe_stopped(a);
        return;
    }
    if (status != 0 || res == NULL) {
        WR_WARN("agent", "resolve_failed", "host=%s err=%s", a->cfg.proxy_host,
                wr_err_name(status));
        uv_freeaddrinfo(res);
        l->attempt++;
        ag_link_schedule_dial(l);
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

static void ag_link_dial(struct ag_link *l)
{
    struct ag_agent *a = l->agent;
    ag_link_set_state(l, AG_LINK_ST_RESOLVING, "dial");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    l->gai.data = l;
    int err = uv_getaddrinfo(a->loop, &l->gai, ag_link_on_resolved, a->cfg.proxy_host,
                             a->cfg.proxy_port, &hints);
    if (err != 0) {
        WR_WARN("agent", "resolve_failed", "host=%s err=%s", a->cfg.proxy_host, wr_err_name(err));
        l->attempt++;
        ag_link_schedule_dial(l);
        return;
    }
    l->gai_pending = true;
}

/* ---- the agent ------------------------------------------------------------------------ */

void ag_config_init(struct ag_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->weight = 1;
    cfg->ping_interval_ms = 5000;
    cfg->ping_timeout_ms = 10000;
    cfg->hello_timeout_ms = 10000;
    cfg->backoff_base_ms = 250;
    cfg->backoff_max_ms = 30000;
    cfg->window = WR_MUX_DEFAULT_WINDOW;
    cfg->max_streams = 4096;
}

static void ag_agent_log_status(struct ag_agent *a)
{
    const struct ag_link *l = &a->link;
    WR_INFO("agent", "status",
            "tunnel=%s state=%s node=%s addr=%s rtt_us=%llu relays=%u streams=%llu "
            "refused=%llu dials=%llu registrations=%llu",
            a->cfg.tunnel, ag_link_state_names[l->state], l->node_id[0] ? l->node_id : "-",
            l->addr_str[0] ? l->addr_str : "-", (unsigned long long)l->rtt_us, a->n_relays,
            (unsigned long long)a->streams_served, (unsigned long long)a->streams_refused,
            (unsigned long long)a->dials, (unsigned long long)a->registrations);
}

static void ag_agent_on_signal(uv_signal_t *sig, int signum)
{
    struct ag_agent *a = sig->data;
    if (signum == SIGUSR1) {
        ag_agent_log_status(a);
        return;
    }
    WR_INFO("agent", "signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ag_agent_stop(a);
}

struct ag_agent *ag_agent_new(uv_loop_t *loop, const struct ag_config *cfg, int *err)
{
    struct ag_agent *a = wr_xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->cfg = *cfg;
    char *tok = NULL;
    size_t toklen = 0;
    *err = wr_read_file(cfg->token_file, WR_TOKEN_MAX + 64, &tok, &toklen);
    if (*err != 0) {
        WR_ERROR("agent", "config", "what=\"cannot read the token file\" file=%s err=%s",
                 cfg->token_file, wr_err_name(*err));
        goto fail;
    }
    while (toklen > 0 && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r' ||
                          tok[toklen - 1] == ' ' || tok[toklen - 1] == '\t'))
        toklen--;
    if (toklen == 0 || toklen > WR_TOKEN_MAX) {
        WR_ERROR("agent", "config", "what=\"the token file holds no token\" file=%s",
                 cfg->token_file);
        wr_memzero(tok, toklen);
        free(tok);
        *err = WR_EUSAGE;
        goto fail;
    }
    memcpy(a->token, tok, toklen);
    a->token[toklen] = '\0';
    wr_memzero(tok, toklen);
    free(tok);
    if (cfg->sni != NULL) {
        snprintf(a->sni, sizeof(a->sni), "%s", cfg->sni);
    } else {
        *err = wr_cert_ca_cluster(cfg->ca_file, a->sni, sizeof(a->sni));
        if (*err != 0) {
            WR_ERROR("agent", "config", "what=\"cannot read the CA certificate\" file=%s err=%s",
                     cfg->ca_file, wr_err_name(*err));
            goto fail;
        }
    }
    a->tls = wr_tls_ctx_new_client(cfg->ca_file, err);
    if (a->tls == NULL) {
        WR_ERROR("agent", "config", "what=\"cannot load the CA certificate\" file=%s err=%s",
                 cfg->ca_file, wr_err_name(*err));
        goto fail;
    }
    a->link.agent = a;
    a->link.state = AG_LINK_ST_IDLE;
    uv_timer_init(loop, &a->link.timer);
    a->link.timer.data = &a->link;
    return a;
fail:
    wr_memzero(a->token, sizeof(a->token));
    free(a);
    return NULL;
}

int ag_agent_start(struct ag_agent *a)
{
    uv_signal_init(a->loop, &a->sig_term);
    uv_signal_init(a->loop, &a->sig_int);
    uv_signal_init(a->loop, &a->sig_usr1);
    a->sig_term.data = a->sig_int.data = a->sig_usr1.data = a;
    uv_signal_start(&a->sig_term, ag_agent_on_signal, SIGTERM);
    uv_signal_start(&a->sig_int, ag_agent_on_signal, SIGINT);
    uv_signal_start(&a->sig_usr1, ag_agent_on_signal, SIGUSR1);
    WR_INFO("agent", "starting", "agent=%s tunnel=%s proxy=%s:%s sni=%s weight=%u services=%u",
            a->cfg.agent_id, a->cfg.tunnel, a->cfg.proxy_host, a->cfg.proxy_port, a->sni,
            a->cfg.weight, a->cfg.n_services);
    ag_link_dial(&a->link);
    return 0;
}

void ag_agent_stop(struct ag_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    struct ag_link *l = &a->link;
    uv_timer_stop(&l->timer);
    switch (l->state) {
    case AG_LINK_ST_BACKOFF:
        ag_link_set_state(l, AG_LINK_ST_IDLE, "stopped");
        break;
    case AG_LINK_ST_RESOLVING:
        uv_cancel((uv_req_t *)&l->gai);
        break;
    case AG_LINK_ST_IDLE:
    case AG_LINK_ST_CLOSING:
        break;
    default:
        ag_link_close(l, "agent stopping");
        break;
    }
    ag_agent_maybe_stopped(a);
}

void ag_agent_free(struct ag_agent *a)
{
    ag_agent_log_status(a);
    wr_tls_ctx_free(a->tls);
    wr_memzero(a->token, sizeof(a->token));
    free(a);
}
