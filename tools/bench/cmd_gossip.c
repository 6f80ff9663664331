/*
 * cmd_gossip.c: "warren-bench gossip". Starts clusters of N warren-node
 * processes with gossip on and, when installed, of N Serf agents, one
 * cluster at a time, on 127.0.0.1 with fixed ports; times join convergence,
 * failure detection (kill -9), recovery after a restart and leave
 * propagation by polling every member's view, and measures idle traffic and
 * RSS once per size. Reading views is bench_gossip_net.c's and bench_serf.c's
 * job, counting bytes bench_gossip_ipt.c's, printing bench_gossip_report.c's.
 */
#include "bench_gossip.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wr.h"

#define CMD_GOSSIP_START_MS 15000 /* a seed must be up within this */
#define CMD_GOSSIP_JOIN_MS 90000  /* Serf's join tails reach ~70 s at N = 64 */
#define CMD_GOSSIP_FAIL_MS 60000  /* both detect a failure in ~10 s at worst */
#define CMD_GOSSIP_REJOIN_MS 60000
#define CMD_GOSSIP_LEAVE_MS 30000
#define CMD_GOSSIP_POLL_MS 10          /* a round of polls takes at least this */
#define CMD_GOSSIP_SETTLE_MS 2000      /* between scenarios: queued updates drain */
#define CMD_GOSSIP_IDLE_SETTLE_MS 5000 /* before the idle window: join push/pulls end */
#define CMD_GOSSIP_DIAL_MS 1000

static const char cmd_gossip_usage[] =
    "[--quick] [--json] [--sizes LIST] [--runs N] [--systems LIST] [--idle-secs S]\n"
    "       [--node-bin P] [--ctl-bin P] [--serf-bin P] [--keep-tmp]";

static const char cmd_gossip_help[] =
    "Starts clusters of N warren-node processes with gossip (--cluster-key) and,\n"
    "beside them, of N Serf agents (when serf is installed), one cluster at a time,\n"
    "on 127.0.0.1, each member joining through member 0. For each N and run it\n"
    "times, by polling every member's view every ~10 ms (warren: GET /v1/members;\n"
    "serf: the members RPC):\n"
    "  join      joiners spawned -> every member sees N members alive\n"
    "  failure   kill -9 of a member -> every other member sees it dead (failed)\n"
    "  rejoin    that member restarted -> every other member sees it alive\n"
    "  leave     SIGTERM (serf: SIGINT, its graceful leave) -> every other member\n"
    "            sees it left\n"
    "and counts members seen dead while they ran (false positives). Once per N, after\n"
    "the first join: gossip bytes sent per member per second at idle (iptables\n"
    "counters on the gossip ports, the same for both; needs root) and RSS per member.\n"
    "Prints medians over the runs next to the issue's targets and Serf reference.\n"
    "\n"
    "  --quick          N = 5, one run, warren only, 3 s idle window (smoke test)\n"
    "  --json           print one JSON object with every figure instead of the table\n"
    "  --sizes LIST     cluster sizes, comma-separated, 3..64 (default 5,16,32,64)\n"
    "  --runs N         runs per size and system, 1..9 (default 3)\n"
    "  --systems LIST   warren,serf (default both; serf only when installed)\n"
    "  --idle-secs S    idle window (default: the push/pull period, 30 s; 60 s\n"
    "                   above 32 members)\n"
    "  --node-bin P     warren-node (default: ../node/warren-node next to this binary)\n"
    "  --ctl-bin P      warrenctl (default: warrenctl in this binary's directory)\n"
    "  --serf-bin P     serf (default: serf in $PATH)\n"
    "  --keep-tmp       keep the temp dir (logs) and print its path\n"
    "  -h, --help       this text\n"
    "\n"
    "Ports: 256 consecutive free ports below 32000 (checked at start). Every\n"
    "process is stopped by pid at the end of its run, also on Ctrl-C, and the\n"
    "iptables chain is removed. Exit status: 0 done, 1 usage, 3 a run failed.";

enum {
    CMD_GOSSIP_OPT_QUICK = 256,
    CMD_GOSSIP_OPT_JSON,
    CMD_GOSSIP_OPT_SIZES,
    CMD_GOSSIP_OPT_RUNS,
    CMD_GOSSIP_OPT_SYSTEMS,
    CMD_GOSSIP_OPT_IDLE,
    CMD_GOSSIP_OPT_NODE_BIN,
    CMD_GOSSIP_OPT_CTL_BIN,
    CMD_GOSSIP_OPT_SERF_BIN,
    CMD_GOSSIP_OPT_KEEP_TMP,
};

static const struct option cmd_gossip_options[] = {
    {"quick", no_argument, NULL, CMD_GOSSIP_OPT_QUICK},
    {"json", no_argument, NULL, CMD_GOSSIP_OPT_JSON},
    {"sizes", required_argument, NULL, CMD_GOSSIP_OPT_SIZES},
    {"runs", required_argument, NULL, CMD_GOSSIP_OPT_RUNS},
    {"systems", required_argument, NULL, CMD_GOSSIP_OPT_SYSTEMS},
    {"idle-secs", required_argument, NULL, CMD_GOSSIP_OPT_IDLE},
    {"node-bin", required_argument, NULL, CMD_GOSSIP_OPT_NODE_BIN},
    {"ctl-bin", required_argument, NULL, CMD_GOSSIP_OPT_CTL_BIN},
    {"serf-bin", required_argument, NULL, CMD_GOSSIP_OPT_SERF_BIN},
    {"keep-tmp", no_argument, NULL, CMD_GOSSIP_OPT_KEEP_TMP},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *const cmd_gossip_sys_name[BENCH_GSYS__COUNT] = {"warren", "serf"};
static const char *const cmd_gossip_prefix[BENCH_GSYS__COUNT] = {"w", "s"};

void bench_gossip_note(struct bench_gossip *g, const char *fmt, ...)
{
    if (g->n_notes >= (int)(sizeof(g->notes) / sizeof(g->notes[0])))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->notes[g->n_notes++], sizeof(g->notes[0]), fmt, ap);
    va_end(ap);
}

