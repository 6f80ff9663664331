/* wr_flags.c: usage errors and value checks for command-line flags. */
#include "wr/flags.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "wr/log.h"
#include "wr/util.h"

static const char *wr_flags_prog = "warren";

void wr_flags_set_prog(const char *prog)
{
    wr_flags_prog = prog;
}

void wr_flags_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", wr_flags_prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see %s --help)\n", wr_flags_prog);
    exit(1);
}

uint32_t wr_flags_duration_ms(const char *flag, const char *value)
{
    uint64_t ms;
    if (wr_parse_duration_ms(value, &ms) != 0 || ms == 0 || ms > 86400000)
        wr_flags_fail("invalid duration '%s' for %s (examples: 500ms, 5s, 2m)", value, flag);
    return (uint32_t)ms;
}

uint64_t wr_flags_uint(const char *flag, const char *value, uint64_t min, uint64_t max)
{
    uint64_t x;
    if (wr_parse_uint(value, min, max, &x) != 0)
        wr_flags_fail("invalid %s '%s' (a number from %llu to %llu)", flag, value,
                      (unsigned long long)min, (unsigned long long)max);
    return x;
}

uint64_t wr_flags_size(const char *flag, const char *value, uint64_t min, uint64_t max)
{
    uint64_t x;
    if (wr_parse_size(value, &x) != 0 || x < min || x > max)
        wr_flags_fail("invalid %s '%s' (a size from %llu to %llu bytes; 64k, 4M, ...)", flag, value,
                      (unsigned long long)min, (unsigned long long)max);
    return x;
}

void wr_flags_log_level(const char *value)
{
    int lvl = wr_log_level_parse(value);
    if (lvl < 0)
        wr_flags_fail("invalid --log-level '%s' (error, warn, info, debug or trace)", value);
    wr_log_level_cur = (enum wr_log_level)lvl;
}
