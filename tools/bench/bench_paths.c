/*
 * bench_paths.c: starting and stopping the relays of each path measured by
 * "warren-bench tunnel": warren-node + warren-agent (and the identity they
 * need, made with warrenctl), a private sshd plus "ssh -R", and HAProxy in
 * mode tcp. Every path exposes two ports on 127.0.0.1, one leading to the
 * iperf3 server and one to the echo server. It does not measure anything.
 */
#include "bench_tunnel.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_START_TIMEOUT_MS 15000

void bench_tunnel_note(struct bench_tunnel *bt, const char *fmt, ...)
{
    if (bt->n_notes >= (int)(sizeof(bt->notes) / sizeof(bt->notes[0])))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bt->notes[bt->n_notes++], sizeof(bt->notes[0]), fmt, ap);
    va_end(ap);
}

static void bench_path_fail(struct bench_path *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bench_path_fail(struct bench_path *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->note, sizeof(p->note), fmt, ap);
    va_end(ap);
    bench_err("%s: %s", p->label, p->note);
}

static void bench_path_add_pid(struct bench_path *p, pid_t pid)
{
    if (p->n_pids < BENCH_PATH_MAX_PIDS)
        p->pids[p->n_pids++] = pid;
}

/* Runs a short command to completion (warrenctl, ssh-keygen). */
static int bench_run(char *const argv[], const char *log)
{
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0)
        return -1;
    int st = bench_wait(pid, 30000);
    if (st == -1) {
        bench_stop(pid, 1000);
        bench_err("%s did not finish in 30 s", argv[0]);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        bench_err("%s %s failed (status %d)", argv[0], argv[1] ? argv[1] : "", st);
        bench_dump_log(argv[0], log, 2000);
        return -1;
    }
    return 0;
}

int bench_identity_make(struct bench_tunnel *bt)
{
    char log[PATH_MAX];
    if (!bench_path_join(bt->ca_dir, sizeof(bt->ca_dir), bt->tmp, "ca") ||
        !bench_path_join(bt->ca_crt, sizeof(bt->ca_crt), bt->ca_dir, "ca.crt") ||
        !bench_path_join(bt->node_crt, sizeof(bt->node_crt), bt->tmp, "node.crt") ||
        !bench_path_join(bt->node_key, sizeof(bt->node_key), bt->tmp, "node.key") ||
        !bench_path_join(bt->token, sizeof(bt->token), bt->tmp, "bench.token") ||
        !bench_path_join(log, sizeof(log), bt->tmp, "warrenctl.log"))
        return -1;
    char *ca[] = {bt->ctl_bin, "ca", "init", "--dir", bt->ca_dir, "--cluster", "bench", NULL};
    char *cert[] = {bt->ctl_bin,  "cert",      "issue",      "--ca-dir",
                    bt->ca_dir,   "--node-id", "bench-node", "--out-cert",
                    bt->node_crt, "--out-key", bt->node_key, NULL};
    char *tok[] = {bt->ctl_bin, "token", "create", "--ca-dir", bt->ca_dir, "--tunnel",
                   "bench",     "--ttl", "1d",     "--out",    bt->token,  NULL};
    if (bench_run(ca, log) != 0 || bench_run(cert, log) != 0 || bench_run(tok, log) != 0)
        return -1;
    return 0;
}

/* ---- warren ---- */

/* Reads "listen ADDR" and the two "entry ADDR bench/SVC" lines of a ready file. */
static bool bench_node_ready_parse(const char *path, char *listen, size_t listen_len,
                                   uint16_t *bulk_port, uint16_t *echo_port)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char line[512];
    bool have_listen = false;
    for (int i = 0; i < 200 && fgets(line, sizeof(line), f) != NULL; i++) {
        char a[128], b[128], c[128];
        int n = sscanf(line, "%127s %127s %127s", a, b, c);
        const char *colon = n >= 2 ? strrchr(b, ':') : NULL;
        if (n >= 2 && strcmp(a, "listen") == 0) {
            snprintf(listen, listen_len, "%s", b);
            have_listen = true;
        } else if (n == 3 && strcmp(a, "entry") == 0 && colon != NULL) {
            uint16_t port = (uint16_t)strtoul(colon + 1, NULL, 10);
            if (strcmp(c, "bench/iperf") == 0 && bulk_port != NULL)
                *bulk_port = port;
            else if (strcmp(c, "bench/echo") == 0 && echo_port != NULL)
                *echo_port = port;
        }
    }
    fclose(f);
    return have_listen;
}

