/*
 * main.c (warren-lb): parses the command line into struct lb_config,
 * validates all of it before anything starts, and runs the balancer's loop.
 */
#include "lb.h"

#include "disc.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char lb_usage[] =
    "usage: warren-lb --listen MODE:ADDR[,OPTION...] [--listen ...] [options]\n"
    "\n"
    "An L4 load balancer for the warren fleet: balances TCP, routes TLS by SNI\n"
    "without terminating it, routes HTTP/1.x by Host. Backends are static or\n"
    "learned from gossip (warren-lb joins as an observer).\n"
    "\n"
    "Listeners and routes:\n"
    "  --listen MODE:ADDR[,set=SET][,balance=rr|p2c][,proxy-v2]\n"
    "                           a listener (repeatable, up to 16). MODE: tcp (balance\n"
    "                           over set=SET, required), sni (route by TLS server\n"
    "                           name), http (route by Host). balance: round-robin\n"
    "                           (default) or power of two choices on open connections.\n"
    "                           proxy-v2: send a PROXY protocol v2 header to backends\n"
    "  --backend SET=IP:PORT    a static backend in set SET (repeatable, up to 256)\n"
    "  --route PATTERN=SET      sni/http routing (repeatable): an exact name, *.suffix\n"
    "                           (longest suffix wins) or * (the default); names\n"
    "                           <node-id>.<cluster> reach that node (with --cluster)\n"
    "  --route-ttl DUR          cache time of a route lookup (default 10s)\n"
    "  --route-negative-ttl DUR cache time of an unknown name (default 2s)\n"
    "  --route-cache N          cached lookups at most (default 4096)\n"
    "\n"
    "Mesh (gossip, as an observer):\n"
    "  --cluster-key FILE       gossip keyring file (warrenctl keyring generate)\n"
    "  --join ADDR              a member's gossip address (repeatable, up to 16)\n"
    "  --gossip-addr ADDR       gossip UDP+TCP address (default 127.0.0.1:0)\n"
    "  --gossip-id ID           our member id (default lb-<host>-<pid>)\n"
    "  --cluster NAME           the cluster name: SNI/Host <node-id>.<NAME> routes\n"
    "                           to that node of a mesh set\n"
    "  --mesh-set SET[:PORT]    set SET holds the ALIVE gossip members of role node,\n"
    "                           at their listen address (or its host and PORT);\n"
    "                           checked with GET /readyz on their admin address\n"
    "\n"
    "Health and bounds:\n"
    "  --check-interval DUR     health check period per backend (default 1s)\n"
    "  --check-timeout DUR      one check's deadline (default: the smaller of\n"
    "                           --check-interval and --connect-timeout)\n"
    "  --rise N                 good checks in a row to come back UP (default 2)\n"
    "  --fall N                 failed checks in a row to go DOWN (default 2)\n"
    "  --connect-timeout DUR    backend connect deadline (default 3s); a failed\n"
    "                           connect marks the backend DOWN and is retried once\n"
    "                           on another backend of the set\n"
    "  --peek-timeout DUR       ClientHello / request head deadline (default 5s)\n"
    "  --idle-timeout DUR       close a relayed connection with no byte either way\n"
    "                           this long (default 0: never; agents' tunnels PING\n"
    "                           every 5s, so anything above that keeps them)\n"
    "  --max-conns N            client connections at once (default 10000)\n"
    "  --drain-timeout DUR      on SIGTERM, stop accepting and leave gossip, and give\n"
    "                           open connections this long (default 0: close at once)\n"
    "  --backlog N              listen backlog (default 511)\n"
    "\n"
    "Operations:\n"
    "  --admin-addr ADDR        admin HTTP API (/healthz, /readyz, /v1/backends,\n"
    "                           /v1/listeners, /metrics); 'off' disables it\n"
    "                           (default 127.0.0.1:7481)\n"
    "  --ready-file FILE        write 'listen MODE ADDR', 'admin ADDR' and\n"
    "                           'gossip ADDR' lines here once listening\n"
    "  --log-level LEVEL        error|warn|info|debug|trace (default info)\n"
    "  -h, --help               this text\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain (see --drain-timeout), a second one exits at once.\n"
    "Durations: 500ms, 5s, 2m. See docs/lb.md.\n";

