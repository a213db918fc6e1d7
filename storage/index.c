/* SPDX-License-Identifier: MIT */
/* RocksDB index: opening (primary or secondary), column families, schema version, point and prefix
 * access, batches, snapshots, sequences and the binary record codecs. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/records.h"
#include "storage/store-internal.h"

static const char *const index_column_names[_INDEX_COLUMN_MAX] = {
        [INDEX_BLOB] = "blob",
        [INDEX_MANIFEST] = "manifest",
        [INDEX_REPO_MANIFEST] = "repo_manifest",
        [INDEX_REPO_BLOB] = "repo_blob",
        [INDEX_TAG] = "tag",
        [INDEX_TAG_HISTORY] = "tag_history",
        [INDEX_REFERRER] = "referrer",
        [INDEX_UPLOAD] = "upload",
        [INDEX_CHANNEL_HISTORY] = "channel_history",
        [INDEX_HOLD] = "hold",
        [INDEX_BLOCK] = "block",
        [INDEX_AUDIT] = "audit",
        [INDEX_LAYER_FS] = "layer_fs",
        [INDEX_META] = "meta",
        [INDEX_TOKEN] = "token",
};

const char *index_column_to_string(IndexColumn c) {
        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return NULL;
        return index_column_names[c];
}

/* ---- integer codecs */

