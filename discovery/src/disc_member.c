/*
 * disc_member.c: the value types around members: tunnel sets (immutable,
 * shared by reference), updates and packets as containers, the member
 * accessors of disc.h, names of states and roles, and the configuration
 * defaults. No protocol decisions live here (disc_swim.c makes them).
 */
#include "disc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- logging ---- */

void disc__log(const struct disc_config *cfg, enum wr_log_level lvl, const char *ev,
               const char *fmt, ...)
{
    char kv[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(kv, sizeof(kv), fmt, ap);
    va_end(ap);
    if (n < 0)
        kv[0] = '\0';
    if (cfg != NULL && cfg->log_cb != NULL)
        cfg->log_cb(cfg->log_arg, lvl, ev, kv);
    else
        wr_log_emit(lvl, "disc", ev, "%s", kv);
}

/* ---- configuration ---- */

static void disc_config_default_u32(uint32_t *v, uint32_t def)
{
    if (*v == 0)
        *v = def;
}

void disc_config_defaults(struct disc_config *c)
{
    disc_config_default_u32(&c->probe_interval_ms, 500);
    disc_config_default_u32(&c->probe_timeout_ms, 200);
    disc_config_default_u32(&c->indirect_checks, 3);
    disc_config_default_u32(&c->gossip_interval_ms, 50);
    disc_config_default_u32(&c->gossip_nodes, 3);
    disc_config_default_u32(&c->suspicion_mult, 3);
    disc_config_default_u32(&c->suspicion_max_mult, 4);
    disc_config_default_u32(&c->retransmit_mult, 6);
    disc_config_default_u32(&c->gossip_to_dead_ms, 30000);
    disc_config_default_u32(&c->reconnect_interval_ms, 5000);
    disc_config_default_u32(&c->reap_ms, 60000);
    disc_config_default_u32(&c->pushpull_interval_ms, 30000);
    disc_config_default_u32(&c->awareness_max, 8);
    disc_config_default_u32(&c->max_members, 512);
    disc_config_default_u32(&c->max_broadcasts, 256);
    disc_config_default_u32(&c->max_relays, 64);
    disc_config_default_u32(&c->packet_max, 1400);
    /* A probe must be able to time out and then try the indirect path
     * within its interval. */
    if (c->probe_timeout_ms >= c->probe_interval_ms)
        c->probe_timeout_ms = c->probe_interval_ms / 2 ? c->probe_interval_ms / 2 : 1;
    if (c->max_members > DISC_MAX_MEMBERS_LIMIT)
        c->max_members = DISC_MAX_MEMBERS_LIMIT;
    if (c->packet_max < DISC_PACKET_MIN)
        c->packet_max = DISC_PACKET_MIN;
    if (c->packet_max > DISC_PACKET_LIMIT)
        c->packet_max = DISC_PACKET_LIMIT;
    if (c->suspicion_max_mult < 1)
        c->suspicion_max_mult = 1;
    if (c->awareness_max > 64)
        c->awareness_max = 64;
}

/* ---- names ---- */

const char *disc_member_state_str(enum disc_member_state s)
{
    static const char *const names[DISC_MEMBER_ST__COUNT] = {"ALIVE", "SUSPECT", "DEAD", "LEFT"};
    return (unsigned)s < DISC_MEMBER_ST__COUNT ? names[s] : "?";
}

const char *disc_role_str(enum disc_role r)
{
    static const char *const names[DISC_ROLE__COUNT] = {"node", "observer"};
    return (unsigned)r < DISC_ROLE__COUNT ? names[r] : "?";
}

bool disc__addr_is_valid(const char *s, size_t len)
{
    if (len >= DISC_ADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

/* ---- tunnel sets ---- */

struct disc_tunset *disc__tunset_new(uint32_t n)
{
    if (n > DISC_MAX_TUNNEL_ENTRIES)
        return NULL;
    struct disc_tunset *t = calloc(1, sizeof(*t) + (size_t)n * sizeof(t->e[0]));
    if (t == NULL)
        return NULL;
    t->refs = 1;
    t->n = n;
    return t;
}

struct disc_tunset *disc__tunset_ref(struct disc_tunset *t)
{
    if (t != NULL)
        t->refs++;
    return t;
}

void disc__tunset_unref(struct disc_tunset *t)
{
    if (t == NULL)
        return;
    WR_ASSERT(t->refs > 0);
    if (--t->refs == 0)
        free(t);
}

bool disc__tunset_eq(const struct disc_tunset *a, const struct disc_tunset *b)
{
    uint32_t na = a ? a->n : 0, nb = b ? b->n : 0;
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++) {
        const struct disc_tunnel_entry *x = &a->e[i], *y = &b->e[i];
        if (strcmp(x->tunnel, y->tunnel) != 0 || strcmp(x->agent, y->agent) != 0 ||
            x->weight != y->weight)
            return false;
    }
    return true;
}

static int disc_tunent_cmp(const struct disc_tunnel_entry *a, const struct disc_tunnel_entry *b)
{
    int c = strcmp(a->tunnel, b->tunnel);
    return c != 0 ? c : strcmp(a->agent, b->agent);
}

static int on_tunent_qsort(const void *a, const void *b)
{
    return disc_tunent_cmp(a, b);
}

static bool disc_tunent_is_valid(const struct disc_tunnel_entry *e)
{
    size_t tl = strnlen(e->tunnel, sizeof(e->tunnel)), al = strnlen(e->agent, sizeof(e->agent));
    return tl < sizeof(e->tunnel) && al < sizeof(e->agent) && wr_id_is_valid(e->tunnel, tl) &&
           wr_id_is_valid(e->agent, al) && e->weight >= 1;
}

bool disc__tunset_is_valid(const struct disc_tunset *t)
{
    if (t == NULL)
        return true;
    if (t->n > DISC_MAX_TUNNEL_ENTRIES)
        return false;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!disc_tunent_is_valid(&t->e[i]))
            return false;
        if (i > 0 && disc_tunent_cmp(&t->e[i - 1], &t->e[i]) >= 0)
            return false;
    }
    return disc__codec_tunset_size(t) <= DISC_TUNSET_MAX_BYTES;
}

