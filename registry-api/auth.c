/* SPDX-License-Identifier: MIT */
/* Identity and rights (see auth.h): credentials, caches, failed-login counts, the token service
 * and API tokens. */

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "registry-api/acl.h"
#include "registry-api/auth.h"
#include "registry-api/htpasswd.h"
#include "registry-api/jws.h"
#include "storage/tokens.h"

#include "registry-api/auth-internal.h"

/* ------------------------------------------------------------------ small helpers */

void auth_sha256(Auth *auth, const void *a, size_t al, const void *b, size_t bl, uint8_t out[32]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned n = 32;
        if (!c || EVP_DigestInit_ex(c, auth->sha256, NULL) != 1 || EVP_DigestUpdate(c, a, al) != 1 ||
            (b && EVP_DigestUpdate(c, "\0", 1) != 1) || (b && EVP_DigestUpdate(c, b, bl) != 1) ||
            EVP_DigestFinal_ex(c, out, &n) != 1)
                memset(out, 0, 32); /* only on allocation failure: a key nothing matches by chance */
        EVP_MD_CTX_free(c);
}

static uint64_t slot_of(const uint8_t key[32], size_t slots) {
        uint64_t v;
        memcpy(&v, key, sizeof v);
        return v % slots;
}

void identity_done(Identity *id) {
        if (!id)
                return;
        for (size_t i = 0; i < id->n_access; i++)
                free(id->access[i].repo);
        free(id->access);
        strv_free(id->scopes);
        *id = (Identity) {};
}

static int identity_copy(const Identity *from, Identity *to) {
        *to = *from;
        to->access = NULL;
        to->n_access = 0;
        to->scopes = NULL;
        if (from->n_access > 0) {
                to->access = calloc(from->n_access, sizeof(BearerAccess));
                if (!to->access)
                        return -ENOMEM;
                for (size_t i = 0; i < from->n_access; i++) {
                        to->access[i] = from->access[i];
                        if (!(to->access[i].repo = strdup(from->access[i].repo))) {
                                identity_done(to);
                                return -ENOMEM;
                        }
                        to->n_access++;
                }
        }
        if (from->scopes) {
                size_t n = 0;
                while (from->scopes[n])
                        n++;
                to->scopes = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; to->scopes && i < n; i++)
                        if (!(to->scopes[i] = strdup(from->scopes[i]))) {
                                identity_done(to);
                                return -ENOMEM;
                        }
                if (!to->scopes) {
                        identity_done(to);
                        return -ENOMEM;
                }
        }
        return 0;
}

void identity_format(const Identity *id, char *buf, size_t len) {
        switch (id->kind) {
        case IDENTITY_USER:
                snprintf(buf, len, "%s", id->name);
                break;
        case IDENTITY_TOKEN:
                snprintf(buf, len, "token:%s/%s", id->name, id->token_id);
                break;
        default:
                snprintf(buf, len, "anonymous");
        }
}

void identity_set(Identity *id, IdentityKind kind, const char *name, const char *token_id) {
        *id = (Identity) { .kind = kind, .credentials = kind != IDENTITY_ANONYMOUS };
        snprintf(id->name, sizeof id->name, "%s", strempty(name));
        snprintf(id->token_id, sizeof id->token_id, "%s", strempty(token_id));
}

/* ------------------------------------------------------------------ htpasswd */

static HtpasswdRef *htpasswd_get(Auth *a) {
        pthread_mutex_lock(&a->lock);
        HtpasswdRef *r = a->htpasswd;
        if (r)
                r->refs++;
        pthread_mutex_unlock(&a->lock);
        return r;
}

static void htpasswd_put(Auth *a, HtpasswdRef *r) {
        if (!r)
                return;
        pthread_mutex_lock(&a->lock);
        bool last = --r->refs == 0;
        pthread_mutex_unlock(&a->lock);
        if (last) {
                htpasswd_free(r->h);
                free(r);
        }
}

static int htpasswd_swap_in(Auth *a, char *err, size_t errlen) {
        struct stat st;
        if (stat(a->htpasswd_path, &st) < 0) {
                snprintf(err, errlen, "%s: %s", a->htpasswd_path, strerror(errno));
                return -errno;
        }
        Htpasswd *h = NULL;
        int r = htpasswd_load(a->htpasswd_path, &h, err, errlen);
        if (r < 0)
                return r;
        HtpasswdRef *ref = calloc(1, sizeof(HtpasswdRef));
        if (!ref) {
                htpasswd_free(h);
                return -ENOMEM;
        }
        ref->h = h;
        ref->refs = 1;
        pthread_mutex_lock(&a->lock);
        HtpasswdRef *old = a->htpasswd;
        a->htpasswd = ref;
        a->htpasswd_st = st;
        pthread_mutex_unlock(&a->lock);
        atomic_fetch_add(&a->generation, 1); /* logins cached with the old file verify again */
        htpasswd_put(a, old);
        log_info("auth: %zu user(s) from %s", htpasswd_size(h), a->htpasswd_path);
        return 0;
}

