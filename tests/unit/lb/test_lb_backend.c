/*
 * test_lb_backend.c: lb/src/lb_backend.c without sockets: the backend state
 * machine (UP, DOWN, DRAINING from health, passive failures and gossip) and
 * picking (round-robin skips what is not UP, p2c prefers fewer open
 * connections, a retry avoids the backend that just failed).
 */
/* link: lb_lib */
#include "test.h"

#include "lb_core.h"

#include <errno.h>

#include "wr.h"

static struct lb *fake_lb(void)
{
    struct lb *lb = wr_xcalloc(1, sizeof(*lb));
    lb->cfg.rise = 2;
    lb->cfg.fall = 2;
    return lb;
}

static struct lb_backend *add(struct lb_set *s, const char *addr)
{
    struct sockaddr_storage ss;
    ASSERT_OK(wr_addr_parse(addr, &ss));
    struct lb_backend *b = lb__backend_add(s, (const struct sockaddr *)&ss, NULL);
    ASSERT(b != NULL);
    return b;
}

static void done(struct lb *lb)
{
    lb__sets_free(lb);
    free(lb);
}

TEST(rr_skips_not_up)
{
    struct lb *lb = fake_lb();
    struct lb_set *s = lb__set_get(lb, "web");
    struct lb_backend *a = add(s, "127.0.0.1:1"), *b = add(s, "127.0.0.1:2"),
                      *c = add(s, "127.0.0.1:3");
    ASSERT_PTR_EQ(a, lb__set_pick(s, LB_BALANCE_RR, NULL));
    ASSERT_PTR_EQ(b, lb__set_pick(s, LB_BALANCE_RR, NULL));
    ASSERT_PTR_EQ(c, lb__set_pick(s, LB_BALANCE_RR, NULL));
    ASSERT_PTR_EQ(a, lb__set_pick(s, LB_BALANCE_RR, NULL));
    lb__backend_connect_failed(b, -ECONNREFUSED);
    ASSERT_EQ(LB_BACKEND_ST_DOWN, b->state);
    for (int i = 0; i < 10; i++)
        ASSERT(lb__set_pick(s, LB_BALANCE_RR, NULL) != b);
    /* A retry avoids the backend that failed, even when it is the only UP one. */
    lb__backend_connect_failed(c, -ECONNREFUSED);
    ASSERT_PTR_EQ(a, lb__set_pick(s, LB_BALANCE_RR, NULL));
    ASSERT_PTR_EQ(NULL, lb__set_pick(s, LB_BALANCE_RR, a));
    done(lb);
}

TEST(p2c_prefers_fewer_connections)
{
    struct lb *lb = fake_lb();
    struct lb_set *s = lb__set_get(lb, "web");
    struct lb_backend *a = add(s, "127.0.0.1:1"), *b = add(s, "127.0.0.1:2");
    a->active = 5;
    for (int i = 0; i < 50; i++)
        ASSERT_PTR_EQ(b, lb__set_pick(s, LB_BALANCE_P2C, NULL));
    /* Among three, the busiest is never picked: it loses every pair. */
    struct lb_backend *c = add(s, "127.0.0.1:3");
    c->active = 1;
    for (int i = 0; i < 50; i++)
        ASSERT(lb__set_pick(s, LB_BALANCE_P2C, NULL) != a);
    ASSERT_PTR_EQ(c, lb__set_pick(s, LB_BALANCE_P2C, b)); /* a retry: b failed */
    done(lb);
}

TEST(rise_and_fall)
{
    struct lb *lb = fake_lb();
    struct lb_set *s = lb__set_get(lb, "web");
    struct lb_backend *a = add(s, "127.0.0.1:1");
    lb__backend_connect_failed(a, -ECONNREFUSED);
    ASSERT_EQ(LB_BACKEND_ST_DOWN, a->state);
    ASSERT_EQ(1, a->connect_fails);
    /* Gossip says the member left: DRAINING wins over health. */
    a->in_mesh = false;
    lb__backend_update(a, "test");
    ASSERT_EQ(LB_BACKEND_ST_DRAINING, a->state);
    a->in_mesh = true;
    lb__backend_update(a, "test");
    ASSERT_EQ(LB_BACKEND_ST_DOWN, a->state);
    a->healthy = true;
    lb__backend_update(a, "test");
    ASSERT_EQ(LB_BACKEND_ST_UP, a->state);
    a->gone = true;
    lb__backend_update(a, "test");
    ASSERT_EQ(LB_BACKEND_ST_DRAINING, a->state);
    uint32_t counts[LB_BACKEND_ST__COUNT];
    lb__set_counts(s, counts);
    ASSERT_EQ(0, counts[LB_BACKEND_ST_DRAINING]); /* gone ones are not counted */
    ASSERT_PTR_EQ(NULL, lb__set_pick(s, LB_BALANCE_RR, NULL));
    done(lb);
}

TEST(state_names)
{
    ASSERT_STR_EQ("UP", lb_backend_state_str(LB_BACKEND_ST_UP));
    ASSERT_STR_EQ("DRAINING", lb_backend_state_str(LB_BACKEND_ST_DRAINING));
    ASSERT_STR_EQ("?", lb_backend_state_str(LB_BACKEND_ST__COUNT));
    ASSERT_STR_EQ("HALF_CLOSED", lb_conn_state_str(LB_CONN_ST_HALF_CLOSED));
    ASSERT_STR_EQ("max_conns", lb_outcome_str(LB_OUT_MAX_CONNS));
    ASSERT_STR_EQ("p2c", lb_balance_str(LB_BALANCE_P2C));
    ASSERT_STR_EQ("sni", lb_mode_str(LB_MODE_SNI));
}

TEST_MAIN(TEST_ENTRY(rr_skips_not_up), TEST_ENTRY(p2c_prefers_fewer_connections),
          TEST_ENTRY(rise_and_fall), TEST_ENTRY(state_names))
