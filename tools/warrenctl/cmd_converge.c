/*
 * cmd_converge.c: "warrenctl converge --node A --node B ...": asks every
 * node's admin API for /v1/members and shows, member by member, each node's
 * view (state, incarnation, tunnel set) and where the views disagree. The
 * comparison (cmd_converge_compare) works on parsed JSON only, no I/O.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

#define CONVERGE_MAX_NODES 256

/* What a member's views may disagree on (a bit set). */
enum {
    CONVERGE_D_MISSING = 1u << 0, /* some node does not list it */
    CONVERGE_D_STATE = 1u << 1,
    CONVERGE_D_INC = 1u << 2,
    CONVERGE_D_TUNNELS = 1u << 3,
};

/* One node asked: its address, its id (from its "self" member) and its view
 * (member id -> member object), NULL when it did not answer. */
struct converge_node {
    const char *addr;
    const char *id;
    json_t *view;
};

static int converge_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tunnel set as a canonical compact string: "t1=a1:1,a2:2;t2=a3:1",
 * tunnels and agents sorted; "-" when empty. Returns a malloc'd string. */
static char *converge_tunnels_str(json_t *tunnels)
{
    struct wr_buf b = {0};
    size_t nt = json_object_size(tunnels);
    const char **keys = nt > 0 ? calloc(nt, sizeof(*keys)) : NULL;
    size_t k = 0;
    const char *tid;
    json_t *list;
    json_object_foreach(tunnels, tid, list)
    {
        if (keys != NULL && k < nt)
            keys[k++] = tid;
    }
    if (k > 1)
        qsort(keys, k, sizeof(*keys), converge_strcmp);
    bool fail = false;
    for (size_t i = 0; i < k && !fail; i++) {
        list = json_object_get(tunnels, keys[i]);
        size_t na = json_array_size(list);
        char **agents = na > 0 ? calloc(na, sizeof(*agents)) : NULL;
        size_t n = 0;
        for (size_t j = 0; agents != NULL && j < na; j++) {
            json_t *a = json_array_get(list, j);
            const char *id = json_string_value(json_object_get(a, "agent"));
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%s:%lld", id != NULL ? id : "?",
                     (long long)json_integer_value(json_object_get(a, "weight")));
            agents[n] = strdup(tmp);
            if (agents[n] != NULL)
                n++;
        }
        if (n > 1)
            qsort(agents, n, sizeof(*agents), converge_strcmp);
        if (i > 0 && wr_buf_append(&b, ";", 1) != 0)
            fail = true;
        if (!fail &&
            (wr_buf_append(&b, keys[i], strlen(keys[i])) != 0 || wr_buf_append(&b, "=", 1) != 0))
            fail = true;
        for (size_t j = 0; j < n; j++) {
            if (!fail && j > 0 && wr_buf_append(&b, ",", 1) != 0)
                fail = true;
            if (!fail && wr_buf_append(&b, agents[j], strlen(agents[j])) != 0)
                fail = true;
            free(agents[j]);
        }
        free(agents);
    }
    free(keys);
    char *s = NULL;
    if (!fail && b.len > 0) {
        s = malloc(b.len + 1);
        if (s != NULL) {
            memcpy(s, b.data + b.off, b.len);
            s[b.len] = '\0';
        }
    } else if (!fail)
        s = strdup("-");
    wr_buf_free(&b);
    return s;
}

/* The ids of every member any node lists, sorted, without duplicates. */
static const char **converge_member_ids(const struct converge_node *nodes, size_t n_nodes,
                                        size_t *n_ids)
{
    size_t cap = 0;
    for (size_t i = 0; i < n_nodes; i++)
        cap += json_object_size(nodes[i].view);
    const char **ids = calloc(cap + 1, sizeof(*ids));
    if (ids == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        const char *id;
        json_t *m;
        json_object_foreach(nodes[i].view, id, m)
        {
            (void)m;
            ids[n++] = id;
        }
    }
    if (n > 1)
        qsort(ids, n, sizeof(*ids), converge_strcmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(ids[u - 1], ids[i]) != 0)
            ids[u++] = ids[i];
    *n_ids = u;
    return ids;
}

/*
 * Compares the views of member <id> across the nodes that answered; returns
 * the CONVERGE_D_* bits that differ (0: all agree). <tun> receives each
 * node's tunnel string (malloc'd, NULL when the node has no view or does not
 * list the member).
 */
