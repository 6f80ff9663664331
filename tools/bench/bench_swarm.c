/*
 * bench_swarm.c: an in-process "agent swarm" for the node memory figure. It
 * holds N agent connections to a node through common/ (wr_conn with TLS,
 * wr_mux, a HELLO with a join token), waits for every WELCOME, then reads the
 * node's VmRSS while they are all held. Each connection answers nothing but
 * what the mux answers itself (PINGs), like an idle agent. It does not serve
 * streams: the node opens none, since no visitor arrives.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "wr.h"

enum bench_swarm_phase {
    BENCH_SWARM_DIALING = 0, /* dialing, at most <concurrency> not yet welcomed */
    BENCH_SWARM_HOLDING,     /* every connection welcomed (or failed); settling */
    BENCH_SWARM_CLOSING,     /* closing every connection, waiting for on_close */
    BENCH_SWARM_DONE,
};

struct bench_swarm;

struct bench_swarm_conn {
    struct bench_swarm *sw;
    struct wr_conn *conn;
    struct wr_mux *mux;
    uint32_t idx;
    bool welcomed;
    bool done; /* welcomed or failed: no longer counts as in flight */
};

struct bench_swarm {
    uv_loop_t loop;
    uv_timer_t timer;
    const struct bench_swarm_opts *o;
    struct bench_swarm_result *r;
    struct sockaddr_storage addr;
    struct wr_tls_ctx *tls;
    char sni[WR_ID_MAX + 1];
    char token[WR_TOKEN_MAX + 1];
    struct bench_swarm_conn *conns;
    enum bench_swarm_phase phase;
    uint32_t next;     /* next connection to dial */
    uint32_t inflight; /* dialed, not yet welcomed nor failed */
    uint32_t open;     /* wr_conn objects alive */
    uint64_t t0_ms;
    uint64_t deadline_ms;
    uint64_t hold_until_ms;
    long self_rss0;
};

static void bench_swarm_finish(struct bench_swarm_conn *sc, bool ok)
{
    if (sc->done)
        return;
    sc->done = true;
    sc->sw->inflight--;
    if (ok) {
        sc->welcomed = true;
        sc->sw->r->welcomed++;
    } else {
        sc->sw->r->failed++;
    }
}

static void bench_swarm_conn_close(struct bench_swarm_conn *sc)
{
    if (sc->conn != NULL)
        wr_conn_close(sc->conn, false);
}

/* ---- mux ---- */

static int bench_swarm_mux_write(void *arg, const struct wr_slice *v, int n)
{
    struct bench_swarm_conn *sc = arg;
    if (sc->conn == NULL)
        return WR_ECLOSED;
    return wr_conn_writev(sc->conn, v, n);
}

static void bench_swarm_on_control(struct wr_mux *m, struct wr_slice msg, void *arg)
{
    struct bench_swarm_conn *sc = arg;
    (void)m;
    int type = 0;
    const char *why = NULL;
    if (wr_msg_peek_type(msg, &type, &why) != 0) {
        bench_swarm_finish(sc, false);
        bench_swarm_conn_close(sc);
        return;
    }
    if (type == WR_MSG_WELCOME) {
        bench_swarm_finish(sc, true);
    } else if (type == WR_MSG_ERROR) {
        struct wr_msg_error e;
        if (wr_msg_error_decode(msg, &e, &why) == 0 && sc->sw->r->failed == 0)
            bench_err("swarm: the node refused connection %u: %s %s", sc->idx,
                      wr_proto_code_str(e.code), e.message);
        bench_swarm_finish(sc, false);
        bench_swarm_conn_close(sc);
    }
}

static void bench_swarm_on_mux_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct bench_swarm_conn *sc = arg;
    (void)m;
    (void)err;
    (void)why;
    bench_swarm_finish(sc, false);
    bench_swarm_conn_close(sc);
}

static const struct wr_mux_cbs bench_swarm_mux_cbs = {
    .write = bench_swarm_mux_write,
    .on_control = bench_swarm_on_control,
    .on_error = bench_swarm_on_mux_error,
};

/* ---- connection ---- */

