/* SPDX-License-Identifier: MIT */
/* Governance's records through their verbs: channel moves and history, channel tags, the block
 * list, counters, audit reading with filters and cursors, store_stats(). */
#include "storage-test-helpers.h"
#include "storage/governance-records.h"
#include "storage/records.h"

typedef struct Seen {
        size_t n;
        char last[1024];
} Seen;

static int chan_cb(void *u, const ChannelHistoryEntry *e) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s/%s:%s %s %s prev=%s by %s from=%s", e->env, e->svc, e->pointer,
                 strempty(e->action), strempty(e->digest), strna(e->previous), strempty(e->actor),
                 strna(json_string_value(json_object_get(e->record, "from"))));
        ASSERT_TRUE(e->time > 0 && e->seq > 0);
        return 0;
}

static int tag_history_cb(void *u, const TagHistoryEntry *e) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s:%s %s %s", e->repo, e->tag, strempty(e->action), strempty(e->digest));
        return 0;
}

static int channel_tag_cb(void *u, const char *env, const char *svc, const char *tag, const TagInfo *info) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s/%s:%s=%s", env, svc, tag, info->digest);
        return 0;
}

typedef struct AuditSeen {
        size_t n;
        char cursor[128];
        char last_target[512];
} AuditSeen;

static int audit_cb(void *u, const AuditEvent *e) {
        AuditSeen *a = u;
        a->n++;
        snprintf(a->cursor, sizeof a->cursor, "%s", e->cursor);
        snprintf(a->last_target, sizeof a->last_target, "%s", strempty(e->target));
        ASSERT_TRUE(e->time > 0 && e->action && json_is_object(e->record));
        return 0;
}

TEST(test_channel_move) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        const char *chan = "channels/prod/search";
        _cleanup_free_ char *b1 = test_pushed_image(s, chan, "1");
        _cleanup_free_ char *b2 = test_pushed_image(s, chan, "2");
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN];
        ASSERT_OK(digest_buffer(DIGEST_SHA256, b1, strlen(b1), d1));
        ASSERT_OK(digest_buffer(DIGEST_SHA256, b2, strlen(b2), d2));

        /* not linked yet */
        ChannelMove m = { .env = "prod", .svc = "search", .pointer = "stable", .digest = d1, .actor = "rel", .action = "promote" };
        ASSERT_EQ(store_channel_move(s, &m, NULL), -ENOENT);
        ASSERT_OK(test_put_manifest(s, chan, d1, b1, d1, &e));
        ASSERT_OK(test_put_manifest(s, chan, d2, b2, d2, &e));

        /* bad names */
        ChannelMove bad = m;
        bad.env = "pr/od";
        ASSERT_EQ(store_channel_move(s, &bad, NULL), -EINVAL);
        bad = m;
        bad.digest = "sha256:nope";
        ASSERT_EQ(store_channel_move(s, &bad, NULL), -EINVAL);

        clock_set_fake(1735689600LL * (int64_t) NSEC_PER_SEC);
        json_t *detail = json_pack("{s:s, s:s}", "from", "prod:candidate", "repo", "apps/search");
        m.detail = detail;
        json_t *entry = NULL;
        ASSERT_OK(store_channel_move(s, &m, &entry));
        ASSERT_STREQ(json_string_value(json_object_get(entry, "digest")), d1);
        ASSERT_TRUE(json_is_null(json_object_get(entry, "previous")));
        ASSERT_STREQ(json_string_value(json_object_get(entry, "channel")), chan);
        ASSERT_STREQ(json_string_value(json_object_get(entry, "from")), "prod:candidate");
        ASSERT_STREQ(json_string_value(json_object_get(entry, "time")), "2025-01-01T00:00:00Z");
        ASSERT_EQ(json_integer_value(json_object_get(entry, "time_ns")), 1735689600LL * (int64_t) NSEC_PER_SEC);
        json_decref(entry);
        TagInfo t;
        ASSERT_OK(store_tag_get(s, chan, "stable", &t));
        ASSERT_STREQ(t.digest, d1);

        clock_set_fake(1735689601LL * (int64_t) NSEC_PER_SEC);
        m.digest = d2;
        m.action = "rollback";
        m.actor = NULL;
        ASSERT_OK(store_channel_move(s, &m, NULL));
        json_decref(detail);
        ASSERT_OK(store_tag_get(s, chan, "stable", &t));
        ASSERT_STREQ(t.digest, d2);
        ASSERT_EQ(t.updated, 1735689601LL * (int64_t) NSEC_PER_SEC);
        ASSERT_EQ(t.pushed, 1735689600LL * (int64_t) NSEC_PER_SEC);

        /* one tag-history writer: create, then move, like a /v2/ push */
        Seen h = {};
        ASSERT_OK(store_tag_history_foreach(s, NULL, chan, "stable", tag_history_cb, &h));
        ASSERT_EQ(h.n, 2);
        char want[512];
        snprintf(want, sizeof want, "%s:stable move %s", chan, d2);
        ASSERT_STREQ(h.last, want);

        /* channel history, with filters */
        m = (ChannelMove) { .env = "dev", .svc = "search", .pointer = "candidate", .digest = d1, .action = "promote" };
        ASSERT_EQ(store_channel_move(s, &m, NULL), -ENOENT); /* linked in prod only */
        Seen c = {};
        ASSERT_OK(store_channel_history_foreach(s, NULL, NULL, NULL, NULL, chan_cb, &c));
        ASSERT_EQ(c.n, 2);
        snprintf(want, sizeof want, "prod/search:stable rollback %s prev=%s by anonymous from=prod:candidate", d2, d1);
        ASSERT_STREQ(c.last, want);
        c = (Seen) {};
        ASSERT_OK(store_channel_history_foreach(s, NULL, "prod", "search", "stable", chan_cb, &c));
        ASSERT_EQ(c.n, 2);
        c = (Seen) {};
        ASSERT_OK(store_channel_history_foreach(s, NULL, "prod", "search", "candidate", chan_cb, &c));
        ASSERT_EQ(c.n, 0);
        c = (Seen) {};
        ASSERT_OK(store_channel_history_foreach(s, NULL, "prod", "searc", NULL, chan_cb, &c));
        ASSERT_EQ(c.n, 0); /* whole components only */
        c = (Seen) {};
        ASSERT_OK(store_channel_history_foreach(s, NULL, "prod", NULL, NULL, chan_cb, &c));
        ASSERT_EQ(c.n, 2);

        /* the channel tags */
        Seen ct = {};
        ASSERT_OK(store_channel_tags_foreach(s, NULL, NULL, NULL, channel_tag_cb, &ct));
        ASSERT_EQ(ct.n, 1);
        snprintf(want, sizeof want, "prod/search:stable=%s", d2);
        ASSERT_STREQ(ct.last, want);
        ct = (Seen) {};
        ASSERT_OK(store_channel_tags_foreach(s, NULL, "prod", "search", channel_tag_cb, &ct));
        ASSERT_EQ(ct.n, 1);
        ct = (Seen) {};
        ASSERT_OK(store_channel_tags_foreach(s, NULL, "prod", "sear", channel_tag_cb, &ct));
        ASSERT_EQ(ct.n, 0);
        ct = (Seen) {};
        ASSERT_OK(store_channel_tags_foreach(s, NULL, "stg", NULL, channel_tag_cb, &ct));
        ASSERT_EQ(ct.n, 0);

        /* each move was audited in its batch */
        AuditSeen a = {};
        AuditQuery q = { .action = "rollback" };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), 0);
        ASSERT_EQ(a.n, 1);
        ASSERT_STREQ(a.last_target, "channels/prod/search:stable");
        clock_set_fake(0);
        store_free(s);
        rm_rf(dir);
}