uint16_t bench_gossip_port(const struct bench_gossip *g, enum bench_gsys sys, bool second,
                           uint32_t i)
{
    return (uint16_t)(g->port_base + (unsigned)sys * 2 * BENCH_G_MAX_N +
                      (second ? BENCH_G_MAX_N : 0) + i);
}

/* ---- options ---- */

static int cmd_gossip_usage_err(const char *what, const char *arg)
{
    fprintf(stderr, "warren-bench: gossip: %s '%s'\n", what, arg);
    fprintf(stderr, "usage: warren-bench gossip %s\n(see: warren-bench gossip --help)\n",
            cmd_gossip_usage);
    return BENCH_EXIT_USAGE;
}

static bool cmd_gossip_parse_sizes(struct bench_gossip *g, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    g->n_sizes = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (g->n_sizes == BENCH_G_MAX_SIZES || wr_parse_uint(w, BENCH_G_MIN_N, BENCH_G_MAX_N, &v))
            return false;
        g->sizes[g->n_sizes++] = (uint32_t)v;
    }
    return g->n_sizes > 0;
}

static bool cmd_gossip_parse_systems(struct bench_gossip *g, const char *list)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", list);
    bool any = false;
    for (int s = 0; s < BENCH_GSYS__COUNT; s++)
        g->want[s] = false;
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        int s = 0;
        while (s < BENCH_GSYS__COUNT && strcmp(w, cmd_gossip_sys_name[s]) != 0)
            s++;
        if (s == BENCH_GSYS__COUNT)
            return false;
        g->want[s] = any = true;
    }
    return any;
}

