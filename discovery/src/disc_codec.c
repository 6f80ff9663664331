/*
 * disc_codec.c: the plaintext byte format of gossip packets and push/pull
 * states (docs/gossip.md, "Message formats"). The only file of discovery/
 * that includes msgpack.h. It owns the format and its validation, not what a
 * message means (disc_swim.c) nor sealing (disc_keyring.c).
 */

/*
 * Messages are positional msgpack arrays (short: idle traffic is paid per
 * byte). The grammar is fixed, so the decoder is a cursor over the bytes
 * that expects one exact shape: it never builds an object tree, so a
 * declared count cannot make it allocate (msgpack_unpack would allocate
 * count * sizeof(msgpack_object) up front; wr_wire.c pre-scans to bound
 * that, here there is nothing to bound). Every count is checked against its
 * limit and against the bytes left before use, every string against its
 * kind (id, address), integers must be unsigned and in range, and trailing
 * bytes are refused.
 */
#include "disc_int.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- sizes (mirror msgpack-c's packer, which picks the smallest form) ---- */

static size_t disc_codec_uint_size(uint64_t v)
{
    if (v < 128)
        return 1;
    if (v < 256)
        return 2;
    if (v < 65536)
        return 3;
    if (v <= UINT32_MAX)
        return 5;
    return 9;
}

static size_t disc_codec_str_size(size_t l)
{
    if (l < 32)
        return 1 + l;
    if (l < 256)
        return 2 + l;
    if (l < 65536)
        return 3 + l;
    return 5 + l;
}

static size_t disc_codec_array_size(size_t n)
{
    return n < 16 ? 1 : (n < 65536 ? 3 : 5);
}

/* Entries [from, to) share e[from].tunnel. */
static uint32_t disc_codec_group_end(const struct disc_tunset *t, uint32_t from)
{
    uint32_t to = from + 1;
    while (to < t->n && strcmp(t->e[to].tunnel, t->e[from].tunnel) == 0)
        to++;
    return to;
}

size_t disc__codec_tunset_size(const struct disc_tunset *t)
{
    uint32_t groups = 0;
    size_t sz = 0;
    for (uint32_t i = 0; t != NULL && i < t->n;) {
        uint32_t end = disc_codec_group_end(t, i);
        groups++;
        sz += 1 + disc_codec_str_size(strlen(t->e[i].tunnel)) + disc_codec_array_size(end - i);
        for (uint32_t j = i; j < end; j++)
            sz += 1 + disc_codec_str_size(strlen(t->e[j].agent)) +
                  disc_codec_uint_size(t->e[j].weight);
        i = end;
    }
    return disc_codec_array_size(groups) + sz;
}

static size_t disc_codec_msg_size(const struct disc_msg *m)
{
    switch (m->type) {
    case DISC_MSG_PING:
        return 1 + 1 + disc_codec_uint_size(m->seq) + disc_codec_str_size(strlen(m->target));
    case DISC_MSG_ACK:
    case DISC_MSG_NACK:
        return 1 + 1 + disc_codec_uint_size(m->seq);
    case DISC_MSG_PING_REQ:
        return 1 + 1 + disc_codec_uint_size(m->seq) + disc_codec_str_size(strlen(m->target)) +
               disc_codec_str_size(strlen(m->target_addr));
    default:
        return 1; /* nil */
    }
}

size_t disc__codec_packet_base_size(const struct disc_msg *m)
{
    /* [msg, [updates]]: the update array header is counted at its largest
     * for DISC_MAX_PIGGY (3 bytes), so this is an upper bound. */
    return 1 + disc_codec_msg_size(m) + 3;
}

static size_t disc_codec_meta_size(const struct disc_update *u)
{
    size_t sz = disc_codec_uint_size((uint64_t)u->role) + 1;
    for (int k = 0; k < DISC_ADDR__COUNT; k++)
        sz += disc_codec_str_size(strlen(u->addr[k]));
    return sz + disc_codec_uint_size(u->tver) + disc__codec_tunset_size(u->tunnels);
}

size_t disc__codec_update_size(const struct disc_update *u)
{
    size_t sz = 1 + 1 + disc_codec_str_size(strlen(u->node)) + disc_codec_uint_size(u->inc);
    switch (u->kind) {
    case DISC_UPD_ALIVE:
        return sz + disc_codec_meta_size(u);
    case DISC_UPD_SUSPECT:
    case DISC_UPD_DEAD:
        return sz + disc_codec_str_size(strlen(u->from));
    default:
        return sz;
    }
}

/* ---- encoding ---- */

struct disc_codec_out {
    struct wr_buf *buf;
    int err;
};

