/*
 * main.c (warren-bench): the table of subcommands and the dispatch
 * ("warren-bench <command> [options]"), help at every level. Each command
 * lives in its own cmd_<name>.c: tunnel, gossip, pool (lb comes the same
 * way).
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static const struct bench_cmd *const bench_cmds[] = {
    &cmd_tunnel_entry,
    &cmd_gossip_entry,
    &cmd_pool_entry,
    &cmd_lb_entry,
};

static void bench_main_usage(FILE *f)
{
    fprintf(f, "usage: warren-bench <command> [options]\n\n"
               "Benchmarks warren on this machine (loopback only) and prints figures\n"
               "next to the issue's targets.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(bench_cmds) / sizeof(bench_cmds[0]); i++)
        fprintf(f, "  %-8s %s\n", bench_cmds[i]->name, bench_cmds[i]->usage);
    fprintf(f, "\n'warren-bench <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        bench_main_usage(stderr);
        return BENCH_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2) {
            for (size_t i = 0; i < sizeof(bench_cmds) / sizeof(bench_cmds[0]); i++) {
                if (strcmp(argv[2], bench_cmds[i]->name) == 0) {
                    printf("usage: warren-bench %s %s\n\n%s\n", bench_cmds[i]->name,
                           bench_cmds[i]->usage, bench_cmds[i]->description);
                    return BENCH_EXIT_OK;
                }
            }
        }
        bench_main_usage(stdout);
        return BENCH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(bench_cmds) / sizeof(bench_cmds[0]); i++)
        if (strcmp(name, bench_cmds[i]->name) == 0)
            return bench_cmds[i]->fn(argc - 1, argv + 1);
    fprintf(stderr, "warren-bench: unknown command '%s'\n", name);
    bench_main_usage(stderr);
    return BENCH_EXIT_USAGE;
}
