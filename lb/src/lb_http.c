/*
 * lb_http.c: the routing name of an HTTP/1.x request head, read from peeked
 * bytes with http_parser (DESIGN.md: no hand-written HTTP parsing), and the
 * few responses warren-lb writes itself. It does not consume, rewrite or
 * forward anything, and it keeps no state between calls: each call parses
 * the head again from its first byte.
 */
#include "lb_http.h"

#include <stdbool.h>
#include <string.h>

#include <http_parser.h>

#include "lb_int.h"

/* What the parser callbacks collect. Pointers point into the caller's buffer. */
struct lb_http_ctx {
    enum { LB_HTTP_CB_NONE, LB_HTTP_CB_FIELD, LB_HTTP_CB_VALUE } last;
    const char *field; /* the header name being read */
    size_t field_len;
    bool field_is_host;
    const char *url; /* the request target */
    size_t url_len;
    const char *host; /* the value of the one Host header */
    size_t host_len;
    unsigned hosts;     /* Host headers seen */
    const char *defect; /* set by a callback that found the head unacceptable */
    bool complete;      /* on_headers_complete ran */
};

static struct lb_http_ctx *lb_http_ctx(http_parser *p)
{
    return p->data;
}

/* Extends the span <*start, *len> with <at, n>; false if they are not
 * adjacent. One http_parser_execute() over one buffer only splits an
 * element at the end of the data, or where a value was folded. */
static bool lb_http_span_add(const char **start, size_t *len, const char *at, size_t n)
{
    if (*start == NULL) {
        *start = at;
        *len = n;
        return true;
    }
    if (at != *start + *len)
        return false;
    *len += n;
    return true;
}

static int lb_http_on_url(http_parser *p, const char *at, size_t n)
{
    struct lb_http_ctx *c = lb_http_ctx(p);
    if (!lb_http_span_add(&c->url, &c->url_len, at, n))
        c->defect = "split request target";
    return c->defect != NULL;
}

static bool lb_http_token_eq(const char *s, size_t n, const char *lower)
{
    if (n != strlen(lower))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (ch != lower[i])
            return false;
    }
    return true;
}

static int lb_http_on_header_field(http_parser *p, const char *at, size_t n)
{
    struct lb_http_ctx *c = lb_http_ctx(p);
    if (c->last != LB_HTTP_CB_FIELD) {
        c->field = NULL;
        c->field_len = 0;
    }
    c->last = LB_HTTP_CB_FIELD;
    if (!lb_http_span_add(&c->field, &c->field_len, at, n))
        c->defect = "split header name";
    return c->defect != NULL;
}

static int lb_http_on_header_value(http_parser *p, const char *at, size_t n)
{
    struct lb_http_ctx *c = lb_http_ctx(p);
    if (c->last == LB_HTTP_CB_FIELD) {
        /* The name is complete. http_parser lets "Host : x" through, which
         * RFC 9112 §5.1 says to reject: a backend reading it as Host would
         * route differently from us. */
        for (size_t i = 0; i < c->field_len; i++) {
            if (c->field[i] == ' ' || c->field[i] == '\t')
                c->defect = "whitespace in a header name";
        }
        c->field_is_host = lb_http_token_eq(c->field, c->field_len, "host");
        if (c->field_is_host && ++c->hosts > 1)
            c->defect = "two Host headers";
        c->last = LB_HTTP_CB_VALUE;
    }
    /* A Host value in two pieces was folded (obs-fold): refused. */
    if (c->defect == NULL && c->field_is_host && !lb_http_span_add(&c->host, &c->host_len, at, n))
        c->defect = "folded Host header";
    return c->defect != NULL;
}

