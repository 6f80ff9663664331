/*
 * main.c (warren-node): parses the command line into struct nd_config,
 * validates all of it before anything starts, and runs the node's loop.
 */
#include "nd.h"

#include "disc.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char nd_usage[] =
    "usage: warren-node --cert FILE --key FILE --ca FILE [options]\n"
    "\n"
    "Accepts agents' TLS tunnels and routes visitors from entry points to them.\n"
    "\n"
    "  --listen ADDR            agents' TLS listener (default 0.0.0.0:7443)\n"
    "  --cert FILE              this node's certificate (PEM, from warrenctl cert issue)\n"
    "  --key FILE               this node's private key (PEM)\n"
    "  --ca FILE                the cluster CA certificate; verifies join tokens\n"
    "  --node-id ID             this node's id (default: the host name)\n"
    "  --entry ADDR=TUNNEL/SVC  TCP entry point: visitors on ADDR reach service SVC\n"
    "                           of tunnel TUNNEL (repeatable, up to 64)\n"
    "  --ping-interval DUR      keepalive PING period (default 5s)\n"
    "  --ping-timeout DUR       drop an agent silent this long (default 10s)\n"
    "  --hello-timeout DUR      TLS handshake + HELLO deadline (default 10s)\n"
    "  --drain-timeout DUR      on SIGTERM, time open streams get (default 10s)\n"
    "  --max-agents N           tunnel connections at once (default 10000)\n"
    "  --max-streams N          streams per tunnel connection (default 4096)\n"
    "  --window SIZE            per-stream flow-control window (default 4M)\n"
    "  --admin-addr ADDR        admin HTTP API (/healthz, /readyz, /v1/..., /metrics);\n"
    "                           'off' disables it (default 127.0.0.1:7480)\n"
    "  --cluster-key FILE       gossip key (32 bytes, base64 text, from warrenctl keyring\n"
    "                           generate); gossip membership runs only when given\n"
    "  --gossip-addr ADDR       gossip UDP+TCP address (default 0.0.0.0:7946; port 0\n"
    "                           needs a specific IP)\n"
    "  --join ADDR              a member's gossip address to join through (repeatable)\n"
    "  --advertise-addr IP      the IP other nodes reach this node at, advertised in\n"
    "                           gossip (default: the --listen IP when specific, else\n"
    "                           the first non-loopback IPv4 of this host)\n"
    "  --advertise-tunnel-addr HOST:PORT\n"
    "                           where agents may dial this node directly, sent in\n"
    "                           discovery lists (default: none, agents use the fleet\n"
    "                           address with SNI <node-id>.<cluster>)\n"
    "  --peer-addr ADDR         mutual-TLS listener for other nodes' peer links, which\n"
    "                           carry visitors for tunnels with no agent on the node\n"
    "                           they reached (default 0.0.0.0:7444; with gossip only;\n"
    "                           'off' disables forwarding)\n"
    "  --proxy-protocol-from CIDR[,CIDR...]\n"
    "                           connections to --listen and to the entry points from\n"
    "                           these networks (the load balancers) must start with\n"
    "                           a PROXY protocol v1/v2 header; its client address is\n"
    "                           used (repeatable; default none: PROXY protocol off)\n"
    "  --ready-file FILE        write the bound addresses here once listening\n"
    "  --log-level LEVEL        error|warn|info|debug|trace (default info)\n"
    "  -h, --help               this text\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain then exit (a second one exits at once);\n"
    "SIGUSR1 logs a stats line. Durations: 500ms, 5s, 2m. Sizes: 64k, 4M.\n";

enum {
    ND_OPT_LISTEN = 256,
    ND_OPT_CERT,
    ND_OPT_KEY,
    ND_OPT_CA,
    ND_OPT_NODE_ID,
    ND_OPT_ENTRY,
    ND_OPT_PING_INTERVAL,
    ND_OPT_PING_TIMEOUT,
    ND_OPT_HELLO_TIMEOUT,
    ND_OPT_DRAIN_TIMEOUT,
    ND_OPT_MAX_AGENTS,
    ND_OPT_MAX_STREAMS,
    ND_OPT_WINDOW,
    ND_OPT_READY_FILE,
    ND_OPT_LOG_LEVEL,
    ND_OPT_ADMIN_ADDR,
    ND_OPT_CLUSTER_KEY,
    ND_OPT_GOSSIP_ADDR,
    ND_OPT_JOIN,
    ND_OPT_ADVERTISE_ADDR,
    ND_OPT_ADVERTISE_TUNNEL_ADDR,
    ND_OPT_PEER_ADDR,
    ND_OPT_PROXY_PROTOCOL_FROM,
};

