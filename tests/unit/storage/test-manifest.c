/* SPDX-License-Identifier: MIT */
#include "storage/storage.h"
#include "tests/unit/tests.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D512                                                                                           \
        "sha512:4444444444444444444444444444444444444444444444444444444444444444"                       \
        "4444444444444444444444444444444444444444444444444444444444444444"
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static const char oci_image[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1470},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":3370706},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D512 "\",\"size\":0,"
        "\"annotations\":{\"org.opencontainers.image.title\":\"x.tar\"}}],"
        "\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

static const char oci_index[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":7143,"
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":7682,"
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"os.features\":[\"x\"]}},"
        "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D3 "\",\"size\":100}],"
        "\"annotations\":{\"com.example.key\":\"value\"}}";

static const char docker_v2[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":7023,\"digest\":\"" D1 "\"},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":32654,\"digest\":\"" D2 "\"},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"size\":1024,\"digest\":\"" D3 "\","
        "\"urls\":[\"https://example.com/layer.tar.gz\"]}]}";

static const char docker_list[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":7143,\"digest\":\"" D1 "\","
        "\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":7682,\"digest\":\"" D2 "\","
        "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\",\"features\":[\"sse4\"]}}]}";

static const char artifact[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"artifactType\":\"application/vnd.example.sbom.v1\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" EMPTY_DIGEST "\",\"size\":2,\"data\":\"e30=\"},"
        "\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" D2 "\",\"size\":12}],"
        "\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":1234},"
        "\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

/* an artifact without artifactType: the config media type stands in (distribution-spec) */
static const char helm_chart[] =
        "{\"schemaVersion\":2,"
        "\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1 "\",\"size\":117},"
        "\"layers\":[{\"mediaType\":\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":2487}]}";