void put_u32_le(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
void put_u64_le(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
uint32_t get_u32_le(const uint8_t *p) {
        uint32_t v = 0;
        for (int i = 3; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}
uint64_t get_u64_le(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}
void put_u64_be(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * (7 - i)));
}
uint64_t get_u64_be(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

/* ---- binary records (version byte first so they can evolve) */

void blob_info_encode(const BlobInfo *i, uint8_t out[BLOB_RECORD_SIZE]) {
        out[0] = 1;
        put_u64_le(out + 1, i->size);
        put_u64_le(out + 9, i->stored_size);
        out[17] = (uint8_t) i->encoding;
        put_u64_le(out + 18, (uint64_t) i->created);
        put_u64_le(out + 26, (uint64_t) i->touched);
}

int blob_info_decode(const char *val, size_t vlen, BlobInfo *ret) {
        const uint8_t *p = (const uint8_t *) val;
        if (vlen < BLOB_RECORD_SIZE || p[0] != 1)
                return -EBADMSG;
        if (p[17] >= _BLOB_ENCODING_MAX)
                return -EBADMSG;
        *ret = (BlobInfo) {
                .size = get_u64_le(p + 1),
                .stored_size = get_u64_le(p + 9),
                .encoding = (BlobEncoding) p[17],
                .created = (int64_t) get_u64_le(p + 18),
                .touched = (int64_t) get_u64_le(p + 26),
        };
        return 0;
}

void repo_manifest_info_encode(const RepoManifestInfo *i, uint8_t out[REPO_MANIFEST_RECORD_SIZE]) {
        out[0] = 1;
        put_u64_le(out + 1, (uint64_t) i->pushed);
        put_u64_le(out + 9, (uint64_t) i->last_pulled);
}

int repo_manifest_info_decode(const char *val, size_t vlen, RepoManifestInfo *ret) {
        const uint8_t *p = (const uint8_t *) val;
        if (vlen < REPO_MANIFEST_RECORD_SIZE || p[0] != 1)
                return -EBADMSG;
        ret->pushed = (int64_t) get_u64_le(p + 1);
        ret->last_pulled = (int64_t) get_u64_le(p + 9);
        return 0;
}

void repo_blob_encode(int64_t linked, uint8_t out[REPO_BLOB_RECORD_SIZE]) {
        out[0] = 1;
        put_u64_le(out + 1, (uint64_t) linked);
}

/* {u8 1, i64 pushed, i64 updated, i64 last_pulled, u32 flags, u8 digest_len, digest} */
size_t tag_info_encode(const TagInfo *i, uint8_t out[TAG_RECORD_MAX]) {
        size_t dl = strnlen(i->digest, DIGEST_MAX_LEN - 1);
        out[0] = 1;
        put_u64_le(out + 1, (uint64_t) i->pushed);
        put_u64_le(out + 9, (uint64_t) i->updated);
        put_u64_le(out + 17, (uint64_t) i->last_pulled);
        put_u32_le(out + 25, i->flags);
        out[29] = (uint8_t) dl;
        memcpy(out + 30, i->digest, dl);
        return 30 + dl;
}

int tag_info_decode(const char *val, size_t vlen, TagInfo *ret) {
        const uint8_t *p = (const uint8_t *) val;
        if (vlen < 30 || p[0] != 1)
                return -EBADMSG;
        size_t dl = p[29];
        if (dl >= DIGEST_MAX_LEN || vlen < 30 + dl)
                return -EBADMSG;
        ret->pushed = (int64_t) get_u64_le(p + 1);
        ret->updated = (int64_t) get_u64_le(p + 9);
        ret->last_pulled = (int64_t) get_u64_le(p + 17);
        ret->flags = get_u32_le(p + 25);
        memcpy(ret->digest, p + 30, dl);
        ret->digest[dl] = 0;
        return 0;
}

/* ---- keys */

char *index_key_join(size_t *ret_len, const char *first, ...) {
        va_list ap;
        size_t len = 0;
        const char *c;

        if (!first) {
                char *k = calloc(1, 1);
                if (k && ret_len)
                        *ret_len = 0;
                return k;
        }
        va_start(ap, first);
        for (c = first; c; c = va_arg(ap, const char *))
                len += strlen(c) + 1;
        va_end(ap);

        char *k = malloc(len);
        if (!k)
                return NULL;
        char *p = k;
        va_start(ap, first);
        for (c = first; c; c = va_arg(ap, const char *)) {
                size_t l = strlen(c);
                memcpy(p, c, l);
                p += l;
                *p++ = 0;
        }
        va_end(ap);
        if (ret_len)
                *ret_len = len - 1; /* the last NUL terminates, it is not part of the key */
        return k;
}

/* ---- errors */

/* RocksDB's C API hands over only Status::ToString(): "IO error: No space left on device: While
 * appending to file: <path>: No space left on device", "IO error: While lock file: <path>/LOCK:
 * Resource temporarily unavailable", "NotFound: ...". A full volume is ENOSPC whichever part says
 * so (the NoSpace or SpaceLimit subcode, or the errno text), and wins over everything else; the
 * lock is matched by RocksDB's own words, so a path with "lock" in it is not EBUSY. */
int index_error_to_errno(const char *e) {
        if (!e)
                return 0;
        if (strstr(e, "No space left on device") || strstr(e, "Space limit reached"))
                return -ENOSPC;
        if (strstr(e, "Disk quota exceeded"))
                return -EDQUOT;
        if (strstr(e, "Read-only file system"))
                return -EROFS;
        if (strstr(e, "While lock file") || strstr(e, "lock hold by current process") ||
            strstr(e, "Resource temporarily unavailable"))
                return -EBUSY;
        if (startswith(e, "NotFound: ") || strstr(e, "No such file") || strstr(e, "does not exist"))
                return -ENOENT;
        if (strstr(e, "Invalid argument"))
                return -EINVAL;
        if (strstr(e, "Not implemented") || strstr(e, "Not supported"))
                return -EOPNOTSUPP;
        return -EIO;
}

static int take_error(char *e, const char *what) {
        if (!e)
                return 0;
        int r = index_error_to_errno(e);
        log_error("RocksDB %s: %s", what, e);
        rocksdb_free(e);
        return r;
}

/* After a failed write RocksDB takes no more writes until it recovers (from NoSpace by itself,
 * see index_open()); the last write's result tells readiness whether to ask again. */
static void note_write(Store *s, int r) {
        if (__atomic_load_n(&s->index_write_error, __ATOMIC_RELAXED) != r)
                __atomic_store_n(&s->index_write_error, r, __ATOMIC_RELAXED);
}

static int take_write_error(Store *s, char *e, const char *what) {
        int r = take_error(e, what);
        note_write(s, r);
        return r;
}

/* a key that is never written: its tombstone is the smallest write there is */
#define PROBE_KEY "write_probe"

/* Free space for this process: root also gets the blocks reserved for root (RocksDB counts so too). */
static int volume_free(const char *path, uint64_t *ret) {
        struct statvfs v;
        if (statvfs(path, &v) < 0)
                return -errno;
        *ret = (uint64_t) (geteuid() == 0 ? v.f_bfree : v.f_bavail) * v.f_frsize;
        return 0;
}

int index_check_writable(Store *s) {
        if (s->read_only)
                return 0;
        /* below one memtable RocksDB can neither flush nor resume after NoSpace */
        uint64_t free_bytes = UINT64_MAX;
        if (volume_free(s->root, &free_bytes) >= 0 && free_bytes < s->index_room)
                return -ENOSPC;
        if (__atomic_load_n(&s->index_write_error, __ATOMIC_RELAXED) == 0)
                return 0;
        char *e = NULL; /* not logged: readiness probes repeat */
        rocksdb_delete_cf(s->db, s->write_async, s->cf[INDEX_META], PROBE_KEY, strlen(PROBE_KEY), &e);
        int r = index_error_to_errno(e);
        rocksdb_free(e);
        note_write(s, r);
        return r;
}

/* ---- open/close */

static int meta_read_u64(Store *s, const char *name, uint64_t *ret) {
        _cleanup_free_ char *v = NULL;
        size_t l;
        int r = index_get(s, NULL, INDEX_META, name, strlen(name), &v, &l);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno != 0 || end == v)
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int meta_write_u64(Store *s, const char *name, uint64_t v) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long) v);
        char *e = NULL;
        rocksdb_put_cf(s->db, s->write_sync, s->cf[INDEX_META], name, strlen(name), buf, (size_t) n, &e);
        return take_write_error(s, e, "write meta");
}

