/* SPDX-License-Identifier: MIT */
/* Holds (records, validation, closure) and WORM export/verify on a real store and a real
 * directory: bundle layout, write-once modes, name collisions, verify against altered, missing,
 * extra and incomplete bundles, store_hold_ensure_exported. */
#include <fcntl.h>
#include <sys/stat.h>

#include "storage-test-helpers.h"
#include "storage/holds.h"
#include "storage/store-internal.h"

static void write_file(const char *path, const char *data) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(loop_write(fd, data, strlen(data)));
        close(fd);
}

static char *path_join(const char *a, const char *b) {
        char *p = strdup_printf("%s/%s", a, b);
        ASSERT_TRUE(p);
        return p;
}

static bool exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join(dir, name);
        return access(p, F_OK) == 0;
}

static size_t report_count(json_t *rep, const char *key) {
        return json_array_size(json_object_get(rep, key));
}

/* copies a bundle into a writable scratch directory (cp -r keeps nothing read-only) */
static char *copy_bundle(const char *bundle, const char *scratch, const char *name) {
        char *dst = path_join(scratch, name);
        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s' && cp -r '%s' '%s' && chmod -R u+w '%s'", dst, bundle, dst, dst);
        ASSERT_EQ(system(cmd), 0);
        return dst;
}

TEST(test_case_id) {
        ASSERT_TRUE(case_id_is_valid("INC-1"));
        ASSERT_TRUE(case_id_is_valid("a"));
        ASSERT_TRUE(case_id_is_valid("CVE-2024.1234_x"));
        ASSERT_TRUE(case_id_is_valid("a..b"));
        ASSERT_FALSE(case_id_is_valid(NULL));
        ASSERT_FALSE(case_id_is_valid(""));
        ASSERT_FALSE(case_id_is_valid("."));
        ASSERT_FALSE(case_id_is_valid(".."));
        ASSERT_FALSE(case_id_is_valid("../etc"));
        ASSERT_FALSE(case_id_is_valid("a/b"));
        ASSERT_FALSE(case_id_is_valid("-x"));
        ASSERT_FALSE(case_id_is_valid("_x"));
        ASSERT_FALSE(case_id_is_valid("a b"));
        ASSERT_FALSE(case_id_is_valid("a\\b"));
        char long_id[130];
        memset(long_id, 'a', sizeof long_id);
        long_id[128] = 0;
        ASSERT_TRUE(case_id_is_valid(long_id));
        long_id[128] = 'a';
        long_id[129] = 0;
        ASSERT_FALSE(case_id_is_valid(long_id));
}

