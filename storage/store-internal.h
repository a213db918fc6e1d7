/* SPDX-License-Identifier: MIT */
#pragma once

/* Internals shared by index.c, blob-store.c, upload.c, store.c and fsck.c. Other modules use
 * storage.h only. */

#include <pthread.h>
#include <rocksdb/c.h>

#include "common/util.h"
#include "storage/blob-backend.h"
#include "storage/fsck.h"
#include "storage/gc-records.h"
#include "storage/governance-records.h"
#include "storage/holds.h"
#include "storage/index-internal.h"
#include "storage/layer-fs.h"
#include "storage/records.h"
#include "storage/storage.h"
#include "storage/tokens.h"

#define DIGEST_LOCK_STRIPES 4096U
_Static_assert(DIGEST_LOCK_STRIPES == STORE_DIGEST_STRIPES, "storage.h tells the GC the stripe count");
#define TAG_LOCK_STRIPES 1024U
#define SEQ_RESERVE_BLOCK 1000U
#define PULL_FLUSH_INTERVAL_NS (5 * (int64_t) NSEC_PER_SEC)

typedef struct PullEntry PullEntry;
typedef struct UploadClient UploadClient;
#define UPLOAD_CLIENT_BUCKETS 256U

struct Store {
        char *root;
        char *index_dir;
        char *secondary_dir;
        bool zstd_at_rest;
        int zstd_level;
        bool fsync;
        bool read_only;

        rocksdb_t *db;
        rocksdb_options_t *db_options;
        rocksdb_cache_t *cache;
        rocksdb_block_based_table_options_t *table_options;
        rocksdb_options_t *cf_options;
        rocksdb_column_family_handle_t **cf_handles; /* every CF that was opened */
        size_t n_cf_handles;
        rocksdb_column_family_handle_t *cf[_INDEX_COLUMN_MAX];
        rocksdb_writeoptions_t *write_sync;  /* sync = options.fsync */
        rocksdb_writeoptions_t *write_async; /* advisory records (last pulled, upload offset) */
        rocksdb_readoptions_t *read_options;
        rocksdb_readoptions_t *read_cold; /* read_options without filling the block cache */
        IndexSnapshot *live_cold;         /* reads of the current state through read_cold (bulk maintenance) */
        int index_write_error;            /* atomic: -errno of the last index write, 0 if it worked */
        uint64_t index_room;              /* free space readiness wants: one memtable (IndexSizes) */

        pthread_mutex_t digest_locks[DIGEST_LOCK_STRIPES];
        uint32_t digest_gen[DIGEST_LOCK_STRIPES]; /* atomic; see store_digest_generations() */
        pthread_mutex_t tag_locks[TAG_LOCK_STRIPES];

        BlobBackend *blobs; /* where the blobs' bytes live (blob-backend.h) */

        pthread_mutex_t seq_lock;
        uint64_t seq_next, seq_limit;

        /* upload sessions in use or known since open; and every open session (records) counted
         * per client and in total, against the limits store_upload_begin() is given */
        pthread_mutex_t uploads_lock;
        Upload *uploads;
        UploadClient *upload_clients[UPLOAD_CLIENT_BUCKETS];
        unsigned upload_sessions;

        /* last-pulled batching */
        pthread_mutex_t pulls_lock;
        pthread_cond_t pulls_cond;
        PullEntry **pulls; /* hash buckets */
        size_t n_pulls;
        bool pulls_stop;
        bool pulls_thread_started;
        pthread_t pulls_thread;
        pthread_mutex_t pulls_flush_lock; /* one flush at a time */

        pthread_mutex_t policy_lock;
        TagPolicyFn tag_policy;
        void *tag_policy_userdata;

        pthread_mutex_t counters_lock; /* governance counters: read, add, write back */
};

/* ---- index.c */
struct IndexSnapshot {
        Store *store;
        const rocksdb_snapshot_t *snap; /* NULL: reads see the current state */
        rocksdb_readoptions_t *ro;
        uint32_t *generations;          /* StoreSnapshotOptions.generations: DIGEST_LOCK_STRIPES of them */
};
int index_open(Store *s);
/* Sizes of the index's files that follow the size of the data volume (0: unknown, large). */
typedef struct IndexSizes {
        uint64_t write_buffer;      /* one column family's memtable */
        uint64_t wal_max;           /* all WAL files together before the oldest memtables flush */
        uint64_t manifest_prealloc; /* manifest preallocation */
} IndexSizes;
void index_sizes_for_volume(uint64_t volume_bytes, IndexSizes *ret);
/* A RocksDB error string as -errno (0 for NULL): ENOSPC for a full volume, EBUSY for the lock ... */
int index_error_to_errno(const char *e);
/* -ENOSPC when the volume has less free than index_room; else 0 unless the last index write
 * failed and a probe write still fails (then its -errno). */
int index_check_writable(Store *s);
void index_close(Store *s);
int index_get(Store *s, IndexSnapshot *snap, IndexColumn c, const void *key, size_t klen, char **ret, size_t *ret_len);
/* fn(userdata, i, value, len) for each key i in order, value NULL if absent; keys sorted. */
int index_multi_get(Store *s, IndexSnapshot *snap, IndexColumn c, const char *const *keys, const size_t *klens,
                    size_t n, bool sorted, IndexValueFn fn, void *userdata);
