/*
 * test_lb_route.c: lb/src/lb_route.c, the routing table and its cache:
 * each rule, their precedence, the node rule, then the cache's counters,
 * TTLs (time is an argument, so no sleeps), LRU eviction and flushes.
 */
/* link: lb_lib */
#include "test.h"

#include "lb_route.h"

#include "wr.h"

static struct lb_route_table *table(const char *cluster)
{
    struct lb_route_table *t = lb_route_table_new(cluster, 1024, 10000, 1000);
    ASSERT(t != NULL);
    return t;
}

/* Looks <name> up at time 0 and checks the answer. */
static void expect(struct lb_route_table *t, const char *name, enum lb_route_kind kind,
                   const char *target)
{
    struct lb_route r = lb_route_lookup(t, name, 0);
    if (r.kind != kind || strcmp(r.target, target) != 0)
        TEST_FAIL("%s: got kind %d \"%s\", want kind %d \"%s\"", name, (int)r.kind, r.target,
                  (int)kind, target);
}

static struct lb_route_stats stats(const struct lb_route_table *t)
{
    struct lb_route_stats s;
    lb_route_get_stats(t, &s);
    return s;
}

TEST(exact)
{
    struct lb_route_table *t = table(NULL);
    ASSERT_OK(lb_route_add(t, "shop.example.com", "shop"));
    ASSERT_OK(lb_route_add(t, "API.Example.COM", "api-v2"));
    expect(t, "shop.example.com", LB_ROUTE_SET, "shop");
    expect(t, "SHOP.example.com", LB_ROUTE_SET, "shop");
    expect(t, "api.example.com", LB_ROUTE_SET, "api-v2");
    expect(t, "example.com", LB_ROUTE_NONE, "");
    expect(t, "x.shop.example.com", LB_ROUTE_NONE, "");
    expect(t, "", LB_ROUTE_NONE, "");
    lb_route_table_free(t);
}

TEST(wildcards_longest_suffix)
{
    struct lb_route_table *t = table(NULL);
    ASSERT_OK(lb_route_add(t, "*.example.com", "generic"));
    ASSERT_OK(lb_route_add(t, "*.eu.example.com", "eu"));
    ASSERT_OK(lb_route_add(t, "*.com", "dotcom"));
    expect(t, "a.example.com", LB_ROUTE_SET, "generic");
    expect(t, "a.b.example.com", LB_ROUTE_SET, "generic");
    expect(t, "a.eu.example.com", LB_ROUTE_SET, "eu");
    expect(t, "x.y.eu.example.com", LB_ROUTE_SET, "eu");
    expect(t, "eu.example.com", LB_ROUTE_SET, "generic");
    expect(t, "example.com", LB_ROUTE_SET, "dotcom");
    expect(t, "com", LB_ROUTE_NONE, "");
    expect(t, "example.org", LB_ROUTE_NONE, "");
    /* A suffix matches whole labels only. */
    expect(t, "aexample.org", LB_ROUTE_NONE, "");
    expect(t, "xeu.example.com", LB_ROUTE_SET, "generic");
    lb_route_table_free(t);
}

TEST(precedence)
{
    struct lb_route_table *t = table("mesh");
    ASSERT_OK(lb_route_add(t, "*", "default"));
    ASSERT_OK(lb_route_add(t, "*.mesh", "mesh-any"));
    ASSERT_OK(lb_route_add(t, "n1.mesh", "exact-n1"));
    ASSERT_OK(lb_route_add(t, "n2.mesh", "exact-n2"));
    const char *nodes[] = {"n1"};
    ASSERT_OK(lb_route_set_nodes(t, nodes, 1));
    expect(t, "n1.mesh", LB_ROUTE_NODE, "n1");           /* 1 beats 2 */
    expect(t, "n2.mesh", LB_ROUTE_SET, "exact-n2");      /* 2 beats 3 */
    expect(t, "n3.mesh", LB_ROUTE_SET, "mesh-any");      /* 3 beats 4 */
    expect(t, "other.example", LB_ROUTE_SET, "default"); /* 4 */
    expect(t, "", LB_ROUTE_SET, "default");
    expect(t, "mesh", LB_ROUTE_SET, "default");
    lb_route_table_free(t);
}