int auth_reload(Auth *a) {
        if (!a || !a->htpasswd_path)
                return 0;
        char err[512] = "";
        int r = htpasswd_swap_in(a, err, sizeof err);
        if (r < 0)
                log_error("auth: keeping the users loaded before: %s", err);
        return r;
}

int auth_reload_if_changed(Auth *a) {
        if (!a || !a->htpasswd_path)
                return 0;
        struct stat st;
        if (stat(a->htpasswd_path, &st) < 0)
                return 0; /* a file being replaced: the next look sees the new one */
        pthread_mutex_lock(&a->lock);
        bool same = st.st_ino == a->htpasswd_st.st_ino && st.st_size == a->htpasswd_st.st_size &&
                    st.st_mtim.tv_sec == a->htpasswd_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == a->htpasswd_st.st_mtim.tv_nsec;
        pthread_mutex_unlock(&a->lock);
        return same ? 0 : auth_reload(a);
}

/* ------------------------------------------------------------------ failed logins */

static FailSlot *fail_slot_locked(Auth *a, const char *key) {
        uint8_t h[32];
        auth_sha256(a, key, strlen(key), NULL, 0, h);
        FailSlot *f = &a->fails[slot_of(h, FAIL_SLOTS)];
        if (!streq(f->key, key)) {
                snprintf(f->key, sizeof f->key, "%s", key);
                f->failures = 0;
                f->window_start = 0;
        }
        return f;
}

/* Seconds until key may try again (0 = now). */
static unsigned fail_blocked_locked(Auth *a, const char *key, unsigned max, int64_t now) {
        FailSlot *f = fail_slot_locked(a, key);
        if (now - f->window_start >= a->fail_window) {
                f->failures = 0;
                f->window_start = now;
        }
        if (f->failures < max)
                return 0;
        return (unsigned) ((f->window_start + a->fail_window - now) / (int64_t) NSEC_PER_SEC) + 1;
}

static void fail_keys(const char *client, const char *user, char ck[HTTP_AUTH_USER_MAX + 8],
                      char uk[HTTP_AUTH_USER_MAX + 8]) {
        snprintf(ck, HTTP_AUTH_USER_MAX + 8, "c:%s", strempty(client));
        snprintf(uk, HTTP_AUTH_USER_MAX + 8, "u:%s", strempty(user));
}

static unsigned login_blocked(Auth *a, const char *client, const char *user) {
        char ck[HTTP_AUTH_USER_MAX + 8], uk[HTTP_AUTH_USER_MAX + 8];
        fail_keys(client, user, ck, uk);
        int64_t now = clock_now_ns();
        pthread_mutex_lock(&a->fail_lock);
        unsigned c = fail_blocked_locked(a, ck, a->fail_per_client, now);
        unsigned u = user ? fail_blocked_locked(a, uk, a->fail_per_user, now) : 0;
        pthread_mutex_unlock(&a->fail_lock);
        return MAX(c, u);
}

static void login_failed(Auth *a, const char *client, const char *user, const char *why) {
        char ck[HTTP_AUTH_USER_MAX + 8], uk[HTTP_AUTH_USER_MAX + 8];
        fail_keys(client, user, ck, uk);
        pthread_mutex_lock(&a->fail_lock);
        unsigned n = ++fail_slot_locked(a, ck)->failures;
        if (user)
                fail_slot_locked(a, uk)->failures++;
        pthread_mutex_unlock(&a->fail_lock);
        metrics_counter_add(M_FAILED, NULL, 1);
        log_warning("auth: failed login%s%s from %s: %s (%u in this window)", user ? " of " : "", strempty(user),
                    strempty(client), why, n);
}

static void login_succeeded(Auth *a, const char *client, const char *user) {
        char ck[HTTP_AUTH_USER_MAX + 8], uk[HTTP_AUTH_USER_MAX + 8];
        fail_keys(client, user, ck, uk);
        pthread_mutex_lock(&a->fail_lock);
        FailSlot *c = fail_slot_locked(a, ck), *u = fail_slot_locked(a, uk);
        unsigned before = MAX(c->failures, u->failures);
        c->failures = u->failures = 0;
        pthread_mutex_unlock(&a->fail_lock);
        if (before > 0)
                log_info("auth: %s logged in from %s after %u failed attempt(s)", user, strempty(client), before);
}

/* ------------------------------------------------------------------ Basic credentials */

/* must hold cache_lock */
static bool basic_cached_locked(Auth *a, const uint8_t key[32], Identity *ret) {
        BasicSlot *s = &a->basic[slot_of(key, BASIC_SLOTS)];
        if (!s->used || s->generation != atomic_load(&a->generation) || s->expires <= clock_now_ns() ||
            CRYPTO_memcmp(s->key, key, 32) != 0)
                return false;
        identity_set(ret, s->kind, s->name, s->token_id);
        return true;
}

static bool basic_cached(Auth *a, const uint8_t key[32], Identity *ret) {
        pthread_mutex_lock(&a->cache_lock);
        bool hit = basic_cached_locked(a, key, ret);
        pthread_mutex_unlock(&a->cache_lock);
        return hit;
}

