/*
 * test_tls.c: the wolfSSL domain end to end: the AES-GCM crypto device with
 * each of its libraries (libcrypto, libsodium) against libsodium's reference,
 * the WARREN_AESGCM choice, real TLS 1.3 handshakes between two wr_conns on
 * 127.0.0.1 in one loop (data both ways through the device with each library,
 * wrong CA, ALPN refusal, garbage, handshake timeout, read_stop/read_start,
 * close_notify half-close, and the mutual TLS of peer links). The throughput
 * and idle-memory figures come from bench_tls, run by hand with WR_BENCH=1
 * ./test_tls bench_tls (it is not a ctest case; WARREN_AESGCM picks the
 * library it measures).
 */
/* link: wr_tls wr_base wolfssl sodium */
#include "../../../common/src/wr_tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "test.h"
#include "wr/addr.h"
#include "wr/cert.h"
#include "wr/conn.h"
#include "wr/log.h"
#include "wr/util.h"

/* ---- certificates ------------------------------------------------------------- */

struct tt_pki {
    char dir[64];
    char ca_crt[128], ca_key[128], crt[128], key[128];
    char dir2[64];
    char ca2_crt[128], ca2_key[128];
};

static void tt_pki_make(struct tt_pki *p)
{
    snprintf(p->dir, sizeof(p->dir), "/tmp/wr_test_tls.XXXXXX");
    ASSERT(mkdtemp(p->dir) != NULL);
    snprintf(p->dir2, sizeof(p->dir2), "/tmp/wr_test_tls2.XXXXXX");
    ASSERT(mkdtemp(p->dir2) != NULL);
    snprintf(p->ca_crt, sizeof(p->ca_crt), "%s/ca.crt", p->dir);
    snprintf(p->ca_key, sizeof(p->ca_key), "%s/ca.key", p->dir);
    snprintf(p->crt, sizeof(p->crt), "%s/node.crt", p->dir);
    snprintf(p->key, sizeof(p->key), "%s/node.key", p->dir);
    snprintf(p->ca2_crt, sizeof(p->ca2_crt), "%s/ca.crt", p->dir2);
    snprintf(p->ca2_key, sizeof(p->ca2_key), "%s/ca.key", p->dir2);
    ASSERT_OK(wr_cert_ca_init(p->dir, "test-cluster", 30));
    ASSERT_OK(wr_cert_issue(p->ca_crt, p->ca_key, "node-1", 30, p->crt, p->key));
    ASSERT_OK(wr_cert_ca_init(p->dir2, "other-cluster", 30));
}

static void tt_pki_free(struct tt_pki *p)
{
    unlink(p->ca_crt);
    unlink(p->ca_key);
    unlink(p->crt);
    unlink(p->key);
    unlink(p->ca2_crt);
    unlink(p->ca2_key);
    rmdir(p->dir);
    rmdir(p->dir2);
}

/* ---- a client/server pair in one loop ------------------------------------------ */

struct tt_fx;

struct tt_side {
    struct tt_fx *fx;
    struct wr_conn *c;
    const char *name;
    bool ready_called;
    int ready_status;
    int error;
    bool eof;
    bool closed;
    size_t rx;      /* bytes received, checked against the pattern */
    size_t rx_want; /* close both once both sides have this many */
    size_t tx;      /* bytes queued so far */
    size_t tx_want;
    bool stop_once; /* read_stop in the first on_read, read_start later */
    bool stopped;
    size_t rx_at_stop;
    bool in_api; /* inside a wr_conn_* call: callbacks must not fire */
    bool shutdown_when_sent;
    bool close_on_eof;
    size_t tx_on_eof; /* answer this many bytes after on_eof, then close */
    int reads;
};

struct tt_fx {
    uv_loop_t loop;
    uv_tcp_t listener;
    bool listener_open;
    struct sockaddr_storage addr;
    struct wr_tls_ctx *srv_tls;
    struct wr_tls_ctx *cli_tls;
    struct wr_conn_opts srv_opts;
    struct tt_side srv, cli;
    uv_timer_t kick; /* read_start from a later loop turn */
    bool kick_open;
    bool auto_finish; /* close both once each side has its rx_want */
    bool bench;       /* no per-byte pattern work: measure the transport */
};

static uint8_t tt_pat(size_t i)
{
    return (uint8_t)((i * 131u + (i >> 13)) & 0xff);
}

static void tt_maybe_finish(struct tt_fx *fx);

static void tt_fill(struct tt_side *s)
{
    static uint8_t chunk[128 * 1024];
    while (s->tx < s->tx_want && wr_conn_write_queued(s->c) < 1024 * 1024) {
        size_t n = s->tx_want - s->tx;
        if (n > sizeof(chunk))
            n = sizeof(chunk);
        /* Vary the write size so small (staged) and large (direct) writes mix. */
        if ((s->tx / sizeof(chunk)) % 3 == 1 && n > 1000)
            n = 1000;
        if (!s->fx->bench)
            for (size_t i = 0; i < n; i++)
                chunk[i] = tt_pat(s->tx + i);
        else if (n == 1000)
            n = s->tx_want - s->tx < sizeof(chunk) ? s->tx_want - s->tx : sizeof(chunk);
        s->in_api = true;
        int rc = wr_conn_write(s->c, chunk, n);
        s->in_api = false;
        ASSERT_OK(rc);
        s->tx += n;
    }
    if (s->tx == s->tx_want && s->shutdown_when_sent) {
        s->shutdown_when_sent = false;
        s->in_api = true;
        ASSERT_OK(wr_conn_shutdown(s->c));
        s->in_api = false;
    }
}

static void tt_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct tt_side *s = arg;
    ASSERT(!s->in_api);
    ASSERT(!s->ready_called);
    ASSERT_PTR_EQ(c, s->c);
    s->ready_called = true;
    s->ready_status = status;
    if (status != 0) {
        wr_conn_close(c, false);
        return;
    }
    ASSERT(wr_conn_is_ready(c));
    tt_fill(s);
}

static void tt_kick_cb(uv_timer_t *t)
{
    struct tt_side *s = t->data;
    s->in_api = true;
    ASSERT_OK(wr_conn_read_start(s->c));
    s->in_api = false;
}

