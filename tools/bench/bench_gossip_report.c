/*
 * bench_gossip_report.c: what "warren-bench gossip" prints: per figure, one
 * row per cluster size with warren's and Serf's medians over the runs (and
 * their range), the Serf figures quoted in the issue, the target and
 * whether it is met; then the same as one JSON object (jansson). It reads
 * results; it measures nothing.
 */
#include "bench_gossip.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- the targets and Serf reference ---- */

#define BENCH_GT_JOIN_RATIO 0.5     /* join <= 0.5x Serf's median, every N */
#define BENCH_GT_JOIN_MAX_MS 2000.0 /* ... and no run over 2 s at N = 64 */
#define BENCH_GT_FAIL_MS 4000.0     /* failure detection median at N = 32 */
#define BENCH_GT_LEAVE_MS 500.0     /* leave seen by all at N = 32 */
#define BENCH_GT_IDLE_BPS 450.0     /* idle traffic per node */
#define BENCH_GT_MEM_MIB 2.0        /* gossip's share of node memory at N = 64 */

/* Serf 0.9.4 with memberlist's defaults, medians of 3 (from the issue). */
static const uint32_t bench_gref_n[] = {5, 16, 32, 64};
static const double bench_gref_join_ms[] = {141, 376, 446, 847};
static const double bench_gref_fail_ms[] = {5800, 6200, 9000, 8700};
static const double bench_gref_leave_ms[] = {560, 720, 790, 1260};
static const char bench_gref_text[] =
    "Serf 0.9.4, memberlist defaults, medians of 3, N = 5/16/32/64: join 141/376/446/847 ms "
    "(tails 34 s at N = 32, ~70 s at N = 64), failure detection 5.8/6.2/9.0/8.7 s, rejoin "
    "0.30-0.62 s, leave 0.56/0.72/0.79/1.26 s, 14-15 MiB RSS per agent, ~300 B/s per agent idle";

static double bench_gref(const double *ref, uint32_t n)
{
    for (size_t i = 0; i < sizeof(bench_gref_n) / sizeof(bench_gref_n[0]); i++)
        if (bench_gref_n[i] == n)
            return ref[i];
    return -1;
}

