/*
 * nd_int.h: node internals shared between nd_*.c files.
 */
#ifndef ND_INT_H
#define ND_INT_H

#include "nd.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
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
/* Why an agent's connection was turned away: the label of the rejection
 * counter on /metrics. */
enum nd_reject_class {
    ND_REJECT_TLS = 0,  /* TLS handshake failed or timed out */
    ND_REJECT_AUTH,     /* token invalid, expired, for another tunnel, weight too high */
    ND_REJECT_PROTOCOL, /* malformed or out-of-order HELLO */
    ND_REJECT_VERSION,  /* unsupported wire version */
    ND_REJECT_TIMEOUT,  /* no HELLO within --hello-timeout */
    ND_REJECT_LIMIT,    /* draining or --max-agents reached */
    ND_REJECT_OTHER,
    ND_REJECT__COUNT /* must be last */
};
const char *nd__reject_class_str(enum nd_reject_class c);

struct nd_stats {
    uint64_t agents_accepted;
    uint64_t agents_rejected; /* the sum of rejected_by[] */
    uint64_t rejected_by[ND_REJECT__COUNT];
    uint64_t visitors_accepted;
    uint64_t visitors_refused;
    uint64_t streams_opened;
    uint64_t streams_failed;
    uint64_t bytes_up;
    uint64_t bytes_down;
    uint64_t proxy_ok;    /* PROXY headers naming a client */
    uint64_t proxy_local; /* PROXY headers of LOCAL/UNKNOWN: the socket's address kept */
    uint64_t proxy_bad;   /* trusted peers closed for a missing or malformed header */
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
    uint64_t start_ms;               /* monotonic, for the uptime */
    uint64_t start_wall_s;           /* wall clock, for /v1/self */
    struct nd_admin *admin;          /* NULL when --admin-addr off or not started yet */
    char admin_str[WR_ADDR_STRLEN];  /* bound admin address, "" when off */
    struct disc_cluster *gossip;     /* NULL when gossip is off or closed */
    uv_timer_t gossip_timer;         /* the grace between leave and close */
    uv_timer_t discovery_timer;      /* debounces DISCOVERY lists to agents */
    uint64_t discovery_hash;         /* of the list agents have now */
    uint64_t discovery_sent;         /* DISCOVERY messages sent (each to every agent) */
    char gossip_str[WR_ADDR_STRLEN]; /* bound gossip address, "" when off */
    bool gossip_left;                /* disc_cluster_leave was called */
    bool gossip_stopping;
    uint32_t pending_closes;
    bool draining;
    bool stopped;
    /* Peer links and forwarding (nd_peer.c). */
    struct nd_peers *peers;        /* NULL until nd__peer_start; see nd__peer_is_on */
    char peer_str[WR_ADDR_STRLEN]; /* bound peer address, "" when forwarding is off */
};

/* Tunnel connections (nd_tunnel.c). */
struct nd_tunc;
void nd__tunc_accept(struct nd_node *n, uv_stream_t *server);
/* Opens a stream to the agent behind <t> with OPEN header <hdr>. */
struct wr_mux_stream *nd__tunc_open_stream(struct nd_tunc *t, struct wr_slice hdr, int *err);
const char *nd__tunc_agent(const struct nd_tunc *t);
void nd__tunc_goaway(struct nd_tunc *t);
/* Sends a control message (a DISCOVERY list) on a READY connection; a write
 * failure closes it. */
void nd__tunc_send_control(struct nd_tunc *t, struct wr_slice msg);
/* True when draining and no stream is left open. */
bool nd__tunc_drained(const struct nd_tunc *t);
/* Closes every draining connection with no open stream left. */
void nd__node_drain_progress(struct nd_node *n);
void nd__tunc_close(struct nd_tunc *t, uint32_t code, const char *why);
void nd__node_maybe_stopped(struct nd_node *n);
/* Counts a rejected agent connection in <n>'s stats. */
void nd__node_count_reject(struct nd_node *n, enum nd_reject_class c);
/* PROXY protocol (--proxy-protocol-from): counts the decided header <r> of
 * <c> (OK, LOCAL or BAD) on /metrics and logs it: ev=proxy_header at debug
 * level when read, ev=proxy_header_bad with <why> when missing or malformed
 * (the caller closes <c>). <where> is logfmt naming the listener
 * ("listener=agents", "listener=entry entry=ADDR"). Once per connection. */
