/*
 * nd_gossip.c: the node's gossip membership (discovery/): starting the
 * cluster with the node's addresses, joining, publishing the tunnel set
 * built from the registry, logging member events, and the leave + close on
 * drain. The admin API renders members in nd_admin_api.c; the SWIM protocol
 * itself is discovery/'s.
 */
#include "nd_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "disc.h"

_Static_assert(ND_CLUSTER_KEYS_MAX == DISC_KEYRING_MAX, "the node's key list fits a keyring");
_Static_assert(ND_CLUSTER_KEY_LEN == DISC_KEY_LEN, "gossip key size");

/* How long a leave gets to go out before the sockets close: a few gossip
 * rounds (50 ms each by default). */
#define ND_GOSSIP_LEAVE_GRACE_MS 300

static bool nd_gossip_is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* The first non-loopback IPv4 address of this host, for a wildcard bind
 * without --advertise-addr (what memberlist does too). False when none. */
static bool nd_gossip_first_ipv4(char *out, size_t len)
{
    uv_interface_address_t *ifs = NULL;
    int count = 0;
    if (uv_interface_addresses(&ifs, &count) != 0)
        return false;
    bool found = false;
    for (int i = 0; i < count && !found; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
            continue;
        found = inet_ntop(AF_INET, &ifs[i].address.address4.sin_addr, out, (socklen_t)len) != NULL;
    }
    uv_free_interface_addresses(ifs, count);
    return found;
}

/* The host others should dial: --advertise-addr, else the --listen host
 * when it is specific, else the first non-loopback IPv4, else 127.0.0.1
 * (a wildcard cannot be dialled). */
static void nd_gossip_adv_host(const struct nd_node *n, char *out, size_t len)
{
    const struct sockaddr *la = (const struct sockaddr *)&n->cfg.listen_addr;
    if (n->cfg.advertise_host != NULL) {
        snprintf(out, len, "%s", n->cfg.advertise_host);
    } else if (!nd_gossip_is_wildcard(la)) {
        if (la->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)la)->sin_addr, out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)la)->sin6_addr, out, (socklen_t)len);
    } else if (!nd_gossip_first_ipv4(out, len)) {
        snprintf(out, len, "127.0.0.1");
        WR_WARN("node", "advertise_loopback",
                "what=\"no non-loopback IPv4: advertising 127.0.0.1; set --advertise-addr\"");
    }
}

/* "<addr>" with its host replaced by <host> when it is a wildcard (or
 * always, when <force>); "" when <s> is empty. */
static void nd_gossip_adv_addr(const char *s, const char *host, bool force, char *out, size_t len)
{
    struct sockaddr_storage ss;
    if (s[0] == '\0' || wr_addr_parse(s, &ss) != 0) {
        snprintf(out, len, "%s", s);
        return;
    }
    if (!force && !nd_gossip_is_wildcard((const struct sockaddr *)&ss)) {
        snprintf(out, len, "%s", s);
        return;
    }
    int port = wr_addr_port((const struct sockaddr *)&ss);
    if (strchr(host, ':') != NULL)
        snprintf(out, len, "[%s]:%d", host, port);
    else
        snprintf(out, len, "%s:%d", host, port);
}

/* ---- discovery lists for agents ---- */

/* How long member changes are collected before agents hear of them: a node
 * joining or a fleet restarting changes many members within a few gossip
 * rounds, and one list is enough. */
#define ND_DISCOVERY_DEBOUNCE_MS 200

static int nd_gossip_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wr_node_entry *)a)->node_id,
                  ((const struct wr_node_entry *)b)->node_id);
}

size_t nd__gossip_node_list(struct nd_node *n, struct wr_node_entry *out, size_t max)
{
    size_t k = 0;
    if (n->gossip == NULL || max == 0) {
        if (max == 0)
            return 0;
        memset(&out[0], 0, sizeof(out[0]));
        snprintf(out[0].node_id, sizeof(out[0].node_id), "%s", n->node_id);
        snprintf(out[0].addr, sizeof(out[0].addr), "%s",
                 n->cfg.advertise_tunnel_addr ? n->cfg.advertise_tunnel_addr : "");
        return 1;
    }
    for (size_t i = 0; k < max; i++) {
        const struct disc_member *m = disc_cluster_member_at(n->gossip, i);
        if (m == NULL)
            break;
        enum disc_member_state st = disc_member_get_state(m);
        if (disc_member_role(m) != DISC_ROLE_NODE ||
            (st != DISC_MEMBER_ST_ALIVE && st != DISC_MEMBER_ST_SUSPECT))
            continue;
        /* Leaving: this node says goodbye to its agents with GOAWAY. */
        if (disc_member_is_self(m) && (n->draining || n->gossip_left))
            continue;
        memset(&out[k], 0, sizeof(out[k]));
        snprintf(out[k].node_id, sizeof(out[k].node_id), "%s", disc_member_id(m));
        snprintf(out[k].addr, sizeof(out[k].addr), "%s", disc_member_addr(m, DISC_ADDR_TUNNEL));
        k++;
    }
    qsort(out, k, sizeof(*out), nd_gossip_entry_cmp);
    return k;
}

