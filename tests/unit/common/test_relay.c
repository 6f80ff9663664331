/*
 * test_relay.c: wr_relay's parking and retry (what a node uses to forward a
 * visitor and, when the holder resets before answering, to replay the
 * visitor's bytes to another one). A plain TCP pair on 127.0.0.1 carries the
 * "visitor"; its accepted side is relayed to a stream of an in-memory mux
 * pair (A, B) whose B side the test drives.
 */
/* link: wr_mux wr_wire wr_tls wr_base */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "test.h"
#include "wr/addr.h"
#include "wr/conn.h"
#include "wr/mux.h"
#include "wr/relay.h"
#include "wr/wire.h"

struct tr_mux {
    struct wr_mux *m;
    struct tr_mux *other;
    struct wr_buf out;
};

/* A stream as B sees it. */
struct tr_bs {
    struct wr_mux_stream *s;
    struct wr_buf in;
    bool fin, rst;
};

#define TR_MAX_BS 8

static struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    struct wr_conn *cli; /* the visitor */
    struct wr_buf cli_in;
    bool cli_eof, cli_closed;
    struct wr_relay *relay;
    int done_calls, done_err;
    struct wr_relay_stats done_stats;
    int retries;
    uint32_t retry_code;
    bool attach_on_retry;
    struct tr_mux A, B;
    struct tr_bs bs[TR_MAX_BS];
    int n_bs;
} T;

static int tr_write(void *arg, const struct wr_slice *v, int n)
{
    struct tr_mux *t = arg;
    for (int i = 0; i < n; i++)
        ASSERT_OK(wr_buf_append(&t->out, v[i].ptr, v[i].len));
    return 0;
}

static void tr_bs_data(struct wr_mux_stream *s, struct wr_slice d, void *arg)
{
    struct tr_bs *b = arg;
    ASSERT_OK(wr_buf_append(&b->in, d.ptr, d.len));
    wr_mux_stream_consumed(s, d.len);
}

static void tr_bs_fin(struct wr_mux_stream *s, void *arg)
{
    struct tr_bs *b = arg;
    (void)s;
    b->fin = true;
}

static void tr_bs_rst(struct wr_mux_stream *s, uint32_t code, void *arg)
{
    struct tr_bs *b = arg;
    (void)code;
    b->rst = true;
    wr_mux_stream_release(s);
    b->s = NULL;
}

static const struct wr_mux_stream_cbs tr_bs_cbs = {
    .on_data = tr_bs_data, .on_fin = tr_bs_fin, .on_rst = tr_bs_rst};

static void tr_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr, void *arg)
{
    (void)m;
    (void)hdr;
    (void)arg;
    ASSERT(T.n_bs < TR_MAX_BS);
    struct tr_bs *b = &T.bs[T.n_bs++];
    b->s = s;
    wr_mux_stream_accept(s, &tr_bs_cbs, b);
}

static void tr_mux_init(struct tr_mux *t, struct tr_mux *other, bool dialer)
{
    t->other = other;
    struct wr_mux_opts o = {.dialer = dialer};
    struct wr_mux_cbs cbs = {.write = tr_write, .on_open = tr_on_open};
    t->m = wr_mux_new(&o, &cbs, t);
    ASSERT(t->m != NULL);
}

static void tr_pump(void)
{
    struct tr_mux *all[] = {&T.A, &T.B};
    for (bool moved = true; moved;) {
        moved = false;
        for (int i = 0; i < 2; i++) {
            if (all[i]->out.len == 0)
                continue;
            struct wr_buf chunk = all[i]->out;
            all[i]->out = (struct wr_buf){0};
            ASSERT_EQ(wr_mux_feed(all[i]->other->m, wr_buf_peek(&chunk)), chunk.len);
            wr_buf_free(&chunk);
            moved = true;
        }
    }
}

