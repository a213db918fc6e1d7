/* SPDX-License-Identifier: MIT */
/* The blob-backend interface (storage/blob-backend.h) over the file-system backend, on a real
 * directory: commit consumes the staged file, open reads with pread and offers an fd, remove and
 * the sorted remover answer 1/0, the walk names blobs and strays and stats on demand,
 * and quarantine moves out. (Concurrent commits sharing a directory fsync: test-upload.) */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage-test-helpers.h"
#include "storage/blob-backend.h"

static char *stage(const char *root, const char *content, char ret_digest[DIGEST_MAX_LEN], int *ret_fd) {
        ASSERT_OK(digest_buffer(DIGEST_SHA256, content, strlen(content), ret_digest));
        char *path = strdup_printf("%s/tmp/%s", root, digest_hex(ret_digest));
        ASSERT_TRUE(path);
        _cleanup_free_ char *tmp = strdup_printf("%s/tmp", root);
        ASSERT_OK(mkdir_p(tmp, 0755));
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        *ret_fd = fd;
        return path;
}

static BlobBackend *backend(const char *root) {
        BlobBackend *b = NULL;
        ASSERT_OK(blob_backend_fs_new(&(BlobBackendOptions) { .root = root, .fsync = true }, &b));
        return b;
}

TEST(test_commit_open_remove) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_(blob_backend_freep) BlobBackend *b = backend(root);
        char d[DIGEST_MAX_LEN];
        int fd;
        _cleanup_free_ char *staged = stage(root, "hello, backend", d, &fd);

        ASSERT_EQ(blob_backend_exists(b, d), 0);
        ASSERT_EQ(blob_backend_open(b, d, &(BlobObject *) { NULL }), -ENOENT);
        ASSERT_OK(blob_backend_commit(b, d, staged, fd));
        close(fd);
        ASSERT_EQ(access(staged, F_OK), -1); /* consumed */
        ASSERT_EQ(blob_backend_exists(b, d), 1);

        _cleanup_free_ char *loc = blob_backend_location(b, d);
        _cleanup_free_ char *want = strdup_printf("%s/blobs/sha256/%.2s/%s", root, digest_hex(d), digest_hex(d));
        ASSERT_STREQ(loc, want);
        ASSERT_TRUE(blob_backend_location(b, "sha256:nothex") == NULL);

        _cleanup_(blob_object_freep) BlobObject *o = NULL;
        ASSERT_OK(blob_backend_open(b, d, &o));
        ASSERT_EQ(blob_object_size(o), 14u);
        char buf[32] = "";
        ASSERT_EQ(blob_object_pread(o, buf, sizeof buf, 7), 7);
        ASSERT_TRUE(memcmp(buf, "backend", 7) == 0);
        ASSERT_EQ(blob_object_pread(o, buf, sizeof buf, 14), 0);
        ASSERT_TRUE(blob_object_fd(o) >= 0);

        uint64_t bytes = 0;
        ASSERT_EQ(blob_backend_remove(b, d, &bytes), 1);
        ASSERT_EQ(bytes, 14u);
        ASSERT_EQ(blob_backend_remove(b, d, &bytes), 0);
        ASSERT_EQ(bytes, 0u);
        ASSERT_EQ(blob_backend_exists(b, d), 0);
        /* the open object still reads what it opened */
        ASSERT_EQ(blob_object_pread(o, buf, 5, 0), 5);

        ASSERT_EQ(blob_backend_exists(b, "sha256:zz"), -EINVAL);

        /* a commit that cannot rename (the fan-out path is a file) fails and consumes the staged
         * file too */
        char d2[DIGEST_MAX_LEN];
        _cleanup_free_ char *staged2 = stage(root, "blocked", d2, &fd);
        _cleanup_free_ char *fan = strdup_printf("%s/blobs/sha256/%.2s", root, digest_hex(d2));
        rm_rf(fan);
        ASSERT_OK(write_file_atomic(fan, "x", 1, 0644));
        ASSERT_TRUE(blob_backend_commit(b, d2, staged2, fd) < 0);
        close(fd);
        ASSERT_EQ(access(staged2, F_OK), -1);
        rm_rf(root);
}

typedef struct Seen {
        BlobBackend *b;
        unsigned blobs, strays, regular;
        uint64_t bytes;
} Seen;

static int walk(void *userdata, const BlobBackendEntry *e) {
        Seen *w = userdata;
        uint64_t size;
        int64_t mtime;
        int r = blob_backend_entry_stat(w->b, e, &size, &mtime);
        ASSERT_TRUE(r >= 0);
        w->regular += r == 1 && mtime > 0;
        if (!e->digest)
                w->strays++;
        else {
                w->blobs++;
                w->bytes += size;
        }
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

TEST(test_remover_and_walk) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_(blob_backend_freep) BlobBackend *b = backend(root);
        char d[6][DIGEST_MAX_LEN];
        const char *contents[6] = { "one", "two", "three", "four", "five", "six" };
        for (size_t i = 0; i < 6; i++) {
                int fd;
                _cleanup_free_ char *staged = stage(root, contents[i], d[i], &fd);
                ASSERT_OK(blob_backend_commit(b, d[i], staged, fd));
                close(fd);
        }
        /* a stray in a fan-out directory and one beside them */
        _cleanup_free_ char *stray = strdup_printf("%s/blobs/sha256/%.2s/not-a-blob", root, digest_hex(d[0]));
        ASSERT_OK(write_file_atomic(stray, "x", 1, 0644));

        Seen seen = { .b = b };
        ASSERT_OK(blob_backend_foreach(b, walk, &seen));
        ASSERT_EQ(seen.blobs, 6u);
        ASSERT_EQ(seen.strays, 1u);
        ASSERT_EQ(seen.regular, 7u);
        ASSERT_EQ(seen.bytes, 3u + 3 + 5 + 4 + 4 + 3);

        /* sorted removal through one remover: 1 each, 0 the second time */
        const char *sorted[6];
        for (size_t i = 0; i < 6; i++)
                sorted[i] = d[i];
        qsort(sorted, 6, sizeof sorted[0], cmp_str);
        _cleanup_(blob_remover_freep) BlobRemover *rm = NULL;
        ASSERT_OK(blob_remover_new(b, &rm));
        for (size_t i = 0; i < 6; i++)
                ASSERT_EQ(blob_remover_remove(rm, sorted[i]), 1);
        for (size_t i = 0; i < 6; i++)
                ASSERT_EQ(blob_remover_remove(rm, sorted[i]), 0);

        /* quarantine moves the stray out; nothing of ours is left */
        _cleanup_free_ char *dst = strdup_printf("%s/quarantined", root);
        ASSERT_OK(blob_backend_quarantine(b, stray, dst));
        ASSERT_EQ(access(dst, F_OK), 0);
        ASSERT_EQ(blob_backend_quarantine(b, "/etc/passwd", dst), -EINVAL); /* not the backend's */
        seen = (Seen) { .b = b };
        ASSERT_OK(blob_backend_foreach(b, walk, &seen));
        ASSERT_EQ(seen.blobs + seen.strays, 0u);
        rm_rf(root);
}

int main(void) {
        RUN(test_commit_open_remove);
        RUN(test_remover_and_walk);
        return 0;
}
