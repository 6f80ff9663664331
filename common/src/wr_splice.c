/*
 * wr_splice.c: moves bytes between two mux streams, both ways (contract in
 * wr/splice.h). It owns the user's references on both streams; it neither
 * opens streams nor touches the connections under them.
 *
 * Each end keeps what its stream delivered that the other stream had no
 * credit (or transport room) for; that end's credit is returned only for
 * bytes the other stream took, so the buffer never exceeds one window.
 */
#include "wr/splice.h"

#include <stdlib.h>

#include "wr/util.h"
#include "wr/wire.h"

struct wr_splice_end {
    struct wr_splice *sp;
    struct wr_mux_stream *s; /* NULL once released */
    struct wr_buf pending;   /* received on s, not yet taken by the other stream */
    uint64_t bytes;          /* received on s and passed to the other stream */
    bool fin_in;             /* s sent its FIN */
    bool fin_out;            /* that FIN was passed to the other stream */
};

struct wr_splice {
    struct wr_splice_end end[2];
    wr_splice_done_cb done;
    void *arg;
    int depth;     /* inside our callbacks: completion waits for the outermost */
    bool finished; /* streams released; done owed */
    int err;
    uint32_t code;
    const char *why;
};

static struct wr_splice_end *wr_splice_other(struct wr_splice_end *e)
{
    struct wr_splice *sp = e->sp;
    return e == &sp->end[0] ? &sp->end[1] : &sp->end[0];
}

static void wr_splice_complete(struct wr_splice *sp)
{
    if (sp->done != NULL)
        sp->done(sp, sp->err, sp->code, sp->why, sp->arg);
    for (int i = 0; i < 2; i++)
        wr_buf_free(&sp->end[i].pending);
    free(sp);
}

/* Releases both streams (resetting them with <code> on error); the splice is
 * freed when the outermost of our calls returns. */
static void wr_splice_finish(struct wr_splice *sp, int err, uint32_t code)
{
    if (sp->finished)
        return;
    sp->finished = true;
    sp->err = err;
    sp->code = code;
    sp->why = err != 0 ? wr_proto_code_str(code) : NULL;
    for (int i = 0; i < 2; i++) {
        struct wr_splice_end *e = &sp->end[i];
        if (e->s == NULL)
            continue;
        if (err != 0)
            wr_mux_stream_reset(e->s, code);
        else
            wr_mux_stream_release(e->s);
        e->s = NULL;
    }
}

static void wr_splice_enter(struct wr_splice *sp)
{
    sp->depth++;
}

static void wr_splice_leave(struct wr_splice *sp)
{
    if (--sp->depth == 0 && sp->finished)
        wr_splice_complete(sp);
}

static void wr_splice_maybe_done(struct wr_splice *sp)
{
    if (sp->end[0].fin_out && sp->end[1].fin_out)
        wr_splice_finish(sp, 0, WR_CODE_OK);
}

/* <e>'s stream finished and everything it sent has been passed on. */
static void wr_splice_pass_fin(struct wr_splice_end *e)
{
    struct wr_splice_end *o = wr_splice_other(e);
    e->fin_out = true;
    int err = wr_mux_stream_fin(o->s);
    if (err != 0) {
        wr_splice_finish(e->sp, err, WR_CODE_CANCEL);
        return;
    }
    wr_splice_maybe_done(e->sp);
}

/* Passes <len> bytes received on <e> to the other stream, keeping what it
 * cannot take yet. */
static void wr_splice_push(struct wr_splice_end *e, const uint8_t *p, size_t len)
{
    struct wr_splice_end *o = wr_splice_other(e);
    ssize_t n = wr_mux_stream_write(o->s, p, len);
    if (n < 0) {
        wr_splice_finish(e->sp, (int)n, WR_CODE_CANCEL);
        return;
    }
    if (n > 0) {
        e->bytes += (uint64_t)n;
        wr_mux_stream_consumed(e->s, (size_t)n);
    }
    if ((size_t)n < len && wr_buf_append(&e->pending, p + n, len - (size_t)n) != 0)
        wr_splice_finish(e->sp, WR_ENOMEM, WR_CODE_INTERNAL);
}