static const char index_with_subject[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"artifactType\":\"application/vnd.example.bundle\",\"manifests\":[],"
        "\"subject\":{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D3 "\",\"size\":99}}";

static Manifest *parse_ok(const char *json, const char *ct) {
        Manifest *m = NULL;
        char err[512] = "";
        int r = manifest_parse(json, strlen(json), ct, &m, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "unexpected failure: %s\n", err);
        ASSERT_OK(r);
        ASSERT_TRUE(m);
        return m;
}

/* Expects a failure whose message contains `needle`. */
static void parse_bad(const char *json, size_t len, const char *ct, int expect, const char *needle) {
        Manifest *m = (Manifest *) 0x1;
        char err[512] = "";
        int r = manifest_parse(json, len, ct, &m, err, sizeof(err));
        if (r != expect || (needle && !strstr(err, needle)))
                fprintf(stderr, "input: %.300s\n  -> %d \"%s\" (expected %d, \"%s\")\n", json, r, err, expect, strna(needle));
        ASSERT_EQ(r, expect);
        ASSERT_TRUE(m == (Manifest *) 0x1); /* untouched */
        ASSERT_TRUE(*err);
        if (needle)
                ASSERT_TRUE(strstr(err, needle));
}
#define BAD(json, needle) parse_bad(json, strlen(json), NULL, -EINVAL, needle)
#define BAD_CT(json, ct, needle) parse_bad(json, strlen(json), ct, -EINVAL, needle)

TEST(test_oci_image) {
        Manifest *m = parse_ok(oci_image, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_EQ(m->kind, MANIFEST_OCI_IMAGE);
        ASSERT_FALSE(manifest_kind_is_index(m->kind));
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_TRUE(m->has_config);
        ASSERT_STREQ(m->config.media_type, MEDIA_TYPE_OCI_CONFIG);
        ASSERT_STREQ(m->config.digest, D1);
        ASSERT_EQ(m->config.size, 1470);
        ASSERT_EQ(m->n_layers, 2);
        ASSERT_STREQ(m->layers[0].digest, D2);
        ASSERT_EQ(m->layers[0].size, 3370706);
        ASSERT_STREQ(m->layers[1].digest, D512);
        ASSERT_EQ(m->layers[1].size, 0);
        ASSERT_STREQ(json_string_value(json_object_get(m->layers[1].annotations, "org.opencontainers.image.title")), "x.tar");
        ASSERT_TRUE(m->layers[0].annotations == NULL);
        ASSERT_EQ(m->n_manifests, 0);
        ASSERT_FALSE(m->has_subject);
        ASSERT_TRUE(json_is_object(m->annotations));
        /* spec: artifactType falls back to config.mediaType for image manifests */
        ASSERT_STREQ(m->artifact_type, MEDIA_TYPE_OCI_CONFIG);
        manifest_free(m);

        /* Content-Type with parameters and other case; no Content-Type at all */
        m = parse_ok(oci_image, " Application/VND.oci.image.manifest.v1+json ; charset=utf-8");
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
        manifest_free(m);
        m = parse_ok(oci_image, NULL);
        manifest_free(m);
        m = parse_ok(oci_image, "");
        manifest_free(m);
        /* ret may be NULL: validation only */
        char err[128];
        ASSERT_OK(manifest_parse(oci_image, strlen(oci_image), NULL, NULL, err, sizeof(err)));
}

TEST(test_oci_index) {
        Manifest *m = parse_ok(oci_index, MEDIA_TYPE_OCI_INDEX);
        ASSERT_EQ(m->kind, MANIFEST_OCI_INDEX);
        ASSERT_TRUE(manifest_kind_is_index(m->kind));
        ASSERT_FALSE(m->has_config);
        ASSERT_EQ(m->n_layers, 0);
        ASSERT_EQ(m->n_manifests, 3);
        ASSERT_STREQ(m->manifests[0].platform_os, "linux");
        ASSERT_STREQ(m->manifests[0].platform_arch, "amd64");
        ASSERT_TRUE(m->manifests[0].platform_variant == NULL);
        ASSERT_STREQ(m->manifests[1].platform_arch, "arm64");
        ASSERT_STREQ(m->manifests[1].platform_variant, "v8");
        ASSERT_TRUE(m->manifests[2].platform_os == NULL);
        ASSERT_STREQ(m->manifests[2].media_type, MEDIA_TYPE_OCI_INDEX);
        ASSERT_TRUE(m->artifact_type == NULL);
        manifest_free(m);
}

TEST(test_docker) {
        Manifest *m = parse_ok(docker_v2, MEDIA_TYPE_DOCKER_MANIFEST);
        ASSERT_EQ(m->kind, MANIFEST_DOCKER_V2);
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_DOCKER_MANIFEST);
        ASSERT_STREQ(m->config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
        ASSERT_EQ(m->n_layers, 2);
        /* foreign layers are kept */
        ASSERT_STREQ(m->layers[1].media_type, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
        ASSERT_STREQ(m->layers[1].digest, D3);
        ASSERT_TRUE(m->artifact_type == NULL);
        manifest_free(m);

        m = parse_ok(docker_list, MEDIA_TYPE_DOCKER_LIST);
        ASSERT_EQ(m->kind, MANIFEST_DOCKER_LIST);
        ASSERT_TRUE(manifest_kind_is_index(m->kind));
        ASSERT_EQ(m->n_manifests, 2);
        ASSERT_STREQ(m->manifests[0].platform_arch, "ppc64le");
        ASSERT_STREQ(m->manifests[1].platform_arch, "arm");
        ASSERT_STREQ(m->manifests[1].platform_variant, "v7");
        ASSERT_STREQ(m->manifests[1].media_type, MEDIA_TYPE_DOCKER_MANIFEST);
        manifest_free(m);
}

TEST(test_artifacts) {
        Manifest *m = parse_ok(artifact, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_EQ(m->kind, MANIFEST_OCI_IMAGE);
        ASSERT_STREQ(m->artifact_type, "application/vnd.example.sbom.v1");
        ASSERT_STREQ(m->config.media_type, MEDIA_TYPE_OCI_EMPTY);
        ASSERT_STREQ(m->config.digest, EMPTY_DIGEST);
        ASSERT_TRUE(m->has_subject);
        ASSERT_STREQ(m->subject.digest, D3);
        ASSERT_STREQ(m->subject.media_type, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_EQ(m->subject.size, 1234);
        manifest_free(m);

        /* no mediaType, no Content-Type: inferred from "config" */
        m = parse_ok(helm_chart, NULL);
        ASSERT_EQ(m->kind, MANIFEST_OCI_IMAGE);
        ASSERT_STREQ(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_STREQ(m->artifact_type, "application/vnd.cncf.helm.config.v1+json");
        manifest_free(m);
        /* no mediaType in the body: the Content-Type decides */
        m = parse_ok(helm_chart, MEDIA_TYPE_OCI_MANIFEST);
        ASSERT_EQ(m->kind, MANIFEST_OCI_IMAGE);
        manifest_free(m);

        m = parse_ok(index_with_subject, NULL);
        ASSERT_EQ(m->kind, MANIFEST_OCI_INDEX);
        ASSERT_EQ(m->n_manifests, 0);
        ASSERT_TRUE(m->manifests == NULL);
        ASSERT_STREQ(m->artifact_type, "application/vnd.example.bundle");
        ASSERT_TRUE(m->has_subject);
        ASSERT_STREQ(m->subject.digest, D3);
        manifest_free(m);

        /* an image with no layers (allowed for artifacts) and an inferred index */
        m = parse_ok("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" EMPTY_DIGEST
                     "\",\"size\":2},\"layers\":[]}",
                     NULL);
        ASSERT_EQ(m->n_layers, 0);
        ASSERT_TRUE(m->layers == NULL);
        manifest_free(m);
        m = parse_ok("{\"schemaVersion\":2,\"manifests\":[]}", NULL);
        ASSERT_EQ(m->kind, MANIFEST_OCI_INDEX);
        manifest_free(m);
        ASSERT_TRUE(manifest_free(NULL) == NULL);
}

#define CFG "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1}"
#define IMG_HEAD "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
#define LAYER(digest, size) "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" digest "\",\"size\":" size "}"

TEST(test_invalid) {
        /* JSON */
        BAD("{", "invalid JSON");
        BAD("", "empty manifest");
        BAD("[]", "JSON object");
        BAD("\"x\"", "invalid JSON");
        BAD("{\"schemaVersion\":2} x", "invalid JSON");
        BAD("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", "invalid JSON"); /* duplicate key */
        BAD(IMG_HEAD CFG ",\"layers\":[],\"config\":{}}", "invalid JSON");
        BAD("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"\xff\"}", "invalid JSON"); /* not UTF-8 */
        /* schemaVersion */
        BAD("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}", "schemaVersion");
        BAD("{\"schemaVersion\":1,\"manifests\":[]}", "schemaVersion");
        BAD("{\"schemaVersion\":\"2\",\"manifests\":[]}", "schemaVersion");
        BAD("{\"schemaVersion\":2.0,\"manifests\":[]}", "schemaVersion");
        /* media types */
        BAD("{\"schemaVersion\":2,\"mediaType\":\"application/json\",\"manifests\":[]}", "unsupported manifest media type");
        BAD("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}", "mediaType");
        BAD("{\"schemaVersion\":2}", "mediaType: missing");
        BAD_CT(oci_image, MEDIA_TYPE_OCI_INDEX, "does not match");
        BAD_CT(oci_image, MEDIA_TYPE_DOCKER_MANIFEST, "does not match");
        BAD_CT(docker_list, MEDIA_TYPE_OCI_INDEX, "does not match");
        BAD_CT(oci_image, "application/octet-stream", "does not match");
        BAD_CT(helm_chart, "application/json", "unsupported manifest media type");
        BAD_CT(helm_chart, MEDIA_TYPE_OCI_INDEX, "an index must not have");
        char longct[600];
        memset(longct, 'a', sizeof(longct) - 1);
        longct[sizeof(longct) - 1] = 0;
        BAD_CT(helm_chart, longct, "Content-Type");
        /* ambiguous bodies */
        BAD(IMG_HEAD CFG ",\"layers\":[],\"manifests\":[]}", "must not have \"manifests\"");
        BAD("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]," CFG "}",
            "must not have \"config\"");
        /* images */
        BAD(IMG_HEAD "\"layers\":[]}", "config: missing");
        BAD(IMG_HEAD CFG "}", "layers: missing");
        BAD(IMG_HEAD CFG ",\"layers\":{}}", "layers: expected an array");
        BAD(IMG_HEAD "\"config\":[]" ",\"layers\":[]}", "config: expected a descriptor");
        BAD(IMG_HEAD "\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}", "config.mediaType: missing");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER(D1, "1") "," LAYER(D2, "2") "," LAYER("sha256:abc", "3") "]}",
            "layers[2].digest: invalid digest \"sha256:abc\"");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER("sha256:ABCDEF1111111111111111111111111111111111111111111111111111111111", "3") "]}",
            "layers[0].digest: invalid digest");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER("md5:d41d8cd98f00b204e9800998ecf8427e", "3") "]}",
            "layers[0].digest: unsupported digest algorithm");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER(D1, "-1") "]}", "layers[0].size: expected a non-negative integer");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER(D1, "1.5") "]}", "layers[0].size");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER(D1, "\"1\"") "]}", "layers[0].size");
        BAD(IMG_HEAD CFG ",\"layers\":[" LAYER(D1, "99999999999999999999999") "]}", "invalid JSON"); /* too big */
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"application/x\",\"size\":1}]}", "layers[0].digest: missing");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"application/x\",\"digest\":\"" D1 "\"}]}", "layers[0].size: missing");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"nonsense\",\"digest\":\"" D1 "\",\"size\":1}]}", "layers[0].mediaType");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b c\",\"digest\":\"" D1 "\",\"size\":1}]}", "layers[0].mediaType");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b;x=y\",\"digest\":\"" D1 "\",\"size\":1}]}", "layers[0].mediaType");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":1,\"size\":1}]}", "layers[0].digest: expected a string");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1,\"urls\":\"x\"}]}", "layers[0].urls");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1,\"urls\":[1]}]}", "layers[0].urls[0]");
        BAD(IMG_HEAD CFG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"k\":1}}]}",
            "layers[0].annotations[\"k\"]");
        BAD(IMG_HEAD CFG ",\"layers\":[], \"annotations\":[]}", "manifest.annotations");
        BAD(IMG_HEAD CFG ",\"layers\":[7]}", "layers[0]: expected a descriptor");
        /* artifacts */
        BAD(IMG_HEAD CFG ",\"layers\":[],\"artifactType\":\"nope\"}", "artifactType");
        BAD(IMG_HEAD CFG ",\"layers\":[],\"artifactType\":3}", "artifactType");
        BAD(IMG_HEAD CFG ",\"layers\":[],\"subject\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:zz\",\"size\":1}}",
            "subject.digest: invalid digest");
        BAD(IMG_HEAD CFG ",\"layers\":[],\"subject\":\"" D1 "\"}", "subject: expected a descriptor");
        /* indexes */
        BAD("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}", "manifests: missing");
        BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
            "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
            "manifests[0].platform.architecture");
        BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
            "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\",\"variant\":5}}]}",
            "manifests[0].platform.variant");
        BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":\"linux\"}]}",
            "manifests[0].platform");
}