/* Waits while another request verifies the same credentials, then looks in the cache again: true
 * with *ret set if they are there now. Else *ret_claim is the slot that marks this request as the
 * one verifying them (NULL if the slot is busy with other credentials: then it verifies them
 * unmarked), to be released by basic_verified(). */
static bool basic_wait_or_claim(Auth *a, const uint8_t key[32], Identity *ret, VerifyingSlot **ret_claim) {
        *ret_claim = NULL;
        pthread_mutex_lock(&a->cache_lock);
        VerifyingSlot *v = &a->verifying[slot_of(key, VERIFYING_SLOTS)];
        while (v->busy && CRYPTO_memcmp(v->key, key, 32) == 0)
                pthread_cond_wait(&a->verified, &a->cache_lock);
        bool hit = basic_cached_locked(a, key, ret);
        if (!hit && !v->busy) {
                v->busy = true;
                memcpy(v->key, key, 32);
                *ret_claim = v;
        }
        pthread_mutex_unlock(&a->cache_lock);
        return hit;
}

/* The end of a verification: remembers id (NULL: the credentials did not verify) and releases
 * the claim, in one step, so that a request woken by it finds the credentials in the cache. */
static void basic_verified(Auth *a, VerifyingSlot *claim, const uint8_t key[32], const Identity *id, uint64_t gen) {
        pthread_mutex_lock(&a->cache_lock);
        if (id) {
                BasicSlot *s = &a->basic[slot_of(key, BASIC_SLOTS)];
                *s = (BasicSlot) { .used = true, .generation = gen, .expires = clock_now_ns() + a->basic_ttl, .kind = id->kind };
                memcpy(s->key, key, 32);
                snprintf(s->name, sizeof s->name, "%s", id->name);
                snprintf(s->token_id, sizeof s->token_id, "%s", id->token_id);
        }
        if (claim) {
                claim->busy = false;
                pthread_cond_broadcast(&a->verified);
        }
        pthread_mutex_unlock(&a->cache_lock);
}

static AuthVerdict identify_basic(Auth *a, const AuthRequest *rq, const HttpAuthorization *h, Identity *ret,
                                  unsigned *ret_retry, char *reason, size_t rlen) {
        /* an API token as the password: no bcrypt, a hash of a high-entropy secret */
        if (startswith(h->password, TOKEN_PREFIX)) {
                if (token_secret_verify(a, h->password, ret))
                        return AUTH_IDENTIFIED;
        }
        uint8_t key[32];
        auth_sha256(a, h->user, strlen(h->user), h->password, strlen(h->password), key);
        uint64_t gen = atomic_load(&a->generation);
        if (basic_cached(a, key, ret))
                return AUTH_IDENTIFIED;
        /* one bcrypt per credentials at a time: the others wait for its result */
        VerifyingSlot *claim;
        if (basic_wait_or_claim(a, key, ret, &claim))
                return AUTH_IDENTIFIED;
        unsigned wait = login_blocked(a, rq->client, h->user);
        if (wait > 0) {
                basic_verified(a, claim, key, NULL, gen);
                metrics_counter_add(M_LIMITED, NULL, 1);
                *ret_retry = wait;
                snprintf(reason, rlen, "too many failed logins: retry in %us", wait);
                return AUTH_RATE_LIMITED;
        }
        if (startswith(h->password, TOKEN_PREFIX)) {
                login_failed(a, rq->client, h->user, "unknown, revoked or expired API token");
                basic_verified(a, claim, key, NULL, gen);
                snprintf(reason, rlen, "invalid, revoked or expired API token");
                return AUTH_BAD;
        }
        HtpasswdRef *ref = htpasswd_get(a);
        int k = ref ? htpasswd_verify(ref->h, h->user, h->password) : 0;
        htpasswd_put(a, ref);
        atomic_fetch_add(&a->bcrypts, 1);
        metrics_counter_add(M_BCRYPT, NULL, 1);
        if (k <= 0) {
                /* counted before the next waiter looks at the limit */
                login_failed(a, rq->client, h->user, k < 0 ? "bcrypt failed" : "wrong user name or password");
                basic_verified(a, claim, key, NULL, gen);
                snprintf(reason, rlen, "wrong user name or password");
                return AUTH_BAD;
        }
        identity_set(ret, IDENTITY_USER, h->user, NULL);
        basic_verified(a, claim, key, ret, gen);
        login_succeeded(a, rq->client, h->user);
        return AUTH_IDENTIFIED;
}

/* ------------------------------------------------------------------ bearer tokens */

