/*
 * bench_proc.c: the processes warren-bench starts and what it reads about
 * them: spawning with logs, stopping by pid (SIGTERM then SIGKILL, also from
 * a signal handler), /proc readings (CPU time, RSS, descendants), CPU
 * pinning, the temp dir and small file helpers. It knows nothing about what
 * the processes are.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_CHILDREN 64

/* The registry is global because the signal handler must reach it; only the
 * main thread writes it, and the handler only reads pids and calls kill(). */
static volatile pid_t bench_children[BENCH_MAX_CHILDREN];
static volatile sig_atomic_t bench_sig_seen;
static bool bench_quiet;

void bench_set_quiet(bool quiet)
{
    bench_quiet = quiet;
}

void bench_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "warren-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void bench_note(const char *fmt, ...)
{
    if (bench_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  .. ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void bench_on_signal(int sig)
{
    bench_sig_seen = sig;
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++) {
        pid_t p = bench_children[i];
        if (p > 0)
            kill(p, SIGTERM);
    }
}

void bench_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool bench_interrupted(void)
{
    return bench_sig_seen != 0;
}

void bench_proc_register(pid_t pid)
{
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++) {
        if (bench_children[i] == 0) {
            bench_children[i] = pid;
            return;
        }
    }
    bench_err("too many children; pid %d is not tracked", (int)pid);
}

static void bench_proc_unregister(pid_t pid)
{
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++)
        if (bench_children[i] == pid)
            bench_children[i] = 0;
}

pid_t bench_spawn(char *const argv[], const char *log, const char *out)
{
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        bench_err("cannot open %s: %s", log, strerror(errno));
        return -1;
    }
    int outfd = logfd;
    if (out != NULL) {
        outfd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (outfd < 0) {
            bench_err("cannot open %s: %s", out, strerror(errno));
            close(logfd);
            return -1;
        }
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: die with the bench, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(outfd, 1);
        dup2(logfd, 2);
        execv(argv[0], argv);
        dprintf(2, "warren-bench: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int saved = errno;
    close(logfd);
    if (outfd != logfd)
        close(outfd);
    if (pid < 0) {
        bench_err("fork: %s", strerror(saved));
        return -1;
    }
    bench_proc_register(pid);
    return pid;
}

int bench_wait(pid_t pid, uint32_t timeout_ms)
{
    uint64_t end = bench_now_us() + (uint64_t)timeout_ms * 1000;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        /* Not our child (sshd's session processes): poll until it is gone. */
        bool gone = r < 0 && errno == ECHILD && kill(pid, 0) != 0;
        if (r == pid || gone) {
            bench_proc_unregister(pid);
            return r == pid ? st : 0;
        }
        if (bench_now_us() >= end)
            return -1;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void bench_stop(pid_t pid, uint32_t grace_ms)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    if (bench_wait(pid, grace_ms) != -1)
        return;
    kill(pid, SIGKILL);
    if (bench_wait(pid, 5000) == -1)
        bench_err("pid %d did not exit after SIGKILL", (int)pid);
}

void bench_stop_all(void)
{
    for (int i = BENCH_MAX_CHILDREN - 1; i >= 0; i--) {
        pid_t p = bench_children[i];
        if (p > 0)
            bench_stop(p, 3000);
    }
}

bool bench_is_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        bench_proc_unregister(pid);
        return false;
    }
    return kill(pid, 0) == 0;
}