static int on_disc_pack_write(void *data, const char *p, size_t len)
{
    struct disc_codec_out *o = data;
    if (o->err == 0)
        o->err = wr_buf_append(o->buf, p, len);
    return o->err == 0 ? 0 : -1;
}

static void disc_codec_put_str(msgpack_packer *pk, const char *s)
{
    size_t l = strlen(s);
    msgpack_pack_str(pk, l);
    msgpack_pack_str_body(pk, s, l);
}

static void disc_codec_put_tunset(msgpack_packer *pk, const struct disc_tunset *t)
{
    uint32_t groups = 0;
    for (uint32_t i = 0; t != NULL && i < t->n; i = disc_codec_group_end(t, i))
        groups++;
    msgpack_pack_array(pk, groups);
    for (uint32_t i = 0; t != NULL && i < t->n;) {
        uint32_t end = disc_codec_group_end(t, i);
        msgpack_pack_array(pk, 2);
        disc_codec_put_str(pk, t->e[i].tunnel);
        msgpack_pack_array(pk, end - i);
        for (uint32_t j = i; j < end; j++) {
            msgpack_pack_array(pk, 2);
            disc_codec_put_str(pk, t->e[j].agent);
            msgpack_pack_uint8(pk, t->e[j].weight);
        }
        i = end;
    }
}

static void disc_codec_put_meta(msgpack_packer *pk, const struct disc_update *u)
{
    msgpack_pack_uint32(pk, (uint32_t)u->role);
    msgpack_pack_array(pk, DISC_ADDR__COUNT);
    for (int k = 0; k < DISC_ADDR__COUNT; k++)
        disc_codec_put_str(pk, u->addr[k]);
    msgpack_pack_uint64(pk, u->tver);
    disc_codec_put_tunset(pk, u->tunnels);
}

static void disc_codec_put_update(msgpack_packer *pk, const struct disc_update *u)
{
    static const uint32_t n[DISC_UPD__COUNT] = {0, 7, 4, 4, 3};
    msgpack_pack_array(pk, n[u->kind]);
    msgpack_pack_uint32(pk, (uint32_t)u->kind);
    disc_codec_put_str(pk, u->node);
    msgpack_pack_uint64(pk, u->inc);
    if (u->kind == DISC_UPD_ALIVE)
        disc_codec_put_meta(pk, u);
    else if (u->kind == DISC_UPD_SUSPECT || u->kind == DISC_UPD_DEAD)
        disc_codec_put_str(pk, u->from);
}