void nd__node_count_proxy(struct nd_node *n, const struct wr_conn *c, enum wr_conn_proxy r,
                          const char *why, const char *where);

/* What the admin API shows of one tunnel connection. The strings are borrowed
 * from <t> and valid until the next loop turn. tunnel and agent_id are empty
 * before the HELLO was accepted. */
struct nd_tunc_info {
    const char *tunnel;
    const char *agent_id;
    const char *peer;
    const char *state; /* "TLS", "AUTH", "READY", "DRAINING", "CLOSING" */
    uint64_t conn_id;
    uint64_t rtt_us; /* last keepalive round trip; 0 before the first PONG */
    uint32_t streams_open;
    uint8_t weight;
    bool in_pool;
};
void nd__tunc_get_info(const struct nd_tunc *t, struct nd_tunc_info *out);
/* The connection whose node->tuncs link is <link>. */
struct nd_tunc *nd__tunc_from_link(struct nd_list *link);

/* Entry points (nd_entry.c). */
int nd__entry_start(struct nd_node *n, struct nd_entry *e);
/* Accepts and routes every connection queued on <e>'s listener (at most
 * ND_ENTRY_FLUSH_MAX); the drain calls it right before closing the listener.
 * Returns how many. */
#define ND_ENTRY_FLUSH_MAX 4096
uint32_t nd__entry_flush_queue(struct nd_entry *e);
void nd__entry_stop(struct nd_entry *e);

/* Gossip membership (nd_gossip.c). Every function is a no-op when gossip is
 * off. */
/* Starts discovery/ on <n>'s loop with the bound listen and admin addresses
 * and joins --join. Returns 0 or an error (logged). */
int nd__gossip_start(struct nd_node *n);
/* Announces a graceful leave; the close follows in nd__gossip_stop. */
void nd__gossip_leave(struct nd_node *n);
/* Closes the cluster (after a short grace when a leave was announced, so that
 * it goes out). Each handle is counted in n->pending_closes. Idempotent. */
void nd__gossip_stop(struct nd_node *n);
/* Rebuilds the advertised tunnel set from the registry and publishes it. */
void nd__gossip_publish(struct nd_node *n);
/* True when gossip is off, when there is nothing to join, or once joined. */
bool nd__gossip_is_joined(const struct nd_node *n);
/* The discovery list agents get: live nodes (ALIVE or SUSPECT, role node,
 * this one included) with the tunnel address each advertises for direct
 * dials (--advertise-tunnel-addr; "" when agents must use the fleet). Just
 * this node when gossip is off. Returns the count (at most <max>). */
size_t nd__gossip_node_list(struct nd_node *n, struct wr_node_entry *out, size_t max);

/* ---- peer links: forwarding between nodes (nd_peer.c) ------------------------ */
/* A visitor whose tunnel has no local agent is forwarded to a node that holds
 * it (from gossip) over a persistent mutual-TLS link (ALPN warren-peer/1); a
 * node routes a peer's stream only to its own agents (hop rule). Every
 * function is a no-op while forwarding is off (gossip off, --peer-addr off). */
#define ND_PEER_DIAL_TIMEOUT_MS 3000 /* TCP + TLS of a dialed link; held visitors wait this */
#define ND_PEER_HOLD_MAX 1024        /* visitors waiting for a link at once */
#define ND_PEER_REPLAY_MAX 65536     /* visitor bytes kept for a retry on another node */
#define ND_PEER_MAX_LINKS 1024       /* links at once, both directions */
#define ND_FWD_ATTEMPTS 2            /* the first holder and one other */

