/*
 * nd_admin_api.c: what the admin API says: the router (path -> endpoint) and
 * the bodies of /healthz, /readyz, /v1/self, /v1/tunnels, /v1/members (JSON, jansson) and
 * /metrics (Prometheus text format 0.0.4). No sockets and no HTTP framing
 * here: nd_admin.c parses requests and writes responses.
 */
#include "nd_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "disc.h"

#ifndef WARREN_VERSION
#define WARREN_VERSION "0.0.0"
#endif

int nd__buf_printf(struct wr_buf *b, const char *fmt, ...)
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

/* ---- router ------------------------------------------------------------------ */

static const struct {
    const char *path;
    enum nd_admin_method method;
} nd_admin_routes[ND_ADMIN_R__COUNT] = {
    [ND_ADMIN_R_HEALTHZ] = {"/healthz", ND_ADMIN_GET},
    [ND_ADMIN_R_READYZ] = {"/readyz", ND_ADMIN_GET},
    [ND_ADMIN_R_SELF] = {"/v1/self", ND_ADMIN_GET},
    [ND_ADMIN_R_TUNNELS] = {"/v1/tunnels", ND_ADMIN_GET},
    [ND_ADMIN_R_METRICS] = {"/metrics", ND_ADMIN_GET},
    [ND_ADMIN_R_MEMBERS] = {"/v1/members", ND_ADMIN_GET},
    [ND_ADMIN_R_KEYRING] = {"/v1/keyring", ND_ADMIN_GET},
    [ND_ADMIN_R_KEYRING_INSTALL] = {"/v1/keyring/install", ND_ADMIN_POST},
    [ND_ADMIN_R_KEYRING_USE] = {"/v1/keyring/use", ND_ADMIN_POST},
    [ND_ADMIN_R_KEYRING_REMOVE] = {"/v1/keyring/remove", ND_ADMIN_POST},
};

int nd__admin_route(enum nd_admin_method method, struct wr_slice path, enum nd_admin_route *route)
{
    const uint8_t *q = memchr(path.ptr, '?', path.len);
    if (q != NULL)
        path.len = (size_t)(q - path.ptr);
    for (int r = 0; r < ND_ADMIN_R__COUNT; r++) {
        if (!wr_slice_eq(path, wr_slice_str(nd_admin_routes[r].path)))
            continue;
        *route = (enum nd_admin_route)r;
        return method == nd_admin_routes[r].method ? 200 : 405;
    }
    return 404;
}

enum nd_admin_method nd__admin_route_method(enum nd_admin_route route)
{
    return route < ND_ADMIN_R__COUNT ? nd_admin_routes[route].method : ND_ADMIN_OTHER;
}

bool nd__admin_is_ready(const struct nd_node *n)
{
    return n->admin != NULL && !n->draining && !n->stopped && nd__gossip_is_joined(n);
}

/* ---- JSON --------------------------------------------------------------------- */

static int nd_json_dump_cb(const char *buf, size_t size, void *data)
{
    return wr_buf_append(data, buf, size) == 0 ? 0 : -1;
}

int nd__json_finish(json_t *root, struct wr_buf *body)
{
    if (root == NULL)
        return WR_ENOMEM;
    int rc = json_dump_callback(root, nd_json_dump_cb, body, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0)
        return WR_ENOMEM;
    return wr_buf_append(body, "\n", 1);
}

static const char *nd_node_state_str(const struct nd_node *n)
{
    return n->stopped ? "stopped" : n->draining ? "draining" : "serving";
}

static uint32_t nd_node_agents_ready(struct nd_node *n)
{
    uint32_t k = 0;
    for (struct nd_list *pos = n->tuncs.next; pos != &n->tuncs; pos = pos->next) {
        struct nd_tunc_info ti;
        nd__tunc_get_info(nd__tunc_from_link(pos), &ti);
        k += ti.in_pool;
    }
    return k;
}

