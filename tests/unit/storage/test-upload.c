/* SPDX-License-Identifier: MIT */
/* Upload sessions and blob commit: chunked streaming, digest verification, resume after restart,
 * dedupe across repositories, concurrency, zstd at rest with random access. */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "storage-test-helpers.h"
#include "storage/fsck.h"
#include "storage/store-internal.h" /* dir sync counters */

static uint8_t *pattern(size_t n, unsigned seed, bool compressible) {
        uint8_t *p = malloc(n);
        ASSERT_TRUE(p);
        uint32_t x = seed * 2654435761U + 1;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245U + 12345U;
                p[i] = compressible ? (uint8_t) ("plura registry layer text "[(i / 7 + (x >> 28)) % 26]) : (uint8_t) (x >> 16);
        }
        return p;
}

static size_t count_blob_files(const char *root) {
        _cleanup_free_ char *top = strdup_printf("%s/blobs/sha256", root);
        size_t n = 0;
        DIR *d = opendir(top);
        ASSERT_TRUE(d);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *sub = strdup_printf("%s/%s", top, de->d_name);
                DIR *sd = opendir(sub);
                struct dirent *fe;
                while (sd && (fe = readdir(sd)))
                        if (fe->d_name[0] != '.')
                                n++;
                if (sd)
                        closedir(sd);
        }
        closedir(d);
        return n;
}

static int count_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        (*(size_t *) userdata)++;
        return 0;
}

static void push_chunks(Store *s, const char *repo, const uint8_t *data, size_t len, size_t chunk, char uuid[37]) {
        ASSERT_OK(store_upload_begin(s, repo, NULL, uuid, NULL));
        for (size_t off = 0; off < len; off += chunk) {
                Upload *u = NULL;
                ASSERT_OK(store_upload_acquire(s, repo, uuid, &u));
                ASSERT_EQ(upload_offset(u), off);
                ASSERT_OK(upload_write(u, data + off, MIN(chunk, len - off)));
                store_upload_release(s, u);
        }
}