/* Returns 0, -1 after --help, or BENCH_EXIT_USAGE. */
static int cmd_gossip_parse(struct bench_gossip *g, int argc, char **argv)
{
    char self_dir[PATH_MAX] = ".";
    if (bench_self_dir(self_dir, sizeof(self_dir)) != 0)
        snprintf(self_dir, sizeof(self_dir), ".");
    if (!bench_path_join(g->node_bin, sizeof(g->node_bin), self_dir, "../node/warren-node"))
        g->node_bin[0] = '\0';
    if (!bench_path_join(g->ctl_bin, sizeof(g->ctl_bin), self_dir, "warrenctl"))
        g->ctl_bin[0] = '\0';
    bool have_sizes = false, have_runs = false, have_systems = false, have_idle = false;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", cmd_gossip_options, NULL)) != -1) {
        uint64_t v;
        switch (opt) {
        case CMD_GOSSIP_OPT_QUICK:
            g->quick = true;
            break;
        case CMD_GOSSIP_OPT_JSON:
            g->json = true;
            break;
        case CMD_GOSSIP_OPT_SIZES:
            if (!cmd_gossip_parse_sizes(g, optarg))
                return cmd_gossip_usage_err("invalid --sizes (up to 8 of 3..64)", optarg);
            have_sizes = true;
            break;
        case CMD_GOSSIP_OPT_RUNS:
            if (wr_parse_uint(optarg, 1, BENCH_G_MAX_RUNS, &v) != 0)
                return cmd_gossip_usage_err("invalid --runs (1..9)", optarg);
            g->runs = (uint32_t)v;
            have_runs = true;
            break;
        case CMD_GOSSIP_OPT_SYSTEMS:
            if (!cmd_gossip_parse_systems(g, optarg))
                return cmd_gossip_usage_err("invalid --systems (warren,serf)", optarg);
            have_systems = true;
            break;
        case CMD_GOSSIP_OPT_IDLE:
            if (wr_parse_uint(optarg, 1, 600, &v) != 0)
                return cmd_gossip_usage_err("invalid --idle-secs (1..600)", optarg);
            g->idle_secs = (uint32_t)v;
            have_idle = true;
            break;
        case CMD_GOSSIP_OPT_NODE_BIN:
            snprintf(g->node_bin, sizeof(g->node_bin), "%s", optarg);
            break;
        case CMD_GOSSIP_OPT_CTL_BIN:
            snprintf(g->ctl_bin, sizeof(g->ctl_bin), "%s", optarg);
            break;
        case CMD_GOSSIP_OPT_SERF_BIN:
            snprintf(g->serf_bin, sizeof(g->serf_bin), "%s", optarg);
            break;
        case CMD_GOSSIP_OPT_KEEP_TMP:
            g->keep_tmp = true;
            break;
        case 'h':
            printf("usage: warren-bench gossip %s\n\n%s\n", cmd_gossip_usage, cmd_gossip_help);
            return -1;
        default:
            fprintf(stderr, "(see: warren-bench gossip --help)\n");
            return BENCH_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cmd_gossip_usage_err("unexpected argument", argv[optind]);
    /* --quick sets defaults; options given explicitly win. */
    if (!have_sizes) {
        static const uint32_t full[] = {5, 16, 32, 64};
        g->n_sizes = g->quick ? 1 : 4;
        for (uint32_t i = 0; i < g->n_sizes; i++)
            g->sizes[i] = full[i];
    }
    if (!have_runs)
        g->runs = g->quick ? 1 : 3;
    if (!have_systems) {
        g->want[BENCH_GSYS_WARREN] = true;
        g->want[BENCH_GSYS_SERF] = !g->quick;
    }
    if (!have_idle)
        g->idle_secs = g->quick ? 3 : 0;
    return 0;
}

/* ---- tools, identity, ports ---- */

/* Runs a short command to completion (warrenctl, serf version); 0 or -1. */
static int cmd_gossip_run_tool(char *const argv[], const char *log, const char *out)
{
    pid_t pid = bench_spawn(argv, log, out);
    if (pid < 0)
        return -1;
    int st = bench_wait(pid, 30000);
    if (st == -1) {
        bench_stop(pid, 1000);
        bench_err("%s did not finish in 30 s", argv[0]);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        bench_err("%s %s failed (status %d)", argv[0], argv[1] != NULL ? argv[1] : "", st);
        bench_dump_log(argv[0], log, 2000);
        return -1;
    }
    return 0;
}

/* First line of "serf version", for the report. */
static void cmd_gossip_serf_version(struct bench_gossip *g)
{
    char log[PATH_MAX], out[PATH_MAX];
    snprintf(g->serf_version, sizeof(g->serf_version), "unknown version");
    if (!bench_path_join(log, sizeof(log), g->tmp, "serf-version.log") ||
        !bench_path_join(out, sizeof(out), g->tmp, "serf-version.txt"))
        return;
    char *argv[] = {g->serf_bin, "version", NULL};
    if (cmd_gossip_run_tool(argv, log, out) != 0)
        return;
    FILE *f = fopen(out, "re");
    if (f == NULL)
        return;
    char line[128];
    if (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(g->serf_version, sizeof(g->serf_version), "%.60s", line);
    }
    fclose(f);
}

/* Checks warren's binaries, finds serf and iptables. */
static int cmd_gossip_find_tools(struct bench_gossip *g)
{
    const char *mine[] = {g->node_bin, g->ctl_bin};
    for (size_t i = 0; i < 2; i++) {
        if (!bench_file_is_exec(mine[i])) {
            bench_err("%s: not found or not executable (build it, or pass --node-bin/--ctl-bin)",
                      mine[i]);
            return BENCH_EXIT_USAGE;
        }
    }
    if (g->want[BENCH_GSYS_SERF]) {
        bool have = g->serf_bin[0] != '\0' ? bench_file_is_exec(g->serf_bin)
                                           : bench_which("serf", g->serf_bin, sizeof(g->serf_bin));
        if (!have) {
            bench_gossip_note(g, "serf is not installed (apt-get install serf, or tools/deps.sh "
                                 "bench): warren only");
            g->want[BENCH_GSYS_SERF] = false;
        }
    }
    bool ipt = bench_which("iptables", g->ipt_bin, sizeof(g->ipt_bin));
    g->ipt_ok = ipt && geteuid() == 0;
    if (!g->ipt_ok)
        bench_gossip_note(g, "idle wire bytes not measured: iptables counters need root and "
                             "iptables (warren's own payload counter is still read)");
    return 0;
}

static int cmd_gossip_identity(struct bench_gossip *g)
{
    char log[PATH_MAX];
    if (!bench_path_join(g->ca_dir, sizeof(g->ca_dir), g->tmp, "ca") ||
        !bench_path_join(g->ca_crt, sizeof(g->ca_crt), g->ca_dir, "ca.crt") ||
        !bench_path_join(g->node_crt, sizeof(g->node_crt), g->tmp, "node.crt") ||
        !bench_path_join(g->node_key, sizeof(g->node_key), g->tmp, "node.key") ||
        !bench_path_join(g->cluster_key, sizeof(g->cluster_key), g->tmp, "cluster.key") ||
        !bench_path_join(log, sizeof(log), g->tmp, "warrenctl.log"))
        return -1;
    /* One certificate serves every member: a node's gossip id is --node-id. */
    char *ca[] = {g->ctl_bin, "ca", "init", "--dir", g->ca_dir, "--cluster", "bench", NULL};
    char *cert[] = {g->ctl_bin,   "cert",       "issue",     "--ca-dir",  g->ca_dir,   "--node-id",
                    "bench-node", "--out-cert", g->node_crt, "--out-key", g->node_key, NULL};
    char *key[] = {g->ctl_bin, "keyring", "generate", "--out", g->cluster_key, NULL};
    if (cmd_gossip_run_tool(ca, log, NULL) != 0 || cmd_gossip_run_tool(cert, log, NULL) != 0 ||
        cmd_gossip_run_tool(key, log, NULL) != 0)
        return -1;
    return 0;
}

/*
 * Serf gets the same 32-byte key as warren (both clusters encrypt). warrenctl
 * writes it in URL-safe base64 without padding; serf -encrypt wants standard
 * base64 with padding.
 */
static int cmd_gossip_serf_key(struct bench_gossip *g)
{
    FILE *f = fopen(g->cluster_key, "re");
    if (f == NULL)
        return -1;
    char buf[128] = "";
    bool got = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    size_t len = got ? strcspn(buf, " \t\r\n") : 0;
    if (len < 43 || len > 44)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '-')
            buf[i] = '+';
        else if (buf[i] == '_')
            buf[i] = '/';
    }
    while (len % 4 != 0)
        buf[len++] = '=';
    buf[len] = '\0';
    snprintf(g->serf_key, sizeof(g->serf_key), "%.48s", buf); /* len <= 44, padded to 48 */
    return 0;
}

/* True when 127.0.0.1:<port> can be bound for both TCP and UDP right now. */
static bool cmd_gossip_port_free(uint16_t port)
{
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM};
    for (size_t t = 0; t < 2; t++) {
        int fd = socket(AF_INET, types[t] | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (!ok)
            return false;
    }
    return true;
}

/*
 * Fixed ports, so that members can be polled without reading ready files and
 * so that iptables can count each cluster by port range. Below the kernel's
 * ephemeral range (32768 and up by default), so no outgoing connection takes
 * one of them during the run.
 */
static int cmd_gossip_ports_pick(struct bench_gossip *g)
{
    for (uint32_t base = 20000; base + BENCH_G_PORTS <= 32000; base += BENCH_G_PORTS) {
        bool ok = true;
        for (uint32_t p = 0; p < BENCH_G_PORTS && ok; p++)
            ok = cmd_gossip_port_free((uint16_t)(base + p));
        if (ok) {
            g->port_base = (uint16_t)base;
            return 0;
        }
    }
    return -1;
}

/* ---- one cluster ---- */

struct cmd_gossip_member {
    pid_t pid;    /* 0 when not running */
    int fd;       /* the view connection, -1 when closed */
    uint64_t seq; /* serf RPC request counter */
    bool up;      /* running and not leaving: the others should hold it alive */
    int starts;   /* for log names */
};

