/*
 * test_conn.c: wr_conn over plain TCP on 127.0.0.1: half-close, the queue
 * cap, writev order, refused dials, reset on close without flush, and that
 * callbacks never fire from inside wr_conn_* calls. TLS cases are in
 * test_tls.c.
 */
/* link: wr_tls wr_base */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "test.h"
#include "wr/addr.h"
#include "wr/conn.h"

struct tc_side {
    struct wr_conn *c;
    const char *name;
    bool in_api;
    bool ready;
    int ready_status;
    bool eof;
    int error;
    bool closed;
    int drains;
    uint8_t rx[1 << 16];
    size_t rx_len;
    size_t rx_total;
    bool keep_stopped; /* accepted side: stop reading at once */
    const char *reply_on_eof;
};

struct tc_fx {
    uv_loop_t loop;
    uv_tcp_t listener;
    bool listener_open;
    struct sockaddr_storage addr;
    struct tc_side srv, cli;
    struct wr_conn_opts srv_opts;
};

#define TC_API(s, expr)                                                                            \
    do {                                                                                           \
        (s)->in_api = true;                                                                        \
        expr;                                                                                      \
        (s)->in_api = false;                                                                       \
    } while (0)

static void tc_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct tc_side *s = arg;
    ASSERT(!s->in_api);
    ASSERT(!s->ready);
    s->ready = true;
    s->ready_status = status;
    if (status != 0)
        wr_conn_close(c, false);
}

static void tc_on_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct tc_side *s = arg;
    (void)c;
    ASSERT(!s->in_api);
    ASSERT(!s->eof);
    size_t room = sizeof(s->rx) - s->rx_len;
    size_t n = len < room ? len : room;
    memcpy(s->rx + s->rx_len, d, n);
    s->rx_len += n;
    s->rx_total += len;
}

static void tc_on_eof(struct wr_conn *c, void *arg)
{
    struct tc_side *s = arg;
    ASSERT(!s->in_api);
    ASSERT(!s->eof);
    s->eof = true;
    if (s->reply_on_eof) {
        int rc;
        TC_API(s, rc = wr_conn_write(c, (const uint8_t *)s->reply_on_eof, strlen(s->reply_on_eof)));
        ASSERT_OK(rc);
    }
    wr_conn_close(c, true);
}

static void tc_on_error(struct wr_conn *c, int err, void *arg)
{
    struct tc_side *s = arg;
    ASSERT(!s->in_api);
    s->error = err;
    wr_conn_close(c, false);
}

static void tc_on_drain(struct wr_conn *c, void *arg)
{
    struct tc_side *s = arg;
    (void)c;
    ASSERT(!s->in_api);
    s->drains++;
}

static void tc_on_close(struct wr_conn *c, void *arg)
{
    struct tc_side *s = arg;
    ASSERT_PTR_EQ(c, s->c);
    ASSERT(!s->closed);
    s->closed = true;
    s->c = NULL;
}

static const struct wr_conn_cbs tc_cbs = {
    .on_ready = tc_on_ready,
    .on_read = tc_on_read,
    .on_eof = tc_on_eof,
    .on_error = tc_on_error,
    .on_drain = tc_on_drain,
    .on_close = tc_on_close,
};

static void tc_on_connection(uv_stream_t *server, int status)
{
    struct tc_fx *fx = server->data;
    ASSERT_OK(status);
    int err = 0;
    TC_API(&fx->srv, fx->srv.c = wr_conn_accept(server, &fx->srv_opts, &tc_cbs, &fx->srv, &err));
    ASSERT(fx->srv.c != NULL);
    ASSERT(wr_conn_is_ready(fx->srv.c));
    ASSERT(!wr_conn_is_tls(fx->srv.c));
    ASSERT(wr_conn_cipher(fx->srv.c) == NULL);
    if (fx->srv.keep_stopped)
        ASSERT_OK(wr_conn_read_stop(fx->srv.c));
    uv_close((uv_handle_t *)&fx->listener, NULL);
    fx->listener_open = false;
}

static void tc_fx_init(struct tc_fx *fx)
{
    memset(fx, 0, sizeof(*fx));
    ASSERT_OK(uv_loop_init(&fx->loop));
    fx->srv.name = "server";
    fx->cli.name = "client";
    fx->srv_opts.nodelay = true;
    ASSERT_OK(uv_tcp_init(&fx->loop, &fx->listener));
    fx->listener.data = fx;
    fx->listener_open = true;
    struct sockaddr_storage any;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&fx->listener, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&fx->listener, 16, tc_on_connection));
    int len = sizeof(fx->addr);
    ASSERT_OK(uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&fx->addr, &len));
}

