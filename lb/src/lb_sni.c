/*
 * lb_sni.c: the server name of a TLS ClientHello, read from peeked bytes
 * (RFC 8446 §4.1.2 and §5.1, RFC 6066 §3). It reassembles the handshake
 * message from as many handshake records as it spans, then walks the
 * ClientHello. It does not consume, decrypt or answer anything (beyond the
 * one alert record), and it keeps no state between calls.
 */
#include "lb_sni.h"

#include <stdbool.h>
#include <string.h>

#include "lb_int.h"

#define LB_SNI_REC_HDR 5                              /* type, legacy_record_version, length */
#define LB_SNI_REC_MAX 16384                          /* 2^14: the longest TLSPlaintext fragment */
#define LB_SNI_HS_HDR 4                               /* msg_type, 24-bit length */
#define LB_SNI_CT_HANDSHAKE 22                        /* ContentType.handshake */
#define LB_SNI_CT_ALERT 21                            /* ContentType.alert */
#define LB_SNI_HS_CLIENT_HELLO 1                      /* HandshakeType.client_hello */
#define LB_SNI_EXT_SERVER_NAME 0                      /* ExtensionType.server_name */
#define LB_SNI_NAME_TYPE_HOST 0                       /* NameType.host_name */
#define LB_SNI_HELLO_MIN (2 + 32 + 1 + 2 + 2 + 1 + 1) /* version..compression, smallest */

const uint8_t lb_tls_alert_unrecognized_name[LB_TLS_ALERT_LEN] = {
    LB_SNI_CT_ALERT,
    0x03,
    0x03, /* TLS 1.2 record version, as TLS 1.3 writes it */
    0x00,
    0x02, /* length */
    2,    /* AlertLevel.fatal */
    112,  /* AlertDescription.unrecognized_name */
};

/* A bounds-checked reader over the reassembled ClientHello body. Every
 * read fails once <len> is short; the walk then reports MALFORMED, since
 * the body is complete by then and a short field means a length in it
 * overflowed its enclosing structure. */
struct lb_sni_rd {
    const uint8_t *p;
    size_t len;
};

static bool lb_sni_rd_skip(struct lb_sni_rd *r, size_t n)
{
    if (r->len < n)
        return false;
    r->p += n;
    r->len -= n;
    return true;
}

static bool lb_sni_rd_u8(struct lb_sni_rd *r, size_t *v)
{
    if (r->len < 1)
        return false;
    *v = r->p[0];
    return lb_sni_rd_skip(r, 1);
}

static bool lb_sni_rd_u16(struct lb_sni_rd *r, size_t *v)
{
    if (r->len < 2)
        return false;
    *v = (size_t)r->p[0] << 8 | r->p[1];
    return lb_sni_rd_skip(r, 2);
}

/* Splits a vector of <n> bytes off the front of <r> into <sub>. */
static bool lb_sni_rd_sub(struct lb_sni_rd *r, size_t n, struct lb_sni_rd *sub)
{
    if (r->len < n)
        return false;
    sub->p = r->p;
    sub->len = n;
    return lb_sni_rd_skip(r, n);
}

static enum lb_sni_result lb_sni_fail(enum lb_sni_result res, const char *reason, const char **why)
{
    if (why != NULL)
        *why = reason;
    return res;
}

/*
 * The server_name extension's body: ServerNameList<1..2^16-1> of
 * (NameType, opaque<1..2^16-1>). RFC 6066 only defines host_name, and its
 * entries are skipped by their length the way common stacks do, so that a
 * future name type does not make the hello unreadable. At most one
 * host_name (RFC 6066 §3).
 */
