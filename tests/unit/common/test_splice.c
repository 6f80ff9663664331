/*
 * test_splice.c: wr_splice.c, two mux streams joined. Two mux pairs in
 * memory: X dials Y, Y2 dials Z. X opens a stream to Y; Y's on_open opens one
 * from Y2 to Z and splices the two (what a node does with a peer's stream and
 * an agent's). The tests then drive X's and Z's ends: bytes both ways,
 * half-close, backpressure with a reader that stops, resets from either end
 * and from a dying connection.
 */
/* link: wr_mux wr_wire */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>

#include "wr/mux.h"
#include "wr/splice.h"
#include "wr/wire.h"

struct t_end;

struct t_mux {
    struct wr_mux *m;
    struct t_mux *other;
    struct wr_buf out;   /* written, not yet fed to other */
    bool splice_on_open; /* Y: splice offered streams to a new Y2 -> Z stream */
    bool accept_on_open; /* Z: accept offered streams with test callbacks */
};

/* A test-held stream end (X's or Z's). */
struct t_end {
    struct wr_mux_stream *s;
    struct wr_buf in;
    bool fin, rst, writable;
    uint32_t rst_code;
    bool consume; /* return credit as soon as bytes arrive */
};

static struct t_mux X, Y, Y2, Z;
static struct t_end ex, ez; /* X's stream, Z's stream */
static struct wr_splice *sp;
static int done_calls;
static int done_err;
static uint32_t done_code;
static struct wr_splice_stats done_stats;

static int t_write(void *arg, const struct wr_slice *v, int n)
{
    struct t_mux *t = arg;
    for (int i = 0; i < n; i++)
        ASSERT_OK(wr_buf_append(&t->out, v[i].ptr, v[i].len));
    return 0;
}

static void t_on_data(struct wr_mux_stream *s, struct wr_slice d, void *arg)
{
    struct t_end *e = arg;
    ASSERT_PTR_EQ(e->s, s);
    ASSERT(!e->fin && !e->rst);
    ASSERT_OK(wr_buf_append(&e->in, d.ptr, d.len));
    if (e->consume)
        wr_mux_stream_consumed(s, d.len);
}

static void t_on_fin(struct wr_mux_stream *s, void *arg)
{
    struct t_end *e = arg;
    ASSERT_PTR_EQ(e->s, s);
    ASSERT(!e->fin);
    e->fin = true;
}

static void t_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg)
{
    struct t_end *e = arg;
    ASSERT_PTR_EQ(e->s, s);
    ASSERT(!e->rst);
    e->rst = true;
    e->rst_code = code;
    wr_mux_stream_release(s);
    e->s = NULL;
}

static void t_on_writable(struct wr_mux_stream *s, void *arg)
{
    struct t_end *e = arg;
    (void)s;
    e->writable = true;
}

static const struct wr_mux_stream_cbs t_cbs = {
    .on_data = t_on_data, .on_fin = t_on_fin, .on_rst = t_on_rst, .on_writable = t_on_writable};

static void t_on_done(struct wr_splice *s, int err, uint32_t code, const char *why, void *arg)
{
    (void)why;
    (void)arg;
    ASSERT_PTR_EQ(sp, s);
    done_calls++;
    done_err = err;
    done_code = code;
    wr_splice_get_stats(s, &done_stats);
    sp = NULL;
}

static void t_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr, void *arg)
{
    struct t_mux *t = arg;
    (void)m;
    if (t->accept_on_open) {
        ASSERT(ez.s == NULL);
        ez.s = s;
        wr_mux_stream_accept(s, &t_cbs, &ez);
        return;
    }
    ASSERT(t->splice_on_open);
    int err = -1;
    struct wr_mux_stream *b = wr_mux_open(Y2.m, hdr, NULL, NULL, &err);
    ASSERT_OK(err);
    ASSERT(sp == NULL);
    sp = wr_splice_new(s, b, t_on_done, NULL);
}

static void t_mux_init(struct t_mux *t, struct t_mux *other, bool dialer, uint32_t window)
{
    memset(t, 0, sizeof(*t));
    t->other = other;
    struct wr_mux_opts o = {.dialer = dialer, .initial_window = window};
    struct wr_mux_cbs cbs = {.write = t_write, .on_open = t_on_open};
    t->m = wr_mux_new(&o, &cbs, t);
    ASSERT(t->m != NULL);
}

