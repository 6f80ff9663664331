/* link: nd_lib */
/* Unit tests of the admin API without sockets (node/src/nd_admin.c and
 * nd_admin_api.c): the router, the request session (parsing, limits,
 * keep-alive, pipelining) and the Prometheus text format. */
#include "../../../node/src/nd_int.h"

#include <ctype.h>

#include "test.h"

/* A node with no sockets: enough for the renderers. */
static struct nd_node *test_node_new(void)
{
    struct nd_node *n = wr_xcalloc(1, sizeof(*n));
    nd_config_init(&n->cfg);
    nd__registry_init(&n->reg);
    nd_list_init(&n->tuncs);
    snprintf(n->node_id, sizeof(n->node_id), "n1");
    snprintf(n->cluster, sizeof(n->cluster), "c1");
    snprintf(n->listen_str, sizeof(n->listen_str), "127.0.0.1:7443");
    n->start_ms = wr_now_ms();
    return n;
}

static void test_node_free(struct nd_node *n)
{
    nd__registry_cleanup(&n->reg);
    free(n);
}

/* The output as a NUL-terminated copy, emptied from the session. */
static char *test_take_out(struct nd_admin_sess *s)
{
    struct wr_buf *b = nd__admin_sess_out(s);
    char *t = wr_xmalloc(b->len + 1);
    memcpy(t, b->data + b->off, b->len);
    t[b->len] = '\0';
    wr_buf_consume(b, b->len);
    return t;
}

static ssize_t test_feed(struct nd_admin_sess *s, const char *str)
{
    return nd__admin_sess_feed(s, wr_slice_str(str));
}

TEST(route_paths)
{
    enum nd_admin_route r = ND_ADMIN_R__COUNT;
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/healthz"), &r));
    ASSERT_EQ(ND_ADMIN_R_HEALTHZ, r);
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/metrics?name[]=x"), &r));
    ASSERT_EQ(ND_ADMIN_R_METRICS, r);
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/v1/tunnels"), &r));
    ASSERT_EQ(ND_ADMIN_R_TUNNELS, r);
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/v1/self"), &r));
    ASSERT_EQ(ND_ADMIN_R_SELF, r);
    ASSERT_EQ(405, nd__admin_route(ND_ADMIN_POST, wr_slice_str("/readyz"), &r));
    ASSERT_EQ(404, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/healthzz"), &r));
    ASSERT_EQ(404, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/v1/"), &r));
    ASSERT_EQ(404, nd__admin_route(ND_ADMIN_POST, wr_slice_str("/nope"), &r));
    ASSERT_EQ(404, nd__admin_route(ND_ADMIN_GET, wr_slice_str(""), &r));
    /* The keyring: a GET to list, POSTs to change, and the other way round is 405. */
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/v1/keyring"), &r));
    ASSERT_EQ(ND_ADMIN_R_KEYRING, r);
    ASSERT_EQ(200, nd__admin_route(ND_ADMIN_POST, wr_slice_str("/v1/keyring/install"), &r));
    ASSERT_EQ(ND_ADMIN_R_KEYRING_INSTALL, r);
    ASSERT_EQ(405, nd__admin_route(ND_ADMIN_GET, wr_slice_str("/v1/keyring/remove"), &r));
    ASSERT_EQ(ND_ADMIN_POST, nd__admin_route_method(r));
    ASSERT_EQ(405, nd__admin_route(ND_ADMIN_OTHER, wr_slice_str("/v1/members"), &r));
    ASSERT_EQ(ND_ADMIN_GET, nd__admin_route_method(r));
}

TEST(prom_format_escapes)
{
    struct wr_buf b = {0};
    struct nd_prom p = {.b = &b};
    nd__prom_family(&p, "x_total", "counter", "Help with \\ and\nnewline.");
    const char *l[] = {"k", "a\"b\\c\nd", "k2", "v", NULL};
    nd__prom_sample(&p, "x_total", l, 18446744073709551615ull);
    nd__prom_sample(&p, "x_total", NULL, 0);
    ASSERT_OK(p.err);
    const char want[] = "# HELP x_total Help with \\\\ and\\nnewline.\n"
                        "# TYPE x_total counter\n"
                        "x_total{k=\"a\\\"b\\\\c\\nd\",k2=\"v\"} 18446744073709551615\n"
                        "x_total 0\n";
    ASSERT_EQ(strlen(want), b.len);
    ASSERT_MEM_EQ(want, b.data + b.off, b.len);
    wr_buf_free(&b);
}

static bool test_is_name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* Every sample line is "name{labels} value" and its family has HELP and TYPE
 * lines before it. */
TEST(prom_node_page_is_valid)
{
    struct nd_node *n = test_node_new();
    n->stats.streams_opened = 5;
    nd__node_count_reject(n, ND_REJECT_AUTH);
    struct wr_buf b = {0};
    struct nd_prom p = {.b = &b};
    nd__prom_node(&p, n);
    ASSERT_OK(p.err);
    ASSERT_OK(wr_buf_append(&b, "", 1));
    char *text = (char *)b.data + b.off;
    char help[64][96], type[64][96];
    int nh = 0, nt = 0, samples = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            ASSERT(nh < 64);
            sscanf(line + 7, "%95s", help[nh++]);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char kind[32] = "";
            ASSERT(nt < 64);
            ASSERT_EQ(2, sscanf(line + 7, "%95s %31s", type[nt++], kind));
            ASSERT(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0);
            continue;
        }
        ASSERT(line[0] != '#');
        size_t i = 0;
        ASSERT(test_is_name_char(line[0], true));
        while (test_is_name_char(line[i], false))
            i++;
        char name[96];
        ASSERT(i < sizeof(name));
        memcpy(name, line, i);
        name[i] = '\0';
        if (line[i] == '{') {
            char *close = strchr(line + i, '}');
            ASSERT(close != NULL);
            i = (size_t)(close - line) + 1;
        }
        ASSERT_EQ(' ', line[i]);
        char *end = NULL;
        strtoull(line + i + 1, &end, 10);
        ASSERT(end != line + i + 1 && *end == '\0');
        /* The latest family announced is this sample's. */
        ASSERT(nh > 0 && nt > 0);
        ASSERT_STR_EQ(help[nh - 1], name);
        ASSERT_STR_EQ(type[nt - 1], name);
        samples++;
    }
    ASSERT_EQ(nh, nt);
    ASSERT_GE(samples, 20);
    wr_buf_free(&b);

    /* The values are the node's. */
    struct wr_buf b2 = {0};
    struct nd_prom p2 = {.b = &b2};
    nd__prom_node(&p2, n);
    ASSERT_OK(wr_buf_append(&b2, "", 1));
    ASSERT(strstr((char *)b2.data, "\nwarren_node_streams_opened_total 5\n") != NULL);
    ASSERT(strstr((char *)b2.data, "\nwarren_node_agents_rejected_total{reason=\"auth\"} 1\n") !=
           NULL);
    wr_buf_free(&b2);
    test_node_free(n);
}

