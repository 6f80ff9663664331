/*
 * lb_conn.c: one client connection through warren-lb. In sni and http mode
 * it peeks the ClientHello / request head into a bounded buffer (never
 * terminating TLS, never rewriting HTTP), routes the name, dials a backend
 * (one retry on another backend when the dial fails), writes the optional
 * PROXY v2 header and the peeked bytes, then relays both ways with
 * backpressure and half-close. Listeners and the cap are lb_lb.c's; picking
 * and backend state are lb_backend.c's.
 *
 * Lifetime: the object lives until the on_close of its last wr_conn (the
 * client, the backend, and a failed dial being closed), counted in n_open.
 */
#include "lb_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_http.h"
#include "lb_route.h"
#include "lb_sni.h"

#define LB_PEEK_MAX 16384 /* == LB_SNI_PEEK_MAX == LB_HTTP_HEAD_MAX */
_Static_assert(LB_PEEK_MAX >= LB_SNI_PEEK_MAX && LB_PEEK_MAX >= LB_HTTP_HEAD_MAX, "peek bound");
/* Beyond the head, what one read may bring (pipelined requests, a body):
 * kept and forwarded, but never more than this in total. */
#define LB_PEEK_HOLD_MAX (LB_PEEK_MAX + 65536)
#define LB_DIAL_ATTEMPTS 2 /* the first dial and one retry on another backend */

struct lb_conn {
    struct lb_list link; /* in lb->conns */
    struct lb *lb;
    struct lb_listener *l;
    struct wr_conn *client;
    struct wr_conn *server;     /* the dial in flight, or the relayed backend */
    struct lb_backend *backend; /* counted in backend->active while set */
    struct lb_set *set;         /* where a retry picks from; NULL for a node route */
    struct lb_backend *node;    /* a node route's one backend */
    enum lb_conn_state state;   /* written by lb_conn_set_state only */
    uint64_t id;
    uint64_t deadline_ms; /* ACCEPTED: the peek's; CONNECTING: the dial's;
                             relaying: the idle timeout's (UINT64_MAX: none) */
    struct wr_buf peek;   /* client bytes not yet sent to a backend */
    char name[LB_SNI_NAME_MAX + 1];
    uint32_t attempts;
    int n_open; /* wr_conns whose on_close is still to come */
    bool client_eof, server_eof;
    bool client_paused, server_paused; /* reading stopped: the other side's queue is full */
    bool outcome_set;
    enum lb_outcome outcome;
    uint64_t bytes_up, bytes_down;
};

static const char *const lb_conn_state_names[LB_CONN_ST__COUNT] = {
    "ACCEPTED", "CONNECTING", "RELAYING", "HALF_CLOSED", "CLOSING"};

const char *lb_conn_state_str(enum lb_conn_state s)
{
    return s < LB_CONN_ST__COUNT ? lb_conn_state_names[s] : "?";
}

static const char *const lb_outcome_names[LB_OUT__COUNT] = {
#define LB_OUTCOME_STR_(name, str) str,
    LB_OUTCOME_MAP(LB_OUTCOME_STR_)
#undef LB_OUTCOME_STR_
};

const char *lb_outcome_str(enum lb_outcome o)
{
    return o < LB_OUT__COUNT ? lb_outcome_names[o] : "?";
}

#define LB_BIT(s) (1u << (s))
static const uint32_t lb_conn_allowed[LB_CONN_ST__COUNT] = {
    [LB_CONN_ST_ACCEPTED] = LB_BIT(LB_CONN_ST_CONNECTING) | LB_BIT(LB_CONN_ST_CLOSING),
    [LB_CONN_ST_CONNECTING] = LB_BIT(LB_CONN_ST_CONNECTING) | LB_BIT(LB_CONN_ST_RELAYING) |
                              LB_BIT(LB_CONN_ST_HALF_CLOSED) | LB_BIT(LB_CONN_ST_CLOSING),
    [LB_CONN_ST_RELAYING] = LB_BIT(LB_CONN_ST_HALF_CLOSED) | LB_BIT(LB_CONN_ST_CLOSING),
    [LB_CONN_ST_HALF_CLOSED] = LB_BIT(LB_CONN_ST_CLOSING),
    [LB_CONN_ST_CLOSING] = 0,
};