static unsigned cmd_converge_compare(const struct converge_node *nodes, size_t n_nodes,
                                     const char *id, char **tun)
{
    unsigned d = 0;
    json_t *first = NULL;
    const char *first_tun = NULL;
    for (size_t i = 0; i < n_nodes; i++) {
        tun[i] = NULL;
        if (nodes[i].view == NULL)
            continue;
        json_t *m = json_object_get(nodes[i].view, id);
        if (m == NULL) {
            d |= CONVERGE_D_MISSING;
            continue;
        }
        tun[i] = converge_tunnels_str(json_object_get(m, "tunnels"));
        if (first == NULL) {
            first = m;
            first_tun = tun[i];
            continue;
        }
        const char *s0 = json_string_value(json_object_get(first, "state"));
        const char *s1 = json_string_value(json_object_get(m, "state"));
        if (s0 == NULL || s1 == NULL || strcmp(s0, s1) != 0)
            d |= CONVERGE_D_STATE;
        if (json_integer_value(json_object_get(first, "incarnation")) !=
            json_integer_value(json_object_get(m, "incarnation")))
            d |= CONVERGE_D_INC;
        if (first_tun == NULL || tun[i] == NULL || strcmp(first_tun, tun[i]) != 0)
            d |= CONVERGE_D_TUNNELS;
    }
    return d;
}

/* "state,inc,tunnels,missing" for the bits of <d>; "" when none. */
static void converge_diff_str(unsigned d, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CONVERGE_D_STATE, "state"},
                 {CONVERGE_D_INC, "incarnation"},
                 {CONVERGE_D_TUNNELS, "tunnels"},
                 {CONVERGE_D_MISSING, "missing"}};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < WR_ARRAY_LEN(names); i++) {
        if (!(d & names[i].bit))
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off > 0 ? "," : "", names[i].name);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

/* Asks <n> for /v1/members and indexes its answer by member id. Returns
 * CLI_EXIT_OK, or the exit code of the failure (reported on stderr). */
static int converge_fetch(const struct cli_cmd *cmd, struct converge_node *n)
{
    struct cli_http_resp resp;
    int rc = cli_admin_get(cmd, n->addr, "/v1/members", &resp);
    if (rc != CLI_EXIT_OK)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(resp.body, resp.body_len, 0, &jerr);
    cli_http_resp_free(&resp);
    if (!json_is_array(root)) {
        cli_err(cmd, "%s sent invalid JSON for /v1/members: %s", n->addr,
                root == NULL ? jerr.text : "not an array");
        json_decref(root);
        return CLI_EXIT_ERROR;
    }
    json_t *view = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (view == NULL || id == NULL)
            continue;
        json_object_set(view, id, m);
        if (json_is_true(json_object_get(m, "self")))
            n->id = id;
    }
    json_decref(root); /* the members (and n->id) stay referenced by <view> */
    if (view == NULL) {
        cli_err(cmd, "out of memory");
        return CLI_EXIT_ERROR;
    }
    n->view = view;
    return CLI_EXIT_OK;
}

