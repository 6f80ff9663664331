/*
 * wr_tlsdev.c: the wolfCrypt crypto-callback device that hands AES-256-GCM
 * (TLS 1.3 record protection) to libsodium, which uses AES-NI where Debian's
 * wolfSSL does not. It acts only on AES-GCM with a 32-byte key, 12-byte IV and
 * 16-byte tag and declines everything else, so wolfSSL runs its own code for
 * hashes, signatures, key exchange and other ciphers. Owns the process-wide
 * device and handshake counters; does not own any TLS object.
 */
#include "wr_tls_int.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/cryptocb.h>

#include "wr/log.h"

#define WR_TLSDEV_KEY_LEN 32
#define WR_TLSDEV_IV_LEN 12
#define WR_TLSDEV_TAG_LEN 16
/* Two keys per live connection (one per direction) make up the working set;
 * a miss costs one AES key expansion (well under a microsecond), so a small
 * cache is enough even when many connections are busy at once. */
#define WR_TLSDEV_CACHE 16

/*
 * One cached libsodium key state. wolfSSL never tells a device that an Aes
 * object was freed, so state is keyed by the key bytes themselves rather than
 * hung off the Aes. <stamp> orders entries for LRU eviction; 0 means empty.
 */
struct wr_tlsdev_key {
    crypto_aead_aes256gcm_state st;
    uint8_t key[WR_TLSDEV_KEY_LEN];
    uint64_t stamp;
};

struct wr_tlsdev_cache {
    struct wr_tlsdev_key e[WR_TLSDEV_CACHE];
    uint64_t clock;
};

/* Per thread, so that the device stays correct if another thread ever runs
 * TLS, without locks. Entries are secrets: they are wiped when evicted. */
static _Thread_local struct wr_tlsdev_cache wr_tlsdev_cache;

/* Process-wide counters (relaxed atomics: they are statistics). */
static uint64_t wr_tlsdev_n_enc;
static uint64_t wr_tlsdev_n_dec;
static uint64_t wr_tlsdev_n_auth_fail;
static uint64_t wr_tlsdev_n_bytes;
static uint64_t wr_tlsdev_n_hs_ok;
static uint64_t wr_tlsdev_n_hs_failed;

static pthread_once_t wr_tlsdev_once = PTHREAD_ONCE_INIT;
static bool wr_tlsdev_ok;

static inline void wr_tlsdev_add(uint64_t *ctr, uint64_t n)
{
    __atomic_fetch_add(ctr, n, __ATOMIC_RELAXED);
}

static inline uint64_t wr_tlsdev_load(const uint64_t *ctr)
{
    return __atomic_load_n(ctr, __ATOMIC_RELAXED);
}

/* Finds (or computes, evicting the least recently used entry) the libsodium
 * state for <key>. Never fails: beforenm only expands the key. */
static const crypto_aead_aes256gcm_state *wr_tlsdev_state(const uint8_t *key)
{
    struct wr_tlsdev_cache *c = &wr_tlsdev_cache;
    struct wr_tlsdev_key *victim = &c->e[0];
    c->clock++;
    for (int i = 0; i < WR_TLSDEV_CACHE; i++) {
        struct wr_tlsdev_key *e = &c->e[i];
        if (e->stamp != 0 && sodium_memcmp(e->key, key, WR_TLSDEV_KEY_LEN) == 0) {
            e->stamp = c->clock;
            return &e->st;
        }
        if (e->stamp < victim->stamp)
            victim = e;
    }
    sodium_memzero(victim, sizeof(*victim));
    memcpy(victim->key, key, WR_TLSDEV_KEY_LEN);
    crypto_aead_aes256gcm_beforenm(&victim->st, key);
    victim->stamp = c->clock;
    return &victim->st;
}

/* wolfSSL keeps the raw key for devices in aes->devKey when the Aes was
 * initialised with a device id; keylen tells AES-128 from AES-256. */
static const uint8_t *wr_tlsdev_key_of(Aes *aes)
{
    if (aes == NULL || aes->keylen != WR_TLSDEV_KEY_LEN)
        return NULL;
    return (const uint8_t *)aes->devKey;
}