/* Runs the loop and the mux pair until <cond> holds (or fails after 5 s). */
static void tr_until(bool (*cond)(void), const char *what)
{
    uint64_t deadline = uv_hrtime() + 5000000000ull;
    for (;;) {
        tr_pump();
        if (cond())
            return;
        if (uv_hrtime() > deadline)
            TEST_FAIL("timed out waiting for %s", what);
        uv_run(&T.loop, UV_RUN_NOWAIT);
    }
}

static void tr_on_done(struct wr_relay *r, int err, const char *why, void *arg)
{
    (void)why;
    (void)arg;
    ASSERT_PTR_EQ(T.relay, r);
    T.done_calls++;
    T.done_err = err;
    wr_relay_get_stats(r, &T.done_stats);
    T.relay = NULL;
}

static struct wr_mux_stream *tr_open_a(void)
{
    int err = -1;
    struct wr_mux_stream *s = wr_mux_open(T.A.m, wr_slice_str("open"), NULL, NULL, &err);
    ASSERT_OK(err);
    return s;
}

static void tr_on_retry(struct wr_relay *r, uint32_t code, void *arg)
{
    (void)arg;
    ASSERT_PTR_EQ(T.relay, r);
    ASSERT(wr_relay_is_parked(r));
    T.retries++;
    T.retry_code = code;
    if (T.attach_on_retry)
        wr_relay_attach(r, tr_open_a());
    else
        wr_relay_abort(r, WR_CODE_CANCEL);
}

static void tr_on_connection(uv_stream_t *server, int status)
{
    ASSERT_OK(status);
    struct wr_conn_opts o = {.nodelay = true};
    static const struct wr_conn_cbs none = {0};
    int err = 0;
    struct wr_conn *c = wr_conn_accept(server, &o, &none, NULL, &err);
    ASSERT(c != NULL);
    T.relay = wr_relay_new(c, NULL, tr_on_done, NULL); /* parked */
    ASSERT(wr_relay_is_parked(T.relay));
    uv_close((uv_handle_t *)&T.listener, NULL);
}

static void tr_cli_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    (void)c;
    (void)arg;
    ASSERT_OK(wr_buf_append(&T.cli_in, d, len));
}

static void tr_cli_eof(struct wr_conn *c, void *arg)
{
    (void)arg;
    T.cli_eof = true;
    wr_conn_close(c, true);
}

static void tr_cli_error(struct wr_conn *c, int err, void *arg)
{
    (void)err;
    (void)arg;
    T.cli_eof = true;
    wr_conn_close(c, false);
}

static void tr_cli_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    T.cli_closed = true;
    T.cli = NULL;
}

static const struct wr_conn_cbs tr_cli_cbs = {.on_read = tr_cli_read,
                                              .on_eof = tr_cli_eof,
                                              .on_error = tr_cli_error,
                                              .on_close = tr_cli_close};

static bool tr_have_relay(void)
{
    return T.relay != NULL && wr_conn_is_ready(T.cli);
}

static void tr_setup(void)
{
    memset(&T, 0, sizeof(T));
    ASSERT_OK(uv_loop_init(&T.loop));
    tr_mux_init(&T.A, &T.B, true);
    tr_mux_init(&T.B, &T.A, false);
    ASSERT_OK(uv_tcp_init(&T.loop, &T.listener));
    struct sockaddr_storage any, bound;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&T.listener, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&T.listener, 4, tr_on_connection));
    int len = sizeof(bound);
    ASSERT_OK(uv_tcp_getsockname(&T.listener, (struct sockaddr *)&bound, &len));
    struct wr_conn_opts o = {.nodelay = true};
    int err = 0;
    T.cli = wr_conn_dial(&T.loop, (struct sockaddr *)&bound, &o, &tr_cli_cbs, NULL, &err);
    ASSERT(T.cli != NULL);
    tr_until(tr_have_relay, "the relay");
}

