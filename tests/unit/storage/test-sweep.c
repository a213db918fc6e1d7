/* SPDX-License-Identifier: MIT */
/* The GC's sweep verbs against a real store: what the mark named goes, records before files, and
 * a writer that touched a candidate since the mark's snapshot (a push, a mount, a commit between
 * the record and the file pass) keeps it; the walk of the blob files and the orphan removal. */
#include <sys/stat.h>
#include <unistd.h>

#include "storage-test-helpers.h"
#include "storage/fsck.h"
#include "storage/gc-records.h"
#include "storage/records.h"

#define HOUR (3600LL * 1000000000LL)
#define T0 (1893456000LL * 1000000000LL) /* 2030-01-01 */

typedef struct Candidates {
        Store *s;
        char (*names)[DIGEST_MAX_LEN]; /* sorted */
        BlobInfo *then;
        size_t n;
        StoreSweepResult result[16];
        int error[16];
        unsigned done, each;
        void (*hook)(struct Candidates *c);
        const char *repush;    /* content pushed again by repush_hook() */
        const char *mount;     /* digest mounted into apps/other by mount_hook() */
        bool cancel;
} Candidates;

static int cmp_name(const void *a, const void *b) {
        return strcmp(a, b);
}

/* The candidates, sorted, with their records read in snap (as the GC's mark reads them). */
static void candidates_init(Candidates *c, Store *s, IndexSnapshot *snap, const char *const *digests, size_t n) {
        *c = (Candidates) { .s = s, .n = n };
        c->names = calloc(n, sizeof *c->names);
        c->then = calloc(n, sizeof *c->then);
        ASSERT_TRUE(c->names && c->then);
        for (size_t i = 0; i < n; i++)
                snprintf(c->names[i], DIGEST_MAX_LEN, "%s", digests[i]);
        qsort(c->names, n, sizeof *c->names, cmp_name);
        for (size_t i = 0; i < n; i++) {
                c->result[i] = _STORE_SWEEP_RESULT_INVALID;
                (void) snap;
                if (store_blob_info(s, c->names[i], &c->then[i]) < 0)
                        c->then[i] = (BlobInfo) {};
        }
}

static void candidates_done(Candidates *c) {
        free(c->names);
        free(c->then);
}

static size_t index_of(const Candidates *c, const char *digest) {
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->names[i], digest))
                        return i;
        ASSERT_TRUE(false);
        return 0;
}

static void digest_cb(void *userdata, size_t i, char ret[DIGEST_MAX_LEN]) {
        Candidates *c = userdata;
        memcpy(ret, c->names[i], DIGEST_MAX_LEN);
}

static void blob_cb(void *userdata, size_t i, char ret[DIGEST_MAX_LEN], BlobInfo *then) {
        Candidates *c = userdata;
        memcpy(ret, c->names[i], DIGEST_MAX_LEN);
        *then = c->then[i];
}

static void done_cb(void *userdata, size_t i, StoreSweepResult r, int error) {
        Candidates *c = userdata;
        ASSERT_TRUE(i < c->n);
        ASSERT_EQ(c->result[i], _STORE_SWEEP_RESULT_INVALID); /* once each */
        c->result[i] = r;
        c->error[i] = error;
        __atomic_fetch_add(&c->done, 1, __ATOMIC_RELAXED);
}

static void each_cb(void *userdata) {
        Candidates *c = userdata;
        __atomic_fetch_add(&c->each, 1, __ATOMIC_RELAXED);
}

static void between_cb(void *userdata) {
        Candidates *c = userdata;
        if (c->hook)
                c->hook(c);
}

static bool cancelled_cb(void *userdata) {
        return ((Candidates *) userdata)->cancel;
}

static StoreSweepOptions options(Candidates *c, IndexSnapshot *snap) {
        return (StoreSweepOptions) {
                .snap = snap,
                .mark_start = T0 + 2 * HOUR,
                .cutoff = T0 + HOUR,
                .cold = true,
                .done = done_cb,
                .userdata = c,
                .cancelled = cancelled_cb,
                .each = each_cb,
                .between_passes = between_cb,
        };
}

static bool file_exists(Store *s, const char *digest) {
        int r = store_blob_file_exists(s, digest);
        ASSERT_OK(r);
        return r > 0;
}

static void repush_hook(Candidates *c) {
        char d[DIGEST_MAX_LEN];
        ASSERT_TRUE(store_blob_info(c->s, c->names[0], NULL) == -ENOENT); /* the record pass removed it */
        test_blob(c->s, "apps/p", c->repush, d);
}

/* Two loose blobs; a push of one of them between the record and the file pass: its new record
 * stays and so does its file; the other goes with its repository link. */