TEST(test_until) {
        int64_t now = (int64_t) 1700000000 * (int64_t) NSEC_PER_SEC, v;
        ASSERT_OK(hold_parse_until("30d", now, &v));
        ASSERT_EQ(v, now + 30 * 86400 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(hold_parse_until("12h", now, &v));
        ASSERT_EQ(v, now + 12 * 3600 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(hold_parse_until("2030-01-02T03:04:05Z", now, &v));
        ASSERT_EQ(v, (int64_t) 1893553445 * (int64_t) NSEC_PER_SEC);
        ASSERT_OK(hold_parse_until("2030-01-02T04:04:05.5+01:00", now, &v));
        ASSERT_EQ(v, (int64_t) 1893553445 * (int64_t) NSEC_PER_SEC + 500000000);
        ASSERT_EQ(hold_parse_until("2001-01-01T00:00:00Z", now, &v), -ERANGE);
        ASSERT_EQ(hold_parse_until("0s", now, &v), -ERANGE);
        ASSERT_EQ(hold_parse_until("2030-02-31T00:00:00Z", now, &v), -EINVAL);
        ASSERT_EQ(hold_parse_until("2030-01-02", now, &v), -EINVAL);
        ASSERT_EQ(hold_parse_until("2030-01-02T03:04:05", now, &v), -EINVAL);
        ASSERT_EQ(hold_parse_until("soon", now, &v), -EINVAL);
        ASSERT_EQ(hold_parse_until("", now, &v), -EINVAL);
}

typedef struct Fixture {
        char *dir;
        char *worm;
        Store *s;
        char image[DIGEST_MAX_LEN];
        char sig[DIGEST_MAX_LEN];
        char index[DIGEST_MAX_LEN];
        char other[DIGEST_MAX_LEN];
        char sig_blob[DIGEST_MAX_LEN];
} Fixture;

static void fixture_setup(Fixture *f) {
        *f = (Fixture) {};
        f->dir = test_tmpdir();
        _cleanup_free_ char *data = path_join(f->dir, "data");
        f->worm = path_join(f->dir, "worm");
        ASSERT_OK(mkdir_p(f->worm, 0755));
        f->s = test_store_open(data, false);
        StoreError e = {};

        _cleanup_free_ char *img = test_pushed_image(f->s, "lib/app", "held");
        ASSERT_OK(test_put_manifest(f->s, "lib/app", "one", img, f->image, &e));

        /* a signature-like referrer of the image */
        char cfg[DIGEST_MAX_LEN];
        test_blob(f->s, "lib/app", "{}", cfg);
        test_blob(f->s, "lib/app", "signature payload", f->sig_blob);
        const char *layers[] = { f->sig_blob };
        size_t sizes[] = { strlen("signature payload") };
        _cleanup_free_ char *sig = test_image_manifest(cfg, 2, layers, sizes, 1, f->image,
                                                       "application/vnd.dev.cosign.artifact.sig.v1+json", NULL);
        char ref[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, sig, strlen(sig), ref));
        ASSERT_OK(test_put_manifest(f->s, "lib/app", ref, sig, f->sig, &e));

        /* an index over the image */
        _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
        ASSERT_OK(store_manifest_get_by_digest(f->s, f->image, &m));
        json_t *idx = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s, s:s}}]}", "schemaVersion", 2, "mediaType",
                                MEDIA_TYPE_OCI_INDEX, "manifests", "mediaType", MEDIA_TYPE_OCI_MANIFEST, "digest", f->image,
                                "size", (json_int_t) m->size, "platform", "os", "linux", "architecture", "amd64");
        _cleanup_free_ char *ib = json_dumps(idx, JSON_COMPACT);
        json_decref(idx);
        ManifestPut p = { .repo = "lib/app", .data = ib, .len = strlen(ib), .content_type = MEDIA_TYPE_OCI_INDEX,
                          .reference = "idx", .actor = "tester" };
        ASSERT_OK(store_manifest_put(f->s, &p, f->index, &e));

        _cleanup_free_ char *other = test_pushed_image(f->s, "lib/other", "other");
        ASSERT_OK(test_put_manifest(f->s, "lib/other", "one", other, f->other, &e));
}

static void fixture_done(Fixture *f) {
        store_free(f->s);
        rm_rf(f->dir);
        free(f->dir);
        free(f->worm);
}

static WormOptions worm_opts(Fixture *f) {
        /* the immutable attribute is covered by the integration test on an ext4 loop mount; here it
         * would keep the test from cleaning up */
        return (WormOptions) { .path = f->worm, .registry_id = "plura-unit@test", .actor = "tester", .immutable = false };
}

