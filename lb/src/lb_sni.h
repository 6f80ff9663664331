/*
 * lb_sni.h: reading the server name out of a TLS ClientHello without
 * terminating TLS (warren-lb's sni mode), and the one TLS alert warren-lb
 * ever sends. Pure code: no I/O, no allocation; the caller peeks bytes and
 * calls again with more until the answer is not LB_SNI_NEED_MORE.
 */
#ifndef LB_SNI_H
#define LB_SNI_H

#include <stddef.h>
#include <stdint.h>

#include "wr/err.h"

#define LB_SNI_PEEK_MAX 16384 /* bytes peeked at most: one full TLS record */
#define LB_SNI_NAME_MAX 255   /* DNS name limit */

enum lb_sni_result {
    LB_SNI_OK = 0,    /* *name set (lower-cased); "" when the ClientHello has no SNI */
    LB_SNI_NEED_MORE, /* a prefix of a ClientHello: peek more (up to LB_SNI_PEEK_MAX) */
    LB_SNI_NOT_TLS,   /* the first bytes are not a TLS handshake record */
    LB_SNI_MALFORMED, /* a TLS handshake record, but not a well-formed ClientHello */
    LB_SNI_TOO_BIG,   /* the ClientHello does not fit LB_SNI_PEEK_MAX */
};

/*
 * Parses the ClientHello at the start of <buf> (<len> bytes received so
 * far). The ClientHello may span several handshake records. On LB_SNI_OK,
 * <name> (LB_SNI_NAME_MAX + 1 bytes) holds the host_name of the server_name
 * extension, lower-cased, validated as a DNS name (letters, digits, '-',
 * '.', '_'; no empty label): anything else is LB_SNI_MALFORMED. <why>, when
 * not NULL, gets a static reason for the logs on failure.
 *
 * Also: <name> is "" on every answer but LB_SNI_OK. Only the first
 * LB_SNI_PEEK_MAX bytes are looked at; bytes after the ClientHello are
 * ignored. Each answer is decided from the bytes before the first one
 * missing, so a longer peek of the same stream only ever turns NEED_MORE
 * into another answer, never changes one. Two server_name extensions or two
 * host_name entries are MALFORMED; entries of other name types are skipped.
 * A ClientHello without extensions (before TLS 1.2) is OK with "".
 * Reentrant: keeps no state (uses about 16 KiB of stack).
 */
WR_MUST_CHECK enum lb_sni_result lb_sni_parse(const uint8_t *buf, size_t len,
                                              char name[LB_SNI_NAME_MAX + 1], const char **why);

const char *lb_sni_result_str(enum lb_sni_result r);

/* The 7-byte TLS alert record "fatal unrecognized_name" (112), sent in the
 * clear before closing when no route matches a server name. */
#define LB_TLS_ALERT_LEN 7
extern const uint8_t lb_tls_alert_unrecognized_name[LB_TLS_ALERT_LEN];

#endif
