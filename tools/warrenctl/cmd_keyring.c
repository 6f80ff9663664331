/*
 * cmd_keyring.c: "warrenctl keyring ...": the gossip cluster keys. generate
 * writes a fresh key for warren-node --cluster-key; list, install, use and
 * remove talk to running nodes' admin APIs (/v1/keyring...) so that a key is
 * rotated across a live cluster without a restart (docs/gossip.md has the
 * sequence). Keys travel only in request bodies, never on the command line.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

#define CMD_KEYRING_KEY_LEN 32 /* DISC_KEY_LEN: XChaCha20-Poly1305 */
#define CMD_KEYRING_MAX_NODES 256

static int cmd_keyring_generate(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "out", .required = true}};
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *out = opts[0].value;
    if (wr_crypto_init() != 0) {
        cli_err(cmd, "libsodium failed to initialise");
        return CLI_EXIT_ERROR;
    }
    uint8_t key[CMD_KEYRING_KEY_LEN];
    char text[64];
    wr_random_bytes(key, sizeof(key));
    ssize_t n = wr_b64url_encode(key, sizeof(key), text, sizeof(text) - 1);
    wr_memzero(key, sizeof(key));
    if (n < 0) {
        cli_err(cmd, "cannot encode the key: %s", wr_strerror((int)n));
        return CLI_EXIT_ERROR;
    }
    text[n] = '\n';
    int err = wr_write_file(out, text, (size_t)n + 1, 0600);
    wr_memzero(text, sizeof(text));
    if (err != 0) {
        cli_err(cmd, "cannot write %s: %s", out, wr_strerror(err));
        return cli_exit_for(err);
    }
    printf("wrote a new gossip key to %s (mode 0600); give it to every node with "
           "--cluster-key\n",
           out);
    return CLI_EXIT_OK;
}

/* The first key of a keyring file: its first line that is neither blank nor
 * a '#' comment, trimmed, into <out>. The node checks that it is a key. */
static int cmd_keyring_read_key(const struct cli_cmd *cmd, const char *file, char *out,
                                size_t outlen)
{
    char *text = NULL;
    size_t len = 0;
    int err = wr_read_file(file, 16384, &text, &len);
    if (err != 0) {
        cli_err(cmd, "cannot read %s: %s", file, wr_strerror(err));
        return cli_exit_for(err);
    }
    int rc = CLI_EXIT_USAGE;
    for (char *line = text, *end = text + len; line < end && rc == CLI_EXIT_USAGE;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl != NULL ? nl : end;
        char *a = line, *b = stop;
        line = stop + 1;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (a == b || *a == '#')
            continue;
        if ((size_t)(b - a) >= outlen) {
            cli_err(cmd, "%s: the first key line is too long to be a key", file);
            rc = CLI_EXIT_ERROR;
            break;
        }
        memcpy(out, a, (size_t)(b - a));
        out[b - a] = '\0';
        rc = CLI_EXIT_OK;
    }
    wr_memzero(text, len);
    free(text);
    if (rc == CLI_EXIT_USAGE)
        cli_err(cmd, "%s holds no key (warrenctl keyring generate --out FILE)", file);
    return rc == CLI_EXIT_USAGE ? CLI_EXIT_ERROR : rc;
}

/* "abcd1234abcd1234*,ffff0000ffff0000" from a node's "keys" array ('*' marks
 * the primary). */
static void cmd_keyring_keys_str(json_t *keys, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    size_t i;
    json_t *e;
    json_array_foreach(keys, i, e)
    {
        const char *fp = json_string_value(json_object_get(e, "fingerprint"));
        bool primary = json_is_true(json_object_get(e, "primary"));
        int n = snprintf(out + k, len - k, "%s%s%s", i > 0 ? "," : "", fp ? fp : "?",
                         primary ? "*" : "");
        if (n < 0 || (size_t)n >= len - k)
            break;
        k += (size_t)n;
    }
}

