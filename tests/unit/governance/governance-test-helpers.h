/* SPDX-License-Identifier: MIT */
#pragma once
/* Helpers for the governance unit tests: a real store in a temporary directory with a Governance
 * on it (no server), images with labels, SBOM referrers and cosign simple-signing signatures
 * (made with OpenSSL). */
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/config.h"
#include "governance/governance.h"
#include "tests/unit/storage/storage-test-helpers.h"

#define T0 (1735689600LL * (int64_t) NSEC_PER_SEC) /* 2025-01-01T00:00:00Z */
#define MINUTE (60LL * (int64_t) NSEC_PER_SEC)

typedef struct Fixture {
        char *dir;
        Store *store;
        Config *config;
        Governance *gov;
} Fixture;

/* config_json: the user's config (merged over the defaults), NULL for the defaults */
static inline void fixture_setup(Fixture *f, const char *config_json) {
        char err[512] = "";
        *f = (Fixture) { .dir = test_tmpdir() };
        f->store = test_store_open(f->dir, false);
        int r = config_load_string(config_json, &f->config, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "config: %s\n", err);
        ASSERT_OK(r);
        ASSERT_OK(governance_new(f->store, f->config, &f->gov));
}

/* governance again on the same store (what a restart sees) */
static inline void fixture_reopen_governance(Fixture *f) {
        f->gov = governance_free(f->gov);
        ASSERT_OK(governance_new(f->store, f->config, &f->gov));
}

static inline void fixture_teardown(Fixture *f) {
        governance_free(f->gov);
        store_free(f->store);
        config_free(f->config);
        rm_rf(f->dir);
        free(f->dir);
        clock_set_fake(0);
}

/* The four labels the labels gate wants by default. */
#define GOOD_LABELS                                                                                                  \
        "{\"org.opencontainers.image.version\":\"1.0.0\",\"org.opencontainers.image.revision\":\"ab3c9f1d\","       \
        "\"org.opencontainers.image.source\":\"https://git.example.com/search\","                                     \
        "\"org.opencontainers.image.created\":\"2024-12-26T09:00:00Z\"}"

/* Pushes an image (config with labels_json as its Labels, one layer) to repo, tagged tag (NULL:
 * by digest); returns its digest in digest. */
static inline void push_image(Fixture *f, const char *repo, const char *seed, const char *labels_json, const char *tag,
                              char digest[DIGEST_MAX_LEN]) {
        char cfg[DIGEST_MAX_LEN], layer[DIGEST_MAX_LEN];
        _cleanup_free_ char *cdata = strdup_printf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":%s},"
                                                   "\"seed\":\"%s\"}", labels_json ? labels_json : "{}", seed);
        _cleanup_free_ char *ldata = strdup_printf("layer bytes of %s", seed);
        test_blob(f->store, repo, cdata, cfg);
        test_blob(f->store, repo, ldata, layer);
        const char *layers[] = { layer };
        size_t sizes[] = { strlen(ldata) };
        _cleanup_free_ char *m = test_image_manifest(cfg, strlen(cdata), layers, sizes, 1, NULL, NULL, NULL);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, m, strlen(m), digest));
        StoreError e = {};
        int r = test_put_manifest(f->store, repo, tag ? tag : digest, m, digest, &e);
        if (r < 0)
                fprintf(stderr, "push %s: %s\n", repo, e.message);
        ASSERT_OK(r);
}

/* A manifest of one layer (media_type, data, annotations may be NULL) with an empty config,
 * optionally an artifact type and subject, pushed to repo as tag (NULL: by digest). */