void bench_gossip_machine_read(struct bench_gossip *g)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(g->date, sizeof(g->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    g->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(g->kernel, sizeof(g->kernel), "%.30s %.90s", u.sysname, u.release);
}

/* ---- statistics over the runs ---- */

struct bench_gstat {
    double med, min, max; /* over the runs that produced the figure */
    int n;                /* such runs */
    int timeouts;         /* runs where the figure timed out */
};

struct bench_gfig {
    const char *key; /* JSON key */
    size_t off;      /* the double in struct bench_grun */
    size_t toff;     /* its timeout flag */
};

static const struct bench_gfig bench_gfigs[] = {
    {"join_ms", offsetof(struct bench_grun, join_ms), offsetof(struct bench_grun, join_timeout)},
    {"fail_ms", offsetof(struct bench_grun, fail_ms), offsetof(struct bench_grun, fail_timeout)},
    {"rejoin_ms", offsetof(struct bench_grun, rejoin_ms),
     offsetof(struct bench_grun, rejoin_timeout)},
    {"leave_ms", offsetof(struct bench_grun, leave_ms), offsetof(struct bench_grun, leave_timeout)},
    /* No timeout of its own: a join that times out may still have every member serving. */
    {"start_ms", offsetof(struct bench_grun, start_ms), offsetof(struct bench_grun, join_timeout)},
};
enum {
    BENCH_GF_JOIN,
    BENCH_GF_FAIL,
    BENCH_GF_REJOIN,
    BENCH_GF_LEAVE,
    BENCH_GF_START,
    BENCH_GF__COUNT /* must be last */
};

static int bench_gcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct bench_gstat bench_gstat_of(const struct bench_gsize *sz, int fig)
{
    struct bench_gstat st = {-1, -1, -1, 0, 0};
    double v[BENCH_G_MAX_RUNS];
    for (uint32_t r = 0; r < sz->n_runs; r++) {
        double x;
        bool t;
        memcpy(&x, (const char *)&sz->runs[r] + bench_gfigs[fig].off, sizeof(x));
        memcpy(&t, (const char *)&sz->runs[r] + bench_gfigs[fig].toff, sizeof(t));
        if (x >= 0)
            v[st.n++] = x;
        st.timeouts += t;
    }
    if (st.n == 0)
        return st;
    qsort(v, (size_t)st.n, sizeof(v[0]), bench_gcmp);
    st.med = st.n % 2 ? v[st.n / 2] : (v[st.n / 2 - 1] + v[st.n / 2]) / 2;
    st.min = v[0];
    st.max = v[st.n - 1];
    return st;
}

static int bench_gfalse(const struct bench_gsize *sz)
{
    int f = 0;
    for (uint32_t r = 0; r < sz->n_runs; r++)
        f += sz->runs[r].false_dead;
    return f;
}

/* ---- text ---- */

static const char *bench_gstatus(bool have, bool met)
{
    return !have ? "n/a" : met ? "met" : "MISSED";
}

/* "med [min-max]" in <unit>s (<div> per ms), "+k t/o" for timed-out runs. */
static void bench_gcell(char *buf, size_t len, const struct bench_gstat *st, double div, int prec)
{
    if (st->n == 0) {
        snprintf(buf, len, "%s", st->timeouts > 0 ? "timeout" : "-");
        return;
    }
    int k;
    if (st->n == 1)
        k = snprintf(buf, len, "%.*f", prec, st->med / div);
    else
        k = snprintf(buf, len, "%.*f [%.*f-%.*f]", prec, st->med / div, prec, st->min / div, prec,
                     st->max / div);
    if (st->timeouts > 0 && k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, " +%d t/o", st->timeouts);
}

static void bench_gnum(char *buf, size_t len, double v, int prec)
{
    if (v < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f", prec, v);
}

static void bench_ghead(FILE *f, const char *title)
{
    fprintf(f, "\n%s\n", title);
    fprintf(f, "  %4s %22s %22s %10s %24s %7s\n", "N", "warren", "serf", "serf ref", "target",
            "status");
}

static void bench_grow(FILE *f, uint32_t n, const char *w, const char *s, const char *ref,
                       const char *target, const char *status)
{
    fprintf(f, "  %4u %22s %22s %10s %24s %7s\n", n, w, s, ref, target, status);
}

static const struct bench_gsize *bench_gres(const struct bench_gossip *g, enum bench_gsys sys,
                                            uint32_t s)
{
    return &g->res[sys][s];
}

/* Join: <= 0.5x Serf's median at every N (this run's Serf, else the issue's). */
static bool bench_gjoin_target(const struct bench_gossip *g, uint32_t s, char *t, size_t tl,
                               const char **status)
{
    struct bench_gstat w = bench_gstat_of(bench_gres(g, BENCH_GSYS_WARREN, s), BENCH_GF_JOIN);
    struct bench_gstat sf = bench_gstat_of(bench_gres(g, BENCH_GSYS_SERF, s), BENCH_GF_JOIN);
    uint32_t n = g->sizes[s];
    double base = sf.n > 0 ? sf.med : bench_gref(bench_gref_join_ms, n);
    if (base < 0) {
        snprintf(t, tl, "<= 0.5x serf");
        *status = "n/a";
        return false;
    }
    double lim = BENCH_GT_JOIN_RATIO * base;
    snprintf(t, tl, "<= %.0f (0.5x serf%s)", lim, sf.n > 0 ? "" : " ref");
    bool have = w.n > 0 || w.timeouts > 0;
    bool met = w.n > 0 && w.timeouts == 0 && w.med <= lim;
    *status = bench_gstatus(have, met);
    return have && met;
}

static void bench_gblock_runs(FILE *f, const struct bench_gossip *g, const char *title, int fig,
                              double div, int prec, const double *ref)
{
    bench_ghead(f, title);
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        uint32_t n = g->sizes[s];
        char w[48], sf[48], rb[24], t[48] = "-";
        struct bench_gstat ws = bench_gstat_of(bench_gres(g, BENCH_GSYS_WARREN, s), fig);
        struct bench_gstat ss = bench_gstat_of(bench_gres(g, BENCH_GSYS_SERF, s), fig);
        bench_gcell(w, sizeof(w), &ws, div, prec);
        bench_gcell(sf, sizeof(sf), &ss, div, prec);
        double rv = ref != NULL ? bench_gref(ref, n) : -1;
        bench_gnum(rb, sizeof(rb), rv >= 0 ? rv / div : -1, prec);
        const char *status = "";
        bool have = ws.n > 0 || ws.timeouts > 0;
        if (fig == BENCH_GF_JOIN) {
            bench_gjoin_target(g, s, t, sizeof(t), &status);
        } else if (fig == BENCH_GF_FAIL && n == 32) {
            int fp = bench_gfalse(bench_gres(g, BENCH_GSYS_WARREN, s));
            snprintf(t, sizeof(t), "<= %.0f, 0 false pos.", BENCH_GT_FAIL_MS / div);
            status =
                bench_gstatus(have, ws.n > 0 && !ws.timeouts && ws.med <= BENCH_GT_FAIL_MS && !fp);
        } else if (fig == BENCH_GF_LEAVE && n == 32) {
            snprintf(t, sizeof(t), "<= %.0f", BENCH_GT_LEAVE_MS / div);
            status = bench_gstatus(have, ws.n > 0 && !ws.timeouts && ws.med <= BENCH_GT_LEAVE_MS);
        }
        bench_grow(f, n, w, sf, rb, t, status);
    }
}

/* N = 64: no warren join run over 2 s. */
static void bench_gjoin_max(FILE *f, const struct bench_gossip *g)
{
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        if (g->sizes[s] != 64)
            continue;
        struct bench_gstat ws = bench_gstat_of(bench_gres(g, BENCH_GSYS_WARREN, s), BENCH_GF_JOIN);
        struct bench_gstat ss = bench_gstat_of(bench_gres(g, BENCH_GSYS_SERF, s), BENCH_GF_JOIN);
        char w[32], sf[32], t[32];
        bench_gnum(w, sizeof(w), ws.max, 0);
        bench_gnum(sf, sizeof(sf), ss.max, 0);
        snprintf(t, sizeof(t), "every run <= %.0f", BENCH_GT_JOIN_MAX_MS);
        fprintf(f, "  %4s %22s %22s %10s %24s %7s\n", "max", w, sf, "~70000", t,
                bench_gstatus(ws.n > 0 || ws.timeouts > 0,
                              ws.n > 0 && !ws.timeouts && ws.max <= BENCH_GT_JOIN_MAX_MS));
    }
}

