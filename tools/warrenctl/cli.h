/*
 * cli.h: what the warrenctl command files share: the declarative command
 * table, exit codes, a small option parser and error printing. Each
 * cmd_<group>.c defines one struct cli_group; main.c lists the groups.
 */
#ifndef WARRENCTL_CLI_H
#define WARRENCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes, the same for every command (scripts rely on them). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 1,       /* bad arguments: nothing was done */
    CLI_EXIT_UNREACHABLE = 2, /* a node or file we must talk to is not there */
    CLI_EXIT_ERROR = 3,       /* the remote end or the operation said no */
};

/* One subcommand: "warrenctl <group> <name> <usage>". <fn> gets the
 * arguments after the name and returns an enum cli_exit. */
struct cli_cmd {
    const char *group;
    const char *name;
    const char *usage;
    int (*fn)(const struct cli_cmd *cmd, int argc, char **argv);
    const char *description;
};

/* A group with <top> set holds top-level commands ("warrenctl <name>"); their
 * struct cli_cmd has group NULL. */
struct cli_group {
    const char *name;
    const char *description;
    const struct cli_cmd *cmds;
    size_t n_cmds;
    bool top;
};

extern const struct cli_group cmd_ca_group;
extern const struct cli_group cmd_cert_group;
extern const struct cli_group cmd_token_group;
extern const struct cli_group cmd_inspect_group;
extern const struct cli_group cmd_keyring_group;
extern const struct cli_group cmd_converge_group;

/*
 * Options are declared per command: "--name VALUE" or "--name=VALUE", each
 * at most once unless repeatable, or "--name" alone for a flag. Anything not starting with "--" is
 * a positional argument, up to <max_pos> of them. "--help"/"-h" anywhere prints the command's help.
 */
struct cli_opt {
    const char *name; /* without the leading "--" */
    bool required;
    const char *value; /* out: NULL when absent (the last one when repeatable) */
    bool flag;         /* takes no value: <value> is "1" when given */
    /* Repeatable when <values> is set: every value in order, up to <max_values>. */
    const char **values;
    size_t max_values;
    size_t n_values; /* out */
};

enum cli_parse_result {
    CLI_PARSE_OK = 0,
    CLI_PARSE_HELP, /* help was printed to stdout: exit 0 */
    CLI_PARSE_ERROR /* an error and the usage were printed to stderr: exit 1 */
};

enum cli_parse_result cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
                                struct cli_opt *opts, size_t n_opts, const char **pos,
                                size_t max_pos, size_t *n_pos);

void cli_print_cmd_help(const struct cli_cmd *cmd, bool to_stderr);

/* "warrenctl: <cmd>: <message>" on stderr. */
void cli_err(const struct cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cli_err() and the usage line; returns CLI_EXIT_USAGE. */
int cli_usage_err(const struct cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit code for a failed operation: network errors (refused, timed out, no
 * route) are "unreachable" (2), everything else an error (3). */
int cli_exit_for(int err);

/* "<dir>/<file>" into <buf>; false when it does not fit. */
bool cli_path_join(char *buf, size_t len, const char *dir, const char *file);

/* ---- talking to a node's admin API (cli_http.c) ---------------------------- */
#define CLI_NODE_DEFAULT "127.0.0.1:7480"
#define CLI_CONNECT_TIMEOUT_MS 3000
#define CLI_IO_TIMEOUT_MS 10000
#define CLI_HTTP_MAX_BODY (64u << 20)

struct cli_http_resp {
    int status; /* HTTP status code */
    char *body; /* NUL-terminated (the body may hold NULs: use body_len) */
    size_t body_len;
};

/*
 * GET <path> from the admin API at <addr> ("IP:PORT", "[v6]:PORT" or
 * "localhost:PORT") with a blocking HTTP/1.0 request: connect within
 * CLI_CONNECT_TIMEOUT_MS, each read or write within CLI_IO_TIMEOUT_MS.
 * Returns 0 with <resp> filled (any status; free it with cli_http_resp_free),
 * or: WR_EUSAGE (bad address), a negative errno from connect/read (refused,
 * timed out...: see cli_exit_for), WR_EPROTO (the answer is not HTTP),
 * WR_ETOOBIG (body over CLI_HTTP_MAX_BODY).
 */
int cli_http_get(const char *addr, const char *path, struct cli_http_resp *resp);
/* The same with a method and, for a POST, a JSON <body> (NULL: none). */
int cli_http_request(const char *addr, const char *method, const char *path, const char *body,
                     struct cli_http_resp *resp);
void cli_http_resp_free(struct cli_http_resp *resp);
/* Fetches <path> from <addr> and reports failures on stderr under <cmd>:
 * returns CLI_EXIT_OK with <resp> holding a 200 answer, or the exit code
 * (unreachable 2, error 3). */
int cli_admin_get(const struct cli_cmd *cmd, const char *addr, const char *path,
                  struct cli_http_resp *resp);

/* ---- aligned tables (cli_table.c) ------------------------------------------ */
struct cli_table;
/* <headers>: <ncols> column titles; a title starting with '>' is right-aligned
 * (the '>' is not printed). */
struct cli_table *cli_table_new(const char *const *headers, size_t ncols);
/* Adds a row of <ncols> cells (copied; NULL prints as "-"). */
void cli_table_add(struct cli_table *t, const char *const *cells);
size_t cli_table_rows(const struct cli_table *t);
/* Prints the header and rows, columns separated by two spaces. */
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

#endif
