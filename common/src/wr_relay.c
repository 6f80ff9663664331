/*
 * wr_relay.c: moves bytes between one mux stream and one socket connection,
 * both ways, with backpressure in each direction. It owns the connection and
 * the user's reference on the stream; it does not pick streams or dial.
 *
 * Up (socket -> stream): read only while the stream has credit; a short
 * stream write parks the rest of that read and stops reading until
 * on_writable. Down (stream -> socket): credit is returned to the peer only
 * for bytes the kernel has taken, so a slow socket slows the sender instead
 * of growing our queue.
 *
 * Parking (wr_relay_attach): with no stream, socket bytes are buffered (bounded)
 * and sent once a stream is attached. With retry on, the bytes sent up are
 * also kept until the first byte comes down, so that an early reset can park
 * the relay and replay them on another stream.
 */
#include "wr/relay.h"

#include <stdlib.h>

#include "wr/log.h"
#include "wr/util.h"
#include "wr/wire.h"

struct wr_relay {
    struct wr_conn *conn;
    struct wr_mux_stream *s; /* NULL once released */
    wr_relay_done_cb done;
    void *arg;
    struct wr_buf up_pending; /* socket bytes the stream had no credit for */
    struct wr_buf down_pre;   /* stream bytes that arrived before the dial finished */
    uint64_t down_total;      /* bytes handed to the connection */
    uint64_t down_consumed;   /* of those, credit returned to the peer */
    uint64_t up_total;
    struct wr_buf replay; /* sent up, kept for a retry until a byte comes down */
    size_t replay_max;    /* 0: no retry */
    wr_relay_retry_cb retry_cb;
    int err;
    const char *why;
    bool parked;    /* no stream: waiting for wr_relay_attach */
    bool down_seen; /* a byte or FIN came down: no retry any more */
    bool conn_ready;
    bool up_eof;    /* the socket sent EOF */
    bool up_done;   /* FIN sent on the stream */
    bool down_done; /* the stream's FIN passed on to the socket */
    bool closing;
};

static void wr_relay_on_ready(struct wr_conn *c, int status, void *arg);
static void wr_relay_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg);
static void wr_relay_on_eof(struct wr_conn *c, void *arg);
static void wr_relay_on_error(struct wr_conn *c, int err, void *arg);
static void wr_relay_on_drain(struct wr_conn *c, void *arg);
static void wr_relay_on_close(struct wr_conn *c, void *arg);
static void wr_relay_on_data(struct wr_mux_stream *s, struct wr_slice data, void *arg);
static void wr_relay_on_fin(struct wr_mux_stream *s, void *arg);
static void wr_relay_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg);
static void wr_relay_on_writable(struct wr_mux_stream *s, void *arg);

static const struct wr_conn_cbs wr_relay_conn_cbs = {
    .on_ready = wr_relay_on_ready,
    .on_read = wr_relay_on_read,
    .on_eof = wr_relay_on_eof,
    .on_error = wr_relay_on_error,
    .on_drain = wr_relay_on_drain,
    .on_close = wr_relay_on_close,
};

static const struct wr_mux_stream_cbs wr_relay_stream_cbs = {
    .on_data = wr_relay_on_data,
    .on_fin = wr_relay_on_fin,
    .on_rst = wr_relay_on_rst,
    .on_writable = wr_relay_on_writable,
};

/* Ends the relay: an error resets both sides, a clean end flushes the socket. */
static void wr_relay_finish(struct wr_relay *r, int err, const char *why, uint32_t code)
{
    if (r->closing)
        return;
    r->closing = true;
    if (r->err == 0) {
        r->err = err;
        r->why = why;
    }
    if (r->s != NULL) {
        if (err != 0)
            wr_mux_stream_reset(r->s, code);
        else
            wr_mux_stream_release(r->s);
        r->s = NULL;
    }
    wr_conn_close(r->conn, err == 0);
}

static void wr_relay_maybe_done(struct wr_relay *r)
{
    if (r->up_done && r->down_done)
        wr_relay_finish(r, 0, NULL, 0);
}

/* Returns credit for every byte the connection no longer holds. */
static void wr_relay_return_credit(struct wr_relay *r)
{
    if (r->s == NULL)
        return;
    uint64_t flushed = r->down_total - wr_conn_write_queued(r->conn);
    if (flushed > r->down_consumed) {
        wr_mux_stream_consumed(r->s, (size_t)(flushed - r->down_consumed));
        r->down_consumed = flushed;
    }
}

static void wr_relay_no_retry(struct wr_relay *r)
{
    wr_buf_free(&r->replay);
    r->replay_max = 0;
}

/* <n> bytes of <p> went up the stream. */
static void wr_relay_sent_up(struct wr_relay *r, const uint8_t *p, size_t n)
{
    r->up_total += n;
    if (r->replay_max == 0 || n == 0)
        return;
    if (r->replay.len + n > r->replay_max || wr_buf_append(&r->replay, p, n) != 0)
        wr_relay_no_retry(r);
}

static size_t wr_relay_park_cap(const struct wr_relay *r)
{
    return r->replay_max > WR_RELAY_PARK_MAX ? r->replay_max : WR_RELAY_PARK_MAX;
}

