/* SPDX-License-Identifier: MIT */
/* The typed iteration verbs decode what store.c wrote: links, tags, tag history, blobs, manifests. */
#include "storage-test-helpers.h"
#include "storage/holds.h"
#include "storage/layer-fs.h"
#include "storage/records.h"

typedef struct Seen {
        size_t n;
        char last[512];
} Seen;

static int repo_manifest_cb(void *u, const char *repo, const char *digest, const RepoManifestInfo *info) {
        Seen *s = u;
        s->n++;
        ASSERT_TRUE(info->pushed > 0 && startswith(digest, "sha256:"));
        snprintf(s->last, sizeof s->last, "%s@%s", repo, digest);
        return 0;
}

static int repo_blob_cb(void *u, const char *repo, const char *digest, int64_t linked) {
        ((Seen *) u)->n++;
        ASSERT_TRUE(linked > 0);
        return 0;
}

static int tag_cb(void *u, const char *repo, const char *tag, const TagInfo *info) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s:%s=%s", repo, tag, info->digest);
        return 0;
}

static int history_cb(void *u, const TagHistoryEntry *e) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s:%s %s %s by %s", e->repo, e->tag, strempty(e->action), strempty(e->digest),
                 strempty(e->actor));
        return 0;
}

static int blob_cb(void *u, const char *digest, const BlobInfo *info) {
        ((Seen *) u)->n++;
        ASSERT_TRUE(info->size > 0);
        return 0;
}

static int manifest_cb(void *u, const char *digest, const char *meta, size_t ml, const char *raw, size_t rl) {
        ((Seen *) u)->n++;
        ASSERT_TRUE(ml > 2 && meta[0] == '{' && rl > 2 && raw[0] == '{');
        return 0;
}

static int stop_cb(void *u, const char *repo, const char *tag, const TagInfo *info) {
        ((Seen *) u)->n++;
        return 1;
}

TEST(test_foreach) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN], d3[DIGEST_MAX_LEN];
        StoreError e = {};
        _cleanup_free_ char *a = test_pushed_image(s, "apps/a", "one"), *b = test_pushed_image(s, "apps/b", "two");
        ASSERT_OK(test_put_manifest(s, "apps/a", "1.0.0", a, d1, &e));
        ASSERT_OK(test_put_manifest(s, "apps/a", "dev", a, d1, &e));
        ASSERT_OK(test_put_manifest(s, "apps/b", "dev", b, d2, &e));
        _cleanup_free_ char *c = test_pushed_image(s, "apps/a", "three");
        ASSERT_OK(test_put_manifest(s, "apps/a", "dev", c, d3, &e)); /* moves dev */

        Seen all = {}, one = {};
        ASSERT_OK(store_repo_manifests_foreach(s, NULL, NULL, repo_manifest_cb, &all));
        ASSERT_EQ(all.n, 3);
        ASSERT_OK(store_repo_manifests_foreach(s, NULL, "apps/b", repo_manifest_cb, &one));
        ASSERT_EQ(one.n, 1);
        _cleanup_free_ char *want = strdup_printf("apps/b@%s", d2);
        ASSERT_STREQ(one.last, want);
        ASSERT_EQ(store_repo_manifest_exists(s, NULL, "apps/b", d2), 1);
        ASSERT_EQ(store_repo_manifest_exists(s, NULL, "apps/b", d1), 0);
        /* "apps/a" must not see "apps/ab" and the like: the prefix ends at the separator */
        Seen links = {};
        ASSERT_OK(store_repo_blobs_foreach(s, NULL, "apps/a", repo_blob_cb, &links));
        ASSERT_EQ(links.n, 4);

        Seen tags = {};
        ASSERT_OK(store_tags_foreach(s, NULL, "apps/a", tag_cb, &tags));
        ASSERT_EQ(tags.n, 2);
        _cleanup_free_ char *wt = strdup_printf("apps/a:dev=%s", d3);
        ASSERT_STREQ(tags.last, wt);
        Seen stop = {};
        ASSERT_OK(store_tags_foreach(s, NULL, NULL, stop_cb, &stop));
        ASSERT_EQ(stop.n, 1);

        Seen hist = {};
        ASSERT_OK(store_tag_history_foreach(s, NULL, "apps/a", "dev", history_cb, &hist));
        ASSERT_EQ(hist.n, 2);
        _cleanup_free_ char *wh = strdup_printf("apps/a:dev move %s by tester", d3);
        ASSERT_STREQ(hist.last, wh);
        Seen hr = {};
        ASSERT_OK(store_tag_history_foreach(s, NULL, "apps/a", NULL, history_cb, &hr));
        ASSERT_EQ(hr.n, 3);

        Seen blobs = {}, manifests = {};
        ASSERT_OK(store_blobs_foreach(s, NULL, NULL, blob_cb, &blobs));
        ASSERT_EQ(blobs.n, 6);
        ASSERT_OK(store_manifests_foreach(s, NULL, manifest_cb, &manifests));
        ASSERT_EQ(manifests.n, 3);
        _cleanup_free_ char *meta = NULL;
        ASSERT_OK(store_manifest_meta(s, NULL, d1, &meta, NULL));
        ASSERT_TRUE(strstr(meta, "\"children\"") != NULL);
        ASSERT_EQ(store_manifest_meta(s, NULL, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &meta, NULL), -ENOENT);
        store_free(s);
        rm_rf(dir);
}

