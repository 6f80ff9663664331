/*
 * cmd_pool.c: "warren-bench pool". How fast an agent that knows only the
 * fleet's address comes to hold a tunnel to every node: N gossiping
 * warren-node processes behind a real HAProxy (mode tcp, roundrobin or
 * random), one warren-agent started with --proxy = HAProxy, time and dials
 * until its --metrics-file says it holds all N. Blind: nodes advertise no
 * direct address, every dial goes through HAProxy; targeted: nodes give
 * --advertise-tunnel-addr, the agent dials each one directly. Then, with
 * three agents holding every node: a node killed with -9 (time until every
 * agent has dropped it) and a node added (time from ALIVE in gossip until
 * every agent holds it). Loopback only; every process is stopped by PID.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_MAX_N 32
#define POOL_MAX_SIZES 6
#define POOL_MAX_RUNS 9
#define POOL_AGENTS 3 /* for the failure and new-node measurements */

enum { POOL_LB_RR = 0, POOL_LB_RANDOM, POOL_LB__COUNT };
enum { POOL_BLIND = 0, POOL_TARGETED, POOL_MODE__COUNT };
static const char *const pool_lb_names[POOL_LB__COUNT] = {"roundrobin", "random"};
/* "random(1)": one draw, uniform, the model of the coupon-collector figure.
 * HAProxy's plain "random" is random(2), the less loaded of two draws, which
 * steers new connections away from nodes the agent already holds. */
static const char *const pool_lb_balance[POOL_LB__COUNT] = {"roundrobin", "random(1)"};
static const char *const pool_mode_names[POOL_MODE__COUNT] = {"blind", "targeted"};

struct pool_node {
    pid_t pid;
    bool ports_set;
    uint16_t listen_port, admin_port, gossip_port;
    char id[16];
};

struct pool_result {
    double ms[POOL_MAX_RUNS];
    double dials[POOL_MAX_RUNS];
    uint32_t runs, failed;
};

struct pool_bench {
    char node_bin[PATH_MAX], agent_bin[PATH_MAX], ctl_bin[PATH_MAX], haproxy[PATH_MAX];
    char tmp[PATH_MAX];
    uint32_t sizes[POOL_MAX_SIZES], n_sizes, runs;
    bool json, quick;
    struct pool_node nodes[POOL_MAX_N + 1];
    uint32_t n_nodes;
    pid_t haproxy_pid;
    uint16_t lb_port;
    struct pool_result res[POOL_MAX_SIZES][POOL_LB__COUNT][POOL_MODE__COUNT];
    /* -1: not measured */
    double drop_ms[POOL_MAX_SIZES], hang_ms[POOL_MAX_SIZES], join_ms[POOL_MAX_SIZES];
    uint32_t keepalive_ms, ping_timeout_ms;
};

/* ---- small helpers ------------------------------------------------------------ */

static int pool_run_cmd(char *const argv[], const char *log)
{
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0)
        return -1;
    int st = bench_wait(pid, 30000);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (st == -1)
            bench_stop(pid, 1000);
        bench_err("%s %s failed", argv[0], argv[1] ? argv[1] : "");
        bench_dump_log(argv[0], log, 2000);
        return -1;
    }
    return 0;
}

/* "<tmp>/<name><suffix>" into <out> ("" when it does not fit). */
static void pool_path(const struct pool_bench *pb, char *out, size_t len, const char *base,
                      const char *suffix)
{
    char name[128];
    snprintf(name, sizeof(name), "%s%s", base, suffix);
    if (!bench_path_join(out, len, pb->tmp, name))
        out[0] = '\0';
}

/* GET <path> from 127.0.0.1:<port>; the body (NUL-terminated, malloc'd) or NULL. */
static char *pool_http_get(uint16_t port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char *out = NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        char req[256];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: bench\r\n\r\n", path);
        if (n > 0 && write(fd, req, (size_t)n) == n) {
            size_t cap = 65536, len = 0;
            out = malloc(cap);
            ssize_t r;
            while (out != NULL && len + 1 < cap && (r = read(fd, out + len, cap - len - 1)) > 0)
                len += (size_t)r;
            if (out != NULL)
                out[len] = '\0';
        }
    }
    close(fd);
    if (out == NULL)
        return NULL;
    char *body = strstr(out, "\r\n\r\n");
    if (body == NULL || strncmp(out, "HTTP/1.1 200", 12) != 0) {
        free(out);
        return NULL;
    }
    memmove(out, body + 4, strlen(body + 4) + 1);
    return out;
}