#define INDEX_BLOCK_CACHE (64U << 20)
#define INDEX_MEMTABLE_BUDGET (64U << 20)
#define INDEX_WAL_MAX (256ULL << 20)
#define MIB (1ULL << 20)
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))

/* What RocksDB puts on the data volume scales with it. RocksDB preallocates each WAL file to
 * 1.1 × write_buffer_size (capped by max_total_wal_size and db_write_buffer_size) and, after a
 * NoSpace error, resumes writes only once write_buffer_size is free again; at its default of
 * 64 MiB a 64 MiB volume could not hold a store (~48 MiB of WAL at open) nor ever recover. So one
 * family's memtable is 1/16 of the volume (4-64 MiB), the WAL is kept to 1/8 of it (at least
 * two memtables, at most 256 MiB), the manifest preallocates 1/4 of a memtable (1-4 MiB). */
void index_sizes_for_volume(uint64_t volume_bytes, IndexSizes *ret) {
        uint64_t wb = volume_bytes ? CLAMP(volume_bytes / 16, 4 * MIB, 64 * MIB) : 64 * MIB;
        *ret = (IndexSizes) {
                .write_buffer = wb,
                .wal_max = volume_bytes ? CLAMP(volume_bytes / 8, 2 * wb, INDEX_WAL_MAX) : INDEX_WAL_MAX,
                .manifest_prealloc = CLAMP(wb / 4, 1 * MIB, 4 * MIB),
        };
}

static uint64_t volume_size(const char *path) {
        struct statvfs v;
        if (statvfs(path, &v) < 0) {
                log_warning_errno(errno, "Cannot measure the data volume of %s (%m); sizing the index for a large one.",
                                  path);
                return 0;
        }
        return (uint64_t) v.f_blocks * v.f_frsize;
}

/* librocksdb 7.8 (Debian 12) aborts on an assertion when its info log is written again after a
 * failed write (facebook/rocksdb#11314, fixed in 8.1), and the LOG is on the data volume: once
 * that was full, the next line RocksDB logged ended the process. At HEADER_LEVEL 7.8 writes
 * nothing to the LOG (its headers go out at INFO level); RocksDB's errors reach plura's log
 * through the calls that return them. */
#define INDEX_LOG_LEVEL 5 /* rocksdb::HEADER_LEVEL */
#define INDEX_LOG_FILES_KEPT 4 /* each open starts a LOG and keeps the old ones, 1000 by default */

