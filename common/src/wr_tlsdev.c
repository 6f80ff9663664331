/*
 * wr_tlsdev.c: the wolfCrypt crypto-callback device that hands AES-256-GCM
 * (TLS 1.3 record protection) to a library that uses AES-NI where Debian's
 * wolfSSL does not: OpenSSL's libcrypto (VAES/VPCLMULQDQ code, the default)
 * or libsodium, chosen once per process (WARREN_AESGCM=openssl|sodium). It
 * acts only on AES-GCM with a 32-byte key, 12-byte IV and 16-byte tag and
 * declines everything else, so wolfSSL runs its own code for hashes,
 * signatures, key exchange and other ciphers. Owns the process-wide device and
 * handshake counters and the per-thread key caches; does not own any TLS
 * object.
 */
#include "wr_tls_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/cryptocb.h>

#include "wr/log.h"
#include "wr_tlsdev_evp.h"

#define WR_TLSDEV_KEY_LEN 32
#define WR_TLSDEV_IV_LEN 12
#define WR_TLSDEV_TAG_LEN 16
/* Two keys per live connection (one per direction) make up the working set;
 * a miss costs one key setup (libsodium: an AES key expansion; libcrypto: two
 * small allocations, the expansion and the GHASH table, a few microseconds),
 * so a small cache is enough even when many connections are busy at once. */
#define WR_TLSDEV_CACHE 16
/* The environment variable that picks the AES-GCM library. */
#define WR_TLSDEV_ENV "WARREN_AESGCM"

enum wr_tlsdev_backend {
    WR_TLSDEV_BE_NONE = 0, /* device not registered: wolfSSL's own code (ChaCha20 suite) */
    WR_TLSDEV_BE_SODIUM,   /* libsodium's crypto_aead_aes256gcm (AES-NI + PCLMUL) */
    WR_TLSDEV_BE_OPENSSL,  /* libcrypto's EVP AES-256-GCM (stitched AES-NI/VAES + GHASH) */
};

/*
 * One cached key. wolfSSL never tells a device that an Aes object was freed,
 * so state is keyed by the key bytes themselves rather than hung off the Aes.
 * Each backend fills in its own part on first use: <st> (libsodium's expanded
 * key), <evp> (libcrypto's keyed contexts, so that a record only sets its
 * IV). <stamp> orders entries for LRU eviction; 0 means empty.
 */
struct wr_tlsdev_key {
    crypto_aead_aes256gcm_state st;
    struct wr__tlsdev_evp *evp;
    uint8_t key[WR_TLSDEV_KEY_LEN];
    uint64_t stamp;
    bool has_st;
};

struct wr_tlsdev_cache {
    struct wr_tlsdev_key e[WR_TLSDEV_CACHE];
    uint64_t clock;
    int last;        /* the entry of the previous record, tried first */
    bool registered; /* the thread-exit destructor knows this cache */
};

/* Per thread, so that the device stays correct if another thread ever runs
 * TLS, without locks. Entries are secrets: they are wiped (and their libcrypto
 * contexts freed) when evicted, when the thread exits, and at process exit. */
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
/* Written by the init (under pthread_once) and by the test hook; read by
 * every record. */
static enum wr_tlsdev_backend wr_tlsdev_backend;
/* Frees the cache of a thread that exits (the main thread's is freed by the
 * atexit handler instead: exit() runs no thread-specific destructors). */
static pthread_key_t wr_tlsdev_tkey;
static bool wr_tlsdev_tkey_ok;

static inline void wr_tlsdev_add(uint64_t *ctr, uint64_t n)
{
    __atomic_fetch_add(ctr, n, __ATOMIC_RELAXED);
}

static inline uint64_t wr_tlsdev_load(const uint64_t *ctr)
{
    return __atomic_load_n(ctr, __ATOMIC_RELAXED);
}

static const char *wr_tlsdev_backend_name(enum wr_tlsdev_backend b)
{
    switch (b) {
    case WR_TLSDEV_BE_SODIUM:
        return "libsodium";
    case WR_TLSDEV_BE_OPENSSL:
        return "openssl";
    default:
        return "none";
    }
}

/* "openssl", "sodium" or "libsodium"; WR_TLSDEV_BE_NONE for anything else. */
static enum wr_tlsdev_backend wr_tlsdev_backend_parse(const char *s)
{
    if (strcmp(s, "openssl") == 0)
        return WR_TLSDEV_BE_OPENSSL;
    if (strcmp(s, "sodium") == 0 || strcmp(s, "libsodium") == 0)
        return WR_TLSDEV_BE_SODIUM;
    return WR_TLSDEV_BE_NONE;
}

