/*
 * wr_tls.c: TLS policy for warren, in one place: TLS 1.3 only, the pinned
 * suite, ALPN "warren/1" (offered by clients, required by servers; peer
 * links use their own protocol and mutual certificates), key
 * exchange groups, no session tickets or cache, the crypto device on every
 * context. Owns struct wr_tls_ctx, the process-wide wolfSSL init and wolfSSL's
 * allocators (large blocks on pages of their own, whose all-zero pages are
 * given back after the handshake). The byte stream (I/O callbacks, buffers,
 * handshake driving) is wr_conn.c's.
 */
#include "wr_tls_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wr/log.h"
#include "wr/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define WR_TLS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WR_TLS_ASAN 1
#endif
#endif
#ifdef WR_TLS_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

#define WR_TLS_SUITE_AES "TLS13-AES256-GCM-SHA384"
#define WR_TLS_SUITE_CHACHA "TLS13-CHACHA20-POLY1305-SHA256"

/* ---- memory: large wolfSSL blocks on pages of their own ------------------------ */

/*
 * wolfSSL's allocators are process-wide (wolfSSL_SetAllocators), so this state
 * is too; it is guarded by wr_tls_big_lock. Every block of WR_TLS_BIG_MIN bytes
 * or more gets its own private anonymous mapping, starting on a page boundary,
 * and an entry in a hash table keyed by its address: the free callback looks
 * up only page-aligned pointers there, and everything it does not find came
 * from malloc (including blocks wolfSSL allocated before the allocators were
 * installed). The entry also links the block into its owner's list, so that a
 * connection reclaims its own blocks only.
 */
struct wr__tls_big {
    uint8_t *base;                   /* page-aligned; what wolfSSL was given */
    size_t size;                     /* what wolfSSL asked for */
    size_t map_len;                  /* <size> rounded up to whole pages */
    struct wr__tls_mem *owner;       /* NULL: none, or the owner is gone */
    struct wr__tls_big *prev, *next; /* in owner->blocks */
};

static size_t wr_tls_page; /* set before the allocators are installed */
static pthread_mutex_t wr_tls_big_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wr__tls_big **wr_tls_big_tab; /* open addressing, linear probing */
static unsigned wr_tls_big_bits;            /* capacity is 1 << bits; 0: no table yet */
static size_t wr_tls_big_n;
static _Atomic uint64_t wr_tls_mem_reclaimed;
static _Thread_local struct wr__tls_mem *wr_tls_mem_cur;

static size_t wr_tls_big_hash(const void *p)
{
    uint64_t k = (uint64_t)(uintptr_t)p / wr_tls_page;
    return (size_t)((k * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - wr_tls_big_bits));
}

/* The slot holding <p>, or the empty slot where its probe ends. Table exists. */
static size_t wr_tls_big_find(const void *p)
{
    size_t mask = ((size_t)1 << wr_tls_big_bits) - 1;
    size_t i = wr_tls_big_hash(p);
    while (wr_tls_big_tab[i] != NULL && wr_tls_big_tab[i]->base != p)
        i = (i + 1) & mask;
    return i;
}

static int wr_tls_big_grow(void)
{
    struct wr__tls_big **old = wr_tls_big_tab;
    size_t old_cap = old != NULL ? (size_t)1 << wr_tls_big_bits : 0;
    unsigned bits = old != NULL ? wr_tls_big_bits + 1 : 6;
    struct wr__tls_big **tab = calloc((size_t)1 << bits, sizeof(*tab));
    if (tab == NULL)
        return WR_ENOMEM;
    wr_tls_big_tab = tab;
    wr_tls_big_bits = bits;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            tab[wr_tls_big_find(old[i]->base)] = old[i];
    free(old);
    return 0;
}

static int wr_tls_big_insert(struct wr__tls_big *b)
{
    /* At most half full, so probes stay short. */
    if (wr_tls_big_tab == NULL || (wr_tls_big_n + 1) * 2 > (size_t)1 << wr_tls_big_bits) {
        int rc = wr_tls_big_grow();
        if (rc != 0)
            return rc;
    }
    wr_tls_big_tab[wr_tls_big_find(b->base)] = b;
    wr_tls_big_n++;
    return 0;
}

