/* SPDX-License-Identifier: MIT */
/* The tag policy (config "policy": rules by repository glob with immutable, forbidden and moving
 * tag patterns) and the store's hook that enforces it on the /v2/ writes, inside the tag write's
 * critical section; channels/ is read-only there. */

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"


static void patterns_free(PolicyPattern *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].source);
                regexp_free(p[i].re);
        }
        free(p);
}

static int patterns_parse(json_t *arr, const char *where, PolicyPattern **ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        if (!arr)
                return 0;
        if (!json_is_array(arr))
                return log_error_errno(EINVAL, "%s: expected an array of regular expressions", where);
        PolicyPattern *p = calloc(json_array_size(arr) + 1, sizeof(PolicyPattern));
        if (!p)
                return log_oom();
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                if (!json_is_string(v)) {
                        patterns_free(p, *ret_n);
                        return log_error_errno(EINVAL, "%s[%zu]: expected a string", where, i);
                }
                char e[256];
                int k = regexp_new(json_string_value(v), &p[i].re, e, sizeof e);
                if (k < 0) {
                        patterns_free(p, *ret_n);
                        return log_error_errno(-k, "%s[%zu]: bad regular expression \"%s\": %s", where, i,
                                               json_string_value(v), e);
                }
                p[i].source = strdup(json_string_value(v));
                (*ret_n)++;
                if (!p[i].source) {
                        patterns_free(p, *ret_n);
                        return log_oom();
                }
        }
        *ret = p;
        return 0;
}

/* The first pattern that matches the tag. The lists matched here (immutable, forbidden) refuse
 * what they match, so a match that could not be run (-ENOMEM) counts as one. */
static const PolicyPattern *patterns_match(const PolicyPattern *p, size_t n, const char *tag) {
        for (size_t i = 0; i < n; i++)
                if (regexp_match(p[i].re, tag) != 0)
                        return &p[i];
        return NULL;
}

static void rules_free(PolicyRule *rules, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rules[i].name);
                free(rules[i].repos);
                free(rules[i].forbidden_reason);
                patterns_free(rules[i].immutable, rules[i].n_immutable);
                patterns_free(rules[i].forbidden, rules[i].n_forbidden);
                patterns_free(rules[i].moving, rules[i].n_moving);
        }
        free(rules);
}

int gov_policy_parse(Governance *g, json_t *policy) {
        if (!policy)
                return 0;
        if (!json_is_array(policy))
                return log_error_errno(EINVAL, "policy: expected an array of rules");
        g->rules = calloc(json_array_size(policy) + 1, sizeof(PolicyRule));
        if (!g->rules)
                return log_oom();
        size_t i;
        json_t *rule;
        json_array_foreach(policy, i, rule) {
                char where[64];
                snprintf(where, sizeof(where), "policy[%zu]", i);
                if (!json_is_object(rule))
                        return log_error_errno(EINVAL, "%s: expected an object", where);
                PolicyRule *pr = &g->rules[g->n_rules++];
                json_t *name = json_object_get(rule, "name");
                pr->name = strdup(json_is_string(name) ? json_string_value(name) : where);
                json_t *repos = json_object_get(rule, "repos");
                if (!json_is_string(repos))
                        return log_error_errno(EINVAL, "%s.repos: expected a repository glob", where);
                pr->repos = strdup(json_string_value(repos));
                json_t *reason = json_object_get(rule, "reason");
                if (json_is_string(reason))
                        pr->forbidden_reason = strdup(json_string_value(reason));
                char w[96];
                int r;
                snprintf(w, sizeof(w), "%s.immutable", where);
                r = patterns_parse(json_object_get(rule, "immutable"), w, &pr->immutable, &pr->n_immutable);
                if (r < 0)
                        return r;
                snprintf(w, sizeof(w), "%s.forbidden", where);
                r = patterns_parse(json_object_get(rule, "forbidden"), w, &pr->forbidden, &pr->n_forbidden);
                if (r < 0)
                        return r;
                snprintf(w, sizeof(w), "%s.moving", where);
                r = patterns_parse(json_object_get(rule, "moving"), w, &pr->moving, &pr->n_moving);
                if (r < 0)
                        return r;
                if (!pr->name || !pr->repos)
                        return log_oom();
        }
        return 0;
}

/* The first immutable rule/pattern that applies to repo:tag, or NULL. All matching rules
 * apply (a later rule adds patterns to earlier ones); immutability wins over `moving`
 * (fail closed). */
static const PolicyPattern *policy_immutable(Governance *g, const char *repo, const char *tag,
                                             const PolicyRule **ret_rule) {
        for (size_t i = 0; i < g->n_rules; i++) {
                if (!repo_glob_match(g->rules[i].repos, repo))
                        continue;
                const PolicyPattern *p = patterns_match(g->rules[i].immutable, g->rules[i].n_immutable, tag);
                if (p) {
                        if (ret_rule)
                                *ret_rule = &g->rules[i];
                        return p;
                }
        }
        return NULL;
}

