/* SPDX-License-Identifier: MIT */
/* Channel records (see storage.h, "governance records"): the pointer tags of the channel
 * repositories channels/<env>/<svc>, and channel_history
 *   env\0svc\0pointer\0seq(u64 BE) -> JSON {digest, time (RFC 3339), actor, action, channel,
 *                                           time_ns, previous, <the mover's detail>}
 * Their keys exist only here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/store-internal.h"

#define CHANNELS_PREFIX "channels/"
#define ENV_MAX 64

static bool env_is_valid(const char *env) {
        return env && *env && strlen(env) < ENV_MAX && !strchr(env, '/') && !strchr(env, ':');
}

/* "channels/<env>/<svc>", or NULL (errno EINVAL/ENOMEM) */
static char *channel_repo(const char *env, const char *svc) {
        if (!env_is_valid(env) || !svc) {
                errno = EINVAL;
                return NULL;
        }
        char *repo = strdup_printf(CHANNELS_PREFIX "%s/%s", env, svc);
        if (repo && !repo_name_is_valid(repo)) {
                free(repo);
                errno = EINVAL;
                return NULL;
        }
        return repo;
}

/* ---- moves */

static json_t *time_json(int64_t ns) {
        char buf[64];
        return json_string(format_timestamp(buf, sizeof buf, ns));
}

int store_channel_move(Store *s, const ChannelMove *m, json_t **ret_entry) {
        if (s->read_only)
                return -EROFS;
        if (!m || !m->pointer || !tag_is_valid(m->pointer) || !m->digest || digest_parse(m->digest, NULL) < 0 ||
            !m->action || !*m->action)
                return -EINVAL;
        _cleanup_free_ char *repo = channel_repo(m->env, m->svc);
        if (!repo)
                return -errno;

        /* the manifest must already be linked into the channel repository (a manifest PUT by
         * digest with STORE_WRITE_CHANNEL_MOVE does that) */
        size_t kl;
        _cleanup_free_ char *rk = index_key_join(&kl, repo, m->digest, NULL);
        if (!rk)
                return -ENOMEM;
        int r = index_get(s, NULL, INDEX_REPO_MANIFEST, rk, kl, NULL, NULL);
        if (r < 0)
                return r;

        int64_t now = clock_now_ns();
        TagInfo old = {};
        bool exists = store_tag_get(s, repo, m->pointer, &old) >= 0;
        TagInfo t = {
                .pushed = exists ? old.pushed : now,
                .updated = now,
                .last_pulled = exists ? old.last_pulled : 0,
                .flags = exists ? old.flags : 0,
        };
        snprintf(t.digest, sizeof t.digest, "%s", m->digest);

        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        uint8_t rec[TAG_RECORD_MAX];
        size_t rl = tag_info_encode(&t, rec);
        _cleanup_free_ char *tk = index_key_join(&kl, repo, m->pointer, NULL);
        if (!tk)
                return -ENOMEM;
        index_batch_put(b, INDEX_TAG, tk, kl, rec, rl);
        r = tag_history_add(s, b, repo, m->pointer, m->digest, m->actor, exists ? "move" : "create", now);
        if (r < 0)
                return r;

        _cleanup_(json_decrefp) json_t *e = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:o}", "digest", m->digest, "time",
                                                      time_json(now), "actor", m->actor ? m->actor : "anonymous",
                                                      "action", m->action, "channel", repo, "time_ns", (json_int_t) now,
                                                      "previous", exists ? json_string(old.digest) : json_null());
        if (!e || (m->detail && json_object_update_missing(e, m->detail) < 0))
                return -ENOMEM;
        _cleanup_free_ char *val = json_dumps(e, JSON_COMPACT);
        _cleanup_free_ char *hk0 = index_key_join(&kl, m->env, m->svc, m->pointer, "", NULL);
        _cleanup_free_ char *hk = hk0 ? malloc(kl + 8) : NULL;
        if (!val || !hk)
                return -ENOMEM;
        memcpy(hk, hk0, kl);
        put_u64_be((uint8_t *) hk + kl, store_next_seq(s));
        index_batch_put(b, INDEX_CHANNEL_HISTORY, hk, kl + 8, val, strlen(val));

        _cleanup_free_ char *target = strdup_printf("%s:%s", repo, m->pointer);
        if (!target)
                return -ENOMEM;
        r = audit_add(s, b, m->actor, m->action, target, "ok", e);
        if (r < 0)
                return r;
        r = store_batch_commit(s, b);
        if (r < 0)
                return r;
        if (ret_entry)
                *ret_entry = steal_pointer(&e);
        return 0;
}

/* ---- history */

typedef struct HistoryIter {
        ChannelHistoryFn fn;
        void *userdata;
} HistoryIter;

