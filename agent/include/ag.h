/*
 * ag.h: the agent. It dials out to the fleet (never listens), registers its
 * tunnel with a signed token on every live node it hears of, and relays each
 * stream a node opens to the named local service. main.c parses flags into
 * struct ag_config.
 */
#ifndef AG_H
#define AG_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "wr.h"

#define AG_HOST_MAX 255

struct ag_service {
    char name[WR_ID_MAX + 1];
    struct sockaddr_storage addr;
};

/* Zero-initialised is not valid: use ag_config_init for the defaults. */
struct ag_config {
    char proxy_host[AG_HOST_MAX + 1]; /* the fleet's address (an LB, or one node) */
    char proxy_port[8];
    const char *ca_file;
    const char *token_file;
    const char *sni; /* default: the cluster name from the CA certificate */
    char tunnel[WR_ID_MAX + 1];
    char agent_id[WR_ID_MAX + 1];
    uint8_t weight;
    uint32_t n_services;
    struct ag_service services[WR_MAX_SERVICES];
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    uint32_t hello_timeout_ms;
    uint32_t backoff_base_ms;
    uint32_t backoff_max_ms;
    uint32_t window;
    uint32_t max_streams;
    uint32_t max_dials;       /* dials in flight at once (default 8) */
    const char *metrics_file; /* Prometheus text rewritten on pool changes; NULL: none */
};

void ag_config_init(struct ag_config *cfg);

struct ag_agent;

/* Loads the CA and token; returns NULL with *err set (the reason is logged). */
struct ag_agent *ag_agent_new(uv_loop_t *loop, const struct ag_config *cfg, int *err);
/* Starts dialing; handles SIGTERM/SIGINT (stop) and SIGUSR1 (status line). */
int ag_agent_start(struct ag_agent *a);
/* Closes every link and stream; uv_run returns afterwards. */
void ag_agent_stop(struct ag_agent *a);
void ag_agent_free(struct ag_agent *a);

#endif
