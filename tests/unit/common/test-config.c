/* SPDX-License-Identifier: MIT */
#include "common/config.h"
#include "common/util.h"
#include "tests/unit/tests.h"

static char *write_tmp(const char *content) {
        char *p = strdup("/tmp/plura-test-config.XXXXXX");
        int fd = mkstemp(p);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(loop_write(fd, content, strlen(content)));
        close(fd);
        return p;
}

TEST(test_defaults) {
        Config *c = NULL;
        char err[512];
        ASSERT_OK(config_load(NULL, &c, err, sizeof(err)));
        ASSERT_STREQ(c->listen_host, "127.0.0.1");
        ASSERT_EQ(c->listen_port, 5000);
        ASSERT_STREQ(c->data_dir, "./data");
        ASSERT_EQ(c->max_manifest_bytes, 4 << 20);
        ASSERT_FALSE(c->zstd_at_rest);
        ASSERT_TRUE(c->fsync);
        ASSERT_EQ(c->upload_purge_after_ns, 24 * 3600 * (int64_t) NSEC_PER_SEC);
        ASSERT_TRUE(json_is_object(config_section(c, "gc")));
        ASSERT_TRUE(json_is_array(json_object_get(config_section(c, "gc"), "retention")));
        ASSERT_TRUE(json_is_object(config_section(c, "nonexistent")));
        config_free(c);
}

TEST(test_merge_and_errors) {
        Config *c = NULL;
        char err[512];
        char *p = write_tmp("{\"listen\": \"127.0.0.1:6000\", \"storage\": {\"zstd_at_rest\": true}, \"gc\": {\"grace\": \"0\"}}");
        ASSERT_OK(config_load(p, &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 6000);
        ASSERT_TRUE(c->zstd_at_rest);
        ASSERT_EQ(c->zstd_level, 3); /* untouched default survives the deep merge */
        ASSERT_STREQ(json_string_value(json_object_get(config_section(c, "gc"), "grace")), "0");
        ASSERT_TRUE(json_is_array(json_object_get(config_section(c, "gc"), "retention")));
        ASSERT_OK(config_set_listen(c, "[::1]:7000"));
        ASSERT_STREQ(c->listen_host, "::1");
        ASSERT_EQ(config_set_listen(c, "nope"), -EINVAL);
        ASSERT_EQ(config_set_listen(c, "h:99999"), -EINVAL);
        config_free(c);
        unlink(p);
        free(p);

        const char *bad[] = {
                "{\"listen\": 5}", "{\"bogus\": 1}", "{\"storage\": {\"zstd_level\": 99}}",
                "{\"storage\": {\"upload_purge_after\": \"soon\"}}", "[1,2]", "{\"a\": ", "{\"log_level\": \"loud\"}",
                "{\"storage\": {\"max_manifest_bytes\": 99999999}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = write_tmp(bad[i]);
                err[0] = 0;
                ASSERT_EQ(config_load(p, &c, err, sizeof(err)), -EINVAL);
                ASSERT_TRUE(strlen(err) > 0);
                printf("# %s -> %s\n", bad[i], err);
                unlink(p);
                free(p);
        }
        ASSERT_EQ(config_load("/nonexistent/plura.json", &c, err, sizeof(err)), -EINVAL);
}

TEST(test_load_string) {
        Config *c = NULL;
        char err[512];
        ASSERT_OK(config_load_string(NULL, &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 5000);
        config_free(c);
        ASSERT_OK(config_load_string("{\"listen\": \":6001\", \"http\": {\"timeout\": 30}}", &c, err, sizeof(err)));
        ASSERT_EQ(c->listen_port, 6001);
        ASSERT_EQ(c->http_timeout_s, 30);
        config_free(c);

        /* found by fuzz-config: overflowing durations and integers were accepted or were UB */
        const char *bad[] = {
                "{\"http\": {\"timeout\": 99999999999999999}}",
                "{\"http\": {\"timeout\": \"nan\"}}",
                "{\"http\": {\"timeout\": \"inf\"}}",
                "{\"http\": {\"timeout\": \"9223372036.854775808\"}}",
                "{\"http\": {\"timeout\": \"9000000000\"}}",
                "{\"storage\": {\"zstd_level\": 4294967299}}",
                "{\"http\": {\"threads\": 4294967296}}",
                "{\"listen\": \"x:1\", \"listen\": \"x:2\"}",
                "{\"bogus\": 1}",
                "{",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                c = NULL;
                err[0] = 0;
                ASSERT_EQ(config_load_string(bad[i], &c, err, sizeof(err)), -EINVAL);
                ASSERT_TRUE(c == NULL);
                ASSERT_TRUE(strlen(err) > 0);
                printf("# %s -> %s\n", bad[i], err);
        }
        int64_t ns;
        ASSERT_EQ(parse_duration_ns("nan", &ns), -EINVAL);
        ASSERT_EQ(parse_duration_ns("inf", &ns), -EINVAL);
        ASSERT_EQ(parse_duration_ns("9223372036.854775808", &ns), -ERANGE);
}

int main(void) {
        RUN(test_defaults);
        RUN(test_merge_and_errors);
        RUN(test_load_string);
        return 0;
}
