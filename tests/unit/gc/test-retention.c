/* SPDX-License-Identifier: MIT */
/* Retention rules and mark-and-sweep against a real RocksDB store in a temp dir, populated
 * through the storage API with a fake clock. Each rule alone, then together. */
#include <dirent.h>
#include <ftw.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "gc/gc-internal.h"
#include "storage/fsck.h"
#include "storage/gc-records.h"
#include "storage/holds.h"
#include "storage/index-internal.h"
#include "storage/store-internal.h"
#include "storage/storage.h"
#include "tests/unit/tests.h"

#define DAY (86400LL * 1000000000LL)
#define HOUR (3600LL * 1000000000LL)
#define T0 (1893456000LL * 1000000000LL) /* 2030-01-01 */

static char root[256];
static Store *store;
static Config *config;
static Gc *gc;
static unsigned seq;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f) {
        (void) st, (void) flag, (void) f;
        return remove(p);
}

static void open_store(void) {
        StoreOptions o;
        store_options_init(&o);
        o.root = root;
        o.fsync = false;
        ASSERT_OK(store_open(&o, &store));
}

/* The store's Gc, with the configuration of setup(). */
static void open_gc(void) {
        char err[512] = "";
        GcConfig *gcc = NULL;
        int r = gc_config_new(config, &gcc, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "gc config: %s\n", err);
        ASSERT_OK(r);
        ASSERT_OK(gc_new(store, gcc, &gc));
}

static void setup(const char *extra_gc_json) {
        snprintf(root, sizeof root, "/tmp/plura-test-gc.XXXXXX");
        ASSERT_TRUE(mkdtemp(root));
        open_store();
        char json[4096], err[512] = "";
        snprintf(json, sizeof json, "{\"gc\": {\"grace\": \"1h\", \"untagged_grace\": \"24h\"%s%s}}", extra_gc_json ? ", " : "",
                 extra_gc_json ? extra_gc_json : "");
        int r = config_load_string(json, &config, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "config: %s\n", err);
        ASSERT_OK(r);
        open_gc();
}

static void teardown(void) {
        gc = gc_free(gc);
        config_free(config);
        config = NULL;
        store_free(store);
        store = NULL;
        nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        clock_set_fake(0);
}

static void blob(const char *repo, const char *content, char out[DIGEST_MAX_LEN]) {
        StoreError e = {};
        int r = store_blob_put(store, repo, content, strlen(content), NULL, out, &e);
        if (r < 0)
                fprintf(stderr, "blob put: %s\n", e.message);
        ASSERT_OK(r);
}

static void put_manifest(const char *repo, const char *ref, const char *body, const char *mt, char out[DIGEST_MAX_LEN]) {
        ManifestPut p = { .repo = repo, .data = body, .len = strlen(body), .content_type = mt, .reference = ref };
        StoreError e = {};
        int r = store_manifest_put(store, &p, out, &e);
        if (r < 0)
                fprintf(stderr, "manifest put %s:%s: %s\n", repo, ref, e.message);
        ASSERT_OK(r);
}

/* An image with its own config and a unique layer (plus an optional shared layer). */
static void image(const char *repo, const char *tag, int64_t when, const char *shared_layer, char out[DIGEST_MAX_LEN]) {
        clock_set_fake(when);
        char cfgc[128], layc[4096], cd[DIGEST_MAX_LEN], ld[DIGEST_MAX_LEN], sd[DIGEST_MAX_LEN];
        unsigned n = ++seq;
        snprintf(cfgc, sizeof cfgc, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":%u}", n);
        int hl = snprintf(layc, sizeof layc, "layer-%u-", n);
        memset(layc + hl, 'x', 1000 + n);
        layc[(size_t) hl + 1000 + n] = 0;
        blob(repo, cfgc, cd);
        blob(repo, layc, ld);
        char body[2048];
        if (shared_layer) {
                blob(repo, shared_layer, sd);
                snprintf(body, sizeof body,
                         "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG
                         "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu},"
                         "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
                         cd, strlen(cfgc), sd, strlen(shared_layer), ld, strlen(layc));
        } else
                snprintf(body, sizeof body,
                         "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG
                         "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
                         cd, strlen(cfgc), ld, strlen(layc));
        char md[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, body, strlen(body), md));
        put_manifest(repo, tag ? tag : md, body, MEDIA_TYPE_OCI_MANIFEST, out);
        ASSERT_STREQ(out, md);
}

static void tag_as(const char *repo, const char *tag, const char *digest, int64_t when) {
        clock_set_fake(when);
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(store, repo, digest, &m));
        char out[DIGEST_MAX_LEN];
        char *body = strndup((const char *) m->data, m->size);
        put_manifest(repo, tag, body, m->media_type, out);
        free(body);
        stored_manifest_free(m);
}

static bool has_link(const char *repo, const char *digest) {
        StoredManifest *m = NULL;
        int r = store_manifest_get(store, repo, digest, &m);
        stored_manifest_free(m);
        return r >= 0;
}

static bool has_tag(const char *repo, const char *tag) {
        TagInfo t;
        return store_tag_get(store, repo, tag, &t) >= 0;
}

static bool has_manifest(const char *digest) {
        StoredManifest *m = NULL;
        int r = store_manifest_get_by_digest(store, digest, &m);
        stored_manifest_free(m);
        return r >= 0;
}

static bool has_blob(const char *digest) {
        BlobInfo bi;
        return store_blob_info(store, digest, &bi) >= 0;
}