static void bench_gblock_false(FILE *f, const struct bench_gossip *g)
{
    bench_ghead(f, "false positives: members seen dead while running, all runs and scenarios");
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        char w[16], sf[16];
        const struct bench_gsize *ws = bench_gres(g, BENCH_GSYS_WARREN, s);
        const struct bench_gsize *ss = bench_gres(g, BENCH_GSYS_SERF, s);
        bench_gnum(w, sizeof(w), ws->measured ? bench_gfalse(ws) : -1, 0);
        bench_gnum(sf, sizeof(sf), ss->measured ? bench_gfalse(ss) : -1, 0);
        bool t32 = g->sizes[s] == 32;
        bench_grow(f, g->sizes[s], w, sf, "-", t32 ? "0" : "-",
                   t32 ? bench_gstatus(ws->measured, bench_gfalse(ws) == 0) : "");
    }
}

static void bench_gblock_idle(FILE *f, const struct bench_gossip *g)
{
    bench_ghead(f, "idle traffic: IP bytes sent per member per second on the gossip ports "
                   "(iptables; first run)");
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        const struct bench_gsize *ws = bench_gres(g, BENCH_GSYS_WARREN, s);
        const struct bench_gsize *ss = bench_gres(g, BENCH_GSYS_SERF, s);
        char w[48], sf[48], t[24];
        bench_gnum(w, sizeof(w), ws->idle_wire_bps, 0);
        bench_gnum(sf, sizeof(sf), ss->idle_wire_bps, 0);
        if (ws->idle_pkts_ps >= 0) {
            size_t l = strlen(w);
            snprintf(w + l, sizeof(w) - l, " (%.1f pkt/s)", ws->idle_pkts_ps);
        }
        if (ss->idle_pkts_ps >= 0) {
            size_t l = strlen(sf);
            snprintf(sf + l, sizeof(sf) - l, " (%.1f pkt/s)", ss->idle_pkts_ps);
        }
        snprintf(t, sizeof(t), "<= %.0f", BENCH_GT_IDLE_BPS);
        bench_grow(f, g->sizes[s], w, sf, "~300", t,
                   bench_gstatus(ws->idle_wire_bps >= 0, ws->idle_wire_bps <= BENCH_GT_IDLE_BPS));
    }
    bench_ghead(f, "idle traffic: warren's own counter of gossip bytes sent (sealed payload, no "
                   "IP/UDP/TCP headers), per member per second");
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        const struct bench_gsize *ws = bench_gres(g, BENCH_GSYS_WARREN, s);
        char w[24], t[24];
        bench_gnum(w, sizeof(w), ws->idle_payload_bps, 0);
        snprintf(t, sizeof(t), "<= %.0f", BENCH_GT_IDLE_BPS);
        bench_grow(
            f, g->sizes[s], w, "-", "-", t,
            bench_gstatus(ws->idle_payload_bps >= 0, ws->idle_payload_bps <= BENCH_GT_IDLE_BPS));
    }
}