TEST(node_rule)
{
    struct lb_route_table *t = table("Prod.Mesh");
    const char *nodes[] = {"n1", "Node-B", "rack1.n7", "n1"};
    ASSERT_OK(lb_route_set_nodes(t, nodes, 4));
    expect(t, "n1.prod.mesh", LB_ROUTE_NODE, "n1");
    expect(t, "N1.PROD.MESH", LB_ROUTE_NODE, "n1");
    expect(t, "node-b.prod.mesh", LB_ROUTE_NODE, "Node-B"); /* the id as given */
    expect(t, "rack1.n7.prod.mesh", LB_ROUTE_NODE, "rack1.n7");
    expect(t, "n7.prod.mesh", LB_ROUTE_NONE, "");
    expect(t, "n9.prod.mesh", LB_ROUTE_NONE, "");
    expect(t, "n1.prod.mesh.evil", LB_ROUTE_NONE, "");
    expect(t, "n1.other.mesh", LB_ROUTE_NONE, "");
    expect(t, "n1prod.mesh", LB_ROUTE_NONE, "");
    expect(t, ".prod.mesh", LB_ROUTE_NONE, "");
    expect(t, "prod.mesh", LB_ROUTE_NONE, "");

    /* Replacing the list flushes what the cache remembered. */
    const char *now[] = {"n9"};
    ASSERT_OK(lb_route_set_nodes(t, now, 1));
    ASSERT_EQ(0, stats(t).entries);
    expect(t, "n1.prod.mesh", LB_ROUTE_NONE, "");
    expect(t, "n9.prod.mesh", LB_ROUTE_NODE, "n9");

    /* A bad id refuses the whole list and keeps the old one. */
    const char *bad[] = {"n2", "bad id"};
    ASSERT_EQ(WR_EUSAGE, lb_route_set_nodes(t, bad, 2));
    const char *toolong[] = {"n2", "0123456789012345678901234567890123456789012345678901234567890"
                                   "12345"};
    ASSERT_EQ(WR_EUSAGE, lb_route_set_nodes(t, toolong, 2));
    const char *empty[] = {""};
    ASSERT_EQ(WR_EUSAGE, lb_route_set_nodes(t, empty, 1));
    ASSERT_EQ(WR_EUSAGE, lb_route_set_nodes(t, NULL, 1));
    expect(t, "n9.prod.mesh", LB_ROUTE_NODE, "n9");
    expect(t, "n2.prod.mesh", LB_ROUTE_NONE, "");

    /* An empty list. */
    ASSERT_OK(lb_route_set_nodes(t, NULL, 0));
    expect(t, "n9.prod.mesh", LB_ROUTE_NONE, "");
    lb_route_table_free(t);

    /* Without a cluster there is no node rule. */
    t = table(NULL);
    ASSERT_OK(lb_route_set_nodes(t, nodes, 2));
    expect(t, "n1.prod.mesh", LB_ROUTE_NONE, "");
    lb_route_table_free(t);

    /* The cluster must be an id. */
    ASSERT(lb_route_table_new("bad cluster", 10, 10, 10) == NULL);
    ASSERT(lb_route_table_new("", 10, 10, 10) == NULL);
}

TEST(default_only)
{
    struct lb_route_table *t = table(NULL);
    expect(t, "anything", LB_ROUTE_NONE, "");
    ASSERT_OK(lb_route_add(t, "*", "all"));
    expect(t, "anything", LB_ROUTE_SET, "all");
    expect(t, "", LB_ROUTE_SET, "all");
    expect(t, "[::1]", LB_ROUTE_SET, "all");
    lb_route_table_free(t);
}

