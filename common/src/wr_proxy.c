/*
 * wr_proxy.c: the PROXY protocol, versions 1 (a text line) and 2 (binary),
 * as HAProxy's doc/proxy-protocol.txt defines them: an incremental, strict
 * parser and a v2 encoder. Pure code over byte arrays: reading the header
 * off a socket, and deciding whom to trust, belong to wr_conn.c and to the
 * caller.
 */
#include "wr/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

static const uint8_t wr_proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char wr_proxy_v1_sig[] = "PROXY ";
#define WR_PROXY_V1_SIG_LEN 6
#define WR_PROXY_V2_HDR 16 /* signature, version/command, family/protocol, length */

/* v2 header fields. */
#define WR_PROXY_V2_VERSION 0x2
#define WR_PROXY_CMD_LOCAL 0x0
#define WR_PROXY_CMD_PROXY 0x1
#define WR_PROXY_AF_UNSPEC 0x0
#define WR_PROXY_AF_INET 0x1
#define WR_PROXY_AF_INET6 0x2
#define WR_PROXY_AF_UNIX 0x3
#define WR_PROXY_P_UNSPEC 0x0
#define WR_PROXY_P_STREAM 0x1
#define WR_PROXY_P_DGRAM 0x2
#define WR_PROXY_V2_INET_LEN 12  /* 2 x 4 address bytes, 2 x 2 port bytes */
#define WR_PROXY_V2_INET6_LEN 36 /* 2 x 16, 2 x 2 */
#define WR_PROXY_V2_UNIX_LEN 216 /* 2 x 108 */
#define WR_PROXY_TLV_HDR 3       /* type, 16-bit length */

static enum wr_proxy_result wr_proxy_bad(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return WR_PROXY_BAD;
}

/* ---- version 1 ---------------------------------------------------------------- */

/* One space-separated field of a v1 line: [*p, end) up to the next space. */
static bool wr_proxy_v1_field(const char **p, const char *end, const char **f, size_t *flen)
{
    const char *s = *p;
    const char *e = s;
    while (e < end && *e != ' ')
        e++;
    if (e == s)
        return false; /* empty: two spaces in a row, or a missing field */
    *f = s;
    *flen = (size_t)(e - s);
    *p = e;
    return true;
}

/* Skips exactly one space. */
static bool wr_proxy_v1_space(const char **p, const char *end)
{
    if (*p >= end || **p != ' ')
        return false;
    (*p)++;
    return true;
}

/* A decimal number of 1..<maxdig> digits, no leading zero, at most <max>. */
static bool wr_proxy_v1_num(const char *s, size_t n, size_t maxdig, uint32_t max, uint32_t *out)
{
    if (n == 0 || n > maxdig || (n > 1 && s[0] == '0'))
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Canonical dotted quad: four numbers 0..255 without leading zeros. */
static bool wr_proxy_v1_ipv4(const char *s, size_t n, struct in_addr *out)
{
    uint8_t b[4];
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        size_t start = i;
        while (i < n && s[i] != '.')
            i++;
        uint32_t v = 0;
        if (!wr_proxy_v1_num(s + start, i - start, 3, 255, &v))
            return false;
        b[k] = (uint8_t)v;
        if (k < 3) {
            if (i >= n)
                return false;
            i++; /* the dot */
        }
    }
    if (i != n)
        return false;
    memcpy(out, b, sizeof(b));
    return true;
}

/* Hex groups and at most one "::" (inet_pton checks the grouping); no
 * embedded dotted quad, no scope. */
static bool wr_proxy_v1_ipv6(const char *s, size_t n, struct in6_addr *out)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n < 2 || n > 39)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (!hex && ch != ':')
            return false;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1;
}

static bool wr_proxy_v1_addr(int family, const char *s, size_t n, uint32_t port,
                             struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return wr_proxy_v1_ipv4(s, n, &v4->sin_addr);
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return wr_proxy_v1_ipv6(s, n, &v6->sin6_addr);
}