/* Moves every queued byte to its receiver until nothing is left to move. */
static void t_pump(void)
{
    struct t_mux *all[] = {&X, &Y, &Y2, &Z};
    for (int round = 0; round < 100000; round++) {
        bool moved = false;
        for (int i = 0; i < 4; i++) {
            struct t_mux *t = all[i];
            if (t->out.len == 0 || t->m == NULL || t->other->m == NULL)
                continue;
            struct wr_buf chunk = t->out;
            t->out = (struct wr_buf){0};
            ssize_t r = wr_mux_feed(t->other->m, wr_buf_peek(&chunk));
            ASSERT_EQ(r, chunk.len);
            wr_buf_free(&chunk);
            moved = true;
        }
        if (!moved)
            return;
    }
    TEST_FAIL("pump did not settle");
}

static void t_setup(uint32_t window)
{
    memset(&ex, 0, sizeof(ex));
    memset(&ez, 0, sizeof(ez));
    sp = NULL;
    done_calls = 0;
    done_err = -1;
    done_code = UINT32_MAX;
    memset(&done_stats, 0, sizeof(done_stats));
    t_mux_init(&X, &Y, true, window);
    t_mux_init(&Y, &X, false, window);
    t_mux_init(&Y2, &Z, true, window);
    t_mux_init(&Z, &Y2, false, window);
    Y.splice_on_open = true;
    Z.accept_on_open = true;
    ex.consume = ez.consume = true;
    int err = -1;
    ex.s = wr_mux_open(X.m, wr_slice_str("hdr"), &t_cbs, &ex, &err);
    ASSERT_OK(err);
    t_pump();
    ASSERT(sp != NULL);
    ASSERT(ez.s != NULL);
}

static void t_teardown(void)
{
    if (ex.s != NULL)
        wr_mux_stream_release(ex.s);
    if (ez.s != NULL)
        wr_mux_stream_release(ez.s);
    struct t_mux *all[] = {&X, &Y, &Y2, &Z};
    for (int i = 0; i < 4; i++) {
        if (all[i]->m != NULL)
            wr_mux_free(all[i]->m);
        all[i]->m = NULL;
        wr_buf_free(&all[i]->out);
    }
    wr_buf_free(&ex.in);
    wr_buf_free(&ez.in);
    ASSERT(sp == NULL); /* every splice ended */
}

static uint8_t t_byte(uint64_t i, int seed)
{
    return (uint8_t)(i * 131 + (i >> 9) + (uint64_t)seed * 17);
}

/* Writes <len> pattern bytes on <e> as credit allows, pumping in between. */
static void t_send(struct t_end *e, size_t len, int seed)
{
    uint8_t buf[8192];
    size_t sent = 0;
    for (int spins = 0; sent < len; spins++) {
        ASSERT(spins < 100000);
        size_t n = len - sent < sizeof(buf) ? len - sent : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = t_byte(sent + i, seed);
        ssize_t w = wr_mux_stream_write(e->s, buf, n);
        ASSERT(w >= 0);
        sent += (size_t)w;
        t_pump();
    }
}

static void t_check_pattern(const struct t_end *e, size_t len, int seed)
{
    ASSERT_EQ(e->in.len, len);
    for (size_t i = 0; i < len; i++)
        if (e->in.data[e->in.off + i] != t_byte(i, seed))
            TEST_FAIL("byte %zu differs", i);
}

static uint32_t t_open_streams(void)
{
    return wr_mux_streams_open(X.m) + wr_mux_streams_open(Y.m) + wr_mux_streams_open(Y2.m) +
           wr_mux_streams_open(Z.m);
}

TEST(bytes_both_ways)
{
    t_setup(0);
    size_t up = 3u << 20, down = (5u << 20) + 123;
    /* Larger than a window each way, so credit has to come back through the
     * splice several times. */
    t_send(&ex, up, 1);
    t_send(&ez, down, 2);
    t_check_pattern(&ez, up, 1);
    t_check_pattern(&ex, down, 2);
    ASSERT_OK(wr_mux_stream_fin(ex.s));
    ASSERT_OK(wr_mux_stream_fin(ez.s));
    t_pump();
    ASSERT(ex.fin && ez.fin && !ex.rst && !ez.rst);
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(0, done_err);
    ASSERT_EQ(up, done_stats.bytes_ab);
    ASSERT_EQ(down, done_stats.bytes_ba);
    ASSERT_EQ(0, t_open_streams());
    t_teardown();
}

