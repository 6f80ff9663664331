/*
 * wr_mux.c: the stream multiplexer (contract in wr/mux.h), sans I/O.
 *
 * Bytes come in through wr_mux_feed and go out through cbs->write, one call
 * per frame (header and payload as two slices, so a TLS transport can put a
 * frame in one record). The receive path is a three-phase parser (header,
 * DATA pass-through, small payload reassembly): DATA is handed to the user in
 * whatever pieces it arrives in, never copied; only the short non-DATA
 * payloads are reassembled, and only when a feed splits them.
 *
 * Re-entrancy: every public function brackets its work with wr_mux_enter /
 * wr_mux_leave. User callbacks may call any wr_mux_* function (reset or
 * release the current stream, open new ones, even wr_mux_free); structs are
 * then only queued for freeing, and freed when the outermost call leaves.
 * wr_mux_feed itself is not re-entrant (it returns WR_EUSAGE from inside a
 * callback): the parser has one position.
 *
 * Closed ids are remembered without a table: an id with the peer's parity at
 * or below the highest one it opened, or with ours below the next one we
 * open, that is not in the table, is closed. Frames for them are dropped and
 * counted (they cross our RST or FIN in flight); frames for ids above are a
 * connection error.
 *
 * GOAWAY, kept simple: once either side sent GOAWAY, wr_mux_open fails with
 * WR_EGOAWAY and every OPEN that still arrives is refused with RST REFUSED.
 * The last_stream a GOAWAY carries is for the peer's information (we send the
 * highest id it opened); a stream of ours above the peer's last_stream is
 * refused by the peer's RST, so we need not act on it here.
 *
 * Failure (a protocol error in the input, or a write error): the state is set
 * to FAILED first, then on_error runs; no stream callback follows, every
 * later call returns the error, and wr_mux_free cancels the streams.
 */
#include "wr_mux_int.h"

#include <stdlib.h>

#include "wr/wire.h" /* enum wr_proto_code only: no msgpack code is linked */

#define WR_MUX_ID_MAX 0x7fffffffu
#define WR_MUX_CREDIT_MAX 0x7fffffffu /* larger send credit is a peer bug */
#define WR_MUX_TABLE_MIN 16u

static void wr_mux_stream_set_state(struct wr_mux_stream *s, enum wr_mux_stream_state to);

/* ---- small helpers ---------------------------------------------------- */

static uint32_t wr_mux_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr_mux_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const char *const wr_mux_stream_state_names[WR_MUX_SS__COUNT] = {
    [WR_MUX_SS_IDLE] = "IDLE",
    [WR_MUX_SS_OFFERED] = "OFFERED",
    [WR_MUX_SS_OPEN] = "OPEN",
    [WR_MUX_SS_LOCAL_FIN] = "LOCAL_FIN",
    [WR_MUX_SS_REMOTE_FIN] = "REMOTE_FIN",
    [WR_MUX_SS_CLOSED] = "CLOSED",
};

const char *wr__mux_stream_state_str(enum wr_mux_stream_state s)
{
    return (unsigned)s < WR_MUX_SS__COUNT ? wr_mux_stream_state_names[s] : "?";
}

/* ---- id table ------------------------------------------------------- */

static uint32_t wr_mux_table_home(const struct wr_mux_table *t, uint32_t id)
{
    /* Ids go up by 2: the top bits of a multiplicative hash spread them. */
    return (uint32_t)(id * 2654435769u) >> t->shift;
}

static int wr_mux_table_init(struct wr_mux_table *t, uint32_t cap)
{
    t->slot = calloc(cap, sizeof(*t->slot));
    if (t->slot == NULL)
        return WR_ENOMEM;
    t->cap = cap;
    t->count = 0;
    t->shift = 32;
    for (uint32_t c = cap; c > 1; c >>= 1)
        t->shift--;
    return 0;
}

static struct wr_mux_stream *wr_mux_table_get(const struct wr_mux_table *t, uint32_t id)
{
    uint32_t mask = t->cap - 1;
    for (uint32_t i = wr_mux_table_home(t, id);; i = (i + 1) & mask) {
        struct wr_mux_stream *s = t->slot[i];
        if (s == NULL || s->id == id)
            return s;
    }
}

static void wr_mux_table_put(struct wr_mux_table *t, struct wr_mux_stream *s)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = wr_mux_table_home(t, s->id);
    while (t->slot[i] != NULL)
        i = (i + 1) & mask;
    t->slot[i] = s;
    t->count++;
}

/* Makes room for one more entry; the table is unchanged on failure. */
static int wr_mux_table_reserve(struct wr_mux_table *t)
{
    if ((t->count + 1) * 2 <= t->cap)
        return 0;
    struct wr_mux_table nt;
    if (t->cap > UINT32_MAX / 2 || wr_mux_table_init(&nt, t->cap * 2) != 0)
        return WR_ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slot[i] != NULL)
            wr_mux_table_put(&nt, t->slot[i]);
    free(t->slot);
    *t = nt;
    return 0;
}