/* The one writer of c->state. */
static void lb_conn_set_state(struct lb_conn *c, enum lb_conn_state to)
{
    if (!(lb_conn_allowed[c->state] & LB_BIT(to))) {
        WR_ERROR("lb", "conn_bad_transition", "conn=%llu from=%s to=%s", (unsigned long long)c->id,
                 lb_conn_state_str(c->state), lb_conn_state_str(to));
        WR_ASSERT(!"lb_conn transition");
    }
    WR_TRACE("lb", "conn_state", "conn=%llu from=%s to=%s", (unsigned long long)c->id,
             lb_conn_state_str(c->state), lb_conn_state_str(to));
    c->state = to;
}

static void lb_conn_set_backend(struct lb_conn *c, struct lb_backend *b)
{
    if (c->backend != NULL)
        c->backend->active--;
    c->backend = b;
    if (b != NULL)
        b->active++;
}

/* Closes both sides; <flush> lets queued bytes (an alert, an error page, the
 * tail of a relay) go out first. The outcome is counted once. */
static void lb_conn_close(struct lb_conn *c, enum lb_outcome o, bool flush)
{
    if (c->state == LB_CONN_ST_CLOSING)
        return;
    if (!c->outcome_set) {
        c->outcome_set = true;
        c->outcome = o;
    }
    lb_conn_set_state(c, LB_CONN_ST_CLOSING);
    wr_conn_close(c->client, flush);
    if (c->server != NULL)
        wr_conn_close(c->server, flush);
}

/* Refuses the client before any backend took it: logs why, sends <msg>
 * (a TLS alert or an HTTP page) when there is one, closes. */
static void lb_conn_refuse(struct lb_conn *c, enum lb_outcome o, const char *detail,
                           const char *msg, size_t len)
{
    char name[96];
    wr_log_esc(name, sizeof(name), c->name, strlen(c->name));
    WR_INFO("lb", "conn_refused",
            "conn=%llu listener=%s mode=%s client=%s reason=%s name=%s detail=\"%s\"",
            (unsigned long long)c->id, c->l->addr_str, lb_mode_str(c->l->cfg.mode),
            wr_conn_peer_str(c->client), lb_outcome_str(o), name[0] ? name : "-",
            detail ? detail : "");
    if (msg != NULL && len > 0 && c->state != LB_CONN_ST_CLOSING &&
        wr_conn_write(c->client, (const uint8_t *)msg, len) == 0) {
        lb_conn_close(c, o, true);
        return;
    }
    lb_conn_close(c, o, false);
}

static void lb_conn_refuse_http(struct lb_conn *c, enum lb_outcome o, const char *detail,
                                int status)
{
    size_t len = 0;
    const char *msg = NULL;
    if (c->l->cfg.mode == LB_MODE_HTTP)
        msg = lb_http_response(status, &len);
    lb_conn_refuse(c, o, detail, msg, len);
}

/* ---- relaying ------------------------------------------------------------------------ */

/* Bytes from one side to the other; reading the source pauses while the
 * destination holds more than LB_RELAY_HIGH unwritten (on_drain resumes). */
