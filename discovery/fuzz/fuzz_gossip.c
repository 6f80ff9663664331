/*
 * fuzz_gossip.c: libFuzzer target for the gossip decoders (disc_codec.c),
 * the packet opener (disc_keyring.c) and the state machine behind them.
 * The first input byte picks the path, the rest is the input:
 *   0: a plaintext packet; 1: a push/pull state; 2: a sealed packet, opened
 *   with the fixed test keyring, then decoded as a packet.
 * Beyond "no crash" it checks: a decoder either succeeds or gives a reason;
 * what decodes re-encodes and decodes again to the same encoding; whatever
 * decodes is fed to a long-lived state machine (so its rules meet hostile
 * updates). Built as fuzz_gossip (libFuzzer, -DWARREN_FUZZ=ON, clang) and as
 * fuzz_gossip_replay over discovery/fuzz/corpus/ (ctest label fuzz).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc_int.h"
#include "wr/crypto.h"
#include "wr/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_gossip: invariant failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The fixed test key: public, test-only. */
static const uint8_t fuzz_gossip_key[DISC_KEY_LEN] = {
    0x67, 0x6f, 0x73, 0x73, 0x69, 0x70, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x21,
    0x67, 0x6f, 0x73, 0x73, 0x69, 0x70, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x21,
};

static void on_fuzz_send(void *arg, const char *addr, const struct disc_packet *p)
{
    (void)arg;
    (void)addr;
    struct wr_buf b = {0};
    /* What the machine emits must always encode and fit a packet. */
    FUZZ_CHECK(disc__codec_packet_encode(p, &b) == 0);
    FUZZ_CHECK(b.len + DISC_SEAL_OVERHEAD <= 1400);
    wr_buf_free(&b);
}

static struct disc_swim *fuzz_gossip_machine(void)
{
    static struct disc_swim *s;
    if (s == NULL) {
        struct disc_config cfg = {0};
        struct disc_self self = {.id = "fuzz-self"};
        memcpy(self.addr[DISC_ADDR_GOSSIP], "127.0.0.1:7946", 15);
        static const struct disc_swim_ops ops = {.send = on_fuzz_send};
        s = disc__swim_new(&cfg, &self, 0, &ops, NULL);
        FUZZ_CHECK(s != NULL);
    }
    return s;
}

static void fuzz_gossip_packet(struct wr_slice in)
{
    static struct disc_packet p1, p2;
    static uint64_t now;
    const char *why = NULL;
    int err = disc__codec_packet_decode(in, &p1, &why);
    FUZZ_CHECK(err == 0 || why != NULL);
    if (err != 0)
        return;
    struct wr_buf b1 = {0}, b2 = {0};
    FUZZ_CHECK(disc__codec_packet_encode(&p1, &b1) == 0);
    FUZZ_CHECK(disc__codec_packet_decode(wr_buf_peek(&b1), &p2, &why) == 0);
    FUZZ_CHECK(disc__codec_packet_encode(&p2, &b2) == 0);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data + b1.off, b2.data + b2.off, b1.len) == 0);
    size_t sum = disc__codec_packet_base_size(&p1.msg);
    for (uint32_t i = 0; i < p1.n_updates; i++)
        sum += disc__codec_update_size(&p1.upd[i]);
    FUZZ_CHECK(b1.len <= sum);
    wr_buf_free(&b1);
    wr_buf_free(&b2);
    struct disc_swim *s = fuzz_gossip_machine();
    now += 37;
    disc__swim_on_packet(s, now, "127.0.0.1:7000", &p1);
    disc__swim_tick(s, now);
    disc__packet_clear(&p1);
    disc__packet_clear(&p2);
}

static void fuzz_gossip_state(struct wr_slice in)
{
    struct disc_state st1, st2;
    static uint64_t now;
    const char *why = NULL;
    int err = disc__codec_state_decode(in, &st1, &why);
    FUZZ_CHECK(err == 0 || why != NULL);
    if (err != 0)
        return;
    struct wr_buf b1 = {0}, b2 = {0};
    FUZZ_CHECK(disc__codec_state_encode(&st1, &b1) == 0);
    FUZZ_CHECK(disc__codec_state_decode(wr_buf_peek(&b1), &st2, &why) == 0);
    FUZZ_CHECK(disc__codec_state_encode(&st2, &b2) == 0);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data + b1.off, b2.data + b2.off, b1.len) == 0);
    wr_buf_free(&b1);
    wr_buf_free(&b2);
    now += 1000;
    disc__swim_state_merge(fuzz_gossip_machine(), now, &st1);
    disc__state_clear(&st1);
    disc__state_clear(&st2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct disc_keyring *kr;
    if (kr == NULL) {
        if (wr_crypto_init() != 0)
            abort();
        wr_log_level_cur = WR_LOG_ERROR;
        kr = disc_keyring_new(fuzz_gossip_key);
        FUZZ_CHECK(kr != NULL);
    }
    if (size == 0)
        return 0;
    struct wr_slice in = wr_slice_make(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        fuzz_gossip_packet(in);
        break;
    case 1:
        fuzz_gossip_state(in);
        break;
    default: {
        struct wr_buf plain = {0};
        int err = disc__keyring_open(kr, in, &plain);
        FUZZ_CHECK(err == 0 || err == WR_EAUTH || err == WR_EVERSION || err == WR_ENOMEM);
        FUZZ_CHECK(err == 0 || plain.len == 0);
        if (err == 0)
            fuzz_gossip_packet(wr_buf_peek(&plain));
        wr_buf_free(&plain);
        break;
    }
    }
    return 0;
}
