/*
 * wr/splice.h: joins two mux streams (usually on two different connections:
 * a node's peer link and an agent's tunnel) and moves bytes both ways with
 * backpressure: credit for what one stream received is returned only once
 * the other stream took the bytes, so a slow side slows the sender instead of
 * growing a buffer (at most one window per direction is held). Half-close
 * passes through each way; a reset of either stream resets the other with
 * the same code. Loop thread only.
 */
#ifndef WR_SPLICE_H
#define WR_SPLICE_H

#include <stdint.h>

#include "wr/mux.h"

struct wr_splice;

/* Called once, when both directions finished (<err> 0) or either stream was
 * reset (<err> WR_ECLOSED, <code> the reset's code, <why> its name). Both
 * stream references are released by then; the splice is freed once the
 * callback returns. It runs from inside a stream callback or wr_splice_abort,
 * so it must not free the muxes. */
typedef void (*wr_splice_done_cb)(struct wr_splice *sp, int err, uint32_t code, const char *why,
                                  void *arg);

struct wr_splice_stats {
    uint64_t bytes_ab; /* received on a, sent on b */
    uint64_t bytes_ba;
};

/* Takes the user's references on <a> and <b> (replacing their callbacks; a
 * stream still offered by on_open is accepted). Never fails. */
struct wr_splice *wr_splice_new(struct wr_mux_stream *a, struct wr_mux_stream *b,
                                wr_splice_done_cb done, void *arg);
/* Resets both streams with <code>; <done> runs before this returns. */
void wr_splice_abort(struct wr_splice *sp, uint32_t code);
void wr_splice_get_stats(const struct wr_splice *sp, struct wr_splice_stats *out);

#endif
