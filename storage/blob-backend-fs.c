/* SPDX-License-Identifier: MIT */
/* The file-system blob backend: the only code that knows the layout
 * <root>/blobs/<algorithm>/<hex[0:2]>/<hex> (blob-backend.h). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/blob-backend.h"
#include "storage/storage.h"

/* Group commit of the directory fsync that makes a blob's rename durable, one per fan-out
 * directory (<algorithm>/<2 hex>): a commit counts its rename, then waits for an fsync of the
 * directory that started after it was counted, running one itself when none is in flight. */
typedef struct DirSync {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t renamed; /* renames counted so far */
        uint64_t synced;  /* renames 1..synced are durable */
        bool syncing;
} DirSync;
#define DIR_SYNC_SLOTS (_DIGEST_ALGORITHM_MAX * 256U)

typedef struct FsBackend {
        BlobBackend base;
        char *root;  /* <store>/blobs */
        bool fsync;
        DirSync dir_syncs[DIR_SYNC_SLOTS];
        uint64_t n_dir_fsyncs;   /* atomic */
        unsigned sync_delay_us;  /* tests */
} FsBackend;

static const BlobBackendOps fs_ops;

static FsBackend *fs_of(BlobBackend *b) {
        assert(b->ops == &fs_ops);
        return (FsBackend *) b;
}

static const struct {
        DigestAlgorithm algo;
        const char *name;
        size_t hex_len;
} fs_algos[] = {
        { DIGEST_SHA256, "sha256", 64 },
        { DIGEST_SHA512, "sha512", 128 },
};

/* <root>/<algo>/<hex[0:2]>, and with the name <hex> */
static char *fs_dir(FsBackend *f, const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return NULL;
        return strdup_printf("%s/%s/%.2s", f->root, digest_algorithm_to_string(a), digest_hex(digest));
}

static char *fs_path(FsBackend *f, const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return NULL;
        const char *hex = digest_hex(digest);
        return strdup_printf("%s/%s/%.2s/%s", f->root, digest_algorithm_to_string(a), hex, hex);
}

static char *fs_location(BlobBackend *b, const char *digest) {
        return fs_path(fs_of(b), digest);
}

/* ---- commit */

static int fs_ensure_dir(FsBackend *f, const char *digest, char **ret_dir) {
        _cleanup_free_ char *dir = fs_dir(f, digest);
        if (!dir)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0) {
                if (errno != EEXIST) {
                        int r = -errno;
                        if (r != -ENOENT)
                                return r;
                        r = mkdir_p(dir, 0755);
                        if (r < 0)
                                return r;
                }
        } else if (f->fsync) {
                int r = fsync_directory_of(dir); /* the new xx/ entry itself */
                if (r < 0)
                        return r;
        }
        *ret_dir = steal_pointer(&dir);
        return 0;
}

static DirSync *fs_dir_sync_for(FsBackend *f, const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return NULL;
        uint8_t fan;
        if (hex_decode(digest_hex(digest), 2, &fan) < 0)
                return NULL;
        return &f->dir_syncs[(unsigned) a * 256U + fan];
}

/* Makes every rename into dir done before the call durable. Concurrent commits into the same
 * directory share fsyncs: whoever finds no fsync in flight runs one that covers every rename
 * counted before it started; the others wait for it, or for the next one if theirs came later. */
static int fs_dir_sync(FsBackend *f, const char *digest, const char *dir) {
        DirSync *d = fs_dir_sync_for(f, digest);
        if (!d)
                return fsync_path(dir);
        int r = 0;
        pthread_mutex_lock(&d->lock);
        uint64_t mine = ++d->renamed;
        while (d->synced < mine) {
                if (d->syncing) {
                        pthread_cond_wait(&d->cond, &d->lock);
                        continue;
                }
                d->syncing = true;
                uint64_t upto = d->renamed;
                pthread_mutex_unlock(&d->lock);
                unsigned delay = __atomic_load_n(&f->sync_delay_us, __ATOMIC_RELAXED);
                if (delay > 0)
                        usleep(delay);
                r = fsync_path(dir);
                __atomic_add_fetch(&f->n_dir_fsyncs, 1, __ATOMIC_RELAXED);
                pthread_mutex_lock(&d->lock);
                d->syncing = false;
                if (r >= 0 && upto > d->synced)
                        d->synced = upto;
                pthread_cond_broadcast(&d->cond);
                if (r < 0)
                        break; /* the waiters retry with an fsync of their own */
        }
        pthread_mutex_unlock(&d->lock);
        return r;
}

static int fs_commit(BlobBackend *b, const char *digest, const char *staged_path, int staged_fd) {
        FsBackend *f = fs_of(b);
        _cleanup_free_ char *dir = NULL, *path = NULL;
        int r = fs_ensure_dir(f, digest, &dir);
        if (r >= 0 && !(path = fs_path(f, digest)))
                r = -ENOMEM;
        if (r < 0) {
                unlink(staged_path);
                return r;
        }
        if (rename(staged_path, path) < 0) {
                r = -errno;
                unlink(staged_path);
                return r;
        }
        if (f->fsync) {
                r = fs_dir_sync(f, digest, dir);
                if (r < 0)
                        return r; /* renamed but maybe not durable: the caller writes no record */
        }
        return 0;
}