/* One node's answer: JSON, or NULL with <why> set (and *rc the exit code). */
static json_t *cmd_keyring_call(const char *node, const char *method, const char *path,
                                const char *body, char *why, size_t whylen, int *rc)
{
    struct cli_http_resp resp;
    int err = cli_http_request(node, method, path, body, &resp);
    if (err == WR_EUSAGE) {
        snprintf(why, whylen, "invalid --node (use IP:PORT)");
        *rc = CLI_EXIT_USAGE;
        return NULL;
    }
    if (err != 0) {
        snprintf(why, whylen, "unreachable: %s", wr_strerror(err));
        *rc = cli_exit_for(err);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(resp.body, resp.body_len, 0, &jerr);
    const char *msg = json_string_value(json_object_get(root, "error"));
    *rc = CLI_EXIT_OK;
    if (resp.status != 200 || root == NULL) {
        int l = (int)strcspn(resp.body, "\r\n");
        snprintf(why, whylen, "%d: %.*s", resp.status,
                 msg       ? 200
                 : l > 200 ? 200
                           : l,
                 msg ? msg : resp.body);
        *rc = CLI_EXIT_ERROR;
        json_decref(root);
        root = NULL;
    }
    cli_http_resp_free(&resp);
    return root;
}

static int cmd_keyring_worse(int a, int b)
{
    /* usage beats error beats unreachable beats ok: the most specific failure wins. */
    if (a == CLI_EXIT_USAGE || b == CLI_EXIT_USAGE)
        return CLI_EXIT_USAGE;
    if (a == CLI_EXIT_ERROR || b == CLI_EXIT_ERROR)
        return CLI_EXIT_ERROR;
    return a != CLI_EXIT_OK ? a : b;
}

/* Prints and frees what a command gathered: <out> (JSON) or <t> (a table). */
static void cmd_keyring_print(json_t *out, struct cli_table *t)
{
    if (out != NULL) {
        char *text = json_dumps(out, JSON_INDENT(2));
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(out);
    } else if (t != NULL) {
        cli_table_print(t, stdout);
        cli_table_free(t);
    }
}

static int cmd_keyring_list(const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *nodes[CMD_KEYRING_MAX_NODES];
    struct cli_opt opts[] = {
        {.name = "node", .values = nodes, .max_values = CMD_KEYRING_MAX_NODES},
        {.name = "json", .flag = true},
    };
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    size_t n = opts[0].n_values;
    if (n == 0)
        nodes[n++] = CLI_NODE_DEFAULT;
    bool json = opts[1].value != NULL;
    static const char *const headers[] = {"NODE", "KEYS (* primary)"};
    struct cli_table *t = json ? NULL : cli_table_new(headers, 2);
    json_t *out = json ? json_array() : NULL;
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        char why[256] = "", keys[1024] = "";
        int one;
        json_t *root =
            cmd_keyring_call(nodes[i], "GET", "/v1/keyring", NULL, why, sizeof(why), &one);
        rc = cmd_keyring_worse(rc, one);
        if (root != NULL)
            cmd_keyring_keys_str(json_object_get(root, "keys"), keys, sizeof(keys));
        else
            cli_err(cmd, "%s: %s", nodes[i], why);
        if (json)
            json_array_append_new(out, json_pack("{s:s, s:O?, s:s?}", "node", nodes[i], "keys",
                                                 json_object_get(root, "keys"), "error",
                                                 root ? NULL : why));
        else
            cli_table_add(t, (const char *const[]){nodes[i], root ? keys : "-"});
        json_decref(root);
    }
    cmd_keyring_print(out, t);
    return rc;
}

/* install / use / remove on every --node; the last path segment is <op>. */
static int cmd_keyring_change(const struct cli_cmd *cmd, int argc, char **argv, const char *op)
{
    const char *nodes[CMD_KEYRING_MAX_NODES];
    bool by_fp = strcmp(op, "install") != 0;
    struct cli_opt opts[] = {
        {.name = "node", .values = nodes, .max_values = CMD_KEYRING_MAX_NODES},
        {.name = "key-file", .required = !by_fp},
        {.name = "json", .flag = true},
        {.name = "fingerprint"},
    };
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, by_fp ? 4 : 3, NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (by_fp && (opts[1].value == NULL) == (opts[3].value == NULL))
        return cli_usage_err(cmd, "give exactly one of --key-file or --fingerprint");
    size_t n = opts[0].n_values;
    if (n == 0)
        nodes[n++] = CLI_NODE_DEFAULT;
    bool json = opts[2].value != NULL;
    char key[128];
    json_t *req;
    if (opts[1].value != NULL) {
        int rc = cmd_keyring_read_key(cmd, opts[1].value, key, sizeof(key));
        if (rc != CLI_EXIT_OK)
            return rc;
        req = json_pack("{s:s}", "key", key);
        wr_memzero(key, sizeof(key));
    } else {
        req = json_pack("{s:s}", "fingerprint", opts[3].value);
    }
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        cli_err(cmd, "out of memory");
        return CLI_EXIT_ERROR;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/keyring/%s", op);
    static const char *const headers[] = {"NODE", "RESULT", "PERSISTED", "KEYS (* primary)"};
    struct cli_table *t = json ? NULL : cli_table_new(headers, 4);
    json_t *out = json ? json_array() : NULL;
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        char why[256] = "", keys[1024] = "";
        int one;
        json_t *root = cmd_keyring_call(nodes[i], "POST", path, body, why, sizeof(why), &one);
        rc = cmd_keyring_worse(rc, one);
        const char *result = why;
        const char *persisted = "-";
        if (root != NULL) {
            cmd_keyring_keys_str(json_object_get(root, "keys"), keys, sizeof(keys));
            result = json_is_true(json_object_get(root, "changed")) ? "changed" : "unchanged";
            persisted = json_is_true(json_object_get(root, "persisted")) ? "yes" : "no";
        } else {
            cli_err(cmd, "%s: %s", nodes[i], why);
        }
        if (json)
            json_array_append_new(
                out, root != NULL ? json_pack("{s:s, s:O}", "node", nodes[i], "result", root)
                                  : json_pack("{s:s, s:s}", "node", nodes[i], "error", why));
        else
            cli_table_add(t, (const char *const[]){nodes[i], result, persisted, root ? keys : "-"});
        json_decref(root);
    }
    wr_memzero(body, strlen(body));
    free(body);
    cmd_keyring_print(out, t);
    return rc;
}