static void disc_codec_put_msg(msgpack_packer *pk, const struct disc_msg *m)
{
    switch (m->type) {
    case DISC_MSG_PING:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        disc_codec_put_str(pk, m->target);
        break;
    case DISC_MSG_ACK:
    case DISC_MSG_NACK:
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint32(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        break;
    case DISC_MSG_PING_REQ:
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint32(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        disc_codec_put_str(pk, m->target);
        disc_codec_put_str(pk, m->target_addr);
        break;
    default:
        msgpack_pack_nil(pk);
        break;
    }
}

static bool disc_codec_update_is_encodable(const struct disc_update *u)
{
    return u->kind >= DISC_UPD_ALIVE && u->kind < DISC_UPD__COUNT &&
           (unsigned)u->role < DISC_ROLE__COUNT;
}

int disc__codec_packet_encode(const struct disc_packet *p, struct wr_buf *out)
{
    struct disc_codec_out o = {out, 0};
    msgpack_packer pk;
    size_t start = out->len;

    if (p->n_updates > DISC_MAX_PIGGY || (unsigned)p->msg.type >= DISC_MSG__COUNT)
        return WR_EUSAGE;
    for (uint32_t i = 0; i < p->n_updates; i++)
        if (!disc_codec_update_is_encodable(&p->upd[i]))
            return WR_EUSAGE;
    msgpack_packer_init(&pk, &o, on_disc_pack_write);
    msgpack_pack_array(&pk, 2);
    disc_codec_put_msg(&pk, &p->msg);
    msgpack_pack_array(&pk, p->n_updates);
    for (uint32_t i = 0; i < p->n_updates; i++)
        disc_codec_put_update(&pk, &p->upd[i]);
    if (o.err != 0)
        out->len = start;
    return o.err;
}

int disc__codec_state_encode(const struct disc_state *st, struct wr_buf *out)
{
    struct disc_codec_out o = {out, 0};
    msgpack_packer pk;
    size_t start = out->len;

    for (uint32_t i = 0; i < st->n; i++)
        if (!disc_codec_update_is_encodable(&st->rec[i]))
            return WR_EUSAGE;
    msgpack_packer_init(&pk, &o, on_disc_pack_write);
    msgpack_pack_array(&pk, 2);
    if (st->join)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_array(&pk, st->n);
    for (uint32_t i = 0; i < st->n && o.err == 0; i++) {
        const struct disc_update *u = &st->rec[i];
        /* A record is every field of every kind: [kind node inc from meta...]. */
        msgpack_pack_array(&pk, 8);
        msgpack_pack_uint32(&pk, (uint32_t)u->kind);
        disc_codec_put_str(&pk, u->node);
        msgpack_pack_uint64(&pk, u->inc);
        disc_codec_put_str(&pk, u->from);
        disc_codec_put_meta(&pk, u);
    }
    if (o.err == 0 && out->len - start > DISC_PUSHPULL_MAX)
        o.err = WR_ETOOBIG;
    if (o.err != 0)
        out->len = start;
    return o.err;
}

/* ---- decoding: a cursor over one fixed grammar ---- */

struct disc_cur {
    const uint8_t *p;
    size_t len, pos;
    const char *why; /* first failure */
};

static bool disc_cur_fail(struct disc_cur *c, const char *why)
{
    if (c->why == NULL)
        c->why = why;
    return false;
}

static uint64_t disc_cur_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static bool disc_cur_take(struct disc_cur *c, size_t n, const uint8_t **out)
{
    if (c->len - c->pos < n)
        return disc_cur_fail(c, "truncated");
    *out = c->p + c->pos;
    c->pos += n;
    return true;
}

static bool disc_cur_byte(struct disc_cur *c, uint8_t *b)
{
    const uint8_t *p;
    if (!disc_cur_take(c, 1, &p))
        return false;
    *b = *p;
    return true;
}

/* An array of exactly <want> elements, or (want == SIZE_MAX) at most <max>
 * elements, each of which needs at least one byte. */
static bool disc_cur_array(struct disc_cur *c, size_t want, size_t max, size_t *n)
{
    uint8_t b;
    const uint8_t *p;
    uint64_t v;
    if (!disc_cur_byte(c, &b))
        return false;
    if (b >= 0x90 && b <= 0x9f) {
        v = b & 0x0f;
    } else if (b == 0xdc || b == 0xdd) {
        size_t lb = b == 0xdc ? 2 : 4;
        if (!disc_cur_take(c, lb, &p))
            return false;
        v = disc_cur_be(p, lb);
    } else {
        return disc_cur_fail(c, "expected an array");
    }
    if (want != SIZE_MAX && v != want)
        return disc_cur_fail(c, "wrong element count");
    if (want == SIZE_MAX && v > max)
        return disc_cur_fail(c, "too many elements");
    if (v > c->len - c->pos)
        return disc_cur_fail(c, "truncated");
    *n = (size_t)v;
    return true;
}

static bool disc_cur_uint(struct disc_cur *c, uint64_t max, uint64_t *out)
{
    uint8_t b;
    const uint8_t *p;
    uint64_t v;
    if (!disc_cur_byte(c, &b))
        return false;
    if (b <= 0x7f) {
        v = b;
    } else if (b >= 0xcc && b <= 0xcf) {
        size_t n = (size_t)1 << (b - 0xcc);
        if (!disc_cur_take(c, n, &p))
            return false;
        v = disc_cur_be(p, n);
    } else {
        return disc_cur_fail(c, "expected an unsigned integer");
    }
    if (v > max)
        return disc_cur_fail(c, "integer out of range");
    *out = v;
    return true;
}

static bool disc_cur_str(struct disc_cur *c, size_t max, const char **s, size_t *len)
{
    uint8_t b;
    const uint8_t *p;
    uint64_t n;
    if (!disc_cur_byte(c, &b))
        return false;
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        size_t lb = (size_t)1 << (b - 0xd9);
        if (!disc_cur_take(c, lb, &p))
            return false;
        n = disc_cur_be(p, lb);
    } else {
        return disc_cur_fail(c, "expected a string");
    }
    if (n > max)
        return disc_cur_fail(c, "string too long");
    if (!disc_cur_take(c, (size_t)n, &p))
        return false;
    *s = (const char *)p;
    *len = (size_t)n;
    return true;
}

/* An id (wr_id_is_valid), or "" when <empty_ok>, into char[WR_ID_MAX + 1]. */
static bool disc_cur_id(struct disc_cur *c, char *dst, bool empty_ok)
{
    const char *s;
    size_t n;
    if (!disc_cur_str(c, WR_ID_MAX, &s, &n))
        return false;
    if (!(n == 0 && empty_ok) && !wr_id_is_valid(s, n))
        return disc_cur_fail(c, "invalid id");
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool disc_cur_addr(struct disc_cur *c, char *dst)
{
    const char *s;
    size_t n;
    if (!disc_cur_str(c, DISC_ADDR_MAX - 1, &s, &n))
        return false;
    if (!disc__addr_is_valid(s, n))
        return disc_cur_fail(c, "invalid address");
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool disc_cur_tunset(struct disc_cur *c, struct disc_tunset **out)
{
    struct disc_tunnel_entry tmp[DISC_MAX_TUNNEL_ENTRIES];
    size_t groups, total = 0;
    *out = NULL;
    if (!disc_cur_array(c, SIZE_MAX, DISC_MAX_TUNNEL_ENTRIES, &groups))
        return false;
    char prev[WR_ID_MAX + 1] = "";
    for (size_t g = 0; g < groups; g++) {
        size_t two, n;
        char tunnel[WR_ID_MAX + 1];
        if (!disc_cur_array(c, 2, 0, &two) || !disc_cur_id(c, tunnel, false) ||
            !disc_cur_array(c, SIZE_MAX, DISC_MAX_TUNNEL_ENTRIES - total, &n))
            return false;
        /* One group per tunnel, in order: the encoder's only form. */
        if (g > 0 && strcmp(prev, tunnel) >= 0)
            return disc_cur_fail(c, "tunnel groups not sorted");
        memcpy(prev, tunnel, sizeof(prev));
        if (n == 0)
            return disc_cur_fail(c, "tunnel without agents");
        for (size_t j = 0; j < n; j++) {
            struct disc_tunnel_entry *e = &tmp[total++];
            uint64_t w;
            memset(e, 0, sizeof(*e));
            memcpy(e->tunnel, tunnel, sizeof(e->tunnel));
            if (!disc_cur_array(c, 2, 0, &two) || !disc_cur_id(c, e->agent, false) ||
                !disc_cur_uint(c, 255, &w))
                return false;
            if (w == 0)
                return disc_cur_fail(c, "zero weight");
            e->weight = (uint8_t)w;
        }
    }
    if (total == 0)
        return true;
    struct disc_tunset *t = disc__tunset_new((uint32_t)total);
    if (t == NULL)
        return disc_cur_fail(c, "out of memory");
    memcpy(t->e, tmp, total * sizeof(tmp[0]));
    /* One canonical form: sorted, no duplicates, within the size bound. */
    if (!disc__tunset_is_valid(t)) {
        disc__tunset_unref(t);
        return disc_cur_fail(c, "tunnel set not canonical or too large");
    }
    *out = t;
    return true;
}

static bool disc_cur_meta(struct disc_cur *c, struct disc_update *u)
{
    uint64_t role, tver;
    size_t n;
    if (!disc_cur_uint(c, DISC_ROLE__COUNT - 1, &role) ||
        !disc_cur_array(c, DISC_ADDR__COUNT, 0, &n))
        return false;
    u->role = (enum disc_role)role;
    for (int k = 0; k < DISC_ADDR__COUNT; k++)
        if (!disc_cur_addr(c, u->addr[k]))
            return false;
    if (!disc_cur_uint(c, UINT64_MAX, &tver))
        return false;
    u->tver = tver;
    if (!disc_cur_tunset(c, &u->tunnels))
        return false;
    if (u->role == DISC_ROLE_OBSERVER && u->tunnels != NULL)
        return disc_cur_fail(c, "observer with tunnels");
    return true;
}

static bool disc_cur_update(struct disc_cur *c, struct disc_update *u)
{
    static const size_t want[DISC_UPD__COUNT] = {0, 7, 4, 4, 3};
    size_t n;
    uint64_t kind;
    /* Peek the kind to know the element count: [kind, ...]. */
    if (!disc_cur_array(c, SIZE_MAX, 7, &n) || n < 3 || !disc_cur_uint(c, UINT32_MAX, &kind))
        return disc_cur_fail(c, "bad update");
    if (kind < DISC_UPD_ALIVE || kind >= DISC_UPD__COUNT)
        return disc_cur_fail(c, "unknown update kind");
    if (n != want[kind])
        return disc_cur_fail(c, "wrong element count");
    u->kind = (enum disc_upd_kind)kind;
    if (!disc_cur_id(c, u->node, false) || !disc_cur_uint(c, UINT64_MAX, &u->inc))
        return false;
    if (u->kind == DISC_UPD_ALIVE)
        return disc_cur_meta(c, u);
    if (u->kind == DISC_UPD_SUSPECT || u->kind == DISC_UPD_DEAD)
        return disc_cur_id(c, u->from, false);
    return true;
}

static bool disc_cur_msg(struct disc_cur *c, struct disc_msg *m)
{
    size_t n;
    uint64_t type, seq;
    if (c->pos < c->len && c->p[c->pos] == 0xc0) {
        c->pos++;
        m->type = DISC_MSG_NONE;
        return true;
    }
    if (!disc_cur_array(c, SIZE_MAX, 4, &n) || n < 2 || !disc_cur_uint(c, UINT32_MAX, &type) ||
        !disc_cur_uint(c, UINT32_MAX, &seq))
        return disc_cur_fail(c, "bad message");
    m->seq = (uint32_t)seq;
    switch (type) {
    case DISC_MSG_PING:
        m->type = DISC_MSG_PING;
        return n == 3 ? disc_cur_id(c, m->target, true) : disc_cur_fail(c, "ping: count");
    case DISC_MSG_ACK:
    case DISC_MSG_NACK:
        m->type = (enum disc_msg_type)type;
        return n == 2 ? true : disc_cur_fail(c, "ack: count");
    case DISC_MSG_PING_REQ:
        m->type = DISC_MSG_PING_REQ;
        if (n != 4)
            return disc_cur_fail(c, "ping-req: count");
        return disc_cur_id(c, m->target, false) && disc_cur_addr(c, m->target_addr);
    default:
        return disc_cur_fail(c, "unknown message type");
    }
}

int disc__codec_packet_decode(struct wr_slice in, struct disc_packet *p, const char **why)
{
    struct disc_cur c = {in.ptr, in.len, 0, NULL};
    size_t two, n;
    memset(p, 0, sizeof(*p));
    if (in.len > DISC_PACKET_LIMIT) {
        c.why = "packet too large";
        goto fail;
    }
    if (!disc_cur_array(&c, 2, 0, &two) || !disc_cur_msg(&c, &p->msg) ||
        !disc_cur_array(&c, SIZE_MAX, DISC_MAX_PIGGY, &n))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        p->n_updates++;
        if (!disc_cur_update(&c, &p->upd[i]))
            goto fail;
    }
    if (c.pos != c.len) {
        c.why = "trailing bytes";
        goto fail;
    }
    return 0;

fail:
    disc__packet_clear(p);
    if (why != NULL)
        *why = c.why ? c.why : "malformed";
    return WR_EPROTO;
}

int disc__codec_state_decode(struct wr_slice in, struct disc_state *st, const char **why)
{
    struct disc_cur c = {in.ptr, in.len, 0, NULL};
    size_t two, n, eight;
    uint8_t b;
    memset(st, 0, sizeof(*st));
    if (in.len > DISC_PUSHPULL_MAX) {
        c.why = "state too large";
        goto fail;
    }
    if (!disc_cur_array(&c, 2, 0, &two) || !disc_cur_byte(&c, &b))
        goto fail;
    if (b != 0xc2 && b != 0xc3) {
        c.why = "expected a boolean";
        goto fail;
    }
    st->join = b == 0xc3;
    if (!disc_cur_array(&c, SIZE_MAX, DISC_MAX_MEMBERS_LIMIT, &n))
        goto fail;
    st->rec = calloc(n ? n : 1, sizeof(st->rec[0]));
    if (st->rec == NULL) {
        c.why = "out of memory";
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct disc_update *u = &st->rec[st->n++];
        uint64_t kind;
        if (!disc_cur_array(&c, 8, 0, &eight) || !disc_cur_uint(&c, UINT32_MAX, &kind))
            goto fail;
        if (kind < DISC_UPD_ALIVE || kind >= DISC_UPD__COUNT) {
            c.why = "unknown record kind";
            goto fail;
        }
        u->kind = (enum disc_upd_kind)kind;
        bool from_needed = u->kind == DISC_UPD_SUSPECT || u->kind == DISC_UPD_DEAD;
        if (!disc_cur_id(&c, u->node, false) || !disc_cur_uint(&c, UINT64_MAX, &u->inc) ||
            !disc_cur_id(&c, u->from, !from_needed) || !disc_cur_meta(&c, u))
            goto fail;
    }
    if (c.pos != c.len) {
        c.why = "trailing bytes";
        goto fail;
    }
    return 0;

fail:
    disc__state_clear(st);
    if (why != NULL)
        *why = c.why ? c.why : "malformed";
    return c.why != NULL && strcmp(c.why, "out of memory") == 0 ? WR_ENOMEM : WR_EPROTO;
}
