/* SPDX-License-Identifier: MIT */
/* The blob-backend verbs: each dispatches to the backend's implementation (blob-backend.h). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "storage/blob-backend.h"
#include "storage/storage.h"

BlobBackend *blob_backend_free(BlobBackend *b) {
        if (b)
                b->ops->free(b);
        return NULL;
}

int blob_backend_commit(BlobBackend *b, const char *digest, const char *staged_path, int staged_fd) {
        assert(b && digest && staged_path);
        return b->ops->commit(b, digest, staged_path, staged_fd);
}

int blob_backend_exists(BlobBackend *b, const char *digest) {
        assert(b);
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        return b->ops->exists(b, digest);
}

int blob_backend_remove(BlobBackend *b, const char *digest, uint64_t *ret_bytes) {
        assert(b);
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        return b->ops->remove(b, digest, ret_bytes);
}

int blob_remover_new(BlobBackend *b, BlobRemover **ret) {
        assert(b && ret);
        return b->ops->remover_new(b, ret);
}

int blob_remover_remove(BlobRemover *rm, const char *digest) {
        assert(rm);
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        return rm->ops->remove(rm, digest);
}

BlobRemover *blob_remover_free(BlobRemover *rm) {
        if (rm)
                rm->ops->free(rm);
        return NULL;
}

int blob_backend_open(BlobBackend *b, const char *digest, BlobObject **ret) {
        assert(b && ret);
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        return b->ops->open(b, digest, ret);
}

uint64_t blob_object_size(BlobObject *o) {
        return o->ops->size(o);
}

ssize_t blob_object_pread(BlobObject *o, void *buf, size_t n, uint64_t offset) {
        return o->ops->pread(o, buf, n, offset);
}

int blob_object_fd(BlobObject *o) {
        return o->ops->fd ? o->ops->fd(o) : -1;
}

BlobObject *blob_object_free(BlobObject *o) {
        if (o)
                o->ops->free(o);
        return NULL;
}

int blob_backend_foreach(BlobBackend *b, BlobBackendEntryFn fn, void *userdata) {
        assert(b && fn);
        return b->ops->foreach(b, fn, userdata);
}

int blob_backend_entry_stat(BlobBackend *b, const BlobBackendEntry *e, uint64_t *ret_size, int64_t *ret_mtime) {
        assert(b && e);
        return b->ops->entry_stat(b, e, ret_size, ret_mtime);
}

int blob_backend_quarantine(BlobBackend *b, const char *location, const char *dst_path) {
        assert(b && location && dst_path);
        return b->ops->quarantine(b, location, dst_path);
}

char *blob_backend_location(BlobBackend *b, const char *digest) {
        assert(b);
        if (!digest || digest_parse(digest, NULL) < 0)
                return NULL;
        return b->ops->location(b, digest);
}
