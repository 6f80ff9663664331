/*
 * cmd_tunnel.c: "warren-bench tunnel". Parses its options, starts the targets
 * (an iperf3 server and an echo server), the paths (direct, warren, ssh -R
 * twice, HAProxy) and runs each measurement on each path in turn, then
 * prints the report. Starting relays is bench_paths.c's job, printing is
 * bench_report.c's; the measurements themselves are in bench_net.c,
 * bench_iperf.c and bench_swarm.c.
 */
#include "bench_tunnel.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wr.h"

static const char cmd_tunnel_usage[] =
    "[--quick] [--json] [--only LIST] [--paths LIST] [--agents N]\n"
    "       [--node-bin P] [--agent-bin P] [--ctl-bin P] [--lb-bin P] [--keep-tmp]";

static const char cmd_tunnel_help[] =
    "Measures, on 127.0.0.1, the path visitor -> warren-node -> TLS tunnel ->\n"
    "warren-agent -> target against a direct connection, ssh -R through a private\n"
    "sshd (default cipher and aes128-gcm@openssh.com) and HAProxy mode tcp (these\n"
    "two only when installed), and prints a table with the issue's targets.\n"
    "\n"
    "  --quick          short runs (iperf3 2 s, 2000 round trips, 2 s of streams,\n"
    "                   200 agent connections)\n"
    "  --json           print one JSON object with every figure instead of the table\n"
    "  --only LIST      measurements, comma-separated (default all):\n"
    "                     bulk     iperf3, 1 and 8 streams, and relay CPU-s per GB\n"
    "                     rtt      64-byte round trips p50/p99, unpinned and with\n"
    "                              every process on CPU 0\n"
    "                     streams  new streams per second (8 clients)\n"
    "                     rss      warren-node RSS idle and per idle agent connection\n"
    "  --paths LIST     paths, comma-separated (default all):\n"
    "                     direct, warren, ssh, ssh-aes, haproxy, lb (warren-lb,\n"
    "                     a tcp listener: compare it with haproxy, issue 5)\n"
    "  --agents N       idle agent connections for rss (default 1000)\n"
    "  --node-bin P     warren-node (default: ../node/warren-node next to this binary)\n"
    "  --agent-bin P    warren-agent (default: ../agent/warren-agent)\n"
    "  --ctl-bin P      warrenctl (default: warrenctl in this binary's directory)\n"
    "  --lb-bin P       warren-lb (default: ../lb/warren-lb)\n"
    "  --keep-tmp       keep the temp dir (logs, configs) and print its path\n"
    "  -h, --help       this text\n"
    "\n"
    "Needs iperf3 for bulk; ssh -R needs sshd, ssh and ssh-keygen (and root, to\n"
    "create /run/sshd). Every process the bench starts is stopped at the end, also\n"
    "on Ctrl-C. Exit status: 0 done, 1 usage, 3 a path or a measurement failed.";

enum {
    CMD_TUNNEL_OPT_ONLY = 256,
    CMD_TUNNEL_OPT_PATHS,
    CMD_TUNNEL_OPT_AGENTS,
    CMD_TUNNEL_OPT_NODE_BIN,
    CMD_TUNNEL_OPT_AGENT_BIN,
    CMD_TUNNEL_OPT_CTL_BIN,
    CMD_TUNNEL_OPT_LB_BIN,
    CMD_TUNNEL_OPT_KEEP_TMP,
    CMD_TUNNEL_OPT_QUICK,
    CMD_TUNNEL_OPT_JSON,
};