static int cmd_converge(const struct cli_cmd *cmd, int argc, char **argv)
{
    static struct converge_node nodes[CONVERGE_MAX_NODES];
    size_t n_nodes = 0;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_print_cmd_help(cmd, false);
            return CLI_EXIT_OK;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(a, "--node") == 0) {
            if (i + 1 >= argc)
                return cli_usage_err(cmd, "option '--node' needs a value");
            val = argv[++i];
        } else if (strncmp(a, "--node=", 7) == 0) {
            val = a + 7;
        } else {
            return cli_usage_err(cmd, "unexpected argument '%s'", a);
        }
        if (val[0] == '\0')
            return cli_usage_err(cmd, "option '--node' needs a non-empty value");
        if (n_nodes == CONVERGE_MAX_NODES)
            return cli_usage_err(cmd, "too many nodes (at most %d)", CONVERGE_MAX_NODES);
        nodes[n_nodes].addr = val;
        nodes[n_nodes].id = NULL;
        nodes[n_nodes].view = NULL;
        n_nodes++;
    }
    if (n_nodes == 0)
        return cli_usage_err(cmd, "missing option '--node'");

    bool unreachable = false, failed = false;
    for (size_t i = 0; i < n_nodes; i++) {
        int rc = converge_fetch(cmd, &nodes[i]);
        if (rc == CLI_EXIT_USAGE)
            goto usage;
        if (rc == CLI_EXIT_UNREACHABLE)
            unreachable = true;
        else if (rc != CLI_EXIT_OK)
            failed = true;
    }

    size_t n_ids = 0, n_diff = 0;
    const char **ids = converge_member_ids(nodes, n_nodes, &n_ids);
    char **tun = calloc(n_nodes, sizeof(*tun));
    if (ids == NULL || tun == NULL) {
        free(ids);
        free(tun);
        cli_err(cmd, "out of memory");
        failed = true;
        goto out;
    }

    static const char *const headers[] = {"MEMBER", "VIEW FROM", "STATE",
                                          ">INC",   "TUNNELS",   "DIFFERS"};
    struct cli_table *t = json ? NULL : cli_table_new(headers, WR_ARRAY_LEN(headers));
    json_t *jmembers = json ? json_array() : NULL;
    for (size_t k = 0; k < n_ids; k++) {
        unsigned d = cmd_converge_compare(nodes, n_nodes, ids[k], tun);
        char diff[64];
        converge_diff_str(d, diff, sizeof(diff));
        if (d != 0)
            n_diff++;
        json_t *jviews = json ? json_array() : NULL;
        for (size_t i = 0; i < n_nodes; i++) {
            if (nodes[i].view == NULL)
                continue;
            json_t *m = json_object_get(nodes[i].view, ids[k]);
            const char *from = nodes[i].id != NULL ? nodes[i].id : nodes[i].addr;
            if (json) {
                json_t *v = json_pack("{s:s, s:s?}", "node", nodes[i].addr, "node_id", nodes[i].id);
                if (v != NULL && m != NULL) {
                    json_object_set(v, "state", json_object_get(m, "state"));
                    json_object_set(v, "incarnation", json_object_get(m, "incarnation"));
                    json_object_set_new(v, "tunnels", json_string(tun[i]));
                } else if (v != NULL) {
                    json_object_set_new(v, "state", json_null());
                }
                json_array_append_new(jviews, v);
            } else {
                char inc[32];
                if (m != NULL)
                    snprintf(inc, sizeof(inc), "%lld",
                             (long long)json_integer_value(json_object_get(m, "incarnation")));
                const char *row[] = {ids[k],
                                     from,
                                     m != NULL ? json_string_value(json_object_get(m, "state"))
                                               : "MISSING",
                                     m != NULL ? inc : NULL,
                                     tun[i],
                                     d != 0 ? diff : ""};
                cli_table_add(t, row);
            }
            free(tun[i]);
            tun[i] = NULL;
        }
        if (json) {
            json_t *differs = json_array();
            char *save = NULL;
            for (char *p = strtok_r(diff, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
                json_array_append_new(differs, json_string(p));
            json_array_append_new(jmembers, json_pack("{s:s, s:b, s:o, s:o}", "id", ids[k], "agree",
                                                      d == 0, "differs", differs, "views", jviews));
        }
    }
    free(ids);
    free(tun);

    size_t n_answered = 0;
    for (size_t i = 0; i < n_nodes; i++)
        n_answered += nodes[i].view != NULL;
    if (json) {
        json_t *jnodes = json_array();
        for (size_t i = 0; i < n_nodes; i++)
            json_array_append_new(jnodes,
                                  json_pack("{s:s, s:s?, s:b}", "node", nodes[i].addr, "node_id",
                                            nodes[i].id, "answered", nodes[i].view != NULL));
        json_t *root = json_pack("{s:b, s:o, s:o}", "agree", n_diff == 0 && !unreachable && !failed,
                                 "nodes", jnodes, "members", jmembers);
        char *s = root != NULL ? json_dumps(root, JSON_INDENT(2)) : NULL;
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(root);
    } else {
        cli_table_print(t, stdout);
        cli_table_free(t);
        if (n_diff == 0)
            printf("\n%zu member(s): all views agree (%zu of %zu node(s) answered)\n", n_ids,
                   n_answered, n_nodes);
        else
            printf("\n%zu of %zu member(s) differ (%zu of %zu node(s) answered)\n", n_diff, n_ids,
                   n_answered, n_nodes);
    }

out:
    for (size_t i = 0; i < n_nodes; i++)
        json_decref(nodes[i].view);
    if (unreachable)
        return CLI_EXIT_UNREACHABLE;
    if (failed || n_diff > 0)
        return CLI_EXIT_ERROR;
    return CLI_EXIT_OK;

usage:
    for (size_t i = 0; i < n_nodes; i++)
        json_decref(nodes[i].view);
    return CLI_EXIT_USAGE;
}

static const struct cli_cmd cmd_converge_cmds[] = {
    {NULL, "converge", "--node ADDR [--node ADDR ...] [--json]", cmd_converge,
     "Checks that nodes agree on the gossip membership.\n"
     "Asks the admin API of every --node (repeatable) for /v1/members and prints,\n"
     "member by member, each node's view: STATE, INC (incarnation) and TUNNELS (the\n"
     "tunnel set as tunnel=agent:weight,...;...). DIFFERS names what the views\n"
     "disagree on (state, incarnation, tunnels, missing: a node does not list the\n"
     "member). --json prints the same as JSON. Exit 0 when every node answered and\n"
     "all views agree, 3 when they disagree (or a node answered with an error), 2\n"
     "when a node cannot be reached, 1 on bad arguments."},
};

const struct cli_group cmd_converge_group = {
    "converge",
    "compare the nodes' membership views",
    cmd_converge_cmds,
    WR_ARRAY_LEN(cmd_converge_cmds),
    true,
};