static int wr_tlsdev_gcm_enc(wc_CryptoInfo *info)
{
    Aes *aes = info->cipher.aesgcm_enc.aes;
    const uint8_t *key = wr_tlsdev_key_of(aes);
    if (key == NULL || info->cipher.aesgcm_enc.ivSz != WR_TLSDEV_IV_LEN ||
        info->cipher.aesgcm_enc.authTagSz != WR_TLSDEV_TAG_LEN)
        return CRYPTOCB_UNAVAILABLE;
    const crypto_aead_aes256gcm_state *st = wr_tlsdev_state(key);
    unsigned long long maclen = 0;
    word32 sz = info->cipher.aesgcm_enc.sz;
    if (crypto_aead_aes256gcm_encrypt_detached_afternm(
            info->cipher.aesgcm_enc.out, info->cipher.aesgcm_enc.authTag, &maclen,
            info->cipher.aesgcm_enc.in, sz, info->cipher.aesgcm_enc.authIn,
            info->cipher.aesgcm_enc.authInSz, NULL, info->cipher.aesgcm_enc.iv, st) != 0)
        return CRYPTOCB_UNAVAILABLE;
    wr_tlsdev_add(&wr_tlsdev_n_enc, 1);
    wr_tlsdev_add(&wr_tlsdev_n_bytes, sz);
    return 0;
}

static int wr_tlsdev_gcm_dec(wc_CryptoInfo *info)
{
    Aes *aes = info->cipher.aesgcm_dec.aes;
    const uint8_t *key = wr_tlsdev_key_of(aes);
    if (key == NULL || info->cipher.aesgcm_dec.ivSz != WR_TLSDEV_IV_LEN ||
        info->cipher.aesgcm_dec.authTagSz != WR_TLSDEV_TAG_LEN)
        return CRYPTOCB_UNAVAILABLE;
    const crypto_aead_aes256gcm_state *st = wr_tlsdev_state(key);
    word32 sz = info->cipher.aesgcm_dec.sz;
    wr_tlsdev_add(&wr_tlsdev_n_dec, 1);
    if (crypto_aead_aes256gcm_decrypt_detached_afternm(
            info->cipher.aesgcm_dec.out, NULL, info->cipher.aesgcm_dec.in, sz,
            info->cipher.aesgcm_dec.authTag, info->cipher.aesgcm_dec.authIn,
            info->cipher.aesgcm_dec.authInSz, info->cipher.aesgcm_dec.iv, st) != 0) {
        wr_tlsdev_add(&wr_tlsdev_n_auth_fail, 1);
        return AES_GCM_AUTH_E;
    }
    wr_tlsdev_add(&wr_tlsdev_n_bytes, sz);
    return 0;
}

static int wr_tlsdev_on_crypto(int devId, wc_CryptoInfo *info, void *ctx)
{
    (void)devId;
    (void)ctx;
    if (info == NULL || info->algo_type != WC_ALGO_TYPE_CIPHER ||
        info->cipher.type != WC_CIPHER_AES_GCM)
        return CRYPTOCB_UNAVAILABLE;
    return info->cipher.enc ? wr_tlsdev_gcm_enc(info) : wr_tlsdev_gcm_dec(info);
}

static void wr_tlsdev_init_once(void)
{
    if (sodium_init() < 0) {
        WR_WARN("tls", "tlsdev_init", "result=%s", "sodium_init_failed");
        return;
    }
    if (!crypto_aead_aes256gcm_is_available()) {
        WR_INFO("tls", "tlsdev_init", "aesni=%d suite=%s", 0, "TLS13-CHACHA20-POLY1305-SHA256");
        return;
    }
    int rc = wc_CryptoCb_RegisterDevice(WR_TLSDEV_ID, wr_tlsdev_on_crypto, NULL);
    if (rc != 0) {
        WR_WARN("tls", "tlsdev_init", "result=register_failed code=%d", rc);
        return;
    }
    wr_tlsdev_ok = true;
    WR_DEBUG("tls", "tlsdev_init", "aesni=%d suite=%s", 1, "TLS13-AES256-GCM-SHA384");
}

bool wr__tlsdev_init(void)
{
    pthread_once(&wr_tlsdev_once, wr_tlsdev_init_once);
    return wr_tlsdev_ok;
}

bool wr__tlsdev_active(void)
{
    return wr__tlsdev_init();
}

void wr__tls_count_handshake(bool ok)
{
    wr_tlsdev_add(ok ? &wr_tlsdev_n_hs_ok : &wr_tlsdev_n_hs_failed, 1);
}

void wr__tlsdev_get_stats(struct wr_tls_stats *out)
{
    out->dev_encrypt = wr_tlsdev_load(&wr_tlsdev_n_enc);
    out->dev_decrypt = wr_tlsdev_load(&wr_tlsdev_n_dec);
    out->dev_auth_fail = wr_tlsdev_load(&wr_tlsdev_n_auth_fail);
    out->dev_bytes = wr_tlsdev_load(&wr_tlsdev_n_bytes);
    out->handshakes_ok = wr_tlsdev_load(&wr_tlsdev_n_hs_ok);
    out->handshakes_failed = wr_tlsdev_load(&wr_tlsdev_n_hs_failed);
}