TEST(test_chunked_upload) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        size_t len = 3 * 1024 * 1024 + 123;
        _cleanup_free_ uint8_t *data = pattern(len, 1, false);
        char digest[DIGEST_MAX_LEN], uuid[37];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, data, len, digest));

        push_chunks(s, "lib/app", data, len, 65536, uuid);
        /* exclusive use */
        Upload *u = NULL, *u2 = NULL;
        ASSERT_OK(store_upload_acquire(s, "lib/app", uuid, &u));
        ASSERT_EQ(store_upload_acquire(s, "lib/app", uuid, &u2), -EBUSY);
        ASSERT_EQ(store_upload_cancel(s, "lib/app", uuid), -EBUSY);
        ASSERT_EQ(upload_offset(u), len);
        ASSERT_STREQ(upload_uuid(u), uuid);
        ASSERT_TRUE(upload_started(u) > 0);
        ASSERT_EQ(store_blob_info(s, digest, NULL), -ENOENT); /* not visible before commit */
        StoreError e = {};
        ASSERT_OK(store_upload_commit(s, u, digest, NULL, &e));

        BlobInfo bi;
        ASSERT_OK(store_repo_blob_info(s, "lib/app", digest, &bi));
        ASSERT_EQ(bi.size, len);
        ASSERT_EQ(bi.encoding, BLOB_ENCODING_RAW);
        ASSERT_EQ(store_repo_blob_info(s, "other", digest, NULL), -ENOENT);
        _cleanup_free_ char *path = store_blob_location(s, digest);
        struct stat st;
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 0777, 0444);
        ASSERT_EQ(st.st_size, len);
        ASSERT_TRUE(strstr(path, "/blobs/sha256/") != NULL);
        /* session gone */
        ASSERT_EQ(store_upload_acquire(s, "lib/app", uuid, &u), -ENOENT);

        /* the reader: fd for sendfile and pread */
        BlobReader *r = NULL;
        ASSERT_OK(store_blob_open(s, digest, &r));
        ASSERT_TRUE(blob_reader_fd(r) >= 0);
        ASSERT_EQ(blob_reader_size(r), len);
        uint8_t buf[100];
        ASSERT_EQ(blob_reader_pread(r, buf, sizeof buf, len - 50), 50);
        ASSERT_TRUE(memcmp(buf, data + len - 50, 50) == 0);
        ASSERT_EQ(blob_reader_pread(r, buf, sizeof buf, len), 0);
        blob_reader_free(r);

        /* wrong digest: error, nothing visible, session discarded */
        _cleanup_free_ uint8_t *other = pattern(10000, 2, false);
        char wrong[DIGEST_MAX_LEN], right[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, other, 9999, wrong)); /* digest of a prefix */
        ASSERT_OK(digest_buffer(DIGEST_SHA256, other, 10000, right));
        push_chunks(s, "lib/app", other, 10000, 3000, uuid);
        ASSERT_OK(store_upload_acquire(s, "lib/app", uuid, &u));
        e = (StoreError) {};
        ASSERT_EQ(store_upload_commit(s, u, wrong, NULL, &e), -EBADMSG);
        ASSERT_EQ(e.code, OCI_DIGEST_INVALID);
        ASSERT_EQ(store_blob_info(s, wrong, NULL), -ENOENT);
        ASSERT_EQ(store_blob_info(s, right, NULL), -ENOENT);
        ASSERT_EQ(store_upload_acquire(s, "lib/app", uuid, &u), -ENOENT);
        _cleanup_free_ char *upath = strdup_printf("%s/uploads/%s", dir, uuid);
        ASSERT_TRUE(access(upath, F_OK) < 0);
        ASSERT_EQ(count_blob_files(dir), 1);

        /* sha512 digests are accepted */
        char d512[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA512, other, 10000, d512));
        push_chunks(s, "lib/app", other, 10000, 4096, uuid);
        ASSERT_OK(store_upload_acquire(s, "lib/app", uuid, &u));
        ASSERT_OK(store_upload_commit(s, u, d512, NULL, &e));
        ASSERT_OK(store_repo_blob_info(s, "lib/app", d512, &bi));
        _cleanup_free_ char *p512 = store_blob_location(s, d512);
        ASSERT_TRUE(strstr(p512, "/blobs/sha512/") != NULL);
        ASSERT_OK(access(p512, F_OK));

        /* other repo cannot use the session; cancel and purge */
        ASSERT_OK(store_upload_begin(s, "lib/app", NULL, uuid, NULL));
        ASSERT_EQ(store_upload_acquire(s, "lib/other", uuid, &u), -ENOENT);
        ASSERT_EQ(store_upload_cancel(s, "lib/other", uuid), -ENOENT);
        ASSERT_OK(store_upload_cancel(s, "lib/app", uuid));
        ASSERT_EQ(store_upload_cancel(s, "lib/app", uuid), -ENOENT);
        ASSERT_EQ(store_upload_acquire(s, "not-a-uuid", uuid, &u), -ENOENT);

        char old[37], fresh[37];
        clock_set_fake(1000 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(store_upload_begin(s, "lib/app", NULL, old, NULL));
        clock_set_fake(5000 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(store_upload_begin(s, "lib/app", NULL, fresh, NULL));
        ASSERT_EQ(store_upload_purge(s, 3600 * (int64_t) NSEC_PER_SEC), 1);
        ASSERT_EQ(store_upload_acquire(s, "lib/app", old, &u), -ENOENT);
        ASSERT_OK(store_upload_acquire(s, "lib/app", fresh, &u));
        clock_set_fake(9000000 * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(store_upload_purge(s, 3600 * (int64_t) NSEC_PER_SEC), 0); /* held: never purged */
        store_upload_release(s, u);
        ASSERT_EQ(store_upload_purge(s, 3600 * (int64_t) NSEC_PER_SEC), 1);
        clock_set_fake(0);

        store_free(s);
        rm_rf(dir);
}

TEST(test_resume_after_restart) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        size_t len = 700000;
        _cleanup_free_ uint8_t *data = pattern(len, 3, false);
        char digest[DIGEST_MAX_LEN], uuid[37];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, data, len, digest));
        push_chunks(s, "r", data, 300000, 100000, uuid);
        store_free(s);
        /* what a crash left in tmp/ is cleaned by the next primary open */
        _cleanup_free_ char *stale = strdup_printf("%s/tmp/put-crashed", dir);
        ASSERT_OK(write_file_atomic(stale, "x", 1, 0644));

        s = test_store_open(dir, false);
        ASSERT_TRUE(access(stale, F_OK) < 0);
        Upload *u = NULL;
        ASSERT_OK(store_upload_acquire(s, "r", uuid, &u));
        ASSERT_EQ(upload_offset(u), 300000); /* from the bytes on disk, re-hashed */
        ASSERT_OK(upload_write(u, data + 300000, len - 300000));
        StoreError e = {};
        ASSERT_OK(store_upload_commit(s, u, digest, NULL, &e));
        ASSERT_OK(store_repo_blob_info(s, "r", digest, NULL));
        store_free(s);
        rm_rf(dir);
}

