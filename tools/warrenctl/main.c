/*
 * main.c: warrenctl's entry point. Owns the table of command groups, the
 * dispatch ("warrenctl <group> <command> [options]"), help at every level,
 * and the helpers of cli.h shared by the cmd_*.c files. The commands
 * themselves live one group per file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

static const struct cli_group *const cli_groups[] = {
    &cmd_ca_group,      &cmd_cert_group,    &cmd_token_group,
    &cmd_inspect_group, &cmd_keyring_group, &cmd_converge_group,
};

/* "warrenctl" alone runs this (STYLE.md 2.10). */
#define CLI_DEFAULT_CMD "status"

/* "group name" or, for a top-level command, "name". */
static void cli_cmd_fullname(const struct cli_cmd *cmd, char *buf, size_t len)
{
    if (cmd->group != NULL)
        snprintf(buf, len, "%s %s", cmd->group, cmd->name);
    else
        snprintf(buf, len, "%s", cmd->name);
}

/* ---- helpers shared by the command files ---- */

void cli_print_cmd_help(const struct cli_cmd *cmd, bool to_stderr)
{
    FILE *f = to_stderr ? stderr : stdout;
    char name[128];
    cli_cmd_fullname(cmd, name, sizeof(name));
    fprintf(f, "usage: warrenctl %s %s\n", name, cmd->usage);
    if (!to_stderr)
        fprintf(f, "\n%s\n", cmd->description);
}

__attribute__((format(printf, 2, 0))) static void cli_verr(const struct cli_cmd *cmd,
                                                           const char *fmt, va_list ap)
{
    char name[128];
    if (cmd != NULL) {
        cli_cmd_fullname(cmd, name, sizeof(name));
        fprintf(stderr, "warrenctl: %s: ", name);
    } else
        fprintf(stderr, "warrenctl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_err(const struct cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verr(cmd, fmt, ap);
    va_end(ap);
}

int cli_usage_err(const struct cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verr(cmd, fmt, ap);
    va_end(ap);
    cli_print_cmd_help(cmd, true);
    char name[128];
    cli_cmd_fullname(cmd, name, sizeof(name));
    fprintf(stderr, "(see: warrenctl %s --help)\n", name);
    return CLI_EXIT_USAGE;
}

int cli_exit_for(int err)
{
    switch (err) {
    case UV_ECONNREFUSED:
    case UV_ETIMEDOUT:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_ECONNRESET:
    case WR_ETIMEDOUT:
        return CLI_EXIT_UNREACHABLE;
    default:
        return CLI_EXIT_ERROR;
    }
}

bool cli_path_join(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);
    return n >= 0 && (size_t)n < len;
}

static bool cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

