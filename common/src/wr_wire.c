/*
 * wr_wire.c: the msgpack codec of control messages (HELLO, WELCOME,
 * DISCOVERY, ERROR), of the OPEN stream header and of token claims. The only
 * file that includes msgpack.h. It owns the byte format and its validation,
 * no policy: whether a version, role or tunnel is acceptable is the caller's
 * decision.
 *
 * Every message is a map with short string keys, described below by a field
 * table per message. The same table drives the encoder and the decoder, so an
 * encoder can never produce what the decoder refuses. docs/protocol.md lists
 * the keys; keep both in sync.
 *
 * Decoding is done in two passes over the same bytes:
 *  1. wr_wire_scan() walks the raw msgpack without allocating. It proves that
 *     the input is exactly one well-formed object and that every declared
 *     array/map count fits in the remaining bytes. msgpack-c allocates
 *     count * sizeof(msgpack_object) up front from a declared count, so
 *     without this a 5-byte "array32 of 4G items" would ask for ~100 GB.
 *     After the scan the unpack zone is bounded by ~len * sizeof(object).
 *  2. msgpack_unpack_next() builds the object tree (strings stay borrowed
 *     from the input) and the field table copies what it needs out of it.
 */
#include "wr/wire.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- kinds of fields and their validation, shared by both directions ---- */

enum wr_wire_kind {
    WR_WIRE_K_UINT,   /* positive integer in [min, max], stored in <size> bytes */
    WR_WIRE_K_ID,     /* wr_id_is_valid() string, into char[size] */
    WR_WIRE_K_TEXT,   /* any bytes but NUL, [min, size-1] long, into char[size] */
    WR_WIRE_K_ADDR,   /* printable ASCII without spaces, may be empty, into char[size] */
    WR_WIRE_K_BIN,    /* bin of exactly <size> bytes */
    WR_WIRE_K_IDLIST, /* array of at most <max> ids into char[max][size], count at count_off */
    WR_WIRE_K_NODES,  /* array of at most <max> node maps, count at count_off */
};

struct wr_wire_msg;

struct wr_wire_field {
    const char *key;
    enum wr_wire_kind kind;
    bool required;
    bool omit_empty;  /* strings: the encoder leaves the key out when "" */
    size_t off;       /* offset of the member in the message struct */
    size_t size;      /* char array capacity (NUL included), integer width, bin length */
    uint64_t min;     /* UINT: lowest value; TEXT: shortest length */
    uint64_t max;     /* UINT: highest value; lists: most elements */
    size_t count_off; /* lists: offset of the uint32_t element count */
    const struct wr_wire_msg *sub; /* NODES: the table of one element */
    const char *why_missing;
    const char *why_type;
    const char *why_long;
    const char *why_bad;
};

/*
 * The reasons are string literals built from the message and key names, so
 * *why is always static and names both ("hello: missing tunnel").
 */
#define WR_WIRE_WHYS_(msg, k)                                                                      \
    .key = (k), .why_missing = msg ": missing " k, .why_type = msg ": wrong type for " k,          \
    .why_long = msg ": " k " too long", .why_bad = msg ": invalid " k

#define WR_WIRE_UINT(msg, key, st, member, lo, hi, req)                                            \
    {                                                                                              \
        WR_WIRE_WHYS_(msg, key), .kind = WR_WIRE_K_UINT, .required = (req),                        \
                                 .off = offsetof(st, member), .size = sizeof(((st *)0)->member),   \
                                 .min = (lo), .max = (hi)                                          \
    }
#define WR_WIRE_STR(msg, key, kd, st, member, minlen, req)                                         \
    {                                                                                              \
        WR_WIRE_WHYS_(msg, key), .kind = (kd), .required = (req), .off = offsetof(st, member),     \
                                 .size = sizeof(((st *)0)->member), .min = (minlen)                \
    }
/* An optional id the encoder leaves out when empty (the decoder never accepts "",
 * so an empty member means "absent" both ways). */
#define WR_WIRE_OPTID(msg, key, st, member)                                                        \
    {                                                                                              \
        WR_WIRE_WHYS_(msg, key), .kind = WR_WIRE_K_ID, .required = false, .omit_empty = true,      \
                                 .off = offsetof(st, member), .size = sizeof(((st *)0)->member),   \
                                 .min = 1                                                          \
    }
