/*
 * bench_gossip.h: the state of one "warren-bench gossip" run, shared by
 * cmd_gossip.c (options, clusters, the timed scenarios), bench_gossip_net.c
 * (reading a member's view: warren's admin API over HTTP, Serf's RPC in
 * bench_serf.c), bench_gossip_ipt.c (iptables byte counters) and
 * bench_gossip_report.c (the table and the JSON object).
 */
#ifndef BENCH_GOSSIP_H
#define BENCH_GOSSIP_H

#include <limits.h>

#include "bench.h"

/* The bench's process table (bench_proc.c) holds 64 children: one cluster. */
#define BENCH_G_MAX_N 64
#define BENCH_G_MIN_N 3
#define BENCH_G_MAX_SIZES 8
#define BENCH_G_MAX_RUNS 9

enum bench_gsys {
    BENCH_GSYS_WARREN = 0, /* warren-node processes with --cluster-key */
    BENCH_GSYS_SERF,       /* serf agent processes */
    BENCH_GSYS__COUNT      /* must be last */
};

/* A member as one observer sees it. Serf's "failed" reads DEAD. */
enum bench_gstate {
    BENCH_GS_UNKNOWN = 0, /* not in the view */
    BENCH_GS_ALIVE,
    BENCH_GS_SUSPECT, /* warren only: Serf's members call does not show it */
    BENCH_GS_LEAVING, /* serf only: leave intent seen, not yet left */
    BENCH_GS_DEAD,
    BENCH_GS_LEFT,
};

/* One observer's view of members 0..n-1 (ids "<prefix><index>"). */
struct bench_gview {
    uint8_t st[BENCH_G_MAX_N]; /* enum bench_gstate */
    uint32_t foreign;          /* ids that are not ours (should stay 0) */
};

/* Figures of one run; negative = not measured (or timed out, see *_timeout). */
struct bench_grun {
    double start_ms;  /* joiners spawned -> every member answers its view (process start) */
    double join_ms;   /* joiners spawned -> every member sees n ALIVE */
    double fail_ms;   /* kill -9 -> every other member sees it DEAD */
    double rejoin_ms; /* restart -> every other member sees it ALIVE */
    double leave_ms;  /* SIGTERM (serf: SIGINT) -> every other member sees it LEFT */
    bool join_timeout, fail_timeout, rejoin_timeout, leave_timeout;
    int false_dead; /* (observer, member) pairs seen DEAD while the member ran */
};

/* One system at one cluster size. */
struct bench_gsize {
    uint32_t n;
    bool measured;
    char note[200]; /* why not measured, or what went wrong */
    struct bench_grun runs[BENCH_G_MAX_RUNS];
    uint32_t n_runs; /* runs attempted */
    /* Idle, from the first run only: negative = not measured. */
    double idle_secs;
    double idle_wire_bps;    /* IP bytes sent per member per second (iptables) */
    double idle_pkts_ps;     /* packets sent per member per second (iptables) */
    double idle_payload_bps; /* warren only: its own gossip bytes_out counter */
    double rss_median_kib;   /* VmRSS per member after the idle window */
    double rss_max_kib;
    /* Polling, over every wait of every run: the time resolution of the figures. */
    uint64_t poll_rounds;
    uint64_t poll_us;
};

struct bench_gossip {
    /* options */
    bool quick;
    bool json;
    bool keep_tmp;
    bool want[BENCH_GSYS__COUNT];
    uint32_t sizes[BENCH_G_MAX_SIZES];
    uint32_t n_sizes;
    uint32_t runs;
    uint32_t idle_secs; /* 0: the push/pull period at that size (30 s, 60 s above 32) */
    char node_bin[PATH_MAX], ctl_bin[PATH_MAX], serf_bin[PATH_MAX], ipt_bin[PATH_MAX];
    char serf_version[64];

    /* the run */
    char tmp[PATH_MAX];
    char ca_dir[PATH_MAX], ca_crt[PATH_MAX], node_crt[PATH_MAX], node_key[PATH_MAX],
        cluster_key[PATH_MAX];
    char serf_key[64];     /* the same 32-byte key, standard base64 for serf -encrypt */
    uint16_t port_base;    /* BENCH_G_PORTS ports from here are ours */
    bool ipt_ok;           /* iptables counters usable (root, iptables present) */
    char ipt_chain[32];    /* ours while non-empty: bench_ipt_stop() removes it */
    int ipt_n;             /* ranges counted */
    long baseline_rss_kib; /* warren-node without --cluster-key, idle */
    struct bench_gsize res[BENCH_GSYS__COUNT][BENCH_G_MAX_SIZES];
    int failures;
    char notes[8][240];
    int n_notes;

    /* machine */
    char date[64];
    long ncpu;
    char kernel[128];
};

/* Port layout from port_base: warren gossip, warren admin, serf bind, serf rpc. */
#define BENCH_G_PORTS (4 * BENCH_G_MAX_N)
uint16_t bench_gossip_port(const struct bench_gossip *g, enum bench_gsys sys, bool second,
                           uint32_t i);
void bench_gossip_note(struct bench_gossip *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- reading views (bench_gossip_net.c, bench_serf.c) ---- */

/* A blocking TCP connection to 127.0.0.1:<port> with send/receive timeouts
 * and TCP_NODELAY. Returns the fd or -errno. */
int bench_gnet_dial(uint16_t port, uint32_t timeout_ms);
bool bench_gnet_write_all(int fd, const void *p, size_t len);
/* Index of "<prefix><digits>" when below <n>; -1 otherwise. */
int bench_gnet_member_index(const char *id, size_t len, const char *prefix, uint32_t n);

/* GET /v1/members on a keep-alive connection to a warren-node's admin API.
 * Returns 0, or a negative errno / -EPROTO; on error the caller closes <fd>. */
int bench_warren_members(int fd, const char *prefix, uint32_t n, struct bench_gview *v);
/* The value of the first /metrics line starting with <series> (for example
 * 'warren_gossip_bytes_total{direction="out"}'). 0 or a negative errno. */
int bench_warren_metric(int fd, const char *series, double *out);

/* Connects to a serf agent's RPC address and does the handshake. Returns the
 * fd or a negative errno. <seq> is the connection's request counter. */
int bench_serf_dial(uint16_t port, uint32_t timeout_ms, uint64_t *seq);
/* The "members" RPC. 0, or a negative errno / -EPROTO (then close <fd>). */
int bench_serf_members(int fd, uint64_t *seq, const char *prefix, uint32_t n,
                       struct bench_gview *v);

/* ---- iptables byte counters (bench_gossip_ipt.c) ---- */

/* Counts, in a chain of our own jumped to from OUTPUT on lo, the UDP and TCP
 * packets to ports [lo, hi] and the TCP packets from them: every gossip packet
 * a member of that range sends, counted once. One range per system. */
struct bench_ipt_range {
    uint16_t lo, hi;
};
struct bench_ipt_count {
    uint64_t bytes, pkts;
};
int bench_ipt_start(struct bench_gossip *g, const struct bench_ipt_range *r, int n);
/* Fills out[0..n-1] (n as given to start). 0 or -1 with a message. */
int bench_ipt_read(struct bench_gossip *g, struct bench_ipt_count *out, int n);
/* Removes the chain and the jump; safe to call when start failed or twice. */
void bench_ipt_stop(struct bench_gossip *g);

/* ---- report (bench_gossip_report.c) ---- */

void bench_gossip_machine_read(struct bench_gossip *g);
void bench_gossip_report_text(const struct bench_gossip *g, FILE *f);
int bench_gossip_report_json(const struct bench_gossip *g, FILE *f);

#endif