static void tt_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct tt_side *s = arg;
    (void)c;
    ASSERT(!s->in_api);
    ASSERT(!s->eof);
    for (size_t i = 0; i < len && !s->fx->bench; i++)
        if (data[i] != tt_pat(s->rx + i))
            TEST_FAIL("%s: byte %zu differs", s->name, s->rx + i);
    s->rx += len;
    s->reads++;
    if (s->stop_once && !s->stopped) {
        s->stopped = true;
        s->rx_at_stop = s->rx;
        s->in_api = true;
        ASSERT_OK(wr_conn_read_stop(c));
        s->in_api = false;
        uv_timer_start(&s->fx->kick, tt_kick_cb, 0, 0);
        s->fx->kick.data = s;
    }
    tt_maybe_finish(s->fx);
}

static void tt_on_eof(struct wr_conn *c, void *arg)
{
    struct tt_side *s = arg;
    ASSERT(!s->in_api);
    ASSERT(!s->eof);
    s->eof = true;
    if (s->tx_on_eof) {
        s->tx_want = s->tx_on_eof;
        tt_fill(s);
    }
    if (s->close_on_eof)
        wr_conn_close(c, true);
    tt_maybe_finish(s->fx);
}

static void tt_on_error(struct wr_conn *c, int err, void *arg)
{
    struct tt_side *s = arg;
    ASSERT(!s->in_api);
    s->error = err;
    wr_conn_close(c, false);
}

static void tt_on_drain(struct wr_conn *c, void *arg)
{
    struct tt_side *s = arg;
    (void)c;
    ASSERT(!s->in_api);
    tt_fill(s);
}

static void tt_on_close(struct wr_conn *c, void *arg)
{
    struct tt_side *s = arg;
    ASSERT_PTR_EQ(c, s->c);
    ASSERT(!s->closed);
    s->closed = true;
    s->c = NULL;
}

static const struct wr_conn_cbs tt_cbs = {
    .on_ready = tt_on_ready,
    .on_read = tt_on_read,
    .on_eof = tt_on_eof,
    .on_error = tt_on_error,
    .on_drain = tt_on_drain,
    .on_close = tt_on_close,
};

static void tt_maybe_finish(struct tt_fx *fx)
{
    struct tt_side *a = &fx->srv, *b = &fx->cli;
    if (!fx->auto_finish)
        return;
    if (a->rx < a->rx_want || b->rx < b->rx_want)
        return;
    if (a->c)
        wr_conn_close(a->c, true);
    if (b->c)
        wr_conn_close(b->c, true);
}

static void tt_on_connection(uv_stream_t *server, int status)
{
    struct tt_fx *fx = server->data;
    ASSERT_OK(status);
    int err = 0;
    fx->srv.c = wr_conn_accept(server, &fx->srv_opts, &tt_cbs, &fx->srv, &err);
    ASSERT(fx->srv.c != NULL);
    if (fx->srv_tls == NULL) {
        /* Accepted plain connections are ready at once, without on_ready. */
        ASSERT(wr_conn_is_ready(fx->srv.c));
        tt_fill(&fx->srv);
    }
    /* One connection per test. */
    uv_close((uv_handle_t *)&fx->listener, NULL);
    fx->listener_open = false;
}

static void tt_fx_init(struct tt_fx *fx, struct tt_pki *p, bool tls, const char *client_ca)
{
    memset(fx, 0, sizeof(*fx));
    ASSERT_OK(uv_loop_init(&fx->loop));
    fx->srv.fx = fx->cli.fx = fx;
    fx->srv.name = "server";
    fx->cli.name = "client";
    int err = 0;
    if (tls) {
        fx->srv_tls = wr_tls_ctx_new_server(p->crt, p->key, &err);
        ASSERT(fx->srv_tls != NULL);
        fx->cli_tls = wr_tls_ctx_new_client(client_ca ? client_ca : p->ca_crt, &err);
        ASSERT(fx->cli_tls != NULL);
    }
    fx->srv_opts.tls = fx->srv_tls;
    fx->srv_opts.nodelay = true;
    ASSERT_OK(uv_tcp_init(&fx->loop, &fx->listener));
    fx->listener.data = fx;
    fx->listener_open = true;
    struct sockaddr_storage any;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&fx->listener, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&fx->listener, 16, tt_on_connection));
    int len = sizeof(fx->addr);
    ASSERT_OK(uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&fx->addr, &len));
    ASSERT_OK(uv_timer_init(&fx->loop, &fx->kick));
    fx->kick_open = true;
}

static void tt_fx_dial(struct tt_fx *fx, const char *sni)
{
    struct wr_conn_opts o = {.tls = fx->cli_tls, .sni = sni, .nodelay = true};
    int err = 0;
    fx->cli.c = wr_conn_dial(&fx->loop, (struct sockaddr *)&fx->addr, &o, &tt_cbs, &fx->cli, &err);
    ASSERT(fx->cli.c != NULL);
}

static void tt_fx_run_and_close(struct tt_fx *fx)
{
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    if (fx->listener_open) {
        uv_close((uv_handle_t *)&fx->listener, NULL);
        fx->listener_open = false;
    }
    if (fx->kick_open) {
        uv_close((uv_handle_t *)&fx->kick, NULL);
        fx->kick_open = false;
    }
    ASSERT_OK(uv_run(&fx->loop, UV_RUN_DEFAULT) < 0);
    ASSERT(fx->srv.c == NULL);
    ASSERT(fx->cli.c == NULL);
    wr_tls_ctx_free(fx->srv_tls);
    wr_tls_ctx_free(fx->cli_tls);
    ASSERT_EQ(0, uv_loop_close(&fx->loop));
}

/* ---- the crypto device ------------------------------------------------------- */

/* The two AES-GCM libraries the device can use, by wr_tls_aead_backend() name. */
static const char *const tt_backends[] = {"libsodium", "openssl"};

/* Switches the device to <backend> (both ends of an in-process TLS pair use
 * the same one). False when the device is not in use (no AES-NI). */
static bool tt_use_backend(const char *backend)
{
    ASSERT_OK(wr__tls_global_init());
    if (!wr_tls_aes_accelerated())
        return false;
    ASSERT_OK(wr__tlsdev_set_backend(backend));
    ASSERT_STR_EQ(wr_tls_aead_backend(), backend);
    return true;
}