#define WR_WIRE_BIN(msg, key, st, member, req)                                                     \
    {                                                                                              \
        WR_WIRE_WHYS_(msg, key), .kind = WR_WIRE_K_BIN, .required = (req),                         \
                                 .off = offsetof(st, member), .size = sizeof(((st *)0)->member)    \
    }
#define WR_WIRE_LIST(msg, key, kd, st, member, countm, elem, req)                                  \
    {                                                                                              \
        WR_WIRE_WHYS_(msg, key), .kind = (kd), .required = (req), .off = offsetof(st, member),     \
                                 .size = sizeof(((st *)0)->member[0]),                             \
                                 .max = WR_ARRAY_LEN(((st *)0)->member),                           \
                                 .count_off = offsetof(st, countm), .sub = (elem)                  \
    }

/* A message: its "type" value (0: a nested map without "type") and limits. */
struct wr_wire_msg {
    uint32_t type;
    size_t max; /* largest encoding accepted or produced */
    const struct wr_wire_field *fields;
    size_t n_fields;
    const char *why_big;
    const char *why_trunc;
    const char *why_trailing;
    const char *why_parse;
    const char *why_deep;
    const char *why_not_map;
    const char *why_key;
    const char *why_dup;
    const char *why_no_type;
    const char *why_type;
};

#define WR_WIRE_MSG_WHYS_(msg)                                                                     \
    .why_big = msg ": too large", .why_trunc = msg ": truncated",                                  \
    .why_trailing = msg ": trailing bytes", .why_parse = msg ": not msgpack",                      \
    .why_deep = msg ": nested too deeply", .why_not_map = msg ": not a map",                       \
    .why_key = msg ": key is not a string", .why_dup = msg ": duplicate key",                      \
    .why_no_type = msg ": missing type", .why_type = msg ": wrong message type"

/* ---- the tables: the wire format, one line per key ---- */

/* Keys of a map are tracked in a 32-bit mask (bit 31: "type"). */
#define WR_WIRE_MAX_FIELDS 31

/* One discovery list entry, a map without "type"; named after the message that carries it. */
#define WR_WIRE_NODE_TABLE(name, msg)                                                              \
    static const struct wr_wire_field name##_fields[] = {                                          \
        WR_WIRE_STR(msg, "id", WR_WIRE_K_ID, struct wr_node_entry, node_id, 1, true),              \
        WR_WIRE_STR(msg, "addr", WR_WIRE_K_ADDR, struct wr_node_entry, addr, 0, false),            \
    };                                                                                             \
    static const struct wr_wire_msg name = {                                                       \
        .type = 0,                                                                                 \
        .max = WR_CONTROL_MAX,                                                                     \
        .fields = name##_fields,                                                                   \
        .n_fields = WR_ARRAY_LEN(name##_fields),                                                   \
        WR_WIRE_MSG_WHYS_(msg),                                                                    \
    }
WR_WIRE_NODE_TABLE(wr_wire_welcome_node_msg, "welcome: node");
WR_WIRE_NODE_TABLE(wr_wire_discovery_node_msg, "discovery: node");

static const struct wr_wire_field wr_wire_hello_fields[] = {
    WR_WIRE_UINT("hello", "v", struct wr_msg_hello, version, 0, UINT32_MAX, true),
    WR_WIRE_STR("hello", "role", WR_WIRE_K_ID, struct wr_msg_hello, role, 1, true),
    WR_WIRE_STR("hello", "tunnel", WR_WIRE_K_ID, struct wr_msg_hello, tunnel, 1, true),
    WR_WIRE_STR("hello", "agent", WR_WIRE_K_ID, struct wr_msg_hello, agent_id, 1, true),
    WR_WIRE_STR("hello", "token", WR_WIRE_K_TEXT, struct wr_msg_hello, token, 1, true),
    WR_WIRE_UINT("hello", "weight", struct wr_msg_hello, weight, 1, 255, true),
    WR_WIRE_LIST("hello", "svc", WR_WIRE_K_IDLIST, struct wr_msg_hello, services, n_services, NULL,
                 false),
};
_Static_assert(WR_ARRAY_LEN(wr_wire_hello_fields) <= WR_WIRE_MAX_FIELDS, "seen mask");
static const struct wr_wire_msg wr_wire_hello_msg = {
    .type = WR_MSG_HELLO,
    .max = WR_CONTROL_MAX,
    .fields = wr_wire_hello_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_hello_fields),
    WR_WIRE_MSG_WHYS_("hello"),
};

