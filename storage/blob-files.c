/* SPDX-License-Identifier: MIT */
/* What the blob backend holds, as a set: the walk that fsck and the GC's reconcile share, and
 * the removal of bytes without record (storage/gc-records.h). */
#include <errno.h>
#include <string.h>

#include "storage/blob-backend.h"
#include "storage/store-internal.h"

typedef struct Walk {
        StoreBlobFileFn fn;
        void *userdata;
} Walk;

static int walk_cb(void *userdata, const BlobBackendEntry *e) {
        Walk *w = userdata;
        StoreBlobFile f = { .digest = e->digest, .location = e->location, .entry = e };
        return w->fn(w->userdata, &f);
}

int store_blob_files_foreach(Store *s, StoreBlobFileFn fn, void *userdata) {
        return blob_backend_foreach(s->blobs, walk_cb, &(Walk) { .fn = fn, .userdata = userdata });
}

int store_blob_file_stat(Store *s, const StoreBlobFile *f, uint64_t *ret_size, int64_t *ret_mtime) {
        return blob_backend_entry_stat(s->blobs, f->entry, ret_size, ret_mtime);
}

int store_blob_file_exists(Store *s, const char *digest) {
        return blob_backend_exists(s->blobs, digest);
}

int store_orphan_remove(Store *s, const char *digest) {
        if (s->read_only)
                return -EROFS;
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        /* under the lock of every commit of the digest: a commit moves its bytes into place and
         * writes its record under it, so bytes found without record here are no commit's */
        store_digest_lock(s, digest);
        int r = index_get(s, s->live_cold, INDEX_BLOB, digest, strlen(digest), NULL, NULL);
        if (r == -ENOENT) {
                r = blob_backend_remove(s->blobs, digest, NULL);
                if (r >= 0)
                        r = 1; /* gone, also if someone else removed it first */
        } else if (r >= 0)
                r = 0; /* it has a record */
        store_digest_unlock(s, digest);
        return r;
}
