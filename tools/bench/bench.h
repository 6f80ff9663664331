/*
 * bench.h: what the files of warren-bench share. The harness is a set of
 * small blocking helpers (processes, /proc readings, sockets, iperf3, an
 * in-process agent swarm) and one cmd_*.c file per subcommand that strings
 * them together. Private to tools/bench/.
 */
#ifndef BENCH_H
#define BENCH_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_EXIT_OK 0
#define BENCH_EXIT_USAGE 1
#define BENCH_EXIT_FAILED 3 /* ran, but a measurement or a path failed */

/* ---- subcommands (main.c) ---- */

struct bench_cmd {
    const char *name;
    const char *usage;       /* after "warren-bench <name> " */
    const char *description; /* shown by --help */
    int (*fn)(int argc, char **argv);
};

extern const struct bench_cmd cmd_tunnel_entry;
extern const struct bench_cmd cmd_gossip_entry;
extern const struct bench_cmd cmd_pool_entry;
extern const struct bench_cmd cmd_lb_entry;

/* Prints "warren-bench: <name>: <fmt>" to stderr. */
void bench_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a progress line to stderr, unless quiet. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_set_quiet(bool quiet);

/* ---- processes and the temp dir (bench_proc.c) ---- */

/*
 * Children are registered in a small process-wide table so that a signal
 * handler can stop them (the one piece of global mutable state: a handler
 * cannot be given a context pointer). Every child gets PR_SET_PDEATHSIG, so
 * it also dies if the bench itself is killed.
 */

/* Installs SIGINT/SIGTERM/SIGHUP handlers (SIGTERM to every registered child,
 * then a flag) and ignores SIGPIPE. */
void bench_signals_install(void);
/* True once SIGINT/SIGTERM/SIGHUP arrived: every loop checks it. */
bool bench_interrupted(void);

/* Starts argv[0] (a path) with stdin from /dev/null and stdout+stderr appended
 * to <log> (or to <out> for stdout when given). Returns the pid, or -1 with a
 * message. Registers the child. */
pid_t bench_spawn(char *const argv[], const char *log, const char *out);
/* Registers a pid that we forked ourselves (the echo server), or a
 * descendant of a child (sshd's per-connection processes), so that signals
 * and bench_stop_all() reach it. bench_stop() works on both. */
void bench_proc_register(pid_t pid);
/* Waits up to <timeout_ms> for <pid> to exit; returns its wait status, or -1 on
 * timeout (the child is left running). Unregisters it when reaped. */
int bench_wait(pid_t pid, uint32_t timeout_ms);
/* SIGTERM, up to <grace_ms>, then SIGKILL; reaps and unregisters. */
void bench_stop(pid_t pid, uint32_t grace_ms);
/* bench_stop() on every registered child, youngest first. */
void bench_stop_all(void);
bool bench_is_alive(pid_t pid);

/* utime + stime of <pid> in seconds (/proc/PID/stat); -1 if gone. */
double bench_proc_cpu_s(pid_t pid);
/* VmRSS of <pid> in KiB (/proc/PID/status); -1 if gone. */
long bench_proc_rss_kib(pid_t pid);
/* Fills <out> with the live descendants of <root> (not <root> itself); returns
 * how many (at most <max>). */
int bench_proc_descendants(pid_t root, pid_t *out, int max);
/* Sets the affinity of every thread of <pid> (0: the calling thread only). */
int bench_pin(pid_t pid, const cpu_set_t *set);

/* mkdtemp under $TMPDIR or /tmp; removal is recursive and bounded to <dir>. */
int bench_tmpdir_make(char *dir, size_t len);
void bench_tmpdir_remove(const char *dir);
/* "<dir>/<name>" into <buf>; false if it does not fit. */
bool bench_path_join(char *buf, size_t len, const char *dir, const char *name);

/* Raises RLIMIT_NOFILE to the hard limit (children inherit it); returns it. */
long bench_raise_nofile(void);
/* Directory of /proc/self/exe (the build tree's tools/ directory). */
int bench_self_dir(char *buf, size_t len);
bool bench_file_is_exec(const char *path);
/* Searches $PATH, then /usr/sbin and /sbin. */
bool bench_which(const char *name, char *out, size_t len);

