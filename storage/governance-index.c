/* SPDX-License-Identifier: MIT */
/* Index helpers for governance (registry-api/governance.c): channel pointer moves as one
 * synced batch (tag record + tag history + whatever the caller adds: channel history, audit). */

#include "common/util.h"
#include "storage/store-internal.h"

int store_tag_move_add(Store *s, IndexBatch *b, const char *repo, const char *tag, const char *digest,
                       const char *actor, const char *action) {
        if (s->read_only)
                return -EROFS;
        if (!b || !repo || !tag || !digest || !repo_name_is_valid(repo) || !tag_is_valid(tag) || digest_parse(digest, NULL) < 0)
                return -EINVAL;

        /* the manifest must already be linked into repo (store_manifest_put by digest does that) */
        size_t kl;
        _cleanup_free_ char *rk = index_key_join(&kl, repo, digest, NULL);
        if (!rk)
                return -ENOMEM;
        int r = index_get(s, NULL, INDEX_REPO_MANIFEST, rk, kl, NULL, NULL);
        if (r < 0)
                return r;

        int64_t now = clock_now_ns();
        TagInfo old = {};
        bool exists = store_tag_get(s, repo, tag, &old) >= 0;
        TagInfo t = {
                .pushed = exists ? old.pushed : now,
                .updated = now,
                .last_pulled = exists ? old.last_pulled : 0,
                .flags = exists ? old.flags : 0,
        };
        snprintf(t.digest, sizeof t.digest, "%s", digest);
        uint8_t rec[TAG_RECORD_MAX];
        size_t rl = tag_info_encode(&t, rec);
        _cleanup_free_ char *tk = index_key_join(&kl, repo, tag, NULL);
        if (!tk)
                return -ENOMEM;
        index_batch_put(b, INDEX_TAG, tk, kl, rec, rl);

        /* tag_history: repo\0tag\0seq -> {digest, time, actor, action} (as store.c writes it) */
        _cleanup_free_ char *hk = malloc(kl + 9);
        if (!hk)
                return -ENOMEM;
        memcpy(hk, tk, kl);
        hk[kl] = 0;
        put_u64_be((uint8_t *) hk + kl + 1, store_next_seq(s));
        json_t *j = json_pack("{s:s, s:I, s:s, s:s}", "digest", digest, "time", (json_int_t) now, "actor",
                              actor ? actor : "anonymous", "action", action ? action : (exists ? "move" : "create"));
        _cleanup_free_ char *v = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!v)
                return -ENOMEM;
        index_batch_put(b, INDEX_TAG_HISTORY, hk, kl + 9, v, strlen(v));
        return 0;
}

int store_audit_add(Store *s, IndexBatch *b, const char *actor, const char *action, const char *target,
                    const char *result, json_t *detail) {
        return audit_add(s, b, actor, action, target, result, detail);
}
