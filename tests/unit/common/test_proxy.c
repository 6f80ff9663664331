/*
 * test_proxy.c: wr_proxy.c, the PROXY protocol parser and v2 encoder, and
 * the CIDR sets (wr_addr.c) that say whom a node trusts to send one. Every
 * valid header is fed at every prefix length (NEED_MORE, then the verdict),
 * the spec's examples are parsed, each class of malformed input gets BAD
 * with a reason (and no prefix of it gets anything but NEED_MORE or BAD),
 * and the encoder's output parses back to what it was given.
 */
/* link: wr_base */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "wr/addr.h"
#include "wr/proxy.h"

static const uint8_t tp_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- helpers ------------------------------------------------------------------ */

static const char *tp_str(const struct sockaddr_storage *ss, char *buf)
{
    return wr_addr_str((const struct sockaddr *)ss, buf, WR_ADDR_STRLEN);
}

/* Parses <buf> at every length below <hlen> (must be NEED_MORE), then whole
 * (with <extra> bytes after the header, which must not be taken): returns the
 * verdict for the whole. */
static enum wr_proxy_result tp_parse_all(const uint8_t *buf, size_t hlen, size_t extra,
                                         struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
    for (size_t n = 0; n < hlen; n++) {
        size_t used = 99;
        const char *why = "unset";
        enum wr_proxy_result r = wr_proxy_parse(buf, n, src, dst, &used, &why);
        if (r != WR_PROXY_NEED_MORE)
            TEST_FAIL("prefix of %zu of %zu bytes: result %d (%s)", n, hlen, (int)r,
                      why ? why : "-");
        ASSERT_EQ(used, 0);
        ASSERT(why == NULL);
    }
    size_t used = 0;
    const char *why = NULL;
    enum wr_proxy_result r = wr_proxy_parse(buf, hlen + extra, src, dst, &used, &why);
    if (r == WR_PROXY_OK || r == WR_PROXY_LOCAL) {
        ASSERT_EQ(used, hlen);
        ASSERT(why == NULL);
    }
    return r;
}

static void tp_expect_ok(const char *text, const char *want_src, const char *want_dst)
{
    struct sockaddr_storage src, dst;
    char a[WR_ADDR_STRLEN], b[WR_ADDR_STRLEN];
    size_t hlen = strlen(text);
    /* Data after the header, as a client sends it. */
    uint8_t buf[256];
    ASSERT(hlen + 8 <= sizeof(buf));
    memcpy(buf, text, hlen);
    memcpy(buf + hlen, "GET / \r\n", 8);
    enum wr_proxy_result r = tp_parse_all(buf, hlen, 8, &src, &dst);
    if (r != WR_PROXY_OK)
        TEST_FAIL("'%.*s': result %d", (int)hlen - 2, text, (int)r);
    ASSERT_STR_EQ(tp_str(&src, a), want_src);
    ASSERT_STR_EQ(tp_str(&dst, b), want_dst);
}

/* Every prefix of <buf> is NEED_MORE or BAD, the whole is BAD with a reason
 * containing <needle>, and no output is left set. */
static void tp_expect_bad(const uint8_t *buf, size_t len, const char *needle)
{
    bool seen_bad = false;
    for (size_t n = 1; n <= len; n++) {
        struct sockaddr_storage src, dst;
        memset(&src, 0xAA, sizeof(src));
        memset(&dst, 0xAA, sizeof(dst));
        size_t used = 99;
        const char *why = NULL;
        enum wr_proxy_result r = wr_proxy_parse(buf, n, &src, &dst, &used, &why);
        if (r != WR_PROXY_NEED_MORE && r != WR_PROXY_BAD)
            TEST_FAIL("prefix of %zu of %zu bytes of a bad header: result %d", n, len, (int)r);
        /* Once bad, longer inputs stay bad. */
        if (seen_bad && r != WR_PROXY_BAD)
            TEST_FAIL("prefix of %zu bytes is NEED_MORE after a shorter one was BAD", n);
        if (r == WR_PROXY_BAD) {
            seen_bad = true;
            ASSERT(why != NULL);
            ASSERT_EQ(used, 0);
            ASSERT_EQ(src.ss_family, AF_UNSPEC);
            ASSERT_EQ(dst.ss_family, AF_UNSPEC);
        }
    }
    const char *why = NULL;
    enum wr_proxy_result r = wr_proxy_parse(buf, len, NULL, NULL, NULL, &why);
    if (r != WR_PROXY_BAD)
        TEST_FAIL("'%.*s': result %d, expected BAD", (int)len, (const char *)buf, (int)r);
    ASSERT(why != NULL);
    if (needle != NULL && strstr(why, needle) == NULL)
        TEST_FAIL("reason '%s' does not mention '%s'", why, needle);
}

