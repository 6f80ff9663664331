/* link: nd_lib */
/* Unit tests of the tunnel registry and the weighted choice (node/src/nd_pool.c). */
#include "../../../node/src/nd_int.h"

#include "test.h"

static struct nd_pool_member test_members[8];

TEST(pool_add_remove)
{
    struct nd_registry reg;
    nd__registry_init(&reg);
    test_members[0].weight = 1;
    test_members[1].weight = 3;
    nd__pool_add(&reg, "t1", &test_members[0]);
    nd__pool_add(&reg, "t1", &test_members[1]);
    struct nd_pool *p = nd__registry_get(&reg, "t1", false);
    ASSERT(p != NULL);
    ASSERT_EQ(2, p->n_members);
    ASSERT_EQ(4, p->total_weight);
    ASSERT(nd__registry_get(&reg, "t2", false) == NULL);
    nd__pool_remove(&reg, "t1", &test_members[0]);
    ASSERT_EQ(1, p->n_members);
    nd__pool_remove(&reg, "t1", &test_members[1]);
    ASSERT(nd__registry_get(&reg, "t1", false) == NULL);
    ASSERT_EQ(0, reg.n_pools);
    ASSERT(nd__pool_pick(NULL, 1) == NULL);
    nd__registry_cleanup(&reg);
}

/* Weights 1 and 3 over many draws: the split is 25/75 within 2 points. */
TEST(pool_weighted_distribution)
{
    struct nd_registry reg;
    nd__registry_init(&reg);
    test_members[0].weight = 1;
    test_members[1].weight = 3;
    nd__pool_add(&reg, "t", &test_members[0]);
    nd__pool_add(&reg, "t", &test_members[1]);
    struct nd_pool *p = nd__registry_get(&reg, "t", false);
    int counts[2] = {0, 0};
    const int draws = 200000;
    for (int i = 0; i < draws; i++) {
        struct nd_pool_member *m = nd__pool_pick(p, wr_rand64());
        ASSERT(m != NULL);
        counts[m == &test_members[1]]++;
    }
    double share = (double)counts[1] / draws;
    ASSERT(share > 0.73 && share < 0.77);
    nd__registry_cleanup(&reg);
}

/* Any member of weight 255 takes all the traffic, shared evenly among such members. */
TEST(pool_exclusive_255)
{
    struct nd_registry reg;
    nd__registry_init(&reg);
    test_members[0].weight = 200;
    test_members[1].weight = 255;
    test_members[2].weight = 254;
    test_members[3].weight = 255;
    for (int i = 0; i < 4; i++)
        nd__pool_add(&reg, "t", &test_members[i]);
    struct nd_pool *p = nd__registry_get(&reg, "t", false);
    int c1 = 0, c3 = 0;
    for (int i = 0; i < 20000; i++) {
        struct nd_pool_member *m = nd__pool_pick(p, wr_rand64());
        ASSERT(m == &test_members[1] || m == &test_members[3]);
        c1 += m == &test_members[1];
        c3 += m == &test_members[3];
    }
    ASSERT(c1 > 9000 && c3 > 9000);
    /* The exclusive members leave: the others share by weight again. */
    nd__pool_remove(&reg, "t", &test_members[1]);
    nd__pool_remove(&reg, "t", &test_members[3]);
    int seen0 = 0;
    for (int i = 0; i < 1000; i++) {
        struct nd_pool_member *m = nd__pool_pick(p, wr_rand64());
        ASSERT(m == &test_members[0] || m == &test_members[2]);
        seen0 += m == &test_members[0];
    }
    ASSERT(seen0 > 300 && seen0 < 700);
    nd__registry_cleanup(&reg);
}

/* Many tunnels hash into the registry and are found again. */
TEST(registry_many_tunnels)
{
    struct nd_registry reg;
    nd__registry_init(&reg);
    static struct nd_pool_member ms[3000];
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "tun-%d", i);
        ms[i].weight = 1;
        nd__pool_add(&reg, name, &ms[i]);
    }
    ASSERT_EQ(3000, reg.n_pools);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "tun-%d", i);
        struct nd_pool *p = nd__registry_get(&reg, name, false);
        ASSERT(p != NULL);
        ASSERT_PTR_EQ(&ms[i], nd__pool_pick(p, 7));
        nd__pool_remove(&reg, name, &ms[i]);
    }
    ASSERT_EQ(0, reg.n_pools);
    nd__registry_cleanup(&reg);
}

TEST_MAIN(TEST_ENTRY(pool_add_remove), TEST_ENTRY(pool_weighted_distribution),
          TEST_ENTRY(pool_exclusive_255), TEST_ENTRY(registry_many_tunnels))
