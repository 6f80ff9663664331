/*
 * cmd_inspect.c: "warrenctl status", "tunnels" and "members": ask one node's
 * admin API (cli_http.c) and print what it says, as aligned text or, with
 * --json, the JSON as received. The node's JSON is parsed with jansson; this
 * file owns arguments and presentation, not the transport.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

/* Parses "--node ADDR" and "--json" (a flag, which cli_parse does not know:
 * it is taken out of argv first). */
static int cmd_inspect_args(const struct cli_cmd *cmd, int argc, char **argv, bool allow_json,
                            const char **node, bool *json)
{
    char *rest[64];
    int nrest = 0;
    *json = false;
    for (int i = 0; i < argc; i++) {
        if (allow_json && strcmp(argv[i], "--json") == 0) {
            *json = true;
            continue;
        }
        if (nrest == (int)WR_ARRAY_LEN(rest))
            return cli_usage_err(cmd, "too many arguments");
        rest[nrest++] = argv[i];
    }
    struct cli_opt opts[] = {{.name = "node", .required = false}};
    enum cli_parse_result pr = cli_parse(cmd, nrest, rest, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? -1 : CLI_EXIT_USAGE;
    *node = opts[0].value != NULL ? opts[0].value : CLI_NODE_DEFAULT;
    return CLI_EXIT_OK;
}

/* Fetches <path> and parses it as a JSON object; NULL with *rc set on failure. */
static json_t *cmd_inspect_fetch(const struct cli_cmd *cmd, const char *node, const char *path,
                                 bool raw, int *rc)
{
    struct cli_http_resp resp;
    *rc = cli_admin_get(cmd, node, path, &resp);
    if (*rc != CLI_EXIT_OK)
        return NULL;
    if (raw) {
        fwrite(resp.body, 1, resp.body_len, stdout);
        cli_http_resp_free(&resp);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(resp.body, resp.body_len, 0, &jerr);
    cli_http_resp_free(&resp);
    if (!json_is_object(root)) {
        cli_err(cmd, "%s sent invalid JSON for %s: %s", node, path,
                root == NULL ? jerr.text : "not an object");
        json_decref(root);
        *rc = CLI_EXIT_ERROR;
        return NULL;
    }
    return root;
}

static const char *cmd_inspect_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

static long long cmd_inspect_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* "850us", "12.3ms", "1.20s"; "-" when not measured yet. */
static void cmd_inspect_fmt_rtt(char *buf, size_t len, long long us)
{
    if (us <= 0)
        snprintf(buf, len, "-");
    else if (us < 1000)
        snprintf(buf, len, "%lldus", us);
    else if (us < 1000000)
        snprintf(buf, len, "%.1fms", (double)us / 1000.0);
    else
        snprintf(buf, len, "%.2fs", (double)us / 1e6);
}

static void cmd_inspect_fmt_uptime(char *buf, size_t len, long long s)
{
    if (s >= 86400)
        snprintf(buf, len, "%lldd%lldh%lldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
    else if (s >= 3600)
        snprintf(buf, len, "%lldh%lldm%llds", s / 3600, s % 3600 / 60, s % 60);
    else if (s >= 60)
        snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%llds", s);
}

static int cmd_status(const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *node = NULL;
    bool json = false;
    int rc = cmd_inspect_args(cmd, argc, argv, true, &node, &json);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    json_t *self = cmd_inspect_fetch(cmd, node, "/v1/self", json, &rc);
    if (self == NULL)
        return rc;
    json_t *addrs = json_object_get(self, "addresses");
    json_t *tls = json_object_get(self, "tls");
    char up[64];
    cmd_inspect_fmt_uptime(up, sizeof(up), cmd_inspect_int(self, "uptime_s"));
    printf("node      %s\n", cmd_inspect_str(self, "node_id"));
    printf("cluster   %s\n", cmd_inspect_str(self, "cluster"));
    printf("state     %s\n", cmd_inspect_str(self, "state"));
    printf("version   %s\n", cmd_inspect_str(self, "version"));
    printf("uptime    %s\n", up);
    printf("listen    %s\n", cmd_inspect_str(addrs, "listen"));
    printf("admin     %s\n", cmd_inspect_str(addrs, "admin"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(addrs, "entries"), i, e)
    {
        printf("entry     %s -> %s/%s\n", cmd_inspect_str(e, "addr"), cmd_inspect_str(e, "tunnel"),
               cmd_inspect_str(e, "service"));
    }
    printf("agents    %lld (tunnels %lld, connections %lld)\n", cmd_inspect_int(self, "agents"),
           cmd_inspect_int(self, "tunnels"), cmd_inspect_int(self, "tunnel_connections"));
    printf("streams   %lld open\n", cmd_inspect_int(self, "streams_open"));
    printf("tls       %s (aead %s)\n", cmd_inspect_str(tls, "suite"), cmd_inspect_str(tls, "aead"));
    json_decref(self);
    return CLI_EXIT_OK;
}

static int cmd_tunnels(const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *node = NULL;
    bool json = false;
    int rc = cmd_inspect_args(cmd, argc, argv, true, &node, &json);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    json_t *root = cmd_inspect_fetch(cmd, node, "/v1/tunnels", json, &rc);
    if (root == NULL)
        return rc;
    static const char *const headers[] = {"TUNNEL", "AGENT", ">WEIGHT", "PEER",
                                          "STATE",  ">RTT",  ">STREAMS"};
    struct cli_table *t = cli_table_new(headers, WR_ARRAY_LEN(headers));
    const char *tid;
    json_t *tun;
    /* The node sorts the tunnel ids; agents come in registration order. */
    json_object_foreach(json_object_get(root, "tunnels"), tid, tun)
    {
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(tun, "agents"), i, a)
        {
            char weight[16], rtt[32], streams[32];
            snprintf(weight, sizeof(weight), "%lld", cmd_inspect_int(a, "weight"));
            cmd_inspect_fmt_rtt(rtt, sizeof(rtt), cmd_inspect_int(a, "rtt_us"));
            snprintf(streams, sizeof(streams), "%lld", cmd_inspect_int(a, "streams_open"));
            const char *row[] = {tid,
                                 cmd_inspect_str(a, "agent_id"),
                                 weight,
                                 cmd_inspect_str(a, "peer"),
                                 cmd_inspect_str(a, "state"),
                                 rtt,
                                 streams};
            cli_table_add(t, row);
        }
    }
    if (cli_table_rows(t) == 0)
        printf("no tunnels on node %s (%s)\n", cmd_inspect_str(root, "node_id"), node);
    else
        cli_table_print(t, stdout);
    cli_table_free(t);
    json_decref(root);
    return CLI_EXIT_OK;
}

static int cmd_members(const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *node = NULL;
    bool json = false;
    int rc = cmd_inspect_args(cmd, argc, argv, true, &node, &json);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    struct cli_http_resp resp;
    rc = cli_admin_get(cmd, node, "/v1/members", &resp);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (json) {
        fwrite(resp.body, 1, resp.body_len, stdout);
        cli_http_resp_free(&resp);
        return CLI_EXIT_OK;
    }
    json_error_t jerr;
    json_t *root = json_loadb(resp.body, resp.body_len, 0, &jerr);
    cli_http_resp_free(&resp);
    if (!json_is_array(root)) {
        cli_err(cmd, "%s sent invalid JSON for /v1/members: %s", node,
                root == NULL ? jerr.text : "not an array");
        json_decref(root);
        return CLI_EXIT_ERROR;
    }
    static const char *const headers[] = {"ID",     "STATE",  ">INC",    "ROLE",
                                          "GOSSIP", "TUNNEL", ">TUNNELS"};
    struct cli_table *t = cli_table_new(headers, WR_ARRAY_LEN(headers));
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m)
    {
        json_t *addrs = json_object_get(m, "addresses");
        char inc[32], tunnels[16];
        snprintf(inc, sizeof(inc), "%lld", cmd_inspect_int(m, "incarnation"));
        snprintf(tunnels, sizeof(tunnels), "%zu", json_object_size(json_object_get(m, "tunnels")));
        const char *row[] = {cmd_inspect_str(m, "id"),
                             cmd_inspect_str(m, "state"),
                             inc,
                             cmd_inspect_str(m, "role"),
                             cmd_inspect_str(addrs, "gossip"),
                             cmd_inspect_str(addrs, "tunnel"),
                             tunnels};
        cli_table_add(t, row);
    }
    if (cli_table_rows(t) == 0)
        printf("no members: gossip is off on %s (start it with --cluster-key)\n", node);
    else
        cli_table_print(t, stdout);
    cli_table_free(t);
    json_decref(root);
    return CLI_EXIT_OK;
}

static const struct cli_cmd cmd_inspect_cmds[] = {
    {NULL, "status", "[--node ADDR] [--json]", cmd_status,
     "Shows one node: id, cluster, state, addresses, agents, TLS.\n"
     "Asks the admin API at --node (default " CLI_NODE_DEFAULT ") for /v1/self.\n"
     "This is what 'warrenctl' with no arguments runs. --json prints the node's\n"
     "JSON as received."},
    {NULL, "tunnels", "[--node ADDR] [--json]", cmd_tunnels,
     "Lists the tunnels a node holds and their agents.\n"
     "Asks the admin API at --node (default " CLI_NODE_DEFAULT ") for /v1/tunnels and\n"
     "prints one row per agent connection: TUNNEL, AGENT, WEIGHT, PEER, STATE, RTT\n"
     "(last keepalive round trip) and STREAMS (open now). --json prints the node's\n"
     "JSON as received. Exit 2 when the node cannot be reached, 3 when it answers\n"
     "with an error."},
    {NULL, "members", "[--node ADDR] [--json]", cmd_members,
     "Lists the gossip members a node sees, itself included.\n"
     "Asks the admin API at --node (default " CLI_NODE_DEFAULT ") for /v1/members and\n"
     "prints one row per member: ID, STATE (ALIVE, SUSPECT, DEAD, LEFT), INC\n"
     "(incarnation), ROLE, GOSSIP and TUNNEL addresses, TUNNELS (how many tunnels it\n"
     "holds). --json prints the node's JSON as received. Exit 2 when the node cannot\n"
     "be reached, 3 when it answers with an error."},
};

const struct cli_group cmd_inspect_group = {
    "inspect",
    "inspect a node (status, tunnels, members)",
    cmd_inspect_cmds,
    WR_ARRAY_LEN(cmd_inspect_cmds),
    true,
};