/* The fields of a complete line, without "PROXY " and without the CRLF. */
static enum wr_proxy_result wr_proxy_v1_line(const char *p, const char *end,
                                             struct sockaddr_storage *src,
                                             struct sockaddr_storage *dst, const char **why)
{
    const char *f = NULL;
    size_t flen = 0;
    if (!wr_proxy_v1_field(&p, end, &f, &flen))
        return wr_proxy_bad(why, "v1: missing protocol");
    /* UNKNOWN: whatever follows (after one space) is to be ignored. */
    if (flen == 7 && memcmp(f, "UNKNOWN", 7) == 0)
        return WR_PROXY_LOCAL;
    int family = 0;
    if (flen == 4 && memcmp(f, "TCP4", 4) == 0)
        family = AF_INET;
    else if (flen == 4 && memcmp(f, "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return wr_proxy_bad(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");

    const char *sa = NULL, *da = NULL, *sp = NULL, *dp = NULL;
    size_t sal = 0, dal = 0, spl = 0, dpl = 0;
    if (!wr_proxy_v1_space(&p, end) || !wr_proxy_v1_field(&p, end, &sa, &sal) ||
        !wr_proxy_v1_space(&p, end) || !wr_proxy_v1_field(&p, end, &da, &dal) ||
        !wr_proxy_v1_space(&p, end) || !wr_proxy_v1_field(&p, end, &sp, &spl) ||
        !wr_proxy_v1_space(&p, end) || !wr_proxy_v1_field(&p, end, &dp, &dpl))
        return wr_proxy_bad(why, "v1: fields are not 'SRC DST SPORT DPORT' with single spaces");
    if (p != end)
        return wr_proxy_bad(why, "v1: extra data after the destination port");
    uint32_t sport = 0, dport = 0;
    if (!wr_proxy_v1_num(sp, spl, 5, 65535, &sport))
        return wr_proxy_bad(why, "v1: bad source port");
    if (!wr_proxy_v1_num(dp, dpl, 5, 65535, &dport))
        return wr_proxy_bad(why, "v1: bad destination port");
    if (!wr_proxy_v1_addr(family, sa, sal, sport, src))
        return wr_proxy_bad(why, family == AF_INET ? "v1: bad IPv4 source address"
                                                   : "v1: bad IPv6 source address");
    if (!wr_proxy_v1_addr(family, da, dal, dport, dst))
        return wr_proxy_bad(why, family == AF_INET ? "v1: bad IPv4 destination address"
                                                   : "v1: bad IPv6 destination address");
    return WR_PROXY_OK;
}

static enum wr_proxy_result wr_proxy_v1(const uint8_t *buf, size_t len,
                                        struct sockaddr_storage *src, struct sockaddr_storage *dst,
                                        size_t *used, const char **why)
{
    size_t n = len < WR_PROXY_V1_SIG_LEN ? len : WR_PROXY_V1_SIG_LEN;
    if (memcmp(buf, wr_proxy_v1_sig, n) != 0)
        return wr_proxy_bad(why, "v1: bad signature");
    /* The line is printable US-ASCII up to its CRLF, which must come within
     * WR_PROXY_V1_MAX bytes; a lone CR or LF ends nothing and is refused. */
    size_t lim = len < WR_PROXY_V1_MAX ? len : WR_PROXY_V1_MAX;
    for (size_t i = n; i < lim; i++) {
        uint8_t ch = buf[i];
        if (ch == '\r') {
            if (i + 1 >= WR_PROXY_V1_MAX)
                return wr_proxy_bad(why, "v1: no CRLF within 107 bytes");
            if (i + 1 >= len)
                return WR_PROXY_NEED_MORE;
            if (buf[i + 1] != '\n')
                return wr_proxy_bad(why, "v1: CR not followed by LF");
            enum wr_proxy_result r = wr_proxy_v1_line((const char *)buf + WR_PROXY_V1_SIG_LEN,
                                                      (const char *)buf + i, src, dst, why);
            if (r != WR_PROXY_BAD && used != NULL)
                *used = i + 2;
            return r;
        }
        if (ch < 0x20 || ch > 0x7E)
            return wr_proxy_bad(why, "v1: control or non-ASCII byte in the line");
    }
    if (len >= WR_PROXY_V1_MAX)
        return wr_proxy_bad(why, "v1: no CRLF within 107 bytes");
    return WR_PROXY_NEED_MORE;
}

/* ---- version 2 ---------------------------------------------------------------- */

static uint16_t wr_proxy_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static enum wr_proxy_result wr_proxy_v2(const uint8_t *buf, size_t len,
                                        struct sockaddr_storage *src, struct sockaddr_storage *dst,
                                        size_t *used, const char **why)
{
    size_t n = len < sizeof(wr_proxy_v2_sig) ? len : sizeof(wr_proxy_v2_sig);
    if (memcmp(buf, wr_proxy_v2_sig, n) != 0)
        return wr_proxy_bad(why, "v2: bad signature");
    if (len < 13)
        return WR_PROXY_NEED_MORE;
    if ((buf[12] >> 4) != WR_PROXY_V2_VERSION)
        return wr_proxy_bad(why, "v2: version is not 2");
    unsigned cmd = buf[12] & 0x0F;
    if (cmd != WR_PROXY_CMD_LOCAL && cmd != WR_PROXY_CMD_PROXY)
        return wr_proxy_bad(why, "v2: command is neither LOCAL nor PROXY");
    if (len < 14)
        return WR_PROXY_NEED_MORE;
    unsigned fam = buf[13] >> 4;
    unsigned proto = buf[13] & 0x0F;
    if (fam > WR_PROXY_AF_UNIX)
        return wr_proxy_bad(why, "v2: unknown address family");
    if (proto > WR_PROXY_P_DGRAM)
        return wr_proxy_bad(why, "v2: unknown transport protocol");
    if (len < WR_PROXY_V2_HDR)
        return WR_PROXY_NEED_MORE;
    size_t total = WR_PROXY_V2_HDR + wr_proxy_be16(buf + 14);
    if (total > WR_PROXY_HEAD_MAX)
        return wr_proxy_bad(why, "v2: header longer than 536 bytes");
    /* The address block's size, when the header says what it holds. LOCAL
     * headers and UNSPEC ones carry nothing we may use: they are skipped
     * whole, as the spec asks. */
    size_t need = 0;
    bool known =
        cmd == WR_PROXY_CMD_PROXY && fam != WR_PROXY_AF_UNSPEC && proto != WR_PROXY_P_UNSPEC;
    if (known)
        need = fam == WR_PROXY_AF_INET    ? WR_PROXY_V2_INET_LEN
               : fam == WR_PROXY_AF_INET6 ? WR_PROXY_V2_INET6_LEN
                                          : WR_PROXY_V2_UNIX_LEN;
    if (total < WR_PROXY_V2_HDR + need)
        return wr_proxy_bad(why, "v2: address block shorter than its family needs");
    if (len < total)
        return WR_PROXY_NEED_MORE;
    if (known) {
        /* TLVs (type, length, value) must tile the rest exactly. */
        size_t off = WR_PROXY_V2_HDR + need;
        while (off < total) {
            if (total - off < WR_PROXY_TLV_HDR)
                return wr_proxy_bad(why, "v2: truncated TLV");
            size_t tl = wr_proxy_be16(buf + off + 1);
            if (tl > total - off - WR_PROXY_TLV_HDR)
                return wr_proxy_bad(why, "v2: TLV longer than the header");
            off += WR_PROXY_TLV_HDR + tl;
        }
    }
    if (used != NULL)
        *used = total;
    /* Only TCP over IP names a client we can use; UDP and UNIX fall back
     * to the socket's addresses (the spec's UNSPEC rule). */
    if (!known || proto != WR_PROXY_P_STREAM || fam == WR_PROXY_AF_UNIX)
        return WR_PROXY_LOCAL;
    const uint8_t *a = buf + WR_PROXY_V2_HDR;
    if (fam == WR_PROXY_AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)src;
        struct sockaddr_in *d4 = (struct sockaddr_in *)dst;
        s4->sin_family = AF_INET;
        d4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&d4->sin_addr, a + 4, 4);
        memcpy(&s4->sin_port, a + 8, 2); /* both in network order */
        memcpy(&d4->sin_port, a + 10, 2);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
        struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)dst;
        s6->sin6_family = AF_INET6;
        d6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&d6->sin6_addr, a + 16, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
        memcpy(&d6->sin6_port, a + 34, 2);
    }
    return WR_PROXY_OK;
}

