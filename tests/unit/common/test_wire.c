/*
 * test_wire.c: wr_wire.c, the msgpack control messages. Round trips of every
 * message, then one case per rejection class. Hostile inputs are written
 * byte by byte with the tiny builder below (tests do not include msgpack.h),
 * so each case shows exactly what is on the wire.
 */
/* link: wr_wire */
#include "test.h"

#include <stdlib.h>

#include "wr/wire.h"

/* ---- a tiny msgpack writer for hand-made inputs ---- */

struct tb {
    uint8_t b[WR_CONTROL_MAX * 2];
    size_t n;
};

static void tb_byte(struct tb *t, uint8_t v)
{
    ASSERT(t->n < sizeof(t->b));
    t->b[t->n++] = v;
}

static void tb_be(struct tb *t, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        tb_byte(t, (uint8_t)(v >> (8 * i)));
}

static void tb_map(struct tb *t, uint32_t n)
{
    if (n < 16) {
        tb_byte(t, (uint8_t)(0x80 | n));
    } else {
        tb_byte(t, 0xde);
        tb_be(t, n, 2);
    }
}

static void tb_arr(struct tb *t, uint32_t n)
{
    if (n < 16) {
        tb_byte(t, (uint8_t)(0x90 | n));
    } else {
        tb_byte(t, 0xdc);
        tb_be(t, n, 2);
    }
}

