/*
 * test_disc_keyring.c: the gossip keyring and packet sealing
 * (disc_keyring.c): seal with the primary, open with any key, rotation
 * (install, use, remove) as a live cluster would do it, the limits, and
 * that tampered, truncated, foreign-key or wrong-version packets are refused
 * without output.
 */
/* link: disc_lib_int */
#include "test.h"

#include "disc_int.h"
#include "wr/crypto.h"

static void key_fill(uint8_t k[DISC_KEY_LEN], uint8_t v)
{
    memset(k, v, DISC_KEY_LEN);
}

static struct wr_slice plain(void)
{
    static const char msg[] = "gossip plaintext";
    return wr_slice_make(msg, sizeof(msg) - 1);
}

TEST(keyring_seal_open_roundtrip_and_format)
{
    uint8_t k1[DISC_KEY_LEN];
    ASSERT_OK(wr_crypto_init());
    key_fill(k1, 1);
    struct disc_keyring *kr = disc_keyring_new(k1);
    struct wr_buf s1 = {0}, s2 = {0}, out = {0};
    ASSERT_OK(disc__keyring_seal(kr, plain(), &s1));
    ASSERT_OK(disc__keyring_seal(kr, plain(), &s2));
    ASSERT_EQ(plain().len + DISC_SEAL_OVERHEAD, s1.len);
    ASSERT_EQ(DISC_WIRE_VERSION, s1.data[0]);
    /* Random nonces: the same plaintext never seals the same way. */
    ASSERT(memcmp(s1.data + 1, s2.data + 1, DISC_NONCE_LEN) != 0);
    ASSERT_OK(disc__keyring_open(kr, wr_buf_peek(&s1), &out));
    ASSERT_EQ(plain().len, out.len);
    ASSERT_MEM_EQ(plain().ptr, out.data + out.off, out.len);
    /* An empty plaintext is fine too. */
    s2.len = 0;
    out.len = 0;
    ASSERT_OK(disc__keyring_seal(kr, wr_slice_make(NULL, 0), &s2));
    ASSERT_EQ(DISC_SEAL_OVERHEAD, s2.len);
    ASSERT_OK(disc__keyring_open(kr, wr_buf_peek(&s2), &out));
    ASSERT_EQ(0, out.len);
    wr_buf_free(&s1);
    wr_buf_free(&s2);
    wr_buf_free(&out);
    disc_keyring_free(kr);
}

TEST(keyring_refuses_tampered_and_foreign)
{
    uint8_t k1[DISC_KEY_LEN], k2[DISC_KEY_LEN];
    ASSERT_OK(wr_crypto_init());
    key_fill(k1, 1);
    key_fill(k2, 2);
    struct disc_keyring *kr = disc_keyring_new(k1);
    struct disc_keyring *other = disc_keyring_new(k2);
    struct wr_buf s = {0}, out = {0};
    ASSERT_OK(disc__keyring_seal(kr, plain(), &s));
    /* Every single bit flip anywhere is refused (the version byte as a
     * version error or as authentication: it is in the AD). */
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            s.data[i] ^= (uint8_t)(1 << bit);
            int err = disc__keyring_open(kr, wr_buf_peek(&s), &out);
            ASSERT(err == WR_EAUTH || (i == 0 && err == WR_EVERSION));
            ASSERT_EQ(0, out.len);
            s.data[i] ^= (uint8_t)(1 << bit);
        }
    }
    /* Truncated, down to nothing. */
    for (size_t n = 0; n < s.len; n++)
        ASSERT_EQ(WR_EAUTH, disc__keyring_open(kr, wr_slice_make(s.data, n), &out));
    ASSERT_EQ(0, out.len);
    /* Another cluster's key. */
    ASSERT_EQ(WR_EAUTH, disc__keyring_open(other, wr_buf_peek(&s), &out));
    ASSERT_OK(disc__keyring_open(kr, wr_buf_peek(&s), &out));
    wr_buf_free(&s);
    wr_buf_free(&out);
    disc_keyring_free(kr);
    disc_keyring_free(other);
}