enum {
    LB_OPT_LISTEN = 256,
    LB_OPT_BACKEND,
    LB_OPT_ROUTE,
    LB_OPT_ROUTE_TTL,
    LB_OPT_ROUTE_NEG_TTL,
    LB_OPT_ROUTE_CACHE,
    LB_OPT_CLUSTER_KEY,
    LB_OPT_JOIN,
    LB_OPT_GOSSIP_ADDR,
    LB_OPT_GOSSIP_ID,
    LB_OPT_CLUSTER,
    LB_OPT_MESH_SET,
    LB_OPT_CHECK_INTERVAL,
    LB_OPT_CHECK_TIMEOUT,
    LB_OPT_RISE,
    LB_OPT_FALL,
    LB_OPT_CONNECT_TIMEOUT,
    LB_OPT_PEEK_TIMEOUT,
    LB_OPT_IDLE_TIMEOUT,
    LB_OPT_MAX_CONNS,
    LB_OPT_DRAIN_TIMEOUT,
    LB_OPT_BACKLOG,
    LB_OPT_ADMIN_ADDR,
    LB_OPT_READY_FILE,
    LB_OPT_LOG_LEVEL,
};

static const struct option lb_options[] = {
    {"listen", required_argument, NULL, LB_OPT_LISTEN},
    {"backend", required_argument, NULL, LB_OPT_BACKEND},
    {"route", required_argument, NULL, LB_OPT_ROUTE},
    {"route-ttl", required_argument, NULL, LB_OPT_ROUTE_TTL},
    {"route-negative-ttl", required_argument, NULL, LB_OPT_ROUTE_NEG_TTL},
    {"route-cache", required_argument, NULL, LB_OPT_ROUTE_CACHE},
    {"cluster-key", required_argument, NULL, LB_OPT_CLUSTER_KEY},
    {"join", required_argument, NULL, LB_OPT_JOIN},
    {"gossip-addr", required_argument, NULL, LB_OPT_GOSSIP_ADDR},
    {"gossip-id", required_argument, NULL, LB_OPT_GOSSIP_ID},
    {"cluster", required_argument, NULL, LB_OPT_CLUSTER},
    {"mesh-set", required_argument, NULL, LB_OPT_MESH_SET},
    {"check-interval", required_argument, NULL, LB_OPT_CHECK_INTERVAL},
    {"check-timeout", required_argument, NULL, LB_OPT_CHECK_TIMEOUT},
    {"rise", required_argument, NULL, LB_OPT_RISE},
    {"fall", required_argument, NULL, LB_OPT_FALL},
    {"connect-timeout", required_argument, NULL, LB_OPT_CONNECT_TIMEOUT},
    {"peek-timeout", required_argument, NULL, LB_OPT_PEEK_TIMEOUT},
    {"idle-timeout", required_argument, NULL, LB_OPT_IDLE_TIMEOUT},
    {"max-conns", required_argument, NULL, LB_OPT_MAX_CONNS},
    {"drain-timeout", required_argument, NULL, LB_OPT_DRAIN_TIMEOUT},
    {"backlog", required_argument, NULL, LB_OPT_BACKLOG},
    {"admin-addr", required_argument, NULL, LB_OPT_ADMIN_ADDR},
    {"ready-file", required_argument, NULL, LB_OPT_READY_FILE},
    {"log-level", required_argument, NULL, LB_OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Copies a set name, checked as an id. */
static void lb_main_set_name(const char *flag, const char *v, const char *s, size_t len,
                             char out[LB_SET_NAME_MAX + 1])
{
    if (!wr_id_is_valid(s, len))
        wr_flags_fail("invalid %s '%s': set names are 1-64 of [A-Za-z0-9._-]", flag, v);
    memcpy(out, s, len);
    out[len] = '\0';
}

/* "MODE:ADDR[,set=SET][,balance=rr|p2c][,proxy-v2]" */
static void lb_main_parse_listen(const char *v, struct lb_listener_config *l)
{
    const char *colon = strchr(v, ':');
    if (colon == NULL)
        wr_flags_fail("invalid --listen '%s': expected MODE:ADDR (MODE tcp, sni or http)", v);
    size_t mlen = (size_t)(colon - v);
    if (mlen == 3 && memcmp(v, "tcp", 3) == 0)
        l->mode = LB_MODE_TCP;
    else if (mlen == 3 && memcmp(v, "sni", 3) == 0)
        l->mode = LB_MODE_SNI;
    else if (mlen == 4 && memcmp(v, "http", 4) == 0)
        l->mode = LB_MODE_HTTP;
    else
        wr_flags_fail("invalid --listen '%s': mode must be tcp, sni or http", v);
    const char *addr = colon + 1;
    const char *comma = strchr(addr, ',');
    size_t alen = comma ? (size_t)(comma - addr) : strlen(addr);
    char buf[WR_ADDR_STRLEN];
    if (alen >= sizeof(buf))
        wr_flags_fail("invalid --listen '%s': address too long", v);
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    if (wr_addr_parse(buf, &l->addr) != 0)
        wr_flags_fail("invalid --listen '%s': bad address (use IP:PORT)", v);
    while (comma != NULL) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t olen = comma ? (size_t)(comma - opt) : strlen(opt);
        if (olen > 4 && memcmp(opt, "set=", 4) == 0) {
            lb_main_set_name("--listen", v, opt + 4, olen - 4, l->set);
        } else if (olen == 10 && memcmp(opt, "balance=rr", 10) == 0) {
            l->balance = LB_BALANCE_RR;
        } else if (olen == 11 && memcmp(opt, "balance=p2c", 11) == 0) {
            l->balance = LB_BALANCE_P2C;
        } else if (olen == 8 && memcmp(opt, "proxy-v2", 8) == 0) {
            l->proxy_v2 = true;
        } else {
            wr_flags_fail("invalid --listen '%s': unknown option '%.*s' (set=SET, "
                          "balance=rr|p2c, proxy-v2)",
                          v, (int)olen, opt);
        }
    }
    if (l->mode == LB_MODE_TCP && l->set[0] == '\0')
        wr_flags_fail("invalid --listen '%s': tcp needs set=SET", v);
    if (l->mode != LB_MODE_TCP && l->set[0] != '\0')
        wr_flags_fail("invalid --listen '%s': %s routes by name (--route), set= is for tcp", v,
                      lb_mode_str(l->mode));
}

/* "SET=IP:PORT" */
static void lb_main_parse_backend(const char *v, struct lb_backend_config *b)
{
    const char *eq = strchr(v, '=');
    if (eq == NULL)
        wr_flags_fail("invalid --backend '%s': expected SET=IP:PORT", v);
    lb_main_set_name("--backend", v, v, (size_t)(eq - v), b->set);
    if (wr_addr_parse(eq + 1, &b->addr) != 0 ||
        wr_addr_port((const struct sockaddr *)&b->addr) == 0)
        wr_flags_fail("invalid --backend '%s': bad address (use IP:PORT)", v);
}

/* "PATTERN=SET"; the pattern itself is checked by lb_route_add. */
static void lb_main_parse_route(const char *v, struct lb_route_config *r)
{
    const char *eq = strrchr(v, '=');
    if (eq == NULL || eq == v || (size_t)(eq - v) > LB_PATTERN_MAX)
        wr_flags_fail("invalid --route '%s': expected PATTERN=SET", v);
    memcpy(r->pattern, v, (size_t)(eq - v));
    r->pattern[eq - v] = '\0';
    lb_main_set_name("--route", v, eq + 1, strlen(eq + 1), r->set);
}

/* "SET[:PORT]" */
static void lb_main_parse_mesh_set(const char *v, struct lb_mesh_set_config *m)
{
    const char *colon = strchr(v, ':');
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    lb_main_set_name("--mesh-set", v, v, len, m->set);
    if (colon != NULL) {
        uint64_t port = 0;
        if (wr_parse_uint(colon + 1, 1, 65535, &port) != 0)
            wr_flags_fail("invalid --mesh-set '%s': PORT must be 1-65535", v);
        m->port = (uint16_t)port;
    }
}

static void lb_main_load_keys(const char *file, struct lb_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    int err = wr_read_file(file, 16384, &text, &len);
    if (err != 0)
        wr_flags_fail("cannot read --cluster-key '%s': %s", file, wr_strerror(err));
    struct disc_keyring *kr = NULL;
    size_t bad_line = 0;
    err = disc_keyring_parse(text, len, &kr, &bad_line);
    wr_memzero(text, len);
    free(text);
    if (err == WR_EPROTO)
        wr_flags_fail("invalid --cluster-key '%s': line %zu is not a 32-byte key in base64", file,
                      bad_line);
    if (err != 0)
        wr_flags_fail("cannot load --cluster-key '%s': %s", file, wr_strerror(err));
    cfg->n_cluster_keys = (uint32_t)disc_keyring_count(kr);
    for (uint32_t i = 0; i < cfg->n_cluster_keys; i++)
        (void)disc_keyring_get(kr, i, cfg->cluster_keys[i]);
    disc_keyring_free(kr);
    cfg->gossip_enabled = true;
}

int main(int argc, char **argv)
{
    static struct lb_config cfg; /* large: not on the stack */
    lb_config_init(&cfg);
    const char *key_file = NULL;
    wr_flags_set_prog("warren-lb");
    int opt;
    while ((opt = getopt_long(argc, argv, "h", lb_options, NULL)) != -1) {
        switch (opt) {
        case LB_OPT_LISTEN:
            if (cfg.n_listeners == LB_MAX_LISTENERS)
                wr_flags_fail("too many --listen (max %d)", LB_MAX_LISTENERS);
            lb_main_parse_listen(optarg, &cfg.listeners[cfg.n_listeners++]);
            break;
        case LB_OPT_BACKEND:
            if (cfg.n_backends == LB_MAX_BACKENDS)
                wr_flags_fail("too many --backend (max %d)", LB_MAX_BACKENDS);
            lb_main_parse_backend(optarg, &cfg.backends[cfg.n_backends++]);
            break;
        case LB_OPT_ROUTE:
            if (cfg.n_routes == LB_MAX_ROUTES)
                wr_flags_fail("too many --route (max %d)", LB_MAX_ROUTES);
            lb_main_parse_route(optarg, &cfg.routes[cfg.n_routes++]);
            break;
        case LB_OPT_ROUTE_TTL:
            cfg.route_ttl_ms = wr_flags_duration_ms("--route-ttl", optarg);
            break;
        case LB_OPT_ROUTE_NEG_TTL:
            cfg.route_neg_ttl_ms = wr_flags_duration_ms("--route-negative-ttl", optarg);
            break;
        case LB_OPT_ROUTE_CACHE:
            cfg.route_cache_max = (uint32_t)wr_flags_uint("--route-cache", optarg, 1, 1000000);
            break;
        case LB_OPT_CLUSTER_KEY:
            key_file = optarg;
            break;
        case LB_OPT_JOIN: {
            struct sockaddr_storage ss;
            if (cfg.n_joins == LB_MAX_JOINS)
                wr_flags_fail("too many --join (max %d)", LB_MAX_JOINS);
            if (wr_addr_parse(optarg, &ss) != 0 || wr_addr_port((const struct sockaddr *)&ss) == 0)
                wr_flags_fail("invalid --join '%s' (use IP:PORT)", optarg);
            cfg.joins[cfg.n_joins++] = optarg;
            break;
        }
        case LB_OPT_GOSSIP_ADDR: {
            struct sockaddr_storage ss;
            if (wr_addr_parse(optarg, &ss) != 0)
                wr_flags_fail("invalid --gossip-addr '%s' (use IP:PORT)", optarg);
            if (wr_addr_port((const struct sockaddr *)&ss) == 0 &&
                (strncmp(optarg, "0.0.0.0:", 8) == 0 || strncmp(optarg, "[::]:", 5) == 0))
                wr_flags_fail("invalid --gossip-addr '%s': port 0 needs a specific IP", optarg);
            cfg.gossip_addr = optarg;
            break;
        }
        case LB_OPT_GOSSIP_ID:
            if (!wr_id_is_valid(optarg, strlen(optarg)))
                wr_flags_fail("invalid --gossip-id '%s': 1-64 of [A-Za-z0-9._-]", optarg);
            cfg.gossip_id = optarg;
            break;
        case LB_OPT_CLUSTER:
            if (!wr_id_is_valid(optarg, strlen(optarg)))
                wr_flags_fail("invalid --cluster '%s': 1-64 of [A-Za-z0-9._-]", optarg);
            cfg.cluster = optarg;
            break;
        case LB_OPT_MESH_SET:
            if (cfg.n_mesh_sets == LB_MAX_MESH_SETS)
                wr_flags_fail("too many --mesh-set (max %d)", LB_MAX_MESH_SETS);
            lb_main_parse_mesh_set(optarg, &cfg.mesh_sets[cfg.n_mesh_sets++]);
            break;
        case LB_OPT_CHECK_INTERVAL:
            cfg.check_interval_ms = wr_flags_duration_ms("--check-interval", optarg);
            break;
        case LB_OPT_CHECK_TIMEOUT:
            cfg.check_timeout_ms = wr_flags_duration_ms("--check-timeout", optarg);
            break;
        case LB_OPT_RISE:
            cfg.rise = (uint32_t)wr_flags_uint("--rise", optarg, 1, 100);
            break;
        case LB_OPT_FALL:
            cfg.fall = (uint32_t)wr_flags_uint("--fall", optarg, 1, 100);
            break;
        case LB_OPT_CONNECT_TIMEOUT:
            cfg.connect_timeout_ms = wr_flags_duration_ms("--connect-timeout", optarg);
            break;
        case LB_OPT_IDLE_TIMEOUT:
            cfg.idle_timeout_ms = wr_flags_duration_ms("--idle-timeout", optarg);
            break;
        case LB_OPT_PEEK_TIMEOUT:
            cfg.peek_timeout_ms = wr_flags_duration_ms("--peek-timeout", optarg);
            break;
        case LB_OPT_MAX_CONNS:
            cfg.max_conns = (uint32_t)wr_flags_uint("--max-conns", optarg, 1, 1000000);
            break;
        case LB_OPT_DRAIN_TIMEOUT:
            cfg.drain_timeout_ms =
                strcmp(optarg, "0") == 0 ? 0 : wr_flags_duration_ms("--drain-timeout", optarg);
            break;
        case LB_OPT_BACKLOG:
            cfg.backlog = (uint32_t)wr_flags_uint("--backlog", optarg, 1, 65535);
            break;
        case LB_OPT_ADMIN_ADDR:
            cfg.admin_enabled = strcmp(optarg, "off") != 0;
            if (cfg.admin_enabled && wr_addr_parse(optarg, &cfg.admin_addr) != 0)
                wr_flags_fail("invalid --admin-addr '%s' (use IP:PORT or off)", optarg);
            break;
        case LB_OPT_READY_FILE:
            cfg.ready_file = optarg;
            break;
        case LB_OPT_LOG_LEVEL:
            wr_flags_log_level(optarg);
            break;
        case 'h':
            fputs(lb_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "(see warren-lb --help)\n");
            return 1;
        }
    }
    if (optind < argc)
        wr_flags_fail("unexpected argument '%s'", argv[optind]);
    if (cfg.n_listeners == 0)
        wr_flags_fail("%s", "at least one --listen is required");
    bool by_name = false;
    for (uint32_t i = 0; i < cfg.n_listeners; i++)
        by_name = by_name || cfg.listeners[i].mode != LB_MODE_TCP;
    if (by_name && cfg.n_routes == 0 && cfg.cluster == NULL)
        wr_flags_fail("%s", "sni and http listeners need --route (or --cluster with --mesh-set)");
    if (key_file == NULL && (cfg.n_joins > 0 || cfg.n_mesh_sets > 0))
        wr_flags_fail("%s", "--join and --mesh-set need --cluster-key (gossip is off without it)");
    if (cfg.cluster != NULL && cfg.n_mesh_sets == 0)
        wr_flags_fail("%s", "--cluster routes <node-id>.<cluster> to mesh members: it needs "
                            "--mesh-set");
    if (key_file != NULL)
        lb_main_load_keys(key_file, &cfg);
    signal(SIGPIPE, SIG_IGN);
    wr_raise_nofile();

    uv_loop_t loop;
    uv_loop_init(&loop);
    int err = 0;
    struct lb *lb = lb_new(&loop, &cfg, &err);
    wr_memzero(cfg.cluster_keys, sizeof(cfg.cluster_keys)); /* lb holds its copy */
    if (lb == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    int status = 0;
    if (lb_start(lb) != 0) {
        lb_stop(lb);
        status = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    lb_free(lb);
    if (uv_loop_close(&loop) != 0)
        WR_WARN("lb", "loop_not_empty", "what=\"handles left open at exit\"");
    return status;
}