/* Commits with the synced (true) or the advisory write options. */
int index_batch_commit_full(Store *s, IndexBatch *b, bool sync);
bool index_batch_is_empty(IndexBatch *b);
void put_u32_le(uint8_t *p, uint32_t v);
void put_u64_le(uint8_t *p, uint64_t v);
uint32_t get_u32_le(const uint8_t *p);
uint64_t get_u64_le(const uint8_t *p);
void put_u64_be(uint8_t *p, uint64_t v);
uint64_t get_u64_be(const uint8_t *p);

/* binary records */
#define BLOB_RECORD_SIZE (1 + 8 + 8 + 1 + 8 + 8)
void blob_info_encode(const BlobInfo *i, uint8_t out[BLOB_RECORD_SIZE]);
#define REPO_MANIFEST_RECORD_SIZE (1 + 8 + 8)
void repo_manifest_info_encode(const RepoManifestInfo *i, uint8_t out[REPO_MANIFEST_RECORD_SIZE]);
#define REPO_BLOB_RECORD_SIZE (1 + 8)
void repo_blob_encode(int64_t linked, uint8_t out[REPO_BLOB_RECORD_SIZE]);
#define TAG_RECORD_MAX (1 + 8 + 8 + 8 + 4 + 1 + DIGEST_MAX_LEN)
size_t tag_info_encode(const TagInfo *i, uint8_t out[TAG_RECORD_MAX]);

/* Adds an audit event to b (or writes it alone if b is NULL). */
int audit_add(Store *s, IndexBatch *b, const char *actor, const char *action, const char *target,
              const char *result, json_t *detail);

/* ---- store.c */
void lock_digests(Store *s, const char *const *digests, size_t n);
/* Locks (lock true) or unlocks the stripes of repo's tags, in sorted order. */
void lock_tags(Store *s, const char *repo, const char *const *tags, size_t n, bool lock);
/* The records of repo:tag (through view, NULL = the current state) and of repo's link of digest
 * (ret may be NULL): -ENOENT if none. */
int tag_read(Store *s, IndexSnapshot *view, const char *repo, const char *tag, TagInfo *ret);
int repo_manifest_read(Store *s, const char *repo, const char *digest, RepoManifestInfo *ret);
void unlock_digests(Store *s, const char *const *digests, size_t n);
/* move_generations false: only for a holder that created no record (the GC sweep's deletions) */
void unlock_digests_full(Store *s, const char *const *digests, size_t n, bool move_generations);
size_t digest_stripe(const char *digest);
/* The one writer of tag_history: adds repo\0tag\0seq -> {digest, time, actor, action} to b
 * (digest may be NULL; actor NULL = "anonymous"). */
int tag_history_add(Store *s, IndexBatch *b, const char *repo, const char *tag, const char *digest,
                    const char *actor, const char *action, int64_t now);
/* The digests a manifest record names as children (config, layers or index entries), as
 * store_manifest_put() wrote them; NULL-terminated. -ENOENT if there is no such record. */
int manifest_record_children(Store *s, const char *digest, char ***ret);
/* Whether a manifest linked in repo names digest as a child: 1 (its digest copied to
 * ret_manifest, which may be NULL), 0 if none does. Reads every manifest of repo: for rare
 * operations (blob DELETE) under digest's lock, which every manifest PUT naming it also takes. */
int repo_manifest_using(Store *s, const char *repo, const char *digest, char ret_manifest[DIGEST_MAX_LEN]);
int store_dirs_make(Store *s);
/* Tag names collected from INDEX_TAG keys (repo\0tag) by a store_kv_iterate() with
 * tag_collect_cb: NULL-terminated in v; only tags pointing at match_digest if set; at most limit
 * (more then says there were more). */
typedef struct TagList {
        char **v;
        size_t n, allocated;
        const char *match_digest; /* only tags pointing here */
        size_t prefix_len;
        size_t limit; /* 0 = none */
        bool more;
} TagList;
int tag_list_push(TagList *l, const char *s, size_t len);
int tag_collect_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen);
/* v (never NULL: an empty list if nothing was collected), and the list emptied */
char **tag_list_steal(TagList *l);
char *store_path(Store *s, const char *sub);

/* ---- blob-store.c */
/* Moves the verified file at src_path (open as src_fd, logical size `size`) into the blob store
 * as digest and links it into repo; the upload record upload_uuid (may be NULL) is deleted in the
 * same index batch. Takes the digest lock. Consumes src_path (renamed or unlinked) on success and
 * failure. */
int blob_commit_file(Store *s, const char *repo, const char *src_path, int src_fd, const char *digest,
                     uint64_t size, const char *upload_uuid, const char *actor, StoreError *err);
/* Reads a blob's logical content and hashes it against its name; used by fsck. */
int blob_file_verify(Store *s, const char *digest, const BlobInfo *info, uint64_t *ret_bytes);
/* The backend's location of digest's stored bytes (messages, tests), or NULL. */
char *store_blob_location(Store *s, const char *digest);

/* ---- upload.c */
void uploads_free_all(Store *s);
/* At open (primary): drops session records without file, upload files without record, and the
 * blob file of a commit cut short between its rename and its index batch. */
int uploads_reconcile(Store *s);

/* ---- store.c pulls */
int pulls_start(Store *s);
void pulls_stop(Store *s);
