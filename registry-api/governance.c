/* SPDX-License-Identifier: MIT */
/* Governance: the tag policy hook (immutable / forbidden tags, read-only channel repositories),
 * the block list, channel pointer moves, promotion gates (cosign signatures, SBOM referrers,
 * labels, soak time) and the persistent counters behind the release metrics. */

#include <inttypes.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "registry-api/governance-internal.h"

/* ------------------------------------------------------------------ helpers */

json_t *json_time(int64_t ns) {
        char buf[64];
        return json_string(format_timestamp(buf, sizeof(buf), ns));
}

static void format_duration(char *buf, size_t n, int64_t ns) {
        int64_t s = ns / (int64_t) NSEC_PER_SEC;
        if (s < 0)
                s = 0;
        if (s >= 3600)
                snprintf(buf, n, "%" PRIi64 "h%02" PRIi64 "m%02" PRIi64 "s", s / 3600, (s / 60) % 60, s % 60);
        else if (s >= 60)
                snprintf(buf, n, "%" PRIi64 "m%02" PRIi64 "s", s / 60, s % 60);
        else
                snprintf(buf, n, "%" PRIi64 "s", s);
}

Governance *governance_get(Registry *r) {
        return registry_feature_state(r, GOV_FEATURE);
}

/* ------------------------------------------------------------------ policy */

static void patterns_free(PolicyPattern *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].source);
                regfree(&p[i].re);
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
                int k = regcomp(&p[i].re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
                if (k != 0) {
                        char e[128];
                        regerror(k, &p[i].re, e, sizeof(e));
                        patterns_free(p, *ret_n);
                        return log_error_errno(EINVAL, "%s[%zu]: bad regular expression \"%s\": %s", where, i,
                                               json_string_value(v), e);
                }
                p[i].source = strdup(json_string_value(v));
                (*ret_n)++;
        }
        *ret = p;
        return 0;
}