static void wr_mux_table_del(struct wr_mux_table *t, const struct wr_mux_stream *s)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = wr_mux_table_home(t, s->id);
    while (t->slot[i] != s) {
        WR_ASSERT(t->slot[i] != NULL);
        i = (i + 1) & mask;
    }
    t->slot[i] = NULL;
    t->count--;
    /* Backward shift: pull later entries of the cluster into the hole unless
     * their home lies cyclically in (hole, where they are]. */
    for (uint32_t j = (i + 1) & mask; t->slot[j] != NULL; j = (j + 1) & mask) {
        uint32_t k = wr_mux_table_home(t, t->slot[j]->id);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        t->slot[i] = t->slot[j];
        t->slot[j] = NULL;
        i = j;
    }
}

/* ---- mux state, re-entrancy, deferred frees -------------------------- */

static void wr_mux_set_state(struct wr_mux *m, enum wr_mux_state to)
{
    static const uint32_t allowed[WR_MUX_ST__COUNT] = {
        [WR_MUX_ST_RUNNING] = 1u << WR_MUX_ST_FAILED | 1u << WR_MUX_ST_FREEING,
        [WR_MUX_ST_FAILED] = 1u << WR_MUX_ST_FREEING,
        [WR_MUX_ST_FREEING] = 0,
    };
    WR_ASSERT(allowed[m->state] & (1u << to));
    m->state = to;
}

/* What every call returns once the mux no longer runs. */
static int wr_mux_dead_err(const struct wr_mux *m)
{
    return m->state == WR_MUX_ST_FAILED ? m->err : WR_ECLOSED;
}

static void wr_mux_enter(struct wr_mux *m)
{
    m->depth++;
}

static void wr_mux_destroy(struct wr_mux *m);

static void wr_mux_all_unlink(struct wr_mux *m, struct wr_mux_stream *s)
{
    if (s->all_prev != NULL)
        s->all_prev->all_next = s->all_next;
    else
        m->all = s->all_next;
    if (s->all_next != NULL)
        s->all_next->all_prev = s->all_prev;
    s->all_prev = s->all_next = NULL;
}

/* Last statement of every public function: <m> may be gone after it. */
static void wr_mux_leave(struct wr_mux *m)
{
    WR_ASSERT(m->depth > 0);
    if (--m->depth > 0)
        return;
    while (m->free_list != NULL) {
        struct wr_mux_stream *s = m->free_list;
        m->free_list = s->free_next;
        wr_mux_all_unlink(m, s);
        free(s);
    }
    if (m->free_requested)
        wr_mux_destroy(m);
}

/* Queues <s> for freeing once neither the protocol nor the user holds it. */
static void wr_mux_stream_maybe_free(struct wr_mux_stream *s)
{
    struct wr_mux *m = s->mux;
    if (s->state != WR_MUX_SS_CLOSED || s->user_ref || s->on_free_list)
        return;
    WR_ASSERT(m->depth > 0); /* leave() does the freeing */
    s->on_free_list = true;
    s->free_next = m->free_list;
    m->free_list = s;
}

static void wr_mux_fail(struct wr_mux *m, int err, const char *why)
{
    if (m->state != WR_MUX_ST_RUNNING)
        return;
    /* State first: on_error may call back into the mux. */
    m->err = err;
    wr_mux_set_state(m, WR_MUX_ST_FAILED);
    if (m->cbs.on_error != NULL)
        m->cbs.on_error(m, err, why, m->arg);
}

/* ---- output ----------------------------------------------------------- */

static int wr_mux_send(struct wr_mux *m, uint8_t type, uint32_t id, const void *payload,
                       uint32_t len)
{
    if (m->state != WR_MUX_ST_RUNNING)
        return wr_mux_dead_err(m);
    uint8_t hdr[WR_FRAME_HDR_LEN];
    struct wr_frame_hdr h = {.len = len, .type = type, .flags = 0, .stream = id};
    wr_frame_hdr_encode(hdr, &h);
    struct wr_slice v[2] = {{hdr, sizeof(hdr)}, {payload, len}};
    int rc = m->cbs.write(m->arg, v, len > 0 ? 2 : 1);
    if (rc != 0) {
        wr_mux_fail(m, rc < 0 ? rc : WR_ECLOSED, "write failed");
        return wr_mux_dead_err(m);
    }
    m->stats.frames_out++;
    return 0;
}

static int wr_mux_send_u32(struct wr_mux *m, uint8_t type, uint32_t id, uint32_t v)
{
    uint8_t p[4];
    wr_mux_put32(p, v);
    return wr_mux_send(m, type, id, p, sizeof(p));
}

/* ---- streams ---------------------------------------------------------- */