static void lb_conn_relay(struct lb_conn *c, bool from_client, const uint8_t *data, size_t len)
{
    struct wr_conn *dst = from_client ? c->server : c->client;
    struct wr_conn *src = from_client ? c->client : c->server;
    int err = wr_conn_write(dst, data, len);
    if (err != 0) {
        WR_DEBUG("lb", "relay_write_failed", "conn=%llu err=%s", (unsigned long long)c->id,
                 wr_err_name(err));
        lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
        return;
    }
    if (from_client)
        c->bytes_up += len;
    else
        c->bytes_down += len;
    if (c->lb->cfg.idle_timeout_ms > 0)
        c->deadline_ms = wr_now_ms() + c->lb->cfg.idle_timeout_ms;
    if (wr_conn_write_queued(dst) > LB_RELAY_HIGH) {
        bool *paused = from_client ? &c->client_paused : &c->server_paused;
        if (!*paused && wr_conn_read_stop(src) == 0)
            *paused = true;
    }
}

/* Both directions ended: close once the queues are flushed. */
static void lb_conn_after_eof(struct lb_conn *c)
{
    if (c->client_eof && c->server_eof) {
        lb_conn_close(c, LB_OUT_RELAYED, true);
        return;
    }
    if (c->state == LB_CONN_ST_RELAYING)
        lb_conn_set_state(c, LB_CONN_ST_HALF_CLOSED);
}

/* ---- dialing -------------------------------------------------------------------------- */

static const struct wr_conn_cbs lb_server_cbs;
static void lb_conn_dial_failed(struct lb_conn *c, int err);

static void lb_conn_dial(struct lb_conn *c, struct lb_backend *b)
{
    struct lb *lb = c->lb;
    lb_conn_set_backend(c, b);
    c->attempts++;
    lb->stats.dials++;
    if (c->state != LB_CONN_ST_CONNECTING)
        lb_conn_set_state(c, LB_CONN_ST_CONNECTING);
    c->deadline_ms = wr_now_ms() + lb->cfg.connect_timeout_ms;
    struct wr_conn_opts opts = {.nodelay = true};
    int err = 0;
    c->server =
        wr_conn_dial(lb->loop, (const struct sockaddr *)&b->addr, &opts, &lb_server_cbs, c, &err);
    if (c->server == NULL) {
        lb_conn_dial_failed(c, err);
        return;
    }
    c->n_open++;
    WR_DEBUG("lb", "conn_dial", "conn=%llu set=%s backend=%s attempt=%u", (unsigned long long)c->id,
             b->set->name, b->addr_str, c->attempts);
}

/* The backend for a routed connection, dialed; or the refusal. */
static void lb_conn_connect(struct lb_conn *c)
{
    struct lb_backend *b = NULL;
    if (c->node != NULL) {
        b = c->node->state == LB_BACKEND_ST_UP ? c->node : NULL;
    } else {
        b = lb__set_pick(c->set, c->l->cfg.balance, NULL);
    }
    if (b == NULL) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s %s has no UP backend", c->node ? "node" : "set",
                 c->node  ? c->node->node_id
                 : c->set ? c->set->name
                          : "-");
        lb_conn_refuse_http(c, LB_OUT_NO_BACKEND, detail, 503);
        return;
    }
    lb_conn_dial(c, b);
}

static void lb_conn_dial_failed(struct lb_conn *c, int err)
{
    struct lb *lb = c->lb;
    struct lb_backend *failed = c->backend;
    lb->stats.dial_fails++;
    WR_INFO("lb", "backend_connect_failed", "conn=%llu set=%s backend=%s err=%s attempt=%u",
            (unsigned long long)c->id, failed->set->name, failed->addr_str, wr_err_name(err),
            c->attempts);
    lb__backend_connect_failed(failed, err);
    lb_conn_set_backend(c, NULL);
    if (c->server != NULL) {
        wr_conn_close(c->server, false); /* its on_close still counts down n_open */
        c->server = NULL;
    }
    struct lb_backend *next = NULL;
    if (c->attempts < LB_DIAL_ATTEMPTS && c->set != NULL)
        next = lb__set_pick(c->set, c->l->cfg.balance, failed);
    if (next == NULL) {
        char detail[96];
        snprintf(detail, sizeof(detail), "backend %s: %s", failed->addr_str, wr_err_name(err));
        lb_conn_refuse_http(c, LB_OUT_CONNECT_FAILED, detail, 503);
        return;
    }
    lb->stats.retries++;
    lb_conn_dial(c, next);
}