enum wr_proxy_result wr_proxy_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
                                    struct sockaddr_storage *dst, size_t *used, const char **why)
{
    /* The outputs are written through scratch copies, so that NULL is
     * allowed and nothing half-parsed leaks out. */
    struct sockaddr_storage s, d;
    size_t u = 0;
    memset(&s, 0, sizeof(s));
    memset(&d, 0, sizeof(d));
    if (why != NULL)
        *why = NULL;
    enum wr_proxy_result r = WR_PROXY_NEED_MORE;
    if (len == 0)
        r = WR_PROXY_NEED_MORE;
    else if (buf[0] == wr_proxy_v2_sig[0])
        r = wr_proxy_v2(buf, len, &s, &d, &u, why);
    else if (buf[0] == (uint8_t)wr_proxy_v1_sig[0])
        r = wr_proxy_v1(buf, len, &s, &d, &u, why);
    else
        r = wr_proxy_bad(why, "not a PROXY header");
    if (r != WR_PROXY_OK) {
        memset(&s, 0, sizeof(s));
        memset(&d, 0, sizeof(d));
    }
    if (r != WR_PROXY_OK && r != WR_PROXY_LOCAL)
        u = 0;
    if (src != NULL)
        *src = s;
    if (dst != NULL)
        *dst = d;
    if (used != NULL)
        *used = u;
    return r;
}