TEST(test_dedupe_and_mount) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        const char *blob = "the same layer in two repositories";
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN];
        test_blob(s, "one", blob, d1);
        BlobInfo first;
        ASSERT_OK(store_blob_info(s, d1, &first));
        test_blob(s, "two", blob, d2);
        ASSERT_STREQ(d1, d2);
        ASSERT_EQ(count_blob_files(dir), 1);
        ASSERT_OK(store_repo_blob_info(s, "one", d1, NULL));
        ASSERT_OK(store_repo_blob_info(s, "two", d1, NULL));
        BlobInfo again;
        ASSERT_OK(store_blob_info(s, d1, &again));
        ASSERT_EQ(again.created, first.created);

        /* expected digest mismatch */
        StoreError e = {};
        char d[DIGEST_MAX_LEN];
        ASSERT_EQ(store_blob_put(s, "one", "abc", 3, d1, d, &e), -EBADMSG);
        ASSERT_EQ(e.code, OCI_DIGEST_INVALID);

        /* mount */
        ASSERT_EQ(store_blob_mount(s, "three", "nowhere", d1, NULL), -ENOENT);
        ASSERT_EQ(store_repo_blob_info(s, "three", d1, NULL), -ENOENT);
        clock_set_fake(first.touched + 10 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(store_blob_mount(s, "three", "one", d1, NULL));
        clock_set_fake(0);
        ASSERT_OK(store_repo_blob_info(s, "three", d1, &again));
        ASSERT_TRUE(again.touched > first.touched);
        ASSERT_OK(store_blob_mount(s, "four", NULL, d1, NULL));
        ASSERT_EQ(store_blob_mount(s, "four", NULL, "sha256:0000000000000000000000000000000000000000000000000000000000000000", NULL), -ENOENT);

        /* unlink: gone from that repo only; the content stays for GC */
        ASSERT_OK(store_blob_unlink(s, "three", d1, "tester", NULL));
        ASSERT_EQ(store_blob_unlink(s, "three", d1, "tester", NULL), -ENOENT);
        ASSERT_EQ(store_repo_blob_info(s, "three", d1, NULL), -ENOENT);
        ASSERT_OK(store_repo_blob_info(s, "one", d1, NULL));

        /* GC's remove: record then file, returns disk bytes */
        uint64_t freed = 0;
        store_digest_lock(s, d1);
        ASSERT_OK(store_blob_remove(s, d1, &freed));
        store_digest_unlock(s, d1);
        ASSERT_EQ(freed, strlen(blob));
        ASSERT_EQ(store_blob_info(s, d1, NULL), -ENOENT);
        ASSERT_EQ(store_repo_blob_info(s, "one", d1, NULL), -ENOENT);
        ASSERT_EQ(count_blob_files(dir), 0);
        store_free(s);
        rm_rf(dir);
}

