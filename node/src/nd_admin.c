/*
 * nd_admin.c: the admin API's HTTP/1.1 server on the node's loop: listener,
 * bounded plain connections (wr_conn) with keep-alive, and the socket-free
 * session (http_parser) that turns bytes into responses. What each endpoint
 * answers lives in nd_admin_api.c. Limits: head <= ND_ADMIN_HEAD_MAX, at most
 * ND_ADMIN_MAX_CONNS connections, each request within ND_ADMIN_TIMEOUT_MS of
 * the previous one, and no reading from a client that does not read.
 */
#include "nd_int.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

/* ---- the session: bytes in, responses out (no I/O) ------------------------------- */

struct nd_admin_sess {
    http_parser parser;
    struct nd_node *node;
    struct wr_buf out;
    char url[ND_ADMIN_URL_MAX];
    size_t url_len;
    size_t head_len;   /* bytes of the current request head seen so far */
    uint64_t body_len; /* bytes of the current body seen so far */
    char body[ND_ADMIN_BODY_MAX];
    int reject;        /* non-zero: the status to answer, then close */
    bool headers_done; /* the current request's head is complete */
    bool message_done; /* a response was queued by the last execute */
    bool closing;
};

static const char *nd_admin_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Queues a response with <body>. <close> adds "Connection: close" and makes
 * the session stop parsing. */
static void nd_admin_sess_respond(struct nd_admin_sess *s, int status, const char *ctype,
                                  struct wr_slice body, bool close, const char *allow)
{
    int err = nd__buf_printf(&s->out,
                             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                             "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                             status, nd_admin_reason(status), ctype, body.len,
                             allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "",
                             close ? "Connection: close\r\n" : "");
    if (err == 0 && body.len > 0)
        err = wr_buf_append(&s->out, body.ptr, body.len);
    if (err != 0 || close)
        s->closing = true;
}

static void nd_admin_sess_error(struct nd_admin_sess *s, int status)
{
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "%s\n", nd_admin_reason(status));
    nd_admin_sess_respond(s, status, "text/plain; charset=utf-8", wr_slice_make(msg, (size_t)len),
                          true, NULL);
}

static int nd_admin_on_message_begin(http_parser *p)
{
    struct nd_admin_sess *s = p->data;
    s->url_len = 0;
    s->body_len = 0;
    s->reject = 0;
    return 0;
}

static int nd_admin_on_url(http_parser *p, const char *at, size_t len)
{
    struct nd_admin_sess *s = p->data;
    if (len > sizeof(s->url) - s->url_len) {
        s->reject = 414;
        return 0;
    }
    memcpy(s->url + s->url_len, at, len);
    s->url_len += len;
    return 0;
}

static int nd_admin_on_headers_complete(http_parser *p)
{
    struct nd_admin_sess *s = p->data;
    s->headers_done = true;
    /* Known too big before reading it: answer now rather than swallow it. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > ND_ADMIN_BODY_MAX)
        s->reject = 413;
    /* Pause so that the caller counts exactly the head's bytes. */
    http_parser_pause(p, 1);
    return 0;
}

static int nd_admin_on_body(http_parser *p, const char *at, size_t len)
{
    struct nd_admin_sess *s = p->data;
    if (len > ND_ADMIN_BODY_MAX - s->body_len) {
        s->reject = 413;
        http_parser_pause(p, 1);
        return 0;
    }
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
    return 0;
}

