/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/util.h"
#include "storage/storage.h"
#include "tests/unit/tests.h"

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_EMPTY                                                                                   \
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2" \
        "877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                                     \
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23" \
        "a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
/* 3,000,000 zero bytes: crosses the 1 MiB read buffer of digest_fd twice, ends mid-buffer */
#define SHA256_3M_ZEROS "sha256:35bce4eae54ec8e6cc2868baa8d157914d6ae2858811b4cc0c078c94460fa26f"

TEST(test_vectors) {
        char d[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, "", 0, d));
        ASSERT_STREQ(d, SHA256_EMPTY);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, "abc", 3, d));
        ASSERT_STREQ(d, SHA256_ABC);
        ASSERT_OK(digest_buffer(DIGEST_SHA512, "", 0, d));
        ASSERT_STREQ(d, SHA512_EMPTY);
        ASSERT_EQ(strlen(d), DIGEST_MAX_LEN - 1);
        ASSERT_OK(digest_buffer(DIGEST_SHA512, "abc", 3, d));
        ASSERT_STREQ(d, SHA512_ABC);
        ASSERT_EQ(digest_buffer(_DIGEST_ALGORITHM_INVALID, "abc", 3, d), -EOPNOTSUPP);
}

TEST(test_streaming_equals_oneshot) {
        size_t n = 100000;
        uint8_t *buf = malloc(n);
        ASSERT_TRUE(buf);
        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t) (i * 131 + 7);
        for (DigestAlgorithm a = 0; a < _DIGEST_ALGORITHM_MAX; a++) {
                char one[DIGEST_MAX_LEN], streamed[DIGEST_MAX_LEN];
                ASSERT_OK(digest_buffer(a, buf, n, one));
                Hasher *h = NULL;
                ASSERT_OK(hasher_new(a, &h));
                /* uneven chunk sizes, including empty updates */
                size_t off = 0, step = 0;
                while (off < n) {
                        size_t k = MIN(step, n - off);
                        ASSERT_OK(hasher_update(h, buf + off, k));
                        off += k;
                        step = (step * 7 + 3) % 5000;
                }
                ASSERT_OK(hasher_final(h, streamed));
                ASSERT_STREQ(streamed, one);
                /* finalized: no more updates, no second final */
                ASSERT_EQ(hasher_update(h, "x", 1), -EINVAL);
                ASSERT_EQ(hasher_final(h, streamed), -EINVAL);
                ASSERT_TRUE(hasher_free(h) == NULL);
                DigestAlgorithm parsed;
                ASSERT_OK(digest_parse(one, &parsed));
                ASSERT_EQ(parsed, a);
        }
        free(buf);
}

TEST(test_digest_fd) {
        char path[] = "/tmp/plura-test-digest.XXXXXX";
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        unlink(path);
        char d[DIGEST_MAX_LEN];
        uint64_t size = 1;

        ASSERT_OK(digest_fd(DIGEST_SHA256, fd, d, &size));
        ASSERT_STREQ(d, SHA256_EMPTY);
        ASSERT_EQ(size, 0);

        size_t n = 3000000;
        uint8_t *zeros = calloc(1, n);
        ASSERT_TRUE(zeros);
        ASSERT_OK(loop_write(fd, zeros, n));
        free(zeros);
        /* the file position is at the end: digest_fd still hashes from offset 0 */
        ASSERT_OK(digest_fd(DIGEST_SHA256, fd, d, &size));
        ASSERT_STREQ(d, SHA256_3M_ZEROS);
        ASSERT_EQ(size, n);
        ASSERT_EQ(lseek(fd, 0, SEEK_CUR), (off_t) n);
        ASSERT_OK(digest_fd(DIGEST_SHA512, fd, d, NULL));
        ASSERT_TRUE(startswith(d, "sha512:"));
        ASSERT_EQ(strlen(d), 7 + 128);
        close(fd);

        ASSERT_EQ(digest_fd(DIGEST_SHA256, -1, d, &size), -EBADF);
        /* a directory can not be read */
        int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
        ASSERT_TRUE(dfd >= 0);
        ASSERT_EQ(digest_fd(DIGEST_SHA256, dfd, d, &size), -EISDIR);
        close(dfd);
}

TEST(test_parse_valid) {
        DigestAlgorithm a = _DIGEST_ALGORITHM_INVALID;
        ASSERT_OK(digest_parse(SHA256_ABC, &a));
        ASSERT_EQ(a, DIGEST_SHA256);
        ASSERT_OK(digest_parse(SHA512_ABC, &a));
        ASSERT_EQ(a, DIGEST_SHA512);
        ASSERT_OK(digest_parse(SHA256_EMPTY, NULL));
        ASSERT_STREQ(digest_hex(SHA256_ABC), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        ASSERT_TRUE(digest_hex("nocolon") == NULL);
        ASSERT_STREQ(digest_algorithm_to_string(DIGEST_SHA256), "sha256");
        ASSERT_STREQ(digest_algorithm_to_string(DIGEST_SHA512), "sha512");
        ASSERT_TRUE(digest_algorithm_to_string(_DIGEST_ALGORITHM_MAX) == NULL);
        ASSERT_TRUE(digest_algorithm_to_string(_DIGEST_ALGORITHM_INVALID) == NULL);
}

TEST(test_parse_unsupported) {
        /* well-formed per the grammar, but not an algorithm we implement */
        const char *ok_grammar[] = {
                "sha384:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "blake3:abc",
                "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
                "a.b_c-d+e:X=Y_Z-0",
                "sha:ABC",
                "sha2560:abc",
                "sha25:abc",
                "0:0",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok_grammar); i++) {
                int r = digest_parse(ok_grammar[i], NULL);
                if (r != -EOPNOTSUPP)
                        fprintf(stderr, "input: %s\n", ok_grammar[i]);
                ASSERT_EQ(r, -EOPNOTSUPP);
        }
}

TEST(test_parse_malformed) {
        const char *bad[] = {
                "",
                ":",
                "sha256",
                "sha256:",
                ":abc",
                "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", /* upper algo */
                "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", /* upper hex */
                "sha256:Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",   /* 63 */
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", /* 65 */
                "sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",  /* not hex */
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001=ad",  /* grammar ok, not hex */
                "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",  /* sha256 length */
                "sha512:" "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49",
                "sha256::ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad:",
                " sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
                "sha256 :ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "+sha256:abc",      /* leading separator */
                "sha256+:abc",      /* trailing separator */
                "sha++256:abc",     /* doubled separator */
                "sha/256:abc",      /* not a separator */
                "Sha256:abc",
                "sha256:ab/c",      /* not an encoded char */
                "sha256:ab.c",
                "sha256:ab+c",
                "foo:ab%2e",
                "../../etc/passwd",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                DigestAlgorithm a = DIGEST_SHA512;
                int r = digest_parse(bad[i], &a);
                if (r != -EINVAL)
                        fprintf(stderr, "input: \"%s\" -> %d\n", bad[i], r);
                ASSERT_EQ(r, -EINVAL);
                ASSERT_EQ(a, DIGEST_SHA512); /* untouched on failure */
        }
        ASSERT_EQ(digest_parse(NULL, NULL), -EINVAL);
}

int main(void) {
        RUN(test_vectors);
        RUN(test_streaming_equals_oneshot);
        RUN(test_digest_fd);
        RUN(test_parse_valid);
        RUN(test_parse_unsupported);
        RUN(test_parse_malformed);
        return 0;
}