/* Sleeps <ms>, cut short by a signal. */
void bench_sleep_ms(uint32_t ms);
uint64_t bench_now_us(void);

/* Waits for <path> to exist and be non-empty; false on timeout or signal. */
bool bench_wait_file(const char *path, uint32_t timeout_ms);
/* True when the file contains <needle>. */
bool bench_file_has(const char *path, const char *needle);
/* Copies the last <max> bytes of a log to stderr (for failures). */
void bench_dump_log(const char *label, const char *path, size_t max);

/* ---- sockets, echo server and clients (bench_net.c) ---- */

/* A free ephemeral port on 127.0.0.1 (bound to 0, read, closed). A tool that
 * cannot be told "port 0" gets one of these; the race is tiny on loopback. */
int bench_port_pick(uint16_t *port);
/* True when a TCP connect to 127.0.0.1:<port> succeeds within the deadline. */
bool bench_wait_port(uint16_t port, uint32_t timeout_ms);
/* One 1-byte echo round trip through <port>: connects, writes, reads. */
bool bench_probe_echo(uint16_t port, uint32_t timeout_ms);
/* Waits until bench_probe_echo() succeeds (every 50 ms); false on deadline. */
bool bench_wait_echo(uint16_t port, uint32_t timeout_ms);

/* Sends <p> (at most 512 bytes; n = 0: none) first on every connection of
 * bench_rtt_run, bench_streams_run and bench_bulk_run, and reads its echo
 * back where the target echoes. For routing by a ClientHello (sni mode). */
void bench_net_set_preamble(const uint8_t *p, size_t n);

/* Forks a discard server (reads and drops; epoll, one thread) on 127.0.0.1:0. */
pid_t bench_discard_start(uint16_t *port);
/* <streams> connections to <port>, each sending the preamble and then as much
 * as it can for <secs>; bits_per_s and bytes as written to the sockets. */
struct bench_bulk;
int bench_bulk_run(uint16_t port, uint32_t streams, double secs, struct bench_bulk *out);

/* Forks an echo server (epoll, one thread) on 127.0.0.1:0. */
pid_t bench_echo_start(uint16_t *port);

struct bench_rtt {
    uint32_t n; /* round trips measured */
    double p50_us;
    double p99_us;
    double mean_us;
};
/* <warmup> then <n> round trips of <size> bytes on one connection (blocking,
 * TCP_NODELAY). Stops at <deadline_ms>. Returns 0 or a negative errno. */
int bench_rtt_run(uint16_t port, uint32_t n, uint32_t warmup, uint32_t deadline_ms,
                  struct bench_rtt *out);

struct bench_streams {
    uint64_t ok;
    uint64_t failed;
    double secs;
    double per_s;
};
/* <conns> connections in flight from one epoll loop, each looping connect,
 * write 1 byte, read the echo, close, for <secs> seconds. */
int bench_streams_run(uint16_t port, uint32_t conns, double secs, struct bench_streams *out);

/* ---- iperf3 (bench_iperf.c) ---- */

struct bench_bulk {
    double bits_per_s; /* end.sum_received.bits_per_second */
    double bytes;      /* end.sum_received.bytes */
};
/* Runs "iperf3 -c 127.0.0.1 -p <port> -J -t <secs> [-P <parallel>]", JSON to
 * <json_path>, bounded by secs + 30 s. Returns 0 or -1 with a message. */
int bench_iperf_run(const char *iperf, uint16_t port, uint32_t secs, uint32_t parallel,
                    const char *json_path, const char *log, struct bench_bulk *out);

/* ---- in-process agent swarm (bench_swarm.c) ---- */

struct bench_swarm_opts {
    const char *node_addr; /* "127.0.0.1:PORT", the node's agent listener */
    const char *ca_file;
    const char *token_file;
    const char *tunnel;
    uint32_t n;           /* connections to hold */
    uint32_t concurrency; /* handshakes in flight at once */
    uint32_t deadline_ms; /* for all of them to be welcomed */
    pid_t node_pid;       /* measured while the connections are held */
};
struct bench_swarm_result {
    uint32_t welcomed;
    uint32_t failed;
    long node_rss_kib; /* VmRSS of the node with every connection held */
    long self_rss_delta_kib;
    double setup_s;
};
int bench_swarm_run(const struct bench_swarm_opts *o, struct bench_swarm_result *r);

#endif
