/*
 * lb_admin_api.c: what warren-lb's admin API says: /healthz, /readyz,
 * /v1/backends and /v1/listeners (JSON, jansson) and /metrics (Prometheus
 * text format 0.0.4). No sockets and no HTTP framing: lb_admin.c serves them.
 */
#include "lb_core.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "disc.h"
#include "lb_route.h"

#ifndef WARREN_VERSION
#define WARREN_VERSION "0.0.0"
#endif

int lb__buf_printf(struct wr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return WR_EUSAGE;
    uint8_t *w = NULL;
    size_t wl = 0;
    if (wr_buf_reserve(b, (size_t)need + 1, &w, &wl) != 0)
        return WR_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)w, wl, fmt, ap);
    va_end(ap);
    wr_buf_commit(b, (size_t)need);
    return 0;
}

static int lb_json_dump_cb(const char *buf, size_t size, void *data)
{
    return wr_buf_append(data, buf, size) == 0 ? 0 : -1;
}

static int lb_json_finish(json_t *root, struct wr_buf *body)
{
    if (root == NULL)
        return WR_ENOMEM;
    int rc = json_dump_callback(root, lb_json_dump_cb, body, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0)
        return WR_ENOMEM;
    return wr_buf_append(body, "\n", 1);
}

static bool lb_is_ready(const struct lb *lb)
{
    return lb->started && !lb->draining && !lb->stopping && lb__mesh_is_joined(lb);
}

static json_t *lb_admin_backend(const struct lb_backend *b)
{
    return json_pack(
        "{s:s, s:s?, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:s?, s:s?}", "addr", b->addr_str,
        "node_id", b->node_id[0] ? b->node_id : NULL, "state", lb_backend_state_str(b->state),
        "healthy", b->healthy, "active", (json_int_t)b->active, "connections",
        (json_int_t)b->conns_total, "connect_failures", (json_int_t)b->connect_fails, "checks_ok",
        (json_int_t)b->checks_ok, "checks_failed", (json_int_t)b->checks_failed, "check",
        b->check_http ? "http" : "tcp", "check_addr", b->check_http ? b->check_str : NULL,
        "last_error", b->last_check_err[0] ? b->last_check_err : NULL);
}

static int lb_admin_backends(struct lb *lb, struct wr_buf *body)
{
    json_t *sets = json_array();
    json_t *root = json_pack("{s:o?}", "sets", sets);
    if (root == NULL)
        return WR_ENOMEM;
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        const struct lb_set *s = lb->sets[i];
        json_t *bs = json_array();
        uint32_t counts[LB_BACKEND_ST__COUNT];
        lb__set_counts(s, counts);
        json_t *so = json_pack("{s:s, s:b, s:o?, s:I, s:I, s:I}", "name", s->name, "mesh", s->mesh,
                               "backends", bs, "up", (json_int_t)counts[0], "down",
                               (json_int_t)counts[1], "draining", (json_int_t)counts[2]);
        if (so == NULL || json_array_append_new(sets, so) != 0)
            goto fail;
        for (uint32_t k = 0; k < s->n; k++) {
            const struct lb_backend *b = s->b[k];
            if (b->gone && b->active == 0)
                continue; /* forgotten by gossip, nothing left through it */
            if (json_array_append_new(bs, lb_admin_backend(b)) != 0)
                goto fail;
        }
    }
    return lb_json_finish(root, body);

fail:
    json_decref(root);
    return WR_ENOMEM;
}

static int lb_admin_listeners(struct lb *lb, struct wr_buf *body)
{
    json_t *ls = json_array();
    struct lb_route_stats rs;
    lb_route_get_stats(lb->routes, &rs);
    json_t *root = json_pack(
        "{s:s, s:o?, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:s?, s:s?}", "version", WARREN_VERSION,
        "listeners", ls, "connections", (json_int_t)lb->n_conns, "max_conns",
        (json_int_t)lb->cfg.max_conns, "route_cache", "hits", (json_int_t)rs.hits, "misses",
        (json_int_t)rs.misses, "negative_hits", (json_int_t)rs.negative_hits, "entries",
        (json_int_t)rs.entries, "evictions", (json_int_t)rs.evictions, "gossip",
        lb->gossip_str[0] ? lb->gossip_str : NULL, "cluster", lb->cfg.cluster);
    if (root == NULL)
        return WR_ENOMEM;
    for (uint32_t i = 0; i < lb->n_listeners; i++) {
        const struct lb_listener *l = &lb->listeners[i];
        json_t *out = json_object();
        json_t *lo = json_pack(
            "{s:s, s:s, s:s?, s:s, s:b, s:I, s:I, s:o?}", "mode", lb_mode_str(l->cfg.mode), "addr",
            l->addr_str, "set", l->cfg.set[0] ? l->cfg.set : NULL, "balance",
            lb_balance_str(l->cfg.balance), "proxy_v2", l->cfg.proxy_v2, "accepted",
            (json_int_t)l->accepted, "active", (json_int_t)l->active, "outcomes", out);
        if (lo == NULL || json_array_append_new(ls, lo) != 0)
            goto fail;
        for (int o = 0; o < LB_OUT__COUNT; o++) {
            if (json_object_set_new(out, lb_outcome_str((enum lb_outcome)o),
                                    json_integer((json_int_t)l->outcomes[o])) != 0)
                goto fail;
        }
    }
    return lb_json_finish(root, body);

fail:
    json_decref(root);
    return WR_ENOMEM;
}

