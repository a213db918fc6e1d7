/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/util.h"
#include "tests/unit/tests.h"

TEST(test_glob) {
        ASSERT_TRUE(repo_glob_match("apps/**", "apps/search"));
        ASSERT_TRUE(repo_glob_match("apps/**", "apps/team/search"));
        ASSERT_TRUE(repo_glob_match("apps/**", "apps"));
        ASSERT_FALSE(repo_glob_match("apps/**", "appsx/search"));
        ASSERT_TRUE(repo_glob_match("channels/*/*", "channels/prod/search"));
        ASSERT_FALSE(repo_glob_match("channels/*/*", "channels/prod/a/b"));
        ASSERT_TRUE(repo_glob_match("**", "a/b/c"));
        ASSERT_TRUE(repo_glob_match("lib?", "libx"));
        ASSERT_FALSE(repo_glob_match("lib?", "lib/"));
        ASSERT_TRUE(repo_glob_match("**/base", "team/x/base"));
}

TEST(test_array_reserve) {
        int *v = NULL;
        size_t allocated = 0;
        ASSERT_OK(ARRAY_RESERVE(v, allocated, 1));
        ASSERT_EQ(allocated, 16u);
        for (int i = 0; i < 16; i++)
                v[i] = i;
        ASSERT_OK(ARRAY_RESERVE(v, allocated, 16)); /* room already */
        ASSERT_EQ(allocated, 16u);
        ASSERT_OK(ARRAY_RESERVE(v, allocated, 40));
        ASSERT_EQ(allocated, 64u);
        ASSERT_EQ(v[15], 15); /* kept */
        int *before = v;
        ASSERT_EQ(ARRAY_RESERVE(v, allocated, SIZE_MAX / 2), -ENOMEM);
        ASSERT_TRUE(v == before && allocated == 64u); /* untouched */
        free(v);
}