TEST(test_blob_pushed_between_passes) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        clock_set_fake(T0);
        const char *ca = "a layer pushed again between the passes", *cb = "a layer nobody pushes again";
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        test_blob(s, "apps/p", ca, a);
        test_blob(s, "apps/p", cb, b);
        clock_set_fake(T0 + 2 * HOUR);
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true, .generations = true }, &snap));
        Candidates c;
        candidates_init(&c, s, snap, (const char *const[]) { a, b }, 2);
        size_t ia = index_of(&c, a), ib = index_of(&c, b);
        if (ia != 0) { /* the hook re-pushes candidate 0 */
                const char *t = ca;
                ca = cb, cb = t;
                size_t x = ia;
                ia = ib, ib = x;
        }
        c.repush = ca;
        c.hook = repush_hook;
        StoreSweepOptions o = options(&c, snap);
        StoreSweepStats st;
        ASSERT_OK(store_sweep_blobs(s, &o, c.n, blob_cb, &st));
        ASSERT_EQ(c.done, 2);
        ASSERT_EQ(c.each, 2);
        ASSERT_EQ(c.result[0], STORE_SWEEP_RECOMMITTED);
        ASSERT_EQ(c.result[1], STORE_SWEEP_REMOVED);
        ASSERT_EQ(st.reads, 0);           /* no writer since the snapshot: nothing re-read in pass 1 */
        ASSERT_EQ(st.reads_files, 1);     /* the push moved one stripe before pass 2 */
        ASSERT_OK(store_blob_info(s, c.names[0], NULL));
        ASSERT_TRUE(file_exists(s, c.names[0]));
        ASSERT_EQ(store_blob_info(s, c.names[1], NULL), -ENOENT);
        ASSERT_FALSE(file_exists(s, c.names[1]));
        ASSERT_EQ(store_repo_blob_info(s, "apps/p", c.names[1], NULL), -ENOENT); /* its link went with it */
        ASSERT_OK(store_repo_blob_info(s, "apps/p", c.names[0], NULL));
        FsckReport fr;
        ASSERT_OK(store_fsck(s, false, &fr));
        ASSERT_EQ(fr.files_without_record + fr.records_without_file, 0);
        fsck_report_done(&fr);
        candidates_done(&c);
        store_snapshot_free(snap);
        store_free(s);
        rm_rf(dir);
        clock_set_fake(0);
}

/* A mount after the mark's snapshot touches the record under the digest lock and moves the
 * stripe's generation: the sweep re-reads it, sees the touch and keeps the blob. A blob younger
 * than the grace period stays too. */
TEST(test_blob_mounted_since_mark_and_grace) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        clock_set_fake(T0);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN], y[DIGEST_MAX_LEN];
        test_blob(s, "apps/m", "a layer mounted during the sweep", a);
        test_blob(s, "apps/m", "a layer nobody mounts", b);
        clock_set_fake(T0 + 90 * 60 * 1000000000LL);
        test_blob(s, "apps/m", "a layer inside the grace period", y);
        clock_set_fake(T0 + 2 * HOUR);
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true, .generations = true }, &snap));
        Candidates c;
        candidates_init(&c, s, snap, (const char *const[]) { a, b, y }, 3);
        ASSERT_OK(store_blob_mount(s, "apps/other", "apps/m", a, NULL));
        StoreSweepOptions o = options(&c, snap);
        StoreSweepStats st;
        ASSERT_OK(store_sweep_blobs(s, &o, c.n, blob_cb, &st));
        ASSERT_EQ(c.result[index_of(&c, a)], STORE_SWEEP_RACED);
        ASSERT_EQ(c.result[index_of(&c, b)], STORE_SWEEP_REMOVED);
        ASSERT_EQ(c.result[index_of(&c, y)], STORE_SWEEP_RACED);
        ASSERT_TRUE(st.reads >= 1);
        ASSERT_OK(store_repo_blob_info(s, "apps/other", a, NULL));
        ASSERT_TRUE(file_exists(s, a) && file_exists(s, y) && !file_exists(s, b));
        ASSERT_EQ(store_blob_info(s, b, NULL), -ENOENT);
        candidates_done(&c);

        /* gone already: nothing to do; a snapshot without generations re-reads every candidate */
        store_snapshot_free(snap);
        ASSERT_OK(store_snapshot_new(s, NULL, &snap));
        candidates_init(&c, s, snap, (const char *const[]) { b, y }, 2);
        o = options(&c, snap);
        o.cutoff = T0 + 3 * HOUR;
        o.mark_start = T0 + 3 * HOUR;
        ASSERT_OK(store_sweep_blobs(s, &o, c.n, blob_cb, &st));
        ASSERT_EQ(st.reads, 2);
        ASSERT_EQ(c.result[index_of(&c, b)], STORE_SWEEP_GONE);
        ASSERT_EQ(c.result[index_of(&c, y)], STORE_SWEEP_REMOVED);
        ASSERT_FALSE(file_exists(s, y));
        candidates_done(&c);
        store_snapshot_free(snap);
        store_free(s);
        rm_rf(dir);
        clock_set_fake(0);
}

