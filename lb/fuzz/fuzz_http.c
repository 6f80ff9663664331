/*
 * fuzz_http.c: fuzz target of lb_http_parse_head (lb/src/lb_http.c):
 * arbitrary bytes as the first bytes of a connection. Checks that an
 * accepted head ends in LF within the limit, that the host is lower-case
 * with no port, that a failure leaves "" and a reason, and that the answer
 * for a prefix is NEED_MORE or the same as for the whole: exactly NEED_MORE
 * before the end of an accepted head and the same answer after it.
 */
#include "lb_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool fz_host_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LB_HTTP_HOST_MAX)
        return false;
    if (s[0] == '[') {
        if (n < 4 || s[n - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    if (s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    return true;
}

static enum lb_http_result fz_parse(const uint8_t *data, size_t size, char *host, size_t *head_len)
{
    const char *why = NULL;
    memset(host, 0x5a, LB_HTTP_HOST_MAX + 1);
    *head_len = 12345;
    enum lb_http_result r = lb_http_parse_head(data, size, host, head_len, &why);
    FZ_CHECK(memchr(host, '\0', LB_HTTP_HOST_MAX + 1) != NULL);
    switch (r) {
    case LB_HTTP_OK:
        FZ_CHECK(fz_host_is_valid(host));
        FZ_CHECK(*head_len > 0 && *head_len <= size && *head_len <= LB_HTTP_HEAD_MAX);
        FZ_CHECK(data[*head_len - 1] == '\n');
        break;
    case LB_HTTP_NEED_MORE:
        FZ_CHECK(size < LB_HTTP_HEAD_MAX);
        /* fall through */
    case LB_HTTP_BAD:
    case LB_HTTP_TOO_BIG:
        FZ_CHECK(why != NULL && host[0] == '\0' && *head_len == 0);
        break;
    default:
        FZ_CHECK(!"result out of range");
    }
    FZ_CHECK(strcmp(lb_http_result_str(r), "?") != 0);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char host[LB_HTTP_HOST_MAX + 1];
    size_t head_len;
    enum lb_http_result r = fz_parse(data, size, host, &head_len);

    size_t cuts[] = {size - 1, size / 2, r == LB_HTTP_OK ? head_len - 1 : 0,
                     r == LB_HTTP_OK ? head_len : 0};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t k = cuts[i];
        if (size == 0 || k >= size)
            continue;
        char phost[LB_HTTP_HOST_MAX + 1];
        size_t plen;
        enum lb_http_result pr = fz_parse(data, k, phost, &plen);
        FZ_CHECK(pr == LB_HTTP_NEED_MORE || pr == r);
        if (r == LB_HTTP_OK) {
            FZ_CHECK(pr == (k < head_len ? LB_HTTP_NEED_MORE : LB_HTTP_OK));
            if (pr == LB_HTTP_OK)
                FZ_CHECK(plen == head_len && strcmp(phost, host) == 0);
        }
    }
    return 0;
}