struct cmd_gossip_cluster {
    struct bench_gossip *g;
    enum bench_gsys sys;
    uint32_t n;
    uint32_t run;
    struct cmd_gossip_member m[BENCH_G_MAX_N];
    int subject; /* the member under test, which the false-positive check skips */
    bool fp_seen[BENCH_G_MAX_N][BENCH_G_MAX_N];
    int false_dead;
    uint64_t poll_rounds, poll_us; /* rounds of cmd_gossip_wait() and their time */
};

static void cmd_gossip_cluster_init(struct cmd_gossip_cluster *c, struct bench_gossip *g,
                                    enum bench_gsys sys, uint32_t n, uint32_t run)
{
    memset(c, 0, sizeof(*c));
    c->g = g;
    c->sys = sys;
    c->n = n;
    c->run = run;
    c->subject = -1;
    for (uint32_t i = 0; i < BENCH_G_MAX_N; i++)
        c->m[i].fd = -1;
}

static bool cmd_gossip_member_path(const struct cmd_gossip_cluster *c, uint32_t i, const char *ext,
                                   char *out, size_t len)
{
    char name[96];
    snprintf(name, sizeof(name), "%s-n%u-r%u-%s%u-%d.%s", cmd_gossip_sys_name[c->sys], c->n,
             c->run + 1, cmd_gossip_prefix[c->sys], i, c->m[i].starts, ext);
    return bench_path_join(out, len, c->g->tmp, name);
}

