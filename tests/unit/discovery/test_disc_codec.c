/*
 * test_disc_codec.c: the gossip wire codec (disc_codec.c): round trips of
 * every message and update kind, exact size accounting (the state machine
 * fills packets with it), and the strictness of the decoder on hand-made
 * bytes: truncation, trailing bytes, wrong types, counts, oversized or
 * invalid strings, non-canonical tunnel sets, hostile declared counts.
 */
/* link: disc_lib_int */
#include "test.h"

#include "disc_int.h"

/* ---- a tiny msgpack writer for hand-made inputs ---- */

struct mp {
    uint8_t b[8192];
    size_t n;
};

static void mp_byte(struct mp *m, uint8_t v)
{
    ASSERT(m->n < sizeof(m->b));
    m->b[m->n++] = v;
}

static void mp_arr(struct mp *m, uint32_t n)
{
    if (n < 16) {
        mp_byte(m, (uint8_t)(0x90 | n));
    } else {
        mp_byte(m, 0xdd);
        for (int i = 3; i >= 0; i--)
            mp_byte(m, (uint8_t)(n >> (8 * i)));
    }
}

static void mp_uint(struct mp *m, uint64_t v)
{
    if (v < 128) {
        mp_byte(m, (uint8_t)v);
    } else {
        mp_byte(m, 0xcf);
        for (int i = 7; i >= 0; i--)
            mp_byte(m, (uint8_t)(v >> (8 * i)));
    }
}

static void mp_str(struct mp *m, const char *s)
{
    size_t l = strlen(s);
    if (l < 32) {
        mp_byte(m, (uint8_t)(0xa0 | l));
    } else {
        mp_byte(m, 0xd9);
        mp_byte(m, (uint8_t)l);
    }
    for (size_t i = 0; i < l; i++)
        mp_byte(m, (uint8_t)s[i]);
}

static struct wr_slice mp_slice(const struct mp *m)
{
    return wr_slice_make(m->b, m->n);
}

/* [nil, [ <one alive update with the given tunnel groups written by <fn>> ]] */
static void mp_alive_prefix(struct mp *m, uint64_t role)
{
    mp_arr(m, 2);
    mp_byte(m, 0xc0);
    mp_arr(m, 1);
    mp_arr(m, 7);
    mp_uint(m, DISC_UPD_ALIVE);
    mp_str(m, "node-a");
    mp_uint(m, 3);
    mp_uint(m, role);
    mp_arr(m, DISC_ADDR__COUNT);
    mp_str(m, "127.0.0.1:1");
    for (int k = 1; k < DISC_ADDR__COUNT; k++)
        mp_str(m, "");
    mp_uint(m, 1);
}

static int decode_packet(const struct mp *m, const char **why)
{
    static struct disc_packet p;
    int err = disc__codec_packet_decode(mp_slice(m), &p, why);
    disc__packet_clear(&p);
    return err;
}

static struct disc_tunset *make_tunset(void)
{
    struct disc_tunset *t = disc__tunset_new(3);
    snprintf(t->e[0].tunnel, WR_ID_MAX + 1, "shop");
    snprintf(t->e[0].agent, WR_ID_MAX + 1, "a1");
    t->e[0].weight = 1;
    snprintf(t->e[1].tunnel, WR_ID_MAX + 1, "shop");
    snprintf(t->e[1].agent, WR_ID_MAX + 1, "a2");
    t->e[1].weight = 255;
    snprintf(t->e[2].tunnel, WR_ID_MAX + 1, "wiki");
    snprintf(t->e[2].agent, WR_ID_MAX + 1, "a1");
    t->e[2].weight = 7;
    ASSERT_OK(disc__tunset_normalize(t));
    return t;
}

