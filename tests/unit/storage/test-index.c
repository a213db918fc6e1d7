/* SPDX-License-Identifier: MIT */
/* RocksDB index: key encoding, round trips, prefix iteration, snapshots, batches, sequences,
 * schema version, secondary (read-only) instances, error strings, sizes for the data volume.
 * Real RocksDB files in a temporary dir. */
#include <dirent.h>
#include <sys/stat.h>

#include "storage-test-helpers.h"
#include "storage/governance-records.h"
#include "storage/store-internal.h" /* index_error_to_errno, index_sizes_for_volume */

TEST(test_key_join) {
        size_t l;
        _cleanup_free_ char *k = index_key_join(&l, "library/alpine", "v1", NULL);
        ASSERT_EQ(l, strlen("library/alpine") + 1 + 2);
        ASSERT_TRUE(memcmp(k, "library/alpine\0v1", l) == 0);
        _cleanup_free_ char *k2 = index_key_join(&l, "a", "", NULL);
        ASSERT_EQ(l, 2); /* "a\0": a prefix for every key of repo a */
        ASSERT_TRUE(memcmp(k2, "a\0", 2) == 0);
        _cleanup_free_ char *k3 = index_key_join(&l, "one", NULL);
        ASSERT_EQ(l, 3);
        ASSERT_STREQ(k3, "one");
        for (IndexColumn c = 0; c < _INDEX_COLUMN_MAX; c++)
                ASSERT_TRUE(index_column_to_string(c));
        ASSERT_STREQ(index_column_to_string(INDEX_REPO_MANIFEST), "repo_manifest");
        ASSERT_STREQ(index_column_to_string(INDEX_META), "meta");
        ASSERT_TRUE(index_column_to_string(_INDEX_COLUMN_MAX) == NULL);
}

typedef struct Collected {
        char keys[32][64];
        size_t n;
        size_t stop_after;
} Collected;

static int collect(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        Collected *c = userdata;
        ASSERT_TRUE(klen < 64 && c->n < 32);
        /* print NULs as '|' */
        for (size_t i = 0; i < klen; i++)
                c->keys[c->n][i] = key[i] ? key[i] : '|';
        c->keys[c->n][klen] = 0;
        c->n++;
        return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static int fail_cb(void *u, const char *k, size_t kl, const char *v, size_t vl) {
        return -EXDEV;
}

static int audit_cb(void *u, const char *k, size_t kl, const char *v, size_t vl) {
        ASSERT_EQ(kl, 17);
        ASSERT_EQ(k[8], 0);
        json_t *j = json_loadb(v, vl, 0, NULL);
        ASSERT_STREQ(json_string_value(json_object_get(j, "actor")), "alice");
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(j, "detail"), "why")), "test");
        ASSERT_STREQ(json_string_value(json_object_get(j, "action")), "push");
        ASSERT_TRUE(json_integer_value(json_object_get(j, "time")) > 0);
        json_decref(j);
        ((Collected *) u)->n++;
        return 0;
}

