/*
 * test_token.c: wr_token.c, join tokens. Sign and verify, expiry, forgery
 * (a flipped bit in the claims or in the signature, another key's
 * signature, a signed blob that is not valid claims) and malformed text.
 */
/* link: wr_crypto */
#include "test.h"

#include "wr/token.h"
#include "wr/wire.h"

#define NOW 1700000000ull

static uint8_t seed[WR_SIGN_SEED_LEN];
static uint8_t pk[WR_SIGN_PK_LEN];

static void setup(void)
{
    ASSERT_OK(wr_crypto_init());
    wr_random_bytes(seed, sizeof(seed));
    wr_sign_pk_from_seed(seed, pk);
}

static void claims_make(struct wr_token_claims *c, const char *tunnel)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->tunnel, sizeof(c->tunnel), "%s", tunnel);
    c->issued_at = NOW;
    c->expires_at = NOW + 3600;
    c->max_weight = 200;
    wr_random_bytes(c->id, sizeof(c->id));
}

/* Signs arbitrary claim bytes the way wr_token_create does, for hostile cases. */
static size_t sign_raw(const uint8_t *claims, size_t n, char *out, size_t outlen)
{
    uint8_t sig[WR_SIG_LEN];
    memcpy(out, "wrt1.", 5);
    ssize_t e = wr_b64url_encode(claims, n, out + 5, outlen - 5);
    ASSERT(e > 0);
    size_t pos = 5 + (size_t)e;
    wr_sign(seed, (const uint8_t *)out, pos, sig);
    out[pos++] = '.';
    e = wr_b64url_encode(sig, sizeof(sig), out + pos, outlen - pos);
    ASSERT(e > 0);
    return pos + (size_t)e;
}

TEST(create_verify_roundtrip)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    const char *why = NULL;
    setup();
    claims_make(&c, "web.prod");
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    ASSERT_EQ((size_t)n, strlen(tok));
    ASSERT(strncmp(tok, "wrt1.", 5) == 0);
    ASSERT_OK(wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why));
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    /* The tunnel comes back exactly: the caller compares it with HELLO's. */
    ASSERT_STR_EQ("web.prod", d.tunnel);
    ASSERT_EQ(200, d.max_weight);
    /* Two tokens for the same claims differ only by their random id. */
    char tok2[WR_TOKEN_MAX + 1];
    claims_make(&c, "web.prod");
    ASSERT(wr_token_create(&c, seed, tok2, sizeof(tok2)) > 0);
    ASSERT(strcmp(tok, tok2) != 0);
}

TEST(longest_claims_fit)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    setup();
    claims_make(&c, "x");
    memset(c.tunnel, 't', WR_ID_MAX);
    c.tunnel[WR_ID_MAX] = '\0';
    c.issued_at = UINT64_MAX - 1;
    c.expires_at = UINT64_MAX;
    c.max_weight = 255;
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    ASSERT_LE(n, WR_TOKEN_MAX);
    ASSERT_OK(wr_token_verify(tok, (size_t)n, pk, NOW, &d, NULL));
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
}

TEST(create_rejects_bad_claims)
{
    struct wr_token_claims c;
    char tok[WR_TOKEN_MAX + 1];
    setup();
    claims_make(&c, "web");
    c.max_weight = 0;
    ASSERT_EQ(WR_EUSAGE, wr_token_create(&c, seed, tok, sizeof(tok)));
    claims_make(&c, "a b");
    ASSERT_EQ(WR_EUSAGE, wr_token_create(&c, seed, tok, sizeof(tok)));
    claims_make(&c, "");
    ASSERT_EQ(WR_EUSAGE, wr_token_create(&c, seed, tok, sizeof(tok)));
    claims_make(&c, "web");
    c.expires_at = c.issued_at;
    ASSERT_EQ(WR_EUSAGE, wr_token_create(&c, seed, tok, sizeof(tok)));
    claims_make(&c, "web");
    ASSERT_EQ(WR_ETOOBIG, wr_token_create(&c, seed, tok, 100));
}

TEST(expired)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    const char *why = NULL;
    setup();
    claims_make(&c, "web");
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    ASSERT_OK(wr_token_verify(tok, (size_t)n, pk, c.expires_at - 1, &d, &why));
    /* expires_at itself is already too late. */
    ASSERT_EQ(WR_EEXPIRED, wr_token_verify(tok, (size_t)n, pk, c.expires_at, &d, &why));
    ASSERT_STR_EQ("token: expired", why);
    /* The claims of an expired (but genuine) token are returned for display. */
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    ASSERT_EQ(WR_EEXPIRED, wr_token_verify(tok, (size_t)n, pk, UINT64_MAX, &d, &why));
}

