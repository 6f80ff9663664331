/*
 * test_conn_proxy.c: wr_conn's PROXY protocol option (proxy_from) on
 * 127.0.0.1: a trusted peer's header is read and stripped before anything
 * else (whole, byte by byte, with data behind it, before a TLS ClientHello),
 * its source replaces the peer's address, LOCAL keeps the socket's, and a
 * bad, cut-short or late header fails on_ready with a reason; an untrusted
 * peer's header is plain data. The parser itself is test_proxy.c's.
 */
/* link: wr_tls wr_base */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "test.h"
#include "wr/addr.h"
#include "wr/cert.h"
#include "wr/conn.h"
#include "wr/util.h"

#define CP_RX_MAX 4096

struct cp_fx {
    uv_loop_t loop;
    uv_tcp_t listener;
    bool listener_open;
    struct sockaddr_storage addr;
    struct wr_cidr trust;
    struct wr_conn_opts srv_opts;

    /* The accepting side, under test. */
    struct wr_conn *srv;
    enum wr_conn_proxy at_accept;
    bool ready_called;
    int ready_status;
    enum wr_conn_proxy at_ready;
    const char *why;
    char peer[WR_ADDR_STRLEN];
    char sock_peer[WR_ADDR_STRLEN];
    uint8_t rx[CP_RX_MAX];
    size_t rx_len;
    size_t rx_want;     /* echo, then close once this much came */
    bool stop_in_ready; /* read_stop in on_ready; read_start 20 ms later */
    bool started_late;
    uv_timer_t kick;
    bool kick_open;

    /* The client: a plain (or TLS) wr_conn, writing <script> once ready,
     * <chunk> bytes per 2 ms tick (0: all at once), then half-closing if
     * <shut>. */
    struct wr_conn *cli;
    const uint8_t *script;
    size_t script_len;
    size_t pos;
    size_t chunk;
    bool shut;
    uv_timer_t drip;
    bool drip_open;
    uint8_t cli_rx[CP_RX_MAX];
    size_t cli_rx_len;

    /* An in-loop "load balancer" for the TLS case: accepts the client's TCP
     * connection and relays it to the server behind <prepend> bytes. */
    uv_tcp_t lb;
    bool lb_open;
    struct sockaddr_storage lb_addr;
    struct wr_conn *lb_in, *lb_out;
    const uint8_t *prepend;
    size_t prepend_len;
};

/* ---- the accepting side ---------------------------------------------------------- */

static void cp_on_kick(uv_timer_t *t)
{
    struct cp_fx *fx = t->data;
    fx->started_late = true;
    if (fx->srv != NULL)
        ASSERT_OK(wr_conn_read_start(fx->srv));
}

static void cp_srv_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct cp_fx *fx = arg;
    ASSERT(!fx->ready_called);
    fx->ready_called = true;
    fx->ready_status = status;
    fx->at_ready = wr_conn_get_proxy(c, &fx->why);
    snprintf(fx->peer, sizeof(fx->peer), "%s", wr_conn_peer_str(c));
    snprintf(fx->sock_peer, sizeof(fx->sock_peer), "%s", wr_conn_sock_peer_str(c));
    if (status != 0) {
        wr_conn_close(c, false);
        return;
    }
    if (fx->stop_in_ready) {
        ASSERT_OK(wr_conn_read_stop(c));
        uv_timer_start(&fx->kick, cp_on_kick, 20, 0);
    }
}

static void cp_srv_on_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct cp_fx *fx = arg;
    if (fx->stop_in_ready)
        ASSERT(fx->started_late); /* nothing while stopped */
    ASSERT(fx->rx_len + len <= sizeof(fx->rx));
    memcpy(fx->rx + fx->rx_len, d, len);
    fx->rx_len += len;
    ASSERT_OK(wr_conn_write(c, d, len));
    if (fx->rx_want > 0 && fx->rx_len >= fx->rx_want)
        wr_conn_close(c, true);
}

static void cp_srv_on_eof(struct wr_conn *c, void *arg)
{
    (void)arg;
    wr_conn_close(c, true);
}

static void cp_srv_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)arg;
    (void)err;
    wr_conn_close(c, false);
}

static void cp_srv_on_close(struct wr_conn *c, void *arg)
{
    struct cp_fx *fx = arg;
    ASSERT_PTR_EQ(c, fx->srv);
    fx->srv = NULL;
    if (fx->kick_open) {
        uv_close((uv_handle_t *)&fx->kick, NULL);
        fx->kick_open = false;
    }
}