static int access_from_claims(json_t *access, Identity *id) {
        size_t i;
        json_t *e;
        if (json_array_size(access) > BEARER_ACCESS_MAX)
                return -E2BIG;
        id->access = calloc(json_array_size(access) + 1, sizeof(BearerAccess));
        if (!id->access)
                return -ENOMEM;
        json_array_foreach(access, i, e) {
                const char *type = json_string_value(json_object_get(e, "type"));
                const char *name = json_string_value(json_object_get(e, "name"));
                json_t *actions = json_object_get(e, "actions");
                if (!type || !name || !json_is_array(actions))
                        return -EBADMSG;
                size_t j;
                json_t *act;
                if (streq(type, "registry") && streq(name, "catalog")) {
                        json_array_foreach(actions, j, act)
                                id->catalog = id->catalog || streq(strempty(json_string_value(act)), "*");
                        continue;
                }
                if (!streq(type, "repository"))
                        continue;
                BearerAccess *b = &id->access[id->n_access];
                json_array_foreach(actions, j, act) {
                        const char *s = strempty(json_string_value(act));
                        b->pull = b->pull || streq(s, "pull");
                        b->push = b->push || streq(s, "push");
                        b->delete = b->delete || streq(s, "delete");
                }
                if (!(b->repo = strdup(name)))
                        return -ENOMEM;
                id->n_access++;
        }
        return 0;
}

/* Checks a JWS of ours: signature, issuer, audience, times, typ; fills the identity. */
static int bearer_decode(Auth *a, const char *token, const char *want_typ, Identity *ret, int64_t *ret_exp,
                         char *reason, size_t rlen) {
        _cleanup_(json_decrefp) json_t *c = NULL;
        int r = jws_verify(a->key, token, strlen(token), &c);
        if (r < 0) {
                snprintf(reason, rlen, "bearer token does not verify (%s)", r == -EBADE ? "bad signature" : "malformed or not ours");
                return -EACCES;
        }
        int64_t now_s = clock_now_ns() / (int64_t) NSEC_PER_SEC;
        json_t *p = json_object_get(c, "plura");
        const char *typ = json_string_value(json_object_get(p, "typ"));
        const char *kind = json_string_value(json_object_get(p, "kind"));
        json_int_t exp = json_integer_value(json_object_get(c, "exp")), nbf = json_integer_value(json_object_get(c, "nbf"));
        if (!streq(strempty(json_string_value(json_object_get(c, "iss"))), a->issuer) ||
            !streq(strempty(json_string_value(json_object_get(c, "aud"))), a->service) || !typ || !streq(typ, want_typ) ||
            !kind) {
                snprintf(reason, rlen, "bearer token is not one of this registry's %s tokens", want_typ);
                return -EACCES;
        }
        if (exp <= now_s || nbf > now_s + 60) {
                snprintf(reason, rlen, "bearer token has expired");
                return -EACCES;
        }
        const char *sub = strempty(json_string_value(json_object_get(c, "sub")));
        IdentityKind k = streq(kind, "user") ? IDENTITY_USER : streq(kind, "token") ? IDENTITY_TOKEN : IDENTITY_ANONYMOUS;
        identity_set(ret, k, k == IDENTITY_ANONYMOUS ? "" : sub, json_string_value(json_object_get(p, "tid")));
        ret->credentials = true; /* a token of ours, even an anonymous one */
        ret->bearer = streq(want_typ, "access");
        if (ret->bearer && (r = access_from_claims(json_object_get(c, "access"), ret)) < 0) {
                identity_done(ret);
                snprintf(reason, rlen, "bearer token has malformed access claims");
                return r == -ENOMEM ? r : -EACCES;
        }
        *ret_exp = (int64_t) exp * (int64_t) NSEC_PER_SEC;
        return 0;
}

/* The identity of a verified access token from the cache (key: the token's SHA-256). */
static bool bearer_cached(Auth *a, const uint8_t key[32], Identity *ret) {
        int64_t now = clock_now_ns();
        uint64_t gen = atomic_load(&a->generation);
        bool hit = false;
        pthread_mutex_lock(&a->cache_lock);
        BearerSlot *s = &a->bearer[slot_of(key, BEARER_SLOTS)];
        if (s->used && s->generation == gen && s->expires > now && CRYPTO_memcmp(s->key, key, 32) == 0)
                hit = identity_copy(&s->id, ret) >= 0;
        pthread_mutex_unlock(&a->cache_lock);
        return hit;
}

/* A token issued for an API token dies with it: checked on every request, cached or not. */
static AuthVerdict bearer_still_usable(Auth *a, Identity *id, char *reason, size_t rlen) {
        if (id->kind == IDENTITY_TOKEN && !token_id_usable(a, id->token_id, NULL)) {
                identity_done(id);
                snprintf(reason, rlen, "the API token this bearer token was issued for is revoked or expired");
                return AUTH_BAD;
        }
        return AUTH_IDENTIFIED;
}