static void bench_gblock_rss(FILE *f, const struct bench_gossip *g)
{
    bench_ghead(f, "RSS per member, MiB: median [max] over the members, after the idle window");
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        const struct bench_gsize *ws = bench_gres(g, BENCH_GSYS_WARREN, s);
        const struct bench_gsize *ss = bench_gres(g, BENCH_GSYS_SERF, s);
        char w[48] = "-", sf[48] = "-";
        if (ws->rss_median_kib > 0)
            snprintf(w, sizeof(w), "%.1f [%.1f]", ws->rss_median_kib / 1024,
                     ws->rss_max_kib / 1024);
        if (ss->rss_median_kib > 0)
            snprintf(sf, sizeof(sf), "%.1f [%.1f]", ss->rss_median_kib / 1024,
                     ss->rss_max_kib / 1024);
        bench_grow(f, g->sizes[s], w, sf, "14-15", "-", "");
    }
    char title[200];
    char base[32] = "not measured";
    if (g->baseline_rss_kib > 0)
        snprintf(base, sizeof(base), "%.1f MiB", g->baseline_rss_kib / 1024.0);
    snprintf(title, sizeof(title),
             "gossip's share of warren-node memory, MiB: median member RSS minus the same node "
             "idle without --cluster-key (%s)",
             base);
    bench_ghead(f, title);
    for (uint32_t s = 0; s < g->n_sizes; s++) {
        const struct bench_gsize *ws = bench_gres(g, BENCH_GSYS_WARREN, s);
        bool have = ws->rss_median_kib > 0 && g->baseline_rss_kib > 0;
        double share = have ? (ws->rss_median_kib - (double)g->baseline_rss_kib) / 1024 : -1;
        char w[24], t[24] = "-";
        if (have)
            snprintf(w, sizeof(w), "%.2f", share);
        else
            snprintf(w, sizeof(w), "-");
        bool t64 = g->sizes[s] == 64;
        if (t64)
            snprintf(t, sizeof(t), "<= %.0f", BENCH_GT_MEM_MIB);
        bench_grow(f, g->sizes[s], w, "-", "-", t,
                   t64 ? bench_gstatus(have, share <= BENCH_GT_MEM_MIB) : "");
    }
}