static void tb_strn(struct tb *t, const char *s, size_t n)
{
    if (n < 32) {
        tb_byte(t, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        tb_byte(t, 0xd9);
        tb_be(t, n, 1);
    } else {
        tb_byte(t, 0xda);
        tb_be(t, n, 2);
    }
    for (size_t i = 0; i < n; i++)
        tb_byte(t, (uint8_t)s[i]);
}

static void tb_str(struct tb *t, const char *s)
{
    tb_strn(t, s, strlen(s));
}

static void tb_uint(struct tb *t, uint64_t v)
{
    if (v < 128) {
        tb_byte(t, (uint8_t)v);
    } else {
        tb_byte(t, 0xcf);
        tb_be(t, v, 8);
    }
}

static struct wr_slice tb_slice(const struct tb *t)
{
    return wr_slice_make(t->b, t->n);
}

/* A hello map, with key number <omit> left out (-1: none) and key <wrong>
 * (-1: none) given the value written by <wrong_fn> instead. */
enum { H_TYPE, H_V, H_ROLE, H_TUNNEL, H_AGENT, H_TOKEN, H_WEIGHT, H_SVC, H__COUNT };

static void tb_hello(struct tb *t, int omit, int wrong, void (*wrong_fn)(struct tb *))
{
    static const char *const keys[H__COUNT] = {"type",  "v",     "role",   "tunnel",
                                               "agent", "token", "weight", "svc"};
    t->n = 0;
    tb_map(t, omit >= 0 ? H__COUNT - 1 : H__COUNT);
    for (int k = 0; k < H__COUNT; k++) {
        if (k == omit)
            continue;
        tb_str(t, keys[k]);
        if (k == wrong) {
            wrong_fn(t);
            continue;
        }
        switch (k) {
        case H_TYPE:
            tb_uint(t, WR_MSG_HELLO);
            break;
        case H_V:
            tb_uint(t, 1);
            break;
        case H_ROLE:
            tb_str(t, "agent");
            break;
        case H_TUNNEL:
            tb_str(t, "web");
            break;
        case H_AGENT:
            tb_str(t, "a1");
            break;
        case H_TOKEN:
            tb_str(t, "wrt1.x.y");
            break;
        case H_WEIGHT:
            tb_uint(t, 10);
            break;
        case H_SVC:
            tb_arr(t, 1);
            tb_str(t, "http");
            break;
        }
    }
}

static struct tb tbuf; /* large: kept off the stack */

static int hello_decode_tb(const char **why)
{
    static struct wr_msg_hello h;
    return wr_msg_hello_decode(tb_slice(&tbuf), &h, why);
}

static void fill_hello(struct wr_msg_hello *h, uint32_t n_services)
{
    memset(h, 0, sizeof(*h));
    h->version = WR_WIRE_VERSION;
    memcpy(h->role, WR_ROLE_AGENT, sizeof(WR_ROLE_AGENT));
    memcpy(h->tunnel, "web.prod", 9);
    memcpy(h->agent_id, "agent-7", 8);
    memset(h->token, 'T', WR_TOKEN_MAX); /* the longest token the field holds */
    h->weight = 255;
    h->n_services = n_services;
    for (uint32_t i = 0; i < n_services; i++)
        snprintf(h->services[i], sizeof(h->services[i]), "svc-%u", i);
}

TEST(hello_roundtrip)
{
    static struct wr_msg_hello h, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    fill_hello(&h, WR_MAX_SERVICES);
    /* An id of exactly WR_ID_MAX characters fits. */
    memset(h.services[3], 'x', WR_ID_MAX);
    h.services[3][WR_ID_MAX] = '\0';
    ASSERT_OK(wr_msg_hello_encode(&h, &b));
    ASSERT_LE(b.len, WR_CONTROL_MAX);
    ASSERT_OK(wr_msg_hello_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&h, &d, sizeof(h)); /* both zero-filled, so bytes compare */
    int type = 0;
    ASSERT_OK(wr_msg_peek_type(wr_buf_peek(&b), &type, &why));
    ASSERT_EQ(WR_MSG_HELLO, type);
    wr_buf_free(&b);
}

TEST(hello_svc_optional)
{
    static struct wr_msg_hello d;
    const char *why = NULL;
    tb_hello(&tbuf, H_SVC, -1, NULL);
    ASSERT_OK(wr_msg_hello_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_EQ(0, d.n_services);
    ASSERT_STR_EQ("web", d.tunnel);
    ASSERT_STR_EQ("a1", d.agent_id);
    ASSERT_STR_EQ("wrt1.x.y", d.token);
    ASSERT_EQ(10, d.weight);
    ASSERT_EQ(1, d.version);
}

TEST(hello_missing_each_field)
{
    static const char *const want[H__COUNT] = {"hello: missing type",   "hello: missing v",
                                               "hello: missing role",   "hello: missing tunnel",
                                               "hello: missing agent",  "hello: missing token",
                                               "hello: missing weight", NULL};
    for (int k = 0; k < H__COUNT; k++) {
        const char *why = NULL;
        tb_hello(&tbuf, k, -1, NULL);
        if (want[k] == NULL) {
            ASSERT_OK(hello_decode_tb(&why));
            continue;
        }
        ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
        ASSERT_STR_EQ(want[k], why);
    }
}

static void w_int(struct tb *t)
{
    tb_uint(t, 5);
}
static void w_str(struct tb *t)
{
    tb_str(t, "5");
}
static void w_neg(struct tb *t)
{
    tb_byte(t, 0xff);
} /* -1 */
static void w_nil(struct tb *t)
{
    tb_byte(t, 0xc0);
}
static void w_map(struct tb *t)
{
    tb_map(t, 0);
}
static void w_bin(struct tb *t)
{
    tb_byte(t, 0xc4);
    tb_byte(t, 1);
    tb_byte(t, 'a');
}
static void w_arr_int(struct tb *t)
{
    tb_arr(t, 1);
    tb_uint(t, 1);
}
static void w_zero(struct tb *t)
{
    tb_uint(t, 0);
}
static void w_256(struct tb *t)
{
    tb_uint(t, 256);
}
static void w_huge(struct tb *t)
{
    tb_uint(t, UINT64_MAX);
}
static void w_badid(struct tb *t)
{
    tb_str(t, "a b");
}
static void w_empty(struct tb *t)
{
    tb_str(t, "");
}
static void w_slash(struct tb *t)
{
    tb_str(t, "../etc");
}
static void w_nul(struct tb *t)
{
    tb_strn(t, "ab\0cd", 5);
}
static void w_id65(struct tb *t)
{
    char s[WR_ID_MAX + 1];
    memset(s, 'a', sizeof(s));
    tb_strn(t, s, sizeof(s));
}
static void w_role16(struct tb *t)
{
    tb_str(t, "aaaaaaaaaaaaaaaa");
}
static void w_tok_long(struct tb *t)
{
    char s[WR_TOKEN_MAX + 1];
    memset(s, 'a', sizeof(s));
    tb_strn(t, s, sizeof(s));
}
static void w_svc65(struct tb *t)
{
    tb_arr(t, WR_MAX_SERVICES + 1);
    for (int i = 0; i < WR_MAX_SERVICES + 1; i++)
        tb_str(t, "s");
}
static void w_welcome_type(struct tb *t)
{
    tb_uint(t, WR_MSG_WELCOME);
}

TEST(hello_wrong_types)
{
    static const struct {
        int key;
        void (*fn)(struct tb *);
        const char *why;
    } c[] = {
        {H_V, w_str, "hello: wrong type for v"},
        {H_V, w_neg, "hello: wrong type for v"},
        {H_V, w_huge, "hello: invalid v"},
        {H_ROLE, w_int, "hello: wrong type for role"},
        {H_TUNNEL, w_int, "hello: wrong type for tunnel"},
        {H_TUNNEL, w_nil, "hello: wrong type for tunnel"},
        {H_TUNNEL, w_bin, "hello: wrong type for tunnel"},
        {H_AGENT, w_map, "hello: wrong type for agent"},
        {H_TOKEN, w_int, "hello: wrong type for token"},
        {H_WEIGHT, w_str, "hello: wrong type for weight"},
        {H_WEIGHT, w_neg, "hello: wrong type for weight"},
        {H_SVC, w_map, "hello: wrong type for svc"},
        {H_SVC, w_str, "hello: wrong type for svc"},
        {H_SVC, w_arr_int, "hello: wrong type for svc"},
        {H_TYPE, w_str, "hello: wrong message type"},
        {H_TYPE, w_welcome_type, "hello: wrong message type"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        const char *why = NULL;
        tb_hello(&tbuf, -1, c[i].key, c[i].fn);
        ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
        ASSERT_STR_EQ(c[i].why, why);
    }
}

TEST(hello_bad_values)
{
    static const struct {
        int key;
        void (*fn)(struct tb *);
        const char *why;
    } c[] = {
        {H_WEIGHT, w_zero, "hello: invalid weight"},
        {H_WEIGHT, w_256, "hello: invalid weight"},
        {H_WEIGHT, w_huge, "hello: invalid weight"},
        {H_TUNNEL, w_badid, "hello: invalid tunnel"},
        {H_TUNNEL, w_empty, "hello: invalid tunnel"},
        {H_TUNNEL, w_slash, "hello: invalid tunnel"},
        {H_TUNNEL, w_nul, "hello: invalid tunnel"},
        {H_TUNNEL, w_id65, "hello: tunnel too long"},
        {H_AGENT, w_badid, "hello: invalid agent"},
        {H_ROLE, w_role16, "hello: role too long"},
        {H_TOKEN, w_empty, "hello: invalid token"},
        {H_TOKEN, w_nul, "hello: invalid token"},
        {H_TOKEN, w_tok_long, "hello: token too long"},
        {H_SVC, w_svc65, "hello: svc too long"},
        {H_SVC, w_badid, "hello: wrong type for svc"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        const char *why = NULL;
        tb_hello(&tbuf, -1, c[i].key, c[i].fn);
        ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
        ASSERT_STR_EQ(c[i].why, why);
    }
    /* A bad id inside the list. */
    tbuf.n = 0;
    tb_hello(&tbuf, H_SVC, -1, NULL);
    tbuf.b[0]++; /* one more pair */
    tb_str(&tbuf, "svc");
    tb_arr(&tbuf, 2);
    tb_str(&tbuf, "ok");
    tb_str(&tbuf, "not ok");
    const char *why = NULL;
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: invalid svc", why);
}

TEST(hello_weight_bounds_accepted)
{
    static struct wr_msg_hello d;
    const char *why = NULL;
    tb_hello(&tbuf, H_WEIGHT, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "weight");
    tb_byte(&tbuf, 0xcc); /* uint8 255 */
    tb_byte(&tbuf, 255);
    ASSERT_OK(wr_msg_hello_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_EQ(255, d.weight);
    tb_hello(&tbuf, H_WEIGHT, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "weight");
    tb_byte(&tbuf, 0xd0); /* int8 1: a signed encoding of a positive value is fine */
    tb_byte(&tbuf, 1);
    ASSERT_OK(wr_msg_hello_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_EQ(1, d.weight);
}

TEST(unknown_keys_ignored)
{
    static struct wr_msg_hello d;
    const char *why = NULL;
    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0] += 2;
    tb_str(&tbuf, "future");
    tb_map(&tbuf, 1);
    tb_str(&tbuf, "x");
    tb_arr(&tbuf, 2);
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "y");
    tb_str(&tbuf, "zz");
    tb_byte(&tbuf, 0xcb); /* float64 */
    tb_be(&tbuf, 0, 8);
    ASSERT_OK(wr_msg_hello_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("web", d.tunnel);
}

TEST(duplicate_and_nonstring_keys)
{
    const char *why = NULL;
    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "tunnel"); /* a second tunnel: which one would win? neither */
    tb_str(&tbuf, "other");
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: duplicate key", why);

    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_HELLO);
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: duplicate key", why);

    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_uint(&tbuf, 7);
    tb_str(&tbuf, "x");
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: key is not a string", why);
}

TEST(reject_not_msgpack_and_not_map)
{
    static struct wr_msg_hello d;
    const char *why = NULL;
    const uint8_t reserved[] = {0xc1};
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(reserved, 1), &d, &why));
    ASSERT_STR_EQ("hello: not msgpack", why);
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(NULL, 0), &d, &why));
    ASSERT_STR_EQ("hello: truncated", why);
    const char *text = "{\"type\":100}";
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_str(text), &d, &why));
    tbuf.n = 0;
    tb_arr(&tbuf, 2);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_HELLO);
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: not a map", why);
    tbuf.n = 0;
    tb_uint(&tbuf, 5);
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: not a map", why);
}

