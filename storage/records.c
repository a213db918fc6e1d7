/* SPDX-License-Identifier: MIT */
/* Typed iteration over the index's records (see storage.h, "typed iteration"): the key layouts
 * of store.c decoded in one place, so that no other module reads raw keys. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/records.h"
#include "storage/store-internal.h"

/* "repo\0" (or everything for repo NULL) */
static char *repo_prefix(const char *repo, size_t *ret_len) {
        if (!repo) {
                *ret_len = 0;
                return strdup("");
        }
        return index_key_join(ret_len, repo, "", NULL);
}

/* "a\0b" into its two NUL-terminated parts, copied into the buffers (false if malformed). */
static bool split2(const char *key, size_t klen, char *a, size_t alen, char *b, size_t blen) {
        const char *nul = memchr(key, 0, klen);
        if (!nul)
                return false;
        size_t al = (size_t) (nul - key), bl = klen - al - 1;
        if (al == 0 || al >= alen || bl == 0 || bl >= blen || memchr(nul + 1, 0, bl))
                return false;
        memcpy(a, key, al);
        a[al] = 0;
        memcpy(b, nul + 1, bl);
        b[bl] = 0;
        return true;
}

/* ---- repo_manifest */

typedef struct RepoManifestIter {
        RepoManifestFn fn;
        void *userdata;
} RepoManifestIter;

static int repo_manifest_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        RepoManifestIter *it = userdata;
        char repo[REPO_NAME_MAX + 1], digest[DIGEST_MAX_LEN];
        RepoManifestInfo info = {};
        if (!split2(key, klen, repo, sizeof repo, digest, sizeof digest))
                return 0; /* not a record of ours: fsck's concern */
        (void) repo_manifest_info_decode(val, vlen, &info);
        return it->fn(it->userdata, repo, digest, &info);
}

int store_repo_manifests_foreach(Store *s, IndexSnapshot *snap, const char *repo, RepoManifestFn fn, void *userdata) {
        size_t pl;
        _cleanup_free_ char *prefix = repo_prefix(repo, &pl);
        if (!prefix)
                return -ENOMEM;
        RepoManifestIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_REPO_MANIFEST, prefix, pl, NULL, 0, repo_manifest_cb, &it);
}

/* ---- repo_blob */

typedef struct RepoBlobIter {
        RepoBlobFn fn;
        void *userdata;
} RepoBlobIter;

static int repo_blob_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        RepoBlobIter *it = userdata;
        char repo[REPO_NAME_MAX + 1], digest[DIGEST_MAX_LEN];
        if (!split2(key, klen, repo, sizeof repo, digest, sizeof digest))
                return 0;
        int64_t linked = vlen >= REPO_BLOB_RECORD_SIZE ? (int64_t) get_u64_le((const uint8_t *) val + 1) : 0;
        return it->fn(it->userdata, repo, digest, linked);
}

int store_repo_blobs_foreach(Store *s, IndexSnapshot *snap, const char *repo, RepoBlobFn fn, void *userdata) {
        size_t pl;
        _cleanup_free_ char *prefix = repo_prefix(repo, &pl);
        if (!prefix)
                return -ENOMEM;
        RepoBlobIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_REPO_BLOB, prefix, pl, NULL, 0, repo_blob_cb, &it);
}

/* ---- tag */

typedef struct TagIter {
        TagFn fn;
        void *userdata;
} TagIter;

static int tag_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagIter *it = userdata;
        char repo[REPO_NAME_MAX + 1], tag[TAG_MAX + 1];
        TagInfo info;
        if (!split2(key, klen, repo, sizeof repo, tag, sizeof tag) || tag_info_decode(val, vlen, &info) < 0)
                return 0;
        return it->fn(it->userdata, repo, tag, &info);
}

int store_tags_foreach(Store *s, IndexSnapshot *snap, const char *repo, TagFn fn, void *userdata) {
        size_t pl;
        _cleanup_free_ char *prefix = repo_prefix(repo, &pl);
        if (!prefix)
                return -ENOMEM;
        TagIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_TAG, prefix, pl, NULL, 0, tag_cb, &it);
}

int store_tag_info(Store *s, IndexSnapshot *snap, const char *repo, const char *tag, TagInfo *ret) {
        size_t kl, vl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, tag, NULL), *v = NULL;
        if (!k)
                return -ENOMEM;
        int r = store_kv_get(s, snap, INDEX_TAG, k, kl, &v, &vl);
        if (r < 0)
                return r;
        return tag_info_decode(v, vl, ret);
}

/* ---- tag_history: repo\0tag\0seq(u64 BE) -> {digest, time, actor, action} */

typedef struct TagHistoryIter {
        TagHistoryFn fn;
        void *userdata;
} TagHistoryIter;

