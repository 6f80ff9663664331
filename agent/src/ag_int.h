/*
 * ag_int.h: agent internals shared with the unit tests.
 */
#ifndef AG_INT_H
#define AG_INT_H

#include "ag.h"

/* The delay before dial number <attempt> + 1 (attempt = dials since the last
 * registration): 0 for the first, then full jitter, uniform in
 * [0, min(max, base * 2^attempt)], from the random value <rnd>. */
uint64_t ag__backoff_delay(uint32_t base_ms, uint32_t max_ms, uint32_t attempt, uint64_t rnd);

#endif