/* "a\0b\0c" of exactly three non-empty parts, each shorter than its buffer */
static bool split3(const char *key, size_t klen, char *a, size_t an, char *b, size_t bn, char *c, size_t cn) {
        char *out[3] = { a, b, c };
        size_t cap[3] = { an, bn, cn };
        size_t part = 0, start = 0;
        for (size_t i = 0; i <= klen; i++) {
                if (i < klen && key[i] != 0)
                        continue;
                size_t l = i - start;
                if (part >= 3 || l == 0 || l >= cap[part])
                        return false;
                memcpy(out[part], key + start, l);
                out[part][l] = 0;
                part++;
                start = i + 1;
        }
        return part == 3;
}

static int64_t entry_time(json_t *j) {
        json_t *t = json_object_get(j, "time_ns");
        if (json_is_integer(t))
                return json_integer_value(t);
        t = json_object_get(j, "time");
        if (json_is_integer(t))
                return json_integer_value(t);
        if (json_is_real(t))
                return (int64_t) json_real_value(t);
        int64_t ns;
        if (json_is_string(t) && parse_timestamp_ns(json_string_value(t), &ns) >= 0)
                return ns;
        return 0;
}

static int history_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        HistoryIter *it = userdata;
        if (klen < 3 + 3 + 8 || key[klen - 9] != 0)
                return 0;
        char env[ENV_MAX], svc[REPO_NAME_MAX + 1], pointer[TAG_MAX + 1];
        if (!split3(key, klen - 9, env, sizeof env, svc, sizeof svc, pointer, sizeof pointer))
                return 0; /* not a record of ours: fsck's concern */
        _cleanup_(json_decrefp) json_t *j = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(j))
                return 0;
        ChannelHistoryEntry e = {
                .env = env,
                .svc = svc,
                .pointer = pointer,
                .seq = get_u64_be((const uint8_t *) key + klen - 8),
                .digest = json_string_value(json_object_get(j, "digest")),
                .time = entry_time(j),
                .actor = json_string_value(json_object_get(j, "actor")),
                .action = json_string_value(json_object_get(j, "action")),
                .previous = json_string_value(json_object_get(j, "previous")),
                .record = j,
        };
        return it->fn(it->userdata, &e);
}

int store_channel_history_foreach(Store *s, IndexSnapshot *snap, const char *env, const char *svc, const char *pointer,
                                  ChannelHistoryFn fn, void *userdata) {
        size_t pl = 0;
        _cleanup_free_ char *prefix = !env ? strdup("")
                                    : !svc ? index_key_join(&pl, env, "", NULL)
                                    : !pointer ? index_key_join(&pl, env, svc, "", NULL)
                                               : index_key_join(&pl, env, svc, pointer, "", NULL);
        if (!prefix)
                return -ENOMEM;
        HistoryIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_CHANNEL_HISTORY, prefix, pl, NULL, 0, history_cb, &it);
}

/* ---- pointer tags */

typedef struct ChannelTagIter {
        ChannelTagFn fn;
        void *userdata;
} ChannelTagIter;

static int channel_tag_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ChannelTagIter *it = userdata;
        const char *nul = memchr(key, 0, klen);
        if (!nul)
                return 0;
        size_t rl = (size_t) (nul - key), tl = klen - rl - 1;
        const char *rest = key + strlen(CHANNELS_PREFIX);
        const char *slash = memchr(rest, '/', rl - strlen(CHANNELS_PREFIX));
        if (!slash || tl == 0 || tl > TAG_MAX || memchr(nul + 1, 0, tl))
                return 0;
        char env[ENV_MAX], svc[REPO_NAME_MAX + 1], tag[TAG_MAX + 1];
        size_t el = (size_t) (slash - rest), sl = (size_t) (nul - slash - 1);
        if (el == 0 || el >= sizeof env || sl == 0 || sl >= sizeof svc)
                return 0;
        memcpy(env, rest, el);
        env[el] = 0;
        memcpy(svc, slash + 1, sl);
        svc[sl] = 0;
        memcpy(tag, nul + 1, tl);
        tag[tl] = 0;
        TagInfo info;
        if (tag_info_decode(val, vlen, &info) < 0)
                return 0;
        return it->fn(it->userdata, env, svc, tag, &info);
}

int store_channel_tags_foreach(Store *s, IndexSnapshot *snap, const char *env, const char *svc, ChannelTagFn fn,
                               void *userdata) {
        if ((env && !env_is_valid(env)) || (svc && !env))
                return -EINVAL;
        /* "channels/", "channels/<env>/" or "channels/<env>/<svc>\0" */
        size_t pl;
        _cleanup_free_ char *prefix = !env ? strdup(CHANNELS_PREFIX)
                                    : !svc ? strdup_printf(CHANNELS_PREFIX "%s/", env)
                                           : strdup_printf(CHANNELS_PREFIX "%s/%s", env, svc);
        if (!prefix)
                return -ENOMEM;
        pl = strlen(prefix) + (svc ? 1 : 0);
        ChannelTagIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_TAG, prefix, pl, NULL, 0, channel_tag_cb, &it);
}
