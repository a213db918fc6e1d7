/* SPDX-License-Identifier: MIT */
/* fsck finds each kind of problem; --repair quarantines (never deletes) and a second run is clean. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "storage-test-helpers.h"
#include "storage/fsck.h"
#include "storage/gc-records.h"
#include "storage/records.h"
#include "storage/store-internal.h"

static size_t count_kind(const FsckReport *r, const char *kind) {
        size_t n = 0, i;
        json_t *p;
        json_array_foreach(r->problems, i, p)
                if (streq(json_string_value(json_object_get(p, "kind")), kind))
                        n++;
        return n;
}

static void corrupt_file(const char *path, off_t at) {
        ASSERT_OK(chmod(path, 0644));
        int fd = open(path, O_WRONLY);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(pwrite(fd, "XYZ", 3, at), 3);
        close(fd);
}

static size_t count_quarantined(const char *root) {
        _cleanup_free_ char *q = strdup_printf("%s/quarantine", root);
        DIR *d = opendir(q);
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *sub = strdup_printf("%s/%s", q, de->d_name);
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

TEST(test_fsck_finds_and_repairs) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, true);
        StoreError e = {};

        /* a healthy image */
        _cleanup_free_ char *good = test_pushed_image(s, "ok", "fine");
        char d_good[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "ok", "v1", good, d_good, &e));

        /* an image whose (zstd-stored) layer gets corrupted on disk */
        size_t big = 2 * BLOB_ZSTD_FRAME_SIZE + 17;
        char *layer = malloc(big + 1);
        for (size_t i = 0; i < big; i++)
                layer[i] = "compressible text "[i % 18];
        layer[big] = 0;
        char d_cfg[DIGEST_MAX_LEN], d_layer[DIGEST_MAX_LEN], d_img[DIGEST_MAX_LEN];
        test_blob(s, "bad", "{\"os\":\"linux\",\"architecture\":\"arm64\"}", d_cfg);
        test_blob(s, "bad", layer, d_layer);
        BlobInfo bi;
        ASSERT_OK(store_blob_info(s, d_layer, &bi));
        ASSERT_EQ(bi.encoding, BLOB_ENCODING_ZSTD);
        const char *layers[] = { d_layer };
        size_t sizes[] = { big };
        _cleanup_free_ char *img = test_image_manifest(d_cfg, strlen("{\"os\":\"linux\",\"architecture\":\"arm64\"}"), layers,
                                                       sizes, 1, NULL, NULL, NULL);
        ASSERT_OK(test_put_manifest(s, "bad", "v1", img, d_img, &e));
        _cleanup_free_ char *p_layer = store_blob_location(s, d_layer);
        corrupt_file(p_layer, 40);

        /* a raw blob with flipped bytes */
        char d_raw[DIGEST_MAX_LEN];
        test_blob(s, "raw", "short raw content", d_raw);
        _cleanup_free_ char *p_raw = store_blob_location(s, d_raw);
        corrupt_file(p_raw, 2);

        /* a record whose file is gone */
        char d_gone[DIGEST_MAX_LEN];
        test_blob(s, "gone", "this file will vanish", d_gone);
        _cleanup_free_ char *p_gone = store_blob_location(s, d_gone);
        ASSERT_OK(unlink(p_gone));

        /* an orphan file (e.g. a crash between rename and index write) */
        const char *orphan = "orphan content";
        char d_orphan[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, orphan, strlen(orphan), d_orphan));
        _cleanup_free_ char *p_orphan = store_blob_location(s, d_orphan);
        _cleanup_free_ char *orphan_dir = strdup_printf("%s/blobs/sha256/%.2s", dir, digest_hex(d_orphan));
        ASSERT_OK(mkdir_p(orphan_dir, 0755));
        ASSERT_OK(write_file_atomic(p_orphan, orphan, strlen(orphan), 0444));

        /* a manifest whose config blob was removed (GC-style: record and file) */
        _cleanup_free_ char *img2 = test_pushed_image(s, "lost", "config");
        char d_img2[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "lost", "v1", img2, d_img2, &e));
        Manifest *m2 = NULL;
        ASSERT_OK(store_manifest_parsed(s, NULL, d_img2, &m2));
        char d_lost[DIGEST_MAX_LEN];
        snprintf(d_lost, sizeof d_lost, "%s", m2->config.digest);
        manifest_free(m2);
        ASSERT_OK(store_blob_remove(s, d_lost, NULL));

        /* stale temporary and upload files */
        _cleanup_free_ char *p_tmp = strdup_printf("%s/tmp/put-leftover", dir);
        ASSERT_OK(write_file_atomic(p_tmp, "x", 1, 0644));
        _cleanup_free_ char *p_up = strdup_printf("%s/uploads/0b6f7a3c-0000-4000-8000-000000000000", dir);
        ASSERT_OK(write_file_atomic(p_up, "partial", 7, 0644));

        /* check only: everything found, nothing changed */
        FsckReport r;
        ASSERT_OK(store_fsck(s, false, &r));
        ASSERT_EQ(r.corrupt_blobs, 2);
        ASSERT_EQ(count_kind(&r, "corrupt_blob"), 2);
        ASSERT_EQ(r.records_without_file, 1);
        ASSERT_EQ(count_kind(&r, "record_without_file"), 1);
        ASSERT_EQ(r.files_without_record, 1);
        ASSERT_EQ(r.manifests_missing_children, 1);
        ASSERT_EQ(r.stale_temp_files, 2);
        ASSERT_EQ(r.quarantined, 0);
        ASSERT_TRUE(r.blobs_checked >= 7);
        fsck_report_done(&r);
        ASSERT_OK(access(p_layer, F_OK));
        ASSERT_OK(access(p_orphan, F_OK));
        ASSERT_OK(store_blob_info(s, d_gone, NULL));

        /* repair: broken and orphan files are moved into quarantine, dangling records dropped */
        ASSERT_OK(store_fsck(s, true, &r));
        ASSERT_EQ(r.quarantined, 2 + 1 + 2); /* two corrupt, one orphan, two stale */
        fsck_report_done(&r);
        ASSERT_EQ(count_quarantined(dir), 5);
        ASSERT_TRUE(access(p_layer, F_OK) < 0);
        ASSERT_TRUE(access(p_orphan, F_OK) < 0);
        ASSERT_TRUE(access(p_tmp, F_OK) < 0);
        ASSERT_TRUE(access(p_up, F_OK) < 0);
        ASSERT_EQ(store_blob_info(s, d_layer, NULL), -ENOENT);
        ASSERT_EQ(store_blob_info(s, d_gone, NULL), -ENOENT);
        ASSERT_OK(store_blob_info(s, d_cfg, NULL));

        /* second run: no file/record problem left; the two manifests that lost content are reported
         * (repair never deletes manifests) until their blobs are pushed again */
        ASSERT_OK(store_fsck(s, false, &r));
        ASSERT_EQ(r.corrupt_blobs + r.records_without_file + r.files_without_record + r.stale_temp_files, 0);
        ASSERT_EQ(r.manifests_missing_children, 2);
        ASSERT_EQ(json_array_size(r.problems), 2);
        fsck_report_done(&r);

        char d[DIGEST_MAX_LEN];
        test_blob(s, "bad", layer, d);
        ASSERT_STREQ(d, d_layer);
        _cleanup_free_ char *cdata = strdup_printf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"%s\"}", "config");
        test_blob(s, "lost", cdata, d);
        ASSERT_STREQ(d, d_lost);
        ASSERT_OK(store_fsck(s, false, &r));
        ASSERT_EQ(json_array_size(r.problems), 0);
        ASSERT_TRUE(r.bytes_checked >= big);
        fsck_report_done(&r);

        /* the pulled content is intact again */
        BlobReader *br = NULL;
        ASSERT_OK(store_blob_open(s, d_layer, &br));
        char buf[64];
        ASSERT_EQ(blob_reader_pread(br, buf, sizeof buf, 20), (ssize_t) sizeof buf);
        ASSERT_TRUE(memcmp(buf, layer + 20, sizeof buf) == 0);
        blob_reader_free(br);

        free(layer);
        store_free(s);
        rm_rf(dir);
}