static int nd_admin_self(struct nd_node *n, struct wr_buf *body)
{
    json_t *entries = json_array();
    for (uint32_t i = 0; entries != NULL && i < n->n_entries; i++) {
        const struct nd_entry *e = &n->entries[i];
        json_array_append_new(entries, json_pack("{s:s, s:s, s:s}", "addr", e->addr_str, "tunnel",
                                                 e->cfg.tunnel, "service", e->cfg.service));
    }
    json_t *addrs = json_pack("{s:s, s:s?, s:s?, s:o?}", "listen", n->listen_str, "admin",
                              n->admin_str[0] ? n->admin_str : NULL, "peer",
                              n->peer_str[0] ? n->peer_str : NULL, "entries", entries);
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o?, s:{s:s, s:s}, s:I, s:I, s:I, s:I}", "node_id",
        n->node_id, "cluster", n->cluster, "version", WARREN_VERSION, "state", nd_node_state_str(n),
        "uptime_s", (json_int_t)((wr_now_ms() - n->start_ms) / 1000), "started_at",
        (json_int_t)n->start_wall_s, "pid", (json_int_t)getpid(), "addresses", addrs, "tls",
        "suite", wr_tls_suite(), "aead", wr_tls_aead_backend(), "agents",
        (json_int_t)nd_node_agents_ready(n), "tunnel_connections", (json_int_t)n->n_tuncs,
        "tunnels", (json_int_t)n->reg.n_pools, "streams_open", (json_int_t)n->n_relays);
    return nd__json_finish(root, body);
}

static int nd_admin_tunnels(struct nd_node *n, struct wr_buf *body)
{
    json_t *tunnels = json_object();
    json_t *root = json_pack("{s:s, s:s, s:o?}", "node_id", n->node_id, "cluster", n->cluster,
                             "tunnels", tunnels);
    if (root == NULL)
        return WR_ENOMEM;
    /* Every connection that has a tunnel (READY in its pool, or DRAINING),
     * grouped by tunnel id; within a tunnel in the order they registered. */
    for (struct nd_list *pos = n->tuncs.next; pos != &n->tuncs; pos = pos->next) {
        struct nd_tunc_info ti;
        nd__tunc_get_info(nd__tunc_from_link(pos), &ti);
        if (ti.tunnel[0] == '\0')
            continue;
        json_t *tun = json_object_get(tunnels, ti.tunnel);
        if (tun == NULL) {
            const struct nd_pool *p = nd__registry_get(&n->reg, ti.tunnel, false);
            tun = json_pack("{s:[], s:I, s:I, s:I}", "agents", "members",
                            (json_int_t)(p ? p->n_members : 0), "total_weight",
                            (json_int_t)(p ? p->total_weight : 0), "exclusive",
                            (json_int_t)(p ? p->n_exclusive : 0));
            if (tun == NULL || json_object_set_new(tunnels, ti.tunnel, tun) != 0)
                goto fail;
        }
        json_t *a = json_pack("{s:s, s:i, s:s, s:I, s:s, s:I, s:i}", "agent_id", ti.agent_id,
                              "weight", (int)ti.weight, "peer", ti.peer, "conn",
                              (json_int_t)ti.conn_id, "state", ti.state, "rtt_us",
                              (json_int_t)ti.rtt_us, "streams_open", (int)ti.streams_open);
        if (a == NULL || json_array_append_new(json_object_get(tun, "agents"), a) != 0)
            goto fail;
    }
    return nd__json_finish(root, body);

fail:
    json_decref(root);
    return WR_ENOMEM;
}

/* One member: id, state, incarnation, role, addresses and tunnels
 * ({tunnel: [{agent, weight}]}). */
static json_t *nd_admin_member(const struct disc_member *m)
{
    static const char *const kinds[DISC_ADDR__COUNT] = {
        [DISC_ADDR_GOSSIP] = "gossip", [DISC_ADDR_TUNNEL] = "tunnel", [DISC_ADDR_PEER] = "peer",
        [DISC_ADDR_ADMIN] = "admin",   [DISC_ADDR_LISTEN] = "listen",
    };
    json_t *addrs = json_object();
    json_t *tunnels = json_object();
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:b, s:o?, s:o?}", "id", disc_member_id(m), "state",
                          disc_member_state_str(disc_member_get_state(m)), "incarnation",
                          (json_int_t)disc_member_incarnation(m), "role",
                          disc_role_str(disc_member_role(m)), "self", disc_member_is_self(m),
                          "addresses", addrs, "tunnels", tunnels);
    if (o == NULL)
        return NULL;
    for (int k = 0; k < DISC_ADDR__COUNT; k++) {
        const char *a = disc_member_addr(m, (enum disc_addr_kind)k);
        if (a[0] != '\0' && json_object_set_new(addrs, kinds[k], json_string(a)) != 0)
            goto fail;
    }
    for (size_t i = 0; i < disc_member_tunnel_count(m); i++) {
        const struct disc_tunnel_entry *e = disc_member_tunnel_get(m, i);
        json_t *list = json_object_get(tunnels, e->tunnel);
        if (list == NULL) {
            list = json_array();
            if (list == NULL || json_object_set_new(tunnels, e->tunnel, list) != 0)
                goto fail;
        }
        if (json_array_append_new(
                list, json_pack("{s:s, s:i}", "agent", e->agent, "weight", (int)e->weight)) != 0)
            goto fail;
    }
    return o;

