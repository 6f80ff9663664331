/* link: nd_lib */
/* Unit tests of the hop rule for streams that arrive on peer links
 * (nd__peer_route_check, node/src/nd_peer.c): a node routes a peer's stream
 * only to its own agents, and refuses what could loop. */
#include "../../../node/src/nd_int.h"

#include "test.h"

static struct wr_msg_open t_open(const char *tunnel, uint8_t hop)
{
    struct wr_msg_open o;
    memset(&o, 0, sizeof(o));
    snprintf(o.service, sizeof(o.service), "%s", "http");
    snprintf(o.tunnel, sizeof(o.tunnel), "%s", tunnel);
    o.hop = hop;
    return o;
}

TEST(route_check_accepts_first_hop)
{
    const char *why = "unset";
    struct wr_msg_open o = t_open("t1", 1);
    ASSERT_EQ(WR_CODE_OK, nd__peer_route_check(&o, false, &why));
    for (uint8_t hop = 1; hop < WR_HOP_MAX; hop++) {
        o = t_open("t1", hop);
        ASSERT_EQ(WR_CODE_OK, nd__peer_route_check(&o, false, &why));
    }
}

TEST(route_check_hop_limit)
{
    const char *why = NULL;
    struct wr_msg_open o = t_open("t1", WR_HOP_MAX);
    ASSERT_EQ(WR_CODE_HOP_LIMIT, nd__peer_route_check(&o, false, &why));
    ASSERT_STR_EQ("hop limit reached", why);
    /* Above the limit too (the decoder refuses it first; the rule holds anyway). */
    o = t_open("t1", 255);
    ASSERT_EQ(WR_CODE_HOP_LIMIT, nd__peer_route_check(&o, false, &why));
    /* The hop rule wins over draining: a loop is reported as one. */
    o = t_open("t1", WR_HOP_MAX);
    ASSERT_EQ(WR_CODE_HOP_LIMIT, nd__peer_route_check(&o, true, &why));
}

TEST(route_check_malformed)
{
    const char *why = NULL;
    struct wr_msg_open o = t_open("", 1);
    ASSERT_EQ(WR_CODE_PROTOCOL, nd__peer_route_check(&o, false, &why));
    ASSERT_STR_EQ("peer OPEN without a tunnel", why);
    o = t_open("t1", 0); /* an entry point's OPEN, never a peer's */
    ASSERT_EQ(WR_CODE_PROTOCOL, nd__peer_route_check(&o, false, &why));
    ASSERT_STR_EQ("peer OPEN with hop 0", why);
}

TEST(route_check_draining)
{
    const char *why = NULL;
    struct wr_msg_open o = t_open("t1", 1);
    ASSERT_EQ(WR_CODE_SHUTDOWN, nd__peer_route_check(&o, true, &why));
    ASSERT_STR_EQ("node draining", why);
}

TEST_MAIN(TEST_ENTRY(route_check_accepts_first_hop), TEST_ENTRY(route_check_hop_limit),
          TEST_ENTRY(route_check_malformed), TEST_ENTRY(route_check_draining))