TEST(test_duration) {
        int64_t v;
        ASSERT_OK(parse_duration_ns("90s", &v));
        ASSERT_EQ(v, 90 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(parse_duration_ns("15m", &v));
        ASSERT_EQ(v, 900 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(parse_duration_ns("7d", &v));
        ASSERT_EQ(v, 7 * 86400 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(parse_duration_ns("0", &v));
        ASSERT_EQ(v, 0);
        ASSERT_EQ(parse_duration_ns("5x", &v), -EINVAL);
        ASSERT_EQ(parse_duration_ns("", &v), -EINVAL);
        ASSERT_EQ(parse_duration_ns("-1s", &v), -EINVAL);
}

TEST(test_hex_uuid_bytes) {
        uint8_t in[] = { 0x00, 0xab, 0xff }, out[3];
        char hex[7];
        hex_encode(in, 3, hex);
        ASSERT_STREQ(hex, "00abff");
        ASSERT_EQ(hex_decode(hex, 6, out), 3);
        ASSERT_TRUE(memcmp(in, out, 3) == 0);
        ASSERT_EQ(hex_decode("zz", 2, out), -EINVAL);
        char u[37];
        ASSERT_OK(uuid_random(u));
        ASSERT_TRUE(uuid_is_valid(u));
        ASSERT_FALSE(uuid_is_valid("../../etc/passwd"));
        char b[32];
        ASSERT_STREQ(format_bytes(b, sizeof(b), 512), "512 B");
        ASSERT_STREQ(format_bytes(b, sizeof(b), 1536), "1.5 KiB");
        ASSERT_STREQ(format_timestamp(b, sizeof(b), 0), "1970-01-01T00:00:00Z");
}

/* First of all: nothing has read the clock yet, so clock_now_ns() reads PLURA_FAKE_NOW itself. */
TEST(test_fake_now_env) {
        ASSERT_OK(setenv("PLURA_FAKE_NOW", "2025-01-01T00:00:00Z", 1));
        ASSERT_EQ(clock_now_ns(), 1735689600 * (int64_t) NSEC_PER_SEC);
        clock_set_fake(0);
        ASSERT_OK(unsetenv("PLURA_FAKE_NOW"));
}

TEST(test_fake_clock) {
        clock_set_fake(1000 * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(clock_now_ns(), 1000 * (int64_t) NSEC_PER_SEC);
        clock_set_fake(0);
        ASSERT_TRUE(clock_now_ns() > 1700000000LL * (int64_t) NSEC_PER_SEC);
}

TEST(test_timestamp) {
        int64_t v;
        const int64_t S = (int64_t) NSEC_PER_SEC;
        ASSERT_OK(parse_timestamp_ns("2025-01-01T00:00:00Z", &v));
        ASSERT_EQ(v, 1735689600 * S);
        ASSERT_OK(parse_timestamp_ns("1970-01-01T00:00:00Z", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(parse_timestamp_ns("2025-01-01t02:00:00+02:00", &v));
        ASSERT_EQ(v, 1735689600 * S);
        ASSERT_OK(parse_timestamp_ns("2024-12-31 19:30:00-04:30", &v));
        ASSERT_EQ(v, 1735689600 * S);
        ASSERT_OK(parse_timestamp_ns("2025-01-01T00:00:00.5Z", &v));
        ASSERT_EQ(v, 1735689600 * S + S / 2);
        ASSERT_OK(parse_timestamp_ns("2025-01-01T00:00:00.1234567891234z", &v)); /* beyond ns: truncated */
        ASSERT_EQ(v, 1735689600 * S + 123456789);
        ASSERT_OK(parse_timestamp_ns("2024-02-29T12:00:00Z", &v));
        ASSERT_EQ(v, 1709208000 * S);
        ASSERT_OK(parse_timestamp_ns("2016-12-31T23:59:60Z", &v)); /* leap second: the next second */
        ASSERT_EQ(v, 1483228800 * S);
        ASSERT_OK(parse_timestamp_ns("1969-12-31T23:59:59Z", &v));
        ASSERT_EQ(v, -S);
        ASSERT_OK(parse_timestamp_ns("2262-04-11T23:47:16Z", &v));
        ASSERT_EQ(v, 9223372036 * S);
        ASSERT_EQ(parse_timestamp_ns("2262-04-11T23:47:17Z", &v), -ERANGE);
        ASSERT_EQ(parse_timestamp_ns("9999-12-31T23:59:59Z", &v), -ERANGE);
        static const char *const bad[] = {
                "", "2025", "2025-01-01", "2025-01-01T00:00:00", "2025-01-01T00:00Z", "2025-1-01T00:00:00Z",
                "+202-01-01T00:00:00Z", " 2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z ", "2025-01-01X00:00:00Z",
                "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z",
                "2025-00-01T00:00:00Z", "2025-01-00T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T00:60:00Z",
                "2025-01-01T00:00:61Z", "2025-01-01T00:00:00.Z", "2025-01-01T00:00:00+0200", "2025-01-01T00:00:00+24:00",
                "2025-01-01T00:00:00+02:60", "2025-01-01T00:00:00+2:00", "2025-01-01T-1:00:00Z", "2025-01-01T00:00:00UTC",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (parse_timestamp_ns(bad[i], &v) != -EINVAL) {
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                        ASSERT_TRUE(false);
                }
}

TEST(test_fake_now) {
        const int64_t S = (int64_t) NSEC_PER_SEC;
        int64_t v;
        /* the bug: strtoll read "2025-01-01T00:00:00Z" as 2025 seconds after the epoch */
        ASSERT_OK(clock_parse_fake_now("2025-01-01T00:00:00Z", &v));
        ASSERT_EQ(v, 1735689600 * S);
        ASSERT_OK(clock_parse_fake_now("2025-01-01T02:00:00.25+02:00", &v));
        ASSERT_EQ(v, 1735689600 * S + S / 4);
        ASSERT_OK(clock_parse_fake_now("1735689600", &v));
        ASSERT_EQ(v, 1735689600 * S);
        static const char *const bad[] = { "", "0", "-5", "+5", "1e9", "1735689600.5", "1735689600s", " 1",
                                           "tomorrow", "99999999999999999999", "1970-01-01T00:00:00Z", "1969-01-01T00:00:00Z" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (clock_parse_fake_now(bad[i], &v) != -EINVAL) {
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                        ASSERT_TRUE(false);
                }
        /* "2025" is a valid integer (2025 s after the epoch); what matters is that the RFC 3339
         * form is no longer read as it */
        ASSERT_OK(clock_parse_fake_now("2025", &v));
        ASSERT_EQ(v, 2025 * S);

        ASSERT_OK(setenv("PLURA_FAKE_NOW", "2025-01-01T00:00:00Z", 1));
        ASSERT_OK(clock_fake_from_env());
        ASSERT_EQ(clock_now_ns(), 1735689600 * S);
        clock_set_fake(0);
        ASSERT_OK(setenv("PLURA_FAKE_NOW", "2025-01-01", 1));
        ASSERT_EQ(clock_fake_from_env(), -EINVAL);
        /* refused: the fake clock stays off, never a wrong fake time */
        ASSERT_TRUE(clock_now_ns() > 1700000000LL * S);
        ASSERT_OK(unsetenv("PLURA_FAKE_NOW"));
        ASSERT_OK(clock_fake_from_env());
}

TEST(test_utf8) {
        ASSERT_TRUE(utf8_is_valid("", 0));
        ASSERT_TRUE(utf8_is_valid("abc", 3));
        ASSERT_TRUE(utf8_is_valid("gr\xc3\xbc\xc3\x9f", 6));
        ASSERT_TRUE(utf8_is_valid("\xe2\x82\xac", 3));
        ASSERT_TRUE(utf8_is_valid("\xf0\x9f\x98\x80", 4));
        ASSERT_FALSE(utf8_is_valid("nul\0evil", 8));
        ASSERT_FALSE(utf8_is_valid("\xff", 1));
        ASSERT_FALSE(utf8_is_valid("\xc3", 1));          /* truncated */
        ASSERT_FALSE(utf8_is_valid("\xc0\xaf", 2));      /* overlong '/' */
        ASSERT_FALSE(utf8_is_valid("\xe0\x80\xaf", 3));  /* overlong '/' */
        ASSERT_FALSE(utf8_is_valid("\xed\xa0\x80", 3));  /* surrogate */
        ASSERT_FALSE(utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        ASSERT_FALSE(utf8_is_valid("a\x80", 2));
        char m[] = "holds/\xff\xfe: gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xed\xa0\x80 \xc3";
        ASSERT_STREQ(utf8_sanitize(m), "holds/??: gr\xc3\xbc\xc3\x9f \xe2\x82\xac ??? ?");
        ASSERT_TRUE(utf8_is_valid(m, strlen(m)));
}

TEST(test_atomic_write) {
        char dir[] = "/tmp/plura-test-util.XXXXXX";
        ASSERT_TRUE(mkdtemp(dir));
        char path[512], sub[256];
        snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
        ASSERT_OK(mkdir_p(sub, 0755));
        ASSERT_OK(mkdir_p(sub, 0755)); /* idempotent */
        snprintf(path, sizeof(path), "%s/file", sub);
        ASSERT_OK(write_file_atomic(path, "hello", 5, 0444));
        char *data = NULL;
        size_t n = 0;
        ASSERT_OK(read_full_file(path, 100, &data, &n));
        ASSERT_EQ(n, 5);
        ASSERT_STREQ(data, "hello");
        free(data);
        ASSERT_EQ(read_full_file(path, 2, &data, &n), -EFBIG);
        struct stat st;
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 0777, 0444);
        ASSERT_OK(write_file_atomic(path, "again", 5, 0444)); /* replaces atomically */
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ASSERT_EQ(system(cmd), 0);
}

/* Many stars backtrack: each (pattern, name) position is tried once, not exponentially often
 * (unmemoized this took minutes; the test's timeout is the check). */
TEST(test_glob_many_stars) {
        char pattern[64], name[256];
        memset(pattern, '*', 40);
        strcpy(pattern + 40, "x");
        memset(name, 'a', 254);
        name[254] = 0;
        ASSERT_FALSE(repo_glob_match(pattern, name));
        name[253] = 'x';
        ASSERT_TRUE(repo_glob_match(pattern, name));
        memcpy(pattern, "*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/**/**/**/**/**/y", 57);
        for (size_t i = 0; i < 254; i++)
                name[i] = i % 2 ? '/' : 'a';
        name[254] = 0;
        ASSERT_FALSE(repo_glob_match(pattern, name));
}

int main(void) {
        RUN(test_fake_now_env);
        RUN(test_glob);
        RUN(test_glob_many_stars);
        RUN(test_duration);
        RUN(test_hex_uuid_bytes);
        RUN(test_fake_clock);
        RUN(test_timestamp);
        RUN(test_fake_now);
        RUN(test_utf8);
        RUN(test_atomic_write);
        RUN(test_array_reserve);
        return 0;
}
