/*
 * wr/cert.h: the cluster's identity material, made with wolfSSL.
 * A cluster CA is an Ed25519 key and a self-signed X.509 certificate; node
 * certificates are Ed25519 keys signed by it, with the node id as common
 * name and "<node-id>.<cluster>" and "<cluster>" as DNS names. The CA key
 * also signs join tokens (wr/token.h), so nodes verify tokens with the CA
 * certificate alone. Files are PEM; key files are written mode 0600.
 */
#ifndef WR_CERT_H
#define WR_CERT_H

#include <stdint.h>

#include "wr/err.h"

#define WR_ED25519_PK_LEN 32
#define WR_ED25519_SEED_LEN 32

/* Creates <dir>/ca.key and <dir>/ca.crt for cluster <cluster> (fails with
 * -EEXIST rather than overwrite an existing key). Valid for <days>. */
WR_MUST_CHECK int wr_cert_ca_init(const char *dir, const char *cluster, uint32_t days);
/* Issues <out_crt>/<out_key> for <node_id>, signed by the CA files. */
WR_MUST_CHECK int wr_cert_issue(const char *ca_crt, const char *ca_key, const char *node_id,
                                uint32_t days, const char *out_crt, const char *out_key);
/* The CA's Ed25519 public key, read from its certificate. */
WR_MUST_CHECK int wr_cert_ca_pubkey(const char *ca_crt, uint8_t pk[WR_ED25519_PK_LEN]);
/* The CA's Ed25519 private seed, from its key file (caller wipes it). */
WR_MUST_CHECK int wr_cert_ca_seed(const char *ca_key, uint8_t seed[WR_ED25519_SEED_LEN]);
/* The cluster name (the CA certificate's common name) into <out>. */
WR_MUST_CHECK int wr_cert_ca_cluster(const char *ca_crt, char *out, size_t outlen);
/* The common name of any certificate file (a node's: its node id) into <out>. */
WR_MUST_CHECK int wr_cert_cn(const char *crt, char *out, size_t outlen);

#endif
