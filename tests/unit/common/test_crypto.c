/*
 * test_crypto.c: wr_crypto.c: base64url (RFC 4648 vectors in the url-safe,
 * unpadded form, and the strictness of the decoder), Ed25519 (RFC 8032
 * vector 1), constant-time compare and wiping, the XChaCha20-Poly1305 AEAD
 * (a draft-irtf-cfrg-xchacha vector, tampering, bounds).
 */
/* link: wr_crypto */
#include "test.h"

#include "wr/crypto.h"

static void test_hex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ASSERT_EQ(1, sscanf(hex + 2 * i, "%2x", &v));
        out[i] = (uint8_t)v;
    }
}

TEST(b64url_vectors)
{
    static const struct {
        const char *bin;
        const char *b64;
    } v[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    char enc[32];
    uint8_t dec[32];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = strlen(v[i].bin);
        ASSERT_EQ((ssize_t)strlen(v[i].b64),
                  wr_b64url_encode((const uint8_t *)v[i].bin, n, enc, sizeof(enc)));
        ASSERT_STR_EQ(v[i].b64, enc);
        ASSERT_EQ((ssize_t)n, wr_b64url_decode(v[i].b64, strlen(v[i].b64), dec, sizeof(dec)));
        ASSERT_MEM_EQ(v[i].bin, dec, n);
    }
}

TEST(b64url_urlsafe_alphabet)
{
    /* Standard base64 would be "+/8=": the url alphabet uses '-' and '_'. */
    const uint8_t in[2] = {0xfb, 0xff};
    char enc[8];
    uint8_t dec[8];
    ASSERT_EQ(3, wr_b64url_encode(in, sizeof(in), enc, sizeof(enc)));
    ASSERT_STR_EQ("-_8", enc);
    ASSERT_EQ(2, wr_b64url_decode("-_8", 3, dec, sizeof(dec)));
    ASSERT_MEM_EQ(in, dec, 2);
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("+/8", 3, dec, sizeof(dec)));
}

TEST(b64url_roundtrip_all_lengths)
{
    uint8_t in[64], dec[64];
    char enc[100];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        ssize_t e = wr_b64url_encode(in, n, enc, sizeof(enc));
        ASSERT_EQ((ssize_t)((n * 4 + 2) / 3), e);
        ASSERT_EQ((ssize_t)n, wr_b64url_decode(enc, (size_t)e, dec, sizeof(dec)));
        ASSERT_MEM_EQ(in, dec, n);
    }
}

TEST(b64url_rejects_malformed)
{
    uint8_t out[16];
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zg==", 4, out, sizeof(out))); /* padding */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zg=", 3, out, sizeof(out)));
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Z", 1, out, sizeof(out))); /* 1 mod 4 */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm9vY", 5, out, sizeof(out)));
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zh", 2, out, sizeof(out)));    /* trailing bits */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm9", 3, out, sizeof(out)));   /* "Zm8" canonical */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm 9v", 5, out, sizeof(out))); /* space */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm9v\n", 5, out, sizeof(out)));
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm\0v", 4, out, sizeof(out))); /* NUL inside */
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm9v.", 5, out, sizeof(out)));
    ASSERT_EQ(WR_EPROTO, wr_b64url_decode("Zm9\xc3", 4, out, sizeof(out)));
    /* The length given is what is read: no NUL termination assumed. */
    ASSERT_EQ(3, wr_b64url_decode("Zm9vYmFy", 4, out, sizeof(out)));
}

TEST(b64url_size_limits)
{
    uint8_t out[3];
    char enc[5];
    const uint8_t in[4] = {1, 2, 3, 4};
    ASSERT_EQ(WR_ETOOBIG, wr_b64url_decode("Zm9vYg", 6, out, sizeof(out)));
    ASSERT_EQ(3, wr_b64url_decode("Zm9v", 4, out, sizeof(out)));
    ASSERT_EQ(WR_ETOOBIG, wr_b64url_encode(in, 4, enc, sizeof(enc))); /* needs 6+1 */
    ASSERT_EQ(4, wr_b64url_encode(in, 3, enc, sizeof(enc)));
    ASSERT_EQ(WR_ETOOBIG, wr_b64url_encode(in, 3, enc, 4)); /* no room for the NUL */
}