/* ---- encoding ------------------------------------------------------------------ */

/* <sa> as 16 bytes of IPv6 (IPv4 as IPv4-mapped) and its port. */
static void wr_proxy_as_v6(const struct sockaddr *sa, uint8_t out[16], uint16_t *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        memcpy(out, &v6->sin6_addr, 16);
        *port = v6->sin6_port;
        return;
    }
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    memset(out, 0, 10);
    out[10] = 0xFF;
    out[11] = 0xFF;
    memcpy(out + 12, &v4->sin_addr, 4);
    *port = v4->sin_port;
}

/* True when <sa> is IPv4, or IPv4-mapped IPv6; then <out> gets the address. */
static bool wr_proxy_as_v4(const struct sockaddr *sa, uint8_t out[4], uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        memcpy(out, &v4->sin_addr, 4);
        *port = v4->sin_port;
        return true;
    }
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
        return false;
    memcpy(out, (const uint8_t *)&v6->sin6_addr + 12, 4);
    *port = v6->sin6_port;
    return true;
}

ssize_t wr_proxy_v2_encode(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out,
                           size_t outlen)
{
    if (src == NULL || dst == NULL || (src->sa_family != AF_INET && src->sa_family != AF_INET6) ||
        (dst->sa_family != AF_INET && dst->sa_family != AF_INET6))
        return WR_EUSAGE;
    uint8_t sa4[4], da4[4], sa6[16], da6[16];
    uint16_t sp = 0, dp = 0; /* network order */
    /* IPv4 when both are IPv4 or IPv4-mapped, else IPv6 for both. */
    bool v4 = wr_proxy_as_v4(src, sa4, &sp) && wr_proxy_as_v4(dst, da4, &dp);
    size_t alen = v4 ? WR_PROXY_V2_INET_LEN : WR_PROXY_V2_INET6_LEN;
    size_t total = WR_PROXY_V2_HDR + alen;
    if (outlen < total)
        return WR_ETOOBIG;
    memcpy(out, wr_proxy_v2_sig, sizeof(wr_proxy_v2_sig));
    out[12] = (WR_PROXY_V2_VERSION << 4) | WR_PROXY_CMD_PROXY;
    out[13] = (uint8_t)(((v4 ? WR_PROXY_AF_INET : WR_PROXY_AF_INET6) << 4) | WR_PROXY_P_STREAM);
    out[14] = (uint8_t)(alen >> 8);
    out[15] = (uint8_t)(alen & 0xFF);
    uint8_t *a = out + WR_PROXY_V2_HDR;
    if (v4) {
        memcpy(a, sa4, 4);
        memcpy(a + 4, da4, 4);
        memcpy(a + 8, &sp, 2);
        memcpy(a + 10, &dp, 2);
    } else {
        wr_proxy_as_v6(src, sa6, &sp);
        wr_proxy_as_v6(dst, da6, &dp);
        memcpy(a, sa6, 16);
        memcpy(a + 16, da6, 16);
        memcpy(a + 32, &sp, 2);
        memcpy(a + 34, &dp, 2);
    }
    return (ssize_t)total;
}