/* Empties slot <i>, then moves later entries of the same probe run back so
 * that no lookup stops early at the hole (deletion without tombstones). */
static void wr_tls_big_remove_at(size_t i)
{
    size_t mask = ((size_t)1 << wr_tls_big_bits) - 1;
    wr_tls_big_tab[i] = NULL;
    wr_tls_big_n--;
    for (size_t j = (i + 1) & mask; wr_tls_big_tab[j] != NULL; j = (j + 1) & mask) {
        size_t home = wr_tls_big_hash(wr_tls_big_tab[j]->base);
        /* The entry in <j> stays when its home slot lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        wr_tls_big_tab[i] = wr_tls_big_tab[j];
        wr_tls_big_tab[j] = NULL;
        i = j;
    }
}

static void wr_tls_big_link(struct wr__tls_big *b, struct wr__tls_mem *m)
{
    b->owner = m;
    b->prev = NULL;
    b->next = m->blocks;
    if (m->blocks != NULL)
        m->blocks->prev = b;
    m->blocks = b;
}

static void wr_tls_big_unlink(struct wr__tls_big *b)
{
    if (b->owner == NULL)
        return;
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        b->owner->blocks = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    b->owner = NULL;
    b->prev = b->next = NULL;
}

/* Under ASan the tail past <size> is poisoned, so that wolfSSL overrunning
 * the block is still reported, and the block is a LeakSanitizer root region:
 * LSan does not scan mappings of its own accord, and heap blocks that only
 * the session points to would otherwise be reported as leaks. */
static void wr_tls_big_sanitize(struct wr__tls_big *b, bool live)
{
#ifdef WR_TLS_ASAN
    if (live) {
        ASAN_POISON_MEMORY_REGION(b->base + b->size, b->map_len - b->size);
        __lsan_register_root_region(b->base, b->size);
    } else {
        __lsan_unregister_root_region(b->base, b->size);
        ASAN_UNPOISON_MEMORY_REGION(b->base, b->map_len);
    }
#else
    (void)b;
    (void)live;
#endif
}

static void *wr_tls_big_alloc(size_t size)
{
    if (size > SIZE_MAX - wr_tls_page)
        return NULL;
    size_t len = (size + wr_tls_page - 1) & ~(wr_tls_page - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Never huge pages: with THP "always", khugepaged could otherwise fill a
     * run of merged session mappings back in, dropped pages and all. Then
     * populated at once (before the flag, a populate could fault in a huge
     * page): wolfSSL writes its large blocks whole (it clears a new session),
     * and one populate costs about half as much as the ten page faults it
     * saves. Both are hints; an older kernel refuses the second. */
    (void)madvise(p, len, MADV_NOHUGEPAGE);
    (void)madvise(p, len, MADV_POPULATE_WRITE);
    struct wr__tls_big *b = malloc(sizeof(*b));
    if (b == NULL)
        goto fail_map;
    *b = (struct wr__tls_big){.base = p, .size = size, .map_len = len};
    pthread_mutex_lock(&wr_tls_big_lock);
    int rc = wr_tls_big_insert(b);
    if (rc == 0 && wr_tls_mem_cur != NULL)
        wr_tls_big_link(b, wr_tls_mem_cur);
    pthread_mutex_unlock(&wr_tls_big_lock);
    if (rc != 0)
        goto fail_entry;
    wr_tls_big_sanitize(b, true);
    return p;

fail_entry:
    free(b);
fail_map:
    munmap(p, len);
    return NULL;
}

/* <p>'s entry, removed from the registry and its owner's list; NULL when <p>
 * is not a large block. malloc rarely returns a page-aligned pointer, so the
 * lock is taken for a few small blocks only. */
static struct wr__tls_big *wr_tls_big_take(const void *p)
{
    if (((uintptr_t)p & (wr_tls_page - 1)) != 0)
        return NULL;
    struct wr__tls_big *b = NULL;
    pthread_mutex_lock(&wr_tls_big_lock);
    if (wr_tls_big_tab != NULL) {
        size_t i = wr_tls_big_find(p);
        b = wr_tls_big_tab[i];
        if (b != NULL) {
            wr_tls_big_remove_at(i);
            wr_tls_big_unlink(b);
        }
    }
    pthread_mutex_unlock(&wr_tls_big_lock);
    return b;
}

/* The size wolfSSL asked for when <p> is a large block (and its owner in
 * *owner), else 0. */
static size_t wr_tls_big_size(const void *p, struct wr__tls_mem **owner)
{
    if (((uintptr_t)p & (wr_tls_page - 1)) != 0)
        return 0;
    size_t size = 0;
    pthread_mutex_lock(&wr_tls_big_lock);
    if (wr_tls_big_tab != NULL) {
        struct wr__tls_big *b = wr_tls_big_tab[wr_tls_big_find(p)];
        if (b != NULL) {
            size = b->size;
            *owner = b->owner;
        }
    }
    pthread_mutex_unlock(&wr_tls_big_lock);
    return size;
}

static void *wr_tls_on_malloc(size_t size)
{
    if (size >= WR_TLS_BIG_MIN) {
        void *p = wr_tls_big_alloc(size);
        if (p != NULL)
            return p;
        /* No mapping to be had (map count, memory): the heap may still do. */
    }
    return malloc(size);
}

static void wr_tls_on_free(void *p)
{
    struct wr__tls_big *b = p != NULL ? wr_tls_big_take(p) : NULL;
    if (b == NULL) {
        free(p);
        return;
    }
    wr_tls_big_sanitize(b, false);
    munmap(b->base, b->map_len);
    free(b);
}

static void *wr_tls_on_realloc(void *p, size_t size)
{
    if (p == NULL)
        return wr_tls_on_malloc(size);
    struct wr__tls_mem *owner = NULL;
    size_t old = wr_tls_big_size(p, &owner);
    if (old == 0)
        return realloc(p, size); /* a heap block stays on the heap */
    /* The new block keeps the old one's owner. */
    struct wr__tls_mem *prev = wr_tls_mem_cur;
    if (owner != NULL)
        wr_tls_mem_cur = owner;
    void *n = wr_tls_on_malloc(size);
    wr_tls_mem_cur = prev;
    if (n == NULL)
        return NULL; /* <p> stays valid, as with realloc */
    memcpy(n, p, old < size ? old : size);
    wr_tls_on_free(p);
    return n;
}

static void wr_tls_mem_init(void)
{
    long page = sysconf(_SC_PAGESIZE);
    wr_tls_page = page > 0 ? (size_t)page : 4096;
    if (wolfSSL_SetAllocators(wr_tls_on_malloc, wr_tls_on_free, wr_tls_on_realloc) != 0)
        WR_WARN("tls", "tls_allocators", "detail=\"%s\"", "not installed; no page reclaim");
}

struct wr__tls_mem *wr__tls_mem_enter(struct wr__tls_mem *m)
{
    struct wr__tls_mem *prev = wr_tls_mem_cur;
    wr_tls_mem_cur = m;
    return prev;
}

void wr__tls_mem_leave(struct wr__tls_mem *prev)
{
    wr_tls_mem_cur = prev;
}

static bool wr_tls_is_zero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t w[8];
        memcpy(w, p + i, sizeof(w));
        if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0)
            return false;
    }
    for (; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Gives back the whole pages [<from>, <to>) of <b>; returns the bytes. */
static size_t wr_tls_big_drop(struct wr__tls_big *b, size_t from, size_t to)
{
    if (from == to || madvise(b->base + from, to - from, MADV_DONTNEED) != 0)
        return 0;
    return to - from;
}

/* Drops the resident pages of <b> that are all zero, one madvise per run of
 * them. Only bytes below <size> are read: the tail of the last page is never
 * written (and poisoned under ASan). Pages that are not resident are not read
 * either, which would map the zero page for nothing. */
static size_t wr_tls_big_reclaim(struct wr__tls_big *b)
{
    unsigned char vec[64]; /* residency, for up to 64 pages at a time */
    size_t n = 0;
    size_t span = sizeof(vec) * wr_tls_page;
    for (size_t at = 0; at < b->map_len; at += span) {
        size_t end = b->map_len - at < span ? b->map_len : at + span;
        if (mincore(b->base + at, end - at, vec) != 0)
            break;
        size_t run = at; /* where the current run of droppable pages starts */
        for (size_t pos = at; pos < end; pos += wr_tls_page) {
            size_t check = b->size - pos < wr_tls_page ? b->size - pos : wr_tls_page;
            if ((vec[(pos - at) / wr_tls_page] & 1) != 0 && wr_tls_is_zero(b->base + pos, check))
                continue;
            n += wr_tls_big_drop(b, run, pos);
            run = pos + wr_tls_page;
        }
        n += wr_tls_big_drop(b, run, end);
    }
    return n;
}

size_t wr__tls_mem_reclaim(struct wr__tls_mem *m)
{
    size_t n = 0;
    pthread_mutex_lock(&wr_tls_big_lock);
    for (struct wr__tls_big *b = m->blocks; b != NULL; b = b->next)
        n += wr_tls_big_reclaim(b);
    pthread_mutex_unlock(&wr_tls_big_lock);
    atomic_fetch_add_explicit(&wr_tls_mem_reclaimed, n, memory_order_relaxed);
    return n;
}

void wr__tls_mem_cleanup(struct wr__tls_mem *m)
{
    pthread_mutex_lock(&wr_tls_big_lock);
    while (m->blocks != NULL)
        wr_tls_big_unlink(m->blocks);
    pthread_mutex_unlock(&wr_tls_big_lock);
}

size_t wr__tls_mem_blocks(void)
{
    pthread_mutex_lock(&wr_tls_big_lock);
    size_t n = wr_tls_big_n;
    pthread_mutex_unlock(&wr_tls_big_lock);
    return n;
}

size_t wr__tls_mem_resident(void)
{
    size_t n = 0;
    pthread_mutex_lock(&wr_tls_big_lock);
    size_t cap = wr_tls_big_tab != NULL ? (size_t)1 << wr_tls_big_bits : 0;
    for (size_t i = 0; i < cap; i++) {
        struct wr__tls_big *b = wr_tls_big_tab[i];
        if (b == NULL)
            continue;
        for (size_t off = 0; off < b->map_len; off += wr_tls_page) {
            unsigned char v = 0;
            if (mincore(b->base + off, wr_tls_page, &v) == 0 && (v & 1) != 0)
                n += wr_tls_page;
        }
    }
    pthread_mutex_unlock(&wr_tls_big_lock);
    return n;
}

/* ---- process-wide init, policy ------------------------------------------------- */

static pthread_once_t wr_tls_once = PTHREAD_ONCE_INIT;
static int wr_tls_init_rc;

static void wr_tls_init_once(void)
{
    /* Before wolfSSL_Init, so that its first allocations go through us too. */
    wr_tls_mem_init();
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        WR_ERROR("tls", "tls_init", "err=%s", "ETLS");
        wr_tls_init_rc = WR_ETLS;
        return;
    }
    (void)wr__tlsdev_init();
}

int wr__tls_global_init(void)
{
    pthread_once(&wr_tls_once, wr_tls_init_once);
    return wr_tls_init_rc;
}

const char *wr_tls_suite(void)
{
    return wr__tlsdev_active() ? WR_TLS_SUITE_AES : WR_TLS_SUITE_CHACHA;
}

bool wr_tls_aes_accelerated(void)
{
    return wr__tlsdev_active();
}

void wr_tls_get_stats(struct wr_tls_stats *out)
{
    memset(out, 0, sizeof(*out));
    wr__tlsdev_get_stats(out);
    out->mem_reclaimed = atomic_load_explicit(&wr_tls_mem_reclaimed, memory_order_relaxed);
}

int wr__tls_map_err(int wolf_err)
{
    switch (wolf_err) {
    case UNKNOWN_ALPN_PROTOCOL_NAME_E:
        return WR_EALPN;
    default:
        return WR_ETLS;
    }
}

/* Logs the library's reason for a failed setup call once, here, where the
 * decision is made; callers only see WR_ETLS. */
static int wr_tls_setup_fail(const char *what, const char *path, int rc)
{
    char msg[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)(rc < 0 ? -rc : rc), msg, sizeof(msg));
    char esc[256];
    WR_ERROR("tls", "tls_ctx_setup", "what=%s path=%s code=%d detail=%s err=ETLS", what,
             path ? wr_log_esc(esc, sizeof(esc), path, strlen(path)) : "-", rc,
             wr_log_esc(msg, sizeof(msg), msg, strlen(msg)));
    return WR_ETLS;
}