TEST(ed25519_rfc8032_vector1)
{
    uint8_t seed[WR_SIGN_SEED_LEN], pk[WR_SIGN_PK_LEN], want_pk[WR_SIGN_PK_LEN];
    uint8_t sig[WR_SIG_LEN], want_sig[WR_SIG_LEN];
    ASSERT_OK(wr_crypto_init());
    test_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
    test_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", want_pk, 32);
    test_hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
             "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
             want_sig, 64);
    wr_sign_pk_from_seed(seed, pk);
    ASSERT_MEM_EQ(want_pk, pk, 32);
    wr_sign(seed, (const uint8_t *)"", 0, sig);
    ASSERT_MEM_EQ(want_sig, sig, 64);
    ASSERT_OK(wr_sign_verify(pk, (const uint8_t *)"", 0, sig));
}

TEST(sign_verify_rejects_tampering)
{
    uint8_t seed[WR_SIGN_SEED_LEN], seed2[WR_SIGN_SEED_LEN];
    uint8_t pk[WR_SIGN_PK_LEN], pk2[WR_SIGN_PK_LEN], sig[WR_SIG_LEN];
    uint8_t msg[100];
    ASSERT_OK(wr_crypto_init());
    ASSERT_OK(wr_crypto_init()); /* idempotent */
    wr_random_bytes(seed, sizeof(seed));
    wr_random_bytes(seed2, sizeof(seed2));
    wr_random_bytes(msg, sizeof(msg));
    wr_sign_pk_from_seed(seed, pk);
    wr_sign_pk_from_seed(seed2, pk2);
    wr_sign(seed, msg, sizeof(msg), sig);
    ASSERT_OK(wr_sign_verify(pk, msg, sizeof(msg), sig));
    ASSERT_EQ(WR_EAUTH, wr_sign_verify(pk2, msg, sizeof(msg), sig));
    ASSERT_EQ(WR_EAUTH, wr_sign_verify(pk, msg, sizeof(msg) - 1, sig));
    msg[50] ^= 0x01;
    ASSERT_EQ(WR_EAUTH, wr_sign_verify(pk, msg, sizeof(msg), sig));
    msg[50] ^= 0x01;
    sig[10] ^= 0x80;
    ASSERT_EQ(WR_EAUTH, wr_sign_verify(pk, msg, sizeof(msg), sig));
}

