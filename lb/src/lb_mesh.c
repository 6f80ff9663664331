/*
 * lb_mesh.c: warren-lb in the gossip mesh, as an observer (a full member
 * that holds no tunnels): it follows the members of role node and keeps
 * each --mesh-set equal to them, at their advertised listen address, with
 * GET /readyz on their admin address as the health check. Only ALIVE
 * members get new connections (SUSPECT, DEAD and LEFT ones are DRAINING).
 * It also tells the route table which node ids exist, for the
 * "<node-id>.<cluster>" rule. The SWIM protocol is discovery/'s.
 */
#include "lb_core.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disc.h"
#include "lb_route.h"

_Static_assert(LB_CLUSTER_KEYS_MAX == DISC_KEYRING_MAX, "key list fits a keyring");
_Static_assert(LB_CLUSTER_KEY_LEN == DISC_KEY_LEN, "gossip key size");

/* The member's address of kind <k>, with the port replaced by <port> when
 * non-zero. False when it has none or it does not parse. */
static bool lb_mesh_addr(const struct disc_member *m, enum disc_addr_kind k, uint16_t port,
                         struct sockaddr_storage *out)
{
    const char *s = disc_member_addr(m, k);
    if (s[0] == '\0' || wr_addr_parse(s, out) != 0)
        return false;
    if (port != 0) {
        if (out->ss_family == AF_INET)
            ((struct sockaddr_in *)out)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)out)->sin6_port = htons(port);
    }
    return wr_addr_port((const struct sockaddr *)out) != 0;
}

/* Tells the route table which nodes "<node-id>.<cluster>" may name: the
 * ALIVE members of role node. */
static void lb_mesh_sync_routes(struct lb *lb)
{
    if (lb->cfg.cluster == NULL || lb->gossip == NULL)
        return;
    size_t n = disc_cluster_member_count(lb->gossip);
    const char **ids = wr_xcalloc(n ? n : 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; k < n; i++) {
        const struct disc_member *m = disc_cluster_member_at(lb->gossip, i);
        if (m == NULL)
            break;
        if (disc_member_role(m) == DISC_ROLE_NODE &&
            disc_member_get_state(m) == DISC_MEMBER_ST_ALIVE)
            ids[k++] = disc_member_id(m);
    }
    if (lb_route_set_nodes(lb->routes, ids, k) != 0)
        WR_WARN("lb", "route_nodes_failed", "nodes=%zu", k);
    free(ids);
}

static void lb_mesh_sync_member(struct lb *lb, enum disc_event_type ev, const struct disc_member *m)
{
    const char *id = disc_member_id(m);
    enum disc_member_state st = disc_member_get_state(m);
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        struct lb_set *s = lb->sets[i];
        if (!s->mesh)
            continue;
        struct lb_backend *b = lb__backend_find_node(s, id);
        if (ev == DISC_EV_REAP) {
            if (b != NULL) {
                b->gone = true;
                lb__backend_update(b, "member_reaped");
            }
            continue;
        }
        struct sockaddr_storage addr;
        if (!lb_mesh_addr(m, DISC_ADDR_LISTEN, s->mesh_port, &addr)) {
            WR_DEBUG("lb", "member_no_listen_addr", "member=%s set=%s", id, s->name);
            continue;
        }
        if (b == NULL) {
            b = lb__backend_add(s, (const struct sockaddr *)&addr, id);
            if (b == NULL) {
                WR_WARN("lb", "mesh_set_full", "set=%s member=%s max=%d", s->name, id,
                        LB_SET_BACKENDS_MAX);
                continue;
            }
            b->in_mesh = false; /* judged below */
            WR_INFO("lb", "mesh_backend_added", "set=%s member=%s addr=%s", s->name, id,
                    b->addr_str);
        } else {
            char a[WR_ADDR_STRLEN];
            wr_addr_str((const struct sockaddr *)&addr, a, sizeof(a));
            if (strcmp(a, b->addr_str) != 0) {
                WR_INFO("lb", "mesh_backend_moved", "set=%s member=%s from=%s to=%s", s->name, id,
                        b->addr_str, a);
                memcpy(&b->addr, &addr, sizeof(addr));
                snprintf(b->addr_str, sizeof(b->addr_str), "%s", a);
            }
        }
        b->gone = false;
        b->check_http = lb_mesh_addr(m, DISC_ADDR_ADMIN, 0, &b->check_addr);
        if (b->check_http)
            wr_addr_str((const struct sockaddr *)&b->check_addr, b->check_str,
                        sizeof(b->check_str));
        b->in_mesh = st == DISC_MEMBER_ST_ALIVE;
        char why[32];
        snprintf(why, sizeof(why), "member_%s", disc_member_state_str(st));
        lb__backend_update(b, why);
    }
}

