/*
 * disc_keyring.c: the gossip keyring and the sealed packet format:
 *   version (1 byte, DISC_WIRE_VERSION) | nonce (24, random) |
 *   XChaCha20-Poly1305(key, nonce, ad = version byte, plaintext) + tag (16)
 * Sealing uses the primary key; opening tries every key (no key hint on the
 * wire, so a packet says nothing about which key made it). The AEAD itself
 * is wr_aead_* (common/, the one place that includes sodium.h). Not here:
 * counting failures (the caller does) and parsing plaintext (disc_codec.c).
 */
#include "disc_int.h"

#include <stdlib.h>
#include <string.h>

#include "wr/crypto.h"

_Static_assert(DISC_KEY_LEN == WR_AEAD_KEY_LEN, "gossip key is an AEAD key");
_Static_assert(DISC_NONCE_LEN == WR_AEAD_NONCE_LEN, "nonce size");
_Static_assert(DISC_TAG_LEN == WR_AEAD_TAG_LEN, "tag size");

struct disc_keyring {
    size_t n;                                     /* keys[0] is the primary */
    uint8_t keys[DISC_KEYRING_MAX][DISC_KEY_LEN]; /* wiped on removal and free */
};

struct disc_keyring *disc_keyring_new(const uint8_t key[DISC_KEY_LEN])
{
    struct disc_keyring *kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return NULL;
    memcpy(kr->keys[0], key, DISC_KEY_LEN);
    kr->n = 1;
    return kr;
}

void disc_keyring_free(struct disc_keyring *kr)
{
    if (kr == NULL)
        return;
    wr_memzero(kr, sizeof(*kr));
    free(kr);
}

static ssize_t disc_keyring_find(const struct disc_keyring *kr, const uint8_t key[DISC_KEY_LEN])
{
    for (size_t i = 0; i < kr->n; i++)
        if (wr_ct_eq(kr->keys[i], key, DISC_KEY_LEN))
            return (ssize_t)i;
    return -1;
}

int disc_keyring_install(struct disc_keyring *kr, const uint8_t key[DISC_KEY_LEN])
{
    if (disc_keyring_find(kr, key) >= 0)
        return 0;
    if (kr->n == DISC_KEYRING_MAX)
        return WR_ELIMIT;
    memcpy(kr->keys[kr->n++], key, DISC_KEY_LEN);
    return 0;
}

int disc_keyring_use(struct disc_keyring *kr, const uint8_t key[DISC_KEY_LEN])
{
    ssize_t i = disc_keyring_find(kr, key);
    if (i < 0)
        return WR_ENOMEMBER;
    uint8_t tmp[DISC_KEY_LEN];
    memcpy(tmp, kr->keys[0], DISC_KEY_LEN);
    memcpy(kr->keys[0], kr->keys[i], DISC_KEY_LEN);
    memcpy(kr->keys[i], tmp, DISC_KEY_LEN);
    wr_memzero(tmp, sizeof(tmp));
    return 0;
}

int disc_keyring_remove(struct disc_keyring *kr, const uint8_t key[DISC_KEY_LEN])
{
    ssize_t i = disc_keyring_find(kr, key);
    if (i < 0)
        return WR_ENOMEMBER;
    if (i == 0)
        return WR_EUSAGE;
    memmove(kr->keys[i], kr->keys[i + 1], (kr->n - (size_t)i - 1) * DISC_KEY_LEN);
    kr->n--;
    wr_memzero(kr->keys[kr->n], DISC_KEY_LEN);
    return 0;
}

size_t disc_keyring_count(const struct disc_keyring *kr)
{
    return kr->n;
}

bool disc_keyring_get(const struct disc_keyring *kr, size_t i, uint8_t out[DISC_KEY_LEN])
{
    if (i >= kr->n)
        return false;
    memcpy(out, kr->keys[i], DISC_KEY_LEN);
    return true;
}

int disc_key_decode(const char *text, size_t len, uint8_t key[DISC_KEY_LEN])
{
    uint8_t raw[DISC_KEY_LEN + 3];
    ssize_t n = wr_b64_decode_lenient(text, len, raw, sizeof(raw));
    if (n == DISC_KEY_LEN)
        memcpy(key, raw, DISC_KEY_LEN);
    wr_memzero(raw, sizeof(raw));
    return n == DISC_KEY_LEN ? 0 : WR_EPROTO;
}

