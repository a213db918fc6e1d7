/* SPDX-License-Identifier: MIT */
/* zran-style random access into gzip layers: build the entry table and checkpoints in one
 * pass over a multi-MiB tar.gz, then read a file near the end and check that it matches and
 * that far less than the layer was inflated to get it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "fusefs/layer-index.h"
#include "tests/unit/tests.h"

static char dir[256];

static ssize_t read_fd(void *userdata, void *buf, size_t n, uint64_t offset) {
        return loop_pread(*(int *) userdata, buf, n, (off_t) offset);
}

static char *path_of(const char *name) {
        return strdup_printf("%s/%s", dir, name);
}

static char *load(const char *name, size_t *n) {
        _cleanup_free_ char *p = path_of(name);
        char *d;
        ASSERT_OK(read_full_file(p, 256 << 20, &d, n));
        return d;
}

static const TarEntry *find(const TarIndex *t, const char *path) {
        for (size_t i = 0; i < t->n_entries; i++)
                if (streq(t->entries[i].path, path))
                        return t->entries + i;
        return NULL;
}

static void check_layer(const char *layer, bool multi_member) {
        _cleanup_free_ char *lp = path_of(layer);
        _cleanup_close_ int fd = open(lp, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        off_t layer_size = lseek(fd, 0, SEEK_END);
        uint8_t magic[4];
        ASSERT_EQ(loop_pread(fd, magic, 4, 0), 4);
        ASSERT_EQ(layer_compression_detect(magic, 4), LAYER_GZIP);

        _cleanup_(tar_parser_freep) TarParser *p = NULL;
        _cleanup_(gz_index_freep) GzIndex *g = NULL;
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        ASSERT_OK(tar_parser_new(&p));
        ASSERT_OK(gz_index_build(read_fd, &fd, 1 << 20, UINT64_C(1) << 34, p, &g));
        ASSERT_OK(tar_parser_finish(p, &t));
        printf("# %s: %zu entries, %zu checkpoints, %" PRIu64 " -> %" PRIu64 " bytes\n", layer, t->n_entries,
               g->n_points, g->in_size, g->out_size);
        ASSERT_TRUE(g->n_points >= 4);
        ASSERT_EQ(g->in_size, (uint64_t) layer_size);

        /* round-trip the checkpoints through their encoding, as fs.c does via layer_fs */
        _cleanup_free_ char *hdr = NULL;
        size_t hl;
        ASSERT_OK(gz_index_serialize_header(g, &hdr, &hl));
        _cleanup_(gz_index_freep) GzIndex *g2 = NULL;
        int np = gz_index_deserialize_header(hdr, hl, &g2);
        ASSERT_EQ(np, (int) g->n_points);
        for (int i = 0; i < np; i++) {
                _cleanup_free_ char *c = NULL;
                size_t cl;
                ASSERT_OK(gz_checkpoint_serialize(g->points + i, &c, &cl));
                ASSERT_OK(gz_checkpoint_deserialize(c, cl, g2->points + i));
                g2->n_points++;
        }

        size_t n;
        _cleanup_free_ char *last = load("last.bin", &n);
        const TarEntry *e = find(t, "z/last.bin");
        ASSERT_TRUE(e != NULL);
        ASSERT_EQ(e->size, n);

        _cleanup_(gz_cursor_freep) GzCursor *c = NULL;
        ASSERT_OK(gz_cursor_new(g2, read_fd, &fd, &c));
        _cleanup_free_ char *buf = malloc(n);
        uint64_t before = gz_bytes_inflated();
        ASSERT_EQ(gz_cursor_pread(c, buf, n, e->offset), (ssize_t) n);
        uint64_t inflated = gz_bytes_inflated() - before;
        ASSERT_TRUE(memcmp(buf, last, n) == 0);
        printf("# read %zu bytes at %" PRIu64 ", inflated %" PRIu64 " of %" PRIu64 "\n", n, e->offset, inflated,
               g->out_size);
        ASSERT_TRUE(inflated <= (1 << 20) + n + 256 * 1024); /* at most one span plus the file */
        ASSERT_TRUE(inflated * 4 < g->out_size);

        /* every file, read in odd-sized pieces in random order, matches tar's view */
        _cleanup_free_ char *tarball = load("layer.tar", &n);
        ASSERT_EQ(n, g->out_size);
        srand(7);
        for (int round = 0; round < 300; round++) {
                uint64_t off = (uint64_t) rand() % n;
                size_t len = (size_t) (rand() % 200000) + 1;
                _cleanup_free_ char *b = malloc(len);
                ssize_t k = gz_cursor_pread(c, b, len, off);
                ASSERT_EQ(k, (ssize_t) MIN(len, n - off));
                ASSERT_TRUE(memcmp(b, tarball + off, (size_t) k) == 0);
        }
        /* sequential reading continues the stream instead of restarting at a checkpoint */
        before = gz_bytes_inflated();
        _cleanup_free_ char *all = malloc(n);
        for (size_t off = 0; off < n; off += 131072) {
                ssize_t k = gz_cursor_pread(c, all + off, MIN((size_t) 131072, n - off), off);
                ASSERT_TRUE(k > 0);
        }
        ASSERT_TRUE(memcmp(all, tarball, n) == 0);
        ASSERT_TRUE(gz_bytes_inflated() - before <= n + (1 << 20));
        ASSERT_EQ(gz_cursor_pread(c, all, 10, n), 0);
        (void) multi_member;
}

