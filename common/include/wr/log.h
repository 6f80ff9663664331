/*
 * wr/log.h: one logfmt line per event:
 *   ts=2026-11-22T02:14:23.123Z lvl=info mod=node ev=tunnel_open conn=42 peer=...
 * The level is checked before the arguments are evaluated. Values that come
 * from peers must go through wr_log_esc() so that a log line cannot be forged.
 * Never log keys, tokens or payloads.
 */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum wr_log_level {
    WR_LOG_ERROR = 0,
    WR_LOG_WARN,
    WR_LOG_INFO,
    WR_LOG_DEBUG,
    WR_LOG_TRACE,
    WR_LOG__COUNT /* must be last */
};

/* The process-wide level and sink: set once in main(), read everywhere. */
extern enum wr_log_level wr_log_level_cur;

typedef void (*wr_log_sink_cb)(enum wr_log_level lvl, const char *line, size_t len, void *arg);
/* Replace the sink (default: stderr). <cb> NULL restores the default. */
void wr_log_set_sink(wr_log_sink_cb cb, void *arg);
/* Parses "error|warn|info|debug|trace"; returns -1 if unknown. */
int wr_log_level_parse(const char *s);
const char *wr_log_level_str(enum wr_log_level lvl);

/* <fmt> continues the line after "ev=<ev>": write it as "key=%s key2=%d". */
void wr_log_emit(enum wr_log_level lvl, const char *mod, const char *ev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define WR_LOG(lvl, mod, ev, ...)                                                                  \
    do {                                                                                           \
        if ((lvl) <= wr_log_level_cur)                                                             \
            wr_log_emit((lvl), (mod), (ev), __VA_ARGS__);                                          \
    } while (0)

#define WR_ERROR(mod, ev, ...) WR_LOG(WR_LOG_ERROR, mod, ev, __VA_ARGS__)
#define WR_WARN(mod, ev, ...) WR_LOG(WR_LOG_WARN, mod, ev, __VA_ARGS__)
#define WR_INFO(mod, ev, ...) WR_LOG(WR_LOG_INFO, mod, ev, __VA_ARGS__)
#define WR_DEBUG(mod, ev, ...) WR_LOG(WR_LOG_DEBUG, mod, ev, __VA_ARGS__)
#define WR_TRACE(mod, ev, ...) WR_LOG(WR_LOG_TRACE, mod, ev, __VA_ARGS__)

/*
 * Escapes <len> bytes of <s> (peer-controlled) into <out> as a logfmt value:
 * quoted when it holds a space, '=' or '"'; control and non-ASCII bytes as \xNN.
 * Always NUL-terminates, truncating if needed. Returns <out>.
 */
const char *wr_log_esc(char *out, size_t outlen, const char *s, size_t len);

/* Startup only: logs at error level and exits with status 1. */
__attribute__((noreturn, format(printf, 1, 2))) void wr_fatal(const char *fmt, ...);

#endif
