/* SPDX-License-Identifier: MIT */
/* Manifests, tags, tag history, referrers, listing, the tag policy hook and pull batching. */
#include "storage-test-helpers.h"
#include "storage/records.h"

typedef struct History {
        size_t n;
        char actions[16][16];
} History;

static int history_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        History *h = userdata;
        json_t *j = json_loadb(val, vlen, 0, NULL);
        ASSERT_TRUE(j);
        ASSERT_TRUE(h->n < 16);
        snprintf(h->actions[h->n++], 16, "%s", json_string_value(json_object_get(j, "action")));
        ASSERT_TRUE(json_string_value(json_object_get(j, "digest")));
        json_decref(j);
        return 0;
}

static History history(Store *s, const char *repo, const char *tag) {
        History h = {};
        size_t pl;
        _cleanup_free_ char *p = index_key_join(&pl, repo, tag, "", NULL);
        ASSERT_OK(store_kv_iterate(s, NULL, INDEX_TAG_HISTORY, p, pl, NULL, 0, history_cb, &h));
        return h;
}

TEST(test_manifest_put_get_delete) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        _cleanup_free_ char *body = test_pushed_image(s, "lib/app", "one");
        char digest[DIGEST_MAX_LEN], expect[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, body, strlen(body), expect));
        StoreError e = {};

        const char *extra[] = { "stable", "v1.0.0" };
        ManifestPut p = {
                .repo = "lib/app", .data = body, .len = strlen(body), .content_type = MEDIA_TYPE_OCI_MANIFEST,
                .reference = "latest", .tags = extra, .n_tags = 2, .actor = "ci",
        };
        ASSERT_OK(store_manifest_put(s, &p, digest, &e));
        ASSERT_STREQ(digest, expect);

        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(s, "lib/app", "latest", &m));
        ASSERT_STREQ(m->digest, digest);
        ASSERT_EQ(m->size, strlen(body));
        ASSERT_TRUE(memcmp(m->data, body, m->size) == 0);
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_TRUE(m->pushed > 0);
        ASSERT_TRUE(m->subject == NULL);
        stored_manifest_free(m);
        ASSERT_OK(store_manifest_get(s, "lib/app", "v1.0.0", &m));
        stored_manifest_free(m);
        ASSERT_OK(store_manifest_get(s, "lib/app", digest, &m));
        stored_manifest_free(m);
        ASSERT_EQ(store_manifest_get(s, "other", digest, &m), -ENOENT);
        ASSERT_EQ(store_manifest_get(s, "lib/app", "nope", &m), -ENOENT);
        ASSERT_OK(store_manifest_get_by_digest(s, digest, &m));
        ASSERT_EQ(m->pushed, 0);
        stored_manifest_free(m);
        Manifest *parsed = NULL;
        ASSERT_OK(store_manifest_parsed(s, NULL, digest, &parsed));
        ASSERT_EQ(parsed->n_layers, 1);
        manifest_free(parsed);

        TagInfo t;
        ASSERT_OK(store_tag_get(s, "lib/app", "stable", &t));
        ASSERT_STREQ(t.digest, digest);
        ASSERT_EQ(t.last_pulled, 0);
        History h = history(s, "lib/app", "latest");
        ASSERT_EQ(h.n, 1);
        ASSERT_STREQ(h.actions[0], "create");

        /* the same digest to the same tag again: success, no new history */
        ASSERT_OK(test_put_manifest(s, "lib/app", "latest", body, digest, &e));
        ASSERT_EQ(history(s, "lib/app", "latest").n, 1);

        /* by digest: must match the bytes */
        ASSERT_OK(test_put_manifest(s, "lib/app", expect, body, digest, &e));
        e = (StoreError) {};
        ASSERT_EQ(test_put_manifest(s, "lib/app", "sha256:1111111111111111111111111111111111111111111111111111111111111111", body,
                                    digest, &e),
                  -EBADMSG);
        ASSERT_EQ(e.code, OCI_DIGEST_INVALID);

        /* move latest to another image */
        _cleanup_free_ char *body2 = test_pushed_image(s, "lib/app", "two");
        char digest2[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "lib/app", "latest", body2, digest2, &e));
        h = history(s, "lib/app", "latest");
        ASSERT_EQ(h.n, 2);
        ASSERT_STREQ(h.actions[1], "move");
        ASSERT_OK(store_tag_get(s, "lib/app", "latest", &t));
        ASSERT_STREQ(t.digest, digest2);

        /* delete the first manifest: its tags go (with history), latest (moved) stays */
        ASSERT_OK(store_manifest_delete(s, "lib/app", digest, "ops", 0, &e));
        ASSERT_EQ(store_manifest_get(s, "lib/app", digest, &m), -ENOENT);
        ASSERT_EQ(store_tag_get(s, "lib/app", "stable", &t), -ENOENT);
        ASSERT_EQ(store_tag_get(s, "lib/app", "v1.0.0", &t), -ENOENT);
        ASSERT_OK(store_tag_get(s, "lib/app", "latest", &t));
        h = history(s, "lib/app", "stable");
        ASSERT_EQ(h.n, 2);
        ASSERT_STREQ(h.actions[1], "delete");
        e = (StoreError) {};
        ASSERT_EQ(store_manifest_delete(s, "lib/app", digest, "ops", 0, &e), -ENOENT);
        ASSERT_EQ(e.code, OCI_MANIFEST_UNKNOWN);
        /* the global record stays for GC */
        ASSERT_OK(store_manifest_get_by_digest(s, digest, &m));
        stored_manifest_free(m);

        /* tag delete */
        ASSERT_OK(store_tag_delete(s, "lib/app", "latest", "ops", 0, &e));
        ASSERT_EQ(store_tag_get(s, "lib/app", "latest", &t), -ENOENT);
        ASSERT_EQ(store_tag_delete(s, "lib/app", "latest", "ops", 0, &e), -ENOENT);
        ASSERT_OK(store_manifest_get(s, "lib/app", digest2, &m)); /* the manifest stays */
        stored_manifest_free(m);

        store_free(s);
        rm_rf(dir);
}

