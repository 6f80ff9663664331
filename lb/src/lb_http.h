/*
 * lb_http.h: reading the Host of an HTTP/1.x request head (warren-lb's http
 * mode) with http_parser, without consuming anything: the head is forwarded
 * to the backend untouched. Pure code: the caller peeks bytes and calls
 * again with more until the answer is not LB_HTTP_NEED_MORE.
 */
#ifndef LB_HTTP_H
#define LB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "wr/err.h"

#define LB_HTTP_HEAD_MAX 16384 /* request line + headers, at most */
#define LB_HTTP_HOST_MAX 255

enum lb_http_result {
    LB_HTTP_OK = 0,    /* the head is complete; *host set (lower-cased, no port) */
    LB_HTTP_NEED_MORE, /* no end of head yet: peek more (up to LB_HTTP_HEAD_MAX) */
    LB_HTTP_BAD,       /* not HTTP/1.x, malformed, no Host, or two Host headers */
    LB_HTTP_TOO_BIG,   /* no end of head within LB_HTTP_HEAD_MAX */
};

/* Parses the request head at the start of <buf>. <host> gets
 * LB_HTTP_HOST_MAX + 1 bytes. <head_len>, on LB_HTTP_OK, the bytes of the
 * head including the final CRLF CRLF. <why> as in lb_sni_parse.
 *
 * Also: <host> is "" and <head_len> 0 on every answer but LB_HTTP_OK; the
 * host is validated like an SNI name (lb_sni.h), after dropping the port
 * and one trailing dot ("example.com." is "example.com"); an IPv6 literal
 * keeps its brackets ("[::1]"). A request target with an authority
 * (absolute-form, or CONNECT's authority-form) gives the host instead of
 * the Host header, as the backend will (RFC 9112 3.2.2), but one Host
 * header is still required; its scheme must be http or https, with no
 * userinfo. Also BAD: whitespace before a header's colon, a folded Host.
 * Each call parses from the first byte again (no state, reentrant); as in
 * lb_sni_parse, a longer peek only ever turns NEED_MORE into another answer. */
WR_MUST_CHECK enum lb_http_result lb_http_parse_head(const uint8_t *buf, size_t len,
                                                     char host[LB_HTTP_HOST_MAX + 1],
                                                     size_t *head_len, const char **why);

const char *lb_http_result_str(enum lb_http_result r);

/* Small complete responses warren-lb sends itself, then closes. Returned
 * strings are static; <len> gets their length. 404: no route for the Host;
 * 503: a route, but no healthy backend; 400: a bad request head; 408: the
 * head did not come in time; 431: the head is too big. Any other <status>:
 * NULL, and <len> 0. */
const char *lb_http_response(int status, size_t *len);

#endif
