/*
 * wr/proxy.h: the PROXY protocol (HAProxy's spec, versions 1 and 2), which an
 * L4 load balancer puts in front of a connection to tell the backend who the
 * client really is. warren-lb writes v2 toward nodes; warren-node reads v1
 * or v2 from the addresses it is told to trust. Pure code, no I/O.
 */
#ifndef WR_PROXY_H
#define WR_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "wr/err.h"

#define WR_PROXY_V2_MAX 232 /* the largest v2 header without TLVs (AF_UNIX addresses) */
#define WR_PROXY_V1_MAX 107 /* the spec's limit for a v1 line, CRLF included */
/* The longest header accepted (v2 with TLVs): a reader never needs to buffer
 * more before a decision. */
#define WR_PROXY_HEAD_MAX 536

enum wr_proxy_result {
    WR_PROXY_OK = 0,    /* a header: *used bytes of it, addresses in *src and *dst */
    WR_PROXY_LOCAL,     /* a header of command LOCAL (health check), of v1
                           UNKNOWN, or of a v2 family/protocol other than TCP
                           over IPv4/IPv6 (UNSPEC, UNIX, DGRAM): *used bytes;
                           no address (use the socket's) */
    WR_PROXY_NEED_MORE, /* a prefix of a header: read more */
    WR_PROXY_BAD,       /* not a PROXY header, or a malformed one */
};

/*
 * Parses a v1 or v2 header at the start of <buf> (<len> bytes so far).
 * Incremental: any proper prefix of a valid header gives NEED_MORE, and the
 * answer for a prefix never contradicts the answer for the whole. Strict:
 * v1 must match the spec exactly (one space between fields, canonical
 * IPv4 without leading zeros, IPv6 in hex groups, ports 0..65535 without
 * leading zeros, CRLF within WR_PROXY_V1_MAX bytes); v2 must have the
 * signature, version 2, command LOCAL or PROXY, a known family and protocol,
 * an address block as long as the family needs, well-formed TLVs (skipped)
 * and a total length of at most WR_PROXY_HEAD_MAX. A BAD verdict comes as
 * soon as the bytes so far cannot begin a valid header.
 *
 * On WR_PROXY_OK, *src and *dst (each may be NULL) hold the client's and the
 * original destination's addresses (AF_INET or AF_INET6); on WR_PROXY_LOCAL
 * they are zeroed (AF_UNSPEC). *used (may be NULL) gets the header's length
 * on OK and LOCAL, else 0. <why> (may be NULL) gets a static reason on
 * WR_PROXY_BAD, NULL otherwise.
 */
WR_MUST_CHECK enum wr_proxy_result wr_proxy_parse(const uint8_t *buf, size_t len,
                                                  struct sockaddr_storage *src,
                                                  struct sockaddr_storage *dst, size_t *used,
                                                  const char **why);

/* Writes a v2 PROXY header (command PROXY, TCP, no TLVs) for <src> -> <dst>
 * into <out>; returns its length (28 for IPv4, 52 for IPv6), or WR_EUSAGE
 * (an address is not AF_INET/AF_INET6) / WR_ETOOBIG (<outlen> short). The
 * families need not match (dual-stack sockets): the header is IPv4 when both
 * addresses are IPv4 or IPv4-mapped IPv6, else IPv6 for both, an IPv4 one
 * written IPv4-mapped. */
WR_MUST_CHECK ssize_t wr_proxy_v2_encode(const struct sockaddr *src, const struct sockaddr *dst,
                                         uint8_t *out, size_t outlen);

#endif
