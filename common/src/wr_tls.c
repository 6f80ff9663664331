/*
 * wr_tls.c: TLS policy for warren, in one place: TLS 1.3 only, the pinned
 * suite, ALPN "warren/1" (offered by clients, required by servers), key
 * exchange groups, no session tickets or cache, the crypto device on every
 * context. Owns struct wr_tls_ctx and the process-wide wolfSSL init. The byte
 * stream (I/O callbacks, buffers, handshake driving) is wr_conn.c's.
 */
#include "wr_tls_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wr/log.h"
#include "wr/util.h"

#define WR_TLS_SUITE_AES "TLS13-AES256-GCM-SHA384"
#define WR_TLS_SUITE_CHACHA "TLS13-CHACHA20-POLY1305-SHA256"

static pthread_once_t wr_tls_once = PTHREAD_ONCE_INIT;
static int wr_tls_init_rc;

static void wr_tls_init_once(void)
{
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

bool wr__tls_alpn_ok(WOLFSSL *ssl)
{
    char *proto = NULL;
    unsigned short len = 0;
    int rc = wolfSSL_ALPN_GetProtocol(ssl, &proto, &len);
    return rc == WOLFSSL_SUCCESS && proto != NULL && len == strlen(WR_ALPN) &&
           memcmp(proto, WR_ALPN, len) == 0;
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

struct wr_tls_ctx *wr_tls_ctx_new_server(const char *cert_pem, const char *key_pem, int *err)
{
    int rc = wr__tls_global_init();
    if (rc != 0)
        goto fail;
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    if (ctx == NULL) {
        rc = WR_ENOMEM;
        goto fail;
    }
    int wrc = wolfSSL_CTX_use_certificate_chain_file(ctx, cert_pem);
    if (wrc != WOLFSSL_SUCCESS) {
        rc = wr_tls_setup_fail("certificate", cert_pem, wrc);
        goto fail_ctx;
    }
    wrc = wolfSSL_CTX_use_PrivateKey_file(ctx, key_pem, WOLFSSL_FILETYPE_PEM);
    if (wrc != WOLFSSL_SUCCESS) {
        rc = wr_tls_setup_fail("private_key", key_pem, wrc);
        goto fail_ctx;
    }
    wrc = wolfSSL_CTX_check_private_key(ctx);
    if (wrc != WOLFSSL_SUCCESS) {
        rc = wr_tls_setup_fail("key_mismatch", key_pem, wrc);
        goto fail_ctx;
    }
    rc = wr_tls_ctx_common(ctx);
    if (rc != 0)
        goto fail_ctx;
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    wrc = wolfSSL_CTX_no_ticket_TLSv13(ctx);
    if (wrc != 0) {
        rc = wr_tls_setup_fail("no_ticket", NULL, wrc);
        goto fail_ctx;
    }
    wolfSSL_CTX_set_servername_callback(ctx, wr_tls_on_client_hello);
    struct wr_tls_ctx *t = wr_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->server = true;
    return t;

fail_ctx:
    wolfSSL_CTX_free(ctx);
fail:
    if (err)
        *err = rc;
    return NULL;
}

struct wr_tls_ctx *wr_tls_ctx_new_client(const char *ca_pem, int *err)
{
    int rc = wr__tls_global_init();
    if (rc != 0)
        goto fail;
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (ctx == NULL) {
        rc = WR_ENOMEM;
        goto fail;
    }
    int wrc = wolfSSL_CTX_load_verify_locations(ctx, ca_pem, NULL);
    if (wrc != WOLFSSL_SUCCESS) {
        rc = wr_tls_setup_fail("ca", ca_pem, wrc);
        goto fail_ctx;
    }
    rc = wr_tls_ctx_common(ctx);
    if (rc != 0)
        goto fail_ctx;
    /* The CA is the trust root and the peer's identity is its CN (the node
     * id, wr_conn_peer_cn); host names are not checked against SNI so that
     * an agent whose targeted dial landed on another node can still learn
     * which node it reached. */
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    struct wr_tls_ctx *t = wr_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->server = false;
    return t;

fail_ctx:
    wolfSSL_CTX_free(ctx);
fail:
    if (err)
        *err = rc;
    return NULL;
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
    char alpn[] = WR_TLS_ALPN_LIST;
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