/* warren-node for member <i>; <ready> only for the seed. */
static pid_t cmd_gossip_spawn_warren(struct cmd_gossip_cluster *c, uint32_t i, const char *log,
                                     const char *ready)
{
    struct bench_gossip *g = c->g;
    char id[16], gossip[32], admin[32], join[32];
    snprintf(id, sizeof(id), "w%u", i);
    snprintf(gossip, sizeof(gossip), "127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_WARREN, false, i));
    snprintf(admin, sizeof(admin), "127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_WARREN, true, i));
    snprintf(join, sizeof(join), "127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_WARREN, false, 0));
    char *argv[32];
    int n = 0;
    argv[n++] = g->node_bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--cert";
    argv[n++] = g->node_crt;
    argv[n++] = "--key";
    argv[n++] = g->node_key;
    argv[n++] = "--ca";
    argv[n++] = g->ca_crt;
    argv[n++] = "--node-id";
    argv[n++] = id;
    argv[n++] = "--cluster-key";
    argv[n++] = g->cluster_key;
    argv[n++] = "--gossip-addr";
    argv[n++] = gossip;
    argv[n++] = "--admin-addr";
    argv[n++] = admin;
    argv[n++] = "--drain-timeout";
    argv[n++] = "1s";
    argv[n++] = "--peer-addr"; /* many nodes on one host: not the default port */
    argv[n++] = "127.0.0.1:0";
    if (i > 0) {
        argv[n++] = "--join";
        argv[n++] = join;
    }
    if (ready != NULL) {
        argv[n++] = "--ready-file";
        argv[n++] = (char *)ready;
    }
    argv[n] = NULL;
    return bench_spawn(argv, log, NULL);
}

/* serf agent for member <i>, with Serf's defaults (LAN profile). */
static pid_t cmd_gossip_spawn_serf(struct cmd_gossip_cluster *c, uint32_t i, const char *log)
{
    struct bench_gossip *g = c->g;
    char node[24], bind[40], rpc[40], join[40], enc[80];
    snprintf(node, sizeof(node), "-node=s%u", i);
    snprintf(bind, sizeof(bind), "-bind=127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_SERF, false, i));
    snprintf(rpc, sizeof(rpc), "-rpc-addr=127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_SERF, true, i));
    snprintf(join, sizeof(join), "-join=127.0.0.1:%u",
             (unsigned)bench_gossip_port(g, BENCH_GSYS_SERF, false, 0));
    snprintf(enc, sizeof(enc), "-encrypt=%s", g->serf_key);
    char *argv[] = {g->serf_bin,         "agent", node, bind, rpc, enc, "-log-level=info",
                    i > 0 ? join : NULL, NULL};
    return bench_spawn(argv, log, NULL);
}

/* Starts member <i>; a warren seed also gets a ready file (see cmd_gossip_seed_start). */
static int cmd_gossip_spawn(struct cmd_gossip_cluster *c, uint32_t i, bool ready_file)
{
    struct cmd_gossip_member *m = &c->m[i];
    m->starts++;
    char log[PATH_MAX], ready[PATH_MAX];
    if (!cmd_gossip_member_path(c, i, "log", log, sizeof(log)) ||
        !cmd_gossip_member_path(c, i, "ready", ready, sizeof(ready)))
        return -1;
    pid_t pid = c->sys == BENCH_GSYS_WARREN
                    ? cmd_gossip_spawn_warren(c, i, log, ready_file ? ready : NULL)
                    : cmd_gossip_spawn_serf(c, i, log);
    if (pid < 0)
        return -1;
    m->pid = pid;
    m->up = true;
    return 0;
}

static void cmd_gossip_disconnect(struct cmd_gossip_member *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}

/*
 * Member <i>'s view. The connection is kept between polls; the admin API
 * closes idle ones after 10 s and a restarted member has a new listener, so a
 * failure on a kept connection is retried once on a fresh one.
 */
static int cmd_gossip_view(struct cmd_gossip_cluster *c, uint32_t i, struct bench_gview *v)
{
    struct cmd_gossip_member *m = &c->m[i];
    const char *prefix = cmd_gossip_prefix[c->sys];
    uint16_t port = bench_gossip_port(c->g, c->sys, true, i);
    int err = -EIO;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = m->fd < 0;
        if (fresh) {
            m->fd = c->sys == BENCH_GSYS_WARREN
                        ? bench_gnet_dial(port, CMD_GOSSIP_DIAL_MS)
                        : bench_serf_dial(port, CMD_GOSSIP_DIAL_MS, &m->seq);
            if (m->fd < 0) {
                err = m->fd;
                m->fd = -1;
                return err;
            }
        }
        err = c->sys == BENCH_GSYS_WARREN ? bench_warren_members(m->fd, prefix, c->n, v)
                                          : bench_serf_members(m->fd, &m->seq, prefix, c->n, v);
        if (err == 0)
            return 0;
        cmd_gossip_disconnect(m);
        if (fresh)
            break;
    }
    return err;
}

/* What a wait is for: every member alive (subject -1), or <subject> in state <want>. */
struct cmd_gossip_goal {
    const char *what;
    int subject;
    enum bench_gstate want;
    uint32_t timeout_ms;
    double *answered_ms; /* when given: ms until every member had answered once */
};

static bool cmd_gossip_goal_met(const struct cmd_gossip_cluster *c,
                                const struct cmd_gossip_goal *goal, const struct bench_gview *v)
{
    if (goal->subject >= 0)
        return v->st[goal->subject] == goal->want;
    for (uint32_t j = 0; j < c->n; j++)
        if (v->st[j] != BENCH_GS_ALIVE)
            return false;
    return true;
}

/* Counts members that run, are not under test, and that observer <i> holds
 * dead: a false positive, once per (observer, member) and run. */
static void cmd_gossip_check_false(struct cmd_gossip_cluster *c, uint32_t i,
                                   const struct bench_gview *v)
{
    for (uint32_t j = 0; j < c->n; j++) {
        if ((int)j == c->subject || !c->m[j].up || v->st[j] != BENCH_GS_DEAD || c->fp_seen[i][j])
            continue;
        c->fp_seen[i][j] = true;
        c->false_dead++;
        bench_note("%s N=%u: %s%u holds %s%u dead while it runs (false positive)",
                   cmd_gossip_sys_name[c->sys], c->n, cmd_gossip_prefix[c->sys], i,
                   cmd_gossip_prefix[c->sys], j);
    }
}

/* A member whose view cannot be read may have exited: then stop waiting for it. */
static bool cmd_gossip_member_lost(struct cmd_gossip_cluster *c, uint32_t i)
{
    struct cmd_gossip_member *m = &c->m[i];
    if (bench_is_alive(m->pid))
        return false;
    bench_err("%s N=%u run %u: %s%u exited unexpectedly", cmd_gossip_sys_name[c->sys], c->n,
              c->run + 1, cmd_gossip_prefix[c->sys], i);
    m->pid = 0;
    m->up = false;
    cmd_gossip_disconnect(m);
    return true;
}

/*
 * Polls the views of the running members other than the subject, each until it
 * meets <goal>, in rounds of at least CMD_GOSSIP_POLL_MS. Returns the ms from
 * <t0_us> to the reply in which the last of them met it (the resolution is
 * one round: about 1 ms per warren member, less for serf), or -1 on timeout,
 * interruption or a member lost.
 */
static double cmd_gossip_wait(struct cmd_gossip_cluster *c, const struct cmd_gossip_goal *goal,
                              uint64_t t0_us)
{
    bool done[BENCH_G_MAX_N], answered[BENCH_G_MAX_N];
    uint32_t pending = 0;
    for (uint32_t j = 0; j < c->n; j++) {
        done[j] = !c->m[j].up || (int)j == goal->subject;
        answered[j] = done[j];
        pending += !done[j];
    }
    uint32_t silent = pending; /* members that have not answered yet */
    uint64_t last = t0_us, last_answer = t0_us;
    uint64_t end = t0_us + (uint64_t)goal->timeout_ms * 1000;
    bool lost = false;
    while (pending > 0 && !bench_interrupted()) {
        uint64_t round = bench_now_us();
        for (uint32_t j = 0; j < c->n && !bench_interrupted(); j++) {
            if (done[j])
                continue;
            struct bench_gview v;
            if (cmd_gossip_view(c, j, &v) != 0) {
                if (cmd_gossip_member_lost(c, j)) {
                    done[j] = lost = true;
                    pending--;
                }
                continue;
            }
            uint64_t now = bench_now_us();
            if (!answered[j]) {
                answered[j] = true;
                silent--;
                last_answer = now;
            }
            cmd_gossip_check_false(c, j, &v);
            if (cmd_gossip_goal_met(c, goal, &v)) {
                done[j] = true;
                pending--;
                last = now;
            }
        }
        uint64_t now = bench_now_us();
        if (pending == 0 || now >= end)
            break;
        if (now - round < CMD_GOSSIP_POLL_MS * 1000)
            bench_sleep_ms((uint32_t)((CMD_GOSSIP_POLL_MS * 1000 - (now - round)) / 1000) + 1);
        c->poll_rounds++;
        c->poll_us += bench_now_us() - round;
    }
    if (pending > 0 && !bench_interrupted())
        bench_err("%s N=%u run %u: %s: %u of the members still waiting after %u s",
                  cmd_gossip_sys_name[c->sys], c->n, c->run + 1, goal->what, pending,
                  goal->timeout_ms / 1000);
    if (goal->answered_ms != NULL && silent == 0)
        *goal->answered_ms = (double)(last_answer - t0_us) / 1000.0;
    if (pending > 0 || lost)
        return -1;
    return (double)(last - t0_us) / 1000.0;
}

/* Sleeps <ms> in short steps, so that Ctrl-C is honoured, against a deadline
 * so that the idle window is its length to the millisecond. */
static void cmd_gossip_pause(uint32_t ms)
{
    uint64_t end = bench_now_us() + (uint64_t)ms * 1000;
    for (int i = 0; i < 100000 && !bench_interrupted(); i++) {
        uint64_t now = bench_now_us();
        if (now >= end)
            break;
        uint64_t left_ms = (end - now + 999) / 1000;
        bench_sleep_ms(left_ms < 100 ? (uint32_t)left_ms : 100);
    }
}

/* Starts member 0 and waits until it serves: warren's ready file, serf's RPC. */
static int cmd_gossip_seed_start(struct cmd_gossip_cluster *c)
{
    char ready[PATH_MAX], log[PATH_MAX];
    if (cmd_gossip_spawn(c, 0, c->sys == BENCH_GSYS_WARREN) != 0 ||
        !cmd_gossip_member_path(c, 0, "ready", ready, sizeof(ready)) ||
        !cmd_gossip_member_path(c, 0, "log", log, sizeof(log)))
        return -1;
    bool ok = false;
    if (c->sys == BENCH_GSYS_WARREN) {
        ok = bench_wait_file(ready, CMD_GOSSIP_START_MS);
    } else {
        uint64_t end = bench_now_us() + (uint64_t)CMD_GOSSIP_START_MS * 1000;
        uint16_t port = bench_gossip_port(c->g, c->sys, true, 0);
        while (!ok && !bench_interrupted() && bench_now_us() < end && bench_is_alive(c->m[0].pid)) {
            int fd = bench_serf_dial(port, CMD_GOSSIP_DIAL_MS, &c->m[0].seq);
            ok = fd >= 0;
            if (ok)
                c->m[0].fd = fd;
            else
                bench_sleep_ms(20);
        }
    }
    if (!ok) {
        bench_err("%s N=%u: the seed did not start within %u s", cmd_gossip_sys_name[c->sys], c->n,
                  CMD_GOSSIP_START_MS / 1000);
        bench_dump_log("seed", log, 3000);
        return -1;
    }
    return 0;
}

/* kill -9 of member <i>, reaped at once; its view connection is closed first. */
static void cmd_gossip_kill9(struct cmd_gossip_cluster *c, uint32_t i)
{
    struct cmd_gossip_member *m = &c->m[i];
    cmd_gossip_disconnect(m);
    m->up = false;
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGKILL);
    if (bench_wait(m->pid, 5000) == -1)
        bench_err("pid %d did not exit after SIGKILL", (int)m->pid);
    m->pid = 0;
}

static void cmd_gossip_teardown(struct cmd_gossip_cluster *c)
{
    /* SIGKILL: a graceful leave of every member would only cost time here.
     * All signals first, then the reaping, so that it takes one exit time. */
    for (uint32_t i = 0; i < c->n; i++) {
        cmd_gossip_disconnect(&c->m[i]);
        if (c->m[i].pid > 0)
            kill(c->m[i].pid, SIGKILL);
    }
    for (uint32_t i = 0; i < c->n; i++)
        cmd_gossip_kill9(c, i);
}

static int cmd_gossip_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The sum of warren's gossip bytes_out over the running members, or -1. */
static double cmd_gossip_warren_bytes_out(struct cmd_gossip_cluster *c)
{
    double sum = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        struct cmd_gossip_member *m = &c->m[i];
        double v = 0;
        int err = -EIO;
        for (int attempt = 0; attempt < 2 && err != 0; attempt++) {
            if (m->fd < 0)
                m->fd =
                    bench_gnet_dial(bench_gossip_port(c->g, c->sys, true, i), CMD_GOSSIP_DIAL_MS);
            if (m->fd < 0) {
                m->fd = -1;
                break;
            }
            err = bench_warren_metric(m->fd, "warren_gossip_bytes_total{direction=\"out\"}", &v);
            if (err != 0)
                cmd_gossip_disconnect(m);
        }
        if (err != 0)
            return -1;
        sum += v;
    }
    return sum;
}

/*
 * Idle traffic and memory of a converged cluster, once per size: after the
 * join's push/pulls are over, counts what the gossip ports send during a
 * window of one push/pull period (so that each member's periodic push/pull
 * falls in it about once), with no polling, then reads every member's RSS.
 */
static void cmd_gossip_idle(struct cmd_gossip_cluster *c, struct bench_gsize *sz)
{
    struct bench_gossip *g = c->g;
    uint32_t secs = g->idle_secs != 0 ? g->idle_secs : (c->n > 32 ? 60 : 30);
    bench_note("%s N=%u: idle for %u s (traffic and RSS)", cmd_gossip_sys_name[c->sys], c->n, secs);
    cmd_gossip_pause(CMD_GOSSIP_IDLE_SETTLE_MS);
    bool warren = c->sys == BENCH_GSYS_WARREN;
    struct bench_ipt_count before[BENCH_GSYS__COUNT], after[BENCH_GSYS__COUNT];
    uint64_t tp0 = bench_now_us();
    double out0 = warren ? cmd_gossip_warren_bytes_out(c) : -1;
    uint64_t tp1 = bench_now_us();
    bool ipt = g->ipt_chain[0] != '\0' && bench_ipt_read(g, before, BENCH_GSYS__COUNT) == 0;
    uint64_t t0 = bench_now_us();
    cmd_gossip_pause(secs * 1000);
    if (bench_interrupted())
        return;
    uint64_t t1 = bench_now_us();
    ipt = ipt && bench_ipt_read(g, after, BENCH_GSYS__COUNT) == 0;
    uint64_t tp2 = bench_now_us();
    double out1 = warren ? cmd_gossip_warren_bytes_out(c) : -1;
    uint64_t tp3 = bench_now_us();
    sz->idle_secs = (double)(t1 - t0) / 1e6;
    if (ipt) {
        const struct bench_ipt_count *b = &before[c->sys], *a = &after[c->sys];
        sz->idle_wire_bps = (double)(a->bytes - b->bytes) / c->n / sz->idle_secs;
        sz->idle_pkts_ps = (double)(a->pkts - b->pkts) / c->n / sz->idle_secs;
    }
    if (out0 >= 0 && out1 >= out0) {
        /* The metric reads take a while at N = 64: time them by their midpoints. */
        double w = (double)((tp2 + tp3) / 2 - (tp0 + tp1) / 2) / 1e6;
        sz->idle_payload_bps = (out1 - out0) / c->n / w;
    }
    double rss[BENCH_G_MAX_N];
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        long r = c->m[i].pid > 0 ? bench_proc_rss_kib(c->m[i].pid) : -1;
        if (r > 0)
            rss[k++] = (double)r;
    }
    if (k > 0) {
        qsort(rss, k, sizeof(rss[0]), cmd_gossip_cmp_double);
        sz->rss_median_kib = k % 2 ? rss[k / 2] : (rss[k / 2 - 1] + rss[k / 2]) / 2;
        sz->rss_max_kib = rss[k - 1];
    }
}

/* Waits for a member that was told to leave to exit (serf may take its
 * broadcast timeout, 5 s); SIGKILL after 10 s. */
static void cmd_gossip_reap_leaver(struct cmd_gossip_cluster *c, uint32_t i)
{
    struct cmd_gossip_member *m = &c->m[i];
    if (m->pid > 0 && bench_wait(m->pid, 10000) == -1) {
        bench_err("%s%u did not exit 10 s after its leave signal; killing it",
                  cmd_gossip_prefix[c->sys], i);
        cmd_gossip_kill9(c, i);
    }
    m->pid = 0;
}

/* The timed scenarios of one run, on a cluster whose seed is up. */
static void cmd_gossip_scenarios(struct cmd_gossip_cluster *c, struct bench_gsize *sz,
                                 struct bench_grun *r)
{
    const char *sys = cmd_gossip_sys_name[c->sys];
    uint64_t t0 = bench_now_us();
    for (uint32_t i = 1; i < c->n; i++) {
        if (cmd_gossip_spawn(c, i, false) != 0) {
            bench_err("%s N=%u: cannot start member %u", sys, c->n, i);
            return;
        }
    }
    struct cmd_gossip_goal join = {"join", -1, BENCH_GS_ALIVE, CMD_GOSSIP_JOIN_MS, &r->start_ms};
    r->join_ms = cmd_gossip_wait(c, &join, t0);
    r->join_timeout = r->join_ms < 0 && !bench_interrupted();
    if (r->join_ms < 0)
        return;
    bench_note("%s N=%u run %u: join %.0f ms (every member answering after %.0f ms)", sys, c->n,
               c->run + 1, r->join_ms, r->start_ms);
    if (c->run == 0)
        cmd_gossip_idle(c, sz);
    else
        cmd_gossip_pause(CMD_GOSSIP_SETTLE_MS);

    /* Failure: the last member, never the seed. */
    uint32_t victim = c->n - 1;
    c->subject = (int)victim;
    t0 = bench_now_us();
    cmd_gossip_kill9(c, victim);
    struct cmd_gossip_goal fail = {"failure detection", (int)victim, BENCH_GS_DEAD,
                                   CMD_GOSSIP_FAIL_MS, NULL};
    r->fail_ms = cmd_gossip_wait(c, &fail, t0);
    r->fail_timeout = r->fail_ms < 0 && !bench_interrupted();
    if (r->fail_ms < 0)
        return;

    /* Recovery: the same member (id, ports) started again, joining the seed. */
    t0 = bench_now_us();
    if (cmd_gossip_spawn(c, victim, false) != 0)
        return;
    struct cmd_gossip_goal rejoin = {"rejoin", (int)victim, BENCH_GS_ALIVE, CMD_GOSSIP_REJOIN_MS,
                                     NULL};
    r->rejoin_ms = cmd_gossip_wait(c, &rejoin, t0);
    r->rejoin_timeout = r->rejoin_ms < 0 && !bench_interrupted();
    if (r->rejoin_ms < 0)
        return;
    cmd_gossip_pause(CMD_GOSSIP_SETTLE_MS);

    /* Leave: SIGTERM is warren-node's graceful leave; serf's is SIGINT (on
     * SIGTERM it shuts down without leaving unless leave_on_terminate). */
    uint32_t leaver = c->n - 2;
    c->subject = (int)leaver;
    struct cmd_gossip_member *m = &c->m[leaver];
    cmd_gossip_disconnect(m);
    m->up = false;
    if (m->pid <= 0)
        return; /* lost earlier (reported); never kill(0, ...) */
    t0 = bench_now_us();
    kill(m->pid, c->sys == BENCH_GSYS_WARREN ? SIGTERM : SIGINT);
    struct cmd_gossip_goal leave = {"leave", (int)leaver, BENCH_GS_LEFT, CMD_GOSSIP_LEAVE_MS, NULL};
    r->leave_ms = cmd_gossip_wait(c, &leave, t0);
    r->leave_timeout = r->leave_ms < 0 && !bench_interrupted();
    cmd_gossip_reap_leaver(c, leaver);
    bench_note("%s N=%u run %u: failure %.2f s, rejoin %.0f ms, leave %.0f ms", sys, c->n,
               c->run + 1, r->fail_ms / 1000, r->rejoin_ms, r->leave_ms);
}

/* One run of one system at one size; returns false when it failed. */
static bool cmd_gossip_run_once(struct bench_gossip *g, enum bench_gsys sys, struct bench_gsize *sz,
                                uint32_t run)
{
    struct cmd_gossip_cluster *c = malloc(sizeof(*c));
    if (c == NULL)
        return false;
    cmd_gossip_cluster_init(c, g, sys, sz->n, run);
    struct bench_grun *r = &sz->runs[run];
    *r = (struct bench_grun){
        .start_ms = -1, .join_ms = -1, .fail_ms = -1, .rejoin_ms = -1, .leave_ms = -1};
    sz->n_runs = run + 1;
    bench_note("%s N=%u run %u/%u", cmd_gossip_sys_name[sys], sz->n, run + 1, g->runs);
    if (cmd_gossip_seed_start(c) == 0)
        cmd_gossip_scenarios(c, sz, r);
    r->false_dead = c->false_dead;
    sz->poll_rounds += c->poll_rounds;
    sz->poll_us += c->poll_us;
    cmd_gossip_teardown(c);
    free(c);
    bool ok = r->join_ms >= 0 && r->fail_ms >= 0 && r->rejoin_ms >= 0 && r->leave_ms >= 0 &&
              r->false_dead == 0;
    if (!ok && !bench_interrupted() && sz->note[0] == '\0')
        snprintf(sz->note, sizeof(sz->note), "run %u: %s", run + 1,
                 r->join_ms < 0     ? "join did not converge"
                 : r->fail_ms < 0   ? "failure not detected by all"
                 : r->rejoin_ms < 0 ? "restarted member not seen alive by all"
                 : r->leave_ms < 0  ? "leave not seen by all"
                                    : "false positives");
    return ok;
}

/*
 * The baseline for gossip's share of memory: the same warren-node, idle,
 * without --cluster-key. Its admin API is asked for /v1/members a few times,
 * as the cluster's members are, so both have touched the same paths.
 */
static void cmd_gossip_baseline(struct bench_gossip *g)
{
    char ready[PATH_MAX], log[PATH_MAX], admin[32];
    if (!bench_path_join(ready, sizeof(ready), g->tmp, "baseline.ready") ||
        !bench_path_join(log, sizeof(log), g->tmp, "baseline.log"))
        return;
    uint16_t port = bench_gossip_port(g, BENCH_GSYS_WARREN, true, 0);
    snprintf(admin, sizeof(admin), "127.0.0.1:%u", (unsigned)port);
    char *argv[] = {
        g->node_bin, "--listen",     "127.0.0.1:0", "--cert",          g->node_crt, "--key",
        g->node_key, "--ca",         g->ca_crt,     "--node-id",       "w0",        "--admin-addr",
        admin,       "--ready-file", ready,         "--drain-timeout", "1s",        NULL};
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0)
        return;
    if (bench_wait_file(ready, CMD_GOSSIP_START_MS)) {
        int fd = bench_gnet_dial(port, CMD_GOSSIP_DIAL_MS);
        struct bench_gview v;
        for (int i = 0; i < 20 && fd >= 0; i++)
            if (bench_warren_members(fd, "w", 1, &v) != 0)
                break;
        if (fd >= 0)
            close(fd);
        cmd_gossip_pause(3000);
        g->baseline_rss_kib = bench_proc_rss_kib(pid);
    } else {
        bench_err("warren-node without gossip did not start");
        bench_dump_log("warren-node", log, 3000);
    }
    bench_stop(pid, 3000);
}