TEST(test_hold_records) {
        Fixture f;
        fixture_setup(&f);
        StoreError e = {};
        int64_t now = clock_now_ns();

        ASSERT_EQ(store_hold_add(f.s, "sha256:0000000000000000000000000000000000000000000000000000000000000000", "INC-1",
                                 "x", 0, "alice", &e),
                  -ENOENT);
        ASSERT_EQ(e.code, OCI_MANIFEST_UNKNOWN);
        ASSERT_EQ(store_hold_add(f.s, f.index, "../etc", "x", 0, "alice", &e), -EINVAL);
        ASSERT_TRUE(strstr(e.message, "case id"));
        ASSERT_EQ(store_hold_add(f.s, "sha256:nope", "INC-1", "x", 0, "alice", &e), -EINVAL);

        ASSERT_EQ(store_hold_add(f.s, f.index, "INC-1", "triage", 0, "alice", &e), 1);
        ASSERT_EQ(store_hold_add(f.s, f.index, "INC-1", "triage again", 0, "bob", &e), 0);
        ASSERT_EQ(store_hold_add(f.s, f.sig_blob, "INC-2", "a blob", now + 1000, "alice", &e), 1);

        HoldInfo h = {};
        ASSERT_OK(store_hold_get(f.s, f.index, "INC-1", &h));
        ASSERT_STREQ(h.reason, "triage again");
        ASSERT_STREQ(h.case_id, "INC-1");
        ASSERT_TRUE(hold_is_active(&h, now));
        json_t *j = hold_info_to_json(&h, now);
        ASSERT_TRUE(json_is_true(json_object_get(j, "active")));
        ASSERT_TRUE(json_is_null(json_object_get(j, "until")));
        json_decref(j);
        hold_info_done(&h);

        ASSERT_OK(store_hold_get(f.s, f.sig_blob, "INC-2", &h));
        ASSERT_TRUE(hold_is_active(&h, now));
        ASSERT_FALSE(hold_is_active(&h, now + 2000)); /* expired */
        hold_info_done(&h);

        ASSERT_EQ(store_hold_release(f.s, f.index, "INC-9", "alice", &e), -ENOENT);
        ASSERT_OK(store_hold_release(f.s, f.index, "INC-1", "alice", &e));
        ASSERT_OK(store_hold_release(f.s, f.index, "INC-1", "alice", &e)); /* twice: no-op */
        ASSERT_OK(store_hold_get(f.s, f.index, "INC-1", &h));
        ASSERT_TRUE(h.released > 0);
        ASSERT_FALSE(hold_is_active(&h, now));
        ASSERT_OK(store_hold_forget(f.s, &h));
        hold_info_done(&h);
        ASSERT_EQ(store_hold_get(f.s, f.index, "INC-1", &h), -ENOENT);

        /* re-adding a released hold makes it active again */
        ASSERT_EQ(store_hold_add(f.s, f.sig_blob, "INC-2", "renew", 0, "alice", &e), 0);
        ASSERT_OK(store_hold_release(f.s, f.sig_blob, "INC-2", "alice", &e));
        ASSERT_EQ(store_hold_add(f.s, f.sig_blob, "INC-2", "again", 0, "alice", &e), 0);
        ASSERT_OK(store_hold_get(f.s, f.sig_blob, "INC-2", &h));
        ASSERT_EQ(h.released, 0);
        hold_info_done(&h);
        fixture_done(&f);
}

TEST(test_closure) {
        Fixture f;
        fixture_setup(&f);
        StoreError e = {};
        json_t *c = NULL;
        ASSERT_OK(store_digest_closure(f.s, NULL, f.index, &c, &e));
        /* index -> image (child) -> signature (referrer); config+layer, {} + payload */
        ASSERT_EQ(json_array_size(json_object_get(c, "manifests")), 3);
        ASSERT_EQ(json_array_size(json_object_get(c, "blobs")), 4);
        ASSERT_STREQ(json_string_value(json_object_get(c, "kind")), "manifest");
        bool saw_sig = false;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(c, "manifests"), i, m)
                if (streq(json_string_value(json_object_get(m, "digest")), f.sig)) {
                        saw_sig = true;
                        ASSERT_STREQ(json_string_value(json_object_get(m, "role")), "referrer");
                }
        ASSERT_TRUE(saw_sig);
        json_decref(c);

        ASSERT_OK(store_digest_closure(f.s, NULL, f.sig_blob, &c, &e));
        ASSERT_STREQ(json_string_value(json_object_get(c, "kind")), "blob");
        ASSERT_EQ(json_array_size(json_object_get(c, "blobs")), 1);
        json_decref(c);

        ASSERT_EQ(store_digest_closure(f.s, NULL, "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                       &c, &e),
                  -ENOENT);
        fixture_done(&f);
}