static const struct option cmd_tunnel_options[] = {
    {"quick", no_argument, NULL, CMD_TUNNEL_OPT_QUICK},
    {"json", no_argument, NULL, CMD_TUNNEL_OPT_JSON},
    {"only", required_argument, NULL, CMD_TUNNEL_OPT_ONLY},
    {"paths", required_argument, NULL, CMD_TUNNEL_OPT_PATHS},
    {"agents", required_argument, NULL, CMD_TUNNEL_OPT_AGENTS},
    {"node-bin", required_argument, NULL, CMD_TUNNEL_OPT_NODE_BIN},
    {"agent-bin", required_argument, NULL, CMD_TUNNEL_OPT_AGENT_BIN},
    {"ctl-bin", required_argument, NULL, CMD_TUNNEL_OPT_CTL_BIN},
    {"lb-bin", required_argument, NULL, CMD_TUNNEL_OPT_LB_BIN},
    {"keep-tmp", no_argument, NULL, CMD_TUNNEL_OPT_KEEP_TMP},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int cmd_tunnel_usage_err(const char *fmt, const char *arg)
{
    fprintf(stderr, "warren-bench: tunnel: ");
    fprintf(stderr, "%s '%s'\n", fmt, arg);
    fprintf(stderr, "usage: warren-bench tunnel %s\n(see: warren-bench tunnel --help)\n",
            cmd_tunnel_usage);
    return BENCH_EXIT_USAGE;
}

/* Parses "a,b,c" against <names>; returns false on an unknown word. */
static bool cmd_tunnel_parse_list(const char *list, const char *const *names, size_t n,
                                  unsigned *out)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    *out = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < n && strcmp(w, names[i]) != 0)
            i++;
        if (i == n)
            return false;
        *out |= 1u << i;
    }
    return *out != 0;
}

static void cmd_tunnel_paths_init(struct bench_tunnel *bt)
{
    static const char *const names[BENCH_P__COUNT] = {"direct",  "warren",  "ssh",
                                                      "ssh-aes", "haproxy", "lb"};
    static const char *const labels[BENCH_P__COUNT] = {"direct",    "warren",  "ssh-R",
                                                       "ssh-R aes", "haproxy", "warren-lb"};
    for (int i = 0; i < BENCH_P__COUNT; i++) {
        struct bench_path *p = &bt->paths[i];
        p->name = names[i];
        p->label = labels[i];
        p->wanted = true;
        struct bench_figures none = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
        p->fig = none;
    }
}

/* Default binary: <self dir>/<rel>, rel being relative to the build's tools/. */
static void cmd_tunnel_default_bin(char *out, size_t len, const char *self_dir, const char *rel)
{
    if (!bench_path_join(out, len, self_dir, rel))
        out[0] = '\0';
}

