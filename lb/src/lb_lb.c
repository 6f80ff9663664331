/*
 * lb_lb.c: the balancer's lifecycle: configuration defaults and checks, the
 * static sets and the route table, listeners with the connection cap, the
 * sweep timer (peek, connect and check deadlines), signals, the ready file
 * and the stop sequence. What a connection does is lb_conn.c's.
 */
#include "lb_core.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb_route.h"

static const char *const lb_mode_names[LB_MODE__COUNT] = {"tcp", "sni", "http"};
static const char *const lb_balance_names[LB_BALANCE__COUNT] = {"rr", "p2c"};

const char *lb_mode_str(enum lb_mode m)
{
    return m < LB_MODE__COUNT ? lb_mode_names[m] : "?";
}

const char *lb_balance_str(enum lb_balance b)
{
    return b < LB_BALANCE__COUNT ? lb_balance_names[b] : "?";
}

void lb_config_init(struct lb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->gossip_addr = "127.0.0.1:0";
    cfg->check_interval_ms = 1000;
    cfg->rise = 2;
    cfg->fall = 2;
    cfg->admin_enabled = true;
    int rc = wr_addr_parse("127.0.0.1:7481", &cfg->admin_addr);
    WR_ASSERT(rc == 0);
    cfg->max_conns = 10000;
    cfg->backlog = 511;
    cfg->peek_timeout_ms = 5000;
    cfg->connect_timeout_ms = 3000;
    cfg->route_cache_max = 4096;
    cfg->route_ttl_ms = 10000;
    cfg->route_neg_ttl_ms = 2000;
}

/* ---- listeners -------------------------------------------------------------------- */

static void lb_on_refused_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs lb_refused_cbs = {
    .on_close = lb_on_refused_close,
};

static void lb_on_connection(uv_stream_t *server, int status)
{
    struct lb_listener *l = server->data;
    struct lb *lb = l->lb;
    if (status < 0) {
        WR_WARN("lb", "accept_failed", "listener=%s err=%s", l->addr_str, wr_err_name(status));
        return;
    }
    struct wr_conn_opts opts = {.nodelay = true};
    int err = 0;
    /* Accepted with do-nothing callbacks: lb__conn_start installs its own
     * before any can run (callbacks are never synchronous). */
    struct wr_conn *c = wr_conn_accept(server, &opts, &lb_refused_cbs, NULL, &err);
    if (c == NULL) {
        WR_WARN("lb", "accept_failed", "listener=%s err=%s", l->addr_str, wr_err_name(err));
        return;
    }
    l->accepted++;
    lb->stats.conns_accepted++;
    if (lb->n_conns >= lb->cfg.max_conns || lb->stopping) {
        l->outcomes[LB_OUT_MAX_CONNS]++;
        lb->stats.conns_refused++;
        WR_WARN("lb", "conn_refused", "listener=%s mode=%s client=%s reason=%s max=%u", l->addr_str,
                lb_mode_str(l->cfg.mode), wr_conn_peer_str(c),
                lb->stopping ? "shutdown" : "max_conns", lb->cfg.max_conns);
        wr_conn_close(c, false);
        return;
    }
    lb__conn_start(l, c);
}

static void lb_on_handle_close(uv_handle_t *h)
{
    struct lb *lb = h->data;
    lb->pending_closes--;
}

static void lb_on_listener_close(uv_handle_t *h)
{
    struct lb_listener *l = h->data;
    l->lb->pending_closes--;
}

static int lb_listener_bind(struct lb *lb, struct lb_listener *l)
{
    l->lb = lb;
    uv_tcp_init(lb->loop, &l->tcp);
    l->tcp.data = l;
    l->bound = true;
    int err = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&l->cfg.addr, 0);
    if (err != 0)
        return err;
    int len = sizeof(l->bound_addr);
    err = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&l->bound_addr, &len);
    if (err != 0)
        return err;
    wr_addr_str((const struct sockaddr *)&l->bound_addr, l->addr_str, sizeof(l->addr_str));
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void lb_on_sweep(uv_timer_t *t)
{
    struct lb *lb = t->data;
    uint64_t now = wr_now_ms();
    lb__conns_tick(lb, now);
    lb__checks_tick(lb, now);
    if (lb->draining && (lb->n_conns == 0 || now >= lb->drain_deadline_ms)) {
        WR_INFO("lb", "drained", "conns_left=%u", lb->n_conns);
        lb_stop(lb);
    }
}

static void lb_close_listeners(struct lb *lb)
{
    for (uint32_t i = 0; i < lb->n_listeners; i++) {
        struct lb_listener *l = &lb->listeners[i];
        if (l->bound && !uv_is_closing((uv_handle_t *)&l->tcp))
            uv_close((uv_handle_t *)&l->tcp, lb_on_listener_close);
    }
}