#define LB_P(...)                                                                                  \
    do {                                                                                           \
        if (err == 0)                                                                              \
            err = lb__buf_printf(body, __VA_ARGS__);                                               \
    } while (0)

static int lb_admin_metrics(struct lb *lb, struct wr_buf *body)
{
    int err = 0;
    LB_P("# HELP warren_lb_info warren-lb build and configuration.\n"
         "# TYPE warren_lb_info gauge\nwarren_lb_info{version=\"%s\"} 1\n",
         WARREN_VERSION);
    LB_P("# HELP warren_lb_uptime_seconds Seconds since start.\n"
         "# TYPE warren_lb_uptime_seconds gauge\nwarren_lb_uptime_seconds %llu\n",
         (unsigned long long)((wr_now_ms() - lb->start_ms) / 1000));
    LB_P("# HELP warren_lb_accepted_total Client connections accepted, by listener.\n"
         "# TYPE warren_lb_accepted_total counter\n");
    for (uint32_t i = 0; i < lb->n_listeners; i++)
        LB_P("warren_lb_accepted_total{listener=\"%s\",mode=\"%s\"} %llu\n",
             lb->listeners[i].addr_str, lb_mode_str(lb->listeners[i].cfg.mode),
             (unsigned long long)lb->listeners[i].accepted);
    LB_P("# HELP warren_lb_connections_total Client connections ended, by listener and "
         "outcome.\n# TYPE warren_lb_connections_total counter\n");
    for (uint32_t i = 0; i < lb->n_listeners; i++) {
        const struct lb_listener *l = &lb->listeners[i];
        for (int o = 0; o < LB_OUT__COUNT; o++)
            LB_P("warren_lb_connections_total{listener=\"%s\",mode=\"%s\",outcome=\"%s\"} "
                 "%llu\n",
                 l->addr_str, lb_mode_str(l->cfg.mode), lb_outcome_str((enum lb_outcome)o),
                 (unsigned long long)l->outcomes[o]);
    }
    LB_P("# HELP warren_lb_connections_active Client connections open, by listener.\n"
         "# TYPE warren_lb_connections_active gauge\n");
    for (uint32_t i = 0; i < lb->n_listeners; i++)
        LB_P("warren_lb_connections_active{listener=\"%s\",mode=\"%s\"} %u\n",
             lb->listeners[i].addr_str, lb_mode_str(lb->listeners[i].cfg.mode),
             lb->listeners[i].active);
    LB_P("# HELP warren_lb_max_connections The connection cap.\n"
         "# TYPE warren_lb_max_connections gauge\nwarren_lb_max_connections %u\n",
         lb->cfg.max_conns);
    LB_P("# HELP warren_lb_dials_total Backend dials, retries and failures.\n"
         "# TYPE warren_lb_dials_total counter\nwarren_lb_dials_total %llu\n"
         "# TYPE warren_lb_dial_failures_total counter\nwarren_lb_dial_failures_total %llu\n"
         "# TYPE warren_lb_dial_retries_total counter\nwarren_lb_dial_retries_total %llu\n"
         "# TYPE warren_lb_proxy_headers_total counter\nwarren_lb_proxy_headers_total %llu\n",
         (unsigned long long)lb->stats.dials, (unsigned long long)lb->stats.dial_fails,
         (unsigned long long)lb->stats.retries, (unsigned long long)lb->stats.proxy_headers);
    LB_P("# HELP warren_lb_bytes_total Bytes relayed (closed connections).\n"
         "# TYPE warren_lb_bytes_total counter\nwarren_lb_bytes_total{direction=\"up\"} %llu\n"
         "warren_lb_bytes_total{direction=\"down\"} %llu\n",
         (unsigned long long)lb->stats.bytes_up, (unsigned long long)lb->stats.bytes_down);

    LB_P("# HELP warren_lb_backend_state 1 for the state each backend is in.\n"
         "# TYPE warren_lb_backend_state gauge\n");
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        const struct lb_set *s = lb->sets[i];
        for (uint32_t k = 0; k < s->n; k++) {
            const struct lb_backend *b = s->b[k];
            if (b->gone && b->active == 0)
                continue;
            for (int st = 0; st < LB_BACKEND_ST__COUNT; st++)
                LB_P("warren_lb_backend_state{set=\"%s\",backend=\"%s\",node=\"%s\","
                     "state=\"%s\"} %d\n",
                     s->name, b->addr_str, b->node_id, lb_backend_state_str(st),
                     (int)b->state == st);
        }
    }
    static const struct {
        const char *name, *help, *type;
        size_t off;
        bool u32;
    } per_backend[] = {
        {"warren_lb_backend_active_connections", "Open connections through the backend.", "gauge",
         offsetof(struct lb_backend, active), true},
        {"warren_lb_backend_connections_total", "Connections relayed to the backend.", "counter",
         offsetof(struct lb_backend, conns_total), false},
        {"warren_lb_backend_connect_failures_total", "Failed dials (passive checks).", "counter",
         offsetof(struct lb_backend, connect_fails), false},
        {"warren_lb_backend_checks_ok_total", "Health checks that passed.", "counter",
         offsetof(struct lb_backend, checks_ok), false},
        {"warren_lb_backend_checks_failed_total", "Health checks that failed.", "counter",
         offsetof(struct lb_backend, checks_failed), false},
    };
    for (size_t m = 0; m < WR_ARRAY_LEN(per_backend); m++) {
        LB_P("# HELP %s %s\n# TYPE %s %s\n", per_backend[m].name, per_backend[m].help,
             per_backend[m].name, per_backend[m].type);
        for (uint32_t i = 0; i < lb->n_sets; i++) {
            const struct lb_set *s = lb->sets[i];
            for (uint32_t k = 0; k < s->n; k++) {
                const struct lb_backend *b = s->b[k];
                if (b->gone && b->active == 0)
                    continue;
                const char *p = (const char *)b + per_backend[m].off;
                unsigned long long v = 0;
                if (per_backend[m].u32) {
                    uint32_t x;
                    memcpy(&x, p, sizeof(x));
                    v = x;
                } else {
                    uint64_t x;
                    memcpy(&x, p, sizeof(x));
                    v = x;
                }
                LB_P("%s{set=\"%s\",backend=\"%s\",node=\"%s\"} %llu\n", per_backend[m].name,
                     s->name, b->addr_str, b->node_id, v);
            }
        }
    }
    struct lb_route_stats rs;
    lb_route_get_stats(lb->routes, &rs);
    LB_P("# HELP warren_lb_route_cache_hits_total Route lookups answered by the cache.\n"
         "# TYPE warren_lb_route_cache_hits_total counter\nwarren_lb_route_cache_hits_total "
         "%llu\n"
         "# HELP warren_lb_route_cache_negative_hits_total Cached \"no route\" answers.\n"
         "# TYPE warren_lb_route_cache_negative_hits_total counter\n"
         "warren_lb_route_cache_negative_hits_total %llu\n"
         "# HELP warren_lb_route_cache_misses_total Route lookups that ran the rules.\n"
         "# TYPE warren_lb_route_cache_misses_total counter\n"
         "warren_lb_route_cache_misses_total %llu\n"
         "# TYPE warren_lb_route_cache_evictions_total counter\n"
         "warren_lb_route_cache_evictions_total %llu\n"
         "# TYPE warren_lb_route_cache_entries gauge\nwarren_lb_route_cache_entries %llu\n",
         (unsigned long long)rs.hits, (unsigned long long)rs.negative_hits,
         (unsigned long long)rs.misses, (unsigned long long)rs.evictions,
         (unsigned long long)rs.entries);
    if (lb->gossip != NULL) {
        struct disc_stats ds;
        disc_cluster_get_stats(lb->gossip, &ds);
        LB_P("# HELP warren_lb_gossip_members Gossip members known, by state (self "
             "included).\n# TYPE warren_lb_gossip_members gauge\n");
        for (int st = 0; st < DISC_MEMBER_ST__COUNT; st++)
            LB_P("warren_lb_gossip_members{state=\"%s\"} %llu\n",
                 disc_member_state_str((enum disc_member_state)st),
                 (unsigned long long)ds.members[st]);
    }
    return err;
}