fail:
    json_decref(o);
    return NULL;
}

/* The members as this node sees them, self included; [] when gossip is off. */
static int nd_admin_members(struct nd_node *n, struct wr_buf *body)
{
    json_t *root = json_array();
    if (root == NULL)
        return WR_ENOMEM;
    size_t count = n->gossip != NULL ? disc_cluster_member_count(n->gossip) : 0;
    for (size_t i = 0; i < count; i++) {
        const struct disc_member *m = disc_cluster_member_at(n->gossip, i);
        if (m == NULL)
            break;
        if (json_array_append_new(root, nd_admin_member(m)) != 0) {
            json_decref(root);
            return WR_ENOMEM;
        }
    }
    return nd__json_finish(root, body);
}

/* ---- Prometheus text ----------------------------------------------------------- */

/* Escapes per the exposition format: HELP text escapes \ and newline; label
 * values also escape the double quote. */
static void nd_prom_esc(struct nd_prom *p, const char *s, bool label)
{
    for (; p->err == 0 && *s != '\0'; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && label)
            rep = "\\\"";
        p->err = rep != NULL ? wr_buf_append(p->b, rep, 2) : wr_buf_append(p->b, s, 1);
    }
}

void nd__prom_family(struct nd_prom *p, const char *name, const char *type, const char *help)
{
    if (p->err == 0)
        p->err = nd__buf_printf(p->b, "# HELP %s ", name);
    nd_prom_esc(p, help, false);
    if (p->err == 0)
        p->err = nd__buf_printf(p->b, "\n# TYPE %s %s\n", name, type);
}

void nd__prom_sample(struct nd_prom *p, const char *name, const char *const *labels, uint64_t value)
{
    if (p->err == 0)
        p->err = wr_buf_append(p->b, name, strlen(name));
    if (labels != NULL && labels[0] != NULL) {
        for (size_t i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
            if (p->err == 0)
                p->err = nd__buf_printf(p->b, "%s%s=\"", i == 0 ? "{" : ",", labels[i]);
            nd_prom_esc(p, labels[i + 1], true);
            if (p->err == 0)
                p->err = wr_buf_append(p->b, "\"", 1);
        }
        if (p->err == 0)
            p->err = wr_buf_append(p->b, "}", 1);
    }
    if (p->err == 0)
        p->err = nd__buf_printf(p->b, " %llu\n", (unsigned long long)value);
}

/* A family with one unlabelled sample. */
static void nd_prom_one(struct nd_prom *p, const char *name, const char *type, const char *help,
                        uint64_t v)
{
    nd__prom_family(p, name, type, help);
    nd__prom_sample(p, name, NULL, v);
}

