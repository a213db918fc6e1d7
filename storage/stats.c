/* SPDX-License-Identifier: MIT */
/* store_stats(): what the store holds, counted from the index (see storage.h, "governance
 * records"), for the storage metrics of governance and the GC. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/records.h"
#include "storage/store-internal.h"

typedef struct StatsCtx {
        Store *s;
        IndexSnapshot *snap;
        StoreStats *st;
} StatsCtx;

static int blob_cb(void *userdata, const char *digest, const BlobInfo *info) {
        StoreStats *st = userdata;
        st->blobs++;
        st->blob_bytes += info->size;
        st->blob_stored_bytes += info->stored_size;
        return 0;
}

static int manifest_record_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        StoreStats *st = userdata;
        st->manifests++;
        st->manifest_bytes += vlen;
        return 0;
}

static int repo_manifest_cb(void *userdata, const char *repo, const char *digest, const RepoManifestInfo *info) {
        StatsCtx *c = userdata;
        size_t vlen;
        int r = index_get(c->s, c->snap, INDEX_MANIFEST, digest, strlen(digest), NULL, &vlen);
        if (r == -ENOENT)
                vlen = 0; /* a link without record: fsck's concern */
        else if (r < 0)
                return r;
        c->st->manifests++;
        c->st->manifest_bytes += vlen;
        return 0;
}

static int repo_blob_cb(void *userdata, const char *repo, const char *digest, int64_t linked) {
        StatsCtx *c = userdata;
        _cleanup_free_ char *v = NULL;
        size_t vl;
        BlobInfo bi;
        int r = index_get(c->s, c->snap, INDEX_BLOB, digest, strlen(digest), &v, &vl);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (blob_info_decode(v, vl, &bi) < 0)
                return 0;
        return blob_cb(c->st, digest, &bi);
}

int store_stats(Store *s, IndexSnapshot *snap, const char *repo, StoreStats *ret) {
        StoreStats st = {};
        int r;
        if (repo) {
                if (!repo_name_is_valid(repo))
                        return -EINVAL;
                StatsCtx c = { s, snap, &st };
                r = store_repo_manifests_foreach(s, snap, repo, repo_manifest_cb, &c);
                if (r >= 0)
                        r = store_repo_blobs_foreach(s, snap, repo, repo_blob_cb, &c);
        } else {
                r = store_blobs_foreach(s, snap, NULL, blob_cb, &st);
                if (r >= 0)
                        r = store_kv_iterate(s, snap, INDEX_MANIFEST, NULL, 0, NULL, 0, manifest_record_cb, &st);
        }
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}
