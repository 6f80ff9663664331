/*
 * wr_mux_int.h: the multiplexer's private structures (wr/mux.h is the
 * contract). Kept apart from wr_mux.c so that the layout, the states and the
 * lifetime rules can be read in one place.
 *
 * Lifetime of a stream struct (see also wr_mux.c):
 *   - the protocol holds it while its state is not CLOSED (it is in the id
 *     table); the user holds it while user_ref is set (from wr_mux_open or
 *     on_open until wr_mux_stream_release/reset);
 *   - it is freed once both let go, but never inside a public mux call:
 *     it is queued on free_list and freed when the outermost call returns
 *     (depth drops to 0), so no caller up the stack ever sees freed memory;
 *   - wr_mux_free detaches streams the user still holds (mux = NULL): every
 *     stream function then fails or does nothing, and release frees them.
 */
#ifndef WR_MUX_INT_H
#define WR_MUX_INT_H

#include "wr/mux.h"

enum wr_mux_state {
    WR_MUX_ST_RUNNING = 0, /* frames flow */
    WR_MUX_ST_FAILED,      /* protocol or write error: every call returns m->err */
    WR_MUX_ST_FREEING,     /* wr_mux_free in progress: streams being cancelled */
    WR_MUX_ST__COUNT       /* must be last */
};

enum wr_mux_stream_state {
    WR_MUX_SS_IDLE = 0,   /* allocated, not announced yet */
    WR_MUX_SS_OFFERED,    /* the peer's OPEN is in on_open: accept or reset */
    WR_MUX_SS_OPEN,       /* DATA flows both ways */
    WR_MUX_SS_LOCAL_FIN,  /* we sent FIN; the peer may still send */
    WR_MUX_SS_REMOTE_FIN, /* the peer sent FIN; we may still send */
    WR_MUX_SS_CLOSED,     /* both FINs passed, or reset: out of the table */
    WR_MUX_SS__COUNT      /* must be last */
};
const char *wr__mux_stream_state_str(enum wr_mux_stream_state s);

struct wr_mux_stream {
    struct wr_mux *mux;             /* NULL once detached by wr_mux_free */
    struct wr_mux_stream *all_prev; /* m->all: every struct not yet freed */
    struct wr_mux_stream *all_next;
    struct wr_mux_stream *free_next; /* m->free_list: freed when depth is 0 */
    struct wr_mux_stream_cbs cbs;
    void *arg;
    uint32_t id;
    enum wr_mux_stream_state state; /* written only by wr_mux_stream_set_state */
    uint32_t send_credit;           /* DATA bytes we may send before the next WINDOW */
    /* Receive accounting; while the peer may send,
     * recv_credit + recv_unconsumed + recv_owed == initial_window. */
    uint32_t recv_credit;     /* DATA bytes the peer may still send */
    uint32_t recv_unconsumed; /* delivered, not yet reported consumed */
    uint32_t recv_owed;       /* consumed, not yet returned with WINDOW */
    bool user_ref;            /* the user holds the stream */
    bool want_writable;       /* a write was short: on_writable when credit returns */
    bool fin_sent;            /* makes wr_mux_stream_fin idempotent */
    bool on_free_list;
};

/* Open addressing, linear probing, backward-shift deletion (no tombstones),
 * load kept at or below 1/2: O(1) lookups for any number of streams. */
struct wr_mux_table {
    struct wr_mux_stream **slot;
    uint32_t cap; /* power of two */
    uint32_t count;
    unsigned shift; /* 32 - log2(cap): Fibonacci hashing takes the top bits */
};

enum wr_mux_rx_phase {
    WR_MUX_RX_HDR = 0, /* collecting a 9-byte header */
    WR_MUX_RX_DATA,    /* passing DATA payload through as it arrives */
    WR_MUX_RX_PAYLOAD, /* collecting a non-DATA payload (at most max_control) */
};

struct wr_mux {
    struct wr_mux_opts opts; /* defaults applied */
    struct wr_mux_cbs cbs;
    void *arg;
    enum wr_mux_state state; /* written only by wr_mux_set_state */
    int err;                 /* why FAILED */
    unsigned depth;          /* public calls in progress on the stack */
    bool free_requested;     /* wr_mux_free called with depth > 0 */
    bool goaway_sent;
    bool peer_goaway;
    bool congested; /* the transport's queue is full: DATA writes take nothing */
    uint32_t peer_goaway_last;
    uint32_t next_id;      /* the next id we open */
    uint32_t peer_highest; /* highest id the peer opened; 0: none */
    struct wr_mux_table table;
    struct wr_mux_stream *all;
    struct wr_mux_stream *free_list;

    enum wr_mux_rx_phase rx_phase;
    uint8_t rx_hdr_buf[WR_FRAME_HDR_LEN];
    uint8_t rx_hdr_have;
    struct wr_frame_hdr rx_hdr;   /* the frame being received */
    uint32_t rx_left;             /* its payload bytes still to come */
    struct wr_mux_stream *rx_cur; /* DATA target; NULL: drop the payload */
    struct wr_buf rx_ctl;         /* a non-DATA payload split across feeds */

    struct wr_mux_stats stats;
};

#endif