TEST(test_round_trip_and_iteration) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);

        /* every column family is there */
        for (IndexColumn c = 0; c < _INDEX_COLUMN_MAX; c++) {
                ASSERT_OK(store_kv_put(s, c, "probe", 5, "x", 1));
                _cleanup_free_ char *v = NULL;
                size_t vl;
                ASSERT_OK(store_kv_get(s, NULL, c, "probe", 5, &v, &vl));
                ASSERT_EQ(vl, 1);
                ASSERT_OK(store_kv_delete(s, c, "probe", 5));
                ASSERT_EQ(store_kv_get(s, NULL, c, "probe", 5, NULL, NULL), -ENOENT);
        }

        /* binary-safe values, NUL-terminated beyond the length */
        ASSERT_OK(store_kv_put(s, INDEX_LAYER_FS, "k\0bin", 5, "a\0b", 3));
        _cleanup_free_ char *v = NULL;
        size_t vl = 0;
        ASSERT_OK(store_kv_get(s, NULL, INDEX_LAYER_FS, "k\0bin", 5, &v, &vl));
        ASSERT_EQ(vl, 3);
        ASSERT_TRUE(memcmp(v, "a\0b\0", 4) == 0);

        /* prefix scans: repo "a" must not see repo "a/b" or "ab" */
        const char *repos[] = { "a", "a/b", "ab" };
        const char *tags[] = { "1", "2", "3" };
        for (size_t i = 0; i < 3; i++)
                for (size_t j = 0; j < 3; j++) {
                        size_t kl;
                        _cleanup_free_ char *k = index_key_join(&kl, repos[i], tags[j], NULL);
                        ASSERT_OK(store_kv_put(s, INDEX_TAG_HISTORY, k, kl, "v", 1));
                }
        Collected c = {};
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, "a\0", 2, NULL, 0, collect, &c));
        ASSERT_EQ(c.n, 3);
        ASSERT_STREQ(c.keys[0], "a|1");
        ASSERT_STREQ(c.keys[2], "a|3");

        /* start after a key */
        c = (Collected) {};
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, "a\0", 2, "a\0001", 3, collect, &c));
        ASSERT_EQ(c.n, 2);
        ASSERT_STREQ(c.keys[0], "a|2");

        /* after a key that is not there (between) */
        c = (Collected) {};
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, "a\0", 2, "a\0001x", 4, collect, &c));
        ASSERT_EQ(c.n, 2);
        ASSERT_STREQ(c.keys[0], "a|2");

        /* stop early; whole CF ordered */
        c = (Collected) { .stop_after = 4 };
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, NULL, 0, NULL, 0, collect, &c));
        ASSERT_EQ(c.n, 4);
        ASSERT_STREQ(c.keys[3], "a/b|1");

        /* a callback error aborts with that error */
        ASSERT_EQ(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, NULL, 0, NULL, 0,
                                   fail_cb, NULL),
                  -EXDEV);

        store_free(s);
        rm_rf(dir);
}

TEST(test_snapshot_and_batch) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);

        ASSERT_OK(store_kv_put(s, INDEX_BLOCK, "k1", 2, "old", 3));
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(s, NULL, &snap));

        IndexBatch *b = index_batch_new();
        index_batch_put(b, INDEX_BLOCK, "k1", 2, "new", 3);
        index_batch_put(b, INDEX_BLOCK, "k2", 2, "two", 3);
        index_batch_put(b, INDEX_HOLD, "h", 1, "held", 4);
        ASSERT_OK(store_batch_commit(s, b));
        index_batch_free(b);

        _cleanup_free_ char *now = NULL, *then = NULL;
        ASSERT_OK(store_kv_get(s, NULL, INDEX_BLOCK, "k1", 2, &now, NULL));
        ASSERT_STREQ(now, "new");
        ASSERT_OK(store_kv_get(s, snap, INDEX_BLOCK, "k1", 2, &then, NULL));
        ASSERT_STREQ(then, "old");
        ASSERT_EQ(store_kv_get(s, snap, INDEX_BLOCK, "k2", 2, NULL, NULL), -ENOENT);
        Collected c = {};
        ASSERT_OK(store_kv_iterate(s, snap, INDEX_BLOCK, NULL, 0, NULL, 0, collect, &c));
        ASSERT_EQ(c.n, 1);
        c = (Collected) {};
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_BLOCK, NULL, 0, NULL, 0, collect, &c));
        ASSERT_EQ(c.n, 2);
        store_snapshot_free(snap);

        /* a batch of deletes */
        b = index_batch_new();
        index_batch_delete(b, INDEX_BLOCK, "k1", 2);
        index_batch_delete(b, INDEX_BLOCK, "k2", 2);
        ASSERT_OK(store_batch_commit(s, b));
        index_batch_free(b);
        ASSERT_EQ(store_kv_get(s, NULL, INDEX_BLOCK, "k1", 2, NULL, NULL), -ENOENT);
        _cleanup_free_ char *h = NULL;
        ASSERT_OK(store_kv_get(s, NULL, INDEX_HOLD, "h", 1, &h, NULL));
        ASSERT_STREQ(h, "held");

        store_free(s);
        rm_rf(dir);
}

