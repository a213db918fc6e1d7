/* SPDX-License-Identifier: MIT */
/* Retention: the "gc" configuration section and the evaluation of the rules into a plan of tag
 * and repository-link deletions (see gc.h for how the rules combine). Nothing here deletes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/regexp.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/governance-records.h"
#include "storage/holds.h"
#include "storage/records.h"

#define DAY_NS (86400 * (int64_t) NSEC_PER_SEC)

static const char *const gc_rule_names[_GC_RULE_MAX] = {
        [RULE_KEEP_FOREVER] = "keep_forever",
        [RULE_KEEP_LAST] = "keep_last",
        [RULE_ACTIVE] = "active",
        [RULE_KEEP_LAST_IDLE] = "keep_last_idle",
        [RULE_UNTAGGED_GRACE] = "untagged_grace",
        [RULE_UNTAGGED] = "untagged",
        [RULE_CHANNEL_WINDOW] = "channel_window",
        [RULE_HOLD] = "hold",
        [RULE_CHILD_OF_INDEX] = "index_child",
        [RULE_REFERRER] = "referrer",
        [RULE_TAGGED] = "tagged",
        [RULE_UNLINKED] = "unlinked",
        [RULE_UNREFERENCED] = "unreferenced",
        [RULE_ORPHAN] = "orphan",
        [RULE_OUT_OF_SCOPE] = "out_of_scope",
};

const char *gc_rule_to_string(GcRule r) {
        if (r < 0 || r >= _GC_RULE_MAX)
                return "unknown";
        return gc_rule_names[r];
}

/* ---------------------------------------------------------------- configuration */

static int get_duration(json_t *o, const char *key, int64_t *ret, char *err, size_t errlen, const char *where) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *ret = json_integer_value(v) * (int64_t) NSEC_PER_SEC;
                return 0;
        }
        if (!json_is_string(v) || parse_duration_ns(json_string_value(v), ret) < 0) {
                snprintf(err, errlen, "%s.%s: expected a duration like \"0\", \"90s\", \"1h\" or \"7d\"", where, key);
                return -EINVAL;
        }
        return 0;
}

int gc_parse_schedule(const char *s, int64_t *ret) {
        if (!s || !*s || streq(s, "off") || streq(s, "never")) {
                *ret = 0;
                return 0;
        }
        if (streq(s, "hourly")) {
                *ret = 3600 * (int64_t) NSEC_PER_SEC;
                return 0;
        }
        if (streq(s, "daily")) {
                *ret = DAY_NS;
                return 0;
        }
        if (streq(s, "weekly")) {
                *ret = 7 * DAY_NS;
                return 0;
        }
        int64_t v;
        if (parse_duration_ns(s, &v) < 0 || v < (int64_t) NSEC_PER_SEC)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void rule_set_done(GcRuleSet *r) {
        free(r->repos);
        for (size_t i = 0; i < r->n_keep_forever; i++) {
                regexp_free(r->keep_forever[i]);
                free(r->keep_forever_src[i]);
        }
        free(r->keep_forever);
        free(r->keep_forever_src);
        for (size_t i = 0; i < r->n_windows; i++)
                free(r->windows[i].name);
        free(r->windows);
}

GcConfig *gc_config_free(GcConfig *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_rules; i++)
                rule_set_done(&c->rules[i]);
        free(c->rules);
        free(c->schedule);
        json_decref(c->worm);
        free(c);
        return NULL;
}

int64_t gc_config_schedule_ns(const GcConfig *c) {
        return c->schedule_ns;
}

const char *gc_config_schedule(const GcConfig *c) {
        return c->schedule;
}