/* Connected: the PROXY header, the peeked bytes, then the relay. */
static void lb_conn_connected(struct lb_conn *c)
{
    struct lb *lb = c->lb;
    uint8_t hdr[WR_PROXY_V2_MAX];
    struct wr_slice v[2];
    int n = 0;
    if (c->l->cfg.proxy_v2) {
        struct sockaddr_storage src;
        ssize_t hl = WR_EUSAGE;
        if (wr_addr_parse(wr_conn_peer_str(c->client), &src) == 0)
            hl = wr_proxy_v2_encode((const struct sockaddr *)&src,
                                    (const struct sockaddr *)&c->l->bound_addr, hdr, sizeof(hdr));
        if (hl < 0) {
            WR_WARN("lb", "proxy_header_failed", "conn=%llu client=%s err=%s",
                    (unsigned long long)c->id, wr_conn_peer_str(c->client), wr_err_name((int)hl));
            lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
            return;
        }
        v[n++] = wr_slice_make(hdr, (size_t)hl);
        lb->stats.proxy_headers++;
    }
    if (c->peek.len > 0)
        v[n++] = wr_buf_peek(&c->peek);
    c->bytes_up += c->peek.len;
    if (n > 0 && wr_conn_writev(c->server, v, n) != 0) {
        lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
        return;
    }
    wr_buf_free(&c->peek);
    c->backend->conns_total++;
    lb_conn_set_state(c, LB_CONN_ST_RELAYING);
    c->deadline_ms =
        c->lb->cfg.idle_timeout_ms > 0 ? wr_now_ms() + c->lb->cfg.idle_timeout_ms : UINT64_MAX;
    WR_DEBUG("lb", "conn_relaying", "conn=%llu client=%s set=%s backend=%s",
             (unsigned long long)c->id, wr_conn_peer_str(c->client), c->backend->set->name,
             c->backend->addr_str);
    if (c->client_eof) {
        (void)wr_conn_shutdown(c->server);
        lb_conn_after_eof(c);
        return;
    }
    if (wr_conn_read_start(c->client) != 0)
        lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
}

/* ---- routing by name (sni, http) ------------------------------------------------------ */

static void lb_conn_route(struct lb_conn *c)
{
    struct lb *lb = c->lb;
    struct lb_route r = lb_route_lookup(lb->routes, c->name, wr_now_ms());
    switch (r.kind) {
    case LB_ROUTE_SET:
        c->set = lb__set_find(lb, r.target);
        break;
    case LB_ROUTE_NODE:
        c->node = lb__mesh_node(lb, r.target);
        if (c->node == NULL) {
            lb_conn_refuse_http(c, LB_OUT_NO_BACKEND, "node not in a mesh set", 503);
            return;
        }
        break;
    case LB_ROUTE_NONE:
    default: {
        char name[96];
        wr_log_esc(name, sizeof(name), c->name, strlen(c->name));
        WR_INFO("lb", "route_unknown", "conn=%llu listener=%s name=%s", (unsigned long long)c->id,
                c->l->addr_str, name[0] ? name : "-");
        if (c->l->cfg.mode == LB_MODE_SNI)
            lb_conn_refuse(c, LB_OUT_NO_ROUTE, "unrecognized_name",
                           (const char *)lb_tls_alert_unrecognized_name, LB_TLS_ALERT_LEN);
        else
            lb_conn_refuse_http(c, LB_OUT_NO_ROUTE, "no route for host", 404);
        return;
    }
    }
    if (c->set == NULL && c->node == NULL) {
        lb_conn_refuse_http(c, LB_OUT_NO_BACKEND, "route to a set with no backend", 503);
        return;
    }
    /* The client waits for the backend: nothing more is read meanwhile. */
    if (wr_conn_read_stop(c->client) != 0) {
        lb_conn_close(c, LB_OUT_CLIENT_CLOSED, false);
        return;
    }
    lb_conn_connect(c);
}