typedef struct Worker {
        Store *s;
        int id;
        const uint8_t *shared;
        size_t shared_len;
        char shared_digest[DIGEST_MAX_LEN];
        char own_digest[DIGEST_MAX_LEN];
} Worker;

static void *worker(void *userdata) {
        Worker *w = userdata;
        char repo[32], uuid[37];
        snprintf(repo, sizeof repo, "team/repo%d", w->id);
        for (int round = 0; round < 3; round++) {
                push_chunks(w->s, repo, w->shared, w->shared_len, 50000, uuid);
                Upload *u = NULL;
                ASSERT_OK(store_upload_acquire(w->s, repo, uuid, &u));
                StoreError e = {};
                ASSERT_OK(store_upload_commit(w->s, u, w->shared_digest, NULL, &e));
        }
        _cleanup_free_ uint8_t *own = pattern(120000 + (size_t) w->id, 100 + (unsigned) w->id, false);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, own, 120000 + (size_t) w->id, w->own_digest));
        push_chunks(w->s, repo, own, 120000 + (size_t) w->id, 7000, uuid);
        Upload *u = NULL;
        ASSERT_OK(store_upload_acquire(w->s, repo, uuid, &u));
        StoreError e = {};
        ASSERT_OK(store_upload_commit(w->s, u, w->own_digest, NULL, &e));
        return NULL;
}

TEST(test_concurrent_commits) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        size_t len = 400000;
        _cleanup_free_ uint8_t *shared = pattern(len, 7, false);
        char digest[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, shared, len, digest));
        enum { N = 6 };
        Worker w[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
                w[i] = (Worker) { .s = s, .id = i, .shared = shared, .shared_len = len };
                memcpy(w[i].shared_digest, digest, sizeof digest);
                ASSERT_EQ(pthread_create(&t[i], NULL, worker, &w[i]), 0);
        }
        for (int i = 0; i < N; i++)
                pthread_join(t[i], NULL);
        ASSERT_EQ(count_blob_files(dir), 1 + N);
        for (int i = 0; i < N; i++) {
                char repo[32];
                snprintf(repo, sizeof repo, "team/repo%d", i);
                ASSERT_OK(store_repo_blob_info(s, repo, digest, NULL));
                ASSERT_OK(store_repo_blob_info(s, repo, w[i].own_digest, NULL));
        }
        FsckReport rep;
        ASSERT_OK(store_fsck(s, false, &rep));
        ASSERT_EQ(json_array_size(rep.problems), 0);
        ASSERT_EQ(rep.blobs_checked, 1 + N);
        fsck_report_done(&rep);
        store_free(s);
        rm_rf(dir);
}

/* Many concurrent commits renaming into one fan-out directory (blobs/sha256/5a/) share its
 * fsyncs (group commit), and every one of them is committed, linked and readable. */
enum { SAME_DIR_THREADS = 8, SAME_DIR_BLOBS = 24, SAME_DIR_SIZE = 512 };

typedef struct SameDirBlob {
        uint8_t data[SAME_DIR_SIZE];
        char digest[DIGEST_MAX_LEN];
} SameDirBlob;

typedef struct SameDirWorker {
        Store *s;
        int id;
        pthread_barrier_t *start;
        SameDirBlob *blobs; /* SAME_DIR_BLOBS */
} SameDirWorker;