/*
 * Servers must refuse a client that offers no ALPN at all: wolfSSL's
 * FAILED_ON_MISMATCH only covers a client that offers other protocols. The
 * SNI callback runs for every ClientHello after its extensions are parsed, so
 * it is the one place where a missing ALPN can still be answered with a
 * no_application_protocol alert instead of a completed handshake.
 */
static char wr_tls_alpn_marker;

static int wr_tls_on_client_hello(WOLFSSL *ssl, int *alert, void *arg)
{
    (void)arg;
    /* wolfSSL selects the protocol after this callback (so that an SNI
     * callback could switch contexts); here we can only see whether the
     * client offered any. A foreign list is refused later by
     * FAILED_ON_MISMATCH, with the same alert. */
    char *list = NULL;
    unsigned short len = 0;
    if (wolfSSL_ALPN_GetPeerProtocol(ssl, &list, &len) != WOLFSSL_SUCCESS || list == NULL ||
        len == 0) {
        if (list != NULL)
            wolfSSL_ALPN_FreePeerProtocol(ssl, &list);
        /* Remembered so the connection reports WR_EALPN, not WR_ETLS. */
        (void)wolfSSL_set_ex_data(ssl, WR_TLS_EXDATA_ALPN, &wr_tls_alpn_marker);
        *alert = no_application_protocol;
        return fatal_return;
    }
    wolfSSL_ALPN_FreePeerProtocol(ssl, &list);
    return 0;
}

