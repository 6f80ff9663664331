/*
 * bench_tunnel.h: the state of one "warren-bench tunnel" run, shared by
 * cmd_tunnel.c (options and the sequence of measurements), bench_paths.c
 * (starting and stopping the relays of each path) and bench_report.c (the
 * table and the JSON object).
 */
#ifndef BENCH_TUNNEL_H
#define BENCH_TUNNEL_H

#include <limits.h>

#include "bench.h"

enum bench_path_id {
    BENCH_P_DIRECT = 0, /* visitor -> target */
    BENCH_P_WARREN,     /* visitor -> warren-node -> TLS tunnel -> warren-agent -> target */
    BENCH_P_SSH,        /* visitor -> sshd -> ssh -R (default cipher) -> target */
    BENCH_P_SSH_AES,    /* the same with -c aes128-gcm@openssh.com */
    BENCH_P_HAPROXY,    /* visitor -> haproxy (mode tcp) -> target */
    BENCH_P_LB,         /* visitor -> warren-lb (tcp listener) -> target */
    BENCH_P__COUNT      /* must be last */
};

/* Measurements, for --only. */
enum bench_meas {
    BENCH_M_BULK = 1u << 0,    /* iperf3 1 and 8 streams, relay CPU per GB */
    BENCH_M_RTT = 1u << 1,     /* 64-byte round trips, unpinned and on one core */
    BENCH_M_STREAMS = 1u << 2, /* new streams per second */
    BENCH_M_RSS = 1u << 3,     /* node RSS idle and per idle agent connection */
    BENCH_M_ALL = 0xf,
};

/* One path's figures; a negative value means "not measured". */
struct bench_figures {
    double bulk1_gbps;
    double bulk8_gbps;
    double cpu_s_per_gb;
    double rtt_p50_us, rtt_p99_us;   /* unpinned */
    double rtt1_p50_us, rtt1_p99_us; /* every process on CPU 0 */
    double streams_per_s;
    double streams_failed;
};

#define BENCH_PATH_MAX_PIDS 8

struct bench_path {
    const char *name;  /* key in --paths and in the JSON */
    const char *label; /* column header */
    bool wanted;
    bool up;
    char note[200];                  /* why the path was skipped or failed */
    uint16_t bulk_port;              /* where the visitor connects for iperf3 */
    uint16_t echo_port;              /* ... and for the echo tests */
    pid_t pids[BENCH_PATH_MAX_PIDS]; /* started for this path (and sshd's sessions),
                                      * in start order; all are relays */
    int n_pids;
    struct bench_figures fig;
};

struct bench_tunnel {
    /* options */
    bool quick;
    bool json;
    unsigned only; /* enum bench_meas bits */
    char node_bin[PATH_MAX], agent_bin[PATH_MAX], ctl_bin[PATH_MAX], lb_bin[PATH_MAX];
    char iperf_bin[PATH_MAX], haproxy_bin[PATH_MAX], sshd_bin[PATH_MAX], ssh_bin[PATH_MAX],
        keygen_bin[PATH_MAX];
    bool have_iperf, have_haproxy, have_sshd, have_ssh;
    uint32_t bulk_secs;
    uint32_t rtt_n, rtt_warmup;
    uint32_t streams_threads;
    double streams_secs;
    uint32_t swarm_n;

    /* the run */
    char tmp[PATH_MAX];
    char ca_dir[PATH_MAX], ca_crt[PATH_MAX], node_crt[PATH_MAX], node_key[PATH_MAX],
        token[PATH_MAX];
    pid_t echo_pid;
    uint16_t echo_port;
    pid_t iperf_pid;
    uint16_t iperf_port;
    cpu_set_t all_cpus; /* the bench's affinity at start, restored after pinning */
    struct bench_path paths[BENCH_P__COUNT];
    int failures;
    char notes[8][240];
    int n_notes;

    /* node memory */
    long rss_idle_kib;
    long rss_loaded_kib;
    uint32_t rss_conns; /* connections welcomed and held */
    double rss_per_conn_kib;
    double swarm_setup_s;

    /* machine */
    char date[64];
    char cpu_model[128];
    long ncpu;
    char kernel[128];
};

/* bench_paths.c */
/* Starts the relays of <p> (nothing for direct) and waits until an echo goes
 * through; on failure p->up stays false and p->note says why. */
void bench_path_start(struct bench_tunnel *bt, struct bench_path *p);
void bench_path_stop(struct bench_path *p);
/* The pids whose CPU time counts as relay work for <p>; returns how many. */
int bench_path_relays(const struct bench_path *p, pid_t *out, int max);
/* Starts a node with no agents and returns its pid; fills its agent address. */
pid_t bench_node_start(struct bench_tunnel *bt, const char *tag, bool entries, char *listen,
                       size_t listen_len, uint16_t *bulk_port, uint16_t *echo_port);
/* Runs warrenctl ca init / cert issue / token create into the temp dir. */
int bench_identity_make(struct bench_tunnel *bt);
void bench_tunnel_note(struct bench_tunnel *bt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* bench_report.c */
void bench_report_text(const struct bench_tunnel *bt, FILE *f);
int bench_report_json(const struct bench_tunnel *bt, FILE *f);
void bench_machine_read(struct bench_tunnel *bt);

#endif
