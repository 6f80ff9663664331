/*
 * wr/err.h: error codes. 0 is success; negative errno passes through as-is
 * (libuv already returns -errno); project codes live in -5000..-5999.
 */
#ifndef WR_ERR_H
#define WR_ERR_H

#include <uv.h>

#define WR_MUST_CHECK __attribute__((warn_unused_result))

/* XX(name, value, message) */
#define WR_ERRNO_MAP(XX)                                                                           \
    XX(EPROTO, -5001, "protocol error")                                                            \
    XX(EVERSION, -5002, "unsupported protocol version")                                            \
    XX(EAUTH, -5003, "authentication failed")                                                      \
    XX(ETLS, -5004, "TLS error")                                                                   \
    XX(ECLOSED, -5005, "object is closing or closed")                                              \
    XX(ETOOBIG, -5006, "too large")                                                                \
    XX(ENOMEMBER, -5007, "no such member")                                                         \
    XX(EEXPIRED, -5008, "expired")                                                                 \
    XX(ENOTUNNEL, -5009, "no live agent for tunnel")                                               \
    XX(ELIMIT, -5010, "limit reached")                                                             \
    XX(EFLOW, -5011, "flow control window exceeded")                                               \
    XX(EUSAGE, -5012, "invalid argument")                                                          \
    XX(ENOMEM, -5013, "out of memory")                                                             \
    XX(ETIMEDOUT, -5014, "timed out")                                                              \
    XX(EALPN, -5015, "ALPN mismatch")                                                              \
    XX(EREFUSED, -5016, "refused")                                                                 \
    XX(EGOAWAY, -5017, "peer is going away")

enum wr_err {
#define WR_ERR_ENUM_(name, val, msg) WR_##name = (val),
    WR_ERRNO_MAP(WR_ERR_ENUM_)
#undef WR_ERR_ENUM_
};

/* Human-readable message for any code (project, errno or libuv). Never NULL. */
const char *wr_strerror(int err);
/* Stable short name for logs: "EPROTO", "ECONNRESET", ... Never NULL. */
const char *wr_err_name(int err);

/* Always-on invariant check: logs and aborts. Never use for peer input. */
#define WR_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            wr_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
__attribute__((noreturn)) void wr_assert_fail(const char *what, const char *file, int line);

/* Banned functions: redeclared so that -Werror fails any use. */
#include <stdio.h>
#include <string.h>
__attribute__((deprecated("use snprintf"))) int sprintf(char *, const char *, ...);
__attribute__((deprecated("use memcpy with a length"))) char *strcpy(char *, const char *);
__attribute__((deprecated("use memcpy with a length"))) char *strcat(char *, const char *);
__attribute__((deprecated("use memcpy with a length"))) char *strncat(char *, const char *, size_t);

#endif
