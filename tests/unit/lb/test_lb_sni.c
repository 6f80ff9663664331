/*
 * test_lb_sni.c: lb/src/lb_sni.c, the server name of a ClientHello. Real
 * hellos first (lb_hellos.h: OpenSSL, Python, curl), re-framed into several
 * records and cut at every byte; then hellos built by hand below, so that
 * each hostile case shows which length field it breaks.
 */
/* link: lb_lib */
#include "test.h"

#include "lb_sni.h"

#include "lb_hellos.h"

/* ---- helpers ---- */

static enum lb_sni_result parse(const uint8_t *b, size_t n, char name[LB_SNI_NAME_MAX + 1])
{
    const char *why = NULL;
    enum lb_sni_result r = lb_sni_parse(b, n, name, &why);
    if (r != LB_SNI_OK)
        ASSERT(why != NULL);
    if (r != LB_SNI_OK)
        ASSERT_STR_EQ(name, "");
    return r;
}

/* Re-frames a one-record hello into records whose payloads are <sizes>
 * (the last repeated until the message is out). Returns the new length. */
static size_t reframe(const uint8_t *in, size_t n, const size_t *sizes, size_t nsizes, uint8_t *out,
                      size_t cap)
{
    ASSERT(n > 5 && in[0] == 22);
    const uint8_t *hs = in + 5;
    size_t left = n - 5, o = 0, i = 0;
    while (left > 0) {
        size_t k = sizes[i < nsizes ? i : nsizes - 1];
        if (k > left)
            k = left;
        ASSERT(o + 5 + k <= cap);
        out[o++] = 22;
        out[o++] = in[1];
        out[o++] = in[2];
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, hs, k);
        o += k;
        hs += k;
        left -= k;
        i++;
    }
    return o;
}

/* Every strict prefix is NEED_MORE; the whole is OK with <want>. */
static void check_prefixes(const uint8_t *b, size_t n, const char *want)
{
    char name[LB_SNI_NAME_MAX + 1];
    for (size_t k = 0; k < n; k++) {
        /* An exact-size copy, so that ASan sees any read past <k>. */
        uint8_t *cut = malloc(k ? k : 1);
        ASSERT(cut != NULL);
        memcpy(cut, b, k);
        enum lb_sni_result r = parse(cut, k, name);
        if (r != LB_SNI_NEED_MORE)
            TEST_FAIL("prefix of %zu/%zu bytes: %s", k, n, lb_sni_result_str(r));
        free(cut);
    }
    ASSERT_EQ(LB_SNI_OK, parse(b, n, name));
    ASSERT_STR_EQ(name, want);
}

/* ---- a ClientHello builder ---- */

enum {
    H_GREASE = 1 << 0,  /* GREASE cipher suites and extensions, as Chrome sends */
    H_PADDING = 1 << 1, /* a padding extension (21) of pad bytes */
    H_NO_EXTS = 1 << 2, /* no extensions block at all (before TLS 1.2) */
};

struct hello {
    uint8_t b[LB_SNI_PEEK_MAX * 2];
    size_t n;
    /* Offsets of length fields, for the hostile cases to patch. */
    size_t rec_len, hs_len, sid, cs, comp, exts, sni_ext, sni_list, sni_name;
};

static void h_u8(struct hello *h, unsigned v)
{
    ASSERT(h->n < sizeof(h->b));
    h->b[h->n++] = (uint8_t)v;
}

static void h_u16(struct hello *h, unsigned v)
{
    h_u8(h, v >> 8);
    h_u8(h, v & 0xff);
}