TEST(test_seq_and_schema) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        uint64_t a = store_next_seq(s), b = store_next_seq(s);
        ASSERT_TRUE(b > a);
        _cleanup_free_ char *ver = NULL;
        ASSERT_OK(store_kv_get(s, NULL, INDEX_META, "schema_version", 14, &ver, NULL));
        ASSERT_EQ(atoi(ver), INDEX_SCHEMA_VERSION);
        store_free(s);

        /* after a restart the sequence never goes backwards */
        s = test_store_open(dir, false);
        uint64_t c = store_next_seq(s);
        ASSERT_TRUE(c > b);
        for (int i = 0; i < 2500; i++)
                b = store_next_seq(s);
        store_free(s);
        s = test_store_open(dir, false);
        ASSERT_TRUE(store_next_seq(s) > b);

        /* audit records: time BE \0 seq BE -> JSON */
        json_t *detail = json_pack("{s:s}", "why", "test");
        ASSERT_OK(store_audit(s, "alice", "push", "r@sha256:x", "ok", detail));
        json_decref(detail);
        Collected col = {};
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_AUDIT, NULL, 0, NULL, 0,
                                   audit_cb, &col));
        ASSERT_EQ(col.n, 1);

        /* a newer schema is refused with a clear error */
        ASSERT_OK(store_kv_put(s, INDEX_META, "schema_version", 14, "99", 2));
        store_free(s);
        StoreOptions o;
        store_options_init(&o);
        o.root = dir;
        s = NULL;
        ASSERT_EQ(store_open(&o, &s), -EPROTONOSUPPORT);
        ASSERT_TRUE(s == NULL);
        rm_rf(dir);
}

TEST(test_secondary) {
        _cleanup_free_ char *dir = test_tmpdir();
        _cleanup_free_ char *sec = test_tmpdir();
        Store *s = test_store_open(dir, false);
        ASSERT_OK(store_kv_put(s, INDEX_BLOCK, "before", 6, "1", 1));

        StoreOptions o;
        store_options_init(&o);
        o.root = dir;
        o.read_only = true;
        o.secondary_dir = sec;
        Store *ro = NULL;
        ASSERT_OK(store_open(&o, &ro));
        ASSERT_TRUE(store_is_read_only(ro));
        ASSERT_OK(store_kv_get(ro, NULL, INDEX_BLOCK, "before", 6, NULL, NULL));

        ASSERT_OK(store_kv_put(s, INDEX_BLOCK, "after", 5, "2", 1));
        ASSERT_OK(store_catch_up(ro));
        ASSERT_OK(store_kv_get(ro, NULL, INDEX_BLOCK, "after", 5, NULL, NULL));
        /* snapshots work on a secondary too (gc/fusefs scan through them) */
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(ro, NULL, &snap));
        ASSERT_OK(store_kv_get(ro, snap, INDEX_BLOCK, "before", 6, NULL, NULL));
        Collected c = {};
        ASSERT_OK(store_kv_iterate(ro, snap, INDEX_BLOCK, NULL, 0, NULL, 0, collect, &c));
        ASSERT_EQ(c.n, 2);
        store_snapshot_free(snap);

        /* every mutation is refused */
        ASSERT_EQ(store_kv_put(ro, INDEX_BLOCK, "x", 1, "y", 1), -EROFS);
        ASSERT_EQ(store_kv_delete(ro, INDEX_BLOCK, "before", 6), -EROFS);
        char uuid[37];
        ASSERT_EQ(store_upload_begin(ro, "repo", NULL, uuid, NULL), -EROFS);
        StoreError e = {};
        char d[DIGEST_MAX_LEN];
        ASSERT_EQ(store_blob_put(ro, "repo", "x", 1, NULL, d, &e), -EROFS);
        ASSERT_OK(store_check_ready(ro));

        store_free(ro);
        store_free(s);
        rm_rf(dir);
        rm_rf(sec);
}

/* A clean close leaves everything in SST files: no write-ahead log to replay (and hold in
 * memtables) on the next start. */
