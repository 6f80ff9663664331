/*
 * test_lb_http.c: lb/src/lb_http.c, the Host of a request head and the
 * responses warren-lb writes itself. Heads are written out literally, so
 * each case shows the bytes on the wire.
 */
/* link: lb_lib */
#include "test.h"

#include <stdbool.h>

#include "lb_http.h"

static enum lb_http_result parse_n(const char *s, size_t n, char host[LB_HTTP_HOST_MAX + 1],
                                   size_t *head_len)
{
    const char *why = NULL;
    /* An exact-size copy, so that ASan sees any read past <n>. */
    char *copy = malloc(n ? n : 1);
    ASSERT(copy != NULL);
    memcpy(copy, s, n);
    enum lb_http_result r = lb_http_parse_head((const uint8_t *)copy, n, host, head_len, &why);
    free(copy);
    if (r != LB_HTTP_OK) {
        ASSERT(why != NULL);
        ASSERT_STR_EQ(host, "");
        ASSERT_EQ(0, *head_len);
    }
    return r;
}

static enum lb_http_result parse(const char *s, char host[LB_HTTP_HOST_MAX + 1], size_t *head_len)
{
    return parse_n(s, strlen(s), host, head_len);
}

/* <req> is OK with <want>, and its head is all of it but <body> bytes. */
static void expect_ok(const char *req, const char *want, size_t body)
{
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    enum lb_http_result r = parse(req, host, &head_len);
    if (r != LB_HTTP_OK)
        TEST_FAIL("%s: %s", req, lb_http_result_str(r));
    ASSERT_STR_EQ(host, want);
    ASSERT_EQ(strlen(req) - body, head_len);
}

static void expect_bad(const char *req)
{
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    enum lb_http_result r = parse(req, host, &head_len);
    if (r != LB_HTTP_BAD)
        TEST_FAIL("%s: %s (host \"%s\")", req, lb_http_result_str(r), host);
}

TEST(simple)
{
    expect_ok("GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "shop.example.com", 0);
    expect_ok(
        "GET /a?b=c HTTP/1.1\r\nUser-Agent: x\r\nhost: Shop.Example.COM\r\nAccept: */*\r\n\r\n",
        "shop.example.com", 0);
    expect_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "a", 0);
    /* Bare LF line ends, as http_parser accepts them. */
    expect_ok("GET / HTTP/1.1\nHost: a.b\n\n", "a.b", 0);
    /* Blank lines before the request line (RFC 9112 §2.2). */
    expect_ok("\r\nGET / HTTP/1.1\r\nHost: a.b\r\n\r\n", "a.b", 0);
}

TEST(host_with_port_and_spaces)
{
    expect_ok("GET / HTTP/1.1\r\nHost: shop.example.com:8080\r\n\r\n", "shop.example.com", 0);
    expect_ok("GET / HTTP/1.1\r\nHost:shop.example.com:443\r\n\r\n", "shop.example.com", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: \t a.b:1 \t\r\n\r\n", "a.b", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: a.b:\r\n\r\n", "a.b", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n", "example.com", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", "10.0.0.1", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "[::1]", 0);
    expect_ok("GET / HTTP/1.1\r\nHost: [2001:DB8::A]\r\n\r\n", "[2001:db8::a]", 0);
}

TEST(bad_host_values)
{
    const char *bad[] = {
        "",        " ",    "a b",  "a..b",       ".a", "a/b",   "a:80x",       ":80", "a:123456",
        "a:-1",    "[zz]", "[::1", "[::1]x",     "[]", "a%2eb", "caf\xc3\xa9", "a@b", "a,b",
        "a:80:90", "*",    "a\\b", "[::1]:80:1", "..", ".",     "a.b..",
    };
    char req[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        expect_bad(req);
    }
    /* 256 bytes of name. */
    char big[256 + 1];
    memset(big, 'a', 256);
    big[256] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", big);
    expect_bad(req);
    big[255] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s:80\r\n\r\n", big);
    expect_ok(req, big, 0);
}

