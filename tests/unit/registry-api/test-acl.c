/* SPDX-License-Identifier: MIT */
#include <jansson.h>

#include "registry-api/acl.h"
#include "tests/unit/tests.h"

static Acl *acl_of(const char *json) {
        json_error_t je;
        json_t *j = json_loads(json, 0, &je);
        ASSERT_TRUE(j);
        Acl *a = NULL;
        char err[256] = "";
        int r = acl_from_json(j, &a, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "acl: %s\n", err);
        ASSERT_OK(r);
        json_decref(j);
        return a;
}

static bool may(const Acl *a, const char *user, const char *repo, const char *action) {
        AclSubject s = { .user = user, .anonymous = user == NULL };
        return acl_allows(a, &s, repo, action);
}

/* The example of the issue: release engineers, CI, security, public pulls, admin. */
static const char *const team =
        "{ \"groups\": { \"release\": [\"alice\"], \"security\": [\"sam\"] },"
        "  \"acl\": ["
        "    { \"repos\": \"**\", \"groups\": [\"release\"], \"allow\": [\"pull\", \"promote:stg\", \"promote:prod:candidate\", \"rollback:prod\"] },"
        "    { \"repos\": \"**\", \"users\": [\"rel-manager\"], \"allow\": [\"promote:prod\"] },"
        "    { \"repos\": \"apps/**\", \"users\": [\"ci-search\"], \"allow\": [\"pull\", \"push\"] },"
        "    { \"repos\": \"apps/secret\", \"users\": [\"ci-search\"], \"deny\": [\"pull\"] },"
        "    { \"repos\": \"**\", \"groups\": [\"security\"], \"allow\": [\"pull\", \"block\", \"unblock\", \"hold\", \"release\", \"worm\", \"audit\"] },"
        "    { \"repos\": \"public/**\", \"anonymous\": true, \"allow\": [\"pull\"] },"
        "    { \"repos\": \"**\", \"users\": [\"admin\"], \"allow\": [\"admin\"] } ] }";

TEST(test_rules) {
        Acl *a = acl_of(team);
        /* CI pushes its apps, not elsewhere; deny wins over allow */
        ASSERT_TRUE(may(a, "ci-search", "apps/search", "push"));
        ASSERT_TRUE(may(a, "ci-search", "apps/team/search", "pull"));
        ASSERT_FALSE(may(a, "ci-search", "libs/base", "push"));
        ASSERT_FALSE(may(a, "ci-search", "apps/search", "delete"));
        ASSERT_FALSE(may(a, "ci-search", "apps/secret", "pull"));
        ASSERT_TRUE(may(a, "ci-search", "apps/secret", "push"));
        /* promotion rights by environment and pointer */
        ASSERT_TRUE(may(a, "alice", "apps/search", "promote:stg:candidate"));
        ASSERT_TRUE(may(a, "alice", "apps/search", "promote:prod:candidate"));
        ASSERT_FALSE(may(a, "alice", "apps/search", "promote:prod:stable"));
        ASSERT_TRUE(may(a, "rel-manager", "apps/search", "promote:prod:stable"));
        ASSERT_FALSE(may(a, "rel-manager", "apps/search", "promote:stg:candidate"));
        ASSERT_TRUE(may(a, "alice", "apps/search", "rollback:prod"));
        ASSERT_FALSE(may(a, "alice", "apps/search", "rollback:stg"));
        /* registry-wide actions */
        ASSERT_TRUE(may(a, "sam", "", "block"));
        ASSERT_FALSE(may(a, "alice", "", "block"));
        ASSERT_FALSE(may(a, "sam", "", "gc"));
        ASSERT_TRUE(may(a, "admin", "", "gc"));
        ASSERT_TRUE(may(a, "admin", "apps/x", "promote:prod:stable"));
        /* anonymous rules apply to everyone; nothing else to anonymous */
        ASSERT_TRUE(may(a, NULL, "public/tools", "pull"));
        ASSERT_FALSE(may(a, NULL, "public/tools", "push"));
        ASSERT_FALSE(may(a, NULL, "apps/search", "pull"));
        ASSERT_TRUE(may(a, "ci-search", "public/tools", "pull"));
        /* unknown users get nothing; the default is deny */
        ASSERT_FALSE(may(a, "mallory", "apps/search", "pull"));
        /* an API token is matched by its name in users, or in tokens */
        AclSubject t = { .token_name = "ci-search" };
        ASSERT_TRUE(acl_allows(a, &t, "apps/search", "push"));
        acl_free(a);
        Acl *b = acl_of("{ \"acl\": [ { \"repos\": \"apps/**\", \"tokens\": [\"robot\"], \"allow\": [\"pull\"] } ] }");
        AclSubject robot = { .token_name = "robot" }, user_robot = { .user = "robot" };
        ASSERT_TRUE(acl_allows(b, &robot, "apps/x", "pull"));
        ASSERT_FALSE(acl_allows(b, &user_robot, "apps/x", "pull")); /* "tokens" names tokens only */
        acl_free(b);
}

