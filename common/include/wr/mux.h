/*
 * wr/mux.h: the frame codec and the stream multiplexer, with no I/O.
 *
 * Frame: a 9-byte header, then <len> bytes of payload.
 *   len:24 (big-endian) | type:8 | flags:8 | stream:32 (big-endian, top bit 0)
 * Stream 0 carries connection-level frames (PING, PONG, GOAWAY, CONTROL).
 * The side that dialed the connection opens odd stream ids, the side that
 * accepted it even ids, so both may open streams without clashing.
 *
 * Flow control is per stream and counts DATA payload bytes: each side starts
 * with <initial_window> of credit toward the other; the receiver returns
 * credit with WINDOW frames as its user reports bytes consumed. A sender that
 * overruns the window gets that stream reset (WR_CODE_FLOW); the connection
 * lives on. Memory held for a connection is thus bounded by
 * max_streams * initial_window plus one frame.
 *
 * Loop thread only. The mux never frees a stream its user still holds.
 */
#ifndef WR_MUX_H
#define WR_MUX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "wr/buf.h"
#include "wr/err.h"

#define WR_FRAME_HDR_LEN 9
#define WR_FRAME_LEN_MAX 0xffffffu /* what 24 bits can say */

enum wr_frame_type {
    WR_FR_DATA = 0,    /* stream payload */
    WR_FR_OPEN = 1,    /* open a stream; payload: msgpack OPEN header */
    WR_FR_FIN = 2,     /* sender will send no more DATA on the stream */
    WR_FR_RST = 3,     /* abort the stream; payload: u32 code */
    WR_FR_WINDOW = 4,  /* credit; payload: u32 increment */
    WR_FR_PING = 5,    /* stream 0; payload: 8 opaque bytes */
    WR_FR_PONG = 6,    /* stream 0; echo of a PING's 8 bytes */
    WR_FR_GOAWAY = 7,  /* stream 0; payload: u32 last stream id, u32 code */
    WR_FR_CONTROL = 8, /* stream 0; payload: msgpack control message */
    WR_FR__COUNT       /* must be last */
};
const char *wr_frame_type_str(unsigned type);

struct wr_frame_hdr {
    uint32_t len;
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
};

void wr_frame_hdr_encode(uint8_t out[WR_FRAME_HDR_LEN], const struct wr_frame_hdr *h);
/* Tri-state: WR_FRAME_HDR_LEN consumed, 0 need more, < 0 error (top stream bit set). */
WR_MUST_CHECK ssize_t wr_frame_hdr_decode(struct wr_slice in, struct wr_frame_hdr *h);

struct wr_mux;
struct wr_mux_stream;

/* Nothing is negotiated: both ends must use the same initial_window and
 * max_frame (the defaults, normally). */
struct wr_mux_opts {         /* zero-initialised is valid: defaults apply */
    uint32_t initial_window; /* per-stream credit each way; 0: WR_MUX_DEFAULT_WINDOW */
    uint32_t max_streams;    /* concurrently open streams we accept; 0: 4096.
                              * Counts both directions: wr_mux_open fails
                              * with WR_ELIMIT at the same limit. */
    uint32_t max_frame;      /* largest frame payload we send and accept; 0: 65536 */
    uint32_t max_control;    /* largest CONTROL/OPEN payload accepted; 0: 16384 */
    bool dialer;             /* true on the side that dialed: it opens odd ids */
};
#define WR_MUX_DEFAULT_WINDOW (4u * 1024 * 1024)

