/* SPDX-License-Identifier: MIT */
#pragma once

/* The access rules of the `auth` configuration section: who may do which action on which
 * repositories. Pure: built from JSON (already checked by the configuration schema), evaluated
 * without I/O; immutable after acl_from_json(), so threads share it.
 *
 * A rule: {"repos": glob, "users": [...], "groups": [...], "tokens": [...], "anonymous": bool,
 * "allow": [actions], "deny": [actions]}. It applies to a request when its glob matches the
 * repository and its subject does: the user (or API token name) is in "users", one of the user's
 * groups ("groups" map of the section) is in "groups", the API token's name is in "tokens", or
 * "anonymous" is true (anonymous rules apply to everyone, signed in or not: what anonymous clients
 * may do, users may too). Among the rules that apply, a denied action is denied whatever allows
 * it; otherwise an allowed one is allowed; otherwise it is denied (the default).
 *
 * Actions: pull, push, delete, promote:<env>[:<pointer>], rollback:<env>, block, unblock, hold,
 * release, worm, gc, audit, metrics, admin. A rule's "promote" covers every promote:*,
 * "promote:prod" covers promote:prod:stable and promote:prod:candidate; the same for rollback.
 * "admin" covers every action. Registry-wide actions (block, unblock, hold, release, worm, gc
 * without a repository, audit, metrics, admin) are checked with repository "" which only the
 * globs "**" and "*" match. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

typedef struct Acl Acl;

/* Who is asking. groups are looked up in the Acl (the section's "groups" map). */
typedef struct AclSubject {
        const char *user;       /* htpasswd user or client certificate user, NULL if none */
        const char *token_name; /* API token, NULL if none (its name also matches "users") */
        bool anonymous;         /* neither: only anonymous rules apply */
} AclSubject;

/* Builds the rules from the auth section (may be NULL: no rules). -EINVAL with a JSON path in err
 * for what the schema cannot see (an unknown action, a group that is not defined). */
int acl_from_json(json_t *auth, Acl **ret, char *err, size_t errlen);
Acl *acl_free(Acl *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Acl *, acl_free);

/* Whether action (e.g. "promote:prod:stable") is a known action. */
bool acl_action_is_valid(const char *action);
/* Whether a granted action covers a wanted one: the same, "admin", or "promote"/"rollback" with a
 * shorter <env>[:<pointer>] ("promote:prod" covers "promote:prod:stable"). */
bool acl_action_covers(const char *granted, const char *wanted);
/* Whether subject may do action on repo ("" for registry-wide actions). */
bool acl_allows(const Acl *a, const AclSubject *subject, const char *repo, const char *action);
