/*
 * bench_iperf.c: one iperf3 client run (the visitor of the bulk tests) and
 * the reading of its JSON report with jansson. The iperf3 server (the
 * target) is started by the subcommand like any other child.
 */
#include "bench.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int bench_iperf_run(const char *iperf, uint16_t port, uint32_t secs, uint32_t parallel,
                    const char *json_path, const char *log, struct bench_bulk *out)
{
    memset(out, 0, sizeof(*out));
    char sport[8], ssecs[16], spar[16];
    snprintf(sport, sizeof(sport), "%u", (unsigned)port);
    snprintf(ssecs, sizeof(ssecs), "%u", (unsigned)secs);
    snprintf(spar, sizeof(spar), "%u", (unsigned)(parallel ? parallel : 1));
    char *argv[] = {(char *)iperf, "-c", "127.0.0.1",         "-p",   sport, "-J", "-t", ssecs,
                    "-P",          spar, "--connect-timeout", "5000", NULL};
    pid_t pid = bench_spawn(argv, log, json_path);
    if (pid < 0)
        return -1;
    int st = bench_wait(pid, (secs + 30) * 1000);
    if (st == -1) {
        bench_err("iperf3 did not finish within %u s; stopping it", secs + 30);
        bench_stop(pid, 1000);
        return -1;
    }
    if (bench_interrupted())
        return -1;

    json_error_t jerr;
    json_t *root = json_load_file(json_path, 0, &jerr);
    if (root == NULL) {
        bench_err("iperf3 report %s: %s (line %d)", json_path, jerr.text, jerr.line);
        return -1;
    }
    int rc = -1;
    const char *error = json_string_value(json_object_get(root, "error"));
    json_t *sum = json_object_get(json_object_get(root, "end"), "sum_received");
    json_t *bps = json_object_get(sum, "bits_per_second");
    json_t *bytes = json_object_get(sum, "bytes");
    if (error != NULL) {
        bench_err("iperf3: %s", error);
    } else if (!json_is_number(bps) || !json_is_number(bytes)) {
        bench_err("iperf3 report %s has no end.sum_received", json_path);
    } else {
        out->bits_per_s = json_number_value(bps);
        out->bytes = json_number_value(bytes);
        rc = 0;
    }
    json_decref(root);
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        bench_note("iperf3 exited with status %d after a complete report", st);
    return rc;
}
