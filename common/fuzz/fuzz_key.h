/*
 * fuzz_key.h: the signing key and clock shared by fuzz_wire.c and the corpus
 * generator, so that corpus tokens verify (and the fuzzer explores what lies
 * behind a good signature). The seed is RFC 8032's first test vector: public,
 * test-only, it signs nothing real.
 */
#ifndef FUZZ_KEY_H
#define FUZZ_KEY_H

#include <stdint.h>

#define FUZZ_WIRE_NOW 1700000000ull /* the fixed "now" of token checks */

static const uint8_t fuzz_wire_seed[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
};

#endif
