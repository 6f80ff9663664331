/*
 * lb_route.c: warren-lb's routing table (node rule, exact names, "*.suffix"
 * wildcards, default) and the bounded LRU cache of lookups in front of it,
 * with TTLs for positive and negative entries. It owns its rules, nodes and
 * cache entries. It does no I/O and reads no clock: time comes in as an
 * argument. It knows nothing of backends: a route names a set or a node.
 */
#include "lb_route.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wr.h"

#include "lb_int.h"

_Static_assert(LB_ROUTE_SET_MAX == WR_ID_MAX, "a route's target is a set name or a node id");

/* ---- a chained hash map of NUL-terminated keys, keyed with SipHash ---- */

/*
 * Names come from peers (SNI, Host), and every name looked up lands in the
 * cache: a keyed hash keeps an attacker from choosing names that share a
 * bucket. The map does not own its entries; they are embedded in their
 * owner (struct lb_rule, lb_node, lb_cache_ent), whose key they point at.
 */
struct lb_hent {
    struct lb_hent *next;
    uint64_t hash;
    const char *key;
    size_t klen;
};

struct lb_hmap {
    struct lb_hent **b; /* nb buckets, a power of two; NULL while empty */
    size_t nb;
    size_t n;
};

#define LB_HMAP_MIN_BUCKETS 16

static uint64_t lb_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void lb_sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = lb_rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = lb_rotl(v[0], 32);
    v[2] += v[3];
    v[3] = lb_rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = lb_rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = lb_rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = lb_rotl(v[2], 32);
}