static int cmd_tunnel_parse(struct bench_tunnel *bt, int argc, char **argv, bool *keep_tmp)
{
    char self_dir[PATH_MAX] = ".";
    if (bench_self_dir(self_dir, sizeof(self_dir)) != 0)
        snprintf(self_dir, sizeof(self_dir), ".");
    cmd_tunnel_default_bin(bt->node_bin, sizeof(bt->node_bin), self_dir, "../node/warren-node");
    cmd_tunnel_default_bin(bt->agent_bin, sizeof(bt->agent_bin), self_dir, "../agent/warren-agent");
    cmd_tunnel_default_bin(bt->ctl_bin, sizeof(bt->ctl_bin), self_dir, "warrenctl");
    cmd_tunnel_default_bin(bt->lb_bin, sizeof(bt->lb_bin), self_dir, "../lb/warren-lb");
    bt->only = BENCH_M_ALL;
    bt->swarm_n = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", cmd_tunnel_options, NULL)) != -1) {
        switch (opt) {
        case CMD_TUNNEL_OPT_QUICK:
            bt->quick = true;
            break;
        case CMD_TUNNEL_OPT_JSON:
            bt->json = true;
            break;
        case CMD_TUNNEL_OPT_ONLY: {
            const char *names[] = {"bulk", "rtt", "streams", "rss"};
            if (!cmd_tunnel_parse_list(optarg, names, 4, &bt->only))
                return cmd_tunnel_usage_err("invalid --only (bulk,rtt,streams,rss)", optarg);
            break;
        }
        case CMD_TUNNEL_OPT_PATHS: {
            const char *names[] = {"direct", "warren", "ssh", "ssh-aes", "haproxy", "lb"};
            unsigned mask;
            if (!cmd_tunnel_parse_list(optarg, names, BENCH_P__COUNT, &mask))
                return cmd_tunnel_usage_err(
                    "invalid --paths (direct,warren,ssh,ssh-aes,haproxy,lb)", optarg);
            for (int i = 0; i < BENCH_P__COUNT; i++)
                bt->paths[i].wanted = (mask >> i) & 1;
            break;
        }
        case CMD_TUNNEL_OPT_AGENTS: {
            uint64_t n;
            if (wr_parse_uint(optarg, 1, 100000, &n) != 0)
                return cmd_tunnel_usage_err("invalid --agents (1..100000)", optarg);
            bt->swarm_n = (uint32_t)n;
            break;
        }
        case CMD_TUNNEL_OPT_NODE_BIN:
            snprintf(bt->node_bin, sizeof(bt->node_bin), "%s", optarg);
            break;
        case CMD_TUNNEL_OPT_AGENT_BIN:
            snprintf(bt->agent_bin, sizeof(bt->agent_bin), "%s", optarg);
            break;
        case CMD_TUNNEL_OPT_CTL_BIN:
            snprintf(bt->ctl_bin, sizeof(bt->ctl_bin), "%s", optarg);
            break;
        case CMD_TUNNEL_OPT_LB_BIN:
            snprintf(bt->lb_bin, sizeof(bt->lb_bin), "%s", optarg);
            break;
        case CMD_TUNNEL_OPT_KEEP_TMP:
            *keep_tmp = true;
            break;
        case 'h':
            printf("usage: warren-bench tunnel %s\n\n%s\n", cmd_tunnel_usage, cmd_tunnel_help);
            return -1;
        default:
            fprintf(stderr, "(see: warren-bench tunnel --help)\n");
            return BENCH_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cmd_tunnel_usage_err("unexpected argument", argv[optind]);

    bt->bulk_secs = bt->quick ? 2 : 5;
    bt->rtt_n = bt->quick ? 2000 : 20000;
    bt->rtt_warmup = bt->quick ? 200 : 1000;
    bt->streams_threads = 32;
    bt->streams_secs = bt->quick ? 2 : 5;
    if (bt->swarm_n == 0)
        bt->swarm_n = bt->quick ? 200 : 1000;
    return 0;
}

/* Checks the binaries each wanted path needs; unwanted or impossible paths
 * get a note. Returns 0, or BENCH_EXIT_USAGE when warren's own are missing. */
static int cmd_tunnel_find_tools(struct bench_tunnel *bt)
{
    bool need_warren = bt->paths[BENCH_P_WARREN].wanted || (bt->only & BENCH_M_RSS);
    const char *mine[] = {bt->node_bin, bt->agent_bin, bt->ctl_bin};
    for (size_t i = 0; need_warren && i < 3; i++) {
        if (!bench_file_is_exec(mine[i])) {
            bench_err("%s: not found or not executable (build it, or pass --node-bin/"
                      "--agent-bin/--ctl-bin)",
                      mine[i]);
            return BENCH_EXIT_USAGE;
        }
    }
    bt->have_iperf = bench_which("iperf3", bt->iperf_bin, sizeof(bt->iperf_bin));
    bt->have_haproxy = bench_which("haproxy", bt->haproxy_bin, sizeof(bt->haproxy_bin));
    bt->have_ssh = bench_which("ssh", bt->ssh_bin, sizeof(bt->ssh_bin)) &&
                   bench_which("ssh-keygen", bt->keygen_bin, sizeof(bt->keygen_bin));
    /* sshd refuses to run unless started by its absolute path; Debian's is here. */
    snprintf(bt->sshd_bin, sizeof(bt->sshd_bin), "/usr/sbin/sshd");
    bt->have_sshd =
        bench_file_is_exec(bt->sshd_bin) || bench_which("sshd", bt->sshd_bin, sizeof(bt->sshd_bin));
    if ((bt->only & BENCH_M_BULK) && !bt->have_iperf) {
        bench_tunnel_note(bt, "bulk skipped: iperf3 is not installed (tools/deps.sh bench)");
        bt->only &= ~(unsigned)BENCH_M_BULK;
    }
    for (int i = 0; i < BENCH_P__COUNT; i++)
        if (!bt->paths[i].wanted)
            snprintf(bt->paths[i].note, sizeof(bt->paths[i].note), "not selected (--paths)");
    return 0;
}

static int cmd_tunnel_targets_start(struct bench_tunnel *bt)
{
    bt->echo_pid = bench_echo_start(&bt->echo_port);
    if (bt->echo_pid < 0) {
        bench_err("cannot start the echo server");
        return -1;
    }
    if (!bt->have_iperf)
        return 0;
    char log[PATH_MAX], port[8];
    if (!bench_path_join(log, sizeof(log), bt->tmp, "iperf3-server.log") ||
        bench_port_pick(&bt->iperf_port) != 0)
        return -1;
    snprintf(port, sizeof(port), "%u", (unsigned)bt->iperf_port);
    char *argv[] = {bt->iperf_bin, "-s", "-B", "127.0.0.1", "-p", port, "--forceflush", NULL};
    bt->iperf_pid = bench_spawn(argv, log, NULL);
    if (bt->iperf_pid < 0 || !bench_wait_file(log, 10000) || !bench_is_alive(bt->iperf_pid)) {
        bench_err("the iperf3 server did not start");
        bench_dump_log("iperf3 -s", log, 2000);
        return -1;
    }
    return 0;
}

/* ---- measurements ---- */

static double cmd_tunnel_relay_cpu(const pid_t *pids, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double c = bench_proc_cpu_s(pids[i]);
        if (c > 0)
            s += c;
    }
    return s;
}