struct wr_mux_cbs {
    /* Sends bytes to the peer (the transport copies them). Returns 0, or an
     * error that makes the mux fail (on_error follows). Required. */
    int (*write)(void *arg, const struct wr_slice *v, int n);
    /* The peer opened stream <s> with OPEN header <hdr> (borrowed). The user
     * must call wr_mux_stream_accept() or wr_mux_stream_reset() before
     * returning. Without this callback every OPEN is refused. */
    void (*on_open)(struct wr_mux *m, struct wr_mux_stream *s, struct wr_slice hdr, void *arg);
    /* A CONTROL message (borrowed for the call). */
    void (*on_control)(struct wr_mux *m, struct wr_slice msg, void *arg);
    /* A PONG echoing <opaque>. PINGs are answered by the mux itself. */
    void (*on_pong)(struct wr_mux *m, uint64_t opaque, void *arg);
    /* The peer sent GOAWAY: it will accept no stream above <last_stream>. */
    void (*on_goaway)(struct wr_mux *m, uint32_t last_stream, uint32_t code, void *arg);
    /* Connection-level protocol error in what the peer sent; <why> is static
     * text for the log. The user should send nothing more and close. After this
     * wr_mux_feed returns < 0 and the mux delivers nothing more (no stream
     * callback either, until wr_mux_free cancels the streams). Also called
     * when cbs->write fails (<err> is its error, <why> "write failed"); every
     * later call then returns that error. */
    void (*on_error)(struct wr_mux *m, int err, const char *why, void *arg);
};

struct wr_mux_stream_cbs {
    /* Payload arrived (borrowed for the call). When the bytes have left the
     * process, call wr_mux_stream_consumed() so the peer may send more. */
    void (*on_data)(struct wr_mux_stream *s, struct wr_slice data, void *arg);
    /* The peer finished sending (FIN). */
    void (*on_fin)(struct wr_mux_stream *s, void *arg);
    /* The stream was aborted: by the peer's RST (<code> from it), by a flow
     * control violation (WR_CODE_FLOW), or because the connection failed or was
     * destroyed (WR_CODE_CANCEL). No other stream callback follows. */
    void (*on_rst)(struct wr_mux_stream *s, uint32_t code, void *arg);
    /* Send credit came back after a short write. */
    void (*on_writable)(struct wr_mux_stream *s, void *arg);
};

/* <cbs> is copied. Returns NULL only on OOM. */
struct wr_mux *wr_mux_new(const struct wr_mux_opts *opts, const struct wr_mux_cbs *cbs, void *arg);
/* Resets every stream still open (their on_rst runs with WR_CODE_CANCEL, so
 * users drop their references) and frees the mux. Nothing is written to the
 * transport. Streams the users still hold after that (including streams
 * already closed by both FINs or after on_rst, which get no new callback)
 * are detached: wr_mux_stream_mux() returns NULL, write/fin return
 * WR_ECLOSED, credit is 0, consumed does nothing, and release or reset
 * frees them. Called from inside a mux callback, the work is deferred until
 * the outermost mux call returns (do not touch <m> after). */
void wr_mux_free(struct wr_mux *m);

/*
 * Feeds bytes received from the peer. Dispatches every complete frame (DATA
 * may be delivered in pieces, without waiting for the whole frame). Returns
 * the bytes consumed (always all of <in>) or < 0 on a connection-level
 * protocol error (after on_error). Oversized frames, unknown types, frames on
 * stream 0 that need a stream, stream frames on stream 0, OPEN with the
 * wrong parity or a reused id, and frames for ids never opened are
 * connection errors; frames for streams already closed are dropped and
 * counted; an OPEN beyond max_streams is refused with RST. Not re-entrant:
 * from inside a callback of the same mux it returns WR_EUSAGE and consumes
 * nothing.
 */
WR_MUST_CHECK ssize_t wr_mux_feed(struct wr_mux *m, struct wr_slice in);

/* Opens a stream with OPEN header <hdr>. <cbs> may be NULL when the caller
 * sets them with wr_mux_stream_set_cbs before it returns to the loop. Returns NULL with *err set:
 * WR_ELIMIT (too many streams), WR_EGOAWAY (peer sent GOAWAY, or we did),
 * WR_ETOOBIG (header), or a write error. */