TEST(bad_patterns)
{
    struct lb_route_table *t = table(NULL);
    const char *bad[] = {
        "",   "*.",   "**", "*.*",     "a.*.com",  "*a.com", "*.a..b",        "a b",  ".a",
        "a.", "a..b", "*.", "*.*.com", "a/b",      "a:80",   "[::1]",         "é.fr", "*.example.",
        " *", "* ",   "..", "*..a",    "a\tb.com", "**.a",   "*.example.com "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (lb_route_add(t, bad[i], "s") != WR_EUSAGE)
            TEST_FAIL("pattern \"%s\" accepted", bad[i]);
    }
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, big, "s"));
    big[255] = '\0';
    ASSERT_OK(lb_route_add(t, big, "s"));
    big[0] = '*';
    big[1] = '.';
    big[257] = '\0'; /* "*." + 255 */
    for (size_t i = 255; i < 257; i++)
        big[i] = 'b';
    ASSERT_OK(lb_route_add(t, big, "s"));
    big[258] = '\0';
    big[257] = 'b';
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, big, "s"));

    /* Set names are ids. */
    const char *bad_sets[] = {"", "a b", "a/b", "é"};
    for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++)
        ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "ok.example", bad_sets[i]));
    char long_set[66];
    memset(long_set, 's', 65);
    long_set[65] = '\0';
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "ok.example", long_set));
    long_set[64] = '\0';
    ASSERT_OK(lb_route_add(t, "ok.example", long_set));
    expect(t, "ok.example", LB_ROUTE_SET, long_set);
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, NULL, "s"));
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "x.example", NULL));

    /* The same pattern twice, in any case. */
    ASSERT_OK(lb_route_add(t, "dup.example", "a"));
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "DUP.example", "b"));
    ASSERT_OK(lb_route_add(t, "*.dup.example", "a"));
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "*.Dup.Example", "b"));
    ASSERT_OK(lb_route_add(t, "*", "a"));
    ASSERT_EQ(WR_EUSAGE, lb_route_add(t, "*", "b"));
    expect(t, "dup.example", LB_ROUTE_SET, "a");
    lb_route_table_free(t);
}

TEST(rule_limit)
{
    struct lb_route_table *t = table(NULL);
    char name[32];
    for (int i = 0; i < LB_ROUTE_RULES_MAX - 1; i++) {
        snprintf(name, sizeof(name), "h%d.example", i);
        ASSERT_OK(lb_route_add(t, name, "s"));
    }
    ASSERT_OK(lb_route_add(t, "*", "d"));
    ASSERT_EQ(WR_ELIMIT, lb_route_add(t, "one.more", "s"));
    ASSERT_EQ(WR_ELIMIT, lb_route_add(t, "*.one.more", "s"));
    expect(t, "h0.example", LB_ROUTE_SET, "s");
    expect(t, "h65534.example", LB_ROUTE_SET, "s");
    expect(t, "one.more", LB_ROUTE_SET, "d");
    lb_route_table_free(t);
}

TEST(cache_counters)
{
    struct lb_route_table *t = table(NULL);
    ASSERT_OK(lb_route_add(t, "a.example", "a"));
    struct lb_route_stats s = stats(t);
    ASSERT_EQ(0, s.hits + s.misses + s.negative_hits + s.entries + s.evictions);

    expect(t, "a.example", LB_ROUTE_SET, "a");
    s = stats(t);
    ASSERT_EQ(1, s.misses);
    ASSERT_EQ(0, s.hits);
    ASSERT_EQ(1, s.entries);
    expect(t, "A.EXAMPLE", LB_ROUTE_SET, "a");
    expect(t, "a.example", LB_ROUTE_SET, "a");
    s = stats(t);
    ASSERT_EQ(1, s.misses);
    ASSERT_EQ(2, s.hits);
    ASSERT_EQ(1, s.entries);

    expect(t, "nope.example", LB_ROUTE_NONE, "");
    expect(t, "nope.example", LB_ROUTE_NONE, "");
    expect(t, "nope.example", LB_ROUTE_NONE, "");
    s = stats(t);
    ASSERT_EQ(2, s.misses);
    ASSERT_EQ(2, s.hits);
    ASSERT_EQ(2, s.negative_hits);
    ASSERT_EQ(2, s.entries);
    ASSERT_EQ(0, s.evictions);

    /* Adding a rule flushes the cache: the negative entry must not hide it. */
    ASSERT_OK(lb_route_add(t, "nope.example", "now"));
    ASSERT_EQ(0, stats(t).entries);
    expect(t, "nope.example", LB_ROUTE_SET, "now");
    ASSERT_EQ(3, stats(t).misses);

    /* Too long a name: NONE, a miss, not cached. */
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect(t, big, LB_ROUTE_NONE, "");
    expect(t, big, LB_ROUTE_NONE, "");
    s = stats(t);
    ASSERT_EQ(5, s.misses);
    ASSERT_EQ(1, s.entries);
    lb_route_table_free(t);
}