bool wr__tls_alpn_ok(WOLFSSL *ssl, const char *alpn)
{
    char *proto = NULL;
    unsigned short len = 0;
    int rc = wolfSSL_ALPN_GetProtocol(ssl, &proto, &len);
    return rc == WOLFSSL_SUCCESS && proto != NULL && len == strlen(alpn) &&
           memcmp(proto, alpn, len) == 0;
}

bool wr__tls_alpn_refused(WOLFSSL *ssl)
{
    return wolfSSL_get_ex_data(ssl, WR_TLS_EXDATA_ALPN) == &wr_tls_alpn_marker;
}

/* Settings common to both sides. */
static int wr_tls_ctx_common(WOLFSSL_CTX *ctx)
{
    int rc = wolfSSL_CTX_set_cipher_list(ctx, wr_tls_suite());
    if (rc != WOLFSSL_SUCCESS)
        return wr_tls_setup_fail("cipher_list", NULL, rc);
    /* X25519 first: the fastest key exchange wolfSSL has here; P-256 stays
     * as a fallback for peers that are not warren. */
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
    rc = wolfSSL_CTX_set_groups(ctx, groups, (int)WR_ARRAY_LEN(groups));
    if (rc != WOLFSSL_SUCCESS)
        return wr_tls_setup_fail("groups", NULL, rc);
    /* Tunnels are long-lived and dialed to a fleet: resumption buys nothing,
     * and the global session cache would hold memory and state per peer. */
    wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    if (wr__tlsdev_active()) {
        rc = wolfSSL_CTX_SetDevId(ctx, WR_TLSDEV_ID);
        if (rc != WOLFSSL_SUCCESS)
            return wr_tls_setup_fail("set_dev_id", NULL, rc);
    }
    return 0;
}