static void h_put(struct hello *h, const void *p, size_t n)
{
    ASSERT(h->n + n <= sizeof(h->b));
    if (n == 0)
        return; /* <p> may be NULL then, which memcpy does not allow */
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void h_fill(struct hello *h, uint8_t v, size_t n)
{
    ASSERT(h->n + n <= sizeof(h->b));
    memset(h->b + h->n, v, n);
    h->n += n;
}

/* Writes the length of what follows <at> + <width> into the field at <at>. */
static void h_patch(struct hello *h, size_t at, int width)
{
    size_t v = h->n - at - (size_t)width;
    for (int i = width - 1; i >= 0; i--) {
        h->b[at + (size_t)i] = (uint8_t)v;
        v >>= 8;
    }
}

static void h_ext(struct hello *h, unsigned type, const void *data, size_t n)
{
    h_u16(h, type);
    h_u16(h, (unsigned)n);
    h_put(h, data, n);
}

/* A one-record ClientHello naming <sni> (none when NULL) with <pad> bytes
 * of padding when H_PADDING. The record length is not capped at 2^14 here:
 * big hellos are re-framed by the caller. */
static void hello_build(struct hello *h, const char *sni, unsigned flags, size_t pad)
{
    memset(h, 0, sizeof(*h));
    h_u8(h, 22);
    h_u16(h, 0x0301);
    h->rec_len = h->n;
    h_u16(h, 0);
    h_u8(h, 1);
    h->hs_len = h->n;
    h_u8(h, 0);
    h_u16(h, 0);
    h_u16(h, 0x0303);
    h_fill(h, 0xab, 32);
    h->sid = h->n;
    h_u8(h, 32);
    h_fill(h, 0xcd, 32);
    h->cs = h->n;
    h_u16(h, 0);
    if (flags & H_GREASE)
        h_u16(h, 0x3a3a);
    h_u16(h, 0x1301);
    h_u16(h, 0x1302);
    h_u16(h, 0xc02f);
    h_patch(h, h->cs, 2);
    h->comp = h->n;
    h_u8(h, 1);
    h_u8(h, 0);
    if (!(flags & H_NO_EXTS)) {
        h->exts = h->n;
        h_u16(h, 0);
        if (flags & H_GREASE)
            h_ext(h, 0x0a0a, NULL, 0);
        if (sni != NULL) {
            h->sni_ext = h->n + 2;
            h_u16(h, 0);
            h_u16(h, 0);
            h->sni_list = h->n;
            h_u16(h, 0);
            h_u8(h, 0);
            h->sni_name = h->n;
            h_u16(h, 0);
            h_put(h, sni, strlen(sni));
            h_patch(h, h->sni_name, 2);
            h_patch(h, h->sni_list, 2);
            h_patch(h, h->sni_ext, 2);
        }
        static const uint8_t versions[] = {4, 0x03, 0x04, 0x03, 0x03};
        h_ext(h, 43, versions, sizeof(versions));
        if (flags & H_GREASE) {
            static const uint8_t one[] = {0};
            h_ext(h, 0xfafa, one, 1);
        }
        if (flags & H_PADDING) {
            h_u16(h, 21);
            h_u16(h, (unsigned)pad);
            h_fill(h, 0, pad);
        }
        h_patch(h, h->exts, 2);
    }
    h_patch(h, h->hs_len, 3);
    h_patch(h, h->rec_len, 2);
}

static void h_set16(struct hello *h, size_t at, unsigned v)
{
    h->b[at] = (uint8_t)(v >> 8);
    h->b[at + 1] = (uint8_t)v;
}

/* ---- real hellos ---- */

TEST(real_tls13)
{
    char name[LB_SNI_NAME_MAX + 1];
    ASSERT_EQ(LB_SNI_OK, parse(lb_hello_tls13_shop, sizeof(lb_hello_tls13_shop), name));
    ASSERT_STR_EQ(name, "shop.example.com");
}

TEST(real_tls12_uppercase_lowered)
{
    char name[LB_SNI_NAME_MAX + 1];
    ASSERT_EQ(LB_SNI_OK, parse(lb_hello_tls12_upper, sizeof(lb_hello_tls12_upper), name));
    ASSERT_STR_EQ(name, "shop.example.com");
}

TEST(real_no_sni)
{
    char name[LB_SNI_NAME_MAX + 1] = "junk";
    ASSERT_EQ(LB_SNI_OK, parse(lb_hello_nosni, sizeof(lb_hello_nosni), name));
    ASSERT_STR_EQ(name, "");
}

TEST(real_padding_python_curl)
{
    char name[LB_SNI_NAME_MAX + 1];
    ASSERT_EQ(LB_SNI_OK, parse(lb_hello_python, sizeof(lb_hello_python), name));
    ASSERT_STR_EQ(name, "n1.mesh");
    ASSERT_EQ(LB_SNI_OK, parse(lb_hello_curl, sizeof(lb_hello_curl), name));
    ASSERT_STR_EQ(name, "api.example.org");
}

TEST(real_truncated_every_offset)
{
    check_prefixes(lb_hello_tls13_shop, sizeof(lb_hello_tls13_shop), "shop.example.com");
    check_prefixes(lb_hello_tls12_upper, sizeof(lb_hello_tls12_upper), "shop.example.com");
    check_prefixes(lb_hello_nosni, sizeof(lb_hello_nosni), "");
    check_prefixes(lb_hello_python, sizeof(lb_hello_python), "n1.mesh");
    check_prefixes(lb_hello_curl, sizeof(lb_hello_curl), "api.example.org");
}

TEST(trailing_bytes_ignored)
{
    /* The client may send early data or a second flight right behind. */
    uint8_t b[sizeof(lb_hello_curl) + 64];
    memcpy(b, lb_hello_curl, sizeof(lb_hello_curl));
    memset(b + sizeof(lb_hello_curl), 0x17, 64);
    char name[LB_SNI_NAME_MAX + 1];
    ASSERT_EQ(LB_SNI_OK, parse(b, sizeof(b), name));
    ASSERT_STR_EQ(name, "api.example.org");
}

/* ---- several records ---- */

TEST(split_two_records_every_point)
{
    const uint8_t *in = lb_hello_tls13_shop;
    size_t n = sizeof(lb_hello_tls13_shop);
    uint8_t out[1024];
    for (size_t cut = 1; cut < n - 5; cut++) {
        size_t sizes[] = {cut, n};
        size_t m = reframe(in, n, sizes, 2, out, sizeof(out));
        ASSERT_EQ(n + 5, m);
        char name[LB_SNI_NAME_MAX + 1];
        ASSERT_EQ(LB_SNI_OK, parse(out, m, name));
        ASSERT_STR_EQ(name, "shop.example.com");
    }
    /* And every prefix of one split through the header of the hello. */
    size_t sizes[] = {2, n};
    size_t m = reframe(in, n, sizes, 2, out, sizeof(out));
    check_prefixes(out, m, "shop.example.com");
}

TEST(split_many_small_records)
{
    uint8_t out[4096];
    size_t sizes[] = {1};
    size_t m = reframe(lb_hello_curl, sizeof(lb_hello_curl), sizes, 1, out, sizeof(out));
    ASSERT_EQ(6 * (sizeof(lb_hello_curl) - 5), m);
    check_prefixes(out, m, "api.example.org");
}

TEST(split_interrupted_by_other_record)
{
    uint8_t out[1024];
    size_t n = sizeof(lb_hello_tls13_shop);
    size_t sizes[] = {100, n};
    size_t m = reframe(lb_hello_tls13_shop, n, sizes, 2, out, sizeof(out));
    char name[LB_SNI_NAME_MAX + 1];
    /* The second record turned into change_cipher_spec, then alert. */
    out[5 + 100] = 20;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(out, m, name));
    ASSERT_EQ(LB_SNI_MALFORMED, parse(out, 5 + 100 + 1, name));
    out[5 + 100] = 21;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(out, m, name));
    /* A second record with a bad version, or empty. */
    out[5 + 100] = 22;
    out[5 + 100 + 1] = 2;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(out, m, name));
    out[5 + 100 + 1] = 3;
    out[5 + 100 + 3] = 0;
    out[5 + 100 + 4] = 0;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(out, m, name));
}

