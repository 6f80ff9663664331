/*
 * wr_tls_int.h: what the wolfSSL domain of common/ (wr_tls.c, wr_tlsdev.c,
 * wr_conn.c, wr_cert.c) shares inside itself. Nothing outside those files
 * includes it. Includes the wolfSSL headers in the one order that is valid:
 * <wolfssl/options.h> first, because the layout of Aes and WOLFSSL depends on
 * the build options it records.
 */
#ifndef WR_TLS_INT_H
#define WR_TLS_INT_H

#include <stdbool.h>
#include <stdint.h>

/* options.h would otherwise redefine _FORTIFY_SOURCE for us; we keep the
 * project's own compiler settings. */
#ifndef WOLFSSL_OPTIONS_IGNORE_SYS
#define WOLFSSL_OPTIONS_IGNORE_SYS
#endif
#include <wolfssl/options.h>

#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "wr/conn.h"

/* The crypto-callback device id we register with wolfCrypt (any value other
 * than INVALID_DEVID works; this one is easy to spot in a debugger). */
#define WR_TLSDEV_ID 0x77720001

/* The ALPN protocol list in wolfSSL's comma-separated form. */
#define WR_TLS_ALPN_LIST WR_ALPN

struct wr_tls_ctx {
    WOLFSSL_CTX *ctx;
    bool server;
};

/* wolfSSL_Init, sodium_init and the device registration, once per process.
 * Returns 0 or WR_ETLS. Thread-safe. */
int wr__tls_global_init(void);
/* Registers the AES-GCM device (called by wr__tls_global_init). Returns true
 * when registered and libsodium's AES-256-GCM is usable on this CPU. */
bool wr__tlsdev_init(void);
/* True when the device handles AES-256-GCM (wr__tlsdev_init succeeded). */
bool wr__tlsdev_active(void);
/* Process-wide handshake counters kept with the device counters. */
void wr__tls_count_handshake(bool ok);
/* Copies the device counters into <out> (handshake counters included). */
void wr__tlsdev_get_stats(struct wr_tls_stats *out);

/* A new session on <t> with warren's per-session settings (ALPN; SNI <sni>
 * on clients, may be NULL). Returns NULL with *err set. */
WOLFSSL *wr__tls_ssl_new(struct wr_tls_ctx *t, const char *sni, int *err);

/* The subject CN of the DER certificate <der> into <out> (NUL-terminated).
 * 0 or WR_ETLS. */
int wr__tls_der_cn(const uint8_t *der, size_t len, char *out, size_t outlen);
/* The CN of the peer's leaf certificate. 0 or WR_ETLS. */
int wr__tls_peer_cn(WOLFSSL *ssl, char *out, size_t outlen);

/* The ex_data slot that marks a session refused for its ALPN. */
#define WR_TLS_EXDATA_ALPN 1
/* True when "warren/1" was negotiated on <ssl>. */
bool wr__tls_alpn_ok(WOLFSSL *ssl);
/* True when the server refused <ssl>'s ClientHello for a missing ALPN. */
bool wr__tls_alpn_refused(WOLFSSL *ssl);

/* Maps a wolfSSL error code (wolfSSL_get_error / negative return) to a
 * project code: WR_EALPN for ALPN mismatch, WR_ETLS otherwise. */
int wr__tls_map_err(int wolf_err);

#endif
