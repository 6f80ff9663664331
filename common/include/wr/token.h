/*
 * wr/token.h: join tokens. A token is signed claims (tunnel id, expiry,
 * maximum weight, issue time, random id) that a node verifies with the
 * cluster CA's Ed25519 public key alone. Text form (no secrets beyond the
 * bearer itself):
 *   "wrt1." base64url(msgpack claims) "." base64url(Ed25519 signature)
 * where the signature covers the bytes "wrt1." + base64url(claims).
 */
#ifndef WR_TOKEN_H
#define WR_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "wr/crypto.h"
#include "wr/err.h"
#include "wr/util.h"

#define WR_TOKEN_MAX 512 /* longest text form accepted, NUL excluded */

struct wr_token_claims {
    char tunnel[WR_ID_MAX + 1];
    uint64_t issued_at;  /* unix seconds */
    uint64_t expires_at; /* unix seconds */
    uint8_t max_weight;  /* 1..255 */
    uint8_t id[16];      /* random, for revocation lists later */
};

/* Writes the text form into <out> (>= WR_TOKEN_MAX + 1). Returns its length or an error. */
WR_MUST_CHECK ssize_t wr_token_create(const struct wr_token_claims *c,
                                      const uint8_t seed[WR_SIGN_SEED_LEN], char *out,
                                      size_t outlen);
/*
 * Verifies <len> bytes of text form <tok> against <pk> at time <now> (unix s).
 * Returns 0 and fills <out>, or: WR_EPROTO (malformed; *why says how),
 * WR_EAUTH (bad signature), WR_EEXPIRED (expired: now >= expires_at). On
 * WR_EEXPIRED <out> is filled too (the signature was good), so tools can show
 * what expired; on any other error it is zeroed. The signature is checked
 * before the claims are decoded. Checking that claims.tunnel is the tunnel the
 * peer asked for is the caller's job. <why> may be NULL. Never logs the token.
 */
WR_MUST_CHECK int wr_token_verify(const char *tok, size_t len, const uint8_t pk[WR_SIGN_PK_LEN],
                                  uint64_t now, struct wr_token_claims *out, const char **why);

#endif