struct nd_peer_stats {
    uint64_t fwd_out;     /* visitors forwarded: streams opened to a peer */
    uint64_t fwd_in;      /* peer streams relayed to a local agent */
    uint64_t refused_out; /* visitors that needed forwarding and were refused */
    uint64_t refused_in;  /* peer streams refused (no agent, hop limit, draining) */
    uint32_t links;       /* links with TLS done (ready or draining) */
};

/* Loads the peer TLS contexts and binds --peer-addr (with gossip on); sets
 * n->peer_str. Returns 0 or an error (logged); a default address that cannot
 * be bound only turns forwarding off, with a warning. */
int nd__peer_start(struct nd_node *n);
bool nd__peer_is_on(const struct nd_node *n);
/* SIGTERM: closes the listener, sends GOAWAY on every link, refuses visitors
 * still waiting for a link. */
void nd__peer_drain(struct nd_node *n);
/* Closes every link that is draining with no stream left. */
void nd__peer_drain_progress(struct nd_node *n);
/* Drain deadline: closes every link now. */
void nd__peer_force_close(struct nd_node *n);
/* True when no link is left (any state). */
bool nd__peer_idle(const struct nd_node *n);
/* After uv_run returned: frees what nd__peer_start made. */
void nd__peer_free(struct nd_node *n);
/* Entry point <e> has no local agent for visitor <c>: forwards it to a node
 * holding the tunnel (waiting, bounded, for the gossip join of a node that
 * just started). Returns NULL when it took <c> (it logs and counts a later
 * refusal itself), else the refusal reason for the caller to log (<c>
 * untouched): forwarding off, or no holder on any node. */
const char *nd__peer_forward(struct nd_node *n, struct nd_entry *e, struct wr_conn *c);
/* Gossip: member <id> failed, left or was forgotten. Its links take no new
 * stream and close once idle. */
void nd__peer_member_gone(struct nd_node *n, const char *id);
void nd__peer_get_stats(const struct nd_node *n, struct nd_peer_stats *out);
/* The hop rule for an OPEN received on a peer link: WR_CODE_OK when the node
 * may route it to a local agent, else the code to reset the stream with and
 * a static reason in *why. */
uint32_t nd__peer_route_check(const struct wr_msg_open *o, bool draining, const char **why);

/* ---- admin API: HTTP server (nd_admin.c) ------------------------------------ */
#define ND_ADMIN_HEAD_MAX 8192    /* request line + headers */
#define ND_ADMIN_BODY_MAX 8192    /* a GET needs none; more is refused (413) */
#define ND_ADMIN_URL_MAX 1024     /* longer: 414 */
#define ND_ADMIN_MAX_CONNS 64     /* more at once are closed on accept */
#define ND_ADMIN_TIMEOUT_MS 10000 /* a request must complete this long after the last */
#define ND_ADMIN_OUT_HIGH 262144  /* queued response bytes past which we stop reading */

struct nd_admin;
/* Binds cfg.admin_addr and starts serving on <n>'s loop; sets n->admin and
 * writes the bound address to <addr_out> (WR_ADDR_STRLEN). Returns 0 or a
 * libuv error (logged by the caller); on error whatever was opened is closed
 * by nd__admin_stop. */
int nd__admin_start(struct nd_node *n, char *addr_out);
/* Closes the listener, the timer and every admin connection. Idempotent. */
void nd__admin_stop(struct nd_node *n);
/* Frees n->admin once the loop has returned (every handle closed). */
void nd__admin_free(struct nd_node *n);

/* One HTTP/1.1 connection's request parsing and responses, without sockets
 * (so that unit tests drive it with bytes). Responses accumulate in the
 * buffer returned by nd__admin_sess_out, which the caller drains. */