static enum lb_sni_result lb_sni_server_name(struct lb_sni_rd ext, char name[LB_SNI_NAME_MAX + 1],
                                             const char **why)
{
    size_t list_len;
    struct lb_sni_rd list;
    if (!lb_sni_rd_u16(&ext, &list_len) || list_len != ext.len || list_len == 0 ||
        !lb_sni_rd_sub(&ext, list_len, &list))
        return lb_sni_fail(LB_SNI_MALFORMED, "bad server_name list length", why);
    bool have_host = false;
    while (list.len > 0) {
        size_t type, n;
        struct lb_sni_rd entry;
        if (!lb_sni_rd_u8(&list, &type) || !lb_sni_rd_u16(&list, &n) || n == 0 ||
            !lb_sni_rd_sub(&list, n, &entry))
            return lb_sni_fail(LB_SNI_MALFORMED, "bad server_name entry length", why);
        if (type != LB_SNI_NAME_TYPE_HOST)
            continue;
        if (have_host)
            return lb_sni_fail(LB_SNI_MALFORMED, "two host_name entries", why);
        have_host = true;
        if (!lb__name_normalize((const char *)entry.p, entry.len, name))
            return lb_sni_fail(LB_SNI_MALFORMED, "host_name is not a valid DNS name", why);
    }
    return LB_SNI_OK;
}

/* The ClientHello body (after the handshake header), complete. */
static enum lb_sni_result lb_sni_client_hello(struct lb_sni_rd r, char name[LB_SNI_NAME_MAX + 1],
                                              const char **why)
{
    size_t major, minor, n;
    if (!lb_sni_rd_u8(&r, &major) || !lb_sni_rd_u8(&r, &minor) || major != 3)
        return lb_sni_fail(LB_SNI_MALFORMED, "bad ClientHello legacy_version", why);
    if (!lb_sni_rd_skip(&r, 32))
        return lb_sni_fail(LB_SNI_MALFORMED, "short random", why);
    if (!lb_sni_rd_u8(&r, &n) || n > 32 || !lb_sni_rd_skip(&r, n))
        return lb_sni_fail(LB_SNI_MALFORMED, "bad legacy_session_id", why);
    if (!lb_sni_rd_u16(&r, &n) || n < 2 || n % 2 != 0 || !lb_sni_rd_skip(&r, n))
        return lb_sni_fail(LB_SNI_MALFORMED, "bad cipher_suites", why);
    if (!lb_sni_rd_u8(&r, &n) || n < 1 || !lb_sni_rd_skip(&r, n))
        return lb_sni_fail(LB_SNI_MALFORMED, "bad legacy_compression_methods", why);
    /* Before TLS 1.2 a ClientHello could end here (RFC 5246 §7.4.1.2). */
    if (r.len == 0)
        return LB_SNI_OK;
    struct lb_sni_rd exts;
    if (!lb_sni_rd_u16(&r, &n) || n != r.len || !lb_sni_rd_sub(&r, n, &exts))
        return lb_sni_fail(LB_SNI_MALFORMED, "extensions length does not match the hello", why);
    bool have_sni = false;
    while (exts.len > 0) {
        size_t type;
        struct lb_sni_rd ext;
        if (!lb_sni_rd_u16(&exts, &type) || !lb_sni_rd_u16(&exts, &n) ||
            !lb_sni_rd_sub(&exts, n, &ext))
            return lb_sni_fail(LB_SNI_MALFORMED, "extension overflows the extensions", why);
        if (type != LB_SNI_EXT_SERVER_NAME)
            continue;
        if (have_sni)
            return lb_sni_fail(LB_SNI_MALFORMED, "two server_name extensions", why);
        have_sni = true;
        enum lb_sni_result res = lb_sni_server_name(ext, name, why);
        if (res != LB_SNI_OK)
            return res;
    }
    return LB_SNI_OK;
}

/* What to answer when byte <pos> is needed and missing. */
static enum lb_sni_result lb_sni_short(size_t pos, const char **why)
{
    if (pos >= LB_SNI_PEEK_MAX)
        return lb_sni_fail(LB_SNI_TOO_BIG, "ClientHello larger than the peek limit", why);
    return lb_sni_fail(LB_SNI_NEED_MORE, "partial ClientHello", why);
}