/* The first signal drains (no new connections, gossip left, open ones get
 * --drain-timeout), a second one, or a zero timeout, stops at once. */
static void lb_on_signal(uv_signal_t *sig, int signum)
{
    struct lb *lb = sig->data;
    WR_INFO("lb", "signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (lb->draining || lb->cfg.drain_timeout_ms == 0 || lb->n_conns == 0 || !lb->started) {
        lb_stop(lb);
        return;
    }
    lb->draining = true;
    lb->drain_deadline_ms = wr_now_ms() + lb->cfg.drain_timeout_ms;
    WR_INFO("lb", "draining", "conns=%u deadline_ms=%u", lb->n_conns, lb->cfg.drain_timeout_ms);
    lb_close_listeners(lb);
    lb__mesh_stop(lb);
}

static bool lb_set_name_ok(const char *s)
{
    return wr_id_is_valid(s, strlen(s));
}

struct lb *lb_new(uv_loop_t *loop, const struct lb_config *cfg, int *err)
{
    struct lb *lb = wr_xcalloc(1, sizeof(*lb));
    lb->loop = loop;
    lb->cfg = *cfg;
    lb->start_ms = wr_now_ms();
    lb_list_init(&lb->conns);
    lb_list_init(&lb->checks);
    int rc = 0;
    const char *why = NULL;

    lb->routes = lb_route_table_new(cfg->cluster, cfg->route_cache_max, cfg->route_ttl_ms,
                                    cfg->route_neg_ttl_ms);
    if (lb->routes == NULL) {
        rc = WR_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < cfg->n_routes; i++) {
        rc = lb_route_add(lb->routes, cfg->routes[i].pattern, cfg->routes[i].set);
        if (rc != 0) {
            why = "bad --route";
            goto fail;
        }
    }
    for (uint32_t i = 0; i < cfg->n_mesh_sets; i++) {
        struct lb_set *s = lb__set_get(lb, cfg->mesh_sets[i].set);
        if (s == NULL || s->mesh) {
            rc = WR_EUSAGE;
            why = s ? "a --mesh-set given twice" : "too many sets";
            goto fail;
        }
        s->mesh = true;
        s->mesh_port = cfg->mesh_sets[i].port;
    }
    for (uint32_t i = 0; i < cfg->n_backends; i++) {
        struct lb_set *s = lb__set_get(lb, cfg->backends[i].set);
        if (s == NULL || !lb_set_name_ok(cfg->backends[i].set) ||
            lb__backend_add(s, (const struct sockaddr *)&cfg->backends[i].addr, NULL) == NULL) {
            rc = WR_EUSAGE;
            why = "bad --backend or too many sets";
            goto fail;
        }
    }
    /* Every set a listener or a route names must exist: a typo would only
     * show as refusals otherwise. */
    for (uint32_t i = 0; i < cfg->n_listeners; i++) {
        const struct lb_listener_config *lc = &cfg->listeners[i];
        if (lc->mode == LB_MODE_TCP && lb__set_find(lb, lc->set) == NULL) {
            rc = WR_EUSAGE;
            why = "a tcp --listen names a set no --backend or --mesh-set defines";
            goto fail;
        }
    }
    for (uint32_t i = 0; i < cfg->n_routes; i++) {
        if (lb__set_find(lb, cfg->routes[i].set) == NULL) {
            rc = WR_EUSAGE;
            why = "a --route names a set no --backend or --mesh-set defines";
            goto fail;
        }
    }

    uv_timer_init(loop, &lb->sweep);
    lb->sweep.data = lb;
    uv_signal_init(loop, &lb->sig_term);
    uv_signal_init(loop, &lb->sig_int);
    lb->sig_term.data = lb->sig_int.data = lb;
    lb->pending_closes = 3;
    for (uint32_t i = 0; i < cfg->n_listeners; i++) {
        struct lb_listener *l = &lb->listeners[i];
        l->cfg = cfg->listeners[i];
        lb->n_listeners++;
        lb->pending_closes++;
        rc = lb_listener_bind(lb, l);
        if (rc != 0) {
            char a[WR_ADDR_STRLEN];
            WR_ERROR("lb", "listen_failed", "mode=%s addr=%s err=%s", lb_mode_str(l->cfg.mode),
                     wr_addr_str((const struct sockaddr *)&l->cfg.addr, a, sizeof(a)),
                     wr_err_name(rc));
            lb->started = false;
            lb_stop(lb);
            uv_run(loop, UV_RUN_DEFAULT); /* the close callbacks, then free */
            lb_free(lb);
            *err = rc;
            return NULL;
        }
    }
    return lb;

fail:
    WR_ERROR("lb", "config_invalid", "what=\"%s\" err=%s", why ? why : "setup failed",
             wr_err_name(rc));
    lb_route_table_free(lb->routes);
    lb__sets_free(lb);
    free(lb);
    *err = rc;
    return NULL;
}

