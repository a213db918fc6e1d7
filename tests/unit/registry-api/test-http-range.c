/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "common/macros.h"
#include "registry-api/http-range.h"
#include "tests/unit/tests.h"

static void range_ok(const char *h, uint64_t size, uint64_t es, uint64_t ee) {
        uint64_t s = 77, e = 77;
        int r = http_range_parse(h, size, &s, &e);
        if (r != 0 || s != es || e != ee)
                fprintf(stderr, "Range \"%s\" size %" PRIu64 ": r=%d %" PRIu64 "-%" PRIu64 ", expected %" PRIu64 "-%" PRIu64 "\n",
                        h, size, r, s, e, es, ee);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(s, es);
        ASSERT_EQ(e, ee);
}

static void range_err(const char *h, uint64_t size, int expect) {
        uint64_t s = 77, e = 77;
        int r = http_range_parse(h, size, &s, &e);
        if (r != expect)
                fprintf(stderr, "Range \"%s\" size %" PRIu64 ": r=%d, expected %d\n", strna(h), size, r, expect);
        ASSERT_EQ(r, expect);
        ASSERT_EQ(s, 77); /* untouched */
        ASSERT_EQ(e, 77);
}

TEST(test_range_valid) {
        range_ok("bytes=0-0", 10, 0, 0);
        range_ok("bytes=0-9", 10, 0, 9);
        range_ok("bytes=2-5", 10, 2, 5);
        range_ok("bytes=9-9", 10, 9, 9);
        range_ok("bytes=0-", 10, 0, 9);
        range_ok("bytes=9-", 10, 9, 9);
        range_ok("bytes=3-100", 10, 3, 9);   /* last beyond the end: clamped */
        range_ok("bytes=-1", 10, 9, 9);
        range_ok("bytes=-3", 10, 7, 9);
        range_ok("bytes=-10", 10, 0, 9);
        range_ok("bytes=-1000", 10, 0, 9);   /* suffix longer than the blob: all of it */
        range_ok("Bytes=1-2", 10, 1, 2);     /* the unit is case-insensitive */
        range_ok("BYTES=1-2", 10, 1, 2);
        range_ok("  bytes=1-2  ", 10, 1, 2);
        range_ok("bytes = 1-2", 10, 1, 2);
        range_ok("bytes=007-008", 10, 7, 8);
        /* 64-bit edges */
        range_ok("bytes=0-18446744073709551615", 10, 0, 9);
        range_ok("bytes=0-99999999999999999999999999", 10, 0, 9);
        range_ok("bytes=-99999999999999999999999999", 10, 0, 9);
        range_ok("bytes=18446744073709551614-", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
        range_ok("bytes=-1", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
}

TEST(test_range_unsatisfiable) {
        range_err("bytes=10-", 10, -ERANGE);
        range_err("bytes=10-20", 10, -ERANGE);
        range_err("bytes=100-200", 10, -ERANGE);
        range_err("bytes=-0", 10, -ERANGE);
        range_err("bytes=0-", 0, -ERANGE);
        range_err("bytes=0-0", 0, -ERANGE);
        range_err("bytes=-5", 0, -ERANGE);
        range_err("bytes=18446744073709551615-", 10, -ERANGE);
        range_err("bytes=99999999999999999999999-", 10, -ERANGE);
        range_err("bytes=99999999999999999999999-99999999999999999999999", 10, -ERANGE);
}

TEST(test_range_malformed) {
        const char *bad[] = {
                "",
                "bytes",
                "bytes=",
                "bytes=-",
                "bytes=a-b",
                "bytes=1",
                "bytes=5-2",                 /* first > last: invalid, not unsatisfiable */
                "bytes=99999999999999999999999-5",
                "bytes=1-2,3-4",             /* several ranges: ignored, full body */
                "bytes=1-2,",
                "bytes=0-1 ,2-3",
                "bytes=+1-2",
                "bytes=1-+2",
                "bytes=--1",
                "bytes=-1-2",
                "bytes=1--2",
                "bytes=1 -2",
                "bytes=1- 2",
                "bytes=0x1-2",
                "bytes=1-2x",
                "items=1-2",
                "bytes:1-2",
                "bytesx=1-2",
                "=1-2",
                "1-2",
                "bytes=1-2\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                range_err(bad[i], 10, -EINVAL);
        range_err(NULL, 10, -EINVAL);
}

static void cr_ok(const char *h, uint64_t es, uint64_t ee) {
        uint64_t s = 77, e = 77;
        int r = http_content_range_parse(h, &s, &e);
        if (r != 0 || s != es || e != ee)
                fprintf(stderr, "Content-Range \"%s\": r=%d %" PRIu64 "-%" PRIu64 "\n", h, r, s, e);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(s, es);
        ASSERT_EQ(e, ee);
}

static void cr_bad(const char *h) {
        uint64_t s = 77, e = 77;
        int r = http_content_range_parse(h, &s, &e);
        if (r != -EINVAL)
                fprintf(stderr, "Content-Range \"%s\": r=%d, expected -EINVAL\n", strna(h), r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_EQ(s, 77);
        ASSERT_EQ(e, 77);
}

TEST(test_content_range) {
        cr_ok("0-0", 0, 0);
        cr_ok("0-1023", 0, 1023);
        cr_ok("1024-2047", 1024, 2047);
        cr_ok(" 5-9 ", 5, 9);
        cr_ok("bytes 0-99/100", 0, 99);
        cr_ok("bytes 0-99/*", 0, 99);
        cr_ok("bytes 100-199/1000", 100, 199);
        cr_ok("Bytes  0-99/100", 0, 99);
        cr_ok("bytes=0-99", 0, 99);
        cr_ok("0-18446744073709551614", 0, UINT64_MAX - 1);
        cr_ok("18446744073709551614-18446744073709551614", UINT64_MAX - 1, UINT64_MAX - 1);

        const char *bad[] = {
                "",
                "-",
                "0",
                "0-",
                "-5",
                "5-4",                        /* end < start */
                "a-b",
                "+0-5",
                "0-+5",
                "0 - 5",
                "0-5x",
                "0-5,6-7",
                "0-18446744073709551615",     /* end + 1 would overflow */
                "0-18446744073709551616",     /* overflow */
                "18446744073709551616-18446744073709551617",
                "99999999999999999999999-99999999999999999999999",
                "bytes 0-99",                 /* RFC form needs the complete length */
                "bytes 0-99/",
                "bytes 0-99/99",              /* total must exceed end */
                "bytes 0-99/50",
                "bytes 0-99/x",
                "bytes 0-99/100x",
                "bytes 0-99/99999999999999999999999",
                "bytes */100",
                "bytes=0-99/100",
                "bytes=-5",
                "bytes0-5",
                "items 0-5/6",
                "0-5\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_bad(bad[i]);
        cr_bad(NULL);
}

int main(void) {
        RUN(test_range_valid);
        RUN(test_range_unsatisfiable);
        RUN(test_range_malformed);
        RUN(test_content_range);
        return 0;
}