static void tp_expect_bad_str(const char *text, const char *needle)
{
    tp_expect_bad((const uint8_t *)text, strlen(text), needle);
}

/* A v2 header: <vc> version/command, <fp> family/protocol, then <blen>
 * bytes of <body>. Returns the total length. */
static size_t tp_v2(uint8_t *out, uint8_t vc, uint8_t fp, const uint8_t *body, size_t blen)
{
    memcpy(out, tp_sig, 12);
    out[12] = vc;
    out[13] = fp;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen > 0)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

/* 203.0.113.7:4242 -> 192.0.2.1:443 as a v2 IPv4 address block. */
static const uint8_t tp_inet_block[12] = {203, 0, 113, 7, 192, 0, 2, 1, 0x10, 0x92, 0x01, 0xBB};

/* ---- version 1 ---------------------------------------------------------------- */

TEST(v1_tcp4)
{
    /* The spec's example. */
    tp_expect_ok("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1:56324",
                 "192.168.0.11:443");
    tp_expect_ok("PROXY TCP4 203.0.113.7 10.0.0.1 4242 8050\r\n", "203.0.113.7:4242",
                 "10.0.0.1:8050");
    tp_expect_ok("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0:0",
                 "255.255.255.255:65535");
    /* The longest IPv4 line: 56 bytes. */
    const char *longest = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    ASSERT_EQ(strlen(longest), 56);
    tp_expect_ok(longest, "255.255.255.255:65535", "255.255.255.255:65535");
}