/* The test hooks of the next runs (GcOptions), set around a run by the tests that race one. */
typedef void (*GcHook)(Gc *g, void *userdata);
static GcHook before_manifest_sweep, between_sweep_passes;

static json_t *run_gc(int64_t now, bool dry, const char *repo) {
        clock_set_fake(now);
        GcOptions o = { .dry_run = dry, .repo = repo, .trigger = "test", .test_before_manifest_sweep = before_manifest_sweep,
                        .test_between_sweep_passes = between_sweep_passes };
        json_t *rep = NULL;
        int r = gc_run(gc, &o, &rep);
        ASSERT_OK(r);
        if (getenv("GC_TEST_VERBOSE"))
                gc_report_print(stderr, rep);
        return rep;
}

/* whether the GC's sweep intent for fsck is recorded */
static bool has_sweep_intent(void) {
        char *intent = NULL;
        int r = store_gc_sweep_intent_get(store, &intent);
        free(intent);
        ASSERT_TRUE(r >= 0 || r == -ENOENT);
        return r >= 0;
}

static long long total(json_t *rep, const char *k) {
        return json_integer_value(json_object_get(json_object_get(rep, "totals"), k));
}

static uint64_t du_blobs(void) {
        /* apparent size of every file under blobs/ (what du -sb reports for files) */
        char cmd[512];
        snprintf(cmd, sizeof cmd, "find %s/blobs -type f -printf '%%s\\n' | awk '{s+=$1} END {print s+0}'", root);
        FILE *f = popen(cmd, "r");
        ASSERT_TRUE(f);
        unsigned long long v = 0;
        ASSERT_TRUE(fscanf(f, "%llu", &v) == 1);
        pclose(f);
        return v;
}

/* ---------------------------------------------------------------- tests */

TEST(test_keep_last_and_idle) {
        setup(NULL);
        char d[15][DIGEST_MAX_LEN], tag[64];
        for (int i = 0; i < 15; i++) {
                snprintf(tag, sizeof tag, "dev-%d-g%07x", i, 0xabc000 + i);
                image("apps/search", tag, T0 + i * HOUR, NULL, d[i]);
        }
        /* moving tag on the newest, release tag on the oldest */
        tag_as("apps/search", "dev", d[14], T0 + 15 * HOUR);
        tag_as("apps/search", "v1.0.0", d[0], T0 + 15 * HOUR);

        /* 3 days later: beyond keep_last but not idle for 7 days: nothing deleted */
        json_t *rep = run_gc(T0 + 3 * DAY, false, NULL);
        ASSERT_EQ(total(rep, "tags_deleted"), 0);
        ASSERT_EQ(total(rep, "manifests_deleted"), 0);
        json_decref(rep);

        /* 30 days later: the 5 oldest versions are idle: their trace tags go; v1.0.0 keeps d[0] */
        rep = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_EQ(total(rep, "tags_deleted"), 5);
        ASSERT_EQ(total(rep, "manifests_deleted"), 4);
        ASSERT_EQ(total(rep, "blobs_deleted"), 8);
        for (int i = 0; i < 15; i++) {
                snprintf(tag, sizeof tag, "dev-%d-g%07x", i, 0xabc000 + i);
                ASSERT_EQ(has_tag("apps/search", tag), i >= 5);
                ASSERT_EQ(has_link("apps/search", d[i]), i == 0 || i >= 5);
                ASSERT_EQ(has_manifest(d[i]), i == 0 || i >= 5);
        }
        ASSERT_TRUE(has_tag("apps/search", "v1.0.0"));
        ASSERT_TRUE(has_tag("apps/search", "dev"));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(json_object_get(rep, "per_rule"), "keep_last_idle"),
                                                     "tags_deleted")), 5);
        json_decref(rep);
        teardown();
}

TEST(test_idle_with_pulls) {
        setup(NULL);
        char d[13][DIGEST_MAX_LEN], tag[64];
        for (int i = 0; i < 13; i++) {
                snprintf(tag, sizeof tag, "sha-%07x", 0xdef000 + i);
                image("apps/api", tag, T0 + i * HOUR, NULL, d[i]);
        }
        /* d[0] pulled by tag 2 days before the GC, d[1] pulled by digest; d[2] never */
        clock_set_fake(T0 + 28 * DAY);
        snprintf(tag, sizeof tag, "sha-%07x", 0xdef000);
        store_note_pull(store, "apps/api", tag, d[0]);
        store_note_pull(store, "apps/api", NULL, d[1]);
        ASSERT_OK(store_flush_pulls(store));

        json_t *rep = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_TRUE(has_link("apps/api", d[0]));
        ASSERT_TRUE(has_link("apps/api", d[1]));
        ASSERT_FALSE(has_link("apps/api", d[2]));
        ASSERT_EQ(total(rep, "tags_deleted"), 1);
        json_decref(rep);

        /* without further pulls they go 7 days later */
        rep = run_gc(T0 + 36 * DAY, false, NULL);
        ASSERT_FALSE(has_link("apps/api", d[0]));
        ASSERT_FALSE(has_link("apps/api", d[1]));
        ASSERT_EQ(total(rep, "tags_deleted"), 2);
        json_decref(rep);
        teardown();
}