TEST(reject_truncated_every_prefix)
{
    static struct wr_msg_hello h, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    fill_hello(&h, 3);
    ASSERT_OK(wr_msg_hello_encode(&h, &b));
    for (size_t n = 0; n < b.len; n++) {
        int err = wr_msg_hello_decode(wr_slice_make(b.data + b.off, n), &d, &why);
        ASSERT_EQ(WR_EPROTO, err);
        ASSERT_STR_EQ("hello: truncated", why);
        ASSERT_EQ(0, d.weight); /* zeroed on error */
    }
    wr_buf_free(&b);
}

TEST(reject_trailing_bytes)
{
    static struct wr_msg_hello h, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    int type;
    fill_hello(&h, 1);
    ASSERT_OK(wr_msg_hello_encode(&h, &b));
    ASSERT_OK(wr_buf_append(&b, "\x00", 1));
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_STR_EQ("hello: trailing bytes", why);
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(wr_buf_peek(&b), &type, &why));
    ASSERT_STR_EQ("control: trailing bytes", why);
    /* Two whole messages back to back are trailing bytes too. */
    b.len--;
    size_t one = b.len;
    ASSERT_OK(wr_msg_hello_encode(&h, &b));
    ASSERT_EQ(2 * one, b.len);
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_buf_peek(&b), &d, &why));
    wr_buf_free(&b);
}