/* State of member <id> in the view of the node with admin <port>; "" if absent. */
static void pool_member_state(uint16_t port, const char *id, char *state, size_t len)
{
    state[0] = '\0';
    char *body = pool_http_get(port, "/v1/members");
    json_t *root = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m)
    {
        const char *mid = json_string_value(json_object_get(m, "id"));
        if (mid != NULL && strcmp(mid, id) == 0)
            snprintf(state, len, "%s", json_string_value(json_object_get(m, "state")) ?: "");
    }
    json_decref(root);
}

/* Members ALIVE in the view of the node with admin <port>; -1 if it did not answer. */
static int pool_alive_count(uint16_t port)
{
    char *body = pool_http_get(port, "/v1/members");
    json_t *root = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (root == NULL)
        return -1;
    int k = 0;
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m)
    {
        const char *st = json_string_value(json_object_get(m, "state"));
        k += st != NULL && strcmp(st, "ALIVE") == 0;
    }
    json_decref(root);
    return k;
}

/* A value from the agent's --metrics-file; -1 when absent. */
static double pool_metric(const char *file, const char *name)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return -1;
    char line[256];
    double v = -1;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
            v = strtod(line + nl + 1, NULL);
    fclose(f);
    return v;
}

static double pool_dials(const char *file)
{
    double d = 0;
    static const char *const k[] = {"warren_agent_dials_total{kind=\"direct\"}",
                                    "warren_agent_dials_total{kind=\"fleet\"}",
                                    "warren_agent_dials_total{kind=\"blind\"}"};
    for (size_t i = 0; i < 3; i++) {
        double v = pool_metric(file, k[i]);
        if (v > 0)
            d += v;
    }
    return d;
}

/* ---- the fleet ------------------------------------------------------------------ */

static int pool_identity(struct pool_bench *pb, uint32_t n)
{
    char log[PATH_MAX], ca[PATH_MAX], key[PATH_MAX], tok[PATH_MAX];
    pool_path(pb, log, sizeof(log), "warrenctl.log", "");
    pool_path(pb, ca, sizeof(ca), "ca", "");
    pool_path(pb, key, sizeof(key), "cluster.key", "");
    pool_path(pb, tok, sizeof(tok), "token", "");
    char *a1[] = {pb->ctl_bin, "ca", "init", "--dir", ca, "--cluster", "bench", NULL};
    char *a2[] = {pb->ctl_bin, "keyring", "generate", "--out", key, NULL};
    char *a3[] = {pb->ctl_bin, "token", "create", "--ca-dir", ca,  "--tunnel",
                  "t1",        "--ttl", "1h",     "--out",    tok, NULL};
    if (pool_run_cmd(a1, log) != 0 || pool_run_cmd(a2, log) != 0 || pool_run_cmd(a3, log) != 0)
        return -1;
    for (uint32_t i = 0; i <= n; i++) {
        char id[16], crt[PATH_MAX], k[PATH_MAX];
        snprintf(id, sizeof(id), "n%02u", i + 1);
        pool_path(pb, crt, sizeof(crt), id, ".crt");
        pool_path(pb, k, sizeof(k), id, ".key");
        char *a4[] = {pb->ctl_bin, "cert",       "issue", "--ca-dir",  ca, "--node-id",
                      id,          "--out-cert", crt,     "--out-key", k,  NULL};
        if (pool_run_cmd(a4, log) != 0)
            return -1;
    }
    return 0;
}

