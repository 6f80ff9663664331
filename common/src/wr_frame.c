/*
 * wr_frame.c: the 9-byte frame header of the mux protocol (wr/mux.h).
 *   len:24 BE | type:8 | flags:8 | stream:32 BE (top bit reserved, must be 0)
 * Decoding checks only what the header alone can tell (the reserved bit);
 * whether a type, length or stream id is acceptable is the mux's decision,
 * because it depends on its limits and state.
 */
#include "wr/mux.h"

static const char *const wr_frame_type_names[WR_FR__COUNT] = {
    [WR_FR_DATA] = "DATA", [WR_FR_OPEN] = "OPEN",     [WR_FR_FIN] = "FIN",
    [WR_FR_RST] = "RST",   [WR_FR_WINDOW] = "WINDOW", [WR_FR_PING] = "PING",
    [WR_FR_PONG] = "PONG", [WR_FR_GOAWAY] = "GOAWAY", [WR_FR_CONTROL] = "CONTROL",
};

const char *wr_frame_type_str(unsigned type)
{
    return type < WR_FR__COUNT ? wr_frame_type_names[type] : "UNKNOWN";
}

void wr_frame_hdr_encode(uint8_t out[WR_FRAME_HDR_LEN], const struct wr_frame_hdr *h)
{
    /* Callers build headers from their own limits: a violation is our bug. */
    WR_ASSERT(h->len <= WR_FRAME_LEN_MAX);
    WR_ASSERT((h->stream & 0x80000000u) == 0);
    out[0] = (uint8_t)(h->len >> 16);
    out[1] = (uint8_t)(h->len >> 8);
    out[2] = (uint8_t)h->len;
    out[3] = h->type;
    out[4] = h->flags;
    out[5] = (uint8_t)(h->stream >> 24);
    out[6] = (uint8_t)(h->stream >> 16);
    out[7] = (uint8_t)(h->stream >> 8);
    out[8] = (uint8_t)h->stream;
}

ssize_t wr_frame_hdr_decode(struct wr_slice in, struct wr_frame_hdr *h)
{
    if (in.len < WR_FRAME_HDR_LEN)
        return 0;
    const uint8_t *p = in.ptr;
    if (p[5] & 0x80)
        return WR_EPROTO;
    h->len = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    h->type = p[3];
    h->flags = p[4];
    h->stream = (uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8];
    return WR_FRAME_HDR_LEN;
}
