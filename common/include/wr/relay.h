/*
 * wr/relay.h: joins one mux stream to one connection (a visitor's or a
 * service's socket) and moves bytes both ways with backpressure: the socket
 * is read only while the stream has credit, and stream credit is returned
 * only once the bytes have been written to the socket. Half-close passes
 * through in each direction; a reset or socket error on one side aborts the
 * other. Loop thread only.
 */
#ifndef WR_RELAY_H
#define WR_RELAY_H

#include <stdint.h>

#include "wr/conn.h"
#include "wr/mux.h"

struct wr_relay;

/* Called once when both directions are done or the relay aborted; <err> is 0
 * for a clean end. The relay and its connection are freed after it returns. */
typedef void (*wr_relay_done_cb)(struct wr_relay *r, int err, const char *why, void *arg);

struct wr_relay_stats {
    uint64_t bytes_up;   /* conn -> stream */
    uint64_t bytes_down; /* stream -> conn */
};

/*
 * Takes ownership of <conn> (replacing its callbacks) and of the user's
 * reference on <s> (replacing its callbacks). <conn> may still be dialing;
 * bytes from the stream are queued meanwhile, bounded by the stream window,
 * and a failed dial resets the stream with WR_CODE_CONNECT.
 */
struct wr_relay *wr_relay_new(struct wr_conn *conn, struct wr_mux_stream *s, wr_relay_done_cb done,
                              void *arg);
/* Aborts: resets the stream (WR_CODE_CANCEL) and closes the connection. */
void wr_relay_abort(struct wr_relay *r, uint32_t code);
void wr_relay_get_stats(const struct wr_relay *r, struct wr_relay_stats *out);

#endif