static int tag_history_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagHistoryIter *it = userdata;
        if (klen < 9 + 3 || key[klen - 9] != 0)
                return 0;
        char repo[REPO_NAME_MAX + 1], tag[TAG_MAX + 1];
        if (!split2(key, klen - 9, repo, sizeof repo, tag, sizeof tag))
                return 0;
        _cleanup_(json_decrefp) json_t *j = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(j))
                return 0;
        TagHistoryEntry e = {
                .repo = repo,
                .tag = tag,
                .seq = get_u64_be((const uint8_t *) key + klen - 8),
                .digest = json_string_value(json_object_get(j, "digest")),
                .time = json_integer_value(json_object_get(j, "time")),
                .actor = json_string_value(json_object_get(j, "actor")),
                .action = json_string_value(json_object_get(j, "action")),
        };
        return it->fn(it->userdata, &e);
}

int store_tag_history_foreach(Store *s, IndexSnapshot *snap, const char *repo, const char *tag, TagHistoryFn fn,
                              void *userdata) {
        size_t pl = 0;
        _cleanup_free_ char *prefix = !repo ? strdup("") : tag ? index_key_join(&pl, repo, tag, "", NULL) : repo_prefix(repo, &pl);
        if (!prefix)
                return -ENOMEM;
        TagHistoryIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_TAG_HISTORY, prefix, pl, NULL, 0, tag_history_cb, &it);
}

/* ---- blob */

typedef struct BlobIter {
        BlobFn fn;
        void *userdata;
} BlobIter;

static int blob_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        BlobIter *it = userdata;
        char digest[DIGEST_MAX_LEN];
        BlobInfo info;
        if (klen >= sizeof digest || blob_info_decode(val, vlen, &info) < 0)
                return 0;
        memcpy(digest, key, klen);
        digest[klen] = 0;
        return it->fn(it->userdata, digest, &info);
}

int store_blobs_foreach(Store *s, IndexSnapshot *snap, const char *prefix, BlobFn fn, void *userdata) {
        BlobIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_BLOB, prefix, prefix ? strlen(prefix) : 0, NULL, 0, blob_cb, &it);
}

/* ---- manifest: u32 meta_len + meta JSON + raw */

typedef struct ManifestIter {
        ManifestRecordFn fn;
        void *userdata;
} ManifestIter;

static int manifest_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ManifestIter *it = userdata;
        char digest[DIGEST_MAX_LEN];
        if (klen >= sizeof digest || vlen < 4)
                return 0;
        uint32_t ml = get_u32_le((const uint8_t *) val);
        if (ml > vlen - 4)
                return 0;
        memcpy(digest, key, klen);
        digest[klen] = 0;
        return it->fn(it->userdata, digest, val + 4, ml, val + 4 + ml, vlen - 4 - ml);
}

int store_manifests_foreach(Store *s, IndexSnapshot *snap, ManifestRecordFn fn, void *userdata) {
        ManifestIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_MANIFEST, NULL, 0, NULL, 0, manifest_cb, &it);
}

int store_manifest_record(Store *s, IndexSnapshot *snap, const char *digest, ManifestRecordFn fn, void *userdata) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = store_kv_get(s, snap, INDEX_MANIFEST, digest, strlen(digest), &v, &vl);
        if (r < 0)
                return r;
        uint32_t ml = vl >= 4 ? get_u32_le((const uint8_t *) v) : 0;
        if (vl < 4 || ml > vl - 4)
                return -EBADMSG;
        return fn(userdata, digest, v + 4, ml, v + 4 + ml, vl - 4 - ml);
}

int store_manifest_meta(Store *s, IndexSnapshot *snap, const char *digest, char **ret_meta, size_t *ret_len) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = store_kv_get(s, snap, INDEX_MANIFEST, digest, strlen(digest), &v, &vl);
        if (r < 0)
                return r;
        uint32_t ml = vl >= 4 ? get_u32_le((const uint8_t *) v) : UINT32_MAX;
        if (ml > vl - 4)
                return -EBADMSG;
        char *m = strndup(v + 4, ml);
        if (!m)
                return -ENOMEM;
        *ret_meta = m;
        if (ret_len)
                *ret_len = ml;
        return 0;
}

/* ---- whether any record exists under a repository */

int store_repo_manifest_exists(Store *s, IndexSnapshot *snap, const char *repo, const char *digest) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        if (!k)
                return -ENOMEM;
        int r = store_kv_get(s, snap, INDEX_REPO_MANIFEST, k, kl, NULL, NULL);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

int store_repo_manifest_info(Store *s, IndexSnapshot *snap, const char *repo, const char *digest, RepoManifestInfo *ret) {
        size_t kl, vl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL), *v = NULL;
        if (!k)
                return -ENOMEM;
        int r = store_kv_get(s, snap, INDEX_REPO_MANIFEST, k, kl, &v, &vl);
        if (r < 0)
                return r;
        *ret = (RepoManifestInfo) {};
        (void) repo_manifest_info_decode(v, vl, ret);
        return 0;
}