static void wr_splice_on_data(struct wr_mux_stream *s, struct wr_slice data, void *arg)
{
    struct wr_splice_end *e = arg;
    struct wr_splice *sp = e->sp;
    (void)s;
    if (sp->finished)
        return;
    wr_splice_enter(sp);
    if (e->pending.len > 0) {
        /* Keeps the order; bounded by <e>'s window, none of it returned yet. */
        if (wr_buf_append(&e->pending, data.ptr, data.len) != 0)
            wr_splice_finish(sp, WR_ENOMEM, WR_CODE_INTERNAL);
    } else {
        wr_splice_push(e, data.ptr, data.len);
    }
    wr_splice_leave(sp);
}

/* Credit came back on <o>'s stream: what the other end holds may go. */
static void wr_splice_on_writable(struct wr_mux_stream *s, void *arg)
{
    struct wr_splice_end *o = arg;
    struct wr_splice *sp = o->sp;
    struct wr_splice_end *e = wr_splice_other(o);
    (void)s;
    if (sp->finished)
        return;
    wr_splice_enter(sp);
    if (e->pending.len > 0) {
        struct wr_buf held = e->pending;
        e->pending = (struct wr_buf){0};
        struct wr_slice p = wr_buf_peek(&held);
        wr_splice_push(e, p.ptr, p.len);
        wr_buf_free(&held);
    }
    if (!sp->finished && e->pending.len == 0 && e->fin_in && !e->fin_out)
        wr_splice_pass_fin(e);
    wr_splice_leave(sp);
}

static void wr_splice_on_fin(struct wr_mux_stream *s, void *arg)
{
    struct wr_splice_end *e = arg;
    struct wr_splice *sp = e->sp;
    (void)s;
    if (sp->finished)
        return;
    wr_splice_enter(sp);
    e->fin_in = true;
    if (e->pending.len == 0)
        wr_splice_pass_fin(e);
    wr_splice_leave(sp);
}

static void wr_splice_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg)
{
    struct wr_splice_end *e = arg;
    struct wr_splice *sp = e->sp;
    wr_splice_enter(sp);
    /* Ours to release: finish() then resets only the other stream. */
    wr_mux_stream_release(s);
    e->s = NULL;
    wr_splice_finish(sp, WR_ECLOSED, code);
    wr_splice_leave(sp);
}

static const struct wr_mux_stream_cbs wr_splice_stream_cbs = {
    .on_data = wr_splice_on_data,
    .on_fin = wr_splice_on_fin,
    .on_rst = wr_splice_on_rst,
    .on_writable = wr_splice_on_writable,
};

struct wr_splice *wr_splice_new(struct wr_mux_stream *a, struct wr_mux_stream *b,
                                wr_splice_done_cb done, void *arg)
{
    struct wr_splice *sp = wr_xcalloc(1, sizeof(*sp));
    sp->done = done;
    sp->arg = arg;
    sp->end[0].sp = sp->end[1].sp = sp;
    sp->end[0].s = a;
    sp->end[1].s = b;
    wr_mux_stream_set_cbs(a, &wr_splice_stream_cbs, &sp->end[0]);
    wr_mux_stream_set_cbs(b, &wr_splice_stream_cbs, &sp->end[1]);
    return sp;
}

void wr_splice_abort(struct wr_splice *sp, uint32_t code)
{
    wr_splice_enter(sp);
    wr_splice_finish(sp, WR_ECLOSED, code);
    wr_splice_leave(sp);
}

void wr_splice_get_stats(const struct wr_splice *sp, struct wr_splice_stats *out)
{
    out->bytes_ab = sp->end[0].bytes;
    out->bytes_ba = sp->end[1].bytes;
}