static AuthVerdict identify_bearer(Auth *a, const char *token, Identity *ret, char *reason, size_t rlen) {
        if (startswith(token, TOKEN_PREFIX)) {
                if (token_secret_verify(a, token, ret))
                        return AUTH_IDENTIFIED;
                snprintf(reason, rlen, "invalid, revoked or expired API token");
                return AUTH_BAD;
        }
        uint8_t key[32];
        auth_sha256(a, token, strlen(token), NULL, 0, key);
        uint64_t gen = atomic_load(&a->generation);
        if (!bearer_cached(a, key, ret)) {
                int64_t exp;
                if (bearer_decode(a, token, "access", ret, &exp, reason, rlen) < 0)
                        return AUTH_BAD;
                Identity copy;
                if (identity_copy(ret, &copy) >= 0) {
                        pthread_mutex_lock(&a->cache_lock);
                        BearerSlot *s = &a->bearer[slot_of(key, BEARER_SLOTS)];
                        identity_done(&s->id);
                        *s = (BearerSlot) { .used = true, .generation = gen, .expires = exp, .id = copy };
                        memcpy(s->key, key, 32);
                        pthread_mutex_unlock(&a->cache_lock);
                }
        }
        return bearer_still_usable(a, ret, reason, rlen);
}

/* "Bearer <token>" spelt as clients send it (one space, nothing around it), of a token of ours
 * (not an API token): the token, else NULL. Only a token that passed http_authorization_parse()
 * and bearer_decode() is ever in the bearer cache, so one found there by its hash needs neither
 * again; any other spelling, and every cache miss, takes the full path. */
static const char *bearer_as_sent(const char *authorization) {
        if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
                return NULL;
        const char *t = authorization + 7;
        size_t n = strnlen(t, HTTP_AUTH_SECRET_MAX + 1);
        if (n == 0 || n > HTTP_AUTH_SECRET_MAX || startswith(t, TOKEN_PREFIX))
                return NULL;
        return t;
}

/* At most every HTPASSWD_CHECK_NS, one request looks whether the file changed. */
static void maybe_reload(Auth *a) {
        if (!a->htpasswd_path)
                return;
        int64_t now = clock_now_ns(), last = atomic_load(&a->htpasswd_checked);
        if (now - last < HTPASSWD_CHECK_NS || !atomic_compare_exchange_strong(&a->htpasswd_checked, &last, now))
                return;
        (void) auth_reload_if_changed(a);
}

AuthVerdict auth_identify(Auth *a, const AuthRequest *rq, Identity *ret, unsigned *ret_retry_after_s, char *reason,
                          size_t reason_len) {
        *ret = (Identity) {};
        *ret_retry_after_s = 0;
        maybe_reload(a);
        if (!rq->authorization) {
                if (rq->cert_user && *rq->cert_user)
                        identity_set(ret, IDENTITY_USER, rq->cert_user, NULL);
                return AUTH_IDENTIFIED; /* else anonymous */
        }
        const char *sent = bearer_as_sent(rq->authorization);
        if (sent) {
                uint8_t key[32];
                auth_sha256(a, sent, strlen(sent), NULL, 0, key);
                if (bearer_cached(a, key, ret))
                        return bearer_still_usable(a, ret, reason, reason_len);
        }
        HttpAuthorization h = {};
        if (http_authorization_parse(rq->authorization, &h) < 0) {
                snprintf(reason, reason_len, "malformed Authorization header (Basic or Bearer expected)");
                return AUTH_BAD;
        }
        AuthVerdict v;
        if (h.scheme == HTTP_AUTH_BASIC)
                v = identify_basic(a, rq, &h, ret, ret_retry_after_s, reason, reason_len);
        else if (h.scheme == HTTP_AUTH_BEARER)
                v = identify_bearer(a, h.token, ret, reason, reason_len);
        else
                v = AUTH_IDENTIFIED;
        http_authorization_done(&h);
        return v;
}

/* ------------------------------------------------------------------ rights */