/* Reads /proc/<pid>/<what> into <buf>; returns the length or -1. */
static ssize_t bench_proc_read(pid_t pid, const char *what, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Field <idx> (1-based as in proc(5)) of /proc/PID/stat, after "(comm)". */
static bool bench_proc_stat_field(pid_t pid, int idx, unsigned long long *out)
{
    char buf[1024];
    if (bench_proc_read(pid, "stat", buf, sizeof(buf)) < 0)
        return false;
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    p++;
    /* After ')' comes field 3 (state). */
    for (int f = 3; f <= idx; f++) {
        while (*p == ' ')
            p++;
        char *end = p;
        while (*end != ' ' && *end != '\0')
            end++;
        if (f == idx) {
            *out = strtoull(p, NULL, 10);
            return true;
        }
        if (*end == '\0')
            return false;
        p = end;
    }
    return false;
}

double bench_proc_cpu_s(pid_t pid)
{
    unsigned long long ut, st;
    if (!bench_proc_stat_field(pid, 14, &ut) || !bench_proc_stat_field(pid, 15, &st))
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}

long bench_proc_rss_kib(pid_t pid)
{
    char buf[4096];
    if (bench_proc_read(pid, "status", buf, sizeof(buf)) < 0)
        return -1;
    const char *p = strstr(buf, "VmRSS:");
    if (p == NULL)
        return -1;
    return strtol(p + 6, NULL, 10);
}

int bench_proc_descendants(pid_t root, pid_t *out, int max)
{
    /* A few passes over /proc: each pass adds the children of what is known.
     * Process trees here are 2-3 levels deep (sshd -> monitor -> session). */
    int n = 0;
    for (int pass = 0; pass < 4; pass++) {
        DIR *d = opendir("/proc");
        if (d == NULL)
            return n;
        struct dirent *e;
        int scanned = 0;
        while ((e = readdir(d)) != NULL && scanned++ < 100000) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end != '\0' || pid <= 0)
                continue;
            unsigned long long ppid;
            if (!bench_proc_stat_field((pid_t)pid, 4, &ppid))
                continue;
            bool parent_known = (pid_t)ppid == root;
            bool known = false;
            for (int i = 0; i < n; i++) {
                if (out[i] == (pid_t)ppid)
                    parent_known = true;
                if (out[i] == (pid_t)pid)
                    known = true;
            }
            if (parent_known && !known && n < max)
                out[n++] = (pid_t)pid;
        }
        closedir(d);
    }
    return n;
}

int bench_pin(pid_t pid, const cpu_set_t *set)
{
    if (pid == 0)
        return sched_setaffinity(0, sizeof(*set), set) == 0 ? 0 : -errno;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno; /* already gone: nothing to pin */
    int err = 0;
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d)) != NULL && seen++ < 4096) {
        char *end;
        long tid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || tid <= 0)
            continue;
        if (sched_setaffinity((pid_t)tid, sizeof(*set), set) != 0 && errno != ESRCH)
            err = -errno;
    }
    closedir(d);
    return err;
}

int bench_tmpdir_make(char *dir, size_t len)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(dir, len, "%s/warren-bench.XXXXXX", base);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    if (mkdtemp(dir) == NULL)
        return -errno;
    return 0;
}

static int bench_tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void bench_tmpdir_remove(const char *dir)
{
    if (dir == NULL || strstr(dir, "/warren-bench.") == NULL)
        return; /* refuse anything that is not ours */
    nftw(dir, bench_tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

bool bench_path_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < len;
}

long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

int bench_self_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        return -EINVAL;
    *slash = '\0';
    return 0;
}

bool bench_file_is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool bench_which(const char *name, char *out, size_t len)
{
    const char *env = getenv("PATH");
    char paths[4096];
    snprintf(paths, sizeof(paths), "%s:/usr/sbin:/sbin", env != NULL ? env : "/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue;
        if (bench_path_join(out, len, dir, name) && bench_file_is_exec(out))
            return true;
    }
    return false;
}

void bench_sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

uint64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool bench_wait_file(const char *path, uint32_t timeout_ms)
{
    uint64_t end = bench_now_us() + (uint64_t)timeout_ms * 1000;
    while (!bench_interrupted()) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0)
            return true;
        if (bench_now_us() >= end)
            return false;
        bench_sleep_ms(20);
    }
    return false;
}

bool bench_file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char line[2048];
    bool found = false;
    int lines = 0;
    while (!found && lines++ < 1000000 && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

void bench_dump_log(const char *label, const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (size > (long)max)
        fseek(f, size - (long)max, SEEK_SET);
    else
        fseek(f, 0, SEEK_SET);
    fprintf(stderr, "---- last lines of %s (%s) ----\n", label, path);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of %s ----\n", label);
    fclose(f);
}
