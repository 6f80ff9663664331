/*
 * nd_node.c: the node as a whole: configuration defaults, TLS material,
 * the agents' listener, entry listeners, signals, the drain on SIGTERM and
 * the stats line. Tunnel connections live in nd_tunnel.c, visitors in
 * nd_entry.c.
 */
#include "nd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nd_config_init(struct nd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    int err = wr_addr_parse("0.0.0.0:7443", &cfg->listen_addr);
    WR_ASSERT(err == 0);
    cfg->admin_enabled = true;
    err = wr_addr_parse("127.0.0.1:7480", &cfg->admin_addr);
    WR_ASSERT(err == 0);
    cfg->ping_interval_ms = 5000;
    cfg->ping_timeout_ms = 10000;
    cfg->hello_timeout_ms = 10000;
    cfg->drain_timeout_ms = 10000;
    cfg->max_agents = 10000;
    cfg->max_streams = 4096;
    cfg->window = WR_MUX_DEFAULT_WINDOW;
    cfg->gossip_addr = "0.0.0.0:7946";
    cfg->peer_enabled = true;
    err = wr_addr_parse("0.0.0.0:7444", &cfg->peer_addr);
    WR_ASSERT(err == 0);
}

static const char *const nd_reject_class_names[ND_REJECT__COUNT] = {
    [ND_REJECT_TLS] = "tls",           [ND_REJECT_AUTH] = "auth",
    [ND_REJECT_PROTOCOL] = "protocol", [ND_REJECT_VERSION] = "version",
    [ND_REJECT_TIMEOUT] = "timeout",   [ND_REJECT_LIMIT] = "limit",
    [ND_REJECT_OTHER] = "other",
};

const char *nd__reject_class_str(enum nd_reject_class c)
{
    return (unsigned)c < ND_REJECT__COUNT ? nd_reject_class_names[c] : "other";
}

void nd__node_count_reject(struct nd_node *n, enum nd_reject_class c)
{
    if ((unsigned)c >= ND_REJECT__COUNT)
        c = ND_REJECT_OTHER;
    n->stats.agents_rejected++;
    n->stats.rejected_by[c]++;
}

void nd__node_count_proxy(struct nd_node *n, const struct wr_conn *c, enum wr_conn_proxy r,
                          const char *why, const char *where)
{
    switch (r) {
    case WR_CONN_PROXY_OK:
    case WR_CONN_PROXY_LOCAL:
        if (r == WR_CONN_PROXY_OK)
            n->stats.proxy_ok++;
        else
            n->stats.proxy_local++;
        WR_DEBUG("node", "proxy_header", "%s conn=%llu via=%s client=%s local=%s", where,
                 (unsigned long long)wr_conn_id(c), wr_conn_sock_peer_str(c), wr_conn_peer_str(c),
                 r == WR_CONN_PROXY_LOCAL ? "yes" : "no");
        return;
    case WR_CONN_PROXY_BAD:
        n->stats.proxy_bad++;
        WR_WARN("node", "proxy_header_bad", "%s conn=%llu peer=%s reason=\"%s\"", where,
                (unsigned long long)wr_conn_id(c), wr_conn_sock_peer_str(c),
                why != NULL ? why : "bad header");
        return;
    case WR_CONN_PROXY_OFF:
    case WR_CONN_PROXY_WAITING:
        return;
    }
}