TEST(cache_ttl)
{
    /* Positive entries live 1000 ms, negative ones 100 ms. */
    struct lb_route_table *t = lb_route_table_new(NULL, 16, 1000, 100);
    ASSERT(t != NULL);
    ASSERT_OK(lb_route_add(t, "a.example", "a"));
    uint64_t t0 = 5000000;

    ASSERT_EQ(LB_ROUTE_SET, lb_route_lookup(t, "a.example", t0).kind);
    ASSERT_EQ(LB_ROUTE_SET, lb_route_lookup(t, "a.example", t0 + 999).kind);
    ASSERT_EQ(1, stats(t).hits);
    ASSERT_EQ(LB_ROUTE_SET, lb_route_lookup(t, "a.example", t0 + 1000).kind); /* expired */
    ASSERT_EQ(2, stats(t).misses);
    ASSERT_EQ(1, stats(t).entries);
    ASSERT_EQ(LB_ROUTE_SET, lb_route_lookup(t, "a.example", t0 + 1999).kind); /* re-cached */
    ASSERT_EQ(2, stats(t).hits);

    ASSERT_EQ(LB_ROUTE_NONE, lb_route_lookup(t, "b.example", t0).kind);
    ASSERT_EQ(LB_ROUTE_NONE, lb_route_lookup(t, "b.example", t0 + 99).kind);
    ASSERT_EQ(1, stats(t).negative_hits);
    ASSERT_EQ(LB_ROUTE_NONE, lb_route_lookup(t, "b.example", t0 + 100).kind);
    ASSERT_EQ(1, stats(t).negative_hits);
    ASSERT_EQ(4, stats(t).misses);
    /* Expired entries dropped on lookup are not evictions. */
    ASSERT_EQ(0, stats(t).evictions);

    /* Near the end of time the expiry saturates instead of wrapping. */
    ASSERT_EQ(LB_ROUTE_NONE, lb_route_lookup(t, "c.example", UINT64_MAX - 10).kind);
    ASSERT_EQ(LB_ROUTE_NONE, lb_route_lookup(t, "c.example", UINT64_MAX - 5).kind);
    ASSERT_EQ(2, stats(t).negative_hits);
    lb_route_table_free(t);
}

TEST(cache_disabled)
{
    /* No cache at all. */
    struct lb_route_table *t = lb_route_table_new(NULL, 0, 1000, 1000);
    ASSERT(t != NULL);
    ASSERT_OK(lb_route_add(t, "a.example", "a"));
    for (int i = 0; i < 3; i++)
        expect(t, "a.example", LB_ROUTE_SET, "a");
    struct lb_route_stats s = stats(t);
    ASSERT_EQ(3, s.misses);
    ASSERT_EQ(0, s.hits + s.entries + s.evictions);
    lb_route_table_free(t);

    /* Negative caching off, positive on. */
    t = lb_route_table_new(NULL, 8, 1000, 0);
    ASSERT(t != NULL);
    ASSERT_OK(lb_route_add(t, "a.example", "a"));
    expect(t, "x.example", LB_ROUTE_NONE, "");
    expect(t, "x.example", LB_ROUTE_NONE, "");
    expect(t, "a.example", LB_ROUTE_SET, "a");
    expect(t, "a.example", LB_ROUTE_SET, "a");
    s = stats(t);
    ASSERT_EQ(3, s.misses);
    ASSERT_EQ(1, s.hits);
    ASSERT_EQ(0, s.negative_hits);
    ASSERT_EQ(1, s.entries);
    lb_route_table_free(t);
}