/* ---- built by hand ---- */

TEST(grease_and_padding)
{
    static struct hello h;
    hello_build(&h, "Chrome.Example.NET", H_GREASE | H_PADDING, 300);
    check_prefixes(h.b, h.n, "chrome.example.net");
    hello_build(&h, NULL, H_GREASE | H_PADDING, 0);
    check_prefixes(h.b, h.n, "");
}

TEST(no_extensions_block)
{
    static struct hello h;
    hello_build(&h, NULL, H_NO_EXTS, 0);
    check_prefixes(h.b, h.n, "");
}

TEST(valid_names)
{
    static struct hello h;
    char name[LB_SNI_NAME_MAX + 1];
    const char *ok[] = {
        "a", "n1.mesh", "_acme-challenge.x.y", "1.2.3.4", "xn--bcher-kva.example", "A-B.C_D"};
    const char *want[] = {
        "a", "n1.mesh", "_acme-challenge.x.y", "1.2.3.4", "xn--bcher-kva.example", "a-b.c_d"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        hello_build(&h, ok[i], 0, 0);
        ASSERT_EQ(LB_SNI_OK, parse(h.b, h.n, name));
        ASSERT_STR_EQ(name, want[i]);
    }
    /* 255 bytes is the limit (labels are not limited to 63 here). */
    char longest[256];
    memset(longest, 'a', 255);
    longest[255] = '\0';
    longest[100] = '.';
    hello_build(&h, longest, 0, 0);
    ASSERT_EQ(LB_SNI_OK, parse(h.b, h.n, name));
    ASSERT_EQ(255, strlen(name));
}