static uint64_t nd_gossip_list_hash(const struct wr_node_entry *e, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        for (const char *p = e[i].node_id; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = e[i].addr; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xfe) * 1099511628211ULL;
    }
    return h;
}

/* Sends the list to every registered agent when it differs from the last. */
static void nd_gossip_on_discovery_timer(uv_timer_t *t)
{
    struct nd_node *n = t->data;
    if (n->gossip == NULL || n->draining)
        return;
    struct wr_msg_discovery *d = wr_xcalloc(1, sizeof(*d));
    d->n_nodes = (uint32_t)nd__gossip_node_list(n, d->nodes, WR_MAX_NODES);
    uint64_t h = nd_gossip_list_hash(d->nodes, d->n_nodes);
    if (h != n->discovery_hash) {
        struct wr_buf b = {0};
        if (wr_msg_discovery_encode(d, &b) == 0) {
            n->discovery_hash = h;
            n->discovery_sent++;
            uint32_t agents = 0;
            for (struct nd_list *pos = n->tuncs.next, *tmp = pos->next; pos != &n->tuncs;
                 pos = tmp, tmp = pos->next) {
                nd__tunc_send_control(nd__tunc_from_link(pos), wr_buf_peek(&b));
                agents++;
            }
            WR_INFO("node", "discovery_sent", "nodes=%u agents=%u", d->n_nodes, agents);
        }
        wr_buf_free(&b);
    }
    free(d);
}

static void nd_gossip_discovery_changed(struct nd_node *n)
{
    if (n->gossip != NULL && !n->gossip_stopping &&
        !uv_is_active((uv_handle_t *)&n->discovery_timer))
        uv_timer_start(&n->discovery_timer, nd_gossip_on_discovery_timer, ND_DISCOVERY_DEBOUNCE_MS,
                       0);
}

static void nd_gossip_on_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                               enum disc_member_state old)
{
    struct nd_node *n = arg;
    if (disc_member_role(m) == DISC_ROLE_NODE)
        nd_gossip_discovery_changed(n);
    const char *id = disc_member_id(m);
    enum disc_member_state st = disc_member_get_state(m);
    /* Peer links (nd_peer.c): a member that failed, left or was forgotten
     * gets no new forwarded stream; its links close once idle. */
    if ((ev == DISC_EV_STATE && (st == DISC_MEMBER_ST_DEAD || st == DISC_MEMBER_ST_LEFT)) ||
        ev == DISC_EV_REAP)
        nd__peer_member_gone(n, id);
    switch (ev) {
    case DISC_EV_JOIN:
        WR_INFO("node", "member_joined", "member=%s state=%s gossip=%s", id,
                disc_member_state_str(st), disc_member_addr(m, DISC_ADDR_GOSSIP));
        break;
    case DISC_EV_STATE:
        switch (st) {
        case DISC_MEMBER_ST_ALIVE:
            WR_INFO("node", "member_alive", "member=%s from=%s", id, disc_member_state_str(old));
            break;
        case DISC_MEMBER_ST_SUSPECT:
            WR_INFO("node", "member_suspect", "member=%s from=%s", id, disc_member_state_str(old));
            break;
        case DISC_MEMBER_ST_DEAD:
            WR_INFO("node", "member_dead", "member=%s from=%s", id, disc_member_state_str(old));
            break;
        case DISC_MEMBER_ST_LEFT:
            WR_INFO("node", "member_left", "member=%s from=%s", id, disc_member_state_str(old));
            break;
        default:
            break;
        }
        break;
    case DISC_EV_META:
        WR_DEBUG("node", "member_meta", "member=%s tunnels=%zu", id, disc_member_tunnel_count(m));
        break;
    case DISC_EV_REAP:
        WR_INFO("node", "member_reaped", "member=%s", id);
        break;
    default:
        break;
    }
}

