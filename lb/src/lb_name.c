/*
 * lb_name.c: the validation and lower-casing of the names warren-lb routes
 * on, shared by lb_sni.c, lb_http.c and lb_route.c so that a name the
 * parsers accept is exactly a name a route can match. Locale-free on
 * purpose: isalnum() would let a locale widen the accepted set.
 */
#include "lb_int.h"

#include "lb_http.h"
#include "lb_route.h"
#include "lb_sni.h"

_Static_assert(LB__NAME_MAX == LB_SNI_NAME_MAX && LB__NAME_MAX == LB_HTTP_HOST_MAX &&
                   LB__NAME_MAX == LB_ROUTE_NAME_MAX,
               "the parsers and the routing table must agree on the longest name");

static char lb_name_lower_char(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool lb_name_char_is_valid(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool lb__name_normalize(const char *in, size_t len, char out[LB__NAME_MAX + 1])
{
    if (len == 0 || len > LB__NAME_MAX)
        goto bad;
    char prev = '.'; /* so that a leading dot is an empty label */
    for (size_t i = 0; i < len; i++) {
        char c = lb_name_lower_char(in[i]);
        if (!lb_name_char_is_valid(c) || (c == '.' && prev == '.'))
            goto bad;
        out[i] = c;
        prev = c;
    }
    if (prev == '.')
        goto bad;
    out[len] = '\0';
    return true;
bad:
    out[0] = '\0';
    return false;
}
