/*
 * cmd_ca.c: "warrenctl ca ...": the cluster certificate authority. The
 * cryptography is wr_cert_*; this file owns arguments and messages only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "wr.h"

#define CMD_CA_DAYS_DEFAULT 3650

/* The directory holds the CA key: create it private if it is not there. */
static int cmd_ca_mkdir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

static int cmd_ca_init(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "dir", .required = true},
                             {.name = "cluster", .required = true},
                             {.name = "days", .required = false}};
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *dir = opts[0].value, *cluster = opts[1].value;
    uint64_t days = CMD_CA_DAYS_DEFAULT;

    if (!wr_id_is_valid(cluster, strlen(cluster)))
        return cli_usage_err(cmd, "invalid cluster name '%s' (1..%d of A-Z a-z 0-9 . _ -)", cluster,
                             WR_ID_MAX);
    if (opts[2].value != NULL && wr_parse_uint(opts[2].value, 1, 36500, &days) != 0)
        return cli_usage_err(cmd, "invalid --days '%s' (1..36500)", opts[2].value);

    int err = cmd_ca_mkdir(dir);
    if (err != 0) {
        cli_err(cmd, "cannot create directory %s: %s", dir, wr_strerror(err));
        return cli_exit_for(err);
    }
    err = wr_cert_ca_init(dir, cluster, (uint32_t)days);
    if (err == UV_EEXIST) {
        cli_err(cmd, "%s already holds a CA (ca.key exists); refusing to overwrite it", dir);
        return CLI_EXIT_ERROR;
    }
    if (err != 0) {
        cli_err(cmd, "cannot create the CA in %s: %s", dir, wr_strerror(err));
        return cli_exit_for(err);
    }
    printf("created %s/ca.key (keep it secret) and %s/ca.crt for cluster %s, valid %llu days\n",
           dir, dir, cluster, (unsigned long long)days);
    return CLI_EXIT_OK;
}

static const struct cli_cmd cmd_ca_cmds[] = {
    {"ca", "init", "--dir DIR --cluster NAME [--days N]", cmd_ca_init,
     "Creates the cluster CA in DIR.\n"
     "Writes an Ed25519 key DIR/ca.key (mode 0600) and a self-signed\n"
     "certificate DIR/ca.crt whose common name is the cluster NAME. The same key signs\n"
     "join tokens. Refuses to overwrite an existing key. --days defaults to 3650."},
};

const struct cli_group cmd_ca_group = {
    "ca", "cluster certificate authority (init)", cmd_ca_cmds, WR_ARRAY_LEN(cmd_ca_cmds), false,
};
