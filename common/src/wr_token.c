/*
 * wr_token.c: join tokens, "wrt1." b64url(msgpack claims) "." b64url(sig).
 * Owns the text form and the order of checks; the claims codec lives in
 * wr_wire.c and the signature primitives in wr_crypto.c. Tokens are bearer
 * secrets: nothing here logs them, and copies on the stack are wiped.
 *
 * Verification order matters: the text is split and size-checked, then the
 * signature is checked over the exact bytes received, and only a signed
 * claims blob reaches the msgpack decoder. An attacker without the CA key
 * therefore never gets to feed the decoder.
 */
#include "wr/token.h"

#include <string.h>

#include "wr/buf.h"
#include "wr/wire.h"

#define WR_TOKEN_PREFIX "wrt1."
#define WR_TOKEN_PREFIX_LEN (sizeof(WR_TOKEN_PREFIX) - 1)
#define WR_TOKEN_SIG_B64_LEN 86 /* 64 bytes, unpadded: ceil(64 * 4 / 3) */
/* Claims can never be longer than the text that carries them. */
#define WR_TOKEN_CLAIMS_MAX ((WR_TOKEN_MAX / 4) * 3 + 3)

ssize_t wr_token_create(const struct wr_token_claims *c, const uint8_t seed[WR_SIGN_SEED_LEN],
                        char *out, size_t outlen)
{
    struct wr_buf claims = {0};
    uint8_t sig[WR_SIG_LEN];
    char text[WR_TOKEN_MAX + 1];
    ssize_t ret;

    if (c->expires_at <= c->issued_at) {
        ret = WR_EUSAGE;
        goto out;
    }
    /* The codec checks the tunnel id and max_weight. */
    ret = wr_msg_claims_encode(c, &claims);
    if (ret != 0)
        goto out;

    memcpy(text, WR_TOKEN_PREFIX, WR_TOKEN_PREFIX_LEN);
    size_t pos = WR_TOKEN_PREFIX_LEN;
    struct wr_slice cs = wr_buf_peek(&claims);
    ret = wr_b64url_encode(cs.ptr, cs.len, text + pos, sizeof(text) - pos);
    if (ret < 0)
        goto out;
    pos += (size_t)ret;
    if (sizeof(text) - pos < 1 + WR_TOKEN_SIG_B64_LEN + 1) {
        ret = WR_ETOOBIG;
        goto out;
    }
    wr_sign(seed, (const uint8_t *)text, pos, sig);
    text[pos++] = '.';
    ret = wr_b64url_encode(sig, sizeof(sig), text + pos, sizeof(text) - pos);
    if (ret < 0)
        goto out;
    pos += (size_t)ret;
    if (outlen < pos + 1) {
        ret = WR_ETOOBIG;
        goto out;
    }
    memcpy(out, text, pos + 1);
    ret = (ssize_t)pos;
out:
    wr_memzero(text, sizeof(text));
    if (claims.data != NULL)
        wr_memzero(claims.data, claims.cap);
    wr_buf_free(&claims);
    return ret;
}

int wr_token_verify(const char *tok, size_t len, const uint8_t pk[WR_SIGN_PK_LEN], uint64_t now,
                    struct wr_token_claims *out, const char **why)
{
    uint8_t sig[WR_SIG_LEN];
    uint8_t claims[WR_TOKEN_CLAIMS_MAX];
    struct wr_token_claims c;
    const char *ignored;
    ssize_t n;
    int err = WR_EPROTO;

    if (why == NULL)
        why = &ignored;
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    if (len > WR_TOKEN_MAX) {
        *why = "token: too long";
        goto out;
    }
    if (len < WR_TOKEN_PREFIX_LEN || memcmp(tok, WR_TOKEN_PREFIX, WR_TOKEN_PREFIX_LEN) != 0) {
        *why = "token: bad prefix";
        goto out;
    }
    /* Exactly one more '.', separating non-empty claims from the signature. */
    const char *body = tok + WR_TOKEN_PREFIX_LEN;
    size_t body_len = len - WR_TOKEN_PREFIX_LEN;
    const char *dot = memchr(body, '.', body_len);
    if (dot == NULL) {
        *why = "token: missing signature";
        goto out;
    }
    size_t claims_b64_len = (size_t)(dot - body);
    const char *sig_b64 = dot + 1;
    size_t sig_b64_len = body_len - claims_b64_len - 1;
    if (claims_b64_len == 0) {
        *why = "token: empty claims";
        goto out;
    }
    if (memchr(sig_b64, '.', sig_b64_len) != NULL) {
        *why = "token: too many parts";
        goto out;
    }
    if (sig_b64_len != WR_TOKEN_SIG_B64_LEN) {
        *why = "token: bad signature length";
        goto out;
    }
    n = wr_b64url_decode(sig_b64, sig_b64_len, sig, sizeof(sig));
    if (n != (ssize_t)sizeof(sig)) {
        *why = "token: bad signature encoding";
        goto out;
    }
    /* The signed bytes are the text up to (not including) the second dot. */
    if (wr_sign_verify(pk, (const uint8_t *)tok, WR_TOKEN_PREFIX_LEN + claims_b64_len, sig) != 0) {
        err = WR_EAUTH;
        *why = "token: bad signature";
        goto out;
    }
    n = wr_b64url_decode(body, claims_b64_len, claims, sizeof(claims));
    if (n <= 0) {
        *why = "token: bad claims encoding";
        goto out;
    }
    err = wr_msg_claims_decode(wr_slice_make(claims, (size_t)n), &c, why);
    if (err != 0)
        goto out; /* WR_EPROTO, or WR_ENOMEM from the unpacker */
    *out = c;
    if (now >= c.expires_at) {
        err = WR_EEXPIRED;
        *why = "token: expired";
        goto out;
    }
    err = 0;
out:
    wr_memzero(claims, sizeof(claims));
    wr_memzero(&c, sizeof(c));
    return err;
}