/* Frees an entry's libcrypto contexts (libcrypto cleanses their key
 * schedules) and wipes the rest, key bytes included. */
static void wr_tlsdev_key_wipe(struct wr_tlsdev_key *e)
{
    wr__tlsdev_evp_free(e->evp);
    sodium_memzero(e, sizeof(*e));
}

static void wr_tlsdev_cache_wipe(struct wr_tlsdev_cache *c)
{
    for (int i = 0; i < WR_TLSDEV_CACHE; i++)
        wr_tlsdev_key_wipe(&c->e[i]);
    c->clock = 0;
    c->last = 0;
}

/* Thread-exit destructor of wr_tlsdev_tkey; <arg> is that thread's cache. */
static void wr_tlsdev_on_thread_exit(void *arg)
{
    wr_tlsdev_cache_wipe(arg);
}

/* Runs before libcrypto's own atexit handler (registered earlier, so it runs
 * later) and LeakSanitizer's check. Other threads must not be doing TLS by
 * now; if a record still came, the device would decline it and wolfSSL would
 * use its own code. */
static void wr_tlsdev_on_exit(void)
{
    wr_tlsdev_cache_wipe(&wr_tlsdev_cache);
    wr__tlsdev_evp_shutdown();
}

/* Finds the entry for <key>, or takes the least recently used one (wiped)
 * and stores <key> in it. Never fails. */
static struct wr_tlsdev_key *wr_tlsdev_lookup(const uint8_t *key)
{
    struct wr_tlsdev_cache *c = &wr_tlsdev_cache;
    if (!c->registered && wr_tlsdev_tkey_ok)
        c->registered = pthread_setspecific(wr_tlsdev_tkey, c) == 0;
    c->clock++;
    /* Bulk traffic is runs of records under one key: one comparison then,
     * instead of one per live key (sodium_memcmp is a byte loop). */
    struct wr_tlsdev_key *e = &c->e[c->last];
    if (e->stamp != 0 && sodium_memcmp(e->key, key, WR_TLSDEV_KEY_LEN) == 0) {
        e->stamp = c->clock;
        return e;
    }
    int victim = 0;
    for (int i = 0; i < WR_TLSDEV_CACHE; i++) {
        e = &c->e[i];
        if (e->stamp != 0 && sodium_memcmp(e->key, key, WR_TLSDEV_KEY_LEN) == 0) {
            e->stamp = c->clock;
            c->last = i;
            return e;
        }
        if (e->stamp < c->e[victim].stamp)
            victim = i;
    }
    e = &c->e[victim];
    wr_tlsdev_key_wipe(e);
    memcpy(e->key, key, WR_TLSDEV_KEY_LEN);
    e->stamp = c->clock;
    c->last = victim;
    return e;
}

/* wolfSSL keeps the raw key for devices in aes->devKey when the Aes was
 * initialised with a device id; keylen tells AES-128 from AES-256. */
static const uint8_t *wr_tlsdev_key_of(Aes *aes)
{
    if (aes == NULL || aes->keylen != WR_TLSDEV_KEY_LEN)
        return NULL;
    return (const uint8_t *)aes->devKey;
}

/* ---- libsodium ------------------------------------------------------------------ */

/* The libsodium state for <key>. Never fails: beforenm only expands the key. */
static const crypto_aead_aes256gcm_state *wr_tlsdev_sodium_state(const uint8_t *key)
{
    struct wr_tlsdev_key *e = wr_tlsdev_lookup(key);
    if (!e->has_st) {
        crypto_aead_aes256gcm_beforenm(&e->st, key);
        e->has_st = true;
    }
    return &e->st;
}

static int wr_tlsdev_sodium_enc(wc_CryptoInfo *info, const uint8_t *key)
{
    const crypto_aead_aes256gcm_state *st = wr_tlsdev_sodium_state(key);
    unsigned long long maclen = 0;
    if (crypto_aead_aes256gcm_encrypt_detached_afternm(
            info->cipher.aesgcm_enc.out, info->cipher.aesgcm_enc.authTag, &maclen,
            info->cipher.aesgcm_enc.in, info->cipher.aesgcm_enc.sz, info->cipher.aesgcm_enc.authIn,
            info->cipher.aesgcm_enc.authInSz, NULL, info->cipher.aesgcm_enc.iv, st) != 0)
        return CRYPTOCB_UNAVAILABLE;
    return 0;
}