static void *same_dir_worker(void *userdata) {
        SameDirWorker *w = userdata;
        char repo[32];
        snprintf(repo, sizeof repo, "small/t%d", w->id);
        pthread_barrier_wait(w->start);
        for (int i = 0; i < SAME_DIR_BLOBS; i++) {
                SameDirBlob *b = w->blobs + i;
                StoreError e = {};
                if (i % 3 == 2) { /* the store_blob_put path commits the same way */
                        char got[DIGEST_MAX_LEN];
                        ASSERT_OK(store_blob_put(w->s, repo, b->data, SAME_DIR_SIZE, b->digest, got, &e));
                        ASSERT_STREQ(got, b->digest);
                        continue;
                }
                char uuid[37];
                Upload *u = NULL;
                ASSERT_OK(store_upload_begin(w->s, repo, NULL, uuid, NULL));
                ASSERT_OK(store_upload_acquire(w->s, repo, uuid, &u));
                ASSERT_OK(upload_write(u, b->data, SAME_DIR_SIZE));
                ASSERT_OK(store_upload_commit(w->s, u, b->digest, NULL, &e));
        }
        return NULL;
}

TEST(test_group_commit_same_dir) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        /* a slow directory fsync, so commits pile up behind it as they would on a slow disk */
        blob_backend_fs_set_sync_delay(s->blobs, 3000);
        enum { N = SAME_DIR_THREADS * SAME_DIR_BLOBS };
        _cleanup_free_ SameDirBlob *blobs = calloc(N, sizeof(SameDirBlob));
        ASSERT_TRUE(blobs);
        for (int i = 0; i < N; i++) { /* distinct contents whose sha256 starts with 5a */
                for (uint32_t nonce = 0;; nonce++) {
                        snprintf((char *) blobs[i].data, SAME_DIR_SIZE, "blob %d nonce %u", i, nonce);
                        ASSERT_OK(digest_buffer(DIGEST_SHA256, blobs[i].data, SAME_DIR_SIZE, blobs[i].digest));
                        if (startswith(blobs[i].digest, "sha256:5a"))
                                break;
                }
        }
        pthread_barrier_t start;
        ASSERT_EQ(pthread_barrier_init(&start, NULL, SAME_DIR_THREADS), 0);
        SameDirWorker w[SAME_DIR_THREADS];
        pthread_t t[SAME_DIR_THREADS];
        for (int i = 0; i < SAME_DIR_THREADS; i++) {
                w[i] = (SameDirWorker) { .s = s, .id = i, .start = &start, .blobs = blobs + i * SAME_DIR_BLOBS };
                ASSERT_EQ(pthread_create(&t[i], NULL, same_dir_worker, &w[i]), 0);
        }
        for (int i = 0; i < SAME_DIR_THREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);

        uint64_t fsyncs = blob_backend_fs_dir_fsyncs(s->blobs);
        printf("# %d commits into one directory took %llu directory fsyncs\n", N, (unsigned long long) fsyncs);
        ASSERT_TRUE(fsyncs > 0);
        ASSERT_TRUE(fsyncs * 2 <= N); /* shared; one each without group commit */
        ASSERT_EQ(count_blob_files(dir), N);
        _cleanup_free_ uint8_t *buf = malloc(SAME_DIR_SIZE + 1);
        for (int i = 0; i < N; i++) {
                char repo[32];
                snprintf(repo, sizeof repo, "small/t%d", i / SAME_DIR_BLOBS);
                ASSERT_OK(store_repo_blob_info(s, repo, blobs[i].digest, NULL));
                BlobReader *r = NULL;
                ASSERT_OK(store_blob_open(s, blobs[i].digest, &r));
                ASSERT_EQ(blob_reader_size(r), SAME_DIR_SIZE);
                ASSERT_EQ(blob_reader_pread(r, buf, SAME_DIR_SIZE + 1, 0), SAME_DIR_SIZE);
                ASSERT_TRUE(memcmp(buf, blobs[i].data, SAME_DIR_SIZE) == 0);
                blob_reader_free(r);
        }
        FsckReport rep;
        ASSERT_OK(store_fsck(s, false, &rep));
        ASSERT_EQ(json_array_size(rep.problems), 0);
        ASSERT_EQ(rep.blobs_checked, N);
        fsck_report_done(&rep);
        store_free(s);

        /* and after a reopen (the records were synced, the sessions are gone) */
        s = test_store_open(dir, false);
        for (int i = 0; i < N; i++)
                ASSERT_OK(store_blob_info(s, blobs[i].digest, NULL));
        size_t sessions = 0;
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_UPLOAD, NULL, 0, NULL, 0, count_cb, &sessions));
        ASSERT_EQ(sessions, 0);
        store_free(s);
        rm_rf(dir);
}