static void wr_mux_stream_set_state(struct wr_mux_stream *s, enum wr_mux_stream_state to)
{
#define B_(x) (1u << WR_MUX_SS_##x)
    static const uint32_t allowed[WR_MUX_SS__COUNT] = {
        [WR_MUX_SS_IDLE] = B_(OFFERED) | B_(OPEN) | B_(CLOSED),
        [WR_MUX_SS_OFFERED] = B_(OPEN) | B_(CLOSED),
        [WR_MUX_SS_OPEN] = B_(LOCAL_FIN) | B_(REMOTE_FIN) | B_(CLOSED),
        [WR_MUX_SS_LOCAL_FIN] = B_(CLOSED),
        [WR_MUX_SS_REMOTE_FIN] = B_(CLOSED),
        [WR_MUX_SS_CLOSED] = 0,
    };
#undef B_
    struct wr_mux *m = s->mux;
    WR_ASSERT(allowed[s->state] & (1u << to));
    s->state = to;
    if (to != WR_MUX_SS_CLOSED)
        return;
    wr_mux_table_del(&m->table, s);
    if (m->rx_cur == s)
        m->rx_cur = NULL; /* the rest of its DATA frame is dropped */
    s->want_writable = false;
    wr_mux_stream_maybe_free(s);
}

/* Allocates a stream in state IDLE and puts it in the table. */
static struct wr_mux_stream *wr_mux_stream_new(struct wr_mux *m, uint32_t id)
{
    if (wr_mux_table_reserve(&m->table) != 0)
        return NULL;
    struct wr_mux_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->mux = m;
    s->id = id;
    s->state = WR_MUX_SS_IDLE;
    s->send_credit = m->opts.initial_window;
    s->recv_credit = m->opts.initial_window;
    s->all_next = m->all;
    if (m->all != NULL)
        m->all->all_prev = s;
    m->all = s;
    wr_mux_table_put(&m->table, s);
    m->stats.streams_opened++;
    return s;
}

/* The protocol aborts <s>: RST to the peer (unless it is the one that reset),
 * then on_rst to the user. */
static void wr_mux_stream_abort(struct wr_mux_stream *s, uint32_t code, bool send_rst)
{
    struct wr_mux *m = s->mux;
    if (send_rst)
        (void)wr_mux_send_u32(m, WR_FR_RST, s->id, code); /* a failure fails the mux */
    wr_mux_stream_set_state(s, WR_MUX_SS_CLOSED);
    if (s->user_ref && s->cbs.on_rst != NULL && m->state == WR_MUX_ST_RUNNING)
        s->cbs.on_rst(s, code, s->arg);
}

static bool wr_mux_stream_can_send(const struct wr_mux_stream *s)
{
    return s->state == WR_MUX_SS_OPEN || s->state == WR_MUX_SS_REMOTE_FIN;
}

static bool wr_mux_stream_can_recv(const struct wr_mux_stream *s)
{
    return s->state == WR_MUX_SS_OPEN || s->state == WR_MUX_SS_LOCAL_FIN;
}

/* ---- input ------------------------------------------------------------ */

enum wr_mux_lookup {
    WR_MUX_LK_FOUND,  /* open: in the table */
    WR_MUX_LK_CLOSED, /* was open once */
    WR_MUX_LK_NEVER,  /* never opened: a connection error */
};

static enum wr_mux_lookup wr_mux_lookup(struct wr_mux *m, uint32_t id, struct wr_mux_stream **out)
{
    *out = wr_mux_table_get(&m->table, id);
    if (*out != NULL)
        return WR_MUX_LK_FOUND;
    bool ours = (id & 1u) == (m->opts.dialer ? 1u : 0u);
    if (ours)
        return id < m->next_id ? WR_MUX_LK_CLOSED : WR_MUX_LK_NEVER;
    return id <= m->peer_highest ? WR_MUX_LK_CLOSED : WR_MUX_LK_NEVER;
}

/* Looks up the target of a stream frame: NULL when there is nothing to do
 * (dropped, or the connection failed). */
static struct wr_mux_stream *wr_mux_rx_target(struct wr_mux *m, uint32_t id)
{
    struct wr_mux_stream *s;
    switch (wr_mux_lookup(m, id, &s)) {
    case WR_MUX_LK_FOUND:
        return s;
    case WR_MUX_LK_CLOSED:
        m->stats.frames_dropped++;
        return NULL;
    case WR_MUX_LK_NEVER:
        break;
    }
    wr_mux_fail(m, WR_EPROTO, "frame for a stream never opened");
    return NULL;
}