TEST(keyring_rotation_across_a_cluster)
{
    /* Two members on key 1; rotate to key 2 the way an operator would:
     * install everywhere, use everywhere, remove everywhere. */
    uint8_t k1[DISC_KEY_LEN], k2[DISC_KEY_LEN], got[DISC_KEY_LEN];
    ASSERT_OK(wr_crypto_init());
    key_fill(k1, 1);
    key_fill(k2, 2);
    struct disc_keyring *a = disc_keyring_new(k1), *b = disc_keyring_new(k1);
    struct wr_buf s = {0}, out = {0};
    ASSERT_OK(disc_keyring_install(a, k2));
    ASSERT_OK(disc_keyring_install(a, k2)); /* idempotent */
    ASSERT_EQ(2, disc_keyring_count(a));
    /* a still seals with key 1: b (key 1 only) opens it. */
    ASSERT_OK(disc__keyring_seal(a, plain(), &s));
    ASSERT_OK(disc__keyring_open(b, wr_buf_peek(&s), &out));
    ASSERT_OK(disc_keyring_install(b, k2));
    ASSERT_OK(disc_keyring_use(a, k2));
    ASSERT(disc_keyring_get(a, 0, got));
    ASSERT_MEM_EQ(k2, got, DISC_KEY_LEN);
    ASSERT(disc_keyring_get(a, 1, got));
    ASSERT_MEM_EQ(k1, got, DISC_KEY_LEN);
    ASSERT(!disc_keyring_get(a, 2, got));
    /* a seals with key 2 now; b (primary 1, holds 2) opens it; and a opens b's. */
    s.len = 0;
    out.len = 0;
    ASSERT_OK(disc__keyring_seal(a, plain(), &s));
    ASSERT_OK(disc__keyring_open(b, wr_buf_peek(&s), &out));
    s.len = 0;
    ASSERT_OK(disc__keyring_seal(b, plain(), &s));
    ASSERT_OK(disc__keyring_open(a, wr_buf_peek(&s), &out));
    ASSERT_OK(disc_keyring_use(b, k2));
    /* The primary cannot be removed; the old key can. */
    ASSERT_EQ(WR_EUSAGE, disc_keyring_remove(a, k2));
    ASSERT_OK(disc_keyring_remove(a, k1));
    ASSERT_EQ(WR_ENOMEMBER, disc_keyring_remove(a, k1));
    ASSERT_OK(disc_keyring_remove(b, k1));
    ASSERT_EQ(1, disc_keyring_count(a));
    /* A straggler still on key 1 only is now shut out. */
    struct disc_keyring *old = disc_keyring_new(k1);
    s.len = 0;
    ASSERT_OK(disc__keyring_seal(old, plain(), &s));
    ASSERT_EQ(WR_EAUTH, disc__keyring_open(a, wr_buf_peek(&s), &out));
    ASSERT_EQ(WR_ENOMEMBER, disc_keyring_use(a, k1));
    wr_buf_free(&s);
    wr_buf_free(&out);
    disc_keyring_free(a);
    disc_keyring_free(b);
    disc_keyring_free(old);
}

TEST(keyring_limit)
{
    uint8_t k[DISC_KEY_LEN];
    key_fill(k, 0);
    struct disc_keyring *kr = disc_keyring_new(k);
    for (uint8_t i = 1; i < DISC_KEYRING_MAX; i++) {
        key_fill(k, i);
        ASSERT_OK(disc_keyring_install(kr, k));
    }
    ASSERT_EQ(DISC_KEYRING_MAX, disc_keyring_count(kr));
    key_fill(k, 99);
    ASSERT_EQ(WR_ELIMIT, disc_keyring_install(kr, k));
    /* Removing one from the middle keeps the others in order. */
    key_fill(k, 3);
    ASSERT_OK(disc_keyring_remove(kr, k));
    uint8_t got[DISC_KEY_LEN];
    ASSERT(disc_keyring_get(kr, 3, got));
    key_fill(k, 4);
    ASSERT_MEM_EQ(k, got, DISC_KEY_LEN);
    key_fill(k, 99);
    ASSERT_OK(disc_keyring_install(kr, k));
    disc_keyring_free(kr);
}

TEST(keyring_opens_with_any_of_many_keys)
{
    uint8_t k[DISC_KEY_LEN];
    ASSERT_OK(wr_crypto_init());
    key_fill(k, 7);
    struct disc_keyring *sender = disc_keyring_new(k);
    key_fill(k, 0);
    struct disc_keyring *kr = disc_keyring_new(k);
    for (uint8_t i = 1; i < DISC_KEYRING_MAX; i++) {
        key_fill(k, i);
        ASSERT_OK(disc_keyring_install(kr, k));
    }
    struct wr_buf s = {0}, out = {0};
    ASSERT_OK(disc__keyring_seal(sender, plain(), &s));
    ASSERT_OK(disc__keyring_open(kr, wr_buf_peek(&s), &out)); /* key 7 is the last tried */
    ASSERT_EQ(plain().len, out.len);
    s.data[0] = DISC_WIRE_VERSION + 1;
    ASSERT_EQ(WR_EVERSION, disc__keyring_open(kr, wr_buf_peek(&s), &out));
    wr_buf_free(&s);
    wr_buf_free(&out);
    disc_keyring_free(kr);
    disc_keyring_free(sender);
}