TEST(invalid_names)
{
    static struct hello h;
    char name[LB_SNI_NAME_MAX + 1];
    const char *bad[] = {"a b.com", "a..b",      ".a",     "a.",   "caf\xc3\xa9.fr", "a/b",
                         "a:443",   "a\\b.com",  "a*.com", "*",    "a%2eb",          "\x7f",
                         "a\tb",    "host\r\nx", "[::1]",  "a@b.c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hello_build(&h, bad[i], 0, 0);
        if (parse(h.b, h.n, name) != LB_SNI_MALFORMED)
            TEST_FAIL("name \"%s\" accepted", bad[i]);
    }
    /* An embedded NUL. */
    hello_build(&h, "abc.example", 0, 0);
    h.b[h.sni_name + 2 + 3] = '\0';
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    /* 256 bytes. */
    char toolong[257];
    memset(toolong, 'a', 256);
    toolong[256] = '\0';
    hello_build(&h, toolong, 0, 0);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
}

TEST(server_name_list_shapes)
{
    static struct hello h;
    char name[LB_SNI_NAME_MAX + 1];

    /* Empty extension, empty list, empty host_name. */
    hello_build(&h, "x", 0, 0);
    h_set16(&h, h.sni_ext, 0);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    hello_build(&h, "", 0, 0);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));

    /* Two host_name entries; an unknown name type, which is skipped. The
     * extension is built by hand and put before supported_versions. */
    const uint8_t two_hosts[] = {0, 10, 0, 0, 2, 'a', 'b', 0, 0, 2, 'c', 'd'};
    const uint8_t other_type[] = {0, 10, 7, 0, 2, 'z', 'z', 0, 0, 2, 'c', 'd'};
    const uint8_t *lists[] = {two_hosts, other_type};
    const enum lb_sni_result want[] = {LB_SNI_MALFORMED, LB_SNI_OK};
    for (int i = 0; i < 2; i++) {
        hello_build(&h, NULL, 0, 0);
        size_t at = h.exts + 2;
        uint8_t tail[64];
        size_t tail_len = h.n - at;
        memcpy(tail, h.b + at, tail_len);
        h.n = at;
        h_ext(&h, 0, lists[i], sizeof(two_hosts));
        h_put(&h, tail, tail_len);
        h_patch(&h, h.exts, 2);
        h_patch(&h, h.hs_len, 3);
        h_patch(&h, h.rec_len, 2);
        ASSERT_EQ(want[i], parse(h.b, h.n, name));
        if (want[i] == LB_SNI_OK)
            ASSERT_STR_EQ(name, "cd");
    }
}

TEST(two_server_name_extensions)
{
    static struct hello h;
    char name[LB_SNI_NAME_MAX + 1];
    hello_build(&h, "a.example", 0, 0);
    /* Append a copy of the whole server_name extension. */
    size_t ext_start = h.sni_ext - 2;
    size_t ext_len = h.sni_list + 2 + 1 + 2 + strlen("a.example") - ext_start;
    uint8_t copy[64];
    memcpy(copy, h.b + ext_start, ext_len);
    h_put(&h, copy, ext_len);
    h_patch(&h, h.exts, 2);
    h_patch(&h, h.hs_len, 3);
    h_patch(&h, h.rec_len, 2);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
}

