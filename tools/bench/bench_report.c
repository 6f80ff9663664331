/*
 * bench_report.c: what "warren-bench tunnel" prints: a table of figures per
 * path, warren's figures against the issue's targets with ratios to the
 * other paths, the anchors measured by the issue author, and the same as
 * one JSON object (jansson). It reads results; it measures nothing.
 */
#include "bench_tunnel.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

void bench_machine_read(struct bench_tunnel *bt)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(bt->date, sizeof(bt->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    bt->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(bt->cpu_model, sizeof(bt->cpu_model), "unknown");
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (f != NULL) {
        char line[512];
        for (int i = 0; i < 10000 && fgets(line, sizeof(line), f) != NULL; i++) {
            if (strncmp(line, "model name", 10) != 0)
                continue;
            const char *colon = strchr(line, ':');
            if (colon == NULL)
                continue;
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            snprintf(bt->cpu_model, sizeof(bt->cpu_model), "%s", colon);
            bt->cpu_model[strcspn(bt->cpu_model, "\n")] = '\0';
            break;
        }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(bt->kernel, sizeof(bt->kernel), "%.30s %.90s", u.sysname, u.release);
}

/* ---- the issue's targets and anchors ---- */

#define BENCH_T_BULK1_GBPS 7.0
#define BENCH_T_VS_SSH_AES 1.0
#define BENCH_T_VS_SSH 1.6
#define BENCH_T_RTT1_P50_US 30.0
#define BENCH_T_STREAMS 20000.0
#define BENCH_T_CPU_PER_GB 1.2
#define BENCH_T_IDLE_RSS_MIB 8.0
#define BENCH_T_PER_CONN_KIB 48.0

static const char bench_anchors[] =
    "direct 17.9 Gbit/s; HAProxy 10.5 Gbit/s, 20k conn/s, 15 us p50 one-core; ssh -R "
    "4.2 Gbit/s default / 7.0 aes128-gcm, 9.4k channels/s, 39 us p50 one-core, "
    "1.6-2.7 CPU-s/GB";

static bool bench_have(double v)
{
    return v >= 0;
}

/* A figure in a fixed-width cell; "-" when not measured. */
static void bench_cell(FILE *f, double v, const char *fmt)
{
    /* <fmt> is "%.Nf" or "%.Nfx": decoded here rather than passed to printf,
     * so that every format string stays a literal. */
    bool digit = fmt[0] == '%' && fmt[1] == '.' && fmt[2] >= '0' && fmt[2] <= '9';
    int prec = digit ? fmt[2] - '0' : 2;
    const char *suffix = fmt[0] != '\0' && fmt[strlen(fmt) - 1] == 'x' ? "x" : "";
    char buf[32];
    if (bench_have(v))
        snprintf(buf, sizeof(buf), "%.*f%s", prec, v, suffix);
    else
        snprintf(buf, sizeof(buf), "-");
    fprintf(f, " %13s", buf);
}

struct bench_row {
    const char *label;
    size_t off; /* offset of the double in struct bench_figures */
    const char *fmt;
};

static const struct bench_row bench_rows[] = {
    {"bulk 1 stream      Gbit/s", offsetof(struct bench_figures, bulk1_gbps), "%.2f"},
    {"bulk 8 streams     Gbit/s", offsetof(struct bench_figures, bulk8_gbps), "%.2f"},
    {"relay CPU        CPU-s/GB", offsetof(struct bench_figures, cpu_s_per_gb), "%.2f"},
    {"64 B rtt p50           us", offsetof(struct bench_figures, rtt_p50_us), "%.1f"},
    {"64 B rtt p99           us", offsetof(struct bench_figures, rtt_p99_us), "%.1f"},
    {"64 B rtt one-core p50  us", offsetof(struct bench_figures, rtt1_p50_us), "%.1f"},
    {"64 B rtt one-core p99  us", offsetof(struct bench_figures, rtt1_p99_us), "%.1f"},
    {"new streams            /s", offsetof(struct bench_figures, streams_per_s), "%.0f"},
    {"  failed streams         ", offsetof(struct bench_figures, streams_failed), "%.0f"},
};

static double bench_fig(const struct bench_figures *fg, size_t off)
{
    double v;
    memcpy(&v, (const char *)fg + off, sizeof(v));
    return v;
}

static double bench_ratio(double a, double b)
{
    return bench_have(a) && bench_have(b) && b > 0 ? a / b : -1;
}

static const char *bench_status(double v, double target, bool at_least)
{
    if (!bench_have(v))
        return "n/a";
    return (at_least ? v >= target : v <= target) ? "met" : "MISSED";
}

/* One line of the targets table: warren's figure, the target, the status
 * and warren's figure divided by each other path's. */
static void bench_target_line(FILE *f, const struct bench_tunnel *bt, const char *label, size_t off,
                              const char *fmt, double target, bool at_least)
{
    const struct bench_figures *w = &bt->paths[BENCH_P_WARREN].fig;
    double v = bench_fig(w, off);
    char tbuf[32] = "-";
    if (target > 0)
        snprintf(tbuf, sizeof(tbuf), "%s %g", at_least ? ">=" : "<=", target);
    fprintf(f, "  %-28s", label);
    bench_cell(f, v, fmt);
    fprintf(f, " %10s %7s", tbuf, target > 0 ? bench_status(v, target, at_least) : "");
    static const enum bench_path_id others[] = {BENCH_P_DIRECT, BENCH_P_SSH, BENCH_P_SSH_AES,
                                                BENCH_P_HAPROXY};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        bench_cell(f, bench_ratio(v, bench_fig(&bt->paths[others[i]].fig, off)), "%.2fx");
    fputc('\n', f);
}

static void bench_ratio_line(FILE *f, const struct bench_tunnel *bt, const char *label,
                             enum bench_path_id other, double target)
{
    double r =
        bench_ratio(bt->paths[BENCH_P_WARREN].fig.bulk1_gbps, bt->paths[other].fig.bulk1_gbps);
    char tbuf[32];
    snprintf(tbuf, sizeof(tbuf), ">= %.1fx", target);
    fprintf(f, "  %-28s", label);
    bench_cell(f, r, "%.2fx");
    fprintf(f, " %10s %7s\n", tbuf, bench_status(r, target, true));
}

/* warren-lb's tcp listener against HAProxy mode tcp (issue 5): throughput
 * and new connections >= 0.9x, one-core round trip <= 1.2x. */
static void bench_report_lb(FILE *f, const struct bench_tunnel *bt)
{
    static const struct {
        const char *label;
        size_t off;
        const char *fmt;
        double target;
        bool at_least;
    } rows[] = {
        {"bulk 1 stream Gbit/s", offsetof(struct bench_figures, bulk1_gbps), "%.2f", 0.9, true},
        {"bulk 8 streams Gbit/s", offsetof(struct bench_figures, bulk8_gbps), "%.2f", 0.9, true},
        {"new connections /s", offsetof(struct bench_figures, streams_per_s), "%.0f", 0.9, true},
        {"one-core rtt p50 us", offsetof(struct bench_figures, rtt1_p50_us), "%.1f", 1.2, false},
        {"one-core rtt p99 us", offsetof(struct bench_figures, rtt1_p99_us), "%.1f", 0, false},
        {"relay CPU-s/GB", offsetof(struct bench_figures, cpu_s_per_gb), "%.2f", 0, false},
    };
    fprintf(f, "\nwarren-lb (tcp listener) against haproxy mode tcp (issue 5)\n");
    fprintf(f, "  %-28s %13s %13s %13s %10s %7s\n", "figure", "warren-lb", "haproxy", "ratio",
            "target", "status");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double v = bench_fig(&bt->paths[BENCH_P_LB].fig, rows[i].off);
        double hv = bench_fig(&bt->paths[BENCH_P_HAPROXY].fig, rows[i].off);
        double r = bench_ratio(v, hv);
        char tbuf[32] = "-";
        if (rows[i].target > 0)
            snprintf(tbuf, sizeof(tbuf), "%s %.1fx",
                     rows[i].at_least ? ">=" : "<=", rows[i].target);
        fprintf(f, "  %-28s", rows[i].label);
        bench_cell(f, v, rows[i].fmt);
        bench_cell(f, hv, rows[i].fmt);
        bench_cell(f, r, "%.2fx");
        fprintf(f, " %10s %7s\n", tbuf,
                rows[i].target > 0 ? bench_status(r, rows[i].target, rows[i].at_least) : "");
    }
}

void bench_report_text(const struct bench_tunnel *bt, FILE *f)
{
    fprintf(f, "\nwarren-bench tunnel: visitor -> warren-node -> TLS tunnel -> warren-agent -> "
               "target, on 127.0.0.1\n");
    fprintf(f, "date %s; %ld CPUs, %s; %s\n", bt->date, bt->ncpu, bt->cpu_model, bt->kernel);
    fprintf(f,
            "mode %s: iperf3 -t %u; %u round trips after %u warm-up; %u clients x %.0f s "
            "of new streams; %u idle agent connections\n\n",
            bt->quick ? "--quick" : "full", bt->bulk_secs, bt->rtt_n, bt->rtt_warmup,
            bt->streams_threads, bt->streams_secs, bt->swarm_n);

    fprintf(f, "%-27s", "figure");
    for (int i = 0; i < BENCH_P__COUNT; i++)
        fprintf(f, " %13s", bt->paths[i].label);
    fputc('\n', f);
    for (size_t r = 0; r < sizeof(bench_rows) / sizeof(bench_rows[0]); r++) {
        fprintf(f, "%-27s", bench_rows[r].label);
        for (int i = 0; i < BENCH_P__COUNT; i++)
            bench_cell(f, bench_fig(&bt->paths[i].fig, bench_rows[r].off), bench_rows[r].fmt);
        fputc('\n', f);
    }
    if (bt->rss_idle_kib > 0)
        fprintf(f, "\nwarren-node RSS: idle %.1f MiB", bt->rss_idle_kib / 1024.0);
    if (bt->rss_conns > 0)
        fprintf(f,
                "; with %u idle agent connections %.1f MiB = %.1f KiB per connection "
                "(swarm set up in %.1f s)",
                bt->rss_conns, bt->rss_loaded_kib / 1024.0, bt->rss_per_conn_kib,
                bt->swarm_setup_s);
    if (bt->rss_idle_kib > 0)
        fputc('\n', f);

    fprintf(f, "\nwarren against the issue's targets (ratios: warren / other path; for times "
               "and CPU lower is better)\n");
    fprintf(f, "  %-28s %13s %10s %7s %13s %13s %13s %13s\n", "figure", "warren", "target",
            "status", "/ direct", "/ ssh-R", "/ ssh-R aes", "/ haproxy");
    bench_target_line(f, bt, "bulk 1 stream Gbit/s", offsetof(struct bench_figures, bulk1_gbps),
                      "%.2f", BENCH_T_BULK1_GBPS, true);
    bench_ratio_line(f, bt, "bulk 1 stream / ssh-R aes", BENCH_P_SSH_AES, BENCH_T_VS_SSH_AES);
    bench_ratio_line(f, bt, "bulk 1 stream / ssh-R", BENCH_P_SSH, BENCH_T_VS_SSH);
    bench_target_line(f, bt, "bulk 8 streams Gbit/s", offsetof(struct bench_figures, bulk8_gbps),
                      "%.2f", 0, true);
    bench_target_line(f, bt, "one-core rtt p50 us", offsetof(struct bench_figures, rtt1_p50_us),
                      "%.1f", BENCH_T_RTT1_P50_US, false);
    bench_target_line(f, bt, "new streams /s", offsetof(struct bench_figures, streams_per_s),
                      "%.0f", BENCH_T_STREAMS, true);
    bench_target_line(f, bt, "relay CPU-s/GB", offsetof(struct bench_figures, cpu_s_per_gb), "%.2f",
                      BENCH_T_CPU_PER_GB, false);
    double idle = bt->rss_idle_kib > 0 ? bt->rss_idle_kib / 1024.0 : -1;
    double per = bt->rss_conns > 0 ? bt->rss_per_conn_kib : -1;
    fprintf(f, "  %-28s", "node idle RSS MiB");
    bench_cell(f, idle, "%.1f");
    fprintf(f, " %10s %7s\n", "<= 8", bench_status(idle, BENCH_T_IDLE_RSS_MIB, false));
    fprintf(f, "  %-28s", "KiB per idle agent conn");
    bench_cell(f, per, "%.1f");
    fprintf(f, " %10s %7s\n", "<= 48", bench_status(per, BENCH_T_PER_CONN_KIB, false));

    if (bt->paths[BENCH_P_LB].up || bt->paths[BENCH_P_LB].fig.bulk1_gbps > 0 ||
        bt->paths[BENCH_P_LB].fig.streams_per_s > 0)
        bench_report_lb(f, bt);

    fprintf(f, "\nanchors (issue author, this machine): %s\n", bench_anchors);
    bool header = false;
    for (int i = 0; i < BENCH_P__COUNT; i++) {
        if (bt->paths[i].note[0] == '\0')
            continue;
        if (!header)
            fprintf(f, "notes:\n");
        header = true;
        fprintf(f, "  %s: %s\n", bt->paths[i].label, bt->paths[i].note);
    }
    for (int i = 0; i < bt->n_notes; i++) {
        if (!header)
            fprintf(f, "notes:\n");
        header = true;
        fprintf(f, "  %s\n", bt->notes[i]);
    }
}

static void bench_json_num(json_t *o, const char *key, double v)
{
    json_object_set_new(o, key, bench_have(v) ? json_real(v) : json_null());
}

int bench_report_json(const struct bench_tunnel *bt, FILE *f)
{
    json_t *root = json_object();
    json_object_set_new(root, "bench", json_string("tunnel"));
    json_object_set_new(root, "date", json_string(bt->date));
    json_t *m = json_object();
    json_object_set_new(m, "cpus", json_integer(bt->ncpu));
    json_object_set_new(m, "cpu_model", json_string(bt->cpu_model));
    json_object_set_new(m, "kernel", json_string(bt->kernel));
    json_object_set_new(root, "machine", m);
    json_t *params = json_object();
    json_object_set_new(params, "quick", json_boolean(bt->quick));
    json_object_set_new(params, "bulk_secs", json_integer(bt->bulk_secs));
    json_object_set_new(params, "rtt_n", json_integer(bt->rtt_n));
    json_object_set_new(params, "rtt_warmup", json_integer(bt->rtt_warmup));
    json_object_set_new(params, "rtt_bytes", json_integer(64));
    json_object_set_new(params, "streams_clients", json_integer(bt->streams_threads));
    json_object_set_new(params, "streams_secs", json_real(bt->streams_secs));
    json_object_set_new(params, "swarm_connections", json_integer(bt->swarm_n));
    json_object_set_new(root, "params", params);

    json_t *paths = json_object();
    for (int i = 0; i < BENCH_P__COUNT; i++) {
        const struct bench_path *p = &bt->paths[i];
        const struct bench_figures *fg = &p->fig;
        json_t *o = json_object();
        json_object_set_new(o, "measured", json_boolean(p->wanted && p->note[0] == '\0'));
        if (p->note[0] != '\0')
            json_object_set_new(o, "note", json_string(p->note));
        bench_json_num(o, "bulk1_gbps", fg->bulk1_gbps);
        bench_json_num(o, "bulk8_gbps", fg->bulk8_gbps);
        bench_json_num(o, "relay_cpu_s_per_gb", fg->cpu_s_per_gb);
        bench_json_num(o, "rtt_p50_us", fg->rtt_p50_us);
        bench_json_num(o, "rtt_p99_us", fg->rtt_p99_us);
        bench_json_num(o, "rtt_one_core_p50_us", fg->rtt1_p50_us);
        bench_json_num(o, "rtt_one_core_p99_us", fg->rtt1_p99_us);
        bench_json_num(o, "streams_per_s", fg->streams_per_s);
        bench_json_num(o, "streams_failed", fg->streams_failed);
        json_object_set_new(paths, p->name, o);
    }
    json_object_set_new(root, "paths", paths);

    json_t *rss = json_object();
    bench_json_num(rss, "idle_kib", bt->rss_idle_kib > 0 ? (double)bt->rss_idle_kib : -1);
    bench_json_num(rss, "loaded_kib", bt->rss_conns > 0 ? (double)bt->rss_loaded_kib : -1);
    json_object_set_new(rss, "connections", json_integer(bt->rss_conns));
    bench_json_num(rss, "per_connection_kib", bt->rss_conns > 0 ? bt->rss_per_conn_kib : -1);
    json_object_set_new(root, "node_rss", rss);

    const struct bench_figures *w = &bt->paths[BENCH_P_WARREN].fig;
    json_t *ratios = json_object();
    for (int i = 0; i < BENCH_P__COUNT; i++) {
        if (i == BENCH_P_WARREN)
            continue;
        const struct bench_figures *o = &bt->paths[i].fig;
        json_t *r = json_object();
        bench_json_num(r, "bulk1", bench_ratio(w->bulk1_gbps, o->bulk1_gbps));
        bench_json_num(r, "bulk8", bench_ratio(w->bulk8_gbps, o->bulk8_gbps));
        bench_json_num(r, "relay_cpu", bench_ratio(w->cpu_s_per_gb, o->cpu_s_per_gb));
        bench_json_num(r, "rtt_p50", bench_ratio(w->rtt_p50_us, o->rtt_p50_us));
        bench_json_num(r, "rtt_one_core_p50", bench_ratio(w->rtt1_p50_us, o->rtt1_p50_us));
        bench_json_num(r, "streams_per_s", bench_ratio(w->streams_per_s, o->streams_per_s));
        json_object_set_new(ratios, bt->paths[i].name, r);
    }
    json_object_set_new(root, "warren_ratio_to", ratios);

    json_t *t = json_object();
    json_object_set_new(t, "bulk1_gbps_min", json_real(BENCH_T_BULK1_GBPS));
    json_object_set_new(t, "bulk1_vs_ssh_aes_min", json_real(BENCH_T_VS_SSH_AES));
    json_object_set_new(t, "bulk1_vs_ssh_min", json_real(BENCH_T_VS_SSH));
    json_object_set_new(t, "rtt_one_core_p50_us_max", json_real(BENCH_T_RTT1_P50_US));
    json_object_set_new(t, "streams_per_s_min", json_real(BENCH_T_STREAMS));
    json_object_set_new(t, "relay_cpu_s_per_gb_max", json_real(BENCH_T_CPU_PER_GB));
    json_object_set_new(t, "node_idle_rss_mib_max", json_real(BENCH_T_IDLE_RSS_MIB));
    json_object_set_new(t, "per_agent_conn_kib_max", json_real(BENCH_T_PER_CONN_KIB));
    json_object_set_new(root, "targets", t);
    json_object_set_new(root, "anchors", json_string(bench_anchors));
    json_t *notes = json_array();
    for (int i = 0; i < bt->n_notes; i++)
        json_array_append_new(notes, json_string(bt->notes[i]));
    json_object_set_new(root, "notes", notes);
    json_object_set_new(root, "failures", json_integer(bt->failures));

    int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', f);
    json_decref(root);
    return rc;
}