TEST(forged_claims_bit)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    const char *why = NULL;
    setup();
    claims_make(&c, "web");
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    const char *dot2 = strchr(tok + 5, '.');
    /* Every character of the claims part, swapped for another valid one. */
    for (char *p = tok + 5; p < dot2; p++) {
        char save = *p;
        *p = save == 'A' ? 'B' : 'A';
        int err = wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why);
        /* Signature first: a change is a bad signature, even where it would
         * also have broken the base64 or the msgpack. */
        ASSERT_EQ(WR_EAUTH, err);
        ASSERT_STR_EQ("token: bad signature", why);
        ASSERT_EQ(0, d.tunnel[0]); /* nothing returned */
        *p = save;
    }
    ASSERT_OK(wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why));
}

TEST(forged_signature_bit)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    const char *why = NULL;
    setup();
    claims_make(&c, "web");
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    char *sig = strchr(tok + 5, '.') + 1;
    for (char *p = sig; p < tok + n - 1; p++) { /* the last char carries pad bits */
        char save = *p;
        *p = save == 'A' ? 'B' : 'A';
        ASSERT_EQ(WR_EAUTH, wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why));
        *p = save;
    }
    /* The last character: changing its padding bits is malformed, not a new
     * signature (one text form per signature). */
    char *last = tok + n - 1;
    char save = *last;
    *last = save == 'A' ? 'B' : 'A';
    int err = wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why);
    ASSERT(err == WR_EPROTO || err == WR_EAUTH);
    *last = save;
    ASSERT_OK(wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why));
}

TEST(signed_by_another_key)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    uint8_t other_seed[WR_SIGN_SEED_LEN], other_pk[WR_SIGN_PK_LEN];
    const char *why = NULL;
    setup();
    wr_random_bytes(other_seed, sizeof(other_seed));
    wr_sign_pk_from_seed(other_seed, other_pk);
    claims_make(&c, "web");
    ssize_t n = wr_token_create(&c, other_seed, tok, sizeof(tok));
    ASSERT(n > 0);
    ASSERT_EQ(WR_EAUTH, wr_token_verify(tok, (size_t)n, pk, NOW, &d, &why));
    ASSERT_STR_EQ("token: bad signature", why);
    ASSERT_OK(wr_token_verify(tok, (size_t)n, other_pk, NOW, &d, &why));
}

TEST(signed_garbage_claims)
{
    /* A holder of the CA key could sign anything: the claims are still checked. */
    struct wr_token_claims d;
    char tok[WR_TOKEN_MAX + 1];
    const char *why = NULL;
    setup();
    size_t n = sign_raw((const uint8_t *)"not msgpack\xc1", 12, tok, sizeof(tok));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, n, pk, NOW, &d, &why));

    /* maxw 0 */
    static const uint8_t w0[] = {0x85, 0xa6, 't',  'u', 'n',  'n',  'e', 'l',  0xa1, 'x',
                                 0xa3, 'i',  'a',  't', 0x01, 0xa3, 'e', 'x',  'p',  0xcd,
                                 0xff, 0xff, 0xa4, 'm', 'a',  'x',  'w', 0x00, 0xa3, 'j',
                                 't',  'i',  0xc4, 16,  0,    0,    0,   0,    0,    0,
                                 0,    0,    0,    0,   0,    0,    0,   0,    0,    0};
    n = sign_raw(w0, sizeof(w0), tok, sizeof(tok));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, n, pk, 0, &d, &why));
    ASSERT_STR_EQ("claims: invalid maxw", why);
    /* The same with maxw 1 is fine, which shows the blob above is otherwise valid. */
    uint8_t w1[sizeof(w0)];
    memcpy(w1, w0, sizeof(w0));
    w1[27] = 1;
    n = sign_raw(w1, sizeof(w1), tok, sizeof(tok));
    ASSERT_OK(wr_token_verify(tok, n, pk, 0, &d, &why));
    ASSERT_STR_EQ("x", d.tunnel);
    ASSERT_EQ(0xffff, d.expires_at);
    /* Bad tunnel id. */
    w1[9] = '/';
    n = sign_raw(w1, sizeof(w1), tok, sizeof(tok));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, n, pk, 0, &d, &why));
    ASSERT_STR_EQ("claims: invalid tunnel", why);
    /* Missing jti: 4 pairs only, the jti bytes become trailing garbage. */
    w1[9] = 'x';
    w1[0] = 0x84;
    n = sign_raw(w1, sizeof(w1), tok, sizeof(tok));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, n, pk, 0, &d, &why));
    ASSERT_STR_EQ("claims: trailing bytes", why);
    n = sign_raw(w1, 28, tok, sizeof(tok));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, n, pk, 0, &d, &why));
    ASSERT_STR_EQ("claims: missing jti", why);
}