int lb__admin_render(struct lb *lb, struct wr_slice path, struct wr_buf *body, const char **ctype)
{
    const uint8_t *q = memchr(path.ptr, '?', path.len);
    if (q != NULL)
        path.len = (size_t)(q - path.ptr);
    int err = 0;
    int status = 200;
    *ctype = "application/json";
    if (wr_slice_eq(path, wr_slice_str("/healthz"))) {
        *ctype = "text/plain; charset=utf-8";
        err = lb__buf_printf(body, "ok\n");
    } else if (wr_slice_eq(path, wr_slice_str("/readyz"))) {
        *ctype = "text/plain; charset=utf-8";
        bool ready = lb_is_ready(lb);
        status = ready ? 200 : 503;
        err = lb__buf_printf(body, "%s\n", ready ? "ready" : "not ready");
    } else if (wr_slice_eq(path, wr_slice_str("/v1/backends"))) {
        err = lb_admin_backends(lb, body);
    } else if (wr_slice_eq(path, wr_slice_str("/v1/listeners"))) {
        err = lb_admin_listeners(lb, body);
    } else if (wr_slice_eq(path, wr_slice_str("/metrics"))) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        err = lb_admin_metrics(lb, body);
    } else {
        *ctype = "text/plain; charset=utf-8";
        return 404;
    }
    if (err != 0) {
        wr_buf_free(body);
        *ctype = "text/plain; charset=utf-8";
        return 500;
    }
    return status;
}
