/* SPDX-License-Identifier: MIT */
/* Promotion against a real store without a server: the release chain step by step, each gate
 * refusing for its reason and then passing, the soak time on the fake clock, and the refusals
 * of input and state. */
#include "governance-test-helpers.h"
#include "storage/governance-records.h"

static int history_cb(void *u, const ChannelHistoryEntry *e) {
        json_t *arr = u;
        json_array_append_new(arr, json_deep_copy(e->record));
        return 0;
}

static json_t *history(Fixture *f, const char *env, const char *pointer) {
        json_t *arr = json_array();
        ASSERT_OK(store_channel_history_foreach(f->store, NULL, env, "search", pointer, history_cb, arr));
        return arr;
}

TEST(test_promote_chain) {
        Fixture f;
        fixture_setup(&f, NULL); /* the default gates: not_blocked, prod:stable soaks 15m at prod:candidate */
        clock_set_fake(T0);
        char a[DIGEST_MAX_LEN], buf[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", GOOD_LABELS, "1.0.0", a);

        GovernanceMove m;
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, "rel", &m));
        ASSERT_TRUE(m.changed);
        ASSERT_EQ(m.outcome, GOVERNANCE_OK);
        ASSERT_STREQ(m.app_repo, "apps/search");
        ASSERT_STREQ(m.svc, "search");
        ASSERT_STREQ(m.from, "repo");
        ASSERT_STREQ(m.to, "dev:candidate");
        ASSERT_STREQ(m.reference, "channels/dev/search:candidate");
        ASSERT_STREQ(m.previous, "");
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "digest")), a);
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "actor")), "rel");
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "repo")), "apps/search");
        ASSERT_EQ(json_array_size(m.gates.passed), 1); /* dev has no gates but not_blocked, on by default */
        ASSERT_STREQ(json_string_value(json_array_get(m.gates.passed, 0)), "not_blocked");
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&f, "search", "dev:candidate", buf), a);
        /* the closure was linked into the channel repository */
        StoredManifest *sm = NULL;
        ASSERT_OK(store_manifest_get(f.store, "channels/dev/search", "candidate", &sm));
        ASSERT_STREQ(sm->digest, a);
        stored_manifest_free(sm);

        /* again: already there, nothing written */
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, "rel", &m));
        ASSERT_FALSE(m.changed);
        governance_move_done(&m);
        json_t *h = history(&f, "dev", "candidate");
        ASSERT_EQ(json_array_size(h), 1);
        json_decref(h);

        ASSERT_OK(governance_promote(f.gov, "apps/search", "dev", "stg", a, "rel", &m));
        ASSERT_STREQ(m.from, "dev:candidate");
        ASSERT_STREQ(m.to, "stg:candidate");
        governance_move_done(&m);
        clock_set_fake(T0 + 1 * MINUTE);
        ASSERT_OK(governance_promote(f.gov, "channels/stg/search", "stg", "prod:candidate", a, "rel", &m));
        governance_move_done(&m);

        /* soak: 15m at prod:candidate */
        clock_set_fake(T0 + 6 * MINUTE);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "prod:candidate", "prod:stable", a, "rel", &m), -EPERM);
        ASSERT_EQ(m.outcome, GOVERNANCE_GATES_FAILED);
        char gates[256];
        failed_gates(&m, gates, sizeof gates);
        ASSERT_STREQ(gates, "soak");
        ASSERT_TRUE(strstr(m.message, "soaked 5m00s at prod:candidate, needs 15m00s (ready at 2025-01-01T00:16:00Z)"));
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&f, "search", "prod:stable", buf), "");

        clock_set_fake(T0 + 16 * MINUTE);
        ASSERT_OK(governance_promote(f.gov, "apps/search", "prod:candidate", "prod:stable", a, "rel", &m));
        ASSERT_TRUE(m.changed);
        ASSERT_STREQ(json_string_value(json_array_get(m.gates.passed, 1)), "soak");
        /* the end of the chain: the latency since the first push */
        ASSERT_TRUE(json_number_value(json_object_get(m.entry, "latency_s")) == 16 * 60);
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&f, "search", "prod:stable", buf), a);

        h = history(&f, "prod", "stable");
        ASSERT_EQ(json_array_size(h), 1);
        json_t *e = json_array_get(h, 0);
        ASSERT_STREQ(json_string_value(json_object_get(e, "action")), "promote");
        ASSERT_STREQ(json_string_value(json_object_get(e, "from")), "prod:candidate");
        ASSERT_TRUE(json_is_null(json_object_get(e, "previous")));
        json_decref(h);

        /* the end of the chain is the end */
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "prod:stable", "prod:stable", a, "rel", &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_STEP_INVALID);
        ASSERT_TRUE(strstr(m.message, "end of the release chain"));
        governance_move_done(&m);

        json_t *metrics = NULL;
        ASSERT_OK(governance_metrics(f.gov, "apps/search", &metrics));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(metrics, "image_count_by_env"), "prod")), 1);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(metrics, "promotion_latency"), "count")), 1);
        json_decref(metrics);
        fixture_teardown(&f);
}

