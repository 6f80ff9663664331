/*
 * wr_cert.c: the cluster CA and node certificates (wr/cert.h), made with
 * wolfCrypt's certificate generation: Ed25519 keys, a self-signed CA
 * (CA:TRUE, CN = cluster) and node certificates (CN = node id, SAN DNS
 * "<node-id>.<cluster>" and "<cluster>"). Keys are written as PKCS#8 PEM
 * ("PRIVATE KEY"), mode 0600, so openssl reads them too; the 32-byte private
 * key is the libsodium seed. Does not load anything into TLS contexts.
 */
#include "wr/cert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wr/log.h"
#include "wr/util.h"
#include "wr_tls_int.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>

#define WR_CERT_DER_MAX 4096
#define WR_CERT_PEM_MAX 8192
#define WR_CERT_FILE_MAX 65536
#define WR_CERT_PATH_MAX 4096

/* Secrets are wiped with explicit_bzero: it cannot be optimised away, and
 * this file stays within the wolfSSL domain (no libsodium). */
static void wr_cert_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

static int wr_cert_fail(const char *what, int rc)
{
    WR_ERROR("tls", "cert_failed", "what=%s code=%d err=ETLS", what, rc);
    return WR_ETLS;
}

/* Reads the first PEM block of <path> as DER. <type> is CERT_TYPE or
 * PRIVATEKEY_TYPE (which also accepts PKCS#8). */
static int wr_cert_read_der(const char *path, int type, uint8_t *der, size_t cap, size_t *len)
{
    char *pem = NULL;
    size_t plen = 0;
    int rc = wr_read_file(path, WR_CERT_FILE_MAX, &pem, &plen);
    if (rc != 0)
        return rc;
    int n = type == CERT_TYPE
                ? wc_CertPemToDer((const unsigned char *)pem, (int)plen, der, (int)cap, CERT_TYPE)
                : wc_KeyPemToDer((const unsigned char *)pem, (int)plen, der, (int)cap, NULL);
    wr_cert_wipe(pem, plen);
    free(pem);
    if (n <= 0)
        return wr_cert_fail(type == CERT_TYPE ? "cert_pem" : "key_pem", n);
    *len = (size_t)n;
    return 0;
}

/* Loads an Ed25519 private key file into <key> with its public half, which
 * signing needs and a PKCS#8 file may not carry. */
static int wr_cert_load_key(const char *path, ed25519_key *key)
{
    uint8_t der[WR_CERT_DER_MAX];
    size_t len = 0;
    uint8_t seed[ED25519_KEY_SIZE];
    uint8_t pub[ED25519_PUB_KEY_SIZE];
    int rc = wr_cert_read_der(path, PRIVATEKEY_TYPE, der, sizeof(der), &len);
    if (rc != 0)
        return rc;
    word32 idx = 0;
    int wrc = wc_Ed25519PrivateKeyDecode(der, &idx, key, (word32)len);
    if (wrc != 0) {
        rc = wr_cert_fail("key_decode", wrc);
        goto out;
    }
    word32 slen = sizeof(seed);
    wrc = wc_ed25519_export_private_only(key, seed, &slen);
    if (wrc == 0)
        wrc = wc_ed25519_make_public(key, pub, sizeof(pub));
    if (wrc == 0)
        wrc = wc_ed25519_import_private_key(seed, slen, pub, sizeof(pub), key);
    if (wrc != 0)
        rc = wr_cert_fail("key_import", wrc);
out:
    wr_cert_wipe(seed, sizeof(seed));
    wr_cert_wipe(der, sizeof(der));
    return rc;
}

/* Writes <key> as PKCS#8 PEM with mode 0600. */
static int wr_cert_write_key(const char *path, ed25519_key *key)
{
    uint8_t der[WR_CERT_DER_MAX];
    uint8_t pem[WR_CERT_PEM_MAX];
    int rc = 0;
    int n = wc_Ed25519PrivateKeyToDer(key, der, sizeof(der));
    if (n <= 0) {
        rc = wr_cert_fail("key_der", n);
        goto out;
    }
    int p = wc_DerToPem(der, (word32)n, pem, sizeof(pem), PKCS8_PRIVATEKEY_TYPE);
    if (p <= 0) {
        rc = wr_cert_fail("key_pem", p);
        goto out;
    }
    rc = wr_write_file(path, pem, (size_t)p, 0600);
out:
    wr_cert_wipe(der, sizeof(der));
    wr_cert_wipe(pem, sizeof(pem));
    return rc;
}

