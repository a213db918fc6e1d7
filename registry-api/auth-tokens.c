/* SPDX-License-Identifier: MIT */
/* API tokens (see auth.h): the in-memory copy of the store's tokens that requests check, and
 * their creation and revocation. */

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "registry-api/auth-internal.h"

/* ------------------------------------------------------------------ API tokens in memory */

/* must hold tokens_lock */
static const ApiToken *token_find_locked(Auth *a, const char *id) {
        for (size_t i = 0; i < a->n_tokens; i++)
                if (streq(a->tokens[i].id, id))
                        return &a->tokens[i];
        return NULL;
}

static bool token_usable(const ApiToken *t, int64_t now) {
        return t && !t->revoked && (t->expires == 0 || t->expires > now);
}

static int token_copy(const ApiToken *from, ApiToken *to) {
        *to = *from;
        to->name = strdup(from->name);
        to->created_by = from->created_by ? strdup(from->created_by) : NULL;
        to->revoked_by = from->revoked_by ? strdup(from->revoked_by) : NULL;
        size_t n = 0;
        while (from->scopes && from->scopes[n])
                n++;
        to->scopes = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; to->scopes && i < n; i++)
                to->scopes[i] = strdup(from->scopes[i]);
        bool ok = to->name && to->scopes && (!from->created_by || to->created_by) && (!from->revoked_by || to->revoked_by);
        for (size_t i = 0; ok && i < n; i++)
                ok = to->scopes[i] != NULL;
        if (!ok) {
                api_token_done(to);
                return -ENOMEM;
        }
        return 0;
}

/* must hold tokens_lock */
static int token_remember_locked(Auth *a, const ApiToken *t) {
        for (size_t i = 0; i < a->n_tokens; i++)
                if (streq(a->tokens[i].id, t->id)) {
                        ApiToken copy;
                        int r = token_copy(t, &copy);
                        if (r < 0)
                                return r;
                        api_token_done(&a->tokens[i]);
                        a->tokens[i] = copy;
                        return 0;
                }
        if (a->n_tokens == a->allocated_tokens) {
                size_t na = a->allocated_tokens ? 2 * a->allocated_tokens : 16;
                ApiToken *v = realloc(a->tokens, na * sizeof(ApiToken));
                if (!v)
                        return -ENOMEM;
                a->tokens = v;
                a->allocated_tokens = na;
        }
        int r = token_copy(t, &a->tokens[a->n_tokens]);
        if (r >= 0)
                a->n_tokens++;
        return r;
}

static int token_load_cb(void *userdata, const ApiToken *t) {
        Auth *a = userdata;
        pthread_mutex_lock(&a->tokens_lock);
        int r = token_remember_locked(a, t);
        pthread_mutex_unlock(&a->tokens_lock);
        return r;
}

/* "plura_<id>_<secret>": the identity of a valid, usable token. */
bool token_secret_verify(Auth *a, const char *secret, Identity *ret) {
        const char *rest = startswith(secret, TOKEN_PREFIX);
        if (!rest || strlen(rest) < API_TOKEN_ID_LEN + 2 || rest[API_TOKEN_ID_LEN] != '_')
                return false;
        char id[API_TOKEN_ID_LEN + 1];
        memcpy(id, rest, API_TOKEN_ID_LEN);
        id[API_TOKEN_ID_LEN] = 0;
        uint8_t h[32];
        auth_sha256(a, secret, strlen(secret), NULL, 0, h);
        bool ok = false;
        pthread_mutex_lock(&a->tokens_lock);
        const ApiToken *t = token_find_locked(a, id);
        if (t && token_usable(t, clock_now_ns()) && CRYPTO_memcmp(t->hash, h, 32) == 0) {
                identity_set(ret, IDENTITY_TOKEN, t->name, t->id);
                size_t n = 0;
                while (t->scopes[n])
                        n++;
                ret->scopes = calloc(n + 1, sizeof(char *));
                ok = ret->scopes != NULL;
                for (size_t i = 0; ok && i < n; i++)
                        ok = (ret->scopes[i] = strdup(t->scopes[i])) != NULL;
        }
        pthread_mutex_unlock(&a->tokens_lock);
        if (!ok)
                identity_done(ret);
        return ok;
}

/* Whether an API token id is still usable (bearer tokens issued for it die with it). */
bool token_id_usable(Auth *a, const char *id, char ***ret_scopes) {
        pthread_mutex_lock(&a->tokens_lock);
        const ApiToken *t = token_find_locked(a, id);
        bool ok = token_usable(t, clock_now_ns());
        if (ok && ret_scopes) {
                size_t n = 0;
                while (t->scopes[n])
                        n++;
                *ret_scopes = calloc(n + 1, sizeof(char *));
                ok = *ret_scopes != NULL;
                for (size_t i = 0; ok && i < n; i++)
                        ok = ((*ret_scopes)[i] = strdup(t->scopes[i])) != NULL;
        }
        pthread_mutex_unlock(&a->tokens_lock);
        return ok;
}