TEST(test_promote_refusals) {
        Fixture f;
        fixture_setup(&f, NULL);
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", NULL, NULL, a);
        push_image(&f, "apps/other", "b", NULL, NULL, b);
        GovernanceMove m;

        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", "sha256:abc", NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_DIGEST_INVALID);
        ASSERT_STREQ(governance_outcome_to_string(m.outcome), "DIGEST_INVALID");
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "Apps/Search", "repo", "dev", a, NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_NAME_INVALID);
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "qa", "dev", a, NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_STEP_INVALID);
        ASSERT_TRUE(strstr(m.message, "repo → dev:candidate → stg:candidate → prod:candidate → prod:stable"));
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "prod:stable", a, NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_STEP_INVALID);
        ASSERT_TRUE(strstr(m.message, "one step at a time"));
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "repo", a, NULL, &m), -EINVAL);
        governance_move_done(&m);

        /* not at the source: b is a manifest of apps/other only; a is not at dev yet */
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", b, NULL, &m), -ENOENT);
        ASSERT_EQ(m.outcome, GOVERNANCE_NOT_AT_SOURCE);
        ASSERT_STREQ(governance_outcome_to_string(m.outcome), "NOT_AT_SOURCE");
        governance_move_done(&m);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "dev", "stg", a, NULL, &m), -ENOENT);
        ASSERT_EQ(m.outcome, GOVERNANCE_NOT_AT_SOURCE);
        ASSERT_TRUE(json_is_null(json_object_get(m.detail, "current")));
        ASSERT_STREQ(json_string_value(json_object_get(m.detail, "from")), "dev:candidate");
        governance_move_done(&m);
        fixture_teardown(&f);
}

TEST(test_gate_sbom) {
        Fixture f;
        fixture_setup(&f, "{\"channels\":{\"gates\":{\"dev\":{\"sbom\":true}}}}");
        char a[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", NULL, NULL, a);
        GovernanceMove m;
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m), -EPERM);
        char gates[256];
        failed_gates(&m, gates, sizeof gates);
        ASSERT_STREQ(gates, "sbom");
        ASSERT_TRUE(strstr(m.message, "no SBOM referrer of"));
        ASSERT_STREQ(json_string_value(json_array_get(json_object_get(m.detail, "passed_gates"), 0)), "not_blocked");
        governance_move_done(&m);

        push_sbom(&f, "apps/search", a);
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m));
        ASSERT_STREQ(json_string_value(json_array_get(m.gates.passed, 1)), "sbom");
        governance_move_done(&m);
        fixture_teardown(&f);
}

TEST(test_gate_labels) {
        Fixture f;
        fixture_setup(&f, "{\"channels\":{\"gates\":{\"dev\":{\"labels\":true},\"stg\":{\"labels\":[\"org.example.team\"]}}}}");
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", "{\"org.opencontainers.image.version\":\"1.0.0\"}", NULL, a);
        push_image(&f, "apps/search", "b", GOOD_LABELS, NULL, b);
        GovernanceMove m;
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m), -EPERM);
        char gates[256];
        failed_gates(&m, gates, sizeof gates);
        ASSERT_STREQ(gates, "labels");
        ASSERT_TRUE(strstr(m.message, "org.opencontainers.image.revision"));
        ASSERT_FALSE(strstr(m.message, "org.opencontainers.image.version"));
        governance_move_done(&m);

        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", b, NULL, &m));
        governance_move_done(&m);
        /* stg wants a label b does not have */
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "dev", "stg", b, NULL, &m), -EPERM);
        ASSERT_TRUE(strstr(m.message, "org.example.team"));
        governance_move_done(&m);
        fixture_teardown(&f);
}

