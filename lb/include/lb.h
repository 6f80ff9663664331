/*
 * lb.h: warren-lb, the L4 load balancer in front of the fleet. It balances
 * TCP, routes TLS by SNI without terminating it, and routes HTTP/1.x by Host,
 * over backend sets that are static or learned from gossip (as an observer).
 * main.c parses flags into struct lb_config and runs it; docs/lb.md is the
 * operator's page.
 */
#ifndef LB_H
#define LB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "wr.h"

#define LB_MAX_LISTENERS 16
#define LB_MAX_BACKENDS 256 /* static --backend entries */
#define LB_MAX_ROUTES 256
#define LB_MAX_MESH_SETS 8
#define LB_MAX_JOINS 16
#define LB_SET_NAME_MAX 64 /* set names are ids: 1-64 of [A-Za-z0-9._-] */
#define LB_PATTERN_MAX 255
#define LB_CLUSTER_KEYS_MAX 8 /* DISC_KEYRING_MAX */
#define LB_CLUSTER_KEY_LEN 32

enum lb_mode {
    LB_MODE_TCP = 0, /* balance over one set */
    LB_MODE_SNI,     /* peek the ClientHello, route by server name */
    LB_MODE_HTTP,    /* peek the request head, route by Host */
    LB_MODE__COUNT
};
/* "tcp", "sni", "http". */
const char *lb_mode_str(enum lb_mode m);

enum lb_balance {
    LB_BALANCE_RR = 0, /* round-robin over the UP backends */
    LB_BALANCE_P2C,    /* two random UP backends, the one with fewer open connections */
    LB_BALANCE__COUNT
};
const char *lb_balance_str(enum lb_balance b);

/* One --listen. Zero-initialised is valid (tcp, rr, no set, no PROXY header). */
struct lb_listener_config {
    enum lb_mode mode;
    struct sockaddr_storage addr;
    char set[LB_SET_NAME_MAX + 1]; /* tcp: the set balanced over */
    enum lb_balance balance;       /* also how sni/http pick inside a routed set */
    bool proxy_v2;                 /* PROXY protocol v2 header toward backends */
};

struct lb_backend_config {
    char set[LB_SET_NAME_MAX + 1];
    struct sockaddr_storage addr;
};

struct lb_route_config {
    char pattern[LB_PATTERN_MAX + 1]; /* exact name, "*.suffix" or "*" */
    char set[LB_SET_NAME_MAX + 1];
};

/* --mesh-set SET[:PORT]: the ALIVE gossip members of role node, at their
 * listen address (or its host with <port> when non-zero). */
struct lb_mesh_set_config {
    char set[LB_SET_NAME_MAX + 1];
    uint16_t port;
};

/* Zero-initialised is not valid: use lb_config_init for the defaults. */
struct lb_config {
    uint32_t n_listeners;
    struct lb_listener_config listeners[LB_MAX_LISTENERS];
    uint32_t n_backends;
    struct lb_backend_config backends[LB_MAX_BACKENDS];
    uint32_t n_routes;
    struct lb_route_config routes[LB_MAX_ROUTES];
    uint32_t n_mesh_sets;
    struct lb_mesh_set_config mesh_sets[LB_MAX_MESH_SETS];

    /* Gossip: on when main decoded --cluster-key (the first key is the
     * primary). The balancer wipes the keys once its keyring holds them. */
    bool gossip_enabled;
    uint8_t cluster_keys[LB_CLUSTER_KEYS_MAX][LB_CLUSTER_KEY_LEN];
    uint32_t n_cluster_keys;
    const char *gossip_addr; /* "IP:PORT", default 127.0.0.1:0 */
    const char *gossip_id;   /* our member id; default "lb-<host>-<pid>" */
    uint32_t n_joins;
    const char *joins[LB_MAX_JOINS];
    const char *cluster; /* cluster name: "<node-id>.<cluster>" routes to one node */

    uint32_t check_interval_ms; /* 1000: health check period per backend */
    uint32_t check_timeout_ms;  /* 0: min(check_interval, connect_timeout) */
    uint32_t rise;              /* 2: consecutive good checks to come UP */
    uint32_t fall;              /* 2: consecutive failed checks to go DOWN */

    bool admin_enabled;                 /* default on */
    struct sockaddr_storage admin_addr; /* default 127.0.0.1:7481 */
    uint32_t max_conns;                 /* 10000: client connections at once, all listeners */
    uint32_t backlog;                   /* 511: listen(2) backlog */
    uint32_t peek_timeout_ms;           /* 5000: ClientHello / request head deadline */
    uint32_t idle_timeout_ms;           /* 0 (off): a relayed connection with no byte either
                                           way this long is closed */
    uint32_t connect_timeout_ms;        /* 3000: backend connect deadline */
    uint32_t drain_timeout_ms;          /* 0: on SIGTERM, open connections get this long */
    uint32_t route_cache_max;           /* 4096 cached lookups */
    uint32_t route_ttl_ms;              /* 10000 */
    uint32_t route_neg_ttl_ms;          /* 2000: unknown names */
    const char *ready_file;             /* "listen MODE ADDR", "admin ADDR", "gossip ADDR" */
};

void lb_config_init(struct lb_config *cfg);

struct lb;

/* Validates <cfg> (copied) and binds every listener. NULL with *err set (the
 * reason is logged). Loop thread only, like everything here. */
struct lb *lb_new(uv_loop_t *loop, const struct lb_config *cfg, int *err);
/* Starts accepting, health checks, the admin API and gossip, writes the ready
 * file, and handles SIGTERM/SIGINT (drain for drain_timeout_ms, then stop; a
 * second signal stops at once). 0, or an error (logged): call lb_stop then
 * run the loop to unwind. */
int lb_start(struct lb *lb);
/* Closes listeners, connections, checks, admin and gossip (after a leave);
 * uv_run returns once all is closed. Idempotent. */
void lb_stop(struct lb *lb);
/* After uv_run returned. */
void lb_free(struct lb *lb);

#endif