static int pool_node_start(struct pool_bench *pb, uint32_t i, bool targeted)
{
    struct pool_node *nd = &pb->nodes[i];
    snprintf(nd->id, sizeof(nd->id), "n%02u", i + 1);
    if (!nd->ports_set &&
        (bench_port_pick(&nd->listen_port) != 0 || bench_port_pick(&nd->admin_port) != 0 ||
         bench_port_pick(&nd->gossip_port) != 0))
        return -1;
    nd->ports_set = true;
    char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], ck[PATH_MAX], log[PATH_MAX];
    pool_path(pb, crt, sizeof(crt), nd->id, ".crt");
    pool_path(pb, key, sizeof(key), nd->id, ".key");
    pool_path(pb, ca, sizeof(ca), "ca/ca.crt", "");
    pool_path(pb, ck, sizeof(ck), "cluster.key", "");
    pool_path(pb, log, sizeof(log), nd->id, ".log");
    char listen[32], admin[32], gossip[32], join[32], adv[32], ping[16], pto[16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", nd->listen_port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%u", nd->admin_port);
    snprintf(gossip, sizeof(gossip), "127.0.0.1:%u", nd->gossip_port);
    snprintf(join, sizeof(join), "127.0.0.1:%u", pb->nodes[0].gossip_port);
    snprintf(adv, sizeof(adv), "127.0.0.1:%u", nd->listen_port);
    snprintf(ping, sizeof(ping), "%ums", pb->keepalive_ms);
    snprintf(pto, sizeof(pto), "%ums", pb->ping_timeout_ms);
    char *argv[32] = {
        pb->node_bin, "--listen",       listen,       "--cert",          crt,    "--key",
        key,          "--ca",           ca,           "--node-id",       nd->id, "--admin-addr",
        admin,        "--cluster-key",  ck,           "--gossip-addr",   gossip, "--ping-interval",
        ping,         "--ping-timeout", pto,          "--drain-timeout", "1s",   "--log-level",
        "warn",       "--peer-addr",    "127.0.0.1:0"}; /* many nodes: not the default port */
    int k = 0;
    while (argv[k] != NULL)
        k++;
    if (i > 0) {
        argv[k++] = "--join";
        argv[k++] = join;
    }
    if (targeted) {
        argv[k++] = "--advertise-tunnel-addr";
        argv[k++] = adv;
    }
    argv[k] = NULL;
    nd->pid = bench_spawn(argv, log, NULL);
    if (nd->pid < 0 || !bench_wait_port(nd->listen_port, 10000)) {
        bench_err("node %s did not start", nd->id);
        bench_dump_log(nd->id, log, 2000);
        return -1;
    }
    return 0;
}

static void pool_fleet_stop(struct pool_bench *pb)
{
    for (uint32_t i = POOL_MAX_N + 1; i-- > 0;) {
        if (pb->nodes[i].pid > 0) {
            kill(pb->nodes[i].pid, SIGCONT); /* a stopped node cannot handle SIGTERM */
            bench_stop(pb->nodes[i].pid, 3000);
        }
        pb->nodes[i].pid = 0;
        pb->nodes[i].ports_set = false;
    }
    pb->n_nodes = 0;
}

/* Waits until every running node sees <n> members ALIVE. */
static bool pool_fleet_converged(struct pool_bench *pb, uint32_t n, uint32_t timeout_ms)
{
    uint64_t end = bench_now_us() + (uint64_t)timeout_ms * 1000;
    while (bench_now_us() < end && !bench_interrupted()) {
        uint32_t ok = 0;
        for (uint32_t i = 0; i < pb->n_nodes; i++)
            if (pb->nodes[i].pid > 0 && pool_alive_count(pb->nodes[i].admin_port) == (int)n)
                ok++;
        if (ok == n)
            return true;
        bench_sleep_ms(20);
    }
    return false;
}

static int pool_fleet_start(struct pool_bench *pb, uint32_t n, bool targeted)
{
    pb->n_nodes = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (pool_node_start(pb, i, targeted) != 0)
            return -1;
        pb->n_nodes++;
    }
    if (!pool_fleet_converged(pb, n, 30000)) {
        bench_err("%u nodes did not converge in gossip", n);
        return -1;
    }
    return 0;
}

/* HAProxy over nodes [0, <n_servers>), in mode tcp. */
static int pool_lb_start(struct pool_bench *pb, int lb, uint32_t n_servers)
{
    char cfg[PATH_MAX], log[PATH_MAX];
    pool_path(pb, cfg, sizeof(cfg), "haproxy.cfg", "");
    pool_path(pb, log, sizeof(log), "haproxy.log", "");
    if (bench_port_pick(&pb->lb_port) != 0)
        return -1;
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "global\n    maxconn 8192\ndefaults\n    mode tcp\n    timeout connect 2s\n"
            "    timeout client 60s\n    timeout server 60s\n    retries 3\n"
            "    option redispatch\nlisten tunnel\n    bind 127.0.0.1:%u\n    balance %s\n",
            pb->lb_port, pool_lb_balance[lb]);
    for (uint32_t i = 0; i < n_servers; i++)
        fprintf(f, "    server s%u 127.0.0.1:%u\n", i, pb->nodes[i].listen_port);
    fclose(f);
    char *argv[] = {pb->haproxy, "-db", "-f", cfg, NULL};
    pb->haproxy_pid = bench_spawn(argv, log, NULL);
    if (pb->haproxy_pid < 0 || !bench_wait_port(pb->lb_port, 10000)) {
        bench_err("haproxy did not start");
        bench_dump_log("haproxy", log, 2000);
        return -1;
    }
    return 0;
}

static void pool_lb_stop(struct pool_bench *pb)
{
    if (pb->haproxy_pid > 0)
        bench_stop(pb->haproxy_pid, 2000);
    pb->haproxy_pid = 0;
}