static void cmd_tunnel_bulk(struct bench_tunnel *bt, struct bench_path *p)
{
    char json[PATH_MAX], log[PATH_MAX], name[64];
    snprintf(name, sizeof(name), "iperf3-%s.json", p->name);
    if (!bench_path_join(json, sizeof(json), bt->tmp, name) ||
        !bench_path_join(log, sizeof(log), bt->tmp, "iperf3-client.log"))
        return;
    pid_t relays[32];
    int nr = bench_path_relays(p, relays, 32);
    double cpu0 = cmd_tunnel_relay_cpu(relays, nr);
    struct bench_bulk b;
    bench_note("%s: iperf3 1 stream, %u s", p->label, bt->bulk_secs);
    if (bench_iperf_run(bt->iperf_bin, p->bulk_port, bt->bulk_secs, 1, json, log, &b) == 0) {
        double cpu1 = cmd_tunnel_relay_cpu(relays, nr);
        p->fig.bulk1_gbps = b.bits_per_s / 1e9;
        if (nr > 0 && b.bytes > 0)
            p->fig.cpu_s_per_gb = (cpu1 - cpu0) / (b.bytes / 1e9);
    } else {
        bt->failures++;
    }
    if (bench_interrupted())
        return;
    snprintf(name, sizeof(name), "iperf3-%s-P8.json", p->name);
    if (!bench_path_join(json, sizeof(json), bt->tmp, name))
        return;
    bench_note("%s: iperf3 8 streams, %u s", p->label, bt->bulk_secs);
    if (bench_iperf_run(bt->iperf_bin, p->bulk_port, bt->bulk_secs, 8, json, log, &b) == 0)
        p->fig.bulk8_gbps = b.bits_per_s / 1e9;
    else
        bt->failures++;
}

/* Pins (or unpins) the bench's thread, the echo server and the path's relays. */
static void cmd_tunnel_pin_all(struct bench_tunnel *bt, struct bench_path *p, const cpu_set_t *set)
{
    pid_t relays[32];
    int nr = bench_path_relays(p, relays, 32);
    int err = bench_pin(0, set);
    if (err == 0)
        err = bench_pin(bt->echo_pid, set);
    for (int i = 0; i < nr && err == 0; i++)
        err = bench_pin(relays[i], set);
    if (err != 0)
        bench_err("%s: sched_setaffinity: %s", p->label, strerror(-err));
}

static void cmd_tunnel_rtt(struct bench_tunnel *bt, struct bench_path *p)
{
    struct bench_rtt r;
    uint32_t deadline = bt->quick ? 20000 : 60000;
    bench_note("%s: %u round trips of 64 bytes", p->label, bt->rtt_n);
    int err = bench_rtt_run(p->echo_port, bt->rtt_n, bt->rtt_warmup, deadline, &r);
    if (err == 0) {
        p->fig.rtt_p50_us = r.p50_us;
        p->fig.rtt_p99_us = r.p99_us;
    } else {
        bench_err("%s: round trips: %s (%u done)", p->label, strerror(-err), r.n);
        bt->failures++;
    }
    if (bench_interrupted())
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    bench_note("%s: %u round trips, every process on CPU 0", p->label, bt->rtt_n);
    cmd_tunnel_pin_all(bt, p, &one);
    err = bench_rtt_run(p->echo_port, bt->rtt_n, bt->rtt_warmup, deadline, &r);
    cmd_tunnel_pin_all(bt, p, &bt->all_cpus);
    if (err == 0) {
        p->fig.rtt1_p50_us = r.p50_us;
        p->fig.rtt1_p99_us = r.p99_us;
    } else {
        bench_err("%s: one-core round trips: %s (%u done)", p->label, strerror(-err), r.n);
        bt->failures++;
    }
}

