/*
 * nd_int.h: node internals shared between nd_*.c files.
 */
#ifndef ND_INT_H
#define ND_INT_H

#include "nd.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "wr.h"

/* ---- intrusive doubly-linked list ---------------------------------------- */
struct nd_list {
    struct nd_list *prev, *next;
};
static inline void nd_list_init(struct nd_list *l)
{
    l->prev = l->next = l;
}
static inline bool nd_list_empty(const struct nd_list *l)
{
    return l->next == l;
}
static inline void nd_list_insert_tail(struct nd_list *head, struct nd_list *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}
static inline void nd_list_remove(struct nd_list *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}
#define nd_list_for_each_safe(pos, tmp, head)                                                      \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

/* ---- pools: tunnel id -> live agent connections (nd_pool.c) --------------- */
#define ND_WEIGHT_EXCLUSIVE 255

struct nd_pool_member {
    struct nd_list link;
    uint8_t weight;
    void *owner; /* the struct nd_tunc */
};

struct nd_pool {
    struct nd_pool *hnext; /* hash chain */
    char tunnel[WR_ID_MAX + 1];
    struct nd_list members;
    uint32_t n_members;
    uint32_t n_exclusive;  /* members with weight 255 */
    uint64_t total_weight; /* of the non-exclusive members */
};

#define ND_REGISTRY_BUCKETS 1024
struct nd_registry {
    struct nd_pool *buckets[ND_REGISTRY_BUCKETS];
    uint32_t n_pools;
};

void nd__registry_init(struct nd_registry *reg);
void nd__registry_cleanup(struct nd_registry *reg);
struct nd_pool *nd__registry_get(struct nd_registry *reg, const char *tunnel, bool create);
/* Adds <m> (weight already set) to the pool of <tunnel>. */
void nd__pool_add(struct nd_registry *reg, const char *tunnel, struct nd_pool_member *m);
/* Removes <m> from <pool>; frees the pool once empty. */
void nd__pool_remove(struct nd_registry *reg, const char *tunnel, struct nd_pool_member *m);
/* Weighted random choice; exclusive members (255) take everything when any is
 * present. <rnd> is a uniform random 64-bit value. NULL when the pool is empty. */
struct nd_pool_member *nd__pool_pick(const struct nd_pool *pool, uint64_t rnd);

/* ---- the node --------------------------------------------------------------- */
struct nd_stats {
    uint64_t agents_accepted;
    uint64_t agents_rejected;
    uint64_t visitors_accepted;
    uint64_t visitors_refused;
    uint64_t streams_opened;
    uint64_t streams_failed;
    uint64_t bytes_up;
    uint64_t bytes_down;
};

struct nd_entry {
    uv_tcp_t tcp;
    struct nd_node *node;
    struct nd_entry_config cfg;
    char addr_str[WR_ADDR_STRLEN];
};

struct nd_node {
    uv_loop_t *loop;
    struct nd_config cfg;
    char node_id[WR_ID_MAX + 1];
    char cluster[WR_ID_MAX + 1];
    uint8_t ca_pk[WR_SIGN_PK_LEN];
    struct wr_tls_ctx *tls;
    uv_tcp_t listener;
    char listen_str[WR_ADDR_STRLEN];
    struct nd_entry entries[ND_MAX_ENTRIES];
    uint32_t n_entries;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uv_timer_t drain_timer;
    struct nd_registry reg;
    struct nd_list tuncs; /* every tunnel connection, any state */
    uint32_t n_tuncs;
    uint32_t n_relays; /* visitor streams in flight */
    struct nd_stats stats;
    uint32_t pending_closes;
    bool draining;
    bool stopped;
};

/* Tunnel connections (nd_tunnel.c). */
struct nd_tunc;
void nd__tunc_accept(struct nd_node *n, uv_stream_t *server);
/* Opens a stream to the agent behind <t> with OPEN header <hdr>. */
struct wr_mux_stream *nd__tunc_open_stream(struct nd_tunc *t, struct wr_slice hdr, int *err);
const char *nd__tunc_agent(const struct nd_tunc *t);
void nd__tunc_goaway(struct nd_tunc *t);
/* True when draining and no stream is left open. */
bool nd__tunc_drained(const struct nd_tunc *t);
/* Closes every draining connection with no open stream left. */
void nd__node_drain_progress(struct nd_node *n);
void nd__tunc_close(struct nd_tunc *t, uint32_t code, const char *why);
void nd__node_maybe_stopped(struct nd_node *n);

/* Entry points (nd_entry.c). */
int nd__entry_start(struct nd_node *n, struct nd_entry *e);
void nd__entry_stop(struct nd_entry *e);

#endif