static const struct wr_conn_cbs cp_srv_cbs = {
    .on_ready = cp_srv_on_ready,
    .on_read = cp_srv_on_read,
    .on_eof = cp_srv_on_eof,
    .on_error = cp_srv_on_error,
    .on_close = cp_srv_on_close,
};

static void cp_on_connection(uv_stream_t *server, int status)
{
    struct cp_fx *fx = server->data;
    ASSERT_OK(status);
    int err = 0;
    fx->srv = wr_conn_accept(server, &fx->srv_opts, &cp_srv_cbs, fx, &err);
    ASSERT(fx->srv != NULL);
    fx->at_accept = wr_conn_get_proxy(fx->srv, NULL);
    uv_close((uv_handle_t *)&fx->listener, NULL);
    fx->listener_open = false;
}

/* ---- the client ------------------------------------------------------------------ */

static void cp_drip_close(struct cp_fx *fx)
{
    if (fx->drip_open) {
        uv_close((uv_handle_t *)&fx->drip, NULL);
        fx->drip_open = false;
    }
}

static void cp_on_drip(uv_timer_t *t)
{
    struct cp_fx *fx = t->data;
    if (fx->cli == NULL) {
        cp_drip_close(fx);
        return;
    }
    size_t n = fx->chunk == 0 ? fx->script_len - fx->pos : fx->chunk;
    if (n > fx->script_len - fx->pos)
        n = fx->script_len - fx->pos;
    if (n > 0 && wr_conn_write(fx->cli, fx->script + fx->pos, n) != 0) {
        cp_drip_close(fx);
        return;
    }
    fx->pos += n;
    if (fx->pos < fx->script_len)
        return;
    cp_drip_close(fx);
    if (fx->shut)
        (void)wr_conn_shutdown(fx->cli);
}

static void cp_cli_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct cp_fx *fx = arg;
    if (status != 0) {
        /* A TLS client whose balancer's header was refused. */
        wr_conn_close(c, false);
        return;
    }
    uv_timer_start(&fx->drip, cp_on_drip, 0, 2);
}

static void cp_cli_on_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct cp_fx *fx = arg;
    (void)c;
    ASSERT(fx->cli_rx_len + len <= sizeof(fx->cli_rx));
    memcpy(fx->cli_rx + fx->cli_rx_len, d, len);
    fx->cli_rx_len += len;
}

static void cp_cli_on_end(struct wr_conn *c, void *arg)
{
    (void)arg;
    wr_conn_close(c, false);
}

static void cp_cli_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)err;
    cp_cli_on_end(c, arg);
}

static void cp_cli_on_close(struct wr_conn *c, void *arg)
{
    struct cp_fx *fx = arg;
    ASSERT_PTR_EQ(c, fx->cli);
    fx->cli = NULL;
    cp_drip_close(fx);
}

static const struct wr_conn_cbs cp_cli_cbs = {
    .on_ready = cp_cli_on_ready,
    .on_read = cp_cli_on_read,
    .on_eof = cp_cli_on_end,
    .on_error = cp_cli_on_error,
    .on_close = cp_cli_on_close,
};

/* ---- fixture ----------------------------------------------------------------------- */

static void cp_fx_init(struct cp_fx *fx, const char *trust)
{
    memset(fx, 0, sizeof(*fx));
    ASSERT_OK(uv_loop_init(&fx->loop));
    ASSERT_OK(wr_cidr_parse(trust, &fx->trust));
    fx->srv_opts.nodelay = true;
    fx->srv_opts.proxy_from = &fx->trust;
    fx->srv_opts.n_proxy_from = 1;
    ASSERT_OK(uv_tcp_init(&fx->loop, &fx->listener));
    fx->listener.data = fx;
    fx->listener_open = true;
    struct sockaddr_storage any;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&fx->listener, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&fx->listener, 16, cp_on_connection));
    int len = sizeof(fx->addr);
    ASSERT_OK(uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&fx->addr, &len));
    ASSERT_OK(uv_timer_init(&fx->loop, &fx->kick));
    fx->kick.data = fx;
    fx->kick_open = true;
    ASSERT_OK(uv_timer_init(&fx->loop, &fx->drip));
    fx->drip.data = fx;
    fx->drip_open = true;
}

static void cp_fx_dial(struct cp_fx *fx, const struct sockaddr_storage *to,
                       const struct wr_conn_opts *o, const char *script, size_t len, size_t chunk)
{
    int err = 0;
    struct wr_conn_opts def = {.nodelay = true};
    fx->script = (const uint8_t *)script;
    fx->script_len = len;
    fx->chunk = chunk;
    fx->cli =
        wr_conn_dial(&fx->loop, (const struct sockaddr *)to, o ? o : &def, &cp_cli_cbs, fx, &err);
    ASSERT(fx->cli != NULL);
}

