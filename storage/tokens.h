/* SPDX-License-Identifier: MIT */
#pragma once

/* API tokens, stored by the store for registry-api/'s authentication. */

#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

/* ---- API tokens (storage/tokens.c): robots' credentials. Only the SHA-256 of a token's secret is
 * stored; registry-api/ makes the secret, shows it once and checks presented ones. */

#define API_TOKEN_ID_LEN 32
typedef struct ApiToken {
        char id[API_TOKEN_ID_LEN + 1]; /* 32 lower-case hex digits */
        char *name;                    /* [a-z0-9][a-z0-9._-]*, matched by ACL rules' "users"/"tokens" */
        char **scopes;                 /* NULL-terminated "<repo glob>:<action>[,<action>...]" */
        uint8_t hash[32];              /* SHA-256 of the secret */
        int64_t created;
        int64_t expires;               /* 0 = never */
        int64_t revoked;               /* 0 = not revoked */
        char *created_by;
        char *revoked_by;
} ApiToken;
bool api_token_id_is_valid(const char *id);
void api_token_done(ApiToken *t);
/* Writes a new token (audited as token.create). -EEXIST if the id is taken. */
int store_token_put(Store *s, const ApiToken *t, const char *actor);
/* -ENOENT if unknown. */
int store_token_get(Store *s, const char *id, ApiToken *ret);
typedef int (*ApiTokenIterFn)(void *userdata, const ApiToken *t);
int store_tokens_foreach(Store *s, ApiTokenIterFn fn, void *userdata);
/* Marks it revoked (audited as token.revoke); revoking twice is a no-op. -ENOENT if unknown. */
int store_token_revoke(Store *s, const char *id, const char *actor);