/* Every length field made too big for what encloses it, and some too small. */
TEST(overflowing_lengths)
{
    static struct hello h;
    char name[LB_SNI_NAME_MAX + 1];
    struct {
        size_t *field;
        int width;
        int delta;
    } cases[] = {
        {&h.sid, 1, 0},     {&h.cs, 2, 0},       {&h.comp, 1, 0},     {&h.exts, 2, 0},
        {&h.sni_ext, 2, 0}, {&h.sni_list, 2, 0}, {&h.sni_name, 2, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int d = -3; d <= 3; d++) {
            if (d == 0)
                continue;
            hello_build(&h, "shop.example.com", 0, 0);
            size_t at = *cases[i].field;
            size_t v = cases[i].width == 1 ? h.b[at] : ((size_t)h.b[at] << 8 | h.b[at + 1]);
            v = (size_t)((long)v + d);
            if (cases[i].width == 1)
                h.b[at] = (uint8_t)v;
            else
                h_set16(&h, at, (unsigned)v);
            enum lb_sni_result r = parse(h.b, h.n, name);
            /* A shorter session id or suite list can still parse, reading
             * the next bytes as the next fields; anything accepted must not
             * have produced a name out of thin air. */
            if (r == LB_SNI_OK)
                ASSERT(strcmp(name, "shop.example.com") == 0 || name[0] == '\0');
            else
                ASSERT_EQ(LB_SNI_MALFORMED, r);
            if (d > 0)
                ASSERT_EQ(LB_SNI_MALFORMED, r);
        }
        /* The largest value the field can hold. */
        hello_build(&h, "shop.example.com", 0, 0);
        if (cases[i].width == 1)
            h.b[*cases[i].field] = 0xff;
        else
            h_set16(&h, *cases[i].field, 0xffff);
        ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    }
    /* Session id 33 bytes, odd suites, no compression method. */
    hello_build(&h, "a", 0, 0);
    h.b[h.sid] = 33;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    hello_build(&h, "a", 0, 0);
    h_set16(&h, h.cs, 0);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    hello_build(&h, "a", 0, 0);
    h.b[h.comp] = 0;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    /* Handshake length shorter than the body: extensions overflow it. */
    hello_build(&h, "shop.example.com", 0, 0);
    h.b[h.hs_len + 2] = (uint8_t)(h.b[h.hs_len + 2] - 4);
    ASSERT_EQ(LB_SNI_MALFORMED, parse(h.b, h.n, name));
    /* Handshake length longer than what is sent: waits for more. */
    hello_build(&h, "shop.example.com", 0, 0);
    h.b[h.hs_len + 2] = (uint8_t)(h.b[h.hs_len + 2] + 4);
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(h.b, h.n, name));
}

TEST(not_tls)
{
    char name[LB_SNI_NAME_MAX + 1];
    const char *http = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    ASSERT_EQ(LB_SNI_NOT_TLS, parse((const uint8_t *)http, strlen(http), name));
    ASSERT_EQ(LB_SNI_NOT_TLS, parse((const uint8_t *)http, 1, name));
    const uint8_t ssl2[] = {0x80, 0x2e, 0x01, 0x00, 0x02};
    ASSERT_EQ(LB_SNI_NOT_TLS, parse(ssl2, sizeof(ssl2), name));
    const uint8_t bad_version[] = {0x16, 0x04, 0x01, 0x00, 0x10};
    ASSERT_EQ(LB_SNI_NOT_TLS, parse(bad_version, 2, name));
    const uint8_t alert_first[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    ASSERT_EQ(LB_SNI_NOT_TLS, parse(alert_first, sizeof(alert_first), name));
    const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
    ASSERT_EQ(LB_SNI_NOT_TLS, parse(ssh, sizeof(ssh) - 1, name));
    /* Too short to tell. */
    const uint8_t hs[] = {0x16, 0x03};
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(hs, 0, name));
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(hs, 1, name));
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(hs, 2, name));
}

TEST(not_a_client_hello)
{
    char name[LB_SNI_NAME_MAX + 1];
    /* A ServerHello (2), decided on its first byte. */
    uint8_t b[sizeof(lb_hello_tls13_shop)];
    memcpy(b, lb_hello_tls13_shop, sizeof(b));
    b[5] = 2;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(b, 6, name));
    ASSERT_EQ(LB_SNI_MALFORMED, parse(b, sizeof(b), name));
    /* Empty record, record longer than 2^14. */
    const uint8_t empty[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    ASSERT_EQ(LB_SNI_MALFORMED, parse(empty, sizeof(empty), name));
    const uint8_t huge[] = {0x16, 0x03, 0x01, 0x40, 0x01, 0x01};
    ASSERT_EQ(LB_SNI_MALFORMED, parse(huge, sizeof(huge), name));
    /* A ClientHello too short to hold its fixed fields. */
    const uint8_t tiny[] = {0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 3, 3, 0, 0};
    ASSERT_EQ(LB_SNI_MALFORMED, parse(tiny, sizeof(tiny), name));
    /* Legacy version 2.0 in the hello. */
    memcpy(b, lb_hello_tls13_shop, sizeof(b));
    b[9] = 2;
    ASSERT_EQ(LB_SNI_MALFORMED, parse(b, sizeof(b), name));
}