static int parse_rule(json_t *o, size_t idx, GcRuleSet *r, char *err, size_t errlen) {
        char where[64];
        snprintf(where, sizeof where, "gc.retention[%zu]", idx);
        if (!json_is_object(o)) {
                snprintf(err, errlen, "%s: expected an object", where);
                return -EINVAL;
        }
        /* config_load() refused unknown keys (common/config-schema.c) */
        json_t *v = json_object_get(o, "repos");
        if (!json_is_string(v) || !*json_string_value(v)) {
                snprintf(err, errlen, "%s.repos: expected a repository glob like \"apps/**\"", where);
                return -EINVAL;
        }
        r->repos = strdup(json_string_value(v));
        if (!r->repos)
                return -ENOMEM;

        v = json_object_get(o, "keep_forever");
        if (v) {
                if (!json_is_array(v)) {
                        snprintf(err, errlen, "%s.keep_forever: expected an array of regular expressions", where);
                        return -EINVAL;
                }
                size_t n = json_array_size(v);
                r->keep_forever = calloc(n ? n : 1, sizeof(Regexp *));
                r->keep_forever_src = calloc(n ? n : 1, sizeof(char *));
                if (!r->keep_forever || !r->keep_forever_src)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        const char *pat = json_string_value(json_array_get(v, i));
                        if (!pat) {
                                snprintf(err, errlen, "%s.keep_forever[%zu]: expected a string", where, i);
                                return -EINVAL;
                        }
                        char buf[256];
                        int e = regexp_new(pat, &r->keep_forever[i], buf, sizeof buf);
                        if (e < 0) {
                                snprintf(err, errlen, "%s.keep_forever[%zu]: invalid regular expression \"%.200s\": %s", where, i, pat, buf);
                                return e == -ENOMEM ? -ENOMEM : -EINVAL;
                        }
                        r->keep_forever_src[i] = strdup(pat);
                        r->n_keep_forever++;
                        if (!r->keep_forever_src[i])
                                return -ENOMEM;
                }
                r->has_keep_forever = true;
        }
        v = json_object_get(o, "keep_last");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                        snprintf(err, errlen, "%s.keep_last: expected a non-negative integer", where);
                        return -EINVAL;
                }
                r->keep_last = json_integer_value(v);
                r->has_keep_last = true;
        }
        v = json_object_get(o, "idle_days");
        if (v) {
                if (!json_is_number(v) || json_number_value(v) < 0) {
                        snprintf(err, errlen, "%s.idle_days: expected a non-negative number of days", where);
                        return -EINVAL;
                }
                r->idle_ns = (int64_t) (json_number_value(v) * (double) DAY_NS);
                r->has_idle = true;
        }
        v = json_object_get(o, "windows");
        if (v) {
                if (!json_is_object(v)) {
                        snprintf(err, errlen, "%s.windows: expected an object like {\"prod:stable\": \"180d\"}", where);
                        return -EINVAL;
                }
                r->windows = calloc(json_object_size(v) + 1, sizeof(GcWindow));
                if (!r->windows)
                        return -ENOMEM;
                const char *k;
                json_t *w;
                json_object_foreach(v, k, w) {
                        int64_t ns = 0;
                        char wh[96];
                        snprintf(wh, sizeof wh, "%s.windows", where);
                        int q = get_duration(v, k, &ns, err, errlen, wh);
                        if (q < 0)
                                return q;
                        r->windows[r->n_windows].name = strdup(k);
                        r->windows[r->n_windows].ns = ns;
                        if (!r->windows[r->n_windows++].name)
                                return -ENOMEM;
                }
                r->has_windows = true;
        }
        return 0;
}

int gc_config_new(Config *cfg, GcConfig **ret, char *err, size_t errlen) {
        json_t *gc = config_section(cfg, "gc");
        _cleanup_(gc_config_freep) GcConfig *c = calloc(1, sizeof(GcConfig));
        if (!c)
                return -ENOMEM;
        /* config_load() validated the section whole (common/config-schema.c); what is checked
         * here again is cheap and keeps gc_config_new() safe on its own */
        json_t *v;
        c->grace_ns = 3600 * (int64_t) NSEC_PER_SEC;
        c->untagged_grace_ns = DAY_NS;
        c->reports_kept = 100;
        int r = get_duration(gc, "grace", &c->grace_ns, err, errlen, "gc");
        if (r < 0)
                return r;
        r = get_duration(gc, "untagged_grace", &c->untagged_grace_ns, err, errlen, "gc");
        if (r < 0)
                return r;
        v = json_object_get(gc, "reports_kept");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
                        snprintf(err, errlen, "gc.reports_kept: expected an integer 1..100000");
                        return -EINVAL;
                }
                c->reports_kept = (unsigned) json_integer_value(v);
        }
        c->cpu_nice = 10;
        v = json_object_get(gc, "cpu_nice");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 19) {
                        snprintf(err, errlen, "gc.cpu_nice: expected an integer 0..19 (0: the GC competes with requests as an equal)");
                        return -EINVAL;
                }
                c->cpu_nice = (int) json_integer_value(v);
        }
        c->sched_idle = GC_SCHED_IDLE_DEFAULT;
        v = json_object_get(gc, "sched_idle");
        if (v) {
                if (!json_is_boolean(v)) {
                        snprintf(err, errlen, "gc.sched_idle: expected true or false (true: the GC's threads run only on CPU time no request wants)");
                        return -EINVAL;
                }
                c->sched_idle = json_is_true(v);
        }
        v = json_object_get(gc, "schedule");
        if (v && !json_is_string(v)) {
                snprintf(err, errlen, "gc.schedule: expected \"\", \"daily\", \"weekly\" or a duration like \"6h\"");
                return -EINVAL;
        }
        c->schedule = strdup(v ? json_string_value(v) : "");
        if (!c->schedule)
                return -ENOMEM;
        if (gc_parse_schedule(c->schedule, &c->schedule_ns) < 0) {
                snprintf(err, errlen, "gc.schedule: \"%s\" is not \"\", \"hourly\", \"daily\", \"weekly\" or a duration of at least 1s", c->schedule);
                return -EINVAL;
        }
        v = json_object_get(gc, "retention");
        if (v && !json_is_array(v)) {
                snprintf(err, errlen, "gc.retention: expected an array of rules");
                return -EINVAL;
        }
        size_t n = v ? json_array_size(v) : 0;
        c->rules = calloc(n ? n : 1, sizeof(GcRuleSet));
        if (!c->rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                c->n_rules++;
                r = parse_rule(json_array_get(v, i), i, &c->rules[i], err, errlen);
                if (r < 0)
                        return r;
        }
        c->worm = json_incref(config_section(cfg, "worm"));
        *ret = steal_pointer(&c);
        return 0;
}