static const struct wr_wire_field wr_wire_welcome_fields[] = {
    WR_WIRE_UINT("welcome", "v", struct wr_msg_welcome, version, 0, UINT32_MAX, true),
    WR_WIRE_STR("welcome", "node", WR_WIRE_K_ID, struct wr_msg_welcome, node_id, 1, true),
    WR_WIRE_STR("welcome", "cluster", WR_WIRE_K_ID, struct wr_msg_welcome, cluster, 1, true),
    WR_WIRE_UINT("welcome", "ping_ms", struct wr_msg_welcome, ping_interval_ms, 0, UINT32_MAX,
                 true),
    WR_WIRE_UINT("welcome", "ping_to_ms", struct wr_msg_welcome, ping_timeout_ms, 0, UINT32_MAX,
                 true),
    WR_WIRE_LIST("welcome", "nodes", WR_WIRE_K_NODES, struct wr_msg_welcome, nodes, n_nodes,
                 &wr_wire_welcome_node_msg, true),
};
static const struct wr_wire_msg wr_wire_welcome_msg = {
    .type = WR_MSG_WELCOME,
    .max = WR_CONTROL_MAX,
    .fields = wr_wire_welcome_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_welcome_fields),
    WR_WIRE_MSG_WHYS_("welcome"),
};

static const struct wr_wire_field wr_wire_discovery_fields[] = {
    WR_WIRE_LIST("discovery", "nodes", WR_WIRE_K_NODES, struct wr_msg_discovery, nodes, n_nodes,
                 &wr_wire_discovery_node_msg, true),
};
static const struct wr_wire_msg wr_wire_discovery_msg = {
    .type = WR_MSG_DISCOVERY,
    .max = WR_CONTROL_MAX,
    .fields = wr_wire_discovery_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_discovery_fields),
    WR_WIRE_MSG_WHYS_("discovery"),
};

static const struct wr_wire_field wr_wire_error_fields[] = {
    WR_WIRE_UINT("error", "code", struct wr_msg_error, code, 0, UINT32_MAX, true),
    WR_WIRE_STR("error", "msg", WR_WIRE_K_TEXT, struct wr_msg_error, message, 0, false),
};
static const struct wr_wire_msg wr_wire_error_msg = {
    .type = WR_MSG_ERROR,
    .max = WR_CONTROL_MAX,
    .fields = wr_wire_error_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_error_fields),
    WR_WIRE_MSG_WHYS_("error"),
};

static const struct wr_wire_field wr_wire_open_fields[] = {
    WR_WIRE_STR("open", "svc", WR_WIRE_K_ID, struct wr_msg_open, service, 1, true),
    WR_WIRE_STR("open", "client", WR_WIRE_K_ADDR, struct wr_msg_open, client_addr, 0, false),
    WR_WIRE_UINT("open", "hop", struct wr_msg_open, hop, 0, WR_HOP_MAX, true),
    WR_WIRE_OPTID("open", "tunnel", struct wr_msg_open, tunnel),
};
static const struct wr_wire_msg wr_wire_open_msg = {
    .type = WR_MSG_OPEN,
    .max = WR_OPEN_HDR_MAX,
    .fields = wr_wire_open_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_open_fields),
    WR_WIRE_MSG_WHYS_("open"),
};