static const PolicyPattern *patterns_match(const PolicyPattern *p, size_t n, const char *tag) {
        for (size_t i = 0; i < n; i++)
                if (regexec(&p[i].re, tag, 0, NULL, 0) == 0)
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

static int policy_parse(Governance *g, json_t *policy) {
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

static bool repo_is_channel(const char *repo) {
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

static int tag_policy_hook(void *userdata, const char *repo, const char *tag, const char *old_digest,
                           const char *new_digest, const char *first_digest_in_history, unsigned flags,
                           StoreError *err) {
        Governance *g = userdata;

        /* governance's own pointer moves, and GC deleting what retention decided */
        if (flags & (STORE_WRITE_CHANNEL_MOVE | STORE_WRITE_MAINTENANCE))
                return 0;

        if (repo_is_channel(repo))
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

/* ------------------------------------------------------------------ channels */

int channel_ref_parse(Governance *g, const char *s, ChannelRef *ret) {
        memset(ret, 0, sizeof(*ret));
        if (!s || !*s || streq(s, "build") || streq(s, "repo") || streq(s, "source") || streq(s, "push")) {
                ret->source = true;
                return 0;
        }
        const char *colon = strchr(s, ':');
        size_t el = colon ? (size_t) (colon - s) : strlen(s);
        const char *ptr = colon ? colon + 1 : CHANNEL_CANDIDATE;
        if (!streq(ptr, CHANNEL_STABLE) && !streq(ptr, CHANNEL_CANDIDATE))
                return -EINVAL;
        for (size_t i = 0; i < g->n_envs; i++)
                if (strlen(g->envs[i]) == el && strncmp(g->envs[i], s, el) == 0) {
                        snprintf(ret->env, sizeof(ret->env), "%s", g->envs[i]);
                        snprintf(ret->pointer, sizeof(ret->pointer), "%s", ptr);
                        return 0;
                }
        return -EINVAL;
}

void channel_ref_format(const ChannelRef *c, char *buf, size_t n) {
        if (c->source)
                snprintf(buf, n, "repo");
        else
                snprintf(buf, n, "%s:%s", c->env, c->pointer);
}

int channel_ref_step(Governance *g, const ChannelRef *c) {
        if (c->source)
                return 0;
        for (size_t i = 0; i < g->n_envs; i++) {
                if (!streq(g->envs[i], c->env))
                        continue;
                if (streq(c->pointer, CHANNEL_CANDIDATE))
                        return (int) i + 1;
                if (i == g->n_envs - 1)
                        return (int) i + 2; /* last env: candidate, then stable */
                return -ENOENT;
        }
        return -ENOENT;
}

int channel_ref_next(Governance *g, const ChannelRef *c, ChannelRef *ret) {
        int step = channel_ref_step(g, c);
        if (step < 0)
                return step;
        memset(ret, 0, sizeof(*ret));
        size_t next = (size_t) step + 1;
        if (next <= g->n_envs) {
                snprintf(ret->env, sizeof(ret->env), "%s", g->envs[next - 1]);
                snprintf(ret->pointer, sizeof(ret->pointer), CHANNEL_CANDIDATE);
                return 0;
        }
        if (next == g->n_envs + 1) {
                snprintf(ret->env, sizeof(ret->env), "%s", g->envs[g->n_envs - 1]);
                snprintf(ret->pointer, sizeof(ret->pointer), CHANNEL_STABLE);
                return 0;
        }
        return -ENOENT;
}

int repo_to_svc(Governance *g, const char *repo, char **ret_svc, char **ret_app_repo) {
        if (!repo || !repo_name_is_valid(repo))
                return -EINVAL;
        _cleanup_free_ char *svc = NULL, *app = NULL;
        const char *rest;
        if ((rest = startswith(repo, "channels/"))) {
                const char *slash = strchr(rest, '/');
                if (!slash || !slash[1])
                        return -EINVAL;
                svc = strdup(slash + 1);
                app = strdup_printf("apps/%s", slash + 1);
        } else if ((rest = startswith(repo, "apps/"))) {
                svc = strdup(rest);
                app = strdup(repo);
        } else {
                svc = strdup(repo);
                app = strdup(repo);
        }
        if (!svc || !app)
                return -ENOMEM;
        if (ret_svc)
                *ret_svc = steal_pointer(&svc);
        if (ret_app_repo)
                *ret_app_repo = steal_pointer(&app);
        return 0;
}

char *channel_repo_name(const char *env, const char *svc) {
        return strdup_printf("channels/%s/%s", env, svc);
}

int channel_get(Governance *g, const char *svc, const ChannelRef *c, char digest[DIGEST_MAX_LEN]) {
        _cleanup_free_ char *chan = channel_repo_name(c->env, svc);
        if (!chan)
                return -ENOMEM;
        TagInfo ti;
        int r = store_tag_get(g->store, chan, c->pointer, &ti);
        if (r < 0)
                return r;
        snprintf(digest, DIGEST_MAX_LEN, "%s", ti.digest);
        return 0;
}

static int history_collect(void *userdata, const ChannelHistoryEntry *e) {
        json_t *arr = userdata;
        json_t *copy = json_deep_copy(e->record);
        if (!copy)
                return -ENOMEM;
        json_object_set_new(copy, "seq", json_integer((json_int_t) e->seq));
        json_array_append_new(arr, copy);
        return 0;
}

int channel_history(Governance *g, const char *svc, const ChannelRef *c, json_t **ret) {
        json_t *arr = json_array();
        if (!arr)
                return -ENOMEM;
        int r = store_channel_history_foreach(g->store, NULL, c->env, svc, c->pointer, history_collect, arr);
        if (r < 0) {
                json_decref(arr);
                return r;
        }
        *ret = arr;
        return 0;
}

static char *hist_cache_key(const char *svc, const ChannelRef *c) {
        return strdup_printf("%s|%s|%s", c->env, svc, c->pointer);
}

static int history_digests_collect(void *userdata, const ChannelHistoryEntry *e) {
        json_t *arr = userdata;
        if (e->digest)
                json_array_append_new(arr, json_pack("[s, I]", e->digest, (json_int_t) e->time));
        return 0;
}

json_t *channel_history_digests(Governance *g, const char *svc, const ChannelRef *c) {
        _cleanup_free_ char *k = hist_cache_key(svc, c);
        if (!k)
                return NULL;
        json_t *arr = json_object_get(g->hist_cache, k);
        if (arr)
                return arr;
        arr = json_array();
        if (!arr || store_channel_history_foreach(g->store, NULL, c->env, svc, c->pointer, history_digests_collect, arr) < 0) {
                json_decref(arr);
                return NULL;
        }
        json_object_set_new(g->hist_cache, k, arr);
        return arr;
}

/* Links the manifest's closure (config, layers, index children) into repo, from src. */
static int link_closure(Governance *g, const char *repo, const char *src, const char *digest, unsigned depth) {
        if (depth > 4)
                return -ELOOP;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int r = store_manifest_parsed(g->store, NULL, digest, &m);
        if (r < 0)
                return log_error_errno(r, "governance: manifest %s: %m", digest);
        if (manifest_kind_is_index(m->kind)) {
                for (size_t i = 0; i < m->n_manifests; i++) {
                        const char *cd = m->manifests[i].digest;
                        _cleanup_(stored_manifest_freep) StoredManifest *have = NULL;
                        if (store_manifest_get(g->store, repo, cd, &have) >= 0)
                                continue;
                        r = link_closure(g, repo, src, cd, depth + 1);
                        if (r < 0)
                                return r;
                        _cleanup_(stored_manifest_freep) StoredManifest *child = NULL;
                        r = store_manifest_get_by_digest(g->store, cd, &child);
                        if (r < 0)
                                return log_error_errno(r, "governance: index child %s: %m", cd);
                        ManifestPut p = {
                                .repo = repo, .data = child->data, .len = child->size,
                                .content_type = child->media_type, .reference = cd, .actor = "plura-governance",
                                .flags = STORE_WRITE_CHANNEL_MOVE,
                        };
                        char out[DIGEST_MAX_LEN];
                        StoreError err = { 0 };
                        r = store_manifest_put(g->store, &p, out, &err);
                        if (r < 0)
                                return log_error_errno(r, "governance: linking %s into %s: %s", cd, repo, err.message);
                }
                return 0;
        }
        size_t n = m->n_layers + (m->has_config ? 1 : 0);
        for (size_t i = 0; i < n; i++) {
                const char *bd = i < m->n_layers ? m->layers[i].digest : m->config.digest;
                BlobInfo bi;
                if (store_repo_blob_info(g->store, repo, bd, &bi) >= 0)
                        continue;
                r = store_blob_mount(g->store, repo, src, bd, NULL); /* audited as part of the promotion */
                if (r == -ENOENT)
                        r = store_blob_mount(g->store, repo, NULL, bd, NULL);
                if (r < 0)
                        return log_error_errno(r, "governance: mounting %s into %s: %m", bd, repo);
        }
        return 0;
}

int channel_move(Governance *g, const char *svc, const char *app_repo, const ChannelRef *c, const char *digest,
                 const char *actor, const char *action, json_t *extra, uint64_t started_mono, json_t **ret_entry) {
        _cleanup_free_ char *chan = channel_repo_name(c->env, svc);
        _cleanup_free_ char *target = strdup_printf("%s:%s", strna(chan), c->pointer);
        if (!chan || !target)
                return -ENOMEM;

        _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
        int r = store_manifest_get(g->store, chan, digest, &m);
        if (r < 0) {
                /* first time in this channel repository: link config/layers/children, then the
                 * manifest itself by digest (no tag yet) */
                r = link_closure(g, chan, app_repo, digest, 0);
                if (r < 0)
                        return r;
                r = store_manifest_get_by_digest(g->store, digest, &m);
                if (r < 0)
                        return r;
                ManifestPut p = {
                        .repo = chan, .data = m->data, .len = m->size, .content_type = m->media_type,
                        .reference = digest, .actor = actor, .flags = STORE_WRITE_CHANNEL_MOVE,
                };
                char out[DIGEST_MAX_LEN];
                StoreError err = { 0 };
                r = store_manifest_put(g->store, &p, out, &err);
                if (r < 0)
                        return log_error_errno(r, "governance: linking %s into %s: %s", digest, chan, err.message);
        }

        /* the cached history must be loaded before the write, so the new entry is appended once */
        json_t *cached = channel_history_digests(g, svc, c);

        /* one synced write: the pointer tag, its tag history, the channel history, the audit event */
        _cleanup_(json_decrefp) json_t *detail = json_pack("{s:s}", "repo", app_repo);
        if (!detail)
                return -ENOMEM;
        if (extra)
                json_object_update(detail, extra);
        /* the operation's time up to the index write (the write itself is one fsync) */
        if (started_mono)
                json_object_set_new(detail, "duration_ms", json_real((double) (clock_monotonic_ns() - started_mono) / 1e6));
        ChannelMove mv = {
                .env = c->env, .svc = svc, .pointer = c->pointer, .digest = digest,
                .actor = actor, .action = action, .detail = detail,
        };
        json_t *e = NULL;
        r = store_channel_move(g->store, &mv, &e);
        if (r < 0)
                return log_error_errno(r, "governance: moving %s to %s: %m", target, digest);
        if (cached)
                json_array_append_new(cached, json_pack("[s, O]", digest, json_object_get(e, "time_ns")));
        if (ret_entry)
                *ret_entry = e;
        else
                json_decref(e);
        return 0;
}

/* ------------------------------------------------------------------ block list */

static int block_load(void *userdata, const BlockInfo *b) {
        Governance *g = userdata;
        json_t *rec = block_info_to_json(b);
        if (!rec)
                return -ENOMEM;
        json_object_set_new(g->blocked, b->digest, rec);
        g->n_blocked = json_object_size(g->blocked);
        return 0;
}

bool gov_is_blocked(Governance *g, const char *digest, json_t **ret_info) {
        if (__atomic_load_n(&g->n_blocked, __ATOMIC_ACQUIRE) == 0)
                return false;
        pthread_rwlock_rdlock(&g->block_lock);
        json_t *rec = json_object_get(g->blocked, digest);
        if (rec && ret_info)
                *ret_info = json_deep_copy(rec);
        pthread_rwlock_unlock(&g->block_lock);
        return rec != NULL;
}

int gov_block(Governance *g, const BlockInfo *b, json_t **ret_record) {
        json_t *record = block_info_to_json(b);
        if (!record)
                return -ENOMEM;
        pthread_rwlock_wrlock(&g->block_lock);
        int r = store_block_put(g->store, b);
        if (r >= 0) {
                json_object_set(g->blocked, b->digest, record);
                __atomic_store_n(&g->n_blocked, json_object_size(g->blocked), __ATOMIC_RELEASE);
        }
        pthread_rwlock_unlock(&g->block_lock);
        if (r >= 0 && ret_record)
                *ret_record = json_deep_copy(record);
        json_decref(record);
        return r;
}

int gov_unblock(Governance *g, const char *digest, json_t **ret_old) {
        pthread_rwlock_wrlock(&g->block_lock);
        json_t *old = json_object_get(g->blocked, digest);
        int r = -ENOENT;
        if (old) {
                r = store_block_delete(g->store, digest);
                if (r >= 0) {
                        if (ret_old)
                                *ret_old = json_incref(old);
                        json_object_del(g->blocked, digest);
                        __atomic_store_n(&g->n_blocked, json_object_size(g->blocked), __ATOMIC_RELEASE);
                }
        }
        pthread_rwlock_unlock(&g->block_lock);
        return r;
}

json_t *gov_block_list(Governance *g) {
        json_t *arr = json_array();
        pthread_rwlock_rdlock(&g->block_lock);
        const char *k;
        json_t *v;
        json_object_foreach(g->blocked, k, v) {
                json_t *e = json_deep_copy(v);
                json_object_set_new(e, "digest", json_string(k));
                json_array_append_new(arr, e);
        }
        pthread_rwlock_unlock(&g->block_lock);
        return arr;
}

static void block_reason(json_t *info, const char *digest, const char *via, char *reason, size_t n) {
        const char *why = json_string_value(json_object_get(info, "reason"));
        json_t *cves = json_object_get(info, "cves");
        char cvebuf[256] = "";
        size_t i;
        json_t *c;
        json_array_foreach(cves, i, c) {
                if (!json_is_string(c))
                        continue;
                size_t l = strlen(cvebuf);
                if (i >= 5) {
                        snprintf(cvebuf + l, sizeof(cvebuf) - l, ", +%zu more", json_array_size(cves) - i);
                        break;
                }
                snprintf(cvebuf + l, sizeof(cvebuf) - l, "%s%s", l ? ", " : "", json_string_value(c));
        }
        snprintf(reason, n, "%s%s%s is blocked: %s%s%s%s", via ? "index child " : "", digest, "",
                 why ? why : "blocked", cvebuf[0] ? " (" : "", cvebuf, cvebuf[0] ? ")" : "");
}

static int closure_check(Governance *g, const char *digest, unsigned depth, char *reason, size_t reason_len,
                         char blocked_digest[DIGEST_MAX_LEN]) {
        json_t *info = NULL;
        if (gov_is_blocked(g, digest, &info)) {
                block_reason(info, digest, depth > 0 ? "child" : NULL, reason, reason_len);
                if (blocked_digest)
                        snprintf(blocked_digest, DIGEST_MAX_LEN, "%s", digest);
                json_decref(info);
                return -EACCES;
        }
        if (depth > 4)
                return 0;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (store_manifest_parsed(g->store, NULL, digest, &m) < 0)
                return 0; /* a blob, or unknown */
        if (!manifest_kind_is_index(m->kind))
                return 0;
        for (size_t i = 0; i < m->n_manifests; i++) {
                int r = closure_check(g, m->manifests[i].digest, depth + 1, reason, reason_len, blocked_digest);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gov_check_blocked_closure(Governance *g, const char *digest, char *reason, size_t reason_len,
                              char blocked_digest[DIGEST_MAX_LEN]) {
        if (__atomic_load_n(&g->n_blocked, __ATOMIC_ACQUIRE) == 0)
                return 0;
        return closure_check(g, digest, 0, reason, reason_len, blocked_digest);
}

/* ------------------------------------------------------------------ counters */

uint64_t gov_counter_get(Governance *g, const char *name) {
        uint64_t v = 0;
        (void) store_governance_counter_get(g->store, name, &v);
        return v;
}

uint64_t gov_counter_add(Governance *g, const char *name, uint64_t delta) {
        uint64_t v = 0;
        (void) store_governance_counter_add(g->store, name, delta, &v);
        return v;
}

static const char *const cve_event_kinds[] = { "block", "pull_denied", "promote_denied" };

void gov_cve_block_event(Governance *g, const char *kind) {
        char name[64], labels[64];
        snprintf(name, sizeof(name), "cve_block_events/%s", kind);
        snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
        gov_counter_add(g, name, 1);
        metrics_counter_add(M_CVE_BLOCK_EVENTS, labels, 1);
}

/* ------------------------------------------------------------------ signatures, SBOMs, labels */

static int read_blob(Governance *g, const char *digest, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(blob_reader_freep) BlobReader *br = NULL;
        int r = store_blob_open(g->store, digest, &br);
        if (r < 0)
                return r;
        uint64_t size = blob_reader_size(br);
        if (size > max)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        while (off < size) {
                ssize_t n = blob_reader_pread(br, buf + off, size - off, off);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EIO;
                off += (uint64_t) n;
        }
        buf[size] = 0;
        *ret = steal_pointer(&buf);
        *ret_len = size;
        return 0;
}

static int base64_decode(const char *in, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *clean = malloc(strlen(in) + 4);
        if (!clean)
                return -ENOMEM;
        size_t n = 0;
        for (const char *p = in; *p; p++)
                if (!strchr(" \t\r\n", *p))
                        clean[n++] = *p == '-' ? '+' : *p == '_' ? '/' : *p; /* accept base64url too */
        while (n % 4)
                clean[n++] = '=';
        clean[n] = 0;
        if (n == 0)
                return -EINVAL;
        uint8_t *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int l = EVP_DecodeBlock(out, (const unsigned char *) clean, (int) n);
        if (l < 0) {
                free(out);
                return -EINVAL;
        }
        size_t pad = 0;
        if (n >= 1 && clean[n - 1] == '=')
                pad++;
        if (n >= 2 && clean[n - 2] == '=')
                pad++;
        *ret = out;
        *ret_len = (size_t) l - pad;
        return 0;
}

static bool verify_with_key(EVP_PKEY *key, const uint8_t *sig, size_t siglen, const void *data, size_t len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return false;
        int id = EVP_PKEY_get_base_id(key);
        const EVP_MD *md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
        bool ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
                  EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return ok;
}

static void detail_add(json_t *detail, const char *fmt, ...) _printf_(2, 3);
static void detail_add(json_t *detail, const char *fmt, ...) {
        if (!detail)
                return;
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_array_append_new(detail, json_string(buf));
}

/* Checks every simple-signing layer of a signature manifest. */
static void check_signature_manifest(Governance *g, const char *where, Manifest *m, const char *digest,
                                     int *found, bool *verified, json_t *detail) {
        for (size_t i = 0; i < m->n_layers; i++) {
                Descriptor *l = &m->layers[i];
                if (!streq_ptr(l->media_type, COSIGN_SIMPLESIGNING_TYPE))
                        continue;
                const char *sig_b64 = json_string_value(json_object_get(l->annotations, COSIGN_SIGNATURE_ANNOTATION));
                if (!sig_b64) {
                        detail_add(detail, "%s layer %zu: no %s annotation", where, i, COSIGN_SIGNATURE_ANNOTATION);
                        continue;
                }
                (*found)++;
                _cleanup_free_ char *payload = NULL;
                size_t plen = 0;
                int r = read_blob(g, l->digest, 1U << 20, &payload, &plen);
                if (r < 0) {
                        detail_add(detail, "%s layer %zu: payload %s unreadable: %s", where, i, l->digest, strerror(-r));
                        continue;
                }
                _cleanup_free_ uint8_t *sig = NULL;
                size_t siglen = 0;
                if (base64_decode(sig_b64, &sig, &siglen) < 0) {
                        detail_add(detail, "%s layer %zu: signature annotation is not base64", where, i);
                        continue;
                }
                const char *key_ok = NULL;
                for (size_t k = 0; k < g->n_keys && !key_ok; k++)
                        if (verify_with_key(g->keys[k], sig, siglen, payload, plen))
                                key_ok = g->key_names[k];
                json_t *pj = json_loadb(payload, plen, 0, NULL);
                const char *named = json_string_value(
                        json_object_get(json_object_get(json_object_get(pj, "critical"), "image"), "docker-manifest-digest"));
                bool match = named && streq(named, digest);
                if (!key_ok)
                        detail_add(detail, "%s layer %zu: signature does not verify against any of the %zu configured public key(s)",
                                   where, i, g->n_keys);
                else if (!match)
                        detail_add(detail, "%s layer %zu: signed payload names %s, not %s", where, i, strna(named), digest);
                else {
                        detail_add(detail, "%s layer %zu: verified with %s", where, i, key_ok);
                        *verified = true;
                }
                json_decref(pj);
        }
}

int gov_signature_check(Governance *g, const char *repo, const char *digest, bool *ret_verified, json_t *detail) {
        int found = 0;
        bool verified = false;
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return -EINVAL;

        /* cosign's tag form: <algo>-<hex>.sig in the same repository */
        _cleanup_free_ char *sigtag = strdup_printf("%s-%s.sig", digest_algorithm_to_string(a), digest_hex(digest));
        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
        if (sigtag && store_manifest_get(g->store, repo, sigtag, &sm) >= 0) {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                char err[256];
                if (manifest_parse(sm->data, sm->size, sm->media_type, &m, err, sizeof(err)) >= 0)
                        check_signature_manifest(g, sigtag, m, digest, &found, &verified, detail);
                else
                        detail_add(detail, "%s: unparsable manifest: %s", sigtag, err);
        }

        /* OCI 1.1 referrers form */
        _cleanup_(json_decrefp) json_t *refs = NULL;
        if (store_referrers(g->store, repo, digest, NULL, &refs) >= 0) {
                size_t i;
                json_t *d;
                json_array_foreach(refs, i, d) {
                        const char *at = json_string_value(json_object_get(d, "artifactType"));
                        const char *rd = json_string_value(json_object_get(d, "digest"));
                        if (!rd || (at && !streq(at, COSIGN_SIMPLESIGNING_TYPE) && !streq(at, MEDIA_TYPE_OCI_EMPTY) &&
                                    !streq(at, MEDIA_TYPE_OCI_CONFIG)))
                                continue;
                        if (sm && streq(rd, sm->digest))
                                continue; /* the .sig manifest also names the subject */
                        _cleanup_(manifest_freep) Manifest *m = NULL;
                        if (store_manifest_parsed(g->store, NULL, rd, &m) < 0)
                                continue;
                        char where[DIGEST_MAX_LEN + 16];
                        snprintf(where, sizeof(where), "referrer %.19s", rd);
                        check_signature_manifest(g, where, m, digest, &found, &verified, detail);
                }
        }
        *ret_verified = verified;
        return found;
}

static bool is_sbom_type(const char *t) {
        static const char *const types[] = {
                "application/vnd.cyclonedx+json", "application/vnd.cyclonedx+xml", "application/vnd.cyclonedx",
                "application/spdx+json", "application/vnd.spdx+json", "text/spdx", "text/spdx+json",
                "application/spdx", "text/spdx+xml", "application/spdx+xml",
                "application/vnd.syft+json",
        };
        if (!t)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(t, types[i]) || (startswith(t, types[i]) && t[strlen(types[i])] == ';'))
                        return true;
        return false;
}

bool gov_has_sbom(Governance *g, const char *repo, const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return false;
        _cleanup_(json_decrefp) json_t *refs = NULL;
        if (store_referrers(g->store, repo, digest, NULL, &refs) >= 0) {
                size_t i;
                json_t *d;
                json_array_foreach(refs, i, d) {
                        if (is_sbom_type(json_string_value(json_object_get(d, "artifactType"))))
                                return true;
                        const char *rd = json_string_value(json_object_get(d, "digest"));
                        _cleanup_(manifest_freep) Manifest *m = NULL;
                        if (!rd || store_manifest_parsed(g->store, NULL, rd, &m) < 0)
                                continue;
                        for (size_t l = 0; l < m->n_layers; l++)
                                if (is_sbom_type(m->layers[l].media_type))
                                        return true;
                }
        }
        /* cosign attach sbom: <algo>-<hex>.sbom */
        _cleanup_free_ char *tag = strdup_printf("%s-%s.sbom", digest_algorithm_to_string(a), digest_hex(digest));
        TagInfo ti;
        return tag && store_tag_get(g->store, repo, tag, &ti) >= 0;
}

static void collect_labels(Governance *g, const char *digest, json_t *have, unsigned depth) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (depth > 4 || store_manifest_parsed(g->store, NULL, digest, &m) < 0)
                return;
        if (json_is_object(m->annotations))
                json_object_update(have, m->annotations);
        if (manifest_kind_is_index(m->kind)) {
                for (size_t i = 0; i < m->n_manifests; i++)
                        collect_labels(g, m->manifests[i].digest, have, depth + 1);
                return;
        }
        if (!m->has_config)
                return;
        _cleanup_free_ char *cfg = NULL;
        size_t len;
        if (read_blob(g, m->config.digest, 4U << 20, &cfg, &len) < 0)
                return;
        _cleanup_(json_decrefp) json_t *cj = json_loadb(cfg, len, 0, NULL);
        json_t *labels = json_object_get(json_object_get(cj, "config"), "Labels");
        if (json_is_object(labels))
                json_object_update(have, labels);
}

static const char *const default_labels[] = {
        "org.opencontainers.image.version", "org.opencontainers.image.revision",
        "org.opencontainers.image.source", "org.opencontainers.image.created",
};

int gov_missing_labels(Governance *g, const char *digest, json_t *required, json_t **ret_missing) {
        _cleanup_(json_decrefp) json_t *have = json_object();
        collect_labels(g, digest, have, 0);
        json_t *missing = json_array();
        if (json_is_array(required)) {
                size_t i;
                json_t *v;
                json_array_foreach(required, i, v) {
                        const char *k = json_string_value(v);
                        json_t *hv = k ? json_object_get(have, k) : NULL;
                        if (k && (!json_is_string(hv) || !*json_string_value(hv)))
                                json_array_append_new(missing, json_string(k));
                }
        } else
                for (size_t i = 0; i < ELEMENTSOF(default_labels); i++) {
                        json_t *hv = json_object_get(have, default_labels[i]);
                        if (!json_is_string(hv) || !*json_string_value(hv))
                                json_array_append_new(missing, json_string(default_labels[i]));
                }
        *ret_missing = missing;
        return (int) json_array_size(missing);
}

/* ------------------------------------------------------------------ gates */

void gate_report_done(GateReport *r) {
        json_decref(r->failed);
        json_decref(r->passed);
        r->failed = r->passed = NULL;
}

static json_t *gates_for(Governance *g, const ChannelRef *to) {
        char name[64];
        channel_ref_format(to, name, sizeof(name));
        json_t *o = json_object_get(g->gates, name);
        if (!o && streq(to->pointer, CHANNEL_CANDIDATE))
                o = json_object_get(g->gates, to->env);
        return json_is_object(o) ? o : NULL;
}

static void gate_fail(GateReport *rep, const char *gate, json_t *detail, const char *fmt, ...) _printf_(4, 5);
static void gate_fail(GateReport *rep, const char *gate, json_t *detail, const char *fmt, ...) {
        char buf[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_t *e = json_pack("{s:s, s:s}", "gate", gate, "reason", buf);
        if (detail)
                json_object_set(e, "detail", detail);
        json_array_append_new(rep->failed, e);
}

static bool gate_enabled(json_t *gates, const char *key) {
        json_t *v = gates ? json_object_get(gates, key) : NULL;
        if (!v || json_is_false(v) || json_is_null(v))
                return false;
        return true;
}

/* When did digest arrive at pointer `from` (the latest history entry that set it there)? */
static int64_t arrived_at(Governance *g, const char *svc, const char *app_repo, const ChannelRef *from,
                          const char *digest) {
        if (from->source) {
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                if (store_manifest_get(g->store, app_repo, digest, &m) < 0)
                        return 0;
                return m->pushed;
        }
        json_t *h = channel_history_digests(g, svc, from);
        for (size_t i = json_array_size(h); i > 0; i--) {
                json_t *e = json_array_get(h, i - 1);
                if (streq_ptr(json_string_value(json_array_get(e, 0)), digest))
                        return json_integer_value(json_array_get(e, 1));
        }
        return 0;
}

int gov_check_gates(Governance *g, const char *app_repo, const char *svc, const ChannelRef *from,
                    const ChannelRef *to, const char *digest, GateReport *rep) {
        rep->failed = json_array();
        rep->passed = json_array();
        json_t *gates = gates_for(g, to);

        /* not_blocked is on unless a target explicitly turns it off */
        json_t *nb = gates ? json_object_get(gates, "not_blocked") : NULL;
        if (!nb || json_is_true(nb)) {
                char reason[512], bd[DIGEST_MAX_LEN];
                if (gov_check_blocked_closure(g, digest, reason, sizeof(reason), bd) < 0)
                        gate_fail(rep, "not_blocked", NULL, "%s", reason);
                else
                        json_array_append_new(rep->passed, json_string("not_blocked"));
        }

        if (gate_enabled(gates, "signature")) {
                json_t *detail = json_array();
                bool verified = false;
                int found = gov_signature_check(g, app_repo, digest, &verified, detail);
                if (g->n_keys == 0)
                        gate_fail(rep, "signature", detail, "no public key is configured (channels.public_keys), so no signature can verify");
                else if (found <= 0)
                        gate_fail(rep, "signature", detail,
                                  "no cosign signature of %s in %s (neither the sha256-<hex>.sig tag nor a referrer of type %s)",
                                  digest, app_repo, COSIGN_SIMPLESIGNING_TYPE);
                else if (!verified) {
                        _cleanup_free_ char *s = json_dumps(detail, JSON_COMPACT);
                        gate_fail(rep, "signature", detail, "%d signature(s) found, none verifies for %s: %s", found, digest,
                                  strna(s));
                } else
                        json_array_append_new(rep->passed, json_string("signature"));
                json_decref(detail);
        }

        if (gate_enabled(gates, "sbom")) {
                if (!gov_has_sbom(g, app_repo, digest))
                        gate_fail(rep, "sbom", NULL,
                                  "no SBOM referrer of %s in %s (artifactType application/vnd.cyclonedx+json, "
                                  "application/spdx+json or their XML/text variants)", digest, app_repo);
                else
                        json_array_append_new(rep->passed, json_string("sbom"));
        }

        if (gate_enabled(gates, "labels")) {
                json_t *missing = NULL;
                int n = gov_missing_labels(g, digest, json_object_get(gates, "labels"), &missing);
                if (n > 0) {
                        _cleanup_free_ char *s = json_dumps(missing, JSON_COMPACT);
                        gate_fail(rep, "labels", missing, "missing required labels/annotations on %s: %s", digest, strna(s));
                } else
                        json_array_append_new(rep->passed, json_string("labels"));
                json_decref(missing);
        }

        json_t *soak = gates ? json_object_get(gates, "soak") : NULL;
        int64_t soak_ns = 0;
        if (json_is_string(soak))
                (void) parse_duration_ns(json_string_value(soak), &soak_ns);
        else if (json_is_integer(soak))
                soak_ns = json_integer_value(soak) * (int64_t) NSEC_PER_SEC;
        if (soak_ns > 0) {
                int64_t since = arrived_at(g, svc, app_repo, from, digest);
                int64_t now = clock_now_ns();
                char fromname[64], have[32], need[32], ready[64];
                channel_ref_format(from, fromname, sizeof(fromname));
                format_duration(need, sizeof(need), soak_ns);
                if (since <= 0)
                        gate_fail(rep, "soak", NULL, "%s has no recorded arrival at %s; it must soak there for %s", digest,
                                  fromname, need);
                else if (now - since < soak_ns) {
                        format_duration(have, sizeof(have), now - since);
                        format_timestamp(ready, sizeof(ready), since + soak_ns);
                        gate_fail(rep, "soak", NULL, "soaked %s at %s, needs %s (ready at %s)", have, fromname, need, ready);
                } else
                        json_array_append_new(rep->passed, json_string("soak"));
        }
        return (int) json_array_size(rep->failed);
}

/* ------------------------------------------------------------------ hooks */

int governance_check_pull(Registry *r, const char *repo, const char *digest, char *reason, size_t reason_len) {
        Governance *g = governance_get(r);
        if (!g || !digest)
                return 0;
        char bd[DIGEST_MAX_LEN];
        int k = gov_check_blocked_closure(g, digest, reason, reason_len, bd);
        if (k < 0) {
                json_t *d = json_pack("{s:s, s:s, s:s}", "digest", digest, "blocked", bd, "reason", reason);
                _cleanup_free_ char *target = strdup_printf("%s@%s", repo ? repo : "", digest);
                (void) store_audit(g->store, NULL, "pull", target ? target : digest, "denied", d);
                json_decref(d);
                gov_cve_block_event(g, "pull_denied");
        }
        return k;
}

int governance_check_blob_delete(Registry *r, const char *repo, const char *digest, char *reason, size_t reason_len) {
        Governance *g = governance_get(r);
        if (repo_is_channel(repo)) {
                snprintf(reason, reason_len,
                         "repository %s is a channel: its content is what promotion put there and cannot be deleted "
                         "through /v2/ (its pointers move only with POST /v1/registry/promote and /v1/registry/rollback)",
                         repo);
                return -EPERM;
        }
        if (!g)
                return 0;
        _cleanup_free_ char *case_id = NULL;
        int k = store_digest_held(g->store, digest, &case_id);
        if (k < 0)
                return k;
        if (k > 0) {
                snprintf(reason, reason_len,
                         "blob %s is under the RCA hold of case %s: held content cannot be deleted until the hold "
                         "is released (plura reg hold release)", digest, case_id);
                return -EBUSY;
        }
        return 0;
}

void governance_after_manifest_put(Registry *r, const char *repo, const char *digest, const char *const *tags,
                                   size_t n_tags, const char *actor) {
        Governance *g = governance_get(r);
        if (!g || !g->auto_dev_candidate || g->n_envs == 0 || !repo || !startswith(repo, "apps/"))
                return;
        bool immutable = false;
        for (size_t i = 0; i < n_tags && !immutable; i++)
                immutable = tags[i] && policy_immutable(g, repo, tags[i], NULL);
        if (!immutable)
                return;
        char reason[512];
        if (gov_check_blocked_closure(g, digest, reason, sizeof(reason), NULL) < 0)
                return;
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo_to_svc(g, repo, &svc, &app) < 0)
                return;
        ChannelRef c = { 0 };
        snprintf(c.env, sizeof(c.env), "%s", g->envs[0]);
        snprintf(c.pointer, sizeof(c.pointer), CHANNEL_CANDIDATE);
        pthread_mutex_lock(&g->move_lock);
        json_t *extra = json_pack("{s:s, s:s}", "from", "repo", "tag", tags[0] ? tags[0] : "");
        int k = channel_move(g, svc, app, &c, digest, actor, "auto_dev_candidate", extra, 0, NULL);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (k < 0) {
                _cleanup_free_ char *target = strdup_printf("channels/%s/%s:%s", c.env, svc, c.pointer);
                json_t *d = json_pack("{s:s, s:s, s:s}", "digest", digest, "repo", repo, "error", strerror(-k));
                (void) store_audit(g->store, actor, "auto_dev_candidate", target ? target : repo, "error", d);
                json_decref(d);
                log_warning_errno(k, "governance: auto dev candidate for %s@%s: %m", repo, digest);
        }
}

/* ------------------------------------------------------------------ init */

static int keys_load(Governance *g, json_t *keys) {
        if (!keys)
                return 0;
        if (!json_is_array(keys))
                return log_error_errno(EINVAL, "channels.public_keys: expected an array of PEM file paths");
        size_t n = json_array_size(keys);
        g->keys = calloc(n + 1, sizeof(EVP_PKEY *));
        g->key_names = calloc(n + 1, sizeof(char *));
        if (!g->keys || !g->key_names)
                return log_oom();
        size_t i;
        json_t *v;
        json_array_foreach(keys, i, v) {
                const char *s = json_string_value(v);
                if (!s)
                        return log_error_errno(EINVAL, "channels.public_keys[%zu]: expected a string", i);
                BIO *bio = startswith(s, "-----BEGIN") ? BIO_new_mem_buf(s, -1) : BIO_new_file(s, "r");
                if (!bio)
                        return log_error_errno(ENOENT, "channels.public_keys[%zu]: cannot open %s", i, s);
                EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
                BIO_free(bio);
                ERR_clear_error();
                if (!k)
                        return log_error_errno(EINVAL, "channels.public_keys[%zu]: %s is not a PEM public key", i,
                                               startswith(s, "-----BEGIN") ? "inline key" : s);
                g->keys[g->n_keys] = k;
                g->key_names[g->n_keys] = startswith(s, "-----BEGIN") ? strdup_printf("public_keys[%zu]", i) : strdup(s);
                g->n_keys++;
        }
        return 0;
}

static void governance_destroy(Governance *g) {
        if (!g)
                return;
        rules_free(g->rules, g->n_rules);
        for (size_t i = 0; i < g->n_envs; i++)
                free(g->envs[i]);
        free(g->envs);
        for (size_t i = 0; i < g->n_keys; i++) {
                EVP_PKEY_free(g->keys[i]);
                free(g->key_names[i]);
        }
        free(g->keys);
        free(g->key_names);
        json_decref(g->blocked);
        json_decref(g->hist_cache);
        json_decref(g->cache_metrics);
        pthread_mutex_destroy(&g->move_lock);
        pthread_mutex_destroy(&g->cache_lock);
        pthread_rwlock_destroy(&g->block_lock);
        free(g);
}

int governance_init(Registry *r) {
        Governance *g = calloc(1, sizeof(Governance));
        if (!g)
                return log_oom();
        g->registry = r;
        g->store = registry_store(r);
        g->config = registry_config(r);
        pthread_mutex_init(&g->move_lock, NULL);
        pthread_mutex_init(&g->cache_lock, NULL);
        pthread_rwlock_init(&g->block_lock, NULL);
        g->blocked = json_object();
        g->hist_cache = json_object();

        int k = policy_parse(g, json_object_get(g->config->root, "policy"));
        if (k < 0)
                goto fail;

        json_t *ch = config_section(g->config, "channels");
        g->auto_dev_candidate = json_is_true(json_object_get(ch, "auto_dev_candidate"));
        g->gates = json_object_get(ch, "gates");
        if (g->gates && !json_is_object(g->gates)) {
                k = log_error_errno(EINVAL, "channels.gates: expected an object keyed by target (\"stg\", \"prod:stable\", ...)");
                goto fail;
        }
        json_t *envs = json_object_get(ch, "envs");
        static const char *const default_envs[] = { "dev", "stg", "prod" };
        size_t ne = json_is_array(envs) ? json_array_size(envs) : ELEMENTSOF(default_envs);
        g->envs = calloc(ne + 1, sizeof(char *));
        if (!g->envs) {
                k = log_oom();
                goto fail;
        }
        for (size_t i = 0; i < ne; i++) {
                const char *e = json_is_array(envs) ? json_string_value(json_array_get(envs, i)) : default_envs[i];
                if (!e || !*e || strchr(e, '/') || strchr(e, ':') || strlen(e) >= sizeof(((ChannelRef *) 0)->env)) {
                        k = log_error_errno(EINVAL, "channels.envs[%zu]: expected a short environment name", i);
                        goto fail;
                }
                g->envs[g->n_envs++] = strdup(e);
        }
        if (g->n_envs == 0) {
                k = log_error_errno(EINVAL, "channels.envs: at least one environment is needed");
                goto fail;
        }
        k = keys_load(g, json_object_get(ch, "public_keys"));
        if (k < 0)
                goto fail;

        if (g->store) {
                k = store_blocks_foreach(g->store, NULL, block_load, g);
                if (k < 0) {
                        log_error_errno(k, "governance: loading the block list: %m");
                        goto fail;
                }
                store_set_tag_policy(g->store, tag_policy_hook, g);
        }
        registry_set_feature_state(r, GOV_FEATURE, g);
        gov_metrics_init(g);
        log_info("governance: %zu policy rule(s), %zu public key(s), %zu blocked digest(s), envs %s..%s%s", g->n_rules,
                 g->n_keys, g->n_blocked, g->envs[0], g->envs[g->n_envs - 1],
                 g->auto_dev_candidate ? ", auto dev candidate" : "");
        return 0;
fail:
        governance_destroy(g);
        return k;
}

void governance_free(Registry *r) {
        Governance *g = governance_get(r);
        if (!g)
                return;
        if (g->store)
                store_set_tag_policy(g->store, NULL, NULL);
        gov_metrics_done(g);
        registry_set_feature_state(r, GOV_FEATURE, NULL);
        governance_destroy(g);
}

const char *const *gov_cve_event_kinds(size_t *n) {
        *n = ELEMENTSOF(cve_event_kinds);
        return cve_event_kinds;
}