TEST(test_manifest_errors) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        char digest[DIGEST_MAX_LEN], cfg[DIGEST_MAX_LEN], layer[DIGEST_MAX_LEN];
        test_blob(s, "a", "{\"os\":\"linux\"}", cfg);
        test_blob(s, "b", "layer only in b", layer);
        const char *layers[] = { layer };
        size_t sizes[] = { 15 };
        _cleanup_free_ char *body = test_image_manifest(cfg, 14, layers, sizes, 1, NULL, NULL, NULL);

        /* the layer exists, but not in repo a */
        ASSERT_EQ(test_put_manifest(s, "a", "v1", body, digest, &e), -ENOENT);
        ASSERT_EQ(e.code, OCI_MANIFEST_BLOB_UNKNOWN);
        ASSERT_TRUE(strstr(e.message, layer) != NULL);
        ASSERT_EQ(store_tag_get(s, "a", "v1", &(TagInfo) {}), -ENOENT);
        ASSERT_OK(store_blob_mount(s, "a", "b", layer, NULL));
        ASSERT_OK(test_put_manifest(s, "a", "v1", body, digest, &e));

        e = (StoreError) {};
        ASSERT_EQ(test_put_manifest(s, "a", "v1", "{not json", digest, &e), -EINVAL);
        ASSERT_EQ(e.code, OCI_MANIFEST_INVALID);
        e = (StoreError) {};
        ASSERT_TRUE(test_put_manifest(s, "a", "bad tag!", body, digest, &e) < 0);
        ASSERT_EQ(e.code, OCI_TAG_INVALID);
        e = (StoreError) {};
        ASSERT_TRUE(test_put_manifest(s, "Bad/Name", "v1", body, digest, &e) < 0);
        ASSERT_EQ(e.code, OCI_NAME_INVALID);

        size_t big = MANIFEST_SIZE_MAX + 1;
        char *huge = malloc(big + 1);
        memset(huge, ' ', big);
        huge[big] = 0;
        e = (StoreError) {};
        ASSERT_TRUE(test_put_manifest(s, "a", "v2", huge, digest, &e) < 0);
        ASSERT_EQ(e.code, OCI_MANIFEST_INVALID);
        free(huge);

        /* an index needs its children as manifests in the repo */
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
                 "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
                 MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, digest, strlen(body));
        ManifestPut p = { .repo = "b", .data = buf, .len = strlen(buf), .content_type = MEDIA_TYPE_OCI_INDEX, .reference = "multi" };
        e = (StoreError) {};
        ASSERT_EQ(store_manifest_put(s, &p, NULL, &e), -ENOENT);
        ASSERT_EQ(e.code, OCI_MANIFEST_BLOB_UNKNOWN);
        p.repo = "a";
        char idx[DIGEST_MAX_LEN];
        ASSERT_OK(store_manifest_put(s, &p, idx, &e));
        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(s, "a", "multi", &m));
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_OCI_INDEX);
        stored_manifest_free(m);
        store_free(s);
        rm_rf(dir);
}