static int block_cb(void *u, const BlockInfo *b) {
        Seen *s = u;
        s->n++;
        snprintf(s->last, sizeof s->last, "%s %s %s", b->digest, strempty(b->reason), b->cves && b->cves[0] ? b->cves[0] : "-");
        return 0;
}

TEST(test_blocks_and_counters) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        const char *d = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
        char *cves[] = { "CVE-2024-1", "CVE-2024-2", NULL };
        BlockInfo b = { .reason = "bad", .cves = cves, .severity = "HIGH", .source_format = "trivy",
                        .counts = json_pack("{s:i}", "high", 4), .time = 42, .actor = "sec" };
        snprintf(b.digest, sizeof b.digest, "%s", d);
        BlockInfo got;
        ASSERT_EQ(store_block_get(s, d, &got), -ENOENT);
        ASSERT_OK(store_block_put(s, &b));
        ASSERT_OK(store_block_get(s, d, &got));
        ASSERT_STREQ(got.digest, d);
        ASSERT_STREQ(got.reason, "bad");
        ASSERT_STREQ(got.cves[1], "CVE-2024-2");
        ASSERT_TRUE(got.cves[2] == NULL);
        ASSERT_STREQ(got.severity, "HIGH");
        ASSERT_STREQ(got.source_format, "trivy");
        ASSERT_TRUE(got.source_report == NULL);
        ASSERT_EQ(json_integer_value(json_object_get(got.counts, "high")), 4);
        ASSERT_EQ(got.time, 42);
        ASSERT_STREQ(got.actor, "sec");
        json_t *j = block_info_to_json(&got);
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(j, "source"), "format")), "trivy");
        ASSERT_EQ(json_integer_value(json_object_get(j, "time_ns")), 42);
        ASSERT_EQ(json_array_size(json_object_get(j, "cves")), 2);
        json_decref(j);
        block_info_done(&got);
        json_decref(b.counts);

        Seen seen = {};
        ASSERT_OK(store_blocks_foreach(s, NULL, block_cb, &seen));
        ASSERT_EQ(seen.n, 1);
        ASSERT_OK(store_block_delete(s, d));
        ASSERT_EQ(store_block_delete(s, d), -ENOENT);
        seen = (Seen) {};
        ASSERT_OK(store_blocks_foreach(s, NULL, block_cb, &seen));
        ASSERT_EQ(seen.n, 0);

        uint64_t v = 99;
        ASSERT_OK(store_governance_counter_get(s, "cve_block_events/block", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(store_governance_counter_add(s, "cve_block_events/block", 2, &v));
        ASSERT_EQ(v, 2);
        ASSERT_OK(store_governance_counter_add(s, "cve_block_events/block", 1, NULL));
        store_free(s);
        s = test_store_open(dir, false);
        ASSERT_OK(store_governance_counter_get(s, "cve_block_events/block", &v));
        ASSERT_EQ(v, 3); /* persistent */
        ASSERT_EQ(store_governance_counter_add(s, "", 1, NULL), -EINVAL);
        store_free(s);
        rm_rf(dir);
}

TEST(test_audit_pages) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        for (int i = 0; i < 5; i++) {
                char target[32];
                snprintf(target, sizeof target, "repo-%d", i);
                ASSERT_OK(store_audit(s, i % 2 ? "alice" : "bob", i < 4 ? "block" : "unblock", target, "ok", NULL));
        }
        AuditSeen a = {};
        AuditQuery q = { .action = "block", .limit = 2 };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), 1); /* more follow */
        ASSERT_EQ(a.n, 2);
        ASSERT_STREQ(a.last_target, "repo-1");
        char cursor[128];
        snprintf(cursor, sizeof cursor, "%s", a.cursor);
        q.after = cursor;
        a = (AuditSeen) {};
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), 0); /* the last page: exactly two left */
        ASSERT_EQ(a.n, 2);
        ASSERT_STREQ(a.last_target, "repo-3");

        a = (AuditSeen) {};
        q = (AuditQuery) { .actor = "alice", .target = "repo-" };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), 0);
        ASSERT_EQ(a.n, 2);
        a = (AuditSeen) {};
        q = (AuditQuery) { .target = "-4" };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), 0);
        ASSERT_EQ(a.n, 1);
        a = (AuditSeen) {};
        ASSERT_EQ(store_audit_foreach(s, NULL, audit_cb, &a), 0);
        ASSERT_EQ(a.n, 5);

        q = (AuditQuery) { .after = "abc" };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), -EINVAL);
        q = (AuditQuery) { .after = "zz" };
        ASSERT_EQ(store_audit_foreach(s, &q, audit_cb, &a), -EINVAL);
        store_free(s);
        rm_rf(dir);
}

