/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "registry-api/acl.h"

typedef struct AclRule {
        char *repos;
        char **users, **groups, **tokens; /* NULL-terminated, may be empty */
        bool anonymous;
        char **allow, **deny;
} AclRule;

typedef struct AclGroup {
        char *name;
        char **members;
} AclGroup;

struct Acl {
        AclRule *rules;
        size_t n_rules;
        AclGroup *groups;
        size_t n_groups;
};

static const char *const simple_actions[] = {
        "pull", "push", "delete", "block", "unblock", "hold", "release", "worm", "gc", "audit", "metrics", "admin",
};

static bool name_is_valid(const char *s) {
        if (!s || !*s || strlen(s) > 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                        return false;
        return true;
}

bool acl_action_is_valid(const char *action) {
        if (!action)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(simple_actions); i++)
                if (streq(action, simple_actions[i]))
                        return true;
        const char *rest = startswith(action, "promote");
        if (!rest)
                rest = startswith(action, "rollback");
        if (!rest)
                return false;
        if (*rest == 0)
                return true;
        if (*rest != ':')
                return false;
        /* <env>[:<pointer>] for promote, <env> for rollback */
        _cleanup_free_ char *env = strdup(rest + 1);
        if (!env)
                return false;
        char *colon = strchr(env, ':');
        if (colon) {
                *colon = 0;
                if (startswith(action, "rollback") || !(streq(colon + 1, "stable") || streq(colon + 1, "candidate")))
                        return false;
        }
        return name_is_valid(env);
}

bool acl_action_covers(const char *granted, const char *wanted) {
        if (streq(granted, "admin") || streq(granted, wanted))
                return true;
        size_t l = strlen(granted);
        return (startswith(granted, "promote") || startswith(granted, "rollback")) && strncmp(granted, wanted, l) == 0 &&
               wanted[l] == ':';
}

static bool list_covers(char **list, const char *wanted) {
        for (char **i = list; i && *i; i++)
                if (acl_action_covers(*i, wanted))
                        return true;
        return false;
}

static bool list_has(char **list, const char *s) {
        for (char **i = list; s && i && *i; i++)
                if (streq(*i, s))
                        return true;
        return false;
}

static const AclGroup *group_find(const Acl *a, const char *name) {
        for (size_t i = 0; i < a->n_groups; i++)
                if (streq(a->groups[i].name, name))
                        return &a->groups[i];
        return NULL;
}

static bool rule_applies(const Acl *a, const AclRule *r, const AclSubject *s, const char *repo) {
        bool repo_ok = *repo ? repo_glob_match(r->repos, repo) : streq(r->repos, "**") || streq(r->repos, "*");
        if (!repo_ok)
                return false;
        if (r->anonymous)
                return true;
        const char *who = s->token_name ? s->token_name : s->user;
        if (s->anonymous || !who)
                return false;
        if (list_has(r->users, who))
                return true;
        if (s->token_name && list_has(r->tokens, s->token_name))
                return true;
        for (char **g = r->groups; g && *g; g++) {
                const AclGroup *grp = group_find(a, *g);
                if (grp && list_has(grp->members, who))
                        return true;
        }
        return false;
}

bool acl_allows(const Acl *a, const AclSubject *subject, const char *repo, const char *action) {
        if (!a || !subject || !action)
                return false;
        bool allowed = false;
        for (size_t i = 0; i < a->n_rules; i++) {
                const AclRule *r = &a->rules[i];
                if (!rule_applies(a, r, subject, repo ? repo : ""))
                        continue;
                if (list_covers(r->deny, action))
                        return false; /* deny wins */
                allowed = allowed || list_covers(r->allow, action);
        }
        return allowed;
}

/* ---- building */

/* A JSON array of strings as a NULL-terminated list (absent: empty list). */
static int strv_from_json(json_t *arr, char ***ret) {
        size_t n = json_array_size(arr), i;
        _cleanup_strv_free_ char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        json_t *e;
        json_array_foreach(arr, i, e)
                if (!(v[i] = strdup(strempty(json_string_value(e)))))
                        return -ENOMEM;
        *ret = steal_pointer(&v);
        return 0;
}

static int rule_from_json(Acl *a, json_t *o, size_t index, AclRule *r, char *err, size_t errlen) {
        r->repos = strdup(strempty(json_string_value(json_object_get(o, "repos"))));
        r->anonymous = json_is_true(json_object_get(o, "anonymous"));
        if (!r->repos || strv_from_json(json_object_get(o, "users"), &r->users) < 0 ||
            strv_from_json(json_object_get(o, "groups"), &r->groups) < 0 ||
            strv_from_json(json_object_get(o, "tokens"), &r->tokens) < 0 ||
            strv_from_json(json_object_get(o, "allow"), &r->allow) < 0 ||
            strv_from_json(json_object_get(o, "deny"), &r->deny) < 0)
                return -ENOMEM;
        const char *lists[] = { "allow", "deny" };
        char **vals[] = { r->allow, r->deny };
        for (size_t k = 0; k < ELEMENTSOF(lists); k++)
                for (size_t i = 0; vals[k][i]; i++)
                        if (!acl_action_is_valid(vals[k][i])) {
                                snprintf(err, errlen,
                                         "auth.acl[%zu].%s[%zu]: unknown action \"%s\" (known: pull, push, delete, "
                                         "promote[:<env>[:stable|candidate]], rollback[:<env>], block, unblock, hold, "
                                         "release, worm, gc, audit, metrics, admin)",
                                         index, lists[k], i, vals[k][i]);
                                return -EINVAL;
                        }
        for (size_t i = 0; r->groups[i]; i++)
                if (!group_find(a, r->groups[i])) {
                        snprintf(err, errlen, "auth.acl[%zu].groups[%zu]: group \"%s\" is not defined in auth.groups",
                                 index, i, r->groups[i]);
                        return -EINVAL;
                }
        return 0;
}

int acl_from_json(json_t *auth, Acl **ret, char *err, size_t errlen) {
        _cleanup_(acl_freep) Acl *a = calloc(1, sizeof(Acl));
        if (!a)
                return -ENOMEM;
        json_t *groups = json_object_get(auth, "groups");
        a->groups = calloc(json_object_size(groups) + 1, sizeof(AclGroup));
        json_t *acl = json_object_get(auth, "acl");
        a->rules = calloc(json_array_size(acl) + 1, sizeof(AclRule));
        if (!a->groups || !a->rules)
                return -ENOMEM;
        const char *name;
        json_t *members;
        json_object_foreach(groups, name, members) {
                AclGroup *g = &a->groups[a->n_groups++];
                if (!(g->name = strdup(name)) || strv_from_json(members, &g->members) < 0)
                        return -ENOMEM;
        }
        size_t i;
        json_t *o;
        json_array_foreach(acl, i, o) {
                int r = rule_from_json(a, o, i, &a->rules[a->n_rules++], err, errlen);
                if (r < 0)
                        return r;
        }
        *ret = steal_pointer(&a);
        return 0;
}

Acl *acl_free(Acl *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n_rules; i++) {
                AclRule *r = &a->rules[i];
                free(r->repos);
                strv_free(r->users);
                strv_free(r->groups);
                strv_free(r->tokens);
                strv_free(r->allow);
                strv_free(r->deny);
        }
        for (size_t i = 0; i < a->n_groups; i++) {
                free(a->groups[i].name);
                strv_free(a->groups[i].members);
        }
        free(a->rules);
        free(a->groups);
        free(a);
        return NULL;
}
