/*
 * cmd_token.c: "warrenctl token ...": join tokens for agents, signed with the
 * CA key (wr/token.h). Tokens are bearer secrets: they go to stdout or to a
 * 0600 file, never into error messages, and our copies are wiped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "wr.h"

/* A token file holds one token and maybe a newline or two. */
#define CMD_TOKEN_FILE_MAX (WR_TOKEN_MAX + 64)

static int cmd_token_create(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {
        {.name = "ca-dir", .required = true}, {.name = "tunnel", .required = true},
        {.name = "ttl", .required = true},    {.name = "max-weight", .required = false},
        {.name = "out", .required = false},
    };
    enum cli_parse_result pr = cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), NULL, 0, NULL);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *ca_dir = opts[0].value, *tunnel = opts[1].value, *out = opts[4].value;
    uint64_t ttl_ms, max_weight = 255;
    uint8_t seed[WR_SIGN_SEED_LEN];
    char tok[WR_TOKEN_MAX + 2]; /* + newline */
    char ca_key[4096];
    struct wr_token_claims c;
    int rc = CLI_EXIT_ERROR;

    if (!wr_id_is_valid(tunnel, strlen(tunnel)))
        return cli_usage_err(cmd, "invalid tunnel id '%s' (1..%d of A-Z a-z 0-9 . _ -)", tunnel,
                             WR_ID_MAX);
    if (wr_parse_duration_ms(opts[2].value, &ttl_ms) != 0 || ttl_ms < 1000)
        return cli_usage_err(cmd, "invalid --ttl '%s' (at least 1s; e.g. 90s, 30m, 12h, 7d)",
                             opts[2].value);
    if (opts[3].value != NULL && wr_parse_uint(opts[3].value, 1, 255, &max_weight) != 0)
        return cli_usage_err(cmd, "invalid --max-weight '%s' (1..255)", opts[3].value);
    if (!cli_path_join(ca_key, sizeof(ca_key), ca_dir, "ca.key"))
        return cli_usage_err(cmd, "--ca-dir is too long");

    memset(&c, 0, sizeof(c));
    memcpy(c.tunnel, tunnel, strlen(tunnel) + 1);
    c.issued_at = wr_wall_s();
    c.expires_at = c.issued_at + ttl_ms / 1000; /* whole seconds, rounded down */
    c.max_weight = (uint8_t)max_weight;
    wr_random_bytes(c.id, sizeof(c.id));

    int err = wr_cert_ca_seed(ca_key, seed);
    if (err != 0) {
        cli_err(cmd, "cannot read the CA key %s: %s", ca_key, wr_strerror(err));
        rc = cli_exit_for(err);
        goto out;
    }
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok) - 1);
    if (n < 0) {
        cli_err(cmd, "cannot create the token: %s", wr_strerror((int)n));
        goto out;
    }
    tok[n++] = '\n';
    if (out != NULL) {
        err = wr_write_file(out, tok, (size_t)n, 0600);
        if (err != 0) {
            cli_err(cmd, "cannot write %s: %s", out, wr_strerror(err));
            rc = cli_exit_for(err);
            goto out;
        }
        fprintf(stderr, "wrote a token for tunnel %s, expiring in %llus, to %s (mode 0600)\n",
                tunnel, (unsigned long long)(ttl_ms / 1000), out);
    } else if (fwrite(tok, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
        cli_err(cmd, "cannot write the token to stdout");
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    wr_memzero(seed, sizeof(seed));
    wr_memzero(tok, sizeof(tok));
    return rc;
}

static void cmd_token_time(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t > (uint64_t)253402300799ull || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "(beyond year 9999)");
}

static void cmd_token_print_claims(const struct wr_token_claims *c)
{
    char iat[32], exp[32], id[2 * sizeof(c->id) + 1];
    cmd_token_time(c->issued_at, iat, sizeof(iat));
    cmd_token_time(c->expires_at, exp, sizeof(exp));
    for (size_t i = 0; i < sizeof(c->id); i++)
        snprintf(id + 2 * i, 3, "%02x", c->id[i]);
    printf("tunnel:     %s\n", c->tunnel);
    printf("max_weight: %u\n", c->max_weight);
    printf("issued_at:  %s (%llu)\n", iat, (unsigned long long)c->issued_at);
    printf("expires_at: %s (%llu)\n", exp, (unsigned long long)c->expires_at);
    printf("id:         %s\n", id);
}