TEST(reject_oversized)
{
    const char *why = NULL;
    static char big[WR_CONTROL_MAX];
    memset(big, 'x', sizeof(big));
    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "pad"); /* an unknown key: fine, but the whole is too large */
    tb_strn(&tbuf, big, sizeof(big) - tbuf.n);
    ASSERT(tbuf.n > WR_CONTROL_MAX);
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: too large", why);
    int type;
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_STR_EQ("control: too large", why);
}

TEST(reject_huge_declared_counts)
{
    /* Counts far beyond the input: must fail fast, without allocating them. */
    static const uint8_t arr32[] = {0x81, 0xa3, 's', 'v', 'c', 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'};
    static const uint8_t str32[] = {0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'x'};
    static const uint8_t bin32[] = {0x81, 0xa1, 'a', 0xc6, 0x7f, 0xff, 0xff, 0xff, 'x'};
    static const uint8_t ext32[] = {0x81, 0xa1, 'a', 0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'x'};
    static struct wr_msg_hello d;
    const char *why = NULL;
    int type;
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(arr32, sizeof(arr32)), &d, &why));
    ASSERT_STR_EQ("hello: truncated", why);
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(map32, sizeof(map32)), &d, &why));
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(str32, sizeof(str32)), &d, &why));
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(bin32, sizeof(bin32)), &d, &why));
    ASSERT_EQ(WR_EPROTO, wr_msg_hello_decode(wr_slice_make(ext32, sizeof(ext32)), &d, &why));
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(wr_slice_make(arr32, sizeof(arr32)), &type, &why));
}

TEST(reject_deep_nesting)
{
    const char *why = NULL;
    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "deep");
    for (int i = 0; i < 2000; i++)
        tb_arr(&tbuf, 1);
    tb_uint(&tbuf, 1);
    ASSERT_EQ(WR_EPROTO, hello_decode_tb(&why));
    ASSERT_STR_EQ("hello: nested too deeply", why);
    int type;
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_STR_EQ("control: nested too deeply", why);
    /* Seven levels under the top map are still fine (an extension may nest). */
    tb_hello(&tbuf, -1, -1, NULL);
    tbuf.b[0]++;
    tb_str(&tbuf, "deep");
    for (int i = 0; i < 7; i++)
        tb_arr(&tbuf, 1);
    tb_uint(&tbuf, 1);
    ASSERT_OK(hello_decode_tb(&why));
}

TEST(encode_rejects_bad_fields)
{
    static struct wr_msg_hello h;
    struct wr_buf b = {0};
    ASSERT_OK(wr_buf_append(&b, "keep", 4));

    fill_hello(&h, 1);
    h.weight = 0;
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));
    fill_hello(&h, WR_MAX_SERVICES);
    h.n_services = WR_MAX_SERVICES + 1;
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));
    fill_hello(&h, 1);
    memcpy(h.tunnel, "a b", 4);
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));
    fill_hello(&h, 1);
    memset(h.agent_id, 'a', sizeof(h.agent_id)); /* not NUL-terminated */
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));
    fill_hello(&h, 1);
    h.token[0] = '\0';
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));
    fill_hello(&h, 2);
    memcpy(h.services[1], "x/y", 4);
    ASSERT_EQ(WR_EUSAGE, wr_msg_hello_encode(&h, &b));

    /* A failed encode leaves the buffer as it was. */
    ASSERT_EQ(4, b.len);
    ASSERT_MEM_EQ("keep", b.data + b.off, 4);
    wr_buf_free(&b);
}