/* The gossip families; nothing when gossip is off. */
static void nd_prom_gossip(struct nd_prom *p, struct nd_node *n)
{
    if (n->gossip == NULL)
        return;
    struct disc_stats gs;
    disc_cluster_get_stats(n->gossip, &gs);
    nd_prom_one(p, "warren_gossip_joined", "gauge", "1 once this node has joined the cluster.",
                nd__gossip_is_joined(n));
    nd__prom_family(p, "warren_gossip_members", "gauge", "Members known, self included, by state.");
    for (int s = 0; s < DISC_MEMBER_ST__COUNT; s++) {
        char lc[16];
        snprintf(lc, sizeof(lc), "%s", disc_member_state_str((enum disc_member_state)s));
        for (char *c = lc; *c != '\0'; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        const char *l[] = {"state", lc, NULL};
        nd__prom_sample(p, "warren_gossip_members", l, gs.members[s]);
    }
    nd_prom_one(p, "warren_gossip_probes_total", "counter", "Direct probes sent.", gs.probes);
    nd_prom_one(p, "warren_gossip_probe_failures_total", "counter",
                "Probes answered neither directly nor indirectly.", gs.probe_failures);
    nd_prom_one(p, "warren_gossip_suspicions_total", "counter", "Members we started suspecting.",
                gs.suspicions);
    nd_prom_one(p, "warren_gossip_refutations_total", "counter",
                "Times this node refuted a suspicion of itself.", gs.refutations);
    nd__prom_family(p, "warren_gossip_messages_total", "counter", "Gossip messages, by direction.");
    const char *in[] = {"direction", "in", NULL}, *out[] = {"direction", "out", NULL};
    nd__prom_sample(p, "warren_gossip_messages_total", in, gs.msgs_in);
    nd__prom_sample(p, "warren_gossip_messages_total", out, gs.msgs_out);
    nd__prom_family(p, "warren_gossip_bytes_total", "counter", "Gossip bytes, by direction.");
    nd__prom_sample(p, "warren_gossip_bytes_total", in, gs.bytes_in);
    nd__prom_sample(p, "warren_gossip_bytes_total", out, gs.bytes_out);
    nd_prom_one(p, "warren_gossip_decrypt_failures_total", "counter",
                "Packets no key of the keyring authenticated (dropped).", gs.decrypt_failures);
}

void nd__prom_node(struct nd_prom *p, struct nd_node *n)
{
    const struct nd_stats *st = &n->stats;
    struct wr_tls_stats ts;
    wr_tls_get_stats(&ts);

    nd__prom_family(p, "warren_build_info", "gauge",
                    "Always 1; the labels say which build and TLS set-up runs.");
    const char *bl[] = {"version", WARREN_VERSION,        "tls_suite", wr_tls_suite(),
                        "aead",    wr_tls_aead_backend(), NULL};
    nd__prom_sample(p, "warren_build_info", bl, 1);
    nd_prom_one(p, "warren_node_uptime_seconds", "gauge", "Seconds since the node started.",
                (wr_now_ms() - n->start_ms) / 1000);
    nd_prom_one(p, "warren_node_draining", "gauge", "1 while the node drains (after SIGTERM).",
                n->draining);

    nd_prom_one(p, "warren_node_agents_connected", "gauge",
                "Agent tunnel connections registered in a pool (READY).", nd_node_agents_ready(n));
    nd_prom_one(p, "warren_node_tunnel_connections", "gauge",
                "Agent tunnel connections in any state (handshake, ready, draining).", n->n_tuncs);
    nd_prom_one(p, "warren_node_tunnels", "gauge", "Tunnels with at least one live agent here.",
                n->reg.n_pools);
    nd_prom_one(p, "warren_node_agents_accepted_total", "counter",
                "Agents whose HELLO was accepted.", st->agents_accepted);
    nd__prom_family(p, "warren_node_agents_rejected_total", "counter",
                    "Agent connections turned away, by reason.");
    for (int c = 0; c < ND_REJECT__COUNT; c++) {
        const char *l[] = {"reason", nd__reject_class_str((enum nd_reject_class)c), NULL};
        nd__prom_sample(p, "warren_node_agents_rejected_total", l, st->rejected_by[c]);
    }

    nd_prom_one(p, "warren_node_visitors_accepted_total", "counter",
                "Visitor connections accepted on entry points.", st->visitors_accepted);
    nd_prom_one(p, "warren_node_visitors_refused_total", "counter",
                "Visitor connections closed at once (no live agent, draining, no stream).",
                st->visitors_refused);
    nd_prom_one(p, "warren_node_streams_opened_total", "counter",
                "Streams opened to agents for visitors.", st->streams_opened);
    nd_prom_one(p, "warren_node_streams_failed_total", "counter",
                "Visitor streams that ended with an error.", st->streams_failed);
    nd_prom_one(p, "warren_node_streams_open", "gauge", "Visitor streams open now.", n->n_relays);
    nd__prom_family(p, "warren_node_relay_bytes_total", "counter",
                    "Bytes relayed for visitors (up: visitor to agent), counted when a stream "
                    "ends.");
    const char *up[] = {"direction", "up", NULL}, *down[] = {"direction", "down", NULL};
    nd__prom_sample(p, "warren_node_relay_bytes_total", up, st->bytes_up);
    nd__prom_sample(p, "warren_node_relay_bytes_total", down, st->bytes_down);
    nd__prom_family(p, "warren_node_proxy_headers_total", "counter",
                    "PROXY protocol headers from --proxy-protocol-from peers, by result: ok (a "
                    "client address), local (LOCAL or UNKNOWN: the socket's address kept), bad "
                    "(missing, malformed or late: closed).");
    const char *pok[] = {"result", "ok", NULL}, *plocal[] = {"result", "local", NULL},
               *pbad[] = {"result", "bad", NULL};
    nd__prom_sample(p, "warren_node_proxy_headers_total", pok, st->proxy_ok);
    nd__prom_sample(p, "warren_node_proxy_headers_total", plocal, st->proxy_local);
    nd__prom_sample(p, "warren_node_proxy_headers_total", pbad, st->proxy_bad);

    /* Forwarding between nodes (nd_peer.c). */
    struct nd_peer_stats ps;
    nd__peer_get_stats(n, &ps);
    const char *fout[] = {"direction", "out", NULL}, *fin[] = {"direction", "in", NULL};
    nd__prom_family(p, "warren_node_streams_forwarded_total", "counter",
                    "Visitor streams forwarded between nodes: out, visitors of ours sent to a "
                    "peer node; in, a peer's streams relayed to an agent here.");
    nd__prom_sample(p, "warren_node_streams_forwarded_total", fout, ps.fwd_out);
    nd__prom_sample(p, "warren_node_streams_forwarded_total", fin, ps.fwd_in);
    nd__prom_family(p, "warren_node_forward_refused_total", "counter",
                    "Forwarding refused: out, visitors needing a peer that got none (no holder, "
                    "link or stream failure); in, peer streams refused (no agent here, hop "
                    "limit, draining).");
    nd__prom_sample(p, "warren_node_forward_refused_total", fout, ps.refused_out);
    nd__prom_sample(p, "warren_node_forward_refused_total", fin, ps.refused_in);
    nd_prom_one(p, "warren_node_peer_links", "gauge",
                "Peer links to other nodes with TLS done (ready or draining).", ps.links);

    nd__prom_family(p, "warren_tls_handshakes_total", "counter",
                    "TLS handshakes of this process, by result.");
    const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "failed", NULL};
    nd__prom_sample(p, "warren_tls_handshakes_total", ok, ts.handshakes_ok);
    nd__prom_sample(p, "warren_tls_handshakes_total", failed, ts.handshakes_failed);
    nd_prom_one(p, "warren_tls_device_encrypt_total", "counter",
                "AES-256-GCM record encryptions done by the crypto device.", ts.dev_encrypt);
    nd_prom_one(p, "warren_tls_device_decrypt_total", "counter",
                "AES-256-GCM record decryptions done by the crypto device.", ts.dev_decrypt);
    nd_prom_one(p, "warren_tls_device_auth_failures_total", "counter",
                "Record decryptions that failed authentication.", ts.dev_auth_fail);
    nd_prom_one(p, "warren_tls_device_bytes_total", "counter",
                "Bytes through the crypto device, both directions.", ts.dev_bytes);
    nd_prom_gossip(p, n);
}