static void wr_mux_rx_open(struct wr_mux *m, uint32_t id, struct wr_slice hdr)
{
    if ((id & 1u) != (m->opts.dialer ? 0u : 1u)) {
        wr_mux_fail(m, WR_EPROTO, "OPEN with the wrong stream id parity");
        return;
    }
    if (id <= m->peer_highest) {
        wr_mux_fail(m, WR_EPROTO, "OPEN reuses a stream id");
        return;
    }
    m->peer_highest = id; /* from here on the id counts as used, even if refused */
    struct wr_mux_stream *s = NULL;
    if (!m->goaway_sent && !m->peer_goaway && m->cbs.on_open != NULL &&
        m->table.count < m->opts.max_streams)
        s = wr_mux_stream_new(m, id);
    if (s == NULL) {
        m->stats.streams_refused++;
        (void)wr_mux_send_u32(m, WR_FR_RST, id, WR_CODE_REFUSED);
        return;
    }
    s->user_ref = true;
    wr_mux_stream_set_state(s, WR_MUX_SS_OFFERED);
    m->cbs.on_open(m, s, hdr, m->arg);
    if (s->state == WR_MUX_SS_OFFERED) {
        /* The user broke the contract (neither accepted nor reset): refuse,
         * rather than keep a stream nobody will ever release. */
        (void)wr_mux_send_u32(m, WR_FR_RST, id, WR_CODE_REFUSED);
        s->user_ref = false;
        wr_mux_stream_set_state(s, WR_MUX_SS_CLOSED);
    }
}

static void wr_mux_rx_fin(struct wr_mux_stream *s)
{
    if (!wr_mux_stream_can_recv(s)) {
        wr_mux_stream_abort(s, WR_CODE_PROTOCOL, true); /* FIN after FIN */
        return;
    }
    wr_mux_stream_set_state(s,
                            s->state == WR_MUX_SS_OPEN ? WR_MUX_SS_REMOTE_FIN : WR_MUX_SS_CLOSED);
    if (s->user_ref && s->cbs.on_fin != NULL)
        s->cbs.on_fin(s, s->arg);
}

static void wr_mux_rx_window(struct wr_mux_stream *s, uint32_t inc)
{
    struct wr_mux *m = s->mux;
    if (inc == 0)
        return;
    if ((uint64_t)s->send_credit + inc > WR_MUX_CREDIT_MAX) {
        m->stats.flow_violations++;
        wr_mux_stream_abort(s, WR_CODE_FLOW, true);
        return;
    }
    s->send_credit += inc;
    if (s->want_writable && !m->congested && wr_mux_stream_can_send(s)) {
        s->want_writable = false;
        if (s->user_ref && s->cbs.on_writable != NULL)
            s->cbs.on_writable(s, s->arg);
    }
}

/* A complete non-DATA frame. */
static void wr_mux_rx_dispatch(struct wr_mux *m, const struct wr_frame_hdr *h, struct wr_slice p)
{
    struct wr_mux_stream *s;
    switch ((enum wr_frame_type)h->type) {
    case WR_FR_OPEN:
        wr_mux_rx_open(m, h->stream, p);
        break;
    case WR_FR_FIN:
        if ((s = wr_mux_rx_target(m, h->stream)) != NULL)
            wr_mux_rx_fin(s);
        break;
    case WR_FR_RST:
        if ((s = wr_mux_rx_target(m, h->stream)) != NULL)
            wr_mux_stream_abort(s, wr_mux_be32(p.ptr), false);
        break;
    case WR_FR_WINDOW:
        if ((s = wr_mux_rx_target(m, h->stream)) != NULL)
            wr_mux_rx_window(s, wr_mux_be32(p.ptr));
        break;
    case WR_FR_PING:
        (void)wr_mux_send(m, WR_FR_PONG, 0, p.ptr, (uint32_t)p.len);
        break;
    case WR_FR_PONG:
        if (m->cbs.on_pong != NULL)
            m->cbs.on_pong(m, (uint64_t)wr_mux_be32(p.ptr) << 32 | wr_mux_be32(p.ptr + 4), m->arg);
        break;
    case WR_FR_GOAWAY:
        m->peer_goaway = true;
        m->peer_goaway_last = wr_mux_be32(p.ptr);
        if (m->cbs.on_goaway != NULL)
            m->cbs.on_goaway(m, m->peer_goaway_last, wr_mux_be32(p.ptr + 4), m->arg);
        break;
    case WR_FR_CONTROL:
        if (m->cbs.on_control != NULL)
            m->cbs.on_control(m, p, m->arg);
        break;
    case WR_FR_DATA:
    case WR_FR__COUNT:
        WR_ASSERT(0); /* filtered by wr_mux_rx_frame_begin */
    }
}

static void wr_mux_rx_data_begin(struct wr_mux *m, const struct wr_frame_hdr *h)
{
    m->rx_cur = NULL;
    struct wr_mux_stream *s = wr_mux_rx_target(m, h->stream);
    if (m->state != WR_MUX_ST_RUNNING)
        return;
    m->stats.bytes_in += h->len;
    if (s == NULL) {
        /* dropped: the payload is skipped below */
    } else if (!wr_mux_stream_can_recv(s)) {
        wr_mux_stream_abort(s, WR_CODE_PROTOCOL, true); /* DATA after FIN */
    } else if (h->len > s->recv_credit) {
        m->stats.flow_violations++;
        wr_mux_stream_abort(s, WR_CODE_FLOW, true);
    } else {
        s->recv_credit -= h->len;
        s->recv_unconsumed += h->len;
        m->rx_cur = s;
    }
    if (h->len > 0 && m->state == WR_MUX_ST_RUNNING) {
        m->rx_phase = WR_MUX_RX_DATA;
        m->rx_left = h->len;
    } else {
        m->rx_cur = NULL;
    }
}