void bench_gossip_report_text(const struct bench_gossip *g, FILE *f)
{
    fprintf(f, "\nwarren-bench gossip: clusters of N warren-node (gossip on) and of N serf agents "
               "on 127.0.0.1, joined through member 0\n");
    fprintf(f, "date %s; %ld CPUs; %s; 'serf version': %s\n", g->date, g->ncpu, g->kernel,
            g->want[BENCH_GSYS_SERF] ? g->serf_version : "not run");
    fprintf(f,
            "mode %s: %u run(s) per size and system, figures are medians [min-max] over "
            "runs; idle window %s\n",
            g->quick ? "--quick" : "full", g->runs,
            g->idle_secs ? "as given" : "30 s (60 s above 32 members)");
    fprintf(f, "serf ref = the issue's Serf 0.9.4 figures; every time is until the last member "
               "sees it\n");

    bench_gblock_runs(f, g, "join convergence, ms: joiners spawned -> every member sees N alive",
                      BENCH_GF_JOIN, 1, 0, bench_gref_join_ms);
    bench_gjoin_max(f, g);
    bench_gblock_runs(f, g,
                      "  of which process start, ms: joiners spawned -> every member answers "
                      "its view",
                      BENCH_GF_START, 1, 0, NULL);
    bench_gblock_runs(f, g, "failure detection, s: kill -9 -> every other member sees it dead",
                      BENCH_GF_FAIL, 1000, 2, bench_gref_fail_ms);
    bench_gblock_runs(f, g,
                      "rejoin, ms: killed member restarted -> every other member sees it "
                      "alive (serf ref: 300-620)",
                      BENCH_GF_REJOIN, 1, 0, NULL);
    bench_gblock_runs(f, g, "leave, ms: SIGTERM (serf: SIGINT) -> every other member sees it left",
                      BENCH_GF_LEAVE, 1, 0, bench_gref_leave_ms);
    bench_gblock_false(f, g);
    bench_gblock_idle(f, g);
    bench_gblock_rss(f, g);

    fprintf(f, "\npoll round (the figures' resolution), mean ms:");
    for (int sys = 0; sys < BENCH_GSYS__COUNT; sys++) {
        for (uint32_t s = 0; s < g->n_sizes; s++) {
            const struct bench_gsize *sz = bench_gres(g, (enum bench_gsys)sys, s);
            if (sz->poll_rounds > 0)
                fprintf(f, " %s N=%u %.1f;", sys == BENCH_GSYS_WARREN ? "warren" : "serf", sz->n,
                        (double)sz->poll_us / 1000.0 / (double)sz->poll_rounds);
        }
    }
    fprintf(f, "\n");
    fprintf(f, "\nserf ref (issue): %s\n", bench_gref_text);
    bool header = false;
    for (int sys = 0; sys < BENCH_GSYS__COUNT; sys++) {
        for (uint32_t s = 0; s < g->n_sizes; s++) {
            const struct bench_gsize *sz = bench_gres(g, (enum bench_gsys)sys, s);
            if (sz->note[0] == '\0')
                continue;
            if (!header)
                fprintf(f, "notes:\n");
            header = true;
            fprintf(f, "  %s N=%u: %s\n", sys == BENCH_GSYS_WARREN ? "warren" : "serf", sz->n,
                    sz->note);
        }
    }
    for (int i = 0; i < g->n_notes; i++) {
        if (!header)
            fprintf(f, "notes:\n");
        header = true;
        fprintf(f, "  %s\n", g->notes[i]);
    }
}

/* ---- JSON ---- */

static void bench_gjson_num(json_t *o, const char *key, double v)
{
    json_object_set_new(o, key, v >= 0 ? json_real(v) : json_null());
}

static json_t *bench_gjson_size(const struct bench_gossip *g, enum bench_gsys sys,
                                const struct bench_gsize *sz)
{
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(sz->n));
    json_object_set_new(o, "measured", json_boolean(sz->measured));
    if (sz->note[0] != '\0')
        json_object_set_new(o, "note", json_string(sz->note));
    json_t *runs = json_array();
    for (uint32_t r = 0; r < sz->n_runs; r++) {
        const struct bench_grun *gr = &sz->runs[r];
        json_t *ro = json_object();
        bench_gjson_num(ro, "start_ms", gr->start_ms);
        bench_gjson_num(ro, "join_ms", gr->join_ms);
        bench_gjson_num(ro, "fail_ms", gr->fail_ms);
        bench_gjson_num(ro, "rejoin_ms", gr->rejoin_ms);
        bench_gjson_num(ro, "leave_ms", gr->leave_ms);
        json_object_set_new(ro, "false_dead", json_integer(gr->false_dead));
        json_array_append_new(runs, ro);
    }
    json_object_set_new(o, "runs", runs);
    json_t *med = json_object();
    for (int fig = 0; fig < BENCH_GF__COUNT; fig++) {
        struct bench_gstat st = bench_gstat_of(sz, fig);
        json_t *so = json_object();
        bench_gjson_num(so, "median", st.med);
        bench_gjson_num(so, "min", st.min);
        bench_gjson_num(so, "max", st.max);
        json_object_set_new(so, "runs", json_integer(st.n));
        json_object_set_new(so, "timeouts", json_integer(st.timeouts));
        json_object_set_new(med, bench_gfigs[fig].key, so);
    }
    json_object_set_new(o, "stats", med);
    json_object_set_new(o, "false_dead", json_integer(bench_gfalse(sz)));
    bench_gjson_num(o, "poll_round_ms",
                    sz->poll_rounds > 0 ? (double)sz->poll_us / 1000.0 / (double)sz->poll_rounds
                                        : -1);
    json_t *idle = json_object();
    bench_gjson_num(idle, "secs", sz->idle_secs);
    bench_gjson_num(idle, "wire_bytes_per_member_s", sz->idle_wire_bps);
    bench_gjson_num(idle, "packets_per_member_s", sz->idle_pkts_ps);
    bench_gjson_num(idle, "payload_bytes_per_member_s", sz->idle_payload_bps);
    json_object_set_new(o, "idle", idle);
    json_t *rss = json_object();
    bench_gjson_num(rss, "median_kib", sz->rss_median_kib);
    bench_gjson_num(rss, "max_kib", sz->rss_max_kib);
    bool share = sys == BENCH_GSYS_WARREN && sz->rss_median_kib > 0 && g->baseline_rss_kib > 0;
    bench_gjson_num(rss, "gossip_share_kib",
                    share ? sz->rss_median_kib - (double)g->baseline_rss_kib : -1);
    json_object_set_new(o, "rss", rss);
    return o;
}

