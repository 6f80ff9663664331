/*
 * lb_int.h: what the files of lb/ share and nothing outside lb/ needs. For
 * now, the one notion of a name (an SNI host_name, an HTTP Host, a route
 * pattern) that the parsers and the routing table must agree on.
 */
#ifndef LB_INT_H
#define LB_INT_H

#include <stdbool.h>
#include <stddef.h>

#define LB__NAME_MAX 255 /* == LB_SNI_NAME_MAX == LB_HTTP_HOST_MAX == LB_ROUTE_NAME_MAX */

/*
 * Validates <len> bytes at <in> as a name: 1..LB__NAME_MAX of letters,
 * digits, '-', '.' and '_', with no empty label (no leading or trailing dot,
 * no ".."). On success writes it lower-cased and NUL-terminated to <out>
 * (LB__NAME_MAX + 1 bytes) and returns true; on failure <out> holds "".
 * <in> and <out> may be the same buffer.
 */
bool lb__name_normalize(const char *in, size_t len, char out[LB__NAME_MAX + 1]);

#endif