int index_open(Store *s) {
        char *e = NULL;
        int r;

        IndexSizes sizes;
        index_sizes_for_volume(volume_size(s->root), &sizes);
        s->index_room = sizes.write_buffer;

        s->cache = rocksdb_cache_create_lru(INDEX_BLOCK_CACHE);
        s->table_options = rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_block_cache(s->table_options, s->cache);
        rocksdb_block_based_options_set_filter_policy(s->table_options, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->table_options, 1);
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->table_options, 1);
        /* Partitioned filters and indexes: a point lookup (blob HEAD, a commit's re-check) reads a
         * 4 KiB partition, not the whole filter of a large file (1.2 MiB at 1M blobs), which an
         * evicted cache entry made every lookup copy and checksum again. */
        rocksdb_block_based_options_set_index_type(s->table_options, rocksdb_block_based_table_index_type_two_level_index_search);
        rocksdb_block_based_options_set_partition_filters(s->table_options, 1);
        rocksdb_block_based_options_set_metadata_block_size(s->table_options, 4096);
        rocksdb_block_based_options_set_pin_top_level_index_and_filter(s->table_options, 1);
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(s->table_options, 1);
        rocksdb_block_based_options_set_block_size(s->table_options, 8192);

        s->db_options = rocksdb_options_create();
        rocksdb_options_set_create_if_missing(s->db_options, 1);
        rocksdb_options_set_create_missing_column_families(s->db_options, 1);
        rocksdb_options_increase_parallelism(s->db_options, 2);
        /* Memory and restart time stay bounded however many column families take writes: all
         * memtables together are flushed at 64 MiB (RocksDB's default is 64 MiB per family, ×2,
         * ×11 families), and the WAL is not kept beyond 256 MiB for a family that rarely
         * flushes (else a restart replays gigabytes into memtables). On a small data volume
         * both a family's memtable and the WAL are smaller still (index_sizes_for_volume()). */
        rocksdb_options_set_db_write_buffer_size(s->db_options, INDEX_MEMTABLE_BUDGET);
        rocksdb_options_set_write_buffer_size(s->db_options, sizes.write_buffer);
        rocksdb_options_set_max_total_wal_size(s->db_options, sizes.wal_max);
        rocksdb_options_set_manifest_preallocation_size(s->db_options, sizes.manifest_prealloc);
        rocksdb_options_set_info_log_level(s->db_options, INDEX_LOG_LEVEL);
        rocksdb_options_set_keep_log_file_num(s->db_options, INDEX_LOG_FILES_KEPT);
        rocksdb_options_set_block_based_table_factory(s->db_options, s->table_options);
        if (s->read_only)
                rocksdb_options_set_max_open_files(s->db_options, -1); /* required for secondaries */

        s->cf_options = rocksdb_options_create_copy(s->db_options);
        rocksdb_options_set_level_compaction_dynamic_level_bytes(s->cf_options, 1);

        /* Open every CF that exists (a newer schema may have more) plus ours. */
        size_t n_existing = 0;
        char **existing = rocksdb_list_column_families(s->db_options, s->index_dir, &n_existing, &e);
        if (e) {
                /* no database yet */
                rocksdb_free(e);
                e = NULL;
                if (existing)
                        rocksdb_list_column_families_destroy(existing, 0);
                existing = NULL;
                n_existing = 0;
                if (s->read_only)
                        return log_error_errno(ENOENT, "No index at %s to open read-only.", s->index_dir);
        }

        size_t max = n_existing + _INDEX_COLUMN_MAX + 1, n = 0;
        const char **names = calloc(max, sizeof(char *));
        const rocksdb_options_t **opts = calloc(max, sizeof(void *));
        s->cf_handles = calloc(max, sizeof(void *));
        if (!names || !opts || !s->cf_handles) {
                free(names);
                free(opts);
                if (existing)
                        rocksdb_list_column_families_destroy(existing, n_existing);
                return -ENOMEM;
        }
        names[n++] = "default";
        for (IndexColumn c = 0; c < _INDEX_COLUMN_MAX; c++)
                names[n++] = index_column_names[c];
        for (size_t i = 0; i < n_existing; i++) {
                bool known = false;
                for (size_t j = 0; j < n; j++)
                        if (streq(names[j], existing[i]))
                                known = true;
                if (!known)
                        names[n++] = existing[i];
        }
        for (size_t i = 0; i < n; i++)
                opts[i] = s->cf_options;

        if (s->read_only)
                s->db = rocksdb_open_as_secondary_column_families(s->db_options, s->index_dir, s->secondary_dir, (int) n,
                                                                  names, opts, s->cf_handles, &e);
        else
                s->db = rocksdb_open_column_families(s->db_options, s->index_dir, (int) n, names, opts, s->cf_handles,
                                                     &e);
        free(names);
        free(opts);
        if (existing)
                rocksdb_list_column_families_destroy(existing, n_existing);
        if (e) {
                s->db = NULL;
                return take_error(e, "open");
        }
        s->n_cf_handles = n;
        for (IndexColumn c = 0; c < _INDEX_COLUMN_MAX; c++)
                s->cf[c] = s->cf_handles[1 + c];

        s->write_sync = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(s->write_sync, s->fsync);
        s->write_async = rocksdb_writeoptions_create();
        s->read_options = rocksdb_readoptions_create();
        s->read_cold = rocksdb_readoptions_create();
        rocksdb_readoptions_set_fill_cache(s->read_cold, 0);
        r = store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true, .live = true }, &s->live_cold);
        if (r < 0)
                return r;

        uint64_t version;
        r = meta_read_u64(s, "schema_version", &version);
        if (r == -ENOENT) {
                if (s->read_only)
                        return log_error_errno(EPROTO, "Index at %s has no schema version.", s->index_dir);
                r = meta_write_u64(s, "schema_version", INDEX_SCHEMA_VERSION);
                if (r < 0)
                        return r;
        } else if (r < 0)
                return log_error_errno(r, "Cannot read the schema version of %s: %m", s->index_dir);
        else if (version > INDEX_SCHEMA_VERSION)
                return log_error_errno(EPROTONOSUPPORT,
                                       "Index at %s has schema version %llu, this plura supports up to %d; "
                                       "refusing to open it (upgrade plura).",
                                       s->index_dir, (unsigned long long) version, INDEX_SCHEMA_VERSION);

        uint64_t seq = 0;
        r = meta_read_u64(s, "seq", &seq);
        if (r < 0 && r != -ENOENT)
                return r;
        s->seq_next = s->seq_limit = seq;
        return 0;
}