TEST(test_release_and_moving_tags_forever) {
        setup(NULL);
        char d[DIGEST_MAX_LEN];
        const char *tags[] = { "v1.2.3", "1.2.3", "2.0.0_abcdef1", "latest", "dev" };
        char ds[5][DIGEST_MAX_LEN];
        for (int i = 0; i < 5; i++)
                image("apps/core", tags[i], T0, NULL, ds[i]);
        /* 12 idle trace tags on top, so keep_last would bite if they counted */
        for (int i = 0; i < 12; i++) {
                char t[32];
                snprintf(t, sizeof t, "dev-%d-g%07x", i, 0x123000 + i);
                image("apps/core", t, T0 + HOUR, NULL, d);
        }
        json_t *rep = run_gc(T0 + 400 * DAY, false, NULL);
        for (int i = 0; i < 5; i++) {
                ASSERT_TRUE(has_tag("apps/core", tags[i]));
                ASSERT_TRUE(has_manifest(ds[i]));
        }
        ASSERT_EQ(total(rep, "tags_deleted"), 2);
        json_decref(rep);
        teardown();
}

TEST(test_untagged_grace) {
        setup(NULL);
        char old[DIGEST_MAX_LEN], young[DIGEST_MAX_LEN];
        image("apps/x", NULL, T0, NULL, old);
        image("apps/x", NULL, T0 + 2 * DAY - 2 * HOUR, NULL, young);
        json_t *rep = run_gc(T0 + 2 * DAY, false, NULL);
        ASSERT_FALSE(has_manifest(old));
        ASSERT_TRUE(has_manifest(young));
        ASSERT_EQ(total(rep, "manifests_deleted"), 1);
        ASSERT_EQ(total(rep, "blobs_deleted"), 2);
        json_decref(rep);
        teardown();
}

static void make_index(const char *repo, const char *tag, char kids[][DIGEST_MAX_LEN], size_t n, int64_t when,
                       char out[DIGEST_MAX_LEN]) {
        clock_set_fake(when);
        char body[4096];
        size_t o = (size_t) snprintf(body, sizeof body, "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\",\"manifests\":[");
        const char *arch[] = { "amd64", "arm64", "s390x" };
        for (size_t i = 0; i < n; i++) {
                StoredManifest *m = NULL;
                ASSERT_OK(store_manifest_get(store, repo, kids[i], &m));
                o += (size_t) snprintf(body + o, sizeof body - o,
                                       "%s{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
                                       "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}",
                                       i ? "," : "", kids[i], m->size, arch[i % 3]);
                stored_manifest_free(m);
        }
        snprintf(body + o, sizeof body - o, "]}");
        put_manifest(repo, tag, body, MEDIA_TYPE_OCI_INDEX, out);
}

TEST(test_multiarch_children_kept) {
        setup(NULL);
        char kids[2][DIGEST_MAX_LEN], idx[DIGEST_MAX_LEN], kids2[2][DIGEST_MAX_LEN], idx2[DIGEST_MAX_LEN];
        image("apps/multi", NULL, T0, NULL, kids[0]);
        image("apps/multi", NULL, T0, NULL, kids[1]);
        make_index("apps/multi", "v3.0.0", kids, 2, T0, idx);
        /* a second index that retention drops (idle trace tag beyond keep_last = 0) */
        image("apps/multi", NULL, T0, NULL, kids2[0]);
        image("apps/multi", NULL, T0, NULL, kids2[1]);
        make_index("apps/multi", "sha-0000001", kids2, 2, T0, idx2);
        json_t *rep = run_gc(T0 + 60 * DAY, false, NULL);
        ASSERT_TRUE(has_link("apps/multi", kids[0]));
        ASSERT_TRUE(has_link("apps/multi", kids[1]));
        ASSERT_TRUE(has_manifest(idx));
        /* keep_last is 10: the second index stays too (one version) */
        ASSERT_TRUE(has_manifest(idx2));
        ASSERT_TRUE(has_link("apps/multi", kids2[1]));
        json_decref(rep);
        teardown();

        /* keep_last 0: the trace-tagged index goes with its children; the release index stays */
        setup("\"retention\": [{\"repos\": \"**\", \"keep_forever\": [\"^v[0-9.]+$\"], \"keep_last\": 0, \"idle_days\": 7}]");
        image("apps/multi", NULL, T0, NULL, kids[0]);
        image("apps/multi", NULL, T0, NULL, kids[1]);
        make_index("apps/multi", "v3.0.0", kids, 2, T0, idx);
        image("apps/multi", NULL, T0, NULL, kids2[0]);
        image("apps/multi", NULL, T0, NULL, kids2[1]);
        make_index("apps/multi", "sha-0000001", kids2, 2, T0, idx2);
        rep = run_gc(T0 + 60 * DAY, false, NULL);
        ASSERT_TRUE(has_link("apps/multi", kids[0]));
        ASSERT_TRUE(has_link("apps/multi", kids[1]));
        ASSERT_TRUE(has_manifest(idx));
        ASSERT_FALSE(has_manifest(idx2));
        ASSERT_FALSE(has_manifest(kids2[0]));
        ASSERT_FALSE(has_manifest(kids2[1]));
        ASSERT_EQ(total(rep, "manifests_deleted"), 3);
        /* the children died for the index's reason */
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(json_object_get(rep, "per_rule"), "keep_last_idle"),
                                                     "manifests_deleted")), 3);
        json_decref(rep);
        teardown();
}

static void referrer(const char *repo, const char *subject, const char *tag, int64_t when, char out[DIGEST_MAX_LEN]) {
        clock_set_fake(when);
        char sig[128], sd[DIGEST_MAX_LEN], ed[DIGEST_MAX_LEN];
        snprintf(sig, sizeof sig, "signature over %s %u", subject, ++seq);
        blob(repo, sig, sd);
        blob(repo, "{}", ed);
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(store, repo, subject, &m));
        char body[2048];
        snprintf(body, sizeof body,
                 "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"artifactType\":\"application/vnd.dev.cosign.artifact.sig.v1+json\","
                 "\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_EMPTY "\",\"digest\":\"%s\",\"size\":2},"
                 "\"layers\":[{\"mediaType\":\"application/octet-stream\",\"digest\":\"%s\",\"size\":%zu}],"
                 "\"subject\":{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu}}",
                 ed, sd, strlen(sig), subject, m->size);
        stored_manifest_free(m);
        char md[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, body, strlen(body), md));
        put_manifest(repo, tag ? tag : md, body, MEDIA_TYPE_OCI_MANIFEST, out);
}

