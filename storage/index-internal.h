/* SPDX-License-Identifier: MIT */
#pragma once

/* The index as key/value columns: for storage/'s own files and its unit tests only. The other
 * modules call the typed verbs of storage.h and its topic headers (`grep -rn
 * 'store_kv_\|index_batch_\|INDEX_[A-Z_]*' gc governance registry-api fusefs tools` finds nothing). */

#include "storage/records.h"
#include "storage/storage.h"

/* ---- raw index access: storage/ only (and its unit tests). Every record has one owner in
 * storage/ and typed verbs in the public headers; no other module names a column or a key. */

typedef enum IndexColumn {
        INDEX_BLOB,
        INDEX_MANIFEST,
        INDEX_REPO_MANIFEST,
        INDEX_REPO_BLOB,
        INDEX_TAG,
        INDEX_TAG_HISTORY,
        INDEX_REFERRER,
        INDEX_UPLOAD,
        INDEX_CHANNEL_HISTORY,
        INDEX_HOLD,
        INDEX_BLOCK,
        INDEX_AUDIT,
        INDEX_LAYER_FS,
        INDEX_META,
        INDEX_TOKEN,
        _INDEX_COLUMN_MAX,
        _INDEX_COLUMN_INVALID = -1,
} IndexColumn;

const char *index_column_to_string(IndexColumn c);

/* Key and value formats (all integers little endian in values, big endian in keys so they
 * sort; times are ns since the epoch; "\0" is a NUL separator; seq is a u64 big endian):
 *   blob            digest                          -> binary v1, blob_info_decode()
 *   manifest        digest                          -> u32 meta_len + meta JSON + raw manifest bytes
 *   repo_manifest   repo\0digest                    -> binary v1, repo_manifest_info_decode()
 *   repo_blob       repo\0digest                    -> binary v1 {u8 version, i64 linked}
 *   tag             repo\0tag                       -> binary v1, tag_info_decode()
 *   tag_history     repo\0tag\0seq                  -> JSON {digest, time, actor, action}
 *   referrer        repo\0subject\0digest           -> JSON OCI descriptor (mediaType, digest, size,
 *                                                      artifactType, annotations)
 *   upload          uuid                            -> JSON {repo, started, updated, offset}
 *   channel_history env\0svc\0pointer\0seq          -> JSON {digest, time, actor, action, previous}
 *   hold            digest\0case_id                 -> JSON HoldInfo fields (see holds below)
 *   block           digest                          -> JSON {reason, cves[], severity, time, actor}
 *   audit           time(u64 BE)\0seq               -> JSON {time, actor, action, target, result, detail}
 *   layer_fs        layer digest\0...               -> fusefs-defined
 *   token           id (32 hex)                     -> JSON ApiToken fields (see API tokens below)
 *   meta            name                            -> "schema_version" (text), "gc/last",
 *                                                      "gc/report/<time u64 BE>" (JSON), counters */

#define INDEX_SCHEMA_VERSION 1

/* Keys join components with a NUL byte: "repo\0digest". */
char *index_key_join(size_t *ret_len, const char *first, ...) /* NULL-terminated */;

/* -ENOENT if absent. *ret is malloc()ed and NUL-terminated beyond *ret_len. snap may be NULL. */
int store_kv_get(Store *s, IndexSnapshot *snap, IndexColumn c, const void *key, size_t klen, char **ret, size_t *ret_len);
/* n keys in one lookup, in any order: fn(userdata, i, val, vlen) for each, val NULL when keys[i]
 * is absent; the values are valid during the call only. Keys that share a data block find it
 * read once (many single gets each decompress it again when reads bypass the block cache). A
 * callback's error is returned after all keys were handed over. */
typedef int (*IndexValueFn)(void *userdata, size_t i, const char *val, size_t vlen);
int store_kv_multi_get(Store *s, IndexSnapshot *snap, IndexColumn c, const char *const *keys, const size_t *klens,
                       size_t n, IndexValueFn fn, void *userdata);
int store_kv_put(Store *s, IndexColumn c, const void *key, size_t klen, const void *val, size_t vlen);
int store_kv_delete(Store *s, IndexColumn c, const void *key, size_t klen);

/* Iterates keys starting with prefix (plen may be 0), starting after `after` if given.
 * The callback returns 0 to go on, 1 to stop, negative to abort with that error. */
typedef int (*IndexIterFn)(void *userdata, const char *key, size_t klen, const char *val, size_t vlen);
int store_kv_iterate(Store *s, IndexSnapshot *snap, IndexColumn c, const void *prefix, size_t plen,
                     const void *after, size_t alen, IndexIterFn fn, void *userdata);

typedef struct IndexBatch IndexBatch;
IndexBatch *index_batch_new(void);
void index_batch_put(IndexBatch *b, IndexColumn c, const void *key, size_t klen, const void *val, size_t vlen);
void index_batch_delete(IndexBatch *b, IndexColumn c, const void *key, size_t klen);
int store_batch_commit(Store *s, IndexBatch *b); /* synced WAL */
IndexBatch *index_batch_free(IndexBatch *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(IndexBatch *, index_batch_free);

/* Monotonic per-store sequence for append-only column keys (history, audit). */
uint64_t store_next_seq(Store *s);

/* Decoders of the hot binary records, for scans. */
int blob_info_decode(const char *val, size_t vlen, BlobInfo *ret);
int tag_info_decode(const char *val, size_t vlen, TagInfo *ret);

int repo_manifest_info_decode(const char *val, size_t vlen, RepoManifestInfo *ret);