void index_close(Store *s) {
        if (s->db && !s->read_only) {
                /* Memtables to SST files on a clean close: the next start has no WAL to replay. */
                rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
                for (size_t i = 0; fo && i < s->n_cf_handles; i++) {
                        char *e = NULL;
                        rocksdb_flush_cf(s->db, fo, s->cf_handles[i], &e);
                        if (e) {
                                /* the others fail the same way (a full volume, a stopped index):
                                 * the WAL keeps what they hold */
                                log_warning("index: flush on close: %s", e);
                                rocksdb_free(e);
                                break;
                        }
                }
                if (fo)
                        rocksdb_flushoptions_destroy(fo);
        }
        if (s->db) {
                for (size_t i = 0; i < s->n_cf_handles; i++)
                        rocksdb_column_family_handle_destroy(s->cf_handles[i]);
                rocksdb_close(s->db);
                s->db = NULL;
        }
        free(s->cf_handles);
        s->cf_handles = NULL;
        if (s->write_sync)
                rocksdb_writeoptions_destroy(s->write_sync);
        if (s->write_async)
                rocksdb_writeoptions_destroy(s->write_async);
        if (s->read_options)
                rocksdb_readoptions_destroy(s->read_options);
        if (s->read_cold)
                rocksdb_readoptions_destroy(s->read_cold);
        s->live_cold = store_snapshot_free(s->live_cold);
        if (s->cf_options)
                rocksdb_options_destroy(s->cf_options);
        if (s->db_options)
                rocksdb_options_destroy(s->db_options);
        if (s->table_options)
                rocksdb_block_based_options_destroy(s->table_options);
        if (s->cache)
                rocksdb_cache_destroy(s->cache);
        s->write_sync = s->write_async = NULL;
        s->read_options = NULL;
        s->cf_options = s->db_options = NULL;
        s->table_options = NULL;
        s->cache = NULL;
}

int store_catch_up(Store *s) {
        if (!s->read_only)
                return 0;
        char *e = NULL;
        rocksdb_try_catch_up_with_primary(s->db, &e);
        return take_error(e, "catch up with primary");
}

/* ---- snapshots */

int store_snapshot_new(Store *s, const StoreSnapshotOptions *o, IndexSnapshot **ret) {
        static const StoreSnapshotOptions defaults = {};
        if (!o)
                o = &defaults;
        _cleanup_(store_snapshot_freep) IndexSnapshot *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->store = s;
        n->ro = rocksdb_readoptions_create();
        if (!n->ro)
                return -ENOMEM;
        if (o->cold)
                rocksdb_readoptions_set_fill_cache(n->ro, 0);
        if (o->generations) {
                /* before the snapshot: a writer that moves a generation after this copy committed
                 * after it too, or the snapshot sees what it wrote */
                n->generations = malloc(DIGEST_LOCK_STRIPES * sizeof(uint32_t));
                if (!n->generations)
                        return -ENOMEM;
                store_digest_generations(s, n->generations);
        }
        /* A secondary refuses snapshot iterators; its view only changes in store_catch_up(), so
         * reading it directly is a consistent view between catch-ups. */
        if (!o->live && !s->read_only) {
                n->snap = rocksdb_create_snapshot(s->db);
                rocksdb_readoptions_set_snapshot(n->ro, n->snap);
        }
        *ret = steal_pointer(&n);
        return 0;
}

