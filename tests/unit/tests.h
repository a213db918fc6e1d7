/* SPDX-License-Identifier: MIT */
#pragma once
/* Minimal assertions for unit tests: a failed check prints where and exits 1. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                   \
        do {                                                                                \
                if (!(expr)) {                                                              \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))
#define ASSERT_EQ(a, b)                                                                     \
        do {                                                                                \
                long long _a = (long long) (a), _b = (long long) (b);                       \
                if (_a != _b) {                                                             \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, _a, _b); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
#define ASSERT_OK(expr)                                                                     \
        do {                                                                                \
                long long _r = (long long) (expr);                                          \
                if (_r < 0) {                                                               \
                        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, strerror((int) -_r)); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
#define ASSERT_STREQ(a, b)                                                                  \
        do {                                                                                \
                const char *_a = (a), *_b = (b);                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                    \
                        fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
#define TEST(name) static void name(void)
#define RUN(name)                                   \
        do {                                        \
                name();                             \
                printf("ok - %s\n", #name);         \
        } while (0)