TEST(malformed_text)
{
    struct wr_token_claims c, d;
    char tok[WR_TOKEN_MAX + 1];
    char bad[2 * WR_TOKEN_MAX];
    const char *why = NULL;
    setup();
    claims_make(&c, "web");
    ssize_t n = wr_token_create(&c, seed, tok, sizeof(tok));
    ASSERT(n > 0);
    size_t len = (size_t)n;
    size_t claims_end = (size_t)(strchr(tok + 5, '.') - tok);

    static const struct {
        const char *text;
        const char *why;
    } fixed[] = {
        {"", "token: bad prefix"},
        {"wrt1", "token: bad prefix"},
        {"wrt2.abc.def", "token: bad prefix"},
        {"WRT1.abc.def", "token: bad prefix"},
        {"wrt1.", "token: missing signature"},
        {"wrt1.abcdef", "token: missing signature"},
        {"wrt1..AAAA", "token: empty claims"},
        {"wrt1.abc.de.f", "token: too many parts"},
        {"wrt1.abc.AAAA", "token: bad signature length"},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        ASSERT_EQ(WR_EPROTO,
                  wr_token_verify(fixed[i].text, strlen(fixed[i].text), pk, NOW, &d, &why));
        ASSERT_STR_EQ(fixed[i].why, why);
    }

    /* A signature with a character outside the alphabet. */
    memcpy(bad, tok, len);
    bad[len - 5] = '+';
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, len, pk, NOW, &d, &why));
    ASSERT_STR_EQ("token: bad signature encoding", why);
    bad[len - 5] = '=';
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, len, pk, NOW, &d, &why));

    /* Padding appended, whitespace appended, a truncated copy. */
    memcpy(bad, tok, len);
    memcpy(bad + len, "==", 2);
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, len + 2, pk, NOW, &d, &why));
    bad[len] = '\n';
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, len + 1, pk, NOW, &d, &why));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(tok, len - 1, pk, NOW, &d, &why));

    /* A NUL inside: the length given is what counts, and it fails. */
    memcpy(bad, tok, len);
    bad[claims_end - 1] = '\0';
    ASSERT_NE(0, wr_token_verify(bad, len, pk, NOW, &d, &why));

    /* Too long, even if it would otherwise parse. */
    memset(bad, 'A', sizeof(bad));
    memcpy(bad, "wrt1.", 5);
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, WR_TOKEN_MAX + 1, pk, NOW, &d, &why));
    ASSERT_STR_EQ("token: too long", why);

    /* Claims that are not base64url, under a valid signature of those bytes. */
    uint8_t sig[WR_SIG_LEN];
    memcpy(bad, "wrt1.ab$d.", 10);
    wr_sign(seed, (const uint8_t *)bad, 9, sig);
    ASSERT_EQ(86, wr_b64url_encode(sig, sizeof(sig), bad + 10, sizeof(bad) - 10));
    ASSERT_EQ(WR_EPROTO, wr_token_verify(bad, 96, pk, NOW, &d, &why));
    ASSERT_STR_EQ("token: bad claims encoding", why);
    ASSERT_EQ(0, d.tunnel[0]);
}

TEST_MAIN(TEST_ENTRY(create_verify_roundtrip), TEST_ENTRY(longest_claims_fit),
          TEST_ENTRY(create_rejects_bad_claims), TEST_ENTRY(expired), TEST_ENTRY(forged_claims_bit),
          TEST_ENTRY(forged_signature_bit), TEST_ENTRY(signed_by_another_key),
          TEST_ENTRY(signed_garbage_claims), TEST_ENTRY(malformed_text))
