/*
 * cmd_keyring.c: "warrenctl keyring ...": the gossip cluster key. Writes a
 * fresh key for warren-node --cluster-key; rotating keys on a live cluster
 * is not here (docs/gossip.md).
 */
#include <stdio.h>

#include "cli.h"
#include "wr.h"

#define CMD_KEYRING_KEY_LEN 32 /* DISC_KEY_LEN: XChaCha20-Poly1305 */

static int cmd_keyring_generate(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_opt opts[] = {{"out", true, NULL}};
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

static const struct cli_cmd cmd_keyring_cmds[] = {
    {"keyring", "generate", "--out FILE", cmd_keyring_generate,
     "Writes a new random gossip key to FILE.\n"
     "32 random bytes as base64url text on one line, mode 0600. Every node of a\n"
     "cluster is started with the same file: warren-node --cluster-key FILE.\n"
     "Overwrites FILE if it exists."},
};

const struct cli_group cmd_keyring_group = {
    "keyring", "gossip cluster key (generate)", cmd_keyring_cmds, WR_ARRAY_LEN(cmd_keyring_cmds),
    false,
};