static void fill_nodes(struct wr_node_entry *nodes, uint32_t n, bool long_fields)
{
    for (uint32_t i = 0; i < n; i++) {
        if (long_fields) {
            memset(nodes[i].node_id, 'n', WR_ID_MAX);
            snprintf(nodes[i].node_id + WR_ID_MAX - 4, 5, "%04u", i % 10000u);
            memset(nodes[i].addr, '1', sizeof(nodes[i].addr) - 1);
        } else {
            snprintf(nodes[i].node_id, sizeof(nodes[i].node_id), "node-%u", i);
            if (i % 2 == 0)
                snprintf(nodes[i].addr, sizeof(nodes[i].addr), "10.0.%u.%u:7443", i / 256, i % 256);
        }
    }
}

TEST(welcome_roundtrip)
{
    static struct wr_msg_welcome w, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&w, 0, sizeof(w));
    w.version = WR_WIRE_VERSION;
    memcpy(w.node_id, "node-a", 7);
    memcpy(w.cluster, "prod.example", 13);
    w.ping_interval_ms = 15000;
    w.ping_timeout_ms = UINT32_MAX;
    w.n_nodes = 3;
    fill_nodes(w.nodes, 3, false);
    memcpy(w.nodes[2].addr, "[fe80::1%eth0]:7443", 20);
    ASSERT_OK(wr_msg_welcome_encode(&w, &b));
    ASSERT_OK(wr_msg_welcome_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&w, &d, sizeof(w));
    int type;
    ASSERT_OK(wr_msg_peek_type(wr_buf_peek(&b), &type, &why));
    ASSERT_EQ(WR_MSG_WELCOME, type);

    /* An empty list is valid (a node alone); the key is still required. */
    b.len = 0;
    w.n_nodes = 0;
    ASSERT_OK(wr_msg_welcome_encode(&w, &b));
    ASSERT_OK(wr_msg_welcome_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_EQ(0, d.n_nodes);
    wr_buf_free(&b);
}

TEST(welcome_full_list)
{
    static struct wr_msg_welcome w, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&w, 0, sizeof(w));
    memcpy(w.node_id, "n", 2);
    memcpy(w.cluster, "c", 2);
    w.n_nodes = WR_MAX_NODES;
    fill_nodes(w.nodes, WR_MAX_NODES, false);
    ASSERT_OK(wr_msg_welcome_encode(&w, &b));
    ASSERT_OK(wr_msg_welcome_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&w, &d, sizeof(w));

    /* 256 entries with the longest ids and addresses exceed WR_CONTROL_MAX:
     * the encoder says so instead of producing what the peer would refuse. */
    b.len = 0;
    fill_nodes(w.nodes, WR_MAX_NODES, true);
    ASSERT_EQ(WR_ETOOBIG, wr_msg_welcome_encode(&w, &b));
    ASSERT_EQ(0, b.len);
    w.n_nodes = WR_MAX_NODES + 1;
    ASSERT_EQ(WR_EUSAGE, wr_msg_welcome_encode(&w, &b));
    wr_buf_free(&b);
}

TEST(welcome_rejects)
{
    static struct wr_msg_welcome d;
    const char *why = NULL;

    /* Missing nodes. */
    tbuf.n = 0;
    tb_map(&tbuf, 6);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_WELCOME);
    tb_str(&tbuf, "v");
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "node");
    tb_str(&tbuf, "n1");
    tb_str(&tbuf, "cluster");
    tb_str(&tbuf, "c");
    tb_str(&tbuf, "ping_ms");
    tb_uint(&tbuf, 1000);
    tb_str(&tbuf, "ping_to_ms");
    tb_uint(&tbuf, 3000);
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: missing nodes", why);

    size_t base = tbuf.n;
    tbuf.b[0]++;
    /* An entry that is not a map. */
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, 1);
    tb_str(&tbuf, "n2");
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: node: not a map", why);
    /* An entry without id. */
    tbuf.n = base;
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, 1);
    tb_map(&tbuf, 1);
    tb_str(&tbuf, "addr");
    tb_str(&tbuf, "1.2.3.4:5");
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: node: missing id", why);
    /* An address with a space (would forge log fields). */
    tbuf.n = base;
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, 1);
    tb_map(&tbuf, 2);
    tb_str(&tbuf, "id");
    tb_str(&tbuf, "n2");
    tb_str(&tbuf, "addr");
    tb_str(&tbuf, "1.2.3.4:5 lvl=error");
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: node: invalid addr", why);
    /* Too many entries. */
    tbuf.n = base;
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, WR_MAX_NODES + 1);
    for (int i = 0; i < WR_MAX_NODES + 1; i++) {
        tb_map(&tbuf, 1);
        tb_str(&tbuf, "id");
        tb_str(&tbuf, "n");
    }
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: nodes too long", why);
    /* Exactly the limit is fine. */
    tbuf.n = base;
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, WR_MAX_NODES);
    for (int i = 0; i < WR_MAX_NODES; i++) {
        tb_map(&tbuf, 1);
        tb_str(&tbuf, "id");
        tb_str(&tbuf, "n");
    }
    ASSERT_OK(wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_EQ(WR_MAX_NODES, d.n_nodes);
    ASSERT_STR_EQ("", d.nodes[7].addr);
    /* A ping interval beyond uint32. */
    tbuf.n = 0;
    tb_map(&tbuf, 7);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_WELCOME);
    tb_str(&tbuf, "v");
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "node");
    tb_str(&tbuf, "n1");
    tb_str(&tbuf, "cluster");
    tb_str(&tbuf, "c");
    tb_str(&tbuf, "ping_ms");
    tb_uint(&tbuf, 1ull << 32);
    tb_str(&tbuf, "ping_to_ms");
    tb_uint(&tbuf, 3000);
    tb_str(&tbuf, "nodes");
    tb_arr(&tbuf, 0);
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("welcome: invalid ping_ms", why);
}

