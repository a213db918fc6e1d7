/* SPDX-License-Identifier: MIT */
#include "storage/storage.h"
#include "tests/unit/tests.h"

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        ASSERT_TRUE(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

TEST(test_repo_names_valid) {
        const char *good[] = {
                "a",
                "0",
                "library/ubuntu",
                "a/b/c/d/e",
                "my-app",
                "my--app",
                "my---app",
                "my.app",
                "my_app",
                "my__app",
                "a.b-c_d__e",
                "team/app.v2/base-image",
                "123/456",
                "x1-2.3_4__5",
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (!repo_name_is_valid(good[i]))
                        fprintf(stderr, "rejected: %s\n", good[i]);
                ASSERT_TRUE(repo_name_is_valid(good[i]));
        }
}

TEST(test_repo_names_invalid) {
        const char *bad[] = {
                "",
                "/",
                "..",
                "a/..",
                "../a",
                "a/../b",
                "a..b",
                "a/./b",
                ".a",
                "a.",
                "_a",
                "a_",
                "-a",
                "a-",
                "a___b",
                "a_.b",
                "a._b",
                "a.-b",
                "a-.b",
                "a-_b",
                "Library/ubuntu",
                "library/Ubuntu",
                "ABC",
                "a//b",
                "a/",
                "/a",
                "a/b/",
                "a b",
                "a:b",
                "a@b",
                "a\\b",
                "a%2fb",
                "a\nb",
                "ü",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (repo_name_is_valid(bad[i]))
                        fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
                ASSERT_FALSE(repo_name_is_valid(bad[i]));
        }
        ASSERT_FALSE(repo_name_is_valid(NULL));
}

TEST(test_repo_name_length) {
        char *s = repeat('a', 255);
        ASSERT_TRUE(repo_name_is_valid(s));
        free(s);
        s = repeat('a', 256);
        ASSERT_FALSE(repo_name_is_valid(s));
        free(s);
        /* length counts slashes: 127 x "a/" + "a" = 255, one more component = 257 */
        char buf[300] = "";
        for (int i = 0; i < 127; i++)
                strcat(buf, "a/");
        strcat(buf, "a");
        ASSERT_EQ(strlen(buf), 255);
        ASSERT_TRUE(repo_name_is_valid(buf));
        strcat(buf, "/b");
        ASSERT_FALSE(repo_name_is_valid(buf));
        s = repeat('a', 100000);
        ASSERT_FALSE(repo_name_is_valid(s));
        free(s);
}

TEST(test_tags) {
        const char *good[] = {
                "latest", "v1.2.3", "V1", "_private", "1", "a-b_c.d", "sha256-abc", "X", "__", "0.", "a--..__",
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (!tag_is_valid(good[i]))
                        fprintf(stderr, "rejected: %s\n", good[i]);
                ASSERT_TRUE(tag_is_valid(good[i]));
        }
        const char *bad[] = {
                "", ".hidden", "-dash", "a+b", "v1+build", "a:b", "a/b", "a b", "tag\n", "a@b", "ä",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (tag_is_valid(bad[i]))
                        fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
                ASSERT_FALSE(tag_is_valid(bad[i]));
        }
        ASSERT_FALSE(tag_is_valid(NULL));

        char *s = repeat('t', 128);
        ASSERT_TRUE(tag_is_valid(s));
        free(s);
        s = repeat('t', 129);
        ASSERT_FALSE(tag_is_valid(s));
        free(s);
        s = repeat('_', 128);
        ASSERT_TRUE(tag_is_valid(s));
        free(s);
}

TEST(test_references) {
        ASSERT_EQ(reference_parse("latest"), REFERENCE_TAG);
        ASSERT_EQ(reference_parse("v1.0"), REFERENCE_TAG);
        ASSERT_EQ(reference_parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                  REFERENCE_DIGEST);
        ASSERT_EQ(reference_parse("sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a"
                                  "274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
                  REFERENCE_DIGEST);
        /* the tag form of a digest (referrers tag schema) is a tag */
        ASSERT_EQ(reference_parse("sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                  REFERENCE_TAG);
        ASSERT_EQ(reference_parse(""), -EINVAL);
        ASSERT_EQ(reference_parse(NULL), -EINVAL);
        ASSERT_EQ(reference_parse(".x"), -EINVAL);
        ASSERT_EQ(reference_parse("sha256:abc"), -EINVAL);
        ASSERT_EQ(reference_parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"), -EINVAL);
        ASSERT_EQ(reference_parse("md5:d41d8cd98f00b204e9800998ecf8427e"), -EINVAL);
        ASSERT_EQ(reference_parse("latest:"), -EINVAL);
        ASSERT_EQ(reference_parse("../../x"), -EINVAL);
        char *s = malloc(130);
        ASSERT_TRUE(s);
        memset(s, 'a', 129);
        s[129] = 0;
        ASSERT_EQ(reference_parse(s), -EINVAL);
        free(s);
}

int main(void) {
        RUN(test_repo_names_valid);
        RUN(test_repo_names_invalid);
        RUN(test_repo_name_length);
        RUN(test_tags);
        RUN(test_references);
        return 0;
}
