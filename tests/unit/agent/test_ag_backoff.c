/* link: ag_lib */
/* Unit tests of the agent's reconnect backoff (agent/src/ag_agent.c). */
#include "../../../agent/src/ag_int.h"

#include "test.h"

TEST(backoff_first_is_immediate)
{
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(0, ag__backoff_delay(250, 30000, 0, wr_rand64()));
}

/* The ceiling doubles from <base> per attempt and stops at <max>. */
TEST(backoff_ceiling_doubles_then_caps)
{
    const uint64_t expect[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (uint32_t a = 1; a <= 9; a++) {
        uint64_t top = 0;
        for (uint64_t r = 0; r < 70000; r++)
            if (ag__backoff_delay(250, 30000, a, r) > top)
                top = ag__backoff_delay(250, 30000, a, r);
        ASSERT_EQ(expect[a - 1], top);
        ASSERT_EQ(expect[a - 1], ag__backoff_delay(250, 30000, a, expect[a - 1]));
    }
    /* Large attempt counts do not overflow. */
    ASSERT_LE(ag__backoff_delay(250, 30000, 4000000000u, UINT64_MAX), 30000);
}

/* Full jitter: uniform over [0, ceiling], so the mean is about half of it. */
TEST(backoff_full_jitter_is_spread)
{
    uint64_t sum = 0, lo = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        uint64_t d = ag__backoff_delay(100, 100000, 5, wr_rand64());
        ASSERT_LE(d, 1600);
        sum += d;
        lo += d < 400;
    }
    double mean = (double)sum / n;
    ASSERT(mean > 760 && mean < 840);
    ASSERT(lo > (uint64_t)n / 5 && lo < (uint64_t)n * 3 / 10);
}

TEST_MAIN(TEST_ENTRY(backoff_first_is_immediate), TEST_ENTRY(backoff_ceiling_doubles_then_caps),
          TEST_ENTRY(backoff_full_jitter_is_spread))