IndexSnapshot *store_snapshot_free(IndexSnapshot *snap) {
        if (!snap)
                return NULL;
        if (snap->ro)
                rocksdb_readoptions_destroy(snap->ro);
        if (snap->snap)
                rocksdb_release_snapshot(snap->store->db, snap->snap);
        free(snap->generations);
        free(snap);
        return NULL;
}

static const rocksdb_readoptions_t *read_options_for(Store *s, IndexSnapshot *snap) {
        return snap ? snap->ro : s->read_options;
}

int store_index_memory(Store *s, uint64_t *ret_cache, uint64_t *ret_memtables) {
        uint64_t m = 0;
        for (IndexColumn c = 0; c < _INDEX_COLUMN_MAX; c++) {
                uint64_t v = 0;
                if (rocksdb_property_int_cf(s->db, s->cf[c], "rocksdb.cur-size-all-mem-tables", &v) == 0)
                        m += v;
        }
        if (ret_cache)
                *ret_cache = s->cache ? (uint64_t) rocksdb_cache_get_usage(s->cache) : 0;
        if (ret_memtables)
                *ret_memtables = m;
        return 0;
}

/* ---- point access */

int index_get(Store *s, IndexSnapshot *snap, IndexColumn c, const void *key, size_t klen, char **ret, size_t *ret_len) {
        char *e = NULL;
        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return -EINVAL;
        rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(s->db, read_options_for(s, snap), s->cf[c], key, klen, &e);
        if (e)
                return take_error(e, "get");
        if (!v)
                return -ENOENT;
        size_t l;
        const char *d = rocksdb_pinnableslice_value(v, &l);
        if (ret) {
                char *copy = malloc(l + 1);
                if (!copy) {
                        rocksdb_pinnableslice_destroy(v);
                        return -ENOMEM;
                }
                memcpy(copy, d, l);
                copy[l] = 0;
                *ret = copy;
        }
        if (ret_len)
                *ret_len = l;
        rocksdb_pinnableslice_destroy(v);
        return 0;
}

/* One MultiGet for n keys: keys that share a data block find it read (and decompressed) once,
 * which matters for cold reads (no block cache). sorted: the caller's keys are in order already
 * (RocksDB sorts them otherwise). */
int index_multi_get(Store *s, IndexSnapshot *snap, IndexColumn c, const char *const *keys, const size_t *klens,
                    size_t n, bool sorted, IndexValueFn fn, void *userdata) {
        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return -EINVAL;
        if (n == 0)
                return 0;
        _cleanup_free_ rocksdb_pinnableslice_t **values = calloc(n, sizeof *values);
        _cleanup_free_ char **errs = calloc(n, sizeof *errs);
        if (!values || !errs)
                return -ENOMEM;
        rocksdb_batched_multi_get_cf(s->db, read_options_for(s, snap), s->cf[c], n, keys, klens, values, errs, sorted);
        int r = 0;
        for (size_t i = 0; i < n; i++) {
                int q;
                if (errs[i])
                        q = take_error(errs[i], "multi get");
                else if (!values[i])
                        q = fn(userdata, i, NULL, 0);
                else {
                        size_t l;
                        const char *d = rocksdb_pinnableslice_value(values[i], &l);
                        q = fn(userdata, i, d, l);
                }
                if (values[i])
                        rocksdb_pinnableslice_destroy(values[i]);
                if (q < 0 && r == 0)
                        r = q;
        }
        return r;
}

int store_kv_get(Store *s, IndexSnapshot *snap, IndexColumn c, const void *key, size_t klen, char **ret, size_t *ret_len) {
        return index_get(s, snap, c, key, klen, ret, ret_len);
}

int store_kv_multi_get(Store *s, IndexSnapshot *snap, IndexColumn c, const char *const *keys, const size_t *klens,
                       size_t n, IndexValueFn fn, void *userdata) {
        return index_multi_get(s, snap, c, keys, klens, n, false, fn, userdata);
}

int store_kv_put(Store *s, IndexColumn c, const void *key, size_t klen, const void *val, size_t vlen) {
        char *e = NULL;
        if (s->read_only)
                return -EROFS;
        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return -EINVAL;
        rocksdb_put_cf(s->db, s->write_sync, s->cf[c], key, klen, val, vlen, &e);
        return take_write_error(s, e, "put");
}