/* wc_AesGcmEncrypt through the device must give libsodium's ciphertext and
 * tag byte for byte (libsodium's one-shot API, without the device, is the
 * reference) for an <n>-byte message; wc_AesGcmDecrypt must give <m> back in
 * place and refuse a tag with one bit flipped. */
static void tt_dev_check(Aes *aes, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
                         size_t aadlen, const uint8_t *m, uint8_t *c1, uint8_t *c2, size_t n)
{
    uint8_t tag1[16], tag2[16];
    ASSERT_OK(
        wc_AesGcmEncrypt(aes, c1, m, (word32)n, iv, 12, tag1, sizeof(tag1), aad, (word32)aadlen));
    unsigned long long maclen = 0;
    ASSERT_OK(crypto_aead_aes256gcm_encrypt_detached(c2, tag2, &maclen, m, n, aad, aadlen, NULL, iv,
                                                     key));
    ASSERT_MEM_EQ(c1, c2, n);
    ASSERT_MEM_EQ(tag1, tag2, 16);
    ASSERT_OK(
        wc_AesGcmDecrypt(aes, c1, c1, (word32)n, iv, 12, tag1, sizeof(tag1), aad, (word32)aadlen));
    ASSERT_MEM_EQ(c1, m, n);
    tag2[0] ^= 1;
    ASSERT_EQ(AES_GCM_AUTH_E, wc_AesGcmDecrypt(aes, c1, c2, (word32)n, iv, 12, tag2, sizeof(tag2),
                                               aad, (word32)aadlen));
}

