/*
 * fuzz_wire.c: libFuzzer target for every decoder of wr_wire.c and for
 * wr_token_verify(). Built twice (common/fuzz/CMakeLists.txt):
 *  - fuzz_wire with -fsanitize=fuzzer when WARREN_FUZZ=ON and CC is clang;
 *  - fuzz_wire_replay, a plain executable that runs every file named on its
 *    command line (or every file of the directories named) through the same
 *    entry point, under ctest label "fuzz".
 * Beyond "no crash", it checks invariants: a decoder either succeeds or
 * sets a reason; whatever decodes re-encodes, and decodes again to the same
 * struct (the encoder and decoder agree on the format).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a finding for the fuzzer) when an invariant breaks. */
#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_wire: invariant failed: %s (line %d)\n", #c, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Decode, and when that works: encode, decode again, compare. */
#define FUZZ_ROUNDTRIP(type, decode, encode, in)                                                   \
    do {                                                                                           \
        static struct type m1, m2;                                                                 \
        const char *rt_why = NULL;                                                                 \
        int rt_err = decode((in), &m1, &rt_why);                                                   \
        FUZZ_CHECK(rt_err == 0 || rt_why != NULL);                                                 \
        if (rt_err == 0) {                                                                         \
            struct wr_buf b = {0};                                                                 \
            rt_err = encode(&m1, &b);                                                              \
            /* ETOOBIG: the encoder writes optional keys the input left out. */                    \
            FUZZ_CHECK(rt_err == 0 || rt_err == WR_ENOMEM || rt_err == WR_ETOOBIG);                \
            if (rt_err == 0) {                                                                     \
                FUZZ_CHECK(decode(wr_buf_peek(&b), &m2, &rt_why) == 0);                            \
                FUZZ_CHECK(memcmp(&m1, &m2, sizeof(m1)) == 0);                                     \
            }                                                                                      \
            wr_buf_free(&b);                                                                       \
        }                                                                                          \
    } while (0)

#include "fuzz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pk[WR_SIGN_PK_LEN];
    static int ready;
    if (!ready) {
        if (wr_crypto_init() != 0)
            abort();
        wr_sign_pk_from_seed(fuzz_wire_seed, pk);
        wr_log_level_cur = WR_LOG_ERROR;
        ready = 1;
    }
    struct wr_slice in = wr_slice_make(data, size);

    int type = -1;
    const char *why = NULL;
    int err = wr_msg_peek_type(in, &type, &why);
    FUZZ_CHECK(err == 0 ? type >= 0 : (why != NULL && type == 0));

    FUZZ_ROUNDTRIP(wr_msg_hello, wr_msg_hello_decode, wr_msg_hello_encode, in);
    FUZZ_ROUNDTRIP(wr_msg_welcome, wr_msg_welcome_decode, wr_msg_welcome_encode, in);
    FUZZ_ROUNDTRIP(wr_msg_discovery, wr_msg_discovery_decode, wr_msg_discovery_encode, in);
    FUZZ_ROUNDTRIP(wr_msg_error, wr_msg_error_decode, wr_msg_error_encode, in);
    FUZZ_ROUNDTRIP(wr_msg_open, wr_msg_open_decode, wr_msg_open_encode, in);
    FUZZ_ROUNDTRIP(wr_token_claims, wr_msg_claims_decode, wr_msg_claims_encode, in);

    /* The same bytes as a token text, at a fixed time so runs reproduce. */
    struct wr_token_claims c;
    err = wr_token_verify((const char *)data, size, pk, FUZZ_WIRE_NOW, &c, &why);
    FUZZ_CHECK(err == 0 || err == WR_EPROTO || err == WR_EAUTH || err == WR_EEXPIRED ||
               err == WR_ENOMEM);
    if (err == 0)
        FUZZ_CHECK(wr_id_is_valid(c.tunnel, strlen(c.tunnel)) && c.max_weight >= 1);
    return 0;
}