/* The --cluster-key file: parse what format wrote, comments, both base64
 * alphabets, and the errors with the line they name. */
TEST(keyring_text_parse_and_format)
{
    ASSERT_OK(wr_crypto_init());
    uint8_t k1[DISC_KEY_LEN], k2[DISC_KEY_LEN], got[DISC_KEY_LEN];
    key_fill(k1, 0xfb); /* 0xfb.. encodes with '-' and '_' in base64url */
    key_fill(k2, 2);
    struct disc_keyring *kr = disc_keyring_new(k1);
    ASSERT_OK(disc_keyring_install(kr, k2));
    struct wr_buf text = {0};
    ASSERT_OK(disc_keyring_format(kr, &text));
    disc_keyring_free(kr);

    struct disc_keyring *back = NULL;
    size_t bad = 99;
    ASSERT_OK(disc_keyring_parse((const char *)text.data, text.len, &back, &bad));
    ASSERT_EQ(0, bad);
    ASSERT_EQ(2, disc_keyring_count(back));
    ASSERT(disc_keyring_get(back, 0, got));
    ASSERT(memcmp(got, k1, DISC_KEY_LEN) == 0); /* the primary stays first */
    ASSERT(disc_keyring_get(back, 1, got));
    ASSERT(memcmp(got, k2, DISC_KEY_LEN) == 0);
    disc_keyring_free(back);
    wr_buf_free(&text);

    /* Standard alphabet with padding, CRLF, comments, blank lines, a duplicate. */
    static const char std[] = "# ours\r\n\n  +/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=  \r\n"
                              "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=\n";
    ASSERT_OK(disc_keyring_parse(std, sizeof(std) - 1, &back, &bad));
    ASSERT_EQ(1, disc_keyring_count(back));
    ASSERT(disc_keyring_get(back, 0, got));
    ASSERT(memcmp(got, k1, DISC_KEY_LEN) == 0);
    disc_keyring_free(back);

    static const char short_key[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAA\n";
    ASSERT_EQ(WR_EPROTO, disc_keyring_parse(short_key, sizeof(short_key) - 1, &back, &bad));
    ASSERT_EQ(2, bad);
    static const char junk[] = "not a key at all!";
    ASSERT_EQ(WR_EPROTO, disc_keyring_parse(junk, sizeof(junk) - 1, &back, &bad));
    ASSERT_EQ(1, bad);
    static const char none[] = "# nothing\n\n";
    ASSERT_EQ(WR_EUSAGE, disc_keyring_parse(none, sizeof(none) - 1, &back, &bad));
    ASSERT_EQ(WR_EUSAGE, disc_keyring_parse("", 0, &back, &bad));

    /* Nine distinct keys: one more than a keyring holds. */
    struct wr_buf many = {0};
    for (uint8_t i = 0; i <= DISC_KEYRING_MAX; i++) {
        uint8_t k[DISC_KEY_LEN];
        char line[64];
        key_fill(k, (uint8_t)(i + 10));
        ssize_t n = wr_b64url_encode(k, sizeof(k), line, sizeof(line) - 1);
        ASSERT(n > 0);
        line[n] = '\n';
        ASSERT_OK(wr_buf_append(&many, line, (size_t)n + 1));
    }
    ASSERT_EQ(WR_ELIMIT, disc_keyring_parse((const char *)many.data, many.len, &back, &bad));
    wr_buf_free(&many);

    /* Fingerprints: stable, distinct, 16 hex digits. */
    char f1[DISC_KEY_FP_LEN], f1b[DISC_KEY_FP_LEN], f2[DISC_KEY_FP_LEN];
    disc_key_fingerprint(k1, f1);
    disc_key_fingerprint(k1, f1b);
    disc_key_fingerprint(k2, f2);
    ASSERT_STR_EQ(f1, f1b);
    ASSERT(strcmp(f1, f2) != 0);
    ASSERT_EQ(16, strlen(f1));
    ASSERT_EQ(16, strspn(f1, "0123456789abcdef"));
}

TEST_MAIN(TEST_ENTRY(keyring_seal_open_roundtrip_and_format),
          TEST_ENTRY(keyring_text_parse_and_format),
          TEST_ENTRY(keyring_refuses_tampered_and_foreign),
          TEST_ENTRY(keyring_rotation_across_a_cluster), TEST_ENTRY(keyring_limit),
          TEST_ENTRY(keyring_opens_with_any_of_many_keys))