static pid_t pool_agent_start(struct pool_bench *pb, const char *name, char *mfile, size_t len)
{
    char tok[PATH_MAX], ca[PATH_MAX], log[PATH_MAX], proxy[32], ping[16], pto[16];
    pool_path(pb, tok, sizeof(tok), "token", "");
    pool_path(pb, ca, sizeof(ca), "ca/ca.crt", "");
    pool_path(pb, log, sizeof(log), name, ".log");
    pool_path(pb, mfile, len, name, ".prom");
    unlink(mfile);
    snprintf(proxy, sizeof(proxy), "127.0.0.1:%u", pb->lb_port);
    snprintf(ping, sizeof(ping), "%ums", pb->keepalive_ms);
    snprintf(pto, sizeof(pto), "%ums", pb->ping_timeout_ms);
    char *argv[] = {pb->agent_bin,
                    "--proxy",
                    proxy,
                    "--tunnel",
                    "t1",
                    "--token",
                    tok,
                    "--ca",
                    ca,
                    "--agent-id",
                    (char *)name,
                    "--service",
                    "s=127.0.0.1:9",
                    "--metrics-file",
                    mfile,
                    "--ping-interval",
                    ping,
                    "--ping-timeout",
                    pto,
                    "--log-level",
                    "warn",
                    NULL};
    return bench_spawn(argv, log, NULL);
}

/* Waits until the agent's metrics say it holds <n> nodes; the elapsed ms
 * since <t0_us>, or -1 on timeout. */
static double pool_wait_held(const char *mfile, double n, uint64_t t0_us, uint32_t timeout_ms)
{
    uint64_t end = t0_us + (uint64_t)timeout_ms * 1000;
    while (bench_now_us() < end && !bench_interrupted()) {
        if (pool_metric(mfile, "warren_agent_nodes_held") == n &&
            pool_metric(mfile, "warren_agent_nodes_wanted") == n)
            return (double)(bench_now_us() - t0_us) / 1000.0;
        bench_sleep_ms(2);
    }
    return -1;
}

/* ---- measurements ------------------------------------------------------------- */

static void pool_convergence(struct pool_bench *pb, uint32_t si, uint32_t n, int lb, int mode)
{
    struct pool_result *r = &pb->res[si][lb][mode];
    for (uint32_t run = 0; run < pb->runs && !bench_interrupted(); run++) {
        char name[32], mfile[PATH_MAX];
        snprintf(name, sizeof(name), "conv-%u-%s-%s-%u", n, pool_lb_names[lb],
                 pool_mode_names[mode], run);
        uint64_t t0 = bench_now_us();
        pid_t a = pool_agent_start(pb, name, mfile, sizeof(mfile));
        if (a < 0) {
            r->failed++;
            continue;
        }
        double ms = pool_wait_held(mfile, n, t0, 20000);
        double dials = pool_dials(mfile);
        bench_stop(a, 3000);
        if (ms < 0) {
            r->failed++;
            bench_note("pool N=%u %s %s run %u: not converged in 20 s", n, pool_lb_names[lb],
                       pool_mode_names[mode], run);
            continue;
        }
        r->ms[r->runs] = ms;
        r->dials[r->runs] = dials;
        r->runs++;
    }
}

/* Waits until every agent's metrics say it holds <n>; the worst elapsed ms
 * since <t0_us>, or -1 when one did not within <timeout_ms>. */
static double pool_wait_all(char mfiles[][PATH_MAX], int k, double n, uint64_t t0_us,
                            uint32_t timeout_ms)
{
    double worst = 0;
    for (int i = 0; i < k; i++) {
        uint64_t end = t0_us + (uint64_t)timeout_ms * 1000;
        double ms = -1;
        while (bench_now_us() < end && !bench_interrupted()) {
            if (pool_metric(mfiles[i], "warren_agent_nodes_held") == n) {
                ms = (double)(bench_now_us() - t0_us) / 1000.0;
                break;
            }
            bench_sleep_ms(2);
        }
        if (ms < 0)
            return -1;
        worst = ms > worst ? ms : worst;
    }
    return worst;
}

/* With POOL_AGENTS agents holding every node behind HAProxy random: a node
 * joins (time from ALIVE in gossip until every agent holds it); it hangs
 * (SIGSTOP: only the keepalive can tell; time until every agent dropped it);
 * another node is killed with -9 (its sockets are reset by the kernel). The
 * LB lists the new node from the start, as an operator would before
 * starting it: its connections are refused until then, and HAProxy
 * redispatches them. */