static void fill_packet(struct disc_packet *p)
{
    memset(p, 0, sizeof(*p));
    p->msg = (struct disc_msg){.type = DISC_MSG_PING_REQ, .seq = 4000000000u, .target = "node-b"};
    snprintf(p->msg.target_addr, DISC_ADDR_MAX, "[2001:db8::1]:7946");
    struct disc_update *u = &p->upd[0];
    u->kind = DISC_UPD_ALIVE;
    snprintf(u->node, sizeof(u->node), "node-a");
    u->inc = UINT64_MAX;
    u->role = DISC_ROLE_NODE;
    snprintf(u->addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "10.0.0.1:7946");
    snprintf(u->addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX, "10.0.0.1:443");
    snprintf(u->addr[DISC_ADDR_PEER], DISC_ADDR_MAX, "10.0.0.1:444");
    snprintf(u->addr[DISC_ADDR_ADMIN], DISC_ADDR_MAX, "127.0.0.1:9000");
    u->tver = 300;
    u->tunnels = make_tunset();
    p->upd[1] =
        (struct disc_update){.kind = DISC_UPD_SUSPECT, .node = "b", .inc = 70000, .from = "node-a"};
    p->upd[2] = (struct disc_update){.kind = DISC_UPD_DEAD, .node = "c", .inc = 0, .from = "b"};
    p->upd[3] = (struct disc_update){.kind = DISC_UPD_LEAVE, .node = "d", .inc = 1u << 20};
    p->upd[4] = (struct disc_update){
        .kind = DISC_UPD_ALIVE, .node = "lb-1", .inc = 5, .role = DISC_ROLE_OBSERVER};
    p->n_updates = 5;
}

static void assert_update_eq(const struct disc_update *a, const struct disc_update *b)
{
    ASSERT_EQ(a->kind, b->kind);
    ASSERT_STR_EQ(a->node, b->node);
    ASSERT(a->inc == b->inc);
    ASSERT_STR_EQ(a->from, b->from);
    ASSERT_EQ(a->role, b->role);
    for (int k = 0; k < DISC_ADDR__COUNT; k++)
        ASSERT_STR_EQ(a->addr[k], b->addr[k]);
    ASSERT(a->tver == b->tver);
    ASSERT(disc__tunset_eq(a->tunnels, b->tunnels));
}

TEST(codec_packet_roundtrip_all_kinds)
{
    static struct disc_packet p, q;
    fill_packet(&p);
    struct wr_buf b = {0};
    ASSERT_OK(disc__codec_packet_encode(&p, &b));
    const char *why = NULL;
    ASSERT_OK(disc__codec_packet_decode(wr_buf_peek(&b), &q, &why));
    ASSERT_EQ(p.msg.type, q.msg.type);
    ASSERT(p.msg.seq == q.msg.seq);
    ASSERT_STR_EQ(p.msg.target, q.msg.target);
    ASSERT_STR_EQ(p.msg.target_addr, q.msg.target_addr);
    ASSERT_EQ(p.n_updates, q.n_updates);
    for (uint32_t i = 0; i < p.n_updates; i++)
        assert_update_eq(&p.upd[i], &q.upd[i]);
    wr_buf_free(&b);
    disc__packet_clear(&q);
    /* Each message type alone. */
    static const struct disc_msg msgs[] = {
        {.type = DISC_MSG_NONE},
        {.type = DISC_MSG_PING, .seq = 1, .target = ""},
        {.type = DISC_MSG_PING, .seq = 200, .target = "x"},
        {.type = DISC_MSG_ACK, .seq = 65536},
        {.type = DISC_MSG_NACK, .seq = 0},
    };
    for (size_t i = 0; i < WR_ARRAY_LEN(msgs); i++) {
        disc__packet_clear(&p);
        p.msg = msgs[i];
        ASSERT_OK(disc__codec_packet_encode(&p, &b));
        ASSERT_OK(disc__codec_packet_decode(wr_buf_peek(&b), &q, NULL));
        ASSERT_EQ(msgs[i].type, q.msg.type);
        ASSERT(msgs[i].seq == q.msg.seq);
        ASSERT_STR_EQ(msgs[i].target, q.msg.target);
        ASSERT_EQ(0, q.n_updates);
        wr_buf_free(&b);
    }
    disc__packet_clear(&p);
}

TEST(codec_sizes_are_exact)
{
    static struct disc_packet p, one;
    fill_packet(&p);
    struct wr_buf b = {0};
    memset(&one, 0, sizeof(one));
    one.msg = p.msg;
    ASSERT_OK(disc__codec_packet_encode(&one, &b));
    size_t base = b.len;
    ASSERT_LE(base, disc__codec_packet_base_size(&p.msg));
    ASSERT_GE(base + 2, disc__codec_packet_base_size(&p.msg)); /* 3-byte array bound */
    for (uint32_t i = 0; i < p.n_updates; i++) {
        disc__update_copy(&one.upd[0], &p.upd[i]);
        one.n_updates = 1;
        b.len = 0;
        ASSERT_OK(disc__codec_packet_encode(&one, &b));
        ASSERT_EQ(base + disc__codec_update_size(&p.upd[i]), b.len);
        disc__packet_clear(&one);
        one.msg = p.msg;
    }
    wr_buf_free(&b);
    disc__packet_clear(&p);
}