TEST(test_stats) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        StoreStats st;
        ASSERT_OK(store_stats(s, NULL, NULL, &st));
        ASSERT_EQ(st.blobs, 0);
        ASSERT_EQ(st.manifests, 0);
        _cleanup_free_ char *b1 = test_pushed_image(s, "a", "1");
        _cleanup_free_ char *b2 = test_pushed_image(s, "b", "2");
        char d1[DIGEST_MAX_LEN], d2[DIGEST_MAX_LEN], extra[DIGEST_MAX_LEN];
        ASSERT_OK(test_put_manifest(s, "a", "t", b1, d1, &e));
        ASSERT_OK(test_put_manifest(s, "b", "t", b2, d2, &e));
        test_blob(s, "b", "one more blob", extra);

        ASSERT_OK(store_stats(s, NULL, NULL, &st));
        ASSERT_EQ(st.blobs, 5);
        ASSERT_EQ(st.manifests, 2);
        ASSERT_TRUE(st.manifest_bytes > strlen(b1) + strlen(b2));
        ASSERT_EQ(st.blob_bytes, st.blob_stored_bytes); /* no compression at rest */
        uint64_t all = st.blob_bytes;

        StoreStats sa, sb;
        ASSERT_OK(store_stats(s, NULL, "a", &sa));
        ASSERT_OK(store_stats(s, NULL, "b", &sb));
        ASSERT_EQ(sa.blobs, 2);
        ASSERT_EQ(sb.blobs, 3);
        ASSERT_EQ(sa.manifests, 1);
        ASSERT_EQ(sb.manifests, 1);
        ASSERT_EQ(sa.blob_bytes + sb.blob_bytes, all);
        ASSERT_EQ(sa.manifest_bytes + sb.manifest_bytes, st.manifest_bytes);
        ASSERT_OK(store_stats(s, NULL, "nothing/here", &sa));
        ASSERT_EQ(sa.blobs + sa.manifests, 0);
        ASSERT_EQ(store_stats(s, NULL, "Bad Name", &sa), -EINVAL);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_channel_move);
        RUN(test_blocks_and_counters);
        RUN(test_audit_pages);
        RUN(test_stats);
        return 0;
}