TEST(half_close)
{
    t_setup(0);
    t_send(&ex, 1000, 3);
    ASSERT_OK(wr_mux_stream_fin(ex.s));
    t_pump();
    ASSERT(ez.fin);
    t_check_pattern(&ez, 1000, 3);
    ASSERT_EQ(0, done_calls); /* the other direction still flows */
    t_send(&ez, 200000, 4);
    t_check_pattern(&ex, 200000, 4);
    ASSERT(!ex.fin);
    ASSERT_OK(wr_mux_stream_fin(ez.s));
    t_pump();
    ASSERT(ex.fin);
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(0, done_err);
    ASSERT_EQ(0, t_open_streams());
    t_teardown();
}

TEST(backpressure)
{
    const uint32_t win = 65536;
    t_setup(win);
    ez.consume = false; /* Z's reader stalls */
    uint8_t buf[4096];
    size_t sent = 0;
    for (int spins = 0; spins < 10000; spins++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = t_byte(sent + i, 5);
        ssize_t w = wr_mux_stream_write(ex.s, buf, sizeof(buf));
        ASSERT(w >= 0);
        sent += (size_t)w;
        t_pump();
        if (w == 0)
            break;
    }
    /* Z holds one window; the splice holds at most X's window: X cannot send
     * more than both together, however long it tries. */
    ASSERT_EQ(2 * (size_t)win, sent);
    ASSERT_EQ(win, ez.in.len);
    ASSERT_EQ(0, wr_mux_stream_credit(ex.s));
    ASSERT(!ex.writable);
    ASSERT_OK(wr_mux_stream_fin(ex.s));
    t_pump();
    ASSERT(!ez.fin); /* the FIN waits behind the held bytes */

    /* Z reads again: the held bytes, then the FIN, arrive in order, and X gets
     * its credit back. */
    wr_mux_stream_consumed(ez.s, ez.in.len);
    ez.consume = true;
    t_pump();
    ASSERT(ez.fin);
    t_check_pattern(&ez, sent, 5);
    ASSERT_OK(wr_mux_stream_fin(ez.s));
    t_pump();
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(0, done_err);
    t_teardown();
}

TEST(reset_from_agent_side)
{
    t_setup(0);
    t_send(&ex, 5000, 6);
    wr_mux_stream_reset(ez.s, WR_CODE_CONNECT); /* the service was unreachable */
    ez.s = NULL;
    t_pump();
    ASSERT(ex.rst);
    ASSERT_EQ(WR_CODE_CONNECT, ex.rst_code);
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(WR_ECLOSED, done_err);
    ASSERT_EQ(WR_CODE_CONNECT, done_code);
    ASSERT_EQ(0, t_open_streams());
    t_teardown();
}

TEST(reset_from_peer_side)
{
    t_setup(0);
    t_send(&ez, 5000, 7);
    wr_mux_stream_reset(ex.s, WR_CODE_CANCEL); /* the visitor went away */
    ex.s = NULL;
    t_pump();
    ASSERT(ez.rst);
    ASSERT_EQ(WR_CODE_CANCEL, ez.rst_code);
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(WR_CODE_CANCEL, done_code);
    ASSERT_EQ(0, t_open_streams());
    t_teardown();
}

TEST(connection_lost)
{
    t_setup(0);
    t_send(&ex, 100, 8);
    /* The agent's connection dies: Y2's mux is freed, the splice sees CANCEL
     * and passes it to X. */
    wr_mux_free(Y2.m);
    Y2.m = NULL;
    ASSERT_EQ(1, done_calls);
    ASSERT_EQ(WR_CODE_CANCEL, done_code);
    t_pump();
    ASSERT(ex.rst);
    ASSERT_EQ(WR_CODE_CANCEL, ex.rst_code);
    t_teardown();
}

TEST(abort)
{
    t_setup(0);
    wr_splice_abort(sp, WR_CODE_SHUTDOWN);
    ASSERT_EQ(1, done_calls); /* before abort returned */
    t_pump();
    ASSERT(ex.rst && ez.rst);
    ASSERT_EQ(WR_CODE_SHUTDOWN, ex.rst_code);
    ASSERT_EQ(WR_CODE_SHUTDOWN, ez.rst_code);
    ASSERT_EQ(0, t_open_streams());
    t_teardown();
}

TEST_MAIN(TEST_ENTRY(bytes_both_ways), TEST_ENTRY(half_close), TEST_ENTRY(backpressure),
          TEST_ENTRY(reset_from_agent_side), TEST_ENTRY(reset_from_peer_side),
          TEST_ENTRY(connection_lost), TEST_ENTRY(abort))