static int wr_tlsdev_sodium_dec(wc_CryptoInfo *info, const uint8_t *key)
{
    const crypto_aead_aes256gcm_state *st = wr_tlsdev_sodium_state(key);
    if (crypto_aead_aes256gcm_decrypt_detached_afternm(
            info->cipher.aesgcm_dec.out, NULL, info->cipher.aesgcm_dec.in,
            info->cipher.aesgcm_dec.sz, info->cipher.aesgcm_dec.authTag,
            info->cipher.aesgcm_dec.authIn, info->cipher.aesgcm_dec.authInSz,
            info->cipher.aesgcm_dec.iv, st) != 0)
        return AES_GCM_AUTH_E;
    return 0;
}

/* ---- OpenSSL libcrypto (wr_tlsdev_evp.c) --------------------------------------- */

/* Maps libcrypto's outcome to the device's: a record it declined before
 * writing anything goes back to wolfSSL (CRYPTOCB_UNAVAILABLE). One that
 * failed after <out> may have been written cannot: TLS 1.3 works in place, so
 * the input is gone, and the record fails (WC_HW_E). Neither happens in
 * practice: GCM only fails on misuse or out of memory. */
static int wr_tlsdev_evp_rc(enum wr_tlsdev_evp_rc rc)
{
    switch (rc) {
    case WR_TLSDEV_EVP_OK:
        return 0;
    case WR_TLSDEV_EVP_AUTH:
        return AES_GCM_AUTH_E;
    case WR_TLSDEV_EVP_FAILED:
        return WC_HW_E;
    default:
        return CRYPTOCB_UNAVAILABLE;
    }
}

/* The libcrypto key holder for <key>; NULL on out of memory. */
static struct wr__tlsdev_evp *wr_tlsdev_evp_of(const uint8_t *key)
{
    struct wr_tlsdev_key *e = wr_tlsdev_lookup(key);
    if (e->evp == NULL)
        e->evp = wr__tlsdev_evp_new();
    return e->evp;
}

static int wr_tlsdev_evp_enc(wc_CryptoInfo *info, const uint8_t *key)
{
    struct wr__tlsdev_evp *k = wr_tlsdev_evp_of(key);
    if (k == NULL)
        return CRYPTOCB_UNAVAILABLE;
    return wr_tlsdev_evp_rc(wr__tlsdev_evp_seal(
        k, key, info->cipher.aesgcm_enc.out, info->cipher.aesgcm_enc.in, info->cipher.aesgcm_enc.sz,
        info->cipher.aesgcm_enc.iv, info->cipher.aesgcm_enc.authIn,
        info->cipher.aesgcm_enc.authInSz, info->cipher.aesgcm_enc.authTag));
}

static int wr_tlsdev_evp_dec(wc_CryptoInfo *info, const uint8_t *key)
{
    struct wr__tlsdev_evp *k = wr_tlsdev_evp_of(key);
    if (k == NULL)
        return CRYPTOCB_UNAVAILABLE;
    return wr_tlsdev_evp_rc(wr__tlsdev_evp_open(
        k, key, info->cipher.aesgcm_dec.out, info->cipher.aesgcm_dec.in, info->cipher.aesgcm_dec.sz,
        info->cipher.aesgcm_dec.iv, info->cipher.aesgcm_dec.authIn,
        info->cipher.aesgcm_dec.authInSz, info->cipher.aesgcm_dec.authTag));
}

/* ---- the device ------------------------------------------------------------- */

static int wr_tlsdev_gcm_enc(wc_CryptoInfo *info)
{
    const uint8_t *key = wr_tlsdev_key_of(info->cipher.aesgcm_enc.aes);
    if (key == NULL || info->cipher.aesgcm_enc.ivSz != WR_TLSDEV_IV_LEN ||
        info->cipher.aesgcm_enc.authTagSz != WR_TLSDEV_TAG_LEN)
        return CRYPTOCB_UNAVAILABLE;
    int rc = wr_tlsdev_backend == WR_TLSDEV_BE_OPENSSL ? wr_tlsdev_evp_enc(info, key)
                                                       : wr_tlsdev_sodium_enc(info, key);
    if (rc != 0)
        return rc;
    wr_tlsdev_add(&wr_tlsdev_n_enc, 1);
    wr_tlsdev_add(&wr_tlsdev_n_bytes, info->cipher.aesgcm_enc.sz);
    return 0;
}

