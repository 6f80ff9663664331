/*
 * ag_pool.c: the nodes an agent has heard of and which one to dial next.
 * Pure bookkeeping (no I/O, no clock: callers pass the time) so that the
 * policy is unit-tested: docs/pool.md describes it.
 */
#include "ag_int.h"

#include <stdlib.h>
#include <string.h>

#define AG_POOL_MAX_NODES (2 * WR_MAX_NODES)

void ag__pool_init(struct ag_pool *p)
{
    memset(p, 0, sizeof(*p));
}

void ag__pool_free(struct ag_pool *p)
{
    free(p->nodes);
    memset(p, 0, sizeof(*p));
}

struct ag_node *ag__pool_find(struct ag_pool *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->nodes[i].id, id) == 0)
            return &p->nodes[i];
    return NULL;
}

struct ag_node *ag__pool_get(struct ag_pool *p, const char *id)
{
    struct ag_node *nd = ag__pool_find(p, id);
    if (nd != NULL)
        return nd;
    if (p->n == AG_POOL_MAX_NODES)
        return NULL;
    if (p->n == p->cap) {
        /* Links name their node by id, never by pointer: the array may move. */
        p->cap = p->cap ? p->cap * 2 : 16;
        p->nodes = wr_xrealloc(p->nodes, p->cap * sizeof(*p->nodes));
    }
    nd = &p->nodes[p->n++];
    memset(nd, 0, sizeof(*nd));
    snprintf(nd->id, sizeof(nd->id), "%s", id);
    return nd;
}

void ag__pool_apply(struct ag_pool *p, const struct wr_node_entry *e, size_t n, uint64_t now,
                    struct ag_pool_delta *d)
{
    memset(d, 0, sizeof(*d));
    p->lists++;
    bool *seen = wr_xcalloc(AG_POOL_MAX_NODES, sizeof(*seen));
    for (size_t i = 0; i < n; i++) {
        bool known = ag__pool_find(p, e[i].node_id) != NULL;
        struct ag_node *nd = ag__pool_get(p, e[i].node_id);
        if (nd == NULL)
            break;
        seen[nd - p->nodes] = true;
        snprintf(nd->addr, sizeof(nd->addr), "%s", e[i].addr);
        if (!nd->listed) {
            /* New, or back after leaving (a restart): dial it now. */
            if (known)
                d->relisted++;
            else
                d->added++;
            nd->listed = true;
            nd->goaway = false;
            nd->attempt = 0;
            nd->next_dial_ms = now;
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        if (!seen[i] && p->nodes[i].listed) {
            p->nodes[i].listed = false;
            d->dropped++;
        }
    }
    free(seen);
    ag__pool_gc(p); /* the caller drains the links of unlisted nodes */
}

void ag__pool_gc(struct ag_pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct ag_node *nd = &p->nodes[i];
        if (!nd->listed && nd->held == NULL && nd->aimed == 0)
            continue;
        if (k != i)
            p->nodes[k] = *nd;
        k++;
    }
    p->n = k;
}

size_t ag__pool_wanted(const struct ag_pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += p->nodes[i].listed;
    return k;
}

struct ag_node *ag__pool_next(struct ag_pool *p, uint64_t now, uint32_t fleet_max,
                              uint64_t *wake_ms)
{
    struct ag_node *best = NULL;
    *wake_ms = UINT64_MAX;
    for (size_t i = 0; i < p->n; i++) {
        struct ag_node *nd = &p->nodes[i];
        if (!nd->listed || nd->held != NULL || nd->goaway)
            continue;
        if (nd->aimed >= (nd->addr[0] != '\0' ? 1 : fleet_max))
            continue;
        if (nd->next_dial_ms > now) {
            if (nd->next_dial_ms < *wake_ms)
                *wake_ms = nd->next_dial_ms;
            continue;
        }
        /* Spread the dials, and let no failing node starve the rest. */
        if (best == NULL || nd->aimed < best->aimed ||
            (nd->aimed == best->aimed && nd->next_dial_ms < best->next_dial_ms))
            best = nd;
    }
    return best;
}