TEST(codec_state_roundtrip)
{
    struct disc_state st = {.join = true, .n = 3}, out;
    st.rec = calloc(3, sizeof(st.rec[0]));
    static struct disc_packet p;
    fill_packet(&p);
    disc__update_copy(&st.rec[0], &p.upd[0]);
    disc__update_copy(&st.rec[1], &p.upd[1]);
    disc__update_copy(&st.rec[2], &p.upd[3]);
    struct wr_buf b = {0};
    ASSERT_OK(disc__codec_state_encode(&st, &b));
    ASSERT_OK(disc__codec_state_decode(wr_buf_peek(&b), &out, NULL));
    ASSERT(out.join);
    ASSERT_EQ(3, out.n);
    for (uint32_t i = 0; i < 3; i++)
        assert_update_eq(&st.rec[i], &out.rec[i]);
    /* Every strict prefix is refused. */
    for (size_t n = 0; n < b.len; n++) {
        struct disc_state tmp;
        const char *why = NULL;
        ASSERT_EQ(WR_EPROTO, disc__codec_state_decode(wr_slice_make(b.data, n), &tmp, &why));
        ASSERT(why != NULL);
        ASSERT_EQ(0, tmp.n);
    }
    /* A suspect record needs its "from". */
    st.rec[1].from[0] = '\0';
    b.len = 0;
    ASSERT_OK(disc__codec_state_encode(&st, &b));
    disc__state_clear(&out);
    ASSERT_EQ(WR_EPROTO, disc__codec_state_decode(wr_buf_peek(&b), &out, NULL));
    wr_buf_free(&b);
    disc__state_clear(&st);
    disc__state_clear(&out);
    disc__packet_clear(&p);
}

TEST(codec_rejects_truncated_and_trailing)
{
    static struct disc_packet p, q;
    fill_packet(&p);
    struct wr_buf b = {0};
    ASSERT_OK(disc__codec_packet_encode(&p, &b));
    for (size_t n = 0; n < b.len; n++) {
        const char *why = NULL;
        ASSERT_EQ(WR_EPROTO, disc__codec_packet_decode(wr_slice_make(b.data, n), &q, &why));
        ASSERT(why != NULL);
        ASSERT_EQ(0, q.n_updates);
    }
    uint8_t *w;
    size_t wl;
    ASSERT_OK(wr_buf_reserve(&b, 1, &w, &wl));
    w[0] = 0xc0;
    wr_buf_commit(&b, 1);
    const char *why = NULL;
    ASSERT_EQ(WR_EPROTO, disc__codec_packet_decode(wr_buf_peek(&b), &q, &why));
    ASSERT_STR_EQ("trailing bytes", why);
    wr_buf_free(&b);
    disc__packet_clear(&p);
}

TEST(codec_rejects_wrong_types_and_counts)
{
    struct mp m;
    const char *why;
    /* Root not an array. */
    memset(&m, 0, sizeof(m));
    mp_str(&m, "x");
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Root of 3 elements. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 3);
    mp_byte(&m, 0xc0);
    mp_arr(&m, 0);
    mp_byte(&m, 0xc0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("wrong element count", why);
    /* Ping with a string seq. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 3);
    mp_uint(&m, DISC_MSG_PING);
    mp_str(&m, "1");
    mp_str(&m, "a");
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Ack with an extra element. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 3);
    mp_uint(&m, DISC_MSG_ACK);
    mp_uint(&m, 1);
    mp_uint(&m, 1);
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Unknown message type. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 2);
    mp_uint(&m, 9);
    mp_uint(&m, 1);
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("unknown message type", why);
    /* seq above 32 bits. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 2);
    mp_uint(&m, DISC_MSG_ACK);
    mp_uint(&m, 1ull << 32);
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Negative integer (int8 -1) where a uint is expected. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 2);
    mp_uint(&m, DISC_MSG_ACK);
    mp_byte(&m, 0xff);
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Unknown update kind, and a leave with a "from". */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc0);
    mp_arr(&m, 1);
    mp_arr(&m, 3);
    mp_uint(&m, 7);
    mp_str(&m, "a");
    mp_uint(&m, 1);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc0);
    mp_arr(&m, 1);
    mp_arr(&m, 4);
    mp_uint(&m, DISC_UPD_LEAVE);
    mp_str(&m, "a");
    mp_uint(&m, 1);
    mp_str(&m, "b");
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* Too many updates in one packet. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc0);
    mp_arr(&m, DISC_MAX_PIGGY + 1);
    for (int i = 0; i < DISC_MAX_PIGGY + 1; i++) {
        mp_arr(&m, 3);
        mp_uint(&m, DISC_UPD_LEAVE);
        mp_str(&m, "a");
        mp_uint(&m, 1);
    }
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("too many elements", why);
}