/* SipHash-2-4 (Aumasson and Bernstein), little-endian word loads. */
static uint64_t lb_siphash(const uint64_t k[2], const char *in, size_t len)
{
    uint64_t v[4] = {
        0x736f6d6570736575ull ^ k[0],
        0x646f72616e646f6dull ^ k[1],
        0x6c7967656e657261ull ^ k[0],
        0x7465646279746573ull ^ k[1],
    };
    const unsigned char *p = (const unsigned char *)in;
    size_t left = len;
    for (; left >= 8; p += 8, left -= 8) {
        uint64_t m = 0;
        for (int i = 7; i >= 0; i--)
            m = m << 8 | p[i];
        v[3] ^= m;
        lb_sipround(v);
        lb_sipround(v);
        v[0] ^= m;
    }
    uint64_t m = (uint64_t)len << 56;
    for (size_t i = 0; i < left; i++)
        m |= (uint64_t)p[i] << (8 * i);
    v[3] ^= m;
    lb_sipround(v);
    lb_sipround(v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        lb_sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static struct lb_hent *lb_hmap_find(const struct lb_hmap *m, const char *key, size_t klen,
                                    uint64_t hash)
{
    if (m->nb == 0)
        return NULL;
    for (struct lb_hent *e = m->b[hash & (m->nb - 1)]; e != NULL; e = e->next) {
        if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
    return NULL;
}

/* Doubles the buckets past one entry per bucket. A failed allocation only
 * leaves the chains longer, so inserting never fails. */
static void lb_hmap_grow(struct lb_hmap *m)
{
    size_t nb = m->nb == 0 ? LB_HMAP_MIN_BUCKETS : m->nb * 2;
    struct lb_hent **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        struct lb_hent *e = m->b[i];
        while (e != NULL) {
            struct lb_hent *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

/* <e>'s key must not be in <m> yet. false only when <m> has no buckets
 * and none could be allocated. */
static bool lb_hmap_insert(struct lb_hmap *m, struct lb_hent *e)
{
    if (m->n >= m->nb)
        lb_hmap_grow(m);
    if (m->nb == 0)
        return false;
    struct lb_hent **head = &m->b[e->hash & (m->nb - 1)];
    e->next = *head;
    *head = e;
    m->n++;
    return true;
}

static void lb_hmap_remove(struct lb_hmap *m, struct lb_hent *e)
{
    for (struct lb_hent **pp = &m->b[e->hash & (m->nb - 1)]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            m->n--;
            return;
        }
    }
    WR_ASSERT(!"lb_hmap_remove: entry not in the map");
}

/* Calls <free_fn> on every entry's owner (through the entry), then drops
 * the buckets. */
static void lb_hmap_clear(struct lb_hmap *m, void (*free_fn)(struct lb_hent *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct lb_hent *e = m->b[i];
        while (e != NULL) {
            struct lb_hent *next = e->next;
            free_fn(e);
            e = next;
        }
    }
    WR_FREE(m->b);
    m->nb = 0;
    m->n = 0;
}

/* ---- the table ---- */

struct lb_rule { /* an exact name, or the suffix of a wildcard */
    struct lb_hent h;
    char set[LB_ROUTE_SET_MAX + 1];
    char key[];
};

struct lb_node {
    struct lb_hent h;
    char id[WR_ID_MAX + 1];  /* as given */
    char key[WR_ID_MAX + 1]; /* lower-cased */
};

struct lb_cache_ent {
    struct lb_hent h;
    struct lb_cache_ent *newer, *older; /* the LRU list */
    uint64_t expires_ms;
    struct lb_route route; /* kind LB_ROUTE_NONE for a negative entry */
    char key[];
};

struct lb_route_table {
    uint64_t hash_key[2];
    char cluster[WR_ID_MAX + 1]; /* lower-cased; "" for no node rule */
    size_t cluster_len;
    struct lb_hmap exact, wild, nodes;
    struct lb_route dflt; /* kind LB_ROUTE_NONE when there is no "*" */
    size_t rules;
    /* The cache: cache.n <= cache_max; newest..oldest in recency order. */
    struct lb_hmap cache;
    struct lb_cache_ent *newest, *oldest;
    size_t cache_max;
    uint32_t ttl_ms, neg_ttl_ms;
    struct lb_route_stats stats;
};

static void lb_rule_free(struct lb_hent *e)
{
    free(wr_container_of(e, struct lb_rule, h));
}

static void lb_node_free(struct lb_hent *e)
{
    free(wr_container_of(e, struct lb_node, h));
}

static void lb_cache_ent_free(struct lb_hent *e)
{
    free(wr_container_of(e, struct lb_cache_ent, h));
}

static void lb_lower(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        dst[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    dst[len] = '\0';
}

static uint64_t lb_route_hash(const struct lb_route_table *t, const char *key, size_t len)
{
    return lb_siphash(t->hash_key, key, len);
}

struct lb_route_table *lb_route_table_new(const char *cluster, size_t cache_max, uint32_t ttl_ms,
                                          uint32_t neg_ttl_ms)
{
    size_t cluster_len = 0;
    if (cluster != NULL) {
        cluster_len = strnlen(cluster, WR_ID_MAX + 1);
        if (!wr_id_is_valid(cluster, cluster_len))
            return NULL;
    }
    struct lb_route_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    /* A short read leaves a weaker key, still seeded by the clock below. */
    if (getrandom(t->hash_key, sizeof(t->hash_key), GRND_NONBLOCK) != sizeof(t->hash_key)) {
        t->hash_key[0] ^= wr_rand64();
        t->hash_key[1] ^= wr_rand64();
    }
    if (cluster != NULL)
        lb_lower(t->cluster, cluster, cluster_len);
    t->cluster_len = cluster_len;
    t->cache_max = cache_max;
    t->ttl_ms = ttl_ms;
    t->neg_ttl_ms = neg_ttl_ms;
    return t;
}

static void lb_route_cache_flush(struct lb_route_table *t)
{
    lb_hmap_clear(&t->cache, lb_cache_ent_free);
    t->newest = NULL;
    t->oldest = NULL;
}

void lb_route_table_free(struct lb_route_table *t)
{
    if (t == NULL)
        return;
    lb_route_cache_flush(t);
    lb_hmap_clear(&t->exact, lb_rule_free);
    lb_hmap_clear(&t->wild, lb_rule_free);
    lb_hmap_clear(&t->nodes, lb_node_free);
    free(t);
}

int lb_route_add(struct lb_route_table *t, const char *pattern, const char *set)
{
    if (pattern == NULL || set == NULL)
        return WR_EUSAGE;
    size_t set_len = strnlen(set, LB_ROUTE_SET_MAX + 1);
    if (!wr_id_is_valid(set, set_len))
        return WR_EUSAGE;

    if (strcmp(pattern, "*") == 0) {
        if (t->dflt.kind != LB_ROUTE_NONE)
            return WR_EUSAGE;
        if (t->rules >= LB_ROUTE_RULES_MAX)
            return WR_ELIMIT;
        t->dflt.kind = LB_ROUTE_SET;
        memcpy(t->dflt.target, set, set_len + 1);
        t->rules++;
        lb_route_cache_flush(t);
        return 0;
    }

    /* "*.suffix" goes to the wildcards under "suffix"; anything else with a
     * '*' fails lb__name_normalize. */
    struct lb_hmap *m = &t->exact;
    const char *name = pattern;
    if (pattern[0] == '*' && pattern[1] == '.') {
        m = &t->wild;
        name = pattern + 2;
    }
    char key[LB__NAME_MAX + 1];
    size_t len = strnlen(name, LB__NAME_MAX + 1);
    if (!lb__name_normalize(name, len, key))
        return WR_EUSAGE;
    uint64_t hash = lb_route_hash(t, key, len);
    if (lb_hmap_find(m, key, len, hash) != NULL)
        return WR_EUSAGE;
    if (t->rules >= LB_ROUTE_RULES_MAX)
        return WR_ELIMIT;

    struct lb_rule *r = malloc(sizeof(*r) + len + 1);
    if (r == NULL)
        return WR_ENOMEM;
    memcpy(r->key, key, len + 1);
    memcpy(r->set, set, set_len + 1);
    r->h.hash = hash;
    r->h.key = r->key;
    r->h.klen = len;
    if (!lb_hmap_insert(m, &r->h)) {
        free(r);
        return WR_ENOMEM;
    }
    t->rules++;
    lb_route_cache_flush(t);
    return 0;
}

int lb_route_set_nodes(struct lb_route_table *t, const char *const *ids, size_t n)
{
    if (n > 0 && ids == NULL)
        return WR_EUSAGE;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL || !wr_id_is_valid(ids[i], strnlen(ids[i], WR_ID_MAX + 1)))
            return WR_EUSAGE;
    }
    /* Built aside, so that the old list stays on failure. */
    struct lb_hmap nodes = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        struct lb_node *nd = malloc(sizeof(*nd));
        if (nd == NULL)
            goto fail_nodes;
        memcpy(nd->id, ids[i], len + 1);
        lb_lower(nd->key, ids[i], len);
        nd->h.hash = lb_route_hash(t, nd->key, len);
        nd->h.key = nd->key;
        nd->h.klen = len;
        if (lb_hmap_find(&nodes, nd->key, len, nd->h.hash) != NULL) {
            free(nd);
            continue;
        }
        if (!lb_hmap_insert(&nodes, &nd->h)) {
            free(nd);
            goto fail_nodes;
        }
    }
    lb_hmap_clear(&t->nodes, lb_node_free);
    t->nodes = nodes;
    lb_route_cache_flush(t);
    return 0;
fail_nodes:
    lb_hmap_clear(&nodes, lb_node_free);
    return WR_ENOMEM;
}

static struct lb_route lb_route_make(enum lb_route_kind kind, const char *target)
{
    struct lb_route r = {.kind = kind};
    size_t len = strlen(target);
    memcpy(r.target, target, len + 1);
    return r;
}

/* The rules, in the order lb_route.h gives, for a lower-cased <key>. */
static struct lb_route lb_route_resolve(const struct lb_route_table *t, const char *key, size_t len)
{
    /* 1. "<node-id>.<cluster>". Ids may hold dots: the id is all before
     * the cluster. */
    if (t->cluster_len > 0 && len > t->cluster_len + 1) {
        size_t id_len = len - t->cluster_len - 1;
        if (key[id_len] == '.' && memcmp(key + id_len + 1, t->cluster, t->cluster_len) == 0) {
            struct lb_hent *e = lb_hmap_find(&t->nodes, key, id_len, lb_route_hash(t, key, id_len));
            if (e != NULL)
                return lb_route_make(LB_ROUTE_NODE, wr_container_of(e, struct lb_node, h)->id);
        }
    }
    /* 2. Exact names. */
    struct lb_hent *e = lb_hmap_find(&t->exact, key, len, lb_route_hash(t, key, len));
    if (e != NULL)
        return lb_route_make(LB_ROUTE_SET, wr_container_of(e, struct lb_rule, h)->set);
    /* 3. Wildcards: the suffix after each dot, left to right, so the
     * longest suffix is tried first. A dot at 0 would leave no label before. */
    if (t->wild.n > 0) {
        for (size_t i = 1; i + 1 < len; i++) {
            if (key[i] != '.')
                continue;
            const char *suffix = key + i + 1;
            size_t slen = len - i - 1;
            e = lb_hmap_find(&t->wild, suffix, slen, lb_route_hash(t, suffix, slen));
            if (e != NULL)
                return lb_route_make(LB_ROUTE_SET, wr_container_of(e, struct lb_rule, h)->set);
        }
    }
    /* 4. The default, or nothing. */
    return t->dflt;
}

static void lb_cache_unlink(struct lb_route_table *t, struct lb_cache_ent *c)
{
    if (c->newer != NULL)
        c->newer->older = c->older;
    else
        t->newest = c->older;
    if (c->older != NULL)
        c->older->newer = c->newer;
    else
        t->oldest = c->newer;
    c->newer = NULL;
    c->older = NULL;
}

static void lb_cache_push_newest(struct lb_route_table *t, struct lb_cache_ent *c)
{
    c->newer = NULL;
    c->older = t->newest;
    if (t->newest != NULL)
        t->newest->newer = c;
    t->newest = c;
    if (t->oldest == NULL)
        t->oldest = c;
}

static void lb_cache_drop(struct lb_route_table *t, struct lb_cache_ent *c)
{
    lb_cache_unlink(t, c);
    lb_hmap_remove(&t->cache, &c->h);
    free(c);
}

/* Caches <r> for <key>. Skipped, not an error, when caching that kind is
 * off or memory is short: the cache only saves work. */
static void lb_cache_put(struct lb_route_table *t, const char *key, size_t len, uint64_t hash,
                         struct lb_route r, uint64_t now_ms)
{
    uint32_t ttl = r.kind == LB_ROUTE_NONE ? t->neg_ttl_ms : t->ttl_ms;
    if (t->cache_max == 0 || ttl == 0)
        return;
    if (t->cache.n >= t->cache_max) {
        lb_cache_drop(t, t->oldest);
        t->stats.evictions++;
    }
    struct lb_cache_ent *c = malloc(sizeof(*c) + len + 1);
    if (c == NULL)
        return;
    memcpy(c->key, key, len + 1);
    c->h.hash = hash;
    c->h.key = c->key;
    c->h.klen = len;
    c->expires_ms = now_ms > UINT64_MAX - ttl ? UINT64_MAX : now_ms + ttl;
    c->route = r;
    if (!lb_hmap_insert(&t->cache, &c->h)) {
        free(c);
        return;
    }
    lb_cache_push_newest(t, c);
}

struct lb_route lb_route_lookup(struct lb_route_table *t, const char *name, uint64_t now_ms)
{
    size_t len = strnlen(name, LB_ROUTE_NAME_MAX + 1);
    if (len > LB_ROUTE_NAME_MAX) {
        t->stats.misses++;
        return (struct lb_route){.kind = LB_ROUTE_NONE};
    }
    char key[LB_ROUTE_NAME_MAX + 1];
    lb_lower(key, name, len);
    uint64_t hash = lb_route_hash(t, key, len);

    struct lb_hent *e = lb_hmap_find(&t->cache, key, len, hash);
    if (e != NULL) {
        struct lb_cache_ent *c = wr_container_of(e, struct lb_cache_ent, h);
        if (now_ms < c->expires_ms) {
            if (c->route.kind == LB_ROUTE_NONE)
                t->stats.negative_hits++;
            else
                t->stats.hits++;
            lb_cache_unlink(t, c);
            lb_cache_push_newest(t, c);
            return c->route;
        }
        lb_cache_drop(t, c);
    }
    t->stats.misses++;
    struct lb_route r = lb_route_resolve(t, key, len);
    lb_cache_put(t, key, len, hash, r, now_ms);
    return r;
}

void lb_route_get_stats(const struct lb_route_table *t, struct lb_route_stats *out)
{
    *out = t->stats;
    out->entries = t->cache.n;
}