static void tt_dev_roundtrip_case(const char *backend)
{
    ASSERT(tt_use_backend(backend));
    bool wipes = strcmp(backend, "openssl") == 0;
    uint8_t key[32], iv[12], aad[5] = {0x17, 0x03, 0x03, 0x40, 0x11};
    randombytes_buf(key, sizeof(key));
    randombytes_buf(iv, sizeof(iv));
    enum { N = 16401 };
    uint8_t *m = malloc(N), *c1 = malloc(N), *c2 = malloc(N), *p = malloc(N);
    randombytes_buf(m, N);
    uint8_t tag1[16], tag2[16];

    struct wr_tls_stats before, after;
    wr_tls_get_stats(&before);
    Aes aes;
    ASSERT_OK(wc_AesInit(&aes, NULL, WR_TLSDEV_ID));
    ASSERT_OK(wc_AesGcmSetKey(&aes, key, sizeof(key)));
    ASSERT_OK(
        wc_AesGcmEncrypt(&aes, c1, m, N, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    unsigned long long maclen = 0;
    ASSERT_OK(crypto_aead_aes256gcm_encrypt_detached(c2, tag2, &maclen, m, N, aad, sizeof(aad),
                                                     NULL, iv, key));
    ASSERT_MEM_EQ(c1, c2, N);
    ASSERT_MEM_EQ(tag1, tag2, 16);

    ASSERT_OK(
        wc_AesGcmDecrypt(&aes, p, c1, N, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    ASSERT_MEM_EQ(p, m, N);
    /* In place, as TLS 1.3 decrypts records. */
    memcpy(p, c1, N);
    ASSERT_OK(
        wc_AesGcmDecrypt(&aes, p, p, N, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    ASSERT_MEM_EQ(p, m, N);

    /* Tampering: a ciphertext bit, the record header (the AAD), the tag. */
    c1[100] ^= 1;
    ASSERT_EQ(AES_GCM_AUTH_E, wc_AesGcmDecrypt(&aes, p, c1, N, iv, sizeof(iv), tag1, sizeof(tag1),
                                               aad, sizeof(aad)));
    if (wipes) /* unauthenticated plaintext is not handed back */
        for (size_t i = 0; i < N; i++)
            ASSERT_EQ(p[i], 0);
    c1[100] ^= 1;
    aad[0] ^= 1;
    ASSERT_EQ(AES_GCM_AUTH_E, wc_AesGcmDecrypt(&aes, p, c1, N, iv, sizeof(iv), tag1, sizeof(tag1),
                                               aad, sizeof(aad)));
    aad[0] ^= 1;
    tag1[15] ^= 0x80;
    ASSERT_EQ(AES_GCM_AUTH_E, wc_AesGcmDecrypt(&aes, p, c1, N, iv, sizeof(iv), tag1, sizeof(tag1),
                                               aad, sizeof(aad)));
    tag1[15] ^= 0x80;
    /* The same key state still works after the failures. */
    ASSERT_OK(
        wc_AesGcmDecrypt(&aes, p, c1, N, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    ASSERT_MEM_EQ(p, m, N);
    wr_tls_get_stats(&after);
    ASSERT_EQ(after.dev_encrypt - before.dev_encrypt, 1);
    ASSERT_EQ(after.dev_decrypt - before.dev_decrypt, 6);
    ASSERT_EQ(after.dev_auth_fail - before.dev_auth_fail, 3);
    ASSERT_EQ(after.dev_bytes - before.dev_bytes, 4 * N);

    /* Sizes around the AES block and the libraries' stride, a new IV per
     * record as TLS does, and an empty message (the tag covers the AAD only). */
    static const size_t sizes[] = {0, 1, 15, 16, 17, 255, 256, 257, 1000, 4096, 16384};
    for (size_t i = 0; i < WR_ARRAY_LEN(sizes); i++) {
        iv[11] = (uint8_t)i;
        tt_dev_check(&aes, key, iv, aad, sizeof(aad), m, c1, c2, sizes[i]);
    }
    /* No AAD at all. */
    tt_dev_check(&aes, key, iv, NULL, 0, m, c1, c2, 300);

    /* AES-128 is declined and runs in wolfCrypt, still correct. */
    ASSERT_OK(wc_AesGcmSetKey(&aes, key, 16));
    ASSERT_OK(
        wc_AesGcmEncrypt(&aes, c1, m, 64, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    ASSERT_OK(
        wc_AesGcmDecrypt(&aes, p, c1, 64, iv, sizeof(iv), tag1, sizeof(tag1), aad, sizeof(aad)));
    ASSERT_MEM_EQ(p, m, 64);
    struct wr_tls_stats after2;
    wr_tls_get_stats(&after2);
    ASSERT_EQ(after2.dev_encrypt, after.dev_encrypt + WR_ARRAY_LEN(sizes) + 1);
    ASSERT_EQ(after2.dev_decrypt, after.dev_decrypt + 2 * (WR_ARRAY_LEN(sizes) + 1));
    ASSERT_EQ(after2.dev_auth_fail, after.dev_auth_fail + WR_ARRAY_LEN(sizes) + 1);
    wc_AesFree(&aes);

    /* More keys than the cache holds: evictions must not break anything,
     * and a wiped cache (as at thread exit) fills again. */
    for (int k = 0; k < 40; k++) {
        key[0] = (uint8_t)k;
        ASSERT_OK(wc_AesInit(&aes, NULL, WR_TLSDEV_ID));
        ASSERT_OK(wc_AesGcmSetKey(&aes, key, sizeof(key)));
        tt_dev_check(&aes, key, iv, aad, sizeof(aad), m, c1, c2, 256);
        wc_AesFree(&aes);
        if (k == 20)
            wr__tlsdev_thread_cleanup();
    }
    free(m);
    free(c1);
    free(c2);
    free(p);
}

/* A thread of its own uses the device and exits: its key cache (libcrypto
 * contexts included) must be freed then, which ASan's leak check verifies. */
static void *tt_dev_thread(void *arg)
{
    (void)arg;
    uint8_t key[32], iv[12], m[600], c1[600], c2[600];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(iv, sizeof(iv));
    randombytes_buf(m, sizeof(m));
    Aes aes;
    ASSERT_OK(wc_AesInit(&aes, NULL, WR_TLSDEV_ID));
    ASSERT_OK(wc_AesGcmSetKey(&aes, key, sizeof(key)));
    tt_dev_check(&aes, key, iv, NULL, 0, m, c1, c2, sizeof(m));
    wc_AesFree(&aes);
    return NULL;
}

TEST(dev_roundtrip)
{
    ASSERT_OK(wr__tls_global_init());
    ASSERT(sodium_init() >= 0);
    if (!crypto_aead_aes256gcm_is_available()) {
        printf("skip: no AES-NI; the device is not used\n");
        ASSERT(!wr_tls_aes_accelerated());
        ASSERT_STR_EQ(wr_tls_suite(), "TLS13-CHACHA20-POLY1305-SHA256");
        ASSERT_STR_EQ(wr_tls_aead_backend(), "none");
        return;
    }
    ASSERT(wr_tls_aes_accelerated());
    ASSERT_STR_EQ(wr_tls_suite(), "TLS13-AES256-GCM-SHA384");
    for (size_t i = 0; i < WR_ARRAY_LEN(tt_backends); i++) {
        tt_dev_roundtrip_case(tt_backends[i]);
        pthread_t th;
        ASSERT_OK(pthread_create(&th, NULL, tt_dev_thread, NULL));
        ASSERT_OK(pthread_join(th, NULL));
    }
    ASSERT_EQ(WR_EUSAGE, wr__tlsdev_set_backend("aesni"));
}

/* ---- handshakes and data ---------------------------------------------------------- */

static void tt_handshake_data_case(const char *backend)
{
    bool dev = tt_use_backend(backend);
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    const size_t n = 3 * 1024 * 1024 + 12345;
    fx.srv.tx_want = fx.srv.rx_want = n;
    fx.cli.tx_want = fx.cli.rx_want = n;
    fx.auto_finish = true;
    struct wr_tls_stats before, after;
    wr_tls_get_stats(&before);
    tt_fx_dial(&fx, "node-1.test-cluster");
    /* Written before the handshake: staged, then sent once ready. */
    ASSERT(!wr_conn_is_ready(fx.cli.c));
    ASSERT(wr_conn_is_tls(fx.cli.c));
    ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    /* Run until the handshake completes to check the names, then to the end. */
    while (!(fx.srv.ready_called && fx.cli.ready_called))
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT_OK(fx.srv.ready_status);
    ASSERT_OK(fx.cli.ready_status);
    ASSERT_STR_EQ(wr_conn_peer_cn(fx.cli.c), "node-1");
    ASSERT_STR_EQ(wr_conn_sni(fx.srv.c), "node-1.test-cluster");
    ASSERT(wr_conn_sni(fx.cli.c) == NULL);
    ASSERT_STR_EQ(wr_conn_cipher(fx.cli.c), wr_tls_suite());
    ASSERT_STR_EQ(wr_conn_cipher(fx.srv.c), wr_tls_suite());
    ASSERT(wr_conn_id(fx.cli.c) != wr_conn_id(fx.srv.c));
    ASSERT(strncmp(wr_conn_peer_str(fx.cli.c), "127.0.0.1:", 10) == 0);
    tt_fx_run_and_close(&fx);
    ASSERT_EQ(fx.srv.rx, n);
    ASSERT_EQ(fx.cli.rx, n);
    ASSERT_OK(fx.srv.error);
    ASSERT_OK(fx.cli.error);
    wr_tls_get_stats(&after);
    ASSERT_GE(after.handshakes_ok - before.handshakes_ok, 2);
    if (dev) {
        /* Each direction carries at least n / 16 KiB records, each encrypted
         * once by the sender and decrypted once by the receiver. */
        uint64_t records = 2 * (n / 16384);
        ASSERT_GE(after.dev_encrypt - before.dev_encrypt, records);
        ASSERT_GE(after.dev_decrypt - before.dev_decrypt, records);
        ASSERT_GE(after.dev_bytes - before.dev_bytes, 4 * (uint64_t)n);
        ASSERT_EQ(after.dev_auth_fail, before.dev_auth_fail);
    }
    ASSERT_EQ(dev, wr_tls_aes_accelerated());
    tt_pki_free(&pki);
}

/* Once per AES-GCM library: data both ways through the device. */
TEST(handshake_data)
{
    for (size_t i = 0; i < WR_ARRAY_LEN(tt_backends); i++) {
        printf("handshake_data: aead=%s\n", tt_backends[i]);
        tt_handshake_data_case(tt_backends[i]);
    }
}

/* The library this process picked at start: WARREN_AESGCM's, else libcrypto.
 * aead_env runs this case in fresh processes with each setting; on its own it
 * checks the environment ctest gives it. */
TEST(aead_backend)
{
    ASSERT_OK(wr__tls_global_init());
    ASSERT(sodium_init() >= 0);
    const char *env = getenv("WARREN_AESGCM");
    const char *want = "openssl";
    if (!crypto_aead_aes256gcm_is_available())
        want = "none";
    else if (env != NULL && (strcmp(env, "sodium") == 0 || strcmp(env, "libsodium") == 0))
        want = "libsodium";
    printf("aead_backend: WARREN_AESGCM=%s aead=%s\n", env ? env : "(unset)",
           wr_tls_aead_backend());
    ASSERT_STR_EQ(wr_tls_aead_backend(), want);
}

/* Runs this executable's aead_backend case with WARREN_AESGCM=<value> (NULL:
 * unset) and returns its exit status. */
static int tt_run_aead_backend(const char *value)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (value != NULL)
            setenv("WARREN_AESGCM", value, 1);
        else
            unsetenv("WARREN_AESGCM");
        execl("/proc/self/exe", "test_tls", "aead_backend", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(aead_env)
{
    ASSERT_OK(tt_run_aead_backend(NULL));
    ASSERT_OK(tt_run_aead_backend(""));
    ASSERT_OK(tt_run_aead_backend("openssl"));
    ASSERT_OK(tt_run_aead_backend("sodium"));
    ASSERT_OK(tt_run_aead_backend("libsodium"));
    ASSERT_OK(tt_run_aead_backend("aes-ni-please")); /* logged, then the default */
}

TEST(wrong_ca)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, pki.ca2_crt);
    struct wr_tls_stats before, after;
    wr_tls_get_stats(&before);
    tt_fx_dial(&fx, "test-cluster");
    tt_fx_run_and_close(&fx);
    ASSERT(fx.cli.ready_called);
    ASSERT_EQ(fx.cli.ready_status, WR_ETLS);
    ASSERT(fx.srv.ready_called);
    ASSERT(fx.srv.ready_status < 0);
    wr_tls_get_stats(&after);
    ASSERT_GE(after.handshakes_failed - before.handshakes_failed, 2);
    tt_pki_free(&pki);
}

/* A raw wolfSSL client on its own thread (blocking socket), so the test can
 * offer an ALPN list wr_tls never would. */
struct tt_raw {
    struct sockaddr_storage addr;
    const char *ca;
    const char *alpn; /* NULL: no ALPN extension at all */
    int rc;
    int err;
};

static void *tt_raw_client(void *arg)
{
    struct tt_raw *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    ASSERT_OK(connect(fd, (struct sockaddr *)&r->addr, sizeof(struct sockaddr_in)));
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    ASSERT(ctx != NULL);
    ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_CTX_load_verify_locations(ctx, r->ca, NULL));
    ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_CTX_set_cipher_list(ctx, wr_tls_suite()));
    int groups[] = {WOLFSSL_ECC_X25519};
    ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_CTX_set_groups(ctx, groups, 1));
    WOLFSSL *ssl = wolfSSL_new(ctx);
    ASSERT(ssl != NULL);
    ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_set_fd(ssl, fd));
    /* The no-ALPN client sends no SNI either: the server must refuse it
     * all the same. */
    if (r->alpn)
        ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "test-cluster", 12));
    if (r->alpn) {
        char list[64];
        snprintf(list, sizeof(list), "%s", r->alpn);
        ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_UseALPN(ssl, list, (unsigned)strlen(list),
                                                   WOLFSSL_ALPN_CONTINUE_ON_MISMATCH));
    }
    r->rc = wolfSSL_connect(ssl);
    r->err = wolfSSL_get_error(ssl, r->rc);
    if (r->rc == WOLFSSL_SUCCESS) {
        /* Drain until the server closes. */
        char buf[256];
        while (wolfSSL_read(ssl, buf, sizeof(buf)) > 0)
            ;
    }
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    close(fd);
    /* wolfSSL's FP_ECC point cache is per thread and lives until freed. */
    wc_ecc_fp_free();
    return NULL;
}

static void tt_alpn_case(const char *alpn)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    struct tt_raw raw = {.addr = fx.addr, .ca = pki.ca_crt, .alpn = alpn};
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, tt_raw_client, &raw));
    tt_fx_run_and_close(&fx);
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT(fx.srv.ready_called);
    ASSERT_EQ(fx.srv.ready_status, WR_EALPN);
    /* The client saw the handshake fail with the server's alert. */
    ASSERT(raw.rc != WOLFSSL_SUCCESS);
    ASSERT_EQ(raw.err, FATAL_ERROR);
    tt_pki_free(&pki);
}