/* TCP sockets in TIME_WAIT right now (/proc/net/sockstat), or -1. */
static long cmd_tunnel_timewait(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long tw = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *t = strstr(line, " tw ");
        if (strncmp(line, "TCP:", 4) == 0 && t != NULL)
            tw = strtol(t + 4, NULL, 10);
    }
    fclose(f);
    return tw;
}

/*
 * Every measured connection leaves a socket in TIME_WAIT for 60 s, and tens
 * of thousands of them make connect()'s port search slow for whoever runs
 * next (the direct path fell from ~45k to ~14k streams/s after a previous
 * path's run). Wait, bounded, for them to expire so the paths compare fairly.
 */
static void cmd_tunnel_wait_timewait(struct bench_tunnel *bt)
{
    long tw = cmd_tunnel_timewait();
    if (tw < 2000 || bt->quick)
        return;
    bench_note("waiting for %ld TIME_WAIT sockets to expire (at most 65 s)", tw);
    for (int i = 0; i < 130 && tw >= 2000 && !bench_interrupted(); i++) {
        bench_sleep_ms(500);
        tw = cmd_tunnel_timewait();
    }
}

static void cmd_tunnel_streams(struct bench_tunnel *bt, struct bench_path *p)
{
    struct bench_streams s;
    cmd_tunnel_wait_timewait(bt);
    bench_note("%s: new streams, %u clients, %.0f s", p->label, bt->streams_threads,
               bt->streams_secs);
    int err = bench_streams_run(p->echo_port, bt->streams_threads, bt->streams_secs, &s);
    if (err != 0 || s.ok == 0) {
        bench_err("%s: new streams: %s (ok %llu failed %llu)", p->label,
                  err ? strerror(-err) : "none completed", (unsigned long long)s.ok,
                  (unsigned long long)s.failed);
        bt->failures++;
        if (s.ok == 0)
            return;
    }
    p->fig.streams_per_s = s.per_s;
    p->fig.streams_failed = (double)s.failed;
    /* Let the closed connections' TIME_WAIT and the relays' state settle. */
    bench_sleep_ms(500);
}

static void cmd_tunnel_rss(struct bench_tunnel *bt)
{
    char listen[128] = "";
    bench_note("warren-node RSS: idle, then with %u idle agent connections", bt->swarm_n);
    pid_t node = bench_node_start(bt, "node-rss", false, listen, sizeof(listen), NULL, NULL);
    if (node < 0) {
        bt->failures++;
        return;
    }
    bench_sleep_ms(500);
    bt->rss_idle_kib = bench_proc_rss_kib(node);
    struct bench_swarm_opts o = {
        .node_addr = listen,
        .ca_file = bt->ca_crt,
        .token_file = bt->token,
        .tunnel = "bench",
        .n = bt->swarm_n,
        .concurrency = 32,
        .deadline_ms = 120000,
        .node_pid = node,
    };
    struct bench_swarm_result r;
    int err = bench_swarm_run(&o, &r);
    if (r.welcomed > 0 && r.node_rss_kib > 0) {
        bt->rss_conns = r.welcomed;
        bt->rss_loaded_kib = r.node_rss_kib;
        bt->rss_per_conn_kib = (double)(r.node_rss_kib - bt->rss_idle_kib) / r.welcomed;
        bt->swarm_setup_s = r.setup_s;
    }
    if (err != 0) {
        bench_err("agent swarm: %u of %u connections welcomed (%s)", r.welcomed, bt->swarm_n,
                  wr_err_name(err));
        bench_tunnel_note(bt, "rss: only %u of %u agent connections were welcomed", r.welcomed,
                          bt->swarm_n);
        bt->failures++;
    }
    bench_stop(node, 3000);
}

typedef void (*cmd_tunnel_meas_cb)(struct bench_tunnel *bt, struct bench_path *p);

static void cmd_tunnel_each_path(struct bench_tunnel *bt, cmd_tunnel_meas_cb fn)
{
    for (int i = 0; i < BENCH_P__COUNT && !bench_interrupted(); i++) {
        struct bench_path *p = &bt->paths[i];
        if (!p->up)
            continue;
        if (p->n_pids > 0 && !bench_is_alive(p->pids[0])) {
            bench_err("%s: a relay process exited; skipping the rest of this path", p->label);
            snprintf(p->note, sizeof(p->note), "a relay process exited during the run");
            p->up = false;
            bt->failures++;
            continue;
        }
        fn(bt, p);
    }
}