static int cmd_token_inspect(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {{.name = "ca-dir", .required = true},
                             {.name = "file", .required = false}};
    const char *pos[1];
    size_t n_pos = 0;
    enum cli_parse_result pr =
        cli_parse(cmd, argc, argv, opts, WR_ARRAY_LEN(opts), pos, WR_ARRAY_LEN(pos), &n_pos);
    if (pr != CLI_PARSE_OK)
        return pr == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *ca_dir = opts[0].value, *file = opts[1].value;
    char ca_crt[4096];
    uint8_t pk[WR_SIGN_PK_LEN];
    char *buf = NULL;
    size_t len = 0;
    const char *tok;
    const char *why = NULL;
    struct wr_token_claims c;
    int rc = CLI_EXIT_ERROR;

    if ((file == NULL) == (n_pos == 0))
        return cli_usage_err(cmd, "give the token either with --file FILE or as an argument");
    if (!cli_path_join(ca_crt, sizeof(ca_crt), ca_dir, "ca.crt"))
        return cli_usage_err(cmd, "--ca-dir is too long");

    int err = wr_cert_ca_pubkey(ca_crt, pk);
    if (err != 0) {
        cli_err(cmd, "cannot read the CA certificate %s: %s", ca_crt, wr_strerror(err));
        return cli_exit_for(err);
    }
    if (file != NULL) {
        err = wr_read_file(file, CMD_TOKEN_FILE_MAX, &buf, &len);
        if (err != 0) {
            cli_err(cmd, "cannot read %s: %s", file,
                    err == WR_ETOOBIG ? "too large for a token" : wr_strerror(err));
            rc = cli_exit_for(err);
            goto out;
        }
        /* Files end with a newline (ours do); other whitespace is not a token. */
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        tok = buf;
    } else {
        tok = pos[0];
        len = strlen(tok);
    }

    err = wr_token_verify(tok, len, pk, wr_wall_s(), &c, &why);
    switch (err) {
    case 0:
        cmd_token_print_claims(&c);
        printf("status:     valid\n");
        rc = CLI_EXIT_OK;
        break;
    case WR_EEXPIRED:
        cmd_token_print_claims(&c);
        printf("status:     expired\n");
        break;
    default:
        /* Claims of a token that failed verification are not shown: they
         * are unsigned data. */
        printf("status:     invalid: %s\n", why != NULL ? why : wr_strerror(err));
        break;
    }
out:
    if (buf != NULL) {
        wr_memzero(buf, len);
        WR_FREE(buf);
    }
    return rc;
}

static const struct cli_cmd cmd_token_cmds[] = {
    {"token", "create", "--ca-dir DIR --tunnel ID --ttl DURATION [--max-weight N] [--out FILE]",
     cmd_token_create,
     "Creates a join token for the agents of a tunnel.\n"
     "The token names tunnel ID, is signed with DIR/ca.key and is valid for\n"
     "DURATION (90s, 30m, 12h, 7d; at least 1s). --max-weight caps the weight the agent\n"
     "may claim (1..255, default 255; 255 means intercept). The token goes to stdout,\n"
     "or to FILE with mode 0600. It is a bearer secret: treat it like a password."},
    {"token", "inspect", "--ca-dir DIR [--file FILE | TOKEN]", cmd_token_inspect,
     "Verifies a token and prints its claims.\n"
     "Checks it against DIR/ca.crt and prints its status:\n"
     "\"valid\", \"expired\" or \"invalid: <reason>\". Exits 3 unless valid. Prefer\n"
     "--file: a token on the command line ends up in shell history and ps."},
};

const struct cli_group cmd_token_group = {
    "token", "agent join tokens (create, inspect)", cmd_token_cmds, WR_ARRAY_LEN(cmd_token_cmds),
    false,
};
