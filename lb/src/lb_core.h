/*
 * lb_core.h: the running balancer's internals shared by lb_lb.c (lifecycle,
 * listeners), lb_backend.c (sets, picking, health checks), lb_conn.c (one
 * client connection), lb_admin*.c (the admin API) and lb_mesh.c (gossip).
 * Kept apart from lb_int.h, which is the pure parsers' shared notion of a
 * name and must not pull in libuv.
 */
#ifndef LB_CORE_H
#define LB_CORE_H

#include "lb.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "wr.h"

struct lb_route_table;
struct disc_cluster;

/* ---- intrusive doubly-linked list ---------------------------------------- */
struct lb_list {
    struct lb_list *prev, *next;
};
static inline void lb_list_init(struct lb_list *l)
{
    l->prev = l->next = l;
}
static inline bool lb_list_empty(const struct lb_list *l)
{
    return l->next == l;
}
static inline void lb_list_insert_tail(struct lb_list *head, struct lb_list *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}
static inline void lb_list_remove(struct lb_list *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}
#define lb_list_for_each_safe(pos, tmp, head)                                                      \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

/* ---- backends and sets (lb_backend.c) ------------------------------------ */

#define LB_SET_BACKENDS_MAX 1024 /* backends in one set (static + mesh) */
#define LB_MAX_SETS 64

enum lb_backend_state {
    LB_BACKEND_ST_UP = 0,   /* healthy: gets new connections */
    LB_BACKEND_ST_DOWN,     /* failed checks or a connect: none until it rises again */
    LB_BACKEND_ST_DRAINING, /* its mesh member is not ALIVE (or is gone): none, ever,
                               until gossip says ALIVE again; open ones finish */
    LB_BACKEND_ST__COUNT    /* must be last */
};
const char *lb_backend_state_str(enum lb_backend_state s);

struct lb_backend {
    struct lb_set *set;
    struct lb *lb;
    char node_id[WR_ID_MAX + 1]; /* mesh member id; "" for a static backend */
    struct sockaddr_storage addr;
    char addr_str[WR_ADDR_STRLEN];
    /* Health check: HTTP GET /readyz at <check_addr> when <check_http>, else
     * a TCP connect to <addr>. */
    bool check_http;
    struct sockaddr_storage check_addr;
    char check_str[WR_ADDR_STRLEN];
    enum lb_backend_state state; /* written by lb__backend_update only */
    bool healthy;                /* the checks' (and passive failures') verdict */
    bool in_mesh;                /* mesh: the member is ALIVE; static: always */
    bool gone;                   /* mesh: the member was forgotten (reaped) */
    bool checking;               /* a check is in flight */
    uint32_t ok_streak, fail_streak;
    uint64_t next_check_ms;
    uint32_t active;        /* open client connections through it */
    uint64_t conns_total;   /* connections relayed */
    uint64_t connect_fails; /* dials that failed (passive checks) */
    uint64_t checks_ok, checks_failed;
    uint64_t state_changes;
    char last_check_err[48];
};

struct lb_set {
    struct lb *lb;
    char name[LB_SET_NAME_MAX + 1];
    struct lb_backend **b; /* owned */
    uint32_t n, cap;
    uint32_t rr; /* next round-robin position */
    bool mesh;   /* members come from gossip */
    uint16_t mesh_port;
};

struct lb_set *lb__set_find(struct lb *lb, const char *name);
struct lb_set *lb__set_get(struct lb *lb, const char *name); /* creates when missing */
struct lb_backend *lb__backend_add(struct lb_set *s, const struct sockaddr *addr,
                                   const char *node_id);
struct lb_backend *lb__backend_find_node(struct lb_set *s, const char *node_id);
/* Recomputes <b>'s state from healthy/in_mesh/gone; logs a change with <why>. */
void lb__backend_update(struct lb_backend *b, const char *why);
/* Passive check: a dial to <b> failed with <err>. */
void lb__backend_connect_failed(struct lb_backend *b, int err);
/* An UP backend of <s> other than <avoid> by <bal>; NULL when none. */
struct lb_backend *lb__set_pick(struct lb_set *s, enum lb_balance bal,
                                const struct lb_backend *avoid);
/* Counts of a set's backends in each state. */
void lb__set_counts(const struct lb_set *s, uint32_t out[LB_BACKEND_ST__COUNT]);
/* Starts due checks, expires late ones (called by the sweep timer). */
void lb__checks_tick(struct lb *lb, uint64_t now);
/* Closes every check in flight (lb_stop). */
void lb__checks_stop(struct lb *lb);
void lb__sets_free(struct lb *lb);

/* ---- connections (lb_conn.c) ---------------------------------------------- */

enum lb_conn_state {
    LB_CONN_ST_ACCEPTED = 0, /* reading the ClientHello / request head (sni, http) */
    LB_CONN_ST_CONNECTING,   /* dialing a backend (a retry goes back here) */
    LB_CONN_ST_RELAYING,     /* bytes flow both ways */
    LB_CONN_ST_HALF_CLOSED,  /* one side ended its direction; the other still flows */
    LB_CONN_ST_CLOSING,      /* both wr_conns closing; freed on the last on_close */
    LB_CONN_ST__COUNT        /* must be last */
};
const char *lb_conn_state_str(enum lb_conn_state s);

