/* SPDX-License-Identifier: MIT */
/* Identity and rights against a real store: Basic credentials (bcrypt paid once per credential
 * and cache TTL), failed-login limits per client and per user, the token service and bearer
 * tokens, API tokens (as password and as bearer; revocation at once), refresh tokens, reload. */
#include <crypt.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "registry-api/auth.h"
#include "storage-test-helpers.h"
#include "storage/tokens.h"

static char *bcrypt_cost(const char *pw, unsigned long cost) {
        char salt[64];
        ASSERT_TRUE(crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, sizeof salt));
        struct crypt_data *cd = calloc(1, sizeof *cd);
        ASSERT_TRUE(cd);
        char *h = strdup(crypt_r(pw, salt, cd));
        free(cd);
        return h;
}

static char *bcrypt_of(const char *pw) {
        return bcrypt_cost(pw, 4);
}

static void write_htpasswd(const char *path, const char *users) {
        /* users: "name:password name2:password2" */
        _cleanup_free_ char *copy = strdup(users), *text = strdup("");
        char *save = NULL;
        for (char *u = strtok_r(copy, " ", &save); u; u = strtok_r(NULL, " ", &save)) {
                char *colon = strchr(u, ':');
                *colon = 0;
                _cleanup_free_ char *h = bcrypt_of(colon + 1);
                char *t = strdup_printf("%s%s:%s\n", text, u, h);
                free(text);
                text = t;
        }
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp", path);
        ASSERT_OK(write_file_atomic(tmp, text, strlen(text), 0600));
        ASSERT_TRUE(rename(tmp, path) == 0);
}

static char *basic(const char *user, const char *pw) {
        _cleanup_free_ char *pair = strdup_printf("%s:%s", user, pw);
        char b64[512];
        EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) pair, (int) strlen(pair));
        return strdup_printf("Basic %s", b64);
}

typedef struct Fixture {
        char *dir, *htpasswd;
        Store *store;
        Config *config;
        Auth *auth;
} Fixture;

static void setup(Fixture *f) {
        f->dir = test_tmpdir();
        f->htpasswd = strdup_printf("%s/htpasswd", f->dir);
        write_htpasswd(f->htpasswd, "alice:alicepw bob:bobpw");
        _cleanup_free_ char *data = strdup_printf("%s/data", f->dir);
        f->store = test_store_open(data, false);
        _cleanup_free_ char *json = strdup_printf(
                "{ \"auth\": { \"htpasswd\": \"%s\", \"failed_logins\": { \"per_client\": 5, \"per_user\": 8, \"window\": \"1h\" },"
                "  \"acl\": [ { \"repos\": \"apps/**\", \"users\": [\"alice\", \"ci\"], \"allow\": [\"pull\", \"push\"] },"
                "             { \"repos\": \"public/**\", \"anonymous\": true, \"allow\": [\"pull\"] } ] } }",
                f->htpasswd);
        char err[256] = "";
        int r = config_load_string(json, &f->config, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "config: %s\n", err);
        ASSERT_OK(r);
        r = auth_new(f->store, f->config, &f->auth, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "auth: %s\n", err);
        ASSERT_OK(r);
        ASSERT_TRUE(auth_enabled(f->auth));
}

static void teardown(Fixture *f) {
        auth_free(f->auth);
        config_free(f->config);
        store_free(f->store);
        rm_rf(f->dir);
        free(f->dir);
        free(f->htpasswd);
}

static AuthVerdict identify(Fixture *f, const char *authorization, const char *client, Identity *id) {
        AuthRequest rq = { .authorization = authorization, .client = client };
        unsigned retry;
        char reason[256];
        return auth_identify(f->auth, &rq, id, &retry, reason, sizeof reason);
}