/* A manifest whose layer link was removed from its repository (what an unchecked blob DELETE did):
 * reported with the repositories that still have the blob and how to link it back; --repair
 * deletes and links nothing. */
TEST(test_fsck_unlinked_children) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        _cleanup_free_ char *img = test_pushed_image(s, "apps/search", "unlinked");
        char d_img[DIGEST_MAX_LEN];
        StoreError e = {};
        ASSERT_OK(test_put_manifest(s, "apps/search", "1.0.0", img, d_img, &e));
        Manifest *m = NULL;
        ASSERT_OK(store_manifest_parsed(s, NULL, d_img, &m));
        char layer[DIGEST_MAX_LEN];
        snprintf(layer, sizeof layer, "%s", m->layers[0].digest);
        manifest_free(m);
        ASSERT_OK(store_blob_mount(s, "apps/mirror", "apps/search", layer, NULL));

        FsckReport r;
        ASSERT_OK(store_fsck(s, false, &r));
        ASSERT_EQ(r.manifests_unlinked_children, 0);
        ASSERT_EQ(json_array_size(r.problems), 0);
        fsck_report_done(&r);

        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, "apps/search", layer, NULL);
        ASSERT_OK(store_kv_delete(s, INDEX_REPO_BLOB, k, kl));
        for (int repair = 0; repair <= 1; repair++) {
                ASSERT_OK(store_fsck(s, repair, &r));
                ASSERT_EQ(r.manifests_unlinked_children, 1);
                ASSERT_EQ(r.manifests_missing_children, 0);
                ASSERT_EQ(count_kind(&r, "manifest_unlinked_children"), 1);
                json_t *p = json_array_get(r.problems, 0);
                ASSERT_STREQ(json_string_value(json_object_get(p, "digest")), d_img);
                ASSERT_STREQ(json_string_value(json_object_get(p, "repo")), "apps/search");
                ASSERT_STREQ(json_string_value(json_array_get(json_object_get(p, "children"), 0)), layer);
                const char *detail = json_string_value(json_object_get(p, "detail"));
                ASSERT_TRUE(strstr(detail, "linked in apps/mirror") != NULL);
                ASSERT_TRUE(strstr(detail, "?mount=") != NULL);
                ASSERT_EQ(r.quarantined, 0);
                fsck_report_done(&r);
        }
        ASSERT_EQ(store_repo_blob_info(s, "apps/search", layer, NULL), -ENOENT);
        StoredManifest *sm = NULL;
        ASSERT_OK(store_manifest_get(s, "apps/search", d_img, &sm)); /* repair deleted nothing */
        stored_manifest_free(sm);

        /* linked back as the hint says: clean */
        ASSERT_OK(store_blob_mount(s, "apps/search", "apps/mirror", layer, NULL));
        ASSERT_OK(store_fsck(s, false, &r));
        ASSERT_EQ(json_array_size(r.problems), 0);
        fsck_report_done(&r);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_fsck_finds_and_repairs);
        RUN(test_fsck_unlinked_children);
        return 0;
}