TEST(absolute_form)
{
    /* The request target's authority wins over Host (RFC 9112 §3.2.2). */
    expect_ok("GET http://api.example.org:8080/x HTTP/1.1\r\nHost: other.example\r\n\r\n",
              "api.example.org", 0);
    expect_ok("GET HTTPS://API.example.org/ HTTP/1.1\r\nHost: api.example.org\r\n\r\n",
              "api.example.org", 0);
    expect_ok("GET http://[::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n", "[::1]", 0);
    expect_ok("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", "db.example", 0);
    expect_bad("GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
    expect_bad("GET http://user:pw@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
    expect_bad("GET http://a..example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
    /* Still one Host required. */
    expect_bad("GET http://a.example/ HTTP/1.1\r\n\r\n");
}

TEST(host_count)
{
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nhOsT: a\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost:\r\nHost: b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nHost: \r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n");
    /* Header names near "Host" are other headers. */
    expect_ok("GET / HTTP/1.1\r\nX-Forwarded-Host: b\r\nHost: a\r\nHostname: c\r\n\r\n", "a", 0);
}

TEST(http10)
{
    expect_ok("GET / HTTP/1.0\r\nHost: old.example\r\n\r\n", "old.example", 0);
    expect_bad("GET / HTTP/1.0\r\n\r\n");
    expect_bad("GET / HTTP/1.0\r\nUser-Agent: x\r\n\r\n");
}

TEST(smuggling_shapes)
{
    /* Whitespace before the colon: a backend could read it as Host. */
    expect_bad("GET / HTTP/1.1\r\nHost : evil\r\nHost: a\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX : 1\r\nHost: a\r\n\r\n");
    /* A folded Host (obs-fold). */
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n");
    /* Folding another header is left to http_parser and the backend. */
    expect_ok("GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: h\r\n\r\n", "h", 0);
}

TEST(not_http1)
{
    expect_bad("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    expect_bad("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    expect_bad("GET /\r\n\r\n");
    expect_bad("GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    expect_bad("GET / HTTP/0.9\r\nHost: a\r\n\r\n");
    expect_bad("SSH-2.0-OpenSSH_9.2\r\n");
    expect_bad("get / HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n");
    /* Decided on the first byte that cannot start a request. */
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    ASSERT_EQ(LB_HTTP_BAD, parse_n("\x16", 1, host, &head_len));
}

TEST(body_and_pipelining_not_read)
{
    expect_ok("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "a", 5);
    expect_ok("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n", "a",
              strlen("GET / HTTP/1.1\r\nHost: b\r\n\r\n"));
    /* Even garbage after the head. */
    expect_ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n\x01\x02\x03", "a", 3);
    expect_ok("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
              "\x81\x05",
              "a", 2);
}

TEST(byte_by_byte)
{
    const char *req = "GET /index.html HTTP/1.1\r\nUser-Agent: test\r\nHost: Bytes.Example:81\r\n"
                      "Accept: */*\r\n\r\nBODY";
    size_t n = strlen(req), head = n - 4;
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    for (size_t k = 0; k < head; k++) {
        enum lb_http_result r = parse_n(req, k, host, &head_len);
        if (r != LB_HTTP_NEED_MORE)
            TEST_FAIL("prefix %zu: %s", k, lb_http_result_str(r));
    }
    for (size_t k = head; k <= n; k++) {
        ASSERT_EQ(LB_HTTP_OK, parse_n(req, k, host, &head_len));
        ASSERT_STR_EQ(host, "bytes.example");
        ASSERT_EQ(head, head_len);
    }
    /* A bad head is BAD from some byte on, never before the second Host
     * name is complete, and stays BAD. */
    const char *bad = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    size_t not_before = strlen("GET / HTTP/1.1\r\nHost: a\r\nHost:");
    bool seen_bad = false;
    for (size_t k = 0; k <= strlen(bad); k++) {
        enum lb_http_result r = parse_n(bad, k, host, &head_len);
        if (seen_bad || k == strlen(bad))
            ASSERT_EQ(LB_HTTP_BAD, r);
        if (r == LB_HTTP_BAD) {
            ASSERT_GE(k, not_before);
            seen_bad = true;
        } else {
            ASSERT_EQ(LB_HTTP_NEED_MORE, r);
        }
    }
}

/* A head of exactly <total> bytes: padded with an X-Pad header. */
static char *head_of_size(size_t total)
{
    const char *start = "GET / HTTP/1.1\r\nHost: big.example\r\nX-Pad: ";
    const char *end = "\r\n\r\n";
    size_t fixed = strlen(start) + strlen(end);
    ASSERT(total > fixed);
    char *s = malloc(total + 1);
    ASSERT(s != NULL);
    memcpy(s, start, strlen(start));
    memset(s + strlen(start), 'p', total - fixed);
    memcpy(s + total - strlen(end), end, strlen(end));
    s[total] = '\0';
    return s;
}

TEST(too_big)
{
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    char *s = head_of_size(LB_HTTP_HEAD_MAX);
    ASSERT_EQ(LB_HTTP_OK, parse(s, host, &head_len));
    ASSERT_EQ(LB_HTTP_HEAD_MAX, head_len);
    ASSERT_EQ(LB_HTTP_NEED_MORE, parse_n(s, LB_HTTP_HEAD_MAX - 1, host, &head_len));
    free(s);

    s = head_of_size(LB_HTTP_HEAD_MAX + 1);
    ASSERT_EQ(LB_HTTP_NEED_MORE, parse_n(s, LB_HTTP_HEAD_MAX - 1, host, &head_len));
    ASSERT_EQ(LB_HTTP_TOO_BIG, parse_n(s, LB_HTTP_HEAD_MAX, host, &head_len));
    ASSERT_EQ(LB_HTTP_TOO_BIG, parse(s, host, &head_len));
    free(s);

    /* A huge request line, and many small headers. */
    s = malloc(LB_HTTP_HEAD_MAX * 2 + 1);
    ASSERT(s != NULL);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', LB_HTTP_HEAD_MAX * 2 - 5);
    s[LB_HTTP_HEAD_MAX * 2] = '\0';
    ASSERT_EQ(LB_HTTP_TOO_BIG, parse(s, host, &head_len));
    size_t off = (size_t)snprintf(s, 64, "GET / HTTP/1.1\r\nHost: a\r\n");
    while (off + 8 <= LB_HTTP_HEAD_MAX * 2) {
        memcpy(s + off, "X: 123\r\n", 8);
        off += 8;
    }
    s[off] = '\0';
    ASSERT_EQ(LB_HTTP_TOO_BIG, parse(s, host, &head_len));
    free(s);
}

TEST(empty_input)
{
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    ASSERT_EQ(LB_HTTP_NEED_MORE, parse_n("", 0, host, &head_len));
    ASSERT_EQ(LB_HTTP_NEED_MORE, parse_n("\r\n", 2, host, &head_len));
    ASSERT_EQ(LB_HTTP_NEED_MORE,
              lb_http_parse_head((const uint8_t *)"G", 1, host, &head_len, NULL));
}

TEST(responses)
{
    const int codes[] = {400, 404, 408, 431, 503};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t len = 0;
        const char *r = lb_http_response(codes[i], &len);
        ASSERT(r != NULL);
        ASSERT_EQ(strlen(r), len);
        char status[16];
        snprintf(status, sizeof(status), "HTTP/1.1 %d ", codes[i]);
        ASSERT_EQ(0, strncmp(r, status, strlen(status)));
        ASSERT(strstr(r, "\r\nContent-Type: text/plain\r\n") != NULL);
        ASSERT(strstr(r, "\r\nConnection: close\r\n") != NULL);
        const char *body = strstr(r, "\r\n\r\n");
        ASSERT(body != NULL);
        body += 4;
        const char *cl = strstr(r, "\r\nContent-Length: ");
        ASSERT(cl != NULL && cl < body);
        ASSERT_EQ(strlen(body), strtoul(cl + strlen("\r\nContent-Length: "), NULL, 10));
        ASSERT_EQ(0, strncmp(body, "warren-lb: ", 11));
        ASSERT_EQ('\n', body[strlen(body) - 1]);
        ASSERT(strchr(body, '\n') == body + strlen(body) - 1);
    }
    size_t len = 0;
    const char *r = lb_http_response(404, &len);
    ASSERT(strstr(r, "no route for this host") != NULL);
    len = 7;
    ASSERT(lb_http_response(200, &len) == NULL);
    ASSERT_EQ(0, len);
    ASSERT(lb_http_response(502, &len) == NULL);
}

TEST(result_str)
{
    ASSERT_STR_EQ(lb_http_result_str(LB_HTTP_OK), "OK");
    ASSERT_STR_EQ(lb_http_result_str(LB_HTTP_NEED_MORE), "NEED_MORE");
    ASSERT_STR_EQ(lb_http_result_str(LB_HTTP_BAD), "BAD");
    ASSERT_STR_EQ(lb_http_result_str(LB_HTTP_TOO_BIG), "TOO_BIG");
    ASSERT_STR_EQ(lb_http_result_str((enum lb_http_result)42), "?");
}

TEST_MAIN(TEST_ENTRY(simple), TEST_ENTRY(host_with_port_and_spaces), TEST_ENTRY(bad_host_values),
          TEST_ENTRY(absolute_form), TEST_ENTRY(host_count), TEST_ENTRY(http10),
          TEST_ENTRY(smuggling_shapes), TEST_ENTRY(not_http1),
          TEST_ENTRY(body_and_pipelining_not_read), TEST_ENTRY(byte_by_byte), TEST_ENTRY(too_big),
          TEST_ENTRY(empty_input), TEST_ENTRY(responses), TEST_ENTRY(result_str))