void disc_key_fingerprint(const uint8_t key[DISC_KEY_LEN], char out[DISC_KEY_FP_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[16];
    wr_hash(h, sizeof(h), key, DISC_KEY_LEN);
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[16] = '\0';
}

int disc_keyring_parse(const char *text, size_t len, struct disc_keyring **out, size_t *bad_line)
{
    struct disc_keyring *kr = NULL;
    uint8_t key[DISC_KEY_LEN];
    size_t line = 0;
    int err = 0;
    *bad_line = 0;
    for (size_t pos = 0; pos < len && err == 0;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        const char *l = text + pos;
        size_t ll = end - pos;
        pos = end + 1;
        line++;
        while (ll > 0 && (*l == ' ' || *l == '\t' || *l == '\r')) {
            l++;
            ll--;
        }
        while (ll > 0 && (l[ll - 1] == ' ' || l[ll - 1] == '\t' || l[ll - 1] == '\r'))
            ll--;
        if (ll == 0 || l[0] == '#')
            continue;
        if (disc_key_decode(l, ll, key) != 0) {
            *bad_line = line;
            err = WR_EPROTO;
        } else if (kr == NULL) {
            kr = disc_keyring_new(key);
            if (kr == NULL)
                err = WR_ENOMEM;
        } else {
            err = disc_keyring_install(kr, key);
        }
    }
    wr_memzero(key, sizeof(key));
    if (err == 0 && kr == NULL)
        err = WR_EUSAGE;
    if (err != 0) {
        disc_keyring_free(kr);
        return err;
    }
    *out = kr;
    return 0;
}

int disc_keyring_format(const struct disc_keyring *kr, struct wr_buf *out)
{
    static const char head[] = "# warren gossip keyring: one key per line, the first is the "
                               "primary\n";
    int err = wr_buf_append(out, head, sizeof(head) - 1);
    for (size_t i = 0; i < kr->n && err == 0; i++) {
        char line[64];
        ssize_t n = wr_b64url_encode(kr->keys[i], DISC_KEY_LEN, line, sizeof(line) - 1);
        if (n < 0) {
            err = (int)n;
            break;
        }
        line[n] = '\n';
        err = wr_buf_append(out, line, (size_t)n + 1);
        wr_memzero(line, sizeof(line));
    }
    return err;
}

int disc__keyring_seal(const struct disc_keyring *kr, struct wr_slice plain, struct wr_buf *out)
{
    uint8_t *w;
    size_t wlen;
    size_t need = DISC_SEAL_OVERHEAD + plain.len;
    if (plain.len > SIZE_MAX - DISC_SEAL_OVERHEAD)
        return WR_ETOOBIG;
    int err = wr_buf_reserve(out, need, &w, &wlen);
    if (err != 0)
        return err;
    w[0] = DISC_WIRE_VERSION;
    wr_random_bytes(w + 1, DISC_NONCE_LEN);
    err = wr_aead_seal(kr->keys[0], w + 1, w, 1, plain.ptr, plain.len, w + 1 + DISC_NONCE_LEN,
                       wlen - 1 - DISC_NONCE_LEN);
    if (err != 0)
        return err;
    wr_buf_commit(out, need);
    return 0;
}

int disc__keyring_open(const struct disc_keyring *kr, struct wr_slice sealed, struct wr_buf *out)
{
    uint8_t *w;
    size_t wlen;
    if (sealed.len < DISC_SEAL_OVERHEAD)
        return WR_EAUTH;
    if (sealed.ptr[0] != DISC_WIRE_VERSION)
        return WR_EVERSION;
    size_t plen = sealed.len - DISC_SEAL_OVERHEAD;
    int err = wr_buf_reserve(out, plen ? plen : 1, &w, &wlen);
    if (err != 0)
        return err;
    const uint8_t *nonce = sealed.ptr + 1;
    const uint8_t *ct = nonce + DISC_NONCE_LEN;
    size_t ctlen = sealed.len - 1 - DISC_NONCE_LEN;
    for (size_t i = 0; i < kr->n; i++) {
        if (wr_aead_open(kr->keys[i], nonce, sealed.ptr, 1, ct, ctlen, w, wlen) == 0) {
            wr_buf_commit(out, plen);
            return 0;
        }
    }
    return WR_EAUTH;
}