static void bench_swarm_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct bench_swarm_conn *sc = arg;
    struct bench_swarm *sw = sc->sw;
    (void)c;
    if (status != 0) {
        if (sw->r->failed == 0)
            bench_err("swarm: connection %u: %s", sc->idx, wr_err_name(status));
        bench_swarm_finish(sc, false);
        bench_swarm_conn_close(sc);
        return;
    }
    struct wr_msg_hello *h = calloc(1, sizeof(*h));
    struct wr_buf b = {0};
    int err = WR_ENOMEM;
    if (h != NULL) {
        h->version = WR_WIRE_VERSION;
        snprintf(h->role, sizeof(h->role), "%s", WR_ROLE_AGENT);
        snprintf(h->tunnel, sizeof(h->tunnel), "%s", sw->o->tunnel);
        snprintf(h->agent_id, sizeof(h->agent_id), "swarm-%u", sc->idx);
        memcpy(h->token, sw->token, sizeof(h->token));
        h->weight = 1;
        h->n_services = 1;
        snprintf(h->services[0], sizeof(h->services[0]), "echo");
        err = wr_msg_hello_encode(h, &b);
        wr_memzero(h, sizeof(*h));
        free(h);
    }
    if (err == 0)
        err = wr_mux_send_control(sc->mux, wr_buf_peek(&b));
    wr_memzero(b.data, b.cap);
    wr_buf_free(&b);
    if (err != 0) {
        bench_err("swarm: cannot send HELLO: %s", wr_err_name(err));
        bench_swarm_finish(sc, false);
        bench_swarm_conn_close(sc);
    }
}

static void bench_swarm_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct bench_swarm_conn *sc = arg;
    (void)c;
    if (sc->mux == NULL)
        return;
    ssize_t r = wr_mux_feed(sc->mux, wr_slice_make(data, len));
    (void)r; /* errors arrive through on_error */
}

static void bench_swarm_on_eof(struct wr_conn *c, void *arg)
{
    (void)c;
    bench_swarm_finish(arg, false);
    bench_swarm_conn_close(arg);
}

static void bench_swarm_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)c;
    (void)err;
    bench_swarm_finish(arg, false);
    bench_swarm_conn_close(arg);
}

static void bench_swarm_on_close(struct wr_conn *c, void *arg)
{
    struct bench_swarm_conn *sc = arg;
    (void)c;
    sc->conn = NULL;
    bench_swarm_finish(sc, false); /* no-op when already counted */
    if (sc->welcomed && sc->sw->phase < BENCH_SWARM_CLOSING) {
        /* The node dropped a welcomed connection before the measurement. */
        sc->welcomed = false;
        sc->sw->r->welcomed--;
        sc->sw->r->failed++;
    }
    if (sc->mux != NULL) {
        wr_mux_free(sc->mux);
        sc->mux = NULL;
    }
    sc->sw->open--;
}

static const struct wr_conn_cbs bench_swarm_conn_cbs = {
    .on_ready = bench_swarm_on_ready,
    .on_read = bench_swarm_on_read,
    .on_eof = bench_swarm_on_eof,
    .on_error = bench_swarm_on_error,
    .on_close = bench_swarm_on_close,
};

static void bench_swarm_dial(struct bench_swarm *sw, struct bench_swarm_conn *sc)
{
    struct wr_mux_opts mo = {.dialer = true};
    struct wr_conn_opts co = {
        .tls = sw->tls,
        .sni = sw->sni,
        .handshake_timeout_ms = 10000,
        .nodelay = true,
    };
    sw->inflight++;
    sc->mux = wr_mux_new(&mo, &bench_swarm_mux_cbs, sc);
    if (sc->mux == NULL) {
        bench_swarm_finish(sc, false);
        return;
    }
    int err = 0;
    sc->conn = wr_conn_dial(&sw->loop, (const struct sockaddr *)&sw->addr, &co,
                            &bench_swarm_conn_cbs, sc, &err);
    if (sc->conn == NULL) {
        if (sw->r->failed == 0)
            bench_err("swarm: dial: %s", wr_err_name(err));
        wr_mux_free(sc->mux);
        sc->mux = NULL;
        bench_swarm_finish(sc, false);
        return;
    }
    sw->open++;
}

static void bench_swarm_close_all(struct bench_swarm *sw)
{
    sw->phase = BENCH_SWARM_CLOSING;
    sw->deadline_ms = wr_now_ms() + 10000;
    for (uint32_t i = 0; i < sw->next; i++)
        bench_swarm_conn_close(&sw->conns[i]);
}