void gc_effective(const GcConfig *c, const char *repo, GcEffective *ret) {
        /* without any rule: keep everything tagged (keep_last "infinite"), nothing forever */
        *ret = (GcEffective) { .keep_last = INT64_MAX, .idle_ns = INT64_MAX };
        for (size_t i = 0; i < c->n_rules; i++) {
                const GcRuleSet *r = &c->rules[i];
                if (!repo_glob_match(r->repos, repo))
                        continue;
                if (r->has_keep_forever)
                        ret->keep_forever_from = r;
                if (r->has_keep_last)
                        ret->keep_last = r->keep_last;
                if (r->has_idle)
                        ret->idle_ns = r->idle_ns;
                if (r->has_windows)
                        ret->windows_from = r;
        }
}

bool gc_effective_keep_forever(const GcEffective *e, const char *tag) {
        if (!e->keep_forever_from)
                return false;
        for (size_t i = 0; i < e->keep_forever_from->n_keep_forever; i++)
                if (regexp_match(e->keep_forever_from->keep_forever[i], tag) != 0)
                        return true; /* keeping is the safe side of a match that could not run (-ENOMEM) */
        return false;
}

int64_t gc_effective_window(const GcEffective *e, const char *env, const char *pointer) {
        if (!e->windows_from)
                return 0;
        char full[256];
        snprintf(full, sizeof full, "%s:%s", env, pointer);
        const GcRuleSet *r = e->windows_from;
        for (size_t i = 0; i < r->n_windows; i++)
                if (streq(r->windows[i].name, full))
                        return r->windows[i].ns;
        for (size_t i = 0; i < r->n_windows; i++)
                if (streq(r->windows[i].name, env))
                        return r->windows[i].ns;
        return 0;
}

/* ---------------------------------------------------------------- plan */

void plan_done(Plan *p) {
        for (size_t i = 0; i < p->n_repos; i++)
                free(p->repos[i].name);
        free(p->repos);
        free(p->links);
        for (size_t i = 0; i < p->n_tags; i++)
                free(p->tags[i].name);
        free(p->tags);
        strmap_free(p->repo_index);
        strmap_free(p->link_index);
        strmap_free(p->referrer_heads);
        strmap_free(p->tag_index);
        json_decref(p->holds);
        json_decref(p->windows);
        json_decref(p->errors);
        *p = (Plan) {};
}

static void plan_error(Plan *p, const char *what, const char *target, int r) {
        json_array_append_new(p->errors, json_pack("{s:s, s:s, s:s}", "what", what, "target", target ? target : "",
                                                   "error", r < 0 ? strerror(-r) : "inconsistent"));
}

int plan_add_repo(Plan *p, const GcConfig *c, const GcOptions *o, const char *name, size_t nlen, uint32_t *ret) {
        size_t idx;
        if (strmap_get(p->repo_index, name, nlen, &idx)) {
                *ret = (uint32_t) idx;
                return 0;
        }
        PlanRepo *n = realloc(p->repos, (p->n_repos + 1) * sizeof(PlanRepo));
        if (!n)
                return -ENOMEM;
        p->repos = n;
        PlanRepo *r = &p->repos[p->n_repos];
        *r = (PlanRepo) {};
        r->name = strndup(name, nlen);
        if (!r->name)
                return -ENOMEM;
        gc_effective(c, r->name, &r->eff);
        r->selected = !o->repo || !*o->repo || repo_glob_match(o->repo, r->name) || streq(o->repo, r->name);
        int q = strmap_put(p->repo_index, name, nlen, p->n_repos);
        if (q < 0)
                return q;
        *ret = (uint32_t) p->n_repos++;
        return 0;
}

