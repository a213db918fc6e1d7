/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by registry-api/auth.c (credentials, caches, failed logins, the token service, trusted
 * proxies) and auth-tokens.c (API tokens: the in-memory copy and their management). Nothing else
 * includes it. Locking: Auth.lock guards the htpasswd reference, cache_lock the Basic, verifying
 * and bearer slots, fail_lock the failed-login counts, tokens_lock the API tokens. */

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "registry-api/acl.h"
#include "registry-api/auth.h"
#include "registry-api/htpasswd.h"
#include "registry-api/jws.h"
#include "storage/tokens.h"

#define BASIC_SLOTS 1024U  /* verified Basic credentials (direct-mapped by their hash) */
#define BEARER_SLOTS 4096U /* verified bearer tokens */
#define VERIFYING_SLOTS 64U /* Basic credentials being verified (bcrypt) right now */
#define FAIL_SLOTS 4096U   /* failed-login counts per client and per user */
#define TOKEN_PREFIX "plura_"
#define TOKEN_SECRET_BYTES 32
#define BEARER_ACCESS_MAX 64
#define HTPASSWD_CHECK_NS (2 * (int64_t) NSEC_PER_SEC)

#define M_BCRYPT "plura_auth_bcrypt_total"
#define M_FAILED "plura_auth_failed_logins_total"
#define M_LIMITED "plura_auth_rate_limited_total"
#define M_TOKENS "plura_auth_tokens_issued_total"

typedef struct HtpasswdRef {
        Htpasswd *h;
        unsigned refs; /* under Auth.lock; the current one holds one */
} HtpasswdRef;

typedef struct BasicSlot {
        uint8_t key[32]; /* SHA-256 of user \0 password */
        uint64_t generation;
        int64_t expires;
        IdentityKind kind;
        char name[HTTP_AUTH_USER_MAX + 1];
        char token_id[API_TOKEN_ID_LEN + 1];
        bool used;
} BasicSlot;

/* Credentials whose bcrypt runs now: other requests with them wait for its result instead of
 * paying their own (a client that opens 16 connections at once with new credentials). */
typedef struct VerifyingSlot {
        uint8_t key[32];
        bool busy;
} VerifyingSlot;

typedef struct BearerSlot {
        uint8_t key[32]; /* SHA-256 of the token */
        uint64_t generation;
        int64_t expires;
        Identity id; /* owned copy; handed out as copies */
        bool used;
} BearerSlot;

typedef struct FailSlot {
        char key[HTTP_AUTH_USER_MAX + 8]; /* "c:<address>" or "u:<user>" */
        unsigned failures;
        int64_t window_start;
} FailSlot;

typedef struct Cidr {
        int family; /* AF_INET, AF_INET6 */
        uint8_t addr[16];
        unsigned bits;
} Cidr;

struct Auth {
        Store *store;
        Cidr *proxies; /* auth.trusted_proxies */
        size_t n_proxies;
        bool enabled;
        char *htpasswd_path;
        Acl *acl;
        JwsKey *key;
        char *service, *issuer;
        int64_t token_ttl, refresh_ttl, basic_ttl, fail_window;
        unsigned fail_per_client, fail_per_user;

        pthread_mutex_t lock; /* htpasswd, its stat, generation */
        HtpasswdRef *htpasswd;
        struct stat htpasswd_st;
        atomic_int_fast64_t htpasswd_checked; /* last look at the file, ns */
        atomic_uint_fast64_t generation; /* moved by reloads and revocations: older cache entries miss */

        /* SHA-256 fetched once at auth_new(): EVP_sha256() makes every EVP_DigestInit_ex() fetch the
         * implementation again (a lookup in OpenSSL's method store, under its lock), on every
         * request with credentials */
        EVP_MD *sha256;

        pthread_mutex_t cache_lock;
        pthread_cond_t verified; /* a VerifyingSlot was released */
        BasicSlot basic[BASIC_SLOTS];
        VerifyingSlot verifying[VERIFYING_SLOTS];
        BearerSlot bearer[BEARER_SLOTS];

        pthread_mutex_t fail_lock;
        FailSlot fails[FAIL_SLOTS];

        pthread_mutex_t tokens_lock; /* the API tokens, as in the store */
        ApiToken *tokens;
        size_t n_tokens, allocated_tokens;

        atomic_uint_fast64_t bcrypts;
};

/* SHA-256 of a, or of a \0 b if b is given (cache keys). */
void auth_sha256(Auth *auth, const void *a, size_t al, const void *b, size_t bl, uint8_t out[32]);
void identity_set(Identity *id, IdentityKind kind, const char *name, const char *token_id);

/* ---- auth-tokens.c */
/* Whether secret is a usable API token's ("plura_<id>_<secret>"): *ret its identity. */
bool token_secret_verify(Auth *a, const char *secret, Identity *ret);
/* Whether the token id names a usable token; *ret_scopes (may be NULL) a copy of its scopes. */
bool token_id_usable(Auth *a, const char *id, char ***ret_scopes);
/* Loads the store's tokens into memory (at auth_new()). */
int auth_tokens_load(Auth *a);