pid_t bench_node_start(struct bench_tunnel *bt, const char *tag, bool entries, char *listen,
                       size_t listen_len, uint16_t *bulk_port, uint16_t *echo_port)
{
    char ready[PATH_MAX], log[PATH_MAX], name[64];
    snprintf(name, sizeof(name), "%s.ready", tag);
    if (!bench_path_join(ready, sizeof(ready), bt->tmp, name))
        return -1;
    snprintf(name, sizeof(name), "%s.log", tag);
    if (!bench_path_join(log, sizeof(log), bt->tmp, name))
        return -1;
    char *argv[32];
    int n = 0;
    argv[n++] = bt->node_bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--cert";
    argv[n++] = bt->node_crt;
    argv[n++] = "--key";
    argv[n++] = bt->node_key;
    argv[n++] = "--ca";
    argv[n++] = bt->ca_crt;
    argv[n++] = "--node-id";
    argv[n++] = "bench-node";
    argv[n++] = "--drain-timeout";
    argv[n++] = "1s";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    /* Not the default 127.0.0.1:7480, which a real node may hold. */
    argv[n++] = "--admin-addr";
    argv[n++] = "127.0.0.1:0";
    if (entries) {
        argv[n++] = "--entry";
        argv[n++] = "127.0.0.1:0=bench/iperf";
        argv[n++] = "--entry";
        argv[n++] = "127.0.0.1:0=bench/echo";
    }
    argv[n] = NULL;
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0)
        return -1;
    if (!bench_wait_file(ready, BENCH_START_TIMEOUT_MS) ||
        !bench_node_ready_parse(ready, listen, listen_len, bulk_port, echo_port)) {
        bench_err("warren-node (%s) wrote no ready file within %u s", tag,
                  BENCH_START_TIMEOUT_MS / 1000);
        bench_dump_log("warren-node", log, 3000);
        bench_stop(pid, 2000);
        return -1;
    }
    return pid;
}

static void bench_path_warren_start(struct bench_tunnel *bt, struct bench_path *p)
{
    char listen[128] = "";
    pid_t node =
        bench_node_start(bt, "node", true, listen, sizeof(listen), &p->bulk_port, &p->echo_port);
    if (node < 0) {
        bench_path_fail(p, "warren-node did not start");
        return;
    }
    bench_path_add_pid(p, node);
    if (p->bulk_port == 0 || p->echo_port == 0) {
        bench_path_fail(p, "the node's ready file lists no entry points");
        return;
    }
    char svc_iperf[64], svc_echo[64], log[PATH_MAX];
    snprintf(svc_iperf, sizeof(svc_iperf), "iperf=127.0.0.1:%u", (unsigned)bt->iperf_port);
    snprintf(svc_echo, sizeof(svc_echo), "echo=127.0.0.1:%u", (unsigned)bt->echo_port);
    if (!bench_path_join(log, sizeof(log), bt->tmp, "agent.log"))
        return;
    char *argv[] = {bt->agent_bin, "--proxy",    listen,        "--tunnel",
                    "bench",       "--token",    bt->token,     "--ca",
                    bt->ca_crt,    "--agent-id", "bench-agent", "--service",
                    svc_iperf,     "--service",  svc_echo,      NULL};
    pid_t agent = bench_spawn(argv, log, NULL);
    if (agent < 0) {
        bench_path_fail(p, "warren-agent did not start");
        return;
    }
    bench_path_add_pid(p, agent);
    if (!bench_wait_echo(p->echo_port, BENCH_START_TIMEOUT_MS)) {
        bench_path_fail(p, "no echo through the tunnel within %u s", BENCH_START_TIMEOUT_MS / 1000);
        bench_dump_log("warren-agent", log, 3000);
        char nlog[PATH_MAX];
        if (bench_path_join(nlog, sizeof(nlog), bt->tmp, "node.log"))
            bench_dump_log("warren-node", nlog, 3000);
        return;
    }
    p->up = true;
}

/* ---- ssh -R ---- */

static int bench_write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -errno;
    fputs(text, f);
    int err = fclose(f) == 0 ? 0 : -errno;
    chmod(path, mode);
    return err;
}

static bool bench_file_copy_text(const char *from, char *out, size_t len)
{
    FILE *f = fopen(from, "re");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    return n > 0;
}