/* How a client connection ended; counted per listener. */
#define LB_OUTCOME_MAP(XX)                                                                         \
    XX(RELAYED, "relayed")               /* reached a backend; ended normally */                   \
    XX(RELAY_ERROR, "relay_error")       /* reached a backend; a reset or error ended it */        \
    XX(MAX_CONNS, "max_conns")           /* refused at accept: the connection cap */               \
    XX(NO_ROUTE, "no_route")             /* no route for the name (alert / 404) */                 \
    XX(NO_BACKEND, "no_backend")         /* a route, but no UP backend (503) */                    \
    XX(CONNECT_FAILED, "connect_failed") /* every dial attempt failed */                           \
    XX(PEEK_TIMEOUT, "peek_timeout")     /* the ClientHello / head did not come in time */         \
    XX(IDLE_TIMEOUT, "idle_timeout")     /* relayed, then no byte either way for --idle-timeout */ \
    XX(MALFORMED, "malformed")           /* not TLS / not HTTP / a bad ClientHello or head */      \
    XX(TOO_BIG, "too_big")               /* ClientHello / head over the peek limit */              \
    XX(CLIENT_CLOSED, "client_closed")   /* the client left before a backend was chosen */         \
    XX(SHUTDOWN, "shutdown")             /* the balancer stopped */

enum lb_outcome {
#define LB_OUTCOME_ENUM_(name, str) LB_OUT_##name,
    LB_OUTCOME_MAP(LB_OUTCOME_ENUM_)
#undef LB_OUTCOME_ENUM_
        LB_OUT__COUNT
};
const char *lb_outcome_str(enum lb_outcome o);

struct lb_listener {
    struct lb *lb;
    struct lb_listener_config cfg;
    uv_tcp_t tcp;
    bool bound;
    char addr_str[WR_ADDR_STRLEN];
    struct sockaddr_storage bound_addr; /* the PROXY header's destination */
    uint64_t accepted;
    uint64_t outcomes[LB_OUT__COUNT];
    uint32_t active;
};

struct lb_conn;
/* A client accepted on <l>: peek, route, dial, relay. Takes <client>. */
void lb__conn_start(struct lb_listener *l, struct wr_conn *client);
/* Peek and connect deadlines (the sweep timer). */
void lb__conns_tick(struct lb *lb, uint64_t now);
/* Closes every connection (lb_stop). */
void lb__conns_stop(struct lb *lb);

/* ---- the balancer (lb_lb.c) ----------------------------------------------- */

#define LB_SWEEP_MS 100            /* deadline granularity of peeks, connects and checks */
#define LB_RELAY_HIGH (256u << 10) /* stop reading a side when the other has this queued */

struct lb_stats {
    uint64_t conns_accepted;
    uint64_t conns_refused;
    uint64_t dials, dial_fails, retries;
    uint64_t bytes_up, bytes_down;
    uint64_t proxy_headers;
};

struct lb {
    uv_loop_t *loop;
    struct lb_config cfg;
    struct lb_listener listeners[LB_MAX_LISTENERS];
    uint32_t n_listeners;
    struct lb_set *sets[LB_MAX_SETS];
    uint32_t n_sets;
    struct lb_route_table *routes;
    struct lb_list conns;  /* every client connection */
    struct lb_list checks; /* health checks in flight */
    uint32_t n_conns;      /* client connections open (the cap counts these) */
    struct lb_stats stats;
    uv_timer_t sweep;
    uv_signal_t sig_term, sig_int;
    struct lb_admin *admin;
    char admin_str[WR_ADDR_STRLEN];
    struct disc_cluster *gossip;
    char gossip_str[WR_ADDR_STRLEN];
    char gossip_id[WR_ID_MAX + 1];
    uint64_t start_ms;
    int pending_closes; /* own handles still closing */
    uint64_t drain_deadline_ms;
    bool started;
    bool draining; /* first signal: no new connections, open ones finish */
    bool stopping;
};

/* ---- admin API (lb_admin.c, lb_admin_api.c) -------------------------------- */

#define LB_ADMIN_MAX_CONNS 64
#define LB_ADMIN_HEAD_MAX 8192
#define LB_ADMIN_TIMEOUT_MS 10000

struct lb_admin;
int lb__admin_start(struct lb *lb, char *addr_out);
void lb__admin_stop(struct lb *lb);
void lb__admin_free(struct lb *lb);
/* Renders GET <path> into <body>; returns the HTTP status and sets *ctype. */
int lb__admin_render(struct lb *lb, struct wr_slice path, struct wr_buf *body, const char **ctype);
int lb__buf_printf(struct wr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- gossip (lb_mesh.c) ----------------------------------------------------- */

int lb__mesh_start(struct lb *lb);
bool lb__mesh_is_joined(const struct lb *lb);
void lb__mesh_stop(struct lb *lb);
/* The backend for mesh member <node_id> (any mesh set), or NULL. */
struct lb_backend *lb__mesh_node(struct lb *lb, const char *node_id);

#endif