enum cli_parse_result cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
                                struct cli_opt *opts, size_t n_opts, const char **pos,
                                size_t max_pos, size_t *n_pos)
{
    size_t np = 0;

    /* Help wins over everything else, wherever it is. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_print_cmd_help(cmd, false);
            return CLI_PARSE_HELP;
        }
    }
    for (size_t j = 0; j < n_opts; j++) {
        opts[j].value = NULL;
        opts[j].n_values = 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (strcmp(a, "--") == 0 || np >= max_pos) {
                cli_usage_err(cmd, "unexpected argument '%s'", a);
                return CLI_PARSE_ERROR;
            }
            pos[np++] = a;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        struct cli_opt *o = NULL;
        for (size_t j = 0; j < n_opts; j++) {
            if (strlen(opts[j].name) == nlen && strncmp(opts[j].name, name, nlen) == 0) {
                o = &opts[j];
                break;
            }
        }
        if (o == NULL) {
            cli_usage_err(cmd, "unknown option '--%.*s'", (int)nlen, name);
            return CLI_PARSE_ERROR;
        }
        if (o->flag) {
            if (eq != NULL) {
                cli_usage_err(cmd, "option '--%s' takes no value", o->name);
                return CLI_PARSE_ERROR;
            }
            o->value = "1";
            continue;
        }
        if (o->value != NULL && o->values == NULL) {
            cli_usage_err(cmd, "option '--%s' given twice", o->name);
            return CLI_PARSE_ERROR;
        }
        if (o->values != NULL && o->n_values == o->max_values) {
            cli_usage_err(cmd, "option '--%s' given more than %zu times", o->name, o->max_values);
            return CLI_PARSE_ERROR;
        }
        if (eq != NULL) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            cli_usage_err(cmd, "option '--%s' needs a value", o->name);
            return CLI_PARSE_ERROR;
        }
        if (o->value[0] == '\0') {
            cli_usage_err(cmd, "option '--%s' needs a non-empty value", o->name);
            return CLI_PARSE_ERROR;
        }
        if (o->values != NULL)
            o->values[o->n_values++] = o->value;
    }
    for (size_t j = 0; j < n_opts; j++) {
        if (opts[j].required && opts[j].value == NULL) {
            cli_usage_err(cmd, "missing option '--%s'", opts[j].name);
            return CLI_PARSE_ERROR;
        }
    }
    if (n_pos != NULL)
        *n_pos = np;
    return CLI_PARSE_OK;
}

/* ---- help and dispatch ---- */

static void cli_print_group_help(const struct cli_group *g, FILE *f)
{
    fprintf(f, "usage: warrenctl %s <command> [options]\n\n%s\n\ncommands:\n", g->name,
            g->description);
    for (size_t i = 0; i < g->n_cmds; i++) {
        /* The first line of the description is its summary. */
        const char *d = g->cmds[i].description;
        int first = (int)strcspn(d, "\n");
        fprintf(f, "  %s %s %s\n      %.*s\n", g->name, g->cmds[i].name, g->cmds[i].usage, first,
                d);
    }
}

static void cli_print_help(FILE *f)
{
    fprintf(f, "usage: warrenctl <command> [options]\n"
               "       warrenctl <group> <command> [options]\n"
               "       warrenctl help [<group> [<command>] | <command>]\n\n"
               "Inspects warren nodes through their admin API and manages warren's\n"
               "security material. With no arguments: warrenctl " CLI_DEFAULT_CMD ".\n\n"
               "commands:\n");
    for (size_t i = 0; i < WR_ARRAY_LEN(cli_groups); i++) {
        const struct cli_group *g = cli_groups[i];
        for (size_t j = 0; g->top && j < g->n_cmds; j++) {
            const char *d = g->cmds[j].description;
            fprintf(f, "  %-9s %.*s\n", g->cmds[j].name, (int)strcspn(d, "\n"), d);
        }
    }
    fprintf(f, "\ngroups:\n");
    for (size_t i = 0; i < WR_ARRAY_LEN(cli_groups); i++)
        if (!cli_groups[i]->top)
            fprintf(f, "  %-9s %s\n", cli_groups[i]->name, cli_groups[i]->description);
    fprintf(f, "\nexit codes: 0 ok, 1 usage, 2 unreachable, 3 error\n"
               "'warrenctl <group> --help' lists a group's commands.\n");
}

static const struct cli_group *cli_find_group(const char *name)
{
    for (size_t i = 0; i < WR_ARRAY_LEN(cli_groups); i++)
        if (!cli_groups[i]->top && strcmp(cli_groups[i]->name, name) == 0)
            return cli_groups[i];
    return NULL;
}

static const struct cli_cmd *cli_find_cmd(const struct cli_group *g, const char *name)
{
    for (size_t i = 0; i < g->n_cmds; i++)
        if (strcmp(g->cmds[i].name, name) == 0)
            return &g->cmds[i];
    return NULL;
}

static const struct cli_cmd *cli_find_top(const char *name)
{
    for (size_t i = 0; i < WR_ARRAY_LEN(cli_groups); i++) {
        if (!cli_groups[i]->top)
            continue;
        const struct cli_cmd *c = cli_find_cmd(cli_groups[i], name);
        if (c != NULL)
            return c;
    }
    return NULL;
}

/* "warrenctl help [group [command]]" */
static int cli_help_cmd(int argc, char **argv)
{
    if (argc == 0) {
        cli_print_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *top = cli_find_top(argv[0]);
    if (top != NULL) {
        cli_print_cmd_help(top, false);
        return CLI_EXIT_OK;
    }
    const struct cli_group *g = cli_find_group(argv[0]);
    if (g == NULL) {
        fprintf(stderr, "warrenctl: help: unknown group '%s'\n", argv[0]);
        cli_print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (argc == 1) {
        cli_print_group_help(g, stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *c = cli_find_cmd(g, argv[1]);
    if (c == NULL) {
        fprintf(stderr, "warrenctl: help: unknown command '%s %s'\n", g->name, argv[1]);
        cli_print_group_help(g, stderr);
        return CLI_EXIT_USAGE;
    }
    cli_print_cmd_help(c, false);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    /* Logs from the libraries go to stderr; keep them to real problems. */
    wr_log_level_cur = WR_LOG_WARN;
    if (wr_crypto_init() != 0) {
        fprintf(stderr, "warrenctl: cannot initialise libsodium\n");
        return CLI_EXIT_ERROR;
    }
    if (argc < 2) {
        const struct cli_cmd *def = cli_find_top(CLI_DEFAULT_CMD);
        return def->fn(def, 0, argv + 1);
    }
    if (cli_is_help(argv[1]))
        return cli_help_cmd(argc - 2, argv + 2);
    const struct cli_cmd *top = cli_find_top(argv[1]);
    if (top != NULL) {
        if (argc >= 3 && strcmp(argv[2], "help") == 0) {
            cli_print_cmd_help(top, false);
            return CLI_EXIT_OK;
        }
        return top->fn(top, argc - 2, argv + 2);
    }

    const struct cli_group *g = cli_find_group(argv[1]);
    if (g == NULL) {
        fprintf(stderr, "warrenctl: unknown command '%s'\n", argv[1]);
        cli_print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (argc < 3) {
        cli_print_group_help(g, stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[2])) {
        cli_print_group_help(g, stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *c = cli_find_cmd(g, argv[2]);
    if (c == NULL) {
        fprintf(stderr, "warrenctl: unknown command '%s %s'\n", g->name, argv[2]);
        cli_print_group_help(g, stderr);
        return CLI_EXIT_USAGE;
    }
    if (argc >= 4 && strcmp(argv[3], "help") == 0) {
        cli_print_cmd_help(c, false);
        return CLI_EXIT_OK;
    }
    return c->fn(c, argc - 3, argv + 3);
}