int store_kv_delete(Store *s, IndexColumn c, const void *key, size_t klen) {
        char *e = NULL;
        if (s->read_only)
                return -EROFS;
        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return -EINVAL;
        rocksdb_delete_cf(s->db, s->write_sync, s->cf[c], key, klen, &e);
        return take_write_error(s, e, "delete");
}

/* ---- iteration */

static int key_compare(const void *a, size_t al, const void *b, size_t bl) {
        if (al == 0 || bl == 0)
                return al < bl ? -1 : al > bl ? 1 : 0;
        int c = memcmp(a, b, MIN(al, bl));
        if (c != 0)
                return c;
        return al < bl ? -1 : al > bl ? 1 : 0;
}

int store_kv_iterate(Store *s, IndexSnapshot *snap, IndexColumn c, const void *prefix, size_t plen, const void *after,
                     size_t alen, IndexIterFn fn, void *userdata) {
        char *e = NULL;
        int r = 0;

        if (c < 0 || c >= _INDEX_COLUMN_MAX)
                return -EINVAL;
        /* A scan of a whole column (GC, fsck, statistics) reads ahead and leaves the block cache
         * to the lookups that serve requests, instead of evicting them with blocks read once. */
        rocksdb_readoptions_t *scan = NULL;
        if (plen == 0) {
                scan = rocksdb_readoptions_create();
                if (!scan)
                        return -ENOMEM;
                if (snap && snap->snap)
                        rocksdb_readoptions_set_snapshot(scan, snap->snap);
                rocksdb_readoptions_set_fill_cache(scan, 0);
                rocksdb_readoptions_set_readahead_size(scan, 2U << 20);
        }
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, scan ?: read_options_for(s, snap), s->cf[c]);
        if (!it) {
                if (scan)
                        rocksdb_readoptions_destroy(scan);
                return -ENOMEM;
        }

        if (after && key_compare(after, alen, prefix, plen) >= 0) {
                rocksdb_iter_seek(it, after, alen);
                if (rocksdb_iter_valid(it)) {
                        size_t kl;
                        const char *k = rocksdb_iter_key(it, &kl);
                        if (kl == alen && memcmp(k, after, alen) == 0)
                                rocksdb_iter_next(it);
                }
        } else if (plen > 0)
                rocksdb_iter_seek(it, prefix, plen);
        else
                rocksdb_iter_seek_to_first(it);

        for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
                size_t kl, vl;
                const char *k = rocksdb_iter_key(it, &kl);
                if (plen > 0 && (kl < plen || memcmp(k, prefix, plen) != 0))
                        break;
                const char *v = rocksdb_iter_value(it, &vl);
                r = fn(userdata, k, kl, v, vl);
                if (r != 0)
                        break;
        }
        if (r == 0) {
                rocksdb_iter_get_error(it, &e);
                r = take_error(e, "iterate");
        }
        rocksdb_iter_destroy(it);
        if (scan)
                rocksdb_readoptions_destroy(scan);
        return r < 0 ? r : 0;
}

/* ---- batches */

typedef struct BatchOp {
        IndexColumn column;
        bool del;
        char *key;
        size_t klen;
        char *val;
        size_t vlen;
} BatchOp;

struct IndexBatch {
        BatchOp *ops;
        size_t n, allocated;
        bool oom;
};

IndexBatch *index_batch_new(void) {
        return calloc(1, sizeof(IndexBatch));
}

IndexBatch *index_batch_free(IndexBatch *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n; i++) {
                free(b->ops[i].key);
                free(b->ops[i].val);
        }
        free(b->ops);
        free(b);
        return NULL;
}

bool index_batch_is_empty(IndexBatch *b) {
        return !b || b->n == 0;
}

static void batch_add(IndexBatch *b, IndexColumn c, bool del, const void *key, size_t klen, const void *val, size_t vlen) {
        if (!b)
                return;
        if (b->n == b->allocated) {
                size_t na = b->allocated ? b->allocated * 2 : 8;
                BatchOp *ops = realloc(b->ops, na * sizeof(BatchOp));
                if (!ops) {
                        b->oom = true;
                        return;
                }
                b->ops = ops;
                b->allocated = na;
        }
        BatchOp op = { .column = c, .del = del, .klen = klen, .vlen = vlen };
        op.key = malloc(klen ? klen : 1);
        op.val = del ? NULL : malloc(vlen ? vlen : 1);
        if (!op.key || (!del && !op.val)) {
                free(op.key);
                free(op.val);
                b->oom = true;
                return;
        }
        memcpy(op.key, key, klen);
        if (!del && vlen)
                memcpy(op.val, val, vlen);
        b->ops[b->n++] = op;
}

