/*
 * fuzz_mux.c: arbitrary bytes into a mux (wr_mux.c), as a libFuzzer target
 * (fuzz_mux) and as a corpus replayer (fuzz_mux_replay: this file plus the
 * shared driver replay.c, run by ctest over corpus/mux with the label fuzz).
 *
 * Input: byte 0 picks options, byte 1 seeds the chunking (and the write that
 * fails, with option bit 4), the rest is fed as the peer's bytes in chunks
 * of varied sizes. The callbacks behave like a busy user: they accept or
 * refuse OPENs, consume, echo, half-close, reset, open streams, send PINGs,
 * GOAWAY and CONTROL, and release streams from inside callbacks. What is
 * checked: no crash, no leak, no use after free (under ASan), one frame per
 * write call, and every stream the user held is detached by wr_mux_free.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wr/mux.h"
#include "wr/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_DIALER 0x01u
#define FZ_SMALL_WINDOW 0x02u
#define FZ_FEW_STREAMS 0x04u
#define FZ_SMALL_FRAMES 0x08u
#define FZ_WRITE_FAILS 0x10u
#define FZ_RESETS 0x20u
#define FZ_IGNORE_OPEN 0x40u
#define FZ_FREE_IN_CB 0x80u

struct fz_stream {
    struct wr_mux_stream *s; /* NULL once released */
    struct fz_stream *next;
};

struct fz {
    struct wr_mux *m;
    uint8_t opt;
    uint32_t writes_left; /* FZ_WRITE_FAILS: the write that fails */
    uint32_t max_frame;
    struct fz_stream *streams;
    bool freed; /* wr_mux_free called */
    unsigned n_cb;
};

static void fz_check(bool ok)
{
    if (!ok)
        abort();
}

/* GCC ignores (void) casts on warn_unused_result: results go here. */
static void fz_ignore(ssize_t rc)
{
    (void)rc;
}

static int fz_write(void *arg, const struct wr_slice *v, int n)
{
    struct fz *f = arg;
    struct wr_frame_hdr h;
    fz_check(n == 1 || n == 2);
    fz_check(wr_frame_hdr_decode(v[0], &h) == WR_FRAME_HDR_LEN && v[0].len == WR_FRAME_HDR_LEN);
    fz_check(h.len == (n == 2 ? v[1].len : 0) && h.len <= f->max_frame);
    if ((f->opt & FZ_WRITE_FAILS) && f->writes_left > 0 && --f->writes_left == 0)
        return UV_EPIPE;
    return 0;
}

static struct fz_stream *fz_track(struct fz *f, struct wr_mux_stream *s)
{
    struct fz_stream *fs = calloc(1, sizeof(*fs));
    fz_check(fs != NULL);
    fs->s = s;
    fs->next = f->streams;
    f->streams = fs;
    return fs;
}

static void fz_on_data(struct wr_mux_stream *s, struct wr_slice d, void *arg);
static void fz_on_fin(struct wr_mux_stream *s, void *arg);
static void fz_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg);
static void fz_on_writable(struct wr_mux_stream *s, void *arg);

static const struct wr_mux_stream_cbs fz_stream_cbs = {
    .on_data = fz_on_data, .on_fin = fz_on_fin, .on_rst = fz_on_rst, .on_writable = fz_on_writable};

static struct fz *fz_cur; /* the input being run: callbacks reach it here */

static void fz_release(struct fz_stream *fs)
{
    struct wr_mux_stream *s = fs->s;
    fs->s = NULL;
    wr_mux_stream_release(s);
}

static void fz_on_data(struct wr_mux_stream *s, struct wr_slice d, void *arg)
{
    struct fz_stream *fs = arg;
    struct fz *f = fz_cur;
    fz_check(wr_mux_stream_mux(s) != NULL); /* never called on a detached stream */
    fz_check(fs->s == s && d.len > 0);
    uint8_t c = d.ptr[0];
    f->n_cb++;
    if ((f->opt & FZ_RESETS) && c % 7 == 0) {
        fs->s = NULL;
        wr_mux_stream_reset(s, WR_CODE_CONNECT);
        return;
    }
    if (c % 3 != 0) /* else: leave it unconsumed, the window fills */
        wr_mux_stream_consumed(s, d.len);
    if (c & 1)
        fz_ignore(wr_mux_stream_write(s, d.ptr, d.len));
    if (c == 'F')
        (void)wr_mux_stream_fin(s);
    if (c == 'O') {
        int err;
        struct fz_stream *n = fz_track(f, NULL);
        n->s = wr_mux_open(wr_mux_stream_mux(s), d, &fz_stream_cbs, n, &err);
    }
    if (c == 'X' && (f->opt & FZ_FREE_IN_CB) && !f->freed) {
        f->freed = true;
        wr_mux_free(wr_mux_stream_mux(s)); /* deferred to the end of the feed */
    }
}

static void fz_on_fin(struct wr_mux_stream *s, void *arg)
{
    struct fz_stream *fs = arg;
    fz_check(fs->s == s);
    (void)wr_mux_stream_fin(s);
    if (wr_mux_stream_id(s) % 4 < 2)
        fz_release(fs); /* else keep holding it until the end */
}