static void lb_mesh_on_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                             enum disc_member_state old)
{
    struct lb *lb = arg;
    if (disc_member_role(m) != DISC_ROLE_NODE || disc_member_is_self(m))
        return;
    if (ev == DISC_EV_STATE || ev == DISC_EV_JOIN || ev == DISC_EV_REAP)
        WR_INFO("lb", "member_event", "member=%s ev=%s from=%s to=%s", disc_member_id(m),
                ev == DISC_EV_JOIN   ? "join"
                : ev == DISC_EV_REAP ? "reap"
                                     : "state",
                disc_member_state_str(old), disc_member_state_str(disc_member_get_state(m)));
    lb_mesh_sync_member(lb, ev, m);
    if (ev != DISC_EV_META)
        lb_mesh_sync_routes(lb);
}

int lb__mesh_start(struct lb *lb)
{
    struct disc_cluster_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.swim.initial_incarnation = wr_wall_s();
    if (lb->cfg.gossip_id != NULL) {
        snprintf(lb->gossip_id, sizeof(lb->gossip_id), "%s", lb->cfg.gossip_id);
    } else {
        char host[48] = "host";
        if (gethostname(host, sizeof(host) - 1) != 0 || !wr_id_is_valid(host, strlen(host)))
            snprintf(host, sizeof(host), "%s", "host");
        snprintf(lb->gossip_id, sizeof(lb->gossip_id), "lb-%s-%d", host, (int)getpid());
    }
    snprintf(cc.self.id, sizeof(cc.self.id), "%s", lb->gossip_id);
    cc.self.role = DISC_ROLE_OBSERVER;
    if (lb->admin_str[0])
        snprintf(cc.self.addr[DISC_ADDR_ADMIN], DISC_ADDR_MAX, "%s", lb->admin_str);
    cc.bind = lb->cfg.gossip_addr;
    cc.event_cb = lb_mesh_on_event;
    cc.event_arg = lb;

    struct disc_keyring *kr = disc_keyring_new(lb->cfg.cluster_keys[0]);
    int err = 0;
    for (uint32_t i = 1; kr != NULL && err == 0 && i < lb->cfg.n_cluster_keys; i++)
        err = disc_keyring_install(kr, lb->cfg.cluster_keys[i]);
    wr_memzero(lb->cfg.cluster_keys, sizeof(lb->cfg.cluster_keys)); /* the keyring's now */
    if (kr == NULL)
        return WR_ENOMEM;
    if (err != 0) {
        disc_keyring_free(kr);
        return err;
    }
    err = disc_cluster_start(lb->loop, &cc, kr, &lb->gossip);
    if (err != 0) {
        lb->gossip = NULL;
        WR_ERROR("lb", "gossip_start_failed", "addr=%s err=%s", lb->cfg.gossip_addr,
                 wr_err_name(err));
        return err;
    }
    lb->pending_closes++; /* disc_cluster_close's callback */
    snprintf(lb->gossip_str, sizeof(lb->gossip_str), "%s", disc_cluster_addr(lb->gossip));
    WR_INFO("lb", "gossip_listening", "addr=%s id=%s role=observer joins=%u", lb->gossip_str,
            lb->gossip_id, lb->cfg.n_joins);
    if (lb->cfg.n_joins > 0) {
        err = disc_cluster_join(lb->gossip, lb->cfg.joins, lb->cfg.n_joins);
        if (err != 0) {
            WR_ERROR("lb", "gossip_join_failed", "err=%s", wr_err_name(err));
            return err;
        }
    }
    return 0;
}

bool lb__mesh_is_joined(const struct lb *lb)
{
    if (!lb->cfg.gossip_enabled)
        return true;
    if (lb->gossip == NULL || lb->stopping)
        return false;
    return lb->cfg.n_joins == 0 || disc_cluster_is_joined(lb->gossip);
}

static void lb_mesh_on_closed(void *arg)
{
    struct lb *lb = arg;
    lb->pending_closes--;
}

void lb__mesh_stop(struct lb *lb)
{
    if (lb->gossip == NULL)
        return;
    /* The leave goes out before the sockets close: others see "left", and
     * nobody probes an observer that is gone. */
    (void)disc_cluster_leave(lb->gossip);
    disc_cluster_close(lb->gossip, lb_mesh_on_closed, lb);
    lb->gossip = NULL;
}

struct lb_backend *lb__mesh_node(struct lb *lb, const char *node_id)
{
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        if (!lb->sets[i]->mesh)
            continue;
        struct lb_backend *b = lb__backend_find_node(lb->sets[i], node_id);
        if (b != NULL && !b->gone)
            return b;
    }
    return NULL;
}