void index_batch_put(IndexBatch *b, IndexColumn c, const void *key, size_t klen, const void *val, size_t vlen) {
        batch_add(b, c, false, key, klen, val, vlen);
}

void index_batch_delete(IndexBatch *b, IndexColumn c, const void *key, size_t klen) {
        batch_add(b, c, true, key, klen, NULL, 0);
}

int index_batch_commit_full(Store *s, IndexBatch *b, bool sync) {
        char *e = NULL;
        if (s->read_only)
                return -EROFS;
        if (!b)
                return -EINVAL;
        if (b->oom)
                return -ENOMEM;
        if (b->n == 0)
                return 0;
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        for (size_t i = 0; i < b->n; i++) {
                BatchOp *op = b->ops + i;
                if (op->column < 0 || op->column >= _INDEX_COLUMN_MAX) {
                        rocksdb_writebatch_destroy(wb);
                        return -EINVAL;
                }
                if (op->del)
                        rocksdb_writebatch_delete_cf(wb, s->cf[op->column], op->key, op->klen);
                else
                        rocksdb_writebatch_put_cf(wb, s->cf[op->column], op->key, op->klen, op->val, op->vlen);
        }
        rocksdb_write(s->db, sync ? s->write_sync : s->write_async, wb, &e);
        rocksdb_writebatch_destroy(wb);
        return take_write_error(s, e, "write batch");
}

int store_sync_wal(Store *s) {
        if (s->read_only)
                return -EROFS;
        if (!s->fsync)
                return 0;
        /* A synced write rather than rocksdb_flush_wal(): it syncs every WAL file the same way,
         * but through the write queue, which refuses it while RocksDB is stopped after a write
         * error. 7.8's FlushWAL(true) syncs the WAL file whose append failed and aborts on an
         * assertion (WritableFileWriter::SyncWithoutFlush): a GC on a full volume ended so. */
        char *e = NULL;
        rocksdb_delete_cf(s->db, s->write_sync, s->cf[INDEX_META], PROBE_KEY, strlen(PROBE_KEY), &e);
        return take_write_error(s, e, "sync the write-ahead log");
}

int store_batch_commit(Store *s, IndexBatch *b) {
        return index_batch_commit_full(s, b, true);
}

/* ---- sequence */

uint64_t store_next_seq(Store *s) {
        uint64_t v;
        pthread_mutex_lock(&s->seq_lock);
        if (s->read_only) {
                v = ++s->seq_next;
                pthread_mutex_unlock(&s->seq_lock);
                return v;
        }
        if (s->seq_next >= s->seq_limit) {
                /* Reserve a block; after a crash the unused rest of it is skipped, so seq never goes
                 * backwards. */
                uint64_t limit = s->seq_limit + SEQ_RESERVE_BLOCK;
                if (meta_write_u64(s, "seq", limit) >= 0)
                        s->seq_limit = limit;
                else
                        log_error("Cannot persist the sequence high-water mark; continuing in memory.");
                if (s->seq_next >= s->seq_limit)
                        s->seq_limit = s->seq_next + 1;
        }
        v = ++s->seq_next;
        pthread_mutex_unlock(&s->seq_lock);
        return v;
}

/* ---- audit */

int audit_add(Store *s, IndexBatch *b, const char *actor, const char *action, const char *target, const char *result,
              json_t *detail) {
        if (s->read_only)
                return -EROFS;
        int64_t now = clock_now_ns();
        uint64_t seq = store_next_seq(s);
        uint8_t key[17];
        put_u64_be(key, (uint64_t) now);
        key[8] = 0;
        put_u64_be(key + 9, seq);

        json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:s}", "time", (json_int_t) now, "actor", actor ? actor : "anonymous",
                               "action", strempty(action), "target", strempty(target), "result", result ? result : "ok");
        if (!ev)
                return -ENOMEM;
        if (detail)
                json_object_set(ev, "detail", detail);
        char *v = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (!v)
                return -ENOMEM;
        int r = 0;
        if (b)
                index_batch_put(b, INDEX_AUDIT, key, sizeof key, v, strlen(v));
        else
                r = store_kv_put(s, INDEX_AUDIT, key, sizeof key, v, strlen(v));
        free(v);
        return r;
}

int store_audit(Store *s, const char *actor, const char *action, const char *target, const char *result, json_t *detail) {
        return audit_add(s, NULL, actor, action, target, result, detail);
}