TEST(test_referrers) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        _cleanup_free_ char *img = test_pushed_image(s, "app", "subject");
        char subject[DIGEST_MAX_LEN], empty[DIGEST_MAX_LEN], sig[DIGEST_MAX_LEN], sbom[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, img, strlen(img), subject));

        /* referrers may be pushed before their subject (the subject need not exist) */
        test_blob(s, "app", "{}", empty);
        const char *no_layers[] = { empty };
        size_t two[] = { 2 };
        _cleanup_free_ char *sig_body = test_image_manifest(empty, 2, no_layers, two, 1, subject,
                                                            "application/vnd.dev.cosign.artifact.sig.v1+json", "signed");
        _cleanup_free_ char *sbom_body = test_image_manifest(empty, 2, no_layers, two, 1, subject, "application/spdx+json", NULL);
        ASSERT_OK(test_put_manifest(s, "app", "sig", sig_body, sig, &e));
        ASSERT_OK(test_put_manifest(s, "app", "sbom", sbom_body, sbom, &e));
        char img_digest[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "app", "v1", img, img_digest, &e));

        StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get(s, "app", sig, &m));
        ASSERT_STREQ(m->subject, subject);
        ASSERT_STREQ(m->artifact_type, "application/vnd.dev.cosign.artifact.sig.v1+json");
        stored_manifest_free(m);

        json_t *all = NULL, *some = NULL, *none = NULL, *other = NULL;
        ASSERT_OK(store_referrers(s, "app", subject, NULL, &all));
        ASSERT_EQ(json_array_size(all), 2);
        json_t *d;
        size_t i;
        bool seen_sig = false;
        json_array_foreach(all, i, d) {
                ASSERT_STREQ(json_string_value(json_object_get(d, "mediaType")), MEDIA_TYPE_OCI_MANIFEST);
                ASSERT_TRUE(json_integer_value(json_object_get(d, "size")) > 0);
                if (streq(json_string_value(json_object_get(d, "digest")), sig)) {
                        seen_sig = true;
                        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(d, "annotations"), "org.example.note")),
                                     "signed");
                }
        }
        ASSERT_TRUE(seen_sig);
        ASSERT_OK(store_referrers(s, "app", subject, "application/spdx+json", &some));
        ASSERT_EQ(json_array_size(some), 1);
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(some, 0), "digest")), sbom);
        ASSERT_OK(store_referrers(s, "app", "sha256:2222222222222222222222222222222222222222222222222222222222222222", NULL, &none));
        ASSERT_EQ(json_array_size(none), 0);
        ASSERT_OK(store_referrers(s, "elsewhere", subject, NULL, &other));
        ASSERT_EQ(json_array_size(other), 0);
        json_decref(all);
        json_decref(some);
        json_decref(none);
        json_decref(other);

        /* deleting the referrer removes its record */
        ASSERT_OK(store_manifest_delete(s, "app", sbom, NULL, 0, &e));
        ASSERT_OK(store_referrers(s, "app", subject, NULL, &all));
        ASSERT_EQ(json_array_size(all), 1);
        json_decref(all);
        store_free(s);
        rm_rf(dir);
}