TEST(sess_get_keepalive)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(strlen(req), test_feed(s, req));
    ASSERT(!nd__admin_sess_closing(s));
    char *out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT(strstr(out, "Content-Length: 3\r\n") != NULL);
    ASSERT(strstr(out, "Connection: close") == NULL);
    ASSERT(strcmp(out + strlen(out) - 7, "\r\n\r\nok\n") == 0);
    free(out);
    /* The same session serves the next request. */
    ASSERT_EQ(strlen(req), test_feed(s, req));
    out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(out);
    ASSERT_EQ(0, test_feed(s, ""));
    nd__admin_sess_free(s);
    test_node_free(n);
}

/* Two requests in one read: one response per call, in order. */
TEST(sess_pipelined)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    const char one[] = "GET /healthz HTTP/1.1\r\n\r\n";
    const char two[] = "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n";
    char both[128];
    snprintf(both, sizeof(both), "%s%s", one, two);
    ssize_t used = test_feed(s, both);
    ASSERT_EQ(strlen(one), used);
    char *out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(out);
    ASSERT_EQ(strlen(two), test_feed(s, both + used));
    out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    ASSERT(strstr(out, "Connection: close\r\n") != NULL);
    free(out);
    ASSERT(nd__admin_sess_closing(s));
    ASSERT_EQ(0, test_feed(s, one));
    nd__admin_sess_free(s);
    test_node_free(n);
}

/* A request arriving one byte at a time is answered once, at its end. */
TEST(sess_byte_by_byte)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    const char req[] = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
    for (size_t i = 0; i < strlen(req); i++) {
        ASSERT_EQ(0, nd__admin_sess_out(s)->len);
        ASSERT_EQ(1, nd__admin_sess_feed(s, wr_slice_make(req + i, 1)));
    }
    char *out = test_take_out(s);
    /* No admin server and no listener: not ready. */
    ASSERT(strncmp(out, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    free(out);
    ASSERT(!nd__admin_sess_closing(s));
    nd__admin_sess_free(s);
    test_node_free(n);
}

TEST(sess_http10_closes)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    const char req[] = "GET /v1/tunnels HTTP/1.0\r\n\r\n";
    ASSERT_EQ(strlen(req), test_feed(s, req));
    ASSERT(nd__admin_sess_closing(s));
    char *out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", 49) == 0);
    ASSERT(strstr(out, "Connection: close\r\n") != NULL);
    ASSERT(strstr(out, "\"node_id\": \"n1\"") != NULL);
    ASSERT(strstr(out, "\"tunnels\": {}") != NULL);
    free(out);
    nd__admin_sess_free(s);
    test_node_free(n);
}

static void test_expect_error(const char *req, int status, size_t chunk)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    ssize_t r = 0;
    size_t len = strlen(req);
    for (size_t off = 0; off < len && r >= 0; off += chunk) {
        size_t k = len - off < chunk ? len - off : chunk;
        r = nd__admin_sess_feed(s, wr_slice_make(req + off, k));
    }
    ASSERT_EQ(WR_EPROTO, r);
    ASSERT(nd__admin_sess_closing(s));
    char *out = test_take_out(s);
    char want[32];
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    if (strncmp(out, want, strlen(want)) != 0)
        TEST_FAIL("expected %d, got: %.60s", status, out);
    ASSERT(strstr(out, "Connection: close\r\n") != NULL);
    free(out);
    nd__admin_sess_free(s);
    test_node_free(n);
}

