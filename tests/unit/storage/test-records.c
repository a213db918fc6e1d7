/* SPDX-License-Identifier: MIT */
/* The typed iteration verbs decode what store.c wrote: links, tags, tag history, blobs, manifests. */
#include "storage-test-helpers.h"

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

int main(void) {
        RUN(test_foreach);
        return 0;
}