/* Runs the mode's parser on what was peeked; routes once it decides. */
static void lb_conn_peeked(struct lb_conn *c)
{
    const uint8_t *p = c->peek.data + c->peek.off;
    size_t len = c->peek.len < LB_PEEK_MAX ? c->peek.len : LB_PEEK_MAX;
    const char *why = NULL;
    if (c->l->cfg.mode == LB_MODE_SNI) {
        enum lb_sni_result r = lb_sni_parse(p, len, c->name, &why);
        switch (r) {
        case LB_SNI_OK:
            lb_conn_route(c);
            return;
        case LB_SNI_NEED_MORE:
            if (c->peek.len >= LB_SNI_PEEK_MAX)
                lb_conn_refuse(c, LB_OUT_TOO_BIG, "ClientHello over the peek limit", NULL, 0);
            return;
        case LB_SNI_TOO_BIG:
            lb_conn_refuse(c, LB_OUT_TOO_BIG, why ? why : lb_sni_result_str(r), NULL, 0);
            return;
        case LB_SNI_NOT_TLS:
        case LB_SNI_MALFORMED:
        default:
            lb_conn_refuse(c, LB_OUT_MALFORMED, why ? why : lb_sni_result_str(r), NULL, 0);
            return;
        }
    }
    size_t head_len = 0;
    enum lb_http_result r = lb_http_parse_head(p, len, c->name, &head_len, &why);
    switch (r) {
    case LB_HTTP_OK:
        lb_conn_route(c);
        return;
    case LB_HTTP_NEED_MORE:
        if (c->peek.len >= LB_HTTP_HEAD_MAX)
            lb_conn_refuse_http(c, LB_OUT_TOO_BIG, "request head over the peek limit", 431);
        return;
    case LB_HTTP_TOO_BIG:
        lb_conn_refuse_http(c, LB_OUT_TOO_BIG, why ? why : lb_http_result_str(r), 431);
        return;
    case LB_HTTP_BAD:
    default:
        lb_conn_refuse_http(c, LB_OUT_MALFORMED, why ? why : lb_http_result_str(r), 400);
        return;
    }
}

/* ---- client callbacks ----------------------------------------------------------------- */

static void lb_client_on_read(struct wr_conn *wc, const uint8_t *data, size_t len, void *arg)
{
    struct lb_conn *c = arg;
    (void)wc;
    switch (c->state) {
    case LB_CONN_ST_ACCEPTED:
    case LB_CONN_ST_CONNECTING:
        /* One read may bring the ClientHello or request head and what the
         * client sent right after it (early data, pipelined requests): it
         * is kept whole. Only a client that goes on sending while more than
         * LB_PEEK_HOLD_MAX is held is refused; reading stops at that mark
         * and resumes when the relay starts. */
        if (c->peek.len >= LB_PEEK_HOLD_MAX || wr_buf_append(&c->peek, data, len) != 0) {
            lb_conn_refuse_http(c, LB_OUT_TOO_BIG, "client sent too much before routing", 431);
            return;
        }
        if (c->peek.len >= LB_PEEK_HOLD_MAX && wr_conn_read_stop(c->client) != 0) {
            lb_conn_close(c, LB_OUT_CLIENT_CLOSED, false);
            return;
        }
        if (c->state == LB_CONN_ST_ACCEPTED)
            lb_conn_peeked(c);
        return;
    case LB_CONN_ST_RELAYING:
    case LB_CONN_ST_HALF_CLOSED:
        lb_conn_relay(c, true, data, len);
        return;
    case LB_CONN_ST_CLOSING:
    default:
        return;
    }
}

