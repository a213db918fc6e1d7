/* SPDX-License-Identifier: MIT */
/* The tar entry table parser: ustar, PAX and GNU archives written by Python's tarfile, and
 * hand-crafted corrupt and malicious archives (make-test-tars.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fusefs/layer-index.h"
#include "tests/unit/tests.h"

static char dir[256];

static char *load(const char *name, size_t *ret_n) {
        char path[512];
        char *data;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        ASSERT_OK(read_full_file(path, 64 << 20, &data, ret_n));
        return data;
}

static const TarEntry *find(const TarIndex *t, const char *path) {
        const TarEntry *found = NULL;
        for (size_t i = 0; i < t->n_entries; i++)
                if (streq(t->entries[i].path, path))
                        found = t->entries + i;
        return found;
}

static int parse(const char *name, TarIndex **ret) {
        size_t n;
        _cleanup_free_ char *d = load(name, &n);
        char err[256] = "";
        int r = tar_index_build_from_buffer(d, n, ret, err, sizeof(err));
        if (r < 0)
                printf("# %s: %s\n", name, err);
        return r;
}

/* Feeding one byte at a time must give the same table as one buffer. */
static void check_bytewise(const char *name, const TarIndex *whole) {
        size_t n;
        _cleanup_free_ char *d = load(name, &n);
        _cleanup_(tar_parser_freep) TarParser *p = NULL;
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        ASSERT_OK(tar_parser_new(&p));
        for (size_t i = 0; i < n; i++)
                ASSERT_OK(tar_parser_feed(p, d + i, 1));
        ASSERT_OK(tar_parser_finish(p, &t));
        ASSERT_EQ(t->n_entries, whole->n_entries);
        for (size_t i = 0; i < t->n_entries; i++) {
                ASSERT_STREQ(t->entries[i].path, whole->entries[i].path);
                ASSERT_EQ(t->entries[i].offset, whole->entries[i].offset);
        }
}

static void check_common(const char *name) {
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        size_t n;
        _cleanup_free_ char *d = load(name, &n);
        ASSERT_OK(parse(name, &t));

        const TarEntry *e = find(t, "etc");
        ASSERT_TRUE(e && e->type == TAR_ENTRY_DIR && e->mode == 0755);
        e = find(t, "etc/os-release");
        ASSERT_TRUE(e && e->type == TAR_ENTRY_FILE);
        ASSERT_EQ(e->size, 16);
        ASSERT_EQ(e->mtime_ns, 1700000001LL * 1000000000LL);
        ASSERT_TRUE(memcmp(d + e->offset, "NAME=plura-test\n", 16) == 0);

        char longname[512];
        snprintf(longname, sizeof(longname), "deep/%0120d/%0150d.txt", 0, 0);
        for (char *c = longname + 5; c < longname + 125; c++)
                *c = 'd';
        for (char *c = longname + 126; c < longname + 276; c++)
                *c = 'f';
        e = find(t, longname);
        ASSERT_TRUE(e != NULL);
        ASSERT_EQ(e->uid, 3000000); /* PAX uid / GNU base-256 */
        ASSERT_EQ(e->gid, 42);
        ASSERT_TRUE(memcmp(d + e->offset, "long name content\n", 18) == 0);

        e = find(t, "bin/sh");
        ASSERT_TRUE(e && e->type == TAR_ENTRY_SYMLINK);
        ASSERT_STREQ(e->link, "busybox");
        e = find(t, "bin/longlink");
        ASSERT_TRUE(e && e->type == TAR_ENTRY_SYMLINK);
        ASSERT_EQ(strlen(e->link), 148);
        ASSERT_TRUE(startswith(e->link, "/target/ttt"));
        e = find(t, "bin/ls");
        ASSERT_TRUE(e && e->type == TAR_ENTRY_HARDLINK);
        ASSERT_STREQ(e->link, "bin/busybox");
        e = find(t, "bin/busybox");
        ASSERT_TRUE(e && e->size == 5004 && e->mode == 0755);
        ASSERT_TRUE(find(t, "etc/.wh.removed") != NULL);
        ASSERT_TRUE(find(t, "var/.wh..wh..opq") != NULL);
        ASSERT_TRUE(find(t, "dev/null") == NULL); /* devices are skipped */

        check_bytewise(name, t);

        /* serialization round trip */
        _cleanup_free_ char *ser = NULL;
        size_t sl;
        _cleanup_(tar_index_freep) TarIndex *t2 = NULL;
        ASSERT_OK(tar_index_serialize(t, &ser, &sl));
        ASSERT_OK(tar_index_deserialize(ser, sl, &t2));
        ASSERT_EQ(t2->n_entries, t->n_entries);
        ASSERT_EQ(t2->stream_size, t->stream_size);
        for (size_t i = 0; i < t->n_entries; i++) {
                ASSERT_STREQ(t2->entries[i].path, t->entries[i].path);
                ASSERT_TRUE(streq_ptr(t2->entries[i].link, t->entries[i].link));
                ASSERT_EQ(t2->entries[i].offset, t->entries[i].offset);
                ASSERT_EQ(t2->entries[i].mtime_ns, t->entries[i].mtime_ns);
        }
        /* a truncated or corrupted encoding is refused, never trusted */
        for (size_t cut = 0; cut < sl; cut += 7) {
                TarIndex *t3 = NULL;
                ASSERT_TRUE(tar_index_deserialize(ser, cut, &t3) < 0);
        }
}