static int nd_admin_metrics(struct nd_node *n, struct wr_buf *body)
{
    struct nd_prom p = {.b = body, .err = 0};
    nd__prom_node(&p, n);
    return p.err;
}

/* ---- dispatch ------------------------------------------------------------------ */

int nd__admin_render(struct nd_node *n, enum nd_admin_route route, struct wr_slice req,
                     struct wr_buf *body, const char **ctype)
{
    static const char text[] = "text/plain; charset=utf-8";
    size_t mark = body->len;
    int status = 200;
    int err = 0;
    *ctype = text;
    switch (route) {
    case ND_ADMIN_R_HEALTHZ:
        err = wr_buf_append(body, "ok\n", 3);
        break;
    case ND_ADMIN_R_READYZ:
        if (nd__admin_is_ready(n)) {
            err = wr_buf_append(body, "ready\n", 6);
        } else {
            status = 503;
            err = nd__buf_printf(body, "%s\n", nd_node_state_str(n));
        }
        break;
    case ND_ADMIN_R_SELF:
        *ctype = "application/json";
        err = nd_admin_self(n, body);
        break;
    case ND_ADMIN_R_TUNNELS:
        *ctype = "application/json";
        err = nd_admin_tunnels(n, body);
        break;
    case ND_ADMIN_R_MEMBERS:
        *ctype = "application/json";
        err = nd_admin_members(n, body);
        break;
    case ND_ADMIN_R_METRICS:
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        err = nd_admin_metrics(n, body);
        break;
    case ND_ADMIN_R_KEYRING:
    case ND_ADMIN_R_KEYRING_INSTALL:
    case ND_ADMIN_R_KEYRING_USE:
    case ND_ADMIN_R_KEYRING_REMOVE:
        *ctype = "application/json";
        status = nd__gossip_keyring_api(n, route, req, body);
        if (status == 500)
            err = WR_ENOMEM;
        break;
    default:
        err = WR_EUSAGE;
        break;
    }
    if (err != 0) {
        /* Drop a partial body. */
        body->len = mark;
        *ctype = text;
        return 500;
    }
    return status;
}