TEST(test_size_limit) {
        /* a valid manifest padded with whitespace to just over 4 MiB */
        size_t len = MANIFEST_SIZE_MAX + 1, base = strlen(oci_image);
        char *buf = malloc(len);
        ASSERT_TRUE(buf);
        memcpy(buf, oci_image, base);
        memset(buf + base, ' ', len - base);
        parse_bad(buf, len, NULL, -EFBIG, "larger than the limit");
        /* exactly at the limit is fine */
        Manifest *m = NULL;
        char err[256];
        ASSERT_OK(manifest_parse(buf, MANIFEST_SIZE_MAX, NULL, &m, err, sizeof(err)));
        manifest_free(m);
        free(buf);
}

TEST(test_not_nul_terminated) {
        /* the body is a buffer with a length, not a C string */
        size_t n = strlen(oci_index);
        char *buf = malloc(n);
        ASSERT_TRUE(buf);
        memcpy(buf, oci_index, n);
        Manifest *m = NULL;
        char err[256];
        ASSERT_OK(manifest_parse(buf, n, NULL, &m, err, sizeof(err)));
        manifest_free(m);
        /* embedded NUL */
        const char nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0";
        parse_bad(nul, sizeof(nul) - 1, NULL, -EINVAL, "invalid JSON");
        free(buf);
}

