/* SPDX-License-Identifier: MIT */
/* Rollback against a real store without a server: to the previous digest, to a named one of the
 * history, and every reason there is nothing to roll back to. */
#include "governance-test-helpers.h"
#include "storage/governance-records.h"

typedef struct Fixture3 {
        Fixture f;
        char a[DIGEST_MAX_LEN], b[DIGEST_MAX_LEN], c[DIGEST_MAX_LEN], never[DIGEST_MAX_LEN];
} Fixture3;

/* dev:candidate was a, then b, then c; `never` is a manifest of the repository that never was there */
static void setup3(Fixture3 *x) {
        fixture_setup(&x->f, NULL);
        push_image(&x->f, "apps/search", "a", NULL, "1.0.0", x->a);
        push_image(&x->f, "apps/search", "b", NULL, "1.0.1", x->b);
        push_image(&x->f, "apps/search", "c", NULL, "1.0.2", x->c);
        push_image(&x->f, "apps/search", "never", NULL, "1.0.3", x->never);
        const char *const order[] = { x->a, x->b, x->c };
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                GovernanceMove m;
                clock_set_fake(T0 + (int64_t) i * MINUTE);
                ASSERT_OK(governance_promote(x->f.gov, "apps/search", "repo", "dev", order[i], "ci", &m));
                governance_move_done(&m);
        }
}

static int count_cb(void *u, const ChannelHistoryEntry *e) {
        (*(size_t *) u)++;
        return 0;
}

TEST(test_rollback_previous) {
        Fixture3 x;
        setup3(&x);
        char buf[DIGEST_MAX_LEN];
        GovernanceMove m;
        ASSERT_OK(governance_rollback(x.f.gov, "apps/search", "dev:candidate", "oncall", &m));
        ASSERT_TRUE(m.changed);
        ASSERT_STREQ(m.digest, x.b);
        ASSERT_STREQ(m.previous, x.c);
        ASSERT_STREQ(m.to, "dev:candidate");
        ASSERT_STREQ(m.reference, "channels/dev/search:candidate");
        ASSERT_TRUE(m.duration_ms >= 0);
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "action")), "rollback");
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "rolled_back_from")), x.c);
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "previous")), x.c);
        ASSERT_STREQ(json_string_value(json_object_get(m.entry, "actor")), "oncall");
        ASSERT_TRUE(json_is_number(json_object_get(m.entry, "duration_ms")));
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&x.f, "search", "dev:candidate", buf), x.b);

        /* the latest other digest of the history: c again (a rollback can be undone the same way) */
        ASSERT_OK(governance_rollback(x.f.gov, "search", "dev", "oncall", &m));
        ASSERT_STREQ(m.digest, x.c);
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&x.f, "search", "dev:candidate", buf), x.c);

        size_t n = 0;
        ASSERT_OK(store_channel_history_foreach(x.f.store, NULL, "dev", "search", "candidate", count_cb, &n));
        ASSERT_EQ(n, 5);
        json_t *metrics = NULL;
        ASSERT_OK(governance_metrics(x.f.gov, "apps/search", &metrics));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(metrics, "rollback_time"), "count")), 2);
        json_decref(metrics);
        fixture_teardown(&x.f);
}

TEST(test_rollback_named) {
        Fixture3 x;
        setup3(&x);
        char buf[DIGEST_MAX_LEN];
        GovernanceMove m;
        _cleanup_free_ char *to_a = strdup_printf("dev:candidate@%s", x.a);
        ASSERT_OK(governance_rollback(x.f.gov, "apps/search", to_a, NULL, &m));
        ASSERT_STREQ(m.digest, x.a);
        ASSERT_STREQ(m.previous, x.c);
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&x.f, "search", "dev:candidate", buf), x.a);

        /* the current one */
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", to_a, NULL, &m), -EALREADY);
        ASSERT_EQ(m.outcome, GOVERNANCE_ALREADY_CURRENT);
        ASSERT_STREQ(governance_outcome_to_string(m.outcome), "ALREADY_CURRENT");
        governance_move_done(&m);
        /* one that was never there */
        _cleanup_free_ char *to_never = strdup_printf("dev:candidate@%s", x.never);
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", to_never, NULL, &m), -ENOENT);
        ASSERT_EQ(m.outcome, GOVERNANCE_NOT_IN_HISTORY);
        ASSERT_TRUE(strstr(m.message, "rollback only goes to a digest from its history"));
        governance_move_done(&m);
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", "dev:candidate@sha256:12", NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_DIGEST_INVALID);
        governance_move_done(&m);

        /* after a restart the history comes from the store */
        fixture_reopen_governance(&x.f);
        _cleanup_free_ char *to_b = strdup_printf("dev@%s", x.b);
        ASSERT_OK(governance_rollback(x.f.gov, "apps/search", to_b, NULL, &m));
        ASSERT_STREQ(m.digest, x.b);
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&x.f, "search", "dev:candidate", buf), x.b);
        fixture_teardown(&x.f);
}

TEST(test_rollback_nothing) {
        Fixture3 x;
        setup3(&x);
        GovernanceMove m;
        /* stg was never set */
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", "stg", NULL, &m), -ENOENT);
        ASSERT_EQ(m.outcome, GOVERNANCE_NOTHING_TO_ROLL_BACK);
        ASSERT_TRUE(strstr(m.message, "stg:candidate of search is not set"));
        governance_move_done(&m);
        /* stg had one digest only */
        ASSERT_OK(governance_promote(x.f.gov, "apps/search", "dev", "stg", x.c, NULL, &m));
        governance_move_done(&m);
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", "stg:candidate", NULL, &m), -ENOENT);
        ASSERT_EQ(m.outcome, GOVERNANCE_NOTHING_TO_ROLL_BACK);
        ASSERT_TRUE(strstr(m.message, "no previous digest in its history"));
        governance_move_done(&m);
        /* not a pointer */
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", "repo", NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_STEP_INVALID);
        governance_move_done(&m);
        ASSERT_EQ(governance_rollback(x.f.gov, "Bad/Name", "dev", NULL, &m), -EINVAL);
        ASSERT_EQ(m.outcome, GOVERNANCE_NAME_INVALID);
        governance_move_done(&m);
        fixture_teardown(&x.f);
}

TEST(test_rollback_to_blocked) {
        Fixture3 x;
        setup3(&x);
        char buf[DIGEST_MAX_LEN];
        BlockInfo b = { .reason = "CVE in libfoo" };
        snprintf(b.digest, sizeof b.digest, "%s", x.b);
        ASSERT_EQ(governance_block(x.f.gov, &b, "sec", NULL), 1);
        GovernanceMove m;
        ASSERT_EQ(governance_rollback(x.f.gov, "apps/search", "dev", NULL, &m), -EPERM);
        ASSERT_EQ(m.outcome, GOVERNANCE_GATES_FAILED);
        ASSERT_TRUE(strstr(m.message, "not_blocked"));
        ASSERT_TRUE(strstr(m.message, "CVE in libfoo"));
        governance_move_done(&m);
        ASSERT_STREQ(pointer_of(&x.f, "search", "dev:candidate", buf), x.c);
        /* a named digest that is not blocked still works */
        _cleanup_free_ char *to_a = strdup_printf("dev@%s", x.a);
        ASSERT_OK(governance_rollback(x.f.gov, "apps/search", to_a, NULL, &m));
        governance_move_done(&m);
        fixture_teardown(&x.f);
}

int main(void) {
        RUN(test_rollback_previous);
        RUN(test_rollback_named);
        RUN(test_rollback_nothing);
        RUN(test_rollback_to_blocked);
        return 0;
}