char *plan_key(const char *repo, const char *digest, size_t *ret_len) {
        char *k = strdup_printf("%s\1%s", repo, digest);
        if (k)
                *ret_len = strlen(k);
        return k;
}

uint32_t plan_find_link(Plan *p, uint32_t repo, const char *digest) {
        size_t kl, v;
        _cleanup_free_ char *k = plan_key(p->repos[repo].name, digest, &kl);
        if (k && strmap_get(p->link_index, k, kl, &v))
                return (uint32_t) v;
        return UINT32_MAX;
}

typedef struct BuildCtx {
        Plan *p;
        Graph *g;
        Store *s;
        IndexSnapshot *snap;
        const GcConfig *c;
        const GcOptions *o;
        int64_t now;
} BuildCtx;

static int links_cb(void *userdata, const char *repo_name, const char *digest, const RepoManifestInfo *info) {
        BuildCtx *b = userdata;
        Plan *p = b->p;
        uint32_t repo;
        int r = plan_add_repo(p, b->c, b->o, repo_name, strlen(repo_name), &repo);
        if (r < 0)
                return r;
        uint32_t id = digest_table_intern(b->g->digests, digest);
        if (id == DT_NONE) {
                plan_error(p, "invalid digest in repo_manifest", digest, -EINVAL);
                return 0;
        }
        PlanLink *n = realloc(p->links, (p->n_links + 1) * sizeof(PlanLink));
        if (!n)
                return -ENOMEM;
        p->links = n;
        PlanRepo *pr = &p->repos[repo];
        if (pr->link_count == 0)
                pr->link_start = (uint32_t) p->n_links;
        pr->link_count++;
        p->links[p->n_links] = (PlanLink) {
                .repo = repo,
                .digest = id,
                .pushed = info->pushed,
                .last_pulled = info->last_pulled,
                .next_referrer = UINT32_MAX,
        };
        size_t kl;
        _cleanup_free_ char *k = plan_key(pr->name, digest, &kl);
        if (!k)
                return -ENOMEM;
        r = strmap_put(p->link_index, k, kl, p->n_links);
        if (r < 0)
                return r;
        p->n_links++;
        return 0;
}

static bool parse_cosign_tag(const char *tag, char out[DIGEST_MAX_LEN]) {
        /* sha256-<64 hex>.sig / .att / .sbom */
        const char *h = startswith(tag, "sha256-");
        if (!h || strlen(h) < 64 + 4)
                return false;
        for (size_t i = 0; i < 64; i++)
                if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
                        return false;
        const char *suffix = h + 64;
        if (!streq(suffix, ".sig") && !streq(suffix, ".att") && !streq(suffix, ".sbom"))
                return false;
        snprintf(out, DIGEST_MAX_LEN, "sha256:%.64s", h);
        return true;
}

static int tags_cb(void *userdata, const char *repo_name, const char *tag, const TagInfo *info) {
        BuildCtx *b = userdata;
        Plan *p = b->p;
        uint32_t repo;
        int r = plan_add_repo(p, b->c, b->o, repo_name, strlen(repo_name), &repo);
        if (r < 0)
                return r;
        PlanTag *n = realloc(p->tags, (p->n_tags + 1) * sizeof(PlanTag));
        if (!n)
                return -ENOMEM;
        p->tags = n;
        PlanTag *t = &p->tags[p->n_tags];
        *t = (PlanTag) { .repo = repo, .link = UINT32_MAX, .cosign_link = UINT32_MAX, .info = *info };
        t->name = strdup(tag);
        if (!t->name)
                return -ENOMEM;
        p->n_tags++;
        {
                size_t kl;
                _cleanup_free_ char *k = plan_key(p->repos[repo].name, t->name, &kl);
                if (!k || strmap_put(p->tag_index, k, kl, p->n_tags - 1) < 0)
                        return -ENOMEM;
        }
        t->link = plan_find_link(p, repo, t->info.digest);
        if (t->link == UINT32_MAX) {
                char target[512];
                snprintf(target, sizeof target, "%s:%s", p->repos[repo].name, t->name);
                plan_error(p, "tag points at a manifest not linked in its repository", target, 0);
                t->keep_forever = true;
                t->rule = RULE_KEEP_FOREVER;
                return 0;
        }
        p->links[t->link].n_tags++;
        const PlanRepo *pr = &p->repos[repo];
        if (gc_effective_keep_forever(&pr->eff, t->name)) {
                t->keep_forever = true;
                t->rule = RULE_KEEP_FOREVER;
                p->links[t->link].keep_forever_tagged = true;
                return 0;
        }
        char subject[DIGEST_MAX_LEN];
        if (parse_cosign_tag(t->name, subject)) {
                t->cosign_link = plan_find_link(p, repo, subject);
                if (t->cosign_link != UINT32_MAX) {
                        t->cosign_subject = true;
                        t->rule = RULE_REFERRER;
                        return 0;
                }
        }
        /* a ranked version tag */
        PlanLink *l = &p->links[t->link];
        l->is_version = true;
        l->v_newest = MAX(l->v_newest, MAX(t->info.updated, t->info.pushed));
        l->v_activity = MAX(l->v_activity, MAX(MAX(t->info.updated, t->info.pushed), t->info.last_pulled));
        return 0;
}