static void pool_failures(struct pool_bench *pb, uint32_t si, uint32_t n)
{
    pb->drop_ms[si] = pb->hang_ms[si] = pb->join_ms[si] = -1;
    pid_t agents[POOL_AGENTS] = {0};
    char mfiles[POOL_AGENTS][PATH_MAX];
    pb->nodes[n].ports_set = false;
    if (pool_fleet_start(pb, n, false) != 0)
        goto out;
    snprintf(pb->nodes[n].id, sizeof(pb->nodes[n].id), "n%02u", n + 1);
    if (bench_port_pick(&pb->nodes[n].listen_port) != 0 ||
        bench_port_pick(&pb->nodes[n].admin_port) != 0 ||
        bench_port_pick(&pb->nodes[n].gossip_port) != 0)
        goto out;
    pb->nodes[n].ports_set = true;
    if (pool_lb_start(pb, POOL_LB_RANDOM, n + 1) != 0)
        goto out;
    for (int i = 0; i < POOL_AGENTS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "fail-%u-a%d", n, i);
        agents[i] = pool_agent_start(pb, name, mfiles[i], sizeof(mfiles[i]));
        if (agents[i] < 0)
            goto out;
    }
    if (pool_wait_all(mfiles, POOL_AGENTS, n, bench_now_us(), 30000) < 0) {
        bench_note("pool failures N=%u: agents did not converge", n);
        goto out;
    }
    /* A node joins. */
    if (pool_node_start(pb, n, false) != 0)
        goto out;
    pb->n_nodes++;
    uint64_t end = bench_now_us() + 20000000ULL, t_alive = 0;
    char st[16];
    while (bench_now_us() < end && !bench_interrupted()) {
        pool_member_state(pb->nodes[0].admin_port, pb->nodes[n].id, st, sizeof(st));
        if (strcmp(st, "ALIVE") == 0) {
            t_alive = bench_now_us();
            break;
        }
        bench_sleep_ms(2);
    }
    if (t_alive == 0)
        goto out;
    pb->join_ms[si] = pool_wait_all(mfiles, POOL_AGENTS, n + 1, t_alive, 20000);
    if (pb->join_ms[si] < 0)
        goto out;
    /* It hangs: only PINGs going unanswered can tell. */
    uint64_t t = bench_now_us();
    kill(pb->nodes[n].pid, SIGSTOP);
    pb->hang_ms[si] = pool_wait_all(mfiles, POOL_AGENTS, n, t, 4 * pb->ping_timeout_ms);
    kill(pb->nodes[n].pid, SIGKILL);
    bench_stop(pb->nodes[n].pid, 1000);
    pb->nodes[n].pid = 0;
    /* Another one crashes: the kernel resets its connections. */
    t = bench_now_us();
    kill(pb->nodes[n - 1].pid, SIGKILL);
    pb->drop_ms[si] = pool_wait_all(mfiles, POOL_AGENTS, n - 1, t, 4 * pb->ping_timeout_ms);
    bench_stop(pb->nodes[n - 1].pid, 1000);
    pb->nodes[n - 1].pid = 0;
out:
    for (int i = 0; i < POOL_AGENTS; i++)
        if (agents[i] > 0)
            bench_stop(agents[i], 3000);
    pool_lb_stop(pb);
    pool_fleet_stop(pb);
}

/* ---- report ---------------------------------------------------------------------- */

static int pool_dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pool_median(const double *v, uint32_t n, double *lo, double *hi)
{
    double s[POOL_MAX_RUNS];
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), pool_dcmp);
    *lo = s[0];
    *hi = s[n - 1];
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double pool_harmonic(uint32_t n)
{
    double h = 0;
    for (uint32_t i = 1; i <= n; i++)
        h += 1.0 / i;
    return h;
}