/* The state a kill -9 can leave: a commit renamed its file into blobs/ but its index batch never
 * ran (the session record still names the digest being committed), a session record whose file
 * is gone, an upload file whose record never made it. The next open removes all three; the blob
 * stays invisible and fsck is clean. */
TEST(test_reconcile_after_crash) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        static const char data[] = "a blob whose commit was cut short";
        char digest[DIGEST_MAX_LEN], uuid[37], lost[37];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, data, strlen(data), digest));
        ASSERT_OK(store_upload_begin(s, "crash/r", NULL, uuid, NULL));
        ASSERT_OK(store_upload_begin(s, "crash/r", NULL, lost, NULL));
        store_free(s);

        /* interrupted commit: record marked, file moved into blobs/, no blob record */
        s = test_store_open(dir, false);
        _cleanup_free_ char *rec = strdup_printf("{\"repo\":\"crash/r\",\"started\":1,\"updated\":1,\"offset\":%zu,"
                                                 "\"commit\":\"%s\"}", strlen(data), digest);
        ASSERT_OK(store_kv_put(s, INDEX_UPLOAD, uuid, 36, rec, strlen(rec)));
        _cleanup_free_ char *up = strdup_printf("%s/uploads/%s", dir, uuid);
        _cleanup_free_ char *blob = store_blob_location(s, digest);
        _cleanup_free_ char *fan = strndup(blob, strrchr(blob, '/') - blob);
        ASSERT_OK(mkdir_p(fan, 0755));
        FILE *f = fopen(up, "w");
        ASSERT_TRUE(f);
        fputs(data, f);
        fclose(f);
        ASSERT_OK(rename(up, blob));
        /* a session whose file is gone, an upload file without record */
        _cleanup_free_ char *lost_path = strdup_printf("%s/uploads/%s", dir, lost);
        ASSERT_OK(unlink(lost_path));
        char orphan[37];
        ASSERT_OK(uuid_random(orphan));
        _cleanup_free_ char *orphan_path = strdup_printf("%s/uploads/%s", dir, orphan);
        f = fopen(orphan_path, "w");
        ASSERT_TRUE(f);
        fclose(f);
        store_free(s);

        s = test_store_open(dir, false);
        ASSERT_TRUE(access(blob, F_OK) < 0 && errno == ENOENT);
        ASSERT_TRUE(access(orphan_path, F_OK) < 0 && errno == ENOENT);
        size_t sessions = 0;
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_UPLOAD, NULL, 0, NULL, 0, count_cb, &sessions));
        ASSERT_EQ(sessions, 0);
        ASSERT_EQ(store_blob_info(s, digest, NULL), -ENOENT);
        Upload *u = NULL;
        ASSERT_EQ(store_upload_acquire(s, "crash/r", uuid, &u), -ENOENT);
        FsckReport rep;
        ASSERT_OK(store_fsck(s, false, &rep));
        ASSERT_EQ(json_array_size(rep.problems), 0);
        fsck_report_done(&rep);

        /* the client redoes the push */
        StoreError e = {};
        char got[DIGEST_MAX_LEN];
        ASSERT_OK(store_blob_put(s, "crash/r", data, strlen(data), digest, got, &e));
        ASSERT_OK(store_repo_blob_info(s, "crash/r", digest, NULL));
        store_free(s);
        rm_rf(dir);
}