/* Claims are not a control message (they travel inside a token), hence no "type". */
static const struct wr_wire_field wr_wire_claims_fields[] = {
    WR_WIRE_STR("claims", "tunnel", WR_WIRE_K_ID, struct wr_token_claims, tunnel, 1, true),
    WR_WIRE_UINT("claims", "iat", struct wr_token_claims, issued_at, 0, UINT64_MAX, true),
    WR_WIRE_UINT("claims", "exp", struct wr_token_claims, expires_at, 0, UINT64_MAX, true),
    WR_WIRE_UINT("claims", "maxw", struct wr_token_claims, max_weight, 1, 255, true),
    WR_WIRE_BIN("claims", "jti", struct wr_token_claims, id, true),
};
static const struct wr_wire_msg wr_wire_claims_msg = {
    .type = 0,
    .max = WR_TOKEN_MAX,
    .fields = wr_wire_claims_fields,
    .n_fields = WR_ARRAY_LEN(wr_wire_claims_fields),
    WR_WIRE_MSG_WHYS_("claims"),
};

/* ---- value checks shared by encoder and decoder ---- */

/* NULL when <len> bytes at <p> are a valid value of string field <f>, else why. */
static const char *wr_wire_check_str(const struct wr_wire_field *f, const char *p, size_t len)
{
    if (len > f->size - 1)
        return f->why_long;
    switch (f->kind) {
    case WR_WIRE_K_ID:
    case WR_WIRE_K_IDLIST:
        return wr_id_is_valid(p, len) ? NULL : f->why_bad;
    case WR_WIRE_K_TEXT:
        if (len < f->min || memchr(p, '\0', len) != NULL)
            return f->why_bad;
        return NULL;
    case WR_WIRE_K_ADDR:
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
                return f->why_bad;
        return NULL;
    default:
        return f->why_bad;
    }
}

static uint64_t wr_wire_load_uint(const void *p, size_t size)
{
    switch (size) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static void wr_wire_store_uint(void *p, size_t size, uint64_t v)
{
    switch (size) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
        break;
    }
}

/* ---- pass 1: the allocation-free structural scan ---- */

static uint64_t wr_wire_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Deepest nesting accepted. Our messages need 3 (map, list, entry map); the
 * slack is for extensions from newer peers. msgpack-c itself stops at 32 but
 * reports that as out-of-memory, so the scan refuses first, with a reason.
 */
#define WR_WIRE_MAX_DEPTH 8

/*
 * Checks that <in> is exactly one complete msgpack object, nested at most
 * WR_WIRE_MAX_DEPTH deep, that no declared count exceeds the bytes left
 * (every element takes at least one byte), and that nothing follows it.
 * Returns NULL or the reason.
 */
static const char *wr_wire_scan(struct wr_slice in, const struct wr_wire_msg *m)
{
    const uint8_t *p = in.ptr;
    size_t len = in.len, pos = 0;
    size_t pending = 1;                   /* objects still to read, all levels */
    uint64_t left[WR_WIRE_MAX_DEPTH + 1]; /* objects still to read, per level */
    int depth = 0;

    left[0] = 1;
    for (;;) {
        while (depth >= 0 && left[depth] == 0)
            depth--;
        if (depth < 0)
            break;
        if (pos >= len)
            return m->why_trunc;
        uint8_t b = p[pos++];
        size_t lenbytes = 0; /* size of a length/count field that follows */
        size_t body = 0;     /* fixed payload size */
        int what = 0;        /* 0 scalar, 1 bytes of length, 2 array, 3 map */
        uint64_t n = 0;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            body = 0;
        } else if (b >= 0x80 && b <= 0x8f) {
            what = 3;
            n = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            what = 2;
            n = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                lenbytes = 1;
                what = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                what = 1;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                what = 1;
                break; /* bin32, str32 */
            case 0xc7:
                lenbytes = 1;
                what = 1;
                body = 1;
                break; /* ext8: + type byte */
            case 0xc8:
                lenbytes = 2;
                what = 1;
                body = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                what = 1;
                body = 1;
                break;
            case 0xca:
                body = 4;
                break; /* float32 */
            case 0xcb:
                body = 8;
                break; /* float64 */
            case 0xcc:
            case 0xd0:
                body = 1;
                break; /* (u)int8 */
            case 0xcd:
            case 0xd1:
                body = 2;
                break;
            case 0xce:
            case 0xd2:
                body = 4;
                break;
            case 0xcf:
            case 0xd3:
                body = 8;
                break;
            case 0xd4:
                body = 2;
                break; /* fixext1..16 + type */
            case 0xd5:
                body = 3;
                break;
            case 0xd6:
                body = 5;
                break;
            case 0xd7:
                body = 9;
                break;
            case 0xd8:
                body = 17;
                break;
            case 0xdc:
                lenbytes = 2;
                what = 2;
                break; /* array16/32 */
            case 0xdd:
                lenbytes = 4;
                what = 2;
                break;
            case 0xde:
                lenbytes = 2;
                what = 3;
                break; /* map16/32 */
            case 0xdf:
                lenbytes = 4;
                what = 3;
                break;
            default: /* 0xc1: never used */
                return m->why_parse;
            }
        }
        if (lenbytes > 0) {
            if (len - pos < lenbytes)
                return m->why_trunc;
            n = wr_wire_be(p + pos, lenbytes);
            pos += lenbytes;
        }
        left[depth]--;
        pending--;
        if (what == 1) {
            if (n > len - pos || body > len - pos - n)
                return m->why_trunc;
            pos += (size_t)n + body;
        } else if (what >= 2) {
            uint64_t items = what == 3 ? 2 * n : n;
            if (items > len - pos || pending > len - pos - items)
                return m->why_trunc;
            if (items > 0) {
                if (depth == WR_WIRE_MAX_DEPTH)
                    return m->why_deep;
                left[++depth] = items;
                pending += (size_t)items;
            }
        } else {
            if (body > len - pos)
                return m->why_trunc;
            pos += body;
        }
    }
    return pos == len ? NULL : m->why_trailing;
}