/* A header arrived: checks what it alone can tell, then sets up the payload. */
static void wr_mux_rx_frame_begin(struct wr_mux *m, const struct wr_frame_hdr *h)
{
    /* Exact payload length of the fixed-size types; -1: variable. */
    static const int fixed_len[WR_FR__COUNT] = {
        [WR_FR_DATA] = -1, [WR_FR_OPEN] = -1,  [WR_FR_FIN] = 0,
        [WR_FR_RST] = 4,   [WR_FR_WINDOW] = 4, [WR_FR_PING] = 8,
        [WR_FR_PONG] = 8,  [WR_FR_GOAWAY] = 8, [WR_FR_CONTROL] = -1,
    };
    m->stats.frames_in++;
    if (h->type >= WR_FR__COUNT) {
        wr_mux_fail(m, WR_EPROTO, "unknown frame type");
        return;
    }
    if (h->len > m->opts.max_frame) {
        wr_mux_fail(m, WR_EPROTO, "oversized frame");
        return;
    }
    bool conn_level = h->type == WR_FR_PING || h->type == WR_FR_PONG || h->type == WR_FR_GOAWAY ||
                      h->type == WR_FR_CONTROL;
    if (conn_level && h->stream != 0) {
        wr_mux_fail(m, WR_EPROTO, "connection frame on a stream");
        return;
    }
    if (!conn_level && h->stream == 0) {
        wr_mux_fail(m, WR_EPROTO, "stream frame on stream 0");
        return;
    }
    if (fixed_len[h->type] >= 0 && h->len != (uint32_t)fixed_len[h->type]) {
        wr_mux_fail(m, WR_EPROTO, "bad frame length");
        return;
    }
    if (h->type != WR_FR_DATA && h->len > m->opts.max_control) {
        wr_mux_fail(m, WR_EPROTO, "oversized control payload");
        return;
    }
    if (h->type == WR_FR_DATA) {
        wr_mux_rx_data_begin(m, h);
        return;
    }
    m->rx_hdr = *h;
    if (h->len == 0) {
        wr_mux_rx_dispatch(m, h, wr_slice_make(NULL, 0));
        return;
    }
    m->rx_phase = WR_MUX_RX_PAYLOAD;
    m->rx_left = h->len;
}

static struct wr_slice wr_mux_rx_hdr(struct wr_mux *m, struct wr_slice in)
{
    struct wr_frame_hdr h;
    ssize_t r;
    if (m->rx_hdr_have == 0 && in.len >= WR_FRAME_HDR_LEN) {
        r = wr_frame_hdr_decode(in, &h); /* the common case: no copy */
        in = wr_slice_adv(in, WR_FRAME_HDR_LEN);
    } else {
        size_t n = WR_FRAME_HDR_LEN - m->rx_hdr_have;
        if (n > in.len)
            n = in.len;
        memcpy(m->rx_hdr_buf + m->rx_hdr_have, in.ptr, n);
        m->rx_hdr_have = (uint8_t)(m->rx_hdr_have + n);
        in = wr_slice_adv(in, n);
        if (m->rx_hdr_have < WR_FRAME_HDR_LEN)
            return in;
        m->rx_hdr_have = 0;
        r = wr_frame_hdr_decode(wr_slice_make(m->rx_hdr_buf, WR_FRAME_HDR_LEN), &h);
    }
    if (r < 0)
        wr_mux_fail(m, WR_EPROTO, "reserved stream id bit set");
    else
        wr_mux_rx_frame_begin(m, &h);
    return in;
}

static struct wr_slice wr_mux_rx_data(struct wr_mux *m, struct wr_slice in)
{
    size_t n = m->rx_left < in.len ? m->rx_left : in.len;
    struct wr_mux_stream *s = m->rx_cur;
    m->rx_left -= (uint32_t)n;
    if (m->rx_left == 0) {
        m->rx_phase = WR_MUX_RX_HDR;
        m->rx_cur = NULL;
    }
    if (s != NULL && s->user_ref && s->cbs.on_data != NULL)
        s->cbs.on_data(s, wr_slice_make(in.ptr, n), s->arg);
    return wr_slice_adv(in, n);
}

