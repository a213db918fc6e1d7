/* SPDX-License-Identifier: MIT */
/* API token records (column family "token", see storage.h): the only owner of that record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/store-internal.h"
#include "storage/tokens.h"

bool api_token_id_is_valid(const char *id) {
        if (!id || strlen(id) != API_TOKEN_ID_LEN)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

void api_token_done(ApiToken *t) {
        if (!t)
                return;
        free(t->name);
        strv_free(t->scopes);
        free(t->created_by);
        free(t->revoked_by);
        *t = (ApiToken) {};
}

static json_t *token_record(const ApiToken *t) {
        char hash[2 * sizeof(t->hash) + 1];
        hex_encode(t->hash, sizeof(t->hash), hash);
        json_t *scopes = json_array();
        for (char **s = t->scopes; s && *s; s++)
                json_array_append_new(scopes, json_string(*s));
        return json_pack("{s:s, s:o, s:s, s:I, s:I, s:I, s:s?, s:s?}", "name", t->name, "scopes", scopes, "sha256", hash,
                         "created", (json_int_t) t->created, "expires", (json_int_t) t->expires, "revoked",
                         (json_int_t) t->revoked, "created_by", t->created_by, "revoked_by", t->revoked_by);
}

static int token_decode(const char *key, size_t klen, const char *val, size_t vlen, ApiToken *ret) {
        if (klen != API_TOKEN_ID_LEN)
                return -EBADMSG;
        _cleanup_(json_decrefp) json_t *o = json_loadb(val, vlen, 0, NULL);
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *hash = json_string_value(json_object_get(o, "sha256"));
        json_t *scopes = json_object_get(o, "scopes");
        if (!name || !hash || strlen(hash) != 64 || !json_is_array(scopes))
                return -EBADMSG;
        _cleanup_(api_token_done) ApiToken t = {};
        memcpy(t.id, key, API_TOKEN_ID_LEN);
        if (hex_decode(hash, 64, t.hash) < 0)
                return -EBADMSG;
        t.name = strdup(name);
        t.scopes = calloc(json_array_size(scopes) + 1, sizeof(char *));
        if (!t.name || !t.scopes)
                return -ENOMEM;
        size_t i;
        json_t *s;
        json_array_foreach(scopes, i, s)
                if (!(t.scopes[i] = strdup(strempty(json_string_value(s)))))
                        return -ENOMEM;
        const char *cb = json_string_value(json_object_get(o, "created_by"));
        const char *rb = json_string_value(json_object_get(o, "revoked_by"));
        if ((cb && !(t.created_by = strdup(cb))) || (rb && !(t.revoked_by = strdup(rb))))
                return -ENOMEM;
        t.created = json_integer_value(json_object_get(o, "created"));
        t.expires = json_integer_value(json_object_get(o, "expires"));
        t.revoked = json_integer_value(json_object_get(o, "revoked"));
        *ret = t;
        t = (ApiToken) {};
        return 0;
}

static int token_write(Store *s, const ApiToken *t, const char *actor, const char *action) {
        if (s->read_only)
                return -EROFS;
        _cleanup_(json_decrefp) json_t *rec = token_record(t);
        _cleanup_free_ char *v = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!v || !b)
                return -ENOMEM;
        index_batch_put(b, INDEX_TOKEN, t->id, API_TOKEN_ID_LEN, v, strlen(v));
        /* the audit event names the token, never its hash */
        json_t *d = json_pack("{s:s, s:O}", "name", t->name, "scopes", json_object_get(rec, "scopes"));
        _cleanup_free_ char *target = strdup_printf("token:%s/%s", t->name, t->id);
        int r = audit_add(s, b, actor, action, target ? target : t->id, "ok", d);
        json_decref(d);
        if (r < 0)
                return r;
        return store_batch_commit(s, b);
}

int store_token_put(Store *s, const ApiToken *t, const char *actor) {
        if (!t || !api_token_id_is_valid(t->id) || !t->name || !t->scopes)
                return -EINVAL;
        if (store_kv_get(s, NULL, INDEX_TOKEN, t->id, API_TOKEN_ID_LEN, NULL, NULL) >= 0)
                return -EEXIST;
        return token_write(s, t, actor, "token.create");
}

int store_token_get(Store *s, const char *id, ApiToken *ret) {
        if (!api_token_id_is_valid(id))
                return -ENOENT;
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = store_kv_get(s, NULL, INDEX_TOKEN, id, API_TOKEN_ID_LEN, &v, &vl);
        if (r < 0)
                return r;
        return token_decode(id, API_TOKEN_ID_LEN, v, vl, ret);
}

typedef struct TokenIter {
        ApiTokenIterFn fn;
        void *userdata;
} TokenIter;

static int token_iter_one(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TokenIter *it = userdata;
        _cleanup_(api_token_done) ApiToken t = {};
        int r = token_decode(key, klen, val, vlen, &t);
        if (r == -EBADMSG) {
                log_warning("skipping an undecodable API token record");
                return 0;
        }
        return r < 0 ? r : it->fn(it->userdata, &t);
}

int store_tokens_foreach(Store *s, ApiTokenIterFn fn, void *userdata) {
        TokenIter it = { fn, userdata };
        return store_kv_iterate(s, NULL, INDEX_TOKEN, NULL, 0, NULL, 0, token_iter_one, &it);
}

int store_token_revoke(Store *s, const char *id, const char *actor) {
        _cleanup_(api_token_done) ApiToken t = {};
        int r = store_token_get(s, id, &t);
        if (r < 0)
                return r;
        if (t.revoked)
                return 0;
        t.revoked = clock_now_ns();
        free(t.revoked_by);
        t.revoked_by = actor ? strdup(actor) : NULL;
        return token_write(s, &t, actor, "token.revoke");
}