TEST(discovery_roundtrip)
{
    static struct wr_msg_discovery m, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&m, 0, sizeof(m));
    m.n_nodes = 5;
    fill_nodes(m.nodes, 5, false);
    ASSERT_OK(wr_msg_discovery_encode(&m, &b));
    ASSERT_OK(wr_msg_discovery_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&m, &d, sizeof(m));
    int type;
    ASSERT_OK(wr_msg_peek_type(wr_buf_peek(&b), &type, &why));
    ASSERT_EQ(WR_MSG_DISCOVERY, type);
    /* A discovery message is not a welcome, and vice versa. */
    static struct wr_msg_welcome w;
    ASSERT_EQ(WR_EPROTO, wr_msg_welcome_decode(wr_buf_peek(&b), &w, &why));
    ASSERT_STR_EQ("welcome: wrong message type", why);
    wr_buf_free(&b);
}

TEST(error_roundtrip)
{
    struct wr_msg_error e, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&e, 0, sizeof(e));
    e.code = WR_CODE_AUTH;
    memset(e.message, 'm', WR_ERRMSG_MAX);
    memcpy(e.message, "token expired: \xc3\xa9t\xc3\xa9", 20); /* UTF-8 is fine */
    ASSERT_OK(wr_msg_error_encode(&e, &b));
    ASSERT_OK(wr_msg_error_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&e, &d, sizeof(e));

    /* msg is optional; an unknown code passes (the caller maps it). */
    tbuf.n = 0;
    tb_map(&tbuf, 2);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_ERROR);
    tb_str(&tbuf, "code");
    tb_uint(&tbuf, 999);
    ASSERT_OK(wr_msg_error_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_EQ(999, d.code);
    ASSERT_STR_EQ("", d.message);
    /* A message longer than the field is refused, not truncated. */
    static char big[WR_ERRMSG_MAX + 1];
    memset(big, 'x', sizeof(big));
    tbuf.b[0]++;
    tb_str(&tbuf, "msg");
    tb_strn(&tbuf, big, sizeof(big));
    ASSERT_EQ(WR_EPROTO, wr_msg_error_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("error: msg too long", why);
    wr_buf_free(&b);
}

TEST(proto_code_str)
{
    ASSERT_STR_EQ("ok", wr_proto_code_str(WR_CODE_OK));
    ASSERT_STR_EQ("auth", wr_proto_code_str(WR_CODE_AUTH));
    ASSERT_STR_EQ("too_large", wr_proto_code_str(WR_CODE_TOO_LARGE));
    ASSERT_STR_EQ("unknown", wr_proto_code_str(WR_CODE__COUNT));
    ASSERT_STR_EQ("unknown", wr_proto_code_str(UINT32_MAX));
    for (uint32_t c = 0; c < WR_CODE__COUNT; c++)
        ASSERT(strcmp(wr_proto_code_str(c), "unknown") != 0);
}

TEST(open_roundtrip)
{
    struct wr_msg_open o, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&o, 0, sizeof(o));
    memcpy(o.service, "http", 5);
    memcpy(o.client_addr, "[2001:db8::1]:51234", 20);
    o.hop = WR_HOP_MAX;
    ASSERT_OK(wr_msg_open_encode(&o, &b));
    ASSERT_LE(b.len, WR_OPEN_HDR_MAX);
    ASSERT_OK(wr_msg_open_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&o, &d, sizeof(o));
    o.hop = WR_HOP_MAX + 1;
    ASSERT_EQ(WR_EUSAGE, wr_msg_open_encode(&o, &b));
    wr_buf_free(&b);
}