static void nd_node_log_stats(struct nd_node *n, const char *ev)
{
    struct wr_tls_stats ts;
    wr_tls_get_stats(&ts);
    WR_INFO("node", ev,
            "agents=%u pools=%u relays=%u agents_accepted=%llu agents_rejected=%llu "
            "visitors=%llu visitors_refused=%llu streams=%llu streams_failed=%llu "
            "bytes_up=%llu bytes_down=%llu tls_suite=%s tls_aead=%s tls_dev_encrypt=%llu "
            "tls_dev_decrypt=%llu tls_dev_auth_fail=%llu tls_dev_bytes=%llu",
            n->n_tuncs, n->reg.n_pools, n->n_relays, (unsigned long long)n->stats.agents_accepted,
            (unsigned long long)n->stats.agents_rejected,
            (unsigned long long)n->stats.visitors_accepted,
            (unsigned long long)n->stats.visitors_refused,
            (unsigned long long)n->stats.streams_opened,
            (unsigned long long)n->stats.streams_failed, (unsigned long long)n->stats.bytes_up,
            (unsigned long long)n->stats.bytes_down, wr_tls_suite(), wr_tls_aead_backend(),
            (unsigned long long)ts.dev_encrypt, (unsigned long long)ts.dev_decrypt,
            (unsigned long long)ts.dev_auth_fail, (unsigned long long)ts.dev_bytes);
}

static void nd_node_on_handle_close(uv_handle_t *h)
{
    struct nd_node *n = h->data;
    n->pending_closes--;
}

static void nd_node_close_handle(struct nd_node *n, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = n;
    n->pending_closes++;
    uv_close(h, nd_node_on_handle_close);
}

void nd__node_maybe_stopped(struct nd_node *n)
{
    if (!n->draining || n->stopped || n->n_tuncs > 0 || n->n_relays > 0 || !nd__peer_idle(n))
        return;
    n->stopped = true;
    WR_INFO("node", "stopped", "node=%s", n->node_id);
    nd__admin_stop(n);
    nd__gossip_stop(n);
    nd_node_close_handle(n, (uv_handle_t *)&n->drain_timer);
    nd_node_close_handle(n, (uv_handle_t *)&n->sig_term);
    nd_node_close_handle(n, (uv_handle_t *)&n->sig_int);
    nd_node_close_handle(n, (uv_handle_t *)&n->sig_usr1);
}

void nd__node_drain_progress(struct nd_node *n)
{
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &n->tuncs)
    {
        struct nd_tunc *t = nd__tunc_from_link(pos);
        if (nd__tunc_drained(t))
            nd__tunc_close(t, WR_CODE_OK, "drained");
    }
    nd__peer_drain_progress(n);
    nd__node_maybe_stopped(n);
}

static void nd_node_force_close(struct nd_node *n, const char *why)
{
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &n->tuncs)
    {
        nd__tunc_close(nd__tunc_from_link(pos), WR_CODE_SHUTDOWN, why);
    }
    nd__peer_force_close(n);
    nd__node_maybe_stopped(n);
}

static void nd_node_on_drain_timer(uv_timer_t *timer)
{
    struct nd_node *n = timer->data;
    WR_WARN("node", "drain_deadline", "agents=%u relays=%u", n->n_tuncs, n->n_relays);
    nd_node_force_close(n, "drain deadline");
}

void nd_node_drain(struct nd_node *n)
{
    if (n->draining) {
        nd_node_force_close(n, "second signal");
        return;
    }
    /* Visitors the kernel already accepted are served, not reset by the
     * close; each listener is closed right after its queue is taken, so
     * that the window for a new one to slip in is as short as it can be
     * (later ones are refused at SYN and the balancer tries elsewhere). */
    uint32_t flushed = 0;
    for (uint32_t i = 0; i < n->n_entries; i++) {
        flushed += nd__entry_flush_queue(&n->entries[i]);
        nd_node_close_handle(n, (uv_handle_t *)&n->entries[i].tcp);
    }
    n->draining = true;
    /* Tell the cluster first, so that peers stop sending visitors our way
     * while the streams finish. */
    nd__gossip_leave(n);
    WR_INFO("node", "draining", "node=%s agents=%u relays=%u queued_visitors=%u deadline_ms=%u",
            n->node_id, n->n_tuncs, n->n_relays, flushed, n->cfg.drain_timeout_ms);
    nd_node_close_handle(n, (uv_handle_t *)&n->listener);
    nd__peer_drain(n);
    uv_timer_start(&n->drain_timer, nd_node_on_drain_timer, n->cfg.drain_timeout_ms, 0);
    n->drain_timer.data = n;
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &n->tuncs)
    {
        nd__tunc_goaway(nd__tunc_from_link(pos));
    }
    nd__node_maybe_stopped(n);
}