TEST(codec_rejects_bad_strings)
{
    struct mp m;
    const char *why;
    char longid[WR_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    const char *const bad_ids[] = {"", "a b", "a=b", "a\"", "caf\xc3\xa9", longid};
    for (size_t i = 0; i < WR_ARRAY_LEN(bad_ids); i++) {
        memset(&m, 0, sizeof(m));
        mp_arr(&m, 2);
        mp_byte(&m, 0xc0);
        mp_arr(&m, 1);
        mp_arr(&m, 3);
        mp_uint(&m, DISC_UPD_LEAVE);
        mp_str(&m, bad_ids[i]);
        mp_uint(&m, 1);
        ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    }
    /* An id of exactly WR_ID_MAX is fine. */
    longid[WR_ID_MAX] = '\0';
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc0);
    mp_arr(&m, 1);
    mp_arr(&m, 3);
    mp_uint(&m, DISC_UPD_LEAVE);
    mp_str(&m, longid);
    mp_uint(&m, 1);
    ASSERT_OK(decode_packet(&m, &why));
    /* Addresses: spaces and control bytes refused. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 4);
    mp_uint(&m, DISC_MSG_PING_REQ);
    mp_uint(&m, 1);
    mp_str(&m, "t");
    mp_str(&m, "1.2.3.4:5 x");
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("invalid address", why);
    /* A binary where a string is expected. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 3);
    mp_uint(&m, DISC_MSG_PING);
    mp_uint(&m, 1);
    mp_byte(&m, 0xc4);
    mp_byte(&m, 1);
    mp_byte(&m, 'a');
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
}

TEST(codec_rejects_noncanonical_tunnels)
{
    struct mp m;
    const char *why;
    /* Valid: two groups in order. */
    memset(&m, 0, sizeof(m));
    mp_alive_prefix(&m, DISC_ROLE_NODE);
    mp_arr(&m, 2);
    mp_arr(&m, 2);
    mp_str(&m, "a");
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "ag");
    mp_uint(&m, 5);
    mp_arr(&m, 2);
    mp_str(&m, "b");
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "ag");
    mp_uint(&m, 5);
    ASSERT_OK(decode_packet(&m, &why));
    /* Groups out of order, or the same tunnel twice. */
    static const char *const orders[][2] = {{"b", "a"}, {"a", "a"}};
    for (size_t i = 0; i < 2; i++) {
        memset(&m, 0, sizeof(m));
        mp_alive_prefix(&m, DISC_ROLE_NODE);
        mp_arr(&m, 2);
        for (int g = 0; g < 2; g++) {
            mp_arr(&m, 2);
            mp_str(&m, orders[i][g]);
            mp_arr(&m, 1);
            mp_arr(&m, 2);
            mp_str(&m, g ? "ag2" : "ag1");
            mp_uint(&m, 5);
        }
        ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    }
    /* Agents out of order / duplicated, weight 0 or 256, empty group. */
    static const struct {
        const char *a1, *a2;
        uint64_t w;
    } cases[] = {{"b", "a", 1}, {"a", "a", 1}, {"a", "b", 0}, {"a", "b", 256}};
    for (size_t i = 0; i < WR_ARRAY_LEN(cases); i++) {
        memset(&m, 0, sizeof(m));
        mp_alive_prefix(&m, DISC_ROLE_NODE);
        mp_arr(&m, 1);
        mp_arr(&m, 2);
        mp_str(&m, "t");
        mp_arr(&m, 2);
        mp_arr(&m, 2);
        mp_str(&m, cases[i].a1);
        mp_uint(&m, 1);
        mp_arr(&m, 2);
        mp_str(&m, cases[i].a2);
        mp_uint(&m, cases[i].w);
        ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    }
    memset(&m, 0, sizeof(m));
    mp_alive_prefix(&m, DISC_ROLE_NODE);
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "t");
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* More entries than a member may hold. */
    memset(&m, 0, sizeof(m));
    mp_alive_prefix(&m, DISC_ROLE_NODE);
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "t");
    mp_arr(&m, DISC_MAX_TUNNEL_ENTRIES + 1);
    for (int i = 0; i < DISC_MAX_TUNNEL_ENTRIES + 1; i++) {
        char ag[8];
        snprintf(ag, sizeof(ag), "a%03d", i);
        mp_arr(&m, 2);
        mp_str(&m, ag);
        mp_uint(&m, 1);
    }
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    /* An observer that claims tunnels; a role out of range. */
    memset(&m, 0, sizeof(m));
    mp_alive_prefix(&m, DISC_ROLE_OBSERVER);
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "t");
    mp_arr(&m, 1);
    mp_arr(&m, 2);
    mp_str(&m, "a");
    mp_uint(&m, 1);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("observer with tunnels", why);
    memset(&m, 0, sizeof(m));
    mp_alive_prefix(&m, 2);
    mp_arr(&m, 0);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
}