static int nd_admin_on_message_complete(http_parser *p)
{
    struct nd_admin_sess *s = p->data;
    s->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings nd_admin_parser_settings = {
    .on_message_begin = nd_admin_on_message_begin,
    .on_url = nd_admin_on_url,
    .on_headers_complete = nd_admin_on_headers_complete,
    .on_body = nd_admin_on_body,
    .on_message_complete = nd_admin_on_message_complete,
};

struct nd_admin_sess *nd__admin_sess_new(struct nd_node *n)
{
    struct nd_admin_sess *s = wr_xcalloc(1, sizeof(*s));
    s->node = n;
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    return s;
}

void nd__admin_sess_free(struct nd_admin_sess *s)
{
    if (s == NULL)
        return;
    wr_buf_free(&s->out);
    free(s);
}

struct wr_buf *nd__admin_sess_out(struct nd_admin_sess *s)
{
    return &s->out;
}

bool nd__admin_sess_closing(const struct nd_admin_sess *s)
{
    return s->closing;
}

/* The request is complete: route, render, queue the response. */
static void nd_admin_sess_answer(struct nd_admin_sess *s)
{
    http_parser *p = &s->parser;
    bool keep = http_should_keep_alive(p) != 0;
    enum nd_admin_route route = ND_ADMIN_R__COUNT;
    enum nd_admin_method method = p->method == HTTP_GET    ? ND_ADMIN_GET
                                  : p->method == HTTP_POST ? ND_ADMIN_POST
                                                           : ND_ADMIN_OTHER;
    int status = nd__admin_route(method, wr_slice_make(s->url, s->url_len), &route);
    if (status != 200) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "%s\n", nd_admin_reason(status));
        const char *allow = NULL;
        if (status == 405)
            allow = nd__admin_route_method(route) == ND_ADMIN_POST ? "POST" : "GET";
        nd_admin_sess_respond(s, status, "text/plain; charset=utf-8",
                              wr_slice_make(msg, (size_t)len), !keep, allow);
        return;
    }
    struct wr_buf body = {0};
    const char *ctype = NULL;
    status = nd__admin_render(s->node, route, wr_slice_make(s->body, (size_t)s->body_len), &body,
                              &ctype);
    /* A keyring request carries a key: keep no copy. */
    wr_memzero(s->body, (size_t)s->body_len);
    nd_admin_sess_respond(s, status, ctype, wr_buf_peek(&body), !keep, NULL);
    wr_buf_free(&body);
}

ssize_t nd__admin_sess_feed(struct nd_admin_sess *s, struct wr_slice in)
{
    size_t used = 0;
    while (used < in.len && !s->closing) {
        bool in_head = !s->headers_done;
        s->message_done = false;
        size_t n = http_parser_execute(&s->parser, &nd_admin_parser_settings,
                                       (const char *)in.ptr + used, in.len - used);
        enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
        used += n;
        if (in_head) {
            s->head_len += n;
            if (s->head_len > ND_ADMIN_HEAD_MAX) {
                nd_admin_sess_error(s, 431);
                return WR_EPROTO;
            }
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&s->parser, 0);
        } else if (e != HPE_OK) {
            WR_DEBUG("node", "admin_bad_request", "err=%s", http_errno_name(e));
            nd_admin_sess_error(s, 400);
            return WR_EPROTO;
        } else if (n == 0) {
            nd_admin_sess_error(s, 400); /* no progress and no error: give up */
            return WR_EPROTO;
        }
        /* Upgrade (WebSocket, h2c) is not for us, and the parser would stop
         * reading HTTP after it. */
        if (s->parser.upgrade)
            s->reject = 400;
        if (s->reject != 0) {
            nd_admin_sess_error(s, s->reject);
            return WR_EPROTO;
        }
        if (s->message_done) {
            s->message_done = false;
            s->headers_done = false;
            s->head_len = 0;
            nd_admin_sess_answer(s);
            break; /* one request per call: the caller applies backpressure */
        }
    }
    return (ssize_t)used;
}

/* ---- the server ---------------------------------------------------------------- */

struct nd_admin {
    struct nd_node *node;
    uv_tcp_t listener;
    uv_timer_t timer; /* deadlines of the connections; runs while any exists */
    struct nd_list conns;
    uint32_t n_conns;
    int pending_closes;
    bool closing;
};

struct nd_admin_conn {
    struct nd_list link; /* in admin->conns */
    struct nd_admin *admin;
    struct wr_conn *conn;
    struct nd_admin_sess *sess;
    struct wr_buf stash; /* input held back while the client is not reading */
    uint64_t deadline_ms;
    bool eof;
    bool closing;
};

static void nd_admin_conn_close(struct nd_admin_conn *ac, bool flush)
{
    if (ac->closing)
        return;
    ac->closing = true;
    wr_conn_close(ac->conn, flush);
}

