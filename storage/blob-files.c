/* SPDX-License-Identifier: MIT */
/* The blob files of the file-system layout <root>/blobs/<algo>/<hex[0:2]>/<hex> as a set: the walk
 * that fsck and the GC's reconcile share, and removal (see storage.h, "the GC's sweep"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/store-internal.h"

static bool is_lower_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static const struct {
        const char *algo;
        size_t hex_len;
} blob_algos[] = {
        { "sha256", 64 },
        { "sha512", 128 },
};

/* One <algo>/<2 hex> directory. */
static int walk_dir(const char *algo, size_t hex_len, const char *dir, const char *fan, StoreBlobFileFn fn, void *userdata) {
        DIR *d = opendir(dir);
        if (!d)
                return 0; /* not a directory (fsck does not mind either) */
        int r = 0;
        struct dirent *e;
        while (r == 0 && (e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                char digest[DIGEST_MAX_LEN];
                bool blob = is_lower_hex(e->d_name, hex_len) && strncmp(e->d_name, fan, 2) == 0 &&
                            snprintf(digest, sizeof digest, "%s:%s", algo, e->d_name) < (int) sizeof digest;
                StoreBlobFile f = { .digest = blob ? digest : NULL, .dir = dir, .name = e->d_name, .dir_fd = dirfd(d) };
                r = fn(userdata, &f);
        }
        closedir(d);
        return r;
}

int store_blob_files_foreach(Store *s, StoreBlobFileFn fn, void *userdata) {
        for (size_t a = 0; a < ELEMENTSOF(blob_algos); a++) {
                _cleanup_free_ char *top = strdup_printf("%s/blobs/%s", s->root, blob_algos[a].algo);
                if (!top)
                        return -ENOMEM;
                DIR *d = opendir(top);
                if (!d) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                int r = 0;
                struct dirent *e;
                while (r == 0 && (e = readdir(d))) {
                        if (e->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *sub = strdup_printf("%s/%s", top, e->d_name);
                        r = sub ? walk_dir(blob_algos[a].algo, blob_algos[a].hex_len, sub, e->d_name, fn, userdata) : -ENOMEM;
                }
                closedir(d);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return 0;
}

int store_blob_file_stat(const StoreBlobFile *f, uint64_t *ret_size, int64_t *ret_mtime) {
        struct stat st;
        if (fstatat(f->dir_fd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        if (ret_mtime)
                *ret_mtime = (int64_t) st.st_mtim.tv_sec * (int64_t) NSEC_PER_SEC + st.st_mtim.tv_nsec;
        return S_ISREG(st.st_mode) ? 1 : 0;
}

int store_blob_file_exists(Store *s, const char *digest) {
        _cleanup_free_ char *path = store_blob_path(s, digest);
        if (!path)
                return -EINVAL;
        struct stat st;
        if (stat(path, &st) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

/* ---- removal of many files of sorted digests: each directory opened once */

void blob_file_remover_done(BlobFileRemover *rm) {
        closep(&rm->dir_fd);
}

int blob_file_remove(Store *s, BlobFileRemover *rm, const char *digest) {
        if (rm->dir_fd == -1 || !store_blob_dir_same(digest, rm->dir_of)) {
                closep(&rm->dir_fd);
                rm->dir_fd = store_blob_dir_open(s, digest);
                snprintf(rm->dir_of, sizeof rm->dir_of, "%s", digest);
        }
        if (rm->dir_fd == -ENOENT)
                return 0; /* no directory, no file */
        if (rm->dir_fd < 0)
                return rm->dir_fd;
        if (unlinkat(rm->dir_fd, digest_hex(digest), 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}

int store_orphan_remove(Store *s, const char *digest) {
        if (s->read_only)
                return -EROFS;
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        /* under the lock of every commit of the digest: a commit renames its file into place
         * and writes its record under it, so a file found without record here is no commit's */
        store_digest_lock(s, digest);
        int r = index_get(s, s->live_cold, INDEX_BLOB, digest, strlen(digest), NULL, NULL);
        if (r == -ENOENT) {
                BlobFileRemover rm = BLOB_FILE_REMOVER_INIT;
                r = blob_file_remove(s, &rm, digest);
                blob_file_remover_done(&rm);
                if (r >= 0)
                        r = 1; /* gone, also if someone else removed it first */
        } else if (r >= 0)
                r = 0; /* it has a record */
        store_digest_unlock(s, digest);
        return r;
}