static int wr_cert_write_cert(const char *path, const uint8_t *der, size_t len)
{
    uint8_t pem[WR_CERT_PEM_MAX];
    int p = wc_DerToPem(der, (word32)len, pem, sizeof(pem), CERT_TYPE);
    if (p <= 0)
        return wr_cert_fail("cert_pem", p);
    return wr_write_file(path, pem, (size_t)p, 0644);
}

/* Makes <cert> (carrying <subject>'s public key), signs it with <signer>, and
 * writes the certificate and <subject>'s private key. <what> names the step
 * in the log on failure. */
static int wr_cert_sign_write(Cert *cert, ed25519_key *subject, ed25519_key *signer, WC_RNG *rng,
                              const char *what, const char *crt_path, const char *key_path)
{
    uint8_t der[WR_CERT_DER_MAX];
    int wrc = wc_MakeCert_ex(cert, der, sizeof(der), ED25519_TYPE, subject, rng);
    if (wrc > 0)
        wrc = wc_SignCert_ex(cert->bodySz, cert->sigType, der, sizeof(der), ED25519_TYPE, signer,
                             rng);
    if (wrc <= 0)
        return wr_cert_fail(what, wrc);
    int rc = wr_cert_write_key(key_path, subject);
    if (rc == 0)
        rc = wr_cert_write_cert(crt_path, der, (size_t)wrc);
    return rc;
}

/* Sets the subject CN, refusing names the Cert struct would truncate. */
static int wr_cert_set_cn(Cert *cert, const char *cn)
{
    size_t n = strlen(cn);
    if (n == 0 || n >= sizeof(cert->subject.commonName) || !wr_id_is_valid(cn, n))
        return WR_EUSAGE;
    memcpy(cert->subject.commonName, cn, n + 1);
    cert->subject.commonNameEnc = CTC_UTF8;
    memcpy(cert->subject.org, "warren", sizeof("warren"));
    return 0;
}

/* DER length octets for <n> (< 65536). Returns the count written. */
static size_t wr_cert_der_len(uint8_t *out, size_t n)
{
    if (n < 0x80) {
        out[0] = (uint8_t)n;
        return 1;
    }
    if (n < 0x100) {
        out[0] = 0x81;
        out[1] = (uint8_t)n;
        return 2;
    }
    out[0] = 0x82;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    return 3;
}

/* GeneralNames with two dNSNames, the encoding wolfCrypt copies into the
 * subjectAltName extension. */
static int wr_cert_set_sans(Cert *cert, const char *a, const char *b)
{
    uint8_t body[512];
    size_t off = 0;
    const char *names[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(names[i]);
        if (off + 4 + n > sizeof(body))
            return WR_ETOOBIG;
        body[off++] = 0x82; /* [2] IMPLICIT IA5String: dNSName */
        off += wr_cert_der_len(body + off, n);
        memcpy(body + off, names[i], n);
        off += n;
    }
    if (off + 4 > sizeof(cert->altNames))
        return WR_ETOOBIG;
    size_t h = 0;
    cert->altNames[h++] = 0x30; /* SEQUENCE */
    h += wr_cert_der_len(cert->altNames + h, off);
    memcpy(cert->altNames + h, body, off);
    cert->altNamesSz = (int)(h + off);
    return 0;
}

static int wr_cert_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? WR_ETOOBIG : 0;
}