/* Cancelled before the first group: nothing removed, -ECANCELED. */
TEST(test_sweep_cancelled) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        clock_set_fake(T0);
        char a[DIGEST_MAX_LEN];
        test_blob(s, "apps/c", "a layer of a cancelled sweep", a);
        clock_set_fake(T0 + 2 * HOUR);
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .generations = true }, &snap));
        Candidates c;
        candidates_init(&c, s, snap, (const char *const[]) { a }, 1);
        c.cancel = true;
        StoreSweepOptions o = options(&c, snap);
        ASSERT_EQ(store_sweep_blobs(s, &o, c.n, blob_cb, NULL), -ECANCELED);
        ASSERT_EQ(store_sweep_manifests(s, &o, c.n, digest_cb, NULL), -ECANCELED);
        ASSERT_EQ(c.done, 0);
        ASSERT_OK(store_blob_info(s, a, NULL));
        ASSERT_TRUE(file_exists(s, a));
        candidates_done(&c);
        store_snapshot_free(snap);
        store_free(s);
        rm_rf(dir);
        clock_set_fake(0);
}

static char *index_manifest(const char *child, size_t size) {
        return strdup_printf("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\",\"manifests\":[{\"mediaType\":\""
                             MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"amd64\","
                             "\"os\":\"linux\"}}]}", child, size);
}

static int put_index(Store *s, const char *repo, const char *body, char digest[DIGEST_MAX_LEN]) {
        ManifestPut p = { .repo = repo, .data = body, .len = strlen(body), .content_type = MEDIA_TYPE_OCI_INDEX, .reference = "idx" };
        StoreError e = {};
        return store_manifest_put(s, &p, digest, &e);
}

/* Manifest records whose links are gone: a PUT of one of them after the mark's snapshot links it
 * again and keeps it (an image: its first child's record was touched; an index: a link found in
 * a repository), the others go, made durable before the verb returns. */
TEST(test_manifests_pushed_again) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        clock_set_fake(T0);
        _cleanup_free_ char *img1 = test_pushed_image(s, "apps/q", "again");
        _cleanup_free_ char *img2 = test_pushed_image(s, "apps/q", "gone");
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN], di[DIGEST_MAX_LEN], dj[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "apps/q", "one", img1, d1, &e));
        ASSERT_OK(test_put_manifest(s, "apps/q", "two", img2, d2, &e));
        _cleanup_free_ char *idx = index_manifest(d1, strlen(img1));
        _cleanup_free_ char *idx2 = index_manifest(d2, strlen(img2));
        ASSERT_OK(put_index(s, "apps/q", idx, di));
        ASSERT_OK(put_index(s, "apps/q", idx2, dj));
        const char *all[] = { d1, d2, di, dj };
        for (size_t i = 0; i < 4; i++)
                ASSERT_OK(store_manifest_delete(s, "apps/q", all[i], "gc", 0, &e));
        clock_set_fake(T0 + 2 * HOUR);
        IndexSnapshot *snap = NULL;
        ASSERT_OK(store_snapshot_new(s, &(StoreSnapshotOptions) { .cold = true, .generations = true }, &snap));
        Candidates c;
        candidates_init(&c, s, snap, all, 4);
        /* pushed again after the mark: one image, one index */
        char out[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "apps/q", d1, img1, out, &e));
        ASSERT_OK(put_index(s, "apps/q", idx, out));
        StoreSweepOptions o = options(&c, snap);
        ASSERT_OK(store_sweep_manifests(s, &o, c.n, digest_cb, NULL));
        ASSERT_EQ(c.done, 4);
        ASSERT_EQ(c.each, 4);
        ASSERT_EQ(c.result[index_of(&c, d1)], STORE_SWEEP_RACED);
        ASSERT_EQ(c.result[index_of(&c, di)], STORE_SWEEP_RACED);
        ASSERT_EQ(c.result[index_of(&c, d2)], STORE_SWEEP_REMOVED);
        ASSERT_EQ(c.result[index_of(&c, dj)], STORE_SWEEP_REMOVED);
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(s, "apps/q", d1, &m));
        stored_manifest_free(m);
        ASSERT_OK(store_manifest_get(s, "apps/q", di, &m));
        stored_manifest_free(m);
        ASSERT_EQ(store_manifest_get_by_digest(s, d2, &m), -ENOENT);
        ASSERT_EQ(store_manifest_get_by_digest(s, dj, &m), -ENOENT);
        candidates_done(&c);

        /* without generations every candidate is checked: an index linked in another repository
         * than the one it left stays, one linked nowhere goes */
        store_snapshot_free(snap);
        ASSERT_OK(store_manifest_delete(s, "apps/q", di, "gc", 0, &e));
        Manifest *pm = NULL;
        ASSERT_OK(store_manifest_parsed(s, NULL, d1, &pm));
        ASSERT_OK(store_blob_mount(s, "apps/z", "apps/q", pm->config.digest, NULL));
        ASSERT_OK(store_blob_mount(s, "apps/z", "apps/q", pm->layers[0].digest, NULL));
        manifest_free(pm);
        ASSERT_OK(test_put_manifest(s, "apps/z", d1, img1, out, &e));
        ASSERT_OK(put_index(s, "apps/z", idx, out));
        ASSERT_OK(store_manifest_delete(s, "apps/z", d1, "gc", 0, &e));
        ASSERT_OK(store_snapshot_new(s, NULL, &snap));
        candidates_init(&c, s, snap, (const char *const[]) { di }, 1);
        o = options(&c, snap);
        StoreSweepStats st;
        ASSERT_OK(store_sweep_manifests(s, &o, c.n, digest_cb, &st));
        ASSERT_EQ(st.reads, 1);
        ASSERT_EQ(c.result[0], STORE_SWEEP_RACED);
        ASSERT_OK(store_manifest_get(s, "apps/z", di, &m));
        stored_manifest_free(m);
        candidates_done(&c);
        store_snapshot_free(snap);
        ASSERT_OK(store_manifest_delete(s, "apps/z", di, "gc", 0, &e));
        ASSERT_OK(store_snapshot_new(s, NULL, &snap));
        candidates_init(&c, s, snap, (const char *const[]) { di }, 1);
        o = options(&c, snap);
        ASSERT_OK(store_sweep_manifests(s, &o, c.n, digest_cb, &st));
        ASSERT_EQ(c.result[0], STORE_SWEEP_REMOVED);
        ASSERT_EQ(store_manifest_get_by_digest(s, di, &m), -ENOENT);
        candidates_done(&c);
        store_snapshot_free(snap);
        store_free(s);
        rm_rf(dir);
        clock_set_fake(0);
}

