/*
 * wr/addr.h: "host:port" parsing and printing. Hosts are numeric IPv4, IPv6 in
 * brackets, or "localhost"; names are not resolved here (no blocking DNS on
 * the loop).
 */
#ifndef WR_ADDR_H
#define WR_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "wr/err.h"

#define WR_ADDR_STRLEN 64 /* enough for "[v6%scope]:port" */

/* Parses "1.2.3.4:80", "[::1]:80", "localhost:80", ":80" (0.0.0.0). Port 0 allowed. */
WR_MUST_CHECK int wr_addr_parse(const char *s, struct sockaddr_storage *out);
/* Formats as "1.2.3.4:80" or "[::1]:80" into <buf> (>= WR_ADDR_STRLEN). Returns <buf>. */
const char *wr_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Port of an AF_INET or AF_INET6 address, or 0. */
int wr_addr_port(const struct sockaddr *sa);

#endif