static void wr_relay_send_fin_up(struct wr_relay *r)
{
    if (r->up_done || r->s == NULL)
        return;
    r->up_done = true;
    int err = wr_mux_stream_fin(r->s);
    if (err != 0) {
        wr_relay_finish(r, err, "stream_fin_failed", WR_CODE_CANCEL);
        return;
    }
    wr_relay_maybe_done(r);
}

/* Pushes as much of <data> as the stream takes; parks the rest. */
static void wr_relay_push_up(struct wr_relay *r, const uint8_t *data, size_t len)
{
    ssize_t n = wr_mux_stream_write(r->s, data, len);
    if (n < 0) {
        wr_relay_finish(r, (int)n, "stream_write_failed", WR_CODE_CANCEL);
        return;
    }
    wr_relay_sent_up(r, data, (size_t)n);
    if ((size_t)n < len) {
        if (wr_buf_append(&r->up_pending, data + n, len - (size_t)n) != 0) {
            wr_relay_finish(r, WR_ENOMEM, "out_of_memory", WR_CODE_INTERNAL);
            return;
        }
        (void)wr_conn_read_stop(r->conn);
    }
}

static void wr_relay_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    if (r->closing || r->up_done)
        return;
    if (r->parked) {
        if (wr_buf_append(&r->up_pending, data, len) != 0)
            wr_relay_finish(r, WR_ENOMEM, "out_of_memory", WR_CODE_INTERNAL);
        else if (r->up_pending.len >= wr_relay_park_cap(r))
            (void)wr_conn_read_stop(r->conn);
        return;
    }
    if (r->s == NULL)
        return;
    if (r->up_pending.len > 0) {
        /* Only possible if the connection delivers data it had buffered before
         * read_stop took effect: keep order by parking it too. */
        if (wr_buf_append(&r->up_pending, data, len) != 0)
            wr_relay_finish(r, WR_ENOMEM, "out_of_memory", WR_CODE_INTERNAL);
        return;
    }
    wr_relay_push_up(r, data, len);
}

/* Sends what waits in up_pending as far as credit goes; once it is all out,
 * the FIN follows or reading resumes. */
static void wr_relay_flush_up(struct wr_relay *r)
{
    if (r->up_pending.len > 0) {
        struct wr_slice p = wr_buf_peek(&r->up_pending);
        ssize_t n = wr_mux_stream_write(r->s, p.ptr, p.len);
        if (n < 0) {
            wr_relay_finish(r, (int)n, "stream_write_failed", WR_CODE_CANCEL);
            return;
        }
        wr_relay_sent_up(r, p.ptr, (size_t)n);
        wr_buf_consume(&r->up_pending, (size_t)n);
        if (r->up_pending.len > 0)
            return; /* on_writable follows */
        wr_buf_free(&r->up_pending);
    }
    if (r->up_eof)
        wr_relay_send_fin_up(r);
    else
        (void)wr_conn_read_start(r->conn);
}

static void wr_relay_on_writable(struct wr_mux_stream *s, void *arg)
{
    struct wr_relay *r = arg;
    (void)s;
    if (r->closing || r->up_pending.len == 0)
        return;
    wr_relay_flush_up(r);
}

static void wr_relay_on_eof(struct wr_conn *c, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    if (r->closing)
        return;
    r->up_eof = true;
    if (r->up_pending.len == 0)
        wr_relay_send_fin_up(r);
}

static void wr_relay_on_error(struct wr_conn *c, int err, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    wr_relay_finish(r, err, "socket_error", WR_CODE_CANCEL);
}

static void wr_relay_write_down(struct wr_relay *r, const uint8_t *p, size_t len)
{
    int err = wr_conn_write(r->conn, p, len);
    if (err != 0) {
        wr_relay_finish(r, err, "socket_write_failed", WR_CODE_CANCEL);
        return;
    }
    r->down_total += len;
    wr_relay_return_credit(r);
}

static void wr_relay_on_data(struct wr_mux_stream *s, struct wr_slice data, void *arg)
{
    struct wr_relay *r = arg;
    (void)s;
    if (r->closing)
        return;
    if (!r->down_seen) {
        r->down_seen = true;
        wr_relay_no_retry(r);
    }
    if (!r->conn_ready) {
        /* Bounded by the stream window: the peer cannot send more than that
         * before we return credit, and we return none until the dial is done. */
        if (wr_buf_append(&r->down_pre, data.ptr, data.len) != 0)
            wr_relay_finish(r, WR_ENOMEM, "out_of_memory", WR_CODE_INTERNAL);
        return;
    }
    wr_relay_write_down(r, data.ptr, data.len);
}

static void wr_relay_pass_fin_down(struct wr_relay *r)
{
    r->down_done = true;
    int err = wr_conn_shutdown(r->conn);
    if (err != 0) {
        wr_relay_finish(r, err, "socket_shutdown_failed", WR_CODE_CANCEL);
        return;
    }
    wr_relay_maybe_done(r);
}