TEST(too_big)
{
    static struct hello h;
    static uint8_t out[LB_SNI_PEEK_MAX * 2];
    char name[LB_SNI_NAME_MAX + 1];

    /* Fits: one record up to the peek limit. */
    hello_build(&h, "big.example", H_PADDING, 0);
    size_t base = h.n;
    hello_build(&h, "big.example", H_PADDING, LB_SNI_PEEK_MAX - base);
    ASSERT_EQ(LB_SNI_PEEK_MAX, h.n);
    ASSERT_EQ(LB_SNI_OK, parse(h.b, h.n, name));
    ASSERT_STR_EQ(name, "big.example");
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(h.b, h.n - 1, name));

    /* One byte more: TOO_BIG as soon as the handshake header says so. */
    hello_build(&h, "big.example", H_PADDING, LB_SNI_PEEK_MAX - base + 1);
    ASSERT_EQ(LB_SNI_TOO_BIG, parse(h.b, 9, name));
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(h.b, 8, name));

    /* Fits as one record, not once cut into 1000-byte records: TOO_BIG at
     * the limit, NEED_MORE below it. */
    hello_build(&h, "big.example", H_PADDING, LB_SNI_PEEK_MAX - base - 20);
    size_t sizes[] = {1000};
    size_t m = reframe(h.b, h.n, sizes, 1, out, sizeof(out));
    ASSERT(m > LB_SNI_PEEK_MAX);
    ASSERT_EQ(LB_SNI_TOO_BIG, parse(out, m, name));
    ASSERT_EQ(LB_SNI_TOO_BIG, parse(out, LB_SNI_PEEK_MAX, name));
    ASSERT_EQ(LB_SNI_NEED_MORE, parse(out, LB_SNI_PEEK_MAX - 1, name));

    /* A declared length of 2^24 - 1. */
    const uint8_t max[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff};
    ASSERT_EQ(LB_SNI_TOO_BIG, parse(max, sizeof(max), name));
}

TEST(alert_bytes)
{
    const uint8_t want[LB_TLS_ALERT_LEN] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70};
    ASSERT_MEM_EQ(lb_tls_alert_unrecognized_name, want, LB_TLS_ALERT_LEN);
}

TEST(result_str)
{
    ASSERT_STR_EQ(lb_sni_result_str(LB_SNI_OK), "OK");
    ASSERT_STR_EQ(lb_sni_result_str(LB_SNI_NEED_MORE), "NEED_MORE");
    ASSERT_STR_EQ(lb_sni_result_str(LB_SNI_NOT_TLS), "NOT_TLS");
    ASSERT_STR_EQ(lb_sni_result_str(LB_SNI_MALFORMED), "MALFORMED");
    ASSERT_STR_EQ(lb_sni_result_str(LB_SNI_TOO_BIG), "TOO_BIG");
    ASSERT_STR_EQ(lb_sni_result_str((enum lb_sni_result)99), "?");
}

TEST(why_optional)
{
    char name[LB_SNI_NAME_MAX + 1];
    ASSERT_EQ(LB_SNI_NOT_TLS, lb_sni_parse((const uint8_t *)"GET", 3, name, NULL));
    ASSERT_EQ(LB_SNI_OK, lb_sni_parse(lb_hello_curl, sizeof(lb_hello_curl), name, NULL));
}

TEST_MAIN(TEST_ENTRY(real_tls13), TEST_ENTRY(real_tls12_uppercase_lowered), TEST_ENTRY(real_no_sni),
          TEST_ENTRY(real_padding_python_curl), TEST_ENTRY(real_truncated_every_offset),
          TEST_ENTRY(trailing_bytes_ignored), TEST_ENTRY(split_two_records_every_point),
          TEST_ENTRY(split_many_small_records), TEST_ENTRY(split_interrupted_by_other_record),
          TEST_ENTRY(grease_and_padding), TEST_ENTRY(no_extensions_block), TEST_ENTRY(valid_names),
          TEST_ENTRY(invalid_names), TEST_ENTRY(server_name_list_shapes),
          TEST_ENTRY(two_server_name_extensions), TEST_ENTRY(overflowing_lengths),
          TEST_ENTRY(not_tls), TEST_ENTRY(not_a_client_hello), TEST_ENTRY(too_big),
          TEST_ENTRY(alert_bytes), TEST_ENTRY(result_str), TEST_ENTRY(why_optional))