static void cmd_gossip_all(struct bench_gossip *g)
{
    if (g->want[BENCH_GSYS_WARREN] && !bench_interrupted()) {
        bench_note("warren-node without gossip: baseline RSS");
        cmd_gossip_baseline(g);
    }
    for (uint32_t s = 0; s < g->n_sizes && !bench_interrupted(); s++) {
        for (int sys = 0; sys < BENCH_GSYS__COUNT; sys++) {
            g->res[sys][s] = (struct bench_gsize){.n = g->sizes[s],
                                                  .measured = g->want[sys],
                                                  .idle_secs = -1,
                                                  .idle_wire_bps = -1,
                                                  .idle_pkts_ps = -1,
                                                  .idle_payload_bps = -1,
                                                  .rss_median_kib = -1,
                                                  .rss_max_kib = -1};
        }
        /* Runs interleaved (warren, serf, warren, ...) so that both systems
         * see the same machine over time. */
        for (uint32_t run = 0; run < g->runs && !bench_interrupted(); run++) {
            for (int sys = 0; sys < BENCH_GSYS__COUNT && !bench_interrupted(); sys++) {
                if (!g->want[sys])
                    continue;
                if (!cmd_gossip_run_once(g, (enum bench_gsys)sys, &g->res[sys][s], run))
                    g->failures++;
                cmd_gossip_pause(1000);
            }
        }
    }
}