int bench_gossip_report_json(const struct bench_gossip *g, FILE *f)
{
    json_t *root = json_object();
    json_object_set_new(root, "bench", json_string("gossip"));
    json_object_set_new(root, "date", json_string(g->date));
    json_t *m = json_object();
    json_object_set_new(m, "cpus", json_integer(g->ncpu));
    json_object_set_new(m, "kernel", json_string(g->kernel));
    json_object_set_new(root, "machine", m);
    json_t *p = json_object();
    json_object_set_new(p, "quick", json_boolean(g->quick));
    json_object_set_new(p, "runs", json_integer(g->runs));
    json_t *sizes = json_array();
    for (uint32_t s = 0; s < g->n_sizes; s++)
        json_array_append_new(sizes, json_integer(g->sizes[s]));
    json_object_set_new(p, "sizes", sizes);
    json_object_set_new(p, "idle_secs", g->idle_secs ? json_integer(g->idle_secs) : json_null());
    json_object_set_new(p, "port_base", json_integer(g->port_base));
    json_object_set_new(p, "serf_version",
                        g->want[BENCH_GSYS_SERF] ? json_string(g->serf_version) : json_null());
    json_object_set_new(root, "params", p);
    bench_gjson_num(root, "warren_baseline_rss_kib",
                    g->baseline_rss_kib > 0 ? (double)g->baseline_rss_kib : -1);
    json_t *systems = json_object();
    for (int sys = 0; sys < BENCH_GSYS__COUNT; sys++) {
        json_t *arr = json_array();
        for (uint32_t s = 0; s < g->n_sizes; s++)
            json_array_append_new(arr, bench_gjson_size(g, (enum bench_gsys)sys,
                                                        bench_gres(g, (enum bench_gsys)sys, s)));
        json_object_set_new(systems, sys == BENCH_GSYS_WARREN ? "warren" : "serf", arr);
    }
    json_object_set_new(root, "systems", systems);
    json_t *t = json_object();
    json_object_set_new(t, "join_max_ratio_to_serf", json_real(BENCH_GT_JOIN_RATIO));
    json_object_set_new(t, "join_max_ms_n64", json_real(BENCH_GT_JOIN_MAX_MS));
    json_object_set_new(t, "fail_median_ms_n32", json_real(BENCH_GT_FAIL_MS));
    json_object_set_new(t, "leave_ms_n32", json_real(BENCH_GT_LEAVE_MS));
    json_object_set_new(t, "idle_bytes_per_node_s", json_real(BENCH_GT_IDLE_BPS));
    json_object_set_new(t, "gossip_mem_mib_n64", json_real(BENCH_GT_MEM_MIB));
    json_object_set_new(root, "targets", t);
    json_object_set_new(root, "serf_reference", json_string(bench_gref_text));
    json_t *notes = json_array();
    for (int i = 0; i < g->n_notes; i++)
        json_array_append_new(notes, json_string(g->notes[i]));
    json_object_set_new(root, "notes", notes);
    json_object_set_new(root, "failures", json_integer(g->failures));
    int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', f);
    json_decref(root);
    return rc;
}