/* ------------------------------------------------------------------ API token management */

static bool token_name_is_valid(const char *s) {
        if (!s || !*s || strlen(s) > 64 || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return true;
}

/* "<repo glob>:<action>[,<action>...]" with known actions */
static int token_scope_check(const char *scope, char *err, size_t errlen) {
        const char *colon = scope ? strchr(scope, ':') : NULL;
        if (!colon || colon == scope || !colon[1]) {
                snprintf(err, errlen, "scope \"%s\": expected <repository glob>:<action>[,<action>...]", strempty(scope));
                return -EINVAL;
        }
        _cleanup_free_ char *actions = strdup(colon + 1);
        if (!actions)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(actions, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (!acl_action_is_valid(t)) {
                        snprintf(err, errlen, "scope \"%s\": unknown action \"%s\"", scope, t);
                        return -EINVAL;
                }
        return 0;
}

int auth_token_create(Auth *a, const char *name, char **scopes, int64_t expires, const char *actor, ApiToken *ret,
                      char **ret_secret, char *err, size_t errlen) {
        if (!token_name_is_valid(name)) {
                snprintf(err, errlen, "name: expected [a-z0-9][a-z0-9._-]{0,63}");
                return -EINVAL;
        }
        if (!scopes || !scopes[0]) {
                snprintf(err, errlen, "scope: at least one scope is needed");
                return -EINVAL;
        }
        for (char **s = scopes; *s; s++) {
                int r = token_scope_check(*s, err, errlen);
                if (r < 0)
                        return r;
        }
        uint8_t idb[API_TOKEN_ID_LEN / 2], sec[TOKEN_SECRET_BYTES];
        if (RAND_bytes(idb, sizeof idb) != 1 || RAND_bytes(sec, sizeof sec) != 1)
                return -EIO;
        _cleanup_(api_token_done) ApiToken t = { .created = clock_now_ns(), .expires = expires };
        hex_encode(idb, sizeof idb, t.id);
        _cleanup_free_ char *b64 = NULL;
        int r = base64url_encode(sec, sizeof sec, &b64);
        OPENSSL_cleanse(sec, sizeof sec);
        if (r < 0)
                return r;
        _cleanup_free_ char *secret = strdup_printf(TOKEN_PREFIX "%s_%s", t.id, b64);
        t.name = strdup(name);
        t.created_by = actor ? strdup(actor) : NULL;
        size_t n = 0;
        while (scopes[n])
                n++;
        t.scopes = calloc(n + 1, sizeof(char *));
        if (!secret || !t.name || !t.scopes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(t.scopes[i] = strdup(scopes[i])))
                        return -ENOMEM;
        auth_sha256(a, secret, strlen(secret), NULL, 0, t.hash);
        r = store_token_put(a->store, &t, actor);
        if (r < 0)
                return r;
        (void) token_load_cb(a, &t);
        *ret = t;
        t = (ApiToken) {};
        *ret_secret = steal_pointer(&secret);
        return 0;
}

int auth_token_revoke(Auth *a, const char *id_or_name, const char *actor) {
        /* the ids to revoke, collected first: the store write happens outside the lock */
        pthread_mutex_lock(&a->tokens_lock);
        char (*ids)[API_TOKEN_ID_LEN + 1] = calloc(a->n_tokens + 1, sizeof(*ids));
        size_t n = 0;
        for (size_t i = 0; ids && i < a->n_tokens; i++)
                if (!a->tokens[i].revoked && (streq(a->tokens[i].id, id_or_name) || streq(a->tokens[i].name, id_or_name)))
                        memcpy(ids[n++], a->tokens[i].id, API_TOKEN_ID_LEN + 1);
        pthread_mutex_unlock(&a->tokens_lock);
        if (!ids)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = store_token_revoke(a->store, ids[i], actor);
                ApiToken t = {};
                if (r >= 0 && store_token_get(a->store, ids[i], &t) >= 0) {
                        (void) token_load_cb(a, &t);
                        api_token_done(&t);
                }
        }
        free(ids);
        atomic_fetch_add(&a->generation, 1); /* cached logins with it miss now */
        return r < 0 ? r : (int) n;
}

uint64_t auth_bcrypt_count(const Auth *a) {
        return a ? atomic_load(&a->bcrypts) : 0;
}

int auth_tokens_load(Auth *a) {
        return store_tokens_foreach(a->store, token_load_cb, a);
}
