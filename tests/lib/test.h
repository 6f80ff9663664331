/*
 * tests/lib/test.h: a tiny unit-test runner. Each test file defines cases
 * with TEST(name) and lists them with TEST_LIST(...). The executable runs the
 * case named on its command line (ctest registers one process per case), or
 * every case when given none.
 */
#ifndef WR_TEST_H
#define WR_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name) static void test_##name(void)

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST_ENTRY(name)                                                                           \
    {                                                                                              \
#name, test_##name                                                                         \
    }

#define TEST_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            TEST_FAIL("assertion failed: %s", #c);                                                 \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_)                                                                            \
            TEST_FAIL("%s == %s: %lld != %lld", #a, #b, va_, vb_);                                 \
    } while (0)

#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ == vb_)                                                                            \
            TEST_FAIL("%s != %s: both %lld", #a, #b, va_);                                         \
    } while (0)

#define ASSERT_OK(a)                                                                               \
    do {                                                                                           \
        long long va_ = (long long)(a);                                                            \
        if (va_ != 0)                                                                              \
            TEST_FAIL("%s: expected 0, got %lld", #a, va_);                                        \
    } while (0)

#define ASSERT_GE(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (!(va_ >= vb_))                                                                         \
            TEST_FAIL("%s >= %s: %lld < %lld", #a, #b, va_, vb_);                                  \
    } while (0)

#define ASSERT_LE(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (!(va_ <= vb_))                                                                         \
            TEST_FAIL("%s <= %s: %lld > %lld", #a, #b, va_, vb_);                                  \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0)                                   \
            TEST_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, sa_ ? sa_ : "(null)",                  \
                      sb_ ? sb_ : "(null)");                                                       \
    } while (0)

#define ASSERT_PTR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const void *pa_ = (a), *pb_ = (b);                                                         \
        if (pa_ != pb_)                                                                            \
            TEST_FAIL("%s == %s: %p != %p", #a, #b, pa_, pb_);                                     \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            TEST_FAIL("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n));           \
    } while (0)

#define TEST_MAIN(...)                                                                             \
    static const struct test_case test_cases_[] = {__VA_ARGS__};                                   \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        size_t n_ = sizeof(test_cases_) / sizeof(test_cases_[0]);                                  \
        int ran_ = 0;                                                                              \
        for (size_t i_ = 0; i_ < n_; i_++) {                                                       \
            if (argc > 1 && strcmp(argv[1], test_cases_[i_].name) != 0)                            \
                continue;                                                                          \
            if (argc > 1 && strcmp(argv[1], "--list") == 0)                                        \
                break;                                                                             \
            test_cases_[i_].fn();                                                                  \
            printf("ok %s\n", test_cases_[i_].name);                                               \
            ran_++;                                                                                \
        }                                                                                          \
        if (argc > 1 && strcmp(argv[1], "--list") == 0) {                                          \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                printf("%s\n", test_cases_[i_].name);                                              \
            return 0;                                                                              \
        }                                                                                          \
        if (ran_ == 0) {                                                                           \
            fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "?");                       \
            return 2;                                                                              \
        }                                                                                          \
        return 0;                                                                                  \
    }

#endif