static void fz_on_rst(struct wr_mux_stream *s, uint32_t code, void *arg)
{
    struct fz_stream *fs = arg;
    (void)code;
    fz_check(fs->s == s);
    if (wr_mux_stream_id(s) % 3 != 0)
        fz_release(fs);
}

static void fz_on_writable(struct wr_mux_stream *s, void *arg)
{
    struct fz_stream *fs = arg;
    fz_check(fs->s == s);
    fz_ignore(wr_mux_stream_write(s, (const uint8_t *)"more", 4));
}

static void fz_on_open(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr, void *arg)
{
    struct fz *f = arg;
    (void)m;
    f->n_cb++;
    if ((f->opt & FZ_IGNORE_OPEN) && hdr.len == 3)
        return; /* breaks the contract: the mux must cope */
    if (hdr.len > 0 && hdr.ptr[0] == 'R') {
        wr_mux_stream_reset(s, WR_CODE_REFUSED);
        return;
    }
    struct fz_stream *fs = fz_track(f, s);
    wr_mux_stream_accept(s, &fz_stream_cbs, fs);
    if (hdr.len > 0 && hdr.ptr[0] == 'W')
        fz_ignore(wr_mux_stream_write(s, hdr.ptr, hdr.len));
}

static void fz_on_control(struct wr_mux *m, struct wr_slice msg, void *arg)
{
    struct fz *f = arg;
    f->n_cb++;
    if (msg.len == 0)
        return;
    switch (msg.ptr[0]) {
    case 'P':
        fz_ignore(wr_mux_ping(m, msg.len));
        break;
    case 'G':
        fz_ignore(wr_mux_goaway(m, WR_CODE_SHUTDOWN));
        break;
    case 'C':
        fz_ignore(wr_mux_send_control(m, msg));
        break;
    case 'O': {
        int err;
        struct fz_stream *n = fz_track(f, NULL);
        n->s = wr_mux_open(m, msg, &fz_stream_cbs, n, &err);
        break;
    }
    default:
        break;
    }
}

static void fz_on_pong(struct wr_mux *m, uint64_t opaque, void *arg)
{
    (void)m;
    (void)opaque;
    (void)arg;
}

static void fz_on_goaway(struct wr_mux *m, uint32_t last, uint32_t code, void *arg)
{
    (void)m;
    (void)last;
    (void)code;
    (void)arg;
}

static void fz_on_error(struct wr_mux *m, int err, const char *why, void *arg)
{
    struct fz *f = arg;
    fz_check(err < 0 && why != NULL);
    if ((f->opt & FZ_FREE_IN_CB) && !f->freed) {
        f->freed = true;
        wr_mux_free(m); /* deferred */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fz f;
    memset(&f, 0, sizeof(f));
    f.opt = data[0];
    uint32_t seed = data[1] * 2654435761u + 1;
    f.writes_left = 1 + data[1] % 32;
    struct wr_mux_opts o = {.dialer = (f.opt & FZ_DIALER) != 0};
    if (f.opt & FZ_SMALL_WINDOW)
        o.initial_window = 1024;
    if (f.opt & FZ_FEW_STREAMS)
        o.max_streams = 3;
    if (f.opt & FZ_SMALL_FRAMES) {
        o.max_frame = 512;
        o.max_control = 256;
    }
    f.max_frame = o.max_frame ? o.max_frame : 65536;
    struct wr_mux_cbs cbs = {.write = fz_write,
                             .on_open = fz_on_open,
                             .on_control = fz_on_control,
                             .on_pong = fz_on_pong,
                             .on_goaway = fz_on_goaway,
                             .on_error = fz_on_error};
    f.m = wr_mux_new(&o, &cbs, &f);
    fz_check(f.m != NULL);
    fz_cur = &f;
    data += 2;
    size -= 2;
    while (size > 0 && !f.freed) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 4 == 0 ? 1 : 1 + (seed >> 8) % 97;
        if ((seed >> 20) % 8 == 0)
            n = size;
        if (n > size)
            n = size;
        ssize_t r = wr_mux_feed(f.m, wr_slice_make(data, n));
        if (f.freed)
            break; /* the mux is gone */
        if (r < 0) {
            fz_check(wr_mux_feed(f.m, wr_slice_make(data, n)) < 0); /* stays dead */
            break;
        }
        fz_check((size_t)r == n);
        data += n;
        size -= n;
    }
    if (!f.freed) {
        struct wr_mux_stats st;
        wr_mux_get_stats(f.m, &st);
        fz_check(st.streams_open == wr_mux_streams_open(f.m));
        wr_mux_free(f.m);
    }
    /* What the user still holds is detached: release frees it. */
    while (f.streams != NULL) {
        struct fz_stream *fs = f.streams;
        f.streams = fs->next;
        if (fs->s != NULL) {
            fz_check(wr_mux_stream_mux(fs->s) == NULL);
            wr_mux_stream_release(fs->s);
        }
        free(fs);
    }
    fz_cur = NULL;
    return 0;
}