/* An API token's own scopes: "<glob>:<action>[,<action>...]". */
static bool token_scopes_allow(char **scopes, const char *repo, const char *action) {
        for (char **s = scopes; s && *s; s++) {
                const char *colon = strrchr(*s, ':');
                /* the glob ends at the first colon (globs never contain one): "apps/x:promote:prod" */
                const char *first = strchr(*s, ':');
                if (!colon || !first)
                        continue;
                _cleanup_free_ char *glob = strndup(*s, (size_t) (first - *s));
                if (!glob)
                        return false;
                bool repo_ok = *repo ? repo_glob_match(glob, repo) : streq(glob, "**") || streq(glob, "*");
                if (!repo_ok)
                        continue;
                _cleanup_free_ char *actions = strdup(first + 1);
                char *save = NULL;
                for (char *t = actions ? strtok_r(actions, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
                        if (acl_action_covers(t, action))
                                return true;
        }
        return false;
}

bool auth_allowed(Auth *a, const Identity *id, const char *repo, const char *action) {
        if (!a->enabled)
                return true;
        repo = repo ? repo : "";
        if (id->bearer) {
                if (streq(action, "catalog"))
                        return id->catalog;
                for (size_t i = 0; i < id->n_access; i++)
                        if (streq(id->access[i].repo, repo))
                                return (streq(action, "pull") && id->access[i].pull) ||
                                       (streq(action, "push") && id->access[i].push) ||
                                       (streq(action, "delete") && id->access[i].delete);
                return false;
        }
        if (streq(action, "catalog"))
                return id->credentials && id->kind != IDENTITY_ANONYMOUS;
        AclSubject s = {
                .user = id->kind == IDENTITY_USER ? id->name : NULL,
                .token_name = id->kind == IDENTITY_TOKEN ? id->name : NULL,
                .anonymous = id->kind == IDENTITY_ANONYMOUS,
        };
        if (!acl_allows(a->acl, &s, repo, action))
                return false;
        return id->kind != IDENTITY_TOKEN || token_scopes_allow(id->scopes, repo, action);
}

bool auth_could_get(Auth *a, const Identity *id, const char *repo, const char *action) {
        Identity subject = {};
        identity_set(&subject, id->kind, id->name, id->token_id);
        if (id->kind == IDENTITY_TOKEN && !token_id_usable(a, id->token_id, &subject.scopes))
                return false;
        bool ok = auth_allowed(a, &subject, repo, action);
        identity_done(&subject);
        return ok;
}

/* ------------------------------------------------------------------ the token service */

static int token_sign(Auth *a, const Identity *id, const char *typ, int64_t ttl, json_t *access, char **ret,
                      int64_t *ret_iat) {
        int64_t now_s = clock_now_ns() / (int64_t) NSEC_PER_SEC;
        uint8_t jti[16];
        char jti_hex[33];
        if (RAND_bytes(jti, sizeof jti) != 1)
                return -EIO;
        hex_encode(jti, sizeof jti, jti_hex);
        const char *kind = id->kind == IDENTITY_USER ? "user" : id->kind == IDENTITY_TOKEN ? "token" : "anonymous";
        _cleanup_(json_decrefp) json_t *c = json_pack(
                "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:{s:s, s:s, s:s*}}", "iss", a->issuer, "sub", id->name, "aud", a->service,
                "exp", (json_int_t) (now_s + ttl / (int64_t) NSEC_PER_SEC), "nbf", (json_int_t) (now_s - 1), "iat",
                (json_int_t) now_s, "jti", jti_hex, "plura", "typ", typ, "kind", kind, "tid",
                id->kind == IDENTITY_TOKEN ? id->token_id : NULL);
        if (!c)
                return -ENOMEM;
        if (access)
                json_object_set(c, "access", access);
        *ret_iat = now_s;
        return jws_sign(a->key, c, ret);
}

/* The granted actions of one repository scope: what was asked, cut to what id may do. */
static json_t *grant_scope(Auth *a, const Identity *id, const TokenScope *s) {
        json_t *granted = json_array();
        static const char *const repo_actions[] = { "pull", "push", "delete" };
        if (streq(s->type, "registry") && streq(s->name, "catalog")) {
                for (size_t i = 0; i < s->n_actions; i++)
                        if (streq(s->actions[i], "*") && auth_allowed(a, id, "", "catalog"))
                                json_array_append_new(granted, json_string("*"));
                return granted;
        }
        if (!streq(s->type, "repository") || !repo_name_is_valid(s->name))
                return granted;
        for (size_t k = 0; k < ELEMENTSOF(repo_actions); k++) {
                bool asked = false;
                for (size_t i = 0; i < s->n_actions; i++)
                        asked = asked || streq(s->actions[i], repo_actions[k]) || streq(s->actions[i], "*");
                if (asked && auth_allowed(a, id, s->name, repo_actions[k]))
                        json_array_append_new(granted, json_string(repo_actions[k]));
        }
        return granted;
}

/* The identity a refresh token stands for, if it still exists. */
static int refresh_identity(Auth *a, const char *refresh, Identity *ret, char *reason, size_t rlen) {
        int64_t exp;
        int r = bearer_decode(a, refresh, "refresh", ret, &exp, reason, rlen);
        if (r < 0)
                return r;
        bool exists = false;
        if (ret->kind == IDENTITY_USER) {
                HtpasswdRef *ref = htpasswd_get(a);
                exists = ref && htpasswd_has_user(ref->h, ret->name);
                htpasswd_put(a, ref);
        } else if (ret->kind == IDENTITY_TOKEN)
                exists = token_id_usable(a, ret->token_id, &ret->scopes);
        if (!exists) {
                identity_done(ret);
                snprintf(reason, rlen, "the user or API token of this refresh token no longer exists");
                return -EACCES;
        }
        return 0;
}

int auth_refresh_subject(Auth *a, const char *refresh_token, char *ret, size_t len, char *reason, size_t reason_len) {
        Identity id = {};
        int r = refresh_identity(a, refresh_token, &id, reason, reason_len);
        if (r < 0)
                return r;
        identity_format(&id, ret, len);
        identity_done(&id);
        return 0;
}

int auth_issue_token(Auth *a, const Identity *id, const char *refresh_token, const TokenScope *scopes, size_t n_scopes,
                     bool offline, json_t **ret_body, char *reason, size_t reason_len) {
        _cleanup_(identity_done) Identity from_refresh = {};
        if (refresh_token) {
                int r = refresh_identity(a, refresh_token, &from_refresh, reason, reason_len);
                if (r < 0)
                        return r;
                id = &from_refresh;
        }
        _cleanup_(json_decrefp) json_t *access = json_array();
        if (!access)
                return -ENOMEM;
        for (size_t i = 0; i < n_scopes; i++) {
                json_t *g = grant_scope(a, id, &scopes[i]);
                if (json_array_size(g) > 0)
                        json_array_append_new(access, json_pack("{s:s, s:s, s:o}", "type", scopes[i].type, "name",
                                                                scopes[i].name, "actions", g));
                else
                        json_decref(g);
        }
        _cleanup_free_ char *token = NULL, *refresh = NULL;
        int64_t iat;
        int r = token_sign(a, id, "access", a->token_ttl, access, &token, &iat);
        if (r >= 0 && offline && id->kind != IDENTITY_ANONYMOUS)
                r = token_sign(a, id, "refresh", a->refresh_ttl, NULL, &refresh, &iat);
        if (r < 0)
                return r;
        char issued[40];
        format_timestamp(issued, sizeof issued, iat * (int64_t) NSEC_PER_SEC);
        *ret_body = json_pack("{s:s, s:s, s:I, s:s, s:s?}", "token", token, "access_token", token, "expires_in",
                              (json_int_t) (a->token_ttl / (int64_t) NSEC_PER_SEC), "issued_at", issued, "refresh_token",
                              refresh);
        metrics_counter_add(M_TOKENS, NULL, 1);
        return *ret_body ? 0 : -ENOMEM;
}

const char *auth_service(const Auth *a) {
        return a->service;
}

/* ------------------------------------------------------------------ trusted proxies */

static int cidr_parse(const char *s, Cidr *ret) {
        char addr[64];
        const char *slash = strchr(s, '/');
        size_t al = slash ? (size_t) (slash - s) : strlen(s);
        if (al == 0 || al >= sizeof addr)
                return -EINVAL;
        memcpy(addr, s, al);
        addr[al] = 0;
        *ret = (Cidr) { .family = memchr(addr, ':', al) ? AF_INET6 : AF_INET };
        unsigned max = ret->family == AF_INET6 ? 128 : 32;
        if (inet_pton(ret->family, addr, ret->addr) != 1)
                return -EINVAL;
        ret->bits = max;
        if (slash) {
                char *end;
                unsigned long b = strtoul(slash + 1, &end, 10);
                if (end == slash + 1 || *end || b > max)
                        return -EINVAL;
                ret->bits = (unsigned) b;
        }
        return 0;
}

static bool cidr_contains(const Cidr *c, const char *address) {
        Cidr a;
        if (cidr_parse(address, &a) < 0)
                return false;
        if (a.family == AF_INET6 && c->family == AF_INET && IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a.addr)) {
                memmove(a.addr, a.addr + 12, 4); /* ::ffff:a.b.c.d is a.b.c.d */
                a.family = AF_INET;
        }
        if (a.family != c->family)
                return false;
        unsigned full = c->bits / 8, rest = c->bits % 8;
        if (memcmp(a.addr, c->addr, full) != 0)
                return false;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return rest == 0 || (a.addr[full] & mask) == (c->addr[full] & mask);
}

bool auth_trusted_proxy(const Auth *a, const char *address) {
        for (size_t i = 0; a && address && i < a->n_proxies; i++)
                if (cidr_contains(&a->proxies[i], address))
                        return true;
        return false;
}

static int proxies_load(Auth *a, json_t *list, char *err, size_t errlen) {
        a->proxies = calloc(json_array_size(list) + 1, sizeof(Cidr));
        if (!a->proxies)
                return -ENOMEM;
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
                if (cidr_parse(strempty(json_string_value(v)), &a->proxies[a->n_proxies++]) < 0) {
                        snprintf(err, errlen, "auth.trusted_proxies[%zu]: not an address or CIDR block", i);
                        return -EINVAL;
                }
        return 0;
}

/* ------------------------------------------------------------------ life cycle */

static int64_t section_duration(json_t *o, const char *key, int64_t def) {
        json_t *v = json_object_get(o, key);
        int64_t ns;
        if (json_is_integer(v))
                return json_integer_value(v) * (int64_t) NSEC_PER_SEC;
        if (json_is_string(v) && parse_duration_ns(json_string_value(v), &ns) >= 0)
                return ns;
        return def;
}

/* auth.token.key, or a key of this store's own made on first start. */
static int token_key_load(Auth *a, json_t *token, char *err, size_t errlen) {
        const char *path = json_string_value(json_object_get(token, "key"));
        if (path && *path)
                return jws_key_load(path, &a->key, err, errlen);
        _cleanup_free_ char *dir = strdup_printf("%s/auth", store_root(a->store));
        _cleanup_free_ char *own = strdup_printf("%s/auth/token-key.pem", store_root(a->store));
        if (!dir || !own)
                return -ENOMEM;
        if (access(own, F_OK) == 0)
                return jws_key_load(own, &a->key, err, errlen);
        int r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = jws_key_generate(JWS_ALG_EDDSA, &a->key);
        if (r >= 0)
                r = jws_key_save(a->key, own);
        if (r < 0) {
                snprintf(err, errlen, "cannot make the token signing key %s: %s", own, strerror(-r));
                return r;
        }
        log_info("auth: made the token signing key %s (Ed25519, kid %s)", own, jws_key_id(a->key));
        return 0;
}

static void declare_metrics(void) {
        metrics_declare(M_BCRYPT, METRIC_COUNTER, "bcrypt verifications (cached logins do not count).", NULL, 0);
        metrics_declare(M_FAILED, METRIC_COUNTER, "Failed logins.", NULL, 0);
        metrics_declare(M_LIMITED, METRIC_COUNTER, "Logins refused for too many failures.", NULL, 0);
        metrics_declare(M_TOKENS, METRIC_COUNTER, "Bearer tokens issued by /v2/token.", NULL, 0);
}

int auth_new(Store *s, const Config *c, Auth **ret, char *err, size_t errlen) {
        _cleanup_(auth_freep) Auth *a = calloc(1, sizeof(Auth));
        if (!a)
                return -ENOMEM;
        a->store = s;
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->cache_lock, NULL);
        pthread_cond_init(&a->verified, NULL);
        pthread_mutex_init(&a->fail_lock, NULL);
        pthread_mutex_init(&a->tokens_lock, NULL);
        if (!(a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
                return -ENOMEM;
        declare_metrics();

        json_t *auth = json_object_get(c->root, "auth");
        json_t *token = json_object_get(auth, "token"), *fails = json_object_get(auth, "failed_logins");
        const char *htpasswd = json_string_value(json_object_get(auth, "htpasswd"));
        a->enabled = (htpasswd && *htpasswd) || json_array_size(json_object_get(auth, "acl")) > 0;
        a->service = strdup(json_string_value(json_object_get(token, "service")) ?: "plura");
        a->issuer = strdup(json_string_value(json_object_get(token, "issuer")) ?: "plura");
        a->token_ttl = section_duration(token, "ttl", 5 * 60 * (int64_t) NSEC_PER_SEC);
        a->refresh_ttl = section_duration(token, "refresh_ttl", 30 * 24 * 3600 * (int64_t) NSEC_PER_SEC);
        a->basic_ttl = section_duration(auth, "basic_cache_ttl", 60 * (int64_t) NSEC_PER_SEC);
        a->fail_window = section_duration(fails, "window", 60 * (int64_t) NSEC_PER_SEC);
        a->fail_per_client = json_is_integer(json_object_get(fails, "per_client"))
                                     ? (unsigned) json_integer_value(json_object_get(fails, "per_client")) : 10;
        a->fail_per_user = json_is_integer(json_object_get(fails, "per_user"))
                                   ? (unsigned) json_integer_value(json_object_get(fails, "per_user")) : 50;
        if (!a->service || !a->issuer)
                return -ENOMEM;
        int r = acl_from_json(auth, &a->acl, err, errlen);
        if (r >= 0)
                r = proxies_load(a, json_object_get(auth, "trusted_proxies"), err, errlen);
        if (r < 0)
                return r;
        if (!a->enabled) {
                *ret = steal_pointer(&a);
                return 0;
        }
        if (htpasswd && *htpasswd) {
                if (!(a->htpasswd_path = strdup(htpasswd)))
                        return -ENOMEM;
                r = htpasswd_swap_in(a, err, errlen);
                if (r < 0)
                        return r;
        }
        r = token_key_load(a, token, err, errlen);
        if (r < 0)
                return r;
        r = auth_tokens_load(a);
        if (r < 0) {
                snprintf(err, errlen, "cannot read the API tokens: %s", strerror(-r));
                return r;
        }
        log_info("auth: on (%zu API token(s), tokens signed with %s key %s, valid %" PRIi64 "s)", a->n_tokens,
                 jws_algorithm_to_string(jws_key_algorithm(a->key)), jws_key_id(a->key),
                 a->token_ttl / (int64_t) NSEC_PER_SEC);
        *ret = steal_pointer(&a);
        return 0;
}

bool auth_enabled(const Auth *a) {
        return a && a->enabled;
}

Auth *auth_free(Auth *a) {
        if (!a)
                return NULL;
        EVP_MD_free(a->sha256);
        if (a->htpasswd) {
                htpasswd_free(a->htpasswd->h);
                free(a->htpasswd);
        }
        for (size_t i = 0; i < BEARER_SLOTS; i++)
                identity_done(&a->bearer[i].id);
        for (size_t i = 0; i < a->n_tokens; i++)
                api_token_done(&a->tokens[i]);
        free(a->tokens);
        acl_free(a->acl);
        free(a->proxies);
        jws_key_free(a->key);
        free(a->htpasswd_path);
        free(a->service);
        free(a->issuer);
        pthread_mutex_destroy(&a->lock);
        pthread_mutex_destroy(&a->cache_lock);
        pthread_cond_destroy(&a->verified);
        pthread_mutex_destroy(&a->fail_lock);
        pthread_mutex_destroy(&a->tokens_lock);
        free(a);
        return NULL;
}
