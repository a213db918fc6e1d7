/* SPDX-License-Identifier: MIT */
#pragma once
/* Helpers for the storage unit tests: temporary store directories and valid OCI manifests. */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/index-internal.h" /* the storage tests look at records as stored */
#include "storage/storage.h"
#include "tests/unit/tests.h"

static inline int rm_rf_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        chmod(p, 0755);
        remove(p);
        return 0;
}

static inline void rm_rf(const char *path) {
        nftw(path, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *test_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *t = strdup_printf("%s/plura-storage-test-XXXXXX", base ? base : "/tmp");
        ASSERT_TRUE(t);
        ASSERT_TRUE(mkdtemp(t));
        return t;
}

static inline Store *test_store_open(const char *root, bool zstd) {
        StoreOptions o;
        store_options_init(&o);
        o.root = root;
        o.zstd_at_rest = zstd;
        Store *s = NULL;
        ASSERT_OK(store_open(&o, &s));
        return s;
}

/* Stores data as a blob in repo and returns its digest (static buffer per call site). */
static inline void test_blob(Store *s, const char *repo, const char *data, char digest[DIGEST_MAX_LEN]) {
        StoreError e = {};
        ASSERT_OK(store_blob_put(s, repo, data, strlen(data), NULL, digest, &e));
}

/* An OCI image manifest with config and layers (digests and sizes given), optional subject and
 * artifactType; returns malloc()ed JSON. */
static inline char *test_image_manifest(const char *config, size_t config_size, const char *const *layers,
                                        const size_t *layer_sizes, size_t n_layers, const char *subject,
                                        const char *artifact_type, const char *annotation) {
        json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_MANIFEST,
                              "config", "mediaType", MEDIA_TYPE_OCI_CONFIG, "digest", config, "size",
                              (json_int_t) config_size);
        json_t *ls = json_array();
        for (size_t i = 0; i < n_layers; i++)
                json_array_append_new(ls, json_pack("{s:s, s:s, s:I}", "mediaType",
                                                    "application/vnd.oci.image.layer.v1.tar+gzip", "digest", layers[i],
                                                    "size", (json_int_t) layer_sizes[i]));
        json_object_set_new(m, "layers", ls);
        if (subject)
                json_object_set_new(m, "subject", json_pack("{s:s, s:s, s:i}", "mediaType", MEDIA_TYPE_OCI_MANIFEST,
                                                            "digest", subject, "size", 100));
        if (artifact_type)
                json_object_set_new(m, "artifactType", json_string(artifact_type));
        if (annotation)
                json_object_set_new(m, "annotations", json_pack("{s:s}", "org.example.note", annotation));
        char *s = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        ASSERT_TRUE(s);
        return s;
}

/* An image manifest whose config and single layer are pushed to repo first. */
static inline char *test_pushed_image(Store *s, const char *repo, const char *seed) {
        char cfg[DIGEST_MAX_LEN], layer[DIGEST_MAX_LEN];
        _cleanup_free_ char *cdata = strdup_printf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"%s\"}", seed);
        _cleanup_free_ char *ldata = strdup_printf("layer bytes of %s", seed);
        test_blob(s, repo, cdata, cfg);
        test_blob(s, repo, ldata, layer);
        const char *layers[] = { layer };
        size_t sizes[] = { strlen(ldata) };
        return test_image_manifest(cfg, strlen(cdata), layers, sizes, 1, NULL, NULL, NULL);
}

static inline int test_put_manifest(Store *s, const char *repo, const char *ref, const char *body,
                                    char digest[DIGEST_MAX_LEN], StoreError *e) {
        ManifestPut p = {
                .repo = repo,
                .data = body,
                .len = strlen(body),
                .content_type = MEDIA_TYPE_OCI_MANIFEST,
                .reference = ref,
                .actor = "tester",
        };
        return store_manifest_put(s, &p, digest, e);
}