TEST(open_rejects)
{
    struct wr_msg_open d;
    const char *why = NULL;
    tbuf.n = 0;
    tb_map(&tbuf, 3);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_OPEN);
    tb_str(&tbuf, "svc");
    tb_str(&tbuf, "http");
    tb_str(&tbuf, "hop");
    tb_uint(&tbuf, WR_HOP_MAX + 1);
    ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("open: invalid hop", why);

    tbuf.n = 0;
    tb_map(&tbuf, 2);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_OPEN);
    tb_str(&tbuf, "svc");
    tb_str(&tbuf, "http");
    ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("open: missing hop", why);

    /* Under WR_CONTROL_MAX but over WR_OPEN_HDR_MAX. */
    static char pad[WR_OPEN_HDR_MAX];
    memset(pad, 'p', sizeof(pad));
    tbuf.b[0] += 2;
    tb_str(&tbuf, "hop");
    tb_uint(&tbuf, 0);
    tb_str(&tbuf, "pad");
    tb_strn(&tbuf, pad, sizeof(pad));
    ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("open: too large", why);

    tbuf.n = 0;
    tb_map(&tbuf, 4);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_OPEN);
    tb_str(&tbuf, "svc");
    tb_str(&tbuf, "http");
    tb_str(&tbuf, "hop");
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "client");
    tb_str(&tbuf, "1.2.3.4:5\n");
    ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("open: invalid client", why);
}

/* The tunnel key of OPEN (peer links): optional, left out when empty. */
TEST(open_tunnel_roundtrip)
{
    struct wr_msg_open o, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&o, 0, sizeof(o));
    memcpy(o.service, "http", 5);
    o.hop = 1;
    ASSERT_OK(wr_msg_open_encode(&o, &b));
    /* No tunnel: the encoding toward agents has no "tunnel" key at all. */
    ASSERT(memmem(b.data + b.off, b.len, "tunnel", 6) == NULL);
    ASSERT_OK(wr_msg_open_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_STR_EQ("", d.tunnel);
    ASSERT_MEM_EQ(&o, &d, sizeof(o));
    b.len = 0;

    memset(o.tunnel, 'T', WR_ID_MAX); /* the longest id */
    ASSERT_OK(wr_msg_open_encode(&o, &b));
    ASSERT(memmem(b.data + b.off, b.len, "tunnel", 6) != NULL);
    ASSERT_OK(wr_msg_open_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&o, &d, sizeof(o));
    b.len = 0;

    memcpy(o.tunnel, "bad tunnel", 11);
    ASSERT_EQ(WR_EUSAGE, wr_msg_open_encode(&o, &b));
    ASSERT_EQ(0, b.len);
    wr_buf_free(&b);
}

/* An OPEN map with svc, hop and a tunnel value written by <fn>. */
static void tb_open_tunnel(void (*fn)(struct tb *))
{
    tbuf.n = 0;
    tb_map(&tbuf, 4);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, WR_MSG_OPEN);
    tb_str(&tbuf, "svc");
    tb_str(&tbuf, "http");
    tb_str(&tbuf, "hop");
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "tunnel");
    fn(&tbuf);
}

static void tv_empty(struct tb *t)
{
    tb_str(t, "");
}
static void tv_badchar(struct tb *t)
{
    tb_str(t, "t1/../x");
}
static void tv_long(struct tb *t)
{
    char s[WR_ID_MAX + 1];
    memset(s, 'a', sizeof(s));
    tb_strn(t, s, sizeof(s));
}
static void tv_uint(struct tb *t)
{
    tb_uint(t, 7);
}
static void tv_nul(struct tb *t)
{
    tb_strn(t, "t\0x", 3);
}
static void tv_ok(struct tb *t)
{
    tb_str(t, "web.prod");
}

