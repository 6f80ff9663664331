/*
 * wr/addr.h: "host:port" parsing and printing. Hosts are numeric IPv4, IPv6 in
 * brackets, or "localhost"; names are not resolved here (no blocking DNS on
 * the loop).
 */
#ifndef WR_ADDR_H
#define WR_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wr/err.h"

#define WR_ADDR_STRLEN 64 /* enough for "[v6%scope]:port" */

/* Parses "1.2.3.4:80", "[::1]:80", "localhost:80", ":80" (0.0.0.0). Port 0 allowed. */
WR_MUST_CHECK int wr_addr_parse(const char *s, struct sockaddr_storage *out);
/* Formats as "1.2.3.4:80" or "[::1]:80" into <buf> (>= WR_ADDR_STRLEN). Returns <buf>. */
const char *wr_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Port of an AF_INET or AF_INET6 address, or 0. */
int wr_addr_port(const struct sockaddr *sa);

/* An IPv4 or IPv6 network, for allow lists. Zero-initialised matches nothing. */
struct wr_cidr {
    int family;       /* AF_INET or AF_INET6; 0: unset */
    uint8_t bits;     /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16]; /* network address (4 bytes used for IPv4), host bits zero */
};
#define WR_CIDR_STRLEN 64 /* "ffff:...:ffff/128" and a NUL */

/* Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (/32, /128).
 * Returns WR_EUSAGE for anything else, host bits set included ("10.0.0.1/8"
 * is refused rather than silently widened). */
WR_MUST_CHECK int wr_cidr_parse(const char *s, struct wr_cidr *out);
/* True when <sa> (AF_INET or AF_INET6) lies in <c>. An IPv4-mapped IPv6
 * address (a dual-stack socket's view of an IPv4 peer) matches IPv4
 * networks as the IPv4 address it maps. */
bool wr_cidr_match(const struct wr_cidr *c, const struct sockaddr *sa);
/* True when <sa> lies in any of the <n> networks of <set>. */
bool wr_cidr_match_any(const struct wr_cidr *set, size_t n, const struct sockaddr *sa);
/* Formats as "10.0.0.0/8" into <buf> (>= WR_CIDR_STRLEN). Returns <buf>. */
const char *wr_cidr_str(const struct wr_cidr *c, char *buf, size_t len);

#endif