/* ---- pass 2: object tree to struct ---- */

static bool wr_wire_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int wr_wire_get_map(const msgpack_object *o, const struct wr_wire_msg *m, void *dst,
                           const char **why);

/* Copies a checked string into a char[size] member (always NUL-terminated). */
static const char *wr_wire_get_str(const struct wr_wire_field *f, const msgpack_object *v,
                                   char *out)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return f->why_type;
    const char *why = wr_wire_check_str(f, v->via.str.ptr, v->via.str.size);
    if (why != NULL)
        return why;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return NULL;
}

static int wr_wire_get_field(const struct wr_wire_field *f, const msgpack_object *v, uint8_t *dst,
                             const char **why)
{
    const char *bad = NULL;
    switch (f->kind) {
    case WR_WIRE_K_UINT:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            bad = f->why_type;
        else if (v->via.u64 < f->min || v->via.u64 > f->max)
            bad = f->why_bad;
        else
            wr_wire_store_uint(dst + f->off, f->size, v->via.u64);
        break;
    case WR_WIRE_K_ID:
    case WR_WIRE_K_TEXT:
    case WR_WIRE_K_ADDR:
        bad = wr_wire_get_str(f, v, (char *)dst + f->off);
        break;
    case WR_WIRE_K_BIN:
        if (v->type != MSGPACK_OBJECT_BIN)
            bad = f->why_type;
        else if (v->via.bin.size != f->size)
            bad = f->why_bad;
        else
            memcpy(dst + f->off, v->via.bin.ptr, f->size);
        break;
    case WR_WIRE_K_IDLIST:
    case WR_WIRE_K_NODES: {
        if (v->type != MSGPACK_OBJECT_ARRAY) {
            bad = f->why_type;
            break;
        }
        if (v->via.array.size > f->max) {
            bad = f->why_long;
            break;
        }
        for (uint32_t i = 0; i < v->via.array.size && bad == NULL; i++) {
            uint8_t *elem = dst + f->off + (size_t)i * f->size;
            if (f->kind == WR_WIRE_K_IDLIST) {
                bad = wr_wire_get_str(f, &v->via.array.ptr[i], (char *)elem);
            } else if (wr_wire_get_map(&v->via.array.ptr[i], f->sub, elem, why) != 0) {
                return WR_EPROTO;
            }
        }
        if (bad == NULL)
            wr_wire_store_uint(dst + f->count_off, sizeof(uint32_t), v->via.array.size);
        break;
    }
    }
    if (bad != NULL) {
        *why = bad;
        return WR_EPROTO;
    }
    return 0;
}

/*
 * Decodes the map <o> into <dst> by the table of <m>: known keys once each,
 * "type" equal to m->type when the message has one, unknown keys ignored.
 */
