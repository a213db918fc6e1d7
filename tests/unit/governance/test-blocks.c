/* SPDX-License-Identifier: MIT */
/* The block list against a real store without a server: a block refuses pulls (of the digest and
 * of an index that has it) and promotions, survives a restart, is audited and counted; and the
 * other /v2/ checks: blob deletes in channels/ and under holds, the tag policy and its flags. */
#include "governance-test-helpers.h"
#include "storage/governance-records.h"
#include "storage/holds.h"

static void push_index(Fixture *f, const char *repo, const char *child, char digest[DIGEST_MAX_LEN]) {
        StoredManifest *c = NULL;
        ASSERT_OK(store_manifest_get(f->store, repo, child, &c));
        json_t *m = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s, s:s}}]}", "schemaVersion", 2, "mediaType",
                              MEDIA_TYPE_OCI_INDEX, "manifests", "mediaType", MEDIA_TYPE_OCI_MANIFEST, "digest", child,
                              "size", (json_int_t) c->size, "platform", "os", "linux", "architecture", "amd64");
        stored_manifest_free(c);
        _cleanup_free_ char *body = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        ManifestPut p = { .repo = repo, .data = body, .len = strlen(body), .content_type = MEDIA_TYPE_OCI_INDEX,
                          .reference = "2.0.0" };
        StoreError e = {};
        ASSERT_OK(store_manifest_put(f->store, &p, digest, &e));
}

static int audit_count_cb(void *u, const AuditEvent *e) {
        (*(size_t *) u)++;
        return 0;
}

static uint64_t event_count(json_t *metrics, const char *kind) {
        return (uint64_t) json_integer_value(json_object_get(json_object_get(metrics, "cve_block_events_by_kind"), kind));
}

TEST(test_block_pull_and_promote) {
        Fixture f;
        fixture_setup(&f, NULL);
        char a[DIGEST_MAX_LEN], idx[DIGEST_MAX_LEN], other[DIGEST_MAX_LEN], reason[512];
        push_image(&f, "apps/search", "a", NULL, "1.0.0", a);
        push_image(&f, "apps/search", "o", NULL, "1.0.1", other);
        push_index(&f, "apps/search", a, idx);
        ASSERT_OK(governance_check_pull(f.gov, "apps/search", a, reason, sizeof reason));
        ASSERT_OK(governance_check_pull(NULL, "apps/search", a, reason, sizeof reason)); /* no governance */

        char *cves[] = { "CVE-2024-1234", NULL };
        BlockInfo b = { .reason = "critical CVE in openssl", .cves = cves, .severity = "critical" };
        snprintf(b.digest, sizeof b.digest, "%s", a);
        json_t *rec = NULL;
        ASSERT_EQ(governance_block(f.gov, &b, "sec", &rec), 1);
        ASSERT_STREQ(json_string_value(json_object_get(rec, "actor")), "sec");
        ASSERT_STREQ(json_string_value(json_object_get(rec, "severity")), "critical");
        json_decref(rec);
        ASSERT_EQ(governance_block(f.gov, &b, "sec", NULL), 0); /* replaced */

        /* pulls: the digest, and the index that has it as a child */
        ASSERT_EQ(governance_check_pull(f.gov, "apps/search", a, reason, sizeof reason), -EACCES);
        ASSERT_TRUE(strstr(reason, "is blocked: critical CVE in openssl (CVE-2024-1234)"));
        ASSERT_EQ(governance_check_pull(f.gov, "apps/search", idx, reason, sizeof reason), -EACCES);
        ASSERT_TRUE(startswith(reason, "index child "));
        ASSERT_OK(governance_check_pull(f.gov, "apps/search", other, reason, sizeof reason));

        /* promotion */
        GovernanceMove m;
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", a, "rel", &m), -EPERM);
        char gates[256];
        failed_gates(&m, gates, sizeof gates);
        ASSERT_STREQ(gates, "not_blocked");
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", idx, "rel", &m), -EPERM);
        governance_move_done(&m);

        /* audited, counted, listed */
        size_t n = 0;
        AuditQuery q = { .action = "pull" };
        ASSERT_OK(store_audit_foreach(f.store, &q, audit_count_cb, &n));
        ASSERT_EQ(n, 2);
        n = 0;
        q = (AuditQuery) { .action = "promote", .target = "channels/dev/search" };
        ASSERT_OK(store_audit_foreach(f.store, &q, audit_count_cb, &n));
        ASSERT_EQ(n, 2);
        json_t *metrics = NULL;
        ASSERT_OK(governance_metrics(f.gov, NULL, &metrics));
        ASSERT_EQ(event_count(metrics, "block"), 2);
        ASSERT_EQ(event_count(metrics, "pull_denied"), 2);
        ASSERT_EQ(event_count(metrics, "promote_denied"), 2);
        ASSERT_EQ(json_integer_value(json_object_get(metrics, "blocked_digests")), 1);
        json_decref(metrics);
        json_t *list = governance_block_list(f.gov);
        ASSERT_EQ(json_array_size(list), 1);
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(list, 0), "digest")), a);
        json_decref(list);

        /* a restart loads the block list from the store */
        fixture_reopen_governance(&f);
        ASSERT_EQ(governance_check_pull(f.gov, "apps/search", a, reason, sizeof reason), -EACCES);
        json_t *got = NULL;
        ASSERT_OK(governance_block_get(f.gov, a, &got));
        ASSERT_STREQ(json_string_value(json_array_get(json_object_get(got, "cves"), 0)), "CVE-2024-1234");
        json_decref(got);

        /* unblock */
        json_t *was = NULL;
        ASSERT_OK(governance_unblock(f.gov, a, "sec", &was));
        ASSERT_STREQ(json_string_value(json_object_get(was, "reason")), "critical CVE in openssl");
        json_decref(was);
        ASSERT_EQ(governance_unblock(f.gov, a, "sec", NULL), -ENOENT);
        ASSERT_EQ(governance_block_get(f.gov, a, &got), -ENOENT);
        ASSERT_OK(governance_check_pull(f.gov, "apps/search", idx, reason, sizeof reason));
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, "rel", &m));
        governance_move_done(&m);
        fixture_reopen_governance(&f);
        ASSERT_OK(governance_check_pull(f.gov, "apps/search", a, reason, sizeof reason));
        fixture_teardown(&f);
}