int nd__gossip_start(struct nd_node *n)
{
    if (!n->cfg.gossip_enabled)
        return 0;
    struct disc_cluster_config cc;
    memset(&cc, 0, sizeof(cc));
    /* Restarts must win over what the cluster remembers of us. */
    cc.swim.initial_incarnation = wr_wall_s();
    snprintf(cc.self.id, sizeof(cc.self.id), "%s", n->node_id);
    cc.self.role = DISC_ROLE_NODE;
    char host[INET6_ADDRSTRLEN];
    nd_gossip_adv_host(n, host, sizeof(host));
    /* main() refuses a wildcard gossip host with port 0, so a wildcard here
     * has a fixed port and the advertised address is known before binding. */
    bool force = n->cfg.advertise_host != NULL;
    nd_gossip_adv_addr(n->cfg.gossip_addr, host, force, cc.self.addr[DISC_ADDR_GOSSIP],
                       DISC_ADDR_MAX);
    struct sockaddr_storage gs;
    if (!force && wr_addr_parse(n->cfg.gossip_addr, &gs) == 0 &&
        !nd_gossip_is_wildcard((const struct sockaddr *)&gs))
        cc.self.addr[DISC_ADDR_GOSSIP][0] = '\0'; /* the bound address, port 0 resolved */
    /* Agents dial a node directly only where it says they can. */
    if (n->cfg.advertise_tunnel_addr != NULL)
        snprintf(cc.self.addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX, "%s", n->cfg.advertise_tunnel_addr);
    nd_gossip_adv_addr(n->admin_str, host, force, cc.self.addr[DISC_ADDR_ADMIN], DISC_ADDR_MAX);
    nd_gossip_adv_addr(n->listen_str, host, force, cc.self.addr[DISC_ADDR_LISTEN], DISC_ADDR_MAX);
    nd_gossip_adv_addr(n->peer_str, host, force, cc.self.addr[DISC_ADDR_PEER], DISC_ADDR_MAX);
    cc.bind = n->cfg.gossip_addr;
    cc.event_cb = nd_gossip_on_event;
    cc.event_arg = n;

    struct disc_keyring *kr = disc_keyring_new(n->cfg.cluster_keys[0]);
    int kerr = 0;
    for (uint32_t i = 1; kr != NULL && kerr == 0 && i < n->cfg.n_cluster_keys; i++)
        kerr = disc_keyring_install(kr, n->cfg.cluster_keys[i]);
    /* The keyring holds the only copy from now on. */
    wr_memzero(n->cfg.cluster_keys, sizeof(n->cfg.cluster_keys));
    if (kr == NULL)
        return WR_ENOMEM;
    if (kerr != 0) {
        disc_keyring_free(kr);
        return kerr;
    }
    int err = disc_cluster_start(n->loop, &cc, kr, &n->gossip);
    if (err != 0) {
        n->gossip = NULL;
        WR_ERROR("node", "gossip_start_failed", "addr=%s err=%s", n->cfg.gossip_addr,
                 wr_err_name(err));
        return err;
    }
    uv_timer_init(n->loop, &n->gossip_timer);
    n->gossip_timer.data = n;
    uv_timer_init(n->loop, &n->discovery_timer);
    n->discovery_timer.data = n;
    snprintf(n->gossip_str, sizeof(n->gossip_str), "%s", disc_cluster_addr(n->gossip));
    WR_INFO("node", "gossip_listening", "addr=%s advertise=%s joins=%u", n->gossip_str,
            disc_member_addr(disc_cluster_self(n->gossip), DISC_ADDR_GOSSIP), n->cfg.n_joins);
    nd__gossip_publish(n);
    if (n->cfg.n_joins > 0) {
        err = disc_cluster_join(n->gossip, n->cfg.joins, n->cfg.n_joins);
        if (err != 0) {
            WR_ERROR("node", "gossip_join_failed", "err=%s", wr_err_name(err));
            return err;
        }
    }
    return 0;
}

bool nd__gossip_is_joined(const struct nd_node *n)
{
    if (!n->cfg.gossip_enabled)
        return true;
    if (n->gossip == NULL || n->gossip_stopping)
        return false;
    return n->cfg.n_joins == 0 || disc_cluster_is_joined(n->gossip);
}