/* This side's certificate chain and private key, which must match. */
static int wr_tls_load_identity(WOLFSSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
    int wrc = wolfSSL_CTX_use_certificate_chain_file(ctx, cert_pem);
    if (wrc != WOLFSSL_SUCCESS)
        return wr_tls_setup_fail("certificate", cert_pem, wrc);
    wrc = wolfSSL_CTX_use_PrivateKey_file(ctx, key_pem, WOLFSSL_FILETYPE_PEM);
    if (wrc != WOLFSSL_SUCCESS)
        return wr_tls_setup_fail("private_key", key_pem, wrc);
    wrc = wolfSSL_CTX_check_private_key(ctx);
    if (wrc != WOLFSSL_SUCCESS)
        return wr_tls_setup_fail("key_mismatch", key_pem, wrc);
    return 0;
}

static int wr_tls_load_ca(WOLFSSL_CTX *ctx, const char *ca_pem)
{
    int wrc = wolfSSL_CTX_load_verify_locations(ctx, ca_pem, NULL);
    return wrc == WOLFSSL_SUCCESS ? 0 : wr_tls_setup_fail("ca", ca_pem, wrc);
}

/* Server-only settings. */
static int wr_tls_server_common(WOLFSSL_CTX *ctx)
{
    int wrc = wolfSSL_CTX_no_ticket_TLSv13(ctx);
    if (wrc != 0)
        return wr_tls_setup_fail("no_ticket", NULL, wrc);
    wolfSSL_CTX_set_servername_callback(ctx, wr_tls_on_client_hello);
    return 0;
}