typedef struct Walk {
        Store *s;
        unsigned blobs, strays;
        bool saw_orphan, orphan_regular;
        const char *orphan;
} Walk;

static int walk_cb(void *userdata, const StoreBlobFile *f) {
        Walk *w = userdata;
        if (!f->digest) {
                w->strays++;
                return 0;
        }
        w->blobs++;
        if (streq(f->digest, w->orphan)) {
                uint64_t size;
                int64_t mtime;
                int r = store_blob_file_stat(w->s, f, &size, &mtime);
                ASSERT_OK(r);
                w->saw_orphan = true;
                w->orphan_regular = r == 1 && size == 6 && mtime > 0;
        }
        return 0;
}

/* The walk fsck and the GC's reconcile share: blob files by digest, anything else as a stray;
 * an orphan (no record) is removed under its lock, a file with a record is not. */
TEST(test_blob_files_and_orphans) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char a[DIGEST_MAX_LEN], od[DIGEST_MAX_LEN];
        test_blob(s, "apps/w", "a blob with a record", a);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, "orphan", 6, od));
        _cleanup_free_ char *odir = strdup_printf("%s/blobs/sha256/%.2s", dir, digest_hex(od));
        ASSERT_OK(mkdir_p(odir, 0755));
        _cleanup_free_ char *opath = strdup_printf("%s/%s", odir, digest_hex(od));
        ASSERT_OK(write_file_atomic(opath, "orphan", 6, 0444));
        _cleanup_free_ char *stray = strdup_printf("%s/not-a-digest", odir);
        ASSERT_OK(write_file_atomic(stray, "x", 1, 0644));
        Walk w = { .s = s, .orphan = od };
        ASSERT_OK(store_blob_files_foreach(s, walk_cb, &w));
        ASSERT_EQ(w.blobs, 2);
        ASSERT_EQ(w.strays, 1);
        ASSERT_TRUE(w.saw_orphan && w.orphan_regular);
        ASSERT_EQ(store_orphan_remove(s, a), 0);
        ASSERT_TRUE(file_exists(s, a));
        ASSERT_EQ(store_orphan_remove(s, od), 1);
        ASSERT_FALSE(file_exists(s, od));
        ASSERT_EQ(store_orphan_remove(s, od), 1); /* gone already */
        ASSERT_EQ(store_orphan_remove(s, "sha256:nope"), -EINVAL);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_blob_pushed_between_passes);
        RUN(test_blob_mounted_since_mark_and_grace);
        RUN(test_sweep_cancelled);
        RUN(test_manifests_pushed_again);
        RUN(test_blob_files_and_orphans);
        return 0;
}