TEST(test_single_member) { check_layer("layer.tar.gz", false); }
TEST(test_multi_member) { check_layer("layer-multi.tar.gz", true); }

TEST(test_corrupt_gzip) {
        size_t n;
        _cleanup_free_ char *d = load("layer.tar.gz", &n);
        _cleanup_free_ char *p = path_of("corrupt.gz");
        /* flip bytes in the middle, and truncate */
        for (size_t i = n / 2; i < n / 2 + 64; i++)
                d[i] ^= 0x5a;
        ASSERT_OK(write_file_atomic(p, d, n, 0644));
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        _cleanup_(tar_parser_freep) TarParser *tp = NULL;
        GzIndex *g = NULL;
        ASSERT_OK(tar_parser_new(&tp));
        ASSERT_TRUE(gz_index_build(read_fd, &fd, 1 << 20, UINT64_C(1) << 34, tp, &g) < 0);

        _cleanup_free_ char *d2 = load("layer.tar.gz", &n);
        _cleanup_free_ char *p2 = path_of("truncated.gz");
        ASSERT_OK(write_file_atomic(p2, d2, n - 1000, 0644));
        _cleanup_close_ int fd2 = open(p2, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(gz_index_build(read_fd, &fd2, 1 << 20, UINT64_C(1) << 34, NULL, &g) < 0);

        /* a zip bomb is stopped at max_out */
        _cleanup_free_ char *p3 = path_of("layer.tar.gz");
        _cleanup_close_ int fd3 = open(p3, O_RDONLY | O_CLOEXEC);
        ASSERT_EQ(gz_index_build(read_fd, &fd3, 1 << 20, 1 << 20, NULL, &g), -EFBIG);
}

TEST(test_zstd) {
        _cleanup_free_ char *p = path_of("layer.tar.zst");
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        uint8_t magic[4];
        ASSERT_EQ(loop_pread(fd, magic, 4, 0), 4);
        ASSERT_EQ(layer_compression_detect(magic, 4), LAYER_ZSTD);
        _cleanup_free_ char *outp = path_of("zstd.out");
        _cleanup_close_ int out = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        _cleanup_(tar_parser_freep) TarParser *tp = NULL;
        _cleanup_(tar_index_freep) TarIndex *t = NULL;
        uint64_t size;
        ASSERT_OK(tar_parser_new(&tp));
        ASSERT_OK(zstd_layer_decompress(read_fd, &fd, UINT64_C(1) << 34, out, tp, &size));
        ASSERT_OK(tar_parser_finish(tp, &t));
        size_t n, ln;
        _cleanup_free_ char *tarball = load("layer.tar", &n);
        _cleanup_free_ char *last = load("last.bin", &ln);
        ASSERT_EQ(size, n);
        const TarEntry *e = find(t, "z/last.bin");
        ASSERT_TRUE(e != NULL);
        _cleanup_free_ char *b = malloc(ln);
        ASSERT_EQ(loop_pread(out, b, ln, (off_t) e->offset), (ssize_t) ln);
        ASSERT_TRUE(memcmp(b, last, ln) == 0);
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/plura-test-gzip-index.%d", (int) getpid());
        ASSERT_OK(mkdir_p(dir, 0755));
        char cmd[1024];
        const char *src = getenv("PLURA_SOURCE_ROOT");
        snprintf(cmd, sizeof(cmd), "python3 %s/tests/unit/fusefs/make-test-layers.py %s", src ? src : ".", dir);
        ASSERT_EQ(system(cmd), 0);

        RUN(test_single_member);
        RUN(test_multi_member);
        RUN(test_corrupt_gzip);
        RUN(test_zstd);

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void) !system(cmd);
        return 0;
}