/* Finds "Allocated port N for remote forward to 127.0.0.1:<target>" in ssh's log. */
static uint16_t bench_ssh_allocated(const char *log, uint16_t target)
{
    FILE *f = fopen(log, "re");
    if (f == NULL)
        return 0;
    char line[512];
    uint16_t port = 0;
    for (int i = 0; i < 10000 && port == 0 && fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned alloc = 0, to = 0;
        const char *p = strstr(line, "Allocated port ");
        if (p != NULL &&
            sscanf(p, "Allocated port %u for remote forward to 127.0.0.1:%u", &alloc, &to) == 2 &&
            to == target)
            port = (uint16_t)alloc;
    }
    fclose(f);
    return port;
}

static void bench_path_ssh_start(struct bench_tunnel *bt, struct bench_path *p, bool aes)
{
    if (!bt->have_sshd || !bt->have_ssh) {
        snprintf(p->note, sizeof(p->note), "skipped: sshd/ssh not installed");
        return;
    }
    struct passwd *pw = getpwuid(getuid());
    if (pw == NULL) {
        bench_path_fail(p, "cannot find the current user");
        return;
    }
    if (geteuid() == 0 && mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
        bench_path_fail(p, "cannot create /run/sshd: %s", strerror(errno));
        return;
    }
    char dir[PATH_MAX], hostkey[PATH_MAX], clientkey[PATH_MAX], pub[PATH_MAX], auth[PATH_MAX],
        conf[PATH_MAX], keylog[PATH_MAX], sshdlog[PATH_MAX], sshlog[PATH_MAX];
    if (!bench_path_join(dir, sizeof(dir), bt->tmp, p->name) ||
        !bench_path_join(hostkey, sizeof(hostkey), dir, "host_key") ||
        !bench_path_join(clientkey, sizeof(clientkey), dir, "client_key") ||
        !bench_path_join(pub, sizeof(pub), dir, "client_key.pub") ||
        !bench_path_join(auth, sizeof(auth), dir, "authorized_keys") ||
        !bench_path_join(conf, sizeof(conf), dir, "sshd_config") ||
        !bench_path_join(keylog, sizeof(keylog), dir, "ssh-keygen.log") ||
        !bench_path_join(sshdlog, sizeof(sshdlog), dir, "sshd.log") ||
        !bench_path_join(sshlog, sizeof(sshlog), dir, "ssh.log") || mkdir(dir, 0700) != 0) {
        bench_path_fail(p, "cannot prepare %s", dir);
        return;
    }
    char *kh[] = {bt->keygen_bin, "-q", "-t", "ed25519", "-N", "", "-f", hostkey, NULL};
    char *kc[] = {bt->keygen_bin, "-q", "-t", "ed25519", "-N", "", "-f", clientkey, NULL};
    if (bench_run(kh, keylog) != 0 || bench_run(kc, keylog) != 0) {
        bench_path_fail(p, "ssh-keygen failed");
        return;
    }
    char key[2048];
    uint16_t sshd_port = 0;
    if (!bench_file_copy_text(pub, key, sizeof(key)) || bench_write_text(auth, key, 0600) != 0 ||
        bench_port_pick(&sshd_port) != 0) {
        bench_path_fail(p, "cannot write authorized_keys");
        return;
    }
    char cfg[3 * PATH_MAX];
    snprintf(cfg, sizeof(cfg),
             "# written by warren-bench for one run; removed with its temp dir\n"
             "Port %u\nListenAddress 127.0.0.1\nHostKey %s\nPidFile none\n"
             "AuthorizedKeysFile %s\nPermitRootLogin prohibit-password\n"
             "PubkeyAuthentication yes\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
             "AllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\nLogLevel INFO\n",
             (unsigned)sshd_port, hostkey, auth);
    if (bench_write_text(conf, cfg, 0600) != 0) {
        bench_path_fail(p, "cannot write %s", conf);
        return;
    }
    /* sshd must be run by absolute path (it re-executes itself). */
    char *sd[] = {bt->sshd_bin, "-D", "-e", "-f", conf, NULL};
    pid_t sshd = bench_spawn(sd, sshdlog, NULL);
    if (sshd < 0) {
        bench_path_fail(p, "sshd did not start");
        return;
    }
    bench_path_add_pid(p, sshd);
    if (!bench_wait_port(sshd_port, BENCH_START_TIMEOUT_MS)) {
        bench_path_fail(p, "sshd is not listening");
        bench_dump_log("sshd", sshdlog, 2000);
        return;
    }
    char sport[8], fw_bulk[64], fw_echo[64], dest[300];
    snprintf(sport, sizeof(sport), "%u", (unsigned)sshd_port);
    snprintf(fw_bulk, sizeof(fw_bulk), "127.0.0.1:0:127.0.0.1:%u", (unsigned)bt->iperf_port);
    snprintf(fw_echo, sizeof(fw_echo), "127.0.0.1:0:127.0.0.1:%u", (unsigned)bt->echo_port);
    snprintf(dest, sizeof(dest), "%s@127.0.0.1", pw->pw_name);
    char *sc[32];
    int n = 0;
    sc[n++] = bt->ssh_bin;
    /* A terminal session (-tt and a command), as in everyday "ssh -R" use:
     * OpenSSH then sets TCP_NODELAY on its connection. With -N it does not,
     * and each new forwarded channel waits on Nagle plus delayed ACKs (about
     * 200 streams/s here instead of about 7000). */
    sc[n++] = "-tt";
    sc[n++] = "-F";
    sc[n++] = "/dev/null";
    sc[n++] = "-i";
    sc[n++] = clientkey;
    sc[n++] = "-p";
    sc[n++] = sport;
    sc[n++] = "-o";
    sc[n++] = "StrictHostKeyChecking=no";
    sc[n++] = "-o";
    sc[n++] = "UserKnownHostsFile=/dev/null";
    sc[n++] = "-o";
    sc[n++] = "BatchMode=yes";
    sc[n++] = "-o";
    sc[n++] = "ExitOnForwardFailure=yes";
    sc[n++] = "-o";
    sc[n++] = "LogLevel=INFO";
    if (aes) {
        sc[n++] = "-c";
        sc[n++] = "aes128-gcm@openssh.com";
    }
    sc[n++] = "-R";
    sc[n++] = fw_bulk;
    sc[n++] = "-R";
    sc[n++] = fw_echo;
    sc[n++] = dest;
    sc[n++] = "sleep 86400";
    sc[n] = NULL;
    pid_t ssh = bench_spawn(sc, sshlog, NULL);
    if (ssh < 0) {
        bench_path_fail(p, "ssh did not start");
        return;
    }
    bench_path_add_pid(p, ssh);
    uint64_t end = bench_now_us() + (uint64_t)BENCH_START_TIMEOUT_MS * 1000;
    while (!bench_interrupted() && bench_now_us() < end && bench_is_alive(ssh)) {
        p->bulk_port = bench_ssh_allocated(sshlog, bt->iperf_port);
        p->echo_port = bench_ssh_allocated(sshlog, bt->echo_port);
        if (p->bulk_port != 0 && p->echo_port != 0)
            break;
        bench_sleep_ms(50);
    }
    if (p->bulk_port == 0 || p->echo_port == 0 || !bench_wait_echo(p->echo_port, 5000)) {
        bench_path_fail(p, "ssh -R forwards did not come up");
        bench_dump_log("ssh", sshlog, 2000);
        bench_dump_log("sshd", sshdlog, 2000);
        return;
    }
    /* sshd's per-connection processes carry the traffic; track them now, so
     * that they are stopped even if the listener goes first (Ctrl-C). */
    pid_t kids[BENCH_PATH_MAX_PIDS];
    int nk = bench_proc_descendants(sshd, kids, BENCH_PATH_MAX_PIDS - p->n_pids);
    for (int i = 0; i < nk; i++) {
        bench_proc_register(kids[i]);
        bench_path_add_pid(p, kids[i]);
    }
    p->up = true;
}