static void pool_report_text(const struct pool_bench *pb)
{
    printf("\npool convergence: agent start -> holds a tunnel to all N nodes (HAProxy mode tcp)\n"
           "median of %u run(s) [min-max]; dials = dials the agent started (incl. duplicates)\n\n",
           pb->runs);
    printf("%4s  %-10s  %-8s  %22s  %18s  %s\n", "N", "lb", "mode", "time ms", "dials",
           "expected dials");
    for (uint32_t si = 0; si < pb->n_sizes; si++) {
        uint32_t n = pb->sizes[si];
        for (int lb = 0; lb < POOL_LB__COUNT; lb++) {
            for (int mode = 0; mode < POOL_MODE__COUNT; mode++) {
                const struct pool_result *r = &pb->res[si][lb][mode];
                char exp[64];
                if (mode == POOL_TARGETED)
                    snprintf(exp, sizeof(exp), "%u (one per node)", n);
                else if (lb == POOL_LB_RANDOM)
                    snprintf(exp, sizeof(exp), "~%.0f (N*H(N))", n * pool_harmonic(n));
                else
                    snprintf(exp, sizeof(exp), "~%u", n);
                if (r->runs == 0) {
                    printf("%4u  %-10s  %-8s  %22s  %18s  %s\n", n, pool_lb_names[lb],
                           pool_mode_names[mode], "failed", "-", exp);
                    continue;
                }
                double lo, hi, dlo, dhi;
                double m = pool_median(r->ms, r->runs, &lo, &hi);
                double d = pool_median(r->dials, r->runs, &dlo, &dhi);
                char t[48], dd[48];
                snprintf(t, sizeof(t), "%.0f [%.0f-%.0f]", m, lo, hi);
                snprintf(dd, sizeof(dd), "%.0f [%.0f-%.0f]", d, dlo, dhi);
                printf("%4u  %-10s  %-8s  %22s  %18s  %s%s\n", n, pool_lb_names[lb],
                       pool_mode_names[mode], t, dd, exp, r->failed ? "  (some runs failed)" : "");
            }
        }
    }
    printf("\njoins and failures (%d agents, HAProxy random, blind; keepalive %u ms, timeout %u "
           "ms):\n",
           POOL_AGENTS, pb->keepalive_ms, pb->ping_timeout_ms);
    printf("%4s  %30s  %28s  %26s\n", "N", "ALIVE in gossip -> all hold",
           "hang (SIGSTOP) -> all drop", "kill -9 -> all drop");
    for (uint32_t si = 0; si < pb->n_sizes; si++) {
        char a[32] = "failed", b[32] = "failed", c[32] = "failed";
        if (pb->join_ms[si] >= 0)
            snprintf(a, sizeof(a), "%.0f ms", pb->join_ms[si]);
        if (pb->hang_ms[si] >= 0)
            snprintf(b, sizeof(b), "%.0f ms", pb->hang_ms[si]);
        if (pb->drop_ms[si] >= 0)
            snprintf(c, sizeof(c), "%.0f ms", pb->drop_ms[si]);
        printf("%4u  %30s  %28s  %26s\n", pb->sizes[si], a, b, c);
    }
    printf("\ntargets: N = 8 behind random fully connected <= 1000 ms; dead node dropped by every\n"
           "agent <= 3 x keepalive interval; new node reached by every agent <= 2000 ms after\n"
           "it is ALIVE in gossip\n");
    for (uint32_t si = 0; si < pb->n_sizes; si++) {
        if (pb->sizes[si] != 8)
            continue;
        for (int mode = 0; mode < POOL_MODE__COUNT; mode++) {
            const struct pool_result *r = &pb->res[si][POOL_LB_RANDOM][mode];
            double lo, hi, m = r->runs ? pool_median(r->ms, r->runs, &lo, &hi) : -1;
            printf("  N=8 random %-8s  %s (%.0f ms, worst %.0f)\n", pool_mode_names[mode],
                   r->runs && hi <= 1000 ? "met" : "missed", m, r->runs ? hi : -1);
        }
    }
    for (uint32_t si = 0; si < pb->n_sizes; si++) {
        double worst = pb->hang_ms[si] > pb->drop_ms[si] ? pb->hang_ms[si] : pb->drop_ms[si];
        bool dropped = pb->hang_ms[si] >= 0 && pb->drop_ms[si] >= 0;
        printf("  N=%-2u dead node dropped %s (worst %.0f ms), new node reached %s\n",
               pb->sizes[si], dropped && worst <= 3.0 * pb->keepalive_ms ? "met" : "missed",
               dropped ? worst : -1.0,
               pb->join_ms[si] >= 0 && pb->join_ms[si] <= 2000 ? "met" : "missed");
    }
}

