/* SPDX-License-Identifier: MIT */
#pragma once

/* Identity and rights of a request: the one place where plura decides who is asking and whether
 * they may (registry-api/server.c calls it for every route before its handler runs).
 *
 * Who: an htpasswd user (Basic credentials, verified with bcrypt once and then cached by a hash of
 * user and password for auth.basic_cache_ttl), an API token (its secret as the Basic password or as
 * a Bearer token: "plura_<id>_<secret>", only the secret's SHA-256 is stored), a user named by a
 * verified client certificate (TLS), a bearer token this registry signed (/v2/token: JWS with the
 * registry's Ed25519 or P-256 key, verified once and then cached until it expires), or nobody
 * (anonymous).
 *
 * What: a bearer token's access claims, which /v2/token cut to the intersection of what was asked
 * and what the rules allow when it issued them; otherwise the rules of auth.acl (registry-api/
 * acl.h), for an API token further limited by its own scopes. With no `auth` section (or one
 * without htpasswd and acl), everything is allowed, as before identity existed: for a first try on
 * loopback; registry_start() refuses a non-loopback address then unless
 * auth.allow_anonymous_remote is true.
 *
 * Failed logins are counted per client address and per user over auth.failed_logins.window; past
 * per_client (or per_user) a client gets 429 with Retry-After until the window has passed, without
 * a bcrypt being spent on it.
 *
 * Threads: every function may be called from any thread; the caches and counters have their own
 * locks; auth_reload() swaps the htpasswd file under a lock (requests in flight keep the old one). */

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "registry-api/http-auth.h"
#include "storage/storage.h"
#include "storage/tokens.h"

typedef struct Auth Auth;

typedef enum IdentityKind {
        IDENTITY_ANONYMOUS,
        IDENTITY_USER,  /* htpasswd or client certificate */
        IDENTITY_TOKEN, /* API token */
        _IDENTITY_KIND_MAX,
        _IDENTITY_KIND_INVALID = -1,
} IdentityKind;

/* Repository actions a bearer token can carry (the Docker token spec's: pull, push, delete). */
typedef struct BearerAccess {
        char *repo;
        bool pull, push, delete;
} BearerAccess;

typedef struct Identity {
        IdentityKind kind;
        char name[HTTP_AUTH_USER_MAX + 1];   /* user or token name, "" when anonymous */
        char token_id[API_TOKEN_ID_LEN + 1]; /* IDENTITY_TOKEN */
        bool credentials;                    /* it presented credentials that verified (any kind) */
        bool bearer;                         /* a bearer token: only its access claims count */
        bool catalog;                        /* bearer: registry:catalog:* was granted */
        BearerAccess *access;                /* bearer: the access claims, owned */
        size_t n_access;
        char **scopes;                       /* IDENTITY_TOKEN: the API token's own scopes, owned */
} Identity;
void identity_done(Identity *id);

/* What auth_identify() looks at. */
typedef struct AuthRequest {
        const char *authorization; /* the Authorization header, or NULL */
        const char *client;        /* the client's address, for the failed-login counts and logs */
        const char *cert_user;     /* user from a verified client certificate, or NULL */
} AuthRequest;

typedef enum AuthVerdict {
        AUTH_IDENTIFIED,   /* *ret is who it is (maybe anonymous) */
        AUTH_BAD,          /* credentials that do not verify: 401 */
        AUTH_RATE_LIMITED, /* too many failed logins: 429, Retry-After *ret_retry_after_s */
        _AUTH_VERDICT_MAX,
        _AUTH_VERDICT_INVALID = -1,
} AuthVerdict;

/* Loads the htpasswd file, the token key (auth.token.key, or <data>/auth/token-key.pem made on
 * first start), the rules and the API tokens of the store. -EINVAL with the reason in err. */
int auth_new(Store *s, const Config *c, Auth **ret, char *err, size_t errlen);
Auth *auth_free(Auth *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Auth *, auth_free);
/* Whether identity and rules are configured (false: everything is allowed). */
bool auth_enabled(const Auth *a);
/* Reads the htpasswd file again (SIGHUP, or when it changed: see auth_reload_if_changed()). A
 * file that does not load keeps the old users (logged). Cached logins are forgotten. */
int auth_reload(Auth *a);
/* Reloads when the file's mtime, size or inode changed since the last load; cheap (one stat). */
int auth_reload_if_changed(Auth *a);

/* Who is asking. reason (for AUTH_BAD) says what did not verify, without secrets. */
AuthVerdict auth_identify(Auth *a, const AuthRequest *rq, Identity *ret, unsigned *ret_retry_after_s, char *reason,
                          size_t reason_len);
/* Whether id may do action (acl.h) on repo ("" for registry-wide actions). */
bool auth_allowed(Auth *a, const Identity *id, const char *repo, const char *action);
/* For a bearer identity: whether its subject (user, API token, anonymous) may do it by the rules,
 * that is, whether a new token asked for this scope would grant it. */
bool auth_could_get(Auth *a, const Identity *id, const char *repo, const char *action);
/* The name the audit log and histories record: "alice", "token:ci-search/<id>" or "anonymous". */
void identity_format(const Identity *id, char *buf, size_t len);

/* The token service (GET/POST /v2/token). id has been identified from Basic credentials (or is
 * anonymous); for a refresh token pass it as refresh_token instead (id is then ignored). Grants
 * for each requested scope what id may do (pull, push, delete on repositories; registry:catalog:*
 * to signed-in users). *ret_body: {token, access_token, expires_in, issued_at[, refresh_token]};
 * a refresh token when offline is true. -EACCES (with reason) for a refresh token that does not
 * verify, has expired, or whose user or API token no longer exists. */
int auth_issue_token(Auth *a, const Identity *id, const char *refresh_token, const TokenScope *scopes, size_t n_scopes,
                     bool offline, json_t **ret_body, char *reason, size_t reason_len);
/* The identity a refresh token stands for (formatted as identity_format() does), if it still
 * exists: 0, or -EACCES with the reason. For the log of the token request. */
int auth_refresh_subject(Auth *a, const char *refresh_token, char *ret, size_t len, char *reason, size_t reason_len);
/* The service name of the bearer challenge and the tokens (auth.token.service). */
const char *auth_service(const Auth *a);

/* API tokens (POST/GET/DELETE /v1/registry/tokens). Creates one: *ret_secret (malloc()ed) is
 * shown to the caller once and never again. scopes: "<repo glob>:<action>[,...]"; expires 0 =
 * never. -EINVAL with the reason in err for a bad name or scope. */
int auth_token_create(Auth *a, const char *name, char **scopes, int64_t expires, const char *actor, ApiToken *ret,
                      char **ret_secret, char *err, size_t errlen);
/* Revokes by id or by name (every token of that name): takes effect at once. Returns how many. */
int auth_token_revoke(Auth *a, const char *id_or_name, const char *actor);
/* Whether address (the peer of a connection) is one of auth.trusted_proxies, whose
 * X-Forwarded-For/-Proto/-Host headers are believed. */
bool auth_trusted_proxy(const Auth *a, const char *address);
/* Total bcrypt verifications since start (the benchmark shows it is paid once per credential). */
uint64_t auth_bcrypt_count(const Auth *a);