/* ---- HAProxy ---- */

static void bench_path_haproxy_start(struct bench_tunnel *bt, struct bench_path *p)
{
    if (!bt->have_haproxy) {
        snprintf(p->note, sizeof(p->note), "skipped: haproxy not installed");
        return;
    }
    char conf[PATH_MAX], log[PATH_MAX];
    if (!bench_path_join(conf, sizeof(conf), bt->tmp, "haproxy.cfg") ||
        !bench_path_join(log, sizeof(log), bt->tmp, "haproxy.log"))
        return;
    if (bench_port_pick(&p->bulk_port) != 0 || bench_port_pick(&p->echo_port) != 0 ||
        p->bulk_port == p->echo_port) {
        bench_path_fail(p, "no free port");
        return;
    }
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "# written by warren-bench for one run; removed with its temp dir\n"
             "global\n    maxconn 8000\n\n"
             "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
             "    timeout server 60s\n\n"
             "listen bulk\n    bind 127.0.0.1:%u\n    server target 127.0.0.1:%u\n\n"
             "listen echo\n    bind 127.0.0.1:%u\n    server target 127.0.0.1:%u\n",
             (unsigned)p->bulk_port, (unsigned)bt->iperf_port, (unsigned)p->echo_port,
             (unsigned)bt->echo_port);
    if (bench_write_text(conf, cfg, 0600) != 0) {
        bench_path_fail(p, "cannot write %s", conf);
        return;
    }
    char *argv[] = {bt->haproxy_bin, "-f", conf, "-db", NULL};
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0) {
        bench_path_fail(p, "haproxy did not start");
        return;
    }
    bench_path_add_pid(p, pid);
    if (!bench_wait_echo(p->echo_port, BENCH_START_TIMEOUT_MS) ||
        !bench_wait_port(p->bulk_port, 2000)) {
        bench_path_fail(p, "haproxy is not relaying");
        bench_dump_log("haproxy", log, 2000);
        return;
    }
    p->up = true;
}