TEST(test_zstd_at_rest) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, true);
        size_t len = 3 * BLOB_ZSTD_FRAME_SIZE + 4321;
        _cleanup_free_ uint8_t *data = pattern(len, 9, true);
        char digest[DIGEST_MAX_LEN], uuid[37];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, data, len, digest));
        push_chunks(s, "z", data, len, 333333, uuid);
        Upload *u = NULL;
        ASSERT_OK(store_upload_acquire(s, "z", uuid, &u));
        StoreError e = {};
        ASSERT_OK(store_upload_commit(s, u, digest, NULL, &e));

        BlobInfo bi;
        ASSERT_OK(store_blob_info(s, digest, &bi));
        ASSERT_EQ(bi.encoding, BLOB_ENCODING_ZSTD);
        ASSERT_EQ(bi.size, len);
        ASSERT_TRUE(bi.stored_size < len / 2);
        _cleanup_free_ char *path = store_blob_location(s, digest);
        struct stat st;
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ((uint64_t) st.st_size, bi.stored_size);

        BlobReader *r = NULL;
        ASSERT_OK(store_blob_open(s, digest, &r));
        ASSERT_EQ(blob_reader_fd(r), -1);
        ASSERT_EQ(blob_reader_size(r), len);
        _cleanup_free_ uint8_t *buf = malloc(len);
        /* arbitrary ranges, across frame boundaries, backwards and to the end */
        const uint64_t offsets[] = { 0, 1, BLOB_ZSTD_FRAME_SIZE - 10, 2 * BLOB_ZSTD_FRAME_SIZE - 1, 12345, len - 100, len - 1,
                                     BLOB_ZSTD_FRAME_SIZE, 3 * BLOB_ZSTD_FRAME_SIZE };
        const size_t sizes[] = { 10, BLOB_ZSTD_FRAME_SIZE + 5, 20, 2 * BLOB_ZSTD_FRAME_SIZE, 1, 1000, 1, 7, 4321 };
        for (size_t i = 0; i < ELEMENTSOF(offsets); i++) {
                ssize_t n = blob_reader_pread(r, buf, sizes[i], offsets[i]);
                size_t expect = MIN(sizes[i], len - offsets[i]);
                ASSERT_EQ(n, expect);
                ASSERT_TRUE(memcmp(buf, data + offsets[i], expect) == 0);
        }
        ASSERT_EQ(blob_reader_pread(r, buf, len, 0), len);
        ASSERT_TRUE(memcmp(buf, data, len) == 0);
        blob_reader_free(r);

        /* already-compressed content (gzip magic) stays raw for sendfile */
        _cleanup_free_ uint8_t *gz = pattern(100000, 10, true);
        gz[0] = 0x1f;
        gz[1] = 0x8b;
        char gzd[DIGEST_MAX_LEN];
        ASSERT_OK(store_blob_put(s, "z", gz, 100000, NULL, gzd, &e));
        ASSERT_OK(store_blob_info(s, gzd, &bi));
        ASSERT_EQ(bi.encoding, BLOB_ENCODING_RAW);
        /* incompressible content stays raw */
        _cleanup_free_ uint8_t *rnd = pattern(100000, 11, false);
        ASSERT_OK(store_blob_put(s, "z", rnd, 100000, NULL, gzd, &e));
        ASSERT_OK(store_blob_info(s, gzd, &bi));
        ASSERT_EQ(bi.encoding, BLOB_ENCODING_RAW);

        FsckReport rep;
        ASSERT_OK(store_fsck(s, false, &rep));
        ASSERT_EQ(json_array_size(rep.problems), 0);
        ASSERT_EQ(rep.bytes_checked, len + 200000);
        fsck_report_done(&rep);
        store_free(s);
        rm_rf(dir);
}