TEST(test_listing) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        _cleanup_free_ char *body = test_pushed_image(s, "lib/app", "x");
        char digest[DIGEST_MAX_LEN];
        const char *names[] = { "v2", "a", "v10", "B", "latest", "v1" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ASSERT_OK(test_put_manifest(s, "lib/app", names[i], body, digest, &e));

        char **l = NULL;
        bool more = true;
        ASSERT_EQ(store_tags_list(s, "lib/app", NULL, 0, &l, &more), 6);
        ASSERT_FALSE(more);
        const char *sorted[] = { "B", "a", "latest", "v1", "v10", "v2" };
        for (size_t i = 0; i < 6; i++)
                ASSERT_STREQ(l[i], sorted[i]);
        ASSERT_TRUE(l[6] == NULL);
        strv_free(l);
        ASSERT_EQ(store_tags_list(s, "lib/app", NULL, 2, &l, &more), 2);
        ASSERT_TRUE(more);
        ASSERT_STREQ(l[1], "a");
        strv_free(l);
        ASSERT_EQ(store_tags_list(s, "lib/app", "a", 3, &l, &more), 3);
        ASSERT_TRUE(more);
        ASSERT_STREQ(l[0], "latest");
        ASSERT_STREQ(l[2], "v10");
        strv_free(l);
        ASSERT_EQ(store_tags_list(s, "lib/app", "v10", 3, &l, &more), 1);
        ASSERT_FALSE(more);
        ASSERT_STREQ(l[0], "v2");
        strv_free(l);
        ASSERT_EQ(store_tags_list(s, "lib/app", "v2", 3, &l, &more), 0);
        ASSERT_TRUE(l && !l[0]);
        strv_free(l);
        ASSERT_EQ(store_tags_list(s, "unknown", NULL, 0, &l, &more), -ENOENT);
        ASSERT_EQ(store_tags_list(s, "lib", NULL, 0, &l, &more), -ENOENT);

        /* catalog: from manifests and blob links, distinct, lexical */
        char d[DIGEST_MAX_LEN];
        test_blob(s, "lib", "blob only", d);
        test_blob(s, "lib-x", "blob only", d);
        test_blob(s, "zzz", "blob only", d);
        _cleanup_free_ char *b2 = test_pushed_image(s, "lib/app/sub", "y");
        ASSERT_OK(test_put_manifest(s, "lib/app/sub", "t", b2, digest, &e));
        ASSERT_EQ(store_catalog(s, NULL, 0, &l, &more), 5);
        const char *repos[] = { "lib", "lib-x", "lib/app", "lib/app/sub", "zzz" };
        for (size_t i = 0; i < 5; i++)
                ASSERT_STREQ(l[i], repos[i]);
        strv_free(l);
        ASSERT_EQ(store_catalog(s, NULL, 2, &l, &more), 2);
        ASSERT_TRUE(more);
        ASSERT_STREQ(l[1], "lib-x");
        strv_free(l);
        ASSERT_EQ(store_catalog(s, "lib-x", 2, &l, &more), 2);
        ASSERT_TRUE(more);
        ASSERT_STREQ(l[0], "lib/app");
        ASSERT_STREQ(l[1], "lib/app/sub");
        strv_free(l);
        ASSERT_EQ(store_catalog(s, "lib/app/sub", 2, &l, &more), 1);
        ASSERT_FALSE(more);
        ASSERT_STREQ(l[0], "zzz");
        strv_free(l);
        ASSERT_EQ(store_repo_exists(s, "lib"), 1);
        ASSERT_EQ(store_repo_exists(s, "li"), 0);
        store_free(s);
        rm_rf(dir);
}