static int lb_http_on_headers_complete(http_parser *p)
{
    lb_http_ctx(p)->complete = true;
    /* Stop at the end of the head: what follows is not ours to read. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings lb_http_settings = {
    .on_url = lb_http_on_url,
    .on_header_field = lb_http_on_header_field,
    .on_header_value = lb_http_on_header_value,
    .on_headers_complete = lb_http_on_headers_complete,
};

static bool lb_http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool lb_http_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * "host[:port]" (a Host value or the authority of the request target) to the
 * name warren-lb routes on: port dropped, one trailing dot dropped (an FQDN
 * written "example.com."), then lb__name_normalize(). An IPv6 literal keeps
 * its brackets ("[::1]"), lower-cased: only a default route matches it.
 */
static bool lb_http_host_normalize(const char *s, size_t n, char out[LB_HTTP_HOST_MAX + 1])
{
    while (n > 0 && lb_http_is_ows(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && lb_http_is_ows(s[n - 1]))
        n--;

    size_t host_len;
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (end == NULL)
            goto bad;
        host_len = (size_t)(end - s) + 1;
        if (host_len < 4 || host_len > LB_HTTP_HOST_MAX) /* "[::]" at least */
            goto bad;
        for (size_t i = 1; i + 1 < host_len; i++) {
            char c = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
            if (!(lb_http_is_digit(c) || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                goto bad;
            out[i] = c;
        }
        out[0] = '[';
        out[host_len - 1] = ']';
        out[host_len] = '\0';
    } else {
        const char *colon = memchr(s, ':', n);
        host_len = colon != NULL ? (size_t)(colon - s) : n;
        size_t name_len = host_len;
        if (name_len > 1 && s[name_len - 1] == '.')
            name_len--;
        if (!lb__name_normalize(s, name_len, out))
            goto bad;
    }
    /* The port, if any: RFC 3986 allows "host:" with an empty one. */
    if (host_len < n) {
        if (s[host_len] != ':' || n - host_len - 1 > 5)
            goto bad;
        for (size_t i = host_len + 1; i < n; i++) {
            if (!lb_http_is_digit(s[i]))
                goto bad;
        }
    }
    return true;
bad:
    out[0] = '\0';
    return false;
}

/* The authority of an absolute-form (or CONNECT authority-form) target, or
 * an empty span for origin-form and "*". false for a bad target. */
static bool lb_http_target_authority(const struct lb_http_ctx *c, bool is_connect,
                                     const char **auth, size_t *auth_len, const char **why)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    *auth = NULL;
    *auth_len = 0;
    if (c->url == NULL || http_parser_parse_url(c->url, c->url_len, is_connect, &u) != 0) {
        *why = "bad request target";
        return false;
    }
    if (!(u.field_set & (1 << UF_HOST)))
        return true;
    if (u.field_set & (1 << UF_USERINFO)) {
        *why = "userinfo in the request target";
        return false;
    }
    if (u.field_set & (1 << UF_SCHEMA)) {
        const char *scheme = c->url + u.field_data[UF_SCHEMA].off;
        size_t scheme_len = u.field_data[UF_SCHEMA].len;
        if (!lb_http_token_eq(scheme, scheme_len, "http") &&
            !lb_http_token_eq(scheme, scheme_len, "https")) {
            *why = "request target is not an http(s) URI";
            return false;
        }
    }
    /* From the host (with its brackets, if any) to the end of the port. */
    size_t start = u.field_data[UF_HOST].off;
    size_t end = start + u.field_data[UF_HOST].len;
    if (start > 0 && c->url[start - 1] == '[') {
        start--;
        end++;
    }
    if (u.field_set & (1 << UF_PORT))
        end = (size_t)u.field_data[UF_PORT].off + u.field_data[UF_PORT].len;
    if (end > c->url_len || end < start) {
        *why = "bad request target";
        return false;
    }
    *auth = c->url + start;
    *auth_len = end - start;
    return true;
}

enum lb_http_result lb_http_parse_head(const uint8_t *buf, size_t len,
                                       char host[LB_HTTP_HOST_MAX + 1], size_t *head_len,
                                       const char **why)
{
    const char *reason = NULL;
    enum lb_http_result res = LB_HTTP_BAD;
    struct lb_http_ctx c = {0};
    http_parser p;

    host[0] = '\0';
    *head_len = 0;
    if (len > LB_HTTP_HEAD_MAX)
        len = LB_HTTP_HEAD_MAX;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &c;
    size_t parsed = http_parser_execute(&p, &lb_http_settings, (const char *)buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);

    if (c.defect != NULL) {
        reason = c.defect;
        goto out;
    }
    if (!c.complete) {
        if (e == HPE_HEADER_OVERFLOW) {
            res = LB_HTTP_TOO_BIG;
            reason = "request head too big";
        } else if (e != HPE_OK) {
            reason = http_errno_description(e);
        } else if (len == LB_HTTP_HEAD_MAX) {
            res = LB_HTTP_TOO_BIG;
            reason = "no end of request head within the limit";
        } else {
            res = LB_HTTP_NEED_MORE;
            reason = "partial request head";
        }
        goto out;
    }
    /* Paused on the final LF, which http_parser has not counted. */
    if (e != HPE_PAUSED || parsed >= len || buf[parsed] != '\n') {
        reason = "unexpected parser state at the end of the head";
        goto out;
    }
    if (p.http_major != 1) {
        reason = "not HTTP/1.x";
        goto out;
    }
    if (c.hosts == 0) {
        reason = "no Host header";
        goto out;
    }
    const char *auth;
    size_t auth_len;
    if (!lb_http_target_authority(&c, p.method == HTTP_CONNECT, &auth, &auth_len, &reason))
        goto out;
    /* RFC 9112 §3.2.2: a request target with an authority overrides Host,
     * and the backend will follow it, so the route must too. */
    if (auth == NULL) {
        auth = c.host;
        auth_len = c.host_len;
    }
    if (auth == NULL || !lb_http_host_normalize(auth, auth_len, host)) {
        reason = "bad Host";
        goto out;
    }
    *head_len = parsed + 1;
    res = LB_HTTP_OK;
out:
    if (why != NULL && res != LB_HTTP_OK)
        *why = reason;
    return res;
}

const char *lb_http_result_str(enum lb_http_result r)
{
    switch (r) {
    case LB_HTTP_OK:
        return "OK";
    case LB_HTTP_NEED_MORE:
        return "NEED_MORE";
    case LB_HTTP_BAD:
        return "BAD";
    case LB_HTTP_TOO_BIG:
        return "TOO_BIG";
    }
    return "?";
}

/* Written out whole, so that they stay static; test_lb_http checks every
 * Content-Length against its body. */
#define LB_HTTP_RESPONSE(code_reason, body_len, body)                                              \
    "HTTP/1.1 " code_reason "\r\n"                                                                 \
    "Content-Type: text/plain\r\n"                                                                 \
    "Content-Length: " #body_len "\r\n"                                                            \
    "Connection: close\r\n"                                                                        \
    "\r\n" body

static const struct {
    int status;
    const char *text;
} lb_http_responses[] = {
    {400, LB_HTTP_RESPONSE("400 Bad Request", 23, "warren-lb: bad request\n")},
    {404, LB_HTTP_RESPONSE("404 Not Found", 34, "warren-lb: no route for this host\n")},
    {408, LB_HTTP_RESPONSE("408 Request Timeout", 34, "warren-lb: request head timed out\n")},
    {431, LB_HTTP_RESPONSE("431 Request Header Fields Too Large", 32,
                           "warren-lb: request head too big\n")},
    {503, LB_HTTP_RESPONSE("503 Service Unavailable", 44,
                           "warren-lb: no healthy backend for this host\n")},
};

const char *lb_http_response(int status, size_t *len)
{
    for (size_t i = 0; i < sizeof(lb_http_responses) / sizeof(lb_http_responses[0]); i++) {
        if (lb_http_responses[i].status == status) {
            *len = strlen(lb_http_responses[i].text);
            return lb_http_responses[i].text;
        }
    }
    *len = 0;
    return NULL;
}
