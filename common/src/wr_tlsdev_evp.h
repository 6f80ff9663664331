/*
 * wr_tlsdev_evp.h: the OpenSSL libcrypto half of the AES-256-GCM device, as
 * wr_tlsdev.c sees it. Debian's wolfSSL is built with OPENSSL_EXTRA, and its
 * compatibility layer defines OpenSSL's own names (EVP_CIPHER_CTX,
 * EVP_EncryptUpdate, ...), so OpenSSL's headers and wolfSSL's cannot meet in
 * one translation unit. wr_tlsdev_evp.c is the only file that includes
 * OpenSSL, and this header includes neither library.
 */
#ifndef WR_TLSDEV_EVP_H
#define WR_TLSDEV_EVP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr/err.h"

/* Keys are 32 bytes, IVs 12 and tags 16. */
#define WR_TLSDEV_EVP_TAG_LEN 16

/* Results of wr__tlsdev_evp_seal/open. */
enum wr_tlsdev_evp_rc {
    WR_TLSDEV_EVP_OK = 0,
    WR_TLSDEV_EVP_DECLINED, /* nothing was written: the caller may do the record itself */
    WR_TLSDEV_EVP_FAILED,   /* libcrypto failed after <out> may have been written */
    WR_TLSDEV_EVP_AUTH,     /* open only: the tag did not verify; <out> is wiped */
};

/* One AES-256-GCM key: an encrypt and a decrypt context, each created and
 * keyed on its first use, so that a record only sets its IV. Owned by the
 * device's key cache; one thread at a time. */
struct wr__tlsdev_evp;

/* Initialises libcrypto, without the system openssl.cnf. True when done.
 * Call once, before registering an atexit handler that calls
 * wr__tlsdev_evp_shutdown (so that it runs before libcrypto's own). */
bool wr__tlsdev_evp_init(void);
/* Fetches libcrypto's AES-256-GCM if not done yet (this loads the default
 * provider: about 1.4 MiB of RSS, so only a process that uses libcrypto for
 * records pays it). True when usable. Not thread-safe; the device calls it
 * from its init and the test hook. */
bool wr__tlsdev_evp_load(void);
/* Releases the fetched cipher; later seal/open calls decline. At process
 * exit, before libcrypto's own cleanup. */
void wr__tlsdev_evp_shutdown(void);

/* An empty key holder (no context yet). NULL on out of memory. */
struct wr__tlsdev_evp *wr__tlsdev_evp_new(void);
/* Frees <k>'s contexts (libcrypto cleanses their key schedules) and <k>.
 * NULL is allowed. */
void wr__tlsdev_evp_free(struct wr__tlsdev_evp *k);

/* AES-256-GCM encryption of <len> bytes from <in> to <out> (the same buffer
 * is allowed) under <key>, which must be the key <k> was first used with;
 * the 16-byte tag goes to <tag>. <aad> may be NULL when <aadlen> is 0. */
WR_MUST_CHECK enum wr_tlsdev_evp_rc
wr__tlsdev_evp_seal(struct wr__tlsdev_evp *k, const uint8_t *key, uint8_t *out, const uint8_t *in,
                    size_t len, const uint8_t *iv, const uint8_t *aad, size_t aadlen, uint8_t *tag);
/* The decryption, checking <tag>. */
WR_MUST_CHECK enum wr_tlsdev_evp_rc wr__tlsdev_evp_open(struct wr__tlsdev_evp *k,
                                                        const uint8_t *key, uint8_t *out,
                                                        const uint8_t *in, size_t len,
                                                        const uint8_t *iv, const uint8_t *aad,
                                                        size_t aadlen, const uint8_t *tag);

#endif