TEST(test_referrers_follow_subject) {
        setup(NULL);
        char keep[DIGEST_MAX_LEN], drop[DIGEST_MAX_LEN], r1[DIGEST_MAX_LEN], r2[DIGEST_MAX_LEN], r3[DIGEST_MAX_LEN];
        image("apps/signed", "v1.0.0", T0, NULL, keep);
        image("apps/signed", NULL, T0, NULL, drop);
        referrer("apps/signed", keep, NULL, T0, r1);   /* untagged, old: lives with its subject */
        referrer("apps/signed", drop, NULL, T0, r2);   /* goes with its subject */
        char ctag[128];
        snprintf(ctag, sizeof ctag, "sha256-%s.sig", digest_hex(drop));
        referrer("apps/signed", drop, ctag, T0, r3);   /* cosign tag scheme: goes too */
        json_t *rep = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_TRUE(has_manifest(keep));
        ASSERT_TRUE(has_manifest(r1));
        ASSERT_FALSE(has_manifest(drop));
        ASSERT_FALSE(has_manifest(r2));
        ASSERT_FALSE(has_manifest(r3));
        ASSERT_FALSE(has_tag("apps/signed", ctag));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(json_object_get(rep, "per_rule"), "referrer"),
                                                     "manifests_deleted")), 2);
        json_decref(rep);
        teardown();
}

static void history(const char *env, const char *svc, const char *pointer, uint64_t seqno, int64_t when, const char *digest) {
        char key[256];
        size_t o = 0;
        o += (size_t) snprintf(key + o, sizeof key - o, "%s", env) + 1;
        o += (size_t) snprintf(key + o, sizeof key - o, "%s", svc) + 1;
        o += (size_t) snprintf(key + o, sizeof key - o, "%s", pointer) + 1;
        for (int i = 0; i < 8; i++)
                key[o + (size_t) i] = (char) (seqno >> (8 * (7 - i)));
        o += 8;
        char *val = strdup_printf("{\"digest\":\"%s\",\"time\":%lld,\"actor\":\"test\",\"action\":\"promote\"}", digest, (long long) when);
        ASSERT_OK(store_kv_put(store, INDEX_CHANNEL_HISTORY, key, o, val, strlen(val)));
        free(val);
}

TEST(test_channel_windows) {
        setup(NULL);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN], c[DIGEST_MAX_LEN], d[DIGEST_MAX_LEN], e[DIGEST_MAX_LEN], f[DIGEST_MAX_LEN];
        int64_t now = T0 + 500 * DAY;
        /* untagged in the app repository, all old */
        image("apps/search", NULL, T0, NULL, a);
        image("apps/search", NULL, T0, NULL, b);
        image("apps/search", NULL, T0, NULL, c);
        image("apps/search", NULL, T0, NULL, d);
        image("apps/search", NULL, T0, NULL, e);
        image("apps/search", NULL, T0, NULL, f);
        /* prod:stable (180 d): a until -250 d (out), b until -5 d (in), c current */
        history("prod", "search", "stable", 1, now - 400 * DAY, a);
        history("prod", "search", "stable", 2, now - 250 * DAY, b);
        history("prod", "search", "stable", 3, now - 5 * DAY, c);
        /* dev (14 d): d until -20 d (out), e until -1 d (in), f current */
        history("dev", "search", "candidate", 1, now - 40 * DAY, d);
        history("dev", "search", "candidate", 2, now - 20 * DAY, e);
        history("dev", "search", "candidate", 3, now - 1 * DAY, f);
        json_t *rep = run_gc(now, false, NULL);
        ASSERT_FALSE(has_manifest(a));
        ASSERT_TRUE(has_manifest(b));
        ASSERT_TRUE(has_manifest(c));
        ASSERT_FALSE(has_manifest(d));
        ASSERT_TRUE(has_manifest(e));
        ASSERT_TRUE(has_manifest(f));
        ASSERT_TRUE(has_link("apps/search", b));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(rep, "kept"), "channel_window")), 4);
        json_decref(rep);
        /* 10 days later b has left the 180 d window? no: it left the pointer 15 d ago; e left 11 d ago: in */
        rep = run_gc(now + 10 * DAY, false, NULL);
        ASSERT_TRUE(has_manifest(b));
        ASSERT_TRUE(has_manifest(e));
        json_decref(rep);
        /* 4 more days: e's 14 d window is over */
        rep = run_gc(now + 14 * DAY, false, NULL);
        ASSERT_FALSE(has_manifest(e));
        ASSERT_TRUE(has_manifest(b));
        json_decref(rep);
        teardown();
}

