/*
 * wr/util.h: small helpers with no policy: time, random numbers, parsing of
 * durations, sizes and identifiers used by every command line.
 */
#ifndef WR_UTIL_H
#define WR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr/err.h"

#define WR_ID_MAX 64 /* tunnel ids, node ids, agent ids, service names */

#define WR_FREE(p)                                                                                 \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#define wr_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define WR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocations of fixed-size control structures: abort with a log line on OOM. */
void *wr_xmalloc(size_t n);
void *wr_xcalloc(size_t n, size_t size);
/* realloc that aborts on OOM like wr_xcalloc. */
void *wr_xrealloc(void *p, size_t size);
char *wr_xstrdup(const char *s);

/* Monotonic clock in milliseconds / nanoseconds; wall clock in seconds. */
uint64_t wr_now_ms(void);
uint64_t wr_now_ns(void);
uint64_t wr_wall_s(void);

/* Uniform random in [0, n) from a per-process fast PRNG (not for secrets). */
uint32_t wr_rand_below(uint32_t n);
uint64_t wr_rand64(void);

/* "250ms", "5s", "2m", "1h", "1d"; a bare number is seconds. Result in ms. */
WR_MUST_CHECK int wr_parse_duration_ms(const char *s, uint64_t *out_ms);
/* "4096", "64k", "1M", "2G" (powers of 1024). */
WR_MUST_CHECK int wr_parse_size(const char *s, uint64_t *out);
/* Decimal integer within [min, max]. */
WR_MUST_CHECK int wr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Ids and names: 1..WR_ID_MAX of [A-Za-z0-9._-]. */
bool wr_id_is_valid(const char *s, size_t len);

/* Raises the open-file soft limit to the hard limit (a node holds one
 * descriptor per agent and per visitor). Returns the new soft limit. */
uint64_t wr_raise_nofile(void);

/* Reads a whole small file (at most <max> bytes) into a NUL-terminated heap buffer. */
WR_MUST_CHECK int wr_read_file(const char *path, size_t max, char **out, size_t *outlen);
/* Writes a file atomically (temp + rename) with <mode>. */
WR_MUST_CHECK int wr_write_file(const char *path, const void *data, size_t len, int mode);

#endif