static int wr_wire_get_map(const msgpack_object *o, const struct wr_wire_msg *m, void *dst,
                           const char **why)
{
    uint32_t seen = 0;
    const uint32_t type_bit = 1u << WR_WIRE_MAX_FIELDS;

    if (o->type != MSGPACK_OBJECT_MAP) {
        *why = m->why_not_map;
        return WR_EPROTO;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            *why = m->why_key;
            return WR_EPROTO;
        }
        if (m->type != 0 && wr_wire_key_is(k, "type")) {
            if (seen & type_bit) {
                *why = m->why_dup;
                return WR_EPROTO;
            }
            seen |= type_bit;
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != m->type) {
                *why = m->why_type;
                return WR_EPROTO;
            }
            continue;
        }
        for (size_t j = 0; j < m->n_fields; j++) {
            const struct wr_wire_field *f = &m->fields[j];
            if (!wr_wire_key_is(k, f->key))
                continue;
            if (seen & (1u << j)) {
                *why = m->why_dup;
                return WR_EPROTO;
            }
            seen |= 1u << j;
            int err = wr_wire_get_field(f, v, dst, why);
            if (err != 0)
                return err;
            break;
        }
        /* A key matching no field is an extension from a newer peer: ignored. */
    }
    if (m->type != 0 && !(seen & type_bit)) {
        *why = m->why_no_type;
        return WR_EPROTO;
    }
    for (size_t j = 0; j < m->n_fields; j++) {
        if (m->fields[j].required && !(seen & (1u << j))) {
            *why = m->fields[j].why_missing;
            return WR_EPROTO;
        }
    }
    return 0;
}

/* Both passes over a whole message. <dst> is zeroed first, so absent optional
 * fields read as 0 / "" / empty lists. */
static int wr_wire_decode(struct wr_slice in, const struct wr_wire_msg *m, void *dst, size_t dstlen,
                          const char **why)
{
    const char *ignored;
    msgpack_unpacked up;
    size_t off = 0;
    int err = 0;

    if (why == NULL)
        why = &ignored;
    memset(dst, 0, dstlen);
    if (in.len > m->max) {
        *why = m->why_big;
        return WR_EPROTO;
    }
    const char *bad = wr_wire_scan(in, m);
    if (bad != NULL) {
        *why = bad;
        return WR_EPROTO;
    }
    msgpack_unpacked_init(&up);
    msgpack_unpack_return r = msgpack_unpack_next(&up, (const char *)in.ptr, in.len, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        err = WR_ENOMEM;
        *why = m->why_big;
        goto fail_unpacked;
    }
    /* The scan accepted it, but keep msgpack-c's own verdict authoritative
     * (it also bounds nesting depth). */
    if (r != MSGPACK_UNPACK_SUCCESS || off != in.len) {
        err = WR_EPROTO;
        *why = m->why_parse;
        goto fail_unpacked;
    }
    err = wr_wire_get_map(&up.data, m, dst, why);
    if (err != 0)
        goto fail_unpacked;
    msgpack_unpacked_destroy(&up);
    return 0;

fail_unpacked:
    msgpack_unpacked_destroy(&up);
    memset(dst, 0, dstlen);
    return err;
}

/* ---- encoding ---- */

struct wr_wire_out {
    struct wr_buf *buf;
    int err;
};

static int on_pack_write(void *data, const char *p, size_t len)
{
    struct wr_wire_out *o = data;
    if (o->err == 0)
        o->err = wr_buf_append(o->buf, p, len);
    return o->err == 0 ? 0 : -1;
}

static void wr_wire_put_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static int wr_wire_put_map(msgpack_packer *pk, const struct wr_wire_msg *m, const void *src);

/* Length of a char[size] member, or SIZE_MAX when it is not NUL-terminated. */
static size_t wr_wire_member_len(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    return n == size ? SIZE_MAX : n;
}