typedef struct PolicyLog {
        int calls;
        char last_old[DIGEST_MAX_LEN];
        bool had_first;
        unsigned last_flags;
} PolicyLog;

/* Refuses to move or delete "v*" tags (immutable) and any tag named "latest", except in
 * maintenance writes. */
static int policy(void *userdata, const char *repo, const char *tag, const char *old_digest, const char *new_digest,
                  const char *first_digest_in_history, unsigned flags, StoreError *err) {
        PolicyLog *l = userdata;
        l->last_flags = flags;
        if (!tag || (flags & STORE_WRITE_MAINTENANCE))
                return 0; /* the manifest write itself (tagless), or maintenance: allowed here */
        l->calls++;
        snprintf(l->last_old, sizeof l->last_old, "%s", strempty(old_digest));
        l->had_first = first_digest_in_history != NULL;
        if (streq(tag, "latest"))
                return store_error_set(err, -EPERM, OCI_DENIED, "latest is forbidden here");
        if (tag[0] == 'v' && (old_digest || first_digest_in_history))
                return store_error_set(err, -EPERM, OCI_DENIED, "%s is immutable", tag);
        return 0;
}

TEST(test_tag_policy) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        PolicyLog log = {};
        store_set_tag_policy(s, policy, &log);
        StoreError e = {};
        _cleanup_free_ char *b1 = test_pushed_image(s, "r", "1");
        _cleanup_free_ char *b2 = test_pushed_image(s, "r", "2");
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "r", "v1", b1, d1, &e));
        ASSERT_EQ(log.calls, 1);
        ASSERT_FALSE(log.had_first);

        /* moving v1 is refused: nothing is written, not even the new manifest */
        ASSERT_EQ(test_put_manifest(s, "r", "v1", b2, d2, &e), -EPERM);
        ASSERT_EQ(e.code, OCI_DENIED);
        ASSERT_STREQ(log.last_old, d1);
        TagInfo t;
        ASSERT_OK(store_tag_get(s, "r", "v1", &t));
        ASSERT_STREQ(t.digest, d1);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, b2, strlen(b2), d2));
        StoredManifest *m = NULL;
        ASSERT_EQ(store_manifest_get(s, "r", d2, &m), -ENOENT);
        ASSERT_EQ(store_manifest_get_by_digest(s, d2, &m), -ENOENT);

        /* one refused tag among several refuses the whole write */
        const char *extra[] = { "dev", "latest" };
        ManifestPut p = { .repo = "r", .data = b2, .len = strlen(b2), .reference = "ok-tag", .tags = extra, .n_tags = 2 };
        e = (StoreError) {};
        ASSERT_EQ(store_manifest_put(s, &p, NULL, &e), -EPERM);
        ASSERT_STREQ(e.message, "latest is forbidden here");
        ASSERT_EQ(store_tag_get(s, "r", "ok-tag", &t), -ENOENT);
        ASSERT_EQ(store_tag_get(s, "r", "dev", &t), -ENOENT);

        /* deletes run the hook too */
        ASSERT_EQ(store_tag_delete(s, "r", "v1", NULL, 0, &e), -EPERM);
        ASSERT_OK(store_tag_get(s, "r", "v1", &t));
        ASSERT_EQ(store_manifest_delete(s, "r", d1, NULL, 0, &e), -EPERM);
        ASSERT_OK(store_manifest_get(s, "r", d1, &m));
        stored_manifest_free(m);

        ASSERT_EQ(log.last_flags, 0U);

        /* the hook sees the write's flags: this policy lets maintenance through */
        ASSERT_OK(store_tag_delete(s, "r", "v1", NULL, STORE_WRITE_MAINTENANCE, &e));
        ASSERT_EQ(log.last_flags, (unsigned) STORE_WRITE_MAINTENANCE);
        ASSERT_EQ(store_tag_get(s, "r", "v1", &t), -ENOENT);

        /* a tag name once used is remembered: re-creating v1 after it is gone is refused */
        ASSERT_EQ(test_put_manifest(s, "r", "v1", b2, d2, &e), -EPERM);
        ASSERT_TRUE(log.had_first);
        store_free(s);
        rm_rf(dir);
}