static void wr_relay_on_fin(struct wr_mux_stream *s, void *arg)
{
    struct wr_relay *r = arg;
    (void)s;
    if (r->closing)
        return;
    r->down_seen = true;
    wr_relay_no_retry(r);
    if (!r->conn_ready) {
        r->down_done = true; /* passed on once the dial completes */
        return;
    }
    wr_relay_pass_fin_down(r);
}

/* The stream died before anything came down: keep the connection and the
 * bytes, in order (those sent on the dead stream first), for another stream. */
static void wr_relay_park(struct wr_relay *r)
{
    r->parked = true;
    r->up_done = false; /* a FIN sent on the dead stream goes on the next one */
    r->up_total -= r->replay.len;
    if (r->replay.len > 0) {
        struct wr_slice rest = wr_buf_peek(&r->up_pending);
        if (rest.len > 0 && wr_buf_append(&r->replay, rest.ptr, rest.len) != 0) {
            wr_relay_finish(r, WR_ENOMEM, "out_of_memory", WR_CODE_INTERNAL);
            return;
        }
        wr_buf_free(&r->up_pending);
        r->up_pending = r->replay;
        r->replay = (struct wr_buf){0};
    }
    if (r->up_eof || r->up_pending.len >= wr_relay_park_cap(r))
        (void)wr_conn_read_stop(r->conn);
    else
        (void)wr_conn_read_start(r->conn);
}

static void wr_relay_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg)
{
    struct wr_relay *r = arg;
    /* The stream is gone on the mux side: drop our reference first so that
     * finish() does not reset it again. */
    wr_mux_stream_release(s);
    r->s = NULL;
    if (!r->closing && r->retry_cb != NULL && r->replay_max > 0 && !r->down_seen) {
        wr_relay_park(r);
        if (!r->closing)
            r->retry_cb(r, code, r->arg);
        return;
    }
    if (r->err == 0) {
        r->err = WR_ECLOSED;
        r->why = wr_proto_code_str(code);
    }
    wr_relay_finish(r, WR_ECLOSED, r->why, code);
}

static void wr_relay_on_drain(struct wr_conn *c, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    if (!r->closing)
        wr_relay_return_credit(r);
}

static void wr_relay_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    if (r->closing)
        return;
    if (status != 0) {
        wr_relay_finish(r, status, "service_dial_failed", WR_CODE_CONNECT);
        return;
    }
    r->conn_ready = true;
    if (r->down_pre.len > 0) {
        struct wr_buf pre = r->down_pre;
        r->down_pre = (struct wr_buf){0};
        wr_relay_write_down(r, pre.data + pre.off, pre.len);
        wr_buf_free(&pre);
        if (r->closing)
            return;
    }
    if (r->down_done) {
        r->down_done = false;
        wr_relay_pass_fin_down(r);
        if (r->closing)
            return;
    }
    (void)wr_conn_read_start(r->conn);
}

static void wr_relay_on_close(struct wr_conn *c, void *arg)
{
    struct wr_relay *r = arg;
    (void)c;
    if (r->s != NULL) {
        /* Closed without finish() (cannot happen today); never leak the stream. */
        wr_mux_stream_reset(r->s, WR_CODE_CANCEL);
        r->s = NULL;
    }
    if (r->done != NULL)
        r->done(r, r->err, r->why, r->arg);
    wr_buf_free(&r->up_pending);
    wr_buf_free(&r->down_pre);
    wr_buf_free(&r->replay);
    free(r);
}

struct wr_relay *wr_relay_new(struct wr_conn *conn, struct wr_mux_stream *s, wr_relay_done_cb done,
                              void *arg)
{
    struct wr_relay *r = wr_xcalloc(1, sizeof(*r));
    r->conn = conn;
    r->s = s;
    r->done = done;
    r->arg = arg;
    r->conn_ready = wr_conn_is_ready(conn);
    r->parked = s == NULL;
    wr_conn_set_cbs(conn, &wr_relay_conn_cbs, r);
    if (s != NULL)
        wr_mux_stream_set_cbs(s, &wr_relay_stream_cbs, r);
    return r;
}

void wr_relay_set_retry(struct wr_relay *r, size_t max, wr_relay_retry_cb cb)
{
    r->retry_cb = cb;
    r->replay_max = r->down_seen ? 0 : max;
}

void wr_relay_attach(struct wr_relay *r, struct wr_mux_stream *s)
{
    WR_ASSERT(r->parked && r->s == NULL);
    if (r->closing) {
        wr_mux_stream_reset(s, WR_CODE_CANCEL);
        return;
    }
    r->parked = false;
    r->s = s;
    wr_mux_stream_set_cbs(s, &wr_relay_stream_cbs, r);
    if (r->conn_ready)
        wr_relay_flush_up(r);
}

bool wr_relay_is_parked(const struct wr_relay *r)
{
    return r->parked;
}

void wr_relay_abort(struct wr_relay *r, uint32_t code)
{
    wr_relay_finish(r, WR_ECLOSED, "aborted", code);
}

void wr_relay_get_stats(const struct wr_relay *r, struct wr_relay_stats *out)
{
    out->bytes_up = r->up_total;
    out->bytes_down = r->down_total;
}