int disc__tunset_normalize(struct disc_tunset *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (!disc_tunent_is_valid(&t->e[i]))
            return WR_EUSAGE;
    qsort(t->e, t->n, sizeof(t->e[0]), on_tunent_qsort);
    for (uint32_t i = 1; i < t->n; i++)
        if (disc_tunent_cmp(&t->e[i - 1], &t->e[i]) == 0)
            return WR_EUSAGE;
    return disc__codec_tunset_size(t) <= DISC_TUNSET_MAX_BYTES ? 0 : WR_ETOOBIG;
}

/* ---- updates, packets, states ---- */

void disc__update_clear(struct disc_update *u)
{
    disc__tunset_unref(u->tunnels);
    memset(u, 0, sizeof(*u));
}

void disc__update_copy(struct disc_update *dst, const struct disc_update *src)
{
    memcpy(dst, src, sizeof(*dst));
    disc__tunset_ref(dst->tunnels);
}

void disc__packet_clear(struct disc_packet *p)
{
    for (uint32_t i = 0; i < p->n_updates && i < DISC_MAX_PIGGY; i++)
        disc__update_clear(&p->upd[i]);
    memset(&p->msg, 0, sizeof(p->msg));
    p->n_updates = 0;
}

void disc__state_clear(struct disc_state *st)
{
    for (uint32_t i = 0; i < st->n; i++)
        disc__update_clear(&st->rec[i]);
    WR_FREE(st->rec);
    st->n = 0;
    st->join = false;
}

/* ---- member accessors ---- */

const char *disc_member_id(const struct disc_member *m)
{
    return m->id;
}

enum disc_member_state disc_member_get_state(const struct disc_member *m)
{
    return m->state;
}

uint64_t disc_member_incarnation(const struct disc_member *m)
{
    return m->inc;
}

enum disc_role disc_member_role(const struct disc_member *m)
{
    return m->role;
}

const char *disc_member_addr(const struct disc_member *m, enum disc_addr_kind k)
{
    return (unsigned)k < DISC_ADDR__COUNT ? m->addr[k] : "";
}

uint64_t disc_member_tunnels_version(const struct disc_member *m)
{
    return m->tver;
}

size_t disc_member_tunnel_count(const struct disc_member *m)
{
    return m->tunnels ? m->tunnels->n : 0;
}

const struct disc_tunnel_entry *disc_member_tunnel_get(const struct disc_member *m, size_t i)
{
    return i < disc_member_tunnel_count(m) ? &m->tunnels->e[i] : NULL;
}

bool disc_member_is_self(const struct disc_member *m)
{
    return m->self;
}