static void cp_fx_finish(struct cp_fx *fx)
{
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    if (fx->listener_open)
        uv_close((uv_handle_t *)&fx->listener, NULL);
    if (fx->kick_open)
        uv_close((uv_handle_t *)&fx->kick, NULL);
    fx->listener_open = fx->kick_open = false;
    cp_drip_close(fx);
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    ASSERT(fx->srv == NULL);
    ASSERT(fx->cli == NULL);
    ASSERT_EQ(0, uv_loop_close(&fx->loop));
}

static bool cp_is_loopback_port(const char *s)
{
    return strncmp(s, "127.0.0.1:", 10) == 0 && atoi(s + 10) > 0;
}

/* ---- plain connections ------------------------------------------------------------ */

#define CP_V1 "PROXY TCP4 203.0.113.7 192.0.2.1 4242 8050\r\n"

TEST(plain_v1_with_data)
{
    /* Header and data in one segment: the data is delivered after on_ready,
     * without the header. */
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    static const char s[] = CP_V1 "hello";
    fx.rx_want = 5;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.at_accept, WR_CONN_PROXY_WAITING);
    ASSERT(fx.ready_called);
    ASSERT_OK(fx.ready_status);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_OK);
    ASSERT(fx.why == NULL);
    ASSERT_STR_EQ(fx.peer, "203.0.113.7:4242");
    ASSERT(cp_is_loopback_port(fx.sock_peer));
    ASSERT_EQ(fx.rx_len, 5);
    ASSERT_MEM_EQ(fx.rx, "hello", 5);
    ASSERT_EQ(fx.cli_rx_len, 5); /* echoed: writes work once ready */
}

TEST(plain_v2_byte_by_byte)
{
    /* A v2 IPv6 header one byte per loop turn, then data. */
    static const char s[] = "\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24"
                            "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"
                            "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
                            "\x10\x92\x01\xbb"
                            "data";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.1/32");
    fx.rx_want = 4;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 1);
    cp_fx_finish(&fx);
    ASSERT_OK(fx.ready_status);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_OK);
    ASSERT_STR_EQ(fx.peer, "[2001:db8::7]:4242");
    ASSERT_EQ(fx.rx_len, 4);
    ASSERT_MEM_EQ(fx.rx, "data", 4);
}

TEST(plain_local)
{
    static const char s[] = "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
                            "ok";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    fx.rx_want = 2;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_OK(fx.ready_status);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_LOCAL);
    ASSERT(cp_is_loopback_port(fx.peer));
    ASSERT_STR_EQ(fx.peer, fx.sock_peer);
    ASSERT_MEM_EQ(fx.rx, "ok", 2);
}

TEST(plain_read_stopped_in_ready)
{
    /* The owner stops reading in on_ready: what followed the header waits
     * and comes, in order, after read_start. */
    static const char s[] = CP_V1 "first";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    fx.stop_in_ready = true;
    fx.rx_want = 5;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT(fx.started_late);
    ASSERT_EQ(fx.rx_len, 5);
    ASSERT_MEM_EQ(fx.rx, "first", 5);
}

TEST(plain_bad_header)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT(fx.ready_called);
    ASSERT_EQ(fx.ready_status, WR_EPROTO);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_BAD);
    ASSERT_STR_EQ(fx.why, "not a PROXY header");
    ASSERT_EQ(fx.rx_len, 0);
}

TEST(plain_bad_v1_field)
{
    static const char s[] = "PROXY TCP4 203.0.113.7 192.0.2.1 99999 8050\r\nhello";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.ready_status, WR_EPROTO);
    ASSERT(fx.why != NULL && strstr(fx.why, "source port") != NULL);
    ASSERT(cp_is_loopback_port(fx.peer)); /* not replaced */
    ASSERT_EQ(fx.rx_len, 0);
}

TEST(plain_cut_short)
{
    /* Half a header, then FIN. */
    static const char s[] = "PROXY TCP4 203.0.";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    fx.shut = true;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.ready_status, WR_EPROTO);
    ASSERT_STR_EQ(fx.why, "closed before the header");
}

TEST(plain_timeout)
{
    /* Connected, then silence: the deadline fails it. */
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    fx.srv_opts.handshake_timeout_ms = 50;
    uint64_t t0 = wr_now_ms();
    cp_fx_dial(&fx, &fx.addr, NULL, "", 0, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.ready_status, WR_ETIMEDOUT);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_BAD);
    ASSERT_STR_EQ(fx.why, "timeout");
    ASSERT_GE(wr_now_ms() - t0, 45);
}