static void tr_teardown(void)
{
    if (T.cli != NULL)
        wr_conn_close(T.cli, false);
    ASSERT(uv_run(&T.loop, UV_RUN_DEFAULT) >= 0);
    ASSERT(T.relay == NULL);
    ASSERT(T.cli_closed);
    for (int i = 0; i < T.n_bs; i++) {
        if (T.bs[i].s != NULL)
            wr_mux_stream_release(T.bs[i].s);
        wr_buf_free(&T.bs[i].in);
    }
    wr_mux_free(T.A.m);
    wr_mux_free(T.B.m);
    wr_buf_free(&T.A.out);
    wr_buf_free(&T.B.out);
    wr_buf_free(&T.cli_in);
    ASSERT_EQ(0, uv_loop_close(&T.loop));
}

static bool tr_bs0_fin(void)
{
    return T.n_bs >= 1 && T.bs[0].fin;
}

static bool tr_bs1_fin(void)
{
    return T.n_bs >= 2 && T.bs[1].fin;
}

static bool tr_cli_done(void)
{
    return T.cli_eof && T.relay == NULL;
}

static bool tr_cli_sent(void)
{
    return wr_conn_write_queued(T.cli) == 0;
}

static void tr_cli_send(const void *p, size_t n, bool fin)
{
    ASSERT_OK(wr_conn_write(T.cli, p, n));
    if (fin)
        ASSERT_OK(wr_conn_shutdown(T.cli));
}

/* The holder resets before answering: the bytes and the FIN go again, on a
 * new stream, and the visitor never notices. */
TEST(retry_replays)
{
    tr_setup();
    wr_relay_set_retry(T.relay, 4096, tr_on_retry);
    T.attach_on_retry = true;
    tr_cli_send("hello", 5, true);
    wr_relay_attach(T.relay, tr_open_a());
    tr_until(tr_bs0_fin, "hello and FIN on the first stream");
    ASSERT_EQ(5, T.bs[0].in.len);
    wr_mux_stream_reset(T.bs[0].s, WR_CODE_NO_ROUTE);
    T.bs[0].s = NULL;
    tr_pump();
    ASSERT_EQ(1, T.retries);
    ASSERT_EQ(WR_CODE_NO_ROUTE, T.retry_code);
    tr_until(tr_bs1_fin, "the replay on the second stream");
    ASSERT_EQ(5, T.bs[1].in.len);
    ASSERT(memcmp(T.bs[1].in.data + T.bs[1].in.off, "hello", 5) == 0);
    ASSERT_EQ(5, wr_mux_stream_write(T.bs[1].s, (const uint8_t *)"world", 5));
    ASSERT_OK(wr_mux_stream_fin(T.bs[1].s));
    tr_until(tr_cli_done, "the answer at the visitor");
    ASSERT_EQ(5, T.cli_in.len);
    ASSERT(memcmp(T.cli_in.data + T.cli_in.off, "world", 5) == 0);
    ASSERT_EQ(1, T.done_calls);
    ASSERT_EQ(0, T.done_err);
    ASSERT_EQ(5, T.done_stats.bytes_up); /* the replay is not counted twice */
    ASSERT_EQ(5, T.done_stats.bytes_down);
    tr_teardown();
}

static bool tr_bs0_got4(void)
{
    return T.n_bs >= 1 && T.bs[0].in.len == 4;
}

static bool tr_cli_got1(void)
{
    return T.cli_in.len == 1;
}

/* Once a byte came down, a reset ends the relay: no retry. */
TEST(no_retry_after_answer)
{
    tr_setup();
    wr_relay_set_retry(T.relay, 4096, tr_on_retry);
    T.attach_on_retry = true;
    wr_relay_attach(T.relay, tr_open_a());
    tr_cli_send("ping", 4, false);
    tr_until(tr_bs0_got4, "ping on the stream");
    ASSERT_EQ(1, wr_mux_stream_write(T.bs[0].s, (const uint8_t *)"p", 1));
    tr_until(tr_cli_got1, "the answer's first byte");
    wr_mux_stream_reset(T.bs[0].s, WR_CODE_CONNECT);
    T.bs[0].s = NULL;
    tr_until(tr_cli_done, "the visitor closed");
    ASSERT_EQ(0, T.retries);
    ASSERT_EQ(1, T.done_calls);
    ASSERT_EQ(WR_ECLOSED, T.done_err);
    tr_teardown();
}

