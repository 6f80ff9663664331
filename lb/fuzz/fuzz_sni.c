/*
 * fuzz_sni.c: fuzz target of lb_sni_parse (lb/src/lb_sni.c): arbitrary
 * bytes as the first bytes of a connection. Checks that an accepted name is
 * a valid lower-case name, that a failure leaves "" and a reason, and that
 * the answer for a prefix is NEED_MORE or the same as for the whole (the
 * caller peeks again with more bytes and relies on that).
 */
#include "lb_sni.h"

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

static bool fz_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LB_SNI_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
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

static enum lb_sni_result fz_parse(const uint8_t *data, size_t size, char *name)
{
    const char *why = NULL;
    memset(name, 0x5a, LB_SNI_NAME_MAX + 1);
    enum lb_sni_result r = lb_sni_parse(data, size, name, &why);
    FZ_CHECK(memchr(name, '\0', LB_SNI_NAME_MAX + 1) != NULL);
    switch (r) {
    case LB_SNI_OK:
        FZ_CHECK(name[0] == '\0' || fz_name_is_valid(name));
        break;
    case LB_SNI_NEED_MORE:
        FZ_CHECK(size < LB_SNI_PEEK_MAX);
        /* fall through */
    case LB_SNI_NOT_TLS:
    case LB_SNI_MALFORMED:
    case LB_SNI_TOO_BIG:
        FZ_CHECK(why != NULL && name[0] == '\0');
        break;
    default:
        FZ_CHECK(!"result out of range");
    }
    FZ_CHECK(strcmp(lb_sni_result_str(r), "?") != 0);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[LB_SNI_NAME_MAX + 1];
    enum lb_sni_result r = fz_parse(data, size, name);
    if (r == LB_SNI_NOT_TLS)
        FZ_CHECK(size > 0 && (data[0] != 22 || (size > 1 && data[1] != 3)));

    /* Prefixes: a shorter peek of the same stream. */
    size_t cuts[] = {size - 1, size / 2, size / 3, 5, 9};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t k = cuts[i];
        if (size == 0 || k >= size)
            continue;
        char pname[LB_SNI_NAME_MAX + 1];
        enum lb_sni_result pr = fz_parse(data, k, pname);
        FZ_CHECK(pr == LB_SNI_NEED_MORE || pr == r);
        if (pr == LB_SNI_OK)
            FZ_CHECK(strcmp(pname, name) == 0);
    }
    return 0;
}