TEST(test_note_pull) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        _cleanup_free_ char *b = test_pushed_image(s, "r", "p");
        char d[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "r", "t", b, d, &e));

        int64_t t1 = clock_now_ns() + 1000 * (int64_t) NSEC_PER_SEC, t2 = t1 + 1000 * (int64_t) NSEC_PER_SEC;
        clock_set_fake(t1);
        for (int i = 0; i < 100; i++)
                store_note_pull(s, "r", "t", d);
        /* batched: nothing written yet */
        TagInfo t;
        ASSERT_OK(store_tag_get(s, "r", "t", &t));
        ASSERT_EQ(t.last_pulled, 0);
        ASSERT_EQ(store_flush_pulls(s), 1); /* 100 pulls, one entry */
        ASSERT_OK(store_tag_get(s, "r", "t", &t));
        ASSERT_EQ(t.last_pulled, t1);
        size_t kl, vl;
        _cleanup_free_ char *k = index_key_join(&kl, "r", d, NULL);
        _cleanup_free_ char *v = NULL;
        ASSERT_OK(store_kv_get(s, NULL, INDEX_REPO_MANIFEST, k, kl, &v, &vl));
        RepoManifestInfo rm;
        ASSERT_OK(repo_manifest_info_decode(v, vl, &rm));
        ASSERT_EQ(rm.last_pulled, t1);
        ASSERT_TRUE(rm.pushed > 0 && rm.pushed < rm.last_pulled);

        /* flushed on close too */
        clock_set_fake(t2);
        store_note_pull(s, "r", "t", d);
        store_free(s);
        clock_set_fake(0);
        s = test_store_open(dir, false);
        ASSERT_OK(store_tag_get(s, "r", "t", &t));
        ASSERT_EQ(t.last_pulled, t2);
        ASSERT_OK(store_check_ready(s));
        store_free(s);
        rm_rf(dir);
}

/* Lock stripes follow the digest's sort order, so the GC's groups of consecutive digests do
 * not share stripes with their neighbours (gc/gc.c groups_by_stripe). */
TEST(test_digest_stripes) {
        char d[DIGEST_MAX_LEN];
        size_t prev = 0;
        for (unsigned i = 0; i < 4096; i += 3) {
                snprintf(d, sizeof d, "sha256:%03x%061d", i, 0);
                size_t st = store_digest_stripe(d);
                ASSERT_EQ(st, i);
                ASSERT_TRUE(st >= prev);
                prev = st;
        }
        ASSERT_EQ(store_digest_stripe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), 0xe3b);
        ASSERT_EQ(store_digest_stripe("sha512:00f"), 0x00f);
        /* anything else still maps to a valid stripe */
        ASSERT_TRUE(store_digest_stripe("") < 4096);
        ASSERT_TRUE(store_digest_stripe("sha256:") < 4096);
        ASSERT_TRUE(store_digest_stripe("sha256:XYZ") < 4096);
        ASSERT_TRUE(store_digest_stripe("no-colon-at-all") < 4096);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* store_blob_infos(): one read for a sorted run of digests, same answers as store_blob_info(),
 * from the memtable and (after a reopen) from SST files. */