TEST(codec_hostile_counts_do_not_allocate)
{
    /* An array32 declaring 4G elements in a 10-byte input: refused at once. */
    struct mp m;
    const char *why;
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc0);
    mp_arr(&m, 0xffffffffu);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    struct disc_state st;
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc3);
    mp_arr(&m, 0xffffffffu);
    ASSERT_EQ(WR_EPROTO, disc__codec_state_decode(mp_slice(&m), &st, &why));
    /* A state with more members than the hard limit, even if the bytes are there. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_byte(&m, 0xc2);
    mp_arr(&m, DISC_MAX_MEMBERS_LIMIT + 1);
    ASSERT_EQ(WR_EPROTO, disc__codec_state_decode(mp_slice(&m), &st, &why));
    ASSERT_STR_EQ("too many elements", why);
    /* A str32 claiming 4 GB. */
    memset(&m, 0, sizeof(m));
    mp_arr(&m, 2);
    mp_arr(&m, 3);
    mp_uint(&m, DISC_MSG_PING);
    mp_uint(&m, 1);
    mp_byte(&m, 0xdb);
    for (int i = 0; i < 4; i++)
        mp_byte(&m, 0xff);
    ASSERT_EQ(WR_EPROTO, decode_packet(&m, &why));
    ASSERT_STR_EQ("string too long", why);
}

TEST(codec_encoder_refuses_invalid_structs)
{
    static struct disc_packet p;
    struct wr_buf b = {0};
    memset(&p, 0, sizeof(p));
    p.n_updates = DISC_MAX_PIGGY + 1;
    ASSERT_EQ(WR_EUSAGE, disc__codec_packet_encode(&p, &b));
    p.n_updates = 1;
    p.upd[0].kind = 0;
    ASSERT_EQ(WR_EUSAGE, disc__codec_packet_encode(&p, &b));
    p.n_updates = 0;
    p.msg.type = DISC_MSG__COUNT;
    ASSERT_EQ(WR_EUSAGE, disc__codec_packet_encode(&p, &b));
    ASSERT_EQ(0, b.len);
    wr_buf_free(&b);
}

TEST_MAIN(TEST_ENTRY(codec_packet_roundtrip_all_kinds), TEST_ENTRY(codec_sizes_are_exact),
          TEST_ENTRY(codec_state_roundtrip), TEST_ENTRY(codec_rejects_truncated_and_trailing),
          TEST_ENTRY(codec_rejects_wrong_types_and_counts), TEST_ENTRY(codec_rejects_bad_strings),
          TEST_ENTRY(codec_rejects_noncanonical_tunnels),
          TEST_ENTRY(codec_hostile_counts_do_not_allocate),
          TEST_ENTRY(codec_encoder_refuses_invalid_structs))