static void tc_fx_dial(struct tc_fx *fx, const struct wr_conn_opts *o)
{
    int err = 0;
    struct wr_conn_opts def = {.nodelay = true};
    fx->cli.c = wr_conn_dial(&fx->loop, (struct sockaddr *)&fx->addr, o ? o : &def, &tc_cbs,
                             &fx->cli, &err);
    ASSERT(fx->cli.c != NULL);
}

static void tc_fx_finish(struct tc_fx *fx)
{
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    if (fx->listener_open) {
        uv_close((uv_handle_t *)&fx->listener, NULL);
        fx->listener_open = false;
        ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    }
    ASSERT(fx->srv.c == NULL);
    ASSERT(fx->cli.c == NULL);
    ASSERT_EQ(0, uv_loop_close(&fx->loop));
}

TEST(plain_half_close)
{
    /* The client writes, then shuts down: the server sees the data, then
     * on_eof, and its answer still reaches the client, which keeps reading
     * after its own shutdown. */
    struct tc_fx fx;
    tc_fx_init(&fx);
    fx.srv.reply_on_eof = "bye";
    tc_fx_dial(&fx, NULL);
    int rc;
    TC_API(&fx.cli, rc = wr_conn_write(fx.cli.c, (const uint8_t *)"hello", 5));
    ASSERT_OK(rc);
    TC_API(&fx.cli, rc = wr_conn_shutdown(fx.cli.c));
    ASSERT_OK(rc);
    ASSERT_OK(wr_conn_shutdown(fx.cli.c)); /* idempotent */
    ASSERT_EQ(wr_conn_write(fx.cli.c, (const uint8_t *)"x", 1), WR_ECLOSED);
    tc_fx_finish(&fx);
    ASSERT(fx.cli.ready);
    ASSERT_OK(fx.cli.ready_status);
    ASSERT_EQ(fx.srv.rx_len, 5);
    ASSERT_MEM_EQ(fx.srv.rx, "hello", 5);
    ASSERT(fx.srv.eof);
    ASSERT_EQ(fx.cli.rx_len, 3);
    ASSERT_MEM_EQ(fx.cli.rx, "bye", 3);
    ASSERT(fx.cli.eof);
    ASSERT_OK(fx.cli.error);
    ASSERT_OK(fx.srv.error);
}