int wr_cert_ca_init(const char *dir, const char *cluster, uint32_t days)
{
    char key_path[WR_CERT_PATH_MAX], crt_path[WR_CERT_PATH_MAX];
    int rc = wr_cert_join(key_path, sizeof(key_path), dir, "ca.key");
    if (rc == 0)
        rc = wr_cert_join(crt_path, sizeof(crt_path), dir, "ca.crt");
    if (rc != 0)
        return rc;
    if (days == 0 || days > 36500)
        return WR_EUSAGE;
    struct stat st;
    if (stat(key_path, &st) == 0)
        return -EEXIST;
    rc = wr__tls_global_init();
    if (rc != 0)
        return rc;

    WC_RNG rng;
    int wrc = wc_InitRng(&rng);
    if (wrc != 0)
        return wr_cert_fail("rng", wrc);
    ed25519_key key;
    wrc = wc_ed25519_init(&key);
    if (wrc != 0) {
        rc = wr_cert_fail("key_init", wrc);
        goto fail_rng;
    }
    wrc = wc_ed25519_make_key(&rng, ED25519_KEY_SIZE, &key);
    if (wrc != 0) {
        rc = wr_cert_fail("keygen", wrc);
        goto fail_key;
    }
    Cert *cert = wr_xmalloc(sizeof(*cert));
    wc_InitCert(cert);
    rc = wr_cert_set_cn(cert, cluster);
    if (rc != 0)
        goto fail_cert;
    cert->sigType = CTC_ED25519;
    cert->isCA = 1;
    cert->selfSigned = 1;
    cert->daysValid = (int)days;
    wrc = wc_SetSubjectKeyIdFromPublicKey_ex(cert, ED25519_TYPE, &key);
    if (wrc == 0)
        wrc = wc_SetKeyUsage(cert, "keyCertSign,cRLSign,digitalSignature");
    if (wrc != 0) {
        rc = wr_cert_fail("ca_ext", wrc);
        goto fail_cert;
    }
    rc = wr_cert_sign_write(cert, &key, &key, &rng, "ca_sign", crt_path, key_path);
    if (rc != 0)
        goto fail_cert;
    WR_INFO("tls", "ca_created", "cluster=%s days=%u", cluster, days);

fail_cert:
    free(cert);
fail_key:
    wc_ed25519_free(&key); /* wipes the key */
fail_rng:
    wc_FreeRng(&rng);
    return rc;
}

int wr_cert_issue(const char *ca_crt, const char *ca_key, const char *node_id, uint32_t days,
                  const char *out_crt, const char *out_key)
{
    if (days == 0 || days > 36500)
        return WR_EUSAGE;
    int rc = wr__tls_global_init();
    if (rc != 0)
        return rc;
    uint8_t ca_der[WR_CERT_DER_MAX];
    size_t ca_len = 0;
    rc = wr_cert_read_der(ca_crt, CERT_TYPE, ca_der, sizeof(ca_der), &ca_len);
    if (rc != 0)
        return rc;
    char cluster[WR_ID_MAX + 1];
    rc = wr__tls_der_cn(ca_der, ca_len, cluster, sizeof(cluster));
    if (rc != 0)
        return rc;
    char fqdn[2 * WR_ID_MAX + 2];
    int fl = snprintf(fqdn, sizeof(fqdn), "%s.%s", node_id, cluster);
    if (fl < 0 || (size_t)fl >= sizeof(fqdn))
        return WR_EUSAGE;

    WC_RNG rng;
    int wrc = wc_InitRng(&rng);
    if (wrc != 0)
        return wr_cert_fail("rng", wrc);
    ed25519_key ca;
    ed25519_key key;
    wrc = wc_ed25519_init(&ca);
    if (wrc != 0) {
        rc = wr_cert_fail("key_init", wrc);
        goto fail_rng;
    }
    wrc = wc_ed25519_init(&key);
    if (wrc != 0) {
        rc = wr_cert_fail("key_init", wrc);
        goto fail_ca;
    }
    rc = wr_cert_load_key(ca_key, &ca);
    if (rc != 0)
        goto fail_key;
    wrc = wc_ed25519_make_key(&rng, ED25519_KEY_SIZE, &key);
    if (wrc != 0) {
        rc = wr_cert_fail("keygen", wrc);
        goto fail_key;
    }
    Cert *cert = wr_xmalloc(sizeof(*cert));
    wc_InitCert(cert);
    rc = wr_cert_set_cn(cert, node_id);
    if (rc != 0)
        goto fail_cert;
    rc = wr_cert_set_sans(cert, fqdn, cluster);
    if (rc != 0)
        goto fail_cert;
    cert->sigType = CTC_ED25519;
    cert->isCA = 0;
    cert->selfSigned = 0;
    cert->daysValid = (int)days;
    wrc = wc_SetIssuerBuffer(cert, ca_der, (int)ca_len);
    if (wrc == 0)
        wrc = wc_SetAuthKeyIdFromPublicKey_ex(cert, ED25519_TYPE, &ca);
    if (wrc == 0)
        wrc = wc_SetSubjectKeyIdFromPublicKey_ex(cert, ED25519_TYPE, &key);
    if (wrc == 0)
        wrc = wc_SetKeyUsage(cert, "digitalSignature");
    if (wrc == 0)
        wrc = wc_SetExtKeyUsage(cert, "serverAuth,clientAuth");
    if (wrc != 0) {
        rc = wr_cert_fail("node_ext", wrc);
        goto fail_cert;
    }
    /* The body carries the node's public key; the CA key signs it. */
    rc = wr_cert_sign_write(cert, &key, &ca, &rng, "node_sign", out_crt, out_key);
    if (rc != 0)
        goto fail_cert;
    WR_INFO("tls", "cert_issued", "node=%s cluster=%s days=%u", node_id, cluster, days);

fail_cert:
    free(cert);
fail_key:
    wc_ed25519_free(&key);
fail_ca:
    wc_ed25519_free(&ca);
fail_rng:
    wc_FreeRng(&rng);
    return rc;
}

