/*
 * lb_route.h: warren-lb's routing table, from a name (SNI or Host) to a
 * backend set, and the lookup cache in front of it (with negative entries,
 * as Starship did with lua-resty-mlcache). Pure code, no I/O; time is passed
 * in. Names are compared lower-case. A table is used from one thread (the
 * loop's): lookups update the cache and its counters.
 *
 * Rules, in order of precedence:
 *   1. "<node-id>.<cluster>": that one node (a targeted agent dial), when
 *      <cluster> is the table's cluster name and the node is known;
 *   2. exact names ("shop.example.com");
 *   3. wildcards "*.example.com": any name with at least one label before
 *      ".example.com"; the longest suffix wins.
 *   4. the default set, when one is configured ("*").
 */
#ifndef LB_ROUTE_H
#define LB_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LB_ROUTE_NAME_MAX 255
#define LB_ROUTE_SET_MAX 64      /* set names are ids: 1-64 of [A-Za-z0-9._-] */
#define LB_ROUTE_RULES_MAX 65536 /* exact + wildcard + default rules of one table */

struct lb_route_table;

enum lb_route_kind {
    LB_ROUTE_NONE = 0, /* no rule matches: 404 / unrecognized_name */
    LB_ROUTE_SET,      /* a backend set, by name */
    LB_ROUTE_NODE,     /* one node of the mesh, by node id */
};

struct lb_route {
    enum lb_route_kind kind;
    char target[LB_ROUTE_SET_MAX + 1]; /* set name or node id */
};

struct lb_route_stats {
    uint64_t hits, misses, negative_hits, entries, evictions;
};

/* <cluster> may be NULL (no node rule). <cache_max> entries at most, each
 * kept <ttl_ms> (positive) or <neg_ttl_ms> (negative). NULL on OOM, or when
 * <cluster> is not an id (wr_id_is_valid). <cache_max> 0, or a TTL of 0,
 * disables caching (of that kind): every such lookup is a miss. When the
 * cache is full, the least recently used entry is evicted. */
struct lb_route_table *lb_route_table_new(const char *cluster, size_t cache_max, uint32_t ttl_ms,
                                          uint32_t neg_ttl_ms);
void lb_route_table_free(struct lb_route_table *t);

/* Adds a rule: <pattern> is an exact name, "*.suffix", or "*" (default).
 * 0, or WR_EUSAGE (bad pattern or set name, or a pattern already added),
 * WR_ELIMIT (LB_ROUTE_RULES_MAX rules already), WR_ENOMEM. A name in a
 * pattern is 1..255 of [A-Za-z0-9._-] with no empty label, and is stored
 * lower-cased. Flushes the cache. */
int lb_route_add(struct lb_route_table *t, const char *pattern, const char *set);

/* Known nodes for rule 1 (replaces the list; the cache is flushed). 0, or
 * WR_EUSAGE when an id is not wr_id_is_valid, WR_ENOMEM; on error the old
 * list stays. Ids match case-insensitively; the route carries the id as
 * given here. Duplicates are ignored. */
int lb_route_set_nodes(struct lb_route_table *t, const char *const *ids, size_t n);

/* Looks <name> up at time <now_ms> through the cache. Any string is
 * accepted: one longer than LB_ROUTE_NAME_MAX is LB_ROUTE_NONE (a miss, not
 * cached); "" (a ClientHello without SNI) only matches the default rule.
 * Counts a hit, a negative hit (a cached LB_ROUTE_NONE) or a miss. */
struct lb_route lb_route_lookup(struct lb_route_table *t, const char *name, uint64_t now_ms);

/* <entries> is the cache's size now; the rest count since lb_route_table_new.
 * <evictions> counts entries dropped to make room (not expired ones dropped
 * on lookup, nor flushes). */
void lb_route_get_stats(const struct lb_route_table *t, struct lb_route_stats *out);

#endif
