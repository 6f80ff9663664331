/* wr_buf.c: the linear buffer. Growth doubles; memory is released only by wr_buf_free. */
#include "wr/buf.h"

#include <stdlib.h>

int wr_buf_reserve(struct wr_buf *b, size_t min, uint8_t **wptr, size_t *wlen)
{
    WR_ASSERT(b->off + b->len <= b->cap);
    if (b->cap - b->off - b->len < min && b->off > 0) {
        if (b->len > 0)
            memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    if (b->cap - b->len < min) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < min) {
            if (ncap > SIZE_MAX / 2)
                return WR_ENOMEM;
            ncap *= 2;
        }
        uint8_t *nd = realloc(b->data, ncap);
        if (nd == NULL)
            return WR_ENOMEM;
        b->data = nd;
        b->cap = ncap;
    }
    *wptr = b->data + b->off + b->len;
    *wlen = b->cap - b->off - b->len;
    return 0;
}

void wr_buf_commit(struct wr_buf *b, size_t n)
{
    WR_ASSERT(b->off + b->len + n <= b->cap);
    b->len += n;
}

void wr_buf_consume(struct wr_buf *b, size_t n)
{
    WR_ASSERT(n <= b->len);
    b->len -= n;
    b->off = b->len == 0 ? 0 : b->off + n;
}

int wr_buf_append(struct wr_buf *b, const void *p, size_t n)
{
    uint8_t *w;
    size_t wl;
    if (n == 0)
        return 0;
    int err = wr_buf_reserve(b, n, &w, &wl);
    if (err != 0)
        return err;
    memcpy(w, p, n);
    wr_buf_commit(b, n);
    return 0;
}

void wr_buf_free(struct wr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->off = b->len = 0;
}