enum lb_sni_result lb_sni_parse(const uint8_t *buf, size_t len, char name[LB_SNI_NAME_MAX + 1],
                                const char **why)
{
    /*
     * The handshake message is copied out of its records into <hs>. It ends
     * before LB_SNI_PEEK_MAX, so it is shorter than that. Every decision is
     * taken from bytes before the first one missing, so that a longer peek of
     * the same stream never changes an answer other than NEED_MORE (the
     * caller may call again with more, and the fuzz target checks this).
     */
    uint8_t hs[LB_SNI_PEEK_MAX];
    size_t hs_have = 0;
    size_t hs_total = LB_SNI_HS_HDR; /* the header's length until it is read */
    size_t pos = 0;
    bool first = true;

    name[0] = '\0';
    if (len > LB_SNI_PEEK_MAX)
        len = LB_SNI_PEEK_MAX;
    while (hs_have < hs_total) {
        /* A record header: check what is there before asking for more. */
        if (len > pos && buf[pos] != LB_SNI_CT_HANDSHAKE)
            return first ? lb_sni_fail(LB_SNI_NOT_TLS, "not a TLS handshake record", why)
                         : lb_sni_fail(LB_SNI_MALFORMED, "record of another type mid-hello", why);
        if (len > pos + 1 && buf[pos + 1] != 3)
            return first ? lb_sni_fail(LB_SNI_NOT_TLS, "not a TLS record version", why)
                         : lb_sni_fail(LB_SNI_MALFORMED, "bad record version", why);
        if (len < pos + LB_SNI_REC_HDR)
            return lb_sni_short(len, why);
        size_t rec_len = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
        if (rec_len == 0)
            return lb_sni_fail(LB_SNI_MALFORMED, "empty handshake record", why);
        if (rec_len > LB_SNI_REC_MAX)
            return lb_sni_fail(LB_SNI_MALFORMED, "record longer than 2^14", why);
        first = false;
        pos += LB_SNI_REC_HDR;

        /* Its fragment, or as much of it as the message still needs. */
        size_t rec_end = pos + rec_len;
        while (pos < rec_end && hs_have < hs_total) {
            if (pos >= len)
                return lb_sni_short(pos, why);
            size_t n = rec_end - pos;
            if (n > len - pos)
                n = len - pos;
            if (n > hs_total - hs_have)
                n = hs_total - hs_have;
            memcpy(hs + hs_have, buf + pos, n);
            size_t had = hs_have;
            hs_have += n;
            pos += n;
            if (had < 1 && hs_have >= 1 && hs[0] != LB_SNI_HS_CLIENT_HELLO)
                return lb_sni_fail(LB_SNI_MALFORMED, "not a ClientHello", why);
            if (had < LB_SNI_HS_HDR && hs_have == LB_SNI_HS_HDR) {
                size_t body = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
                if (body < LB_SNI_HELLO_MIN)
                    return lb_sni_fail(LB_SNI_MALFORMED, "ClientHello too short", why);
                /* Even in one record it would need this many bytes. */
                if (LB_SNI_REC_HDR + LB_SNI_HS_HDR + body > LB_SNI_PEEK_MAX)
                    return lb_sni_fail(LB_SNI_TOO_BIG, "ClientHello larger than the peek limit",
                                       why);
                hs_total = LB_SNI_HS_HDR + body;
            }
        }
    }

    struct lb_sni_rd r = {hs + LB_SNI_HS_HDR, hs_total - LB_SNI_HS_HDR};
    enum lb_sni_result res = lb_sni_client_hello(r, name, why);
    if (res != LB_SNI_OK)
        name[0] = '\0';
    return res;
}

const char *lb_sni_result_str(enum lb_sni_result r)
{
    switch (r) {
    case LB_SNI_OK:
        return "OK";
    case LB_SNI_NEED_MORE:
        return "NEED_MORE";
    case LB_SNI_NOT_TLS:
        return "NOT_TLS";
    case LB_SNI_MALFORMED:
        return "MALFORMED";
    case LB_SNI_TOO_BIG:
        return "TOO_BIG";
    }
    return "?";
}
