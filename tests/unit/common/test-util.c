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

TEST(test_fake_clock) {
        clock_set_fake(1000 * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(clock_now_ns(), 1000 * (int64_t) NSEC_PER_SEC);
        clock_set_fake(0);
        ASSERT_TRUE(clock_now_ns() > 1700000000LL * (int64_t) NSEC_PER_SEC);
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

int main(void) {
        RUN(test_glob);
        RUN(test_duration);
        RUN(test_hex_uuid_bytes);
        RUN(test_fake_clock);
        RUN(test_atomic_write);
        return 0;
}