TEST(test_actions) {
        ASSERT_TRUE(acl_action_is_valid("pull"));
        ASSERT_TRUE(acl_action_is_valid("promote"));
        ASSERT_TRUE(acl_action_is_valid("promote:prod"));
        ASSERT_TRUE(acl_action_is_valid("promote:prod:stable"));
        ASSERT_TRUE(acl_action_is_valid("rollback:prod"));
        ASSERT_FALSE(acl_action_is_valid("rollback:prod:stable"));
        ASSERT_FALSE(acl_action_is_valid("promote:prod:latest"));
        ASSERT_FALSE(acl_action_is_valid("promote:"));
        ASSERT_FALSE(acl_action_is_valid("promote:Prod"));
        ASSERT_FALSE(acl_action_is_valid("pul"));
        ASSERT_FALSE(acl_action_is_valid(""));
        ASSERT_TRUE(acl_action_covers("promote", "promote:prod:stable"));
        ASSERT_TRUE(acl_action_covers("promote:prod", "promote:prod:candidate"));
        ASSERT_FALSE(acl_action_covers("promote:prod", "promote:production:stable"));
        ASSERT_FALSE(acl_action_covers("promote:prod:candidate", "promote:prod"));
        ASSERT_TRUE(acl_action_covers("admin", "gc"));
        ASSERT_FALSE(acl_action_covers("push", "pull"));
}

TEST(test_refusals) {
        const char *bad[] = {
                "{ \"acl\": [ { \"repos\": \"**\", \"users\": [\"a\"], \"allow\": [\"puhs\"] } ] }",
                "{ \"acl\": [ { \"repos\": \"**\", \"groups\": [\"nobody\"], \"allow\": [\"pull\"] } ] }",
                "{ \"acl\": [ { \"repos\": \"**\", \"users\": [\"a\"], \"deny\": [\"promote:prod:latest\"] } ] }",
        };
        const char *paths[] = { "auth.acl[0].allow[0]", "auth.acl[0].groups[0]", "auth.acl[0].deny[0]" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                json_t *j = json_loads(bad[i], 0, NULL);
                Acl *a = NULL;
                char err[256] = "";
                ASSERT_EQ(acl_from_json(j, &a, err, sizeof err), -EINVAL);
                ASSERT_TRUE(strstr(err, paths[i]) == err);
                json_decref(j);
        }
        /* no auth section: no rules, nothing allowed by them */
        Acl *none = NULL;
        char err[64];
        ASSERT_OK(acl_from_json(NULL, &none, err, sizeof err));
        ASSERT_FALSE(may(none, "admin", "", "admin"));
        acl_free(none);
}

int main(void) {
        RUN(test_rules);
        RUN(test_actions);
        RUN(test_refusals);
        return 0;
}
