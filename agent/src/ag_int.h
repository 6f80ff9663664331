/*
 * ag_int.h: agent internals shared by ag_agent.c (the agent, signals,
 * serving streams, status), ag_link.c (one tunnel connection's state
 * machine), ag_pool.c (the nodes heard of and which to dial next; no I/O)
 * and the unit tests.
 */
#ifndef AG_INT_H
#define AG_INT_H

#include "ag.h"

/* The delay before dial number <attempt> + 1 (attempt = dials since the last
 * registration): 0 for the first, then full jitter, uniform in
 * [0, min(max, base * 2^attempt)], from the random value <rnd>. */
uint64_t ag__backoff_delay(uint32_t base_ms, uint32_t max_ms, uint32_t attempt, uint64_t rnd);

/* ---- the pool: nodes heard of (ag_pool.c) ---------------------------------- */

struct ag_link;

/* A node from the discovery lists. */
struct ag_node {
    char id[WR_ID_MAX + 1];
    char addr[64];         /* direct tunnel address, "" when only the fleet reaches it */
    bool listed;           /* in the latest list a node sent */
    bool goaway;           /* its link got GOAWAY: not redialed until relisted or later */
    struct ag_link *held;  /* the link registered (or registering) with it, or NULL */
    uint32_t aimed;        /* dials in flight aimed at it */
    uint32_t attempt;      /* failed dials aimed at it since it was last held */
    uint64_t next_dial_ms; /* not before (monotonic ms) */
};

struct ag_pool {
    struct ag_node *nodes;
    size_t n, cap;
    uint32_t blind_attempt; /* failed blind dials since a node was last held */
    uint64_t next_blind_ms; /* not before */
    uint32_t lists;         /* discovery lists applied */
};

/* What a list change did, for the logs. */
struct ag_pool_delta {
    uint32_t added, relisted, dropped;
};

void ag__pool_init(struct ag_pool *p);
void ag__pool_free(struct ag_pool *p);
/* Finds the node <id>; NULL when unknown. */
struct ag_node *ag__pool_find(struct ag_pool *p, const char *id);
/* Finds or adds the node <id> (not listed yet). NULL only when the pool
 * already holds WR_MAX_NODES * 2 nodes. */
struct ag_node *ag__pool_get(struct ag_pool *p, const char *id);
/* Applies a discovery list: nodes in it are listed (with their address),
 * the others are not. A node that becomes listed again is dialable at once
 * (attempt and goaway reset). Unlisted nodes without a link are forgotten. */
void ag__pool_apply(struct ag_pool *p, const struct wr_node_entry *e, size_t n, uint64_t now,
                    struct ag_pool_delta *d);
/* Forgets nodes that are neither listed nor linked. */
void ag__pool_gc(struct ag_pool *p);
/* Nodes wanted: listed in the latest discovery list. */
size_t ag__pool_wanted(const struct ag_pool *p);
/* The next node to dial at <now>: listed, not held, not after GOAWAY, its
 * backoff over, and with room for another dial: one at a time to a direct
 * address, up to <fleet_max> through the fleet address (behind a random
 * balancer each lands on the node with probability 1/N, so several at once
 * find it sooner). The node with the fewest dials in flight, then the
 * longest-waiting, goes first. NULL when none; *wake_ms is then the earliest
 * time one will be (UINT64_MAX: none). */
struct ag_node *ag__pool_next(struct ag_pool *p, uint64_t now, uint32_t fleet_max,
                              uint64_t *wake_ms);

/* ---- the agent's view of its links (ag_link.c / ag_agent.c) -------------------- */

enum ag_link_state {
    AG_LINK_ST_RESOLVING = 0, /* getaddrinfo on the dial address */
    AG_LINK_ST_CONNECTING,    /* TCP connect and TLS handshake */
    AG_LINK_ST_REGISTERING,   /* HELLO sent, waiting for WELCOME */
    AG_LINK_ST_READY,         /* registered; the node may open streams */
    AG_LINK_ST_DRAINING,      /* GOAWAY, or the node left: open streams finish */
    AG_LINK_ST_CLOSING,       /* connection closing; the link is freed after */
    AG_LINK_ST__COUNT         /* must be last */
};

struct ag_agent;

struct ag_link {
    struct ag_link *next, *prev; /* in agent->links */
    struct ag_agent *agent;
    enum ag_link_state state;
    struct wr_conn *conn;
    struct wr_mux *mux;
    uv_getaddrinfo_t gai;
    uv_timer_t timer; /* registration deadline, then keepalive */
    bool gai_pending;
    bool identified;            /* TLS done: node_id holds the node's certificate name */
    bool was_ready;             /* registered at some point */
    bool duplicate;             /* landed on a node already held: closed early */
    bool close_when_idle;       /* the node left the cluster: close once no stream is open */
    bool direct;                /* dialed the target's own address, not the fleet's */
    bool aim_released;          /* no longer counted in its target's <aimed> */
    char target[WR_ID_MAX + 1]; /* node the dial aims at; "" for a blind dial */
    char host[AG_HOST_MAX + 1]; /* what is resolved and dialed */
    char port[8];
    char sni[WR_ID_MAX + AG_HOST_MAX + 2]; /* "<node>.<cluster>", or the blind SNI */
    char node_id[WR_ID_MAX + 1];           /* from the certificate, checked against WELCOME */
    char addr_str[WR_ADDR_STRLEN];
    uint64_t last_rx_ms;
    uint64_t rtt_us;
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
};

/* Dials <l> (fields target/host/port/sni/direct set, linked into the agent). */
void ag__link_start(struct ag_link *l);
/* Closes <l> with a logged reason; ag__agent_link_gone follows once every
 * handle is released. Idempotent. */
void ag__link_close(struct ag_link *l, const char *why);
size_t ag__link_streams(const struct ag_link *l);
const char *ag__link_state_str(enum ag_link_state s);

/* Upcalls from a link to its agent (ag_agent.c). */
/* TLS is up and the node's name known: false means close (a duplicate). */
bool ag__agent_link_identified(struct ag_agent *a, struct ag_link *l);
void ag__agent_link_ready(struct ag_agent *a, struct ag_link *l, const struct wr_msg_welcome *w);
void ag__agent_link_discovery(struct ag_agent *a, struct ag_link *l,
                              const struct wr_msg_discovery *d);
void ag__agent_link_goaway(struct ag_agent *a, struct ag_link *l);
void ag__agent_link_gone(struct ag_agent *a, struct ag_link *l);
void ag__agent_link_open(struct ag_agent *a, struct ag_link *l, struct wr_mux_stream *s,
                         struct wr_slice hdr);
/* What the links need of the agent's configuration. */
const struct ag_config *ag__agent_cfg(const struct ag_agent *a);
uv_loop_t *ag__agent_loop(const struct ag_agent *a);
struct wr_tls_ctx *ag__agent_tls(const struct ag_agent *a);
const char *ag__agent_token(const struct ag_agent *a);

#endif