TEST(test_basic_and_cache) {
        Fixture f = {};
        setup(&f);
        _cleanup_free_ char *good = basic("alice", "alicepw"), *bad = basic("alice", "nope");
        Identity id = {};
        uint64_t b0 = auth_bcrypt_count(f.auth);
        for (int i = 0; i < 100; i++) {
                ASSERT_EQ(identify(&f, good, "10.0.0.1", &id), AUTH_IDENTIFIED);
                ASSERT_EQ(id.kind, IDENTITY_USER);
                ASSERT_STREQ(id.name, "alice");
                identity_done(&id);
        }
        ASSERT_EQ(auth_bcrypt_count(f.auth) - b0, 1); /* paid once, then cached */
        ASSERT_EQ(identify(&f, bad, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, "Basic !!!", "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, NULL, "10.0.0.1", &id), AUTH_IDENTIFIED);
        ASSERT_EQ(id.kind, IDENTITY_ANONYMOUS);
        ASSERT_FALSE(id.credentials);
        /* rights */
        ASSERT_EQ(identify(&f, good, "10.0.0.1", &id), AUTH_IDENTIFIED);
        ASSERT_TRUE(auth_allowed(f.auth, &id, "apps/search", "push"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "apps/search", "delete"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "libs/x", "pull"));
        ASSERT_TRUE(auth_allowed(f.auth, &id, "public/x", "pull"));
        identity_done(&id);
        teardown(&f);
}

TEST(test_failed_login_limits) {
        Fixture f = {};
        setup(&f);
        _cleanup_free_ char *bad = basic("bob", "wrong"), *good = basic("bob", "bobpw");
        Identity id = {};
        for (int i = 0; i < 5; i++)
                ASSERT_EQ(identify(&f, bad, "10.0.0.66", &id), AUTH_BAD);
        uint64_t b0 = auth_bcrypt_count(f.auth);
        for (int i = 0; i < 200; i++)
                ASSERT_EQ(identify(&f, bad, "10.0.0.66", &id), AUTH_RATE_LIMITED);
        ASSERT_EQ(auth_bcrypt_count(f.auth), b0); /* refused before any bcrypt */
        /* the right password from that address waits too; from another address it works */
        ASSERT_EQ(identify(&f, good, "10.0.0.66", &id), AUTH_RATE_LIMITED);
        ASSERT_EQ(identify(&f, good, "10.0.0.7", &id), AUTH_IDENTIFIED);
        identity_done(&id);
        /* per user: 8 failures across addresses lock the user until the window ends */
        _cleanup_free_ char *abad = basic("alice", "x"), *agood = basic("alice", "alicepw");
        for (int i = 0; i < 8; i++)
                ASSERT_EQ(identify(&f, abad, i % 2 ? "10.1.0.1" : "10.1.0.2", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, agood, "10.1.0.9", &id), AUTH_RATE_LIMITED);
        teardown(&f);
}

static const char *claims_of(json_t *body) {
        return json_string_value(json_object_get(body, "token"));
}

TEST(test_token_service) {
        Fixture f = {};
        setup(&f);
        _cleanup_free_ char *good = basic("alice", "alicepw");
        Identity alice = {};
        ASSERT_EQ(identify(&f, good, "10.0.0.1", &alice), AUTH_IDENTIFIED);
        TokenScope *scopes = NULL;
        size_t n = 0;
        ASSERT_OK(token_scopes_parse("repository:apps/search:pull,push,delete repository:libs/x:pull", &scopes, &n));
        json_t *body = NULL;
        char reason[256];
        ASSERT_OK(auth_issue_token(f.auth, &alice, NULL, scopes, n, true, &body, reason, sizeof reason));
        ASSERT_TRUE(json_integer_value(json_object_get(body, "expires_in")) == 300);
        ASSERT_TRUE(json_string_value(json_object_get(body, "refresh_token")));
        _cleanup_free_ char *bearer = strdup_printf("Bearer %s", claims_of(body));
        Identity id = {};
        ASSERT_EQ(identify(&f, bearer, "10.0.0.1", &id), AUTH_IDENTIFIED);
        ASSERT_TRUE(id.bearer);
        /* granted: the intersection of what was asked and what the rules allow */
        ASSERT_TRUE(auth_allowed(f.auth, &id, "apps/search", "pull"));
        ASSERT_TRUE(auth_allowed(f.auth, &id, "apps/search", "push"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "apps/search", "delete"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "libs/x", "pull"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "apps/other", "pull")); /* not asked for */
        ASSERT_TRUE(auth_could_get(f.auth, &id, "apps/other", "pull"));
        identity_done(&id);
        /* a tampered token does not verify */
        bearer[strlen(bearer) - 2] ^= 1;
        ASSERT_EQ(identify(&f, bearer, "10.0.0.1", &id), AUTH_BAD);
        /* the refresh token gives a new access token while the user exists */
        const char *refresh = json_string_value(json_object_get(body, "refresh_token"));
        json_t *again = NULL;
        ASSERT_OK(auth_issue_token(f.auth, NULL, refresh, scopes, n, false, &again, reason, sizeof reason));
        json_decref(again);
        write_htpasswd(f.htpasswd, "bob:bobpw");
        ASSERT_OK(auth_reload(f.auth));
        ASSERT_EQ(auth_issue_token(f.auth, NULL, refresh, scopes, n, false, &again, reason, sizeof reason), -EACCES);
        ASSERT_EQ(identify(&f, good, "10.0.0.1", &id), AUTH_BAD); /* the cached login went with the reload */
        json_decref(body);
        identity_done(&alice);
        token_scopes_free(scopes, n);
        teardown(&f);
}

TEST(test_api_tokens) {
        Fixture f = {};
        setup(&f);
        char *scopes[] = { "apps/search:pull,push", NULL };
        ApiToken t = {};
        char *secret = NULL, err[256] = "";
        ASSERT_OK(auth_token_create(f.auth, "ci", scopes, 0, "admin", &t, &secret, err, sizeof err));
        ASSERT_TRUE(startswith(secret, "plura_"));
        /* only the hash is stored */
        ApiToken stored = {};
        ASSERT_OK(store_token_get(f.store, t.id, &stored));
        ASSERT_FALSE(memmem(secret, strlen(secret), stored.hash, sizeof stored.hash));
        api_token_done(&stored);
        _cleanup_free_ char *as_password = basic("ci", secret), *as_bearer = strdup_printf("Bearer %s", secret);
        Identity id = {};
        uint64_t b0 = auth_bcrypt_count(f.auth);
        ASSERT_EQ(identify(&f, as_password, "10.0.0.1", &id), AUTH_IDENTIFIED);
        ASSERT_EQ(id.kind, IDENTITY_TOKEN);
        /* limited by the ACL and by its own scope */
        ASSERT_TRUE(auth_allowed(f.auth, &id, "apps/search", "push"));
        ASSERT_FALSE(auth_allowed(f.auth, &id, "apps/other", "pull"));
        identity_done(&id);
        ASSERT_EQ(identify(&f, as_bearer, "10.0.0.1", &id), AUTH_IDENTIFIED);
        identity_done(&id);
        ASSERT_EQ(auth_bcrypt_count(f.auth), b0); /* tokens are not bcrypt */
        /* a bearer token issued for it dies with it */
        Identity tok = {};
        ASSERT_EQ(identify(&f, as_password, "10.0.0.1", &tok), AUTH_IDENTIFIED);
        TokenScope *sc = NULL;
        size_t n = 0;
        ASSERT_OK(token_scopes_parse("repository:apps/search:pull", &sc, &n));
        json_t *body = NULL;
        char reason[256];
        ASSERT_OK(auth_issue_token(f.auth, &tok, NULL, sc, n, false, &body, reason, sizeof reason));
        _cleanup_free_ char *jwt = strdup_printf("Bearer %s", claims_of(body));
        ASSERT_EQ(identify(&f, jwt, "10.0.0.1", &id), AUTH_IDENTIFIED);
        identity_done(&id);
        ASSERT_EQ(auth_token_revoke(f.auth, "ci", "admin"), 1);
        ASSERT_EQ(identify(&f, as_password, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, as_bearer, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, jwt, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(auth_token_revoke(f.auth, "ci", "admin"), 0);
        /* bad names and scopes */
        char *bad_scope[] = { "apps/search:puhs", NULL };
        ApiToken u = {};
        char *s2 = NULL;
        ASSERT_EQ(auth_token_create(f.auth, "x", bad_scope, 0, "admin", &u, &s2, err, sizeof err), -EINVAL);
        ASSERT_EQ(auth_token_create(f.auth, "Bad Name", scopes, 0, "admin", &u, &s2, err, sizeof err), -EINVAL);
        json_decref(body);
        token_scopes_free(sc, n);
        identity_done(&tok);
        api_token_done(&t);
        free(secret);
        teardown(&f);
}

/* 8 requests with the same new credentials at the same time: one bcrypt, the others wait for it */
typedef struct Racer {
        Fixture *f;
        const char *authorization;
        pthread_barrier_t *start;
        AuthVerdict verdict;
} Racer;

static void *racer_run(void *p) {
        Racer *r = p;
        Identity id = {};
        pthread_barrier_wait(r->start);
        r->verdict = identify(r->f, r->authorization, "10.0.0.3", &id);
        identity_done(&id);
        return NULL;
}

TEST(test_basic_concurrent_once) {
        Fixture f = {};
        setup(&f);
        /* cost 10 (~50 ms): the 8 surely overlap */
        _cleanup_free_ char *h = bcrypt_cost("carolpw", 10), *line = strdup_printf("carol:%s\nbob:%s\n", h, h);
        ASSERT_OK(write_file_atomic(f.htpasswd, line, strlen(line), 0600));
        ASSERT_OK(auth_reload(f.auth));
        _cleanup_free_ char *good = basic("carol", "carolpw"), *bad = basic("bob", "nope");
        for (int round = 0; round < 2; round++) {
                pthread_barrier_t start;
                pthread_barrier_init(&start, NULL, 8);
                Racer r[8];
                pthread_t t[8];
                uint64_t b0 = auth_bcrypt_count(f.auth);
                for (int i = 0; i < 8; i++) {
                        r[i] = (Racer) { .f = &f, .authorization = round == 0 ? good : bad, .start = &start };
                        ASSERT_TRUE(pthread_create(&t[i], NULL, racer_run, &r[i]) == 0);
                }
                for (int i = 0; i < 8; i++) {
                        ASSERT_TRUE(pthread_join(t[i], NULL) == 0);
                        if (round == 0)
                                ASSERT_EQ(r[i].verdict, AUTH_IDENTIFIED);
                        else
                                ASSERT_TRUE(r[i].verdict == AUTH_BAD || r[i].verdict == AUTH_RATE_LIMITED);
                }
                pthread_barrier_destroy(&start);
                if (round == 0)
                        ASSERT_EQ(auth_bcrypt_count(f.auth) - b0, 1);
                else /* a wrong password is not remembered: one after the other pays, up to the limit (5) */
                        ASSERT_EQ(auth_bcrypt_count(f.auth) - b0, 5);
        }
        teardown(&f);
}

/* a cached bearer token is found however the header spells it, and only the exact token */
TEST(test_bearer_spellings) {
        Fixture f = {};
        setup(&f);
        _cleanup_free_ char *good = basic("alice", "alicepw");
        Identity alice = {}, id = {};
        ASSERT_EQ(identify(&f, good, "10.0.0.1", &alice), AUTH_IDENTIFIED);
        TokenScope *sc = NULL;
        size_t n = 0;
        ASSERT_OK(token_scopes_parse("repository:apps/search:pull", &sc, &n));
        json_t *body = NULL;
        char reason[256];
        ASSERT_OK(auth_issue_token(f.auth, &alice, NULL, sc, n, false, &body, reason, sizeof reason));
        const char *jwt = claims_of(body);
        _cleanup_free_ char *plain = strdup_printf("Bearer %s", jwt), *lower = strdup_printf("bearer %s", jwt),
                            *spaced = strdup_printf("  Bearer   %s \t", jwt), *longer = strdup_printf("Bearer %sA", jwt),
                            *shorter = strdup_printf("Bearer %.*s", (int) strlen(jwt) - 1, jwt),
                            *other = strdup_printf("Basic %s", jwt);
        for (int i = 0; i < 2; i++) { /* verified, then from the cache */
                ASSERT_EQ(identify(&f, plain, "10.0.0.1", &id), AUTH_IDENTIFIED);
                ASSERT_TRUE(id.bearer);
                ASSERT_STREQ(id.name, "alice");
                ASSERT_TRUE(auth_allowed(f.auth, &id, "apps/search", "pull"));
                identity_done(&id);
        }
        ASSERT_EQ(identify(&f, lower, "10.0.0.1", &id), AUTH_IDENTIFIED);
        identity_done(&id);
        ASSERT_EQ(identify(&f, spaced, "10.0.0.1", &id), AUTH_IDENTIFIED);
        identity_done(&id);
        ASSERT_EQ(identify(&f, longer, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, shorter, "10.0.0.1", &id), AUTH_BAD);
        ASSERT_EQ(identify(&f, other, "10.0.0.1", &id), AUTH_BAD);
        json_decref(body);
        token_scopes_free(sc, n);
        identity_done(&alice);
        teardown(&f);
}

int main(void) {
        RUN(test_basic_and_cache);
        RUN(test_basic_concurrent_once);
        RUN(test_bearer_spellings);
        RUN(test_failed_login_limits);
        RUN(test_token_service);
        RUN(test_api_tokens);
        return 0;
}