TEST(sess_bad_requests)
{
    test_expect_error("FOO BAR BAZ\r\n\r\n", 400, 1000);
    test_expect_error("GET /healthz HTTP/9.9.9\r\n\r\n", 400, 1000);
    test_expect_error("\x01\x02\x03\r\n\r\n", 400, 1);
    test_expect_error("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", 400, 3);
    test_expect_error("POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 413, 1000);
    test_expect_error("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 400,
                      1000);
}

/* A head over 8 KiB is refused with 431, however it is split. */
TEST(sess_head_too_large)
{
    static char req[12000];
    size_t off = (size_t)snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nX-Big: ");
    memset(req + off, 'a', 9000);
    off += 9000;
    snprintf(req + off, sizeof(req) - off, "\r\n\r\n");
    test_expect_error(req, 431, 100000);
    test_expect_error(req, 431, 512);
    test_expect_error(req, 431, 1);
    /* Exactly at the limit is fine. */
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    off = (size_t)snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nX-Big: ");
    size_t pad = ND_ADMIN_HEAD_MAX - off - 4;
    memset(req + off, 'a', pad);
    snprintf(req + off + pad, sizeof(req) - off - pad, "\r\n\r\n");
    ASSERT_EQ(ND_ADMIN_HEAD_MAX, strlen(req));
    ASSERT_EQ(ND_ADMIN_HEAD_MAX, test_feed(s, req));
    char *out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(out);
    nd__admin_sess_free(s);
    test_node_free(n);
}

TEST(sess_uri_too_long)
{
    static char req[ND_ADMIN_URL_MAX + 100];
    size_t off = (size_t)snprintf(req, sizeof(req), "GET /");
    memset(req + off, 'u', ND_ADMIN_URL_MAX);
    snprintf(req + off + ND_ADMIN_URL_MAX, sizeof(req) - off - ND_ADMIN_URL_MAX,
             " HTTP/1.1\r\n\r\n");
    test_expect_error(req, 414, 100000);
}

/* A method other than GET on a known path: 405 with Allow, and the
 * connection stays usable (the request had no body). */
TEST(sess_method_not_allowed)
{
    struct nd_node *n = test_node_new();
    struct nd_admin_sess *s = nd__admin_sess_new(n);
    const char req[] = "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
    ASSERT_EQ(strlen(req), test_feed(s, req));
    char *out = test_take_out(s);
    ASSERT(strncmp(out, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    ASSERT(strstr(out, "Allow: GET\r\n") != NULL);
    free(out);
    ASSERT(!nd__admin_sess_closing(s));
    nd__admin_sess_free(s);
    test_node_free(n);
}

TEST(readyz_follows_drain)
{
    struct nd_node *n = test_node_new();
    ASSERT(!nd__admin_is_ready(n));
    /* Any non-NULL server makes the node "listening" for this check. */
    n->admin = (struct nd_admin *)n;
    ASSERT(nd__admin_is_ready(n));
    struct wr_buf b = {0};
    const char *ctype = NULL;
    ASSERT_EQ(200, nd__admin_render(n, ND_ADMIN_R_READYZ, wr_slice_make(NULL, 0), &b, &ctype));
    n->draining = true;
    ASSERT(!nd__admin_is_ready(n));
    wr_buf_free(&b);
    ASSERT_EQ(503, nd__admin_render(n, ND_ADMIN_R_READYZ, wr_slice_make(NULL, 0), &b, &ctype));
    ASSERT_OK(wr_buf_append(&b, "", 1));
    ASSERT_STR_EQ("draining\n", (char *)b.data + b.off);
    wr_buf_free(&b);
    ASSERT_EQ(200, nd__admin_render(n, ND_ADMIN_R_SELF, wr_slice_make(NULL, 0), &b, &ctype));
    ASSERT_STR_EQ("application/json", ctype);
    ASSERT_OK(wr_buf_append(&b, "", 1));
    ASSERT(strstr((char *)b.data, "\"state\": \"draining\"") != NULL);
    ASSERT(strstr((char *)b.data, "\"cluster\": \"c1\"") != NULL);
    wr_buf_free(&b);
    n->admin = NULL;
    test_node_free(n);
}

TEST_MAIN(TEST_ENTRY(route_paths), TEST_ENTRY(prom_format_escapes),
          TEST_ENTRY(prom_node_page_is_valid), TEST_ENTRY(sess_get_keepalive),
          TEST_ENTRY(sess_pipelined), TEST_ENTRY(sess_byte_by_byte), TEST_ENTRY(sess_http10_closes),
          TEST_ENTRY(sess_bad_requests), TEST_ENTRY(sess_head_too_large),
          TEST_ENTRY(sess_uri_too_long), TEST_ENTRY(sess_method_not_allowed),
          TEST_ENTRY(readyz_follows_drain))