TEST(plain_untrusted)
{
    /* A peer outside proxy_from: no parsing, the header is data, no on_ready. */
    static const char s[] = CP_V1 "x";
    struct cp_fx fx;
    cp_fx_init(&fx, "10.0.0.0/8");
    fx.rx_want = sizeof(s) - 1;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.at_accept, WR_CONN_PROXY_OFF);
    ASSERT(!fx.ready_called);
    ASSERT_EQ(fx.rx_len, sizeof(s) - 1);
    ASSERT_MEM_EQ(fx.rx, s, sizeof(s) - 1);
}

TEST(plain_off)
{
    /* No proxy_from at all. */
    static const char s[] = "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00";
    struct cp_fx fx;
    cp_fx_init(&fx, "127.0.0.0/8");
    fx.srv_opts.proxy_from = NULL;
    fx.srv_opts.n_proxy_from = 0;
    fx.rx_want = sizeof(s) - 1;
    cp_fx_dial(&fx, &fx.addr, NULL, s, sizeof(s) - 1, 0);
    cp_fx_finish(&fx);
    ASSERT_EQ(fx.at_accept, WR_CONN_PROXY_OFF);
    ASSERT(!fx.ready_called);
    ASSERT_EQ(fx.rx_len, sizeof(s) - 1);
}

/* ---- TLS behind a balancer that prepends a header --------------------------------- */

static void cp_lb_close_both(struct cp_fx *fx)
{
    if (fx->lb_in != NULL)
        wr_conn_close(fx->lb_in, true);
    if (fx->lb_out != NULL)
        wr_conn_close(fx->lb_out, true);
}

static void cp_lb_on_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct cp_fx *fx = arg;
    struct wr_conn *other = c == fx->lb_in ? fx->lb_out : fx->lb_in;
    if (other == NULL || wr_conn_write(other, d, len) != 0)
        cp_lb_close_both(fx);
}

static void cp_lb_on_ready(struct wr_conn *c, int status, void *arg)
{
    (void)c;
    if (status != 0)
        cp_lb_close_both(arg);
}

static void cp_lb_on_end(struct wr_conn *c, void *arg)
{
    (void)c;
    cp_lb_close_both(arg);
}

static void cp_lb_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)err;
    cp_lb_on_end(c, arg);
}

static void cp_lb_on_close(struct wr_conn *c, void *arg)
{
    struct cp_fx *fx = arg;
    if (c == fx->lb_in)
        fx->lb_in = NULL;
    else
        fx->lb_out = NULL;
    cp_lb_close_both(fx);
}

static const struct wr_conn_cbs cp_lb_cbs = {
    .on_ready = cp_lb_on_ready,
    .on_read = cp_lb_on_read,
    .on_eof = cp_lb_on_end,
    .on_error = cp_lb_on_error,
    .on_close = cp_lb_on_close,
};

static void cp_lb_on_connection(uv_stream_t *server, int status)
{
    struct cp_fx *fx = server->data;
    ASSERT_OK(status);
    struct wr_conn_opts o = {.nodelay = true};
    int err = 0;
    fx->lb_in = wr_conn_accept(server, &o, &cp_lb_cbs, fx, &err);
    ASSERT(fx->lb_in != NULL);
    fx->lb_out =
        wr_conn_dial(&fx->loop, (const struct sockaddr *)&fx->addr, &o, &cp_lb_cbs, fx, &err);
    ASSERT(fx->lb_out != NULL);
    /* Queued until connected: the header goes first. */
    ASSERT_OK(wr_conn_write(fx->lb_out, fx->prepend, fx->prepend_len));
    uv_close((uv_handle_t *)&fx->lb, NULL);
    fx->lb_open = false;
}

struct cp_pki {
    char dir[64];
    char ca_crt[128], ca_key[128], crt[128], key[128];
};

static void cp_pki_make(struct cp_pki *p)
{
    snprintf(p->dir, sizeof(p->dir), "/tmp/wr_test_cproxy.XXXXXX");
    ASSERT(mkdtemp(p->dir) != NULL);
    snprintf(p->ca_crt, sizeof(p->ca_crt), "%s/ca.crt", p->dir);
    snprintf(p->ca_key, sizeof(p->ca_key), "%s/ca.key", p->dir);
    snprintf(p->crt, sizeof(p->crt), "%s/node.crt", p->dir);
    snprintf(p->key, sizeof(p->key), "%s/node.key", p->dir);
    ASSERT_OK(wr_cert_ca_init(p->dir, "test-cluster", 30));
    ASSERT_OK(wr_cert_issue(p->ca_crt, p->ca_key, "node-1", 30, p->crt, p->key));
}

