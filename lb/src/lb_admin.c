/*
 * lb_admin.c: warren-lb's admin API server: a loopback HTTP/1.1 listener,
 * bounded plain connections (wr_conn) with keep-alive, requests parsed by
 * http_parser as node/src/nd_admin.c does. GET only. What each path answers
 * is lb_admin_api.c's. Limits: head <= LB_ADMIN_HEAD_MAX, at most
 * LB_ADMIN_MAX_CONNS connections, each request within LB_ADMIN_TIMEOUT_MS of
 * the previous one, and a bounded output queue per connection.
 */
#include "lb_core.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LB_ADMIN_URL_MAX 512
#define LB_ADMIN_OUT_MAX (4u << 20) /* a client that does not read is closed past this */

struct lb_admin {
    struct lb *lb;
    uv_tcp_t listener;
    uv_timer_t timer; /* idle and slow-request deadlines */
    struct lb_list conns;
    uint32_t n_conns;
    int pending_closes;
    bool closing;
};

struct lb_admin_conn {
    struct lb_list link;
    struct lb_admin *admin;
    struct wr_conn *conn;
    http_parser parser;
    char url[LB_ADMIN_URL_MAX];
    size_t url_len;
    size_t head_len;
    uint64_t deadline_ms;
    int reject;        /* non-zero: answer this status, then close */
    bool headers_done; /* the current request's head is complete */
    bool message_done; /* the current request is complete */
    bool closing;
};

static const char *lb_admin_reason(int status)
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
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void lb_admin_conn_close(struct lb_admin_conn *ac, bool flush)
{
    if (ac->closing)
        return;
    ac->closing = true;
    wr_conn_close(ac->conn, flush);
}

static void lb_admin_respond(struct lb_admin_conn *ac, int status, const char *ctype,
                             struct wr_slice body, bool close)
{
    struct wr_buf out = {0};
    int err =
        lb__buf_printf(&out,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Cache-Control: no-store\r\n%s%s\r\n",
                       status, lb_admin_reason(status), ctype, body.len,
                       status == 405 ? "Allow: GET\r\n" : "", close ? "Connection: close\r\n" : "");
    if (err == 0 && body.len > 0)
        err = wr_buf_append(&out, body.ptr, body.len);
    if (err == 0)
        err = wr_conn_write(ac->conn, out.data + out.off, out.len);
    wr_buf_free(&out);
    if (err != 0)
        lb_admin_conn_close(ac, false);
    else if (close)
        lb_admin_conn_close(ac, true);
}

static void lb_admin_error(struct lb_admin_conn *ac, int status)
{
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "%s\n", lb_admin_reason(status));
    lb_admin_respond(ac, status, "text/plain; charset=utf-8", wr_slice_make(msg, (size_t)len),
                     true);
}

static int lb_admin_on_message_begin(http_parser *p)
{
    struct lb_admin_conn *ac = p->data;
    ac->url_len = 0;
    ac->reject = 0;
    return 0;
}

static int lb_admin_on_url(http_parser *p, const char *at, size_t len)
{
    struct lb_admin_conn *ac = p->data;
    if (len > sizeof(ac->url) - ac->url_len) {
        ac->reject = 414;
        return 0;
    }
    memcpy(ac->url + ac->url_len, at, len);
    ac->url_len += len;
    return 0;
}

static int lb_admin_on_headers_complete(http_parser *p)
{
    struct lb_admin_conn *ac = p->data;
    ac->headers_done = true;
    return 0;
}

static int lb_admin_on_message_complete(http_parser *p)
{
    struct lb_admin_conn *ac = p->data;
    ac->message_done = true;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings lb_admin_settings = {
    .on_message_begin = lb_admin_on_message_begin,
    .on_url = lb_admin_on_url,
    .on_headers_complete = lb_admin_on_headers_complete,
    .on_message_complete = lb_admin_on_message_complete,
};

static void lb_admin_answer(struct lb_admin_conn *ac)
{
    http_parser *p = &ac->parser;
    bool keep = http_should_keep_alive(p) != 0;
    if (p->method != HTTP_GET) {
        lb_admin_error(ac, 405);
        return;
    }
    struct wr_buf body = {0};
    const char *ctype = "text/plain; charset=utf-8";
    int status =
        lb__admin_render(ac->admin->lb, wr_slice_make(ac->url, ac->url_len), &body, &ctype);
    if (status == 404) {
        wr_buf_free(&body);
        if (lb__buf_printf(&body, "%s\n", lb_admin_reason(status)) != 0)
            status = 500;
    }
    lb_admin_respond(ac, status, ctype, wr_buf_peek(&body), !keep);
    wr_buf_free(&body);
}

static void lb_admin_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct lb_admin_conn *ac = arg;
    (void)c;
    size_t used = 0;
    while (used < len && !ac->closing) {
        bool in_head = !ac->headers_done;
        ac->message_done = false;
        size_t n = http_parser_execute(&ac->parser, &lb_admin_settings, (const char *)data + used,
                                       len - used);
        enum http_errno e = HTTP_PARSER_ERRNO(&ac->parser);
        used += n;
        if (in_head) {
            ac->head_len += n;
            if (ac->head_len > LB_ADMIN_HEAD_MAX) {
                lb_admin_error(ac, 431);
                return;
            }
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&ac->parser, 0);
        } else if (e != HPE_OK || n == 0 || ac->parser.upgrade) {
            lb_admin_error(ac, 400);
            return;
        }
        if (ac->reject != 0) {
            lb_admin_error(ac, ac->reject);
            return;
        }
        if (ac->message_done) {
            ac->headers_done = false;
            ac->head_len = 0;
            ac->deadline_ms = wr_now_ms() + LB_ADMIN_TIMEOUT_MS;
            lb_admin_answer(ac);
        }
    }
}

