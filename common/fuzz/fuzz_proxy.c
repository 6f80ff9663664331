/*
 * fuzz_proxy.c: libFuzzer target for wr_proxy_parse() (the PROXY protocol
 * header a node reads from trusted balancers) and wr_proxy_v2_encode().
 * Built as fuzz_proxy (WARREN_FUZZ=ON, clang) and as fuzz_proxy_replay,
 * which ctest runs over corpus/proxy (label "fuzz"); see proxy.cmake.
 * Beyond "no crash", it checks the parser's contract: a verdict on the whole
 * input agrees with the verdicts on its prefixes (NEED_MORE below a header's
 * length, the same answer at it, BAD for ever once BAD), BAD has a reason,
 * NEED_MORE never needs more than WR_PROXY_HEAD_MAX bytes, and an address
 * read re-encodes to a header that parses back to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wr/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_proxy: invariant failed: %s (line %d)\n", #c, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Inputs past this are cut: the parser never looks further than
 * WR_PROXY_HEAD_MAX, and the prefix checks are quadratic. */
#define FUZZ_PROXY_MAX 2048

static int fuzz_proxy_addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && memcmp(&x->sin_addr, &y->sin_addr, 4) == 0;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_PROXY_MAX)
        size = FUZZ_PROXY_MAX;
    struct sockaddr_storage src, dst;
    size_t used = 0;
    const char *why = NULL;
    enum wr_proxy_result r = wr_proxy_parse(data, size, &src, &dst, &used, &why);
    FUZZ_CHECK(r == WR_PROXY_OK || r == WR_PROXY_LOCAL || r == WR_PROXY_NEED_MORE ||
               r == WR_PROXY_BAD);
    FUZZ_CHECK((r == WR_PROXY_BAD) == (why != NULL));
    switch (r) {
    case WR_PROXY_NEED_MORE:
        FUZZ_CHECK(size < WR_PROXY_HEAD_MAX);
        FUZZ_CHECK(used == 0);
        break;
    case WR_PROXY_BAD:
        FUZZ_CHECK(used == 0);
        FUZZ_CHECK(src.ss_family == AF_UNSPEC && dst.ss_family == AF_UNSPEC);
        break;
    case WR_PROXY_LOCAL:
        FUZZ_CHECK(used > 0 && used <= size && used <= WR_PROXY_HEAD_MAX);
        FUZZ_CHECK(src.ss_family == AF_UNSPEC && dst.ss_family == AF_UNSPEC);
        break;
    case WR_PROXY_OK:
        FUZZ_CHECK(used > 0 && used <= size && used <= WR_PROXY_HEAD_MAX);
        FUZZ_CHECK(src.ss_family == AF_INET || src.ss_family == AF_INET6);
        FUZZ_CHECK(dst.ss_family == src.ss_family);
        break;
    }

    /* Prefixes: NEED_MORE below the header (or up to the first BAD), then
     * the same verdict for good. */
    size_t end = (r == WR_PROXY_OK || r == WR_PROXY_LOCAL) ? used : size;
    int bad_seen = 0;
    for (size_t k = 0; k <= end; k++) {
        struct sockaddr_storage s2, d2;
        size_t u2 = 0;
        enum wr_proxy_result r2 = wr_proxy_parse(data, k, &s2, &d2, &u2, NULL);
        if (k < end || r == WR_PROXY_NEED_MORE) {
            if (r == WR_PROXY_OK || r == WR_PROXY_LOCAL)
                FUZZ_CHECK(r2 == WR_PROXY_NEED_MORE);
            else if (bad_seen)
                FUZZ_CHECK(r2 == WR_PROXY_BAD);
            else
                FUZZ_CHECK(r2 == WR_PROXY_NEED_MORE || r2 == WR_PROXY_BAD);
            bad_seen |= r2 == WR_PROXY_BAD;
            continue;
        }
        FUZZ_CHECK(r2 == r);
        if (r == WR_PROXY_OK) {
            FUZZ_CHECK(u2 == used);
            FUZZ_CHECK(fuzz_proxy_addr_eq(&s2, &src) && fuzz_proxy_addr_eq(&d2, &dst));
        }
    }
    FUZZ_CHECK(r != WR_PROXY_NEED_MORE || !bad_seen);

    /* What was read re-encodes to a v2 header that reads back the same. */
    if (r == WR_PROXY_OK) {
        uint8_t out[WR_PROXY_V2_MAX];
        ssize_t n = wr_proxy_v2_encode((const struct sockaddr *)&src, (const struct sockaddr *)&dst,
                                       out, sizeof(out));
        FUZZ_CHECK(n == 28 || n == 52);
        struct sockaddr_storage s3, d3;
        size_t u3 = 0;
        FUZZ_CHECK(wr_proxy_parse(out, (size_t)n, &s3, &d3, &u3, NULL) == WR_PROXY_OK);
        FUZZ_CHECK(u3 == (size_t)n);
        /* IPv4-mapped IPv6 from a v1 TCP6 line comes back as IPv4. */
        if (src.ss_family == AF_INET || n == 52)
            FUZZ_CHECK(fuzz_proxy_addr_eq(&s3, &src) && fuzz_proxy_addr_eq(&d3, &dst));
    }
    return 0;
}