static const PolicyPattern *policy_forbidden(Governance *g, const char *repo, const char *tag,
                                             const PolicyRule **ret_rule) {
        for (size_t i = 0; i < g->n_rules; i++) {
                if (!repo_glob_match(g->rules[i].repos, repo))
                        continue;
                const PolicyPattern *p = patterns_match(g->rules[i].forbidden, g->rules[i].n_forbidden, tag);
                if (p) {
                        *ret_rule = &g->rules[i];
                        return p;
                }
        }
        return NULL;
}

bool gov_repo_is_channel(const char *repo) {
        return streq(repo, "channels") || startswith(repo, "channels/");
}

static int policy_refuse(Governance *g, StoreError *err, const char *repo, const char *tag, const char *rule,
                         const char *fmt, ...) _printf_(6, 7);
static int policy_refuse(Governance *g, StoreError *err, const char *repo, const char *tag, const char *rule,
                         const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        metrics_counter_add(M_POLICY_REFUSALS, NULL, 1);
        /* The audit write is a plain index put: no storage lock is needed for it. */
        json_t *d = json_pack("{s:s, s:s?, s:s}", "rule", rule, "tag", tag, "message", msg);
        _cleanup_free_ char *target = tag ? strdup_printf("%s:%s", repo, tag) : strdup(repo);
        (void) store_audit(g->store, NULL, "tag_policy", target ? target : repo, "refused", d);
        json_decref(d);
        return store_error_set(err, -EPERM, OCI_DENIED, "%s", msg);
}

int gov_tag_policy(void *userdata, const char *repo, const char *tag, const char *old_digest, const char *new_digest,
                   const char *first_digest_in_history, unsigned flags, StoreError *err) {
        Governance *g = userdata;

        /* governance's own pointer moves, and GC deleting what retention decided */
        if (flags & (STORE_WRITE_CHANNEL_MOVE | STORE_WRITE_MAINTENANCE))
                return 0;

        if (gov_repo_is_channel(repo))
                return policy_refuse(g, err, repo, tag, "channels",
                                     "repository %s is a channel: it cannot be written through /v2/; its pointers "
                                     "move only with POST /v1/registry/promote and /v1/registry/rollback "
                                     "(plura reg promote|rollback)", repo);
        if (!tag)
                return 0; /* a tagless manifest PUT or delete outside channels/ */

        const PolicyRule *rule = NULL;
        const PolicyPattern *p;
        if (new_digest) {
                p = policy_forbidden(g, repo, tag, &rule);
                if (p)
                        return policy_refuse(g, err, repo, tag, rule->name,
                                             "tag \"%s\" is forbidden in %s by policy rule %s (repos \"%s\", pattern %s)%s%s",
                                             tag, repo, rule->name, rule->repos, p->source,
                                             rule->forbidden_reason ? ": " : ": a moving tag hides what is deployed; "
                                                                             "push an immutable version tag (e.g. 1.4.2 or 1.4.2_<gitsha>) and pin by digest",
                                             strempty(rule->forbidden_reason));
        }

        p = policy_immutable(g, repo, tag, &rule);
        if (!p)
                return 0;
        if (new_digest) {
                if (old_digest && !streq(old_digest, new_digest))
                        return policy_refuse(g, err, repo, tag, rule->name,
                                             "tag \"%s\" is immutable (policy rule %s, pattern %s): it already points at %s "
                                             "and cannot be moved; push a new version tag",
                                             tag, rule->name, p->source, old_digest);
                if (!old_digest && first_digest_in_history && !streq(first_digest_in_history, new_digest))
                        return policy_refuse(g, err, repo, tag, rule->name,
                                             "tag \"%s\" is immutable (policy rule %s, pattern %s) and was used before for %s; "
                                             "an immutable tag name cannot be reused for another digest",
                                             tag, rule->name, p->source, first_digest_in_history);
                return 0; /* new, or the same digest again (idempotent) */
        }
        if (old_digest)
                return policy_refuse(g, err, repo, tag, rule->name,
                                     "tag \"%s\" is immutable (policy rule %s, pattern %s) and cannot be deleted through /v2/",
                                     tag, rule->name, p->source);
        return 0;
}

bool gov_tag_is_immutable(Governance *g, const char *repo, const char *tag) {
        return policy_immutable(g, repo, tag, NULL) != NULL;
}

void gov_policy_done(Governance *g) {
        rules_free(g->rules, g->n_rules);
        g->rules = NULL;
        g->n_rules = 0;
}