TEST(test_export_and_verify) {
        Fixture f;
        fixture_setup(&f);
        StoreError e = {};
        ASSERT_EQ(store_hold_add(f.s, f.index, "INC-1", "triage", 0, "alice", &e), 1);
        WormOptions o = worm_opts(&f);
        /* a fixed clock: the second export must still get its own directory */
        clock_set_fake((int64_t) 1800000000 * (int64_t) NSEC_PER_SEC);

        _cleanup_free_ char *b1 = NULL, *b2 = NULL;
        json_t *sum = NULL;
        ASSERT_OK(worm_export(f.s, &o, "INC-1", f.index, &b1, &sum, &e));
        ASSERT_TRUE(strstr(b1, "/INC-1/20270115T080000.000000000Z-"));
        ASSERT_TRUE(endswith(b1, strndupa(digest_hex(f.index), 12))); /* <time>-<hex[0:12]> */
        ASSERT_TRUE(json_integer_value(json_object_get(sum, "bytes")) > 0);
        json_decref(sum);

        /* layout */
        static const char *const files[] = { "oci-layout", "index.json", "bundle.json", "SHA256SUMS", "tag-history.json",
                                             "channel-history.json", "audit.json" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                ASSERT_TRUE(exists(b1, files[i]));
        ASSERT_FALSE(exists(b1, "INCOMPLETE"));
        const char *digests[] = { f.index, f.image, f.sig, f.sig_blob };
        for (size_t i = 0; i < ELEMENTSOF(digests); i++) {
                _cleanup_free_ char *rel = strdup_printf("blobs/sha256/%s", digest_hex(digests[i]));
                ASSERT_TRUE(exists(b1, rel));
        }
        struct stat st;
        _cleanup_free_ char *bj = path_join(b1, "bundle.json");
        ASSERT_OK(stat(bj, &st));
        ASSERT_EQ(st.st_mode & 07777, 0444);
        ASSERT_OK(stat(b1, &st));
        ASSERT_EQ(st.st_mode & 07777, 0555);
        _cleanup_free_ char *cmd = strdup_printf("cd '%s' && sha256sum --quiet -c SHA256SUMS", b1);
        ASSERT_EQ(system(cmd), 0);
        json_t *bjson = json_load_file(bj, 0, NULL);
        ASSERT_STREQ(json_string_value(json_object_get(bjson, "registry_id")), "plura-unit@test");
        ASSERT_STREQ(json_string_value(json_object_get(bjson, "digest")), f.index);
        ASSERT_TRUE(json_array_size(json_object_get(bjson, "files")) >= 10);
        json_decref(bjson);
        _cleanup_free_ char *ij = path_join(b1, "index.json");
        json_t *index = json_load_file(ij, 0, NULL);
        json_t *first = json_array_get(json_object_get(index, "manifests"), 0);
        ASSERT_STREQ(json_string_value(json_object_get(first, "digest")), f.index);
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(first, "annotations"),
                                                       "org.opencontainers.image.ref.name")),
                     "held");
        json_decref(index);
        _cleanup_free_ char *th = path_join(b1, "tag-history.json");
        json_t *hist = json_load_file(th, 0, NULL);
        ASSERT_TRUE(json_array_size(hist) >= 2); /* lib/app:one and lib/app:idx */
        json_decref(hist);

        json_t *rep = NULL;
        ASSERT_OK(worm_verify(b1, &rep));
        ASSERT_STREQ(json_string_value(json_object_get(rep, "status")), "ok");
        json_decref(rep);

        /* second export: same clock, new directory, first untouched */
        ASSERT_OK(worm_export(f.s, &o, "INC-1", f.index, &b2, NULL, &e));
        ASSERT_FALSE(streq(b1, b2));
        ASSERT_TRUE(endswith(b2, "-1"));
        ASSERT_OK(worm_verify(b1, NULL));
        ASSERT_OK(worm_verify(b2, NULL));

        json_t *list = NULL;
        ASSERT_OK(worm_bundles_list(f.worm, "INC-1", &list));
        ASSERT_EQ(json_array_size(list), 2);
        json_decref(list);
        _cleanup_free_ char *found = NULL;
        ASSERT_OK(worm_find_verified(f.worm, "INC-1", f.index, &found));
        ASSERT_EQ(worm_find_verified(f.worm, "INC-1", f.image, &found), -ENOENT);

        /* tampering */
        _cleanup_free_ char *scratch = path_join(f.dir, "scratch");
        ASSERT_OK(mkdir_p(scratch, 0755));
        _cleanup_free_ char *c1 = copy_bundle(b1, scratch, "alt");
        ASSERT_OK(worm_verify(c1, NULL));
        _cleanup_free_ char *victim = strdup_printf("%s/blobs/sha256/%s", c1, digest_hex(f.sig_blob));
        write_file(victim, "signature paylOad");
        ASSERT_EQ(worm_verify(c1, &rep), -EBADMSG);
        ASSERT_EQ(report_count(rep, "altered"), 1);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "status")), "failed");
        json_decref(rep);

        _cleanup_free_ char *c2 = copy_bundle(b1, scratch, "del");
        _cleanup_free_ char *gone = strdup_printf("%s/blobs/sha256/%s", c2, digest_hex(f.image));
        ASSERT_OK(unlink(gone));
        ASSERT_EQ(worm_verify(c2, &rep), -EBADMSG);
        ASSERT_EQ(report_count(rep, "missing"), 1);
        json_decref(rep);

        _cleanup_free_ char *c3 = copy_bundle(b1, scratch, "add");
        _cleanup_free_ char *planted = path_join(c3, "notes.txt");
        write_file(planted, "hello");
        ASSERT_EQ(worm_verify(c3, &rep), -EBADMSG);
        ASSERT_EQ(report_count(rep, "extra"), 1);
        json_decref(rep);

        _cleanup_free_ char *c4 = copy_bundle(b1, scratch, "sums");
        _cleanup_free_ char *sums = path_join(c4, "SHA256SUMS");
        write_file(sums, "0000000000000000000000000000000000000000000000000000000000000000  bundle.json\n");
        ASSERT_EQ(worm_verify(c4, &rep), -EBADMSG);
        ASSERT_TRUE(report_count(rep, "altered") + report_count(rep, "problems") > 0);
        json_decref(rep);

        _cleanup_free_ char *c5 = copy_bundle(b1, scratch, "incomplete");
        _cleanup_free_ char *marker = path_join(c5, "INCOMPLETE");
        write_file(marker, "x");
        ASSERT_EQ(worm_verify(c5, &rep), -EBADMSG);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "status")), "incomplete");
        json_decref(rep);

        _cleanup_free_ char *c6 = copy_bundle(b1, scratch, "nolisting");
        _cleanup_free_ char *bj6 = path_join(c6, "bundle.json");
        ASSERT_OK(unlink(bj6));
        ASSERT_EQ(worm_verify(c6, &rep), -EBADMSG);
        ASSERT_STREQ(json_string_value(json_object_get(rep, "status")), "incomplete");
        json_decref(rep);

        ASSERT_TRUE(worm_verify(scratch, NULL) < 0);
        _cleanup_free_ char *nowhere = path_join(f.dir, "nowhere");
        ASSERT_EQ(worm_verify(nowhere, NULL), -ENOENT);
        clock_set_fake(0);
        fixture_done(&f);
}