TEST(alpn_wrong)
{
    tt_alpn_case("h2,http/1.1");
}

TEST(alpn_missing)
{
    tt_alpn_case(NULL);
}

TEST(alpn_ok_raw)
{
    /* Control for the two cases above: the raw client succeeds with "warren/1". */
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    fx.srv.rx_want = 0;
    struct tt_raw raw = {.addr = fx.addr, .ca = pki.ca_crt, .alpn = WR_ALPN};
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, tt_raw_client, &raw));
    /* The server closes as soon as it is ready; the raw client then sees EOF. */
    while (!fx.srv.ready_called)
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT_OK(fx.srv.ready_status);
    ASSERT_STR_EQ(wr_conn_sni(fx.srv.c), "test-cluster");
    wr_conn_close(fx.srv.c, true);
    tt_fx_run_and_close(&fx);
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ(raw.rc, WOLFSSL_SUCCESS);
    tt_pki_free(&pki);
}

/* ---- mutual TLS (node-to-node peer links) --------------------------------------- */

/* Replaces the fixture's contexts with peer-link ones: the server presents
 * node-1 and requires a client certificate; the client presents <crt>/<key>
 * (NULL: a client context without a certificate) and offers <alpn>. */
static void tt_fx_mtls(struct tt_fx *fx, struct tt_pki *p, const char *crt, const char *key,
                       const char *alpn)
{
    wr_tls_ctx_free(fx->srv_tls);
    wr_tls_ctx_free(fx->cli_tls);
    int err = 0;
    fx->srv_tls = wr_tls_ctx_new_server_mtls(p->crt, p->key, p->ca_crt, WR_ALPN_PEER, &err);
    ASSERT(fx->srv_tls != NULL);
    fx->srv_opts.tls = fx->srv_tls;
    if (crt != NULL)
        fx->cli_tls = wr_tls_ctx_new_client_mtls(crt, key, p->ca_crt, alpn, &err);
    else
        fx->cli_tls = wr_tls_ctx_new_client(p->ca_crt, &err);
    ASSERT(fx->cli_tls != NULL);
}

