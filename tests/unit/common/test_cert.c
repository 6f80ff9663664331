/*
 * test_cert.c: the cluster CA and node certificates (wr/cert.h): files and
 * modes, refusal to overwrite a CA, names and SANs, the CA key as a libsodium
 * seed, and (when openssl is installed) that openssl accepts what we wrote.
 * The TLS handshake with these certificates is in test_tls.c.
 */
/* link: wr_tls wr_base wolfssl sodium */
#include "../../../common/src/wr_tls_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "test.h"
#include "wr/cert.h"
#include "wr/util.h"

struct tc_dir {
    char dir[64];
    char ca_crt[128], ca_key[128], crt[128], key[128];
};

static void tc_dir_make(struct tc_dir *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/wr_test_cert.XXXXXX");
    ASSERT(mkdtemp(d->dir) != NULL);
    snprintf(d->ca_crt, sizeof(d->ca_crt), "%s/ca.crt", d->dir);
    snprintf(d->ca_key, sizeof(d->ca_key), "%s/ca.key", d->dir);
    snprintf(d->crt, sizeof(d->crt), "%s/n.crt", d->dir);
    snprintf(d->key, sizeof(d->key), "%s/n.key", d->dir);
}

static void tc_dir_free(struct tc_dir *d)
{
    unlink(d->ca_crt);
    unlink(d->ca_key);
    unlink(d->crt);
    unlink(d->key);
    rmdir(d->dir);
}

static bool tc_file_has(const char *path, const char *needle)
{
    char *buf = NULL;
    size_t len = 0;
    ASSERT_OK(wr_read_file(path, 65536, &buf, &len));
    bool found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

TEST(ca_and_issue)
{
    struct tc_dir d;
    tc_dir_make(&d);
    ASSERT_OK(wr_cert_ca_init(d.dir, "example.net", 365));
    struct stat st;
    ASSERT_OK(stat(d.ca_key, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT(tc_file_has(d.ca_key, "-----BEGIN PRIVATE KEY-----"));
    ASSERT(tc_file_has(d.ca_crt, "-----BEGIN CERTIFICATE-----"));
    /* A second init must not overwrite the CA key. */
    ASSERT_EQ(wr_cert_ca_init(d.dir, "example.net", 365), -EEXIST);

    char cluster[80];
    ASSERT_OK(wr_cert_ca_cluster(d.ca_crt, cluster, sizeof(cluster)));
    ASSERT_STR_EQ(cluster, "example.net");

    /* The CA key is a libsodium seed whose public key is the certificate's. */
    uint8_t pk[WR_ED25519_PK_LEN], seed[WR_ED25519_SEED_LEN];
    ASSERT_OK(wr_cert_ca_pubkey(d.ca_crt, pk));
    ASSERT_OK(wr_cert_ca_seed(d.ca_key, seed));
    ASSERT(sodium_init() >= 0);
    uint8_t spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];
    ASSERT_OK(crypto_sign_seed_keypair(spk, ssk, seed));
    ASSERT_MEM_EQ(spk, pk, WR_ED25519_PK_LEN);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(ssk, sizeof(ssk));

    ASSERT_OK(wr_cert_issue(d.ca_crt, d.ca_key, "node-7", 30, d.crt, d.key));
    ASSERT_OK(stat(d.key, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);

    /* Names: CN = node id, SANs "<node>.<cluster>" and "<cluster>". */
    char *pem = NULL;
    size_t plen = 0;
    ASSERT_OK(wr_read_file(d.crt, 65536, &pem, &plen));
    uint8_t der[4096];
    int dlen = wc_CertPemToDer((const unsigned char *)pem, (int)plen, der, sizeof(der), CERT_TYPE);
    free(pem);
    ASSERT(dlen > 0);
    char cn[80];
    ASSERT_OK(wr__tls_der_cn(der, (size_t)dlen, cn, sizeof(cn)));
    ASSERT_STR_EQ(cn, "node-7");
    DecodedCert dc;
    wc_InitDecodedCert(&dc, der, (word32)dlen, NULL);
    ASSERT_OK(wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL));
    bool fqdn = false, bare = false;
    for (DNS_entry *e = dc.altNames; e != NULL; e = e->next) {
        if (e->len == (int)strlen("node-7.example.net") &&
            memcmp(e->name, "node-7.example.net", (size_t)e->len) == 0)
            fqdn = true;
        if (e->len == (int)strlen("example.net") && memcmp(e->name, "example.net", 11) == 0)
            bare = true;
    }
    ASSERT(fqdn && bare);
    ASSERT(!dc.isCA);
    wc_FreeDecodedCert(&dc);

    /* openssl reads our PKCS#8 keys and verifies the chain. */
    if (access("/usr/bin/openssl", X_OK) == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "openssl verify -CAfile %s %s >/dev/null 2>&1 && "
                 "openssl pkey -in %s -noout >/dev/null 2>&1 && "
                 "openssl pkey -in %s -noout >/dev/null 2>&1",
                 d.ca_crt, d.crt, d.ca_key, d.key);
        ASSERT_OK(system(cmd));
    }
    tc_dir_free(&d);
}

TEST(bad_input)
{
    struct tc_dir d;
    tc_dir_make(&d);
    ASSERT_EQ(wr_cert_ca_init(d.dir, "bad name", 30), WR_EUSAGE);
    ASSERT_EQ(wr_cert_ca_init(d.dir, "ok", 0), WR_EUSAGE);
    ASSERT_OK(wr_cert_ca_init(d.dir, "ok", 30));
    ASSERT_EQ(wr_cert_issue(d.ca_crt, d.ca_key, "a/b", 30, d.crt, d.key), WR_EUSAGE);
    ASSERT(wr_cert_issue(d.ca_crt, "/nonexistent/ca.key", "n1", 30, d.crt, d.key) < 0);
    ASSERT(wr_cert_issue("/nonexistent/ca.crt", d.ca_key, "n1", 30, d.crt, d.key) < 0);
    uint8_t pk[WR_ED25519_PK_LEN];
    /* A key file is not a certificate. */
    ASSERT(wr_cert_ca_pubkey(d.ca_key, pk) < 0);
    uint8_t seed[WR_ED25519_SEED_LEN];
    ASSERT(wr_cert_ca_seed(d.ca_crt, seed) < 0);
    char small[2];
    ASSERT(wr_cert_ca_cluster(d.ca_crt, small, sizeof(small)) < 0);
    unlink(d.crt);
    unlink(d.key);
    tc_dir_free(&d);
}

TEST_MAIN(TEST_ENTRY(ca_and_issue), TEST_ENTRY(bad_input))