static int cmd_keyring_install(const struct cli_cmd *cmd, int argc, char **argv)
{
    return cmd_keyring_change(cmd, argc, argv, "install");
}

static int cmd_keyring_use(const struct cli_cmd *cmd, int argc, char **argv)
{
    return cmd_keyring_change(cmd, argc, argv, "use");
}

static int cmd_keyring_remove(const struct cli_cmd *cmd, int argc, char **argv)
{
    return cmd_keyring_change(cmd, argc, argv, "remove");
}

static const struct cli_cmd cmd_keyring_cmds[] = {
    {"keyring", "generate", "--out FILE", cmd_keyring_generate,
     "Writes a new random gossip key to FILE.\n"
     "32 random bytes as base64url text on one line, mode 0600. Every node of a\n"
     "cluster is started with the same file: warren-node --cluster-key FILE.\n"
     "Overwrites FILE if it exists."},
    {"keyring", "list", "[--node ADDR ...] [--json]", cmd_keyring_list,
     "Lists the gossip keys of running nodes by fingerprint.\n"
     "Asks the admin API of every --node (repeatable; default 127.0.0.1:7480) for\n"
     "/v1/keyring. A fingerprint is the first 8 bytes of the key's BLAKE2b hash in\n"
     "hex; '*' marks the primary (the key packets are sealed with). Exit 0 when\n"
     "every node answered, 2 when one cannot be reached, 3 on an error."},
    {"keyring", "install", "--key-file FILE [--node ADDR ...] [--json]", cmd_keyring_install,
     "Adds a key to running nodes' keyrings without making it primary.\n"
     "The key is the first key line of FILE (warrenctl keyring generate). Nodes\n"
     "open packets with any installed key, so install the new key on every node\n"
     "first, then 'keyring use' it everywhere, then 'keyring remove' the old one.\n"
     "Each node rewrites its --cluster-key file so a restart keeps the change.\n"
     "At most 8 keys. Exit 0 when every node accepted, 2 when one cannot be\n"
     "reached, 3 when one refused (the table says why)."},
    {"keyring", "use", "(--key-file FILE | --fingerprint FP) [--node ADDR ...] [--json]",
     cmd_keyring_use,
     "Makes an installed key the primary on running nodes.\n"
     "Packets are sealed with the primary from then on. Run it only once the key\n"
     "is installed on every node, or the nodes without it cannot read them. Exit\n"
     "codes as for install."},
    {"keyring", "remove", "(--key-file FILE | --fingerprint FP) [--node ADDR ...] [--json]",
     cmd_keyring_remove,
     "Removes a key from running nodes' keyrings.\n"
     "The primary cannot be removed (make another key primary first). Remove the\n"
     "old key once every node uses the new one; nodes still sealing with it are\n"
     "cut off. Exit codes as for install."},
};

const struct cli_group cmd_keyring_group = {
    "keyring",
    "gossip cluster keys (generate, list, install, use, remove)",
    cmd_keyring_cmds,
    WR_ARRAY_LEN(cmd_keyring_cmds),
    false,
};