TEST(test_blob_infos) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char d[64][DIGEST_MAX_LEN], absent[DIGEST_MAX_LEN];
        const char *v[65];
        for (int i = 0; i < 64; i++) {
                char body[96];
                snprintf(body, sizeof body, "blob number %d%.*s", i, i, "................................................................");
                StoreError e = {};
                ASSERT_OK(store_blob_put(s, "apps/b", body, strlen(body), NULL, d[i], &e));
                v[i] = d[i];
        }
        ASSERT_OK(digest_buffer(DIGEST_SHA256, "nobody pushed this", 18, absent));
        v[64] = absent;
        qsort(v, 65, sizeof *v, cmp_str);
        for (int round = 0; round < 2; round++) {
                BlobInfo bi[65];
                int st[65];
                ASSERT_OK(store_blob_infos(s, v, 65, bi, st));
                for (int i = 0; i < 65; i++) {
                        BlobInfo one;
                        int q = store_blob_info(s, v[i], &one);
                        ASSERT_EQ(st[i], q);
                        if (streq(v[i], absent))
                                ASSERT_EQ(st[i], -ENOENT);
                        else {
                                ASSERT_OK(st[i]);
                                ASSERT_EQ(bi[i].size, one.size);
                                ASSERT_EQ(bi[i].created, one.created);
                                ASSERT_EQ(bi[i].touched, one.touched);
                        }
                }
                store_free(s);
                s = test_store_open(dir, false); /* the second round reads SST files */
        }
        /* unsorted, repeated or invalid digests are refused, not answered wrongly */
        const char *unsorted[2] = { v[1], v[0] };
        BlobInfo bi[2];
        int st[2];
        ASSERT_EQ(store_blob_infos(s, unsorted, 2, bi, st), -EINVAL);
        const char *twice[2] = { v[0], v[0] };
        ASSERT_EQ(store_blob_infos(s, twice, 2, bi, st), -EINVAL);
        const char *bad[1] = { "sha256:nothex" };
        ASSERT_EQ(store_blob_infos(s, bad, 1, bi, st), -EINVAL);
        ASSERT_OK(store_blob_infos(s, v, 0, bi, st));
        store_free(s);
        rm_rf(dir);
}

/* A blob link that a manifest of its repository uses cannot be deleted: the image would break. */
TEST(test_blob_unlink_in_use) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        _cleanup_free_ char *body = test_pushed_image(s, "apps/search", "in-use");
        char digest[DIGEST_MAX_LEN];
        StoreError e = {};
        ASSERT_OK(test_put_manifest(s, "apps/search", "1.0.0", body, digest, &e));
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char err[256];
        ASSERT_OK(manifest_parse(body, strlen(body), MEDIA_TYPE_OCI_MANIFEST, &m, err, sizeof err));
        const char *layer = m->layers[0].digest, *config = m->config.digest;

        /* the layer and the config: refused, naming the manifest */
        e = (StoreError) {};
        ASSERT_EQ(store_blob_unlink(s, "apps/search", layer, "tester", &e), -EBUSY);
        ASSERT_EQ(e.code, OCI_DENIED);
        ASSERT_TRUE(strstr(e.message, digest) != NULL);
        e = (StoreError) {};
        ASSERT_EQ(store_blob_unlink(s, "apps/search", config, "tester", &e), -EBUSY);
        ASSERT_OK(store_repo_blob_info(s, "apps/search", layer, NULL));

        /* linked in another repository where no manifest uses it: that link goes */
        ASSERT_OK(store_blob_mount(s, "apps/other", "apps/search", layer, NULL));
        ASSERT_OK(store_blob_unlink(s, "apps/other", layer, "tester", NULL));
        ASSERT_EQ(store_repo_blob_info(s, "apps/other", layer, NULL), -ENOENT);

        /* once the manifest is deleted, the links can go */
        ASSERT_OK(store_manifest_delete(s, "apps/search", digest, "tester", 0, &e));
        ASSERT_OK(store_blob_unlink(s, "apps/search", layer, "tester", NULL));
        ASSERT_EQ(store_blob_unlink(s, "apps/search", layer, "tester", NULL), -ENOENT);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_manifest_put_get_delete);
        RUN(test_manifest_errors);
        RUN(test_referrers);
        RUN(test_listing);
        RUN(test_tag_policy);
        RUN(test_note_pull);
        RUN(test_digest_stripes);
        RUN(test_blob_infos);
        RUN(test_blob_unlink_in_use);
        return 0;
}