void nd__gossip_publish(struct nd_node *n)
{
    /* After the leave, a new tunnel set would be a fresh ALIVE update that
     * could undo the LEFT others just learnt: the drain keeps quiet. */
    if (n->gossip == NULL || n->gossip_stopping || n->gossip_left)
        return;
    struct disc_tunnel_entry set[DISC_MAX_TUNNEL_ENTRIES];
    size_t k = 0;
    size_t dropped = 0;
    for (size_t b = 0; b < ND_REGISTRY_BUCKETS; b++) {
        for (const struct nd_pool *p = n->reg.buckets[b]; p != NULL; p = p->hnext) {
            for (const struct nd_list *l = p->members.next; l != &p->members; l = l->next) {
                const struct nd_pool_member *pm = (const struct nd_pool_member *)l;
                const char *agent = nd__tunc_agent(pm->owner);
                bool dup = false;
                for (size_t i = 0; i < k && !dup; i++)
                    dup = strcmp(set[i].tunnel, p->tunnel) == 0 && strcmp(set[i].agent, agent) == 0;
                if (dup)
                    continue;
                if (k == DISC_MAX_TUNNEL_ENTRIES) {
                    dropped++;
                    continue;
                }
                memset(&set[k], 0, sizeof(set[k]));
                snprintf(set[k].tunnel, sizeof(set[k].tunnel), "%s", p->tunnel);
                snprintf(set[k].agent, sizeof(set[k].agent), "%s", agent);
                set[k].weight = pm->weight > 0 ? pm->weight : 1;
                k++;
            }
        }
    }
    int err = disc_cluster_set_tunnels(n->gossip, set, k);
    if (err != 0 || dropped > 0)
        WR_WARN("node", "gossip_tunnels_truncated", "entries=%zu dropped=%zu err=%s", k, dropped,
                wr_err_name(err));
}

void nd__gossip_leave(struct nd_node *n)
{
    if (n->gossip == NULL || n->gossip_left)
        return;
    n->gossip_left = true;
    int err = disc_cluster_leave(n->gossip);
    WR_INFO("node", "gossip_leave", "err=%s", wr_err_name(err));
}

/* ---- keyring (admin API) ---- */

static json_t *nd_gossip_keys_json(const struct disc_keyring *kr)
{
    json_t *keys = json_array();
    for (size_t i = 0; keys != NULL && i < disc_keyring_count(kr); i++) {
        uint8_t k[DISC_KEY_LEN];
        char fp[DISC_KEY_FP_LEN];
        (void)disc_keyring_get(kr, i, k);
        disc_key_fingerprint(k, fp);
        wr_memzero(k, sizeof(k));
        json_array_append_new(keys, json_pack("{s:s, s:b}", "fingerprint", fp, "primary", i == 0));
    }
    return keys;
}

static int nd_gossip_api_error(struct wr_buf *body, int status, const char *msg)
{
    return nd__json_finish(json_pack("{s:s}", "error", msg), body) == 0 ? status : 500;
}

/* Writes the live keyring back to the --cluster-key file (atomically:
 * a temporary file renamed over it), so a restart starts from it. */
static int nd_gossip_keyring_persist(struct nd_node *n, const struct disc_keyring *kr)
{
    if (n->cfg.cluster_key_file == NULL)
        return WR_EUSAGE;
    struct wr_buf text = {0};
    int err = disc_keyring_format(kr, &text);
    if (err == 0)
        err = wr_write_file(n->cfg.cluster_key_file, text.data, text.len, 0600);
    if (text.data != NULL)
        wr_memzero(text.data, text.len);
    wr_buf_free(&text);
    return err;
}

/* The key a request names: {"key": base64} or, for use/remove,
 * {"fingerprint": hex} of an installed key. 0, or an HTTP status with
 * *why set. */
static int nd_gossip_request_key(const struct disc_keyring *kr, enum nd_admin_route op,
                                 struct wr_slice req, uint8_t key[DISC_KEY_LEN], const char **why)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req.ptr, req.len, JSON_REJECT_DUPLICATES, &jerr);
    int status = 0;
    const char *text = NULL, *fp = NULL;
    if (root == NULL || !json_is_object(root)) {
        *why = "the body must be a JSON object: {\"key\": \"<base64>\"}";
        status = 400;
    } else if (json_unpack(root, "{s?s, s?s}", "key", &text, "fingerprint", &fp) != 0 ||
               (text == NULL) == (fp == NULL)) {
        *why = "give exactly one of \"key\" (base64 text) or \"fingerprint\" (a string)";
        status = 400;
    } else if (text != NULL) {
        if (disc_key_decode(text, strlen(text), key) != 0) {
            *why = "\"key\" is not 32 bytes in base64 (warrenctl keyring generate)";
            status = 400;
        }
    } else if (op == ND_ADMIN_R_KEYRING_INSTALL) {
        *why = "install needs the key itself, not its fingerprint";
        status = 400;
    } else {
        status = 404;
        *why = "no installed key has that fingerprint";
        for (size_t i = 0; status != 0 && i < disc_keyring_count(kr); i++) {
            char f[DISC_KEY_FP_LEN];
            (void)disc_keyring_get(kr, i, key);
            disc_key_fingerprint(key, f);
            if (strcmp(f, fp) == 0)
                status = 0;
        }
        if (status != 0)
            wr_memzero(key, DISC_KEY_LEN);
    }
    json_decref(root); /* NULL-safe; the key text dies with it */
    return status;
}