static int wr_tlsdev_gcm_dec(wc_CryptoInfo *info)
{
    const uint8_t *key = wr_tlsdev_key_of(info->cipher.aesgcm_dec.aes);
    if (key == NULL || info->cipher.aesgcm_dec.ivSz != WR_TLSDEV_IV_LEN ||
        info->cipher.aesgcm_dec.authTagSz != WR_TLSDEV_TAG_LEN)
        return CRYPTOCB_UNAVAILABLE;
    int rc = wr_tlsdev_backend == WR_TLSDEV_BE_OPENSSL ? wr_tlsdev_evp_dec(info, key)
                                                       : wr_tlsdev_sodium_dec(info, key);
    if (rc == CRYPTOCB_UNAVAILABLE || rc == WC_HW_E)
        return rc;
    wr_tlsdev_add(&wr_tlsdev_n_dec, 1);
    if (rc != 0) {
        wr_tlsdev_add(&wr_tlsdev_n_auth_fail, 1);
        return AES_GCM_AUTH_E;
    }
    wr_tlsdev_add(&wr_tlsdev_n_bytes, info->cipher.aesgcm_dec.sz);
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

/* The backend for this process: WARREN_AESGCM if set and usable, else
 * libcrypto when it works, else libsodium. libcrypto's AES-GCM is loaded only
 * when it is picked. */
static enum wr_tlsdev_backend wr_tlsdev_pick(void)
{
    const char *env = getenv(WR_TLSDEV_ENV);
    enum wr_tlsdev_backend asked = WR_TLSDEV_BE_OPENSSL;
    if (env != NULL && env[0] != '\0') {
        asked = wr_tlsdev_backend_parse(env);
        if (asked == WR_TLSDEV_BE_NONE) {
            char esc[64];
            WR_WARN("tls", "tlsdev_init", "result=bad_env var=%s value=%s using=default",
                    WR_TLSDEV_ENV, wr_log_esc(esc, sizeof(esc), env, strlen(env)));
            asked = WR_TLSDEV_BE_OPENSSL;
        }
    }
    if (asked == WR_TLSDEV_BE_OPENSSL && !wr__tlsdev_evp_load()) {
        WR_WARN("tls", "tlsdev_init", "result=openssl_unavailable using=%s",
                wr_tlsdev_backend_name(WR_TLSDEV_BE_SODIUM));
        asked = WR_TLSDEV_BE_SODIUM;
    }
    return asked;
}

static void wr_tlsdev_init_once(void)
{
    if (sodium_init() < 0) {
        WR_WARN("tls", "tlsdev_init", "result=%s", "sodium_init_failed");
        return;
    }
    /* libsodium's check (AES-NI and PCLMUL) decides the suite for both
     * backends: without them libcrypto's AES-GCM is slower than ChaCha20. */
    if (!crypto_aead_aes256gcm_is_available()) {
        WR_INFO("tls", "tlsdev_init", "aesni=%d suite=%s", 0, "TLS13-CHACHA20-POLY1305-SHA256");
        return;
    }
    if (!wr__tlsdev_evp_init())
        WR_WARN("tls", "tlsdev_init", "result=%s", "openssl_init_failed");
    wr_tlsdev_tkey_ok = pthread_key_create(&wr_tlsdev_tkey, wr_tlsdev_on_thread_exit) == 0;
    /* After OPENSSL_init_crypto, so that this runs before libcrypto's cleanup. */
    if (atexit(wr_tlsdev_on_exit) != 0)
        WR_WARN("tls", "tlsdev_init", "result=%s", "atexit_failed");
    wr_tlsdev_backend = wr_tlsdev_pick();
    int rc = wc_CryptoCb_RegisterDevice(WR_TLSDEV_ID, wr_tlsdev_on_crypto, NULL);
    if (rc != 0) {
        WR_WARN("tls", "tlsdev_init", "result=register_failed code=%d", rc);
        wr_tlsdev_backend = WR_TLSDEV_BE_NONE;
        return;
    }
    wr_tlsdev_ok = true;
    WR_DEBUG("tls", "tlsdev_init", "aesni=%d suite=%s aead=%s", 1, "TLS13-AES256-GCM-SHA384",
             wr_tlsdev_backend_name(wr_tlsdev_backend));
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

int wr__tlsdev_set_backend(const char *name)
{
    if (!wr__tlsdev_init())
        return WR_ETLS;
    enum wr_tlsdev_backend b = wr_tlsdev_backend_parse(name);
    if (b == WR_TLSDEV_BE_NONE)
        return WR_EUSAGE;
    if (b == WR_TLSDEV_BE_OPENSSL && !wr__tlsdev_evp_load())
        return WR_ETLS;
    wr_tlsdev_backend = b;
    return 0;
}

void wr__tlsdev_thread_cleanup(void)
{
    wr_tlsdev_cache_wipe(&wr_tlsdev_cache);
}

const char *wr_tls_aead_backend(void)
{
    if (!wr__tlsdev_init())
        return "none";
    return wr_tlsdev_backend_name(wr_tlsdev_backend);
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