/* ---- channel history windows */

typedef struct ChanEntry {
        int64_t time;
        char digest[DIGEST_MAX_LEN];
} ChanEntry;

typedef struct ChanCtx {
        BuildCtx *b;
        char *group;    /* env\0svc\0pointer\0 */
        size_t glen;
        ChanEntry *entries;
        size_t n, allocated;
} ChanCtx;

static void chan_evaluate(ChanCtx *c) {
        BuildCtx *b = c->b;
        const char *env = c->group;
        const char *svc = env + strlen(env) + 1;
        const char *pointer = svc + strlen(svc) + 1;
        _cleanup_free_ char *repo = strdup_printf("channels/%s/%s", env, svc);
        if (!repo)
                return;
        GcEffective eff;
        gc_effective(b->c, repo, &eff);
        int64_t window = gc_effective_window(&eff, env, pointer);
        for (size_t i = 0; i < c->n; i++) {
                bool current = i + 1 == c->n;
                int64_t until = current ? b->now : c->entries[i + 1].time; /* it left the pointer then */
                if (!current && (window <= 0 || until < b->now - window))
                        continue;
                uint32_t id = digest_table_intern(b->g->digests, c->entries[i].digest);
                if (id == DT_NONE)
                        continue;
                uint16_t *f = digest_table_flags(b->g->digests, id);
                if (*f & DT_PROTECTED)
                        continue;
                *f |= DT_PROTECTED;
                char until_s[32] = "current";
                if (!current)
                        format_timestamp(until_s, sizeof until_s, until + window);
                json_array_append_new(b->p->windows, json_pack("{s:s, s:s, s:s, s:s, s:s}", "channel", repo,
                                                               "pointer", pointer, "digest", c->entries[i].digest,
                                                               "protected_until", until_s, "rule", current ? "current" : "channel_window"));
        }
}

static void chan_flush(ChanCtx *c) {
        if (c->group && c->n > 0)
                chan_evaluate(c);
        free(c->group);
        c->group = NULL;
        c->n = 0;
}

static int chan_cb(void *userdata, const ChannelHistoryEntry *e) {
        ChanCtx *c = userdata;
        /* entries come grouped by pointer, oldest first; a group is env\0svc\0pointer\0 */
        size_t el = strlen(e->env), sl = strlen(e->svc), pl = strlen(e->pointer), glen = el + sl + pl + 3;
        if (!c->group || c->glen != glen || memcmp(c->group, e->env, el + 1) != 0 ||
            memcmp(c->group + el + 1, e->svc, sl + 1) != 0 || memcmp(c->group + el + sl + 2, e->pointer, pl + 1) != 0) {
                chan_flush(c);
                c->group = malloc(glen);
                if (!c->group)
                        return -ENOMEM;
                memcpy(c->group, e->env, el + 1);
                memcpy(c->group + el + 1, e->svc, sl + 1);
                memcpy(c->group + el + sl + 2, e->pointer, pl + 1);
                c->glen = glen;
        }
        if (!e->digest || digest_parse(e->digest, NULL) < 0)
                return 0;
        if (c->n >= c->allocated) {
                size_t na = c->allocated ? c->allocated * 2 : 16;
                ChanEntry *n = realloc(c->entries, na * sizeof(ChanEntry));
                if (!n)
                        return -ENOMEM;
                c->entries = n;
                c->allocated = na;
        }
        c->entries[c->n].time = e->time;
        snprintf(c->entries[c->n].digest, DIGEST_MAX_LEN, "%s", e->digest);
        c->n++;
        return 0;
}

/* ---- holds */

typedef struct HoldsCtx {
        HoldInfo *v;
        size_t n;
} HoldsCtx;

static int holds_cb(void *userdata, const HoldInfo *h) {
        HoldsCtx *c = userdata;
        HoldInfo *n = realloc(c->v, (c->n + 1) * sizeof(HoldInfo));
        if (!n)
                return -ENOMEM;
        c->v = n;
        HoldInfo *d = &c->v[c->n++];
        *d = *h;
        d->case_id = h->case_id ? strdup(h->case_id) : NULL;
        d->reason = h->reason ? strdup(h->reason) : NULL;
        d->actor = h->actor ? strdup(h->actor) : NULL;
        d->export_bundle = h->export_bundle ? strdup(h->export_bundle) : NULL;
        return 0;
}