static void bench_swarm_on_timer(uv_timer_t *t)
{
    struct bench_swarm *sw = t->data;
    uint64_t now = wr_now_ms();
    if (bench_interrupted() && sw->phase < BENCH_SWARM_CLOSING)
        bench_swarm_close_all(sw);
    switch (sw->phase) {
    case BENCH_SWARM_DIALING:
        while (sw->inflight < sw->o->concurrency && sw->next < sw->o->n)
            bench_swarm_dial(sw, &sw->conns[sw->next++]);
        if (sw->r->welcomed + sw->r->failed >= sw->o->n || now >= sw->deadline_ms) {
            sw->r->setup_s = (double)(now - sw->t0_ms) / 1000.0;
            sw->phase = BENCH_SWARM_HOLDING;
            sw->hold_until_ms = now + 1000; /* let allocations settle */
        }
        break;
    case BENCH_SWARM_HOLDING:
        if (now >= sw->hold_until_ms) {
            sw->r->node_rss_kib = bench_proc_rss_kib(sw->o->node_pid);
            long self = bench_proc_rss_kib(getpid());
            sw->r->self_rss_delta_kib = self - sw->self_rss0;
            bench_swarm_close_all(sw);
        }
        break;
    case BENCH_SWARM_CLOSING:
        if (sw->open == 0 || now >= sw->deadline_ms) {
            sw->phase = BENCH_SWARM_DONE;
            uv_timer_stop(t);
            uv_close((uv_handle_t *)t, NULL);
        }
        break;
    case BENCH_SWARM_DONE:
        break;
    }
}

static int bench_swarm_load_token(struct bench_swarm *sw, const char *path)
{
    char *tok = NULL;
    size_t len = 0;
    int err = wr_read_file(path, 4096, &tok, &len);
    if (err != 0)
        return err;
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        len--;
    if (len == 0 || len > WR_TOKEN_MAX)
        err = WR_EUSAGE;
    else
        memcpy(sw->token, tok, len);
    sw->token[len <= WR_TOKEN_MAX ? len : 0] = '\0';
    wr_memzero(tok, len);
    free(tok);
    return err;
}

int bench_swarm_run(const struct bench_swarm_opts *o, struct bench_swarm_result *r)
{
    memset(r, 0, sizeof(*r));
    struct bench_swarm *sw = calloc(1, sizeof(*sw));
    if (sw == NULL)
        return -ENOMEM;
    sw->o = o;
    sw->r = r;
    int err = wr_addr_parse(o->node_addr, &sw->addr);
    if (err != 0) {
        bench_err("swarm: bad node address %s", o->node_addr);
        goto fail_sw;
    }
    err = bench_swarm_load_token(sw, o->token_file);
    if (err != 0) {
        bench_err("swarm: cannot read the token %s: %s", o->token_file, wr_err_name(err));
        goto fail_sw;
    }
    err = wr_cert_ca_cluster(o->ca_file, sw->sni, sizeof(sw->sni));
    if (err != 0) {
        bench_err("swarm: cannot read the CA %s: %s", o->ca_file, wr_err_name(err));
        goto fail_token;
    }
    sw->tls = wr_tls_ctx_new_client(o->ca_file, &err);
    if (sw->tls == NULL) {
        bench_err("swarm: TLS context: %s", wr_err_name(err));
        goto fail_token;
    }
    sw->conns = calloc(o->n, sizeof(*sw->conns));
    if (sw->conns == NULL) {
        err = -ENOMEM;
        goto fail_tls;
    }
    for (uint32_t i = 0; i < o->n; i++) {
        sw->conns[i].sw = sw;
        sw->conns[i].idx = i;
    }
    err = uv_loop_init(&sw->loop);
    if (err != 0)
        goto fail_conns;
    sw->self_rss0 = bench_proc_rss_kib(getpid());
    sw->t0_ms = wr_now_ms();
    sw->deadline_ms = sw->t0_ms + o->deadline_ms;
    uv_timer_init(&sw->loop, &sw->timer);
    sw->timer.data = sw;
    uv_timer_start(&sw->timer, bench_swarm_on_timer, 0, 10);
    /* Returns once the timer is closed and every connection is gone; the
     * closing phase bounds it with its own deadline. */
    uv_run(&sw->loop, UV_RUN_DEFAULT);
    if (sw->open != 0) {
        bench_err("swarm: %u connections still open after the deadline", sw->open);
        /* They hold handles of this loop: leak everything rather than free
         * memory that live handles point to. */
        return WR_ETIMEDOUT;
    }
    err = uv_loop_close(&sw->loop);
    if (err != 0)
        bench_err("swarm: loop not empty at exit: %s", wr_err_name(err));
    err = r->welcomed == o->n ? 0 : WR_EREFUSED;
fail_conns:
    free(sw->conns);
fail_tls:
    wr_tls_ctx_free(sw->tls);
fail_token:
    wr_memzero(sw->token, sizeof(sw->token));
fail_sw:
    free(sw);
    return err;
}