static int cmd_tunnel_run(struct bench_tunnel *bt)
{
    if (cmd_tunnel_targets_start(bt) != 0)
        return BENCH_EXIT_FAILED;
    bool need_identity = bt->paths[BENCH_P_WARREN].wanted || (bt->only & BENCH_M_RSS);
    if (need_identity && bench_identity_make(bt) != 0) {
        bench_err("warrenctl could not make the CA, certificate and token");
        return BENCH_EXIT_FAILED;
    }
    if ((bt->only & BENCH_M_RSS) && !bench_interrupted())
        cmd_tunnel_rss(bt);
    if (bt->only & (BENCH_M_BULK | BENCH_M_RTT | BENCH_M_STREAMS)) {
        for (int i = 0; i < BENCH_P__COUNT && !bench_interrupted(); i++) {
            if (!bt->paths[i].wanted)
                continue;
            bench_note("starting path %s", bt->paths[i].label);
            bench_path_start(bt, &bt->paths[i]);
            if (!bt->paths[i].up && strncmp(bt->paths[i].note, "skipped", 7) != 0)
                bt->failures++;
        }
    }
    if (bt->only & BENCH_M_BULK)
        cmd_tunnel_each_path(bt, cmd_tunnel_bulk);
    if (bt->only & BENCH_M_RTT)
        cmd_tunnel_each_path(bt, cmd_tunnel_rtt);
    /* Last: it leaves tens of thousands of sockets in TIME_WAIT. */
    if (bt->only & BENCH_M_STREAMS)
        cmd_tunnel_each_path(bt, cmd_tunnel_streams);
    return 0;
}

static int cmd_tunnel(int argc, char **argv)
{
    struct bench_tunnel *bt = calloc(1, sizeof(*bt));
    if (bt == NULL)
        return BENCH_EXIT_FAILED;
    cmd_tunnel_paths_init(bt);
    bool keep_tmp = false;
    int rc = cmd_tunnel_parse(bt, argc, argv, &keep_tmp);
    if (rc != 0) {
        free(bt);
        return rc < 0 ? BENCH_EXIT_OK : rc;
    }
    rc = cmd_tunnel_find_tools(bt);
    if (rc != 0) {
        free(bt);
        return rc;
    }
    bench_set_quiet(false);
    bench_signals_install();
    long nofile = bench_raise_nofile();
    if (nofile > 0 && nofile < (long)bt->swarm_n + 256)
        bench_tunnel_note(bt, "RLIMIT_NOFILE is %ld: the swarm may be cut short", nofile);
    sched_getaffinity(0, sizeof(bt->all_cpus), &bt->all_cpus);
    if (wr_crypto_init() != 0) {
        bench_err("libsodium failed to initialise");
        free(bt);
        return BENCH_EXIT_FAILED;
    }
    wr_log_level_cur = WR_LOG_ERROR;
    bench_machine_read(bt);
    int err = bench_tmpdir_make(bt->tmp, sizeof(bt->tmp));
    if (err != 0) {
        bench_err("cannot create a temp dir: %s", strerror(-err));
        free(bt);
        return BENCH_EXIT_FAILED;
    }
    rc = cmd_tunnel_run(bt);

    for (int i = BENCH_P__COUNT - 1; i >= 0; i--)
        bench_path_stop(&bt->paths[i]);
    bench_stop_all();
    if (bench_interrupted()) {
        bench_err("interrupted; every process started was stopped");
        rc = 130;
    } else {
        if (bt->json)
            bench_report_json(bt, stdout);
        else
            bench_report_text(bt, stdout);
        fflush(stdout);
        if (rc == 0 && bt->failures > 0)
            rc = BENCH_EXIT_FAILED;
    }
    if (keep_tmp)
        fprintf(stderr, "warren-bench: logs and configs kept in %s\n", bt->tmp);
    else
        bench_tmpdir_remove(bt->tmp);
    free(bt);
    return rc;
}

const struct bench_cmd cmd_tunnel_entry = {
    .name = "tunnel",
    .usage = cmd_tunnel_usage,
    .description = cmd_tunnel_help,
    .fn = cmd_tunnel,
};