static void hold_copy_done(HoldInfo *h) {
        free(h->case_id);
        free(h->reason);
        free(h->actor);
        free(h->export_bundle);
}

static int process_holds(BuildCtx *b) {
        HoldsCtx hc = {};
        int r = store_holds_foreach(b->s, b->snap, holds_cb, &hc);
        if (r < 0 && r != -EOPNOTSUPP) {
                for (size_t i = 0; i < hc.n; i++)
                        hold_copy_done(&hc.v[i]);
                free(hc.v);
                return log_error_errno(r, "gc: cannot list holds: %m");
        }
        const char *worm_path = json_string_value(json_object_get(b->c->worm, "path"));
        bool worm_configured = worm_path && *worm_path;
        for (size_t i = 0; i < hc.n; i++) {
                HoldInfo *h = &hc.v[i];
                bool active = hold_is_active(h, b->now);
                bool protect = false;
                const char *action;
                _cleanup_free_ char *bundle = NULL;
                char errbuf[128] = "";
                bool forgotten = false;
                if (active) {
                        protect = true;
                        action = "protected";
                } else if (b->o->dry_run) {
                        if (h->export_bundle) {
                                action = "already_exported";
                                bundle = strdup(h->export_bundle);
                        } else if (worm_configured)
                                action = "would_export";
                        else {
                                protect = true;
                                action = "kept_no_worm_target";
                        }
                } else {
                        /* also when the record names a bundle: this re-verifies it (and exports
                         * again if it no longer verifies) instead of trusting the record */
                        int q = store_hold_ensure_exported(b->s, h, b->c->worm, &bundle);
                        if (q > 0)
                                action = "exported";
                        else if (q == 0)
                                action = "already_exported";
                        if (q >= 0 && h->released != 0) {
                                /* released and its export verified: the record has done its job.
                                 * An expired but unreleased hold stays listed with its bundle
                                 * for operators to see. */
                                int k = store_hold_forget(b->s, h);
                                if (k < 0)
                                        plan_error(b->p, "cannot forget a released, exported hold", h->digest, k);
                                else
                                        forgotten = true;
                        } else if (q < 0) {
                                protect = true;
                                action = "export_failed_kept";
                                snprintf(errbuf, sizeof errbuf, "%s", strerror(-q));
                                plan_error(b->p, "WORM export of an inactive hold failed; content kept", h->digest, q);
                        }
                }
                if (protect) {
                        uint32_t id = digest_table_intern(b->g->digests, h->digest);
                        if (id != DT_NONE)
                                *digest_table_flags(b->g->digests, id) |= DT_HELD;
                }
                json_t *e = json_pack("{s:s, s:s, s:b, s:s, s:b}", "digest", h->digest, "case_id", strempty(h->case_id),
                                      "active", active, "action", action, "protects", protect);
                if (bundle)
                        json_object_set_new(e, "bundle", json_string(bundle));
                if (*errbuf)
                        json_object_set_new(e, "error", json_string(errbuf));
                if (forgotten)
                        json_object_set_new(e, "forgotten", json_true());
                json_array_append_new(b->p->holds, e);
        }
        for (size_t i = 0; i < hc.n; i++)
                hold_copy_done(&hc.v[i]);
        free(hc.v);
        return 0;
}

/* ---- evaluation */

static int cmp_versions(const void *a, const void *b, void *userdata) {
        const PlanLink *links = userdata;
        const PlanLink *x = &links[*(const uint32_t *) a], *y = &links[*(const uint32_t *) b];
        if (x->v_newest != y->v_newest)
                return x->v_newest > y->v_newest ? -1 : 1;
        /* ties: newer push first, then digest order for determinism */
        if (x->pushed != y->pushed)
                return x->pushed > y->pushed ? -1 : 1;
        return x->digest < y->digest ? -1 : x->digest > y->digest;
}

typedef struct Work {
        uint32_t *v;
        size_t n, allocated;
} Work;

static int work_push(Work *w, Plan *p, uint32_t link, GcRule rule) {
        PlanLink *l = &p->links[link];
        if (l->live)
                return 0;
        l->live = true;
        l->rule = rule;
        if (w->n >= w->allocated) {
                size_t na = w->allocated ? w->allocated * 2 : 256;
                uint32_t *n = realloc(w->v, na * sizeof(uint32_t));
                if (!n)
                        return -ENOMEM;
                w->v = n;
                w->allocated = na;
        }
        w->v[w->n++] = link;
        return 0;
}