TEST(test_pax) { check_common("pax.tar"); }
TEST(test_gnu) { check_common("gnu.tar"); }

TEST(test_ustar) {
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        ASSERT_OK(parse("ustar.tar", &t));
        ASSERT_EQ(t->n_entries, 2);
        ASSERT_STREQ(t->entries[0].path, "a/b/c.txt");
        ASSERT_STREQ(t->entries[1].path, "x");
}

TEST(test_empty) {
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        ASSERT_OK(parse("empty.tar", &t));
        ASSERT_EQ(t->n_entries, 0);
        TarIndex *t2 = NULL;
        ASSERT_OK(tar_index_build_from_buffer("", 0, &t2, NULL, 0));
        tar_index_free(t2);
}

TEST(test_absolute_names_are_rooted) {
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        ASSERT_OK(parse("absolute.tar", &t));
        ASSERT_STREQ(t->entries[0].path, "etc/passwd");
}

TEST(test_malicious) {
        static const char *const bad[] = {
                "traversal.tar", "traversal2.tar", "badsum.tar", "huge.tar", "truncated.tar", "selflink.tar",
                "linkescape.tar", "badpax.tar", "hugelongname.tar", "badnumber.tar",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                TarIndex *t = NULL;
                int r = parse(bad[i], &t);
                if (r >= 0)
                        fprintf(stderr, "%s parsed\n", bad[i]);
                ASSERT_TRUE(r < 0);
                ASSERT_TRUE(t == NULL);
        }
}

TEST(test_normalize) {
        static const struct {
                const char *in, *out;
        } ok[] = {
                { "./a/b", "a/b" }, { "/a//b/", "a/b" }, { "a/./b/../c", "a/c" }, { ".", "" }, { "./", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *o = NULL;
                ASSERT_OK(tar_path_normalize(ok[i].in, &o));
                ASSERT_STREQ(o, ok[i].out);
        }
        static const char *const bad[] = { "..", "../a", "a/../../b", "/..", "./../x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *o = NULL;
                ASSERT_TRUE(tar_path_normalize(bad[i], &o) < 0);
        }
}

TEST(test_random_garbage) {
        /* random bytes and random corruptions of a good archive: errors, never crashes */
        size_t n;
        _cleanup_free_ char *d = load("pax.tar", &n);
        srand(42);
        for (int round = 0; round < 2000; round++) {
                _cleanup_free_ char *c = malloc(n);
                memcpy(c, d, n);
                for (int k = 0; k < 1 + round % 8; k++)
                        c[rand() % n] = (char) rand();
                TarIndex *t = NULL;
                if (tar_index_build_from_buffer(c, n, &t, NULL, 0) >= 0) {
                        for (size_t i = 0; i < t->n_entries; i++) {
                                const char *q = t->entries[i].path;
                                ASSERT_TRUE(q && q[0] != '/' && !streq(q, "..") && !startswith(q, "../") &&
                                            !strstr(q, "/../") && !endswith(q, "/.."));
                        }
                        tar_index_free(t);
                }
        }
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/plura-test-tar-index.%d", (int) getpid());
        char cmd[1024];
        const char *src = getenv("PLURA_SOURCE_ROOT");
        snprintf(cmd, sizeof(cmd), "python3 %s/tests/unit/fusefs/make-test-tars.py %s", src ? src : ".", dir);
        ASSERT_EQ(system(cmd), 0);

        RUN(test_pax);
        RUN(test_gnu);
        RUN(test_ustar);
        RUN(test_empty);
        RUN(test_absolute_names_are_rooted);
        RUN(test_malicious);
        RUN(test_normalize);
        RUN(test_random_garbage);

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void) !system(cmd);
        return 0;
}