static void nd_node_on_signal(uv_signal_t *sig, int signum)
{
    struct nd_node *n = sig->data;
    if (signum == SIGUSR1) {
        nd_node_log_stats(n, "stats");
        return;
    }
    WR_INFO("node", "signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    nd_node_drain(n);
}

static void nd_node_on_agent_connection(uv_stream_t *server, int status)
{
    struct nd_node *n = server->data;
    if (status < 0) {
        WR_WARN("node", "accept_failed", "err=%s", wr_err_name(status));
        return;
    }
    nd__tunc_accept(n, server);
}

static int nd_node_write_ready_file(struct nd_node *n)
{
    char buf[8192];
    size_t len = 0;
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "node %s\nlisten %s\n", n->node_id,
                            n->listen_str);
    for (uint32_t i = 0; i < n->n_entries && len < sizeof(buf) - 256; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "entry %s %s/%s\n",
                                n->entries[i].addr_str, n->entries[i].cfg.tunnel,
                                n->entries[i].cfg.service);
    if (n->admin_str[0] != '\0')
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "admin %s\n", n->admin_str);
    if (n->gossip_str[0] != '\0')
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "gossip %s\n", n->gossip_str);
    if (n->peer_str[0] != '\0')
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "peer %s\n", n->peer_str);
    return wr_write_file(n->cfg.ready_file, buf, len, 0644);
}

struct nd_node *nd_node_new(uv_loop_t *loop, const struct nd_config *cfg, int *err)
{
    struct nd_node *n = wr_xcalloc(1, sizeof(*n));
    n->loop = loop;
    n->cfg = *cfg;
    n->start_ms = wr_now_ms();
    n->start_wall_s = wr_wall_s();
    nd__registry_init(&n->reg);
    nd_list_init(&n->tuncs);
    snprintf(n->node_id, sizeof(n->node_id), "%s", cfg->node_id);

