/*
 * nd_entry.c: TCP entry points. Each maps a listening address to one
 * tunnel/service: a visitor connection becomes one stream to an agent picked
 * from the tunnel's pool, relayed by wr_relay. A visitor for a tunnel with no
 * live agent here goes to nd_peer.c, which forwards it to a node holding the
 * tunnel; with none anywhere it is closed at once with a logged reason. A
 * visitor relayed by a trusted balancer (--proxy-protocol-from) is routed
 * only once its PROXY header is in, as the client that header names.
 */
#include "nd_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The PROXY header must arrive this soon after the connection: the spec
 * asks for at least 3 s (a TCP retransmit), and a visitor is waiting. */
#define ND_ENTRY_PROXY_TIMEOUT_MS 3000

static void nd_entry_on_relay_done(struct wr_relay *r, int err, const char *why, void *arg)
{
    struct nd_node *n = arg;
    struct wr_relay_stats st;
    wr_relay_get_stats(r, &st);
    n->stats.bytes_up += st.bytes_up;
    n->stats.bytes_down += st.bytes_down;
    n->n_relays--;
    if (err != 0) {
        n->stats.streams_failed++;
        WR_DEBUG("node", "visitor_stream_failed", "err=%s reason=%s up=%llu down=%llu",
                 wr_err_name(err), why ? why : "-", (unsigned long long)st.bytes_up,
                 (unsigned long long)st.bytes_down);
    }
    if (n->draining)
        nd__node_drain_progress(n);
}

static void nd_entry_on_refused_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs nd_entry_refused_cbs = {
    .on_close = nd_entry_on_refused_close,
};

static void nd_entry_refuse(struct nd_entry *e, struct wr_conn *c, const char *why)
{
    struct nd_node *n = e->node;
    n->stats.visitors_refused++;
    WR_WARN("node", "visitor_refused", "entry=%s tunnel=%s service=%s client=%s reason=\"%s\"",
            e->addr_str, e->cfg.tunnel, e->cfg.service, wr_conn_peer_str(c), why);
    wr_conn_set_cbs(c, &nd_entry_refused_cbs, NULL);
    wr_conn_close(c, false);
}

/* A visitor accepted on <e>: a stream to a local agent, or forwarded. */
static void nd_entry_route(struct nd_entry *e, struct wr_conn *c)
{
    struct nd_node *n = e->node;
    int err = 0;
    n->stats.visitors_accepted++;
    if (n->draining) {
        nd_entry_refuse(e, c, "node draining");
        return;
    }
    struct nd_pool *pool = nd__registry_get(&n->reg, e->cfg.tunnel, false);
    struct nd_pool_member *m = nd__pool_pick(pool, wr_rand64());
    if (m == NULL) {
        /* A node that holds the tunnel (gossip), over a peer link. */
        const char *why = nd__peer_forward(n, e, c);
        if (why != NULL)
            nd_entry_refuse(e, c, why);
        return;
    }
    struct wr_msg_open o = {.hop = 0};
    memcpy(o.service, e->cfg.service, sizeof(o.service));
    snprintf(o.client_addr, sizeof(o.client_addr), "%s", wr_conn_peer_str(c));
    struct wr_buf hdr = {0};
    err = wr_msg_open_encode(&o, &hdr);
    struct wr_mux_stream *s = NULL;
    if (err == 0)
        s = nd__tunc_open_stream(m->owner, wr_buf_peek(&hdr), &err);
    wr_buf_free(&hdr);
    if (s == NULL) {
        char why[96];
        snprintf(why, sizeof(why), "cannot open stream: %s", wr_err_name(err));
        nd_entry_refuse(e, c, why);
        return;
    }
    n->stats.streams_opened++;
    n->n_relays++;
    WR_DEBUG("node", "visitor_routed", "entry=%s client=%s tunnel=%s agent=%s stream=%u",
             e->addr_str, wr_conn_peer_str(c), e->cfg.tunnel, nd__tunc_agent(m->owner),
             wr_mux_stream_id(s));
    wr_relay_new(c, s, nd_entry_on_relay_done, n);
}