static inline void push_artifact(Fixture *f, const char *repo, const char *artifact_type, const char *subject,
                                 const char *layer_type, const char *data, json_t *annotations, const char *tag,
                                 char digest[DIGEST_MAX_LEN]) {
        char cfg[DIGEST_MAX_LEN], layer[DIGEST_MAX_LEN];
        test_blob(f->store, repo, "{}", cfg);
        test_blob(f->store, repo, data, layer);
        json_t *l = json_pack("{s:s, s:s, s:I}", "mediaType", layer_type, "digest", layer, "size", (json_int_t) strlen(data));
        if (annotations)
                json_object_set(l, "annotations", annotations);
        json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[o]}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_MANIFEST,
                              "config", "mediaType", MEDIA_TYPE_OCI_EMPTY, "digest", cfg, "size", 2, "layers", l);
        if (artifact_type)
                json_object_set_new(m, "artifactType", json_string(artifact_type));
        if (subject)
                json_object_set_new(m, "subject", json_pack("{s:s, s:s, s:i}", "mediaType", MEDIA_TYPE_OCI_MANIFEST,
                                                            "digest", subject, "size", 100));
        _cleanup_free_ char *body = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        ASSERT_OK(digest_buffer(DIGEST_SHA256, body, strlen(body), digest));
        StoreError e = {};
        int r = test_put_manifest(f->store, repo, tag ? tag : digest, body, digest, &e);
        if (r < 0)
                fprintf(stderr, "push artifact %s: %s\n", repo, e.message);
        ASSERT_OK(r);
}

/* An SPDX SBOM referrer of subject in repo. */
static inline void push_sbom(Fixture *f, const char *repo, const char *subject) {
        char d[DIGEST_MAX_LEN];
        push_artifact(f, repo, "application/spdx+json", subject, "application/spdx+json",
                      "{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"search\"}", NULL, NULL, d);
}

static inline EVP_PKEY *test_key_new(void) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        ASSERT_TRUE(k);
        return k;
}

/* The public key as PEM text (malloc()ed). */
static inline char *test_key_public_pem(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        ASSERT_TRUE(b && PEM_write_bio_PUBKEY(b, k) == 1);
        char *data = NULL;
        long n = BIO_get_mem_data(b, &data);
        char *pem = strndup(data, (size_t) n);
        BIO_free(b);
        ASSERT_TRUE(pem);
        return pem;
}

/* A cosign simple-signing signature of digest in repo, signed with k, as the sha256-<hex>.sig tag. */
static inline void push_signature(Fixture *f, const char *repo, const char *digest, EVP_PKEY *k) {
        _cleanup_free_ char *payload = strdup_printf(
                "{\"critical\":{\"identity\":{\"docker-reference\":\"localhost/%s\"},\"image\":{\"docker-manifest-digest\":"
                "\"%s\"},\"type\":\"cosign container image signature\"},\"optional\":null}", repo, digest);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t siglen = 0;
        ASSERT_TRUE(ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
        ASSERT_TRUE(EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *) payload, strlen(payload)) == 1);
        _cleanup_free_ unsigned char *sig = malloc(siglen);
        ASSERT_TRUE(sig && EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) payload, strlen(payload)) == 1);
        EVP_MD_CTX_free(ctx);
        _cleanup_free_ char *b64 = malloc(4 * ((siglen + 2) / 3) + 1);
        ASSERT_TRUE(b64);
        EVP_EncodeBlock((unsigned char *) b64, sig, (int) siglen);
        json_t *ann = json_pack("{s:s}", "dev.cosignproject.cosign/signature", b64);
        _cleanup_free_ char *tag = strdup_printf("sha256-%s.sig", digest_hex(digest));
        char d[DIGEST_MAX_LEN];
        push_artifact(f, repo, NULL, NULL, "application/vnd.dev.cosign.simplesigning.v1+json", payload, ann, tag, d);
        json_decref(ann);
}

/* The failed gates of a refused promotion, as "name,name" */
static inline void failed_gates(const GovernanceMove *m, char *buf, size_t n) {
        size_t l = 0, i;
        json_t *e;
        buf[0] = 0;
        json_array_foreach(json_object_get(m->detail, "failed_gates"), i, e)
                l += (size_t) snprintf(buf + l, l < n ? n - l : 0, "%s%s", i ? "," : "",
                                       json_string_value(json_object_get(e, "gate")));
}

static inline const char *pointer_of(Fixture *f, const char *svc, const char *name, char buf[DIGEST_MAX_LEN]) {
        json_t *st = governance_channels_state(f->gov, svc);
        const char *d = json_string_value(json_object_get(st, name));
        snprintf(buf, DIGEST_MAX_LEN, "%s", d ? d : "");
        json_decref(st);
        return buf;
}
