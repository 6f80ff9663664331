/*
 * nd.h: the proxy node. A node accepts agents' TLS tunnels, keeps them in
 * per-tunnel pools, and routes visitors from its entry points to an agent of
 * the right tunnel. main.c parses flags into struct nd_config and runs it.
 */
#ifndef ND_H
#define ND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "wr.h"

#define ND_MAX_ENTRIES 64
#define ND_MAX_JOINS 16
#define ND_CLUSTER_KEYS_MAX 8 /* DISC_KEYRING_MAX */
#define ND_CLUSTER_KEY_LEN 32
#define ND_MAX_PROXY_FROM 64 /* networks in --proxy-protocol-from */

struct nd_entry_config {
    struct sockaddr_storage addr;
    char tunnel[WR_ID_MAX + 1];
    char service[WR_ID_MAX + 1];
};

/* Zero-initialised is not valid: use nd_config_init for the defaults. */
struct nd_config {
    struct sockaddr_storage listen_addr; /* agents' TLS listener */
    const char *cert_file;
    const char *key_file;
    const char *ca_file;
    const char *node_id;    /* default: the certificate's... set by main from --node-id */
    const char *ready_file; /* written once every listener is bound */
    bool admin_enabled;     /* the HTTP admin API (default on) */
    struct sockaddr_storage admin_addr; /* default 127.0.0.1:7480; port 0 allowed */
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    uint32_t hello_timeout_ms; /* TLS handshake + HELLO must finish within this */
    uint32_t drain_timeout_ms; /* on SIGTERM, open streams get this long */
    uint32_t max_agents;       /* tunnel connections accepted at once */
    uint32_t max_streams;      /* per tunnel connection */
    uint32_t window;           /* per-stream flow-control window */
    uint32_t n_entries;
    struct nd_entry_config entries[ND_MAX_ENTRIES];
    /* Gossip (discovery/) runs only when <gossip_enabled>: main sets it
     * when --cluster-key was given and copies the decoded keys (the first
     * is the primary). The node wipes them once its keyring holds them. */
    bool gossip_enabled;
    uint8_t cluster_keys[ND_CLUSTER_KEYS_MAX][ND_CLUSTER_KEY_LEN];
    uint32_t n_cluster_keys;
    const char *cluster_key_file;      /* rewritten when the keyring changes at runtime */
    const char *gossip_addr;           /* "IP:PORT" bound for UDP and TCP; default 0.0.0.0:7946 */
    const char *advertise_tunnel_addr; /* "host:port" agents may dial directly; NULL: fleet only */
    const char *advertise_host;        /* IP others reach us at; NULL: see nd_gossip.c */
    uint32_t n_joins;
    const char *joins[ND_MAX_JOINS]; /* gossip addresses to join through */
    /* Peer links (forwarding between nodes, nd_peer.c): run with gossip on,
     * unless <peer_enabled> is false (--peer-addr off). <peer_addr_set>: given
     * explicitly, so failing to bind it is fatal (the default only warns). */
    bool peer_enabled;
    bool peer_addr_set;
    struct sockaddr_storage peer_addr; /* default 0.0.0.0:7444 */
    /* PROXY protocol (--proxy-protocol-from): a connection to the agents'
     * listener or an entry point from one of these networks must begin with
     * a PROXY v1/v2 header naming the real client. None: off. */
    uint32_t n_proxy_from;
    struct wr_cidr proxy_from[ND_MAX_PROXY_FROM];
};

void nd_config_init(struct nd_config *cfg);

struct nd_node;

/* Loads the TLS material and binds every listener. Returns NULL with *err set
 * (the reason is logged). */
struct nd_node *nd_node_new(uv_loop_t *loop, const struct nd_config *cfg, int *err);
/* Starts accepting and handles SIGTERM/SIGINT (drain, then stop) and SIGUSR1
 * (log a stats line). Returns once the loop may be run. */
int nd_node_start(struct nd_node *n);
/* Begins the drain (as SIGTERM does). Also the way to unwind after a failed
 * nd_node_start: it closes whatever was opened, then uv_run returns. */
void nd_node_drain(struct nd_node *n);
/* Frees the node after uv_run returned (every handle is closed by then). */
void nd_node_free(struct nd_node *n);

#endif