/* A trusted balancer's visitor: its PROXY header is in (or is not coming). */
static void nd_entry_on_proxy_ready(struct wr_conn *c, int status, void *arg)
{
    struct nd_entry *e = arg;
    const char *why = NULL;
    enum wr_conn_proxy r = wr_conn_get_proxy(c, &why);
    if (r == WR_CONN_PROXY_WAITING) {
        r = WR_CONN_PROXY_BAD; /* defensive: wr_conn marks any failure BAD */
        why = "connection failed before the header";
    }
    char where[WR_ADDR_STRLEN + 32];
    snprintf(where, sizeof(where), "listener=entry entry=%s", e->addr_str);
    nd__node_count_proxy(e->node, c, r, why, where);
    if (status != 0 || r == WR_CONN_PROXY_BAD) {
        wr_conn_set_cbs(c, &nd_entry_refused_cbs, NULL);
        wr_conn_close(c, false);
        return;
    }
    /* Routed now even if the node began draining meanwhile: it is refused
     * there like any visitor after the drain began. */
    nd_entry_route(e, c);
}

/* Untrusted visitors (and every one with the PROXY protocol off) are ready
 * at once and never call on_ready; trusted ones are routed from it. */
static const struct wr_conn_cbs nd_entry_accept_cbs = {
    .on_ready = nd_entry_on_proxy_ready,
    .on_close = nd_entry_on_refused_close,
};

static struct wr_conn_opts nd_entry_conn_opts(const struct nd_node *n)
{
    struct wr_conn_opts o = {
        .nodelay = true,
        .handshake_timeout_ms = ND_ENTRY_PROXY_TIMEOUT_MS, /* only with a PROXY header */
        .proxy_from = n->cfg.proxy_from,
        .n_proxy_from = n->cfg.n_proxy_from,
    };
    return o;
}

static void nd_entry_accepted(struct nd_entry *e, struct wr_conn *c)
{
    if (wr_conn_get_proxy(c, NULL) == WR_CONN_PROXY_WAITING)
        return; /* nd_entry_on_proxy_ready routes it */
    nd_entry_route(e, c);
}

static void nd_entry_on_connection(uv_stream_t *server, int status)
{
    struct nd_entry *e = server->data;
    if (status < 0) {
        WR_WARN("node", "entry_accept_failed", "entry=%s err=%s", e->addr_str, wr_err_name(status));
        return;
    }
    struct wr_conn_opts opts = nd_entry_conn_opts(e->node);
    int err = 0;
    struct wr_conn *c = wr_conn_accept(server, &opts, &nd_entry_accept_cbs, e, &err);
    if (c == NULL) {
        WR_WARN("node", "entry_accept_failed", "entry=%s err=%s", e->addr_str, wr_err_name(err));
        return;
    }
    nd_entry_accepted(e, c);
}

/*
 * Closing a listener resets the connections the kernel completed but nobody
 * accepted yet: a visitor a load balancer already handed over would fail.
 * So, before the drain closes it, take every queued connection and route it
 * as usual (the node still serves); connections after the close are refused
 * at SYN, and the balancer tries another node.
 */
uint32_t nd__entry_flush_queue(struct nd_entry *e)
{
    uv_os_fd_t fd;
    uint32_t k = 0;
    if (uv_fileno((const uv_handle_t *)&e->tcp, &fd) != 0)
        return 0;
    for (; k < ND_ENTRY_FLUSH_MAX; k++) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            break;
        struct wr_conn_opts opts = nd_entry_conn_opts(e->node);
        int err = 0;
        struct wr_conn *conn =
            wr_conn_adopt(e->node->loop, c, &opts, &nd_entry_accept_cbs, e, &err);
        if (conn == NULL) {
            WR_WARN("node", "entry_accept_failed", "entry=%s err=%s", e->addr_str,
                    wr_err_name(err));
            continue;
        }
        nd_entry_accepted(e, conn);
    }
    return k;
}

int nd__entry_start(struct nd_node *n, struct nd_entry *e)
{
    e->node = n;
    uv_tcp_init(n->loop, &e->tcp);
    e->tcp.data = e;
    int err = uv_tcp_bind(&e->tcp, (const struct sockaddr *)&e->cfg.addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&e->tcp, 1024, nd_entry_on_connection);
    if (err != 0)
        return err;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&e->tcp, (struct sockaddr *)&ss, &len);
    wr_addr_str((struct sockaddr *)&ss, e->addr_str, sizeof(e->addr_str));
    return 0;
}