TEST(test_holds) {
        setup(NULL);
        char held[DIGEST_MAX_LEN], released[DIGEST_MAX_LEN];
        image("apps/rca", NULL, T0, NULL, held);
        image("apps/rca", NULL, T0, NULL, released);
        clock_set_fake(T0 + HOUR);
        StoreError err = {};
        ASSERT_OK(store_hold_add(store, held, "INC-1", "incident", 0, "test", &err));
        ASSERT_OK(store_hold_add(store, released, "INC-2", "incident", 0, "test", &err));
        ASSERT_OK(store_hold_release(store, released, "INC-2", "test", &err));
        /* no WORM target configured: the released hold's content must stay (export failed) */
        json_t *rep = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_TRUE(has_manifest(held));
        ASSERT_TRUE(has_manifest(released));
        json_t *holds = json_object_get(rep, "holds");
        ASSERT_EQ(json_array_size(holds), 2);
        json_decref(rep);
        teardown();

        /* with a WORM target the released hold is exported first, then collected */
        char worm[300];
        snprintf(worm, sizeof worm, "/tmp/plura-test-gc-worm.XXXXXX");
        ASSERT_TRUE(mkdtemp(worm));
        char extra[512];
        snprintf(extra, sizeof extra, "\"reports_kept\": 5}, \"worm\": {\"path\": \"%s\"", worm);
        setup(extra);
        image("apps/rca", NULL, T0, NULL, held);
        image("apps/rca", NULL, T0, NULL, released);
        clock_set_fake(T0 + HOUR);
        ASSERT_OK(store_hold_add(store, held, "INC-1", "incident", 0, "test", &err));
        ASSERT_OK(store_hold_add(store, released, "INC-2", "incident", 0, "test", &err));
        ASSERT_OK(store_hold_release(store, released, "INC-2", "test", &err));
        rep = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_TRUE(has_manifest(held));
        ASSERT_FALSE(has_manifest(released));
        bool exported = false;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(rep, "holds"), i, v)
                if (streq(json_string_value(json_object_get(v, "action")), "exported"))
                        exported = true;
        ASSERT_TRUE(exported);
        json_decref(rep);
        teardown();
        nftw(worm, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(test_dry_run_bytes_match_disk) {
        setup(NULL);
        static char shared[20000];
        memset(shared, 's', sizeof shared - 1);
        char d[DIGEST_MAX_LEN], tag[64];
        for (int i = 0; i < 14; i++) {
                snprintf(tag, sizeof tag, "dev-%d-g%07x", i, 0x777000 + i);
                image("apps/shared", tag, T0 + i * HOUR, i % 2 ? shared : NULL, d);
        }
        image("apps/shared", NULL, T0, NULL, d); /* old untagged */
        char loose[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        blob("apps/shared", "an uploaded blob that no manifest references", loose);
        /* an orphan file (a crashed sweep) */
        char orphan_content[] = "orphan file content";
        char od[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, orphan_content, strlen(orphan_content), od));
        char *dir = strdup_printf("%s/blobs/sha256/%.2s", root, digest_hex(od));
        mkdir_p(dir, 0755);
        char *path = strdup_printf("%s/%s", dir, digest_hex(od));
        ASSERT_OK(write_file_atomic(path, orphan_content, strlen(orphan_content), 0444));

        uint64_t before = du_blobs();
        json_t *dry = run_gc(T0 + 30 * DAY, true, NULL);
        ASSERT_EQ(du_blobs(), before);   /* nothing changed */
        ASSERT_TRUE(has_blob(loose));
        ASSERT_TRUE(has_tag("apps/shared", "dev-0-g0777000"));
        json_t *real = run_gc(T0 + 30 * DAY, false, NULL);
        uint64_t after = du_blobs();
        ASSERT_TRUE(total(dry, "bytes_disk") > 0);
        ASSERT_EQ(total(dry, "bytes_disk"), (long long) (before - after));
        ASSERT_EQ(total(real, "bytes_disk"), (long long) (before - after));
        ASSERT_EQ(total(dry, "bytes_logical"), total(real, "bytes_logical"));
        ASSERT_EQ(total(dry, "blobs_deleted"), total(real, "blobs_deleted"));
        ASSERT_EQ(total(dry, "tags_deleted"), 4);
        ASSERT_EQ(total(real, "orphans_deleted"), 1);
        ASSERT_FALSE(has_blob(loose));
        {
                /* its repository link went in the same batch */
                size_t kl;
                char *k = index_key_join(&kl, "apps/shared", loose, NULL);
                ASSERT_EQ(store_kv_get(store, NULL, INDEX_REPO_BLOB, k, kl, NULL, NULL), -ENOENT);
                free(k);
        }
        ASSERT_TRUE(access(path, F_OK) < 0);
        /* the shared layer is still referenced by kept images */
        char sd[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, shared, strlen(shared), sd));
        ASSERT_TRUE(has_blob(sd));
        /* stored report */
        json_t *last = NULL;
        ASSERT_OK(gc_report_last(store, &last));
        ASSERT_EQ(json_integer_value(json_object_get(last, "id")), json_integer_value(json_object_get(real, "id")));
        json_decref(last);
        /* a second run finds nothing */
        json_t *again = run_gc(T0 + 30 * DAY, false, NULL);
        ASSERT_EQ(total(again, "bytes_disk"), 0);
        ASSERT_EQ(total(again, "blobs_deleted"), 0);
        FsckReport fr = {};
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.records_without_file + fr.files_without_record + fr.manifests_missing_children, 0);
        fsck_report_done(&fr);
        json_decref(dry);
        json_decref(real);
        json_decref(again);
        free(dir);
        free(path);
        teardown();
}

