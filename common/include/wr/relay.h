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
 * <s> may be NULL: the relay starts parked (wr_relay_attach).
 */
struct wr_relay *wr_relay_new(struct wr_conn *conn, struct wr_mux_stream *s, wr_relay_done_cb done,
                              void *arg);

/*
 * Parking, for a caller that may have to try another stream (a node
 * forwarding a visitor to a peer that turns out to have no agent any more).
 * A parked relay holds no stream: it reads the connection into a buffer of at
 * most max(WR_RELAY_PARK_MAX, the retry size) bytes, then stops reading, until
 * wr_relay_attach gives it a stream or wr_relay_abort ends it. The caller
 * bounds how long it stays parked.
 */
#define WR_RELAY_PARK_MAX 65536
/* Called (with the relay's <arg>) when the stream was reset with <code> before
 * any byte or FIN came down it, while every byte sent up is still held: the
 * relay is parked and keeps those bytes. Call wr_relay_attach (now or later)
 * to send them up a new stream, or wr_relay_abort. */
typedef void (*wr_relay_retry_cb)(struct wr_relay *r, uint32_t code, void *arg);
/* Keeps a copy of the bytes sent up until the first byte or FIN comes down,
 * while they are at most <max>; an early reset then calls <cb> instead of
 * ending the relay. Past <max>, or once bytes came down, a reset ends the
 * relay as usual. */
void wr_relay_set_retry(struct wr_relay *r, size_t max, wr_relay_retry_cb cb);
/* Gives parked relay <r> the stream <s> (the user's reference; its callbacks
 * are replaced). What was read while parked goes up first, the bytes of a
 * failed attempt before it, then a FIN if the connection ended its direction. */
void wr_relay_attach(struct wr_relay *r, struct wr_mux_stream *s);
bool wr_relay_is_parked(const struct wr_relay *r);
/* Aborts: resets the stream (WR_CODE_CANCEL) and closes the connection. */
void wr_relay_abort(struct wr_relay *r, uint32_t code);
void wr_relay_get_stats(const struct wr_relay *r, struct wr_relay_stats *out);

#endif