typedef struct Names {
        char all[1024];
        size_t n, stop_after;
} Names;

static int name_cb(void *u, const char *repo) {
        Names *n = u;
        size_t l = strlen(n->all);
        snprintf(n->all + l, sizeof n->all - l, "%s%s", l ? " " : "", repo);
        return ++n->n == n->stop_after;
}

static int history_tag_cb(void *u, const char *repo, const char *tag) {
        return name_cb(u, tag);
}

static void names_of(Store *s, const char *prefix, const char *after, bool below, const char *want) {
        Names n = {};
        ASSERT_OK(store_repo_names_foreach(s, NULL, prefix, after, below, name_cb, &n));
        ASSERT_STREQ(n.all, want);
}

/* The verbs the FUSE view reads with: repository names, the tags that have a history, one link
 * record, a hold's record as stored, and the layer index records. */
TEST(test_view_verbs) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char d[DIGEST_MAX_LEN], first[DIGEST_MAX_LEN];
        StoreError e = {};
        static const char *const repos[] = { "a/b", "a/b/c", "a/b-x", "z" };
        for (size_t i = 0; i < ELEMENTSOF(repos); i++) {
                _cleanup_free_ char *m = test_pushed_image(s, repos[i], repos[i]);
                ASSERT_OK(test_put_manifest(s, repos[i], "v1", m, d, &e));
        }
        for (int i = 0; i < 40; i++) { /* more manifests than a scan steps through before seeking */
                char seed[16];
                snprintf(seed, sizeof seed, "many%d", i);
                _cleanup_free_ char *m = test_pushed_image(s, "many", seed);
                ASSERT_OK(test_put_manifest(s, "many", i % 2 ? "odd" : "even", m, i == 0 ? first : d, &e));
        }
        names_of(s, NULL, NULL, false, "a/b a/b-x a/b/c many z");
        names_of(s, "a/", NULL, false, "a/b a/b-x a/b/c");
        names_of(s, NULL, "a/b", false, "a/b-x a/b/c many z");
        names_of(s, NULL, "a/b", true, "many z");     /* and after "a/b-x", which sorts before "a/b/" */
        names_of(s, "a/", "a/b-x", false, "a/b/c");
        names_of(s, "nothing/", NULL, false, "");
        Names stop = { .stop_after = 2 };
        ASSERT_OK(store_repo_names_foreach(s, NULL, NULL, NULL, false, name_cb, &stop));
        ASSERT_STREQ(stop.all, "a/b a/b-x");

        Names tags = {};
        ASSERT_OK(store_history_tags_foreach(s, NULL, "many", history_tag_cb, &tags));
        ASSERT_STREQ(tags.all, "even odd"); /* each once, though each moved 20 times */
        Names one = { .stop_after = 1 };
        ASSERT_OK(store_history_tags_foreach(s, NULL, "many", history_tag_cb, &one));
        ASSERT_STREQ(one.all, "even");
        Names none = {};
        ASSERT_OK(store_history_tags_foreach(s, NULL, "man", history_tag_cb, &none));
        ASSERT_STREQ(none.all, "");

        RepoManifestInfo info = {};
        ASSERT_OK(store_repo_manifest_info(s, NULL, "many", first, &info));
        ASSERT_TRUE(info.pushed > 0);
        ASSERT_EQ(store_repo_manifest_info(s, NULL, "z", first, &info), -ENOENT);

        ASSERT_OK(store_hold_add(s, first, "INC-7", "why", 0, "tester", &e));
        _cleanup_free_ char *json = NULL;
        size_t jl = 0;
        ASSERT_OK(store_hold_json(s, first, "INC-7", &json, &jl));
        ASSERT_EQ(jl, strlen(json));
        ASSERT_TRUE(strstr(json, "\"case_id\":\"INC-7\"") && strstr(json, "\"reason\":\"why\""));
        ASSERT_EQ(store_hold_json(s, first, "INC-8", &json, &jl), -ENOENT);

        /* layer index records: binary sub-keys and values, per layer digest */
        const LayerIndexRecord recs[] = { { "v1\0kind", 7, "gzip", 4 }, { "v1\0cp\0\0\0\0\1", 10, "a\0b", 3 } };
        ASSERT_OK(store_layer_index_put(s, first, recs, ELEMENTSOF(recs)));
        for (size_t i = 0; i < ELEMENTSOF(recs); i++) {
                _cleanup_free_ char *v = NULL;
                size_t vl = 0;
                ASSERT_OK(store_layer_index_get(s, first, recs[i].subkey, recs[i].subkey_len, &v, &vl));
                ASSERT_EQ(vl, recs[i].value_len);
                ASSERT_TRUE(memcmp(v, recs[i].value, vl) == 0);
        }
        char *v = NULL;
        size_t vl;
        ASSERT_EQ(store_layer_index_get(s, first, "v1\0kinds", 8, &v, &vl), -ENOENT);
        ASSERT_EQ(store_layer_index_get(s, d, "v1\0kind", 7, &v, &vl), -ENOENT);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_foreach);
        RUN(test_view_verbs);
        return 0;
}