static const struct option nd_options[] = {
    {"listen", required_argument, NULL, ND_OPT_LISTEN},
    {"cert", required_argument, NULL, ND_OPT_CERT},
    {"key", required_argument, NULL, ND_OPT_KEY},
    {"ca", required_argument, NULL, ND_OPT_CA},
    {"node-id", required_argument, NULL, ND_OPT_NODE_ID},
    {"entry", required_argument, NULL, ND_OPT_ENTRY},
    {"ping-interval", required_argument, NULL, ND_OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, ND_OPT_PING_TIMEOUT},
    {"hello-timeout", required_argument, NULL, ND_OPT_HELLO_TIMEOUT},
    {"drain-timeout", required_argument, NULL, ND_OPT_DRAIN_TIMEOUT},
    {"max-agents", required_argument, NULL, ND_OPT_MAX_AGENTS},
    {"max-streams", required_argument, NULL, ND_OPT_MAX_STREAMS},
    {"window", required_argument, NULL, ND_OPT_WINDOW},
    {"ready-file", required_argument, NULL, ND_OPT_READY_FILE},
    {"admin-addr", required_argument, NULL, ND_OPT_ADMIN_ADDR},
    {"log-level", required_argument, NULL, ND_OPT_LOG_LEVEL},
    {"cluster-key", required_argument, NULL, ND_OPT_CLUSTER_KEY},
    {"gossip-addr", required_argument, NULL, ND_OPT_GOSSIP_ADDR},
    {"join", required_argument, NULL, ND_OPT_JOIN},
    {"advertise-addr", required_argument, NULL, ND_OPT_ADVERTISE_ADDR},
    {"advertise-tunnel-addr", required_argument, NULL, ND_OPT_ADVERTISE_TUNNEL_ADDR},
    {"peer-addr", required_argument, NULL, ND_OPT_PEER_ADDR},
    {"proxy-protocol-from", required_argument, NULL, ND_OPT_PROXY_PROTOCOL_FROM},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* "ADDR=TUNNEL/SERVICE" */
static void nd_main_parse_entry(const char *v, struct nd_entry_config *e)
{
    const char *eq = strrchr(v, '=');
    const char *slash = eq ? strchr(eq, '/') : NULL;
    if (eq == NULL || slash == NULL)
        wr_flags_fail("invalid --entry '%s': expected ADDR=TUNNEL/SERVICE", v);
    char addr[WR_ADDR_STRLEN];
    size_t alen = (size_t)(eq - v);
    if (alen >= sizeof(addr))
        wr_flags_fail("invalid --entry '%s': address too long", v);
    memcpy(addr, v, alen);
    addr[alen] = '\0';
    if (wr_addr_parse(addr, &e->addr) != 0)
        wr_flags_fail("invalid --entry '%s': bad address (use IP:PORT)", v);
    size_t tlen = (size_t)(slash - eq - 1);
    if (!wr_id_is_valid(eq + 1, tlen) || !wr_id_is_valid(slash + 1, strlen(slash + 1)))
        wr_flags_fail("invalid --entry '%s': tunnel and service are 1-64 of "
                      "[A-Za-z0-9._-]",
                      v);
    memcpy(e->tunnel, eq + 1, tlen);
    e->tunnel[tlen] = '\0';
    snprintf(e->service, sizeof(e->service), "%s", slash + 1);
}

/* "CIDR[,CIDR...]", appended to cfg->proxy_from. */
static void nd_main_parse_proxy_from(const char *v, struct nd_config *cfg)
{
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char item[WR_CIDR_STRLEN];
        if (len == 0 || len >= sizeof(item))
            wr_flags_fail("invalid --proxy-protocol-from '%s': expected CIDR[,CIDR...] "
                          "(e.g. 10.0.0.0/8,2001:db8::/32)",
                          v);
        memcpy(item, p, len);
        item[len] = '\0';
        if (cfg->n_proxy_from == ND_MAX_PROXY_FROM)
            wr_flags_fail("too many --proxy-protocol-from networks (max %d)", ND_MAX_PROXY_FROM);
        if (wr_cidr_parse(item, &cfg->proxy_from[cfg->n_proxy_from]) != 0)
            wr_flags_fail("invalid --proxy-protocol-from '%s': '%s' is not IP/PREFIX with the "
                          "host bits zero (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.7)",
                          v, item);
        cfg->n_proxy_from++;
        if (comma == NULL)
            return;
        p = comma + 1;
    }
}

/* Reads the gossip keyring file: one base64 key per line, the first the
 * primary (disc_keyring_parse has the format). */