static struct wr_tls_ctx *wr_tls_ctx_wrap(WOLFSSL_CTX *ctx, bool server, bool mutual,
                                          const char *alpn)
{
    struct wr_tls_ctx *t = wr_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->server = server;
    t->mutual = mutual;
    snprintf(t->alpn, sizeof(t->alpn), "%s", alpn != NULL ? alpn : WR_ALPN);
    return t;
}

static bool wr_tls_alpn_valid(const char *alpn)
{
    /* One protocol: wolfSSL's list syntax is comma-separated. */
    return alpn == NULL ||
           (alpn[0] != '\0' && strlen(alpn) < WR_TLS_ALPN_MAX && strchr(alpn, ',') == NULL);
}

/* What a context is made of; NULL members are not loaded. */
struct wr_tls_ctx_spec {
    bool server;
    const char *cert_pem, *key_pem; /* our identity */
    const char *ca_pem;             /* the trust root for the peer's chain */
    const char *alpn;
    int verify; /* WOLFSSL_VERIFY_* */
    bool mutual;
};

static struct wr_tls_ctx *wr_tls_ctx_build(const struct wr_tls_ctx_spec *sp, int *err)
{
    int rc = wr_tls_alpn_valid(sp->alpn) ? wr__tls_global_init() : WR_EUSAGE;
    if (rc != 0)
        goto fail;
    WOLFSSL_CTX *ctx =
        wolfSSL_CTX_new(sp->server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
    if (ctx == NULL) {
        rc = WR_ENOMEM;
        goto fail;
    }
    if (sp->cert_pem != NULL)
        rc = wr_tls_load_identity(ctx, sp->cert_pem, sp->key_pem);
    if (rc == 0 && sp->ca_pem != NULL)
        rc = wr_tls_load_ca(ctx, sp->ca_pem);
    if (rc == 0)
        rc = wr_tls_ctx_common(ctx);
    if (rc == 0 && sp->server)
        rc = wr_tls_server_common(ctx);
    if (rc != 0) {
        wolfSSL_CTX_free(ctx);
        goto fail;
    }
    wolfSSL_CTX_set_verify(ctx, sp->verify, NULL);
    return wr_tls_ctx_wrap(ctx, sp->server, sp->mutual, sp->alpn);
fail:
    if (err)
        *err = rc;
    return NULL;
}

struct wr_tls_ctx *wr_tls_ctx_new_server(const char *cert_pem, const char *key_pem, int *err)
{
    struct wr_tls_ctx_spec sp = {.server = true,
                                 .cert_pem = cert_pem,
                                 .key_pem = key_pem,
                                 .alpn = WR_ALPN,
                                 .verify = WOLFSSL_VERIFY_NONE};
    return wr_tls_ctx_build(&sp, err);
}

struct wr_tls_ctx *wr_tls_ctx_new_client(const char *ca_pem, int *err)
{
    /* The CA is the trust root and the peer's identity is its CN (the node
     * id, wr_conn_peer_cn); host names are not checked against SNI so that
     * an agent whose targeted dial landed on another node can still learn
     * which node it reached. */
    struct wr_tls_ctx_spec sp = {.ca_pem = ca_pem, .alpn = WR_ALPN, .verify = WOLFSSL_VERIFY_PEER};
    return wr_tls_ctx_build(&sp, err);
}

struct wr_tls_ctx *wr_tls_ctx_new_server_mtls(const char *cert_pem, const char *key_pem,
                                              const char *ca_pem, const char *alpn, int *err)
{
    /* A client without a certificate fails the handshake (certificate_required
     * alert), as does one whose chain does not lead to the cluster CA. */
    struct wr_tls_ctx_spec sp = {
        .server = true,
        .cert_pem = cert_pem,
        .key_pem = key_pem,
        .ca_pem = ca_pem,
        .alpn = alpn,
        .verify = WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        .mutual = true,
    };
    return wr_tls_ctx_build(&sp, err);
}

struct wr_tls_ctx *wr_tls_ctx_new_client_mtls(const char *cert_pem, const char *key_pem,
                                              const char *ca_pem, const char *alpn, int *err)
{
    struct wr_tls_ctx_spec sp = {.cert_pem = cert_pem,
                                 .key_pem = key_pem,
                                 .ca_pem = ca_pem,
                                 .alpn = alpn,
                                 .verify = WOLFSSL_VERIFY_PEER,
                                 .mutual = true};
    return wr_tls_ctx_build(&sp, err);
}

void wr_tls_ctx_free(struct wr_tls_ctx *t)
{
    if (t == NULL)
        return;
    wolfSSL_CTX_free(t->ctx);
    free(t);
}

WOLFSSL *wr__tls_ssl_new(struct wr_tls_ctx *t, const char *sni, int *err)
{
    int rc = WR_ENOMEM;
    WOLFSSL *ssl = wolfSSL_new(t->ctx);
    if (ssl == NULL)
        goto fail;
    /* FAILED_ON_MISMATCH: a server answers a foreign protocol list with a
     * no_application_protocol alert; a client fails on a foreign answer. */
    char alpn[WR_TLS_ALPN_MAX];
    snprintf(alpn, sizeof(alpn), "%s", t->alpn);
    int wrc = wolfSSL_UseALPN(ssl, alpn, (unsigned)strlen(alpn), WOLFSSL_ALPN_FAILED_ON_MISMATCH);
    if (wrc != WOLFSSL_SUCCESS) {
        rc = wr_tls_setup_fail("alpn", NULL, wrc);
        goto fail_ssl;
    }
    if (!t->server && sni != NULL && sni[0] != '\0') {
        wrc = wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni));
        if (wrc != WOLFSSL_SUCCESS) {
            rc = wr_tls_setup_fail("sni", NULL, wrc);
            goto fail_ssl;
        }
    }
    return ssl;

