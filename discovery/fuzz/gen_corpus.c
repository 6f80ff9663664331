/*
 * gen_corpus.c: writes the seed corpus of fuzz_gossip (one file per input:
 * the mode byte, then the bytes) into the directory named on the command
 * line. Re-run after a format change: fuzz_gossip_gen discovery/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc_int.h"
#include "wr/crypto.h"

static const uint8_t gen_key[DISC_KEY_LEN] = {
    0x67, 0x6f, 0x73, 0x73, 0x69, 0x70, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x21,
    0x67, 0x6f, 0x73, 0x73, 0x69, 0x70, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79, 0x21,
};

static void gen_write(const char *dir, const char *name, uint8_t mode, const struct wr_buf *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputc(mode, f);
    fwrite(b->data + b->off, 1, b->len, f);
    fclose(f);
}

static void gen_alive(struct disc_update *u, const char *id, uint64_t inc, bool tunnels)
{
    memset(u, 0, sizeof(*u));
    u->kind = DISC_UPD_ALIVE;
    snprintf(u->node, sizeof(u->node), "%s", id);
    u->inc = inc;
    snprintf(u->addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "127.0.0.1:7946");
    snprintf(u->addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX, "10.0.0.1:443");
    snprintf(u->addr[DISC_ADDR_ADMIN], DISC_ADDR_MAX, "127.0.0.1:9000");
    u->tver = 3;
    if (tunnels) {
        u->tunnels = disc__tunset_new(3);
        snprintf(u->tunnels->e[0].tunnel, WR_ID_MAX + 1, "shop");
        snprintf(u->tunnels->e[0].agent, WR_ID_MAX + 1, "agent-1");
        u->tunnels->e[0].weight = 10;
        snprintf(u->tunnels->e[1].tunnel, WR_ID_MAX + 1, "shop");
        snprintf(u->tunnels->e[1].agent, WR_ID_MAX + 1, "agent-2");
        u->tunnels->e[1].weight = 255;
        snprintf(u->tunnels->e[2].tunnel, WR_ID_MAX + 1, "wiki");
        snprintf(u->tunnels->e[2].agent, WR_ID_MAX + 1, "agent-1");
        u->tunnels->e[2].weight = 1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || wr_crypto_init() != 0) {
        fprintf(stderr, "usage: fuzz_gossip_gen DIR\n");
        return 1;
    }
    static struct disc_packet p;
    struct wr_buf b = {0}, sealed = {0};
    struct disc_keyring *kr = disc_keyring_new(gen_key);

    p.msg = (struct disc_msg){.type = DISC_MSG_PING, .seq = 7};
    snprintf(p.msg.target, sizeof(p.msg.target), "fuzz-self");
    gen_alive(&p.upd[0], "node-a", 1, true);
    gen_alive(&p.upd[1], "node-b", 70000, false);
    p.upd[2] = (struct disc_update){
        .kind = DISC_UPD_SUSPECT, .node = "node-b", .inc = 70000, .from = "node-a"};
    p.upd[3] =
        (struct disc_update){.kind = DISC_UPD_DEAD, .node = "node-a", .inc = 1, .from = "node-b"};
    p.upd[4] = (struct disc_update){.kind = DISC_UPD_LEAVE, .node = "node-b", .inc = 70001};
    p.upd[5] = (struct disc_update){
        .kind = DISC_UPD_SUSPECT, .node = "fuzz-self", .inc = 0, .from = "node-a"};
    p.n_updates = 6;
    if (disc__codec_packet_encode(&p, &b) != 0)
        return 1;
    gen_write(argv[1], "packet_ping_updates", 0, &b);
    if (disc__keyring_seal(kr, wr_buf_peek(&b), &sealed) != 0)
        return 1;
    gen_write(argv[1], "sealed_ping_updates", 2, &sealed);

    struct disc_state st = {.join = true, .n = 3};
    st.rec = calloc(3, sizeof(st.rec[0]));
    disc__update_copy(&st.rec[0], &p.upd[0]);
    disc__update_copy(&st.rec[1], &p.upd[2]);
    gen_alive(&st.rec[1], "node-b", 4, false);
    st.rec[1].kind = DISC_UPD_SUSPECT;
    snprintf(st.rec[1].from, sizeof(st.rec[1].from), "node-a");
    gen_alive(&st.rec[2], "node-c", 9, false);
    st.rec[2].kind = DISC_UPD_LEAVE;
    b.len = 0;
    if (disc__codec_state_encode(&st, &b) != 0)
        return 1;
    gen_write(argv[1], "state_join", 1, &b);

    static const struct disc_msg msgs[] = {
        {.type = DISC_MSG_ACK, .seq = 7},
        {.type = DISC_MSG_NACK, .seq = 4000000000u},
        {.type = DISC_MSG_PING_REQ, .seq = 9, .target = "node-b", .target_addr = "[::1]:7946"},
        {.type = DISC_MSG_PING, .seq = 1, .target = ""},
    };
    static const char *const names[] = {"packet_ack", "packet_nack", "packet_ping_req",
                                        "packet_join_ping"};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        disc__packet_clear(&p);
        p.msg = msgs[i];
        b.len = 0;
        if (disc__codec_packet_encode(&p, &b) != 0)
            return 1;
        gen_write(argv[1], names[i], 0, &b);
    }
    disc__packet_clear(&p);
    disc__state_clear(&st);
    wr_buf_free(&b);
    wr_buf_free(&sealed);
    disc_keyring_free(kr);
    return 0;
}