TEST(test_gate_signature) {
        EVP_PKEY *k1 = test_key_new(), *k2 = test_key_new();
        _cleanup_free_ char *pem = test_key_public_pem(k1);
        json_t *cfg = json_pack("{s:{s:[s], s:{s:{s:b}}}}", "channels", "public_keys", pem, "gates", "dev", "signature", 1);
        _cleanup_free_ char *cfgs = json_dumps(cfg, JSON_COMPACT);
        json_decref(cfg);
        Fixture f;
        fixture_setup(&f, cfgs);
        char a[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", NULL, NULL, a);
        GovernanceMove m;

        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m), -EPERM);
        char gates[256];
        failed_gates(&m, gates, sizeof gates);
        ASSERT_STREQ(gates, "signature");
        ASSERT_TRUE(strstr(m.message, "no cosign signature of"));
        governance_move_done(&m);

        /* signed, but with a key that is not configured */
        push_signature(&f, "apps/search", a, k2);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m), -EPERM);
        ASSERT_TRUE(strstr(m.message, "1 signature(s) found, none verifies"));
        governance_move_done(&m);

        /* the cosign tag is the same for every signer: the good one replaces it */
        _cleanup_free_ char *sigtag = strdup_printf("sha256-%s.sig", digest_hex(a));
        StoreError e = {};
        ASSERT_OK(store_tag_delete(f.store, "apps/search", sigtag, NULL, 0, &e));
        push_signature(&f, "apps/search", a, k1);
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m));
        ASSERT_STREQ(json_string_value(json_array_get(m.gates.passed, 1)), "signature");
        governance_move_done(&m);

        json_t *metrics = NULL;
        ASSERT_OK(governance_metrics(f.gov, NULL, &metrics));
        ASSERT_TRUE(json_number_value(json_object_get(metrics, "signed_artifacts")) == 1.0);
        ASSERT_TRUE(json_number_value(json_object_get(metrics, "sbom_coverage")) == 0.0);
        json_decref(metrics);
        fixture_teardown(&f);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(k2);
}

TEST(test_gate_soak) {
        Fixture f;
        fixture_setup(&f, "{\"channels\":{\"gates\":{\"stg\":{\"soak\":\"1h\"}}}}");
        char a[DIGEST_MAX_LEN];
        clock_set_fake(T0);
        push_image(&f, "apps/search", "a", NULL, NULL, a);
        GovernanceMove m;
        ASSERT_OK(governance_promote(f.gov, "apps/search", "repo", "dev", a, NULL, &m));
        governance_move_done(&m);
        clock_set_fake(T0 + 59 * MINUTE);
        ASSERT_EQ(governance_promote(f.gov, "apps/search", "dev", "stg", a, NULL, &m), -EPERM);
        ASSERT_TRUE(strstr(m.message, "soaked 59m00s at dev:candidate, needs 1h00m00s"));
        governance_move_done(&m);
        /* a restart does not reset the clock of the soak: it is the history's time */
        fixture_reopen_governance(&f);
        clock_set_fake(T0 + 60 * MINUTE);
        ASSERT_OK(governance_promote(f.gov, "apps/search", "dev", "stg", a, NULL, &m));
        governance_move_done(&m);
        fixture_teardown(&f);
}

TEST(test_auto_dev_candidate) {
        Fixture f;
        fixture_setup(&f, "{\"channels\":{\"auto_dev_candidate\":true}}");
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN], buf[DIGEST_MAX_LEN];
        push_image(&f, "apps/search", "a", NULL, "1.2.3", a);
        push_image(&f, "apps/search", "b", NULL, "dev", b);
        const char *release[] = { "1.2.3" }, *moving[] = { "dev" };
        governance_after_manifest_put(f.gov, "apps/search", b, moving, 1, "ci"); /* not an immutable tag */
        ASSERT_STREQ(pointer_of(&f, "search", "dev:candidate", buf), "");
        governance_after_manifest_put(f.gov, "apps/search", a, release, 1, "ci");
        ASSERT_STREQ(pointer_of(&f, "search", "dev:candidate", buf), a);
        json_t *h = history(&f, "dev", "candidate");
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(h, 0), "action")), "auto_dev_candidate");
        json_decref(h);
        fixture_teardown(&f);
}

int main(void) {
        RUN(test_promote_chain);
        RUN(test_promote_refusals);
        RUN(test_gate_sbom);
        RUN(test_gate_labels);
        RUN(test_gate_signature);
        RUN(test_gate_soak);
        RUN(test_auto_dev_candidate);
        return 0;
}
