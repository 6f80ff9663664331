/* link: ag_lib */
/* Unit tests of the agent's pool bookkeeping (agent/src/ag_pool.c): which
 * nodes are wanted, which one to dial next, and what a list change does. */
#include "../../../agent/src/ag_int.h"

#include "test.h"

static void entry(struct wr_node_entry *e, const char *id, const char *addr)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->node_id, sizeof(e->node_id), "%s", id);
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
}

TEST(pool_apply_lists_and_forgets)
{
    struct ag_pool p;
    ag__pool_init(&p);
    struct wr_node_entry e[3];
    entry(&e[0], "n1", "");
    entry(&e[1], "n2", "10.0.0.2:7443");
    entry(&e[2], "n3", "");
    struct ag_pool_delta d;
    ag__pool_apply(&p, e, 3, 1000, &d);
    ASSERT_EQ(3, d.added);
    ASSERT_EQ(3, ag__pool_wanted(&p));
    ASSERT_STR_EQ("10.0.0.2:7443", ag__pool_find(&p, "n2")->addr);

    /* n3 leaves the list: unlinked, it is forgotten. n2 is held: kept, unlisted. */
    struct ag_link *fake = (struct ag_link *)&p; /* any non-NULL marker */
    ag__pool_find(&p, "n2")->held = fake;
    ag__pool_apply(&p, e, 1, 2000, &d);
    ASSERT_EQ(2, d.dropped);
    ASSERT_EQ(1, ag__pool_wanted(&p));
    ASSERT(ag__pool_find(&p, "n3") == NULL);
    ASSERT(ag__pool_find(&p, "n2") != NULL);
    ASSERT(!ag__pool_find(&p, "n2")->listed);

    /* n2 comes back (a restart): relisted, dialable now, goaway forgotten. */
    struct ag_node *n2 = ag__pool_find(&p, "n2");
    n2->goaway = true;
    n2->attempt = 5;
    n2->next_dial_ms = 99999;
    ag__pool_apply(&p, e, 2, 3000, &d);
    ASSERT_EQ(1, d.relisted);
    n2 = ag__pool_find(&p, "n2");
    ASSERT(!n2->goaway);
    ASSERT_EQ(0, n2->attempt);
    ASSERT_EQ(3000, n2->next_dial_ms);
    n2->held = NULL;
    ag__pool_free(&p);
}

TEST(pool_next_skips_held_aimed_goaway_and_waits)
{
    struct ag_pool p;
    ag__pool_init(&p);
    struct wr_node_entry e[4];
    entry(&e[0], "a", "");
    entry(&e[1], "b", "");
    entry(&e[2], "c", "");
    entry(&e[3], "d", "");
    struct ag_pool_delta d;
    ag__pool_apply(&p, e, 4, 100, &d);
    struct ag_link *fake = (struct ag_link *)&p;
    ag__pool_find(&p, "a")->held = fake;
    ag__pool_find(&p, "b")->aimed = 1;
    snprintf(ag__pool_find(&p, "b")->addr, 64, "10.0.0.2:7443"); /* direct: one dial at once */
    ag__pool_find(&p, "c")->goaway = true;
    ag__pool_find(&p, "d")->next_dial_ms = 500;
    uint64_t wake = 0;
    ASSERT(ag__pool_next(&p, 200, 4, &wake) == NULL);
    ASSERT_EQ(500, wake);
    struct ag_node *nd = ag__pool_next(&p, 500, 4, &wake);
    ASSERT(nd != NULL);
    ASSERT_STR_EQ("d", nd->id);

    /* The longest-waiting node goes first. */
    ag__pool_find(&p, "c")->goaway = false;
    ag__pool_find(&p, "c")->next_dial_ms = 300;
    nd = ag__pool_next(&p, 600, 4, &wake);
    ASSERT_STR_EQ("c", nd->id);
    /* Nothing wanted: no wake-up either. */
    ag__pool_find(&p, "a")->held = NULL;
    ag__pool_find(&p, "b")->aimed = 0;
    ag__pool_apply(&p, e, 0, 700, &d);
    ASSERT_EQ(4, d.dropped);
    ASSERT(ag__pool_next(&p, 800, 4, &wake) == NULL);
    ASSERT_EQ(UINT64_MAX, wake);
    ASSERT_EQ(0, p.n);
    ag__pool_free(&p);
}

/* Many nodes: the array grows, ids are found after it moved. */
/* Through the fleet, several dials may aim at one node; fewest first. */
TEST(pool_next_spreads_fleet_dials)
{
    struct ag_pool p;
    ag__pool_init(&p);
    struct wr_node_entry e[2];
    entry(&e[0], "a", "");
    entry(&e[1], "b", "");
    struct ag_pool_delta d;
    ag__pool_apply(&p, e, 2, 0, &d);
    uint64_t wake;
    for (int i = 0; i < 6; i++) {
        struct ag_node *nd = ag__pool_next(&p, 0, 3, &wake);
        ASSERT(nd != NULL);
        nd->aimed++;
    }
    ASSERT_EQ(3, ag__pool_find(&p, "a")->aimed);
    ASSERT_EQ(3, ag__pool_find(&p, "b")->aimed);
    ASSERT(ag__pool_next(&p, 0, 3, &wake) == NULL); /* both at the cap */
    ag__pool_free(&p);
}

TEST(pool_grows_to_the_wire_limit)
{
    struct ag_pool p;
    ag__pool_init(&p);
    static struct wr_node_entry e[WR_MAX_NODES];
    for (int i = 0; i < WR_MAX_NODES; i++) {
        char id[16];
        snprintf(id, sizeof(id), "node-%03d", i);
        entry(&e[i], id, "");
    }
    struct ag_pool_delta d;
    ag__pool_apply(&p, e, WR_MAX_NODES, 1, &d);
    ASSERT_EQ(WR_MAX_NODES, d.added);
    ASSERT_EQ(WR_MAX_NODES, ag__pool_wanted(&p));
    ASSERT(ag__pool_find(&p, "node-255") != NULL);
    ASSERT(ag__pool_find(&p, "node-256") == NULL);
    ag__pool_free(&p);
}

TEST_MAIN(TEST_ENTRY(pool_apply_lists_and_forgets),
          TEST_ENTRY(pool_next_skips_held_aimed_goaway_and_waits),
          TEST_ENTRY(pool_next_spreads_fleet_dials), TEST_ENTRY(pool_grows_to_the_wire_limit))