TEST(writev_order)
{
    struct tc_fx fx;
    tc_fx_init(&fx);
    tc_fx_dial(&fx, NULL);
    static uint8_t big[20000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    struct wr_slice v[3] = {wr_slice_str("head:"), wr_slice_make(big, sizeof(big)),
                            wr_slice_str(":tail")};
    int rc;
    TC_API(&fx.cli, rc = wr_conn_writev(fx.cli.c, v, 3));
    ASSERT_OK(rc);
    TC_API(&fx.cli, rc = wr_conn_write(fx.cli.c, (const uint8_t *)"!", 1));
    ASSERT_OK(rc);
    ASSERT_OK(wr_conn_shutdown(fx.cli.c));
    tc_fx_finish(&fx);
    ASSERT_EQ(fx.srv.rx_len, 5 + sizeof(big) + 5 + 1);
    ASSERT_MEM_EQ(fx.srv.rx, "head:", 5);
    ASSERT_MEM_EQ(fx.srv.rx + 5, big, sizeof(big));
    ASSERT_MEM_EQ(fx.srv.rx + 5 + sizeof(big), ":tail!", 6);
}

TEST(max_queue)
{
    struct tc_fx fx;
    tc_fx_init(&fx);
    fx.srv.keep_stopped = true; /* the peer does not read */
    struct wr_conn_opts o = {.nodelay = true, .max_queue = 1 << 20};
    tc_fx_dial(&fx, &o);
    static uint8_t chunk[256 * 1024];
    /* Before the connection is up, everything is queued: the cap applies. */
    for (int i = 0; i < 4; i++)
        ASSERT_OK(wr_conn_write(fx.cli.c, chunk, sizeof(chunk)));
    ASSERT_EQ(wr_conn_write_queued(fx.cli.c), 4 * sizeof(chunk));
    ASSERT_EQ(wr_conn_write(fx.cli.c, chunk, 1), WR_ETOOBIG);
    while (!fx.cli.ready)
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT_OK(fx.cli.ready_status);
    /* After: the kernel takes what its buffers hold, then the queue fills up. */
    int rc = 0;
    size_t sent = 4 * sizeof(chunk);
    for (int i = 0; i < 4096 && rc == 0; i++) {
        rc = wr_conn_write(fx.cli.c, chunk, sizeof(chunk));
        if (rc == 0)
            sent += sizeof(chunk);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    }
    ASSERT_EQ(rc, WR_ETOOBIG);
    ASSERT(wr_conn_write_queued(fx.cli.c) + sizeof(chunk) > (1 << 20));
    /* The peer reads everything; the queue drains and on_drain follows. */
    ASSERT_OK(wr_conn_read_start(fx.srv.c));
    while (wr_conn_write_queued(fx.cli.c) > 0 || fx.srv.rx_total < sent)
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT_GE(fx.cli.drains, 1);
    ASSERT_EQ(fx.srv.rx_total, sent);
    wr_conn_close(fx.cli.c, true);
    tc_fx_finish(&fx);
}

TEST(dial_refused)
{
    struct tc_fx fx;
    tc_fx_init(&fx);
    /* Close the listener first: its port now refuses. */
    uv_close((uv_handle_t *)&fx.listener, NULL);
    fx.listener_open = false;
    ASSERT_OK(uv_run(&fx.loop, UV_RUN_DEFAULT) < 0);
    tc_fx_dial(&fx, NULL);
    tc_fx_finish(&fx);
    ASSERT(fx.cli.ready);
    ASSERT_EQ(fx.cli.ready_status, UV_ECONNREFUSED);
}

static void tc_reset_on_close(struct wr_conn *c, void *arg)
{
    struct tc_fx *fx = arg;
    (void)c;
    fx->cli.closed = true;
    fx->cli.c = NULL;
    /* The client is gone with data unsent: the server now reads what
     * arrived, then must see the reset. */
    ASSERT_OK(wr_conn_read_start(fx->srv.c));
}

TEST(close_reset)
{
    struct tc_fx fx;
    tc_fx_init(&fx);
    fx.srv.keep_stopped = true;
    tc_fx_dial(&fx, NULL);
    while (!fx.cli.ready || fx.srv.c == NULL)
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    static uint8_t chunk[256 * 1024];
    size_t accepted = 0;
    while (wr_conn_write_queued(fx.cli.c) == 0) {
        ASSERT_OK(wr_conn_write(fx.cli.c, chunk, sizeof(chunk)));
        accepted += sizeof(chunk);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    }
    struct wr_conn_cbs cbs = tc_cbs;
    cbs.on_close = tc_reset_on_close;
    wr_conn_set_cbs(fx.cli.c, &cbs, &fx);
    wr_conn_close(fx.cli.c, false);
    wr_conn_close(fx.cli.c, false); /* idempotent */
    ASSERT_EQ(wr_conn_write(fx.cli.c, chunk, 1), WR_ECLOSED);
    tc_fx_finish(&fx);
    /* A reset drops what was queued (on both ends); Linux then reports
     * ECONNRESET, or EOF once the receive queue it kept is read. A graceful
     * close would have delivered every accepted byte. */
    ASSERT(fx.srv.rx_total < accepted);
    ASSERT(fx.srv.error == UV_ECONNRESET || fx.srv.eof);
}

TEST(close_before_connect)
{
    /* Closing a dial in flight: no on_ready, exactly one on_close. */
    struct tc_fx fx;
    tc_fx_init(&fx);
    tc_fx_dial(&fx, NULL);
    wr_conn_close(fx.cli.c, true);
    while (!fx.cli.closed)
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT(!fx.cli.ready);
    for (int i = 0; i < 10 && fx.listener_open; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    if (fx.listener_open) {
        /* The kernel never queued the connection: nothing to accept. */
        uv_close((uv_handle_t *)&fx.listener, NULL);
        fx.listener_open = false;
    }
    /* The server may have accepted it meanwhile; it sees EOF and closes. */
    tc_fx_finish(&fx);
}

TEST_MAIN(TEST_ENTRY(plain_half_close), TEST_ENTRY(writev_order), TEST_ENTRY(max_queue),
          TEST_ENTRY(dial_refused), TEST_ENTRY(close_reset), TEST_ENTRY(close_before_connect))