static void pool_report_json(const struct pool_bench *pb)
{
    json_t *root = json_object(), *conv = json_array(), *fail = json_array();
    for (uint32_t si = 0; si < pb->n_sizes; si++) {
        for (int lb = 0; lb < POOL_LB__COUNT; lb++)
            for (int mode = 0; mode < POOL_MODE__COUNT; mode++) {
                const struct pool_result *r = &pb->res[si][lb][mode];
                json_t *ms = json_array(), *dl = json_array();
                for (uint32_t k = 0; k < r->runs; k++) {
                    json_array_append_new(ms, json_real(r->ms[k]));
                    json_array_append_new(dl, json_real(r->dials[k]));
                }
                json_array_append_new(conv, json_pack("{s:i, s:s, s:s, s:o, s:o, s:i}", "n",
                                                      (int)pb->sizes[si], "lb", pool_lb_names[lb],
                                                      "mode", pool_mode_names[mode], "ms", ms,
                                                      "dials", dl, "failed", (int)r->failed));
            }
        json_array_append_new(fail, json_pack("{s:i, s:f, s:f}", "n", (int)pb->sizes[si], "drop_ms",
                                              pb->drop_ms[si], "join_ms", pb->join_ms[si]));
    }
    json_object_set_new(root, "convergence", conv);
    json_object_set_new(root, "failures", fail);
    json_object_set_new(root, "keepalive_ms", json_integer(pb->keepalive_ms));
    char *s = json_dumps(root, JSON_INDENT(2));
    if (s != NULL)
        puts(s);
    free(s);
    json_decref(root);
}

/* ---- command ------------------------------------------------------------------------ */

static const char cmd_pool_usage[] = "[--sizes LIST] [--runs N] [--quick] [--json]\n"
                                     "       [--node-bin P] [--agent-bin P] [--ctl-bin P] "
                                     "[--keep-tmp]";

static const char cmd_pool_help[] =
    "Measures how an agent that knows only the load balancer's address comes to\n"
    "hold a tunnel to every node: N warren-node processes gossiping on 127.0.0.1\n"
    "behind HAProxy (mode tcp; balance roundrobin, then random(1): uniform), one\n"
    "warren-agent\n"
    "with --proxy = HAProxy. Time and dials from the agent's start until its\n"
    "--metrics-file says it holds all N; 'blind': every dial goes through HAProxy,\n"
    "'targeted': nodes advertise --advertise-tunnel-addr and the agent dials them\n"
    "directly. Then, with 3 agents: time from a new node's ALIVE in gossip until\n"
    "every agent holds it; from SIGSTOP of a node (a hang: only the keepalive can\n"
    "tell) and from kill -9 of another (the kernel resets its connections) until\n"
    "every agent dropped it.\n"
    "\n"
    "  --sizes LIST     node counts, comma-separated (default 3,8,16; at most 32)\n"
    "  --runs N         runs per cell, medians reported (default 3, at most 9)\n"
    "  --quick          N = 3, one run (the ctest smoke test)\n"
    "  --json           print JSON instead of the table\n"
    "  --node-bin P     warren-node (default: ../node/warren-node next to this binary)\n"
    "  --agent-bin P    warren-agent (default: ../agent/warren-agent)\n"
    "  --ctl-bin P      warrenctl (default: warrenctl in this binary's directory)\n"
    "  --keep-tmp       keep the temp dir (logs, configs) and print its path\n"
    "  -h, --help       this text\n"
    "\n"
    "Needs haproxy. Keepalive as shipped: PING every 5 s, a link silent for 10 s\n"
    "is dropped. Exit status: 0 done, 1 usage, 3 failed.";