/* Both sides verified: each learns the other's node id; data flows. */
TEST(mtls_ok)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    char crt2[160], key2[160];
    snprintf(crt2, sizeof(crt2), "%s/node2.crt", pki.dir);
    snprintf(key2, sizeof(key2), "%s/node2.key", pki.dir);
    ASSERT_OK(wr_cert_issue(pki.ca_crt, pki.ca_key, "node-2", 30, crt2, key2));
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    tt_fx_mtls(&fx, &pki, crt2, key2, WR_ALPN_PEER);
    const size_t n = 200000;
    fx.srv.tx_want = fx.srv.rx_want = n;
    fx.cli.tx_want = fx.cli.rx_want = n;
    fx.auto_finish = true;
    tt_fx_dial(&fx, "node-1.test-cluster");
    while (!(fx.srv.ready_called && fx.cli.ready_called))
        ASSERT_OK(uv_run(&fx.loop, UV_RUN_ONCE) < 0);
    ASSERT_OK(fx.srv.ready_status);
    ASSERT_OK(fx.cli.ready_status);
    ASSERT_STR_EQ(wr_conn_peer_cn(fx.cli.c), "node-1");
    ASSERT_STR_EQ(wr_conn_peer_cn(fx.srv.c), "node-2"); /* the accepting side too */
    tt_fx_run_and_close(&fx);
    ASSERT_EQ(fx.srv.rx, n);
    ASSERT_EQ(fx.cli.rx, n);
    unlink(crt2);
    unlink(key2);
    tt_pki_free(&pki);
}

/* A client without a certificate is refused by a peer-link server. */
TEST(mtls_no_client_cert)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    tt_fx_mtls(&fx, &pki, NULL, NULL, NULL);
    /* The raw client offers the right protocol, so only the certificate is
     * missing. */
    struct tt_raw raw = {.addr = fx.addr, .ca = pki.ca_crt, .alpn = WR_ALPN_PEER};
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, tt_raw_client, &raw));
    tt_fx_run_and_close(&fx);
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT(fx.srv.ready_called);
    ASSERT_EQ(fx.srv.ready_status, WR_ETLS);
    tt_pki_free(&pki);
}

/* A client certificate from another cluster's CA is refused. */
TEST(mtls_foreign_ca)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    char crt2[160], key2[160];
    snprintf(crt2, sizeof(crt2), "%s/node9.crt", pki.dir2);
    snprintf(key2, sizeof(key2), "%s/node9.key", pki.dir2);
    ASSERT_OK(wr_cert_issue(pki.ca2_crt, pki.ca2_key, "node-9", 30, crt2, key2));
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    tt_fx_mtls(&fx, &pki, crt2, key2, WR_ALPN_PEER);
    tt_fx_dial(&fx, "node-1.test-cluster");
    tt_fx_run_and_close(&fx);
    ASSERT(fx.srv.ready_called);
    ASSERT(fx.srv.ready_status < 0);
    /* TLS 1.3: the client may finish before the server checks its
     * certificate; then the server's alert fails its first read. */
    ASSERT(fx.cli.ready_called);
    ASSERT(fx.cli.ready_status < 0 || fx.cli.error < 0);
    ASSERT_EQ(0, fx.cli.rx);
    unlink(crt2);
    unlink(key2);
    tt_pki_free(&pki);
}

/* The tunnel protocol on a peer listener (an agent dialing it) fails ALPN. */
TEST(mtls_wrong_alpn)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    tt_fx_mtls(&fx, &pki, pki.crt, pki.key, WR_ALPN);
    tt_fx_dial(&fx, "node-1.test-cluster");
    tt_fx_run_and_close(&fx);
    ASSERT(fx.srv.ready_called);
    ASSERT_EQ(fx.srv.ready_status, WR_EALPN);
    ASSERT(fx.cli.ready_status < 0);
    int err = 0;
    ASSERT(wr_tls_ctx_new_server_mtls(pki.crt, pki.key, pki.ca_crt, "a,b", &err) == NULL);
    ASSERT_EQ(err, WR_EUSAGE);
    tt_pki_free(&pki);
}

TEST(garbage)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    /* A plain wr_conn plays the client and sends HTTP instead of TLS. */
    struct wr_conn_opts o = {0};
    int err = 0;
    fx.cli.c = wr_conn_dial(&fx.loop, (struct sockaddr *)&fx.addr, &o, &tt_cbs, &fx.cli, &err);
    ASSERT(fx.cli.c != NULL);
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\xff\xff garbage";
    ASSERT_OK(wr_conn_write(fx.cli.c, (const uint8_t *)junk, sizeof(junk)));
    fx.cli.close_on_eof = true;
    tt_fx_run_and_close(&fx);
    ASSERT(fx.srv.ready_called);
    ASSERT_EQ(fx.srv.ready_status, WR_ETLS);
    ASSERT(fx.cli.ready_called);
    ASSERT_OK(fx.cli.ready_status);
    tt_pki_free(&pki);
}

TEST(handshake_timeout)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    fx.srv_opts.handshake_timeout_ms = 50;
    /* A plain client that connects and sends nothing. */
    struct wr_conn_opts o = {0};
    int err = 0;
    fx.cli.c = wr_conn_dial(&fx.loop, (struct sockaddr *)&fx.addr, &o, &tt_cbs, &fx.cli, &err);
    ASSERT(fx.cli.c != NULL);
    fx.cli.close_on_eof = true;
    uint64_t t0 = wr_now_ms();
    tt_fx_run_and_close(&fx);
    ASSERT(fx.srv.ready_called);
    ASSERT_EQ(fx.srv.ready_status, WR_ETIMEDOUT);
    ASSERT(wr_now_ms() - t0 >= 45);
    ASSERT(fx.cli.eof || fx.cli.error != 0);
    tt_pki_free(&pki);
}

