/*
 * cmd_cert.c: "warrenctl cert ...": node certificates signed by the cluster
 * CA. The cryptography is wr_cert_*; this file owns arguments and messages.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

#define CMD_CERT_DAYS_DEFAULT 825

static int cmd_cert_issue(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {
        {.name = "ca-dir", .required = true},   {.name = "node-id", .required = true},
        {.name = "out-cert", .required = true}, {.name = "out-key", .required = true},
        {.name = "days", .required = false},
    };
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *ca_dir = opts[0].value, *node_id = opts[1].value;
    const char *out_crt = opts[2].value, *out_key = opts[3].value;
    uint64_t days = CMD_CERT_DAYS_DEFAULT;
    char ca_crt[4096], ca_key[4096];

    if (!wr_id_is_valid(node_id, strlen(node_id)))
        return cli_usage_err(cmd, "invalid node id '%s' (1..%d of A-Z a-z 0-9 . _ -)", node_id,
                             WR_ID_MAX);
    if (opts[4].value != NULL && wr_parse_uint(opts[4].value, 1, 36500, &days) != 0)
        return cli_usage_err(cmd, "invalid --days '%s' (1..36500)", opts[4].value);
    if (strcmp(out_crt, out_key) == 0)
        return cli_usage_err(cmd, "--out-cert and --out-key must be different files");
    if (!cli_path_join(ca_crt, sizeof(ca_crt), ca_dir, "ca.crt") ||
        !cli_path_join(ca_key, sizeof(ca_key), ca_dir, "ca.key"))
        return cli_usage_err(cmd, "--ca-dir is too long");

    int err = wr_cert_issue(ca_crt, ca_key, node_id, (uint32_t)days, out_crt, out_key);
    if (err != 0) {
        cli_err(cmd, "cannot issue a certificate for %s with the CA in %s: %s", node_id, ca_dir,
                wr_strerror(err));
        return cli_exit_for(err);
    }
    printf("issued %s (key %s, mode 0600) for node %s, valid %llu days\n", out_crt, out_key,
           node_id, (unsigned long long)days);
    return CLI_EXIT_OK;
}

static const struct cli_cmd cmd_cert_cmds[] = {
    {"cert", "issue", "--ca-dir DIR --node-id ID --out-cert FILE --out-key FILE [--days N]",
     cmd_cert_issue,
     "Issues a node certificate signed by the cluster CA.\n"
     "Uses the CA in DIR (ca.crt, ca.key) to make a new Ed25519\n"
     "key in --out-key (mode 0600) and a certificate in --out-cert with the node id as\n"
     "common name and \"<node-id>.<cluster>\" and \"<cluster>\" as DNS names.\n"
     "--days defaults to 825."},
};

const struct cli_group cmd_cert_group = {
    "cert", "node certificates (issue)", cmd_cert_cmds, WR_ARRAY_LEN(cmd_cert_cmds), false,
};