    *err = wr_cert_ca_pubkey(cfg->ca_file, n->ca_pk);
    if (*err != 0) {
        WR_ERROR("node", "config", "what=\"cannot read the CA certificate\" file=%s err=%s",
                 cfg->ca_file, wr_err_name(*err));
        goto fail;
    }
    *err = wr_cert_ca_cluster(cfg->ca_file, n->cluster, sizeof(n->cluster));
    if (*err != 0) {
        WR_ERROR("node", "config", "what=\"cannot read the cluster name\" file=%s err=%s",
                 cfg->ca_file, wr_err_name(*err));
        goto fail;
    }
    n->tls = wr_tls_ctx_new_server(cfg->cert_file, cfg->key_file, err);
    if (n->tls == NULL) {
        WR_ERROR("node", "config",
                 "what=\"cannot load the certificate or key\" cert=%s key=%s "
                 "err=%s",
                 cfg->cert_file, cfg->key_file, wr_err_name(*err));
        goto fail;
    }
    uv_tcp_init(loop, &n->listener);
    n->listener.data = n;
    *err = uv_tcp_bind(&n->listener, (const struct sockaddr *)&cfg->listen_addr, 0);
    if (*err != 0) {
        char a[WR_ADDR_STRLEN];
        WR_ERROR("node", "config", "what=\"cannot bind the agent listener\" addr=%s err=%s",
                 wr_addr_str((const struct sockaddr *)&cfg->listen_addr, a, sizeof(a)),
                 wr_err_name(*err));
        goto fail_listener;
    }
    return n;

fail_listener:
    /* The handle was initialised: it must be closed and the loop run once. */
    uv_close((uv_handle_t *)&n->listener, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    wr_tls_ctx_free(n->tls);
fail:
    free(n);
    return NULL;
}

int nd_node_start(struct nd_node *n)
{
    /* Signals and the drain timer first: if a listener fails below, main()
     * drains (closing what was opened) before it exits. */
    uv_timer_init(n->loop, &n->drain_timer);
    n->drain_timer.data = n;
    uv_signal_init(n->loop, &n->sig_term);
    uv_signal_init(n->loop, &n->sig_int);
    uv_signal_init(n->loop, &n->sig_usr1);
    n->sig_term.data = n->sig_int.data = n->sig_usr1.data = n;
    uv_signal_start(&n->sig_term, nd_node_on_signal, SIGTERM);
    uv_signal_start(&n->sig_int, nd_node_on_signal, SIGINT);
    uv_signal_start(&n->sig_usr1, nd_node_on_signal, SIGUSR1);
    int err = uv_listen((uv_stream_t *)&n->listener, 1024, nd_node_on_agent_connection);
    if (err != 0) {
        WR_ERROR("node", "listen_failed", "err=%s", wr_err_name(err));
        return err;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len);
    wr_addr_str((struct sockaddr *)&ss, n->listen_str, sizeof(n->listen_str));

    for (uint32_t i = 0; i < n->cfg.n_entries; i++) {
        struct nd_entry *e = &n->entries[i];
        e->cfg = n->cfg.entries[i];
        err = nd__entry_start(n, e);
        n->n_entries++;
        if (err != 0) {
            char a[WR_ADDR_STRLEN];
            WR_ERROR("node", "entry_listen_failed", "addr=%s err=%s",
                     wr_addr_str((const struct sockaddr *)&e->cfg.addr, a, sizeof(a)),
                     wr_err_name(err));
            return err;
        }
        WR_INFO("node", "entry_listening", "addr=%s tunnel=%s service=%s", e->addr_str,
                e->cfg.tunnel, e->cfg.service);
    }
    if (n->cfg.admin_enabled) {
        err = nd__admin_start(n, n->admin_str);
        if (err != 0) {
            char a[WR_ADDR_STRLEN];
            WR_ERROR("node", "admin_listen_failed", "addr=%s err=%s",
                     wr_addr_str((const struct sockaddr *)&n->cfg.admin_addr, a, sizeof(a)),
                     wr_err_name(err));
            return err;
        }
        WR_INFO("node", "admin_listening", "addr=%s", n->admin_str);
    }
    /* Before gossip, which advertises the bound peer address. */
    err = nd__peer_start(n);
    if (err != 0)
        return err;
    err = nd__gossip_start(n);
    if (err != 0)
        return err;
    WR_INFO("node", "listening", "node=%s cluster=%s addr=%s tls_suite=%s", n->node_id, n->cluster,
            n->listen_str, wr_tls_suite());
    if (n->cfg.n_proxy_from > 0) {
        char nets[ND_MAX_PROXY_FROM * WR_CIDR_STRLEN];
        size_t used = 0;
        for (uint32_t i = 0; i < n->cfg.n_proxy_from && used < sizeof(nets); i++) {
            char one[WR_CIDR_STRLEN];
            used += (size_t)snprintf(nets + used, sizeof(nets) - used, "%s%s", i ? "," : "",
                                     wr_cidr_str(&n->cfg.proxy_from[i], one, sizeof(one)));
        }
        WR_INFO("node", "proxy_protocol", "from=%s", nets);
    }
    if (n->cfg.ready_file != NULL) {
        err = nd_node_write_ready_file(n);
        if (err != 0) {
            WR_ERROR("node", "ready_file_failed", "file=%s err=%s", n->cfg.ready_file,
                     wr_err_name(err));
            return err;
        }
    }
    return 0;
}

void nd_node_free(struct nd_node *n)
{
    nd_node_log_stats(n, "exit_stats");
    nd__admin_free(n);
    nd__peer_free(n);
    nd__registry_cleanup(&n->reg);
    wr_tls_ctx_free(n->tls);
    free(n);
}
