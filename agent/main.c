/*
 * main.c (warren-agent): parses the command line into struct ag_config,
 * validates all of it, and runs the agent's loop.
 */
#include "ag.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ag_usage[] =
    "usage: warren-agent --proxy HOST:PORT --tunnel ID --token FILE --ca FILE\n"
    "                    --service NAME=HOST:PORT [--service ...] [options]\n"
    "\n"
    "Dials out to the warren fleet (never listens) and serves the tunnel's\n"
    "streams by connecting to the named local services.\n"
    "\n"
    "  --proxy HOST:PORT      the fleet's address: a load balancer or a node\n"
    "  --tunnel ID            the tunnel this agent serves\n"
    "  --token FILE           join token (warrenctl token create)\n"
    "  --ca FILE              cluster CA certificate: nodes must chain to it\n"
    "  --service NAME=ADDR    a local service, ADDR as IP:PORT (repeatable, up to 64)\n"
    "  --weight N             1..255; 255 takes all the tunnel's traffic (default 1)\n"
    "  --agent-id ID          this agent's id (default: host name and pid)\n"
    "  --sni NAME             TLS server name (default: the cluster name from --ca)\n"
    "  --ping-interval DUR    keepalive PING period (default 5s)\n"
    "  --ping-timeout DUR     a node silent this long is dropped (default 10s)\n"
    "  --hello-timeout DUR    dial + TLS + registration deadline (default 10s)\n"
    "  --backoff-base DUR     first reconnect delay ceiling (default 250ms)\n"
    "  --backoff-max DUR      reconnect delay cap (default 30s)\n"
    "  --window SIZE          per-stream flow-control window (default 4M)\n"
    "  --max-dials N          dials in flight at once while joining nodes (default 8)\n"
    "  --metrics-file FILE    write pool metrics here (Prometheus text) as they change\n"
    "  --log-level LEVEL      error|warn|info|debug|trace (default info)\n"
    "  -h, --help             this text\n"
    "\n"
    "Holds one tunnel per live node: the nodes' discovery lists say which exist.\n"
    "Signals: SIGTERM/SIGINT close the tunnels and exit; SIGUSR1 logs a status line.\n";

enum {
    AG_OPT_PROXY = 256,
    AG_OPT_TUNNEL,
    AG_OPT_TOKEN,
    AG_OPT_CA,
    AG_OPT_SERVICE,
    AG_OPT_WEIGHT,
    AG_OPT_AGENT_ID,
    AG_OPT_SNI,
    AG_OPT_PING_INTERVAL,
    AG_OPT_PING_TIMEOUT,
    AG_OPT_HELLO_TIMEOUT,
    AG_OPT_BACKOFF_BASE,
    AG_OPT_BACKOFF_MAX,
    AG_OPT_WINDOW,
    AG_OPT_LOG_LEVEL,
    AG_OPT_MAX_DIALS,
    AG_OPT_METRICS_FILE,
};

static const struct option ag_options[] = {
    {"proxy", required_argument, NULL, AG_OPT_PROXY},
    {"tunnel", required_argument, NULL, AG_OPT_TUNNEL},
    {"token", required_argument, NULL, AG_OPT_TOKEN},
    {"ca", required_argument, NULL, AG_OPT_CA},
    {"service", required_argument, NULL, AG_OPT_SERVICE},
    {"weight", required_argument, NULL, AG_OPT_WEIGHT},
    {"agent-id", required_argument, NULL, AG_OPT_AGENT_ID},
    {"sni", required_argument, NULL, AG_OPT_SNI},
    {"ping-interval", required_argument, NULL, AG_OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, AG_OPT_PING_TIMEOUT},
    {"hello-timeout", required_argument, NULL, AG_OPT_HELLO_TIMEOUT},
    {"backoff-base", required_argument, NULL, AG_OPT_BACKOFF_BASE},
    {"backoff-max", required_argument, NULL, AG_OPT_BACKOFF_MAX},
    {"window", required_argument, NULL, AG_OPT_WINDOW},
    {"log-level", required_argument, NULL, AG_OPT_LOG_LEVEL},
    {"max-dials", required_argument, NULL, AG_OPT_MAX_DIALS},
    {"metrics-file", required_argument, NULL, AG_OPT_METRICS_FILE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* "HOST:PORT" or "[V6]:PORT": split without resolving (the loop resolves). */
static void ag_main_parse_proxy(const char *v, struct ag_config *cfg)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v)
        wr_flags_fail("invalid --proxy '%s': expected HOST:PORT", v);
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    uint64_t port;
    if (hl == 0 || hl > AG_HOST_MAX || wr_parse_uint(colon + 1, 1, 65535, &port) != 0)
        wr_flags_fail("invalid --proxy '%s': expected HOST:PORT", v);
    memcpy(cfg->proxy_host, h, hl);
    cfg->proxy_host[hl] = '\0';
    snprintf(cfg->proxy_port, sizeof(cfg->proxy_port), "%u", (unsigned)port);
}

static void ag_main_parse_service(const char *v, struct ag_service *s)
{
    const char *eq = strchr(v, '=');
    if (eq == NULL || !wr_id_is_valid(v, (size_t)(eq - v)))
        wr_flags_fail("invalid --service '%s': expected NAME=IP:PORT, NAME 1-64 of "
                      "[A-Za-z0-9._-]",
                      v);
    memcpy(s->name, v, (size_t)(eq - v));
    s->name[eq - v] = '\0';
    if (wr_addr_parse(eq + 1, &s->addr) != 0 || wr_addr_port((struct sockaddr *)&s->addr) == 0)
        wr_flags_fail("invalid --service '%s': the address must be IP:PORT", v);
}