/* Hands the session's output to the socket. False when the connection closed. */
static bool nd_admin_conn_flush(struct nd_admin_conn *ac)
{
    struct wr_buf *out = nd__admin_sess_out(ac->sess);
    if (out->len > 0) {
        int err = wr_conn_write(ac->conn, out->data + out->off, out->len);
        wr_buf_consume(out, out->len);
        if (err != 0) {
            nd_admin_conn_close(ac, false);
            return false;
        }
    }
    if (nd__admin_sess_closing(ac->sess)) {
        nd_admin_conn_close(ac, true);
        return false;
    }
    return true;
}

/* Feeds <in> one request at a time; keeps what is left in the stash when the
 * client has too much unread output. Returns the bytes consumed. */
static size_t nd_admin_conn_process(struct nd_admin_conn *ac, struct wr_slice in)
{
    size_t used = 0;
    while (used < in.len && !ac->closing) {
        if (wr_conn_write_queued(ac->conn) > ND_ADMIN_OUT_HIGH)
            break;
        ssize_t n = nd__admin_sess_feed(ac->sess, wr_slice_adv(in, used));
        if (n > 0)
            used += (size_t)n;
        if (n > 0 && !nd__admin_sess_closing(ac->sess))
            ac->deadline_ms = wr_now_ms() + ND_ADMIN_TIMEOUT_MS;
        if (!nd_admin_conn_flush(ac) || n <= 0)
            return in.len;
    }
    return used;
}

static void nd_admin_conn_after_input(struct nd_admin_conn *ac)
{
    if (ac->closing)
        return;
    if (ac->stash.len > 0) {
        if (wr_conn_read_stop(ac->conn) != 0)
            nd_admin_conn_close(ac, false);
        return;
    }
    if (ac->eof)
        nd_admin_conn_close(ac, true); /* answers queued so far are sent first */
}

static void nd_admin_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct nd_admin_conn *ac = arg;
    (void)c;
    if (ac->closing)
        return;
    struct wr_slice in = wr_slice_make(data, len);
    size_t used = ac->stash.len == 0 ? nd_admin_conn_process(ac, in) : 0;
    if (used < len && !ac->closing) {
        /* At most one read's worth: reading stops right after. */
        if (wr_buf_append(&ac->stash, data + used, len - used) != 0) {
            nd_admin_conn_close(ac, false);
            return;
        }
    }
    nd_admin_conn_after_input(ac);
}

/* The client took its responses: go on with what it sent meanwhile. */
static void nd_admin_on_drain(struct wr_conn *c, void *arg)
{
    struct nd_admin_conn *ac = arg;
    (void)c;
    if (ac->closing || ac->stash.len == 0)
        return;
    size_t used = nd_admin_conn_process(ac, wr_buf_peek(&ac->stash));
    if (ac->closing)
        return;
    wr_buf_consume(&ac->stash, used);
    if (ac->stash.len == 0) {
        wr_buf_free(&ac->stash);
        if (!ac->eof && wr_conn_read_start(ac->conn) != 0) {
            nd_admin_conn_close(ac, false);
            return;
        }
    }
    nd_admin_conn_after_input(ac);
}

static void nd_admin_on_eof(struct wr_conn *c, void *arg)
{
    struct nd_admin_conn *ac = arg;
    (void)c;
    ac->eof = true;
    nd_admin_conn_after_input(ac);
}

static void nd_admin_on_error(struct wr_conn *c, int err, void *arg)
{
    struct nd_admin_conn *ac = arg;
    (void)c;
    WR_DEBUG("node", "admin_conn_error", "err=%s", wr_err_name(err));
    nd_admin_conn_close(ac, false);
}

static void nd_admin_on_close(struct wr_conn *c, void *arg)
{
    struct nd_admin_conn *ac = arg;
    (void)c;
    struct nd_admin *a = ac->admin;
    nd_list_remove(&ac->link);
    a->n_conns--;
    if (a->n_conns == 0 && !a->closing)
        uv_timer_stop(&a->timer);
    nd__admin_sess_free(ac->sess);
    wr_buf_free(&ac->stash);
    free(ac);
}

static const struct wr_conn_cbs nd_admin_conn_cbs = {
    .on_read = nd_admin_on_read,
    .on_eof = nd_admin_on_eof,
    .on_error = nd_admin_on_error,
    .on_drain = nd_admin_on_drain,
    .on_close = nd_admin_on_close,
};