TEST(test_grace_and_reports_kept) {
        setup("\"reports_kept\": 2");
        char loose[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        blob("apps/g", "young loose blob", loose);
        json_t *rep = run_gc(T0 + 30 * 60 * 1000000000LL, false, NULL); /* 30 min < grace 1 h */
        ASSERT_TRUE(has_blob(loose));
        json_decref(rep);
        rep = run_gc(T0 + 2 * HOUR, false, NULL);
        ASSERT_FALSE(has_blob(loose));
        int64_t second = json_integer_value(json_object_get(rep, "id"));
        json_decref(rep);
        rep = run_gc(T0 + 3 * HOUR, false, NULL);
        int64_t third = json_integer_value(json_object_get(rep, "id"));
        json_t *list = NULL;
        ASSERT_OK(gc_reports_list(store, 0, &list));
        /* the two newest, newest first; the sweep intent went with the report's batch */
        ASSERT_EQ(json_array_size(list), 2);
        ASSERT_EQ(json_integer_value(json_object_get(json_array_get(list, 0), "id")), third);
        ASSERT_EQ(json_integer_value(json_object_get(json_array_get(list, 1), "id")), second);
        ASSERT_FALSE(has_sweep_intent());
        json_t *last = NULL;
        ASSERT_OK(gc_report_last(store, &last));
        ASSERT_EQ(json_integer_value(json_object_get(last, "id")), third);
        json_decref(last);
        json_decref(list);
        json_decref(rep);
        teardown();
}

/* The run's threads are niced to gc.cpu_nice (default 10) so that request threads come first;
 * the caller's thread keeps its priority (it may be an HTTP worker). */
TEST(test_cpu_nice) {
        errno = 0;
        int own = getpriority(PRIO_PROCESS, (id_t) gettid());
        ASSERT_EQ(errno, 0);
        setup(NULL);
        json_t *rep = run_gc(T0, false, NULL);
        if (own <= 10)
                ASSERT_EQ(json_integer_value(json_object_get(rep, "cpu_nice")), 10);
        json_decref(rep);
        ASSERT_EQ(getpriority(PRIO_PROCESS, (id_t) gettid()), own);
        teardown();
        setup("\"cpu_nice\": 0");
        rep = run_gc(T0, false, NULL);
        ASSERT_EQ(json_integer_value(json_object_get(rep, "cpu_nice")), own);
        json_decref(rep);
        teardown();
}

/* gc.sched_idle runs the run's threads under SCHED_IDLE (the report says which policy ran);
 * the caller's thread keeps its own. */
TEST(test_sched_idle) {
        int own = sched_getscheduler(0);
        ASSERT_TRUE(own >= 0);
        setup("\"sched_idle\": true");
        json_t *rep = run_gc(T0, false, NULL);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "cpu_policy")), "idle");
        json_decref(rep);
        ASSERT_EQ(sched_getscheduler(0), own);
        teardown();
        setup("\"sched_idle\": false, \"cpu_nice\": 0");
        rep = run_gc(T0, false, NULL);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "cpu_policy")), own == SCHED_IDLE ? "idle" : "normal");
        json_decref(rep);
        teardown();
        setup(NULL);
        rep = run_gc(T0, false, NULL);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "cpu_policy")), GC_SCHED_IDLE_DEFAULT ? "idle" : "normal");
        json_decref(rep);
        teardown();
}

TEST(test_repo_scope) {
        setup("\"retention\": [{\"repos\": \"**\", \"keep_last\": 0, \"idle_days\": 1}]");
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        image("apps/one", "sha-1", T0, NULL, a);
        image("apps/two", "sha-2", T0, NULL, b);
        json_t *rep = run_gc(T0 + 10 * DAY, false, "apps/one");
        ASSERT_FALSE(has_manifest(a));
        ASSERT_TRUE(has_manifest(b));
        json_decref(rep);
        teardown();
}

TEST(test_config_errors) {
        /* refused by config_load() (common/config-schema.c) before gc_config_new() runs, so a
         * server never starts with a gc section every GC would then refuse */
        char err[512];
        Config *cfg = NULL;
        ASSERT_EQ(config_load_string("{\"gc\": {\"retention\": [{\"repos\": \"**\", \"keep_forever\": [\"(\"]}]}}", &cfg, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "gc.retention[0].keep_forever[0]: invalid regular expression") != NULL);
        ASSERT_EQ(config_load_string("{\"gc\": {\"schedule\": \"sometimes\"}}", &cfg, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "gc.schedule: ") != NULL);
        ASSERT_EQ(config_load_string("{\"gc\": {\"grcae\": \"1h\"}}", &cfg, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "gc.grcae: unknown key") != NULL);
        int64_t ns;
        const char *bad_nice[] = { "-1", "20", "\"10\"", "1.5" };
        for (size_t i = 0; i < ELEMENTSOF(bad_nice); i++) {
                char j[128];
                snprintf(j, sizeof j, "{\"gc\": {\"cpu_nice\": %s}}", bad_nice[i]);
                ASSERT_EQ(config_load_string(j, &cfg, err, sizeof err), -EINVAL);
                ASSERT_TRUE(strstr(err, "gc.cpu_nice") != NULL);
        }
        const char *bad_idle[] = { "1", "\"yes\"", "null" };
        for (size_t i = 0; i < ELEMENTSOF(bad_idle); i++) {
                char j[128];
                snprintf(j, sizeof j, "{\"gc\": {\"sched_idle\": %s}}", bad_idle[i]);
                ASSERT_EQ(config_load_string(j, &cfg, err, sizeof err), -EINVAL);
                ASSERT_TRUE(strstr(err, "gc.sched_idle") != NULL);
        }
        ASSERT_TRUE(cfg == NULL);
        ASSERT_OK(gc_parse_schedule("weekly", &ns));
        ASSERT_EQ(ns, 7 * DAY);
        ASSERT_OK(gc_parse_schedule("6h", &ns));
        ASSERT_EQ(ns, 6 * HOUR);
        ASSERT_OK(gc_parse_schedule("", &ns));
        ASSERT_EQ(ns, 0);
}