TEST(v1_tcp6)
{
    tp_expect_ok("PROXY TCP6 2001:db8::7 2001:db8::1 4242 443\r\n", "[2001:db8::7]:4242",
                 "[2001:db8::1]:443");
    tp_expect_ok("PROXY TCP6 ::1 :: 1 2\r\n", "[::1]:1", "[::]:2");
    tp_expect_ok("PROXY TCP6 2001:DB8:0:0:0:0:0:1 fe80::1 80 81\r\n", "[2001:db8::1]:80",
                 "[fe80::1]:81");
    /* The spec's longest TCP6 line: 104 bytes. */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(strlen(longest), 104);
    tp_expect_ok(longest, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                 "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

TEST(v1_unknown)
{
    struct sockaddr_storage src, dst;
    const char *shortest = "PROXY UNKNOWN\r\n";
    ASSERT_EQ(tp_parse_all((const uint8_t *)shortest, 15, 0, &src, &dst), WR_PROXY_LOCAL);
    ASSERT_EQ(src.ss_family, AF_UNSPEC);
    ASSERT_EQ(dst.ss_family, AF_UNSPEC);
    /* The spec's worst case, 107 bytes: what follows UNKNOWN is ignored. */
    const char *worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(strlen(worst), WR_PROXY_V1_MAX);
    ASSERT_EQ(tp_parse_all((const uint8_t *)worst, 107, 0, &src, &dst), WR_PROXY_LOCAL);
    const char *junk = "PROXY UNKNOWN whatever the sender had\r\nDATA";
    size_t used = 0;
    ASSERT_EQ(wr_proxy_parse((const uint8_t *)junk, strlen(junk), NULL, NULL, &used, NULL),
              WR_PROXY_LOCAL);
    ASSERT_EQ(used, strlen(junk) - 4);
}

TEST(v1_crlf_bounds)
{
    /* 105 printable bytes then CRLF: 107, accepted (UNKNOWN ignores them). */
    char line[200];
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[105] = '\r';
    line[106] = '\n';
    size_t used = 0;
    ASSERT_EQ(wr_proxy_parse((const uint8_t *)line, 107, NULL, NULL, &used, NULL), WR_PROXY_LOCAL);
    ASSERT_EQ(used, 107);
    /* One byte more before the CRLF: the line would be 108. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[106] = '\r';
    line[107] = '\n';
    tp_expect_bad((const uint8_t *)line, 108, "107");
    /* No CR at all: NEED_MORE up to 106 bytes, BAD at 107. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    ASSERT_EQ(wr_proxy_parse((const uint8_t *)line, 106, NULL, NULL, NULL, NULL),
              WR_PROXY_NEED_MORE);
    tp_expect_bad((const uint8_t *)line, 107, "107");
    tp_expect_bad((const uint8_t *)line, sizeof(line), "107");
}

TEST(v1_malformed)
{
    /* Framing. */
    tp_expect_bad_str("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n", "control");
    tp_expect_bad_str("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX", "LF");
    tp_expect_bad_str("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n", "LF");
    tp_expect_bad_str("PROXY TCP4 192.168.0.1\t192.168.0.11 56324 443\r\n", "control");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.\xc3\xa9 1 2\r\n", "non-ASCII");
    tp_expect_bad_str("PROXY\r\n", "signature");
    tp_expect_bad_str("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", NULL);
    tp_expect_bad_str("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "signature");
    tp_expect_bad_str("PROXY \r\n", "protocol");
    tp_expect_bad_str("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
    tp_expect_bad_str("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
    tp_expect_bad_str("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
    tp_expect_bad_str("PROXY UNKNOWNX\r\n", "protocol");
    tp_expect_bad_str("PROXY TCP4\r\n", "fields");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "fields");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "fields");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "extra");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "extra");
    /* Ports. */
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n", "destination port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 0443 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 00 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 +1 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 8O 80\r\n", "source port");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.8 100000 80\r\n", "source port");
    /* IPv4 addresses. */
    tp_expect_bad_str("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 192.168.000.1 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n", "IPv4 source");
    tp_expect_bad_str("PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n", "IPv4 destination");
    tp_expect_bad_str("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "IPv4 source");
    /* IPv6 addresses. */
    tp_expect_bad_str("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "IPv6 source");
    tp_expect_bad_str("PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", "IPv6 source");
    tp_expect_bad_str("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "IPv6 source");
    tp_expect_bad_str("PROXY TCP6 1::2::3 ::1 1 2\r\n", "IPv6 source");
    tp_expect_bad_str("PROXY TCP6 12345::1 ::1 1 2\r\n", "IPv6 source");
    tp_expect_bad_str("PROXY TCP6 ::1 g::1 1 2\r\n", "IPv6 destination");
    tp_expect_bad_str("PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9 1 2\r\n", "IPv6 destination");
}

/* ---- version 2 ---------------------------------------------------------------- */

TEST(v2_tcp4)
{
    uint8_t buf[64];
    size_t n = tp_v2(buf, 0x21, 0x11, tp_inet_block, sizeof(tp_inet_block));
    ASSERT_EQ(n, 28);
    memcpy(buf + n, "\x16\x03\x01", 3); /* a ClientHello follows */
    struct sockaddr_storage src, dst;
    char a[WR_ADDR_STRLEN], b[WR_ADDR_STRLEN];
    ASSERT_EQ(tp_parse_all(buf, n, 3, &src, &dst), WR_PROXY_OK);
    ASSERT_STR_EQ(tp_str(&src, a), "203.0.113.7:4242");
    ASSERT_STR_EQ(tp_str(&dst, b), "192.0.2.1:443");
}

TEST(v2_tcp6)
{
    uint8_t body[36] = {0};
    /* 2001:db8::7 port 4242 -> 2001:db8::1 port 443 */
    body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 7;
    body[16] = 0x20, body[17] = 0x01, body[18] = 0x0d, body[19] = 0xb8, body[31] = 1;
    body[32] = 0x10, body[33] = 0x92, body[34] = 0x01, body[35] = 0xBB;
    uint8_t buf[64];
    size_t n = tp_v2(buf, 0x21, 0x21, body, sizeof(body));
    ASSERT_EQ(n, 52);
    struct sockaddr_storage src, dst;
    char a[WR_ADDR_STRLEN], b[WR_ADDR_STRLEN];
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_OK);
    ASSERT_STR_EQ(tp_str(&src, a), "[2001:db8::7]:4242");
    ASSERT_STR_EQ(tp_str(&dst, b), "[2001:db8::1]:443");
}

TEST(v2_tlvs)
{
    /* Addresses, then an ALPN TLV, a NOOP TLV of length 0 and a custom one. */
    uint8_t body[64];
    size_t bl = 0;
    memcpy(body, tp_inet_block, 12);
    bl = 12;
    const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2', 0x04, 0x00,
                            0x00, 0xE0, 0x00, 0x03, 1,   2,    3};
    memcpy(body + bl, tlvs, sizeof(tlvs));
    bl += sizeof(tlvs);
    uint8_t buf[128];
    size_t n = tp_v2(buf, 0x21, 0x11, body, bl);
    struct sockaddr_storage src, dst;
    char a[WR_ADDR_STRLEN];
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_OK);
    ASSERT_STR_EQ(tp_str(&src, a), "203.0.113.7:4242");
    /* The longest accepted: a TLV filling the header to WR_PROXY_HEAD_MAX. */
    uint8_t big[WR_PROXY_HEAD_MAX + 16];
    uint8_t bb[WR_PROXY_HEAD_MAX];
    memset(bb, 0, sizeof(bb));
    memcpy(bb, tp_inet_block, 12);
    size_t tl = WR_PROXY_HEAD_MAX - 16 - 12 - 3;
    bb[12] = 0x04;
    bb[13] = (uint8_t)(tl >> 8);
    bb[14] = (uint8_t)tl;
    n = tp_v2(big, 0x21, 0x11, bb, WR_PROXY_HEAD_MAX - 16);
    ASSERT_EQ(n, WR_PROXY_HEAD_MAX);
    ASSERT_EQ(tp_parse_all(big, n, 0, &src, &dst), WR_PROXY_OK);
}

TEST(v2_local)
{
    uint8_t buf[64];
    struct sockaddr_storage src, dst;
    /* LOCAL, as a health check sends it: no address. */
    size_t n = tp_v2(buf, 0x20, 0x00, NULL, 0);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    ASSERT_EQ(src.ss_family, AF_UNSPEC);
    /* LOCAL with an address block: skipped whole, family ignored. */
    n = tp_v2(buf, 0x20, 0x11, tp_inet_block, 12);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    ASSERT_EQ(src.ss_family, AF_UNSPEC);
    /* LOCAL with a block too short for its family: still just skipped. */
    n = tp_v2(buf, 0x20, 0x21, tp_inet_block, 5);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    /* PROXY with UNSPEC family or protocol: addresses ignored. */
    n = tp_v2(buf, 0x21, 0x00, tp_inet_block, 7);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    n = tp_v2(buf, 0x21, 0x10, tp_inet_block, 12);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    /* UDP over IPv4: a combination we do not use, the socket's address stays. */
    n = tp_v2(buf, 0x21, 0x12, tp_inet_block, 12);
    ASSERT_EQ(tp_parse_all(buf, n, 0, &src, &dst), WR_PROXY_LOCAL);
    /* UNIX stream: 216 bytes of paths. */
    uint8_t unixb[216] = {0};
    uint8_t big[256];
    n = tp_v2(big, 0x21, 0x31, unixb, sizeof(unixb));
    ASSERT_EQ(n, WR_PROXY_V2_MAX);
    ASSERT_EQ(tp_parse_all(big, n, 0, &src, &dst), WR_PROXY_LOCAL);
}

TEST(v2_malformed)
{
    uint8_t good[64];
    size_t n = tp_v2(good, 0x21, 0x11, tp_inet_block, 12);
    uint8_t buf[WR_PROXY_HEAD_MAX + 64];
    /* Each signature byte wrong in turn: BAD as soon as it is seen. */
    for (size_t i = 0; i < 12; i++) {
        memcpy(buf, good, n);
        buf[i] ^= 0x40;
        if (i == 0) {
            /* No longer starts like either version. */
            tp_expect_bad(buf, n, NULL);
            continue;
        }
        for (size_t k = 1; k <= i; k++)
            ASSERT_EQ(wr_proxy_parse(buf, k, NULL, NULL, NULL, NULL), WR_PROXY_NEED_MORE);
        ASSERT_EQ(wr_proxy_parse(buf, i + 1, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
        tp_expect_bad(buf, n, "signature");
    }
    /* Version 1 and 3 in the binary form; commands 2 and 15. */
    n = tp_v2(buf, 0x11, 0x11, tp_inet_block, 12);
    tp_expect_bad(buf, n, "version");
    ASSERT_EQ(wr_proxy_parse(buf, 13, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
    n = tp_v2(buf, 0x31, 0x11, tp_inet_block, 12);
    tp_expect_bad(buf, n, "version");
    n = tp_v2(buf, 0x22, 0x11, tp_inet_block, 12);
    tp_expect_bad(buf, n, "command");
    n = tp_v2(buf, 0x2F, 0x11, tp_inet_block, 12);
    tp_expect_bad(buf, n, "command");
    /* Family 4, protocol 3: invalid even for LOCAL. */
    n = tp_v2(buf, 0x21, 0x41, tp_inet_block, 12);
    tp_expect_bad(buf, n, "family");
    n = tp_v2(buf, 0x20, 0x13, tp_inet_block, 12);
    tp_expect_bad(buf, n, "protocol");
    ASSERT_EQ(wr_proxy_parse(buf, 14, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
    /* Lengths: over the limit (known from 16 bytes on), 65535, too short
     * for the family. */
    static const uint8_t zeros[WR_PROXY_HEAD_MAX];
    n = tp_v2(buf, 0x21, 0x11, zeros, WR_PROXY_HEAD_MAX - 16 + 1);
    ASSERT_EQ(wr_proxy_parse(buf, 16, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
    tp_expect_bad(buf, 16, "longer");
    memcpy(buf, tp_sig, 12);
    buf[12] = 0x21, buf[13] = 0x11, buf[14] = 0xFF, buf[15] = 0xFF;
    tp_expect_bad(buf, 16, "longer");
    n = tp_v2(buf, 0x21, 0x11, tp_inet_block, 11);
    tp_expect_bad(buf, n, "shorter");
    ASSERT_EQ(wr_proxy_parse(buf, 16, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
    n = tp_v2(buf, 0x21, 0x21, tp_inet_block, 12);
    tp_expect_bad(buf, n, "shorter");
    uint8_t unixb[215] = {0};
    n = tp_v2(buf, 0x21, 0x31, unixb, sizeof(unixb));
    tp_expect_bad(buf, n, "shorter");
    /* TLVs: 1 and 2 stray bytes, a TLV longer than what is left. */
    uint8_t body[32];
    memcpy(body, tp_inet_block, 12);
    body[12] = 0x04;
    n = tp_v2(buf, 0x21, 0x11, body, 13);
    tp_expect_bad(buf, n, "truncated TLV");
    body[13] = 0x00;
    n = tp_v2(buf, 0x21, 0x11, body, 14);
    tp_expect_bad(buf, n, "truncated TLV");
    body[12] = 0x01, body[13] = 0x00, body[14] = 0x05, body[15] = 'h', body[16] = '2';
    n = tp_v2(buf, 0x21, 0x11, body, 17);
    tp_expect_bad(buf, n, "TLV longer");
}

TEST(not_proxy)
{
    tp_expect_bad_str("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a PROXY header");
    const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC};
    tp_expect_bad(hello, sizeof(hello), "not a PROXY header");
    ASSERT_EQ(wr_proxy_parse(hello, 1, NULL, NULL, NULL, NULL), WR_PROXY_BAD);
    ASSERT_EQ(wr_proxy_parse(NULL, 0, NULL, NULL, NULL, NULL), WR_PROXY_NEED_MORE);
    /* A v2 signature with v1's text after it, and the reverse. */
    tp_expect_bad_str("\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "signature");
    tp_expect_bad_str("PROXY \r\n\r\n\x00\r\nQUIT\n", NULL);
}

/* ---- encoding ------------------------------------------------------------------ */

static void tp_roundtrip(const char *s, const char *d, size_t want_len, const char *want_s,
                         const char *want_d)
{
    struct sockaddr_storage sa, da, ps, pd;
    ASSERT_OK(wr_addr_parse(s, &sa));
    ASSERT_OK(wr_addr_parse(d, &da));
    uint8_t out[WR_PROXY_V2_MAX];
    ssize_t n =
        wr_proxy_v2_encode((struct sockaddr *)&sa, (struct sockaddr *)&da, out, sizeof(out));
    ASSERT_EQ(n, (ssize_t)want_len);
    ASSERT_EQ(tp_parse_all(out, (size_t)n, 0, &ps, &pd), WR_PROXY_OK);
    char a[WR_ADDR_STRLEN], b[WR_ADDR_STRLEN];
    ASSERT_STR_EQ(tp_str(&ps, a), want_s);
    ASSERT_STR_EQ(tp_str(&pd, b), want_d);
    /* Too small a buffer, by one byte. */
    ASSERT_EQ(
        wr_proxy_v2_encode((struct sockaddr *)&sa, (struct sockaddr *)&da, out, (size_t)n - 1),
        WR_ETOOBIG);
}

TEST(encode_roundtrip)
{
    tp_roundtrip("203.0.113.7:4242", "10.0.0.1:7443", 28, "203.0.113.7:4242", "10.0.0.1:7443");
    tp_roundtrip("0.0.0.0:0", "255.255.255.255:65535", 28, "0.0.0.0:0", "255.255.255.255:65535");
    tp_roundtrip("[2001:db8::7]:4242", "[2001:db8::1]:443", 52, "[2001:db8::7]:4242",
                 "[2001:db8::1]:443");
    /* A dual-stack listener's IPv4 client toward an IPv4 backend: IPv4. */
    tp_roundtrip("[::ffff:203.0.113.7]:4242", "10.0.0.1:7443", 28, "203.0.113.7:4242",
                 "10.0.0.1:7443");
    tp_roundtrip("[::ffff:203.0.113.7]:4242", "[::ffff:10.0.0.1]:7443", 28, "203.0.113.7:4242",
                 "10.0.0.1:7443");
    /* An IPv6 client toward an IPv4 backend: IPv6, the backend mapped. */
    tp_roundtrip("[2001:db8::7]:4242", "10.0.0.1:7443", 52, "[2001:db8::7]:4242",
                 "[::ffff:10.0.0.1]:7443");
    /* The exact bytes for IPv4 (as HAProxy's send-proxy-v2 writes them). */
    struct sockaddr_storage sa, da;
    ASSERT_OK(wr_addr_parse("203.0.113.7:4242", &sa));
    ASSERT_OK(wr_addr_parse("192.0.2.1:443", &da));
    uint8_t out[64], want[64];
    ASSERT_EQ(wr_proxy_v2_encode((struct sockaddr *)&sa, (struct sockaddr *)&da, out, sizeof(out)),
              28);
    ASSERT_EQ(tp_v2(want, 0x21, 0x11, tp_inet_block, 12), 28);
    ASSERT_MEM_EQ(out, want, 28);
}

TEST(encode_errors)
{
    struct sockaddr_storage sa, un;
    ASSERT_OK(wr_addr_parse("1.2.3.4:5", &sa));
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    uint8_t out[64];
    ASSERT_EQ(wr_proxy_v2_encode((struct sockaddr *)&un, (struct sockaddr *)&sa, out, sizeof(out)),
              WR_EUSAGE);
    ASSERT_EQ(wr_proxy_v2_encode((struct sockaddr *)&sa, (struct sockaddr *)&un, out, sizeof(out)),
              WR_EUSAGE);
    ASSERT_EQ(wr_proxy_v2_encode(NULL, (struct sockaddr *)&sa, out, sizeof(out)), WR_EUSAGE);
    ASSERT_EQ(wr_proxy_v2_encode((struct sockaddr *)&sa, (struct sockaddr *)&sa, out, 0),
              WR_ETOOBIG);
}

/* ---- CIDR sets (who may send a header) ------------------------------------------ */

static bool tp_in(const char *cidr, const char *addr)
{
    struct wr_cidr c;
    struct sockaddr_storage ss;
    ASSERT_OK(wr_cidr_parse(cidr, &c));
    ASSERT_OK(wr_addr_parse(addr, &ss));
    return wr_cidr_match(&c, (struct sockaddr *)&ss);
}

TEST(cidr_parse)
{
    const char *good[][2] = {
        {"10.0.0.0/8", "10.0.0.0/8"},
        {"127.0.0.2/32", "127.0.0.2/32"},
        {"192.0.2.7", "192.0.2.7/32"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"2001:db8::/32", "2001:db8::/32"},
        {"::1", "::1/128"},
        {"::/0", "::/0"},
        {"10.128.0.0/9", "10.128.0.0/9"},
        {"2001:db8:0:8000::/49", "2001:db8:0:8000::/49"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct wr_cidr c;
        char buf[WR_CIDR_STRLEN];
        if (wr_cidr_parse(good[i][0], &c) != 0)
            TEST_FAIL("'%s' refused", good[i][0]);
        ASSERT_STR_EQ(wr_cidr_str(&c, buf, sizeof(buf)), good[i][1]);
    }
    const char *bad[] = {"",
                         "/8",
                         "10.0.0.0/",
                         "10.0.0.0/33",
                         "10.0.0.1/8",
                         "10.0.0.0/-1",
                         "10.0.0.0/8x",
                         "10.0.0/8",
                         "::1/129",
                         "2001:db8::1/32",
                         "host/8",
                         "10.0.0.0/ 8",
                         "10.0.0.0/08x",
                         "1.2.3.4:80",
                         "[::1]/128",
                         "10.0.0.128/24"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wr_cidr c;
        if (wr_cidr_parse(bad[i], &c) == 0)
            TEST_FAIL("'%s' accepted", bad[i]);
    }
    struct wr_cidr zero = {0};
    struct sockaddr_storage ss;
    ASSERT_OK(wr_addr_parse("1.2.3.4:1", &ss));
    ASSERT(!wr_cidr_match(&zero, (struct sockaddr *)&ss));
}

TEST(cidr_match)
{
    ASSERT(tp_in("127.0.0.0/8", "127.0.0.1:5"));
    ASSERT(tp_in("127.0.0.0/8", "127.255.255.255:5"));
    ASSERT(!tp_in("127.0.0.0/8", "128.0.0.1:5"));
    ASSERT(tp_in("127.0.0.2/32", "127.0.0.2:1"));
    ASSERT(!tp_in("127.0.0.2/32", "127.0.0.1:1"));
    ASSERT(tp_in("10.128.0.0/9", "10.200.1.1:1"));
    ASSERT(!tp_in("10.128.0.0/9", "10.127.255.255:1"));
    ASSERT(tp_in("0.0.0.0/0", "203.0.113.7:1"));
    ASSERT(!tp_in("0.0.0.0/0", "[2001:db8::1]:1"));
    ASSERT(tp_in("2001:db8::/32", "[2001:db8:ffff::1]:1"));
    ASSERT(!tp_in("2001:db8::/32", "[2001:db9::1]:1"));
    ASSERT(tp_in("::/0", "[::1]:1"));
    ASSERT(!tp_in("::/0", "1.2.3.4:1"));
    /* A dual-stack socket's view of an IPv4 peer matches IPv4 networks... */
    ASSERT(tp_in("127.0.0.0/8", "[::ffff:127.0.0.1]:1"));
    ASSERT(!tp_in("10.0.0.0/8", "[::ffff:127.0.0.1]:1"));
    /* ...and IPv6 ones that spell it that way. */
    ASSERT(tp_in("::ffff:0:0/96", "[::ffff:127.0.0.1]:1"));
    struct wr_cidr set[2];
    struct sockaddr_storage ss;
    ASSERT_OK(wr_cidr_parse("10.0.0.0/8", &set[0]));
    ASSERT_OK(wr_cidr_parse("2001:db8::/32", &set[1]));
    ASSERT_OK(wr_addr_parse("[2001:db8::5]:1", &ss));
    ASSERT(wr_cidr_match_any(set, 2, (struct sockaddr *)&ss));
    ASSERT(!wr_cidr_match_any(set, 1, (struct sockaddr *)&ss));
    ASSERT(!wr_cidr_match_any(NULL, 0, (struct sockaddr *)&ss));
}

TEST_MAIN(TEST_ENTRY(v1_tcp4), TEST_ENTRY(v1_tcp6), TEST_ENTRY(v1_unknown),
          TEST_ENTRY(v1_crlf_bounds), TEST_ENTRY(v1_malformed), TEST_ENTRY(v2_tcp4),
          TEST_ENTRY(v2_tcp6), TEST_ENTRY(v2_tlvs), TEST_ENTRY(v2_local), TEST_ENTRY(v2_malformed),
          TEST_ENTRY(not_proxy), TEST_ENTRY(encode_roundtrip), TEST_ENTRY(encode_errors),
          TEST_ENTRY(cidr_parse), TEST_ENTRY(cidr_match))