typedef struct Kids {
        char v[8][DIGEST_MAX_LEN];
        size_t n;
        int fail_at; /* -1: never */
} Kids;

static int kid_cb(void *userdata, size_t i, const char *digest, size_t len) {
        Kids *k = userdata;
        ASSERT_EQ(i, k->n);
        if ((int) i == k->fail_at)
                return -ENOSPC;
        ASSERT_TRUE(len < DIGEST_MAX_LEN && k->n < 8);
        memcpy(k->v[k->n], digest, len);
        k->v[k->n++][len] = 0;
        return 0;
}

static int scan(const char *json, ManifestMeta *m, Kids *k) {
        *k = (Kids) { .fail_at = -1 };
        return manifest_meta_scan(json, strlen(json), m, kid_cb, k);
}

/* The record meta the GC reads for every manifest: what store_manifest_put() writes is read as
 * jansson reads it; any other shape is refused (-EINVAL), and the caller falls back to jansson. */
TEST(test_meta_scan) {
        /* built the way store_manifest_put() builds it */
        json_t *meta = json_pack("{s:s, s:I, s:I, s:[s,s]}", "mediaType", MEDIA_TYPE_OCI_MANIFEST, "size", (json_int_t) 528,
                                 "created", (json_int_t) 1796229790348637000LL, "children", D1, D2);
        json_object_set_new(meta, "subject", json_string(D3));
        json_object_set_new(meta, "artifactType", json_string("application/vnd.example.sbom+json"));
        char *js = json_dumps(meta, JSON_COMPACT);
        json_decref(meta);
        ManifestMeta m;
        Kids k;
        ASSERT_OK(scan(js, &m, &k));
        ASSERT_TRUE(m.media_type && m.media_type_len == strlen(MEDIA_TYPE_OCI_MANIFEST) &&
                    memcmp(m.media_type, MEDIA_TYPE_OCI_MANIFEST, m.media_type_len) == 0);
        ASSERT_TRUE(m.subject && m.subject_len == strlen(D3) && memcmp(m.subject, D3, m.subject_len) == 0);
        ASSERT_TRUE(m.has_children);
        ASSERT_EQ(m.n_children, 2);
        ASSERT_EQ(k.n, 2);
        ASSERT_STREQ(k.v[0], D1);
        ASSERT_STREQ(k.v[1], D2);
        /* not NUL-terminated: only len bytes are read */
        size_t l = strlen(js);
        char *cut = malloc(l);
        memcpy(cut, js, l);
        ASSERT_OK(manifest_meta_scan(cut, l, &m, NULL, NULL));
        ASSERT_EQ(m.n_children, 2);
        ASSERT_TRUE(manifest_meta_scan(cut, l - 1, &m, NULL, NULL) == -EINVAL);
        free(cut);
        /* the child callback's error ends the scan */
        k = (Kids) { .fail_at = 1 };
        ASSERT_TRUE(manifest_meta_scan(js, l, &m, kid_cb, &k) == -ENOSPC);
        free(js);

        ASSERT_OK(scan(" { \"mediaType\" : \"" MEDIA_TYPE_OCI_INDEX "\" ,\n\"children\":[ ] }\n", &m, &k));
        ASSERT_TRUE(m.has_children && m.n_children == 0 && !m.subject);
        ASSERT_OK(scan("{}", &m, &k));
        ASSERT_TRUE(!m.has_children && !m.media_type);
        ASSERT_OK(scan("{\"size\":9223372036854775807,\"created\":0}", &m, &k));

        static const char *const refused[] = {
                "",
                "[]",
                "{",
                "{\"mediaType\":\"a\"",
                "{\"mediaType\":\"a\"} x",
                "{\"mediaType\":\"a\",}",
                "{,}",
                "{\"mediaType\":\"a\\u0041\"}",            /* escapes: jansson's job */
                "{\"mediaType\":\"caf\xc3\xa9\"}",           /* non-ASCII */
                "{\"mediaType\":\"a\",\"mediaType\":\"b\"}", /* jansson keeps the last */
                "{\"children\":[],\"children\":[]}",
                "{\"unknown\":1}",
                "{\"mediaType\":null}",
                "{\"children\":[1]}",
                "{\"children\":[\"" D1 "\",]}",
                "{\"children\":\"" D1 "\"}",
                "{\"size\":1.5}",
                "{\"size\":1e3}",
                "{\"size\":-1}",
                "{\"size\":01}",
                "{\"size\":9223372036854775808}",
                "{\"size\":12345678901234567890}",
                "{\"subject\":7}",
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                int r = scan(refused[i], &m, &k);
                if (r != -EINVAL)
                        fprintf(stderr, "accepted: %s\n", refused[i]);
                ASSERT_TRUE(r == -EINVAL);
        }
        ASSERT_TRUE(manifest_meta_scan(NULL, 0, &m, NULL, NULL) == -EINVAL);
        ASSERT_TRUE(manifest_meta_scan("{\"size\":1\0}", 11, &m, NULL, NULL) == -EINVAL);
}

int main(void) {
        RUN(test_oci_image);
        RUN(test_oci_index);
        RUN(test_docker);
        RUN(test_artifacts);
        RUN(test_invalid);
        RUN(test_size_limit);
        RUN(test_not_nul_terminated);
        RUN(test_meta_scan);
        return 0;
}
