/* SPDX-License-Identifier: MIT */
/* The GC's digest table: interning, lookup and names round-trip for sha256 and sha512; every
 * string that digest_parse() refuses is refused here too (the sha256 fast path must not accept
 * what the slow path rejects, nor read past a short string). */
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/storage.h"
#include "tests/unit/tests.h"

static void hex_digest(char out[DIGEST_MAX_LEN], const char *algo, unsigned n, unsigned seed) {
        static const char hex[] = "0123456789abcdef";
        size_t o = (size_t) snprintf(out, DIGEST_MAX_LEN, "%s:", algo);
        uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
        for (unsigned i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                out[o++] = hex[x & 15];
        }
        out[o] = 0;
}

TEST(test_round_trip) {
        DigestTable *t = digest_table_new();
        ASSERT_TRUE(t);
        char d[DIGEST_MAX_LEN], back[DIGEST_MAX_LEN];
        for (unsigned i = 0; i < 5000; i++) {
                hex_digest(d, i % 10 == 0 ? "sha512" : "sha256", i % 10 == 0 ? 128 : 64, i);
                uint32_t id = digest_table_intern(t, d);
                ASSERT_EQ(id, i);
                ASSERT_EQ(digest_table_intern(t, d), id); /* interned once */
        }
        ASSERT_EQ(digest_table_size(t), 5000);
        for (unsigned i = 0; i < 5000; i++) {
                hex_digest(d, i % 10 == 0 ? "sha512" : "sha256", i % 10 == 0 ? 128 : 64, i);
                ASSERT_EQ(digest_table_find(t, d), i);
                digest_table_name(t, i, back);
                ASSERT_STREQ(back, d);
        }
        hex_digest(d, "sha256", 64, 99999);
        ASSERT_EQ(digest_table_find(t, d), DT_NONE);
        digest_table_free(t);
}

TEST(test_refuses_what_digest_parse_refuses) {
        DigestTable *t = digest_table_new();
        ASSERT_TRUE(t);
        char good[DIGEST_MAX_LEN];
        hex_digest(good, "sha256", 64, 7);
        const char *bad[] = {
                "", "sha256", "sha256:", "sha256:abc", "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",   /* 63 digits */
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", /* 65 digits */
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ",
                "sha256e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ASSERT_TRUE(digest_parse(bad[i], NULL) < 0);
                ASSERT_EQ(digest_table_intern(t, bad[i]), DT_NONE);
                ASSERT_EQ(digest_table_find(t, bad[i]), DT_NONE);
        }
        /* every single-character corruption of a good digest */
        for (size_t pos = 0; pos < strlen(good); pos++)
                for (int c = 1; c < 256; c++) {
                        char d[DIGEST_MAX_LEN];
                        memcpy(d, good, sizeof d);
                        d[pos] = (char) c;
                        bool valid = digest_parse(d, NULL) == 0;
                        uint32_t id = digest_table_intern(t, d);
                        ASSERT_EQ(valid, id != DT_NONE);
                }
        ASSERT_EQ(digest_table_size(t), 1 + 15 * 64); /* the good one, 15 other hex digits per position */
        digest_table_free(t);
}

int main(void) {
        RUN(test_round_trip);
        RUN(test_refuses_what_digest_parse_refuses);
        return 0;
}