struct wr_mux_stream *wr_mux_open(struct wr_mux *m, struct wr_slice hdr,
                                  const struct wr_mux_stream_cbs *cbs, void *arg, int *err);
/* Takes a stream offered by on_open. */
void wr_mux_stream_accept(struct wr_mux_stream *s, const struct wr_mux_stream_cbs *cbs, void *arg);
/* Replaces the callbacks of a stream the user holds (opened or accepted), for
 * handing it to a new owner such as a relay. On a stream still offered by
 * on_open it accepts it. */
void wr_mux_stream_set_cbs(struct wr_mux_stream *s, const struct wr_mux_stream_cbs *cbs, void *arg);

/* Sends up to the available credit; returns the bytes taken (0..len) or < 0.
 * When short, on_writable follows once credit returns. */
WR_MUST_CHECK ssize_t wr_mux_stream_write(struct wr_mux_stream *s, const uint8_t *data, size_t len);
/* Send credit: the bytes wr_mux_stream_write would take right now (what the
 * peer granted us for this stream); 0 once our direction is closed. */
uint32_t wr_mux_stream_credit(const struct wr_mux_stream *s);
/* Half-close our direction (FIN). Idempotent. */
int wr_mux_stream_fin(struct wr_mux_stream *s);
/* The user has passed <n> received bytes on; returns credit (batched: a
 * WINDOW goes out once a quarter of the window is owed). */
void wr_mux_stream_consumed(struct wr_mux_stream *s, size_t n);
/* Aborts the stream (RST with <code> unless already closed both ways) and
 * releases the user's reference: no callback follows, do not touch <s> again. */
void wr_mux_stream_reset(struct wr_mux_stream *s, uint32_t code);
/* Releases the user's reference after both FINs or after on_rst. If the
 * stream is still open it is reset with WR_CODE_CANCEL. Do not touch <s> again. */
void wr_mux_stream_release(struct wr_mux_stream *s);
uint32_t wr_mux_stream_id(const struct wr_mux_stream *s);
struct wr_mux *wr_mux_stream_mux(const struct wr_mux_stream *s);

/*
 * Transport backpressure. Per-stream credit bounds what each stream may have
 * in flight, but many streams toward a peer that reads slowly could still
 * pile up in the transport's queue. The owner marks the mux congested when
 * that queue passes its high-water mark (typically from the write callback)
 * and clears it when the queue drains: while congested, DATA writes take
 * nothing (want on_writable), and clearing it calls on_writable on every
 * stream that was refused. Control frames are never held back.
 */
#define WR_MUX_QUEUE_HIGH (1u << 20) /* a sensible high-water mark for tunnels */
void wr_mux_set_congested(struct wr_mux *m, bool congested);
bool wr_mux_is_congested(const struct wr_mux *m);

/* Connection-level frames. */
WR_MUST_CHECK int wr_mux_send_control(struct wr_mux *m, struct wr_slice msg);
WR_MUST_CHECK int wr_mux_ping(struct wr_mux *m, uint64_t opaque);
/* Tells the peer we accept no new stream; existing ones continue. After a
 * GOAWAY either way, wr_mux_open fails with WR_EGOAWAY and OPENs that still
 * arrive are refused (RST WR_CODE_REFUSED). The GOAWAY carries the highest
 * stream id the peer had opened, for its information. */
WR_MUST_CHECK int wr_mux_goaway(struct wr_mux *m, uint32_t code);

struct wr_mux_stats {
    uint32_t streams_open;    /* currently open (not fully closed) */
    uint64_t streams_opened;  /* total, both directions */
    uint64_t streams_refused; /* OPENs refused over max_streams */
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out; /* DATA payload */
    uint64_t frames_dropped;      /* for streams already closed */
    uint64_t flow_violations;
};
void wr_mux_get_stats(const struct wr_mux *m, struct wr_mux_stats *out);
uint32_t wr_mux_streams_open(const struct wr_mux *m);
bool wr_mux_peer_goaway(const struct wr_mux *m);

#endif