static int cmd_gossip_prepare(struct bench_gossip *g)
{
    int err = bench_tmpdir_make(g->tmp, sizeof(g->tmp));
    if (err != 0) {
        bench_err("cannot create a temp dir: %s", strerror(-err));
        g->tmp[0] = '\0';
        return -1;
    }
    if (cmd_gossip_identity(g) != 0) {
        bench_err("warrenctl could not make the CA, certificate and cluster key");
        return -1;
    }
    if (cmd_gossip_serf_key(g) != 0) {
        bench_err("cannot read the cluster key %s", g->cluster_key);
        return -1;
    }
    if (g->want[BENCH_GSYS_SERF])
        cmd_gossip_serf_version(g);
    if (cmd_gossip_ports_pick(g) != 0) {
        bench_err("no %d consecutive free ports between 20000 and 32000", BENCH_G_PORTS);
        return -1;
    }
    if (g->ipt_ok) {
        struct bench_ipt_range r[BENCH_GSYS__COUNT];
        for (int s = 0; s < BENCH_GSYS__COUNT; s++) {
            r[s].lo = bench_gossip_port(g, (enum bench_gsys)s, false, 0);
            r[s].hi = bench_gossip_port(g, (enum bench_gsys)s, false, BENCH_G_MAX_N - 1);
        }
        if (bench_ipt_start(g, r, BENCH_GSYS__COUNT) != 0) {
            g->ipt_ok = false;
            bench_gossip_note(g, "idle wire bytes not measured: the iptables rules could not "
                                 "be added");
        }
    }
    return 0;
}