/* The retry callback may give up: the visitor is closed. */
TEST(retry_then_abort)
{
    tr_setup();
    wr_relay_set_retry(T.relay, 4096, tr_on_retry);
    T.attach_on_retry = false;
    wr_relay_attach(T.relay, tr_open_a());
    tr_cli_send("ping", 4, false);
    tr_until(tr_bs0_got4, "ping on the stream");
    wr_mux_stream_reset(T.bs[0].s, WR_CODE_SHUTDOWN);
    T.bs[0].s = NULL;
    tr_until(tr_cli_done, "the visitor closed");
    ASSERT_EQ(1, T.retries);
    ASSERT_EQ(WR_CODE_SHUTDOWN, T.retry_code);
    ASSERT_EQ(WR_ECLOSED, T.done_err);
    ASSERT_EQ(0, T.cli_in.len);
    tr_teardown();
}

/* Past the retry size the copy is dropped: a reset ends the relay. */
TEST(no_retry_past_limit)
{
    tr_setup();
    wr_relay_set_retry(T.relay, 8, tr_on_retry);
    T.attach_on_retry = true;
    static uint8_t big[100];
    memset(big, 'b', sizeof(big));
    tr_cli_send(big, sizeof(big), true);
    wr_relay_attach(T.relay, tr_open_a());
    tr_until(tr_bs0_fin, "the bytes on the first stream");
    wr_mux_stream_reset(T.bs[0].s, WR_CODE_NO_ROUTE);
    T.bs[0].s = NULL;
    tr_until(tr_cli_done, "the visitor closed");
    ASSERT_EQ(0, T.retries);
    ASSERT_EQ(1, T.done_calls);
    ASSERT_EQ(WR_ECLOSED, T.done_err);
    tr_teardown();
}

/* A relay created without a stream buffers what the visitor sends (and
 * stops reading at the cap) until a stream is attached; nothing is lost. */
TEST(parked_start_buffers)
{
    tr_setup();
    size_t n = 3 * WR_RELAY_PARK_MAX + 17;
    uint8_t *data = malloc(n);
    ASSERT(data != NULL);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 8));
    tr_cli_send(data, n, true);
    tr_until(tr_cli_sent, "the visitor's bytes in the kernel");
    for (int i = 0; i < 50; i++)
        uv_run(&T.loop, UV_RUN_NOWAIT); /* the relay reads what it may while parked */
    ASSERT(wr_relay_is_parked(T.relay));
    ASSERT_EQ(0, T.n_bs);
    wr_relay_attach(T.relay, tr_open_a());
    ASSERT(!wr_relay_is_parked(T.relay));
    tr_until(tr_bs0_fin, "every byte and the FIN");
    ASSERT_EQ(n, T.bs[0].in.len);
    ASSERT(memcmp(T.bs[0].in.data + T.bs[0].in.off, data, n) == 0);
    free(data);
    ASSERT_OK(wr_mux_stream_fin(T.bs[0].s));
    tr_until(tr_cli_done, "the end");
    ASSERT_EQ(0, T.done_err);
    tr_teardown();
}

/* Abort while parked closes the visitor without a stream ever opened. */
TEST(abort_parked)
{
    tr_setup();
    wr_relay_abort(T.relay, WR_CODE_CANCEL);
    tr_until(tr_cli_done, "the visitor closed");
    ASSERT_EQ(1, T.done_calls);
    ASSERT_EQ(WR_ECLOSED, T.done_err);
    ASSERT_EQ(0, T.n_bs);
    tr_teardown();
}

TEST_MAIN(TEST_ENTRY(retry_replays), TEST_ENTRY(no_retry_after_answer),
          TEST_ENTRY(retry_then_abort), TEST_ENTRY(no_retry_past_limit),
          TEST_ENTRY(parked_start_buffers), TEST_ENTRY(abort_parked))
