/*
 * wr_tlsdev_evp.c: AES-256-GCM records with OpenSSL's libcrypto (EVP), for
 * the crypto device in wr_tlsdev.c. libcrypto's GCM is the stitched
 * AES-NI/VAES + carry-less multiply code, about twice libsodium's speed here.
 * Keeps one keyed EVP context per key and direction, so that a record only
 * sets its IV; key expansion and GHASH tables are computed once per key.
 * Knows nothing of wolfSSL (see wr_tlsdev_evp.h for why) nor of the cache.
 */
#include "wr_tlsdev_evp.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

struct wr__tlsdev_evp {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

/* libcrypto's AES-256-GCM, fetched once by wr__tlsdev_evp_load; NULL before,
 * when libcrypto is unusable, and after shutdown. Set and cleared while no
 * record is in flight (the device's init under pthread_once, the test hook,
 * the exit handler), like <inited>. */
static EVP_CIPHER *wr_tlsdev_evp_gcm;
static bool wr_tlsdev_evp_inited;

bool wr__tlsdev_evp_init(void)
{
    /* The system openssl.cnf is for OpenSSL's TLS users; warren uses only
     * the default provider's AES-GCM and should not change with it. */
    wr_tlsdev_evp_inited = OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) == 1;
    return wr_tlsdev_evp_inited;
}

bool wr__tlsdev_evp_load(void)
{
    if (wr_tlsdev_evp_gcm == NULL && wr_tlsdev_evp_inited)
        wr_tlsdev_evp_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    return wr_tlsdev_evp_gcm != NULL;
}

void wr__tlsdev_evp_shutdown(void)
{
    /* Contexts still alive hold their own reference to the cipher. */
    EVP_CIPHER_free(wr_tlsdev_evp_gcm);
    wr_tlsdev_evp_gcm = NULL;
    wr_tlsdev_evp_inited = false; /* no load after libcrypto's cleanup */
}

struct wr__tlsdev_evp *wr__tlsdev_evp_new(void)
{
    return calloc(1, sizeof(struct wr__tlsdev_evp));
}

void wr__tlsdev_evp_free(struct wr__tlsdev_evp *k)
{
    if (k == NULL)
        return;
    EVP_CIPHER_CTX_free(k->enc);
    EVP_CIPHER_CTX_free(k->dec);
    free(k);
}

/* The context of one direction, keyed on first use. NULL when libcrypto
 * fails (out of memory); nothing is kept then. */
static EVP_CIPHER_CTX *wr_tlsdev_evp_ctx(EVP_CIPHER_CTX **slot, const uint8_t *key, int enc)
{
    if (*slot != NULL)
        return *slot;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (x == NULL)
        return NULL;
    if (EVP_CipherInit_ex2(x, wr_tlsdev_evp_gcm, key, NULL, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(x);
        return NULL;
    }
    *slot = x;
    return x;
}

/* Drops a context after a libcrypto failure, so that the next record starts
 * from a fresh one. */
static void wr_tlsdev_evp_drop(EVP_CIPHER_CTX **slot)
{
    EVP_CIPHER_CTX_free(*slot);
    *slot = NULL;
}

enum wr_tlsdev_evp_rc wr__tlsdev_evp_seal(struct wr__tlsdev_evp *k, const uint8_t *key,
                                          uint8_t *out, const uint8_t *in, size_t len,
                                          const uint8_t *iv, const uint8_t *aad, size_t aadlen,
                                          uint8_t *tag)
{
    if (wr_tlsdev_evp_gcm == NULL || len > INT_MAX || aadlen > INT_MAX)
        return WR_TLSDEV_EVP_DECLINED;
    EVP_CIPHER_CTX *x = wr_tlsdev_evp_ctx(&k->enc, key, 1);
    if (x == NULL)
        return WR_TLSDEV_EVP_DECLINED;
    int n = 0;
    if (EVP_EncryptInit_ex2(x, NULL, NULL, iv, NULL) != 1 ||
        (aadlen > 0 && EVP_EncryptUpdate(x, NULL, &n, aad, (int)aadlen) != 1)) {
        wr_tlsdev_evp_drop(&k->enc);
        return WR_TLSDEV_EVP_DECLINED;
    }
    /* GCM's final step writes no bytes; <fin> only keeps "out + n" from
     * being computed on a NULL <out> (empty records). */
    uint8_t fin[WR_TLSDEV_EVP_TAG_LEN];
    if ((len > 0 && EVP_EncryptUpdate(x, out, &n, in, (int)len) != 1) ||
        EVP_EncryptFinal_ex(x, fin, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, WR_TLSDEV_EVP_TAG_LEN, tag) != 1) {
        wr_tlsdev_evp_drop(&k->enc);
        return WR_TLSDEV_EVP_FAILED;
    }
    return WR_TLSDEV_EVP_OK;
}

enum wr_tlsdev_evp_rc wr__tlsdev_evp_open(struct wr__tlsdev_evp *k, const uint8_t *key,
                                          uint8_t *out, const uint8_t *in, size_t len,
                                          const uint8_t *iv, const uint8_t *aad, size_t aadlen,
                                          const uint8_t *tag)
{
    if (wr_tlsdev_evp_gcm == NULL || len > INT_MAX || aadlen > INT_MAX)
        return WR_TLSDEV_EVP_DECLINED;
    EVP_CIPHER_CTX *x = wr_tlsdev_evp_ctx(&k->dec, key, 0);
    if (x == NULL)
        return WR_TLSDEV_EVP_DECLINED;
    /* Copied because the ctrl takes a non-const pointer. */
    uint8_t want[WR_TLSDEV_EVP_TAG_LEN];
    memcpy(want, tag, sizeof(want));
    int n = 0;
    if (EVP_DecryptInit_ex2(x, NULL, NULL, iv, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, (int)sizeof(want), want) != 1 ||
        (aadlen > 0 && EVP_DecryptUpdate(x, NULL, &n, aad, (int)aadlen) != 1)) {
        wr_tlsdev_evp_drop(&k->dec);
        return WR_TLSDEV_EVP_DECLINED;
    }
    uint8_t fin[WR_TLSDEV_EVP_TAG_LEN]; /* see seal */
    if (len > 0 && EVP_DecryptUpdate(x, out, &n, in, (int)len) != 1) {
        wr_tlsdev_evp_drop(&k->dec);
        OPENSSL_cleanse(out, len);
        return WR_TLSDEV_EVP_FAILED;
    }
    /* Final fails for a tag mismatch; the context stays usable, as the next
     * record sets a new IV and tag. The plaintext was written already (in
     * place, TLS has no copy of the ciphertext left): wipe it. */
    if (EVP_DecryptFinal_ex(x, fin, &n) != 1) {
        if (len > 0)
            OPENSSL_cleanse(out, len);
        return WR_TLSDEV_EVP_AUTH;
    }
    return WR_TLSDEV_EVP_OK;
}