static void nd_main_load_keys(const char *file, struct nd_config *cfg)
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
        wr_flags_fail("invalid --cluster-key '%s': line %zu is not a 32-byte key in base64 "
                      "(warrenctl keyring generate)",
                      file, bad_line);
    if (err == WR_EUSAGE)
        wr_flags_fail("invalid --cluster-key '%s': no key in it (warrenctl keyring generate)",
                      file);
    if (err == WR_ELIMIT)
        wr_flags_fail("invalid --cluster-key '%s': more than %d keys", file, DISC_KEYRING_MAX);
    if (err != 0)
        wr_flags_fail("cannot load --cluster-key '%s': %s", file, wr_strerror(err));
    cfg->n_cluster_keys = (uint32_t)disc_keyring_count(kr);
    for (uint32_t i = 0; i < cfg->n_cluster_keys; i++)
        (void)disc_keyring_get(kr, i, cfg->cluster_keys[i]);
    disc_keyring_free(kr);
    cfg->cluster_key_file = file;
}

int main(int argc, char **argv)
{
    struct nd_config cfg;
    nd_config_init(&cfg);
    char hostname[WR_ID_MAX + 1] = "node";
    const char *key_file = NULL;
    wr_flags_set_prog("warren-node");
    int opt;
    while ((opt = getopt_long(argc, argv, "h", nd_options, NULL)) != -1) {
        switch (opt) {
        case ND_OPT_LISTEN:
            if (wr_addr_parse(optarg, &cfg.listen_addr) != 0)
                wr_flags_fail("invalid --listen '%s' (use IP:PORT)", optarg);
            break;
        case ND_OPT_CERT:
            cfg.cert_file = optarg;
            break;
        case ND_OPT_KEY:
            cfg.key_file = optarg;
            break;
        case ND_OPT_CA:
            cfg.ca_file = optarg;
            break;
        case ND_OPT_NODE_ID:
            if (!wr_id_is_valid(optarg, strlen(optarg)))
                wr_flags_fail("invalid --node-id '%s': 1-64 of [A-Za-z0-9._-]", optarg);
            cfg.node_id = optarg;
            break;
        case ND_OPT_ENTRY:
            if (cfg.n_entries == ND_MAX_ENTRIES)
                wr_flags_fail("too many --entry (max %d)", ND_MAX_ENTRIES);
            nd_main_parse_entry(optarg, &cfg.entries[cfg.n_entries++]);
            break;
        case ND_OPT_PING_INTERVAL:
            cfg.ping_interval_ms = wr_flags_duration_ms("--ping-interval", optarg);
            break;
        case ND_OPT_PING_TIMEOUT:
            cfg.ping_timeout_ms = wr_flags_duration_ms("--ping-timeout", optarg);
            break;
        case ND_OPT_HELLO_TIMEOUT:
            cfg.hello_timeout_ms = wr_flags_duration_ms("--hello-timeout", optarg);
            break;
        case ND_OPT_DRAIN_TIMEOUT:
            cfg.drain_timeout_ms = wr_flags_duration_ms("--drain-timeout", optarg);
            break;
        case ND_OPT_MAX_AGENTS:
            cfg.max_agents = (uint32_t)wr_flags_uint("--max-agents", optarg, 1, 1000000);
            break;
        case ND_OPT_MAX_STREAMS:
            cfg.max_streams = (uint32_t)wr_flags_uint("--max-streams", optarg, 1, 1000000);
            break;
        case ND_OPT_WINDOW:
            cfg.window = (uint32_t)wr_flags_size("--window", optarg, 65536, 1u << 30);
            break;
        case ND_OPT_READY_FILE:
            cfg.ready_file = optarg;
            break;
        case ND_OPT_ADMIN_ADDR:
            cfg.admin_enabled = strcmp(optarg, "off") != 0;
            if (cfg.admin_enabled && wr_addr_parse(optarg, &cfg.admin_addr) != 0)
                wr_flags_fail("invalid --admin-addr '%s' (use IP:PORT or off)", optarg);
            break;
        case ND_OPT_LOG_LEVEL:
            wr_flags_log_level(optarg);
            break;
        case ND_OPT_CLUSTER_KEY:
            key_file = optarg;
            break;
        case ND_OPT_GOSSIP_ADDR: {
            struct sockaddr_storage ss;
            if (wr_addr_parse(optarg, &ss) != 0)
                wr_flags_fail("invalid --gossip-addr '%s' (use IP:PORT)", optarg);
            if (wr_addr_port((const struct sockaddr *)&ss) == 0 &&
                (strncmp(optarg, "0.0.0.0:", 8) == 0 || strncmp(optarg, "[::]:", 5) == 0))
                wr_flags_fail("invalid --gossip-addr '%s': port 0 needs a specific IP", optarg);
            cfg.gossip_addr = optarg;
            break;
        }
        case ND_OPT_ADVERTISE_ADDR: {
            struct sockaddr_storage ss;
            char probe[WR_ADDR_STRLEN];
            snprintf(probe, sizeof(probe), strchr(optarg, ':') ? "[%s]:1" : "%s:1", optarg);
            if (wr_addr_parse(probe, &ss) != 0 || strcmp(optarg, "0.0.0.0") == 0 ||
                strcmp(optarg, "::") == 0)
                wr_flags_fail("invalid --advertise-addr '%s' (use a specific IP, no port)", optarg);
            cfg.advertise_host = optarg;
            break;
        }
        case ND_OPT_ADVERTISE_TUNNEL_ADDR: {
            const char *colon = strrchr(optarg, ':');
            uint64_t port = 0;
            if (colon == NULL || colon == optarg || strlen(optarg) >= 64 ||
                wr_parse_uint(colon + 1, 1, 65535, &port) != 0 || strchr(optarg, ' ') != NULL)
                wr_flags_fail("invalid --advertise-tunnel-addr '%s' (use HOST:PORT)", optarg);
            cfg.advertise_tunnel_addr = optarg;
            break;
        }
        case ND_OPT_JOIN: {
            struct sockaddr_storage ss;
            if (cfg.n_joins == ND_MAX_JOINS)
                wr_flags_fail("too many --join (max %d)", ND_MAX_JOINS);
            if (wr_addr_parse(optarg, &ss) != 0 || wr_addr_port((const struct sockaddr *)&ss) == 0)
                wr_flags_fail("invalid --join '%s' (use IP:PORT)", optarg);
            cfg.joins[cfg.n_joins++] = optarg;
            break;
        }
        case ND_OPT_PEER_ADDR:
            cfg.peer_enabled = strcmp(optarg, "off") != 0;
            cfg.peer_addr_set = cfg.peer_enabled;
            if (cfg.peer_enabled && wr_addr_parse(optarg, &cfg.peer_addr) != 0)
                wr_flags_fail("invalid --peer-addr '%s' (use IP:PORT or off)", optarg);
            break;
        case ND_OPT_PROXY_PROTOCOL_FROM:
            nd_main_parse_proxy_from(optarg, &cfg);
            break;
        case 'h':
            fputs(nd_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "(see warren-node --help)\n");
            return 1;
        }
    }
    if (optind < argc)
        wr_flags_fail("unexpected argument '%s'", argv[optind]);
    if (cfg.cert_file == NULL || cfg.key_file == NULL || cfg.ca_file == NULL)
        wr_flags_fail("%s", "--cert, --key and --ca are required");
    if (cfg.advertise_host != NULL && cfg.gossip_addr != NULL && key_file != NULL) {
        struct sockaddr_storage gs;
        if (wr_addr_parse(cfg.gossip_addr, &gs) == 0 &&
            wr_addr_port((const struct sockaddr *)&gs) == 0)
            wr_flags_fail("%s", "--advertise-addr needs a fixed --gossip-addr port (not 0)");
    }
    if (key_file == NULL && cfg.n_joins > 0)
        wr_flags_fail("%s", "--join needs --cluster-key (gossip is off without it)");
    if (key_file != NULL) {
        nd_main_load_keys(key_file, &cfg);
        cfg.gossip_enabled = true;
    }
    if (cfg.ping_timeout_ms < cfg.ping_interval_ms)
        wr_flags_fail("%s", "--ping-timeout must be at least --ping-interval");
    if (cfg.node_id == NULL) {
        if (gethostname(hostname, sizeof(hostname) - 1) != 0 ||
            !wr_id_is_valid(hostname, strlen(hostname)))
            snprintf(hostname, sizeof(hostname), "node-%d", (int)getpid());
        cfg.node_id = hostname;
    }
    signal(SIGPIPE, SIG_IGN);
    wr_raise_nofile();
    if (wr_crypto_init() != 0)
        wr_fatal("what=\"libsodium failed to initialise\"");

    uv_loop_t loop;
    uv_loop_init(&loop);
    int err = 0;
    struct nd_node *n = nd_node_new(&loop, &cfg, &err);
    if (n == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    int status = 0;
    if (nd_node_start(n) != 0) {
        nd_node_drain(n);
        nd_node_drain(n);
        status = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    wr_memzero(cfg.cluster_keys, sizeof(cfg.cluster_keys));
    nd_node_free(n);
    if (uv_loop_close(&loop) != 0)
        WR_WARN("node", "loop_not_empty", "what=\"handles left open at exit\"");
    return status;
}
