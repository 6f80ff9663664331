/*
 * gen_corpus.c: writes the seed corpus of fuzz_wire into the directory given
 * as argument: one valid encoding of each message, a few edge cases, and
 * tokens signed with the fuzz key (valid and expired). Run by hand after a
 * format change (the target fuzz_wire_gen_corpus), then commit the files:
 *   build/common/fuzz/fuzz_wire_gen common/fuzz/corpus/wire
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "wr.h"

static void gen_write(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (wr_write_file(path, p, n, 0644) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void gen_buf(const char *dir, const char *name, int err, struct wr_buf *b)
{
    if (err != 0) {
        fprintf(stderr, "%s: encode failed: %s\n", name, wr_strerror(err));
        exit(1);
    }
    struct wr_slice s = wr_buf_peek(b);
    gen_write(dir, name, s.ptr, s.len);
    wr_buf_free(b);
}

static void gen_nodes(struct wr_node_entry *nodes, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(nodes[i].node_id, sizeof(nodes[i].node_id), "node-%u", i);
        if (i % 2 == 0)
            snprintf(nodes[i].addr, sizeof(nodes[i].addr), "10.0.0.%u:7443", i);
    }
}

int main(int argc, char **argv)
{
    static struct wr_msg_hello h;
    static struct wr_msg_welcome w;
    static struct wr_msg_discovery d;
    struct wr_msg_error e;
    struct wr_msg_open o;
    struct wr_token_claims c;
    struct wr_buf b = {0};
    char tok[WR_TOKEN_MAX + 1];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }
    if (wr_crypto_init() != 0)
        return 1;
    const char *dir = argv[1];

    h.version = WR_WIRE_VERSION;
    memcpy(h.role, "agent", 6);
    memcpy(h.tunnel, "web", 4);
    memcpy(h.agent_id, "agent-1", 8);
    memcpy(h.token, "wrt1.AAAA.BBBB", 15);
    h.weight = 100;
    h.n_services = 2;
    memcpy(h.services[0], "http", 5);
    memcpy(h.services[1], "ssh", 4);
    gen_buf(dir, "hello", wr_msg_hello_encode(&h, &b), &b);
    h.n_services = 0;
    h.weight = 255;
    gen_buf(dir, "hello-nosvc", wr_msg_hello_encode(&h, &b), &b);

    w.version = WR_WIRE_VERSION;
    memcpy(w.node_id, "node-0", 7);
    memcpy(w.cluster, "prod", 5);
    w.ping_interval_ms = 15000;
    w.ping_timeout_ms = 45000;
    w.n_nodes = 3;
    gen_nodes(w.nodes, 3);
    gen_buf(dir, "welcome", wr_msg_welcome_encode(&w, &b), &b);
    w.n_nodes = 0;
    gen_buf(dir, "welcome-empty", wr_msg_welcome_encode(&w, &b), &b);

    d.n_nodes = 4;
    gen_nodes(d.nodes, 4);
    gen_buf(dir, "discovery", wr_msg_discovery_encode(&d, &b), &b);

    memset(&e, 0, sizeof(e));
    e.code = WR_CODE_AUTH;
    memcpy(e.message, "token expired", 14);
    gen_buf(dir, "error", wr_msg_error_encode(&e, &b), &b);

    memset(&o, 0, sizeof(o));
    memcpy(o.service, "http", 5);
    memcpy(o.client_addr, "192.0.2.7:51000", 16);
    o.hop = 1;
    gen_buf(dir, "open", wr_msg_open_encode(&o, &b), &b);

    memset(&c, 0, sizeof(c));
    memcpy(c.tunnel, "web", 4);
    c.issued_at = FUZZ_WIRE_NOW - 60;
    c.expires_at = FUZZ_WIRE_NOW + 3600;
    c.max_weight = 50;
    memset(c.id, 0xab, sizeof(c.id));
    gen_buf(dir, "claims", wr_msg_claims_encode(&c, &b), &b);

    ssize_t n = wr_token_create(&c, fuzz_wire_seed, tok, sizeof(tok));
    if (n < 0)
        return 1;
    gen_write(dir, "token-valid", tok, (size_t)n);
    c.expires_at = FUZZ_WIRE_NOW;
    n = wr_token_create(&c, fuzz_wire_seed, tok, sizeof(tok));
    if (n < 0)
        return 1;
    gen_write(dir, "token-expired", tok, (size_t)n);

    /* Hostile shapes the decoders must refuse cheaply. */
    static const uint8_t huge_array[] = {0x81, 0xa3, 's', 'v', 'c', 0xdd, 0xff, 0xff, 0xff, 0xff};
    gen_write(dir, "huge-array", huge_array, sizeof(huge_array));
    static const uint8_t not_map[] = {0x92, 0xa4, 't', 'y', 'p', 'e', 0x64};
    gen_write(dir, "not-map", not_map, sizeof(not_map));
    printf("corpus written to %s\n", dir);
    return 0;
}