int wr_cert_ca_pubkey(const char *ca_crt, uint8_t pk[WR_ED25519_PK_LEN])
{
    int rc = wr__tls_global_init();
    if (rc != 0)
        return rc;
    uint8_t der[WR_CERT_DER_MAX];
    size_t len = 0;
    rc = wr_cert_read_der(ca_crt, CERT_TYPE, der, sizeof(der), &len);
    if (rc != 0)
        return rc;
    DecodedCert *dc = wr_xmalloc(sizeof(*dc));
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    int wrc = wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL);
    if (wrc != 0) {
        rc = wr_cert_fail("cert_decode", wrc);
    } else if (dc->keyOID != ED25519k || dc->pubKeySize != WR_ED25519_PK_LEN) {
        rc = wr_cert_fail("cert_not_ed25519", (int)dc->keyOID);
    } else {
        /* For Ed25519 the parsed public key is the raw 32 bytes. */
        memcpy(pk, dc->publicKey, WR_ED25519_PK_LEN);
    }
    wc_FreeDecodedCert(dc);
    free(dc);
    return rc;
}

int wr_cert_ca_seed(const char *ca_key, uint8_t seed[WR_ED25519_SEED_LEN])
{
    int rc = wr__tls_global_init();
    if (rc != 0)
        return rc;
    ed25519_key key;
    int wrc = wc_ed25519_init(&key);
    if (wrc != 0)
        return wr_cert_fail("key_init", wrc);
    rc = wr_cert_load_key(ca_key, &key);
    if (rc == 0) {
        word32 len = WR_ED25519_SEED_LEN;
        wrc = wc_ed25519_export_private_only(&key, seed, &len);
        if (wrc != 0 || len != WR_ED25519_SEED_LEN)
            rc = wr_cert_fail("key_export", wrc);
    }
    wc_ed25519_free(&key);
    return rc;
}

int wr_cert_ca_cluster(const char *ca_crt, char *out, size_t outlen)
{
    return wr_cert_cn(ca_crt, out, outlen);
}

int wr_cert_cn(const char *crt, char *out, size_t outlen)
{
    int rc = wr__tls_global_init();
    if (rc != 0)
        return rc;
    uint8_t der[WR_CERT_DER_MAX];
    size_t len = 0;
    rc = wr_cert_read_der(crt, CERT_TYPE, der, sizeof(der), &len);
    if (rc != 0)
        return rc;
    return wr__tls_der_cn(der, len, out, outlen);
}