struct nd_admin_sess;
struct nd_admin_sess *nd__admin_sess_new(struct nd_node *n);
void nd__admin_sess_free(struct nd_admin_sess *s);
/* Parses at most one request from <in> and queues its response. Returns the
 * bytes consumed (>0), 0 when <in> is empty or the session is closing, or
 * WR_EPROTO when the request was malformed or over a limit (a 400, 413, 414 or
 * 431 response is queued and the connection must close once it is sent). */
WR_MUST_CHECK ssize_t nd__admin_sess_feed(struct nd_admin_sess *s, struct wr_slice in);
struct wr_buf *nd__admin_sess_out(struct nd_admin_sess *s);
/* True when no more requests will be parsed: close after flushing. */
bool nd__admin_sess_closing(const struct nd_admin_sess *s);

/* ---- admin API: endpoints (nd_admin_api.c) ---------------------------------- */
enum nd_admin_route {
    ND_ADMIN_R_HEALTHZ = 0,
    ND_ADMIN_R_READYZ,
    ND_ADMIN_R_SELF,
    ND_ADMIN_R_TUNNELS,
    ND_ADMIN_R_METRICS,
    ND_ADMIN_R_MEMBERS,
    ND_ADMIN_R_KEYRING,         /* GET: the keys' fingerprints */
    ND_ADMIN_R_KEYRING_INSTALL, /* POST {"key": "..."} */
    ND_ADMIN_R_KEYRING_USE,     /* POST {"key"} or {"fingerprint"} */
    ND_ADMIN_R_KEYRING_REMOVE,  /* POST {"key"} or {"fingerprint"} */
    ND_ADMIN_R__COUNT           /* must be last */
};
enum nd_admin_method { ND_ADMIN_GET = 0, ND_ADMIN_POST, ND_ADMIN_OTHER };
/* Maps a request to an endpoint. <path> is the request target (a query string
 * is ignored). Returns 200 with *route set, 404 for an unknown path, or 405
 * for a known path with another method (*route set, so that the caller can
 * say which method is allowed: nd__admin_route_method). */
int nd__admin_route(enum nd_admin_method method, struct wr_slice path, enum nd_admin_route *route);
enum nd_admin_method nd__admin_route_method(enum nd_admin_route route);
/* Renders <route> for a request with body <req> into <body>; returns the HTTP
 * status and sets *ctype. Returns 500 (body unchanged) when out of memory. */
int nd__admin_render(struct nd_node *n, enum nd_admin_route route, struct wr_slice req,
                     struct wr_buf *body, const char **ctype);
/* The keyring endpoints of the admin API: ND_ADMIN_R_KEYRING lists the keys'
 * fingerprints; install/use/remove change the live keyring and rewrite the
 * --cluster-key file so that a restart keeps the change. Returns the HTTP
 * status; <body> gets JSON (an "error" member when not 200). */
int nd__gossip_keyring_api(struct nd_node *n, enum nd_admin_route op, struct wr_slice req,
                           struct wr_buf *body);
/* Serialises and releases <root> (NULL: WR_ENOMEM) into <body>. */
WR_MUST_CHECK int nd__json_finish(json_t *root, struct wr_buf *body);
/* True when /readyz answers 200. */
bool nd__admin_is_ready(const struct nd_node *n);

/* Appends printf-style text to <b>. Returns 0 or WR_ENOMEM (<b> unchanged). */
WR_MUST_CHECK int nd__buf_printf(struct wr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prometheus text exposition 0.0.4. Errors are sticky in <err>. */
struct nd_prom {
    struct wr_buf *b;
    int err;
};
/* "# HELP <name> <help>" and "# TYPE <name> <type>" (help escaped). */
void nd__prom_family(struct nd_prom *p, const char *name, const char *type, const char *help);
/* "<name>{<k1>="<v1>",...} <value>": <labels> is NULL or alternating keys and
 * values ending with NULL; values are escaped. */
void nd__prom_sample(struct nd_prom *p, const char *name, const char *const *labels,
                     uint64_t value);
/* Writes the whole /metrics page of <n>. */
void nd__prom_node(struct nd_prom *p, struct nd_node *n);

#endif