static void lb_admin_on_eof(struct wr_conn *c, void *arg)
{
    (void)c;
    lb_admin_conn_close(arg, true);
}

static void lb_admin_on_error(struct wr_conn *c, int err, void *arg)
{
    (void)c;
    (void)err;
    lb_admin_conn_close(arg, false);
}

static void lb_admin_on_close(struct wr_conn *c, void *arg)
{
    struct lb_admin_conn *ac = arg;
    struct lb_admin *a = ac->admin;
    (void)c;
    lb_list_remove(&ac->link);
    a->n_conns--;
    free(ac);
}

static const struct wr_conn_cbs lb_admin_conn_cbs = {
    .on_read = lb_admin_on_read,
    .on_eof = lb_admin_on_eof,
    .on_error = lb_admin_on_error,
    .on_close = lb_admin_on_close,
};

static void lb_admin_on_refused_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs lb_admin_refused_cbs = {
    .on_close = lb_admin_on_refused_close,
};

static void lb_admin_on_timer(uv_timer_t *t)
{
    struct lb_admin *a = t->data;
    uint64_t now = wr_now_ms();
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &a->conns)
    {
        struct lb_admin_conn *ac = wr_container_of(pos, struct lb_admin_conn, link);
        if (now >= ac->deadline_ms)
            lb_admin_conn_close(ac, false);
    }
}

static void lb_admin_on_connection(uv_stream_t *server, int status)
{
    struct lb_admin *a = server->data;
    if (status < 0)
        return;
    struct wr_conn_opts opts = {.nodelay = true, .max_queue = LB_ADMIN_OUT_MAX};
    int err = 0;
    if (a->n_conns >= LB_ADMIN_MAX_CONNS) {
        struct wr_conn *c = wr_conn_accept(server, &opts, &lb_admin_refused_cbs, NULL, &err);
        if (c != NULL) {
            WR_WARN("lb", "admin_refused", "peer=%s reason=max_conns max=%d", wr_conn_peer_str(c),
                    LB_ADMIN_MAX_CONNS);
            wr_conn_close(c, false);
        }
        return;
    }
    struct lb_admin_conn *ac = wr_xcalloc(1, sizeof(*ac));
    ac->conn = wr_conn_accept(server, &opts, &lb_admin_conn_cbs, ac, &err);
    if (ac->conn == NULL) {
        WR_WARN("lb", "admin_accept_failed", "err=%s", wr_err_name(err));
        free(ac);
        return;
    }
    ac->admin = a;
    http_parser_init(&ac->parser, HTTP_REQUEST);
    ac->parser.data = ac;
    ac->deadline_ms = wr_now_ms() + LB_ADMIN_TIMEOUT_MS;
    lb_list_insert_tail(&a->conns, &ac->link);
    a->n_conns++;
}

static void lb_admin_on_handle_close(uv_handle_t *h)
{
    struct lb_admin *a = h->data;
    a->pending_closes--;
}

int lb__admin_start(struct lb *lb, char *addr_out)
{
    struct lb_admin *a = wr_xcalloc(1, sizeof(*a));
    a->lb = lb;
    lb_list_init(&a->conns);
    lb->admin = a;
    uv_timer_init(lb->loop, &a->timer);
    a->timer.data = a;
    uv_tcp_init(lb->loop, &a->listener);
    a->listener.data = a;
    a->pending_closes = 2;
    int err = uv_tcp_bind(&a->listener, (const struct sockaddr *)&lb->cfg.admin_addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&a->listener, 128, lb_admin_on_connection);
    if (err != 0)
        return err; /* lb__admin_stop closes both handles */
    uv_timer_start(&a->timer, lb_admin_on_timer, 1000, 1000);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&a->listener, (struct sockaddr *)&ss, &len);
    wr_addr_str((struct sockaddr *)&ss, addr_out, WR_ADDR_STRLEN);
    return 0;
}

void lb__admin_stop(struct lb *lb)
{
    struct lb_admin *a = lb->admin;
    if (a == NULL || a->closing)
        return;
    a->closing = true;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, lb_admin_on_handle_close);
    uv_close((uv_handle_t *)&a->listener, lb_admin_on_handle_close);
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &a->conns)
    {
        lb_admin_conn_close(wr_container_of(pos, struct lb_admin_conn, link), false);
    }
}

void lb__admin_free(struct lb *lb)
{
    struct lb_admin *a = lb->admin;
    if (a == NULL)
        return;
    WR_ASSERT(a->pending_closes == 0 && a->n_conns == 0);
    lb->admin = NULL;
    free(a);
}