TEST(test_close_flushes_memtables) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        for (int i = 0; i < 3000; i++) {
                char k[32];
                int kl = snprintf(k, sizeof k, "key-%06d", i);
                ASSERT_OK(store_kv_put(s, i % 2 ? INDEX_BLOCK : INDEX_HOLD, k, (size_t) kl, "v", 1));
        }
        store_free(s);

        _cleanup_free_ char *idx = strdup_printf("%s/index", dir);
        DIR *d = opendir(idx);
        ASSERT_TRUE(d);
        size_t n_sst = 0, wal_bytes = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                struct stat st;
                ASSERT_OK(fstatat(dirfd(d), de->d_name, &st, 0));
                if (l > 4 && streq(de->d_name + l - 4, ".sst"))
                        n_sst++;
                else if (l > 4 && streq(de->d_name + l - 4, ".log"))
                        wal_bytes += (size_t) st.st_size;
        }
        closedir(d);
        ASSERT_TRUE(n_sst >= 2);
        ASSERT_EQ(wal_bytes, 0);

        s = test_store_open(dir, false);
        for (int i = 0; i < 3000; i += 7) {
                char k[32];
                int kl = snprintf(k, sizeof k, "key-%06d", i);
                ASSERT_OK(store_kv_get(s, NULL, i % 2 ? INDEX_BLOCK : INDEX_HOLD, k, (size_t) kl, NULL, NULL));
        }
        store_free(s);
        rm_rf(dir);
}

/* The GC's reads (through snapshots with StoreSnapshotOptions.cold) leave the block cache as they
 * found it, point lookups of the current state (.live) and snapshot reads alike; ordinary lookups
 * still fill it. */
TEST(test_cold_reads) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char val[512];
        memset(val, 'v', sizeof val);
        for (int i = 0; i < 4000; i++) { /* ~2 MiB: on SST files after the reopen below */
                char k[32];
                int kl = snprintf(k, sizeof k, "key-%06d", i);
                ASSERT_OK(store_kv_put(s, INDEX_BLOCK, k, (size_t) kl, val, sizeof val));
        }
        store_free(s);
        s = test_store_open(dir, false);

        uint64_t cache0, cache1, cache2, mem;
        ASSERT_OK(store_index_memory(s, &cache0, &mem));
        IndexSnapshot *snap = NULL, *live = NULL;
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true }, &snap));
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true, .live = true }, &live));
        ASSERT_OK(store_kv_put(s, INDEX_BLOCK, "after", 5, "x", 1));
        ASSERT_EQ(store_kv_get(s, snap, INDEX_BLOCK, "after", 5, NULL, NULL), -ENOENT); /* a point in time */
        ASSERT_OK(store_kv_get(s, live, INDEX_BLOCK, "after", 5, NULL, NULL));          /* the current state */
        for (int i = 0; i < 4000; i++) {
                char k[32];
                int kl = snprintf(k, sizeof k, "key-%06d", i);
                _cleanup_free_ char *v = NULL;
                ASSERT_OK(store_kv_get(s, i % 2 ? snap : live, INDEX_BLOCK, k, (size_t) kl, &v, NULL));
                ASSERT_EQ(v[0], 'v');
        }
        store_snapshot_free(snap);
        store_snapshot_free(live);
        ASSERT_OK(store_index_memory(s, &cache1, &mem));
        for (int i = 0; i < 4000; i++) {
                char k[32];
                int kl = snprintf(k, sizeof k, "key-%06d", i);
                ASSERT_OK(store_kv_get(s, NULL, INDEX_BLOCK, k, (size_t) kl, NULL, NULL));
        }
        ASSERT_OK(store_index_memory(s, &cache2, &mem));
        /* index and filter partitions may be cached by either; the data blocks are ~2 MiB */
        ASSERT_TRUE(cache1 < cache0 + (256U << 10));
        ASSERT_TRUE(cache2 > cache1 + (1U << 20));
        store_free(s);
        rm_rf(dir);
}