TEST(test_interrupted_sweep_orphan) {
        /* a crash between the record removal and the file removal of a sweep leaves an orphan
         * file: fsck must not call it a problem while the GC's intent is recorded, the next GC
         * collects it and clears the intent */
        setup(NULL);
        char d[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        blob("apps/o", "a blob the crashed sweep removed the record of", d);
        char *path = store_blob_location(store, d);
        ASSERT_OK(store_kv_delete(store, INDEX_BLOB, d, strlen(d)));
        FsckReport fr = {};
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 1); /* without the intent: a problem */
        fsck_report_done(&fr);
        char *intent = strdup_printf("{\"mark_start\":%lld}", (long long) clock_now_ns() + 1000000000LL * 3600 * 24 * 365 * 10);
        ASSERT_OK(store_gc_sweep_intent_put(store, intent));
        free(intent);
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 0);
        fsck_report_done(&fr);
        json_t *rep = run_gc(T0 + 2 * HOUR, false, NULL);
        ASSERT_EQ(total(rep, "orphans_deleted"), 1);
        ASSERT_TRUE(access(path, F_OK) < 0);
        ASSERT_FALSE(has_sweep_intent());
        json_decref(rep);
        free(path);
        teardown();
}

/* The blob sweep deletes records, syncs once, then removes files: a push of the same digest in
 * between writes a new record (and its own file) under the digest lock, and the sweep must then
 * keep the file, or a stored blob record would point at nothing. */
static const char *repush_content;
static char repushed[DIGEST_MAX_LEN];

static void repush_between_passes(Gc *g, void *userdata) {
        Store *s = gc_store(g);
        ASSERT_TRUE(store_blob_info(s, repushed, NULL) == -ENOENT); /* pass 1 deleted it */
        char d[DIGEST_MAX_LEN];
        StoreError e = {};
        ASSERT_OK(store_blob_put(s, "apps/p", repush_content, strlen(repush_content), NULL, d, &e));
        ASSERT_STREQ(d, repushed);
}

/* Two loose blobs, a (raced: kept) and b (swept), the hook set around the run: one blob deleted,
 * one kept as raced, both their records and files as such, fsck clean. */
static void run_gc_one_blob_raced(const char *a, const char *b, GcHook *hook, GcHook fn) {
        char *pa = store_blob_location(store, a), *pb = store_blob_location(store, b);
        *hook = fn;
        json_t *rep = run_gc(T0 + 2 * HOUR, false, NULL);
        *hook = NULL;
        ASSERT_EQ(total(rep, "blobs_deleted"), 1);
        ASSERT_EQ(total(rep, "skipped_raced"), 1);
        json_decref(rep);
        ASSERT_TRUE(has_blob(a));
        ASSERT_TRUE(access(pa, F_OK) == 0);
        ASSERT_TRUE(!has_blob(b));
        ASSERT_TRUE(access(pb, F_OK) < 0);
        FsckReport fr = {};
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 0);
        ASSERT_EQ(fr.records_without_file, 0);
        fsck_report_done(&fr);
        free(pa);
        free(pb);
}

TEST(test_push_between_sweep_passes) {
        setup(NULL);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        repush_content = "a layer pushed again while the sweep removed it";
        blob("apps/p", repush_content, a);
        blob("apps/p", "a layer nobody pushes again", b);
        snprintf(repushed, sizeof repushed, "%s", a);
        run_gc_one_blob_raced(a, b, &between_sweep_passes, repush_between_passes);
        teardown();
}

/* A run cancelled (server shutdown) after the record pass, before the file pass: the records are
 * gone, the files are not. The sweep intent must stay, so that fsck counts the files as the run's
 * leftovers (as after a kill -9 there); the next run collects them and removes the intent. */
static void cancel_between_passes(Gc *g, void *userdata) {
        gc_cancel(g);
}

TEST(test_cancel_between_sweep_passes) {
        setup(NULL);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        blob("apps/c", "a layer whose run is cancelled", a);
        blob("apps/c", "another layer whose run is cancelled", b);
        char *pa = store_blob_location(store, a), *pb = store_blob_location(store, b);
        clock_set_fake(T0 + 2 * HOUR);
        GcOptions o = { .trigger = "test", .test_between_sweep_passes = cancel_between_passes };
        json_t *rep = NULL;
        ASSERT_TRUE(gc_run(gc, &o, &rep) == -ECANCELED);
        ASSERT_TRUE(!has_blob(a) && !has_blob(b));
        ASSERT_TRUE(access(pa, F_OK) == 0 && access(pb, F_OK) == 0);
        ASSERT_TRUE(has_sweep_intent());
        FsckReport fr = {};
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 0);
        ASSERT_EQ(fr.records_without_file, 0);
        fsck_report_done(&fr);
        rep = run_gc(T0 + 3 * HOUR, false, NULL);
        ASSERT_EQ(total(rep, "orphans_deleted"), 2);
        json_decref(rep);
        ASSERT_TRUE(access(pa, F_OK) < 0 && access(pb, F_OK) < 0);
        ASSERT_FALSE(has_sweep_intent());
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 0);
        fsck_report_done(&fr);
        free(pa);
        free(pb);
        teardown();
}

/* A manifest PUT between the mark and the manifest sweep links the manifest again: the sweep,
 * which skips the index reads where no PUT moved the manifest's stripe generation since the
 * mark's snapshot, must see this one and keep it (and its blobs), and remove the other. */
