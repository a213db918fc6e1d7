/* SPDX-License-Identifier: MIT */
/* The release chain (repo → dev:candidate → ... → prod:candidate → prod:stable), channel
 * repositories channels/<env>/<svc> and their pointers: moves (the manifest's closure linked in
 * first, then one store_channel_move()), the histories and the state the API shows. */

#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"
#include "storage/records.h"

/* ------------------------------------------------------------------ the release chain */

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

int governance_repo_svc(Governance *g, const char *repo, char **ret_svc, char **ret_app_repo) {
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

static int channel_history(Governance *g, const char *svc, const ChannelRef *c, json_t **ret) {
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

/* ------------------------------------------------------------------ state and histories */

json_t *governance_channels_state(Governance *g, const char *svc) {
        json_t *o = json_object();
        ChannelRef c = { .source = true };
        ChannelRef next;
        while (channel_ref_next(g, &c, &next) >= 0) {
                c = next;
                char name[64], d[DIGEST_MAX_LEN];
                channel_ref_format(&c, name, sizeof(name));
                json_object_set_new(o, name, channel_get(g, svc, &c, d) >= 0 ? json_string(d) : json_null());
        }
        /* stable pointers of the other environments, if someone set them */
        for (size_t i = 0; i + 1 < g->n_envs; i++) {
                ChannelRef s = { 0 };
                snprintf(s.env, sizeof(s.env), "%s", g->envs[i]);
                snprintf(s.pointer, sizeof(s.pointer), CHANNEL_STABLE);
                char name[64], d[DIGEST_MAX_LEN];
                channel_ref_format(&s, name, sizeof(name));
                if (channel_get(g, svc, &s, d) >= 0)
                        json_object_set_new(o, name, json_string(d));
        }
        return o;
}

char *gov_chain_text(Governance *g) {
        char buf[512];
        size_t l = 0;
        ChannelRef c = { .source = true }, next;
        l += (size_t) snprintf(buf + l, sizeof(buf) - l, "repo");
        while (channel_ref_next(g, &c, &next) >= 0 && l < sizeof(buf)) {
                c = next;
                char name[64];
                channel_ref_format(&c, name, sizeof(name));
                l += (size_t) snprintf(buf + l, sizeof(buf) - l, " → %s", name);
        }
        return strdup(buf);
}

int governance_channel_histories(Governance *g, const char *repo, const char *tag, json_t **ret) {
        _cleanup_free_ char *svc = NULL;
        int r = governance_repo_svc(g, repo, &svc, NULL);
        if (r < 0)
                return r;
        ChannelRef only;
        bool filter = tag && channel_ref_parse(g, tag, &only) >= 0 && !only.source;
        if (tag && !filter && (streq(tag, CHANNEL_STABLE) || streq(tag, CHANNEL_CANDIDATE)) && startswith(repo, "channels/")) {
                /* channels/<env>/<svc>?tag=stable */
                const char *rest = repo + strlen("channels/");
                const char *slash = strchr(rest, '/');
                if (slash && (size_t) (slash - rest) < sizeof(only.env)) {
                        memset(&only, 0, sizeof(only));
                        memcpy(only.env, rest, (size_t) (slash - rest));
                        snprintf(only.pointer, sizeof(only.pointer), "%s", tag);
                        filter = true;
                }
        }
        json_t *channels = json_object();
        if (!channels)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_envs; i++) {
                const char *ptrs[] = { CHANNEL_CANDIDATE, CHANNEL_STABLE };
                for (size_t j = 0; j < ELEMENTSOF(ptrs); j++) {
                        ChannelRef cr = { 0 };
                        snprintf(cr.env, sizeof(cr.env), "%s", g->envs[i]);
                        snprintf(cr.pointer, sizeof(cr.pointer), "%s", ptrs[j]);
                        if (filter && (!streq(only.env, cr.env) || !streq(only.pointer, cr.pointer)))
                                continue;
                        json_t *h = NULL;
                        if (channel_history(g, svc, &cr, &h) < 0)
                                continue;
                        if (json_array_size(h) == 0) {
                                json_decref(h);
                                continue;
                        }
                        char name[64], d[DIGEST_MAX_LEN];
                        channel_ref_format(&cr, name, sizeof(name));
                        json_t *o = json_pack("{s:o, s:o}", "current",
                                              channel_get(g, svc, &cr, d) >= 0 ? json_string(d) : json_null(), "history", h);
                        json_object_set_new(channels, name, o);
                }
        }
        *ret = channels;
        return 0;
}