static int propagate(Plan *p, Graph *g, Work *w) {
        while (w->n > 0) {
                uint32_t li = w->v[--w->n];
                PlanLink *l = &p->links[li];
                uint32_t repo = l->repo, digest = l->digest;
                uint32_t mi = *digest_table_manifest(g->digests, digest);
                if (mi != DT_NONE) {
                        const GraphManifest *gm = &g->manifests[mi];
                        for (uint32_t i = 0; i < gm->n_children; i++) {
                                char d[DIGEST_MAX_LEN];
                                digest_table_name(g->digests, gm->edges[i], d);
                                uint32_t c = plan_find_link(p, repo, d);
                                if (c != UINT32_MAX) {
                                        int r = work_push(w, p, c, RULE_CHILD_OF_INDEX);
                                        if (r < 0)
                                                return r;
                                }
                        }
                }
                /* referrers of this manifest in the same repository */
                char d[DIGEST_MAX_LEN];
                digest_table_name(g->digests, digest, d);
                size_t kl, head;
                _cleanup_free_ char *k = plan_key(p->repos[repo].name, d, &kl);
                if (!k)
                        return -ENOMEM;
                if (strmap_get(p->referrer_heads, k, kl, &head))
                        for (uint32_t x = (uint32_t) head; x != UINT32_MAX; x = p->links[x].next_referrer) {
                                int r = work_push(w, p, x, RULE_REFERRER);
                                if (r < 0)
                                        return r;
                        }
        }
        return 0;
}

