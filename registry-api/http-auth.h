/* SPDX-License-Identifier: MIT */
#pragma once

/* Pure parsers and formatters of the HTTP authentication headers plura speaks (RFC 9110 §11,
 * RFC 7617 Basic, RFC 6750 Bearer) and of the Docker token service's scopes
 * (docs.docker.com/registry/spec/auth/scope). No I/O, no global state. */

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define HTTP_AUTH_USER_MAX 128
#define HTTP_AUTH_SECRET_MAX 4096

typedef enum HttpAuthScheme {
        HTTP_AUTH_NONE,   /* no Authorization header */
        HTTP_AUTH_BASIC,
        HTTP_AUTH_BEARER,
        _HTTP_AUTH_SCHEME_MAX,
        _HTTP_AUTH_SCHEME_INVALID = -1,
} HttpAuthScheme;

typedef struct HttpAuthorization {
        HttpAuthScheme scheme;
        char *user;     /* Basic: the user-id (no ':'), else NULL */
        char *password; /* Basic: the password (may contain ':'), else NULL */
        char *token;    /* Bearer: the token68, else NULL */
} HttpAuthorization;

/* Parses an Authorization header value (NULL = none: scheme HTTP_AUTH_NONE, 0). Scheme names are
 * case-insensitive; one or more spaces (SP, not HTAB) after them; blanks around the whole value are
 * ignored. Basic's base64 (standard alphabet, padding required as RFC 7617 writes it, unused bits
 * zero) must decode to "user:password" with a non-empty user of at most HTTP_AUTH_USER_MAX bytes
 * without control characters, a password of at most HTTP_AUTH_SECRET_MAX of any byte but NUL; a
 * Bearer token is token68 (RFC 9110 §11.2) of at most HTTP_AUTH_SECRET_MAX. -EINVAL for anything
 * else (another scheme, junk after the credentials, a decoded NUL), with *ret left empty
 * (HTTP_AUTH_NONE); -ENOMEM. On success the caller frees with http_authorization_done(), which
 * also wipes the password. */
int http_authorization_parse(const char *header, HttpAuthorization *ret);
void http_authorization_done(HttpAuthorization *a);

/* The value of a WWW-Authenticate header for a Bearer challenge:
 *   Bearer realm="<realm>",service="<service>"[,scope="<scope>"][,error="<error>"]
 * Values are quoted-strings (RFC 9110 §5.6.4: '"' and '\' escaped). scope and error may be NULL.
 * Returns a malloc()ed string, or NULL if out of memory, realm or service is NULL, or a value holds
 * a control character other than HTAB (a quoted-string cannot; CR/LF would split the header). */
char *http_bearer_challenge(const char *realm, const char *service, const char *scope, const char *error);
/* Basic realm="<realm>", charset="UTF-8" (NULL as above) */
char *http_basic_challenge(const char *realm);

/* One resource scope: "<type>:<name>:<action>[,<action>...]" where type is [a-z0-9]+ (e.g.
 * "repository", "registry"), name may itself contain ':' (a repository name never does, but
 * "registry:catalog:*" has type registry and name catalog), and the actions are split at ','.
 * The name is everything between the first ':' and the last ':' ("repository:host:5000/a:pull" is
 * host:5000/a), so an action never contains ':'. */
typedef struct TokenScope {
        char *type;
        char *name;
        char **actions; /* NULL-terminated, in the order given, duplicates removed */
        size_t n_actions;
} TokenScope;

/* Parses one or more scopes from a query value: several scopes may be separated by spaces (some
 * clients send one ?scope= with several, others repeat ?scope=; an empty or all-space value adds
 * nothing). Appends to *scopes / *n (the caller frees them with token_scopes_free()); a scope whose
 * type and name are already in the list is merged into that one, its new actions appended.
 * -EINVAL for a malformed scope (empty type, name or action, a type outside [a-z0-9], so no
 * "repository(plugin)" class, a name with a byte outside printable ASCII, an action outside
 * [a-z0-9*_-]), at most 64 scopes and 32 actions each (-E2BIG beyond). On failure the list holds
 * the scopes of the value before the bad one (still the caller's to free). */
int token_scopes_parse(const char *value, TokenScope **scopes, size_t *n);
void token_scopes_free(TokenScope *scopes, size_t n);
/* "repository:apps/search:pull,push" */
char *token_scope_format(const TokenScope *s);