static int lb_write_ready_file(struct lb *lb)
{
    struct wr_buf b = {0};
    int err = 0;
    for (uint32_t i = 0; i < lb->n_listeners && err == 0; i++)
        err = lb__buf_printf(&b, "listen %s %s\n", lb_mode_str(lb->listeners[i].cfg.mode),
                             lb->listeners[i].addr_str);
    if (err == 0 && lb->admin_str[0])
        err = lb__buf_printf(&b, "admin %s\n", lb->admin_str);
    if (err == 0 && lb->gossip_str[0])
        err = lb__buf_printf(&b, "gossip %s\n", lb->gossip_str);
    if (err == 0)
        err = wr_write_file(lb->cfg.ready_file, b.data + b.off, b.len, 0644);
    wr_buf_free(&b);
    return err;
}

int lb_start(struct lb *lb)
{
    int err = 0;
    lb->started = true;
    uv_signal_start(&lb->sig_term, lb_on_signal, SIGTERM);
    uv_signal_start(&lb->sig_int, lb_on_signal, SIGINT);
    for (uint32_t i = 0; i < lb->n_listeners; i++) {
        struct lb_listener *l = &lb->listeners[i];
        err = uv_listen((uv_stream_t *)&l->tcp, (int)lb->cfg.backlog, lb_on_connection);
        if (err != 0) {
            WR_ERROR("lb", "listen_failed", "addr=%s err=%s", l->addr_str, wr_err_name(err));
            return err;
        }
        WR_INFO("lb", "listening", "mode=%s addr=%s set=%s balance=%s proxy_v2=%d",
                lb_mode_str(l->cfg.mode), l->addr_str, l->cfg.set[0] ? l->cfg.set : "-",
                lb_balance_str(l->cfg.balance), l->cfg.proxy_v2);
    }
    if (lb->cfg.admin_enabled) {
        err = lb__admin_start(lb, lb->admin_str);
        if (err != 0) {
            WR_ERROR("lb", "admin_listen_failed", "err=%s", wr_err_name(err));
            return err;
        }
        WR_INFO("lb", "admin_listening", "addr=%s", lb->admin_str);
    }
    if (lb->cfg.gossip_enabled) {
        err = lb__mesh_start(lb);
        if (err != 0)
            return err;
    }
    uv_timer_start(&lb->sweep, lb_on_sweep, LB_SWEEP_MS, LB_SWEEP_MS);
    lb_on_sweep(&lb->sweep); /* first checks now, not a sweep later */
    if (lb->cfg.ready_file != NULL) {
        err = lb_write_ready_file(lb);
        if (err != 0) {
            WR_ERROR("lb", "ready_file_failed", "file=%s err=%s", lb->cfg.ready_file,
                     wr_err_name(err));
            return err;
        }
    }
    uint32_t n_static = 0;
    for (uint32_t i = 0; i < lb->n_sets; i++)
        n_static += lb->sets[i]->mesh ? 0 : lb->sets[i]->n;
    WR_INFO("lb", "started", "listeners=%u sets=%u static_backends=%u routes=%u max_conns=%u",
            lb->n_listeners, lb->n_sets, n_static, lb->cfg.n_routes, lb->cfg.max_conns);
    return 0;
}

void lb_stop(struct lb *lb)
{
    if (lb->stopping)
        return;
    lb->stopping = true;
    WR_INFO("lb", "stopping", "conns=%u", lb->n_conns);
    uv_timer_stop(&lb->sweep);
    uv_close((uv_handle_t *)&lb->sweep, lb_on_handle_close);
    uv_close((uv_handle_t *)&lb->sig_term, lb_on_handle_close);
    uv_close((uv_handle_t *)&lb->sig_int, lb_on_handle_close);
    lb_close_listeners(lb);
    lb__conns_stop(lb);
    lb__checks_stop(lb);
    lb__admin_stop(lb);
    lb__mesh_stop(lb);
}

void lb_free(struct lb *lb)
{
    if (lb == NULL)
        return;
    WR_ASSERT(lb->pending_closes == 0 && lb->n_conns == 0 && lb_list_empty(&lb->checks));
    lb__admin_free(lb);
    lb_route_table_free(lb->routes);
    lb__sets_free(lb);
    wr_memzero(lb->cfg.cluster_keys, sizeof(lb->cfg.cluster_keys));
    free(lb);
}