static int wr_wire_put_field(msgpack_packer *pk, const struct wr_wire_field *f, const uint8_t *src)
{
    switch (f->kind) {
    case WR_WIRE_K_UINT: {
        uint64_t v = wr_wire_load_uint(src + f->off, f->size);
        if (v < f->min || v > f->max)
            return WR_EUSAGE;
        msgpack_pack_uint64(pk, v);
        return 0;
    }
    case WR_WIRE_K_ID:
    case WR_WIRE_K_TEXT:
    case WR_WIRE_K_ADDR: {
        const char *s = (const char *)src + f->off;
        size_t n = wr_wire_member_len(s, f->size);
        if (n == SIZE_MAX || wr_wire_check_str(f, s, n) != NULL)
            return WR_EUSAGE;
        wr_wire_put_str(pk, s, n);
        return 0;
    }
    case WR_WIRE_K_BIN:
        msgpack_pack_bin(pk, f->size);
        msgpack_pack_bin_body(pk, src + f->off, f->size);
        return 0;
    case WR_WIRE_K_IDLIST:
    case WR_WIRE_K_NODES: {
        uint64_t count = wr_wire_load_uint(src + f->count_off, sizeof(uint32_t));
        if (count > f->max)
            return WR_EUSAGE;
        msgpack_pack_array(pk, (size_t)count);
        for (size_t i = 0; i < count; i++) {
            const uint8_t *elem = src + f->off + i * f->size;
            if (f->kind == WR_WIRE_K_IDLIST) {
                size_t n = wr_wire_member_len((const char *)elem, f->size);
                if (n == SIZE_MAX || wr_wire_check_str(f, (const char *)elem, n) != NULL)
                    return WR_EUSAGE;
                wr_wire_put_str(pk, (const char *)elem, n);
            } else {
                int err = wr_wire_put_map(pk, f->sub, elem);
                if (err != 0)
                    return err;
            }
        }
        return 0;
    }
    }
    return WR_EUSAGE;
}

/* True when optional string field <f> is empty in <src> and stays off the wire. */
static bool wr_wire_omitted(const struct wr_wire_field *f, const void *src)
{
    return f->omit_empty && ((const char *)src + f->off)[0] == '\0';
}

static int wr_wire_put_map(msgpack_packer *pk, const struct wr_wire_msg *m, const void *src)
{
    size_t n = m->n_fields + (m->type != 0 ? 1 : 0);
    for (size_t j = 0; j < m->n_fields; j++)
        n -= wr_wire_omitted(&m->fields[j], src);
    msgpack_pack_map(pk, n);
    if (m->type != 0) {
        wr_wire_put_str(pk, "type", 4);
        msgpack_pack_uint32(pk, m->type);
    }
    for (size_t j = 0; j < m->n_fields; j++) {
        const struct wr_wire_field *f = &m->fields[j];
        if (wr_wire_omitted(f, src))
            continue;
        wr_wire_put_str(pk, f->key, strlen(f->key));
        int err = wr_wire_put_field(pk, f, src);
        if (err != 0)
            return err;
    }
    return 0;
}

/*
 * Appends the encoding of <src> to <out>, or leaves <out> as it was. Write
 * errors of the packer are latched in wr_wire_out, so the pack calls above
 * need no checks of their own.
 */
static int wr_wire_encode(const struct wr_wire_msg *m, const void *src, struct wr_buf *out)
{
    struct wr_wire_out o = {out, 0};
    msgpack_packer pk;
    size_t before = out->len;

    msgpack_packer_init(&pk, &o, on_pack_write);
    int err = wr_wire_put_map(&pk, m, src);
    if (err == 0)
        err = o.err;
    if (err == 0 && out->len - before > m->max)
        err = WR_ETOOBIG;
    if (err != 0)
        out->len = before;
    return err;
}

/* ---- public functions ---- */