static void tt_read_stop_case(bool tls)
{
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, tls, NULL);
    const size_t n = 700 * 1000;
    fx.srv.tx_want = n;
    fx.srv.shutdown_when_sent = true;
    fx.cli.stop_once = true;
    fx.cli.close_on_eof = true;
    fx.srv.close_on_eof = true;
    tt_fx_dial(&fx, NULL);
    /* The client half-closes too once it has everything; see tt_on_eof. */
    tt_fx_run_and_close(&fx);
    ASSERT(fx.cli.stopped);
    ASSERT(fx.cli.rx_at_stop < n);
    ASSERT_EQ(fx.cli.rx, n);
    ASSERT(fx.cli.eof);
    ASSERT(fx.srv.eof);
    ASSERT_OK(fx.cli.error);
    tt_pki_free(&pki);
}

TEST(read_stop_start_tls)
{
    tt_read_stop_case(true);
}

TEST(read_stop_start_plain)
{
    tt_read_stop_case(false);
}

TEST(tls_half_close)
{
    /* The client sends, then shuts down (close_notify + FIN); the server
     * sees all data then on_eof, and can still answer. */
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    fx.cli.tx_want = 100000;
    fx.cli.shutdown_when_sent = true;
    fx.srv.rx_want = 100000;
    fx.srv.tx_want = 0;
    fx.srv.tx_on_eof = 300000;  /* the other direction still works */
    fx.srv.close_on_eof = true; /* closes with flush, sending close_notify */
    fx.cli.close_on_eof = true;
    tt_fx_dial(&fx, "test-cluster");
    tt_fx_run_and_close(&fx);
    ASSERT_EQ(fx.srv.rx, 100000);
    ASSERT_EQ(fx.cli.rx, 300000);
    ASSERT(fx.srv.eof);
    ASSERT(fx.cli.eof);
    tt_pki_free(&pki);
}

/* ---- hand-run benchmark: throughput and idle memory ------------------------------ */

enum { TB_N = 200, TB_DATA = 200000 };

struct tb_mem {
    uv_tcp_t lst;
    struct wr_tls_ctx *st, *ct;
    struct wr_conn *srv[TB_N], *cli[TB_N];
    int nsrv, nready, nclosed;
    size_t rx;
};

static void tb_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct tb_mem *m = arg;
    (void)c;
    ASSERT_OK(status);
    m->nready++;
}

static void tb_on_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct tb_mem *m = arg;
    (void)c;
    (void)d;
    m->rx += len;
}

static void tb_on_close(struct wr_conn *c, void *arg)
{
    struct tb_mem *m = arg;
    (void)c;
    m->nclosed++;
}

static const struct wr_conn_cbs tb_cbs = {
    .on_ready = tb_on_ready, .on_read = tb_on_read, .on_close = tb_on_close};

static void tb_on_conn(uv_stream_t *s, int status)
{
    struct tb_mem *m = s->data;
    ASSERT_OK(status);
    struct wr_conn_opts o = {.tls = m->st, .nodelay = true};
    int err = 0;
    m->srv[m->nsrv] = wr_conn_accept(s, &o, &tb_cbs, m, &err);
    ASSERT(m->srv[m->nsrv] != NULL);
    m->nsrv++;
}

static size_t tb_heap(void)
{
    return mallinfo2().uordblks;
}

static void tb_idle_memory(struct tt_pki *pki)
{
    uv_loop_t loop;
    ASSERT_OK(uv_loop_init(&loop));
    struct tb_mem *m = calloc(1, sizeof(*m));
    int err = 0;
    m->st = wr_tls_ctx_new_server(pki->crt, pki->key, &err);
    m->ct = wr_tls_ctx_new_client(pki->ca_crt, &err);
    ASSERT(m->st && m->ct);
    ASSERT_OK(uv_tcp_init(&loop, &m->lst));
    m->lst.data = m;
    struct sockaddr_storage any, addr;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&m->lst, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&m->lst, 512, tb_on_conn));
    int len = sizeof(addr);
    ASSERT_OK(uv_tcp_getsockname(&m->lst, (struct sockaddr *)&addr, &len));
    /* Pair 0 warms up the allocator and wolfSSL's lazily built tables. */
    size_t h0 = 0;
    for (int i = 0; i < TB_N; i++) {
        struct wr_conn_opts o = {.tls = m->ct, .sni = "test-cluster", .nodelay = true};
        m->cli[i] = wr_conn_dial(&loop, (struct sockaddr *)&addr, &o, &tb_cbs, m, &err);
        ASSERT(m->cli[i] != NULL);
        if (i == 0) {
            while (m->nready < 2)
                uv_run(&loop, UV_RUN_ONCE);
            h0 = tb_heap();
        }
    }
    while (m->nready < 2 * TB_N)
        uv_run(&loop, UV_RUN_ONCE);
    for (int k = 0; k < 10; k++)
        uv_run(&loop, UV_RUN_NOWAIT);
    size_t h1 = tb_heap();
    /* Move data through every connection, then let it go idle again: the
     * buffers must be given back. */
    static uint8_t blob[TB_DATA];
    for (int i = 1; i < TB_N; i++) {
        ASSERT_OK(wr_conn_write(m->cli[i], blob, sizeof(blob)));
        ASSERT_OK(wr_conn_write(m->srv[i], blob, sizeof(blob)));
    }
    while (m->rx < 2 * (size_t)(TB_N - 1) * TB_DATA)
        uv_run(&loop, UV_RUN_ONCE);
    for (int k = 0; k < 10; k++)
        uv_run(&loop, UV_RUN_NOWAIT);
    size_t h2 = tb_heap();
    size_t est = wr_conn_mem(m->cli[1]);
    printf("bench_tls: idle TLS connection: %.0f bytes after handshake, %.0f bytes after "
           "%d KB each way (heap delta over %d conns); wr_conn_mem=%zu\n",
           (double)(h1 - h0) / (2.0 * (TB_N - 1)), (double)(h2 - h0) / (2.0 * (TB_N - 1)),
           TB_DATA / 1000, 2 * (TB_N - 1), est);
    for (int i = 0; i < TB_N; i++) {
        wr_conn_close(m->cli[i], false);
        wr_conn_close(m->srv[i], false);
    }
    uv_close((uv_handle_t *)&m->lst, NULL);
    ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT) < 0);
    ASSERT_EQ(m->nclosed, 2 * TB_N);
    ASSERT_EQ(0, uv_loop_close(&loop));
    wr_tls_ctx_free(m->st);
    wr_tls_ctx_free(m->ct);
    free(m);
}