TEST(open_tunnel_rejects)
{
    struct wr_msg_open d;
    const char *why = NULL;
    tb_open_tunnel(tv_ok);
    ASSERT_OK(wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("web.prod", d.tunnel);
    ASSERT_EQ(1, d.hop);

    static const struct {
        void (*fn)(struct tb *);
        const char *why;
    } bad[] = {
        {tv_empty, "open: invalid tunnel"},       {tv_badchar, "open: invalid tunnel"},
        {tv_nul, "open: invalid tunnel"},         {tv_long, "open: tunnel too long"},
        {tv_uint, "open: wrong type for tunnel"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tb_open_tunnel(bad[i].fn);
        memset(&d, 0x5a, sizeof(d));
        ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
        ASSERT_STR_EQ(bad[i].why, why);
        ASSERT_STR_EQ("", d.tunnel); /* zeroed on error */
    }

    /* The key given twice. */
    tb_open_tunnel(tv_ok);
    tbuf.b[0] += 1;
    tb_str(&tbuf, "tunnel");
    tb_str(&tbuf, "other");
    ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("open: duplicate key", why);

    /* Every truncation of a valid OPEN with a tunnel is refused. */
    tb_open_tunnel(tv_ok);
    size_t full = tbuf.n;
    for (size_t n = 0; n < full; n++)
        ASSERT_EQ(WR_EPROTO, wr_msg_open_decode(wr_slice_make(tbuf.b, n), &d, &why));
}

TEST(proto_code_peer)
{
    ASSERT_STR_EQ("no_route", wr_proto_code_str(WR_CODE_NO_ROUTE));
    ASSERT_STR_EQ("hop_limit", wr_proto_code_str(WR_CODE_HOP_LIMIT));
}

TEST(claims_roundtrip)
{
    struct wr_token_claims c, d;
    struct wr_buf b = {0};
    const char *why = NULL;
    memset(&c, 0, sizeof(c));
    memcpy(c.tunnel, "web", 4);
    c.issued_at = 1700000000;
    c.expires_at = UINT64_MAX;
    c.max_weight = 1;
    for (int i = 0; i < 16; i++)
        c.id[i] = (uint8_t)(0xf0 + i);
    ASSERT_OK(wr_msg_claims_encode(&c, &b));
    ASSERT_OK(wr_msg_claims_decode(wr_buf_peek(&b), &d, &why));
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    c.max_weight = 0;
    ASSERT_EQ(WR_EUSAGE, wr_msg_claims_encode(&c, &b));

    /* jti must be exactly 16 bytes of bin. */
    tbuf.n = 0;
    tb_map(&tbuf, 5);
    tb_str(&tbuf, "tunnel");
    tb_str(&tbuf, "web");
    tb_str(&tbuf, "iat");
    tb_uint(&tbuf, 1);
    tb_str(&tbuf, "exp");
    tb_uint(&tbuf, 2);
    tb_str(&tbuf, "maxw");
    tb_uint(&tbuf, 3);
    tb_str(&tbuf, "jti");
    tb_byte(&tbuf, 0xc4);
    tb_byte(&tbuf, 15);
    for (int i = 0; i < 15; i++)
        tb_byte(&tbuf, 0);
    ASSERT_EQ(WR_EPROTO, wr_msg_claims_decode(tb_slice(&tbuf), &d, &why));
    ASSERT_STR_EQ("claims: invalid jti", why);
    wr_buf_free(&b);
}

TEST(peek_type)
{
    int type = -1;
    const char *why = NULL;
    tbuf.n = 0;
    tb_map(&tbuf, 2);
    tb_str(&tbuf, "x");
    tb_str(&tbuf, "y");
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, 399);
    ASSERT_OK(wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_EQ(399, type); /* unknown types are returned for the caller to refuse */

    tbuf.n = 0;
    tb_map(&tbuf, 1);
    tb_str(&tbuf, "x");
    tb_str(&tbuf, "y");
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_STR_EQ("control: missing type", why);

    tbuf.n = 0;
    tb_map(&tbuf, 1);
    tb_str(&tbuf, "type");
    tb_uint(&tbuf, 1ull << 40);
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_STR_EQ("control: invalid type", why);

    tbuf.n = 0;
    tb_arr(&tbuf, 0);
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, &why));
    ASSERT_STR_EQ("control: not a map", why);
    ASSERT_EQ(0, type);
    ASSERT_EQ(WR_EPROTO, wr_msg_peek_type(tb_slice(&tbuf), &type, NULL)); /* why optional */
}

TEST_MAIN(TEST_ENTRY(hello_roundtrip), TEST_ENTRY(hello_svc_optional),
          TEST_ENTRY(hello_missing_each_field), TEST_ENTRY(hello_wrong_types),
          TEST_ENTRY(hello_bad_values), TEST_ENTRY(hello_weight_bounds_accepted),
          TEST_ENTRY(unknown_keys_ignored), TEST_ENTRY(duplicate_and_nonstring_keys),
          TEST_ENTRY(reject_not_msgpack_and_not_map), TEST_ENTRY(reject_truncated_every_prefix),
          TEST_ENTRY(reject_trailing_bytes), TEST_ENTRY(reject_oversized),
          TEST_ENTRY(reject_huge_declared_counts), TEST_ENTRY(reject_deep_nesting),
          TEST_ENTRY(encode_rejects_bad_fields), TEST_ENTRY(welcome_roundtrip),
          TEST_ENTRY(welcome_full_list), TEST_ENTRY(welcome_rejects),
          TEST_ENTRY(discovery_roundtrip), TEST_ENTRY(error_roundtrip), TEST_ENTRY(proto_code_str),
          TEST_ENTRY(open_roundtrip), TEST_ENTRY(open_rejects), TEST_ENTRY(open_tunnel_roundtrip),
          TEST_ENTRY(open_tunnel_rejects), TEST_ENTRY(proto_code_peer),
          TEST_ENTRY(claims_roundtrip), TEST_ENTRY(peek_type))