TEST(test_export_errors) {
        Fixture f;
        fixture_setup(&f);
        StoreError e = {};
        WormOptions o = worm_opts(&f);
        _cleanup_free_ char *b = NULL;

        WormOptions none = o;
        none.path = NULL;
        ASSERT_EQ(worm_export(f.s, &none, "INC-1", f.index, &b, NULL, &e), -EDESTADDRREQ);
        ASSERT_TRUE(strstr(e.message, "worm.path"));
        json_t *cfg = json_pack("{s:s}", "path", "");
        ASSERT_EQ(worm_options_from_json(cfg, &none), -EDESTADDRREQ);
        json_decref(cfg);

        /* a target that is not there (an unmounted WORM filesystem) is not created */
        WormOptions missing = o;
        _cleanup_free_ char *mp = path_join(f.dir, "not-mounted");
        missing.path = mp;
        ASSERT_EQ(worm_export(f.s, &missing, "INC-1", f.index, &b, NULL, &e), -ENOENT);
        ASSERT_TRUE(access(mp, F_OK) < 0);

        ASSERT_EQ(worm_export(f.s, &o, "../x", f.index, &b, NULL, &e), -EINVAL);
        ASSERT_EQ(worm_export(f.s, &o, "INC-1", "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                              &b, NULL, &e),
                  -ENOENT);
        ASSERT_EQ(e.code, OCI_MANIFEST_UNKNOWN);
        ASSERT_TRUE(b == NULL);
        /* nothing was written for any of them */
        json_t *list = NULL;
        ASSERT_OK(worm_bundles_list(f.worm, NULL, &list));
        ASSERT_EQ(json_array_size(list), 0);
        json_decref(list);

        /* a blob missing from the store: the export fails before writing anything */
        _cleanup_free_ char *victim = store_blob_location(f.s, f.sig_blob);
        ASSERT_OK(unlink(victim));
        ASSERT_EQ(worm_export(f.s, &o, "INC-1", f.index, &b, NULL, &e), -ENOENT);
        ASSERT_EQ(e.code, OCI_BLOB_UNKNOWN);
        ASSERT_TRUE(b == NULL);
        ASSERT_OK(worm_bundles_list(f.worm, NULL, &list));
        ASSERT_EQ(json_array_size(list), 0);
        json_decref(list);
        fixture_done(&f);
}

TEST(test_ensure_exported) {
        Fixture f;
        fixture_setup(&f);
        StoreError e = {};
        ASSERT_EQ(store_hold_add(f.s, f.image, "INC-7", "released later", 0, "alice", &e), 1);
        ASSERT_OK(store_hold_release(f.s, f.image, "INC-7", "alice", &e));
        HoldInfo h = {};
        ASSERT_OK(store_hold_get(f.s, f.image, "INC-7", &h));
        ASSERT_TRUE(h.export_bundle == NULL);

        json_t *noworm = json_pack("{s:s}", "path", "");
        char *bundle = NULL;
        ASSERT_EQ(store_hold_ensure_exported(f.s, &h, noworm, &bundle), -EDESTADDRREQ);
        json_decref(noworm);

        json_t *worm = json_pack("{s:s, s:b}", "path", f.worm, "immutable", false);
        ASSERT_EQ(store_hold_ensure_exported(f.s, &h, worm, &bundle), 1);
        ASSERT_TRUE(bundle);
        ASSERT_OK(worm_verify(bundle, NULL));
        hold_info_done(&h);
        ASSERT_OK(store_hold_get(f.s, f.image, "INC-7", &h));
        ASSERT_STREQ(h.export_bundle, bundle);
        free(bundle);
        bundle = NULL;

        /* a verified export exists: nothing new is written */
        ASSERT_EQ(store_hold_ensure_exported(f.s, &h, worm, &bundle), 0);
        ASSERT_STREQ(bundle, h.export_bundle);
        free(bundle);
        bundle = NULL;
        json_t *list = NULL;
        ASSERT_OK(worm_bundles_list(f.worm, "INC-7", &list));
        ASSERT_EQ(json_array_size(list), 1);
        json_decref(list);

        /* the recorded bundle was damaged: a new export is written */
        _cleanup_free_ char *victim = strdup_printf("%s/blobs/sha256/%s", h.export_bundle, digest_hex(f.image));
        chmod(h.export_bundle, 0755);
        _cleanup_free_ char *blobs = strdup_printf("%s/blobs/sha256", h.export_bundle);
        chmod(blobs, 0755);
        ASSERT_OK(unlink(victim));
        ASSERT_EQ(store_hold_ensure_exported(f.s, &h, worm, &bundle), 1);
        ASSERT_FALSE(streq(bundle, h.export_bundle));
        ASSERT_OK(worm_verify(bundle, NULL));
        free(bundle);
        hold_info_done(&h);
        json_decref(worm);
        fixture_done(&f);
}

int main(void) {
        RUN(test_case_id);
        RUN(test_until);
        RUN(test_hold_records);
        RUN(test_closure);
        RUN(test_export_and_verify);
        RUN(test_export_errors);
        RUN(test_ensure_exported);
        return 0;
}
