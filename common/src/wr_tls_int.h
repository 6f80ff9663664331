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

/* Room for one ALPN protocol name and its NUL. */
#define WR_TLS_ALPN_MAX 32

struct wr_tls_ctx {
    WOLFSSL_CTX *ctx;
    bool server;
    bool mutual;                /* both sides present certificates (peer links) */
    char alpn[WR_TLS_ALPN_MAX]; /* the one protocol offered or required */
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
/* For tests: switches the device's AES-GCM library to <name> ("openssl",
 * "sodium" or "libsodium") for every later record of the process. The key
 * caches of the two libraries are separate, so live connections keep working.
 * Returns 0, WR_EUSAGE for an unknown name, or WR_ETLS when the device is not
 * registered or that library is unusable. Not thread-safe: call it while no
 * other thread does TLS. */
int wr__tlsdev_set_backend(const char *name);
/* Wipes the calling thread's key cache and frees its libcrypto contexts (done
 * by itself at thread and process exit; tests call it to check eviction). */
void wr__tlsdev_thread_cleanup(void);

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
/* True when protocol <alpn> was negotiated on <ssl>. */
bool wr__tls_alpn_ok(WOLFSSL *ssl, const char *alpn);
/* True when the server refused <ssl>'s ClientHello for a missing ALPN. */
bool wr__tls_alpn_refused(WOLFSSL *ssl);

/* Maps a wolfSSL error code (wolfSSL_get_error / negative return) to a
 * project code: WR_EALPN for ALPN mismatch, WR_ETLS otherwise. */
int wr__tls_map_err(int wolf_err);

/*
 * Memory: wolfSSL's allocations of WR_TLS_BIG_MIN bytes or more are mapped on
 * pages of their own (wr_tls.c installs the allocators, process-wide, before
 * wolfSSL_Init). With Debian's 5.5.4 that is one block per session, the 37.5 KB
 * WOLFSSL_SESSION, whose inline certificate chains stay all zero on a server
 * whose clients present no certificate. After the handshake the pages of such
 * a block that are entirely zero are handed back to the kernel
 * (MADV_DONTNEED): a private anonymous page reads as zero again afterwards, so
 * this changes no byte that wolfSSL can see. Record buffers (16 KB) and every
 * smaller allocation stay on malloc.
 */
#define WR_TLS_BIG_MIN (32u * 1024u)

struct wr__tls_big;

/* The large blocks wolfSSL allocated for one connection. Zero-initialised is
 * valid (empty). Loop thread of that connection only. */
struct wr__tls_mem {
    struct wr__tls_big *blocks; /* not owned: wolfSSL frees them */
};

/* Makes <m> (NULL: nobody) the owner of the large blocks wolfSSL allocates on
 * this thread until the matching wr__tls_mem_leave(<returned value>). Brackets
 * wolfSSL_new and the handshake calls of a connection. */
struct wr__tls_mem *wr__tls_mem_enter(struct wr__tls_mem *m);
void wr__tls_mem_leave(struct wr__tls_mem *prev);
/* Returns the all-zero pages of <m>'s blocks to the kernel. Call on the
 * connection's thread, outside any wolfSSL call for it (nothing may write to
 * the blocks meanwhile). Returns the bytes given back; they are also counted
 * in wr_tls_stats.mem_reclaimed. */
size_t wr__tls_mem_reclaim(struct wr__tls_mem *m);
/* Forgets <m>; call before its storage is freed (after wolfSSL_free, which
 * normally frees its blocks already). */
void wr__tls_mem_cleanup(struct wr__tls_mem *m);
/* For tests: large blocks alive in the process, and how many bytes of them
 * are resident (mincore; a dropped page read since then maps the shared zero
 * page and counts as resident). Thread-safe. */
size_t wr__tls_mem_blocks(void);
size_t wr__tls_mem_resident(void);

#endif
