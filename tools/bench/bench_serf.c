/*
 * bench_serf.c: a minimal client of Serf's agent RPC (msgpack over TCP, the
 * protocol of "serf members"): the handshake and the "members" call, on one
 * blocking connection, so that "warren-bench gossip" can poll 64 agents every
 * few milliseconds without spawning a "serf members" process per poll. The
 * only file of the bench that includes msgpack.h. It starts no process.
 *
 * Each request is a header map {Command, Seq} followed, for some commands, by
 * a body map; each response is a header map {Seq, Error} followed, for calls
 * that return data, by a body map.
 */
#include "bench_gossip.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BENCH_SERF_MSG_MAX (8u << 20) /* members of 64 agents is a few KiB */

static bool bench_serf_str(const msgpack_object *o, const char **p, uint32_t *len)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *len = o->via.str.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *len = o->via.bin.size;
        return true;
    }
    return false;
}

/* The value under <key> in map <m>, or NULL. */
static const msgpack_object *bench_serf_get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        const char *p;
        uint32_t l;
        if (bench_serf_str(&kv->key, &p, &l) && l == kl && memcmp(p, key, kl) == 0)
            return &kv->val;
    }
    return NULL;
}

static void bench_serf_pack_str(msgpack_packer *pk, const char *s)
{
    size_t l = strlen(s);
    msgpack_pack_str(pk, l);
    msgpack_pack_str_body(pk, s, l);
}

/* Sends {Command: <cmd>, Seq: <seq>} and, when <version> > 0, the handshake
 * body {Version: <version>}. */
static int bench_serf_send(int fd, const char *cmd, uint64_t seq, int version)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    bench_serf_pack_str(&pk, "Command");
    bench_serf_pack_str(&pk, cmd);
    bench_serf_pack_str(&pk, "Seq");
    msgpack_pack_uint64(&pk, seq);
    if (version > 0) {
        msgpack_pack_map(&pk, 1);
        bench_serf_pack_str(&pk, "Version");
        msgpack_pack_int(&pk, version);
    }
    bool ok = bench_gnet_write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return ok ? 0 : -EPIPE;
}

/* The next complete object from <fd> into <res>, reading as needed. */
static int bench_serf_next(int fd, msgpack_unpacker *u, msgpack_unpacked *res)
{
    for (int i = 0; i < 1024; i++) {
        msgpack_unpack_return ret = msgpack_unpacker_next(u, res);
        if (ret == MSGPACK_UNPACK_SUCCESS)
            return 0;
        if (ret != MSGPACK_UNPACK_CONTINUE || msgpack_unpacker_message_size(u) > BENCH_SERF_MSG_MAX)
            return -EPROTO;
        if (!msgpack_unpacker_reserve_buffer(u, 65536))
            return -ENOMEM;
        ssize_t k = recv(fd, msgpack_unpacker_buffer(u), msgpack_unpacker_buffer_capacity(u), 0);
        if (k <= 0)
            return k == 0 ? -ECONNRESET : -errno;
        msgpack_unpacker_buffer_consumed(u, (size_t)k);
    }
    return -EPROTO;
}

/* Checks a response header: our <seq> and an empty Error. */
static int bench_serf_check_header(const msgpack_object *h, uint64_t seq)
{
    const msgpack_object *s = bench_serf_get(h, "Seq");
    const msgpack_object *e = bench_serf_get(h, "Error");
    const char *ep = NULL;
    uint32_t el = 0;
    if (s == NULL || s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 != seq ||
        (e != NULL && (!bench_serf_str(e, &ep, &el) || el != 0)))
        return -EPROTO;
    return 0;
}

static enum bench_gstate bench_serf_state(const char *s, uint32_t len)
{
    static const struct {
        const char *name;
        enum bench_gstate st;
    } map[] = {{"alive", BENCH_GS_ALIVE},
               {"leaving", BENCH_GS_LEAVING},
               {"left", BENCH_GS_LEFT},
               {"failed", BENCH_GS_DEAD}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].name) == len && memcmp(map[i].name, s, len) == 0)
            return map[i].st;
    return BENCH_GS_UNKNOWN;
}

static void bench_serf_fill(const msgpack_object *body, const char *prefix, uint32_t n,
                            struct bench_gview *v)
{
    const msgpack_object *ms = bench_serf_get(body, "Members");
    if (ms == NULL || ms->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < ms->via.array.size; i++) {
        const msgpack_object *m = &ms->via.array.ptr[i];
        const msgpack_object *name = bench_serf_get(m, "Name");
        const msgpack_object *status = bench_serf_get(m, "Status");
        const char *np, *sp;
        uint32_t nl, sl;
        int idx = -1;
        if (name != NULL && status != NULL && bench_serf_str(name, &np, &nl) &&
            bench_serf_str(status, &sp, &sl))
            idx = bench_gnet_member_index(np, nl, prefix, n);
        if (idx < 0)
            v->foreign++;
        else
            v->st[idx] = (uint8_t)bench_serf_state(sp, sl);
    }
}

/* One call: sends <cmd>, reads the header and, when <v> is given, the body. */
static int bench_serf_call(int fd, uint64_t *seq, const char *cmd, int version, const char *prefix,
                           uint32_t n, struct bench_gview *v)
{
    uint64_t s = (*seq)++;
    int err = bench_serf_send(fd, cmd, s, version);
    if (err != 0)
        return err;
    msgpack_unpacker u;
    if (!msgpack_unpacker_init(&u, MSGPACK_UNPACKER_INIT_BUFFER_SIZE))
        return -ENOMEM;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    err = bench_serf_next(fd, &u, &res);
    if (err == 0)
        err = bench_serf_check_header(&res.data, s);
    if (err == 0 && v != NULL) {
        err = bench_serf_next(fd, &u, &res);
        if (err == 0 && bench_serf_get(&res.data, "Members") == NULL)
            err = -EPROTO;
        if (err == 0)
            bench_serf_fill(&res.data, prefix, n, v);
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&u);
    return err;
}

int bench_serf_dial(uint16_t port, uint32_t timeout_ms, uint64_t *seq)
{
    int fd = bench_gnet_dial(port, timeout_ms);
    if (fd < 0)
        return fd;
    *seq = 0;
    int err = bench_serf_call(fd, seq, "handshake", 1, NULL, 0, NULL);
    if (err != 0) {
        close(fd);
        return err;
    }
    return fd;
}

int bench_serf_members(int fd, uint64_t *seq, const char *prefix, uint32_t n, struct bench_gview *v)
{
    memset(v, 0, sizeof(*v));
    return bench_serf_call(fd, seq, "members", 0, prefix, n, v);
}