static int cmd_gossip(int argc, char **argv)
{
    struct bench_gossip *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return BENCH_EXIT_FAILED;
    int rc = cmd_gossip_parse(g, argc, argv);
    if (rc == 0)
        rc = cmd_gossip_find_tools(g);
    if (rc != 0) {
        free(g);
        return rc < 0 ? BENCH_EXIT_OK : rc;
    }
    bench_set_quiet(false);
    bench_signals_install();
    bench_raise_nofile();
    bench_gossip_machine_read(g);
    if (cmd_gossip_prepare(g) == 0)
        cmd_gossip_all(g);
    else
        g->failures++;
    bench_ipt_stop(g);
    bench_stop_all();
    if (bench_interrupted()) {
        bench_err("interrupted; every process started was stopped");
        rc = 130;
    } else {
        if (g->json)
            bench_gossip_report_json(g, stdout);
        else
            bench_gossip_report_text(g, stdout);
        fflush(stdout);
        rc = g->failures > 0 ? BENCH_EXIT_FAILED : BENCH_EXIT_OK;
    }
    if (g->tmp[0] != '\0') {
        if (g->keep_tmp)
            fprintf(stderr, "warren-bench: logs kept in %s\n", g->tmp);
        else
            bench_tmpdir_remove(g->tmp);
    }
    free(g);
    return rc;
}

const struct bench_cmd cmd_gossip_entry = {
    .name = "gossip",
    .usage = cmd_gossip_usage,
    .description = cmd_gossip_help,
    .fn = cmd_gossip,
};