/* ---- warren-lb (a tcp listener per target) ---- */

static void bench_path_lb_start(struct bench_tunnel *bt, struct bench_path *p)
{
    if (!bench_file_is_exec(bt->lb_bin)) {
        snprintf(p->note, sizeof(p->note), "skipped: %.120s not found (--lb-bin)", bt->lb_bin);
        return;
    }
    char log[PATH_MAX];
    if (!bench_path_join(log, sizeof(log), bt->tmp, "warren-lb.log"))
        return;
    if (bench_port_pick(&p->bulk_port) != 0 || bench_port_pick(&p->echo_port) != 0 ||
        p->bulk_port == p->echo_port) {
        bench_path_fail(p, "no free port");
        return;
    }
    char l1[64], l2[64], b1[64], b2[64];
    snprintf(l1, sizeof(l1), "tcp:127.0.0.1:%u,set=bulk", (unsigned)p->bulk_port);
    snprintf(l2, sizeof(l2), "tcp:127.0.0.1:%u,set=echo", (unsigned)p->echo_port);
    snprintf(b1, sizeof(b1), "bulk=127.0.0.1:%u", (unsigned)bt->iperf_port);
    snprintf(b2, sizeof(b2), "echo=127.0.0.1:%u", (unsigned)bt->echo_port);
    /* Health checks off in effect (one an hour): iperf3's server counts a
     * check's connect as a test attempt. HAProxy's path has none either. */
    char *argv[] = {bt->lb_bin, "--listen",    l1,     "--listen",     l2,      "--backend",
                    b1,         "--backend",   b2,     "--admin-addr", "off",   "--check-interval",
                    "1h",       "--log-level", "warn", "--max-conns",  "20000", NULL};
    pid_t pid = bench_spawn(argv, log, NULL);
    if (pid < 0) {
        bench_path_fail(p, "warren-lb did not start");
        return;
    }
    bench_path_add_pid(p, pid);
    if (!bench_wait_echo(p->echo_port, BENCH_START_TIMEOUT_MS) ||
        !bench_wait_port(p->bulk_port, 2000)) {
        bench_path_fail(p, "warren-lb is not relaying");
        bench_dump_log("warren-lb", log, 2000);
        return;
    }
    p->up = true;
}

void bench_path_start(struct bench_tunnel *bt, struct bench_path *p)
{
    switch ((enum bench_path_id)(p - bt->paths)) {
    case BENCH_P_DIRECT:
        p->bulk_port = bt->iperf_port;
        p->echo_port = bt->echo_port;
        p->up = true;
        break;
    case BENCH_P_WARREN:
        bench_path_warren_start(bt, p);
        break;
    case BENCH_P_SSH:
        bench_path_ssh_start(bt, p, false);
        break;
    case BENCH_P_SSH_AES:
        bench_path_ssh_start(bt, p, true);
        break;
    case BENCH_P_HAPROXY:
        bench_path_haproxy_start(bt, p);
        break;
    case BENCH_P_LB:
        bench_path_lb_start(bt, p);
        break;
    case BENCH_P__COUNT:
        break;
    }
}

void bench_path_stop(struct bench_path *p)
{
    /* Youngest first: sshd's sessions and ssh before sshd, the agent before
     * the node, so each side sees a clean close. */
    for (int i = p->n_pids - 1; i >= 0; i--)
        bench_stop(p->pids[i], 3000);
    p->n_pids = 0;
    p->up = false;
}

int bench_path_relays(const struct bench_path *p, pid_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < p->n_pids && n < max; i++)
        out[n++] = p->pids[i];
    return n;
}
