/*
 * wr_crypto.c: the one place in common/ that talks to libsodium (besides the
 * TLS crypto device): initialisation, random bytes, Ed25519 signatures,
 * strict base64url and constant-time helpers. Callers never see sodium types;
 * sodium failures become WR_EAUTH here.
 */
#include "wr/crypto.h"

#include <limits.h>
#include <sodium.h>

#include "wr/log.h"

/* The header promises these sizes; tie them to libsodium at compile time. */
_Static_assert(WR_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(WR_SIGN_PK_LEN == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(WR_SIGN_SEED_LEN == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(WR_AEAD_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "aead key size");
_Static_assert(WR_AEAD_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "aead nonce");
_Static_assert(WR_AEAD_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "aead tag size");

#define WR_B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

int wr_crypto_init(void)
{
    /* sodium_init() returns 1 when already initialised: fine for us. */
    if (sodium_init() < 0) {
        WR_ERROR("crypto", "crypto_init", "err=EAUTH what=sodium_init_failed");
        return WR_EAUTH;
    }
    return 0;
}

void wr_random_bytes(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void wr_sign_pk_from_seed(const uint8_t seed[WR_SIGN_SEED_LEN], uint8_t pk[WR_SIGN_PK_LEN])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
}

void wr_sign(const uint8_t seed[WR_SIGN_SEED_LEN], const uint8_t *msg, size_t len,
             uint8_t sig[WR_SIG_LEN])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    /* The expanded secret key only lives for this call: callers keep the seed. */
    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_sign_detached(sig, NULL, msg, len, sk);
    sodium_memzero(sk, sizeof(sk));
}

int wr_sign_verify(const uint8_t pk[WR_SIGN_PK_LEN], const uint8_t *msg, size_t len,
                   const uint8_t sig[WR_SIG_LEN])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : WR_EAUTH;
}

ssize_t wr_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    /* ENCODED_LEN counts the NUL; guard its arithmetic against huge <len>. */
    if (len > (SIZE_MAX / 4) - 4)
        return WR_ETOOBIG;
    size_t need = sodium_base64_ENCODED_LEN(len, WR_B64_VARIANT);
    if (outlen < need || need - 1 > (size_t)SSIZE_MAX)
        return WR_ETOOBIG;
    sodium_bin2base64(out, outlen, in, len, WR_B64_VARIANT);
    return (ssize_t)(need - 1);
}

/*
 * libsodium 1.0.18 (Debian 12) lets bytes >= 0x80 through sodium_base642bin()
 * (it reads them as negative chars and decodes them to some sextet), so two
 * different texts would decode to the same bytes. We check the alphabet
 * ourselves first. The check branches on the characters; that reveals at
 * most where a malformed text goes wrong, never a valid token's content
 * beyond its length, and libsodium still does the decoding in constant time.
 */
static bool wr_b64url_is_alphabet(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

ssize_t wr_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    /*
     * Without padding, a length of 1 mod 4 can never be produced by an
     * encoder. The exact decoded size follows from the length, so a short
     * output is reported as WR_ETOOBIG before anything is parsed.
     */
    if (len % 4 == 1)
        return WR_EPROTO;
    size_t dlen = (len / 4) * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (dlen > outlen)
        return WR_ETOOBIG;
    if (len == 0)
        return 0;
    if (!wr_b64url_is_alphabet(in, len))
        return WR_EPROTO;
    /*
     * No ignore set and no end pointer: libsodium then also refuses non-zero
     * trailing bits, so every value has exactly one text form.
     */
    size_t got = 0;
    if (sodium_base642bin(out, outlen, in, len, NULL, &got, NULL, WR_B64_VARIANT) != 0)
        return WR_EPROTO;
    if (got != dlen)
        return WR_EPROTO;
    return (ssize_t)got;
}

ssize_t wr_b64_decode_lenient(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    char text[256];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '=')
            continue;
        if (k == sizeof(text))
            return WR_ETOOBIG;
        text[k++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    ssize_t n = wr_b64url_decode(text, k, out, outlen);
    sodium_memzero(text, sizeof(text));
    return n;
}

void wr_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen)
{
    crypto_generichash(out, outlen, in, inlen, NULL, 0);
}

bool wr_ct_eq(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void wr_memzero(void *p, size_t len)
{
    sodium_memzero(p, len);
}

bool wr_crypto_has_aesgcm(void)
{
    return crypto_aead_aes256gcm_is_available() != 0;
}

int wr_aead_seal(const uint8_t key[static WR_AEAD_KEY_LEN],
                 const uint8_t nonce[static WR_AEAD_NONCE_LEN], const uint8_t *ad, size_t adlen,
                 const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
    if (len > SIZE_MAX - WR_AEAD_TAG_LEN || outlen < len + WR_AEAD_TAG_LEN)
        return WR_ETOOBIG;
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, in, len, ad, adlen, NULL, nonce, key);
    return 0;
}

int wr_aead_open(const uint8_t key[static WR_AEAD_KEY_LEN],
                 const uint8_t nonce[static WR_AEAD_NONCE_LEN], const uint8_t *ad, size_t adlen,
                 const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
    if (len < WR_AEAD_TAG_LEN)
        return WR_EAUTH;
    if (outlen < len - WR_AEAD_TAG_LEN)
        return WR_ETOOBIG;
    unsigned long long mlen = 0;
    /* Failures are expected peer input (a wrong key): no log here, the
     * caller counts them. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in, len, ad, adlen, nonce,
                                                   key) != 0) {
        sodium_memzero(out, len - WR_AEAD_TAG_LEN);
        return WR_EAUTH;
    }
    return 0;
}