TEST(test_blob_delete_checks) {
        Fixture f;
        fixture_setup(&f, NULL);
        char blob[DIGEST_MAX_LEN], reason[512];
        test_blob(f.store, "apps/search", "some blob", blob);
        ASSERT_OK(governance_check_blob_delete(f.gov, "apps/search", blob, reason, sizeof reason));
        ASSERT_EQ(governance_check_blob_delete(f.gov, "channels/prod/search", blob, reason, sizeof reason), -EPERM);
        ASSERT_TRUE(strstr(reason, "is a channel"));
        StoreError e = {};
        ASSERT_OK(store_hold_add(f.store, blob, "case-1", "incident", 0, "sec", &e));
        ASSERT_EQ(governance_check_blob_delete(f.gov, "apps/search", blob, reason, sizeof reason), -EBUSY);
        ASSERT_TRUE(strstr(reason, "case-1"));
        fixture_teardown(&f);
}

TEST(test_tag_policy) {
        Fixture f;
        fixture_setup(&f, NULL); /* the default policy: semver tags immutable, latest forbidden in apps/ */
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", NULL, "1.0.0", a);
        _cleanup_free_ char *body = test_pushed_image(f.store, "apps/search", "b");
        StoreError e = {};
        ASSERT_EQ(test_put_manifest(f.store, "apps/search", "1.0.0", body, b, &e), -EPERM);
        ASSERT_TRUE(strstr(e.message, "is immutable"));
        e = (StoreError) {};
        ASSERT_EQ(test_put_manifest(f.store, "apps/search", "latest", body, b, &e), -EPERM);
        ASSERT_TRUE(strstr(e.message, "is forbidden in apps/search"));
        ASSERT_OK(test_put_manifest(f.store, "apps/search", "dev", body, b, &e)); /* moving */
        ASSERT_EQ(store_tag_delete(f.store, "apps/search", "1.0.0", NULL, 0, &e), -EPERM);

        /* channels/ is written by promotion only */
        _cleanup_free_ char *cbody = test_pushed_image(f.store, "channels/dev/search", "c");
        char c[DIGEST_MAX_LEN];
        e = (StoreError) {};
        ASSERT_EQ(test_put_manifest(f.store, "channels/dev/search", "candidate", cbody, c, &e), -EPERM);
        ASSERT_TRUE(strstr(e.message, "is a channel"));
        ManifestPut p = { .repo = "channels/dev/search", .data = cbody, .len = strlen(cbody),
                          .content_type = MEDIA_TYPE_OCI_MANIFEST, .reference = "candidate", .flags = STORE_WRITE_CHANNEL_MOVE };
        ASSERT_OK(store_manifest_put(f.store, &p, c, &e));

        /* what retention decided goes: the GC deletes with STORE_WRITE_MAINTENANCE */
        ASSERT_OK(store_tag_delete(f.store, "apps/search", "1.0.0", "gc", STORE_WRITE_MAINTENANCE, &e));
        ASSERT_OK(store_manifest_delete(f.store, "channels/dev/search", c, "gc", STORE_WRITE_MAINTENANCE, &e));
        /* a name once used stays remembered */
        e = (StoreError) {};
        ASSERT_EQ(test_put_manifest(f.store, "apps/search", "1.0.0", body, b, &e), -EPERM);
        ASSERT_TRUE(strstr(e.message, "was used before"));

        /* every refusal is audited */
        size_t n = 0;
        AuditQuery q = { .action = "tag_policy" };
        ASSERT_OK(store_audit_foreach(f.store, &q, audit_count_cb, &n));
        ASSERT_EQ(n, 5);
        /* governance_free() takes the hook away */
        f.gov = governance_free(f.gov);
        ASSERT_OK(test_put_manifest(f.store, "apps/search", "latest", body, b, &e));
        store_free(f.store);
        config_free(f.config);
        rm_rf(f.dir);
        free(f.dir);
}

int main(void) {
        RUN(test_block_pull_and_promote);
        RUN(test_blob_delete_checks);
        RUN(test_tag_policy);
        return 0;
}