static void lb_client_on_eof(struct wr_conn *wc, void *arg)
{
    struct lb_conn *c = arg;
    (void)wc;
    c->client_eof = true;
    switch (c->state) {
    case LB_CONN_ST_ACCEPTED:
        lb_conn_refuse(c, LB_OUT_CLIENT_CLOSED, "client ended before a route was chosen", NULL, 0);
        return;
    case LB_CONN_ST_CONNECTING:
        return; /* the FIN goes to the backend once it is connected */
    case LB_CONN_ST_RELAYING:
    case LB_CONN_ST_HALF_CLOSED:
        (void)wr_conn_shutdown(c->server);
        lb_conn_after_eof(c);
        return;
    case LB_CONN_ST_CLOSING:
    default:
        return;
    }
}

static void lb_client_on_error(struct wr_conn *wc, int err, void *arg)
{
    struct lb_conn *c = arg;
    (void)wc;
    WR_DEBUG("lb", "client_error", "conn=%llu state=%s err=%s", (unsigned long long)c->id,
             lb_conn_state_str(c->state), wr_err_name(err));
    lb_conn_close(c,
                  c->state == LB_CONN_ST_RELAYING || c->state == LB_CONN_ST_HALF_CLOSED
                      ? LB_OUT_RELAY_ERROR
                      : LB_OUT_CLIENT_CLOSED,
                  false);
}

static void lb_client_on_drain(struct wr_conn *wc, void *arg)
{
    struct lb_conn *c = arg;
    (void)wc;
    if (c->server_paused && c->state != LB_CONN_ST_CLOSING) {
        c->server_paused = false;
        if (!c->server_eof && wr_conn_read_start(c->server) != 0)
            lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
    }
}

static void lb_conn_free(struct lb_conn *c)
{
    struct lb *lb = c->lb;
    struct lb_listener *l = c->l;
    lb_conn_set_backend(c, NULL);
    l->outcomes[c->outcome_set ? c->outcome : LB_OUT_SHUTDOWN]++;
    l->active--;
    lb->n_conns--;
    lb->stats.bytes_up += c->bytes_up;
    lb->stats.bytes_down += c->bytes_down;
    WR_DEBUG("lb", "conn_closed", "conn=%llu listener=%s outcome=%s up=%llu down=%llu",
             (unsigned long long)c->id, l->addr_str, lb_outcome_str(c->outcome),
             (unsigned long long)c->bytes_up, (unsigned long long)c->bytes_down);
    lb_list_remove(&c->link);
    wr_buf_free(&c->peek);
    free(c);
}

static void lb_conn_on_close(struct wr_conn *wc, void *arg)
{
    struct lb_conn *c = arg;
    if (wc == c->server)
        c->server = NULL;
    if (--c->n_open > 0)
        return;
    WR_ASSERT(c->state == LB_CONN_ST_CLOSING);
    lb_conn_free(c); /* the last callback any wr_conn makes for this object */
}

static const struct wr_conn_cbs lb_client_cbs = {
    .on_read = lb_client_on_read,
    .on_eof = lb_client_on_eof,
    .on_error = lb_client_on_error,
    .on_drain = lb_client_on_drain,
    .on_close = lb_conn_on_close,
};

/* ---- backend callbacks ---------------------------------------------------------------- */

static void lb_server_on_ready(struct wr_conn *wc, int status, void *arg)
{
    struct lb_conn *c = arg;
    if (wc != c->server || c->state != LB_CONN_ST_CONNECTING)
        return; /* a dial given up on (timeout), or the connection is closing */
    if (status != 0) {
        lb_conn_dial_failed(c, status);
        return;
    }
    lb_conn_connected(c);
}

static void lb_server_on_read(struct wr_conn *wc, const uint8_t *data, size_t len, void *arg)
{
    struct lb_conn *c = arg;
    if (wc != c->server || (c->state != LB_CONN_ST_RELAYING && c->state != LB_CONN_ST_HALF_CLOSED))
        return;
    lb_conn_relay(c, false, data, len);
}