int plan_build(Plan *p, Store *s, IndexSnapshot *snap, Graph *g, const GcConfig *c, const GcOptions *o, int64_t now) {
        int r;
        *p = (Plan) {};
        p->repo_index = strmap_new();
        p->link_index = strmap_new();
        p->referrer_heads = strmap_new();
        p->tag_index = strmap_new();
        p->holds = json_array();
        p->windows = json_array();
        p->errors = json_array();
        if (!p->repo_index || !p->link_index || !p->referrer_heads || !p->tag_index || !p->holds || !p->windows || !p->errors)
                return -ENOMEM;

        BuildCtx b = { .p = p, .g = g, .s = s, .snap = snap, .c = c, .o = o, .now = now };
        r = store_repo_manifests_foreach(s, snap, NULL, links_cb, &b);
        if (r < 0)
                return log_error_errno(r, "gc: cannot scan repository links: %m");
        r = store_tags_foreach(s, snap, NULL, tags_cb, &b);
        if (r < 0)
                return log_error_errno(r, "gc: cannot scan tags: %m");

        ChanCtx cc = { .b = &b };
        r = store_channel_history_foreach(s, snap, NULL, NULL, NULL, chan_cb, &cc);
        chan_flush(&cc);
        free(cc.entries);
        if (r < 0)
                return log_error_errno(r, "gc: cannot scan channel history: %m");
        r = process_holds(&b);
        if (r < 0)
                return r;

        /* referrer chains: links whose manifest has a subject linked in the same repository */
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                uint32_t mi = *digest_table_manifest(g->digests, l->digest);
                if (mi == DT_NONE || g->manifests[mi].subject == DT_NONE)
                        continue;
                char sd[DIGEST_MAX_LEN];
                digest_table_name(g->digests, g->manifests[mi].subject, sd);
                if (plan_find_link(p, l->repo, sd) == UINT32_MAX)
                        continue;
                l->subject_in_repo = true;
                size_t kl, head;
                _cleanup_free_ char *k = plan_key(p->repos[l->repo].name, sd, &kl);
                if (!k)
                        return -ENOMEM;
                l->next_referrer = strmap_get(p->referrer_heads, k, kl, &head) ? (uint32_t) head : UINT32_MAX;
                r = strmap_put(p->referrer_heads, k, kl, i);
                if (r < 0)
                        return r;
        }

        /* rank versions per repository: keep_last newest kept, older ones deleted if idle */
        _cleanup_free_ uint32_t *vers = NULL;
        size_t vers_alloc = 0;
        for (size_t ri = 0; ri < p->n_repos; ri++) {
                PlanRepo *pr = &p->repos[ri];
                if (!pr->selected)
                        continue;
                size_t nv = 0;
                if (pr->link_count > vers_alloc) {
                        uint32_t *n = realloc(vers, pr->link_count * sizeof(uint32_t));
                        if (!n)
                                return -ENOMEM;
                        vers = n;
                        vers_alloc = pr->link_count;
                }
                for (uint32_t i = pr->link_start; i < pr->link_start + pr->link_count; i++)
                        if (p->links[i].is_version)
                                vers[nv++] = i;
                qsort_r(vers, nv, sizeof(uint32_t), cmp_versions, p->links);
                for (size_t i = 0; i < nv; i++) {
                        PlanLink *l = &p->links[vers[i]];
                        int64_t activity = MAX(l->v_activity, MAX(l->pushed, l->last_pulled));
                        bool idle = pr->eff.idle_ns != INT64_MAX && now - activity >= pr->eff.idle_ns;
                        GcRule rule = (int64_t) i < pr->eff.keep_last ? RULE_KEEP_LAST : idle ? RULE_KEEP_LAST_IDLE : RULE_ACTIVE;
                        l->rule = rule; /* temporarily: the fate of its version tags */
                }
        }
        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (t->keep_forever || t->cosign_subject || t->link == UINT32_MAX)
                        continue;
                if (!p->repos[t->repo].selected) {
                        t->rule = RULE_OUT_OF_SCOPE;
                        continue;
                }
                t->rule = p->links[t->link].rule;
                if (t->rule == RULE_KEEP_LAST_IDLE) {
                        t->deleted = true;
                        p->links[t->link].n_tags_deleted++;
                }
        }

        /* base liveness of every link, then propagation through index children and referrers */
        Work w = {};
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                l->rule = RULE_UNTAGGED;
                uint16_t f = *digest_table_flags(g->digests, l->digest);
                GcRule live_rule = _GC_RULE_INVALID;
                if (!p->repos[l->repo].selected)
                        live_rule = RULE_OUT_OF_SCOPE;
                else if (f & DT_HELD)
                        live_rule = RULE_HOLD;
                else if (f & DT_PROTECTED)
                        live_rule = RULE_CHANNEL_WINDOW;
                else if (l->keep_forever_tagged)
                        live_rule = RULE_KEEP_FOREVER;
                else if (l->subject_in_repo)
                        live_rule = _GC_RULE_INVALID; /* follows its subject */
                else if (l->n_tags == 0 && now - MAX(l->pushed, l->last_pulled) < c->untagged_grace_ns)
                        live_rule = RULE_UNTAGGED_GRACE;
                if (live_rule != _GC_RULE_INVALID) {
                        r = work_push(&w, p, (uint32_t) i, live_rule);
                        if (r < 0)
                                goto finish;
                }
        }
        /* version tags that survive keep a link live */
        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (t->link == UINT32_MAX || t->deleted || t->cosign_subject || t->keep_forever)
                        continue;
                if (p->links[t->link].subject_in_repo)
                        continue; /* a referrer's own tags do not keep it */
                r = work_push(&w, p, t->link, t->rule == RULE_OUT_OF_SCOPE ? RULE_OUT_OF_SCOPE : RULE_TAGGED);
                if (r < 0)
                        goto finish;
        }
        for (;;) {
                r = propagate(p, g, &w);
                if (r < 0)
                        goto finish;
                /* cosign tag-scheme referrers follow the digest they name */
                bool more = false;
                for (size_t i = 0; i < p->n_tags; i++) {
                        PlanTag *t = &p->tags[i];
                        if (!t->cosign_subject || t->deleted || !p->links[t->cosign_link].live || p->links[t->link].live)
                                continue;
                        r = work_push(&w, p, t->link, RULE_REFERRER);
                        if (r < 0)
                                goto finish;
                        more = true;
                }
                if (!more)
                        break;
        }

        /* final fates: cosign tags, tags of dead links, rules of dead links */
        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (t->link == UINT32_MAX || t->deleted)
                        continue;
                PlanLink *l = &p->links[t->link];
                if (t->cosign_subject && !p->links[t->cosign_link].live) {
                        t->deleted = true;
                        t->rule = RULE_REFERRER;
                        l->n_tags_deleted++;
                } else if (!l->live) {
                        t->deleted = true;
                        t->rule = l->subject_in_repo ? RULE_REFERRER : t->rule;
                        l->n_tags_deleted++;
                }
        }
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                if (l->live)
                        continue;
                if (l->subject_in_repo)
                        l->rule = RULE_REFERRER;
                else if (l->n_tags > 0)
                        l->rule = RULE_KEEP_LAST_IDLE;
                else
                        l->rule = RULE_UNTAGGED;
        }
        /* children of a dead index die for the index's reason */
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                uint32_t mi = *digest_table_manifest(g->digests, l->digest);
                if (l->live || mi == DT_NONE || !g->manifests[mi].is_index)
                        continue;
                for (uint32_t k = 0; k < g->manifests[mi].n_children; k++) {
                        char d[DIGEST_MAX_LEN];
                        digest_table_name(g->digests, g->manifests[mi].edges[k], d);
                        uint32_t cl = plan_find_link(p, l->repo, d);
                        if (cl != UINT32_MAX && !p->links[cl].live && p->links[cl].n_tags == 0)
                                p->links[cl].rule = l->rule;
                }
        }
        r = 0;
finish:
        free(w.v);
        return r;
}