static void nd_admin_on_refused_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs nd_admin_refused_cbs = {
    .on_close = nd_admin_on_refused_close,
};

/* Closes connections past their deadline (slow or idle clients). */
static void nd_admin_on_timer(uv_timer_t *timer)
{
    struct nd_admin *a = timer->data;
    uint64_t now = wr_now_ms();
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &a->conns)
    {
        struct nd_admin_conn *ac = wr_container_of(pos, struct nd_admin_conn, link);
        if (!ac->closing && now >= ac->deadline_ms) {
            WR_DEBUG("node", "admin_timeout", "peer=%s", wr_conn_peer_str(ac->conn));
            nd_admin_conn_close(ac, false);
        }
    }
}

static void nd_admin_on_connection(uv_stream_t *server, int status)
{
    struct nd_admin *a = server->data;
    if (status < 0) {
        WR_WARN("node", "admin_accept_failed", "err=%s", wr_err_name(status));
        return;
    }
    struct wr_conn_opts opts = {.nodelay = true, .max_queue = 64u << 20};
    int err = 0;
    if (a->n_conns >= ND_ADMIN_MAX_CONNS) {
        struct wr_conn *c = wr_conn_accept(server, &opts, &nd_admin_refused_cbs, NULL, &err);
        if (c != NULL) {
            WR_WARN("node", "admin_refused", "peer=%s reason=max_conns max=%d", wr_conn_peer_str(c),
                    ND_ADMIN_MAX_CONNS);
            wr_conn_close(c, false);
        }
        return;
    }
    struct nd_admin_conn *ac = wr_xcalloc(1, sizeof(*ac));
    ac->conn = wr_conn_accept(server, &opts, &nd_admin_conn_cbs, ac, &err);
    if (ac->conn == NULL) {
        WR_WARN("node", "admin_accept_failed", "err=%s", wr_err_name(err));
        free(ac);
        return;
    }
    ac->admin = a;
    ac->sess = nd__admin_sess_new(a->node);
    ac->deadline_ms = wr_now_ms() + ND_ADMIN_TIMEOUT_MS;
    nd_list_insert_tail(&a->conns, &ac->link);
    if (a->n_conns++ == 0)
        uv_timer_start(&a->timer, nd_admin_on_timer, 1000, 1000);
}

static void nd_admin_on_handle_close(uv_handle_t *h)
{
    struct nd_admin *a = h->data;
    a->pending_closes--;
}

int nd__admin_start(struct nd_node *n, char *addr_out)
{
    struct nd_admin *a = wr_xcalloc(1, sizeof(*a));
    a->node = n;
    nd_list_init(&a->conns);
    n->admin = a;
    uv_timer_init(n->loop, &a->timer);
    a->timer.data = a;
    uv_tcp_init(n->loop, &a->listener);
    a->listener.data = a;
    a->pending_closes = 2;
    int err = uv_tcp_bind(&a->listener, (const struct sockaddr *)&n->cfg.admin_addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&a->listener, 128, nd_admin_on_connection);
    if (err != 0)
        return err; /* nd__admin_stop closes both handles */
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&a->listener, (struct sockaddr *)&ss, &len);
    wr_addr_str((struct sockaddr *)&ss, addr_out, WR_ADDR_STRLEN);
    return 0;
}

void nd__admin_stop(struct nd_node *n)
{
    struct nd_admin *a = n->admin;
    if (a == NULL || a->closing)
        return;
    a->closing = true;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, nd_admin_on_handle_close);
    uv_close((uv_handle_t *)&a->listener, nd_admin_on_handle_close);
    struct nd_list *pos, *tmp;
    nd_list_for_each_safe(pos, tmp, &a->conns)
    {
        nd_admin_conn_close(wr_container_of(pos, struct nd_admin_conn, link), false);
    }
}

void nd__admin_free(struct nd_node *n)
{
    struct nd_admin *a = n->admin;
    if (a == NULL)
        return;
    WR_ASSERT(a->pending_closes == 0 && a->n_conns == 0);
    n->admin = NULL;
    free(a);
}