static void lb_server_on_eof(struct wr_conn *wc, void *arg)
{
    struct lb_conn *c = arg;
    if (wc != c->server || (c->state != LB_CONN_ST_RELAYING && c->state != LB_CONN_ST_HALF_CLOSED))
        return;
    c->server_eof = true;
    (void)wr_conn_shutdown(c->client);
    lb_conn_after_eof(c);
}

static void lb_server_on_error(struct wr_conn *wc, int err, void *arg)
{
    struct lb_conn *c = arg;
    if (wc != c->server || c->state == LB_CONN_ST_CLOSING)
        return;
    WR_DEBUG("lb", "backend_error", "conn=%llu state=%s err=%s", (unsigned long long)c->id,
             lb_conn_state_str(c->state), wr_err_name(err));
    lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
}

static void lb_server_on_drain(struct wr_conn *wc, void *arg)
{
    struct lb_conn *c = arg;
    if (wc != c->server || !c->client_paused || c->state == LB_CONN_ST_CLOSING)
        return;
    c->client_paused = false;
    if (!c->client_eof && wr_conn_read_start(c->client) != 0)
        lb_conn_close(c, LB_OUT_RELAY_ERROR, false);
}

static const struct wr_conn_cbs lb_server_cbs = {
    .on_ready = lb_server_on_ready,
    .on_read = lb_server_on_read,
    .on_eof = lb_server_on_eof,
    .on_error = lb_server_on_error,
    .on_drain = lb_server_on_drain,
    .on_close = lb_conn_on_close,
};

/* ---- entry points ---------------------------------------------------------------------- */

void lb__conn_start(struct lb_listener *l, struct wr_conn *client)
{
    struct lb *lb = l->lb;
    struct lb_conn *c = wr_xcalloc(1, sizeof(*c));
    c->lb = lb;
    c->l = l;
    c->client = client;
    c->id = wr_conn_id(client);
    c->n_open = 1;
    c->state = LB_CONN_ST_ACCEPTED;
    c->deadline_ms = wr_now_ms() + lb->cfg.peek_timeout_ms;
    wr_conn_set_cbs(client, &lb_client_cbs, c);
    lb_list_insert_tail(&lb->conns, &c->link);
    l->active++;
    lb->n_conns++;
    if (l->cfg.mode != LB_MODE_TCP)
        return; /* reading has started: lb_client_on_read peeks */
    c->set = lb__set_find(lb, l->cfg.set);
    if (wr_conn_read_stop(client) != 0) {
        lb_conn_close(c, LB_OUT_CLIENT_CLOSED, false);
        return;
    }
    lb_conn_connect(c);
}

void lb__conns_tick(struct lb *lb, uint64_t now)
{
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &lb->conns)
    {
        struct lb_conn *c = wr_container_of(pos, struct lb_conn, link);
        if (now < c->deadline_ms)
            continue;
        if (c->state == LB_CONN_ST_ACCEPTED) {
            char detail[64];
            snprintf(detail, sizeof(detail), "no decision after %u ms and %zu bytes",
                     lb->cfg.peek_timeout_ms, c->peek.len);
            lb_conn_refuse_http(c, LB_OUT_PEEK_TIMEOUT, detail, 408);
        } else if (c->state == LB_CONN_ST_CONNECTING && c->server != NULL) {
            lb_conn_dial_failed(c, WR_ETIMEDOUT);
        } else if (c->state == LB_CONN_ST_RELAYING || c->state == LB_CONN_ST_HALF_CLOSED) {
            WR_DEBUG("lb", "conn_idle", "conn=%llu idle_ms=%u", (unsigned long long)c->id,
                     lb->cfg.idle_timeout_ms);
            lb_conn_close(c, LB_OUT_IDLE_TIMEOUT, false);
        }
    }
}

void lb__conns_stop(struct lb *lb)
{
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &lb->conns)
    {
        lb_conn_close(wr_container_of(pos, struct lb_conn, link), LB_OUT_SHUTDOWN, false);
    }
}
