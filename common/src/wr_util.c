/* wr_util.c: time, a fast non-cryptographic PRNG, and small parsers for flags. */
#include "wr/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wr/log.h"

void *wr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        wr_fatal("what=out_of_memory size=%zu", n);
    return p;
}

void *wr_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        wr_fatal("what=out_of_memory size=%zu", n * size);
    return p;
}

void *wr_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        wr_fatal("what=out_of_memory size=%zu", size);
    return q;
}

char *wr_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = wr_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

uint64_t wr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t wr_now_ms(void)
{
    return wr_now_ns() / 1000000u;
}

uint64_t wr_wall_s(void)
{
    return (uint64_t)time(NULL);
}

/* xorshift64*: seeded once from the clock and pid; good enough for jitter
 * and weighted choice, never for secrets. */
static uint64_t wr_rand_state;

uint64_t wr_rand64(void)
{
    if (wr_rand_state == 0)
        wr_rand_state = wr_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    uint64_t x = wr_rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    wr_rand_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint32_t wr_rand_below(uint32_t n)
{
    if (n == 0)
        return 0;
    /* Multiply-shift: unbiased enough for n far below 2^32. */
    return (uint32_t)(((wr_rand64() >> 32) * (uint64_t)n) >> 32);
}

int wr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
        return WR_EUSAGE;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return WR_EUSAGE;
    *out = v;
    return 0;
}

int wr_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return WR_EUSAGE;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return WR_EUSAGE;
    uint64_t mul;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mul = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mul = 86400ull * 1000;
    else
        return WR_EUSAGE;
    if (v > UINT64_MAX / mul)
        return WR_EUSAGE;
    *out_ms = v * mul;
    return 0;
}

int wr_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return WR_EUSAGE;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return WR_EUSAGE;
    uint64_t mul = 1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024ull * 1024 * 1024;
        end++;
        break;
    default:
        return WR_EUSAGE;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end != '\0' || v > UINT64_MAX / mul)
        return WR_EUSAGE;
    *out = v * mul;
    return 0;
}

bool wr_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > WR_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int wr_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
    int err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        err = WR_ENOMEM;
        goto fail_fd;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            goto fail_buf;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            err = WR_ETOOBIG;
            goto fail_buf;
        }
    }
    buf[len] = '\0';
    close(fd);
    *out = buf;
    if (outlen != NULL)
        *outlen = len;
    return 0;
fail_buf:
    free(buf);
fail_fd:
    close(fd);
    return err;
}

int wr_write_file(const char *path, const void *data, size_t len, int mode)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return WR_ETOOBIG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            close(fd);
            unlink(tmp);
            return err;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int err = -errno;
        unlink(tmp);
        return err;
    }
    if (rename(tmp, path) != 0) {
        int err = -errno;
        unlink(tmp);
        return err;
    }
    return 0;
}

uint64_t wr_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return 0;
    }
    return (uint64_t)rl.rlim_cur;
}