int wr_msg_peek_type(struct wr_slice in, int *type, const char **why)
{
    static const struct wr_wire_msg peek = {
        .type = 0,
        .max = WR_CONTROL_MAX,
        WR_WIRE_MSG_WHYS_("control"),
    };
    const char *ignored;
    msgpack_unpacked up;
    size_t off = 0;
    int err = WR_EPROTO;

    if (why == NULL)
        why = &ignored;
    *type = 0;
    if (in.len > peek.max) {
        *why = peek.why_big;
        return WR_EPROTO;
    }
    const char *bad = wr_wire_scan(in, &peek);
    if (bad != NULL) {
        *why = bad;
        return WR_EPROTO;
    }
    msgpack_unpacked_init(&up);
    msgpack_unpack_return r = msgpack_unpack_next(&up, (const char *)in.ptr, in.len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS || off != in.len) {
        err = r == MSGPACK_UNPACK_NOMEM_ERROR ? WR_ENOMEM : WR_EPROTO;
        *why = peek.why_parse;
        goto out;
    }
    if (up.data.type != MSGPACK_OBJECT_MAP) {
        *why = peek.why_not_map;
        goto out;
    }
    bool found = false;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key;
        const msgpack_object *v = &up.data.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || !wr_wire_key_is(k, "type"))
            continue;
        if (found) {
            *why = peek.why_dup;
            goto out;
        }
        found = true;
        /* Any value in int range is returned: rejecting unknown types is the
         * caller's job (it logs ev=proto_unknown_type). */
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > INT32_MAX) {
            *why = "control: invalid type";
            goto out;
        }
        *type = (int)v->via.u64;
    }
    if (!found) {
        *why = peek.why_no_type;
        goto out;
    }
    err = 0;
out:
    msgpack_unpacked_destroy(&up);
    if (err != 0)
        *type = 0;
    return err;
}

const char *wr_proto_code_str(uint32_t code)
{
    static const char *const names[WR_CODE__COUNT] = {
        [WR_CODE_OK] = "ok",
        [WR_CODE_PROTOCOL] = "protocol",
        [WR_CODE_AUTH] = "auth",
        [WR_CODE_VERSION] = "version",
        [WR_CODE_REFUSED] = "refused",
        [WR_CODE_FLOW] = "flow",
        [WR_CODE_CONNECT] = "connect",
        [WR_CODE_SHUTDOWN] = "shutdown",
        [WR_CODE_TIMEOUT] = "timeout",
        [WR_CODE_CANCEL] = "cancel",
        [WR_CODE_INTERNAL] = "internal",
        [WR_CODE_TOO_LARGE] = "too_large",
        [WR_CODE_NO_ROUTE] = "no_route",
        [WR_CODE_HOP_LIMIT] = "hop_limit",
    };
    return code < WR_CODE__COUNT && names[code] != NULL ? names[code] : "unknown";
}

int wr_msg_hello_encode(const struct wr_msg_hello *m, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_hello_msg, m, out);
}

int wr_msg_hello_decode(struct wr_slice in, struct wr_msg_hello *m, const char **why)
{
    return wr_wire_decode(in, &wr_wire_hello_msg, m, sizeof(*m), why);
}

int wr_msg_welcome_encode(const struct wr_msg_welcome *m, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_welcome_msg, m, out);
}

int wr_msg_welcome_decode(struct wr_slice in, struct wr_msg_welcome *m, const char **why)
{
    return wr_wire_decode(in, &wr_wire_welcome_msg, m, sizeof(*m), why);
}

int wr_msg_discovery_encode(const struct wr_msg_discovery *m, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_discovery_msg, m, out);
}

int wr_msg_discovery_decode(struct wr_slice in, struct wr_msg_discovery *m, const char **why)
{
    return wr_wire_decode(in, &wr_wire_discovery_msg, m, sizeof(*m), why);
}

int wr_msg_error_encode(const struct wr_msg_error *m, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_error_msg, m, out);
}

int wr_msg_error_decode(struct wr_slice in, struct wr_msg_error *m, const char **why)
{
    return wr_wire_decode(in, &wr_wire_error_msg, m, sizeof(*m), why);
}

int wr_msg_open_encode(const struct wr_msg_open *m, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_open_msg, m, out);
}

int wr_msg_open_decode(struct wr_slice in, struct wr_msg_open *m, const char **why)
{
    return wr_wire_decode(in, &wr_wire_open_msg, m, sizeof(*m), why);
}

int wr_msg_claims_encode(const struct wr_token_claims *c, struct wr_buf *out)
{
    return wr_wire_encode(&wr_wire_claims_msg, c, out);
}

int wr_msg_claims_decode(struct wr_slice in, struct wr_token_claims *c, const char **why)
{
    return wr_wire_decode(in, &wr_wire_claims_msg, c, sizeof(*c), why);
}