static void cp_pki_free(struct cp_pki *p)
{
    unlink(p->ca_crt);
    unlink(p->ca_key);
    unlink(p->crt);
    unlink(p->key);
    rmdir(p->dir);
}

static void cp_tls_case(const char *prepend, size_t prepend_len, struct cp_fx *fx)
{
    struct cp_pki pki;
    cp_pki_make(&pki);
    int err = 0;
    struct wr_tls_ctx *srv_tls = wr_tls_ctx_new_server(pki.crt, pki.key, &err);
    ASSERT(srv_tls != NULL);
    struct wr_tls_ctx *cli_tls = wr_tls_ctx_new_client(pki.ca_crt, &err);
    ASSERT(cli_tls != NULL);
    cp_fx_init(fx, "127.0.0.0/8");
    fx->srv_opts.tls = srv_tls;
    fx->rx_want = 4;
    fx->prepend = (const uint8_t *)prepend;
    fx->prepend_len = prepend_len;
    ASSERT_OK(uv_tcp_init(&fx->loop, &fx->lb));
    fx->lb.data = fx;
    fx->lb_open = true;
    struct sockaddr_storage any;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&fx->lb, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&fx->lb, 16, cp_lb_on_connection));
    int len = sizeof(fx->lb_addr);
    ASSERT_OK(uv_tcp_getsockname(&fx->lb, (struct sockaddr *)&fx->lb_addr, &len));
    struct wr_conn_opts co = {.tls = cli_tls, .sni = "test-cluster", .nodelay = true};
    cp_fx_dial(fx, &fx->lb_addr, &co, "ping", 4, 0);
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    if (fx->lb_open)
        uv_close((uv_handle_t *)&fx->lb, NULL);
    fx->lb_open = false;
    ASSERT(fx->lb_in == NULL && fx->lb_out == NULL);
    cp_fx_finish(fx);
    wr_tls_ctx_free(srv_tls);
    wr_tls_ctx_free(cli_tls);
    cp_pki_free(&pki);
}

TEST(tls_behind_v2)
{
    /* The header precedes the ClientHello; the handshake runs on what
     * follows it, and the peer is the header's client. */
    static const char hdr[] = "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"
                              "\xcb\x00\x71\x07\xc0\x00\x02\x01\x10\x92\x1d\x13";
    struct cp_fx fx;
    cp_tls_case(hdr, sizeof(hdr) - 1, &fx);
    ASSERT_EQ(fx.at_accept, WR_CONN_PROXY_WAITING);
    ASSERT_OK(fx.ready_status);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_OK);
    ASSERT_STR_EQ(fx.peer, "203.0.113.7:4242");
    ASSERT(cp_is_loopback_port(fx.sock_peer));
    ASSERT_EQ(fx.rx_len, 4);
    ASSERT_MEM_EQ(fx.rx, "ping", 4);
    ASSERT_EQ(fx.cli_rx_len, 4);
}

TEST(tls_behind_v1_local)
{
    static const char hdr[] = "PROXY UNKNOWN\r\n";
    struct cp_fx fx;
    cp_tls_case(hdr, sizeof(hdr) - 1, &fx);
    ASSERT_OK(fx.ready_status);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_LOCAL);
    ASSERT_STR_EQ(fx.peer, fx.sock_peer);
    ASSERT_MEM_EQ(fx.rx, "ping", 4);
}

TEST(tls_without_header)
{
    /* A trusted peer that starts the handshake straight away: the
     * ClientHello is not a PROXY header. */
    struct cp_fx fx;
    cp_tls_case("", 0, &fx);
    ASSERT_EQ(fx.ready_status, WR_EPROTO);
    ASSERT_EQ(fx.at_ready, WR_CONN_PROXY_BAD);
    ASSERT_STR_EQ(fx.why, "not a PROXY header");
    ASSERT_EQ(fx.rx_len, 0);
}

TEST_MAIN(TEST_ENTRY(plain_v1_with_data), TEST_ENTRY(plain_v2_byte_by_byte),
          TEST_ENTRY(plain_local), TEST_ENTRY(plain_read_stopped_in_ready),
          TEST_ENTRY(plain_bad_header), TEST_ENTRY(plain_bad_v1_field), TEST_ENTRY(plain_cut_short),
          TEST_ENTRY(plain_timeout), TEST_ENTRY(plain_untrusted), TEST_ENTRY(plain_off),
          TEST_ENTRY(tls_behind_v2), TEST_ENTRY(tls_behind_v1_local),
          TEST_ENTRY(tls_without_header))
