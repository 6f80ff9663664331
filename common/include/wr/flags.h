/*
 * wr/flags.h: command-line helpers shared by the binaries. A usage error
 * names the program, says what is wrong and points at --help, then exits
 * with status 1 (startup only: never call these once the loop runs).
 */
#ifndef WR_FLAGS_H
#define WR_FLAGS_H

#include <stdint.h>

/* The program name used in messages ("warren-node"); set once in main(). */
void wr_flags_set_prog(const char *prog);
__attribute__((noreturn, format(printf, 1, 2))) void wr_flags_fail(const char *fmt, ...);
/* A duration flag ("500ms", "5s", "2m"): 1 ms to 1 day. */
uint32_t wr_flags_duration_ms(const char *flag, const char *value);
/* A decimal integer flag within [min, max]. */
uint64_t wr_flags_uint(const char *flag, const char *value, uint64_t min, uint64_t max);
/* A size flag ("64k", "4M") within [min, max] bytes. */
uint64_t wr_flags_size(const char *flag, const char *value, uint64_t min, uint64_t max);
/* --log-level: sets the process-wide level. */
void wr_flags_log_level(const char *value);

#endif