/* ---- exists, remove */

static int fs_exists(BlobBackend *b, const char *digest) {
        _cleanup_free_ char *path = fs_path(fs_of(b), digest);
        if (!path)
                return -ENOMEM;
        struct stat st;
        if (stat(path, &st) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

static int fs_remove(BlobBackend *b, const char *digest, uint64_t *ret_bytes) {
        _cleanup_free_ char *path = fs_path(fs_of(b), digest);
        if (!path)
                return -ENOMEM;
        if (ret_bytes)
                *ret_bytes = 0;
        struct stat st;
        uint64_t bytes = stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : log_error_errno(errno, "Cannot remove %s: %m", path);
        if (ret_bytes)
                *ret_bytes = bytes;
        return 1;
}

/* Removing the files of many sorted digests: each fan-out directory opened once. */
typedef struct FsRemover {
        BlobRemover base;
        FsBackend *f;
        int dir_fd;                  /* -1: none open yet; -errno: that directory could not be opened */
        char dir_of[DIGEST_MAX_LEN]; /* the digest it was opened for */
} FsRemover;

/* same algorithm and the same first two hex digits (both valid digests) */
static bool same_dir(const char *a, const char *b) {
        const char *ha = digest_hex(a), *hb = digest_hex(b);
        size_t la = (size_t) (ha - a);
        return la == (size_t) (hb - b) && memcmp(a, b, la + 2) == 0;
}

static int fs_remover_remove(BlobRemover *base, const char *digest) {
        FsRemover *rm = (FsRemover *) base;
        if (rm->dir_fd == -1 || !same_dir(digest, rm->dir_of)) {
                if (rm->dir_fd >= 0)
                        close(rm->dir_fd);
                _cleanup_free_ char *dir = fs_dir(rm->f, digest);
                if (!dir)
                        rm->dir_fd = -ENOMEM;
                else {
                        rm->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (rm->dir_fd < 0)
                                rm->dir_fd = -errno;
                }
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

static void fs_remover_free(BlobRemover *base) {
        FsRemover *rm = (FsRemover *) base;
        if (rm->dir_fd >= 0)
                close(rm->dir_fd);
        free(rm);
}

static const BlobRemoverOps fs_remover_ops = {
        .remove = fs_remover_remove,
        .free = fs_remover_free,
};

static int fs_remover_new(BlobBackend *b, BlobRemover **ret) {
        FsRemover *rm = calloc(1, sizeof(FsRemover));
        if (!rm)
                return -ENOMEM;
        rm->base.ops = &fs_remover_ops;
        rm->f = fs_of(b);
        rm->dir_fd = -1;
        *ret = &rm->base;
        return 0;
}

/* ---- reading */

typedef struct FsObject {
        BlobObject base;
        int fd;
        uint64_t size;
} FsObject;

static uint64_t fs_object_size(BlobObject *o) {
        return ((FsObject *) o)->size;
}

static ssize_t fs_object_pread(BlobObject *o, void *buf, size_t n, uint64_t offset) {
        return loop_pread(((FsObject *) o)->fd, buf, n, (off_t) offset);
}

static int fs_object_fd(BlobObject *o) {
        return ((FsObject *) o)->fd;
}

static void fs_object_free(BlobObject *o) {
        FsObject *x = (FsObject *) o;
        if (x->fd >= 0)
                close(x->fd);
        free(x);
}

static const BlobObjectOps fs_object_ops = {
        .size = fs_object_size,
        .pread = fs_object_pread,
        .fd = fs_object_fd,
        .free = fs_object_free,
};

static int fs_open(BlobBackend *b, const char *digest, BlobObject **ret) {
        _cleanup_free_ char *path = fs_path(fs_of(b), digest);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        FsObject *o = calloc(1, sizeof(FsObject));
        if (!o)
                return -ENOMEM;
        o->base.ops = &fs_object_ops;
        o->fd = take_fd(fd);
        o->size = (uint64_t) st.st_size;
        *ret = &o->base;
        return 0;
}

/* ---- the walk */

static bool is_lower_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

typedef struct FsEntry {
        int dir_fd;
        const char *name;
} FsEntry;

static int fs_entry_stat(BlobBackend *b, const BlobBackendEntry *e, uint64_t *ret_size, int64_t *ret_mtime) {
        const FsEntry *fe = e->impl;
        struct stat st;
        if (fstatat(fe->dir_fd, fe->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        if (ret_mtime)
                *ret_mtime = (int64_t) st.st_mtim.tv_sec * (int64_t) NSEC_PER_SEC + st.st_mtim.tv_nsec;
        return S_ISREG(st.st_mode) ? 1 : 0;
}

/* One <algo>/<2 hex> directory. */
static int fs_walk_dir(const char *algo, size_t hex_len, const char *dir, const char *fan, BlobBackendEntryFn fn,
                       void *userdata) {
        DIR *d = opendir(dir);
        if (!d)
                return 0; /* not a directory (fsck does not mind either) */
        int r = 0;
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                char digest[DIGEST_MAX_LEN];
                bool blob = is_lower_hex(de->d_name, hex_len) && strncmp(de->d_name, fan, 2) == 0 &&
                            snprintf(digest, sizeof digest, "%s:%s", algo, de->d_name) < (int) sizeof digest;
                /* on the stack: the GC's reconcile walks a million of these */
                char location[PATH_MAX];
                if (snprintf(location, sizeof location, "%s/%s", dir, de->d_name) >= (int) sizeof location) {
                        r = -ENAMETOOLONG;
                        break;
                }
                FsEntry fe = { .dir_fd = dirfd(d), .name = de->d_name };
                BlobBackendEntry e = { .digest = blob ? digest : NULL, .location = location, .impl = &fe };
                r = fn(userdata, &e);
        }
        closedir(d);
        return r;
}

static int fs_foreach(BlobBackend *b, BlobBackendEntryFn fn, void *userdata) {
        FsBackend *f = fs_of(b);
        for (size_t a = 0; a < ELEMENTSOF(fs_algos); a++) {
                _cleanup_free_ char *top = strdup_printf("%s/%s", f->root, fs_algos[a].name);
                if (!top)
                        return -ENOMEM;
                DIR *d = opendir(top);
                if (!d) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                int r = 0;
                struct dirent *de;
                while (r == 0 && (de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *sub = strdup_printf("%s/%s", top, de->d_name);
                        r = sub ? fs_walk_dir(fs_algos[a].name, fs_algos[a].hex_len, sub, de->d_name, fn, userdata) : -ENOMEM;
                }
                closedir(d);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return 0;
}

static int fs_quarantine(BlobBackend *b, const char *location, const char *dst_path) {
        FsBackend *f = fs_of(b);
        size_t n = strlen(f->root);
        if (strncmp(location, f->root, n) != 0 || location[n] != '/')
                return -EINVAL; /* not one of ours */
        if (rename(location, dst_path) < 0)
                return log_error_errno(errno, "Cannot move %s to %s: %m", location, dst_path);
        (void) fsync_directory_of(dst_path);
        (void) fsync_directory_of(location);
        return 0;
}

/* ---- set-up */

static void fs_free(BlobBackend *b) {
        FsBackend *f = fs_of(b);
        for (size_t i = 0; i < DIR_SYNC_SLOTS; i++) {
                pthread_mutex_destroy(&f->dir_syncs[i].lock);
                pthread_cond_destroy(&f->dir_syncs[i].cond);
        }
        free(f->root);
        free(f);
}

static const BlobBackendOps fs_ops = {
        .name = "filesystem",
        .commit = fs_commit,
        .exists = fs_exists,
        .remove = fs_remove,
        .remover_new = fs_remover_new,
        .open = fs_open,
        .foreach = fs_foreach,
        .entry_stat = fs_entry_stat,
        .quarantine = fs_quarantine,
        .location = fs_location,
        .free = fs_free,
};

int blob_backend_fs_new(const BlobBackendOptions *o, BlobBackend **ret) {
        assert(o && o->root && ret);
        FsBackend *f = calloc(1, sizeof(FsBackend));
        if (!f)
                return -ENOMEM;
        f->base.ops = &fs_ops;
        f->fsync = o->fsync;
        for (size_t i = 0; i < DIR_SYNC_SLOTS; i++) {
                pthread_mutex_init(&f->dir_syncs[i].lock, NULL);
                pthread_cond_init(&f->dir_syncs[i].cond, NULL);
        }
        f->root = strdup_printf("%s/blobs", o->root);
        if (!f->root) {
                fs_free(&f->base);
                return -ENOMEM;
        }
        if (!o->read_only)
                for (size_t a = 0; a < ELEMENTSOF(fs_algos); a++) {
                        _cleanup_free_ char *p = strdup_printf("%s/%s", f->root, fs_algos[a].name);
                        int r = p ? mkdir_p(p, 0755) : -ENOMEM;
                        if (r < 0) {
                                fs_free(&f->base);
                                return log_error_errno(r, "Cannot create %s: %m", p ? p : f->root);
                        }
                }
        *ret = &f->base;
        return 0;
}

uint64_t blob_backend_fs_dir_fsyncs(BlobBackend *b) {
        return __atomic_load_n(&fs_of(b)->n_dir_fsyncs, __ATOMIC_RELAXED);
}

void blob_backend_fs_set_sync_delay(BlobBackend *b, unsigned usec) {
        __atomic_store_n(&fs_of(b)->sync_delay_us, usec, __ATOMIC_RELAXED);
}
