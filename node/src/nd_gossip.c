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

/* The host others should dial: the --listen host when it is specific,
 * otherwise 127.0.0.1 (a wildcard cannot be dialled). */
static void nd_gossip_adv_host(const struct nd_node *n, char *out, size_t len)
{
    const struct sockaddr *la = (const struct sockaddr *)&n->cfg.listen_addr;
    snprintf(out, len, "127.0.0.1");
    if (nd_gossip_is_wildcard(la))
        return;
    if (la->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)la)->sin_addr, out, (socklen_t)len);
    else if (la->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)la)->sin6_addr, out, (socklen_t)len);
}

/* "<addr>" with a wildcard host replaced by <host>; "" when <s> is empty. */
static void nd_gossip_adv_addr(const char *s, const char *host, char *out, size_t len)
{
    struct sockaddr_storage ss;
    if (s[0] == '\0' || wr_addr_parse(s, &ss) != 0) {
        snprintf(out, len, "%s", s);
        return;
    }
    if (!nd_gossip_is_wildcard((const struct sockaddr *)&ss)) {
        snprintf(out, len, "%s", s);
        return;
    }
    int port = wr_addr_port((const struct sockaddr *)&ss);
    if (strchr(host, ':') != NULL)
        snprintf(out, len, "[%s]:%d", host, port);
    else
        snprintf(out, len, "%s:%d", host, port);
}

static void nd_gossip_on_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                               enum disc_member_state old)
{
    (void)arg;
    const char *id = disc_member_id(m);
    enum disc_member_state st = disc_member_get_state(m);
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
    nd_gossip_adv_addr(n->cfg.gossip_addr, host, cc.self.addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX);
    struct sockaddr_storage gs;
    if (wr_addr_parse(n->cfg.gossip_addr, &gs) == 0 &&
        !nd_gossip_is_wildcard((const struct sockaddr *)&gs))
        cc.self.addr[DISC_ADDR_GOSSIP][0] = '\0'; /* the bound address, port 0 resolved */
    nd_gossip_adv_addr(n->listen_str, host, cc.self.addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX);
    nd_gossip_adv_addr(n->admin_str, host, cc.self.addr[DISC_ADDR_ADMIN], DISC_ADDR_MAX);
    cc.bind = n->cfg.gossip_addr;
    cc.event_cb = nd_gossip_on_event;
    cc.event_arg = n;

    struct disc_keyring *kr = disc_keyring_new(n->cfg.cluster_key);
    /* The keyring holds the only copy from now on. */
    wr_memzero(n->cfg.cluster_key, sizeof(n->cfg.cluster_key));
    if (kr == NULL)
        return WR_ENOMEM;
    int err = disc_cluster_start(n->loop, &cc, kr, &n->gossip);
    if (err != 0) {
        n->gossip = NULL;
        WR_ERROR("node", "gossip_start_failed", "addr=%s err=%s", n->cfg.gossip_addr,
                 wr_err_name(err));
        return err;
    }
    uv_timer_init(n->loop, &n->gossip_timer);
    n->gossip_timer.data = n;
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
    n->pending_closes += 2;
    uv_close((uv_handle_t *)&n->gossip_timer, nd_gossip_on_handle_close);
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