TEST(random_ct_eq_memzero)
{
    uint8_t a[32] = {0}, b[32] = {0};
    ASSERT_OK(wr_crypto_init());
    ASSERT(wr_ct_eq(a, b, sizeof(a)));
    wr_random_bytes(a, sizeof(a));
    ASSERT(!wr_ct_eq(a, b, sizeof(a))); /* 2^-256 of a false failure */
    memcpy(b, a, sizeof(a));
    ASSERT(wr_ct_eq(a, b, sizeof(a)));
    b[31] ^= 1;
    ASSERT(!wr_ct_eq(a, b, sizeof(a)));
    wr_memzero(a, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        ASSERT_EQ(0, a[i]);
    (void)wr_crypto_has_aesgcm(); /* either answer is fine; it must not crash */
}

TEST(aead_xchacha_vector)
{
    /* draft-irtf-cfrg-xchacha-03, appendix A.3.1. */
    static const char pt[] =
        "Ladies and Gentlemen of the class of '99: If I could offer you only one "
        "tip for the future, sunscreen would be it.";
    uint8_t key[WR_AEAD_KEY_LEN], nonce[WR_AEAD_NONCE_LEN], ad[12], tag[WR_AEAD_TAG_LEN];
    uint8_t ct[sizeof(pt) - 1], want_ct[sizeof(pt) - 1], out[sizeof(pt) - 1 + WR_AEAD_TAG_LEN];
    ASSERT_OK(wr_crypto_init());
    test_hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", key, 32);
    test_hex("404142434445464748494a4b4c4d4e4f5051525354555657", nonce, 24);
    test_hex("50515253c0c1c2c3c4c5c6c7", ad, 12);
    test_hex("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
             "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
             "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
             "21f9664c97637da9768812f615c68b13b52e",
             want_ct, sizeof(want_ct));
    test_hex("c0875924c1c7987947deafd8780acf49", tag, 16);
    const size_t n = sizeof(pt) - 1;
    ASSERT_OK(wr_aead_seal(key, nonce, ad, sizeof(ad), (const uint8_t *)pt, n, out, sizeof(out)));
    ASSERT_MEM_EQ(want_ct, out, n);
    ASSERT_MEM_EQ(tag, out + n, 16);
    ASSERT_OK(wr_aead_open(key, nonce, ad, sizeof(ad), out, sizeof(out), ct, sizeof(ct)));
    ASSERT_MEM_EQ(pt, ct, n);
}

TEST(aead_rejects_tampering_and_bounds)
{
    uint8_t key[WR_AEAD_KEY_LEN], nonce[WR_AEAD_NONCE_LEN], msg[40], sealed[40 + WR_AEAD_TAG_LEN];
    uint8_t out[40];
    ASSERT_OK(wr_crypto_init());
    wr_random_bytes(key, sizeof(key));
    wr_random_bytes(nonce, sizeof(nonce));
    wr_random_bytes(msg, sizeof(msg));
    ASSERT_EQ(WR_ETOOBIG, wr_aead_seal(key, nonce, NULL, 0, msg, sizeof(msg), sealed, 55));
    ASSERT_OK(wr_aead_seal(key, nonce, NULL, 0, msg, sizeof(msg), sealed, sizeof(sealed)));
    ASSERT_EQ(WR_ETOOBIG, wr_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), out, 39));
    ASSERT_EQ(WR_EAUTH, wr_aead_open(key, nonce, NULL, 0, sealed, WR_AEAD_TAG_LEN - 1, out, 40));
    for (size_t i = 0; i < sizeof(sealed); i++) {
        sealed[i] ^= 0x20;
        memset(out, 0xaa, sizeof(out));
        ASSERT_EQ(WR_EAUTH, wr_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), out, 40));
        for (size_t j = 0; j < sizeof(out); j++)
            ASSERT_EQ(0, out[j]); /* nothing unauthenticated is left behind */
        sealed[i] ^= 0x20;
    }
    /* The additional data is authenticated; so are the key and nonce. */
    const uint8_t ad = 1;
    ASSERT_EQ(WR_EAUTH, wr_aead_open(key, nonce, &ad, 1, sealed, sizeof(sealed), out, 40));
    nonce[0] ^= 1;
    ASSERT_EQ(WR_EAUTH, wr_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), out, 40));
    nonce[0] ^= 1;
    key[31] ^= 1;
    ASSERT_EQ(WR_EAUTH, wr_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), out, 40));
    key[31] ^= 1;
    ASSERT_OK(wr_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), out, 40));
    ASSERT_MEM_EQ(msg, out, sizeof(msg));
    /* An empty message: just the tag. */
    ASSERT_OK(wr_aead_seal(key, nonce, NULL, 0, NULL, 0, sealed, WR_AEAD_TAG_LEN));
    ASSERT_OK(wr_aead_open(key, nonce, NULL, 0, sealed, WR_AEAD_TAG_LEN, out, 0));
}

TEST_MAIN(TEST_ENTRY(b64url_vectors), TEST_ENTRY(b64url_urlsafe_alphabet),
          TEST_ENTRY(b64url_roundtrip_all_lengths), TEST_ENTRY(b64url_rejects_malformed),
          TEST_ENTRY(b64url_size_limits), TEST_ENTRY(ed25519_rfc8032_vector1),
          TEST_ENTRY(sign_verify_rejects_tampering), TEST_ENTRY(random_ct_eq_memzero),
          TEST_ENTRY(aead_xchacha_vector), TEST_ENTRY(aead_rejects_tampering_and_bounds))
