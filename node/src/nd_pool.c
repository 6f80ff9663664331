/*
 * nd_pool.c: the tunnel registry (tunnel id -> pool of live agent
 * connections) and the weighted choice among a pool's members. No I/O: the
 * members are opaque to this file, so the choice is unit-tested alone.
 */
#include "nd_int.h"

#include <stdlib.h>
#include <string.h>

static uint32_t nd_registry_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

void nd__registry_init(struct nd_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

void nd__registry_cleanup(struct nd_registry *reg)
{
    for (size_t i = 0; i < ND_REGISTRY_BUCKETS; i++) {
        struct nd_pool *p = reg->buckets[i];
        while (p != NULL) {
            struct nd_pool *next = p->hnext;
            free(p);
            p = next;
        }
        reg->buckets[i] = NULL;
    }
    reg->n_pools = 0;
}

struct nd_pool *nd__registry_get(struct nd_registry *reg, const char *tunnel, bool create)
{
    uint32_t b = nd_registry_hash(tunnel) % ND_REGISTRY_BUCKETS;
    for (struct nd_pool *p = reg->buckets[b]; p != NULL; p = p->hnext)
        if (strcmp(p->tunnel, tunnel) == 0)
            return p;
    if (!create)
        return NULL;
    struct nd_pool *p = wr_xcalloc(1, sizeof(*p));
    size_t len = strlen(tunnel);
    WR_ASSERT(len <= WR_ID_MAX);
    memcpy(p->tunnel, tunnel, len + 1);
    nd_list_init(&p->members);
    p->hnext = reg->buckets[b];
    reg->buckets[b] = p;
    reg->n_pools++;
    return p;
}

void nd__pool_add(struct nd_registry *reg, const char *tunnel, struct nd_pool_member *m)
{
    struct nd_pool *p = nd__registry_get(reg, tunnel, true);
    WR_ASSERT(m->weight >= 1);
    nd_list_insert_tail(&p->members, &m->link);
    p->n_members++;
    if (m->weight == ND_WEIGHT_EXCLUSIVE)
        p->n_exclusive++;
    else
        p->total_weight += m->weight;
}

void nd__pool_remove(struct nd_registry *reg, const char *tunnel, struct nd_pool_member *m)
{
    uint32_t b = nd_registry_hash(tunnel) % ND_REGISTRY_BUCKETS;
    struct nd_pool **pp = &reg->buckets[b];
    while (*pp != NULL && strcmp((*pp)->tunnel, tunnel) != 0)
        pp = &(*pp)->hnext;
    struct nd_pool *p = *pp;
    WR_ASSERT(p != NULL);
    nd_list_remove(&m->link);
    p->n_members--;
    if (m->weight == ND_WEIGHT_EXCLUSIVE)
        p->n_exclusive--;
    else
        p->total_weight -= m->weight;
    if (p->n_members == 0) {
        *pp = p->hnext;
        reg->n_pools--;
        free(p);
    }
}

struct nd_pool_member *nd__pool_pick(const struct nd_pool *pool, uint64_t rnd)
{
    if (pool == NULL || pool->n_members == 0)
        return NULL;
    struct nd_list *pos;
    if (pool->n_exclusive > 0) {
        /* Weight 255 intercepts: only those members get traffic, evenly. */
        uint64_t k = rnd % pool->n_exclusive;
        for (pos = pool->members.next; pos != &pool->members; pos = pos->next) {
            struct nd_pool_member *m = wr_container_of(pos, struct nd_pool_member, link);
            if (m->weight == ND_WEIGHT_EXCLUSIVE && k-- == 0)
                return m;
        }
        return NULL; /* unreachable while the counts are right */
    }
    uint64_t r = rnd % pool->total_weight;
    for (pos = pool->members.next; pos != &pool->members; pos = pos->next) {
        struct nd_pool_member *m = wr_container_of(pos, struct nd_pool_member, link);
        if (r < m->weight)
            return m;
        r -= m->weight;
    }
    return NULL;
}