static int cmd_pool(int argc, char **argv)
{
    static struct pool_bench pb;
    memset(&pb, 0, sizeof(pb));
    char self_dir[PATH_MAX] = ".";
    if (bench_self_dir(self_dir, sizeof(self_dir)) != 0)
        snprintf(self_dir, sizeof(self_dir), ".");
    bench_path_join(pb.node_bin, sizeof(pb.node_bin), self_dir, "../node/warren-node");
    bench_path_join(pb.agent_bin, sizeof(pb.agent_bin), self_dir, "../agent/warren-agent");
    bench_path_join(pb.ctl_bin, sizeof(pb.ctl_bin), self_dir, "warrenctl");
    const char *sizes = "3,8,16";
    bool keep = false;
    pb.runs = 3;
    pb.keepalive_ms = 5000; /* the defaults of warren-node and warren-agent */
    pb.ping_timeout_ms = 10000;
    static const struct option opts[] = {
        {"sizes", required_argument, NULL, 's'},    {"runs", required_argument, NULL, 'r'},
        {"quick", no_argument, NULL, 'q'},          {"json", no_argument, NULL, 'j'},
        {"node-bin", required_argument, NULL, 'N'}, {"agent-bin", required_argument, NULL, 'A'},
        {"ctl-bin", required_argument, NULL, 'C'},  {"keep-tmp", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sizes = optarg;
            break;
        case 'r':
            pb.runs = (uint32_t)strtoul(optarg, NULL, 10);
            if (pb.runs < 1 || pb.runs > POOL_MAX_RUNS) {
                bench_err("--runs must be 1..%d", POOL_MAX_RUNS);
                return BENCH_EXIT_USAGE;
            }
            break;
        case 'q':
            pb.quick = true;
            break;
        case 'j':
            pb.json = true;
            break;
        case 'N':
            snprintf(pb.node_bin, sizeof(pb.node_bin), "%s", optarg);
            break;
        case 'A':
            snprintf(pb.agent_bin, sizeof(pb.agent_bin), "%s", optarg);
            break;
        case 'C':
            snprintf(pb.ctl_bin, sizeof(pb.ctl_bin), "%s", optarg);
            break;
        case 'k':
            keep = true;
            break;
        case 'h':
            printf("usage: warren-bench pool %s\n\n%s\n", cmd_pool_usage, cmd_pool_help);
            return BENCH_EXIT_OK;
        default:
            fprintf(stderr, "usage: warren-bench pool %s\n", cmd_pool_usage);
            return BENCH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        bench_err("unexpected argument '%s'", argv[optind]);
        return BENCH_EXIT_USAGE;
    }
    if (pb.quick) {
        sizes = "3";
        pb.runs = 1;
    }
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", sizes);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        unsigned long v = strtoul(w, NULL, 10);
        if (v < 2 || v > POOL_MAX_N || pb.n_sizes == POOL_MAX_SIZES) {
            bench_err("--sizes: 2..%d, at most %d sizes", POOL_MAX_N, POOL_MAX_SIZES);
            return BENCH_EXIT_USAGE;
        }
        pb.sizes[pb.n_sizes++] = (uint32_t)v;
    }
    if (pb.n_sizes == 0) {
        bench_err("--sizes is empty");
        return BENCH_EXIT_USAGE;
    }
    if (!bench_which("haproxy", pb.haproxy, sizeof(pb.haproxy))) {
        bench_err("haproxy is not installed (tools/deps.sh bench)");
        return BENCH_EXIT_FAILED;
    }
    if (!bench_file_is_exec(pb.node_bin) || !bench_file_is_exec(pb.agent_bin) ||
        !bench_file_is_exec(pb.ctl_bin)) {
        bench_err("warren binaries not found (--node-bin, --agent-bin, --ctl-bin)");
        return BENCH_EXIT_USAGE;
    }
    bench_signals_install();
    bench_raise_nofile();
    if (bench_tmpdir_make(pb.tmp, sizeof(pb.tmp)) != 0)
        return BENCH_EXIT_FAILED;
    uint32_t maxn = 0;
    for (uint32_t i = 0; i < pb.n_sizes; i++)
        maxn = pb.sizes[i] > maxn ? pb.sizes[i] : maxn;
    int rc = BENCH_EXIT_OK;
    if (pool_identity(&pb, maxn) != 0) {
        rc = BENCH_EXIT_FAILED;
        goto out;
    }
    for (uint32_t si = 0; si < pb.n_sizes && !bench_interrupted(); si++) {
        uint32_t n = pb.sizes[si];
        for (int mode = 0; mode < POOL_MODE__COUNT && !bench_interrupted(); mode++) {
            bench_note("pool: N=%u %s: starting the fleet", n, pool_mode_names[mode]);
            if (pool_fleet_start(&pb, n, mode == POOL_TARGETED) != 0) {
                rc = BENCH_EXIT_FAILED;
                pool_fleet_stop(&pb);
                continue;
            }
            for (int lb = 0; lb < POOL_LB__COUNT && !bench_interrupted(); lb++) {
                if (pool_lb_start(&pb, lb, n) != 0) {
                    rc = BENCH_EXIT_FAILED;
                    pool_lb_stop(&pb);
                    continue;
                }
                pool_convergence(&pb, si, n, lb, mode);
                if (pb.res[si][lb][mode].runs == 0)
                    rc = BENCH_EXIT_FAILED;
                pool_lb_stop(&pb);
            }
            pool_fleet_stop(&pb);
        }
        bench_note("pool: N=%u failures and joins", n);
        pool_failures(&pb, si, n);
    }
    if (pb.json)
        pool_report_json(&pb);
    else
        pool_report_text(&pb);
out:
    bench_stop_all();
    if (keep)
        fprintf(stderr, "warren-bench: pool: kept %s\n", pb.tmp);
    else
        bench_tmpdir_remove(pb.tmp);
    return bench_interrupted() ? BENCH_EXIT_FAILED : rc;
}

const struct bench_cmd cmd_pool_entry = {
    "pool",
    "[--sizes LIST] [--runs N] [--quick] [--json] ...",
    cmd_pool_help,
    cmd_pool,
};
