/*
 * wr_log.c: logfmt lines formatted into a stack buffer (no allocation) and
 * handed to one sink. Owns the process-wide level; does not decide what is
 * logged.
 */
#include "wr/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum wr_log_level wr_log_level_cur = WR_LOG_INFO;

static wr_log_sink_cb wr_log_sink;
static void *wr_log_sink_arg;

static const char *const wr_log_level_names[WR_LOG__COUNT] = {"error", "warn", "info", "debug",
                                                              "trace"};

void wr_log_set_sink(wr_log_sink_cb cb, void *arg)
{
    wr_log_sink = cb;
    wr_log_sink_arg = arg;
}

int wr_log_level_parse(const char *s)
{
    for (int i = 0; i < WR_LOG__COUNT; i++)
        if (strcmp(s, wr_log_level_names[i]) == 0)
            return i;
    return -1;
}

const char *wr_log_level_str(enum wr_log_level lvl)
{
    return (unsigned)lvl < WR_LOG__COUNT ? wr_log_level_names[lvl] : "?";
}

__attribute__((format(printf, 4, 0))) static void
wr_log_vemit(enum wr_log_level lvl, const char *mod, const char *ev, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n =
        snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ lvl=%s mod=%s ev=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), wr_log_level_str(lvl), mod, ev);
    size_t len = (size_t)n;
    const size_t room = sizeof(line) - 16; /* space for " trunc=1\n" */
    if (fmt != NULL && fmt[0] != '\0') {
        int m = vsnprintf(line + len, room - len, fmt, ap);
        if (m < 0)
            m = 0;
        if ((size_t)m >= room - len) {
            len = room - 1;
            memcpy(line + len, " trunc=1", 8);
            len += 8;
        } else {
            len += (size_t)m;
        }
    } else if (len > 0) {
        len--; /* drop the trailing space */
    }
    line[len++] = '\n';
    line[len] = '\0';
    if (wr_log_sink != NULL) {
        wr_log_sink(lvl, line, len, wr_log_sink_arg);
    } else {
        /* One write(2) per line so that lines from several processes sharing a
         * file do not interleave mid-line. */
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
}

void wr_log_emit(enum wr_log_level lvl, const char *mod, const char *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_log_vemit(lvl, mod, ev, fmt, ap);
    va_end(ap);
}

const char *wr_log_esc(char *out, size_t outlen, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (outlen == 0)
        return out;
    int quote = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c >= 0x7f) {
            quote = 1;
            break;
        }
    }
    size_t o = 0;
    if (len == 0)
        quote = 1;
    if (quote && o + 1 < outlen)
        out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t tl = 0;
        if (c < ' ' || c >= 0x7f || c == '\\') {
            if (c == '\\') {
                tmp[0] = '\\';
                tmp[1] = '\\';
                tl = 2;
            } else {
                tmp[0] = '\\';
                tmp[1] = 'x';
                tmp[2] = hex[c >> 4];
                tmp[3] = hex[c & 15];
                tl = 4;
            }
        } else if (c == '"') {
            tmp[0] = '\\';
            tmp[1] = '"';
            tl = 2;
        } else {
            tmp[0] = (char)c;
            tl = 1;
        }
        if (o + tl + 2 >= outlen)
            break;
        memcpy(out + o, tmp, tl);
        o += tl;
    }
    if (quote && o + 1 < outlen)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

void wr_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_log_vemit(WR_LOG_ERROR, "main", "fatal", fmt, ap);
    va_end(ap);
    exit(1);
}