static size_t open_fds(void) {
        size_t n = 0;
        DIR *d = opendir("/proc/self/fd");
        ASSERT_TRUE(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* Sessions hold no descriptor between requests, and are counted per client and in total, also
 * across a restart and until committed, cancelled or purged. */
TEST(test_upload_limits) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        UploadLimits a = { .client = "10.0.0.1", .max_sessions = 4, .max_per_client = 2 };
        UploadLimits b = { .client = "10.0.0.2", .max_sessions = 4, .max_per_client = 2 };
        char u1[37], u2[37], u3[37], u4[37], x[37];
        StoreError e = {};

        size_t fds = open_fds();
        ASSERT_OK(store_upload_begin(s, "lim/r", &a, u1, &e));
        ASSERT_OK(store_upload_begin(s, "lim/r", &a, u2, &e));
        ASSERT_EQ(open_fds(), fds); /* nothing held open */
        ASSERT_EQ(store_upload_begin(s, "lim/r", &a, x, &e), -EUSERS);
        ASSERT_EQ(e.code, OCI_TOOMANYREQUESTS);
        ASSERT_TRUE(strstr(e.message, "from this client") != NULL);
        ASSERT_OK(store_upload_begin(s, "lim/r", &b, u3, &e));
        ASSERT_OK(store_upload_begin(s, "lim/r", &b, u4, &e));
        UploadLimits c = { .client = "10.0.0.3", .max_sessions = 4, .max_per_client = 2 };
        e = (StoreError) {};
        ASSERT_EQ(store_upload_begin(s, "lim/r", &c, x, &e), -EUSERS);
        ASSERT_TRUE(strstr(e.message, "in this registry") != NULL);
        ASSERT_OK(store_upload_begin(s, "lim/r", NULL, x, NULL)); /* no limits given: none apply */
        ASSERT_OK(store_upload_cancel(s, "lim/r", x));

        /* a write opens the file for that request only */
        Upload *u = NULL;
        ASSERT_OK(store_upload_acquire(s, "lim/r", u1, &u));
        ASSERT_EQ(open_fds(), fds + 1);
        ASSERT_OK(upload_write(u, "abc", 3));
        store_upload_release(s, u);
        ASSERT_EQ(open_fds(), fds);
        ASSERT_OK(store_upload_acquire(s, "lim/r", u1, &u));
        ASSERT_EQ(upload_offset(u), 3);
        ASSERT_OK(upload_write(u, "def", 3));
        char d[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, "abcdef", 6, d));
        ASSERT_OK(store_upload_commit(s, u, d, NULL, &e)); /* the hash survived the closed file */
        ASSERT_EQ(open_fds(), fds);

        /* committed and cancelled sessions no longer count */
        ASSERT_OK(store_upload_begin(s, "lim/r", &a, x, &e));
        ASSERT_EQ(store_upload_begin(s, "lim/r", &c, u1, &e), -EUSERS); /* total 4 again */
        ASSERT_OK(store_upload_cancel(s, "lim/r", u2));
        ASSERT_OK(store_upload_begin(s, "lim/r", &c, u2, &e));

        /* after a restart the records count again */
        store_free(s);
        s = test_store_open(dir, false);
        ASSERT_EQ(store_upload_begin(s, "lim/r", &a, u1, &e), -EUSERS);
        ASSERT_EQ(store_upload_begin(s, "lim/r", &b, u1, &e), -EUSERS);
        ASSERT_OK(store_upload_cancel(s, "lim/r", u2)); /* not loaded yet: its record says who */
        ASSERT_OK(store_upload_begin(s, "lim/r", &c, u2, &e));

        /* purged sessions no longer count */
        clock_set_fake(clock_now_ns() + 48 * 3600 * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(store_upload_purge(s, 24 * 3600 * (int64_t) NSEC_PER_SEC), 4);
        clock_set_fake(0);
        ASSERT_OK(store_upload_begin(s, "lim/r", &a, u1, &e));
        ASSERT_OK(store_upload_begin(s, "lim/r", &a, u2, &e));
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_chunked_upload);
        RUN(test_resume_after_restart);
        RUN(test_dedupe_and_mount);
        RUN(test_concurrent_commits);
        RUN(test_group_commit_same_dir);
        RUN(test_reconcile_after_crash);
        RUN(test_zstd_at_rest);
        RUN(test_upload_limits);
        return 0;
}