/* ---- repository names, from repo_manifest keys "repo\0digest" */

/* A repository with many manifests is stepped through this far, then sought past. */
#define REPO_NAME_STEPS_BEFORE_SEEK 32

typedef struct RepoNameIter {
        RepoNameFn fn;
        void *userdata;
        char last[REPO_NAME_MAX + 1];
        size_t last_len;
        unsigned repeats;
        bool seek;           /* stopped to seek past `last` */
} RepoNameIter;

static int repo_name_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        RepoNameIter *it = userdata;
        const char *z = memchr(key, 0, klen);
        size_t l = z ? (size_t) (z - key) : klen;
        if (l == 0 || l > REPO_NAME_MAX)
                return 0;
        if (it->last_len == l && memcmp(it->last, key, l) == 0) {
                if (++it->repeats < REPO_NAME_STEPS_BEFORE_SEEK)
                        return 0;
                it->seek = true;
                return 1;
        }
        it->repeats = 0;
        memcpy(it->last, key, l);
        it->last[l] = 0;
        it->last_len = l;
        return it->fn(it->userdata, it->last);
}

/* The key that every key of name (or, with below, of the names under "name/") sorts before. */
static char *repo_name_bound(const char *name, bool below, size_t *ret_len) {
        size_t l = strlen(name);
        char *k = malloc(l + 2);
        if (!k)
                return NULL;
        memcpy(k, name, l);
        k[l] = below ? '/' : 0;
        k[l + 1] = (char) 0xff; /* above every digest and name character */
        *ret_len = l + 2;
        return k;
}

int store_repo_names_foreach(Store *s, IndexSnapshot *snap, const char *prefix, const char *after, bool after_below,
                             RepoNameFn fn, void *userdata) {
        size_t pl = prefix ? strlen(prefix) : 0, bl = 0;
        _cleanup_free_ char *bound = after ? repo_name_bound(after, after_below, &bl) : NULL;
        if (after && !bound)
                return -ENOMEM;
        RepoNameIter it = { .fn = fn, .userdata = userdata };
        for (;;) {
                it.seek = false;
                int r = store_kv_iterate(s, snap, INDEX_REPO_MANIFEST, prefix, pl, bound, bound ? bl : 0, repo_name_cb, &it);
                if (r < 0 || !it.seek)
                        return r;
                free(bound);
                bound = repo_name_bound(it.last, false, &bl);
                if (!bound)
                        return -ENOMEM;
                it.repeats = 0;
        }
}

/* ---- the tags that have a history: tag_history keys "repo\0tag\0seq" */

typedef struct HistoryTagIter {
        TagNameFn fn;
        void *userdata;
        size_t plen;
        char *bound;         /* set when stopped to seek past a tag's entries */
        size_t bound_len;
        int result;          /* what fn returned, when it stopped the scan */
} HistoryTagIter;

static int history_tag_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        HistoryTagIter *it = userdata;
        const char *t = key + it->plen, *sep = memchr(t, 0, klen - it->plen);
        char repo[REPO_NAME_MAX + 1], tag[TAG_MAX + 1];
        if (!sep || sep == t || (size_t) (sep - t) > TAG_MAX || it->plen - 1 > REPO_NAME_MAX)
                return 0;
        memcpy(repo, key, it->plen - 1);
        repo[it->plen - 1] = 0;
        memcpy(tag, t, (size_t) (sep - t));
        tag[sep - t] = 0;
        int r = it->fn(it->userdata, repo, tag);
        if (r != 0) {
                it->result = r;
                return r;
        }
        /* the next tag: seek past "repo\0tag\0" and its sequence numbers */
        it->bound_len = (size_t) (sep - key) + 2;
        it->bound = malloc(it->bound_len);
        if (!it->bound)
                return -ENOMEM;
        memcpy(it->bound, key, it->bound_len - 1);
        it->bound[it->bound_len - 1] = (char) 0xff;
        return 1;
}

int store_history_tags_foreach(Store *s, IndexSnapshot *snap, const char *repo, TagNameFn fn, void *userdata) {
        size_t pl;
        _cleanup_free_ char *prefix = repo_prefix(repo, &pl);
        if (!prefix)
                return -ENOMEM;
        if (pl == 0)
                return -EINVAL;
        HistoryTagIter it = { .fn = fn, .userdata = userdata, .plen = pl };
        _cleanup_free_ char *bound = NULL;
        size_t bl = 0;
        for (;;) {
                int r = store_kv_iterate(s, snap, INDEX_TAG_HISTORY, prefix, pl, bound, bound ? bl : 0, history_tag_cb, &it);
                if (r < 0 || it.result != 0 || !it.bound)
                        return r;
                free(bound);
                bound = steal_pointer(&it.bound);
                bl = it.bound_len;
        }
}