int main(int argc, char **argv)
{
    struct ag_config cfg;
    ag_config_init(&cfg);
    bool have_proxy = false;
    wr_flags_set_prog("warren-agent");
    int opt;
    while ((opt = getopt_long(argc, argv, "h", ag_options, NULL)) != -1) {
        switch (opt) {
        case AG_OPT_PROXY:
            ag_main_parse_proxy(optarg, &cfg);
            have_proxy = true;
            break;
        case AG_OPT_TUNNEL:
            if (!wr_id_is_valid(optarg, strlen(optarg)))
                wr_flags_fail("invalid --tunnel '%s': 1-64 of [A-Za-z0-9._-]", optarg);
            snprintf(cfg.tunnel, sizeof(cfg.tunnel), "%s", optarg);
            break;
        case AG_OPT_TOKEN:
            cfg.token_file = optarg;
            break;
        case AG_OPT_CA:
            cfg.ca_file = optarg;
            break;
        case AG_OPT_SERVICE:
            if (cfg.n_services == WR_MAX_SERVICES)
                wr_flags_fail("too many --service (max %d)", WR_MAX_SERVICES);
            ag_main_parse_service(optarg, &cfg.services[cfg.n_services]);
            for (uint32_t i = 0; i < cfg.n_services; i++)
                if (strcmp(cfg.services[i].name, cfg.services[cfg.n_services].name) == 0)
                    wr_flags_fail("--service '%s' given twice", optarg);
            cfg.n_services++;
            break;
        case AG_OPT_WEIGHT:
            cfg.weight = (uint8_t)wr_flags_uint("--weight", optarg, 1, 255);
            break;
        case AG_OPT_AGENT_ID:
            if (!wr_id_is_valid(optarg, strlen(optarg)))
                wr_flags_fail("invalid --agent-id '%s': 1-64 of [A-Za-z0-9._-]", optarg);
            snprintf(cfg.agent_id, sizeof(cfg.agent_id), "%s", optarg);
            break;
        case AG_OPT_SNI:
            cfg.sni = optarg;
            break;
        case AG_OPT_PING_INTERVAL:
            cfg.ping_interval_ms = wr_flags_duration_ms("--ping-interval", optarg);
            break;
        case AG_OPT_PING_TIMEOUT:
            cfg.ping_timeout_ms = wr_flags_duration_ms("--ping-timeout", optarg);
            break;
        case AG_OPT_HELLO_TIMEOUT:
            cfg.hello_timeout_ms = wr_flags_duration_ms("--hello-timeout", optarg);
            break;
        case AG_OPT_BACKOFF_BASE:
            cfg.backoff_base_ms = wr_flags_duration_ms("--backoff-base", optarg);
            break;
        case AG_OPT_BACKOFF_MAX:
            cfg.backoff_max_ms = wr_flags_duration_ms("--backoff-max", optarg);
            break;
        case AG_OPT_WINDOW:
            cfg.window = (uint32_t)wr_flags_size("--window", optarg, 65536, 1u << 30);
            break;
        case AG_OPT_MAX_DIALS:
            cfg.max_dials = (uint32_t)wr_flags_uint("--max-dials", optarg, 1, 256);
            break;
        case AG_OPT_METRICS_FILE:
            cfg.metrics_file = optarg;
            break;
        case AG_OPT_LOG_LEVEL:
            wr_flags_log_level(optarg);
            break;
        case 'h':
            fputs(ag_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "(see warren-agent --help)\n");
            return 1;
        }
    }
    if (optind < argc)
        wr_flags_fail("unexpected argument '%s'", argv[optind]);
    if (!have_proxy || cfg.tunnel[0] == '\0' || cfg.token_file == NULL || cfg.ca_file == NULL)
        wr_flags_fail("%s", "--proxy, --tunnel, --token and --ca are required");
    if (cfg.n_services == 0)
        wr_flags_fail("%s", "at least one --service NAME=IP:PORT is required");
    if (cfg.ping_timeout_ms < cfg.ping_interval_ms)
        wr_flags_fail("%s", "--ping-timeout must be at least --ping-interval");
    if (cfg.backoff_max_ms < cfg.backoff_base_ms)
        wr_flags_fail("%s", "--backoff-max must be at least --backoff-base");
    if (cfg.agent_id[0] == '\0') {
        char host[WR_ID_MAX + 1] = "";
        if (gethostname(host, sizeof(host) - 1) != 0)
            host[0] = '\0';
        host[24] = '\0';
        snprintf(cfg.agent_id, sizeof(cfg.agent_id), "%.40s-%d", host[0] ? host : "agent",
                 (int)getpid());
        if (!wr_id_is_valid(cfg.agent_id, strlen(cfg.agent_id)))
            snprintf(cfg.agent_id, sizeof(cfg.agent_id), "agent-%d", (int)getpid());
    }
    signal(SIGPIPE, SIG_IGN);
    wr_raise_nofile();
    if (wr_crypto_init() != 0)
        wr_fatal("what=\"libsodium failed to initialise\"");

    uv_loop_t loop;
    uv_loop_init(&loop);
    int err = 0;
    struct ag_agent *a = ag_agent_new(&loop, &cfg, &err);
    if (a == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    ag_agent_start(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_agent_free(a);
    if (uv_loop_close(&loop) != 0)
        WR_WARN("agent", "loop_not_empty", "what=\"handles left open at exit\"");
    return 0;
}
