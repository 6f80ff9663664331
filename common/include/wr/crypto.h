/*
 * wr/crypto.h: the libsodium-facing helpers: initialisation, random bytes,
 * Ed25519 signatures, base64url, constant-time compare, the AEAD of gossip
 * packets. Only wr_crypto.c
 * includes sodium.h.
 */
#ifndef WR_CRYPTO_H
#define WR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr/err.h"

#define WR_SIG_LEN 64
#define WR_SIGN_PK_LEN 32
#define WR_SIGN_SEED_LEN 32

/* Must be called once before any other wr_crypto/wr_token/wr_tls call. Idempotent. */
WR_MUST_CHECK int wr_crypto_init(void);
void wr_random_bytes(void *buf, size_t len);
/* Derives the public key of an Ed25519 <seed>. */
void wr_sign_pk_from_seed(const uint8_t seed[WR_SIGN_SEED_LEN], uint8_t pk[WR_SIGN_PK_LEN]);
/* Detached Ed25519 signature of <msg> by the key with <seed>. */
void wr_sign(const uint8_t seed[WR_SIGN_SEED_LEN], const uint8_t *msg, size_t len,
             uint8_t sig[WR_SIG_LEN]);
/* 0 when <sig> is valid for <msg> under <pk>, else WR_EAUTH. */
WR_MUST_CHECK int wr_sign_verify(const uint8_t pk[WR_SIGN_PK_LEN], const uint8_t *msg, size_t len,
                                 const uint8_t sig[WR_SIG_LEN]);
/* base64url without padding. encode returns the length written (NUL added), or
 * WR_ETOOBIG; decode returns the decoded length or WR_EPROTO/WR_ETOOBIG. */
WR_MUST_CHECK ssize_t wr_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
WR_MUST_CHECK ssize_t wr_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen);
/* Decodes a key written as base64 text: base64url or standard alphabet,
 * padding and surrounding whitespace allowed. Returns the decoded length
 * (which the caller checks), or WR_EPROTO / WR_ETOOBIG. */
WR_MUST_CHECK ssize_t wr_b64_decode_lenient(const char *in, size_t len, uint8_t *out,
                                            size_t outlen);
/* BLAKE2b of <in> into <outlen> (16..64) bytes: fingerprints, not passwords. */
void wr_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen);
/* Constant-time equality. */
bool wr_ct_eq(const void *a, const void *b, size_t len);
void wr_memzero(void *p, size_t len);
/* True when libsodium reports AES-NI and PCLMUL (its AES-256-GCM is usable). */
bool wr_crypto_has_aesgcm(void);

/*
 * XChaCha20-Poly1305-IETF AEAD (gossip packets): a 32-byte key, a 24-byte
 * nonce (random nonces are safe at this size), a 16-byte tag appended.
 */
#define WR_AEAD_KEY_LEN 32
#define WR_AEAD_NONCE_LEN 24
#define WR_AEAD_TAG_LEN 16
/* Writes <len> + WR_AEAD_TAG_LEN bytes to <out> (which may not overlap <in>),
 * authenticating <ad> too. Returns 0, or WR_ETOOBIG when <outlen> is short. */
WR_MUST_CHECK int wr_aead_seal(const uint8_t key[static WR_AEAD_KEY_LEN],
                               const uint8_t nonce[static WR_AEAD_NONCE_LEN], const uint8_t *ad,
                               size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
                               size_t outlen);
/* Checks and decrypts <len> bytes (ciphertext + tag) into <out> (len -
 * WR_AEAD_TAG_LEN bytes). Returns 0; WR_EAUTH when <in> is not authentic or
 * shorter than a tag (<out> is wiped then); WR_ETOOBIG when <outlen> is short. */
WR_MUST_CHECK int wr_aead_open(const uint8_t key[static WR_AEAD_KEY_LEN],
                               const uint8_t nonce[static WR_AEAD_NONCE_LEN], const uint8_t *ad,
                               size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
                               size_t outlen);

#endif
