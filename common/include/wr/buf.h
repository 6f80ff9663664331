/*
 * wr/buf.h: borrowed slices and owned linear buffers.
 */
#ifndef WR_BUF_H
#define WR_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wr/err.h"

/* A borrowed view, never freed. Zero-initialised is a valid empty slice. */
struct wr_slice {
    const uint8_t *ptr;
    size_t len;
};

/*
 * An owned, linear buffer. Zero-initialised is a valid empty buffer.
 * Invariants: off + len <= cap; data == NULL iff cap == 0.
 * Readable bytes are data[off .. off+len); the writable tail is after them.
 */
struct wr_buf {
    uint8_t *data;
    size_t cap;
    size_t off;
    size_t len;
};

static inline struct wr_slice wr_slice_make(const void *p, size_t n)
{
    struct wr_slice s = {(const uint8_t *)p, n};
    return s;
}

static inline struct wr_slice wr_slice_str(const char *s)
{
    return wr_slice_make(s, strlen(s));
}

static inline bool wr_slice_eq(struct wr_slice a, struct wr_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Drops <n> bytes (at most len) from the front of <s>. */
static inline struct wr_slice wr_slice_adv(struct wr_slice s, size_t n)
{
    if (n > s.len)
        n = s.len;
    s.ptr += n;
    s.len -= n;
    return s;
}

/*
 * Makes room for at least <min> writable bytes after the readable ones and
 * returns the writable tail in <*wptr>/<*wlen>. Compacts before growing.
 * Returns 0 or WR_ENOMEM (the buffer is unchanged then).
 */
WR_MUST_CHECK int wr_buf_reserve(struct wr_buf *b, size_t min, uint8_t **wptr, size_t *wlen);
/* Marks <n> bytes of the reserved tail as written. */
void wr_buf_commit(struct wr_buf *b, size_t n);
/* Drops <n> readable bytes from the front; resets offsets when empty. */
void wr_buf_consume(struct wr_buf *b, size_t n);
/* Appends a copy of <n> bytes. Returns 0 or WR_ENOMEM. */
WR_MUST_CHECK int wr_buf_append(struct wr_buf *b, const void *p, size_t n);
/* Releases the memory; the buffer is empty and valid afterwards. */
void wr_buf_free(struct wr_buf *b);

static inline struct wr_slice wr_buf_peek(const struct wr_buf *b)
{
    return wr_slice_make(b->data + b->off, b->len);
}

#endif