static struct wr_slice wr_mux_rx_payload(struct wr_mux *m, struct wr_slice in)
{
    struct wr_frame_hdr h = m->rx_hdr;
    if (m->rx_ctl.len == 0 && in.len >= m->rx_left) {
        /* Whole payload in this feed: dispatch in place. */
        struct wr_slice p = wr_slice_make(in.ptr, m->rx_left);
        in = wr_slice_adv(in, m->rx_left);
        m->rx_phase = WR_MUX_RX_HDR;
        wr_mux_rx_dispatch(m, &h, p);
        return in;
    }
    size_t n = m->rx_left < in.len ? m->rx_left : in.len;
    if (wr_buf_append(&m->rx_ctl, in.ptr, n) != 0) {
        wr_mux_fail(m, WR_ENOMEM, "out of memory");
        return in;
    }
    m->rx_left -= (uint32_t)n;
    in = wr_slice_adv(in, n);
    if (m->rx_left == 0) {
        m->rx_phase = WR_MUX_RX_HDR;
        wr_mux_rx_dispatch(m, &h, wr_buf_peek(&m->rx_ctl));
        wr_buf_consume(&m->rx_ctl, m->rx_ctl.len);
    }
    return in;
}

ssize_t wr_mux_feed(struct wr_mux *m, struct wr_slice in)
{
    if (m->depth > 0)
        return WR_EUSAGE; /* from a callback: the parser has one position */
    if (m->state != WR_MUX_ST_RUNNING)
        return wr_mux_dead_err(m);
    wr_mux_enter(m);
    size_t total = in.len;
    while (in.len > 0 && m->state == WR_MUX_ST_RUNNING && !m->free_requested) {
        switch (m->rx_phase) {
        case WR_MUX_RX_HDR:
            in = wr_mux_rx_hdr(m, in);
            break;
        case WR_MUX_RX_DATA:
            in = wr_mux_rx_data(m, in);
            break;
        case WR_MUX_RX_PAYLOAD:
            in = wr_mux_rx_payload(m, in);
            break;
        }
    }
    ssize_t rc = m->state == WR_MUX_ST_FAILED ? (ssize_t)m->err : (ssize_t)total;
    wr_mux_leave(m);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct wr_mux *wr_mux_new(const struct wr_mux_opts *opts, const struct wr_mux_cbs *cbs, void *arg)
{
    WR_ASSERT(cbs != NULL && cbs->write != NULL);
    struct wr_mux *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (opts != NULL)
        m->opts = *opts;
    if (m->opts.initial_window == 0)
        m->opts.initial_window = WR_MUX_DEFAULT_WINDOW;
    if (m->opts.initial_window > WR_MUX_CREDIT_MAX)
        m->opts.initial_window = WR_MUX_CREDIT_MAX;
    if (m->opts.max_streams == 0)
        m->opts.max_streams = 4096;
    if (m->opts.max_frame == 0)
        m->opts.max_frame = 65536;
    if (m->opts.max_frame > WR_FRAME_LEN_MAX)
        m->opts.max_frame = WR_FRAME_LEN_MAX;
    if (m->opts.max_control == 0)
        m->opts.max_control = 16384;
    m->cbs = *cbs;
    m->arg = arg;
    m->next_id = m->opts.dialer ? 1 : 2;
    if (wr_mux_table_init(&m->table, WR_MUX_TABLE_MIN) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

/* Cancels every stream still open, then frees all the user does not hold
 * and detaches the rest (their release frees them). Runs at depth 0. */
static void wr_mux_destroy(struct wr_mux *m)
{
    wr_mux_set_state(m, WR_MUX_ST_FREEING);
    /* Stay "inside a call" during the on_rst callbacks: releases they make
     * only queue frees, so no struct leaves m->all while we walk it, and
     * nothing can be added to it (wr_mux_open fails while FREEING). */
    m->depth++;
    for (struct wr_mux_stream *s = m->all; s != NULL; s = s->all_next) {
        if (s->state == WR_MUX_SS_CLOSED)
            continue; /* the user already had on_rst or both FINs */
        wr_mux_stream_set_state(s, WR_MUX_SS_CLOSED);
        if (s->user_ref && s->cbs.on_rst != NULL)
            s->cbs.on_rst(s, WR_CODE_CANCEL, s->arg);
    }
    m->depth--;
    struct wr_mux_stream *next;
    for (struct wr_mux_stream *s = m->all; s != NULL; s = next) {
        next = s->all_next;
        if (s->user_ref) {
            s->mux = NULL;
            s->all_prev = s->all_next = s->free_next = NULL;
        } else {
            free(s);
        }
    }
    free(m->table.slot);
    wr_buf_free(&m->rx_ctl);
    free(m);
}

void wr_mux_free(struct wr_mux *m)
{
    if (m == NULL)
        return;
    if (m->depth > 0) {
        /* From a callback: finish when the outermost call returns. */
        m->free_requested = true;
        return;
    }
    wr_mux_destroy(m);
}

/* ---- streams: user API -------------------------------------------------- */

struct wr_mux_stream *wr_mux_open(struct wr_mux *m, struct wr_slice hdr,
                                  const struct wr_mux_stream_cbs *cbs, void *arg, int *err)
{
    struct wr_mux_stream *s = NULL;
    int rc = 0;
    wr_mux_enter(m);
    if (m->state != WR_MUX_ST_RUNNING)
        rc = wr_mux_dead_err(m);
    else if (m->goaway_sent || m->peer_goaway)
        rc = WR_EGOAWAY;
    else if (hdr.len > m->opts.max_control || hdr.len > m->opts.max_frame)
        rc = WR_ETOOBIG;
    else if (m->table.count >= m->opts.max_streams || m->next_id > WR_MUX_ID_MAX)
        rc = WR_ELIMIT;
    else if ((s = wr_mux_stream_new(m, m->next_id)) == NULL)
        rc = WR_ENOMEM;
    if (s != NULL) {
        m->next_id += 2;
        if (cbs != NULL)
            s->cbs = *cbs;
        s->arg = arg;
        s->user_ref = true;
        wr_mux_stream_set_state(s, WR_MUX_SS_OPEN);
        rc = wr_mux_send(m, WR_FR_OPEN, s->id, hdr.ptr, (uint32_t)hdr.len);
        if (rc != 0) {
            s->user_ref = false; /* never handed out */
            if (s->state != WR_MUX_SS_CLOSED)
                wr_mux_stream_set_state(s, WR_MUX_SS_CLOSED);
            s = NULL;
        }
    }
    wr_mux_leave(m);
    if (err != NULL)
        *err = rc;
    return s;
}

void wr_mux_stream_accept(struct wr_mux_stream *s, const struct wr_mux_stream_cbs *cbs, void *arg)
{
    WR_ASSERT(s->mux != NULL && s->state == WR_MUX_SS_OFFERED);
    s->cbs = *cbs;
    s->arg = arg;
    wr_mux_stream_set_state(s, WR_MUX_SS_OPEN);
}

void wr_mux_stream_set_cbs(struct wr_mux_stream *s, const struct wr_mux_stream_cbs *cbs, void *arg)
{
    if (s->state == WR_MUX_SS_OFFERED) {
        wr_mux_stream_accept(s, cbs, arg);
        return;
    }
    s->cbs = *cbs;
    s->arg = arg;
}

ssize_t wr_mux_stream_write(struct wr_mux_stream *s, const uint8_t *data, size_t len)
{
    struct wr_mux *m = s->mux;
    if (m == NULL)
        return WR_ECLOSED;
    ssize_t rc = 0;
    wr_mux_enter(m);
    if (m->state != WR_MUX_ST_RUNNING) {
        rc = wr_mux_dead_err(m);
    } else if (s->state == WR_MUX_SS_OFFERED) {
        rc = WR_EUSAGE;
    } else if (!wr_mux_stream_can_send(s)) {
        rc = WR_ECLOSED;
    } else {
        size_t take = len < s->send_credit ? len : s->send_credit;
        size_t done = 0;
        /* The write callback may mark the mux congested: stop there. */
        while (done < take && rc == 0 && !m->congested) {
            size_t n = take - done;
            if (n > m->opts.max_frame)
                n = m->opts.max_frame;
            rc = wr_mux_send(m, WR_FR_DATA, s->id, data + done, (uint32_t)n);
            if (rc == 0) {
                done += n;
                s->send_credit -= (uint32_t)n;
                m->stats.bytes_out += n;
            }
        }
        if (rc == 0) {
            rc = (ssize_t)done;
            if (done < len)
                s->want_writable = true;
        }
    }
    wr_mux_leave(m);
    return rc;
}

void wr_mux_set_congested(struct wr_mux *m, bool congested)
{
    if (congested || !m->congested) {
        m->congested = congested;
        return;
    }
    m->congested = false;
    if (m->state != WR_MUX_ST_RUNNING)
        return;
    /* Frees are deferred while entered, so the list stays walkable even if a
     * callback resets or releases streams; streams opened meanwhile were not
     * blocked. Stops as soon as a callback congests the transport again. */
    wr_mux_enter(m);
    for (struct wr_mux_stream *s = m->all;
         s != NULL && !m->congested && m->state == WR_MUX_ST_RUNNING; s = s->all_next) {
        if (s->mux != m || !s->want_writable || !wr_mux_stream_can_send(s) || s->send_credit == 0)
            continue;
        s->want_writable = false;
        if (s->user_ref && s->cbs.on_writable != NULL)
            s->cbs.on_writable(s, s->arg);
    }
    wr_mux_leave(m);
}

bool wr_mux_is_congested(const struct wr_mux *m)
{
    return m->congested;
}

uint32_t wr_mux_stream_credit(const struct wr_mux_stream *s)
{
    if (s->mux == NULL || s->mux->state != WR_MUX_ST_RUNNING || !wr_mux_stream_can_send(s))
        return 0;
    return s->send_credit;
}

int wr_mux_stream_fin(struct wr_mux_stream *s)
{
    struct wr_mux *m = s->mux;
    if (m == NULL)
        return s->fin_sent ? 0 : WR_ECLOSED;
    if (s->fin_sent)
        return 0;
    int rc;
    wr_mux_enter(m);
    if (m->state != WR_MUX_ST_RUNNING) {
        rc = wr_mux_dead_err(m);
    } else if (s->state == WR_MUX_SS_OFFERED) {
        rc = WR_EUSAGE;
    } else if (!wr_mux_stream_can_send(s)) {
        rc = WR_ECLOSED;
    } else {
        rc = wr_mux_send(m, WR_FR_FIN, s->id, NULL, 0);
        if (rc == 0) {
            s->fin_sent = true;
            s->want_writable = false;
            wr_mux_stream_set_state(s, s->state == WR_MUX_SS_OPEN ? WR_MUX_SS_LOCAL_FIN
                                                                  : WR_MUX_SS_CLOSED);
        }
    }
    wr_mux_leave(m);
    return rc;
}

void wr_mux_stream_consumed(struct wr_mux_stream *s, size_t n)
{
    struct wr_mux *m = s->mux;
    if (m == NULL)
        return;
    if (n > s->recv_unconsumed)
        n = s->recv_unconsumed; /* the user cannot return credit it never had */
    s->recv_unconsumed -= (uint32_t)n;
    if (!wr_mux_stream_can_recv(s) || m->state != WR_MUX_ST_RUNNING)
        return; /* the peer sends no more: no credit to return */
    s->recv_owed += (uint32_t)n;
    WR_ASSERT((uint64_t)s->recv_credit + s->recv_unconsumed + s->recv_owed ==
              m->opts.initial_window);
    uint32_t threshold = m->opts.initial_window / 4;
    if (s->recv_owed == 0 || s->recv_owed < threshold)
        return;
    wr_mux_enter(m);
    uint32_t inc = s->recv_owed;
    if (wr_mux_send_u32(m, WR_FR_WINDOW, s->id, inc) == 0) {
        s->recv_owed = 0;
        s->recv_credit += inc;
    }
    wr_mux_leave(m);
}

void wr_mux_stream_reset(struct wr_mux_stream *s, uint32_t code)
{
    struct wr_mux *m = s->mux;
    WR_ASSERT(s->user_ref); /* a second reset or release is a use after free */
    if (m == NULL) {
        free(s); /* detached by wr_mux_free: only the user held it */
        return;
    }
    wr_mux_enter(m);
    if (s->state != WR_MUX_SS_CLOSED) {
        (void)wr_mux_send_u32(m, WR_FR_RST, s->id, code); /* no-op unless RUNNING */
        wr_mux_stream_set_state(s, WR_MUX_SS_CLOSED);
    }
    s->user_ref = false;
    wr_mux_stream_maybe_free(s);
    wr_mux_leave(m);
}

void wr_mux_stream_release(struct wr_mux_stream *s)
{
    wr_mux_stream_reset(s, WR_CODE_CANCEL); /* sends nothing once CLOSED */
}

uint32_t wr_mux_stream_id(const struct wr_mux_stream *s)
{
    return s->id;
}

struct wr_mux *wr_mux_stream_mux(const struct wr_mux_stream *s)
{
    return s->mux;
}

/* ---- connection-level frames -------------------------------------------- */

int wr_mux_send_control(struct wr_mux *m, struct wr_slice msg)
{
    if (m->state == WR_MUX_ST_RUNNING &&
        (msg.len > m->opts.max_control || msg.len > m->opts.max_frame))
        return WR_ETOOBIG;
    wr_mux_enter(m);
    int rc = wr_mux_send(m, WR_FR_CONTROL, 0, msg.ptr, (uint32_t)msg.len);
    wr_mux_leave(m);
    return rc;
}

int wr_mux_ping(struct wr_mux *m, uint64_t opaque)
{
    uint8_t p[8];
    wr_mux_put32(p, (uint32_t)(opaque >> 32));
    wr_mux_put32(p + 4, (uint32_t)opaque);
    wr_mux_enter(m);
    int rc = wr_mux_send(m, WR_FR_PING, 0, p, sizeof(p));
    wr_mux_leave(m);
    return rc;
}

int wr_mux_goaway(struct wr_mux *m, uint32_t code)
{
    uint8_t p[8];
    wr_mux_put32(p, m->peer_highest);
    wr_mux_put32(p + 4, code);
    wr_mux_enter(m);
    int rc = wr_mux_send(m, WR_FR_GOAWAY, 0, p, sizeof(p));
    if (rc == 0)
        m->goaway_sent = true;
    wr_mux_leave(m);
    return rc;
}

/* ---- introspection ------------------------------------------------------ */

void wr_mux_get_stats(const struct wr_mux *m, struct wr_mux_stats *out)
{
    *out = m->stats;
    out->streams_open = m->table.count;
}

uint32_t wr_mux_streams_open(const struct wr_mux *m)
{
    return m->table.count;
}

bool wr_mux_peer_goaway(const struct wr_mux *m)
{
    return m->peer_goaway;
}
