/*
 * bench_gossip_ipt.c: byte counters for the gossip traffic of each cluster,
 * so that warren and Serf are measured the same way (Serf has no counter of
 * its own). A chain of ours, jumped to from OUTPUT on lo, holds one counting
 * rule per protocol and direction and port range; the bench reads it with
 * "iptables -L -v -x" and removes it at the end, also after Ctrl-C. Needs
 * root. It only counts: no rule drops or changes a packet.
 */
#include "bench_gossip.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_IPT_TIMEOUT_MS 10000
#define BENCH_IPT_RULES_PER_RANGE 3 /* udp to, tcp to, tcp from */

/*
 * Runs "iptables -w 5 <args>" to completion, stdout into <out> (or the log).
 * Not spawned with bench_spawn(): its table of 64 children is full while a
 * 64-member cluster runs, and iptables exits at once. Bounded: SIGKILL by pid
 * after BENCH_IPT_TIMEOUT_MS. Returns the exit status, or -1.
 */
static int bench_ipt_run(const struct bench_gossip *g, const char *const args[], const char *out)
{
    char log[PATH_MAX];
    if (!bench_path_join(log, sizeof(log), g->tmp, "iptables.log"))
        return -1;
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)g->ipt_bin;
    argv[n++] = "-w";
    argv[n++] = "5";
    for (int i = 0; args[i] != NULL && n < 23; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int outfd = out != NULL ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : logfd;
    pid_t parent = getpid();
    pid_t pid = logfd >= 0 && outfd >= 0 ? fork() : -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(outfd, 1);
        dup2(logfd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    if (outfd >= 0 && outfd != logfd)
        close(outfd);
    if (logfd >= 0)
        close(logfd);
    if (pid < 0)
        return -1;
    int st = -1;
    uint64_t end = bench_now_us() + (uint64_t)BENCH_IPT_TIMEOUT_MS * 1000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (bench_now_us() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        bench_sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int bench_ipt_start(struct bench_gossip *g, const struct bench_ipt_range *r, int n)
{
    char chain[sizeof(g->ipt_chain)];
    snprintf(chain, sizeof(chain), "WBENCH-GOSSIP-%d", (int)getpid());
    const char *mk[] = {"-N", chain, NULL};
    if (bench_ipt_run(g, mk, NULL) != 0) {
        bench_err("iptables -N %s failed (see %s/iptables.log)", chain, g->tmp);
        return -1;
    }
    snprintf(g->ipt_chain, sizeof(g->ipt_chain), "%s", chain);
    g->ipt_n = n;
    int err = 0;
    for (int i = 0; i < n && err == 0; i++) {
        char ports[16];
        snprintf(ports, sizeof(ports), "%u:%u", (unsigned)r[i].lo, (unsigned)r[i].hi);
        const char *udp_to[] = {"-A", chain, "-p", "udp", "--dport", ports, NULL};
        const char *tcp_to[] = {"-A", chain, "-p", "tcp", "--dport", ports, NULL};
        const char *tcp_from[] = {"-A", chain, "-p", "tcp", "--sport", ports, NULL};
        if (bench_ipt_run(g, udp_to, NULL) != 0 || bench_ipt_run(g, tcp_to, NULL) != 0 ||
            bench_ipt_run(g, tcp_from, NULL) != 0)
            err = -1;
    }
    const char *jump[] = {"-I", "OUTPUT", "1", "-o", "lo", "-j", chain, NULL};
    if (err == 0 && bench_ipt_run(g, jump, NULL) != 0)
        err = -1;
    if (err != 0) {
        bench_err("iptables rules for %s could not be added (see %s/iptables.log)", chain, g->tmp);
        bench_ipt_stop(g);
    }
    return err;
}

int bench_ipt_read(struct bench_gossip *g, struct bench_ipt_count *out, int n)
{
    char path[PATH_MAX];
    if (g->ipt_chain[0] == '\0' || n != g->ipt_n ||
        !bench_path_join(path, sizeof(path), g->tmp, "iptables-counters.txt"))
        return -1;
    const char *list[] = {"-L", g->ipt_chain, "-v", "-x", "-n", NULL};
    if (bench_ipt_run(g, list, path) != 0) {
        bench_err("iptables -L %s failed", g->ipt_chain);
        return -1;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    memset(out, 0, sizeof(*out) * (size_t)n);
    char line[512];
    int rule = 0;
    for (int i = 0; i < 1000 && fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned long long pkts, bytes;
        /* Rule lines start with the two counters; the two header lines do not. */
        if (sscanf(line, "%llu %llu", &pkts, &bytes) != 2)
            continue;
        int range = rule++ / BENCH_IPT_RULES_PER_RANGE;
        if (range < n) {
            out[range].pkts += pkts;
            out[range].bytes += bytes;
        }
    }
    fclose(f);
    if (rule != n * BENCH_IPT_RULES_PER_RANGE) {
        bench_err("iptables -L %s: %d rules, expected %d", g->ipt_chain, rule,
                  n * BENCH_IPT_RULES_PER_RANGE);
        return -1;
    }
    return 0;
}

void bench_ipt_stop(struct bench_gossip *g)
{
    if (g->ipt_chain[0] == '\0')
        return;
    /* The jump may be missing when start failed half-way: that -D fails, the
     * flush and delete still run. */
    const char *unjump[] = {"-D", "OUTPUT", "-o", "lo", "-j", g->ipt_chain, NULL};
    const char *flush[] = {"-F", g->ipt_chain, NULL};
    const char *del[] = {"-X", g->ipt_chain, NULL};
    bench_ipt_run(g, unjump, NULL);
    bench_ipt_run(g, flush, NULL);
    if (bench_ipt_run(g, del, NULL) != 0)
        bench_err("could not remove iptables chain %s: remove it with 'iptables -D OUTPUT -o lo "
                  "-j %s; iptables -F %s; iptables -X %s'",
                  g->ipt_chain, g->ipt_chain, g->ipt_chain, g->ipt_chain);
    g->ipt_chain[0] = '\0';
}