static char repushed_manifest[DIGEST_MAX_LEN];

static void repush_manifest_before_sweep(Gc *g, void *userdata) {
        Store *s = gc_store(g);
        ASSERT_FALSE(has_link("apps/q", repushed_manifest)); /* apply removed its link */
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get_by_digest(s, repushed_manifest, &m));
        char *body = strndup((const char *) m->data, m->size), out[DIGEST_MAX_LEN];
        put_manifest("apps/q", repushed_manifest, body, m->media_type, out);
        ASSERT_STREQ(out, repushed_manifest);
        free(body);
        stored_manifest_free(m);
}

TEST(test_manifest_push_before_manifest_sweep) {
        setup(NULL);
        char again[DIGEST_MAX_LEN], gone[DIGEST_MAX_LEN];
        image("apps/q", NULL, T0, NULL, again);
        image("apps/q", NULL, T0, NULL, gone);
        snprintf(repushed_manifest, sizeof repushed_manifest, "%s", again);
        before_manifest_sweep = repush_manifest_before_sweep;
        json_t *rep = run_gc(T0 + 2 * DAY, false, NULL);
        before_manifest_sweep = NULL;
        ASSERT_EQ(total(rep, "manifests_deleted"), 1);
        ASSERT_EQ(total(rep, "skipped_raced"), 1);
        ASSERT_EQ(total(rep, "blobs_deleted"), 2); /* gone's config and layer */
        json_decref(rep);
        ASSERT_TRUE(has_manifest(again));
        ASSERT_TRUE(has_link("apps/q", again));
        ASSERT_FALSE(has_manifest(gone));
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(store, "apps/q", again, &m));
        Manifest *pm = NULL;
        char perr[256];
        ASSERT_OK(manifest_parse((const char *) m->data, m->size, m->media_type, &pm, perr, sizeof perr));
        ASSERT_TRUE(has_blob(pm->config.digest));
        ASSERT_TRUE(has_blob(pm->layers[0].digest));
        manifest_free(pm);
        stored_manifest_free(m);
        FsckReport fr = {};
        ASSERT_OK(store_fsck(store, false, &fr));
        ASSERT_EQ(fr.files_without_record, 0);
        ASSERT_EQ(fr.records_without_file, 0);
        fsck_report_done(&fr);
        teardown();
}

/* A mount between the mark and the blob sweep touches a candidate's record and links it into
 * another repository. The sweep's first pass reads no record whose stripe generation has not
 * moved since the mark's snapshot: the mount's unlock must move it, and the blob stays. */
static char mounted[DIGEST_MAX_LEN];

static void mount_before_sweep(Gc *g, void *userdata) {
        ASSERT_OK(store_blob_mount(gc_store(g), "apps/other", "apps/m", mounted, NULL));
}

TEST(test_mount_before_blob_sweep) {
        setup(NULL);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        blob("apps/m", "a layer mounted into another repository during the run", a);
        blob("apps/m", "a layer nobody mounts", b);
        snprintf(mounted, sizeof mounted, "%s", a);
        run_gc_one_blob_raced(a, b, &before_manifest_sweep, mount_before_sweep);
        BlobInfo bi;
        ASSERT_OK(store_repo_blob_info(store, "apps/other", a, &bi));
        teardown();
}

/* A run reads every record it deletes once: those reads must not fill the index block cache
 * (at 1M blobs they added its 64 MiB to the server's RSS, and evicted what pulls were using). */
TEST(test_run_leaves_block_cache) {
        setup(NULL);
        char d[DIGEST_MAX_LEN];
        for (int i = 0; i < 1500; i++)
                image(i % 2 ? "apps/a" : "apps/b", NULL, T0, NULL, d);
        /* reopen: the records move from the WAL to SST files, whose blocks the cache holds */
        gc = gc_free(gc);
        store_free(store);
        open_store();
        open_gc();
        uint64_t before, after, mem;
        ASSERT_OK(store_index_memory(store, &before, &mem));
        json_t *rep = run_gc(T0 + 2 * DAY, false, NULL);
        ASSERT_EQ(total(rep, "manifests_deleted"), 1500);
        ASSERT_EQ(total(rep, "blobs_deleted"), 3000);
        json_decref(rep);
        ASSERT_OK(store_index_memory(store, &after, &mem));
        if (after >= before + (64U << 10))
                fprintf(stderr, "block cache %llu -> %llu bytes\n", (unsigned long long) before, (unsigned long long) after);
        ASSERT_TRUE(after < before + (64U << 10));
        teardown();
}

int main(void) {
        log_set_max_level(LOG_LEVEL_WARNING);
        RUN(test_config_errors);
        RUN(test_keep_last_and_idle);
        RUN(test_idle_with_pulls);
        RUN(test_release_and_moving_tags_forever);
        RUN(test_untagged_grace);
        RUN(test_manifest_push_before_manifest_sweep);
        RUN(test_multiarch_children_kept);
        RUN(test_referrers_follow_subject);
        RUN(test_channel_windows);
        RUN(test_holds);
        RUN(test_dry_run_bytes_match_disk);
        RUN(test_grace_and_reports_kept);
        RUN(test_cpu_nice);
        RUN(test_sched_idle);
        RUN(test_repo_scope);
        RUN(test_interrupted_sweep_orphan);
        RUN(test_run_leaves_block_cache);
        RUN(test_push_between_sweep_passes);
        RUN(test_mount_before_blob_sweep);
        RUN(test_cancel_between_sweep_passes);
        return 0;
}