TEST(cache_eviction_lru)
{
    struct lb_route_table *t = lb_route_table_new(NULL, 3, 60000, 60000);
    ASSERT(t != NULL);
    ASSERT_OK(lb_route_add(t, "*", "d"));
    expect(t, "a", LB_ROUTE_SET, "d");
    expect(t, "b", LB_ROUTE_SET, "d");
    expect(t, "c", LB_ROUTE_SET, "d");
    ASSERT_EQ(3, stats(t).entries);
    /* Touch "a": "b" is now the least recently used. */
    expect(t, "a", LB_ROUTE_SET, "d");
    expect(t, "d", LB_ROUTE_SET, "d");
    struct lb_route_stats s = stats(t);
    ASSERT_EQ(3, s.entries);
    ASSERT_EQ(1, s.evictions);
    ASSERT_EQ(4, s.misses);
    ASSERT_EQ(1, s.hits);
    expect(t, "a", LB_ROUTE_SET, "d"); /* hit */
    expect(t, "c", LB_ROUTE_SET, "d"); /* hit */
    expect(t, "d", LB_ROUTE_SET, "d"); /* hit */
    ASSERT_EQ(4, stats(t).hits);
    expect(t, "b", LB_ROUTE_SET, "d"); /* evicted: a miss, evicts "a" */
    s = stats(t);
    ASSERT_EQ(5, s.misses);
    ASSERT_EQ(2, s.evictions);
    ASSERT_EQ(3, s.entries);
    lb_route_table_free(t);
}

TEST(cache_churn)
{
    /* Many names through a small cache: the bound holds, the counters add
     * up, and every answer matches the rules. */
    struct lb_route_table *t = lb_route_table_new("mesh", 100, 500, 50);
    ASSERT(t != NULL);
    ASSERT_OK(lb_route_add(t, "*.even.example", "even"));
    const char *nodes[] = {"n3"};
    ASSERT_OK(lb_route_set_nodes(t, nodes, 1));
    char name[64];
    uint64_t lookups = 0;
    for (uint64_t now = 0; now < 20000; now++) {
        unsigned k = (unsigned)((now * 2654435761u) % 300);
        if (k % 7 == 0)
            snprintf(name, sizeof(name), "n%u.mesh", k % 5);
        else
            snprintf(name, sizeof(name), "h%u.%s.example", k, k % 2 ? "odd" : "even");
        struct lb_route r = lb_route_lookup(t, name, now);
        lookups++;
        if (k % 7 == 0)
            ASSERT_EQ(k % 5 == 3 ? LB_ROUTE_NODE : LB_ROUTE_NONE, r.kind);
        else
            ASSERT_EQ(k % 2 ? LB_ROUTE_NONE : LB_ROUTE_SET, r.kind);
        ASSERT_LE(stats(t).entries, 100);
    }
    struct lb_route_stats s = stats(t);
    ASSERT_EQ(lookups, s.hits + s.misses + s.negative_hits);
    ASSERT(s.hits > 0 && s.negative_hits > 0 && s.evictions > 0);
    lb_route_table_free(t);
}

TEST(free_null)
{
    lb_route_table_free(NULL);
}

TEST_MAIN(TEST_ENTRY(exact), TEST_ENTRY(wildcards_longest_suffix), TEST_ENTRY(precedence),
          TEST_ENTRY(node_rule), TEST_ENTRY(default_only), TEST_ENTRY(bad_patterns),
          TEST_ENTRY(rule_limit), TEST_ENTRY(cache_counters), TEST_ENTRY(cache_ttl),
          TEST_ENTRY(cache_disabled), TEST_ENTRY(cache_eviction_lru), TEST_ENTRY(cache_churn),
          TEST_ENTRY(free_null))