/* The strings are librocksdb 7.8's Status::ToString() for these failures. */
TEST(test_error_to_errno) {
        ASSERT_EQ(index_error_to_errno(NULL), 0);
        ASSERT_EQ(index_error_to_errno("IO error: No space left on device: While appending to file: "
                                       "/srv/data/index/000004.log: No space left on device"),
                  -ENOSPC);
        /* the NoSpace subcode alone, and the SstFileManager's limit */
        ASSERT_EQ(index_error_to_errno("IO error: No space left on device"), -ENOSPC);
        ASSERT_EQ(index_error_to_errno("IO error: Space limit reached"), -ENOSPC);
        /* full wins over words in the path */
        ASSERT_EQ(index_error_to_errno("IO error: No space left on device: While appending to file: "
                                       "/srv/blocklist/index/000009.sst: No space left on device"),
                  -ENOSPC);
        ASSERT_EQ(index_error_to_errno("IO error: While appending to file: /q/index/000004.log: Disk quota exceeded"),
                  -EDQUOT);
        ASSERT_EQ(index_error_to_errno("IO error: While open a file for appending: /ro/index/000012.log: "
                                       "Read-only file system"),
                  -EROFS);
        ASSERT_EQ(index_error_to_errno("IO error: While lock file: /srv/data/index/LOCK: Resource temporarily "
                                       "unavailable"),
                  -EBUSY);
        ASSERT_EQ(index_error_to_errno("IO error: lock hold by current process, acquire time 1796351426 acquiring "
                                       "thread 140: /srv/data/index/LOCK: No locks available"),
                  -EBUSY);
        /* "lock" in a path is not the lock */
        ASSERT_EQ(index_error_to_errno("IO error: While fdatasync: /srv/blocklist/index/000004.log: "
                                       "Input/output error"),
                  -EIO);
        ASSERT_EQ(index_error_to_errno("NotFound: "), -ENOENT);
        ASSERT_EQ(index_error_to_errno("IO error: No such file or directory: While opening a file for sequentially "
                                       "reading: /srv/data/index/CURRENT: No such file or directory"),
                  -ENOENT);
        ASSERT_EQ(index_error_to_errno("Invalid argument: /srv/data/index: does not exist "
                                       "(create_if_missing is false)"),
                  -ENOENT);
        ASSERT_EQ(index_error_to_errno("Invalid argument: Column family not found: blob"), -EINVAL);
        ASSERT_EQ(index_error_to_errno("Not implemented: Not supported operation in read only mode."), -EOPNOTSUPP);
        ASSERT_EQ(index_error_to_errno("Corruption: block checksum mismatch"), -EIO);
}

#define MIB (UINT64_C(1) << 20)

TEST(test_sizes_for_volume) {
        IndexSizes z;
        /* a 64 MiB ext4 volume has ~55 MiB of blocks: the smallest sizes, WAL prealloc 4.4 MiB */
        index_sizes_for_volume(56037 * UINT64_C(1024), &z);
        ASSERT_EQ(z.write_buffer, 4 * MIB);
        ASSERT_EQ(z.wal_max, 8 * MIB);
        ASSERT_EQ(z.manifest_prealloc, 1 * MIB);
        index_sizes_for_volume(1, &z);
        ASSERT_EQ(z.write_buffer, 4 * MIB);
        ASSERT_EQ(z.wal_max, 8 * MIB);
        /* in between: 1/16 and 1/8 of the volume */
        index_sizes_for_volume(512 * MIB, &z);
        ASSERT_EQ(z.write_buffer, 32 * MIB);
        ASSERT_EQ(z.wal_max, 64 * MIB);
        ASSERT_EQ(z.manifest_prealloc, 4 * MIB);
        /* from 1 GiB on the memtable is RocksDB's default, from 2 GiB on the WAL limit is 256 MiB:
         * what plura used on every volume before */
        index_sizes_for_volume(1024 * MIB, &z);
        ASSERT_EQ(z.write_buffer, 64 * MIB);
        ASSERT_EQ(z.wal_max, 128 * MIB);
        index_sizes_for_volume(2048 * MIB, &z);
        ASSERT_EQ(z.wal_max, 256 * MIB);
        index_sizes_for_volume(UINT64_C(1) << 42, &z);
        ASSERT_EQ(z.write_buffer, 64 * MIB);
        ASSERT_EQ(z.wal_max, 256 * MIB);
        ASSERT_EQ(z.manifest_prealloc, 4 * MIB);
        /* unknown (statvfs failed): a large volume */
        index_sizes_for_volume(0, &z);
        ASSERT_EQ(z.write_buffer, 64 * MIB);
        ASSERT_EQ(z.wal_max, 256 * MIB);
}

int main(void) {
        RUN(test_key_join);
        RUN(test_round_trip_and_iteration);
        RUN(test_snapshot_and_batch);
        RUN(test_seq_and_schema);
        RUN(test_secondary);
        RUN(test_close_flushes_memtables);
        RUN(test_cold_reads);
        RUN(test_error_to_errno);
        RUN(test_sizes_for_volume);
        return 0;
}
