/* SPDX-License-Identifier: MIT */
#pragma once

/* The credentials `plura reg` sends, looked up as users expect from docker and podman:
 *   1. --user USER[:PASSWORD]: the password after ':', else $PLURA_PASSWORD, else asked on the
 *      terminal (without echo); never from a non-terminal stdin without saying so;
 *   2. $PLURA_TOKEN: an API token, sent as a bearer token;
 *   3. $PLURA_USER with $PLURA_PASSWORD;
 *   4. the registry's entry ("auths" keyed by host:port, with or without a scheme) in the first
 *      credential file that has one: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 *      ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json (else ~/.docker/config.json).
 *      Only inline "auth" entries (what `podman login` and `docker login` without a credential
 *      helper write); a "credsStore"/"credHelpers" file is not read (say so with --user instead).
 * Nothing found: no Authorization header (the server decides whether that is enough). */

#include <stddef.h>

/* The Authorization header value ("Basic ..." / "Bearer ...", malloc()ed) for the registry at
 * base_url, or NULL in *ret when there is none. -EINVAL with the reason in err (a malformed file
 * entry, a --user without a password and no terminal). ret_source (may be NULL) names where it
 * came from, for error messages ("--user", "$PLURA_TOKEN", "~/.docker/config.json"). */
int credentials_find(const char *user_flag, const char *base_url, char **ret, char *ret_source, size_t source_len,
                     char *err, size_t errlen);

/* Pure parts, for tests and the fuzzer: */
/* "user:password" from a credential file's JSON text for host ("127.0.0.1:5000"): 1 and *ret
 * (malloc()ed), 0 if the file has no entry for it, -EINVAL for a malformed file or entry. */
int credentials_from_auth_file(const char *json, size_t len, const char *host, char **ret);
/* Standard base64 (RFC 4648 §4, with padding). */
char *base64_encode(const void *data, size_t n);
/* Accepts padded standard base64; -EINVAL for anything else. *ret is NUL-terminated. */
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