/* 64-byte ping-pong over one TLS pair in one loop: both ends' work per round
 * trip, without the network, which is the conn layer's share of latency. */
enum { TB_RTT_N = 20000 };

struct tb_rtt {
    struct wr_conn *srv, *cli;
    uv_tcp_t lst;
    struct wr_tls_ctx *st;
    int ready, rounds, closed;
    size_t got;
    uint64_t t0, t1;
    uint64_t *lat;
};

static void tb_rtt_ping(struct tb_rtt *r)
{
    static const uint8_t ping[64];
    r->t0 = wr_now_ns();
    ASSERT_OK(wr_conn_write(r->cli, ping, sizeof(ping)));
}

static void tb_rtt_ready(struct wr_conn *c, int status, void *arg)
{
    struct tb_rtt *r = arg;
    (void)c;
    ASSERT_OK(status);
    if (++r->ready == 2)
        tb_rtt_ping(r);
}

static void tb_rtt_read(struct wr_conn *c, const uint8_t *d, size_t len, void *arg)
{
    struct tb_rtt *r = arg;
    if (c == r->srv) {
        ASSERT_OK(wr_conn_write(c, d, len)); /* echo */
        return;
    }
    r->got += len;
    if (r->got < 64)
        return;
    r->got -= 64;
    r->lat[r->rounds++] = wr_now_ns() - r->t0;
    if (r->rounds < TB_RTT_N) {
        tb_rtt_ping(r);
        return;
    }
    wr_conn_close(r->cli, true);
    wr_conn_close(r->srv, true);
}

static void tb_rtt_close(struct wr_conn *c, void *arg)
{
    struct tb_rtt *r = arg;
    (void)c;
    r->closed++;
}

static const struct wr_conn_cbs tb_rtt_cbs = {
    .on_ready = tb_rtt_ready, .on_read = tb_rtt_read, .on_close = tb_rtt_close};

static void tb_rtt_conn(uv_stream_t *s, int status)
{
    struct tb_rtt *r = s->data;
    ASSERT_OK(status);
    struct wr_conn_opts o = {.tls = r->st, .nodelay = true};
    int err = 0;
    r->srv = wr_conn_accept(s, &o, &tb_rtt_cbs, r, &err);
    ASSERT(r->srv != NULL);
    uv_close((uv_handle_t *)&r->lst, NULL);
}

static int tb_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void tb_rtt(struct tt_pki *pki)
{
    uv_loop_t loop;
    ASSERT_OK(uv_loop_init(&loop));
    struct tb_rtt r = {0};
    r.lat = calloc(TB_RTT_N, sizeof(uint64_t));
    int err = 0;
    r.st = wr_tls_ctx_new_server(pki->crt, pki->key, &err);
    struct wr_tls_ctx *ct = wr_tls_ctx_new_client(pki->ca_crt, &err);
    ASSERT_OK(uv_tcp_init(&loop, &r.lst));
    r.lst.data = &r;
    struct sockaddr_storage any, addr;
    ASSERT_OK(wr_addr_parse("127.0.0.1:0", &any));
    ASSERT_OK(uv_tcp_bind(&r.lst, (struct sockaddr *)&any, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&r.lst, 4, tb_rtt_conn));
    int len = sizeof(addr);
    ASSERT_OK(uv_tcp_getsockname(&r.lst, (struct sockaddr *)&addr, &len));
    struct wr_conn_opts o = {.tls = ct, .sni = "test-cluster", .nodelay = true};
    r.cli = wr_conn_dial(&loop, (struct sockaddr *)&addr, &o, &tb_rtt_cbs, &r, &err);
    ASSERT(r.cli != NULL);
    ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT) < 0);
    ASSERT_EQ(r.closed, 2);
    ASSERT_EQ(0, uv_loop_close(&loop));
    qsort(r.lat, TB_RTT_N, sizeof(uint64_t), tb_cmp_u64);
    printf("bench_tls: 64-byte TLS round trip, both ends in one process: p50 %.1f us, p99 %.1f "
           "us\n",
           (double)r.lat[TB_RTT_N / 2] / 1e3, (double)r.lat[TB_RTT_N * 99 / 100] / 1e3);
    free(r.lat);
    wr_tls_ctx_free(r.st);
    wr_tls_ctx_free(ct);
}

static void test_bench_tls(void)
{
    if (getenv("WR_BENCH") == NULL) {
        printf("bench_tls: set WR_BENCH=1 to run\n");
        return;
    }
    struct tt_pki pki;
    tt_pki_make(&pki);
    struct tt_fx fx;
    tt_fx_init(&fx, &pki, true, NULL);
    const size_t n = (size_t)1 << 30;
    fx.srv.tx_want = n;
    fx.cli.rx_want = n;
    fx.auto_finish = true;
    fx.bench = true;
    tt_fx_dial(&fx, "test-cluster");
    uint64_t t0 = wr_now_ns();
    tt_fx_run_and_close(&fx);
    uint64_t dt = wr_now_ns() - t0;
    printf("bench_tls: %zu MiB one way in %.3f s: %.0f MB/s (suite %s, aead %s)\n", n >> 20,
           (double)dt / 1e9, (double)n / ((double)dt / 1e3), wr_tls_suite(), wr_tls_aead_backend());
    tb_idle_memory(&pki);
    tb_rtt(&pki);
    tt_pki_free(&pki);
}

TEST_MAIN(TEST_ENTRY(dev_roundtrip), TEST_ENTRY(handshake_data), TEST_ENTRY(aead_backend),
          TEST_ENTRY(aead_env), TEST_ENTRY(wrong_ca), TEST_ENTRY(alpn_wrong),
          TEST_ENTRY(alpn_missing), TEST_ENTRY(alpn_ok_raw), TEST_ENTRY(garbage),
          TEST_ENTRY(handshake_timeout), TEST_ENTRY(read_stop_start_tls),
          TEST_ENTRY(read_stop_start_plain), TEST_ENTRY(tls_half_close), TEST_ENTRY(mtls_ok),
          TEST_ENTRY(mtls_no_client_cert), TEST_ENTRY(mtls_foreign_ca), TEST_ENTRY(mtls_wrong_alpn),
          TEST_ENTRY(bench_tls))