int nd__gossip_keyring_api(struct nd_node *n, enum nd_admin_route op, struct wr_slice req,
                           struct wr_buf *body)
{
    if (n->gossip == NULL)
        return nd_gossip_api_error(body, 409, "gossip is off on this node (no --cluster-key)");
    struct disc_keyring *kr = disc_cluster_keyring(n->gossip);
    if (op == ND_ADMIN_R_KEYRING)
        return nd__json_finish(json_pack("{s:o, s:s?}", "keys", nd_gossip_keys_json(kr), "file",
                                         n->cfg.cluster_key_file),
                               body) == 0
                   ? 200
                   : 500;
    uint8_t key[DISC_KEY_LEN];
    const char *why = NULL;
    int status = nd_gossip_request_key(kr, op, req, key, &why);
    if (status != 0)
        return nd_gossip_api_error(body, status, why);
    char fp[DISC_KEY_FP_LEN];
    disc_key_fingerprint(key, fp);
    size_t before = disc_keyring_count(kr);
    uint8_t primary[DISC_KEY_LEN];
    (void)disc_keyring_get(kr, 0, primary);
    bool was_primary = wr_ct_eq(primary, key, DISC_KEY_LEN);
    wr_memzero(primary, sizeof(primary));
    const char *opname = "install";
    int err;
    if (op == ND_ADMIN_R_KEYRING_INSTALL) {
        err = disc_keyring_install(kr, key);
    } else if (op == ND_ADMIN_R_KEYRING_USE) {
        opname = "use";
        err = disc_keyring_use(kr, key);
    } else {
        opname = "remove";
        err = disc_keyring_remove(kr, key);
    }
    wr_memzero(key, sizeof(key));
    if (err == WR_ELIMIT)
        return nd_gossip_api_error(body, 409, "the keyring is full (8 keys): remove one first");
    if (err == WR_ENOMEMBER)
        return nd_gossip_api_error(body, 404, "that key is not installed");
    if (err == WR_EUSAGE)
        return nd_gossip_api_error(body, 409,
                                   "that key is the primary: make another key primary first");
    if (err != 0)
        return nd_gossip_api_error(body, 500, wr_strerror(err));
    bool changed = op == ND_ADMIN_R_KEYRING_USE ? !was_primary : disc_keyring_count(kr) != before;
    bool persisted = false;
    int perr = 0;
    if (changed) {
        perr = nd_gossip_keyring_persist(n, kr);
        persisted = perr == 0;
        WR_INFO("node", "keyring_changed", "op=%s fingerprint=%s keys=%zu persisted=%s", opname, fp,
                disc_keyring_count(kr), persisted ? "yes" : "no");
        if (!persisted)
            WR_WARN("node", "keyring_not_persisted", "file=%s err=%s",
                    n->cfg.cluster_key_file ? n->cfg.cluster_key_file : "-", wr_err_name(perr));
    }
    json_t *root =
        json_pack("{s:s, s:s, s:b, s:b, s:o}", "op", opname, "fingerprint", fp, "changed", changed,
                  "persisted", persisted, "keys", nd_gossip_keys_json(kr));
    return nd__json_finish(root, body) == 0 ? 200 : 500;
}

static void nd_gossip_on_handle_close(uv_handle_t *h)
{
    struct nd_node *n = h->data;
    n->pending_closes--;
}

static void nd_gossip_on_cluster_closed(void *arg)
{
    struct nd_node *n = arg;
    n->pending_closes--;
}

static void nd_gossip_close_now(struct nd_node *n)
{
    struct disc_cluster *c = n->gossip;
    n->gossip = NULL;
    n->pending_closes += 3;
    uv_close((uv_handle_t *)&n->gossip_timer, nd_gossip_on_handle_close);
    uv_close((uv_handle_t *)&n->discovery_timer, nd_gossip_on_handle_close);
    disc_cluster_close(c, nd_gossip_on_cluster_closed, n);
}

static void nd_gossip_on_grace(uv_timer_t *timer)
{
    nd_gossip_close_now(timer->data);
}

void nd__gossip_stop(struct nd_node *n)
{
    if (n->gossip == NULL || n->gossip_stopping)
        return;
    n->gossip_stopping = true;
    if (n->gossip_left)
        uv_timer_start(&n->gossip_timer, nd_gossip_on_grace, ND_GOSSIP_LEAVE_GRACE_MS, 0);
    else
        nd_gossip_close_now(n);
}