fail_ssl:
    wolfSSL_free(ssl);
fail:
    *err = rc;
    return NULL;
}

int wr__tls_der_cn(const uint8_t *der, size_t len, char *out, size_t outlen)
{
    /* DecodedCert rather than WOLFSSL_X509: Debian's wolfSSL cannot build an
     * X509 object from an Ed25519 certificate, but parses it fine. */
    if (len == 0 || len > UINT32_MAX || outlen == 0)
        return WR_ETLS;
    DecodedCert *dc = wr_xmalloc(sizeof(*dc));
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    int rc = WR_ETLS;
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) == 0 && dc->subjectCN != NULL &&
        dc->subjectCNLen > 0 && (size_t)dc->subjectCNLen < outlen) {
        memcpy(out, dc->subjectCN, (size_t)dc->subjectCNLen);
        out[dc->subjectCNLen] = '\0';
        rc = 0;
    }
    wc_FreeDecodedCert(dc);
    free(dc);
    return rc;
}

int wr__tls_peer_cn(WOLFSSL *ssl, char *out, size_t outlen)
{
    /* The session keeps the peer chain as DER (SESSION_CERTS). */
    WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
    if (chain == NULL || wolfSSL_get_chain_count(chain) < 1)
        return WR_ETLS;
    const unsigned char *der = wolfSSL_get_chain_cert(chain, 0);
    int len = wolfSSL_get_chain_length(chain, 0);
    if (der == NULL || len <= 0)
        return WR_ETLS;
    return wr__tls_der_cn(der, (size_t)len, out, outlen);
}
